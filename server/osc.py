"""OSC transport: one UDP socket, a receiver, a dispatcher, a scheduler for future bundles, encoding.

What messages mean is decided in :mod:`earsight.commands`. The receiver only reads datagrams
into a bounded inbox, so a slow handler or a parse never leaves the kernel's queue to overflow;
the dispatcher parses and applies them. When messages arrive faster than they are applied, a
flood of one setter from one sender (``coalesce``: a fader) is applied at its latest value and
the skipped ones are counted, never lost silently. Nothing a datagram holds may stop a thread:
every error is caught, counted and answered with ``/ear/fail`` (python-osc's parser raises
``UnicodeDecodeError``, ``IndexError``, ``struct.error`` ... on hostile input, not only
``ParseError``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
from pythonosc.osc_message import OscMessage
from pythonosc.osc_packet import OscPacket
from pythonosc.parsing import osc_types

from .ratelimit import RateLimit
from .supervise import Supervisor

log = logging.getLogger(__name__)

Address = tuple[str, int]
RCVBUF = 4 << 20  # bursts of tens of thousands of messages must not overflow the kernel's queue
MAX_INBOX = 8 << 20
"""Bytes of datagrams read but not yet applied; beyond it they are dropped and counted."""
INBOX_OVERHEAD = 100
"""Bytes counted per queued datagram beside its payload (a flood of empty packets is not free)."""
BATCH = 4096
"""Datagrams the dispatcher takes from the inbox at once (coalescing happens within a batch)."""
MAX_SCHEDULED = 4096
"""Messages of future bundles waiting for their time; more are refused with /ear/fail."""
MAX_AHEAD = 300.0
"""How far ahead (s) a bundle's timetag may lie: a phrase or a scene, not a flood parked in memory."""
FAILS_PER_SECOND = 50.0
"""/ear/fail answers to one address per second (a burst of twice that is let through): a flood of
bad packets with a forged sender must not turn the server into an amplifier."""


def _padded(raw: bytes) -> bytes:
    """An OSC string: NUL-terminated, padded to a multiple of four bytes."""
    return raw + b"\0" * (4 - len(raw) % 4)


_INT32 = struct.Struct(">i")
_FLOAT32 = struct.Struct(">f")
_INT64 = struct.Struct(">q")


def message(address: str, *args: object) -> bytes:
    """An OSC message; numbers go as float32 or int32 (Max reads doubles as 0); an integer beyond
    int32 (a counter after weeks) as int64."""
    tags = [","]
    data = []
    for arg in args:
        if isinstance(arg, (bool, int, np.integer)):
            value = int(arg)
            if -(2**31) <= value < 2**31:
                tags.append("i")
                data.append(_INT32.pack(value))
            else:
                tags.append("h")
                data.append(_INT64.pack(value))
        elif isinstance(arg, (float, np.floating)):
            tags.append("f")
            data.append(_FLOAT32.pack(float(arg)))
        else:
            tags.append("s")
            data.append(_padded(str(arg).encode()))
    return b"".join([_padded(address.encode()), _padded("".join(tags).encode()), *data])


def bundle(messages: list[bytes], when: float) -> bytes:
    """An OSC bundle of encoded messages, timetagged ``when`` (seconds since the Unix epoch)."""
    parts = [b"#bundle\0", osc_types.write_date(when)]
    for m in messages:
        parts += [struct.pack(">i", len(m)), m]
    return b"".join(parts)


@dataclass(frozen=True)
class Incoming:
    address: str
    args: tuple[object, ...]
    sender: Address
    time: float
    """When it is to be applied (the bundle's timetag, or arrival)."""


class OscServer:
    """Receives on one UDP socket and replies from it (sclang matches replies by that port)."""

    def __init__(
        self, host: str, port: int, handle: Callable[[Incoming], None], *, coalesce: Collection[str] = ()
    ) -> None:
        """``coalesce``: addresses whose latest message stands for the ones before it (setters)."""
        self.handle = handle
        self.coalescible = frozenset(a.encode() for a in coalesce)
        self.route: Callable[[Address], Address] = lambda sender: sender
        """Where replies to a sender go (it may have registered another port)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            self.sock.bind((host, port))
        except BaseException:
            self.sock.close()
            raise
        self.sock.settimeout(0.2)
        self.address: Address = self.sock.getsockname()
        self.received = 0
        self.malformed = 0
        self.errors = 0
        """Datagrams whose handling raised (answered /ear/fail; the receiver goes on)."""
        self.refused = 0
        """Future messages refused: too many waiting, or too far ahead."""
        self.dropped = 0
        """Datagrams dropped because the inbox was full (logged; the dispatcher was far behind)."""
        self.coalesced = 0
        """Setter messages superseded by a later one of the same sender before they were applied."""
        self.inbox_peak = 0
        """The most bytes the inbox has held: how far behind the dispatcher fell."""
        self.applied = 0
        """Datagrams the dispatcher has taken from the inbox (parsed, coalesced or failed)."""
        self._inbox: queue.SimpleQueue[tuple[bytes, Address]] = queue.SimpleQueue()
        self._inbox_in = 0  # bytes put (written by the receiver only) ...
        self._inbox_out = 0  # ... and taken (by the dispatcher only): no lock on the hot path
        self.fail_limit = RateLimit(FAILS_PER_SECOND, 2 * FAILS_PER_SECOND)
        """/ear/fail answers per address (``suppressed`` counts those not sent)."""
        self._log_limit = RateLimit(10.0, 20.0)
        self._running = False
        self._threads: list[threading.Thread] = []
        self.supervisor = Supervisor()
        self._queue: list[tuple[float, int, Incoming]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()

    def start(self, supervisor: Supervisor | None = None) -> None:
        self._running = True
        self.supervisor = supervisor or self.supervisor
        loops = ((self._receive, "osc-receive"), (self._dispatch, "osc-dispatch"), (self._schedule, "osc-scheduler"))
        for target, name in loops:
            self._threads.append(self.supervisor.spawn(name, target, lambda: self._running))

    def stop(self) -> None:
        self._running = False
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(2.0)
        self.sock.close()

    def send(self, packet: bytes, address: Address) -> None:
        self.sock.sendto(packet, address)

    def reply(self, to: Address, address: str, args: Sequence[object]) -> None:
        """Send one message; a vanished receiver is logged, never raised; fails are rate-limited per address."""
        if address == "/ear/fail" and not self.fail_limit.allow(to):
            return
        try:
            self.send(message(address, *args), to)
        except OSError as exc:
            log.debug("cannot answer %s:%d: %s", to[0], to[1], exc)

    @property
    def inbox_bytes(self) -> int:
        return self._inbox_in - self._inbox_out

    def _receive(self) -> None:
        """Read datagrams into the inbox, nothing else: this loop must keep up with any sender."""
        while self._running:
            try:
                data, sender = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket: not ours to stop on
                if not self._running:
                    return
                log.debug("recvfrom: %s", exc)
                continue
            self.received += 1
            size = len(data) + INBOX_OVERHEAD
            if self._inbox_in - self._inbox_out + size > MAX_INBOX:
                self.dropped += 1
                if self._log_limit.allow("dropped"):
                    log.warning("OSC inbox full (%d MB waiting): datagram from %s:%d dropped", MAX_INBOX >> 20, *sender)
                continue
            self._inbox_in += size
            self._inbox.put((data, sender))
            waiting = self._inbox_in - self._inbox_out
            if waiting > self.inbox_peak:
                self.inbox_peak = waiting

    def _dispatch(self) -> None:
        """Take what arrived in batches, coalesce floods of one setter, parse and apply the rest."""
        while self._running:
            try:
                batch = [self._inbox.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(batch) < BATCH:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            self._inbox_out += sum(len(data) for data, _ in batch) + INBOX_OVERHEAD * len(batch)
            self.applied += len(batch)
            if len(batch) > 1 and self.coalescible:
                batch = self._coalesce(batch)
            for data, sender in batch:
                try:
                    self._datagram(data, sender)
                except Exception as exc:  # nothing a datagram holds may stop the dispatcher
                    self.errors += 1
                    log.exception("datagram from %s:%d", *sender)
                    self._reply_fail(sender, "/ear", f"internal error: {type(exc).__name__}: {exc}")

    def _coalesce(self, batch: list[tuple[bytes, Address]]) -> list[tuple[bytes, Address]]:
        """Keep only the last message of each (setter address, sender) in ``batch``."""

        def key(data: bytes, sender: Address) -> tuple[bytes, Address] | None:
            if data[:1] != b"/":
                return None
            address = data[: data.find(b"\0")]
            return (address, sender) if address in self.coalescible else None

        last = {}
        for i, (data, sender) in enumerate(batch):
            k = key(data, sender)
            if k is not None:
                last[k] = i
        if not last:
            return batch
        kept = [item for i, item in enumerate(batch) if last.get(key(*item), i) == i]  # type: ignore[arg-type]
        self.coalesced += len(batch) - len(kept)
        return kept

    def _datagram(self, data: bytes, sender: Address) -> None:
        try:
            if data[:1] == b"/":  # a plain message, the common case: parsed without the packet layer
                parsed = OscMessage(data)
                timed = [(parsed.address, tuple(parsed.params), time.time())]
            else:
                packet = OscPacket(data)
                timed = [(t.message.address, tuple(t.message.params), t.time) for t in packet.messages]
        except Exception as exc:  # ParseError, UnicodeDecodeError, IndexError, struct.error, ...
            self.malformed += 1
            if self._log_limit.allow("malformed"):
                log.warning("malformed packet from %s:%d (%d bytes): %s", *sender, len(data), exc)
            self._reply_fail(sender, "/ear", f"malformed OSC packet: {type(exc).__name__}: {exc}")
            return
        now = time.time()
        for address, args, when in timed:
            item = Incoming(address, args, sender, when)
            if when <= now + 0.001:
                self._apply(item)
            elif when > now + MAX_AHEAD:
                self.refused += 1
                self._reply_fail(sender, address, f"timetag {when - now:.0f} s ahead: at most {MAX_AHEAD:g} s")
            else:
                with self._cond:  # future bundle: the scheduler applies it on time
                    full = len(self._queue) >= MAX_SCHEDULED
                    if not full:
                        heapq.heappush(self._queue, (when, next(self._seq), item))
                        self._cond.notify()
                if full:
                    self.refused += 1
                    self._reply_fail(sender, address, f"{MAX_SCHEDULED} scheduled messages are waiting already")

    def _schedule(self) -> None:
        with self._cond:
            while self._running:
                if not self._queue:
                    self._cond.wait(0.5)
                    continue
                when = self._queue[0][0]
                delay = when - time.time()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                _, _, item = heapq.heappop(self._queue)
                self._cond.release()
                try:
                    self._apply(item)
                finally:
                    self._cond.acquire()

    def _apply(self, item: Incoming) -> None:
        try:
            self.handle(item)
        except Exception as exc:  # a bug in a handler must not stop the server: answer and log
            self.errors += 1
            log.exception("handler for %s failed", item.address)
            self._reply_fail(item.sender, item.address, f"internal error: {type(exc).__name__}: {exc}")

    def _reply_fail(self, to: Address, address: str, reason: str) -> None:
        try:
            self.reply(self.route(to), "/ear/fail", [address, reason])
        except Exception:  # the route itself failed: answer the sender directly
            self.reply(to, "/ear/fail", [address, reason])
