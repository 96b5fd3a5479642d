"""The server's own commands: is it there, how is it, has it handled everything sent so far."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Arg, Command, Reply, Request, key_values

if TYPE_CHECKING:
    from ..app import App


def _ping(app: App, req: Request) -> list[Reply]:
    return [("/ear/pong", [])]


def _status(app: App, req: Request) -> list[Reply]:
    return [("/ear/status.reply", key_values(app.status()))]


def _sync(app: App, req: Request, ident: int) -> list[Reply]:
    return [("/ear/synced", [ident])]


COMMANDS: tuple[Command, ...] = (
    Command("/ear/ping", (), _ping, "/ear/pong", "Is the server there? Answers /ear/pong."),
    Command(
        "/ear/status", (), _status, "/ear/status.reply",
        "Key-value pairs: ear, backend, input, sample_rate, block, frame_rate, latency_ms, pitch_latency_ms (from a note's onset reaching the server to the first confident pitch message, on average; 0 when the ear hears no pitch), cpu, xruns, "
        "late_blocks, audio_restarts, audio (running, or waiting for JACK when it went away), rss_mb (the server's resident memory), audio_realtime (whether the thread computing the blocks has real-time scheduling, or why not), view_fps (the picture rate now: lower than asked while the machine is behind the audio), dropped, output_underruns (blocks of sonified audio that ran dry), ear_skipped (input samples the ear skipped to stay live), lag_ms, ear_load (busy fraction of the ear worker since the last status, every track's ear), frames, tracks (--inputs), batched (hops run in one batch with another track's), ear.<k> and frames.<k> for each track after the first, subscribers, received (datagrams read), coalesced (setter messages superseded by the same sender's later one before they were applied), inbox_dropped (datagrams dropped: the inbox held 8 MB), inbox_bytes (read, not yet applied), inbox_peak (the most it held), malformed, "
        "errors (datagrams or handlers that raised), refused (future messages over the limits), fails_suppressed (/ear/fail answers over 50/s to one address), link (1 while Ableton Link is on: /ear/link), tempo, beat, phase, peers (of the Link session), restarts (supervised threads restarted), restarts.<thread> per thread.",
    ),
    Command(
        "/ear/sync", (Arg("id", "i"),), _sync, "/ear/synced",
        "Answers /ear/synced <id> once every earlier command has been handled (SuperCollider's /sync).",
    ),
)
