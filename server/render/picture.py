"""``earsight bench --only picture``: does the picture move with the music? Measured, not judged by eye.

For one ear, offline (every ear frame fed in order, a picture drawn about 30 times a second of
the sound's clock, as often as the ear's hop allows), in each light mode (``change``, the
default, and ``raw``, the baseline), except the frame rate, which is measured live:

- **silence vs music / clicks**: the mean absolute difference, in grey levels (0-255, over every
  pixel and colour), between a snapshot after 2.5 s of silence and one after 2.5 s more of the
  demo music (pyo's sounds) or of a click train;
- **onset following**: over 10 s of the demo music and of pyo's drum loop, the Pearson
  correlation between the picture's frame-to-frame change and the sound's onset strength
  (spectral flux) in the same frame;
- **distinct pixels**: the fraction of neurons whose centre pixel no other neuron shares;
- **fps per view**: pictures a second the live display draws (asked for 120) while frames
  arrive at the ear's rate and one viewer pulls the MJPEG stream, and the distinct pictures a
  second that viewer receives; every neuron drawn. The median of three turns per view, with
  the lowest and highest.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .renderer import Renderer
from .state import VIEWS

if TYPE_CHECKING:
    from ..ears.base import Ear
    from ..layout import Layout

FPS = 30.0
SIZE = (1280, 720)


def demo_music(sample_rate: int, seconds: float) -> np.ndarray:
    """The demo input's music (pyo's sound files, one after the other, looped) at ``sample_rate``."""
    from ..audio.sources import demo_files
    from .video import read_audio

    parts = [read_audio(path, sample_rate) for path in demo_files()]
    music = np.concatenate([p / max(float(np.abs(p).max()), 1e-9) * 0.5 for p in parts if p.size])
    return np.resize(music, int(seconds * sample_rate)).astype(np.float32)


def drum_loop(sample_rate: int, seconds: float) -> np.ndarray:
    """pyo's example drum loop, looped to ``seconds``: music with clear onsets."""
    from ..audio.sources import pyo_example_sound
    from .video import read_audio

    return np.resize(read_audio(pyo_example_sound("drumloop.wav"), sample_rate), int(seconds * sample_rate)).astype(np.float32)


def click_train(sample_rate: int, seconds: float, rate: float = 4.0) -> np.ndarray:
    """Clicks (1 ms, amplitude 0.5) ``rate`` times a second."""
    out = np.zeros(int(seconds * sample_rate), np.float32)
    width = max(1, sample_rate // 1000)
    for start in np.arange(0, out.size, int(sample_rate / rate)):
        out[start : start + width] = 0.5
    return out


def onset_strength(audio: np.ndarray, sample_rate: int, fps: float, frames: int) -> np.ndarray:
    """(frames,) spectral flux (half-wave rectified rise of log magnitudes) summed over each picture frame."""
    n_fft, hop = 1024, 256
    pad = np.concatenate([np.zeros(n_fft, np.float32), audio])
    count = (pad.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    mag = np.log1p(100.0 * np.abs(np.fft.rfft(pad[idx] * np.hanning(n_fft), axis=1)))
    flux = np.maximum(np.diff(mag, axis=0), 0.0).sum(axis=1)
    t = (np.arange(1, count) * hop) / sample_rate  # the end of each STFT frame, on the audio's clock
    which = np.minimum((t * fps).astype(np.int64), frames - 1)
    return np.bincount(which, weights=flux, minlength=frames)[:frames]


class Player:
    """Feeds an ear's frames of a sound to a renderer in order and draws on the sound's clock,
    every ``per_picture`` ear frames: ``fps`` pictures a second, the nearest to FPS an ear's hop allows."""

    def __init__(self, ear: Ear, renderer: Renderer) -> None:
        self.ear, self.renderer = ear, renderer
        self.dt = ear.hop / ear.sample_rate
        self.per_picture = max(1, round(ear.sample_rate / ear.hop / FPS))
        self.fps = ear.sample_rate / ear.hop / self.per_picture

    def play(self, audio: np.ndarray, draw_every: bool = False) -> list[np.ndarray]:
        """Feed ``audio``'s frames; returns the pictures drawn at ``fps`` (every one if ``draw_every``,
        else only the last)."""
        ear, r = self.ear, self.renderer
        frames = ear.analyse(audio)
        n = min(v.shape[0] for v in frames.values())
        pictures: list[np.ndarray] = []
        for j in range(n):
            r.update({name: v[j] for name, v in frames.items()}, dt=self.dt)
            if draw_every and (j + 1) % self.per_picture == 0:
                pictures.append(r.draw().astype(np.int16))
        if not draw_every:
            pictures.append(r.draw().astype(np.int16))
        return pictures


def level_difference(ear: Ear, layout: Layout, mode: str, sound: np.ndarray, label: str,
                     folder: Path | None = None) -> float:
    """Mean |snapshot after 2.5 s silence - snapshot after 2.5 s more of ``sound``|, grey levels;
    the snapshots go to ``folder`` as ``<ear>-<mode>-silence.png`` and ``<ear>-<mode>-<label>.png``."""
    silence = np.zeros(int(2.5 * ear.sample_rate), np.float32)
    with Renderer(ear, layout, width=SIZE[0], height=SIZE[1]) as r:
        r.mode = mode
        player = Player(ear, r)
        quiet = player.play(silence)[-1]
        loud = player.play(sound[: silence.size])[-1]
        if folder is not None:
            for name, picture in (("silence", quiet), (label, loud)):
                Image.fromarray(picture.astype(np.uint8)).save(folder / f"{ear.name}-{mode}-{name}.png")
    return float(np.abs(loud - quiet).mean())


def onset_following(ear: Ear, layout: Layout, mode: str, music: np.ndarray) -> float:
    """Correlation of the picture's frame-to-frame change with the music's onset strength."""
    silence = np.zeros(int(2.5 * ear.sample_rate), np.float32)
    with Renderer(ear, layout, width=SIZE[0], height=SIZE[1]) as r:
        r.mode = mode
        player = Player(ear, r)
        player.play(silence)
        pictures = player.play(music, draw_every=True)
        fps = player.fps
    change = np.array([np.abs(b - a).mean() for a, b in zip(pictures, pictures[1:], strict=False)])
    onsets = onset_strength(music, ear.sample_rate, fps, len(pictures))[1:]
    if change.std() == 0 or onsets.std() == 0:
        return 0.0
    return float(np.corrcoef(change, onsets)[0, 1])


def viewer_fps(ear: Ear, seconds: float = 2.0, rounds: int = 3) -> dict[str, float]:
    """Per view: pictures drawn a second by the live display (asked for 120) while the ear's newest
    frame arrives at the ear's rate and one viewer pulls the MJPEG stream; and the distinct
    pictures that viewer received a second. The views take turns, ``rounds`` times ``seconds``
    each: the median is reported, and the lowest and highest beside it (a shared machine's speed
    drifts by a quarter within a minute; turns keep one slow spell from landing on one view)."""
    from ..display import Display
    from ..state import EarState

    state = EarState(ear.name, ear)
    frames = ear.analyse(click_train(ear.sample_rate, 2.0))
    n = min(v.shape[0] for v in frames.values())
    display = Display(state, port=0, fps=120.0, size=SIZE)
    stop = threading.Event()
    received = [0]

    def feed() -> None:
        k = 0
        while not stop.is_set():
            state.publish({name: v[k % n] for name, v in frames.items()})
            k += 1
            time.sleep(ear.hop / ear.sample_rate)

    def watch() -> None:
        last = b""
        with urllib.request.urlopen(display.url + "stream.mjpg", timeout=30) as stream:
            while not stop.is_set():
                line = stream.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    stream.readline()
                    jpeg = stream.read(int(line.split(b":")[1]))
                    if jpeg != last:  # the stream repeats a picture until a new one is drawn
                        received[0] += 1
                        last = jpeg

    out: dict[str, float] = {}
    display.start()
    threads = [threading.Thread(target=f, daemon=True) for f in (feed, watch)]
    try:
        display._ready()
        for t in threads:
            t.start()
        drawn: dict[str, list[float]] = {view: [] for view in VIEWS}
        seen: dict[str, list[float]] = {view: [] for view in VIEWS}
        for _ in range(rounds):
            for view in VIEWS:
                display.set("view", view)
                time.sleep(0.5)  # the first pictures of a view compile and warm up
                d0, r0, t0 = display.frames_drawn, received[0], time.perf_counter()
                time.sleep(seconds)
                elapsed = time.perf_counter() - t0
                drawn[view].append((display.frames_drawn - d0) / elapsed)
                seen[view].append((received[0] - r0) / elapsed)
        for view in VIEWS:
            out[f"{view}_fps"] = float(np.median(drawn[view]))
            out[f"{view}_fps_lowest"], out[f"{view}_fps_highest"] = min(drawn[view]), max(drawn[view])
            out[f"{view}_viewer_fps"] = float(np.median(seen[view]))
    finally:
        stop.set()
        display.stop()
        for t in threads:
            t.join(5.0)
    return out


def bench_picture(ear: Ear, *, snapshots: Path | None = None) -> dict[str, float]:
    """The figures of the module docstring for ``ear``, in change mode and in raw mode (baseline);
    with ``snapshots`` (a folder), the silence, music and clicks pictures as PNGs."""
    from ..layout import distinct_pixel_fraction, get_layout

    layout = get_layout(ear, progress=False)
    sr = ear.sample_rate
    music = demo_music(sr, 10.0)
    clicks = click_train(sr, 2.5)
    drums = drum_loop(sr, 10.0)
    out: dict[str, float] = {"neurons": float(layout.n), "distinct_pixels": distinct_pixel_fraction(layout.positions, *SIZE)}
    for mode in ("change", "raw"):
        out[f"{mode}_music_levels"] = level_difference(ear, layout, mode, music, "music", snapshots)
        out[f"{mode}_clicks_levels"] = level_difference(ear, layout, mode, clicks, "clicks", snapshots)
        out[f"{mode}_onsets_music"] = onset_following(ear, layout, mode, music)
        out[f"{mode}_onsets_drums"] = onset_following(ear, layout, mode, drums)
    out["music_levels_ratio"] = out["change_music_levels"] / max(out["raw_music_levels"], 1e-9)
    out.update(viewer_fps(ear))
    return out
