"""The live picture: a render thread that feeds the renderer the ear's newest frame, and the web page.

Rendering costs CPU that the audio and the ear need on a small machine, so frames are drawn
only while someone looks: a browser or TouchDesigner pulling the MJPEG stream, or a snapshot.
The renderer is rebuilt (layout from the cache) when the ear changes.

The display reads an ear state (:class:`ViewedState`) and hears of its changes through the
state's listeners; a click on the page asks the state to select, never the display itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import BadRequest, EarsightError
from .supervise import NICE_PICTURE, Supervisor, lower_priority, os_threads

if TYPE_CHECKING:
    from .ears.base import Ear
    from .features import Embedding, Selection
    from .render import Renderer

log = logging.getLogger(__name__)

WATCHED_FOR = 2.0
"""Seconds after the last request for a frame during which the display keeps drawing."""
MIN_FPS = 5.0
"""The slowest the picture goes when the machine is overloaded."""


class ViewedState(Protocol):
    """What the display reads of the ear state, and the one thing it asks of it (``select``)."""

    @property
    def name(self) -> str:
        """The listening ear's registry name (changes when another ear is swapped in)."""

    @property
    def ear(self) -> Ear:
        """The listening ear."""

    @property
    def selection(self) -> Selection:
        """The selected channels (highlighted in the picture)."""

    @property
    def top(self) -> tuple[int, float]:
        """(count, threshold) of the ``top`` selection of labels."""

    @property
    def embedding(self) -> Embedding | None:
        """The fitted ``embed`` features, if any."""

    @property
    def latest(self) -> dict[str, np.ndarray]:
        """The newest frame: layer -> (*shape)."""

    def select(self, layer: str, channels: Sequence[int]) -> None:
        """Select ``channels`` of ``layer``; raises BadRequest for what the ear lacks."""

    def listen(self, fn: Callable[[str], None]) -> None:
        """Call ``fn(what)`` after each change; ``what`` in "ear", "selection", "top", "embedding"."""


class Display:
    def __init__(self, state: ViewedState, *, host: str = "127.0.0.1", port: int = 8080, fps: float = 30.0,
                 size: tuple[int, int] = (1280, 720), window: bool = False,
                 overloaded: Callable[[], bool] | None = None, tracks: Sequence[ViewedState] = ()) -> None:
        """``overloaded``: whether the machine is falling behind the audio (the ear's backlog); the
        picture then slows down on purpose, so the ear and the audio keep their share. ``tracks``:
        the other tracks' states, which ``/ear/view/track`` shows instead of ``state`` (track 1's)."""
        from .view import ViewServer

        self.state = state
        self.fps = fps
        self.fps_live = fps
        """The rate drawn now: lower than ``fps`` while the machine is overloaded."""
        self.overloaded = overloaded or (lambda: False)
        self.slowed = 0
        """Times the picture slowed down because the machine was overloaded."""
        self._paced_at = 0.0
        self.size = size
        self.window = window
        """Draw into a glfw window too (needs a display); then it draws all the time."""
        self.seed = 0
        """Seed of the layout (``/ear/view/layout <seed>`` lays the ear out anew)."""
        self.renderer: Renderer | None = None
        self._ear_name = ""
        self._settings: dict[str, Any] = {"view": "layout", "colormap": "magma"}
        self._watched_until = 0.0
        self._jobs: list[Callable[[Renderer | None], None]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._running = False
        self._thread: threading.Thread | None = None
        self.frames_drawn = 0
        self.error: str | None = None
        self.tracks = [state, *tracks]
        self.track = 1
        """The track shown (1: the first)."""
        self.server = ViewServer(host, port, self._jpeg, self._layout, lambda layer, ch: self.state.select(layer, ch))
        self.server.stream_fps = fps  # the stream keeps up with the picture
        for each in self.tracks:
            each.listen(self._heard(each))

    # -------------------------------------------------------------- life cycle

    @property
    def url(self) -> str:
        """The web page with the live picture."""
        return self.server.url

    def start(self, supervisor: Supervisor | None = None) -> None:
        supervisor = supervisor or Supervisor()
        self.server.start(supervisor)
        self._running = True
        self._thread = supervisor.spawn("display", self._loop, lambda: self._running, nice=NICE_PICTURE)
        log.info("view page on %s", self.server.url)

    def stop(self) -> None:
        self._running = False
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10.0)
        self.server.stop()
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None

    # -------------------------------------------------------------- the web page's callbacks

    def _jpeg(self) -> bytes:
        now = time.monotonic()
        if now >= self._watched_until:  # someone starts watching: draw now (while watched, the rate paces it)
            self._wake.set()
        self._watched_until = now + WATCHED_FOR
        renderer = self.renderer
        if renderer is None:
            return _placeholder_jpeg()
        return renderer.jpeg()

    def _layout(self) -> dict[str, Any]:
        renderer = self._ready()
        return renderer.layout_dict()

    def _heard(self, state: ViewedState) -> Callable[[str], None]:
        """A listener for one track's state: only the shown track's changes matter."""

        def heard(what: str) -> None:
            if state is self.state:
                self._changed(what)

        return heard

    def _changed(self, what: str) -> None:
        """The state changed (any thread): highlight a new selection; build for a new ear."""
        if what == "ear":
            self._wake.set()
        elif what == "selection":
            renderer, sel = self.renderer, self.state.selection
            if renderer is not None and sel.layer in renderer.ear.layer_names:
                renderer.select(sel.layer, list(sel.channels))

    # -------------------------------------------------------------- what OSC commands do

    def _ready(self, timeout: float = 60.0) -> Renderer:
        """The renderer for the current ear, waiting while it is built (layout, GL)."""
        deadline = time.monotonic() + timeout
        while self.renderer is None or self._ear_name != self.state.name:
            if self.error:
                raise EarsightError(f"view: {self.error}")
            if time.monotonic() > deadline:
                raise EarsightError("view: the renderer is not ready (layout still being computed?)")
            self._wake.set()
            time.sleep(0.05)
        return self.renderer

    def _on_gl_thread(self, job: Callable[[Renderer], Any], timeout: float = 30.0) -> Any:
        """Run ``job(renderer)`` on the display thread and return its result (or raise its error)."""
        self._ready()
        done = threading.Event()
        box: dict[str, Any] = {}

        def run(renderer: Renderer | None) -> None:
            try:
                if renderer is None:
                    raise EarsightError(f"view: no renderer ({self.error or 'not built'})")
                box["value"] = job(renderer)
            except Exception as exc:  # handed back to the caller's thread, which re-raises it
                box["error"] = exc
            done.set()

        with self._lock:
            self._jobs.append(run)
        self._wake.set()
        if not done.wait(timeout):
            raise EarsightError("view: the render thread did not answer")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def set(self, name: str, value: Any) -> None:
        """View settings (view, colormap, mode, tau, gain, decay, glow, labels), applied now and to
        every renderer built later; raises BadRequest for a value the renderer refuses."""
        renderer = self._ready()
        setattr(renderer, name, value)  # validates (BadRequest)
        self._settings[name] = value

    def highlight(self, layer: str, channels: list[int]) -> None:
        """Highlight in the picture only; raises BadRequest for a layer or channel the ear lacks."""
        self._ready().select(layer, channels)

    def shuffle(self, seed: int | None) -> list[int]:
        return [int(i) for i in self._ready().shuffle(seed)]

    def snapshot(self, path: Path) -> Path:
        """Draw now and write a PNG to ``path`` (resolved by the caller: see :class:`earsight.paths.Folders`)."""
        if path.suffix.lower() != ".png":
            raise BadRequest(f"snapshots are PNG files: {path.name}")
        result = self._on_gl_thread(lambda r: r.snapshot(path))
        return Path(result)

    def pixels(self) -> np.ndarray:
        """Draw now: the picture as (height, width, 3) uint8 RGB."""
        return np.ascontiguousarray(self._on_gl_thread(lambda r: r.draw()))  # a copy: the frame is reused

    def settings(self) -> dict[str, list[object]]:
        """Every setting of the picture as the commands that set them (for scenes)."""
        r = self._ready()
        return {
            "/ear/view": [r.view], "/ear/view/colormap": [r.colormap], "/ear/view/mode": [r.mode],
            "/ear/view/tau": [float(r.tau)], "/ear/view/gain": [float(r.gain)], "/ear/view/decay": [float(r.decay)],
            "/ear/view/glow": [float(r.glow)],
            "/ear/view/labels": [int(r.labels)], "/ear/view/size": list(self.size), "/ear/view/fps": [self.fps],
            "/ear/view/layout": [self.seed], "/ear/view/track": [self.track],
        }

    def show_track(self, number: int) -> None:
        """Show track ``number``'s ear (built anew: its layout, its activations)."""
        if not 1 <= number <= len(self.tracks):
            raise BadRequest(f"no track {number} (the server hears {len(self.tracks)}: --inputs)")
        self.track, self.state = number, self.tracks[number - 1]
        self._ear_name = ""  # rebuilt by the display thread, even for the same ear
        self._wake.set()
        self._ready()

    def set_size(self, width: int, height: int) -> None:
        if not (64 <= width <= 3840 and 64 <= height <= 2160):
            raise BadRequest(f"size must be within 64x64 and 3840x2160, got {width}x{height}")
        self.size = (width, height)
        self._ear_name = ""  # rebuilt at the new size by the display thread
        self._wake.set()

    def relayout(self, seed: int) -> None:
        """Lay the ear out again with another seed (cached per seed); the picture follows."""
        self.seed = seed
        self._ear_name = ""
        self._wake.set()
        self._ready(timeout=600.0)

    def set_fps(self, fps: float) -> None:
        if not 1.0 <= fps <= 120.0:
            raise BadRequest(f"fps must be in [1, 120], got {fps:g}")
        self.fps = self.fps_live = fps
        self.server.stream_fps = fps

    # -------------------------------------------------------------- the display thread

    def _build(self) -> None:
        from .layout import get_layout
        from .render import Renderer

        # The name first: if the ear is swapped between the two reads, the name is the old one
        # and the next turn of the loop builds again.
        name = self.state.name
        ear = self.state.ear
        old, self.renderer = self.renderer, None
        if old is not None:
            old.close()
        try:
            layout = get_layout(ear, progress=False, seed=self.seed)
            renderer = Renderer(ear, layout, width=self.size[0], height=self.size[1], window=self.window)
            for setting, value in self._settings.items():
                setattr(renderer, setting, value)
            sel = self.state.selection
            if sel.channels and sel.layer in ear.layer_names:  # "all channels" would highlight everything
                renderer.select(sel.layer, list(sel.channels))
        except Exception as exc:  # the view is optional: the server goes on without a picture
            log.exception("view: cannot build the renderer for %s", name)
            self.error = f"{type(exc).__name__}: {exc}"
            self._ear_name = name
            return
        self.error = None
        self.renderer, self._ear_name = renderer, name
        for tid in os_threads("llvmpipe"):  # Mesa's rasterizer threads: the picture's heaviest work
            lower_priority(NICE_PICTURE, tid)

    def _loop(self) -> None:
        while self._running:
            if self._ear_name != self.state.name:
                self._build()
            renderer = self.renderer
            with self._lock:
                jobs, self._jobs = self._jobs, []
            if renderer is None:
                for job in jobs:  # nothing to run them on: they fail with the reason
                    job(None)
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            self._feed(renderer)
            for job in jobs:
                job(renderer)
            if self.window or time.monotonic() < self._watched_until:
                start = time.perf_counter()
                renderer.draw()
                self.frames_drawn += 1
                self._pace()
                self._wake.wait(max(0.0, 1.0 / self.fps_live - (time.perf_counter() - start)))
            else:
                self._wake.wait(0.25)
            self._wake.clear()

    def _pace(self) -> None:
        """Once a second: halve the picture rate while the machine is overloaded (down to
        MIN_FPS), and win it back a quarter at a time when it is not. The audio and the ear come first."""
        now = time.monotonic()
        if now - self._paced_at < 1.0:
            return
        self._paced_at = now
        if self.overloaded():
            if self.fps_live > MIN_FPS:
                if self.fps_live == self.fps:
                    log.warning("view: the machine is behind the audio; drawing fewer frames until it catches up")
                self.fps_live = max(MIN_FPS, self.fps_live / 2)
                self.slowed += 1
        else:
            self.fps_live = min(self.fps, self.fps_live * 1.25)

    def _feed(self, renderer: Renderer) -> None:
        state = self.state
        frame = state.latest
        ear = renderer.ear
        if not frame or set(frame) != set(ear.layer_names):
            return
        renderer.update(frame)
        if ear.labels and ear.output_layer:
            from .features import top_labels

            probs = np.asarray(frame[ear.output_layer], np.float32)
            renderer.set_vector("tags", probs)
            top = np.zeros_like(probs)
            chosen = top_labels(probs, *state.top)
            top[chosen] = probs[chosen]
            renderer.set_vector("top", top if chosen else probs)
        embedding = state.embedding
        if embedding is not None and embedding.layer in frame:
            renderer.set_vector("embed", embedding(frame))


def _placeholder_jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 36), (5, 5, 8)).save(buf, format="JPEG")
    return buf.getvalue()
