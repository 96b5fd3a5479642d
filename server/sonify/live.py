"""The live sonifier: :class:`Sonifier` runs a thread in the server. Every ``chunk`` seconds it
takes the newest ``window`` seconds of input (``recent``), dreams or auralises it at the ear's
rate, and plays the newest ``chunk`` of the result into ``output``, crossfaded with the previous
version over ``fade`` seconds. Consecutive versions are nearly the same signal (correlated), so
the crossfade is a raised-cosine one whose gains sum to 1 (equal-gain), not equal-power (which
would swell by up to 3 dB). Every chunk is checked for finiteness and soft-limited before it
leaves.

The sonifier sees the server through a narrow interface: a state with the listening ear and the
selection (:class:`SonifierState`), the input and output rings, a mix setter and the audio
settings; it never sees the other services.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..audio import io
from ..ears.base import Ear
from ..errors import BadRequest, EarsightError, NotFound
from ..resample import resample
from ..supervise import NICE_DREAM, Supervisor
from .change import carry, largest_jump, loudness_db
from .deconv import apply_mask, auralise, auralise_with
from .dream import dream, dream_with, resolve_param
from .dsp import crossfade, soft_limit
from .files import sonify_file
from .params import AUDIO_FORMATS, BY_NAME, MODES, defaults
from .spread import spread
from .target import Target, target_from

if TYPE_CHECKING:
    from ..features import Selection

log = logging.getLogger(__name__)


class SonifierState(Protocol):
    """What the sonifier reads of the server's state (an :class:`earsight.state.EarState`)."""

    @property
    def ear(self) -> Ear:
        """The listening ear; it may be swapped at any time."""
        ...

    @property
    def selection(self) -> Selection:
        """The selected neurons (/ear/select): the target where the parameters leave it open."""
        ...


class Recent(Protocol):
    """The last seconds of input (a :class:`~earsight.ring.Ring` of one channel), read without consuming."""

    @property
    def written(self) -> int:
        """Samples written since the start."""
        ...

    def latest(self, frames: int) -> np.ndarray:
        """The newest ``frames`` samples ``(frames, 1)``, zeros before the first."""
        ...


class Output(Protocol):
    """The wet path (a stereo :class:`~earsight.ring.Ring`): the audio process plays what is written."""

    def write(self, frames: np.ndarray) -> None:
        """Append ``(n, 2)`` samples."""
        ...

    def available(self) -> int:
        """Samples written and not yet played."""
        ...


class Sonifier:
    """The live sonifier: a thread that reads ``recent`` and writes ``output``.

    Latency, input to output: the queue (``chunk`` + ``queue`` + four audio blocks: room for one
    update's compute, at most a chunk when real time) + ``fade`` + a 5 ms margin (the newest
    samples of each version are held back to be crossfaded with the next). Defaults: 0.2 s
    chunks, 20 ms fades, 48 kHz / 256 -> about 0.45 s.
    """

    MARGIN = 0.005
    """Seconds at the newest end of each version never played: the resampler's edge lives there."""
    VISITS = 0.0
    """The dream's ``visits`` in an update: none, since a window is read over many updates (the
    change is carried over), not in one; more frames a step would only slow the update."""
    BUDGET = 0.6
    """Of its chunk's duration, what one dream update may take before the steps are cut: the rest
    is for the ear, the picture and the jitter of a shared machine."""

    def __init__(
        self,
        state: SonifierState,
        *,
        recent: Recent,
        output: Output,
        set_mix: Callable[[float, float], None],
        sample_rate: int,
        block: int,
    ) -> None:
        """``state``: the listening ear and the selection; ``recent``: the last seconds of input at
        ``sample_rate`` (mono); ``output``: the stereo ring the audio process mixes in as the wet
        path, its level set by ``set_mix(dry, wet)``; ``block``: the audio block in samples."""
        self.state = state
        self.recent = recent
        self.output = output
        self.set_mix = set_mix
        self.sample_rate = int(sample_rate)
        self.block = int(block)
        self.values: dict[str, Any] = defaults()
        self.mode = "off"
        self.ready = threading.Event()
        """Set once the thread has warmed up and updates begin."""
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None
        self._pos: int | None = None
        self._tail: np.ndarray | None = None
        self._last: np.ndarray | None = None
        self._delta: np.ndarray | None = None  # the previous dream's change, at the ear's rate
        self._delta_end = 0
        self._floor: np.ndarray | None = None
        self._scale = 0.0
        self._ear: Ear | None = None
        self._target: Target | None = None
        self.counters = {"updates": 0, "steps": 0, "behind": 0, "not_finite": 0, "errors": 0, "starved": 0, "ran_dry": 0,
                         "degraded": 0}
        self._step_seconds = 0.0
        self._busy = 0.0
        self._cpu = 0.0
        self._audio_seconds = 0.0
        self.last_peak = float("nan")
        """The last auralisation's mask peak (the feature map's strength)."""
        self.last_rise = float("nan")
        """The last measured dream's after - before."""
        self.last_rise_spreads = float("nan")
        """That rise in units of the target's spread on reference audio: the same yardstick for any unit."""
        self.last_loudness_db = float("nan")
        """The last measured dream's output RMS over its input's, dB (within 3 dB by construction)."""
        self.last_jump = float("nan")
        """The last measured dream's largest change jump over the input's (1 or less: no click)."""
        self.seam_jump = 0.0
        self.body_jump = 0.0
        self.steps_live: int | None = None
        """Dream steps per update while the machine cannot give the asked number in time (None: as asked)."""

    # -------------------------------------------------------------- control

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise BadRequest(f"sonify mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "off":
            self.current_target()  # refuse a mode whose target is invalid now, with the reason
        with self._lock:
            self.mode = mode

    def set_param(self, name: str, value: object) -> None:
        spec = BY_NAME.get(name)
        if spec is None:
            raise NotFound(f"no sonify parameter {name!r} (parameters: {', '.join(BY_NAME)})")
        typed = spec.coerce(value)
        trial = {**self.values, name: typed}
        ear = self.state.ear
        if name in ("layer", "channel") or name.startswith(("region_", "position_")):
            if name == "layer" and typed and trial["channel"] >= 0:
                layer = ear.layer(str(typed))
                if trial["channel"] >= layer.channels:
                    trial["channel"] = -1  # the old channel belongs to the old layer
            target_from(ear, trial, self.state.selection)
        if name == "chunk" and float(typed) <= float(trial["fade"]) or name == "fade" and float(typed) >= float(trial["chunk"]):
            raise BadRequest(f"fade ({trial['fade']:g} s) must be shorter than chunk ({trial['chunk']:g} s)")
        if name in ("window", "chunk", "fade") and float(trial["window"]) < float(trial["chunk"]) + float(trial["fade"]) + 2 * self.MARGIN:
            raise BadRequest("window must be at least chunk + fade + 0.01 s")
        if name in ("dry", "wet"):
            self.set_mix(float(trial["dry"]), float(trial["wet"]))
        with self._lock:
            self.values = trial
            if name == "steps":
                self.steps_live = None  # a new wish: try it in full again

    def settings(self) -> dict[str, list[object]]:
        """The mode and every parameter as the commands that set them (for scenes)."""
        with self._lock:
            return {"/ear/sonify": [self.mode], **{f"/ear/sonify/{k}": [v] for k, v in self.values.items()}}

    def current_target(self) -> Target:
        return target_from(self.state.ear, self.values, self.state.selection)

    def render(self, seconds: float, path: Path) -> str:
        """The sonification (current mode, dream if off) of the last ``seconds`` of input, written
        (atomically) to ``path``, resolved by the caller (see :class:`earsight.paths.Folders`)."""
        if not (math.isfinite(seconds) and 0.0 < seconds <= 10.0):
            raise BadRequest(f"seconds must be in (0, 10] (the server keeps 10 s of input), got {seconds}")
        if path.suffix.lower() not in AUDIO_FORMATS:
            raise BadRequest(f"render name must end in .wav or .flac, got {path.name!r}")
        sr = self.sample_rate
        audio = self.recent.latest(int(seconds * sr))[:, 0].copy()
        mode = self.mode if self.mode != "off" else "dream"
        with self._lock:
            values = dict(self.values)
        out, _ = sonify_file(self.state.ear, audio, sr, mode, values, self.state.selection)
        return str(io.write(path, out, sr))

    def start(self, supervisor: Supervisor | None = None) -> None:
        if self._thread is not None:
            return
        self._running = True
        self._thread = (supervisor or Supervisor()).spawn("sonifier", self._loop, lambda: self._running, nice=NICE_DREAM)

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def stats(self) -> dict[str, float | int | str]:
        steps = self.counters["steps"]
        return {
            "mode": self.mode,
            **self.counters,
            "steps_per_second": steps / self._step_seconds if self._step_seconds > 0 else 0.0,
            "real_time_factor": self._busy / self._audio_seconds if self._audio_seconds > 0 else 0.0,
            # CPU the sonifier's thread used per second of audio: what real time needs of one core
            # on an otherwise idle machine (the wall-clock factor above includes waiting for a core).
            "cpu_real_time_factor": self._cpu / self._audio_seconds if self._audio_seconds > 0 else 0.0,
            "last_peak": self.last_peak,
            "last_rise": self.last_rise,
            "last_rise_spreads": self.last_rise_spreads,
            "last_loudness_db": self.last_loudness_db,
            "last_jump": self.last_jump,
            "seam_jump": self.seam_jump,
            "body_jump": self.body_jump,
            "queued": self.output.available(),
            "steps_live": self.steps_live if self.steps_live is not None else int(self.values["steps"]),
        }

    # -------------------------------------------------------------- the thread

    def _warm_up(self) -> None:
        """The first dream and deconvolution pay one-off costs (torch imports sympy on the first
        backward with a seed; the function mode sets itself up): seconds on a busy machine. Pay
        them before any live update, which would otherwise starve the output."""
        try:
            ear = self.state.ear
            x = 0.1 * np.random.default_rng(0).standard_normal(ear.window + ear.hop).astype(np.float32)
            target = target_from(ear, defaults(), self.state.selection)
            auralise(ear, x, target.layer, target.channels[0] if target.channels else 0)
            dream(ear, x, target, steps=1, frames=1)
        except Exception:  # warming up is an optimisation; the loop reports real failures
            log.exception("sonifier warm-up")

    def _loop(self) -> None:
        self._warm_up()
        self.ready.set()
        while self._running:
            try:
                worked = self._update()
            except Exception:  # a failed update plays nothing new; the sonifier keeps running
                log.exception("sonifier")
                self.counters["errors"] += 1
                self._restart()
                time.sleep(0.05)
                continue
            if not worked:
                time.sleep(0.002)
        self._fade_out()

    def _restart(self) -> None:
        self._fade_out()
        self._pos = None
        self._delta = None
        self._floor = None
        self._scale = 0.0

    def _fade_out(self) -> None:
        """End the output smoothly: the held-back tail, faded to silence."""
        if self._tail is not None:
            out = crossfade(self._tail, np.zeros_like(self._tail))
            self._write(out)
        self._tail = None

    def _write(self, mono: np.ndarray) -> None:
        if self._last is not None and mono.shape[0]:
            self.seam_jump = max(self.seam_jump, float(abs(mono[0] - self._last[-1])))
        if mono.shape[0]:
            self._last = mono[-1:].copy()
        self.output.write(np.repeat(mono.reshape(-1, 1), 2, axis=1))

    def _segment(self, start: int, stop: int) -> np.ndarray:
        """Input samples ``[start, stop)`` (absolute counts of ``recent``, ``stop <= recent.written``),
        oldest first, zeros before the first sample: ``(stop - start,)``."""
        for _ in range(100):
            # latest() ends wherever the writer is: read until no block arrived meanwhile, so the
            # segment is exactly [start, stop) and consecutive versions stay aligned.
            written = self.recent.written
            newest = self.recent.latest(written - start)
            if self.recent.written == written:
                if newest.shape[0] != written - start:
                    raise EarsightError(f"the input ring keeps {newest.shape[0]} samples; {written - start} asked")
                return newest[: stop - start, 0].copy()
        raise EarsightError("the input ring never held still for a read")

    def _update(self) -> bool:
        with self._lock:
            mode, values = self.mode, dict(self.values)
        if mode == "off":
            if self._pos is not None:
                self._restart()
            return False
        ear = self.state.ear
        sr = self.sample_rate
        block = self.block
        chunk = int(round(float(values["chunk"]) * sr))
        fade = int(round(float(values["fade"]) * sr))
        margin = int(round(self.MARGIN * sr))
        if mode == "auralise":
            # Overlap-add is only whole where n_fft of STFT frames overlap: the newest n_fft
            # samples of a version are never played (they are, next update, in its interior).
            margin += int(math.ceil(min(1024, ear.window) * sr / ear.sample_rate))
        need = max(int(round(float(values["window"]) * sr)), chunk + fade + 2 * margin)
        written = self.recent.written
        if ear is not self._ear:
            self._ear, self._floor, self._scale, self._delta = ear, None, 0.0, None
        # The output ring is the clock. Input and output share the audio process's clock, so one
        # chunk of output per chunk of input keeps the queue steady; the lead must cover one
        # update's compute (at most a chunk when real time) plus a few blocks of jitter.
        lead = chunk + int(round(float(values["queue"]) * sr)) + 4 * block
        queued = self.output.available()
        if self._pos is None:
            self._pos = written
            if queued < lead:
                self._write(np.zeros(lead - queued, np.float32))
            self._last = None
            return True
        if written >= self._pos + chunk:
            end = self._pos + chunk  # aligned: this version continues exactly where the last one ended
            if written - end > max(sr, 4 * chunk):  # far behind: drop the backlog, fade into the present
                self.counters["behind"] += 1
                end, self._delta = written, None
        elif queued < chunk // 2 + 2 * block:
            # The input lags the output (the ear worker, which fills recent, is late or
            # skipped audio on a busy machine): play the newest input now rather than run dry; the
            # crossfade covers the misalignment.
            self.counters["starved"] += 1
            end = written
        else:
            return False
        if queued > lead + 2 * chunk:  # latency crept up (after a stall): skip a version to drain it
            self._pos = end
            return False
        started, cpu_started = time.perf_counter(), time.thread_time()
        x = self._segment(end - need, end)
        try:
            target = target_from(ear, values, self.state.selection)
        except BadRequest as exc:
            # The ear changed under the parameters (its layers differ): follow the selection.
            log.warning("sonify: %s; following the selection instead", exc)
            with self._lock:
                self.values.update(layer="", channel=-1, region_start=0.0, region_end=1.0, position_start=0.0, position_end=1.0)
            return False
        if target != self._target:
            self._target, self._floor, self._scale, self._delta = target, None, 0.0, None
        played = chunk + fade + 2 * margin  # the newest samples this update can still be heard in
        if mode == "dream":
            at_ear = resample(x, sr, ear.sample_rate, aligned=True).astype(np.float32)
            if target.time == (0.0, 1.0):
                # Only frames that reach into what will be played are worth a step: the rest of
                # the window is context (and the warm start's past).
                reach = (played * ear.sample_rate / sr + ear.window) / at_ear.shape[0]
                target = replace(target, time=(max(0.0, 1.0 - reach), 1.0))
            y = self._dream(ear, at_ear, target, values, end)
            wet = x + resample(y - at_ear, ear.sample_rate, sr, aligned=True)[:need].astype(np.float32)
        else:
            # Auralise is stateless per frame: deconvolve only what is played, plus one ear window.
            context = min(need, played + int(math.ceil(ear.window * sr / ear.sample_rate)))
            at_ear = resample(x[need - context :], sr, ear.sample_rate, aligned=True).astype(np.float32)
            a = self._auralise(ear, at_ear, target, values)
            wet = resample(a, ear.sample_rate, sr, aligned=True)[:context].astype(np.float32)
            wet = np.concatenate([np.zeros(need - context, np.float32), wet, np.zeros(context - wet.shape[0], np.float32)])
        mix = float(values["mix"])
        y48 = mix * wet + (1.0 - mix) * x
        new = y48[need - chunk - fade - margin : need - margin]
        if not np.isfinite(new).all():
            self.counters["not_finite"] += 1
            new = x[need - chunk - fade - margin : need - margin].copy()  # the input, rather than noise
            self._delta = None
        new = soft_limit(new.astype(np.float32))
        head, body, tail = new[:fade], new[fade:chunk], new[chunk:]
        head = crossfade(self._tail if self._tail is not None else np.zeros_like(head), head)
        out = np.concatenate([head, body])
        self.body_jump = max(self.body_jump, float(np.abs(np.diff(body)).max(initial=0.0)))
        # The crossfade itself: from the last sample written, through the head.
        joined = head if self._last is None else np.concatenate([self._last, head])
        self.seam_jump = max(self.seam_jump, float(np.abs(np.diff(joined)).max(initial=0.0)))
        if self.output.available() == 0:
            # The wet path has been playing silence: a dropout (the audio engine counts only
            # partly filled blocks as underruns).
            self.counters["ran_dry"] += 1
        self._write(out)
        self._tail = tail
        self._pos = end
        self.counters["updates"] += 1
        took = time.perf_counter() - started
        self._busy += took
        self._cpu += time.thread_time() - cpu_started
        self._audio_seconds += chunk / sr
        if mode == "dream":
            self._adapt(took / (chunk / sr), int(values["steps"]))
        return True

    def _adapt(self, load: float, asked: int) -> None:
        """Degrade on purpose: fewer dream steps when an update takes more than BUDGET of its chunk
        (or the output would run dry), one more at a time while it takes less than half that."""
        live = self.steps_live if self.steps_live is not None else asked
        if load > self.BUDGET and live > 1:
            self._degrade(max(1, int(live * self.BUDGET / load)), asked)
        elif load < self.BUDGET / 2 and live < asked:
            self.steps_live = live + 1 if live + 1 < asked else None

    def _degrade(self, steps: int, asked: int) -> None:
        """Dream ``steps`` per update instead of the ``asked`` ones: logged once, counted each time."""
        if self.steps_live is None:
            log.warning("sonify: %d dream steps per update cannot keep up here; dreaming %d until they can", asked, steps)
        self.counters["degraded"] += 1
        self.steps_live = steps

    def _dream(self, ear: Ear, x: np.ndarray, target: Target, values: dict[str, Any], end: int) -> np.ndarray:
        """One live dream update on ``x`` (ear rate), warm-started from the previous change."""
        sr_in = self.sample_rate
        delta = None
        if self._delta is not None and resolve_param(ear, str(values["param"])) in ("change", "wave"):
            # The previous change, moved by how far the input advanced and continued into the new audio.
            shift = int(round((end - self._delta_end) * ear.sample_rate / sr_in))
            delta = carry(self._delta, shift, x.shape[0]) if shift < self._delta.shape[0] else None
        asked = int(values["steps"])
        steps = min(asked, self.steps_live or asked)
        if self._step_seconds > 0:  # what the step rate measured so far affords in the budget
            afford = max(1, int(self.BUDGET * float(values["chunk"]) * self.counters["steps"] / self._step_seconds))
            if afford < steps:
                self._degrade(afford, asked)
                steps = afford
        # Measuring the gain costs two forward passes: every eighth update is enough for stats().
        measure = self.counters["updates"] % 8 == 0
        result = dream_with(
            ear, x, target, values, steps=steps, delta=delta, seed=self.counters["updates"], measure=measure,
            visits=self.VISITS,
        )
        self._step_seconds += result.seconds
        self.counters["steps"] += steps
        if measure:
            result = replace(result, spread=spread(ear, target, wait=False))
            self.last_rise, self.last_rise_spreads = result.rise, result.rise_spreads
            self.last_loudness_db = loudness_db(x, result.audio)
            self.last_jump = largest_jump(result.delta) / max(largest_jump(x), 1e-12)
        self._delta = result.delta if np.isfinite(result.delta).all() else None
        self._delta_end = end
        return result.audio

    def _auralise(self, ear: Ear, x: np.ndarray, target: Target, values: dict[str, Any]) -> np.ndarray:
        """One live auralise update; the mask's scale is shared across updates, so chunks agree in level."""
        a = auralise_with(ear, x, target, values)
        # The scale follows the loudest mask so far, decaying (-6 dB in 5 s) so it can recover.
        decay = 0.5 ** (float(values["chunk"]) / 5.0)
        self._scale = max(self._scale * decay, a.peak)
        self.last_peak = a.peak
        if self._scale <= 0.0:
            return np.zeros_like(x)
        return apply_mask(x, a.mask * (a.peak / self._scale), a.n_fft, a.hop, a.pad)
