"""Subscribers and the feature streams they receive.

Each subscriber (an address that sent ``/ear/notify``) picks its format: ``list`` (one message
of many float32s per stream and frame: Max, SuperCollider, Pd) or ``flat`` (one message per
value at ``/ear/<stream>/<name>``: TouchDesigner's OSC In CHOP makes each a channel), and
whether a frame's messages come as one timetagged bundle. Sending never blocks the ear: UDP to a
closed port is dropped, counted and logged once.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.parsing import osc_types

from .errors import BadRequest, NotFound

log = logging.getLogger(__name__)

Address = tuple[str, int]
FORMATS = ("list", "flat")
ROOT = "/ear"


def message(address: str, *args: object) -> bytes:
    """An OSC message; numbers always go as float32 or int32 (Max reads doubles as 0)."""
    builder = OscMessageBuilder(address)
    for arg in args:
        if isinstance(arg, bool):
            builder.add_arg(int(arg), "i")
        elif isinstance(arg, (int, np.integer)):
            builder.add_arg(int(arg), "i")
        elif isinstance(arg, (float, np.floating)):
            builder.add_arg(float(arg), "f")
        else:
            builder.add_arg(str(arg), "s")
    return builder.build().dgram


def bundle(messages: list[bytes], when: float) -> bytes:
    """An OSC bundle of encoded messages, timetagged ``when`` (seconds since the Unix epoch)."""
    parts = [b"#bundle\0", osc_types.write_date(when)]
    for m in messages:
        parts += [struct.pack(">i", len(m)), m]
    return b"".join(parts)


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


class Streams:
    """The subscriber table; ``publish`` is called by the ear worker once per frame."""

    def __init__(self, send: Callable[[bytes, Address], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self.subscribers: dict[Address, Subscriber] = {}
        self.send_errors = 0

    def subscribe(self, address: Address, fmt: str = "list", bundled: bool = False) -> Subscriber:
        if fmt not in FORMATS:
            raise BadRequest(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
        with self._lock:
            sub = self.subscribers.get(address)
            if sub is None:
                sub = self.subscribers[address] = Subscriber(address)
            sub.format, sub.bundled = fmt, bundled
            return sub

    def unsubscribe(self, address: Address) -> None:
        with self._lock:
            if self.subscribers.pop(address, None) is None:
                raise NotFound(f"{address[0]}:{address[1]} is not subscribed")

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

    def clear_stream(self, stream: str) -> None:
        """Turn a stream off for everyone (e.g. the new ear cannot give it)."""
        with self._lock:
            for sub in self.subscribers.values():
                sub.rates.pop(stream, None)

    def wanted(self, now: float) -> set[str]:
        """Streams some subscriber is due to receive at ``now``."""
        with self._lock:
            return {
                name
                for sub in self.subscribers.values()
                for name in sub.rates
                if now >= sub.next_due.get(name, 0.0)
            }

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
                    messages.append(message(f"{ROOT}/{name}", *[float(v) for v in vals]))
                else:
                    messages.extend(message(f"{ROOT}/{name}/{n}", float(v)) for n, v in zip(names, vals, strict=True))
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
