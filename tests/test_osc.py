"""The command table and the transport's pure parts: known answers, table-driven."""

from pathlib import Path

import pytest

from earsight.commands import BY_ADDRESS, COMMANDS, Command, Dispatcher, reference_markdown
from earsight.errors import BadRequest

PATTERN_TABLE = [Command(a, (), lambda *_: None, "/ear/done", a) for a in ("/ear/ping", "/ear/status", "/ear/sync", "/ear/model/list")]

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("pat", "address", "matches"),
    [
        ("/ear/ping", "/ear/ping", True),
        ("/ear/p?ng", "/ear/ping", True),
        ("/ear/*", "/ear/ping", True),
        ("/ear/*", "/ear/model/list", False),  # * never crosses a /
        ("/ear/*/list", "/ear/model/list", True),
        ("/ear/[a-m]*/list", "/ear/model/list", True),
        ("/ear/[!a-m]*/list", "/ear/model/list", False),
        ("/ear/{ping,status}", "/ear/status", True),
        ("/ear/{ping,status}", "/ear/sync", False),
        ("/ear/pin", "/ear/ping", False),
        ("/ear/[!a-m]*/l?st", "/ear/model/list", False),
        ("/ear/p[a-z]ng", "/ear/ping", True),
        ("/ear/[ping", "/ear/ping", False),  # an unclosed [ matches nothing
        ("/ear/{ping", "/ear/ping", False),
        ("/ear/p.ng", "/ear/ping", False),  # regex characters are literal in OSC
        ("/ear/p+ng", "/ear/ping", False),
    ],
)
def test_address_patterns_match_as_osc_1_0_says(pat: str, address: str, matches: bool) -> None:
    dispatcher = Dispatcher(PATTERN_TABLE, {}, lambda *_: None)
    assert (address in [c.address for c in dispatcher.commands_for(pat)]) is matches


@pytest.mark.parametrize(
    ("address", "given", "expected"),
    [
        ("/ear/stream", ["pitch", 10], ["pitch", 10.0, None]),
        ("/ear/stream", ["pitch", 10.5, 9000.0], ["pitch", 10.5, 9000]),  # Pd: every number a float
        ("/ear/select", ["conv1", 1.0, 2, 3.0], ["conv1", 1, 2, 3]),
        ("/ear/select", ["conv1"], ["conv1"]),
        ("/ear/notify", [], [None, None, None]),
        ("/ear/input", ["test", "sine", 440], ["test", "sine", 440.0]),
        ("/ear/input", ["file", "a.wav"], ["file", "a.wav", None]),
    ],
)
def test_arguments_are_coerced(address: str, given: list[object], expected: list[object]) -> None:
    assert BY_ADDRESS[address].coerce(given) == expected


@pytest.mark.parametrize(
    ("address", "given", "reason"),
    [
        ("/ear/stream", ["pitch"], "missing argument rate"),
        ("/ear/stream", [3, 10], "name must be a string"),
        ("/ear/stream", ["pitch", "fast"], "rate must be a number"),
        ("/ear/stream", ["pitch", float("nan")], "must be finite"),
        ("/ear/select", ["conv1", 1.5], "whole number"),
        ("/ear/ping", [1], "too many arguments"),
    ],
)
def test_bad_arguments_say_why(address: str, given: list[object], reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        BY_ADDRESS[address].coerce(given)


def test_every_command_is_documented_and_answers_under_the_root() -> None:
    assert len({c.address for c in COMMANDS}) == len(COMMANDS)
    for c in COMMANDS:
        assert c.address.startswith("/ear/") and c.reply.startswith("/ear/")
        assert c.doc and all(a.doc or not a.optional for a in c.args)


def test_readme_reference_is_generated_from_the_table() -> None:
    readme = (ROOT / "README.md").read_text()
    begin, end = "<!-- osc-reference:begin -->", "<!-- osc-reference:end -->"
    assert begin in readme and end in readme, "README lacks the generated OSC reference"
    current = readme.split(begin, 1)[1].split(end, 1)[0].strip()
    assert current == reference_markdown().strip(), "README is stale: run `earsight oscdoc --write`"


def test_readme_host_steps_are_the_patches_own() -> None:
    steps = (ROOT / "patches" / "README.md").read_text().strip()
    assert steps in (ROOT / "README.md").read_text(), "README's 'From your host' differs from patches/README.md"
