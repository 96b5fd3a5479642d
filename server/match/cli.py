"""``earsight match IMAGE --out bed.wav --seconds 30``: the bed a picture chooses, offline."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..errors import BadRequest


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", type=Path, help="image files (png, jpg, ...)")
    p.add_argument("--out", type=Path, help="write the best bed of the (first) image to this .wav or .flac")
    p.add_argument("--seconds", type=float, default=30.0, help="length of --out (the bed loops), default 30")
    p.add_argument("--library", type=Path, help="a folder of sounds with sidecar .txt files (default: the synthesised library)")
    p.add_argument("--best", type=int, default=3, help="how many beds to list per image, default 3")
    p.add_argument("--sample-rate", type=int, default=48000)
    p.add_argument("--classes", action="store_true", help="also list each image's five most probable classes")


def run(args: argparse.Namespace) -> int:
    import soundfile as sf

    from . import bedaudio, beds, image, library

    if args.out is not None and args.out.suffix.lower() not in (".wav", ".flac"):
        raise BadRequest(f"{args.out.name}: --out must end in .wav or .flac")
    if not 0 < args.seconds <= 3600:
        raise BadRequest(f"--seconds must be in (0, 3600], got {args.seconds:g}")
    lib = library.load(args.library) if args.library else library.load(library.default_folder(progress=True))
    matcher = beds.Matcher(lib)
    first = None
    for path in args.images:
        t0 = time.perf_counter()
        result = matcher.match(image.classify(image.load(path)), best=args.best)
        ms = 1e3 * (time.perf_counter() - t0)
        print(f"{path.name}  ({ms:.0f} ms; the library expresses {100 * result.coverage:.0f}% of its classes)")
        if args.classes:
            print("  classes: " + ", ".join(f"{name} {p:.2f}" for name, p in result.top))
        for rank, bed in enumerate(result.beds, 1):
            parts = " + ".join(f"{n} {w:.2f}" for n, w in zip(bed.sounds, bed.weights, strict=True))
            print(f"  {rank}. {parts}   KL {bed.divergence:.3f}")
        first = first or result
    if args.out is not None and first is not None:
        bed_loop = bedaudio.mix(first.beds[0], lib, args.sample_rate)
        audio = bedaudio.extend(bed_loop, int(args.seconds * args.sample_rate))
        sf.write(args.out, np.clip(audio, -1, 1), args.sample_rate)
        print(f"wrote {args.out} ({args.seconds:g} s)")
    return 0
