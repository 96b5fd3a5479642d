"""Offline pictures: a video of what an ear hears in a file, the renderer's benchmark, and
``earsight render FILE``.

Frames are piped raw to ffmpeg (H.264 + AAC), which also decodes the input audio.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..ears.base import Ear
from ..errors import EarsightError
from ..layout import get_layout, probe_signal
from .renderer import Renderer
from .state import COLORMAPS, VIEWS


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise EarsightError("ffmpeg not found (Debian: apt install ffmpeg)")
    return path


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode any file ffmpeg reads to mono float32 at ``sample_rate``: (samples,)."""
    path = Path(path)
    if not path.is_file():
        raise EarsightError(f"no audio file {path}")
    cmd = [_ffmpeg(), "-v", "error", "-nostdin", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise EarsightError(f"ffmpeg could not read {path}: {proc.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(proc.stdout, np.float32).copy()


def render_file(
    audio_path: str | Path,
    ear_name: str,
    out_path: str | Path,
    fps: float = 30,
    size: tuple[int, int] = (1280, 720),
    *,
    view: str = "layout",
    colormap: str = "magma",
    progress: bool = True,
) -> Path:
    """Render a video of what ``ear_name`` hears in ``audio_path``, with the file's audio muxed in.

    Every ear frame is fed to the renderer in order, a hop apart on the sound's clock (so the
    light's time constants behave as live); each video
    frame shows the ear frame whose input weighs most at that moment (the ear's declared
    latency compensated). Frames are piped raw to ffmpeg (H.264 + AAC). Returns ``out_path``.
    """
    from ..ears import registry

    ear = registry.load(ear_name)
    audio = read_audio(audio_path, ear.sample_rate)
    if audio.size == 0:
        raise EarsightError(f"{audio_path} holds no audio")
    duration = audio.size / ear.sample_rate
    frames = ear.analyse(audio)
    n_ear = min((v.shape[0] for v in frames.values()), default=0)
    n_video = max(1, int(np.ceil(duration * fps - 1e-9)))
    width, height = (int(size[0]) // 2 * 2, int(size[1]) // 2 * 2)  # H.264 wants even sizes
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        _ffmpeg(), "-v", "error", "-y", "-nostdin",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
        "-i", str(audio_path),
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "160k",
        "-t", f"{duration:.6f}",
        str(out_path),
    ]  # fmt: skip
    renderer = Renderer(ear, get_layout(ear, progress=progress), width=width, height=height)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        renderer.view = view
        renderer.colormap = colormap
        fed = 0
        for k in tqdm(range(n_video), desc="render", unit="frame", disable=not progress):
            t = k / fps
            renderer.set_time(t)
            # The frame whose input weighs most now: latency samples after t, completed at (j+1)*hop.
            upto = min(n_ear, int((t * ear.sample_rate + ear.latency) // ear.hop))
            while fed < upto:
                renderer.update({name: v[fed] for name, v in frames.items()}, dt=ear.hop / ear.sample_rate)
                fed += 1
            proc.stdin.write(renderer.draw().tobytes())
        proc.stdin.close()
        err = proc.stderr.read() if proc.stderr else b""
        if proc.wait() != 0:
            raise EarsightError(f"ffmpeg failed: {err.decode(errors='replace').strip()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        renderer.close()
    return out_path


def bench_render(ear: Ear, *, size: tuple[int, int] = (1280, 720), seconds: float = 3.0) -> dict[str, float]:
    """Frames per second at ``size`` for each view, every neuron drawn, with an update and a
    read-back per frame (what the live loop does); ``*_render_fps`` without the read-back."""
    layout = get_layout(ear, progress=False)
    frames = ear.analyse(probe_signal(ear.sample_rate, 2.0))
    n = min(v.shape[0] for v in frames.values())
    result: dict[str, float] = {"neurons": float(layout.n)}
    with Renderer(ear, layout, width=size[0], height=size[1]) as renderer:
        renderer.select(ear.layers[-1].name, [0])
        for view in VIEWS:
            renderer.view = view
            renderer.draw()  # compile and warm up outside the clock
            count = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds / 2:
                renderer.update({name: v[count % n] for name, v in frames.items()})
                renderer.draw()
                count += 1
            result[f"{view}_fps"] = count / (time.perf_counter() - t0)
            count = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds / 2:
                renderer.render()
                renderer.ctx.finish()
                count += 1
            result[f"{view}_render_fps"] = count / (time.perf_counter() - t0)
    return result


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, not {text!r}") from err
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``earsight render FILE --out video.mp4``."""
    parser.add_argument("file", type=Path, help="audio file (anything ffmpeg reads)")
    parser.add_argument("--out", type=Path, default=None, help="video to write (default: FILE.mp4)")
    parser.add_argument("--ear", default=None, help="ear name (default: the registry's default)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", type=_size, default=(1280, 720), help="WxH (default 1280x720)")
    parser.add_argument("--view", choices=VIEWS, default="layout")
    parser.add_argument("--colormap", choices=COLORMAPS, default="magma")
    parser.add_argument("--bench", action="store_true", help="print the renderer's frame rates for the ear instead")


def run(args: argparse.Namespace) -> int:
    """``earsight render FILE``: write the video (or, with --bench, measure frame rates)."""
    from ..ears import registry

    ear_name = args.ear or registry.DEFAULT
    if args.bench:
        for key, value in bench_render(registry.load(ear_name), size=args.size).items():
            print(f"{key}: {value:.1f}")
        return 0
    out = args.out or args.file.with_suffix(".mp4")
    path = render_file(args.file, ear_name, out, fps=args.fps, size=args.size, view=args.view, colormap=args.colormap)
    print(f"wrote {path}")
    return 0
