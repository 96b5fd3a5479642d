"""What a training step draws from: files split by name, all audio in memory, random clips."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..audio import io
from ..ears.cpc import CPCNet
from .data import twin_base


def split_files(files: Sequence[Path], val_percent: float) -> tuple[list[Path], list[Path]]:
    """Validation split *by file*, decided by a hash of the file name so it is stable across runs."""

    def bucket(p: Path) -> float:  # a twin goes where its original goes: the same music is never on both sides
        return int(hashlib.sha1(twin_base(p).name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF * 100

    val = [f for f in files if bucket(f) < val_percent]
    train = [f for f in files if bucket(f) >= val_percent]
    if not val and len(train) > 1 and val_percent > 0:  # tiny sets: still hold one file out
        val = [train.pop(int(np.argmin([bucket(f) for f in train])))]
    if not train:
        raise ValueError("no training audio left after the validation split")
    return train, val


def hold_out_source(files: Sequence[Path], folder: str) -> tuple[list[Path], list[Path]]:
    """Every file below a folder called ``folder`` (a source of the recipe: ``scores``, ``drums``, a
    music package) apart from the rest: a whole source the ear never hears in training."""
    held = [f for f in files if folder in f.parts[:-1]]
    if not held:
        raise ValueError(f"no audio below a folder called {folder!r} to hold out")
    rest = [f for f in files if folder not in f.parts[:-1]]
    if not rest:
        raise ValueError(f"holding out {folder!r} leaves no training audio")
    return rest, held


class Clips:
    """All audio in memory at the model's rate; draws random fixed-length clips, ``(batch, samples)``.

    Files with a twin (the same score transposed, :data:`earsight.train.data.TWIN`) form pairs
    that :meth:`draw` can take together.
    """

    def __init__(self, files: Sequence[Path], sample_rate: int, clip: int) -> None:
        self.clip = clip
        read = [(f, io.read(f, sample_rate, mono=True)[0]) for f in files]
        read = [(f, a) for f, a in read if a.shape[0] > 0]
        self.audio = [a for _, a in read]
        lengths = np.array([a.shape[0] for a in self.audio], np.float64)
        self.seconds = float(lengths.sum() / sample_rate)
        self.weights = lengths / lengths.sum() if lengths.size else lengths
        index = {f: i for i, (f, _) in enumerate(read)}
        self.pairs = [(index[twin_base(f)], i) for f, i in index.items() if twin_base(f) != f and twin_base(f) in index]
        """(original, twin) indices into :attr:`audio`."""
        span = np.array([min(self.audio[a].shape[0], self.audio[b].shape[0]) for a, b in self.pairs], np.float64)
        self.pair_weights = span / span.sum() if span.size else span

    def draw(self, n: int, rng: np.random.Generator, *, gain: bool = True, twins: int = 0) -> Tensor:
        """``n`` clips; the first ``2 * twins`` are pairs: a clip and the same span of its twin, at one level.

        A pair puts the same music in another key among the candidates, so telling the future
        from its twin takes knowing the pitches, not only who plays and when.
        """
        if twins and not self.pairs:
            raise ValueError("no score has its twin in this audio: build the data with --twins")
        if 2 * twins > n:
            raise ValueError(f"{twins} pairs do not fit in {n} clips")
        out = np.zeros((n, self.clip), np.float32)
        for i in range(n):
            if i < 2 * twins:
                if i % 2:
                    continue  # the twin: filled with its original
                first, second = self.pairs[int(rng.choice(len(self.pairs), p=self.pair_weights))]
                span = min(self.audio[first].shape[0], self.audio[second].shape[0])
                start = int(rng.integers(0, max(1, span - self.clip)))
                rows = [(i, self.audio[first]), (i + 1, self.audio[second])]
            else:
                a = self.audio[int(rng.choice(len(self.audio), p=self.weights))]
                start = int(rng.integers(0, max(1, a.shape[0] - self.clip)))
                rows = [(i, a)]
            # Random level: the ear should not need music at one loudness (a pair shares it).
            level = float(10 ** rng.uniform(-0.6, 0.2)) if gain else 1.0
            for row, audio in rows:
                piece = audio[start : start + self.clip]
                out[row, : piece.shape[0]] = piece * level
        return torch.from_numpy(out)


def logmel_stats(
    net: CPCNet, clips: Clips, rng: np.random.Generator, n: int = 64
) -> tuple[Tensor, Tensor]:
    """Mean and std per mel bin of the raw log-mel over ``n`` random clips (for input standardisation)."""
    fe = net.frontend
    x = clips.draw(n, rng, gain=False)
    with torch.no_grad():
        frames = x.unfold(1, fe.n_fft, fe.hop)
        logmel = fe.raw(frames).reshape(-1, fe.filterbank.shape[1])
    return logmel.mean(0), logmel.std(0).clamp_min(1e-3)
