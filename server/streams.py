"""Subscribers, where their replies go, and the feature streams they receive.

Each subscriber (an address that sent ``/ear/notify``) picks its format: ``list`` (one message
of many float32s per stream and frame: Max, SuperCollider, Pd) or ``flat`` (one message per
value at ``/ear/<stream>/<name>``: TouchDesigner's OSC In CHOP makes each a channel), and
whether a frame's messages come as one timetagged bundle. Sending never blocks the ear: UDP to a
closed port is dropped, counted and logged once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .audio.blockstreams import BlockSubscription
from .commands.base import ROOT
from .ears.base import Ear
from .errors import BadRequest, EarsightError, NotFound
from .features import CLOCK_RATE, STREAMS, FrameContext
from .osc import Address, bundle, message
from .state import EarState

log = logging.getLogger(__name__)

FORMATS = ("list", "flat")
MAX_SUBSCRIBERS = 64
"""More would be a flood of forged senders, not a studio: refused, so memory stays flat."""


@dataclass
class Subscriber:
    address: Address
    format: str = "list"
    bundled: bool = False
    rates: dict[str, float] = field(default_factory=dict)
    """Stream name -> frames per second wanted (0 or absent: off)."""
    next_due: dict[str, float] = field(default_factory=dict)
    sent: int = 0
    errors: int = 0


def _port(port: int) -> int:
    if not 0 < port < 65536:
        raise BadRequest(f"port must be in 1-65535, got {port}")
    return port


class Streams:
    """The subscriber table. ``on_frame`` is called by the ear worker once per frame."""

    def __init__(
        self, send: Callable[[bytes, Address], None], state: EarState, *, block_rate: float = 187.5,
        block_streams: Callable[[list[BlockSubscription]], None] | None = None, track: int = 1,
    ) -> None:
        """``block_streams``: hands the block-rate subscriptions (level, onset, envelope) to the audio
        process. ``track``: whose streams these are: track 1's go to /ear/<stream>, track k's to
        /ear/k/<stream> (the block-rate and clock streams are track 1's only)."""
        self._send = send
        self.state = state
        self.track = track
        self.root = ROOT if track == 1 else f"{ROOT}/{track}"
        self.block_rate = block_rate
        self.block_streams = block_streams
        self._lock = threading.Lock()
        self.subscribers: dict[Address, Subscriber] = {}
        self._reply_to: dict[Address, Address] = {}
        self.send_errors = 0
        state.listen(self._changed)

    # ------------------------------------------------------------ routes and subscriptions

    def route(self, sender: Address) -> Address:
        """Where replies to ``sender`` go: the port it subscribed with, else its own."""
        return self._reply_to.get(sender, sender)

    def routes(self, sender: Address) -> bool:
        """Whether ``sender`` subscribed here (its replies go where it asked)."""
        return sender in self._reply_to

    def notify(self, sender: Address, port: int | None, fmt: str = "list", bundled: bool = False) -> None:
        target = (sender[0], _port(port)) if port else sender
        old = self._reply_to.get(sender)
        if old is not None and old != target and old in self.subscribers:
            self.unsubscribe(old)
        self.subscribe(target, fmt, bundled)
        self._reply_to[sender] = target

    def _subscriber(self, sender: Address, port: int | None) -> Address:
        return self.route(sender) if port is None else (sender[0], _port(port))

    def unnotify(self, sender: Address, port: int | None = None) -> None:
        self.unsubscribe(self._subscriber(sender, port))
        if port is None:
            self._reply_to.pop(sender, None)

    def set_stream(self, sender: Address, name: str, rate: float, port: int | None = None) -> None:
        rate = self._rate(name, rate)
        target = self._subscriber(sender, port)
        if target not in self.subscribers:
            self.subscribe(target)
        self.set_rate(target, name, rate)

    def _rate(self, name: str, rate: float) -> float:
        """``rate`` checked against the stream and the ear, and capped at what the stream can give."""
        spec = STREAMS.get(name)
        if spec is None:
            raise NotFound(f"unknown stream {name!r} (streams: {', '.join(STREAMS)})")
        if rate < 0:
            raise BadRequest(f"rate must be >= 0, got {rate:g}")
        if self.track != 1 and (spec.block or spec.clock):
            raise BadRequest(f"the {name} stream is track 1's: /ear/stream {name}")
        ear = self.state.ear
        reason = spec.check(ear)
        if rate > 0 and reason:
            raise BadRequest(reason)
        return min(rate, self.block_rate if spec.block else CLOCK_RATE if spec.clock else ear.frame_rate)

    def subscriptions(self) -> list[dict[str, object]]:
        """Every subscriber: where, its format, and its streams' rates (for scenes)."""
        with self._lock:
            return [{"host": a[0], "port": a[1], "format": s.format, "bundle": int(s.bundled), "streams": dict(s.rates)}
                    for a, s in self.subscribers.items()]

    def restore(self, subscriptions: list[dict[str, Any]]) -> None:
        """Give each subscriber of :meth:`subscriptions` its format and exactly its streams (subscribing it
        if needed); subscribers not in the list keep theirs. Checks everything before changing anything."""
        wanted: list[tuple[Address, str, bool, dict[str, float]]] = []
        for sub in subscriptions:
            fmt, streams = str(sub["format"]), dict(sub["streams"])
            if fmt not in FORMATS:
                raise BadRequest(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
            address = (str(sub["host"]), _port(int(sub["port"])))
            wanted.append((address, fmt, bool(sub["bundle"]), {n: self._rate(n, float(r)) for n, r in streams.items()}))
        for address, fmt, bundled, rates in wanted:
            self.subscribe(address, fmt, bundled)
            with self._lock:
                sub_now = self.subscribers[address]
                sub_now.rates = {n: r for n, r in rates.items() if r > 0}
                sub_now.next_due.clear()
        self._push_block()

    def subscribe(self, address: Address, fmt: str = "list", bundled: bool = False) -> Subscriber:
        if fmt not in FORMATS:
            raise BadRequest(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
        with self._lock:
            sub = self.subscribers.get(address)
            if sub is None:
                if len(self.subscribers) >= MAX_SUBSCRIBERS:
                    raise BadRequest(f"{MAX_SUBSCRIBERS} subscribers already: /ear/notify/off one first")
                sub = self.subscribers[address] = Subscriber(address)
            changed = (sub.format, sub.bundled) != (fmt, bundled)
            sub.format, sub.bundled = fmt, bundled
        if changed:
            self._push_block()
        return sub

    def unsubscribe(self, address: Address) -> None:
        with self._lock:
            if self.subscribers.pop(address, None) is None:
                raise NotFound(f"{address[0]}:{address[1]} is not subscribed")
        self._push_block()

    def set_rate(self, address: Address, stream: str, rate: float) -> None:
        with self._lock:
            sub = self.subscribers.get(address)
            if sub is None:
                raise NotFound(f"{address[0]}:{address[1]} is not subscribed: send /ear/notify first")
            if rate > 0:
                sub.rates[stream] = rate
            else:
                sub.rates.pop(stream, None)
            sub.next_due.pop(stream, None)
        if STREAMS[stream].block:
            self._push_block()

    def block_table(self) -> list[BlockSubscription]:
        """The block-rate streams each subscriber wants, as the audio process takes them."""
        with self._lock:
            return [
                BlockSubscription(sub.address, sub.format, sub.bundled, rates)
                for sub in self.subscribers.values()
                if (rates := tuple((n, r) for n, r in sub.rates.items() if STREAMS[n].block))
            ]

    def _push_block(self) -> None:
        if self.block_streams is not None:
            self.block_streams(self.block_table())

    def _changed(self, what: str) -> None:
        if what != "ear":
            return
        ear = self.state.ear
        with self._lock:  # a stream the new ear cannot give is turned off for everyone
            for name, spec in STREAMS.items():
                if spec.check(ear):
                    for sub in self.subscribers.values():
                        sub.rates.pop(name, None)

    # ------------------------------------------------------------ frames out

    def wanted(self, now: float) -> set[str]:
        """Streams some subscriber is due to receive at ``now``."""
        with self._lock:
            return {
                name
                for sub in self.subscribers.values()
                for name in sub.rates
                if now >= sub.next_due.get(name, 0.0) and not STREAMS[name].block and not STREAMS[name].clock
            }

    def on_frame(self, ear: Ear, frame: dict[str, np.ndarray], audio: np.ndarray, when: float) -> None:
        """Compute the due streams of one frame (``audio``: the hop that completed it) and send them."""
        wanted = self.wanted(when)
        if not wanted:
            return
        state = self.state
        ctx = FrameContext(ear, frame, audio, when, state.selection, state.top, state.embedding)
        values: dict[str, tuple[list[str], np.ndarray]] = {}
        for name in wanted:
            spec = STREAMS[name]
            if spec.check(ear):
                continue
            try:
                vals = spec.compute(ctx)
                values[name] = (spec.names(ear, ctx.selection)[: len(vals)], vals)
            except EarsightError as exc:
                log.warning("stream %s: %s", name, exc)
        self.publish(when, values)

    def on_clock(self, when: float, values: np.ndarray) -> None:
        """A tick of the Link clock: the beat stream's values (beat, phase, tempo) for whoever is due."""
        self.publish(when, {"beat": (["beat", "phase", "tempo"], values)})

    def publish(self, now: float, values: dict[str, tuple[list[str], np.ndarray]]) -> None:
        """Send each due stream to each subscriber in its format. ``values``: stream -> (names, values)."""
        with self._lock:
            subs = list(self.subscribers.values())
        for sub in subs:
            messages: list[bytes] = []
            for name, rate in list(sub.rates.items()):
                if name not in values or now < sub.next_due.get(name, 0.0):
                    continue
                # Due times step by the period, so the average rate is exact; skip ahead after a stall.
                due = max(sub.next_due.get(name, now), now - 1.0 / rate) + 1.0 / rate
                sub.next_due[name] = due
                names, vals = values[name]
                if sub.format == "list":
                    messages.append(message(f"{self.root}/{name}", *[float(v) for v in vals]))
                else:
                    messages.extend(message(f"{self.root}/{name}/{n}", float(v)) for n, v in zip(names, vals, strict=True))
            if not messages:
                continue
            packets = [bundle(messages, now)] if sub.bundled else messages
            for packet in packets:
                self._deliver(sub, packet)

    def _deliver(self, sub: Subscriber, packet: bytes) -> None:
        try:
            self._send(packet, sub.address)
            sub.sent += 1
        except OSError as exc:  # a vanished subscriber: count, log the first time, carry on
            sub.errors += 1
            self.send_errors += 1
            if sub.errors == 1:
                log.warning("cannot send to %s:%d: %s", sub.address[0], sub.address[1], exc)
