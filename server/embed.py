"""Fitting the ``embed`` stream: collect a layer's frames for some seconds, then fit its PCA."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from .commands.base import Request
from .ears.base import Ear
from .errors import BadRequest, EarsightError
from .features import MAX_EMBED_DIMS, fit_embedding
from .state import EarState


@dataclass
class _Recording:
    ear: str
    layer: str
    dims: int
    wanted: int
    req: Request | None
    frames: list[np.ndarray] = field(default_factory=list)


class EmbedFitter:
    """A frame consumer: records what a fit asked for and hands the fitted embedding to the state."""

    def __init__(self, state: EarState) -> None:
        self.state = state
        self._recording: _Recording | None = None
        self._lock = threading.Lock()

    def fit(self, layer: str, seconds: float, dims: int, req: Request | None = None) -> None:
        """Collect ``seconds`` of ``layer``'s frames from now on; ``req`` is answered when fitted."""
        ear = self.state.ear
        ear.layer(layer)
        if not 0.5 <= seconds <= 120.0:
            raise BadRequest(f"seconds must be in [0.5, 120], got {seconds:g}")
        if not 1 <= dims <= MAX_EMBED_DIMS:
            raise BadRequest(f"dims must be in [1, {MAX_EMBED_DIMS}], got {dims}")
        frames = max(2, int(seconds * ear.frame_rate))
        with self._lock:
            self._recording = _Recording(self.state.name, layer, dims, frames, req)

    def on_frame(self, ear: Ear, frame: dict[str, np.ndarray], audio: np.ndarray, when: float) -> None:
        rec = self._recording
        if rec is None:
            return
        if rec.ear != self.state.name or rec.layer not in frame:
            self._finish(rec)
            if rec.req is not None:
                rec.req.fail("the ear changed while fitting")
            return
        rec.frames.append(frame[rec.layer].copy())
        if len(rec.frames) < rec.wanted:
            return
        self._finish(rec)
        try:
            embedding = fit_embedding(rec.layer, np.stack(rec.frames), rec.dims)
            self.state.set_embedding(embedding)
        except EarsightError as exc:
            if rec.req is not None:
                rec.req.fail(str(exc))
            return
        if rec.req is not None:
            rec.req.done(rec.layer, embedding.dims)

    def _finish(self, rec: _Recording) -> None:
        with self._lock:
            if self._recording is rec:  # a newer fit may have replaced it meanwhile
                self._recording = None
