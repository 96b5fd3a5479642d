"""Linear probes with known answers: what a trained ear's layers know about pitch class and instrument."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ears.cpc import CPCEar, CPCNet
from .data import note_set


def _logistic_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> float:
    """Multinomial logistic regression (L2, L-BFGS) on standardised features; test accuracy."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xtr = torch.from_numpy((x_train - mu) / sd).float()
    xte = torch.from_numpy((x_test - mu) / sd).float()
    ytr = torch.from_numpy(y_train).long()
    n_cls = int(max(y_train.max(), y_test.max())) + 1
    lin = nn.Linear(xtr.shape[1], n_cls)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(lin(xtr), ytr) + 1e-3 * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)  # type: ignore[arg-type]
    with torch.no_grad():
        return float((lin(xte).argmax(1).numpy() == y_test).mean())


def probe(nets: dict[str, CPCNet], *, seed: int = 0) -> dict[str, object]:
    """Linear probes with known answers, on notes rendered by fluidsynth (see :func:`note_set`).

    - pitch class (12-way), trained on 5 GM instruments, tested on 3 others;
    - instrument (8-way), trained on 2/3 of the pitches, tested on the rest.

    Features per note: the mean over the note (after its first 0.1 s) of a layer. The log-mel
    input itself is the baseline; a randomly initialised network is the other.
    """
    audio, notes = note_set()
    programs = sorted({int(n["program"]) for n in notes})
    test_programs = set(programs[1::3])
    rng = np.random.default_rng(seed)
    pitches = sorted({int(n["pitch"]) for n in notes})
    test_pitches = set(rng.choice(pitches, len(pitches) // 3, replace=False).tolist())
    y_pc = np.array([n["pitch_class"] for n in notes])
    y_inst = np.array([programs.index(int(n["program"])) for n in notes])
    pc_test = np.array([n["program"] in test_programs for n in notes])
    inst_test = np.array([n["pitch"] in test_pitches for n in notes])
    results: dict[str, object] = {
        "notes": len(notes),
        "programs": programs,
        "pitch_class_test_programs": sorted(test_programs),
        "chance": {"pitch_class": 1 / 12, "instrument": 1 / len(programs)},
    }
    for tag, net in nets.items():
        ear = CPCEar(net)
        frames = ear.analyse(audio)
        fe = net.frontend
        with torch.no_grad():
            x = torch.from_numpy(np.concatenate([np.zeros(fe.n_fft - fe.hop, np.float32), audio]))
            frames["logmel"] = fe.raw(x.unfold(0, fe.n_fft, fe.hop)).numpy()
        for layer in ("logmel", "z", "ar") if tag == "trained" else ("z", "ar"):
            hop = fe.hop if layer == "logmel" else ear.hop
            value = frames[layer].reshape(frames[layer].shape[0], -1)
            feats = np.stack(
                [
                    value[
                        (int(n["start"]) + ear.sample_rate // 10) // hop : int(n["end"]) // hop
                    ].mean(0)
                    for n in notes
                ]
            )
            name = "logmel" if layer == "logmel" else f"{tag}.{layer}"
            results[name] = {
                "pitch_class": _logistic_probe(
                    feats[~pc_test], y_pc[~pc_test], feats[pc_test], y_pc[pc_test]
                ),
                "instrument": _logistic_probe(
                    feats[~inst_test], y_inst[~inst_test], feats[inst_test], y_inst[inst_test]
                ),
            }
    return results
