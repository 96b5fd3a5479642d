"""Making audible what the selected neurons hear: the mode, its parameters, renders to files."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import BadRequest
from ..sonify.params import AUDIO_FORMATS, MODES, PARAMS
from .base import QUANTISE_ARG, Arg, Command, Reply, Request, in_background, key_values, on_the_beat

if TYPE_CHECKING:
    from ..sonify.live import Sonifier


def _sonify(sonifier: Sonifier, req: Request, mode: str, quantise: str | None) -> object:
    if mode not in MODES:  # refused now, not on the beat
        raise BadRequest(f"sonify mode must be one of {', '.join(MODES)}, got {mode!r}")
    return on_the_beat(req, quantise, lambda: sonifier.set_mode(mode))


def _render(sonifier: Sonifier, req: Request, seconds: float, name: str, overwrite: int | None) -> object:
    path = req.files.output(name, "renders", tuple(AUDIO_FORMATS), overwrite=bool(overwrite))
    # minutes of optimisation must not hold up the OSC thread (the sonifier checks seconds)
    return in_background(req, lambda: [sonifier.render(seconds, path)])


def _status(sonifier: Sonifier, req: Request) -> list[Reply]:
    return [("/ear/sonify/status.reply", key_values(sonifier.stats()))]


def _param(name: str) -> Callable[..., None]:
    def handler(sonifier: Sonifier, req: Request, value: object) -> None:
        sonifier.set_param(name, value)

    return handler


GLIDES = ("lr", "mix", "strength", "jitter", "time_mask", "freq_mask", "act_penalty", "noise_penalty", "hf_penalty")
"""Parameters a scene crossfades; the rest (sizes of windows and chunks, regions, the target) switch
at the end of its fade, where their combinations are checked together."""
MIX_ALIASES = ("dry", "wet")
"""The same levels as /ear/output/mix, which a scene holds."""


def _scene(name: str) -> str:
    return "" if name in MIX_ALIASES else "glide" if name in GLIDES else "switch"


def _commands() -> tuple[Command, ...]:
    commands = [
        Command("/ear/sonify", (Arg("mode", "s", " | ".join(MODES)), QUANTISE_ARG), _sonify, "/ear/done",
                "Make audible what the selected neurons hear: dream (optimise the input so they respond more) or auralise "
                "(their feature map run back to a mask on the input's spectrum); mixed into the output (see /ear/output/mix).",
                "sonify", scene="switch"),
        Command(
            "/ear/sonify/render",
            (Arg("seconds", "n", "of the most recent input, up to 10 (the server keeps 10 s)"), Arg("name", "s", "a .wav or .flac file under the output folder (--out-dir; relative: under its renders/)"),
             Arg("overwrite", "i", "1: replace an existing file", optional=True)),
            _render, "/ear/done",
            "Render the sonification of the last seconds to a file; answers /ear/done /ear/sonify/render <path> when written.",
            "sonify",
        ),
        Command("/ear/sonify/status", (), _status, "/ear/sonify/status.reply",
                "Key-value pairs: mode, steps per second, last_rise_spreads (how far the last measured dream raised the selected neurons, "
                "in units of their spread on reference audio: the same yardstick for every unit), last_rise (after minus before), "
                "last_loudness_db (that dream's output over its input, dB), last_jump (its change's largest sample-to-sample jump "
                "over the input's: above 1 a click), "
                "last_peak (the last auralisation's mask peak), largest jump at crossfades, steps_live (the dream steps "
                "per update now: fewer than asked while the machine cannot keep up, counted in degraded), ...", "sonify"),
    ]
    for p in PARAMS:
        limits = f"{p.range[0]:g}-{p.range[1]:g}" if p.range else " | ".join(p.choices or ())
        commands.append(Command(f"/ear/sonify/{p.name}", (Arg("value", p.type, f"{limits} (default {p.default!r})".strip()),),
                                _param(p.name), "/ear/done", p.doc, "sonify", coalesce=p.type in "ni",
                                scene=_scene(p.name)))
    return tuple(commands)


COMMANDS = _commands()
