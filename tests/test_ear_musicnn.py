"""musicnn ear: the TensorFlow checkpoint reader, the port, and known answers on real recordings.

The recordings are pyo's example sounds (``pyo/examples/snds/drumloop.wav`` and ``flute.aif``),
which the pyo wheel (a project dependency) installs; nothing is downloaded. Two more known answers
are rendered from MIDI with Debian's fluidsynth and FluidR3_GM (as the training data are).

Streaming, causality, latency, reset and the differentiable pass: tests/test_ear_contract.py.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly
from torch.nn import functional as F

from earsight.audio import pyo_example_sound
from earsight.ears import musicnn as mn
from earsight.ears.tfcheckpoint import CheckpointError, crc32c, read_checkpoint, read_index
from earsight.train import data

pytestmark = pytest.mark.usefixtures("torch_threads")  # each test on 1 and on 2 torch threads

PREFIX = mn.checkpoint_prefix()

# What musicnn/models.py builds for MTT_musicnn (tf.layers names in creation order), in TF layout.
CONV_KERNELS = {
    "conv2d": (7, 38, 1, 204),  # timbral: 7 frames x int(0.4 * 96) bands
    "conv2d_1": (7, 67, 1, 204),  # timbral: 7 frames x int(0.7 * 96) bands
    "conv2d_2": (128, 1, 1, 51),  # temporal
    "conv2d_3": (64, 1, 1, 51),
    "conv2d_4": (32, 1, 1, 51),
    "conv2d_5": (7, 561, 1, 64),  # mid end: spans all 561 front-end channels
    "conv2d_6": (7, 64, 1, 64),
    "conv2d_7": (7, 64, 1, 64),
}
BN_SIZES = [1, 204, 204, 51, 51, 51, 64, 64, 64, 1506, 200]
DENSE_KERNELS = {"dense": (1506, 200), "dense_1": (200, 50)}


def _pyo_sound(name: str) -> np.ndarray:
    """A pyo example sound as mono float32 at 16 kHz ``(samples,)``."""
    audio, rate = sf.read(pyo_example_sound(name), dtype="float32", always_2d=True)
    return resample_poly(audio.mean(axis=1), 16000, rate).astype(np.float32)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh cache directory, so these tests exercise the conversion, not a stale file."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EARSIGHT_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def ear(cache: Path) -> mn.MusicnnEar:
    return mn.load()


@pytest.fixture(scope="module")
def flute(ear: mn.MusicnnEar) -> dict[str, np.ndarray]:
    """The ear's frames of pyo's flute recording."""
    return ear.analyse(_pyo_sound("flute.aif"))


def _top(tags: np.ndarray, k: int) -> list[str]:
    """The ``k`` tags with the highest mean probability over frames whose window is all signal."""
    full = mn.WINDOW // mn.HOP  # frames before this one still see the zero history
    assert tags.shape[0] > full, "need at least one window inside the signal"
    mean = tags[full:].mean(axis=0)
    return [mn.MTT_LABELS[i] for i in np.argsort(-mean)[:k]]


# --- the checkpoint reader -----------------------------------------------------------------------


def test_crc32c_known_answer() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value


def test_checkpoint_holds_what_models_py_builds() -> None:
    tensors = read_checkpoint(PREFIX, verify=True)  # verify: every tensor's CRC matches TF's
    network = {k: v for k, v in tensors.items() if "Adam" not in k and not k.endswith("_power")}
    expected: dict[str, tuple[int, ...]] = {
        f"{name}/kernel": shape for name, shape in (CONV_KERNELS | DENSE_KERNELS).items()
    }
    expected |= {
        f"{name}/bias": (shape[-1],) for name, shape in (CONV_KERNELS | DENSE_KERNELS).items()
    }
    for i, size in enumerate(BN_SIZES):
        scope = "batch_normalization" + (f"_{i}" if i else "")
        expected |= {
            f"{scope}/{k}": (size,) for k in ("gamma", "beta", "moving_mean", "moving_variance")
        }
    assert {k: v.shape for k, v in network.items()} == expected
    assert all(v.dtype == np.float32 for v in tensors.values())
    # Adam keeps two slots per trainable variable (all but the moving statistics), plus two powers.
    trainable = [k for k in expected if "moving_" not in k]
    assert len(tensors) == len(expected) + 2 * len(trainable) + 2 == 150
    # The input batch norm saw log10(10000 mel + 1) of music: its mean is a small positive number.
    assert 0.5 < float(tensors["batch_normalization/moving_mean"][0]) < 3.0
    assert (tensors["batch_normalization_9/moving_variance"] > 0).all()


def test_corrupt_index_is_refused(tmp_path: Path) -> None:
    for name in (".index", ".data-00000-of-00001"):
        shutil.copy(PREFIX / name, tmp_path / name)
    n_shards, entries = read_index(tmp_path)
    assert n_shards == 1 and entries["dense_1/bias"].shape == (50,)
    data = bytearray((tmp_path / ".index").read_bytes())
    data[40] ^= 0x01  # inside the first data block: its trailer checksum no longer matches
    (tmp_path / ".index").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        read_checkpoint(tmp_path)


def test_corrupt_tensor_is_refused_when_verifying(tmp_path: Path) -> None:
    for name in (".index", ".data-00000-of-00001"):
        shutil.copy(PREFIX / name, tmp_path / name)
    entry = read_index(tmp_path)[1]["dense_1/bias"]
    data = bytearray((tmp_path / ".data-00000-of-00001").read_bytes())
    data[entry.offset] ^= 0x01
    (tmp_path / ".data-00000-of-00001").write_bytes(bytes(data))
    assert read_checkpoint(tmp_path)["dense_1/bias"].shape == (50,)  # not verified: read as is
    with pytest.raises(CheckpointError, match="dense_1/bias: checksum"):
        read_checkpoint(tmp_path, verify=True)


# --- conversion ---------------------------------------------------------------------------------


def test_converted_weights_are_safetensors_and_round_trip(cache: Path) -> None:
    from safetensors import safe_open

    path = mn.converted_weights()
    assert path.parent == cache
    raw = path.read_bytes()
    (header,) = struct.unpack_from("<Q", raw)
    meta = json.loads(raw[8 : 8 + header])  # a JSON header and raw bytes: nothing to unpickle
    entry = meta["frontend.timbral.0.conv.weight"]
    assert entry["dtype"] == "F32" and entry["shape"] == [204, 1, 7, 38]
    tf = read_checkpoint(PREFIX)
    with safe_open(str(path), framework="pt") as f:
        # conv2d (out, in, kh, kw) from (kh, kw, in, out); the mid end's conv1d (out, channels, 7)
        # from (7, channels, 1, out); dense (out, in) from (in, out).
        timbral = f.get_tensor("frontend.timbral.0.conv.weight")
        mid = f.get_tensor("midend.convs.0.weight")
        dense = f.get_tensor("backend.dense.weight")
    assert timbral[200, 0, 6, 37] == tf["conv2d/kernel"][6, 37, 0, 200]
    assert mid[63, 560, 2] == tf["conv2d_5/kernel"][2, 560, 0, 63]
    assert dense[199, 1500] == tf["dense/kernel"][1500, 199]
    mtime = path.stat().st_mtime_ns
    assert mn.converted_weights() == path and path.stat().st_mtime_ns == mtime  # cached, not redone


# --- the port ----------------------------------------------------------------------------------


def test_mel_band_of_a_sine_is_its_centre_band() -> None:
    edges = mn.mel_to_hz(np.linspace(0.0, mn.hz_to_mel(np.array(8000.0)), mn.N_MELS + 2))
    band = 60
    t = torch.arange(mn.WINDOW) / mn.SAMPLE_RATE
    sine = 0.5 * torch.sin(2 * torch.pi * float(edges[band + 1]) * t)
    mel = mn.LogMel()(sine[None])
    assert mel.shape == (1, mn.N_FRAMES, mn.N_MELS)
    assert int(mel[0].mean(0).argmax()) == band
    # Slaney area normalisation: a wider (higher) band has a lower peak.
    bank = mn.mel_filterbank()
    assert bank.shape == (96, 257) and bank[10].max() > bank[90].max() > 0


def test_front_end_pools_bands_first_as_textbook_order(ear: mn.MusicnnEar) -> None:
    front = ear.network.frontend
    mel = ear.mel(torch.from_numpy(_pyo_sound("flute.aif")[: mn.WINDOW])[None])
    with torch.no_grad():
        x = front.bn_input(mel.unsqueeze(1))
        maps = [F.relu(b.conv(F.pad(x, (0, 0, *b.pad)))) for b in [*front.timbral, *front.temporal]]
        blocks = [*front.timbral, *front.temporal]
        naive = [b.bn(m).amax(dim=3) for b, m in zip(blocks, maps, strict=True)]
        features, firing = front(mel)
    bn = front.timbral[0].bn
    scale = bn.gamma * torch.rsqrt(bn.moving_variance + mn.BN_EPS)
    assert (scale < 0).any() and (scale > 0).any()  # both branches are exercised
    torch.testing.assert_close(features, torch.cat(naive, 1), rtol=0, atol=1e-6)
    torch.testing.assert_close(firing, torch.cat([m.amax(dim=3) for m in maps], 1), rtol=0, atol=0)


def test_drum_loop_is_heard_as_drums(ear: mn.MusicnnEar) -> None:
    top = _top(ear.analyse(_pyo_sound("drumloop.wav"))["tags"], 3)
    assert top[0] == "drums", top  # observed: drums 0.71, beat 0.31, guitar 0.22
    assert "beat" in top, top


def test_flute_is_heard_as_flute(flute: dict[str, np.ndarray]) -> None:
    top = _top(flute["tags"], 2)
    assert top[0] == "flute", top  # observed: flute 0.86, slow 0.18


def _fluidsynth(notes: list[tuple[int, int, float, float, int]], tmp_path: Path) -> np.ndarray:
    """``(channel, program, start_s, dur_s, pitch)`` notes rendered with FluidR3_GM, ``(samples,)`` at 16 kHz."""
    (tmp_path / "notes.mid").write_bytes(data.midi_file(notes))
    data.render_midi(tmp_path / "notes.mid", tmp_path / "notes.wav")
    audio, rate = sf.read(tmp_path / "notes.wav", dtype="float32", always_2d=True)
    assert rate == 16000
    return audio.mean(axis=1)


def test_synthesised_flute_is_heard_as_flute(ear: mn.MusicnnEar, tmp_path: Path) -> None:
    scale = [62, 64, 66, 67, 69, 71, 73, 74, 73, 71, 69, 67, 66, 64, 62, 69]  # D major, up and down
    flute = 73  # General MIDI program 74, counted from 0
    audio = _fluidsynth([(0, flute, i * 0.5, 0.45, p) for i, p in enumerate(scale)], tmp_path)
    assert "flute" in _top(
        ear.analyse(audio)["tags"], 2
    )  # observed: flute 0.49, classical 0.45, violin 0.31


def test_synthesised_drum_kit_is_heard_as_drums(ear: mn.MusicnnEar, tmp_path: Path) -> None:
    kick, snare, hat = 36, 38, 42  # General MIDI percussion keys, on channel 10 (9 from 0)
    notes = []
    for bar in range(4):  # 120 bpm rock beat: hats in eighths, kick on 1 and 3, snare on 2 and 4
        t = 2.0 * bar
        notes += [(9, 0, t + 0.25 * i, 0.1, hat) for i in range(8)]
        notes += [(9, 0, t + b, 0.1, kick) for b in (0.0, 1.0)]
        notes += [(9, 0, t + b, 0.1, snare) for b in (0.5, 1.5)]
    top = _top(ear.analyse(_fluidsynth(notes, tmp_path))["tags"], 3)
    assert {"drums", "beat", "beats", "techno"} & set(top), (
        top
    )  # observed: drums 0.30, guitar 0.28, beat 0.13


def test_back_end_reads_max_and_mean_interleaved(
    ear: mn.MusicnnEar, flute: dict[str, np.ndarray]
) -> None:
    """Reading the pool in TensorFlow's order is what makes the flute a flute."""
    audio = torch.from_numpy(_pyo_sound("flute.aif"))
    ends = [(k + 1) * mn.HOP for k in range(len(audio) // mn.HOP)][-3:]  # the ear's last 3 frames
    windows = torch.stack([audio[end - mn.WINDOW : end] for end in ends])
    back = ear.network.backend
    with torch.no_grad():
        front, _ = ear.network.frontend(ear.mel(windows))
        mid, _ = ear.network.midend(front)
        dense = torch.cat([front, *mid], 1)  # (3, 753, 187)
        pool, _, _ = back(dense)
    maxima, means = dense.amax(dim=2), dense.mean(dim=2)
    torch.testing.assert_close(pool, torch.stack([maxima, means], 2).flatten(1), rtol=0, atol=0)
    # Batched here, one by one in the ear: rounding may differ.
    torch.testing.assert_close(pool, torch.from_numpy(flute["pool"][-3:]), rtol=1e-5, atol=1e-4)

    def flute_probability(pool: torch.Tensor) -> float:
        with torch.no_grad():
            hidden = F.relu(back.dense(back.bn_pool(pool)))
            tags = torch.sigmoid(back.out(back.bn_dense(hidden))).mean(0)
        return float(tags[mn.MTT_LABELS.index("flute")])

    assert flute_probability(pool) > 0.5
    assert flute_probability(torch.cat([maxima, means], 1)) < 0.1  # the order a naive port reads


def test_layers_report_firing_not_batch_norm(
    ear: mn.MusicnnEar, flute: dict[str, np.ndarray]
) -> None:
    """Where batch norm flips a channel's sign, its window maximum still says how much it fired."""
    frames = flute
    timbral = frames["timbral"][mn.WINDOW // mn.HOP :]
    assert (timbral >= 0).all()
    bn = ear.network.frontend.timbral[0].bn
    flipped = (bn.gamma * torch.rsqrt(bn.moving_variance + mn.BN_EPS) < 0).numpy()
    assert (timbral[:, :204][:, flipped] > 0).mean() > 0.5  # most flipped channels fire, visibly
    assert all(
        (frames[name] >= 0).all() for name in ("temporal", "cnn1", "cnn2", "cnn3", "penultimate")
    )


# --- the ear -------------------------------------------------------------------------------------


def test_ear_declares_its_shape(ear: mn.MusicnnEar) -> None:
    assert ear.name == "musicnn" and ear.sample_rate == 16000 and ear.output_layer == "tags"
    assert (ear.window - mn.N_FFT) // mn.STFT_HOP + 1 == mn.N_FRAMES  # one window, 187 mel frames
    assert ear.hop % mn.STFT_HOP == 0
    assert ear.labels is not None and len(ear.labels) == 50 and ear.labels[25] == "flute"
    assert ear.layer("tags").shape == (50,)
    frames = ear.analyse(np.zeros(ear.hop, np.float32))  # one frame
    assert {k: v.shape[1:] for k, v in frames.items()} == {
        layer.name: layer.shape for layer in ear.layers
    }
    assert all(v.shape[0] == 1 and v.dtype == np.float32 for v in frames.values())


@pytest.mark.parametrize("block", [512, 4096, 16000])
def test_streaming_is_bit_identical_to_offline(ear: mn.MusicnnEar, block: int) -> None:
    """One window per forward (``batch = 1``) makes offline analysis the very arithmetic of streaming.

    (Streaming equal to offline within rounding, for every ear and several block sizes, is in
    tests/test_ear_contract.py.)
    """
    audio = _pyo_sound("drumloop.wav")[: 3 * mn.HOP + 777]
    offline = ear.analyse(audio)
    ear.reset()
    parts = [ear.process(audio[i : i + block]) for i in range(0, len(audio), block)]
    for name, expected in offline.items():
        streamed = np.concatenate([p[name] for p in parts])
        assert streamed.shape == expected.shape == (3, *ear.layer(name).shape)
        np.testing.assert_array_equal(streamed, expected, err_msg=name)  # same arithmetic


def test_a_window_that_follows_the_last_reuses_its_timbral_frames(
    ear: mn.MusicnnEar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the 32 new frames (and the edges) go through the timbral convs; the result is what the
    whole window gives; a window that does not follow is computed whole."""
    audio = _pyo_sound("drumloop.wav")[: mn.WINDOW + mn.HOP]
    first, second = (torch.from_numpy(audio[i * mn.HOP : i * mn.HOP + mn.WINDOW].copy()) for i in (0, 1))
    rows: list[int] = []
    unpadded = mn.BandMaxBlock.unpadded

    def spy(block: mn.BandMaxBlock, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows.append(x.shape[0])
        return unpadded(block, x)

    monkeypatch.setattr(mn.BandMaxBlock, "unpadded", spy)
    with torch.inference_mode():
        ear.reset()
        ear.infer(first[None])
        assert sorted(set(rows)) == [9, mn.N_FRAMES]  # edges, and the whole window
        rows.clear()
        followed = ear.infer(second[None])
        assert sorted(set(rows)) == [9, 3 + 32 + 3]  # edges, and the new frames with their context
        rows.clear()
        ear.infer(first[None])  # does not follow `second`: computed whole
        assert mn.N_FRAMES in rows
        whole = ear.frames(second[None])
    for name, expected in whole.items():
        scale = max(1.0, float(expected.abs().max()))
        np.testing.assert_allclose(followed[name], expected, rtol=0, atol=1e-5 * scale, err_msg=name)
