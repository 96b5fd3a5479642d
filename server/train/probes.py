"""Linear probes with known answers: what a trained ear's layers know about pitch class and
instrument of single notes (one frame tells), and about the key of a passage (a context must tell)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ears.cpc import LOGMEL, CausalLogMel, CPCConfig, CPCEar, CPCNet
from .data import note_set
from .keyprobe import chorale_renderings, key_name, passages


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


def probe(
    nets: dict[str, CPCNet], *, seed: int = 0, key: dict[str, int] | None = None
) -> dict[str, object]:
    """Linear probes with known answers, on notes rendered by fluidsynth (see :func:`note_set`).

    - pitch class (12-way), trained on 5 GM instruments, tested on 3 others;
    - instrument (8-way), trained on 2/3 of the pitches, tested on the rest.

    Features per note: the mean over the note (after its first 0.1 s) of a layer. The log-mel
    input itself is the baseline; a randomly initialised network is the other. ``key``: arguments
    of :func:`key_probe` (fewer chorales or keys for a quick look).
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
        fronts = _inputs(net) if tag == "trained" else {}
        with torch.no_grad():
            for name, fe in fronts.items():
                x = torch.from_numpy(np.concatenate([np.zeros(fe.n_fft - fe.hop, np.float32), audio]))
                frames[name] = fe.raw(x.unfold(0, fe.n_fft, fe.hop)).numpy()
        for layer in (*fronts, "z", "ar"):
            hop = fronts[layer].hop if layer in fronts else ear.hop
            value = frames[layer].reshape(frames[layer].shape[0], -1)
            feats = np.stack(
                [
                    value[
                        (int(n["start"]) + ear.sample_rate // 10) // hop : int(n["end"]) // hop
                    ].mean(0)
                    for n in notes
                ]
            )
            name = layer if layer in fronts else f"{tag}.{layer}"
            results[name] = {
                "pitch_class": _logistic_probe(
                    feats[~pc_test], y_pc[~pc_test], feats[pc_test], y_pc[pc_test]
                ),
                "instrument": _logistic_probe(
                    feats[~inst_test], y_inst[~inst_test], feats[inst_test], y_inst[inst_test]
                ),
            }
    try:
        results["key"] = key_probe(nets, seed=seed, **(key or {}))  # type: ignore[arg-type]
    except ImportError as e:  # music21 is the optional extra "train"
        results["key"] = {"skipped": f"needs music21: {e}"}
    except RuntimeError as e:  # no chorale rendered: keep the other probes
        results["key"] = {"skipped": str(e)}
    return results


def probe_nets(net: CPCNet, seed: int) -> dict[str, CPCNet]:
    """The probed network and its baseline: the same architecture with random weights (seeded as the
    training report's) and the trained input scaling."""
    torch.manual_seed(seed + 1)
    random_net = CPCNet(net.cfg)
    random_net.frontend.load_state_dict(net.frontend.state_dict())
    return {"trained": net, "random_init": random_net}


def _inputs(net: CPCNet) -> dict[str, CausalLogMel]:
    """The baselines' input features: ``logmel`` (80 mel bands, 1024-sample window: the classic
    front end), and ``input``, the network's own front end, where that is another one."""
    fronts = {"logmel": CausalLogMel(CPCConfig(**LOGMEL))}  # type: ignore[arg-type]
    if any(getattr(net.cfg, k) != v for k, v in LOGMEL.items()):
        fronts["input"] = net.frontend
    return fronts


def _batches(x: np.ndarray, size: int = 16) -> list[Tensor]:
    return [torch.from_numpy(x[i : i + size]) for i in range(0, x.shape[0], size)]


def key_probe(
    nets: dict[str, CPCNet],
    *,
    seed: int = 0,
    span_seconds: float = 4.0,
    chorales: int = 40,
    transpositions: int = 12,
    per_rendering: int = 4,
) -> dict[str, object]:
    """The key (tonic and mode, 24 classes) of a passage of ``span_seconds``: what one frame
    cannot know but a context can.

    Bach chorales each rendered in ``transpositions`` keys dealt evenly (all 12 of its mode by
    default: 1,440 train and 480 test passages, where 3 keys left one standard error at 4 points;
    :func:`keyprobe.chorale_renderings`), passages at
    ``per_rendering`` positions of each rendering (not its first second), split by chorale: a
    chorale in all its keys is either train or test (a quarter of the chorales), so the probe
    must generalise to pieces it has not heard. Each passage is heard alone, from the network's
    reset state, so every feature depends on exactly the same ``span_seconds`` of audio:

    - ``logmel.frame``: the raw log-mel frame ending at the passage's end (no context);
    - ``logmel.average``: the log-mel averaged over the passage (the fair baseline: an average
      spectrum knows much about key);
    - ``input.frame``, ``input.average``: the same from the network's own front end, when it is
      not the classic log-mel (a semitone front end's average knows more of the key);
    - ``TAG.ar``: the GRU context at the passage's last frame, having heard the whole passage;
    - ``TAG.ar_average``: the context averaged over the passage (pooled as the log-mel average is);
    - ``TAG.z``, ``TAG.z_average``: the encoder at the last frame, and averaged over the passage.

    Accuracies on the test chorales beside chance (1/24) and the test set's majority-class rate.
    """
    first = next(iter(nets.values()))
    hop = first.cfg.hop
    renders = chorale_renderings(
        chorales, transpositions=transpositions, seed=seed, min_seconds=1.0 + span_seconds
    )
    span = int(span_seconds * first.cfg.sample_rate) // hop * hop
    clips, labels, names = [], [], []
    for r in renders:
        for start in passages(r.audio.shape[0], span=span, count=per_rendering, hop=hop):
            clips.append(r.audio[start : start + span])
            labels.append(r.key)
            names.append(r.chorale)
    if not clips:
        raise RuntimeError("no chorale rendered: the key probe has no data")
    x, y, group = np.stack(clips).astype(np.float32), np.array(labels), np.array(names)
    pieces = sorted(set(names))
    rng = np.random.default_rng(seed)
    test_pieces = sorted(rng.choice(pieces, max(1, len(pieces) // 4), replace=False).tolist())
    test = np.isin(group, test_pieces)
    feats: dict[str, np.ndarray] = {}
    with torch.no_grad():
        # Frames wholly inside the passage; the frontend's raw() ignores its trained standardisation.
        for name, fe in _inputs(first).items():
            mel = [fe.raw(b.unfold(1, fe.n_fft, fe.hop)).numpy() for b in _batches(x)]
            feats[f"{name}.frame"] = np.concatenate([m[:, -1] for m in mel])
            feats[f"{name}.average"] = np.concatenate([m.mean(1) for m in mel])
        for tag, net in nets.items():
            outs = [net(b) for b in _batches(x)]  # from a reset state (see CPCNet.forward)
            feats[f"{tag}.ar"] = torch.cat([o["ar"][:, -1] for o in outs]).numpy()
            feats[f"{tag}.ar_average"] = torch.cat([o["ar"].mean(1) for o in outs]).numpy()
            feats[f"{tag}.z"] = torch.cat([o["z"][:, -1] for o in outs]).numpy()
            feats[f"{tag}.z_average"] = torch.cat([o["z"].mean(1) for o in outs]).numpy()
    y_test = y[test]
    results: dict[str, object] = {
        "task": f"key (tonic and mode, 24 classes) of a {span_seconds:g} s passage, split by"
        " chorale; each passage heard alone from a reset state (ar and z at its last frame)",
        "chorales": len(pieces),
        "renderings": len(renders),
        "keys_per_chorale": transpositions,
        "passages_per_rendering": per_rendering,
        "train_chorales": [p for p in pieces if p not in test_pieces],
        "test_chorales": test_pieces,
        "samples_train": int((~test).sum()),
        "samples_test": int(test.sum()),
        "test_keys": sorted({key_name(int(k)) for k in y_test}),
        "chance": 1 / 24,
        "majority": float(np.bincount(y_test).max() / y_test.shape[0]),
    }
    for name, f in feats.items():
        results[name] = _logistic_probe(f[~test], y[~test], f[test], y_test)
    return results
