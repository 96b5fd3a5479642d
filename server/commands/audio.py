"""What the server hears and what it plays: the input, its gain, the output mix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import BadRequest
from .base import Arg, Command, Request

if TYPE_CHECKING:
    from ..audio import AudioEngine


def _input(audio: AudioEngine, req: Request, kind: str, name: object, value: float | None) -> None:
    from ..audio.sources import Source  # (numpy only: the command table stays light)

    if kind == "test":
        if not isinstance(name, str):
            raise BadRequest("usage: /ear/input test <sine|clicks|noise|sweep> [value]")
        audio.set_source(Source("test", name, value or 0.0))
    elif kind == "file":
        if not isinstance(name, str):
            raise BadRequest("usage: /ear/input file <path>")
        audio.set_source(Source("file", str(req.files.input(name))))
    else:
        if name is not None:
            raise BadRequest(f"/ear/input {kind} takes no further arguments")
        audio.set_source(Source(kind))


def _gain(audio: AudioEngine, req: Request, gain: float) -> None:
    audio.set_gain(gain)


def _mix(audio: AudioEngine, req: Request, dry: float, wet: float) -> None:
    audio.set_mix(dry, wet)


def _onset_threshold(audio: AudioEngine, req: Request, db: float) -> None:
    audio.set_onset_threshold(db)


COMMANDS: tuple[Command, ...] = (
    Command(
        "/ear/input",
        (
            Arg("kind", "s", "demo, device, file, test or silence"),
            Arg("name", "a", "file path, or test signal: sine, clicks, noise, sweep", optional=True),
            Arg("value", "n", "test signal parameter: Hz (sine), clicks per second, amplitude (noise), seconds (sweep)", optional=True),
        ),
        _input, "/ear/done",
        "What the server listens to. Files (wav, aif, flac, ogg, mp3) loop; they are read only from the folders "
        "the server allows (--allow-dir; relative names: under the first).",
        "audio",
    ),
    Command("/ear/input/gain", (Arg("gain", "n", "0-16, linear"),), _gain, "/ear/done", "Input gain (smoothed).", "audio",
            coalesce=True, scene="glide"),
    Command(
        "/ear/output/mix", (Arg("dry", "n", "0-4"), Arg("wet", "n", "0-4")), _mix, "/ear/done",
        "Output levels: dry (the input passed through) and wet (the sonification).", "audio", coalesce=True,
        scene="glide",
    ),
    Command(
        "/ear/onset/threshold", (Arg("db", "n", "0-60, default 9"),), _onset_threshold, "/ear/done",
        "How far (dB) a block's power must rise above the recent level to be an onset.", "audio", coalesce=True,
        scene="glide",
    ),
)
