"""A dream's picture: spectrograms of the input, the dream and the change, written beside the audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dsp import stft_frames


def _db(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    spec = np.abs(stft_frames(np.asarray(x, np.float32).reshape(-1), n_fft, hop)).T  # (bins, frames)
    return 20.0 * np.log10(spec + 1e-9)


def save_dream_png(audio: np.ndarray, dreamed: np.ndarray, sample_rate: int, path: str | Path, title: str = "") -> Path:
    """Three spectrograms (input, dream, change: dream minus input) on one colour scale, so the
    change reads in dB against the input; time across, frequency up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    n_fft = 2048 if sample_rate > 24000 else 1024
    hop = n_fft // 4
    panels = [("input", audio), ("dream", dreamed), ("change (dream - input)", np.asarray(dreamed) - np.asarray(audio))]
    images = [_db(x, n_fft, hop) for _, x in panels]
    top = max(float(im.max()) for im in images)
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), dpi=100, sharex=True)
    seconds = max(len(audio) / sample_rate, 1e-3)
    for ax, (name, _), im in zip(axes, panels, images, strict=True):
        shown = ax.imshow(im, origin="lower", aspect="auto", cmap="magma", vmin=top - 80.0, vmax=top,
                          extent=(0.0, seconds, 0.0, sample_rate / 2000.0))
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9)
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(shown, ax=list(axes), label="dB", shrink=0.6)
    fig.suptitle(title or "dream")
    fig.savefig(path)
    plt.close(fig)
    return path
