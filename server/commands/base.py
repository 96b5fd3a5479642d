"""The vocabulary of the command table: arguments, commands, requests, and how arguments are checked.

No torch, no sockets: `earsight oscdoc`, the patch checks and the handler tests import this
without loading an ear.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest, EarsightError
from ..paths import Folders

log = logging.getLogger(__name__)

ROOT = "/ear"
"""Every address starts here."""
Address = tuple[str, int]
Reply = tuple[str, Sequence[object]]
"""An OSC reply: address and arguments."""

SCENE_KINDS = ("", "switch", "glide")
QUANTISE = ("now", "beat", "bar")
"""When a change a beat can time happens: at once, on the next beat, on the next bar (Link's quantum)."""
DEFERRED = object()
"""Returned by a handler that answers later itself (after loading an ear, fitting, rendering)."""

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
    """One OSC command. ``handler(service, request, *args)`` gets the service named ``service``."""

    address: str
    args: tuple[Arg, ...]
    handler: Callable[..., Any]
    reply: str
    doc: str
    service: str = "server"
    coalesce: bool = False
    """A setter: when messages arrive faster than they are applied, a sender's latest one stands
    for those before it (a fader flood), which are counted in ``coalesced``."""
    scene: str = ""
    """What a scene does with this setting: "" nothing (not a setting), "switch" (set at the end of a
    recall's fade) or "glide" (every argument a number, crossfaded over the fade)."""

    def __post_init__(self) -> None:
        if self.scene not in SCENE_KINDS:
            raise ValueError(f"{self.address}: scene must be one of {SCENE_KINDS}")
        if self.scene == "glide" and any(a.type != "n" or a.optional or a.variadic for a in self.args):
            raise ValueError(f"{self.address}: only numbers glide")

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


def key_values(pairs: Mapping[str, object]) -> list[object]:
    """A status dict as OSC arguments: key, value, key, value, ..."""
    return [item for pair in pairs.items() for item in pair]


Send = Callable[[Address, str, Sequence[object]], None]
QUANTISE_ARG = Arg("quantise", "s", "now (default), beat or bar: start on the next beat or bar of the Link session "
                   "(/ear/link; at once while it is off)", optional=True)
"""The last argument of the commands a beat can time: scene recalls, matches, the sonify mode."""


def at_once(quantise: str) -> float:
    """The clock without Link: every boundary is now (a bad name is still refused)."""
    if quantise not in QUANTISE:
        raise BadRequest(f"quantise must be one of {', '.join(QUANTISE)}, got {quantise!r}")
    return 0.0


@dataclass(frozen=True)
class Request:
    """One command being handled: what was sent, by whom, where its answers go, and how to answer later."""

    address: str
    sender: Address
    reply_to: Address
    send: Send
    files: Folders
    """Where names of files given in this request may point (reads and writes are confined)."""
    until: Callable[[str], float] = at_once
    """Seconds to the next boundary :data:`QUANTISE` names (the Link session's beat or bar)."""

    def done(self, *values: object) -> None:
        self.send(self.reply_to, "/ear/done", [self.address, *values])

    def fail(self, reason: str) -> None:
        self.send(self.reply_to, "/ear/fail", [self.address, reason])


def in_background(req: Request, work: Callable[[], Sequence[object]]) -> object:
    """Run slow ``work`` in a thread; it answers /ear/done <address> <its result...> or /ear/fail."""

    def run() -> None:
        try:
            result = work()
        except EarsightError as exc:
            req.fail(str(exc))
            return
        except Exception as exc:  # a bug: logged with its traceback, answered, and the server goes on
            log.exception("%s", req.address)
            req.fail(f"{type(exc).__name__}: {exc}")
            return
        req.done(*result)

    threading.Thread(target=run, name=f"osc {req.address}", daemon=True).start()
    return DEFERRED


def on_the_beat(req: Request, quantise: str | None, work: Callable[[], object]) -> object:
    """Do ``work`` now, or at the next beat or bar (answered /ear/done then, or /ear/fail)."""
    delay = req.until(quantise or "now")
    if delay <= 0:
        work()
        return None

    def later() -> list[object]:
        time.sleep(delay)
        work()
        return []

    return in_background(req, later)
