"""The default library: ambient sounds the project synthesises itself, and the classes each evokes.

Each sound is a pure function of a seed: numpy and scipy filters over noise, events placed at
random (drops, crackles, chirps, bubbles, car passes), made a seamless loop by crossfading its
tail into its head. :data:`SOUNDS` is the table: name -> (synthesiser, ImageNet classes). A class
entry is a class name (any of its names) or an index range ``#a-b``. :func:`write_library` writes
the sounds and their sidecars into a folder, the same form a user's own library takes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import signal

from ..audio.graph import BED_SECONDS

SR = 48000
SECONDS = BED_SECONDS
"""Every default sound is a loop as long as a bed: a bed of them needs no joint of its own."""
FADE = 1.0
"""Seconds of the loop's crossfade (its tail into its head)."""
CREST = 5.0
"""Peaks are softly limited to about this many times the RMS, so sounds level-matched by RMS
keep their headroom."""

Synth = Callable[[np.random.Generator, int], np.ndarray]


def _noise(rng: np.random.Generator, n: int, colour: float = 0.0) -> np.ndarray:
    """Gaussian noise with a 1/f^colour power spectrum (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    spec *= f ** (-colour / 2)
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _band(x: np.ndarray, lo: float | None, hi: float | None, order: int = 2) -> np.ndarray:
    if lo and hi:
        sos = signal.butter(order, [lo, hi], "bandpass", fs=SR, output="sos")
    elif lo:
        sos = signal.butter(order, lo, "highpass", fs=SR, output="sos")
    else:
        sos = signal.butter(order, hi, "lowpass", fs=SR, output="sos")
    return signal.sosfilt(sos, x, axis=0)


def _slow(rng: np.random.Generator, n: int, seconds: float) -> np.ndarray:
    """A smooth random curve in [0, 1] that changes over about ``seconds``."""
    points = int(n / SR / seconds) + 3
    curve = rng.random(points)
    x = np.linspace(0, points - 3, n)
    return np.clip(np.interp(x, np.arange(points), curve), 0, 1)


def _stereo(left: np.ndarray, right: np.ndarray | None = None) -> np.ndarray:
    return np.stack([left, left if right is None else right], axis=1)


def _events(rng: np.random.Generator, n: int, per_second: float, make: Callable[[np.random.Generator], np.ndarray],
            pan: bool = True) -> np.ndarray:
    """Sum of short sounds from ``make`` at random times (a Poisson process), each panned at random."""
    out = np.zeros((n, 2))
    count = rng.poisson(per_second * n / SR)
    for start in rng.integers(0, n, count):
        ev = make(rng)
        end = min(n, start + ev.shape[0])
        p = rng.uniform(0.15, 0.85) if pan else 0.5
        out[start:end, 0] += ev[: end - start] * np.sqrt(1 - p)
        out[start:end, 1] += ev[: end - start] * np.sqrt(p)
    return out


def _decay(n: int, seconds: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (seconds * SR))


def rain(rng: np.random.Generator, n: int) -> np.ndarray:
    hiss = _stereo(_band(_noise(rng, n, 1.0), 800, 9000), _band(_noise(rng, n, 1.0), 800, 9000)) * 0.5

    def drop(r: np.random.Generator) -> np.ndarray:
        m = int(0.012 * SR)
        f = r.uniform(2000, 7000)
        return np.sin(2 * np.pi * f * np.arange(m) / SR) * _decay(m, 0.002) * r.uniform(0.2, 1.0)

    return hiss + _events(rng, n, 180, drop)


def thunder(rng: np.random.Generator, n: int) -> np.ndarray:
    bed = _stereo(_band(_noise(rng, n, 2.0), None, 400)) * 0.15
    out = bed + _stereo(_band(_noise(rng, n, 1.0), 1000, 8000)) * 0.05  # the rain under the storm
    for start in (int(0.12 * n), int(0.6 * n)):  # two rolls a loop
        m = min(int(rng.uniform(5, 7) * SR), n - start)
        rumble = _band(_noise(rng, m, 2.0), None, 180, 4)
        env = (1 - np.exp(-np.arange(m) / (0.05 * SR))) * _decay(m, 1.6)
        env *= 0.6 + 0.4 * _slow(rng, m, 0.3)
        crack = _band(_noise(rng, m, 0.5), 200, 3000) * _decay(m, 0.25) * 0.5
        part = (rumble * 1.5 + crack) * env
        out[start : start + m] += _stereo(part, np.roll(part, int(0.01 * SR)))
    return out


def waves(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros((n, 2))
    t = np.arange(n) / SR
    for ch in range(2):
        noise = _noise(rng, n, 1.0)
        swell = 0.5 - 0.5 * np.cos(2 * np.pi * (t / 6.667 + rng.uniform(0, 0.2)))  # three waves a loop
        swell = swell**2 * (0.7 + 0.3 * _slow(rng, n, 3.0))
        low = _band(noise, None, 500)
        high = _band(noise, 500, 6000)
        out[:, ch] = low * (0.2 + swell) + high * swell**1.5 * 0.8
    return out


def stream(rng: np.random.Generator, n: int) -> np.ndarray:
    wash = _stereo(_band(_noise(rng, n, 0.5), 1500, 10000), _band(_noise(rng, n, 0.5), 1500, 10000)) * 0.25

    def bubble(r: np.random.Generator) -> np.ndarray:
        m = int(r.uniform(0.02, 0.06) * SR)
        f0 = r.uniform(300, 1400)
        tt = np.arange(m) / SR
        f = f0 * (1 + 3 * tt / tt[-1])  # a bubble's pitch rises as it closes
        return np.sin(2 * np.pi * np.cumsum(f) / SR) * _decay(m, m / SR / 4) * r.uniform(0.2, 1.0)

    return wash + _events(rng, n, 60, bubble)


def wind(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros((n, 2))
    for ch in range(2):
        noise = _noise(rng, n, 1.0)
        gust = 0.25 + _slow(rng, n, 2.5) ** 2
        centre = 250 + 700 * _slow(rng, n, 4.0)
        # a resonance that wanders with the gusts: filter in short blocks, each at its centre
        y = np.zeros(n)
        block = 4096
        zi = None
        for i in range(0, n, block):
            sos = signal.butter(2, [centre[i] * 0.7, centre[i] * 1.4], "bandpass", fs=SR, output="sos")
            if zi is None:
                zi = np.zeros((sos.shape[0], 2))
            y[i : i + block], zi = signal.sosfilt(sos, noise[i : i + block], zi=zi)
        out[:, ch] = y * gust + _band(noise, None, 120) * 0.3
    return out


def fire(rng: np.random.Generator, n: int) -> np.ndarray:
    roar = _stereo(_band(_noise(rng, n, 2.0), 40, 600)) * (0.4 + 0.3 * _slow(rng, n, 1.0))[:, None]
    hiss = _stereo(_band(_noise(rng, n, 1.0), 2000, 8000), _band(_noise(rng, n, 1.0), 2000, 8000)) * 0.03

    def crackle(r: np.random.Generator) -> np.ndarray:
        m = int(r.uniform(0.002, 0.015) * SR)
        return _band(r.standard_normal(m), 1500, 12000) * _decay(m, m / SR / 5) * r.uniform(0.1, 1.5) ** 2

    return roar + hiss + _events(rng, n, 12, crackle)


def birds(rng: np.random.Generator, n: int) -> np.ndarray:
    leaves = _stereo(_band(_noise(rng, n, 1.0), 300, 4000)) * 0.08 * (0.5 + _slow(rng, n, 3.0))[:, None]

    def song(r: np.random.Generator) -> np.ndarray:
        notes = []
        f0 = r.uniform(2500, 5500)
        for _ in range(r.integers(2, 7)):
            m = int(r.uniform(0.04, 0.15) * SR)
            tt = np.arange(m) / SR
            f = f0 * (1 + r.uniform(-0.4, 0.4) * tt / tt[-1]) + 300 * np.sin(2 * np.pi * r.uniform(20, 60) * tt)
            env = np.sin(np.pi * np.arange(m) / m) ** 2
            notes += [np.sin(2 * np.pi * np.cumsum(f) / SR) * env, np.zeros(int(r.uniform(0.03, 0.1) * SR))]
        return np.concatenate(notes) * r.uniform(0.2, 0.6)

    return leaves + _events(rng, n, 1.5, song)


def crickets(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros((n, 2))
    t = np.arange(n) / SR
    for i in range(4):
        f = rng.uniform(4200, 5200)
        pulse = (np.sin(2 * np.pi * rng.uniform(25, 40) * t) > 0.3).astype(float)  # the wing's strokes
        chirp_rate = rng.uniform(1.5, 3.0)
        chirp = (np.mod(t * chirp_rate + rng.random(), 1.0) < 0.2).astype(float)
        tone = np.sin(2 * np.pi * f * t) * _band(pulse * chirp, None, 400)
        p = (i + 0.5) / 4
        out[:, 0] += tone * np.sqrt(1 - p) * 0.3
        out[:, 1] += tone * np.sqrt(p) * 0.3
    return out + _stereo(_band(_noise(rng, n, 1.0), 200, 2000)) * 0.02


def cicadas(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SR
    out = np.zeros((n, 2))
    for ch in range(2):
        buzz = _band(_noise(rng, n, 0.0), 5000, 9000, 4)
        am = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(80, 140) * t)
        swell = 0.3 + 0.7 * _slow(rng, n, 4.0)
        out[:, ch] = buzz * am * swell
    return out


def frogs(rng: np.random.Generator, n: int) -> np.ndarray:
    def croak(r: np.random.Generator) -> np.ndarray:
        m = int(r.uniform(0.15, 0.4) * SR)
        tt = np.arange(m) / SR
        f0 = r.uniform(180, 500)
        pulses = (np.sin(2 * np.pi * r.uniform(15, 40) * tt) > 0).astype(float)
        tone = sum(np.sin(2 * np.pi * f0 * k * tt) / k for k in range(1, 6))
        return tone * _band(pulses, None, 300) * np.sin(np.pi * tt / tt[-1]) * r.uniform(0.1, 0.3)

    return _events(rng, n, 3.0, croak) + _stereo(_band(_noise(rng, n, 1.0), 100, 1500)) * 0.02


def cafe(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros((n, 2))
    t = np.arange(n) / SR
    for _ in range(8):  # voices: noise through two formants, at the rate of syllables
        src = _noise(rng, n, 1.0)
        # two formants, steep enough that the murmur stays below 4 kHz (voices through a room)
        voice = _band(src, rng.uniform(300, 700), rng.uniform(900, 1300), 4) + 0.4 * _band(src, 1800, 2800, 4)
        syll = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, 1) ** 2
        syll = _band(syll, None, 12)  # syllables swell; they do not switch
        talk = (_slow(rng, n, 1.5) > 0.4).astype(float)
        v = voice * syll * _band(talk, None, 5) * 0.2
        p = rng.uniform(0.2, 0.8)
        out[:, 0] += v * np.sqrt(1 - p)
        out[:, 1] += v * np.sqrt(p)

    def clink(r: np.random.Generator) -> np.ndarray:
        m = int(0.3 * SR)
        tt = np.arange(m) / SR
        f = r.uniform(2000, 4000)
        return sum(np.sin(2 * np.pi * f * k * tt) for k in (1.0, 2.76, 5.4)) * _decay(m, 0.05) * 0.05

    return out + _events(rng, n, 0.4, clink)


def traffic(rng: np.random.Generator, n: int) -> np.ndarray:
    out = _stereo(_band(_noise(rng, n, 2.0), 30, 300)) * 0.1
    t = np.arange(n) / SR
    for _ in range(7):  # cars passing, panned from one side to the other
        centre = rng.uniform(0, n / SR)
        width = rng.uniform(1.0, 2.5)
        env = np.exp(-(((t - centre) / width) ** 2))
        engine = _band(_noise(rng, n, 1.0), 60, rng.uniform(800, 2000)) * env
        p = np.clip(0.5 + (t - centre) / (3 * width) * rng.choice([-1, 1]), 0, 1)
        out[:, 0] += engine * np.sqrt(1 - p) * 0.6
        out[:, 1] += engine * np.sqrt(p) * 0.6
    return out


def bowl(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros((n, 2))
    t = np.arange(n) / SR
    f0 = rng.uniform(180, 260)
    for k, ratio in enumerate((1.0, 2.71, 5.03, 7.9)):
        for ch, beat in enumerate((0.0, rng.uniform(0.5, 2.0))):
            f = f0 * ratio + beat
            out[:, ch] += np.sin(2 * np.pi * f * t) / (k + 1) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.1 * t + k))
    return out


def hum(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SR
    air = _stereo(_band(_noise(rng, n, 1.0), 60, 3000), _band(_noise(rng, n, 1.0), 60, 3000))
    motor = np.sum([np.sin(2 * np.pi * 50 * k * t) / k**2 for k in (1, 2, 3)], axis=0) * 0.15
    return air + _stereo(motor)


BIRDS = ["#7-24", "#80-100", "#127-146"]
SOUNDS: dict[str, tuple[Synth, list[str]]] = {
    "rain": (rain, ["umbrella", "poncho", "window screen", "greenhouse", "patio", "tile roof", "thatch", "shower curtain"]),
    "thunder": (thunder, ["volcano", "umbrella", "beacon", "solar dish", "alp"]),
    "waves": (waves, ["seashore", "sandbar", "promontory", "cliff", "breakwater", "coral reef", "pier", "beacon",
                      "liner", "schooner", "yawl", "catamaran", "trimaran", "speedboat", "lifeboat", "wreck",
                      "swimming trunks", "snorkel", "scuba diver", "grey whale", "killer whale", "pelican",
                      "albatross", "jellyfish", "sea lion", "conch", "sea anemone", "starfish", "hermit crab"]),
    "stream": (stream, ["lakeside", "dam", "fountain", "geyser", "canoe", "paddle", "boathouse", "water ouzel",
                        "otter", "beaver", "suspension bridge", "steel arch bridge", "valley"]),
    "wind": (wind, ["alp", "cliff", "valley", "promontory", "mountain tent", "ski", "dogsled", "snowmobile",
                    "parachute", "yurt"]),
    "fire": (fire, ["volcano", "torch", "matchstick", "fire screen", "candle", "stove", "Dutch oven", "lighter"]),
    "birds": (birds, [*BIRDS, "birdhouse", "worm fence", "valley", "buckeye", "acorn", "bolete", "hen-of-the-woods",
                      "mushroom", "daisy", "hay"]),
    "crickets": (crickets, ["cricket", "grasshopper", "walking stick", "mantis", "cockroach", "hay", "daisy",
                            "rapeseed", "corn", "ear", "worm fence"]),
    "cicadas": (cicadas, ["cicada", "leafhopper", "lacewing", "dragonfly", "damselfly", "bee", "fly", "ant",
                          "ringlet", "monarch", "cabbage butterfly", "sulphur butterfly", "lycaenid", "admiral"]),
    "frogs": (frogs, ["bullfrog", "tree frog", "tailed frog", "lakeside"]),
    "cafe": (cafe, ["restaurant", "espresso", "cup", "coffee mug", "coffeepot", "espresso maker", "dining table",
                    "plate", "menu", "tray", "teapot", "bakery", "wine bottle", "beer glass", "red wine",
                    "French loaf", "bagel", "pizza", "carbonara", "trifle", "barbershop", "tobacco shop", "bookshop",
                    "confectionery", "grocery store", "shoe shop", "toyshop", "library", "cinema"]),
    "traffic": (traffic, ["cab", "streetcar", "traffic light", "street sign", "trolleybus", "minibus", "school bus",
                          "police van", "moving van", "minivan", "limousine", "passenger car", "convertible",
                          "sports car", "jeep", "ambulance", "fire engine", "garbage truck", "tow truck",
                          "trailer truck", "motor scooter", "moped", "parking meter", "jinrikisha", "tricycle",
                          "recreational vehicle", "pickup", "racer", "car wheel", "grille", "manhole cover"]),
    "bowl": (bowl, ["church", "monastery", "stupa", "bell cote", "gong", "chime", "altar", "mosque", "palace",
                    "organ", "throne", "prayer rug", "vault", "planetarium", "dome"]),
    "hum": (hum, ["electric fan", "space heater", "desktop computer", "monitor", "screen", "laptop", "notebook",
                  "computer keyboard", "mouse", "printer", "photocopier", "washer", "dishwasher", "refrigerator",
                  "microwave", "vacuum", "hair dryer", "hand blower", "radiator"]),
}


def loop(x: np.ndarray, fade: int) -> np.ndarray:
    """A seamless loop of ``x`` (frames, channels): its last ``fade`` frames crossfaded (equal
    power, for uncorrelated sound) into its first; ``fade`` frames shorter."""
    if fade <= 0 or x.shape[0] <= 2 * fade:
        return x
    ramp = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade)[:, None]
    out = x[:-fade].copy()
    out[:fade] = x[:fade] * ramp + x[-fade:] * np.sqrt(1 - ramp**2)
    return out


def make(name: str, seed: int = 0, seconds: float = SECONDS) -> np.ndarray:
    """One default sound as a seamless stereo float32 loop at :data:`SR`, normalised to unit RMS."""
    synth, _ = SOUNDS[name]
    rng = np.random.default_rng([seed, sorted(SOUNDS).index(name)])
    fade = int(FADE * SR)
    x = _band(np.asarray(synth(rng, int(seconds * SR) + fade), np.float64), 25, None)  # no DC: it eats headroom
    x /= np.sqrt(np.mean(x**2)) + 1e-12
    x = np.tanh(x / CREST) * CREST  # a crackle or a thunder clap may not be ten times the rest
    x = loop(x, fade)  # last: a filter after it would start from rest at the joint
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def write_library(folder: Path, level_db: float = -26.0, progress: bool = False) -> Path:
    """Write every default sound (FLAC at ``level_db`` RMS) and its sidecar of classes into ``folder``."""
    import soundfile as sf
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    gain = 10 ** (level_db / 20)
    for name in tqdm(SOUNDS, desc="synthesising the sound library", disable=not progress, unit="sound"):
        x = np.clip(make(name) * gain, -1, 1)
        sf.write(folder / f"{name}.flac", x, SR, subtype="PCM_24")
        (folder / f"{name}.txt").write_text("\n".join(SOUNDS[name][1]) + "\n")
    return folder
