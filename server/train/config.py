"""The hyper-parameters of one training run (written into its report)."""

from __future__ import annotations

from dataclasses import dataclass, field

FINE_TUNE_LR = 1e-4
"""A gentler rate for adapting a trained ear: the first steps must not undo what it learned."""
ADAPT_ANCHOR = 1.0
"""The command's default :attr:`TrainConfig.anchor` when adapting an ear."""


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
    twins: int = 0
    """Pairs per batch of a score clip and the same span of its twin in another key (data built with ``--twins``)."""
    lr: float = 1e-3
    """Peak learning rate (:data:`FINE_TUNE_LR` is the command's default when starting from an ear)."""
    warmup: int = 100
    predictions: int = 256
    """Predicting positions sampled per horizon and step (the candidates are all positions)."""
    val_percent: float = 10.0
    holdout: str | None = None
    """Also hold out a whole source: every file below a folder of this name, evaluated at the end."""
    eval_every: int = 200
    eval_clips: int = 48
    checkpoint_every: int = 200
    threads: int = 1
    seed: int = 0
    probe: bool = True
    model: dict[str, object] = field(default_factory=dict)
    """Overrides of :class:`CPCConfig` fields (e.g. ``{"ar_dim": 128}``); starting from an ear, only its horizons."""
    anchor: float = 0.0
    """L2 pull of the adapted layers towards the ear's own weights (L2-SP, Li et al. 2018): with
    minutes of music, a new ear must not forget what hours taught it. 0 without ``start_from``."""
    adapt: str = "all"
    """What adapting an ear trains: ``all`` layers, or ``context`` (the GRU and heads; the encoder stays)."""
    start_from: str | None = None
    """A CPC ear (a name in the registry, or a weights file) to adapt to the audio instead of a new network."""
