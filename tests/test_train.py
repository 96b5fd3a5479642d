"""Training a CPC ear: data recipe pieces, a loss that falls, resume, and two-process DDP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from earsight.audio import io
from earsight.ears import cpc
from earsight.train import TrainConfig, data, split_files, train

torch.set_num_threads(1)
SR = 16000
# A small network so a few steps take seconds; same code paths as the shipped one.
TINY = {"channels": [4, 8, 8], "z_dim": 32, "ar_dim": 32, "horizons": [12, 14]}
"""Its encoder sees 3808 samples (11.9 frames): 12 is its nearest honest horizon."""


def write_patterns(folder: Path, files: int = 4, seconds: float = 6.0) -> list[Path]:
    """Predictable 'music': a repeating riff of decaying tones per file (different riff per file)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    paths = []
    for i in range(files):
        rng = np.random.default_rng(i)
        riff = 220 * 2 ** (rng.integers(0, 24, size=4) / 12)
        x = np.zeros_like(t)
        for n, start in enumerate(np.arange(0, seconds, 0.125)):
            env = np.where(t >= start, np.exp(-(t - start) * 20), 0.0)
            x += 0.3 * env * np.sin(2 * np.pi * riff[n % 4] * t)
        path = folder / f"riff{i}.wav"
        sf.write(path, x.astype(np.float32), SR)
        paths.append(path)
    return paths


def test_split_is_by_file_and_stable(tmp_path: Path) -> None:
    files = [tmp_path / f"song{i}.flac" for i in range(50)]
    train_a, val_a = split_files(files, 20)
    train_b, val_b = split_files(list(reversed(files)), 20)
    assert set(val_a) == set(val_b) and set(train_a) == set(train_b)
    assert not set(train_a) & set(val_a) and len(train_a) + len(val_a) == 50
    assert 3 <= len(val_a) <= 18
    tiny_train, tiny_val = split_files(files[:2], 10)
    assert len(tiny_train) == 1 and len(tiny_val) == 1  # even two files keep one held out


def test_a_whole_source_can_be_held_out(tmp_path: Path) -> None:
    files = [tmp_path / "music" / pkg / f"t{i}.flac" for pkg in ("nexuiz-music", "wesnoth-1.16-music") for i in range(3)]
    files += [tmp_path / "scores" / "wesnoth-1.16-music.flac"]  # the name of a file is not a source
    from earsight.train.clips import hold_out_source

    rest, held = hold_out_source(files, "wesnoth-1.16-music")
    assert held == files[3:6] and rest == files[:3] + files[6:]
    with pytest.raises(ValueError, match="no audio below"):
        hold_out_source(files, "drums")


def test_find_audio_walks_folders_and_reads_any_rate(tmp_path: Path) -> None:
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    sf.write(sub / "x.flac", np.zeros(4410, np.float32), 44100)
    sf.write(tmp_path / "y.wav", np.zeros(800, np.float32), 8000)
    (tmp_path / "notes.txt").write_text("not audio")
    found = data.find_audio([tmp_path])
    assert [p.name for p in found] == ["x.flac", "y.wav"]
    assert io.read(found[0], data.SAMPLE_RATE, mono=True)[0].shape == (1600,)
    assert io.read(found[1], data.SAMPLE_RATE, mono=True)[0].shape == (1600,)


def test_midi_file_holds_the_notes_at_their_times() -> None:
    import mido

    notes = [(0, 40, 0.5, 0.25, 69), (1, 0, 0.5, 1.0, 57), (0, 40, 0.75, 0.25, 71)]
    midi = mido.MidiFile(file=BytesIO(data.midi_file(notes, tempo_bpm=120.0)))
    assert midi.type == 0 and midi.ticks_per_beat == 480
    events, tick = [], 0
    for msg in midi.tracks[0]:
        tick += msg.time
        if msg.type == "set_tempo":
            assert mido.tempo2bpm(msg.tempo) == pytest.approx(120.0)
        elif not msg.is_meta:
            events.append((tick, msg.type, msg.channel, getattr(msg, "note", getattr(msg, "program", None))))
    # 960 ticks a second at 120 bpm; at one tick programs come first, a note ends before the next begins.
    assert events == [
        (480, "program_change", 0, 40), (480, "program_change", 1, 0),
        (480, "note_on", 0, 69), (480, "note_on", 1, 57),
        (720, "note_off", 0, 69), (720, "note_on", 0, 71),
        (960, "note_off", 0, 71), (1440, "note_off", 1, 57),
    ]  # fmt: skip


@pytest.mark.skipif(
    not data.SOUNDFONT.exists() or shutil.which("fluidsynth") is None, reason="needs fluidsynth"
)
def test_rendered_notes_have_the_labelled_pitch() -> None:
    audio, notes = data.note_set(programs=(0, 73), pitches=(57, 64, 69))
    assert len(notes) == 6
    for n in notes:
        seg = audio[int(n["start"]) + 1600 : int(n["end"])]
        spectrum = np.abs(np.fft.rfft(seg * np.hanning(seg.shape[0])))
        freqs = np.fft.rfftfreq(seg.shape[0], 1 / SR)
        f0 = 440 * 2 ** ((int(n["pitch"]) - 69) / 12)
        # The strongest partial is a harmonic of the labelled pitch (within a quarter tone).
        peak = freqs[np.argmax(spectrum)]
        harmonic = max(1, round(peak / f0))
        assert abs(1200 * np.log2(peak / (harmonic * f0))) < 50, (n, peak)
        gap = audio[int(n["end"]) + 4000 : int(n["end"]) + 6000]
        assert np.abs(gap).max() < np.abs(seg).max()


def test_training_loss_falls_and_resumes(tmp_path: Path) -> None:
    write_patterns(tmp_path / "audio")
    cfg = TrainConfig(
        steps=40,
        batch=6,
        seconds=1.0,
        lr=3e-3,
        warmup=5,
        eval_every=20,
        eval_clips=12,
        checkpoint_every=20,
        probe=False,
        model=TINY,
        val_percent=25,
    )
    out = tmp_path / "out" / "tiny"
    report = train(
        [tmp_path / "audio"], str(out), cfg, checkpoint_dir=tmp_path / "ckpt", progress=False
    )
    history = json.loads((tmp_path / "ckpt" / "history.json").read_text())
    first, last = np.mean(history["loss"][:5]), np.mean(history["loss"][-5:])
    assert last < first - 0.3, (first, last)
    assert report["steps"] == 40 and report["data"]["val_files"] >= 1  # type: ignore[index]
    assert out.with_suffix(".report.png").stat().st_size > 1000
    assert json.loads(out.with_suffix(".report.json").read_text())["heldout"]["loss"] > 0

    ear = cpc.load(out.with_suffix(".safetensors"))
    assert ear.layer("ar").shape == (32,)
    assert ear.analyse(np.zeros(SR, np.float32))["z"].shape == (50, 32)

    # Resume: continues at step 40 from the checkpoint rather than starting over.
    cfg.steps = 45
    report = train(
        [tmp_path / "audio"],
        str(out),
        cfg,
        checkpoint_dir=tmp_path / "ckpt",
        resume=True,
        progress=False,
    )
    history = json.loads((tmp_path / "ckpt" / "history.json").read_text())
    assert report["steps"] == 45 and history["step"][:41] == list(range(1, 41)) + [41]


def test_ddp_two_machines_meet_by_host_and_port(tmp_path: Path) -> None:
    """Two torchrun launchers, as on two machines: they find each other at a rendezvous address (gloo)."""
    import socket

    write_patterns(tmp_path / "audio", files=3, seconds=3.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        str(tmp_path / "audio"), "--out", str(tmp_path / "ddp"), "--steps", "4", "--batch", "2", "--seconds", "1",
        "--warmup", "1", "--eval-every", "4", "--checkpoint-dir", str(tmp_path / "ckpt"), "--no-probe",
        "--model", json.dumps(TINY),
    ]
    launchers = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
             "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "earsight-test",
             "-m", "earsight.train", *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=240) for p in launchers]
    finally:
        for p in launchers:
            p.kill()
    for p, (_, err) in zip(launchers, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    report = json.loads((tmp_path / "ddp.report.json").read_text())
    assert report["processes"] == 2 and report["steps"] == 4
    cpc.load(tmp_path / "ddp.safetensors")


def test_a_horizon_whose_target_overlaps_the_context_is_refused() -> None:
    from earsight.train.objective import CPCObjective

    net = cpc.CPCNet(cpc.CPCConfig(**{**TINY, "horizons": (5, 11)}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 12 frames"):
        CPCObjective(net, 16)


def test_starting_from_an_ear_keeps_its_layers_and_the_heads_of_its_horizons(tmp_path: Path) -> None:
    from earsight.errors import NotFound
    from earsight.train.loop import start_net

    torch.manual_seed(3)
    base = cpc.CPCNet(cpc.CPCConfig(**TINY))  # type: ignore[arg-type]
    cpc.save(base, tmp_path / "base.safetensors")
    net = start_net(TrainConfig(start_from=str(tmp_path / "base.safetensors"), model={"horizons": [12, 20]}))
    assert net.cfg.horizons == (12, 20) and net.cfg.z_dim == base.cfg.z_dim
    for name, value in base.state_dict().items():
        if not name.startswith("heads."):
            assert torch.equal(net.state_dict()[name], value), name
    assert torch.equal(net.heads[0].weight, base.heads[base.cfg.horizons.index(12)].weight)  # horizon 12 came along
    assert not torch.equal(net.heads[1].weight, base.heads[0].weight)  # 20 is new
    with pytest.raises(ValueError, match="only the horizons"):
        start_net(TrainConfig(start_from=str(tmp_path / "base.safetensors"), model={"z_dim": 8}))
    with pytest.raises(NotFound, match="no CPC ear called"):
        start_net(TrainConfig(start_from="no-such-ear"))
    assert start_net(TrainConfig(start_from="cpc")).cfg.horizons == cpc.CPCConfig().horizons  # the shipped ear


def test_adapting_an_ear_is_measured_against_where_it_started(tmp_path: Path) -> None:
    write_patterns(tmp_path / "audio")
    write_patterns(tmp_path / "audio" / "elsewhere", files=2)  # a source held out whole
    from earsight.train.clips import Clips, logmel_stats

    torch.manual_seed(1)
    base = cpc.CPCNet(cpc.CPCConfig(**TINY))  # type: ignore[arg-type]
    clips = Clips(data.find_audio([tmp_path / "audio"]), SR, SR)
    mean, std = logmel_stats(base, clips, np.random.default_rng(0))  # as a new run would scale its input
    base.frontend.mean.copy_(mean)
    base.frontend.std.copy_(std)
    cpc.save(base, tmp_path / "base.safetensors")
    cfg = TrainConfig(
        steps=40, batch=6, seconds=1.0, lr=3e-3, warmup=3, eval_every=40, eval_clips=12, checkpoint_every=40,
        probe=False, val_percent=25, start_from=str(tmp_path / "base.safetensors"), model={"horizons": TINY["horizons"]},
        holdout="elsewhere",
    )
    report = train([tmp_path / "audio"], str(tmp_path / "adapted"), cfg, checkpoint_dir=tmp_path / "ckpt", progress=False)
    start, end = report["heldout_at_start"], report["heldout"]  # type: ignore[index]
    assert end["loss"] < start["loss"] - 0.1, (start, end)  # type: ignore[index]
    assert np.mean(list(end["accuracy"].values())) > np.mean(list(start["accuracy"].values()))  # type: ignore[index]
    assert report["heldout"]["overlap_samples"] == [0, 0]  # type: ignore[index]
    source = report["heldout_source"]  # type: ignore[index]
    assert source["files"] == 2 and report["data"]["train_files"] + report["data"]["val_files"] == 4  # type: ignore[index]
    assert set(source["accuracy"]) == set(end["accuracy"]) and source["loss"] > 0  # type: ignore[index]
    adapted = cpc.load_net(tmp_path / "adapted.safetensors")
    assert torch.equal(adapted.frontend.mean, base.frontend.mean)  # the input scaling it learned on


def test_adapting_only_the_context_keeps_the_encoder_and_an_anchor_holds_the_weights_near(tmp_path: Path) -> None:
    write_patterns(tmp_path / "audio", files=3, seconds=4.0)
    torch.manual_seed(2)
    base = cpc.CPCNet(cpc.CPCConfig(**TINY))  # type: ignore[arg-type]
    cpc.save(base, tmp_path / "base.safetensors")

    def adapted(name: str, **kw: object) -> cpc.CPCNet:
        cfg = TrainConfig(
            steps=15, batch=4, seconds=1.0, lr=3e-3, warmup=2, eval_every=15, eval_clips=4, checkpoint_every=15,
            probe=False, val_percent=30, start_from=str(tmp_path / "base.safetensors"),
            model={"horizons": TINY["horizons"]}, **kw,  # type: ignore[arg-type]
        )
        train([tmp_path / "audio"], str(tmp_path / name), cfg, checkpoint_dir=tmp_path / f"ck-{name}", progress=False)
        return cpc.load_net(tmp_path / f"{name}.safetensors")

    def drift(net: cpc.CPCNet, prefix: str) -> float:
        old = dict(base.named_parameters())
        return sum(float((p - old[n]).detach().square().sum()) for n, p in net.named_parameters() if n.startswith(prefix))

    context = adapted("context", adapt="context")
    assert drift(context, "convs.") == 0 and drift(context, "to_z.") == 0 and drift(context, "gru.") > 0
    free, held = adapted("free"), adapted("held", anchor=100.0)
    assert drift(free, "convs.") > 0 and drift(held, "convs.") > 0
    assert drift(held, "") < 0.5 * drift(free, ""), (drift(held, ""), drift(free, ""))
    with pytest.raises(ValueError, match="adapt"):
        adapted("bad", adapt="encoder")
    with pytest.raises(ValueError, match="needs an ear to start from"):
        train([tmp_path / "audio"], str(tmp_path / "new"), TrainConfig(steps=1, adapt="context", model=TINY), progress=False)
