"""OSC transport: a UDP socket, a receiving thread, a scheduler for future bundles, pattern matching.

What the messages mean is not decided here but in :mod:`earsight.commands`. Every datagram gets
an answer: a malformed one is answered ``/ear/fail /ear <reason>`` instead of being dropped.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from pythonosc.osc_packet import OscPacket, ParseError

from .streams import Address, message

log = logging.getLogger(__name__)

RCVBUF = 4 << 20  # bursts of tens of thousands of messages must not overflow the kernel's queue


@dataclass(frozen=True)
class Incoming:
    address: str
    args: tuple[object, ...]
    sender: Address
    time: float
    """When it is to be applied (the bundle's timetag, or arrival)."""


@lru_cache(maxsize=1024)
def pattern(address: str) -> re.Pattern[str]:
    """OSC 1.0 address pattern -> regex: ``?``, ``*``, ``[a-z]``, ``[!a]``, ``{x,y}``."""
    out, i = [], 0
    while i < len(address):
        c = address[i]
        if c == "?":
            out.append("[^/]")
        elif c == "*":
            out.append("[^/]*")
        elif c == "[":
            end = address.find("]", i)
            if end < 0:
                raise ValueError(f"unclosed [ in {address!r}")
            body = address[i + 1 : end]
            neg = body.startswith("!")
            body = body[1:] if neg else body
            body = re.sub(r"([\\\]^])", r"\\\1", body)
            out.append(f"[{'^' if neg else ''}{body}]")
            i = end
        elif c == "{":
            end = address.find("}", i)
            if end < 0:
                raise ValueError(f"unclosed {{ in {address!r}")
            out.append("(?:" + "|".join(re.escape(x) for x in address[i + 1 : end].split(",")) + ")")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def is_pattern(address: str) -> bool:
    return any(c in address for c in "?*[{")


class OscServer:
    """Receives on one UDP socket and replies from it (sclang matches replies by that port)."""

    def __init__(self, host: str, port: int, handle: Callable[[Incoming], None]) -> None:
        self.handle = handle
        self.route: Callable[[Address], Address] = lambda sender: sender
        """Where replies to a sender go (it may have registered another port)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.address: Address = self.sock.getsockname()
        self.received = 0
        self.malformed = 0
        self._running = False
        self._threads: list[threading.Thread] = []
        self._queue: list[tuple[float, int, Incoming]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()

    def start(self) -> None:
        self._running = True
        for target, name in ((self._receive, "osc-receive"), (self._schedule, "osc-scheduler")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._running = False
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(2.0)
        self.sock.close()

    def send(self, packet: bytes, address: Address) -> None:
        self.sock.sendto(packet, address)

    def _receive(self) -> None:
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
            self._datagram(data, sender)

    def _datagram(self, data: bytes, sender: Address) -> None:
        try:
            packet = OscPacket(data)
        except ParseError as exc:
            self.malformed += 1
            log.warning("malformed packet from %s:%d (%d bytes): %s", *sender, len(data), exc)
            self._reply_fail(sender, "/ear", f"malformed OSC packet: {exc}")
            return
        now = time.time()
        for timed in packet.messages:
            item = Incoming(timed.message.address, tuple(timed.message.params), sender, timed.time)
            if timed.time > now + 0.001:
                with self._cond:  # future bundle: the scheduler applies it on time
                    heapq.heappush(self._queue, (timed.time, next(self._seq), item))
                    self._cond.notify()
            else:
                self._apply(item)

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
            log.exception("handler for %s failed", item.address)
            self._reply_fail(item.sender, item.address, f"internal error: {type(exc).__name__}: {exc}")

    def _reply_fail(self, to: Address, address: str, reason: str) -> None:
        try:
            self.send(message("/ear/fail", address, reason), self.route(to))
        except OSError as exc:
            log.debug("cannot answer %s:%d: %s", *to, exc)
