"""The hyper-parameters of one training run (written into its report)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Hyper-parameters of one run (written into the report)."""

    steps: int = 2000
    minutes: float | None = None
    """Stop early after this much wall time (all processes stop together)."""
    batch: int = 8
    """Clips per process and step."""
    seconds: float = 4.0
    """Length of one training clip."""
    lr: float = 1e-3
    warmup: int = 100
    predictions: int = 256
    """Predicting positions sampled per horizon and step (the candidates are all positions)."""
    val_percent: float = 10.0
    eval_every: int = 200
    eval_clips: int = 48
    checkpoint_every: int = 200
    threads: int = 1
    seed: int = 0
    probe: bool = True
    model: dict[str, object] = field(default_factory=dict)
    """Overrides of :class:`CPCConfig` fields (e.g. ``{"ar_dim": 128}``)."""
