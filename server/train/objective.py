"""The CPC objective: InfoNCE over every horizon (van den Oord et al. 2018), and its held-out evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ears.cpc import CPCNet


class CPCObjective(nn.Module):
    """InfoNCE over all horizons. ``forward(audio (batch, samples))`` -> loss, accuracy per horizon."""

    def __init__(self, net: CPCNet, predictions: int) -> None:
        super().__init__()
        cfg = net.cfg
        seen = {k: cfg.overlap(k) for k in cfg.horizons if cfg.overlap(k)}
        if seen:
            raise ValueError(
                f"horizons {sorted(seen)} (frames) share {sorted(seen.values())} samples of input with the context: "
                f"predicting them can copy what was heard; use horizons of at least {cfg.min_horizon} frames"
            )
        self.net = net
        self.predictions = predictions

    def forward(
        self, audio: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        out = self.net(audio)
        z, c = out["z"], out["ar"]  # (batch, frames, dim)
        b, t, d = z.shape
        losses, accs = [], []
        for k, head in zip(self.net.cfg.horizons, self.net.heads, strict=True):
            if t <= k:
                raise ValueError(f"clips of {t} frames are too short for a horizon of {k}")
            targets = z[:, k:].reshape(-1, d)  # every future frame is a candidate
            pred = head(c[:, : t - k]).reshape(-1, d)
            n = pred.shape[0]
            if self.predictions and self.predictions < n:
                idx = torch.randperm(n, generator=generator)[: self.predictions]
            else:
                idx = torch.arange(n)
            logits = pred[idx] @ targets.T  # (predictions, candidates)
            losses.append(F.cross_entropy(logits, idx))
            accs.append((logits.argmax(1) == idx).float().mean())
        return torch.stack(losses).mean(), torch.stack(accs).detach()


@torch.no_grad()
def evaluate(objective: CPCObjective, clips: Sequence[Tensor]) -> tuple[float, list[float]]:
    """Mean held-out loss and accuracy per horizon, every position predicting (no subsampling)."""
    predictions, objective.predictions = objective.predictions, 0
    was_training = objective.training
    objective.eval()
    try:
        results = [objective(x) for x in clips]
    finally:
        objective.predictions = predictions
        objective.train(was_training)
    loss = float(np.mean([float(r[0]) for r in results]))
    acc = torch.stack([r[1] for r in results]).mean(0).tolist()
    return loss, acc
