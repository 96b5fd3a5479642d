"""Dispatch: one incoming message → the commands its address (or pattern) names → their handlers → answers.

Every message is answered: the handler's replies, ``/ear/done <address>``, or ``/ear/fail
<address> <reason>`` (unknown address, wrong arguments, bad values, a missing service, a bug).
Address patterns are matched by python-osc's own OSC 1.0 matcher.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from pythonosc.dispatcher import Dispatcher as _Matcher

from ..errors import EarsightError
from ..paths import Folders
from ..ratelimit import RateLimit
from .base import DEFERRED, Address, Command, Request, Send, at_once

if TYPE_CHECKING:
    from ..osc import Incoming

log = logging.getLogger(__name__)

PATTERN_CHARS = "?*[{"
TRACK_SERVICES = ("state", "ear", "embed", "streams")
"""The services every track has of its own: ``/ear/<track>/<command>`` reaches track ``<track>``'s
(``/ear/select`` is ``/ear/1/select``); the others (audio, view, sonify, ...) are the server's."""
_TRACK = re.compile(r"/ear/(\d{1,3})(/.*)")


def split_track(address: str) -> tuple[int, str]:
    """``/ear/2/select`` -> ``(2, "/ear/select")``; an address without a track is track 1's."""
    if not address[5:6].isdigit():  # nearly every message: no pattern to run
        return 1, address
    m = _TRACK.fullmatch(address)
    return (int(m.group(1)), "/ear" + m.group(2)) if m else (1, address)


def pattern_error(address: str) -> str | None:
    """Why an address pattern is malformed (an unclosed ``[`` or ``{``), or None.

    python-osc's matcher closes an open ``{`` at the end of the address; OSC 1.0 does not say
    what an unclosed bracket means, so we refuse it rather than guess.
    """
    for open_, close in ("[]", "{}"):
        if open_ not in address:  # the common case, a plain address: nothing to scan
            continue
        depth = 0
        for c in address:
            if c == open_:
                if depth:
                    return f"nested {open_} in {address!r}"
                depth = 1
            elif c == close and depth:
                depth = 0
        if depth:
            return f"unclosed {open_} in {address!r}"
    return None


def _never_called(*_: object) -> None:  # python-osc wants a callable; we only use its matcher
    raise AssertionError("not dispatched through python-osc")


class Dispatcher:
    def __init__(
        self,
        table: Sequence[Command],
        services: Mapping[str, object | None],
        send: Send,
        *,
        route: Callable[[Address], Address] = lambda sender: sender,
        unavailable: Mapping[str, str] | None = None,
        folders: Folders | None = None,
    ) -> None:
        """``services``: service name → the object its commands' handlers get (None: not running,
        answered with ``unavailable[name]``). ``route``: where a sender's replies go."""
        self.table = tuple(table)
        self.by_address = {c.address: c for c in self.table}
        self.services = dict(services)
        self.unavailable = dict(unavailable or {})
        self.route = route
        self.folders = folders or Folders()
        self.until: Callable[[str], float] = at_once
        """Seconds to the next beat or bar (the Link service's clock, once it is there)."""
        self.tracks: Sequence[Mapping[str, object]] = ()
        """The :data:`TRACK_SERVICES` of tracks 2, 3, ... (track 1's are in ``services``)."""
        self._send = send
        self._matcher = _Matcher()
        for command in self.table:
            self._matcher.map(command.address, _never_called, command)
        self.failed = 0
        """Commands answered with /ear/fail."""
        self._log_limit = RateLimit(10.0, 20.0)  # a flood of bad requests must not flood the log
        self.errors = 0
        """Handlers that raised something other than an EarsightError (a bug; answered, logged)."""

    def send(self, to: Address, address: str, args: Sequence[object]) -> None:
        if address == "/ear/fail":
            self.failed += 1
            if self._log_limit.allow():
                log.warning("fail %s", " ".join(str(a) for a in args))
        self._send(to, address, args)

    def services_of(self, track: int) -> Mapping[str, object | None] | None:
        """The services a command of track ``track`` reaches: its own :data:`TRACK_SERVICES` and the
        server's others (None: the server has no such track)."""
        if track == 1:
            return self.services
        return {**self.services, **self.tracks[track - 2]} if 2 <= track <= 1 + len(self.tracks) else None

    def commands_for(self, address: str) -> list[Command]:
        if not any(c in address for c in PATTERN_CHARS):
            command = self.by_address.get(address)
            return [command] if command else []
        if pattern_error(address):
            return []
        return [h.args[0] for h in self._matcher.handlers_for_address(address) if h.args]

    def handle(self, item: Incoming) -> None:
        reply_to = self.route(item.sender)
        bad = pattern_error(item.address)
        if bad:
            self.send(reply_to, "/ear/fail", [item.address, f"bad address pattern: {bad}"])
            return
        track, address = split_track(item.address)
        matched = self.commands_for(address)
        if not matched:
            self.send(reply_to, "/ear/fail", [item.address, "unknown command (the README's OSC reference lists them)"])
            return
        services = self.services if address == item.address else self.services_of(track)
        if services is None:
            self.send(reply_to, "/ear/fail", [item.address, f"no track {track} (the server hears "
                                              f"{1 + len(self.tracks)}: earsight serve --inputs N)"])
            return
        if address != item.address:
            matched = [c for c in matched if c.service in TRACK_SERVICES]
            if not matched:
                self.send(reply_to, "/ear/fail", [item.address, f"{address} is the server's, not a track's: send it "
                                                  "without the track number"])
                return
        for command in matched:
            shown = command.address if address == item.address else f"/ear/{track}{command.address[4:]}"
            req = Request(shown, item.sender, reply_to, self.send, self.folders, self.until)
            try:
                self._run(command, req, item.args, services)
            except EarsightError as exc:
                req.fail(str(exc))
            except Exception as exc:  # a bug in a handler: logged with its traceback, answered, and we go on
                self.errors += 1
                log.exception("handler for %s", command.address)
                req.fail(f"internal error: {type(exc).__name__}: {exc}")

    def _run(self, command: Command, req: Request, values: Sequence[object],
             services: Mapping[str, object | None]) -> None:
        service = services.get(command.service)
        if service is None:
            raise EarsightError(self.unavailable.get(command.service, f"{command.service} is not running"))
        args = command.coerce(values)
        result = command.handler(service, req, *args)
        if result is DEFERRED:
            return
        for address, reply in result or [("/ear/done", [req.address])]:
            self.send(req.reply_to, address, reply)
