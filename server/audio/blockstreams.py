"""Streams at the block rate, sent from inside the audio process the moment a block is computed.

``level`` (RMS, peak), ``onset`` (strength in dB above the recent level, and its age: seconds
from the attack to the send) and ``envelope`` never wait for the resampler, the ear or a poll:
the audio process computes them from each block of input (after gain) and sends UDP at once.
Subscriptions arrive from the server over the audio process's control pipe as a whole table
(:class:`BlockSubscription`); the block hook only reads the table it finds, so a change never
makes the audio wait.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import numpy as np

from ..osc import bundle, message
from .levels import VALUES, Envelope, Onsets

ROOT = "/ear"


@dataclass(frozen=True)
class BlockSubscription:
    """One subscriber's block-rate streams, as the server's subscriber table says."""

    address: tuple[str, int]
    format: str = "list"
    bundled: bool = False
    rates: tuple[tuple[str, float], ...] = ()
    """(stream, messages per second); onsets are events: the rate caps how often they are sent."""


@dataclass
class _Due:
    period: float
    """Blocks per message."""
    wait: float = 0.0
    sumsq: float = 0.0
    peak: float = 0.0
    blocks: int = 0


@dataclass
class _Sub:
    spec: BlockSubscription
    due: dict[str, _Due] = field(default_factory=dict)


class BlockStreams:
    def __init__(self, sample_rate: int, block: int, sock: socket.socket | None = None) -> None:
        """``sock``: where to send from (the server's OSC socket); None: a socket of its own."""
        self.sample_rate, self.block = sample_rate, block
        self.onsets = Onsets(sample_rate, block)
        self.envelope = Envelope(sample_rate, block)
        self.sock = sock if sock is not None else socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)  # the audio thread sends; it must never wait on a socket
        self._subs: list[_Sub] = []
        self.sent = 0
        self.errors = 0

    def set(self, table: list[BlockSubscription]) -> None:
        """Replace the subscriptions (from the control thread: one assignment, read whole by the hook)."""
        block_rate = self.sample_rate / self.block
        subs = []
        for spec in table:
            sub = _Sub(spec)
            for name, rate in spec.rates:
                if name in VALUES and rate > 0:
                    sub.due[name] = _Due(max(1.0, block_rate / rate))
            if sub.due:
                subs.append(sub)
        self._subs = subs

    def on_block(self, block: np.ndarray, now: float) -> None:
        """One block of input, just computed; ``now``: the wall time at the end of the block."""
        subs = self._subs
        if not subs:
            return
        x = block.astype(np.float64)
        sumsq, peak = float(np.dot(x, x)), float(np.max(np.abs(x)))
        envelope = self.envelope.step(x)
        onset = self.onsets.step(x)
        start = now - self.block / self.sample_rate
        for sub in subs:
            out: list[bytes] = []
            for name, due in sub.due.items():
                due.wait -= 1.0
                if name == "onset":
                    if onset is not None and due.wait <= 0.0:
                        due.wait = due.period
                        at = start + onset.offset / self.sample_rate
                        out += self._messages(sub.spec, name, (onset.strength, now - at))
                    continue
                due.sumsq, due.peak, due.blocks = due.sumsq + sumsq, max(due.peak, peak), due.blocks + 1
                if due.wait > 0.0:
                    continue
                due.wait = max(due.wait + due.period, 0.0)
                if name == "level":
                    values: tuple[float, ...] = (float(np.sqrt(due.sumsq / (due.blocks * self.block))), due.peak)
                else:
                    values = (envelope,)
                due.sumsq, due.peak, due.blocks = 0.0, 0.0, 0
                out += self._messages(sub.spec, name, values)
            if out:
                self._send(sub.spec, out, start if onset is None else start + onset.offset / self.sample_rate)

    @staticmethod
    def _messages(spec: BlockSubscription, name: str, values: tuple[float, ...]) -> list[bytes]:
        if spec.format == "list":
            return [message(f"{ROOT}/{name}", *values)]
        return [message(f"{ROOT}/{name}/{n}", v) for n, v in zip(VALUES[name], values, strict=True)]

    def _send(self, spec: BlockSubscription, messages: list[bytes], when: float) -> None:
        packets = [bundle(messages, when)] if spec.bundled else messages
        for packet in packets:
            try:
                self.sock.sendto(packet, spec.address)
                self.sent += 1
            except OSError:  # a vanished subscriber or a full socket buffer: count, never wait
                self.errors += 1
