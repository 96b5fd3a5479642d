"""Train a CPC ear on your own audio: ``earsight train AUDIO... --out NAME``.

Contrastive predictive coding (van den Oord et al. 2018) as in Immersions: the encoder maps
audio to ``z_t`` (50 frames/s), a GRU summarises the past into ``c_t``, and one linear head
per horizon ``k`` scores ``W_k c_t`` against the true ``z_{t+k}`` and against every other
``z`` in the batch (other times of the same clip, other clips): InfoNCE, a cross-entropy over
those candidates. Horizons span 0.1-1 s, far enough that copying the present does not pay.

The same command runs data-parallel: ``torchrun --nproc_per_node 2 -m earsight.train ...``
(gloo, DDP; each process draws its own clips, gradients are averaged). Rank 0 evaluates,
checkpoints and writes the report.

Outputs, for ``--out NAME`` (a bare name goes to the models folder, a path where it says):
``NAME.safetensors`` (weights + config, loadable by :func:`earsight.ears.cpc.load`),
``NAME.report.json`` and ``NAME.report.png`` (curves, held-out accuracy, speed, probe).
Checkpoints (weights as safetensors, optimiser state via ``torch.save``) go to
``--checkpoint-dir`` and ``--resume`` continues from them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .data import find_audio, note_set, read_audio
from .ears.cpc import CPCConfig, CPCEar, CPCNet, load_net, save
from .paths import cache_dir, models_dir


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


# --------------------------------------------------------------------------- data


def split_files(files: Sequence[Path], val_percent: float) -> tuple[list[Path], list[Path]]:
    """Validation split *by file*, decided by a hash of the file name so it is stable across runs."""

    def bucket(p: Path) -> float:
        return int(hashlib.sha1(p.name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF * 100

    val = [f for f in files if bucket(f) < val_percent]
    train = [f for f in files if bucket(f) >= val_percent]
    if not val and len(train) > 1 and val_percent > 0:  # tiny sets: still hold one file out
        val = [train.pop(int(np.argmin([bucket(f) for f in train])))]
    if not train:
        raise ValueError("no training audio left after the validation split")
    return train, val


class Clips:
    """All audio in memory at the model's rate; draws random fixed-length clips, ``(batch, samples)``."""

    def __init__(self, files: Sequence[Path], sample_rate: int, clip: int) -> None:
        self.clip = clip
        self.audio = [a for a in (read_audio(f, sample_rate) for f in files) if a.shape[0] > 0]
        lengths = np.array([a.shape[0] for a in self.audio], np.float64)
        self.seconds = float(lengths.sum() / sample_rate)
        self.weights = lengths / lengths.sum() if lengths.size else lengths

    def draw(self, n: int, rng: np.random.Generator, *, gain: bool = True) -> Tensor:
        out = np.zeros((n, self.clip), np.float32)
        for i in range(n):
            a = self.audio[int(rng.choice(len(self.audio), p=self.weights))]
            start = int(rng.integers(0, max(1, a.shape[0] - self.clip)))
            piece = a[start : start + self.clip]
            # Random level: the ear should not need music at one loudness.
            out[i, : piece.shape[0]] = piece * (
                float(10 ** rng.uniform(-0.6, 0.2)) if gain else 1.0
            )
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


# --------------------------------------------------------------------------- objective


class CPCObjective(nn.Module):
    """InfoNCE over all horizons. ``forward(audio (batch, samples))`` -> loss, accuracy per horizon."""

    def __init__(self, net: CPCNet, predictions: int) -> None:
        super().__init__()
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


# --------------------------------------------------------------------------- probe


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


# --------------------------------------------------------------------------- run


def _out_path(out_name: str) -> Path:
    """A bare name goes to the models folder (or the cache if that is read-only); a path stays a path."""
    p = Path(out_name)
    if p.suffix == ".safetensors":
        return p
    if len(p.parts) > 1:
        return p.with_suffix(".safetensors")
    folder = models_dir()
    if not os.access(folder, os.W_OK):
        folder = cache_dir() / "models"
        folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{out_name}.safetensors"


def _atomic(path: Path, write: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)  # type: ignore[operator]
    os.replace(tmp, path)


def _plot(history: dict[str, list], horizons: Sequence[int], frame_rate: float, path: Path) -> None:
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
            label=f"{k / frame_rate:.1f} s",
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


def train(
    audio_paths: Sequence[str | Path],
    out_name: str,
    config: TrainConfig | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, object]:
    """Train a CPC ear on the audio files/folders given; returns the report (rank 0; others ``{}``).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) it joins a gloo process group and trains with DDP.
    """
    cfg = config or TrainConfig()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    out_path = _out_path(out_name)
    ckpt_dir = (
        Path(checkpoint_dir) if checkpoint_dir else cache_dir() / "checkpoints" / out_path.stem
    )
    report: dict[str, object] = {}
    try:
        model_cfg = CPCConfig(**cfg.model)  # type: ignore[arg-type]
        net = CPCNet(model_cfg)
        files = find_audio(audio_paths)
        if not files:
            raise FileNotFoundError(f"no audio files in {list(map(str, audio_paths))}")
        train_files, val_files = split_files(files, cfg.val_percent)
        clip = int(cfg.seconds * model_cfg.sample_rate) // model_cfg.hop * model_cfg.hop
        train_clips = Clips(train_files, model_cfg.sample_rate, clip)
        val_clips = Clips(val_files or train_files, model_cfg.sample_rate, clip)
        mean, std = logmel_stats(net, train_clips, np.random.default_rng(cfg.seed))
        net.frontend.mean.copy_(mean)
        net.frontend.std.copy_(std)
        eval_rng = np.random.default_rng(cfg.seed + 12345)
        eval_batches = [
            val_clips.draw(cfg.batch, eval_rng, gain=False)
            for _ in range(max(1, cfg.eval_clips // cfg.batch))
        ]

        objective = CPCObjective(net, cfg.predictions)
        model: nn.Module = (
            nn.parallel.DistributedDataParallel(objective) if distributed else objective
        )
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)

        def lr_at(step: int) -> float:
            # Linear warm-up, then cosine decay to 10% over the planned steps.
            if step < cfg.warmup:
                return cfg.lr * (step + 1) / cfg.warmup
            p = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
            return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))

        history: dict[str, list] = {
            "step": [],
            "loss": [],
            "acc": [],
            "val_step": [],
            "val_loss": [],
            "val_acc": [],
        }
        step, trained_seconds = 0, 0.0
        if resume and (ckpt_dir / "model.safetensors").exists():
            net.load_state_dict(load_net(ckpt_dir / "model.safetensors").state_dict())
            opt.load_state_dict(torch.load(ckpt_dir / "optim.pt", weights_only=True))
            state = json.loads((ckpt_dir / "state.json").read_text())
            step, trained_seconds, history = state["step"], state["seconds"], state["history"]

        def checkpoint() -> None:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            _atomic(ckpt_dir / "model.safetensors", lambda p: save(net, p))
            _atomic(ckpt_dir / "optim.pt", lambda p: torch.save(opt.state_dict(), p))
            _atomic(
                ckpt_dir / "state.json",
                lambda p: p.write_text(
                    json.dumps({"step": step, "seconds": trained_seconds, "history": history})
                ),
            )

        def run_eval() -> None:
            loss, acc = evaluate(objective, eval_batches)
            history["val_step"].append(step)
            history["val_loss"].append(loss)
            history["val_acc"].append(acc)

        rng = np.random.default_rng(
            [cfg.seed, rank, step]
        )  # each rank (and each resume) its own clips
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank * 7 + step)
        bar = None
        if progress and rank == 0:
            from tqdm import tqdm

            bar = tqdm(
                total=cfg.steps, initial=step, unit="step", dynamic_ncols=True, mininterval=1.0
            )
        deadline = time.monotonic() + cfg.minutes * 60 if cfg.minutes else None
        objective.train()
        while step < cfg.steps:
            t0 = time.perf_counter()
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            x = train_clips.draw(cfg.batch, rng)
            loss, acc = model(x, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            trained_seconds += time.perf_counter() - t0
            step += 1
            if distributed:  # report the mean over ranks
                stats = torch.cat([loss.detach().reshape(1), acc])
                dist.all_reduce(stats)
                stats /= world
                loss_v, acc_v = float(stats[0]), stats[1:].tolist()
            else:
                loss_v, acc_v = float(loss.detach()), acc.tolist()
            history["step"].append(step)
            history["loss"].append(loss_v)
            history["acc"].append(acc_v)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_v:.3f}", acc=" ".join(f"{a:.2f}" for a in acc_v))
            stop = torch.tensor([float(deadline is not None and time.monotonic() > deadline)])
            if distributed:
                dist.broadcast(
                    stop, 0
                )  # rank 0's clock decides, so every rank stops at the same step
            last = step >= cfg.steps or bool(stop.item())
            if rank == 0 and (step % cfg.eval_every == 0 or last):
                run_eval()
                if bar is not None:
                    bar.write(
                        f"step {step}: held-out loss {history['val_loss'][-1]:.3f} acc "
                        + " ".join(f"{a:.3f}" for a in history["val_acc"][-1])
                    )
            if rank == 0 and (step % cfg.checkpoint_every == 0 or last):
                checkpoint()
            if last:
                break
        if bar is not None:
            bar.close()

        if rank == 0:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            save(
                net,
                out_path,
                metadata={
                    "trained_steps": str(step),
                    "data_minutes": f"{train_clips.seconds / 60:.1f}",
                },
            )
            frame_rate = model_cfg.sample_rate / model_cfg.hop
            report = {
                "weights": out_path.name,
                "config": cfg.__dict__ | {"model": model_cfg.__dict__},
                "processes": world,
                "threads_per_process": cfg.threads,
                "data": {
                    "train_files": len(train_files),
                    "val_files": len(val_files),
                    "train_minutes": round(train_clips.seconds / 60, 2),
                    "val_minutes": round(val_clips.seconds / 60, 2),
                },
                "steps": step,
                "train_seconds": round(trained_seconds, 1),
                "steps_per_second": round(step / max(trained_seconds, 1e-9), 3),
                "audio_seconds_per_second": round(
                    step * cfg.batch * world * cfg.seconds / max(trained_seconds, 1e-9), 1
                ),
                "horizons_seconds": [k / frame_rate for k in model_cfg.horizons],
                "heldout": {
                    "loss": history["val_loss"][-1],
                    "accuracy": dict(
                        zip(
                            [f"{k / frame_rate:.1f}s" for k in model_cfg.horizons],
                            history["val_acc"][-1],
                            strict=True,
                        )
                    ),
                    "candidates_per_prediction": [
                        cfg.batch * (clip // model_cfg.hop - k) for k in model_cfg.horizons
                    ],
                    "chance": [
                        1 / (cfg.batch * (clip // model_cfg.hop - k)) for k in model_cfg.horizons
                    ],
                },
                "final_train_loss": float(np.mean(history["loss"][-20:])),
            }
            if cfg.probe:
                try:
                    torch.manual_seed(cfg.seed + 1)
                    random_net = CPCNet(model_cfg)
                    random_net.frontend.load_state_dict(net.frontend.state_dict())
                    report["probe"] = probe(
                        {"trained": net, "random_init": random_net}, seed=cfg.seed
                    )
                except RuntimeError as e:  # no fluidsynth: say so rather than fail the run
                    report["probe"] = {"skipped": str(e)}
            report_json = out_path.with_suffix(".report.json")
            report_json.write_text(json.dumps(report, indent=1, default=str))
            (ckpt_dir / "history.json").write_text(json.dumps(history))
            _plot(history, model_cfg.horizons, frame_rate, out_path.with_suffix(".report.png"))
        if distributed:
            dist.barrier()
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``earsight train AUDIO... --out NAME``."""
    d = TrainConfig()
    parser.add_argument(
        "audio", nargs="+", help="audio files or folders (wav, flac, ogg, mp3, aif)"
    )
    parser.add_argument(
        "--out", required=True, help="name (into the models folder) or path of the weights"
    )
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument(
        "--minutes", type=float, default=None, help="stop after this much wall time"
    )
    parser.add_argument("--batch", type=int, default=d.batch, help="clips per process per step")
    parser.add_argument("--seconds", type=float, default=d.seconds, help="clip length")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--warmup", type=int, default=d.warmup)
    parser.add_argument("--val-percent", type=float, default=d.val_percent)
    parser.add_argument("--eval-every", type=int, default=d.eval_every)
    parser.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    parser.add_argument("--checkpoint-dir", default=None, help="default: the cache folder")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("--threads", type=int, default=d.threads, help="torch threads per process")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument(
        "--no-probe", action="store_true", help="skip the linear probe (needs fluidsynth)"
    )
    parser.add_argument(
        "--model", default="{}", help="JSON overrides of the network, e.g. '{\"ar_dim\": 128}'"
    )


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig(
        steps=args.steps,
        minutes=args.minutes,
        batch=args.batch,
        seconds=args.seconds,
        lr=args.lr,
        warmup=args.warmup,
        val_percent=args.val_percent,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        threads=args.threads,
        seed=args.seed,
        probe=not args.no_probe,
        model=json.loads(args.model),
    )
    report = train(
        args.audio, args.out, cfg, checkpoint_dir=args.checkpoint_dir, resume=args.resume
    )
    if report:
        held = cast("dict[str, object]", report["heldout"])
        print(
            f"wrote {_out_path(args.out)}: {report['steps']} steps, {report['steps_per_second']} steps/s, "
            f"held-out accuracy {held['accuracy']}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="earsight-train", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
