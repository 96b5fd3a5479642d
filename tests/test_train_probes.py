"""The key probe: chorales rendered in known keys, and a context probe that runs end to end."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from earsight import cli
from earsight.ears import cpc
from earsight.train import data, keyprobe, probes, reprobe

torch.set_num_threads(1)
SR = data.SAMPLE_RATE
TINY = {"channels": [4, 8, 8], "z_dim": 32, "ar_dim": 32, "horizons": [3, 8]}
needs_fluidsynth = pytest.mark.skipif(
    not data.SOUNDFONT.exists() or shutil.which("fluidsynth") is None, reason="needs fluidsynth"
)
pytest.importorskip("music21")


def chroma(audio: np.ndarray) -> np.ndarray:
    """Energy per pitch class (80 Hz - 2 kHz, 4096-sample frames), summed over the signal."""
    n = 4096
    frames = np.lib.stride_tricks.sliding_window_view(audio, n)[:: n // 2] * np.hanning(n)
    power = np.abs(np.fft.rfft(frames, axis=1)).sum(0)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    keep = (freqs > 80) & (freqs < 2000)
    pc = np.round(12 * np.log2(freqs[keep] / 440) + 69).astype(int) % 12
    return np.bincount(pc, weights=power[keep], minlength=12)


def test_keys_are_dealt_evenly_and_passages_stay_inside() -> None:
    deck: list[int] = []
    rng = random.Random(0)
    dealt = [keyprobe._deal(deck, 2, rng) for _ in range(12)]
    assert all(len(set(d)) == 2 for d in dealt)
    assert np.bincount([pc for d in dealt for pc in d], minlength=12).tolist() == [2] * 12
    assert [keyprobe.key_name(k) for k in (0, 9, 12 + 9, 12 + 10)] == [
        "C major", "A major", "A minor", "Bb minor",
    ]  # fmt: skip
    span, hop = 4 * SR, 320
    starts = keyprobe.passages(20 * SR + 17, span=span, count=4, hop=hop)
    assert len(starts) == 4 and starts[0] == SR
    assert all(s % hop == 0 and s + span <= 20 * SR + 17 for s in starts)
    assert keyprobe.passages(5 * SR - 1, span=span, count=4, hop=hop) == []


def pitch_classes(chorale: str) -> np.ndarray:
    """Quarter notes per pitch class in the written score."""
    from music21 import corpus

    hist = np.zeros(12)
    for n in corpus.parse(f"bach/{chorale}").flatten().notes:
        for p in n.pitches:
            hist[p.pitchClass] += float(n.duration.quarterLength)
    return hist


@needs_fluidsynth
def test_rendered_chorales_sound_in_their_labelled_keys() -> None:
    from music21 import corpus

    renders = keyprobe.chorale_renderings(4, transpositions=2, seed=3)
    assert len(renders) == 8 and len({r.chorale for r in renders}) == 4
    for a, b in zip(renders[::2], renders[1::2], strict=True):
        assert a.chorale == b.chorale and a.transpose != b.transpose
        assert a.key // 12 == b.key // 12  # one mode
        assert (b.key - a.key) % 12 == (b.transpose - a.transpose) % 12
    heard_right = 0
    tonic_aligned = np.zeros(12)
    for r in renders:
        assert -5 <= r.transpose <= 6 and len(r.programs) >= 4
        key = corpus.parse(f"bach/{r.chorale}").transpose(r.transpose).analyze("key")
        assert keyprobe.key_class(key.tonic.pitchClass, key.mode) == r.key
        # The audio's pitch classes are the score's moved by the transposition. (A clarinet's
        # strong third harmonic can pull one rendering's chroma a fifth off: most, not all.)
        c, hist = chroma(r.audio), pitch_classes(r.chorale)
        corr = [np.corrcoef(np.roll(hist, r.transpose + s), c)[0, 1] for s in range(12)]
        heard_right += int(np.argmax(corr) == 0)
        tonic_aligned += np.roll(c / c.sum(), -(r.key % 12))
    assert heard_right >= 6
    # Rolled to their labelled tonics, the renderings agree: tonic and dominant lead.
    assert set(np.argsort(tonic_aligned)[-3:].tolist()) >= {0, 7}, np.round(tonic_aligned, 3)


@needs_fluidsynth
def test_key_probe_splits_by_chorale_and_the_average_spectrum_knows_the_key() -> None:
    torch.manual_seed(0)
    net = cpc.CPCNet(cpc.CPCConfig(**TINY))  # type: ignore[arg-type]
    out = probes.key_probe({"random_init": net}, seed=0, transpositions=3)  # the report's 40 chorales in 3 keys
    names = (
        "logmel.frame", "logmel.average", "random_init.ar", "random_init.ar_average", "random_init.z",
        "random_init.z_average",
    )  # fmt: skip
    assert set(out) >= {*names, "chance", "majority", "task"}
    for name in names:
        assert 0.0 <= float(out[name]) <= 1.0  # type: ignore[arg-type]
    train, test = set(out["train_chorales"]), set(out["test_chorales"])  # type: ignore[call-overload]
    assert len(test) == 10 and not train & test and len(train | test) == out["chorales"] == 40
    assert out["renderings"] == 120 and out["samples_test"] == 120  # type: ignore[operator]
    assert out["samples_train"] == 360 and out["chance"] == pytest.approx(1 / 24)
    assert 1 / 24 <= float(out["majority"]) < 0.5  # type: ignore[arg-type]
    # An average spectrum knows a good deal about key, even of chorales the probe never heard
    # (0.28 here; a small set, say 12 chorales, leaves test keys unseen in training: no bound).
    assert float(out["logmel.average"]) > 2 / 24, out  # type: ignore[arg-type]


def test_a_semitone_ear_is_probed_against_both_inputs() -> None:
    """The issue's baseline is the classic log-mel; an ear with its own front end is also held to that."""
    mel = cpc.CPCNet(cpc.CPCConfig(**{**TINY, **cpc.LOGMEL}))  # type: ignore[arg-type]
    semis = cpc.CPCNet(cpc.CPCConfig(**TINY))  # type: ignore[arg-type]  # the default front end
    assert list(probes._inputs(mel)) == ["logmel"]
    fronts = probes._inputs(semis)
    assert list(fronts) == ["logmel", "input"] and fronts["input"] is semis.frontend
    assert fronts["logmel"].filterbank.shape == (513, 80)


@needs_fluidsynth
def test_the_probe_command_runs_the_probes_again_and_writes_them_into_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``earsight probe EAR --write``: the probes of an ear trained with ``--no-probe`` (or before the
    probes changed) replace the report's, which keeps everything else."""
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    cpc.save(cpc.CPCNet(cpc.CPCConfig(**TINY)), weights)  # type: ignore[arg-type]
    report = weights.with_suffix(".report.json")
    report.write_text(json.dumps({"config": {"seed": 3}, "steps": 7}))
    argv = ["probe", str(weights), "--chorales", "4", "--keys", "2", "--threads", "1", "--write"]
    assert cli.main(argv) == 0
    written = json.loads(report.read_text())
    assert written["steps"] == 7 and written["config"] == {"seed": 3}
    got = written["probe"]
    assert got["key"]["chorales"] == 4 and got["key"]["keys_per_chorale"] == 2
    rows = reprobe.flat(got)
    tasks = {task for task, _, _ in rows}
    assert tasks == {"pitch_class", "instrument", "key"}, rows
    assert ("key", "trained.ar_average", got["key"]["trained.ar_average"]) in rows
    assert ("pitch_class", "logmel", got["logmel"]["pitch_class"]) in rows
    out = capsys.readouterr().out
    assert "trained.ar_average" in out and f"wrote the probes into {report}" in out


def test_the_probe_command_names_a_missing_ear_and_a_missing_report(tmp_path: Path) -> None:
    assert cli.main(["probe", "no-such-ear"]) == 2  # NotFound: an EarsightError, said in one line
    weights = tmp_path / "alone.safetensors"
    cpc.save(cpc.CPCNet(cpc.CPCConfig(**TINY)), weights)  # type: ignore[arg-type]
    assert cli.main(["probe", str(weights), "--write"]) == 2  # said before minutes of probing, not after
    assert not weights.with_suffix(".report.json").exists()
