"""Drum grooves sequenced from the recorded one-shots of Debian ``hydrogen-drumkits`` (the recipe's ``drums/``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import io

HYDROGEN_KITS = Path("/usr/share/hydrogen/data/drumkits")


@dataclass(frozen=True)
class Groove:
    index: int
    kit: str
    author: str
    licence: str
    bpm: float
    audio: np.ndarray


def _kit_samples(kit: Path) -> tuple[dict[str, list[Path]], str, str]:
    """Samples of a Hydrogen kit grouped by role (kick/snare/hat/other), its author and licence."""
    xml = (kit / "drumkit.xml").read_text(errors="replace")
    author = (re.findall(r"<author>([^<]*)", xml) or ["?"])[0].strip()
    licence = (
        re.findall(r"<license>([^<]*)", xml) or ["see /usr/share/doc/hydrogen-drumkits/copyright"]
    )[0].strip()
    roles: dict[str, list[Path]] = {"kick": [], "snare": [], "hat": [], "other": []}
    for block in re.findall(r"<instrument>(.*?)</instrument>", xml, re.S):
        names = re.findall(r"<filename>([^<]*)", block)
        label = " ".join(re.findall(r"<name>([^<]*)", block)[:1] + names).lower()
        files = [kit / n for n in names if (kit / n).exists()]
        role = (
            "kick"
            if re.search(r"kick|bd|bass ?drum", label)
            else "snare"
            if re.search(r"snare|sd|clap", label)
            else "hat"
            if re.search(r"hat|hh|ride|shaker", label)
            else "other"
        )
        roles[role] += files
    return roles, author, licence


def grooves(count: int, seed: int, *, sample_rate: int, seconds: float = 12.0) -> Iterator[Groove]:
    """``count`` random 16-step grooves (tempo 70-170 bpm), the kits taken in turn; one seeded
    sequence, so a groove is the same whichever others are kept."""
    if not HYDROGEN_KITS.exists():
        return
    kits = sorted(p for p in HYDROGEN_KITS.iterdir() if (p / "drumkit.xml").exists())
    rng = np.random.default_rng(seed)
    cache: dict[Path, np.ndarray] = {}
    for i in range(count):
        kit = kits[i % len(kits)]
        roles, author, licence = _kit_samples(kit)
        pool = [f for fs in roles.values() for f in fs]
        if not pool:
            continue
        bpm = float(rng.uniform(70, 170))
        step = int(sample_rate * 60 / bpm / 4)
        n_steps = int(seconds * sample_rate) // step
        density = {"kick": 0.3, "snare": 0.2, "hat": 0.6, "other": 0.12}
        # A bar of 16 steps per role, repeated with small variations: grooves repeat, like music.
        bars = {r: rng.random(16) < d for r, d in density.items()}
        bars["kick"][0] = True
        mix = np.zeros(n_steps * step + 2 * sample_rate, np.float32)
        for s in range(n_steps):
            for role, files in roles.items():
                files = files or pool
                hit = bars[role][s % 16] ^ (rng.random() < 0.05)
                if not hit:
                    continue
                f = files[int(rng.integers(len(files)))]
                if f not in cache:
                    cache[f] = io.read(f, sample_rate, mono=True)[0][: 2 * sample_rate]
                smp = cache[f] * float(rng.uniform(0.4, 1.0))
                mix[s * step : s * step + smp.shape[0]] += smp
        yield Groove(i, kit.name, author, licence, bpm, mix[: n_steps * step])
