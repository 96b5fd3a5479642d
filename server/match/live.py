"""The match as a live instrument: pictures in over OSC, the chosen bed crossfading in through pyo.

One supervised thread does all the work in order (read the picture, classify, match, mix the
bed, hand it to the audio process), so the OSC thread never waits on it; when requests come
faster than it finishes, the newest picture stands for those before it (each older one is
answered ``/ear/fail ... superseded``). ``follow`` re-matches the view's picture on a period.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BadRequest, EarsightError, NotFound
from . import bedaudio, beds, library

if TYPE_CHECKING:
    from ..audio import AudioEngine
    from ..commands.base import Request
    from ..supervise import Supervisor

log = logging.getLogger(__name__)

VIEW = "view"
"""The picture named instead of a file: the view's current frame."""


@dataclass
class _Job:
    kind: str  # "image", "view", "library", "off", "bed"
    req: Request | None
    value: Any = None
    quantise: str = "now"


class Matching:
    """The ``match`` service. ``pixels_of_view``: the view's current picture, or an error saying why not."""

    def __init__(self, audio: AudioEngine, sample_rate: int,
                 pixels_of_view: Callable[[], np.ndarray] | None = None) -> None:
        self.audio = audio
        self.sample_rate = sample_rate
        self.pixels_of_view = pixels_of_view
        self.fade = 3.0
        """Seconds of a crossfade between beds."""
        self.level = 1.0
        self.into_input = False
        self.follow = 0.0
        """Seconds between re-matches of the view (0: off)."""
        self._follow_to: Request | None = None
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._held: _Job | None = None
        """A job taken from the queue while looking for newer pictures: it runs next, in its turn."""
        self._stopping = threading.Event()
        self._library: library.Library | None = None
        self._matcher: beds.Matcher | None = None
        self.current: beds.Bed | None = None
        self.library_name = "default"
        """The folder of the library as /ear/match/library named it, or default."""
        self.counters = {"matches": 0, "changes": 0, "superseded": 0, "failed": 0}
        self.last_ms: dict[str, float] = {"read": 0.0, "classify": 0.0, "match": 0.0, "mix": 0.0}

    # ------------------------------------------------------------------ requests (OSC thread)

    def request(self, kind: str, req: Request | None, value: Any = None, quantise: str = "now") -> None:
        """``quantise`` (now, beat or bar): when a picture's bed starts (the request's clock says how long to wait)."""
        self._jobs.put(_Job(kind, req, value, quantise))

    def set_follow(self, seconds: float, req: Request) -> None:
        if seconds and not 1.0 <= seconds <= 3600.0:
            raise BadRequest(f"follow period must be 0 (off) or 1-3600 s, got {seconds:g}")
        if seconds and self.pixels_of_view is None:
            raise EarsightError("no view to follow: start the server with --view-port")
        self.follow = float(seconds)
        self._follow_to = req if seconds else None
        self._jobs.put(_Job("wake", None))

    def set_fade(self, seconds: float) -> None:
        if not 0.05 <= seconds <= 60.0:
            raise BadRequest(f"fade must be in [0.05, 60] s, got {seconds:g}")
        self.fade = float(seconds)

    def set_level(self, level: float, into_input: bool | None = None) -> None:
        into = self.into_input if into_input is None else into_input
        self.audio.set_bed_level(level, into)
        self.level, self.into_input = float(level), into

    def settings(self) -> dict[str, list[object]]:
        """The match's settings as the commands that set them (for scenes; the bed: :meth:`bed`)."""
        return {"/ear/match/library": [self.library_name], "/ear/match/level": [self.level],
                "/ear/match/input": [int(self.into_input)], "/ear/match/fade": [self.fade],
                "/ear/match/follow": [self.follow]}

    def bed(self) -> dict[str, list[Any]] | None:
        """The bed playing: its sounds and their shares of its power (None: silence)."""
        bed = self.current
        return None if bed is None else {"sounds": list(bed.sounds), "weights": [float(w) for w in bed.weights]}

    def restore_bed(self, bed: dict[str, list[Any]] | None, req: Request | None) -> None:
        """Crossfade to a bed :meth:`bed` gave (None: fade out), after the jobs already waiting."""
        self._jobs.put(_Job("bed", req, bed))

    def stats(self) -> dict[str, object]:
        bed = self.current
        return {
            "library": str(self._library.folder) if self._library else "default (not loaded yet)",
            "sounds": len(self._library.sounds) if self._library else 0,
            "bed": " + ".join(f"{n} {w:.2f}" for n, w in zip(bed.sounds, bed.weights, strict=True)) if bed else "none",
            "level": self.level, "input": int(self.into_input), "fade": self.fade, "follow": self.follow,
            **self.counters,
            **{f"{k}_ms": v for k, v in self.last_ms.items()},
        }

    # ------------------------------------------------------------------ the thread

    def start(self, supervisor: Supervisor) -> None:
        from ..supervise import NICE_MATCH

        supervisor.spawn("match", self._loop, lambda: not self._stopping.is_set(), nice=NICE_MATCH)

    def stop(self) -> None:
        self._stopping.set()
        self._jobs.put(_Job("stop", None))

    def _loop(self) -> None:
        next_follow = time.monotonic() + self.follow if self.follow else None
        while not self._stopping.is_set():
            timeout = None if not self.follow else max(0.0, (next_follow or 0.0) - time.monotonic())
            try:
                job, self._held = self._held or self._jobs.get(timeout=timeout), None
            except queue.Empty:
                job = _Job(VIEW, self._follow_to)
            if job.kind == "stop":
                return
            if job.kind == "wake":
                next_follow = time.monotonic() + self.follow if self.follow else None
                continue
            job = self._newest(job)
            self._run(job)
            if job.kind == VIEW and self.follow:
                next_follow = time.monotonic() + self.follow

    def _newest(self, job: _Job) -> _Job:
        """Of the pictures waiting, only the newest is matched; the rest are answered as superseded."""
        while job.kind in ("image", VIEW):
            try:
                later = self._jobs.get_nowait()
            except queue.Empty:
                break
            if later.kind not in ("image", VIEW):
                self._held = later  # an off or a library comes after this picture, before newer ones
                break
            self.counters["superseded"] += 1
            if job.req is not None:
                job.req.fail("superseded by a later /ear/match")
            job = later
        return job

    def _run(self, job: _Job) -> None:
        try:
            replies = self._do(job)
        except EarsightError as exc:
            self.counters["failed"] += 1
            if job.req is not None:
                job.req.fail(str(exc))
            else:
                log.warning("match: %s", exc)
            return
        except Exception as exc:  # a bug: answered and logged; the thread goes on
            self.counters["failed"] += 1
            log.exception("match")
            if job.req is not None:
                job.req.fail(f"internal error: {type(exc).__name__}: {exc}")
            return
        if job.req is not None:
            for address, args in replies:
                job.req.send(job.req.reply_to, address, args)

    def _do(self, job: _Job) -> list[tuple[str, list[object]]]:
        from . import image

        if job.kind == "off":
            self.audio.set_bed(None, self.fade)
            self.current = None
            self.follow, self._follow_to = 0.0, None
            return [("/ear/done", ["/ear/match/off"])]
        if job.kind == "bed":
            return self._restore(job.value)
        if job.kind == "library":
            folder: Path | None = job.value
            lib = library.load(folder) if folder is not None else library.default()
            self._library, self._matcher = lib, beds.Matcher(lib)
            self.library_name = "default" if folder is None else str(folder)
            image.network()  # so the first picture does not wait for it
            return [("/ear/done", ["/ear/match/library", str(lib.folder), len(lib.sounds)])]
        result = self.match(job.value if job.kind == "image" else None)
        if job.req is not None and job.quantise != "now":
            time.sleep(job.req.until(job.quantise))  # from when the match is ready: it takes a while
        self.play(result.beds[0])
        return replies(result)

    def _restore(self, value: dict[str, list[Any]] | None) -> list[tuple[str, list[object]]]:
        done: list[tuple[str, list[object]]] = [("/ear/done", ["bed"])]
        if value is None:
            if self.current is not None:
                self.audio.set_bed(None, self.fade)
                self.current = None
            return done
        known = self.matcher().library.names
        missing = [s for s in value["sounds"] if s not in known]
        if missing:
            raise NotFound(f"the library ({self.library_name}) has no sound {missing[0]!r}")
        self.play(beds.Bed(tuple(value["sounds"]), tuple(float(w) for w in value["weights"]), float("nan")))
        return done

    # ------------------------------------------------------------------ the work

    def matcher(self) -> beds.Matcher:
        if self._matcher is None:
            self._library = library.default()
            self._matcher = beds.Matcher(self._library)
        return self._matcher

    def match(self, path: Path | None) -> beds.Match:
        """Match the picture in ``path`` (None: the view's)."""
        from . import image

        matcher = self.matcher()
        t0 = time.perf_counter()
        if path is None:
            if self.pixels_of_view is None:
                raise EarsightError("no view: start the server with --view-port")
            pixels = self.pixels_of_view()
        else:
            pixels = image.load(path)
        t1 = time.perf_counter()
        probs = image.classify(pixels)
        t2 = time.perf_counter()
        result = matcher.match(probs)
        t3 = time.perf_counter()
        self.last_ms.update(read=1e3 * (t1 - t0), classify=1e3 * (t2 - t1), match=1e3 * (t3 - t2))
        self.counters["matches"] += 1
        return result

    def play(self, bed: beds.Bed) -> None:
        """Crossfade to ``bed`` (nothing to do if it is the one playing, at much the same weights)."""
        if self.current is not None and self.current.sounds == bed.sounds and np.allclose(
                self.current.weights, bed.weights, atol=0.05):
            return
        assert self._library is not None
        t0 = time.perf_counter()
        audio = bedaudio.mix(bed, self._library, self.sample_rate)
        self.last_ms["mix"] = 1e3 * (time.perf_counter() - t0)
        self.audio.set_bed(audio, self.fade)  # (waits while the audio process has no silent slot)
        self.current = bed
        self.counters["changes"] += 1


def replies(result: beds.Match) -> list[tuple[str, list[object]]]:
    """``/ear/match.reply <rank> <divergence> <coverage> <sound> <weight> ...``, best bed first."""
    out: list[tuple[str, list[object]]] = []
    for rank, bed in enumerate(result.beds, 1):
        flat: list[object] = [rank, round(bed.divergence, 4), round(result.coverage, 4)]
        for name, weight in zip(bed.sounds, bed.weights, strict=True):
            flat += [name, round(weight, 4)]
        out.append(("/ear/match.reply", flat))
    return out
