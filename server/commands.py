"""THE table of OSC commands: address, arguments, handler, reply, doc.

The README's API reference, the patches' help and the tests are generated from :data:`COMMANDS`.
Every command answers: its reply (``/ear/pong``, ``/ear/status.reply``, ...) or ``/ear/done
<address>``; a failure answers ``/ear/fail <address> <reason>``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import BadRequest, EarsightError

if TYPE_CHECKING:
    from .engine import Engine, Request

Reply = tuple[str, Sequence[object]]
"""An OSC reply: address and arguments."""

DEFERRED = object()
"""Returned by a handler that will answer later itself (e.g. after loading an ear)."""

TYPES = {
    "n": "number (int or float)",
    "i": "integer (a whole float is accepted: Pd sends only floats)",
    "s": "string",
    "a": "string or number",
}


@dataclass(frozen=True)
class Arg:
    name: str
    type: str
    doc: str = ""
    optional: bool = False
    variadic: bool = False

    def signature(self) -> str:
        text = f"{self.name}:{self.type}" + ("..." if self.variadic else "")
        return f"[{text}]" if self.optional else f"<{text}>"


@dataclass(frozen=True)
class Command:
    address: str
    args: tuple[Arg, ...]
    handler: Callable[..., Any]
    reply: str
    doc: str

    @property
    def typetag(self) -> str:
        """Argument types as one string, e.g. ``si*`` (``?`` marks optional, ``*`` repeated)."""
        return "".join(a.type + ("*" if a.variadic else "?" if a.optional else "") for a in self.args)

    def signature(self) -> str:
        return " ".join([self.address, *(a.signature() for a in self.args)])

    def coerce(self, values: Sequence[object]) -> list[object]:
        """Check and convert arguments; raises BadRequest with a reason a person can act on."""
        out: list[object] = []
        values = list(values)
        for i, arg in enumerate(self.args):
            if arg.variadic:
                out.extend(_convert(arg, v) for v in values[i:])
                return out
            if i >= len(values):
                if arg.optional:
                    out.append(None)
                    continue
                raise BadRequest(f"missing argument {arg.name} ({TYPES[arg.type]}); usage: {self.signature()}")
            out.append(_convert(arg, values[i]))
        if len(values) > len(self.args):
            raise BadRequest(f"too many arguments ({len(values)}); usage: {self.signature()}")
        return out


def _convert(arg: Arg, value: object) -> object:
    if arg.type == "s":
        if isinstance(value, str):
            return value
        raise BadRequest(f"{arg.name} must be a string, got {_kind(value)}")
    if arg.type == "a":
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return value
        raise BadRequest(f"{arg.name} must be a string or number, got {_kind(value)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{arg.name} must be a number, got {_kind(value)}")
    if not math.isfinite(value):
        raise BadRequest(f"{arg.name} must be finite, got {value}")
    if arg.type == "i":
        if float(value) != int(value):
            raise BadRequest(f"{arg.name} must be a whole number, got {value}")
        return int(value)
    return float(value)


def _kind(value: object) -> str:
    return {str: "a string", int: "an int", float: "a float", bytes: "a blob"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------- handlers (thin: the engine does the work)


def _in_background(engine: Engine, req: Request, work: Callable[[], list[object]]) -> object:
    """Run slow ``work`` in a thread; it answers /ear/done <address> <its result...> or /ear/fail."""

    def run() -> None:
        try:
            result = work()
        except Exception as exc:  # answered as /ear/fail; the server goes on
            reason = str(exc) if isinstance(exc, EarsightError) else f"{type(exc).__name__}: {exc}"
            engine.fail(req.reply_to, req.address, reason)
            return
        engine.send(req.reply_to, "/ear/done", req.address, *result)

    threading.Thread(target=run, name=f"osc {req.address}", daemon=True).start()
    return DEFERRED


def _ping(engine: Engine, req: Request) -> list[Reply]:
    return [("/ear/pong", [])]


def _status(engine: Engine, req: Request) -> list[Reply]:
    flat: list[object] = []
    for key, value in engine.status().items():
        flat += [key, value]
    return [("/ear/status.reply", flat)]


def _sync(engine: Engine, req: Request, ident: int) -> list[Reply]:
    return [("/ear/synced", [ident])]


def _notify(engine: Engine, req: Request, port: int | None, fmt: str | None, bundled: int | None) -> None:
    engine.notify(req.sender, port, fmt or "list", bool(bundled))


def _unnotify(engine: Engine, req: Request, port: int | None) -> None:
    engine.unnotify(req.sender, port)


def _stream(engine: Engine, req: Request, name: str, rate: float, port: int | None) -> None:
    engine.set_stream(req.sender, name, rate, port)


def _select(engine: Engine, req: Request, layer: str, *channels: int) -> None:
    engine.select(layer, list(channels))


def _input(engine: Engine, req: Request, kind: str, name: object, value: float | None) -> None:
    engine.set_input(kind, name, value)


def _gain(engine: Engine, req: Request, gain: float) -> None:
    engine.audio.set_gain(gain)


def _mix(engine: Engine, req: Request, dry: float, wet: float) -> None:
    engine.audio.set_mix(dry, wet)


def _model_list(engine: Engine, req: Request) -> list[Reply]:
    from .ears import registry

    return [("/ear/model/list.reply", registry.names())]


def _model_load(engine: Engine, req: Request, name: str) -> object:
    engine.load_ear(name, req)
    return DEFERRED


def _model_info(engine: Engine, req: Request) -> list[Reply]:
    return [("/ear/model/info.reply", engine.model_info())]


def _top(engine: Engine, req: Request, count: int, threshold: float) -> None:
    engine.set_top(count, threshold)


def _embed_fit(engine: Engine, req: Request, layer: str, seconds: float | None, dims: int | None) -> object:
    engine.fit_embedding(layer, seconds or 10.0, dims or 10, req)
    return DEFERRED


def _view(engine: Engine, req: Request, name: str) -> None:
    engine.view().set("view", name)


def _colormap(engine: Engine, req: Request, name: str) -> None:
    engine.view().set("colormap", name)


def _highlight(engine: Engine, req: Request, layer: str, *channels: int) -> None:
    engine.view().highlight(layer, list(channels))


def _shuffle(engine: Engine, req: Request, seed: int | None) -> list[Reply]:
    return [("/ear/done", [req.address, *engine.view().shuffle(seed)])]


def _snapshot(engine: Engine, req: Request, name: str | None) -> list[Reply]:
    return [("/ear/done", [req.address, str(engine.view().snapshot(name))])]


def _size(engine: Engine, req: Request, width: int, height: int) -> None:
    engine.view().set_size(width, height)


def _relayout(engine: Engine, req: Request, seed: int) -> object:
    display = engine.view()

    def relayout() -> list[object]:
        display.relayout(seed)
        return [seed]

    return _in_background(engine, req, relayout)  # a layout takes seconds


def _fps(engine: Engine, req: Request, fps: float) -> None:
    engine.view().set_fps(fps)


def _url(engine: Engine, req: Request) -> list[Reply]:
    return [("/ear/view/url.reply", [engine.view().server.url])]


COMMANDS: tuple[Command, ...] = (
    Command("/ear/ping", (), _ping, "/ear/pong", "Is the server there? Answers /ear/pong."),
    Command(
        "/ear/status", (), _status, "/ear/status.reply",
        "Key-value pairs: ear, backend, input, sample_rate, block, frame_rate, latency_ms, cpu, xruns, "
        "late_blocks, audio_restarts, dropped, lag_ms, ear_load (busy fraction of the ear worker since the last status), frames, subscribers, received, malformed.",
    ),
    Command(
        "/ear/sync", (Arg("id", "i"),), _sync, "/ear/synced",
        "Answers /ear/synced <id> once every earlier command has been handled (SuperCollider's /sync).",
    ),
    Command(
        "/ear/notify",
        (
            Arg("port", "i", "where streams and replies go (default: the sender's port)", optional=True),
            Arg("format", "s", "list (one message of floats per stream) or flat (/ear/<stream>/<name> per value)", optional=True),
            Arg("bundle", "i", "1: each frame's messages in one timetagged bundle", optional=True),
        ),
        _notify, "/ear/done",
        "Subscribe the sender (its host, at port) to streams; replies go there too.",
    ),
    Command(
        "/ear/notify/off", (Arg("port", "i", "the port given to /ear/notify (default: the sender's)", optional=True),),
        _unnotify, "/ear/done", "Unsubscribe: no more streams.",
    ),
    Command(
        "/ear/stream",
        (
            Arg("name", "s", "act, layers, pitch, level, tags, top or embed"),
            Arg("rate", "n", "frames per second (capped at the ear's frame rate); 0 turns it off"),
            Arg("port", "i", "the subscriber's port, for one-shot senders like oscsend (default: the sender's)", optional=True),
        ),
        _stream, "/ear/done",
        "Turn a stream on or off for the sender (subscribing it with defaults if needed). "
        "Values arrive at /ear/<name> (list) or /ear/<name>/<value> (flat).",
    ),
    Command(
        "/ear/select",
        (Arg("layer", "s", "a layer of the ear (see /ear/model/info)"), Arg("channels", "i", "channel numbers; none: all", variadic=True)),
        _select, "/ear/done",
        "Choose the neurons of the act stream (and the highlighted ones in the view).",
    ),
    Command(
        "/ear/input",
        (
            Arg("kind", "s", "demo, device, file, test or silence"),
            Arg("name", "a", "file path, or test signal: sine, clicks, noise, sweep", optional=True),
            Arg("value", "n", "test signal parameter: Hz (sine), clicks per second, amplitude (noise), seconds (sweep)", optional=True),
        ),
        _input, "/ear/done",
        "What the server listens to. Files (wav, aif, flac, ogg, mp3) loop.",
    ),
    Command("/ear/input/gain", (Arg("gain", "n", "0-16, linear"),), _gain, "/ear/done", "Input gain (smoothed)."),
    Command(
        "/ear/output/mix", (Arg("dry", "n", "0-4"), Arg("wet", "n", "0-4")), _mix, "/ear/done",
        "Output levels: dry (the input passed through) and wet (the sonification).",
    ),
    Command("/ear/model/list", (), _model_list, "/ear/model/list.reply", "The names of the ears."),
    Command(
        "/ear/model/load", (Arg("name", "s", "an ear from /ear/model/list"),), _model_load, "/ear/done",
        "Switch ears while audio plays; /ear/done once the new ear is listening.",
    ),
    Command(
        "/ear/model/info", (), _model_info, "/ear/model/info.reply",
        "name, sample_rate, frame_rate, latency_ms, labels (count), layers (count), then per layer: name, channels, units.",
    ),
    Command(
        "/ear/top", (Arg("count", "i", "at most this many labels (P)"), Arg("threshold", "n", "0-1: each at least this probable")),
        _top, "/ear/done",
        "The selection of the top stream (audio-visual hallucinations: the P most probable labels above a threshold).",
    ),
    Command(
        "/ear/embed/fit",
        (
            Arg("layer", "s", "the layer to encode"),
            Arg("seconds", "n", "how much audio to fit on, from now (default 10)", optional=True),
            Arg("dims", "i", "dimensions (default 10, at most 32)", optional=True),
        ),
        _embed_fit, "/ear/done",
        "Fit the embed stream (PCA of a layer, each dimension scaled to 0-1) on the coming seconds; "
        "answers /ear/done /ear/embed/fit <layer> <dims> when fitted.",
    ),
)

def _sonify(engine: Engine, req: Request, mode: str) -> None:
    engine.sonifier.set_mode(mode)


def _sonify_render(engine: Engine, req: Request, seconds: float, name: str, overwrite: int | None) -> object:
    # (the sonifier checks seconds: at most what the server keeps of the input)
    # minutes of optimisation must not hold up the OSC thread
    return _in_background(engine, req, lambda: [engine.sonifier.render(seconds, name, overwrite=bool(overwrite))])


def _sonify_status(engine: Engine, req: Request) -> list[Reply]:
    flat: list[object] = []
    for key, value in engine.sonifier.stats().items():
        flat += [key, value]
    return [("/ear/sonify/status.reply", flat)]


def _sonify_param(name: str) -> Callable[..., None]:
    def handler(engine: Engine, req: Request, value: object) -> None:
        engine.sonifier.set_param(name, value)

    return handler


def _sonify_commands() -> tuple[Command, ...]:
    from .sonify.params import MODES, PARAMS

    commands = [
        Command("/ear/sonify", (Arg("mode", "s", " | ".join(MODES)),), _sonify, "/ear/done",
                "Make audible what the selected neurons hear: dream (optimise the input so they respond more) or auralise "
                "(their feature map run back to a mask on the input's spectrum); mixed into the output (see /ear/output/mix)."),
        Command(
            "/ear/sonify/render",
            (Arg("seconds", "n", "of the most recent input, up to 10 (the server keeps 10 s)"), Arg("name", "s", "a .wav or .flac file (relative: under the cache's renders/)"),
             Arg("overwrite", "i", "1: replace an existing file", optional=True)),
            _sonify_render, "/ear/done",
            "Render the sonification of the last seconds to a file; answers /ear/done /ear/sonify/render <path> when written.",
        ),
        Command("/ear/sonify/status", (), _sonify_status, "/ear/sonify/status.reply",
                "Key-value pairs: mode, steps per second, last activation gain, largest jump at crossfades, ..."),
    ]
    for p in PARAMS:
        limits = f"{p.range[0]:g}-{p.range[1]:g}" if p.range else " | ".join(p.choices or ())
        commands.append(Command(f"/ear/sonify/{p.name}", (Arg("value", p.type, f"{limits} (default {p.default!r})".strip()),),
                                _sonify_param(p.name), "/ear/done", p.doc))
    return tuple(commands)


VIEW_COMMANDS: tuple[Command, ...] = (
    Command("/ear/view", (Arg("name", "s", "layout, hallucination or features"),), _view, "/ear/done",
            "What the picture shows: every neuron laid out, a generative image steered by the tags, or the embed features mapped to shapes."),
    Command("/ear/view/colormap", (Arg("name", "s", "magma, viridis, inferno or gray"),), _colormap, "/ear/done",
            "The colour map of the neurons."),
    Command("/ear/view/highlight", (Arg("layer", "s"), Arg("channels", "i", "none: clear", variadic=True)), _highlight, "/ear/done",
            "Highlight neurons in the picture only (/ear/select highlights and streams)."),
    Command("/ear/view/shuffle", (Arg("seed", "i", "for a repeatable mapping", optional=True),), _shuffle, "/ear/done",
            "Redraw which embed feature drives which visual parameter (10! mappings); answers /ear/done /ear/view/shuffle <permutation...>."),
    Command("/ear/view/snapshot", (Arg("name", "s", "a .png path (relative: under the cache's snapshots/)", optional=True),), _snapshot, "/ear/done",
            "Draw now and save a PNG; answers /ear/done /ear/view/snapshot <path>."),
    Command("/ear/view/size", (Arg("width", "i", "64-3840"), Arg("height", "i", "64-2160")), _size, "/ear/done",
            "Picture size in pixels."),
    Command("/ear/view/fps", (Arg("fps", "n", "1-120"),), _fps, "/ear/done", "Frames per second while someone watches."),
    Command("/ear/view/layout", (Arg("seed", "i", "0 is the shipped layout"),), _relayout, "/ear/done",
            "Lay the neurons out again from another seed (cached per seed; the first time takes seconds)."),
    Command("/ear/view/url", (), _url, "/ear/view/url.reply", "The address of the web page with the live picture."),
)
COMMANDS += VIEW_COMMANDS + _sonify_commands()

BY_ADDRESS: dict[str, Command] = {c.address: c for c in COMMANDS}


def reference_markdown() -> str:
    """The README's OSC reference, generated from the table."""
    lines = [
        "| address | arguments | reply | what it does |",
        "|---|---|---|---|",
    ]
    for c in COMMANDS:
        args = "<br>".join(f"`{a.signature()}` {a.doc}".strip() for a in c.args) or "–"
        lines.append(f"| `{c.address}` | {args} | `{c.reply}` | {c.doc} |")
    lines.append("")
    lines.append("Types: " + "; ".join(f"`{k}` {v}" for k, v in TYPES.items()) + ". "
                 "Every command answers its reply or `/ear/fail <address> <reason>`.")
    return "\n".join(lines)
