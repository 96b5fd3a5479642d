"""Audio files: the one place that reads, writes and resamples them offline.

soundfile (libsndfile) reads wav, aif, flac, ogg and mp3; whatever it cannot, ffmpeg decodes
(m4a, video soundtracks, ...). Offline resampling is soxr's (a well-kept library, steep and
linear-phase). The live path has its own causal resampler (:mod:`earsight.resample`): soxr's
one-shot call looks ahead, which a stream cannot.

Errors at the boundary: a missing file is :class:`NotFound`, one that no decoder reads
:class:`BadRequest`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np

from ..errors import BadRequest, EarsightError, NotFound
from ..paths import write_atomically

SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")
"""What counts as an audio file when folders are searched."""

# soundfile's format names for the suffixes it writes.
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3", ".aif": "AIFF", ".aiff": "AIFF"}


@dataclass(frozen=True)
class Info:
    """What a file holds, without decoding it."""

    sample_rate: int
    channels: int
    frames: int


def info(path: str | Path) -> Info:
    """Sample rate, channels and length of ``path``; NotFound or BadRequest as :func:`read`."""
    import soundfile

    path = _existing(path)
    try:
        i = soundfile.info(str(path))
        return Info(int(i.samplerate), int(i.channels), int(i.frames))
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        if shutil.which("ffprobe") is None:
            raise BadRequest(f"cannot read {path} as audio: {exc}") from exc
    rate, channels, seconds = _ffprobe(path)
    return Info(rate, channels, int(round(seconds * rate)))


def read(path: str | Path, sample_rate: int | None = None, *, mono: bool = False) -> tuple[np.ndarray, int]:
    """A whole file as float32 ``(samples, channels)``, or ``(samples,)`` (the channels' mean) if ``mono``.

    Resampled to ``sample_rate`` when given; returns the audio and its rate.
    """
    import soundfile

    path = _existing(path)
    try:
        data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        if shutil.which("ffmpeg") is None:
            raise BadRequest(f"cannot read {path} as audio: {exc}") from exc
        data, sr = _ffmpeg_decode(path)
    if mono:
        data = data.mean(axis=1, dtype=np.float32)
    if sample_rate is not None and sample_rate != sr:
        return resample(data, sr, sample_rate), int(sample_rate)
    return np.ascontiguousarray(data, np.float32), int(sr)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """``(samples,)`` or ``(samples, channels)`` at ``sr_in`` -> float32 at ``sr_out``, aligned (no delay).

    ``round(samples * sr_out / sr_in)`` samples come out.
    """
    import soxr

    if sr_in <= 0 or sr_out <= 0:
        raise BadRequest(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    x = np.ascontiguousarray(x, np.float32)
    if sr_in == sr_out:
        return x
    if x.shape[0] == 0:
        return x.copy()
    return np.asarray(soxr.resample(x, sr_in, sr_out, quality="HQ"), np.float32)


def write(path: str | Path, audio: np.ndarray, sample_rate: int, *, subtype: str | None = None) -> Path:
    """Write ``(samples,)`` or ``(samples, channels)`` to ``path``; the format follows the suffix.

    The file appears complete or not at all: it is written under a temporary name in the same
    folder and renamed, so a failed write leaves nothing under ``path`` (and an old file intact).
    """
    import soundfile

    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadRequest(f"cannot write {path.name}: the suffix must be one of {', '.join(WRITE_FORMATS)}")
    if not path.parent.is_dir():
        raise NotFound(f"no such folder: {path.parent}")
    # Encoded in memory first: libsndfile reports a full disk as "System error.", Python's own
    # write says what happened.
    buf = BytesIO()
    soundfile.write(buf, np.asarray(audio, np.float32), int(sample_rate), format=fmt, subtype=subtype)
    return write_atomically(path, lambda tmp: tmp.write_bytes(buf.getvalue()))


# ------------------------------------------------------------------------ ffmpeg fallback


def _existing(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise NotFound(f"no such file: {path}")
    return path


def _ffprobe(path: Path) -> tuple[int, int, float]:
    """Rate, channels and seconds of the first audio stream."""
    exe = shutil.which("ffprobe")
    if exe is None:
        raise EarsightError("ffprobe not found (Debian: apt install ffmpeg)")
    proc = subprocess.run(
        [exe, "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate,channels:format=duration",
         "-of", "default=noprint_wrappers=1", str(path)],
        capture_output=True, text=True, check=False,
    )
    fields = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    try:
        rate, channels = int(fields["sample_rate"]), int(fields["channels"])
    except (KeyError, ValueError):
        reason = proc.stderr.strip() or "no audio stream"
        raise BadRequest(f"cannot read {path} as audio: {reason}") from None
    try:
        seconds = float(fields.get("duration", "nan"))
    except ValueError:
        seconds = float("nan")
    return rate, channels, seconds if np.isfinite(seconds) else 0.0


def _ffmpeg_decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode with ffmpeg at the file's own rate and channels: ``(samples, channels)`` float32."""
    rate, channels, _ = _ffprobe(path)
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    proc = subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-ac", str(channels),
         "-ar", str(rate), "-"],
        capture_output=True, check=False,
    )
    if proc.returncode != 0:
        raise BadRequest(f"cannot read {path} as audio: {proc.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(proc.stdout, np.float32).reshape(-1, channels).copy(), rate
