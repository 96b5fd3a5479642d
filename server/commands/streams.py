"""Subscribing to streams: where values and replies go, which streams at what rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Arg, Command, Request

if TYPE_CHECKING:
    from ..streams import Streams


def _notify(streams: Streams, req: Request, port: int | None, fmt: str | None, bundled: int | None) -> None:
    streams.notify(req.sender, port, fmt or "list", bool(bundled))


def _unnotify(streams: Streams, req: Request, port: int | None) -> None:
    streams.unnotify(req.sender, port)


def _stream(streams: Streams, req: Request, name: str, rate: float, port: int | None) -> None:
    streams.set_stream(req.sender, name, rate, port)


COMMANDS: tuple[Command, ...] = (
    Command(
        "/ear/notify",
        (
            Arg("port", "i", "where streams and replies go (default: the sender's port)", optional=True),
            Arg("format", "s", "list (one message of floats per stream) or flat (/ear/<stream>/<name> per value)", optional=True),
            Arg("bundle", "i", "1: each frame's messages in one timetagged bundle", optional=True),
        ),
        _notify, "/ear/done",
        "Subscribe the sender (its host, at port) to streams; replies go there too.",
        "streams",
    ),
    Command(
        "/ear/notify/off", (Arg("port", "i", "the port given to /ear/notify (default: the sender's)", optional=True),),
        _unnotify, "/ear/done", "Unsubscribe: no more streams.", "streams",
    ),
    Command(
        "/ear/stream",
        (
            Arg("name", "s", "act, layers, pitch, tags, top or embed (per ear frame); level, onset or envelope (per audio block)"),
            Arg("rate", "n", "messages per second (capped at the ear's frame rate, or the block rate); 0 turns it off"),
            Arg("port", "i", "the subscriber's port, for one-shot senders like oscsend (default: the sender's)", optional=True),
        ),
        _stream, "/ear/done",
        "Turn a stream on or off for the sender (subscribing it with defaults if needed). "
        "Values arrive at /ear/<name> (list) or /ear/<name>/<value> (flat).",
        "streams",
    ),
)
