"""What the services share: the listening ear, the selection, the top-P choice, the embedding, the newest frame.

Services read the state and never each other. A change bumps ``generation`` and calls the
listeners with what changed ("ear", "selection", "top", "embedding"), on the thread that made the
change; listeners only take note (set a flag, clear a table) and return. The newest frame is
replaced once per hop without notifying anyone: readers take ``latest`` when they need it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np

from .ears.base import Ear
from .errors import BadRequest
from .features import Embedding, Selection

log = logging.getLogger(__name__)

Listener = Callable[[str], None]
CHANGES = ("ear", "selection", "top", "embedding")


class EarState:
    def __init__(self, name: str, ear: Ear) -> None:
        self._name = name
        self._ear = ear
        self.selection = Selection(ear.layers[0].name)
        self.top: tuple[int, float] = (5, 0.1)
        """The ``top`` stream's choice: at most P labels, each at least this probable."""
        self.embedding: Embedding | None = None
        self.latest: dict[str, np.ndarray] = {}
        """The newest frame of every layer ({} until the ear has heard a hop)."""
        self.generation = 0
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The listening ear's name in the registry."""
        return self._name

    @property
    def ear(self) -> Ear:
        return self._ear

    def listen(self, fn: Listener) -> None:
        """Call ``fn(what)`` after every change; ``what`` is one of :data:`CHANGES`."""
        self._listeners.append(fn)

    def _changed(self, what: str) -> None:
        with self._lock:
            self.generation += 1
        for fn in list(self._listeners):
            try:
                fn(what)
            except Exception:  # one listener's bug must not keep the change from the others
                log.exception("state listener %r on %s", fn, what)

    # ------------------------------------------------------------ changes

    def set_ear(self, name: str, ear: Ear) -> None:
        """A new ear listens: what no longer fits it (selection, embedding, frame) is reset."""
        self._name, self._ear = name, ear
        self.latest = {}
        if self.selection.layer not in ear.layer_names:
            self.selection = Selection(ear.layers[0].name)
        if self.embedding is not None and self.embedding.layer not in ear.layer_names:
            self.embedding = None
        self._changed("ear")

    def select(self, layer: str, channels: Sequence[int]) -> None:
        """Choose channels of one layer (none: all); raises BadRequest for what the ear lacks."""
        spec = self._ear.layer(layer)
        bad = [c for c in channels if not 0 <= c < spec.channels]
        if bad:
            raise BadRequest(f"layer {layer} has channels 0-{spec.channels - 1}; no channel {bad[0]}")
        self.selection = Selection(layer, tuple(dict.fromkeys(int(c) for c in channels)))
        self._changed("selection")

    def set_top(self, count: int, threshold: float) -> None:
        if count < 1 or not 0.0 <= threshold <= 1.0:
            raise BadRequest("count must be >= 1 and threshold in [0, 1]")
        self.top = (int(count), float(threshold))
        self._changed("top")

    def set_embedding(self, embedding: Embedding | None) -> None:
        if embedding is not None and embedding.layer not in self._ear.layer_names:
            raise BadRequest(f"ear {self._name!r} has no layer {embedding.layer!r}")
        self.embedding = embedding
        self._changed("embedding")

    def settings(self) -> dict[str, list[object]]:
        """The selection and the top choice as the commands that set them (for scenes)."""
        return {"/ear/select": [self.selection.layer, *self.selection.channels], "/ear/top": list(self.top)}

    def publish(self, frame: dict[str, np.ndarray]) -> None:
        """The ear's newest frame (the hot path: no listeners)."""
        self.latest = frame
