"""The report of a run: its figures (JSON) and its curves (PNG)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..ears.cpc import CPCConfig
from .config import TrainConfig


def horizon_names(horizons: Sequence[int], frame_rate: float) -> list[str]:
    """Horizons in seconds, as short as they stay distinct (0.18s, 0.2s, 1s)."""
    return [f"{k / frame_rate:g}s" for k in horizons]


def per_horizon(model_cfg: CPCConfig, values: Sequence[float]) -> dict[str, float]:
    """One value per horizon, keyed by the horizon in seconds (as the report writes accuracies)."""
    names = horizon_names(model_cfg.horizons, model_cfg.sample_rate / model_cfg.hop)
    return dict(zip(names, values, strict=True))


def plot(history: dict[str, list], horizons: Sequence[int], frame_rate: float, path: Path) -> None:
    """Loss (train, held-out) and accuracy per horizon over the steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(history["step"], history["loss"], lw=0.6, alpha=0.6, label="train")
    if history["val_step"]:
        ax1.plot(history["val_step"], history["val_loss"], "o-", label="held-out")
    ax1.set_xlabel("step")
    ax1.set_ylabel("InfoNCE loss")
    ax1.legend()
    for i, k in enumerate(horizons):
        line = ax2.plot(
            history["val_step"],
            [a[i] for a in history["val_acc"]],
            "o-",
            label=horizon_names([k], frame_rate)[0],
        )
        ax2.plot(
            history["step"],
            [a[i] for a in history["acc"]],
            lw=0.5,
            alpha=0.4,
            color=line[0].get_color(),
        )
    ax2.set_xlabel("step")
    ax2.set_ylabel("accuracy (dots: held-out, lines: train)")
    ax2.legend(title="horizon")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summary(
    cfg: TrainConfig,
    model_cfg: CPCConfig,
    *,
    out_path: Path,
    world: int,
    data: dict[str, float],
    step: int,
    trained_seconds: float,
    history: dict[str, list],
    clip: int,
) -> dict[str, object]:
    """The figures of a finished run: data, speed, held-out loss and accuracy per horizon (and chance)."""
    frame_rate = model_cfg.sample_rate / model_cfg.hop
    return {
        "weights": out_path.name,
        "config": cfg.__dict__ | {"model": model_cfg.__dict__},
        "processes": world,
        "threads_per_process": cfg.threads,
        "data": data,
        "steps": step,
        "train_seconds": round(trained_seconds, 1),
        "steps_per_second": round(step / max(trained_seconds, 1e-9), 3),
        "audio_seconds_per_second": round(
            step * cfg.batch * world * cfg.seconds / max(trained_seconds, 1e-9), 1
        ),
        "horizons_seconds": [k / frame_rate for k in model_cfg.horizons],
        "heldout": {
            "loss": history["val_loss"][-1],
            "accuracy": per_horizon(model_cfg, history["val_acc"][-1]),
            # Input the target shares with what the context heard: zero by construction (CPCObjective).
            "overlap_samples": [model_cfg.overlap(k) for k in model_cfg.horizons],
            "candidates_per_prediction": [
                cfg.batch * (clip // model_cfg.hop - k) for k in model_cfg.horizons
            ],
            "chance": [
                1 / (cfg.batch * (clip // model_cfg.hop - k)) for k in model_cfg.horizons
            ],
        },
        "final_train_loss": float(np.mean(history["loss"][-20:])),
    } | _at_start(history, model_cfg)


def _at_start(history: dict[str, list], model_cfg: CPCConfig) -> dict[str, object]:
    """Held-out accuracy of the ear a run started from (evaluated before its first step), if it did."""
    if not history["val_step"] or history["val_step"][0] != 0:
        return {}
    return {"heldout_at_start": {"loss": history["val_loss"][0], "accuracy": per_horizon(model_cfg, history["val_acc"][0])}}


def write_json(report: dict[str, object], out_path: Path) -> None:
    """``NAME.report.json`` beside the weights ``out_path``."""
    out_path.with_suffix(".report.json").write_text(json.dumps(report, indent=1, default=str))


def write(report: dict[str, object], history: dict[str, list], model_cfg: CPCConfig, out_path: Path) -> None:
    """``NAME.report.json`` and ``NAME.report.png`` beside the weights."""
    write_json(report, out_path)
    frame_rate = model_cfg.sample_rate / model_cfg.hop
    plot(history, model_cfg.horizons, frame_rate, out_path.with_suffix(".report.png"))
