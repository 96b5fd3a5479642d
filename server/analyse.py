"""``earsight analyse FILE``: an ear offline on a file: every layer's activations and a picture.

The file is streamed through the ear in chunks (streaming equals offline, so this is the offline
result) to show progress on long files.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .audio import io
from .ears import registry
from .ears.base import Ear, Frames
from .features import layer_energy


def analyse_file(
    path: str | Path, ear: Ear, *, chunk_seconds: float = 10.0, progress: bool = True, full: bool = False
) -> tuple[Frames, np.ndarray]:
    """Frames of every layer for the whole file (and ``energy``: RMS per layer), and the mono audio at the ear's rate.

    Unless ``full``, layers with more than a channel axis are reduced to the mean of each channel
    (what the ``act`` stream sends): CREPE tiny's conv1 alone is 6.5 MB a second in full.
    """
    path = Path(path)
    audio, _ = io.read(path, ear.sample_rate, mono=True)  # NotFound, BadRequest
    ear.reset()
    chunk = int(chunk_seconds * ear.sample_rate)
    parts: dict[str, list[np.ndarray]] = {layer.name: [] for layer in ear.layers}
    energy: list[np.ndarray] = []
    for start in tqdm(range(0, len(audio), chunk), desc=f"{ear.name} {path.name}", unit="chunk", disable=not progress):
        got = ear.stream(audio[start : start + chunk])
        n = next(iter(got.values())).shape[0]
        energy += [layer_energy({k: v[i] for k, v in got.items()}, ear.layer_names) for i in range(n)]
        for name, values in got.items():
            if not full and values.ndim > 2:
                values = values.reshape(values.shape[0], values.shape[1], -1).mean(axis=2)
            parts[name].append(values)
    frames = {
        name: np.concatenate(v) if v else np.zeros((0, *ear.layer(name).shape[: None if full else 1]), np.float32)
        for name, v in parts.items()
    }
    frames["energy"] = np.stack(energy) if energy else np.zeros((0, len(ear.layers)), np.float32)
    return frames, audio


def summarise(frames: Frames, ear: Ear) -> dict[str, np.ndarray]:
    """Per-frame features for plots and the .npz: time, layer energies, pitch where heard.

    ``time`` is the centre of each frame's window (what the frame describes); ``window_end`` the
    moment its last sample arrived (when a live stream could send it).
    """
    n = frames["energy"].shape[0]
    window_end = (np.arange(n) + 1) * ear.hop / ear.sample_rate
    out = {"time": window_end - ear.window / 2 / ear.sample_rate, "window_end": window_end, "layer_energy": frames["energy"]}
    heard = ear.pitch(frames)
    if heard is not None:
        out["pitch_hz"], out["pitch_confidence"] = heard
    if ear.labels and ear.output_layer:
        out["tags"] = frames[ear.output_layer]
    return out


def plot(summary: dict[str, np.ndarray], ear: Ear, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 + ("pitch_hz" in summary) + ("tags" in summary)
    fig, axes = plt.subplots(rows, 1, figsize=(12, 2.6 * rows), sharex=True, squeeze=False)
    ax = iter(axes[:, 0])
    t = summary["time"]
    extent = (0.0, float(t[-1]) if len(t) else 1.0, -0.5, len(ear.layers) - 0.5)
    if "pitch_hz" in summary:
        a = next(ax)
        conf = summary["pitch_confidence"]
        heard = conf > 0.1  # below that CREPE hears no pitch; its argmax is noise
        a.scatter(t[heard], summary["pitch_hz"][heard], c=conf[heard], s=3, cmap="magma", vmin=0, vmax=1)
        a.set_yscale("log")
        a.set_ylabel("pitch (Hz)")
        a.set_title("pitch (colour: confidence)")
    energy = summary["layer_energy"]
    norm = energy / np.maximum(energy.max(axis=0, keepdims=True), 1e-9)
    a = next(ax)
    a.imshow(norm.T, aspect="auto", origin="lower", extent=extent, cmap="magma", interpolation="nearest")
    a.set_yticks(range(len(ear.layers)), ear.layer_names)
    a.set_title("layer energy (each layer scaled to its maximum)")
    a = next(ax)
    for i, name in enumerate(ear.layer_names):
        a.plot(t, energy[:, i], label=name, lw=0.8)
    a.set_ylabel("RMS")
    a.legend(fontsize=7, ncol=min(4, len(ear.layers)), loc="upper right")
    if "tags" in summary and ear.labels:
        a = next(ax)
        tags = summary["tags"]
        top = np.argsort(-tags.mean(axis=0))[:10]
        a.imshow(tags[:, top].T, aspect="auto", origin="lower", cmap="viridis", extent=(extent[0], extent[1], -0.5, len(top) - 0.5))
        a.set_yticks(range(len(top)), [ear.labels[i] for i in top])
        a.set_title("the ten most probable tags")
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="an audio file (wav, aif, flac, ogg, mp3)")
    p.add_argument("--ear", default=registry.DEFAULT, choices=registry.names())
    p.add_argument("--out", default=None, help="output prefix (default: the file's name beside it)")
    p.add_argument("--full", action="store_true", help="keep every unit of every layer (large), not each channel's mean")


def run(args: argparse.Namespace) -> int:
    ear = registry.load(args.ear)
    frames, audio = analyse_file(args.file, ear, full=args.full)
    prefix = Path(args.out) if args.out else Path(args.file).with_suffix("")
    prefix = prefix.with_name(f"{prefix.name}.{ear.name}")
    summary = summarise(frames, ear)
    arrays: dict[str, Any] = {f"layer/{k}": v for k, v in frames.items() if k != "energy"} | summary
    np.savez_compressed(f"{prefix}.npz", **arrays)
    plot(summary, ear, f"{Path(args.file).name} through {ear.name} ({len(audio) / ear.sample_rate:.1f} s)", Path(f"{prefix}.png"))
    print(f"wrote {prefix}.npz and {prefix}.png")
    return 0
