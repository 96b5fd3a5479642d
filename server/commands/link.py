"""Ableton Link: join the band's tempo; the beat stream and quantised changes follow it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Arg, Command, Reply, Request, key_values

if TYPE_CHECKING:
    from ..link import LinkClock


def _link(link: LinkClock, req: Request, on: int) -> None:
    link.set_enabled(bool(on))


def _quantum(link: LinkClock, req: Request, beats: float) -> None:
    link.set_quantum(beats)


def _tempo(link: LinkClock, req: Request, bpm: float) -> None:
    link.set_tempo(bpm)


def _status(link: LinkClock, req: Request) -> list[Reply]:
    return [("/ear/link/status.reply", key_values(link.stats()))]


COMMANDS: tuple[Command, ...] = tuple(
    Command(address, args, handler, reply, doc, "link")
    for address, args, handler, reply, doc in (
        ("/ear/link", (Arg("on", "i", "1: join the Link session on the network, 0: leave it"),), _link, "/ear/done",
         "Ableton Link (off until asked for): share tempo and beat with Live, LinkClock and other peers. Then the beat "
         "stream runs, /ear/status has tempo, beat, phase and peers, and scene recalls, matches and the sonify mode "
         "can wait for the next beat or bar."),
        ("/ear/link/quantum", (Arg("beats", "n", "1-64, default 4"),), _quantum, "/ear/done",
         "Beats in a bar: what 'bar' waits for, and the beat stream's phase."),
        ("/ear/link/tempo", (Arg("bpm", "n", "20-999"),), _tempo, "/ear/done",
         "Set the session's tempo (every peer follows; a peer's change reaches the server the same way)."),
        ("/ear/link/status", (), _status, "/ear/link/status.reply",
         "Key-value pairs: link (1 while on), tempo, beat, phase, peers, quantum."),
    )
)
