"""The host patches' help, generated from the command table, and the check that keeps patches honest.

Each host gets the OSC reference in its own words: Markdown for the READMEs, a comment block
(the ``[pd reference]`` subpatch) for the Pd help patch, SuperCollider help text and a
``*commands`` table inside ``Earsight.sc``, the flat channel names inside the TouchDesigner
script. Generated text sits between markers (``patchdoc:begin NAME`` / ``patchdoc:end NAME``);
``--write`` rewrites it, ``--check`` fails when it is stale or when a patch uses an OSC
address the server does not know::

    python patches/patchdoc.py --check     # exit 1 and a list of problems
    python patches/patchdoc.py --write     # regenerate every block

A development tool: it lives beside the patches, outside the package the server ships in.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from earsight.commands import BY_ADDRESS, COMMANDS, ROOT, SCENE, SETTER, TYPES, Arg, Command, marks
from earsight.commands.dispatch import TRACK_SERVICES
from earsight.errors import BadRequest
from earsight.features import STREAMS, Selection, safe_name

PATCHES = Path(__file__).resolve().parent
"""The patches of a source checkout (they are not part of the wheel)."""

DEFAULT_EAR = "crepe"
"""The ear whose value names the generated channel lists show (the server's default)."""

EXAMPLE_SELECTION = Selection("conv6", (0, 1, 2, 3))
"""The selection the examples use for the ``act`` stream (``/ear/select conv6 0 1 2 3``)."""

ADDRESS = re.compile(r"(?<![\w/.])/ear(?:/[A-Za-z0-9_.*?\-]+)*")
"""An earsight OSC address inside any text."""


# ---------------------------------------------------------------- what the server knows


def reply_addresses() -> list[str]:
    """Every address the server sends as an answer (from the table, plus ``/ear/fail``)."""
    return sorted({c.reply for c in COMMANDS} | {f"{ROOT}/done", f"{ROOT}/fail"})


def stream_address(stream: str, name: str | None = None) -> str:
    return f"{ROOT}/{stream}" if name is None else f"{ROOT}/{stream}/{name}"


def known_address(address: str) -> bool:
    """A command, a reply, a stream (``/ear/<stream>``) or one value of it (``/ear/<stream>/<name>``)."""
    if address in BY_ADDRESS or address in reply_addresses():
        return True
    parts = address.split("/")
    if len(parts) in (3, 4) and parts[0] == "" and "/" + parts[1] == ROOT and parts[2] in STREAMS:
        return len(parts) == 3 or parts[3] in ("*", safe_name(parts[3]))
    return False


class Placeholder:
    """An argument a patch fills in at run time (``$1`` in Max and Pd); ``kind``: number, symbol or any."""

    def __init__(self, kind: str = "any") -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


def check_call(address: str, args: Sequence[object]) -> str | None:
    """Why ``address args...`` is not a valid command, or None. Placeholders count as arguments."""
    command = BY_ADDRESS.get(address)
    if command is None:
        return f"{address} is not a command"
    sample: list[object] = []
    for i, value in enumerate(args):
        arg = _arg_at(command, i)
        if arg is None:
            sample.append(value)  # too many: coerce says so
        elif isinstance(value, Placeholder):
            if value.kind == "number" and arg.type == "s":
                return f"{address}: argument {i + 1} ({arg.name}) must be a string, the patch sends a number"
            if value.kind == "symbol" and arg.type in ("n", "i"):
                return f"{address}: argument {i + 1} ({arg.name}) must be a number, the patch sends a symbol"
            sample.append("x" if arg.type == "s" else 1)
        else:
            sample.append(value)
    try:
        values = command.coerce(sample)
        given = [v for v, arg in zip(values, args, strict=False) if not isinstance(arg, Placeholder)]  # values: + missing optionals
        _check_sonify_value(address, given)
    except BadRequest as exc:
        return f"{address}: {exc}"
    return None


def _check_sonify_value(address: str, literal: list[object]) -> None:
    """The sonification's own table knows more than the types: ranges, choices, modes."""
    from earsight.sonify.params import BY_NAME, MODES

    if address == f"{ROOT}/sonify" and literal and literal[0] not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}, got {literal[0]!r}")
    spec = BY_NAME.get(address.removeprefix(f"{ROOT}/sonify/")) if address.startswith(f"{ROOT}/sonify/") else None
    if spec is not None and literal:
        spec.coerce(literal[0])


def _arg_at(command: Command, i: int) -> Arg | None:
    if i < len(command.args):
        return command.args[i]
    if command.args and command.args[-1].variadic:
        return command.args[-1]
    return None


def atom(text: str) -> object:
    """A Max or Pd atom as Python: int, float or str."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


@functools.lru_cache(maxsize=1)
def _default_ear() -> object:
    from earsight.ears import registry

    return registry.load(DEFAULT_EAR)


def value_names(stream: str, selection: Selection = EXAMPLE_SELECTION) -> list[str]:
    """The value names of ``stream`` for the default ear (what ``flat`` appends to the address)."""
    return STREAMS[stream].names(_default_ear(), selection)  # type: ignore[arg-type]


def flat_channels() -> dict[str, list[str]]:
    """Stream -> the addresses of the ``flat`` format for the default ear (empty: the ear cannot give it)."""
    ear = _default_ear()
    out: dict[str, list[str]] = {}
    for name, spec in STREAMS.items():
        out[name] = [] if spec.check(ear) else [stream_address(name, n) for n in value_names(name)]  # type: ignore[arg-type]
    return out


# ---------------------------------------------------------------- renderings per host


def _optional_marks(arg: Arg, text: str) -> str:
    text += " ..." if arg.variadic else ""
    return f"[{text}]" if arg.optional else text


def host_syntax(command: Command, host: str) -> str:
    """How one writes ``command`` in a host's patch or code."""
    names = [_optional_marks(a, f"<{a.name}>" if host != "supercollider" else a.name) for a in command.args]
    if host == "puredata":
        return " ".join([command.address.removeprefix(ROOT + "/"), *names])
    if host == "supercollider":
        return "~ear.send(" + ", ".join([f"'{command.address}'", *names]) + ")"
    if host == "touchdesigner":
        return f"op('earsight_out').sendOSC('{command.address}', [" + ", ".join(a.name for a in command.args) + "])"
    return " ".join([command.address, *names])


def _stream_values(stream: str) -> str:
    names = value_names(stream)
    if STREAMS[stream].check(_default_ear()):  # type: ignore[arg-type]
        return "(not with the default ear)"
    if len(names) > 8:
        return ", ".join(names[:6]) + f", ... ({len(names)} values)"
    return ", ".join(names)


def markdown(host: str = "max") -> str:
    """The OSC reference for a host's README: commands in the host's syntax, replies, streams."""
    how = {
        "max": "a message box into `[udpsend]` (numbers go as float32 or int32)",
        "puredata": "a message into the `[earsight]` abstraction (it adds `/ear/` and sends)",
        "supercollider": "`~ear.send(...)` (or `Earsight` methods)",
        "touchdesigner": "`sendOSC` on the OSC Out DAT",
    }[host]
    lines = [
        f"Commands ({how}):",
        "",
        "| command | arguments | answer | what it does |",
        "|---|---|---|---|",
    ]
    for c in COMMANDS:
        args = "<br>".join(f"`{a.name}` ({a.type}{', optional' if a.optional else ''}{', repeated' if a.variadic else ''}) {a.doc}".strip() for a in c.args) or "–"
        lines.append(f"| `{host_syntax(c, host)}` | {args} | `{c.reply}` | {c.doc}{marks(c)} |")
    lines += [
        "",
        "Types: " + "; ".join(f"`{k}` {v}" for k, v in TYPES.items()) + ". "
        "A failure answers `/ear/fail <address> <reason>`. "
        + SETTER + " " + SCENE,
        "",
        f"Streams (`/ear/stream <name> <rate>`; `list` format: one message `/ear/<name>` with every value; "
        f"`flat`: `/ear/<name>/<value>` each). Value names with the default ear ({DEFAULT_EAR}, "
        f"after `/ear/select {EXAMPLE_SELECTION.layer} {' '.join(map(str, EXAMPLE_SELECTION.channels))}`):",
        "",
        "| stream | values | what they are |",
        "|---|---|---|",
    ]
    for name, spec in STREAMS.items():
        lines.append(f"| `{name}` | {_stream_values(name)} | {spec.doc} |")
    lines += ["", "Replies: " + ", ".join(f"`{r}`" for r in reply_addresses()) + "."]
    return "\n".join(lines)


def td_channels_markdown() -> str:
    """The channels an OSC In CHOP shows for each stream in the ``flat`` format (default ear)."""
    lines = [
        "| stream | OSC In CHOP channels (flat format) |",
        "|---|---|",
    ]
    for name, addresses in flat_channels().items():
        shown = ", ".join(f"`{a}`" for a in addresses) or f"none with {DEFAULT_EAR}: {STREAMS[name].check(_default_ear()) or 'see /ear/model/info'}"  # type: ignore[arg-type]
        lines.append(f"| `{name}` | {shown} |")
    return "\n".join(lines)


def td_channels_python() -> str:
    """``FLAT_CHANNELS``: the TouchDesigner script's table of expected addresses per stream."""
    lines = ["FLAT_CHANNELS = {"]
    for name, addresses in flat_channels().items():
        lines.append(f"    {name!r}: {addresses!r},")
    lines.append("}")
    return "\n".join(lines)


def _sc_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def supercollider() -> str:
    """SC help text (comments) and the ``*commands`` method of ``Earsight``."""
    lines = ["// OSC reference (generated from the server's command table):"]
    for c in COMMANDS:
        lines.append(f"//   {host_syntax(c, 'supercollider')}  -> {c.reply}")
        lines.append(f"//       {c.doc}")
        for a in c.args:
            kind = {"n": "number", "i": "integer", "s": "string", "a": "string or number"}[a.type]
            lines.append(f"//       {a.name} ({kind}{', optional' if a.optional else ''}): {a.doc}".rstrip(": "))
    lines.append("// Streams (Earsight:stream, values with the default ear " + DEFAULT_EAR + "):")
    for name, spec in STREAMS.items():
        lines.append(f"//   \\{name}: {_stream_values(name)} -- {spec.doc}")
    lines.append("")
    lines.append("\t// [address, typetag, reply, doc]; typetag: n number, i integer, s string, a either; ? optional, * repeated")
    lines.append("\t*commands {")
    lines.append("\t\t^[")
    for c in COMMANDS:
        lines.append(f"\t\t\t[{_sc_string(c.address)}, {_sc_string(c.typetag)}, {_sc_string(c.reply)}, {_sc_string(c.doc)}],")
    lines.append("\t\t]")
    lines.append("\t}")
    lines.append("")
    lines.append("\t// the commands each track has of its own (/ear/<track>/... reaches them)")
    lines.append("\t*trackCommands {")
    lines.append("\t\t^[" + ", ".join(_sc_string(c.address) for c in COMMANDS if c.service in TRACK_SERVICES) + "]")
    lines.append("\t}")
    lines.append("")
    lines.append("\t// stream name -> value names with the default ear (" + DEFAULT_EAR + "); empty: depends on the ear")
    lines.append("\t*streams {")
    lines.append("\t\t^(")
    for name in STREAMS:
        names = value_names(name) if name in ("pitch", "level", "embed") else []
        lines.append(f"\t\t\t{name}: [" + ", ".join(_sc_string(n) for n in names) + "],")
    lines.append("\t\t)")
    lines.append("\t}")
    return "\n".join(lines)


def _pd_escape(text: str) -> str:
    text = text.replace("{", "(").replace("}", ")").replace("\\", "/")
    text = text.replace("$", "\\$").replace(",", " \\,").replace(";", " \\;")
    return re.sub(r"\s+", " ", text).strip()


def puredata_reference(x: int = 20, y: int = 560) -> str:
    """The help patch's ``[pd reference]`` subpatch: one comment per command and stream."""
    rows: list[str] = ["OSC reference - generated from the server's command table by patches/patchdoc.py (do not edit)"]
    rows.append("Send these to [earsight] (it adds /ear/ and sends); answers come out of its right outlet.")
    for c in COMMANDS:
        args = " ".join(f"{a.name}: {a.doc}." for a in c.args if a.doc)
        rows.append(f"[{host_syntax(c, 'puredata')}( - {c.doc} {args} Answer: {c.reply}")
    rows.append("Streams (each has an outlet of [earsight] - a list of floats):")
    for name, spec in STREAMS.items():
        rows.append(f"{name}: {spec.doc}. With {DEFAULT_EAR}: {_stream_values(name)}")
    rows.append("Types: " + " / ".join(f"{k} {v}" for k, v in TYPES.items()) + ". Failures answer: fail <address> <reason>")
    body, top = [], 10
    for row in rows:
        text = _pd_escape(row)
        body.append(f"#X text 10 {top} {text}, f 100;")
        top += 18 * (1 + len(text) // 96) + 8
    out = [f"#N canvas 0 50 800 {top + 40} reference 0;", *body]
    out.append(f"#X restore {x} {y} pd reference;")
    return "\n".join(out)


SC_CLASS = "supercollider/Earsight.sc"
SCHELP = "supercollider/HelpSource/Classes/Earsight.schelp"
"""The class's help page, whole: what SuperCollider's help browser shows once the quark is installed."""
SC_VARS = re.compile(r"((?:^\t//[^\n]*\n)*)^\tvar ([^;]*);", re.M)
SC_METHOD = re.compile(r"((?:^\t//[^\n]*\n)*)^\t(\*?)([a-z]\w*) \{ *(?:\|([^|]*)\|)?", re.M)


@dataclass(frozen=True)
class ScMethod:
    name: str
    classmethod: bool
    args: tuple[tuple[str, str], ...]
    """(name, default or "") per argument; a variadic one is named ``... name``."""
    doc: str


def sc_methods(source: str) -> list[ScMethod]:
    """The class's methods with the comment above each (``init`` is private and skipped)."""
    out = []
    for comment, star, name, arglist in SC_METHOD.findall(source):
        if name == "init":
            continue
        doc = " ".join(
            line.strip()[2:].strip() for line in comment.splitlines() if not line.strip().startswith("// ---")
        )
        args = []
        for part in re.split(r",|(?=\.\.\.)", arglist or ""):
            part = part.strip()
            if part:
                arg, _, default = part.partition("=")
                args.append((arg.strip(), default.strip()))
        out.append(ScMethod(name, bool(star), tuple(args), doc))
    return out


def sc_accessors(source: str) -> list[ScMethod]:
    """The instance variables the class lets one read (``<name``) or set (``<>name``), each with its
    line of the comment above the ``var`` line (``// name: what it holds``)."""
    match = SC_VARS.search(source)
    if match is None:
        return []
    docs = dict(re.findall(r"^\t// (\w+): (.*)$", match.group(1), re.M))
    names = re.findall(r"<>?(\w+)", match.group(2))
    return [ScMethod(name, False, (), docs.get(name, "")) for name in names]


def sc_documented(root: Path = PATCHES) -> list[ScMethod]:
    """What the help page documents: the class's methods, then its accessors."""
    source = (root / SC_CLASS).read_text()
    return sc_methods(source) + sc_accessors(source)


def _schelp_text(text: str) -> str:
    """SCDoc ends a tag at ``::``: escape it in running text; the comments' `code` becomes code::code::."""
    return re.sub(r"`([^`]+)`", r"code::\1::", text.replace("::", r"\::"))


def schelp(root: Path = PATCHES) -> str:
    """``Earsight.schelp``: the class's methods (from the comments in ``Earsight.sc``), the OSC
    commands and the streams (from the server's table)."""
    methods = sc_documented(root)
    lines = [
        "class:: Earsight",
        "summary:: talk to an earsight server (an artificial ear you can play) from sclang",
        "categories:: External Control>OSC",
        "related:: Classes/NetAddr, Classes/OSCFunc, Classes/OSCdef",
        "",
        "description::",
        "An earsight server listens to audio, runs a neural ear on it and sends what its neurons hear as OSC",
        "streams. This class connects, loads an ear, selects neurons, subscribes, and gives the streams as",
        "OSCdefs, as the latest values (code::~ear.values[\\pitch]::) and on control buses a synth can read",
        "(code::~ear.bus(\\pitch)::). Commands sent with code::sendAt:: go as timetagged bundles: the server",
        "applies them at their time.",
        "",
        "Generated by patches/patchdoc.py from the class's comments and the server's command table: do not edit.",
        "",
    ]
    for section, wanted in (("classmethods::", True), ("instancemethods::", False)):
        lines += [section, ""]
        for m in (m for m in methods if m.classmethod == wanted):
            lines += [f"method:: {m.name}", _schelp_text(m.doc or "(no comment in Earsight.sc)")]
            for arg, default in m.args:
                variadic = arg.startswith("...")
                lines.append(f"argument:: {arg}")  # SCDoc names a variadic one "... name", as the class does
                if variadic or default:
                    lines.append("Any number of them." if variadic else f"Default: code::{default}::.")
            lines.append("")
    lines += ["section:: OSC commands", "The server's commands: code::~ear.send(address, args...)::, or code::request:: for the answer.", "definitionlist::"]
    for c in COMMANDS:
        args = " ".join(f"{a.name}{'?' if a.optional else ''}" for a in c.args)
        lines.append(f"## code::{c.address} {args}::".replace(" ::", "::"))
        detail = "; ".join(f"{a.name}: {a.doc}" for a in c.args if a.doc)
        lines.append("|| " + _schelp_text(f"{c.doc} {detail + '. ' if detail else ''}Answer: {c.reply}."))
    lines += ["::", "", "section:: Streams", f"Values with the default ear ({DEFAULT_EAR}); turn one on with code::stream::.", "definitionlist::"]
    for name, spec in STREAMS.items():
        lines.append(f"## {name} || " + _schelp_text(f"{spec.doc}. {_stream_values(name)}"))
    lines += [
        "::", "", "examples::", "code::",
        '~ear = Earsight("127.0.0.1", 9000);',
        "~ear.notify;",
        "~ear.load(\\crepe, { |ok| \"crepe: %\".format(ok).postln });",
        "~ear.stream(\\pitch, 30, { |v| v.postln });   // [hz, confidence]",
        "~ear.sendAt(1.0, '/ear/input', \"test\", \"sine\", 220);   // applied in 1 s",
        "~ear.free;",
        "::",
    ]
    return "\n".join(lines) + "\n"


MAX_DEVICE = "max/earsight/patchers/earsight.maxpat"
MAXHELP = "max/earsight/help/earsight.maxhelp"
"""The package's help patcher, whole: Max opens it for Help on an ``[earsight]`` box."""
MAX_EXAMPLES = (
    "/ear/ping", "/ear/notify 9001", "/ear/stream pitch 30", "/ear/model/load crepe",
    "/ear/select conv6 0 1 2 3", "/ear/input test sine 440", "/ear/sonify dream", "/ear/sonify off",
    "/ear/output/mix 1. 0.5", "/ear/view features",
)
"""Message boxes the help wires into its ``[udpsend]`` (each checked against the table like the device's)."""


def device_outlets(device: dict) -> list[str]:  # type: ignore[type-arg]
    """What each outlet of the device patcher carries, left to right (Max numbers outlets by their
    x): the ``[s earsight.NAME]`` fed from the same place as the ``[outlet]`` gives NAME."""
    boxes = {b["id"]: b for b in max_boxes(device)}
    feeds: dict[str, tuple[str, int]] = {}
    for line in device.get("lines", []):
        (src, out), (dst, _) = line["patchline"]["source"], line["patchline"]["destination"]
        feeds.setdefault(dst, (src, out))
    named = {feeds[i]: b["text"].split()[1] for i, b in boxes.items() if b.get("text", "").startswith("s earsight.") and i in feeds}
    outlets = sorted((b for b in boxes.values() if b.get("text") == "outlet"), key=lambda b: b["patching_rect"][0])
    return [named.get(feeds.get(b["id"], ("", 0)), f"outlet {k + 1}") for k, b in enumerate(outlets)]


def maxhelp(root: Path = PATCHES) -> str:
    """``earsight.maxhelp``: the device as an ``[earsight]`` box with a ``[print]`` on each stream outlet,
    example messages into ``[udpsend]``, and one comment per command and stream from the table."""
    device = json.loads((root / MAX_DEVICE).read_text())["patcher"]
    outlets = device_outlets(device)
    boxes: list[dict[str, object]] = []
    lines: list[dict[str, object]] = []

    def box(maxclass: str, text: str, rect: list[float], inlets: int, outlets_: int, kinds: list[str] | None = None) -> str:
        ident = f"obj-{len(boxes) + 1}"
        boxes.append({"box": {
            "id": ident, "maxclass": maxclass, "text": text, "patching_rect": rect, "numinlets": inlets,
            "numoutlets": outlets_, "outlettype": kinds if kinds is not None else [""] * outlets_,
            **({"linecount": 1 + len(text) // 110} if maxclass == "comment" else {}),
        }})
        return ident

    box("comment", "earsight: the device as an [earsight] box (its outlets: the streams), commands to the server "
        "through [udpsend]. Generated by patches/patchdoc.py from the command table: do not edit.",
        [20.0, 10.0, 760.0, 20.0], 1, 0)
    ear = box("newobj", "earsight", [20.0, 50.0, 200.0, 22.0], 0, len(outlets))
    for i, name in enumerate(outlets):
        printer = box("newobj", f"print {name}", [20.0 + 110.0 * i, 100.0, 100.0, 22.0], 1, 0)
        lines.append({"patchline": {"source": [ear, i], "destination": [printer, 0]}})
    send = box("newobj", "udpsend 127.0.0.1 9000", [20.0, 420.0, 150.0, 22.0], 1, 0)
    for i, text in enumerate(MAX_EXAMPLES):
        message = box("message", text, [20.0 + 190.0 * (i % 4), 160.0 + 30.0 * (i // 4), 180.0, 22.0], 2, 1, [""])
        lines.append({"patchline": {"source": [message, 0], "destination": [send, 0]}})
    top = 470.0
    reference = [f"{host_syntax(c, 'max')}  -> {c.reply}: {c.doc}" for c in COMMANDS]
    reference += [f"stream {name}: {spec.doc} ({_stream_values(name)})" for name, spec in STREAMS.items()]
    for text in reference:
        box("comment", text, [20.0, top, 760.0, 20.0], 1, 0)
        top += 22.0 * (1 + len(text) // 110)
    patcher = {key: device[key] for key in ("fileversion", "appversion", "classnamespace") if key in device}
    patcher |= {"rect": [100.0, 100.0, 800.0, top + 40.0], "boxes": boxes, "lines": lines}
    return json.dumps({"patcher": patcher}, indent=1) + "\n"


# ---------------------------------------------------------------- generated blocks in the patch files


@dataclass(frozen=True)
class Block:
    path: str
    """Relative to the patches folder."""
    name: str
    render: Callable[[], str]
    comment: str = "<!--"
    """How the file writes a comment: ``<!--`` (Markdown), ``//`` (SuperCollider), ``#`` (Python)."""

    def markers(self) -> tuple[str, str]:
        close = " -->" if self.comment == "<!--" else ""
        return (
            f"{self.comment} patchdoc:begin {self.name} (generated by patches/patchdoc.py: do not edit){close}",
            f"{self.comment} patchdoc:end {self.name}{close}",
        )


BLOCKS: tuple[Block, ...] = (
    Block("max/README.md", "reference", lambda: markdown("max")),
    Block("supercollider/README.md", "reference", lambda: markdown("supercollider")),
    Block("puredata/README.md", "reference", lambda: markdown("puredata")),
    Block("touchdesigner/README.md", "reference", lambda: markdown("touchdesigner")),
    Block("touchdesigner/README.md", "channels", td_channels_markdown),
    Block("touchdesigner/earsight_td.py", "channels", td_channels_python, "#"),
    Block("supercollider/Earsight.sc", "reference", supercollider, "//"),
)

PD_ABSTRACTION = "puredata/earsight/earsight.pd"
PD_HELP = "puredata/earsight/earsight-help.pd"
PD_REFERENCE = re.compile(r"^#N canvas [^;]* reference 0;\n.*?^#X restore (\d+) (\d+) pd reference;", re.S | re.M)


def _replace_block(text: str, block: Block, content: str) -> str:
    begin, end = block.markers()
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"{block.path}: markers of block {block.name!r} missing ({begin!r} ... {end!r})")
    return text[: i + len(begin)] + "\n" + content + "\n" + text[j:]


def regenerate(root: Path = PATCHES) -> dict[Path, str]:
    """Every file with generated help, as it should read now."""
    files: dict[Path, str] = {}
    for block in BLOCKS:
        path = root / block.path
        text = files.get(path) or path.read_text()
        files[path] = _replace_block(text, block, block.render())
    help_path = root / PD_HELP
    text = help_path.read_text()
    match = PD_REFERENCE.search(text)
    if match is None:
        raise ValueError(f"{PD_HELP}: no [pd reference] subpatch")
    x, y = int(match.group(1)), int(match.group(2))
    files[help_path] = text[: match.start()] + puredata_reference(x, y) + text[match.end() :]
    files[root / SCHELP] = schelp(root)
    files[root / MAXHELP] = maxhelp(root)
    return files


def _stale(path: Path, text: str) -> bool:
    """A generated file that is missing or reads otherwise than ``text``."""
    return not path.exists() or path.read_text() != text


def write(root: Path = PATCHES) -> list[Path]:
    changed = []
    for path, text in regenerate(root).items():
        if _stale(path, text):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(path)
    return changed


# ---------------------------------------------------------------- checks


def patch_files(root: Path = PATCHES) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".md", ".pd", ".sc", ".scd", ".maxpat", ".maxhelp", ".py", ".json"))


def scan_addresses(text: str) -> list[str]:
    """Every ``/ear...`` address in a text (trailing dots of prose trimmed)."""
    return [m.group(0).rstrip(".") for m in ADDRESS.finditer(text)]


def unknown_addresses(root: Path = PATCHES) -> list[str]:
    problems = []
    for path in patch_files(root):
        for address in dict.fromkeys(scan_addresses(path.read_text(errors="replace"))):
            if address == ROOT or known_address(address):
                continue
            problems.append(f"{path.relative_to(root)}: uses {address}, which the server does not know")
    return problems


# Pd ---------------------------------------------------------------------------------------------


@dataclass
class PdBox:
    index: int
    kind: str  # obj, msg, text, floatatom, ...
    atoms: list[str]
    canvas: int


def parse_pd(text: str) -> tuple[list[PdBox], list[tuple[int, int, int, int, int]]]:
    """Boxes and connections ``(canvas, source, outlet, sink, inlet)`` of a Pd file, canvases numbered."""
    records = [r.strip() for r in re.split(r"(?<!\\);\s*\n", text) if r.strip()]
    boxes: list[PdBox] = []
    cords: list[tuple[int, int, int, int, int]] = []
    stack: list[list[int]] = []  # canvas id and its object count
    canvases = 0
    for record in records:
        words = record.rstrip(";").split()
        if words[:2] == ["#N", "canvas"]:
            stack.append([canvases, 0])
            canvases += 1
            continue
        if not stack or not words or words[0] != "#X":
            continue
        canvas = stack[-1]
        if words[1] == "connect":
            a, o, b, i = (int(w) for w in words[2:6])
            cords.append((canvas[0], a, o, b, i))
        elif words[1] == "restore":
            stack.pop()
            parent = stack[-1]
            boxes.append(PdBox(parent[1], "obj", words[4:], parent[0]))
            parent[1] += 1
        elif words[1] in ("obj", "msg", "text", "floatatom", "symbolatom", "listbox", "array"):
            body = [w for w in words[4:]]
            if ", f" in record:
                body = record.rsplit(", f", 1)[0].rstrip(";").split()[4:]
            boxes.append(PdBox(canvas[1], words[1], body, canvas[0]))
            canvas[1] += 1
        elif words[1] == "coords":
            continue
    return boxes, cords


def pd_messages(atoms: list[str]) -> list[list[str]]:
    """The messages of a Pd message box (split at unescaped commas; ``;`` sends are dropped)."""
    text = " ".join(atoms)
    if "\\;" in text:
        text = text.split("\\;")[0]
    return [m.split() for m in text.split("\\,") if m.split()]


def check_pd(path: Path) -> list[str]:
    """Message boxes wired into ``[earsight]``: each must be a valid command (or connect/listen)."""
    boxes, cords = parse_pd(path.read_text())
    by_key = {(b.canvas, b.index): b for b in boxes}
    problems = []
    for canvas, a, _o, b, _i in cords:
        source, sink = by_key.get((canvas, a)), by_key.get((canvas, b))
        if source is None or sink is None:
            problems.append(f"{path.name}: connection {a} -> {b} refers to a missing box")
            continue
        if sink.kind != "obj" or sink.atoms[:1] != ["earsight"] or source.kind != "msg":
            continue
        for words in pd_messages(source.atoms):
            if words[0] in ("connect", "listen"):
                continue
            args: list[object] = [Placeholder() if w.startswith("\\$") else atom(w) for w in words[1:]]
            if words[0] == "stream":
                args.append(Placeholder("number"))  # the abstraction appends its listening port
            if words[0] == "notify":
                args.insert(0, Placeholder("number"))
            reason = check_call(f"{ROOT}/{words[0]}", args)
            if reason:
                problems.append(f"{path.name}: [{' '.join(words)}( -> {reason}")
    return problems


def pd_stream_routes(path: Path) -> list[str]:
    """The streams the abstraction routes to outlets (its ``[route pitch level ...]``)."""
    boxes, _ = parse_pd(path.read_text())
    for box in boxes:
        if box.kind == "obj" and box.atoms[:1] == ["route"] and "pitch" in box.atoms:
            return box.atoms[1:]
    return []


# Max --------------------------------------------------------------------------------------------


def max_boxes(patcher: dict) -> list[dict]:  # type: ignore[type-arg]
    return [b["box"] for b in patcher.get("boxes", [])]


def check_max(path: Path) -> list[str]:
    """Structure (ids, cords, inlets, outlets) and every OSC message of a Max patcher."""
    problems: list[str] = []
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [f"{path.name}: not JSON: {exc}"]
    patchers = [doc["patcher"]]
    for patcher in patchers:  # grows with subpatchers
        boxes = max_boxes(patcher)
        ids = [b.get("id") for b in boxes]
        for dup in {i for i in ids if ids.count(i) > 1}:
            problems.append(f"{path.name}: box id {dup} is used twice")
        by_id = {b.get("id"): b for b in boxes}
        for b in boxes:
            for key in ("id", "maxclass", "numinlets", "numoutlets", "patching_rect"):
                if key not in b:
                    problems.append(f"{path.name}: box {b.get('id')} has no {key}")
            if len(b.get("outlettype", [])) != b.get("numoutlets", 0):
                problems.append(f"{path.name}: box {b.get('id')}: outlettype has {len(b.get('outlettype', []))} entries for {b.get('numoutlets')} outlets")
            if "patcher" in b:
                patchers.append(b["patcher"])
        inbound: dict[str, list[tuple[dict, int]]] = {}  # type: ignore[type-arg]
        for line in patcher.get("lines", []):
            cord = line.get("patchline", {})
            try:
                (src, outlet), (dst, inlet) = cord["source"], cord["destination"]
            except (KeyError, TypeError, ValueError):
                problems.append(f"{path.name}: malformed patch cord {line}")
                continue
            if src not in by_id or dst not in by_id:
                problems.append(f"{path.name}: cord {src} -> {dst} refers to a missing box")
                continue
            if not 0 <= outlet < by_id[src]["numoutlets"]:
                problems.append(f"{path.name}: cord from {src} outlet {outlet}, which has {by_id[src]['numoutlets']} outlets")
            if not 0 <= inlet < by_id[dst]["numinlets"]:
                problems.append(f"{path.name}: cord into {dst} inlet {inlet}, which has {by_id[dst]['numinlets']} inlets")
            inbound.setdefault(dst, []).append((by_id[src], outlet))
        for b in boxes:
            text = b.get("text", "")
            if b.get("maxclass") == "message" and text.startswith(ROOT + "/"):
                problems += _check_max_message(path, b, inbound.get(b["id"], []))
            elif b.get("maxclass") == "newobj" and text.split()[:1] == ["route"]:
                for address in text.split()[1:]:
                    if address.startswith("/") and not known_address(address):
                        problems.append(f"{path.name}: [{text}] routes {address}, which the server never sends")
    return problems


def _max_kind(source: dict, outlet: int, index: int) -> str:  # type: ignore[type-arg]
    """What a box sends as element ``index`` (0-based) of its output: number, symbol or any."""
    cls, words = source.get("maxclass"), source.get("text", "").split()
    if cls in ("live.dial", "live.numbox", "live.slider", "number", "flonum", "live.toggle"):
        return "number"
    if cls == "live.menu":
        return "number" if outlet == 0 else "symbol"
    if cls == "newobj" and words[:1] in (["pack"], ["pak"]) and index + 1 < len(words):
        letter = words[index + 1]
        return "symbol" if letter in ("s", "sym", "symbol") else "any" if letter == "l" else "number"
    return "any"


def _check_max_message(path: Path, box: dict, sources: list[tuple[dict, int]]) -> list[str]:  # type: ignore[type-arg]
    problems = []
    for message in box["text"].split(","):
        words = message.split()
        if not words:
            continue
        args: list[object] = []
        for w in words[1:]:
            if re.fullmatch(r"\$[1-9]", w):
                index = int(w[1]) - 1
                kinds = {_max_kind(src, o, index) for src, o in sources} or {"any"}
                args.append(Placeholder(kinds.pop() if len(kinds) == 1 else "any"))
            else:
                args.append(atom(w))
        reason = check_call(words[0], args)
        if reason:
            problems.append(f"{path.name}: message box [{message.strip()}] -> {reason}")
    return problems


def check(root: Path = PATCHES) -> list[str]:
    """Everything wrong with the patches: stale generated help, unknown addresses, bad calls."""
    problems = []
    for path, text in regenerate(root).items():
        if _stale(path, text):
            problems.append(f"{path.relative_to(root)}: generated help is stale (run python patches/patchdoc.py --write)")
    problems += unknown_addresses(root)
    problems += [
        f"{SC_CLASS}: method {m.name} has no comment above it (the help page is made from it)"
        for m in sc_documented(root) if not m.doc
    ]
    for path in sorted(root.rglob("*.pd")):
        problems += check_pd(path)
    routed = pd_stream_routes(root / PD_ABSTRACTION)
    for name in STREAMS:
        if name not in routed:
            problems.append(f"{PD_ABSTRACTION}: stream {name!r} has no outlet (add it to [route {' '.join(routed)}])")
    for path in sorted([*root.rglob("*.maxpat"), *root.rglob("*.maxhelp")]):
        problems += check_max(path)
    return problems


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python patches/patchdoc.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=PATCHES, help="the patches folder")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="report stale help and unknown addresses (default)")
    mode.add_argument("--write", action="store_true", help="regenerate the help in the patch files")
    mode.add_argument("--show", choices=("max", "puredata", "supercollider", "touchdesigner"), help="print one host's Markdown")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.show:
        print(markdown(args.show))
        return 0
    if args.write:
        for path in write(args.root):
            print(f"wrote {path}")
    problems = check(args.root)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
