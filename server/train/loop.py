"""Train a CPC ear on your own audio: ``earsight train AUDIO... --out NAME`` (the loop and its command).

Contrastive predictive coding (van den Oord et al. 2018) as in Immersions: the encoder maps
audio to ``z_t`` (50 frames/s), a GRU summarises the past into ``c_t``, and one linear head
per horizon ``k`` scores ``W_k c_t`` against the true ``z_{t+k}`` and against every other
``z`` in the batch (other times of the same clip, other clips): InfoNCE, a cross-entropy over
those candidates. Horizons span 0.24-1 s, each beyond the encoder's receptive field, so the target
shares no input with what the context heard: predicting it cannot be copying.

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
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..ears.cpc import CPCConfig, CPCNet, load_net, save
from ..errors import NotFound
from ..paths import cache_dir, models_dir
from .clips import Clips, hold_out_source, logmel_stats, split_files
from .config import ADAPT_ANCHOR, FINE_TUNE_LR, TrainConfig
from .data import find_audio
from .objective import CPCObjective, evaluate
from .probes import probe, probe_nets
from .report import per_horizon, summary
from .report import write as write_report


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
        net = start_net(cfg)
        model_cfg = net.cfg
        files = find_audio(audio_paths)
        if not files:
            raise FileNotFoundError(f"no audio files in {list(map(str, audio_paths))}")
        source_files: list[Path] = []
        if cfg.holdout is not None:
            files, source_files = hold_out_source(files, cfg.holdout)
        train_files, val_files = split_files(files, cfg.val_percent)
        clip = int(cfg.seconds * model_cfg.sample_rate) // model_cfg.hop * model_cfg.hop
        train_clips = Clips(train_files, model_cfg.sample_rate, clip)
        val_clips = Clips(val_files or train_files, model_cfg.sample_rate, clip)
        if cfg.start_from is None:  # an ear adapted keeps the input scaling its layers learned on
            mean, std = logmel_stats(net, train_clips, np.random.default_rng(cfg.seed))
            net.frontend.mean.copy_(mean)
            net.frontend.std.copy_(std)
        eval_batches = _eval_batches(val_clips, cfg, cfg.seed + 12345)

        if cfg.adapt not in ("all", "context"):
            raise ValueError(f"adapt {cfg.adapt!r}: expected 'all' or 'context'")
        if cfg.adapt == "context" and cfg.start_from is None:
            raise ValueError("adapting only the context needs an ear to start from (--from)")
        if cfg.adapt == "context":
            for name, p in net.named_parameters():
                p.requires_grad_(name.startswith(("gru.", "heads.")))
        trainable = [p for p in net.parameters() if p.requires_grad]
        # Heads of new horizons start untrained: only the layers the ear brought are anchored.
        anchors = [
            (p, p.detach().clone()) for name, p in net.named_parameters()
            if p.requires_grad and not name.startswith("heads.")
        ] if cfg.anchor and cfg.start_from is not None else []
        objective = CPCObjective(net, cfg.predictions)
        model: nn.Module = (
            nn.parallel.DistributedDataParallel(objective) if distributed else objective
        )
        opt = torch.optim.Adam(trainable, lr=cfg.lr)

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
        if rank == 0 and step == 0 and cfg.start_from is not None:
            run_eval()  # the ear as it came: what adapting it gains is measured against this
        objective.train()
        while step < cfg.steps:
            t0 = time.perf_counter()
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            x = train_clips.draw(cfg.batch, rng, twins=cfg.twins)
            loss, acc = model(x, gen)
            pull = cfg.anchor * sum(((p - p0) ** 2).sum() for p, p0 in anchors) if anchors else 0.0
            opt.zero_grad(set_to_none=True)
            (loss + pull).backward()  # the history keeps the InfoNCE loss alone
            torch.nn.utils.clip_grad_norm_(trainable, 5.0)
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
            data = {
                "train_files": len(train_files),
                "val_files": len(val_files),
                "train_minutes": round(train_clips.seconds / 60, 2),
                "val_minutes": round(val_clips.seconds / 60, 2),
            }
            report = summary(
                cfg, model_cfg, out_path=out_path, world=world, data=data, step=step,
                trained_seconds=trained_seconds, history=history, clip=clip,
            )
            if val_clips.pairs and val_files:  # the same measure where every clip's twin is a candidate
                loss, acc = evaluate(objective, _eval_batches(val_clips, cfg, cfg.seed + 777, twins=cfg.batch // 2))
                report["heldout_twins"] = {
                    "what": "held-out score clips, each batch made of clips and their twins in another key",
                    "loss": loss, "accuracy": per_horizon(model_cfg, acc),
                }
            if source_files:  # the same measure on a source it never heard
                source_clips = Clips(source_files, model_cfg.sample_rate, clip)
                loss, acc = evaluate(objective, _eval_batches(source_clips, cfg, cfg.seed + 54321))
                report["heldout_source"] = {
                    "source": cfg.holdout, "files": len(source_files), "minutes": round(source_clips.seconds / 60, 2),
                    "loss": loss, "accuracy": per_horizon(model_cfg, acc),
                }
            if cfg.probe:
                try:
                    report["probe"] = probe(probe_nets(net, cfg.seed), seed=cfg.seed)
                except RuntimeError as e:  # no fluidsynth: say so rather than fail the run
                    report["probe"] = {"skipped": str(e)}
            write_report(report, history, model_cfg, out_path)
            (ckpt_dir / "history.json").write_text(json.dumps(history))
        if distributed:
            dist.barrier()
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()
    return report


def _eval_batches(clips: Clips, cfg: TrainConfig, seed: int, *, twins: int = 0) -> list[torch.Tensor]:
    """The fixed draw a held-out set is measured on: ``cfg.eval_clips`` clips in batches, at their own level."""
    rng = np.random.default_rng(seed)
    return [clips.draw(cfg.batch, rng, gain=False, twins=twins) for _ in range(max(1, cfg.eval_clips // cfg.batch))]


def start_net(cfg: TrainConfig) -> CPCNet:
    """A new network from ``cfg.model``, or the ear ``cfg.start_from`` with the run's horizons.

    An ear trained with other horizons keeps its encoder and context; heads of horizons it had
    come along, new ones start untrained (heads are for training only).
    """
    if cfg.start_from is None:
        return CPCNet(CPCConfig(**cfg.model))  # type: ignore[arg-type]
    if set(cfg.model) - {"horizons"}:
        raise ValueError(f"starting from {cfg.start_from!r}: --model may change only the horizons, not {sorted(set(cfg.model) - {'horizons'})}")
    base = load_net(weights_of(cfg.start_from))
    horizons = cast("Sequence[int]", cfg.model.get("horizons", base.cfg.horizons))
    net = CPCNet(replace(base.cfg, horizons=tuple(int(k) for k in horizons)))
    state = {k: v for k, v in base.state_dict().items() if not k.startswith("heads.")}
    net.load_state_dict(state, strict=False)
    for head, k in zip(net.heads, net.cfg.horizons, strict=True):
        if k in base.cfg.horizons:
            head.load_state_dict(base.heads[base.cfg.horizons.index(k)].state_dict())
    return net


def weights_of(name: str) -> Path:
    """The weights of a CPC ear: a file, or a name the registry knows (``cpc``, or one trained here)."""
    from ..ears.registry import trained

    path = Path(name)
    if path.suffix == ".safetensors" or len(path.parts) > 1:
        return path  # load_net says clearly when it is missing
    if name == "cpc":
        return models_dir() / "cpc.safetensors"
    found = trained().get(name)
    if found is None:
        raise NotFound(f"no CPC ear called {name!r} to start from (trained ears: {', '.join(trained()) or 'none'})")
    return found


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
    parser.add_argument(
        "--twins", type=int, default=d.twins,
        help="pairs per batch of a score and its transposed twin (data built with --twins): the same music "
        "in another key as a negative, so the ear must learn pitch",
    )
    parser.add_argument(
        "--from", dest="start_from", default=None, metavar="EAR",
        help="adapt this CPC ear (a name, e.g. cpc, or a weights file) to the audio instead of training a new one",
    )
    parser.add_argument(
        "--anchor", type=float, default=None,
        help=f"with --from: L2 pull towards the ear's own weights (default {ADAPT_ANCHOR}); 0 lets it drift",
    )
    parser.add_argument(
        "--adapt", choices=["all", "context"], default=d.adapt,
        help="with --from: train all layers, or only the context (GRU) and heads",
    )
    parser.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {d.lr}; {FINE_TUNE_LR} with --from)")
    parser.add_argument("--warmup", type=int, default=d.warmup)
    parser.add_argument("--val-percent", type=float, default=d.val_percent, help="files held out, chosen by name")
    parser.add_argument(
        "--holdout", default=None, metavar="FOLDER",
        help="also hold out a whole source: every file below a folder of this name (e.g. wesnoth-1.16-music), "
        "never trained on and evaluated at the end",
    )
    parser.add_argument("--eval-every", type=int, default=d.eval_every)
    parser.add_argument(
        "--eval-clips", type=int, default=d.eval_clips, help="held-out clips each evaluation reads (a fixed draw)"
    )
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
        twins=args.twins,
        lr=args.lr if args.lr is not None else (FINE_TUNE_LR if args.start_from else TrainConfig.lr),
        warmup=args.warmup,
        val_percent=args.val_percent,
        holdout=args.holdout,
        eval_every=args.eval_every,
        eval_clips=args.eval_clips,
        checkpoint_every=args.checkpoint_every,
        threads=args.threads,
        seed=args.seed,
        probe=not args.no_probe,
        model=json.loads(args.model),
        start_from=args.start_from,
        anchor=(args.anchor if args.anchor is not None else ADAPT_ANCHOR) if args.start_from else 0.0,
        adapt=args.adapt,
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
