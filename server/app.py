"""Assembly: builds the state and the services, composes the command table, starts and stops them.

The only module that knows every service. Services read the :class:`~earsight.state.EarState`
and are handed the narrow things they use (rings, callables); none of them knows this one.

Threads of the server process: the OSC receiver and its scheduler for future bundles, the ear
worker, the sonifier, the display (with its web server), and loaders that prepare a new ear
off to the side. pyo runs in a process of its own (:mod:`earsight.audio`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import memory
from .audio import AudioConfig, AudioEngine, Source
from .audio.ring import Ring
from .commands import BY_ADDRESS, COMMANDS, Dispatcher
from .ears import registry
from .errors import EarsightError
from .osc import Incoming, OscServer
from .paths import Folders
from .supervise import Supervisor

if TYPE_CHECKING:
    from .display import Display
    from .embed import EmbedFitter
    from .link import LinkClock
    from .listen import Listener
    from .match.live import Matching
    from .scenes import Scenes
    from .sonify.live import Sonifier
    from .state import EarState
    from .streams import Streams

log = logging.getLogger(__name__)

RECENT_SECONDS = 10
"""Input the server keeps for the sonifier and renders."""
OVERLOADED_MS = 100.0
"""Input waiting for the ear beyond which the machine counts as overloaded: the picture slows down."""
SWITCH_INTERVAL = 0.0005
"""Seconds a thread waiting for the GIL lets the holder run before asking for it (Python's default
is 5 ms). The ear worker takes the GIL back after each of the ~100 torch and numpy calls of a
frame; behind an OSC flood or a dream's Python, 5 ms a call made a frame take longer than its hop."""


@dataclass
class AppConfig:
    host: str = "127.0.0.1"
    port: int = 9000
    ear: str = registry.DEFAULT
    source: Source = field(default_factory=Source)
    audio: AudioConfig = field(default_factory=AudioConfig)
    threads: int = 1
    """torch threads for the ear: one leaves a core to the audio process."""
    view_port: int | None = None
    """Port of the web page with the live picture (None: no picture; 0: any free port)."""
    window: bool = False
    """Also show the picture in a window (glfw; needs a display)."""
    out_dir: Path | None = None
    """Where files asked for over OSC are written (default: the cache folder)."""
    allow_dirs: tuple[Path, ...] = ()
    """Folders whose files OSC may name as input (default: the working directory)."""


class App:
    """The server. ``start()`` builds everything; a failed start stops what it had built."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        # The parts, built by start() (None before it, and after a failed start only what was built)
        self.osc: OscServer | Any = None
        self.audio: AudioEngine | Any = None
        self.recent: Ring | Any = None
        self.state: EarState | Any = None
        self.streams: Streams | Any = None
        self.fitter: EmbedFitter | Any = None
        self.listener: Listener | Any = None
        self.sonifier: Sonifier | Any = None
        self.matching: Matching | Any = None
        self.scenes: Scenes | Any = None
        self.tracks: list[dict[str, Any]] = []
        """Each track's own services (state, streams, embed, ear), track 1 first."""
        self.link: LinkClock | Any = None
        self.display: Display | None = None
        self.dispatcher: Dispatcher | Any = None
        self.xrun_monitor: Any = None
        self.supervisor = Supervisor()
        self._stopping = threading.Event()
        self._cpu_mark = (time.perf_counter(), time.process_time(), 0.0)

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()  # a half-started server must not leave processes or shared memory behind
            raise

    def _start(self) -> None:
        import torch

        memory.fix_mmap_threshold()  # before the big allocations: see earsight.memory

        from .embed import EmbedFitter
        from .link import LinkClock
        from .listen import Listener, prepare
        from .match.live import Matching
        from .scenes import Scenes
        from .sonify.live import Sonifier
        from .state import EarState
        from .streams import Streams

        config = self.config
        torch.set_num_threads(config.threads)
        sys.setswitchinterval(SWITCH_INTERVAL)
        pipeline = prepare(config.ear, config.audio.sample_rate)  # the slowest part, and the likeliest to fail
        self.state = state = EarState(pipeline.name, pipeline.ear)
        self.osc = OscServer(config.host, config.port, self._handle, coalesce=[c.address for c in COMMANDS if c.coalesce])
        self.audio = AudioEngine(config.audio, config.source, send_socket=self.osc.sock)
        self.streams = Streams(
            self.osc.send, state, block_rate=config.audio.sample_rate / config.audio.block,
            block_streams=self.audio.set_block_streams,
        )
        self.recent = Ring(int(RECENT_SECONDS * config.audio.sample_rate), 1)
        self.fitter = EmbedFitter(state)
        self.listener = Listener(state, pipeline, self.audio, self.recent, [self.streams.on_frame, self.fitter.on_frame])
        self.tracks = [{"state": state, "streams": self.streams, "embed": self.fitter, "ear": self.listener.first}]
        for number in range(2, config.audio.inputs + 1):  # each its own ear (a twin: the weights are shared)
            track_pipeline = prepare(config.ear, config.audio.sample_rate, like=pipeline.ear)
            track_state = EarState(track_pipeline.name, track_pipeline.ear)
            streams = Streams(self.osc.send, track_state, block_rate=config.audio.sample_rate / config.audio.block,
                              track=number)
            fitter = EmbedFitter(track_state)
            ear = self.listener.add_track(track_state, track_pipeline, [streams.on_frame, fitter.on_frame])
            self.tracks.append({"state": track_state, "streams": streams, "embed": fitter, "ear": ear})
        # Every datagram asks where its replies go: one track's table answers that without a loop.
        route = self.streams.route if len(self.tracks) == 1 else self._route
        self.osc.route = route
        self.sonifier = Sonifier(
            state, recent=self.recent, output=self.audio.output, set_mix=self.audio.set_mix,
            sample_rate=config.audio.sample_rate, block=config.audio.block,
        )
        self.matching = Matching(self.audio, config.audio.sample_rate,
                                 self._view_pixels if config.view_port is not None else None)
        self.dispatcher = Dispatcher(
            COMMANDS,
            {"server": self, "streams": self.streams, "state": state, "embed": self.fitter, "ear": self.listener.first,
             "audio": self.audio, "view": None, "sonify": self.sonifier, "match": self.matching},
            self.osc.reply, route=route,
            unavailable={"view": "no view: start the server with --view-port"},
            folders=Folders(config.out_dir, config.allow_dirs),
        )
        self.scenes = Scenes(BY_ADDRESS, self.dispatcher.services_of)
        self.link = LinkClock(on_tick=self.streams.on_clock)
        self.dispatcher.services.update(scenes=self.scenes, link=self.link)
        self.dispatcher.until = self.link.until
        self.dispatcher.tracks = self.tracks[1:]
        self.audio.start()
        if config.audio.backend == "jack":
            from .audio.jack import XrunMonitor

            try:
                self.xrun_monitor = XrunMonitor()
            except Exception as exc:  # counting xruns is a nicety; the server runs without it
                log.warning("cannot count JACK xruns: %s", exc)
        self.listener.start(self.supervisor)
        self.sonifier.start(self.supervisor)
        self.matching.start(self.supervisor)
        self.link.start(self.supervisor)
        if config.view_port is not None:
            from .display import Display

            listener = self.listener
            self.display = Display(state, host=config.host, port=config.view_port, window=config.window,
                                   overloaded=lambda: listener.lag_ms() > OVERLOADED_MS,
                                   tracks=[t["state"] for t in self.tracks[1:]])
            self.display.start(self.supervisor)
            self.dispatcher.services["view"] = self.display
        self.osc.start(self.supervisor)
        self.supervisor.spawn("housekeeping", self._housekeep, lambda: not self._stopping.is_set())
        log.debug("%d objects frozen out of the cyclic collector", memory.freeze_heap())
        log.info("listening for OSC on %s:%d", *self.osc.address)

    def _housekeep(self) -> None:
        while not self._stopping.wait(memory.TRIM_EVERY):
            memory.trim()

    def stop(self) -> None:
        self._stopping.set()
        for part in (self.link, self.matching, self.sonifier, self.listener, self.osc, self.display):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # stopping the rest matters more than this one's error
                    log.exception("stopping %s", type(part).__name__)
        if self.xrun_monitor is not None:
            self.xrun_monitor.close()
        if self.audio is not None:
            self.audio.stop()
        if self.recent is not None:
            self.recent.close()

    def __enter__(self) -> App:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _view_pixels(self) -> np.ndarray:
        """The view's picture now, for /ear/match view."""
        if self.display is None:
            raise EarsightError("no view: start the server with --view-port")
        return self.display.pixels()

    def _route(self, sender: tuple[str, int]) -> tuple[str, int]:
        """Where replies to ``sender`` go: where it subscribed (to any track's streams), else back."""
        for track in self.tracks:
            streams: Streams = track["streams"]
            if streams.routes(sender):
                return streams.route(sender)
        return sender

    def _handle(self, item: Incoming) -> None:
        self.dispatcher.handle(item)

    # ------------------------------------------------------------ /ear/status

    def status(self) -> dict[str, object]:
        stats = self.audio.stats()
        now, cpu = time.perf_counter(), time.process_time()
        wall0, cpu0, busy0 = self._cpu_mark
        self._cpu_mark = (now, cpu, self.listener.busy)
        elapsed = max(now - wall0, 1e-6)
        xruns = self.xrun_monitor.count if self.xrun_monitor is not None else stats["late_blocks"]
        return {
            "ear": self.state.name,
            "backend": self.config.audio.backend,
            "input": self.audio.source.describe(),
            "sample_rate": self.config.audio.sample_rate,
            "block": self.config.audio.block,
            "frame_rate": float(self.state.ear.frame_rate),
            "latency_ms": float(self.listener.latency_ms()),
            "pitch_latency_ms": float(self.listener.pitch_latency_ms() or 0.0),
            "cpu": float(100.0 * (cpu - cpu0) / elapsed),
            "ear_load": float((self.listener.busy - busy0) / elapsed),
            "xruns": int(xruns),
            "late_blocks": stats["late_blocks"],
            "audio_restarts": stats["restarts"],
            "audio": self.audio.state,
            "audio_realtime": self.audio.realtime,
            "rss_mb": memory.rss_mb(),
            "view_fps": float(self.display.fps_live) if self.display is not None else 0.0,
            "dropped": stats["input_dropped"] + stats["output_underruns"] + self.listener.skipped,
            "output_underruns": stats["output_underruns"],
            "ear_skipped": self.listener.skipped,
            "lag_ms": self.listener.lag_ms(),
            "frames": self.listener.frames,
            "tracks": len(self.tracks),
            "batched": self.listener.batched,
            **{k: v for t in self.listener.tracks[1:] for k, v in ((f"ear.{t.number}", t.state.name),
                                                                    (f"frames.{t.number}", t.frames))},
            "subscribers": len(self.streams.subscribers),
            "received": self.osc.received,
            "coalesced": self.osc.coalesced,
            "inbox_dropped": self.osc.dropped,
            "inbox_bytes": self.osc.inbox_bytes,
            "inbox_peak": self.osc.inbox_peak,
            "malformed": self.osc.malformed,
            "errors": self.osc.errors + self.dispatcher.errors,
            "refused": self.osc.refused,
            "fails_suppressed": self.osc.fail_limit.suppressed,
            **{k: v for k, v in self.link.stats().items() if k != "quantum"},
            "restarts": self.supervisor.total_restarts(),
            **{f"restarts.{name}": n for name, n in sorted(self.supervisor.restarts.items())},
        }
