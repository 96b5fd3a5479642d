"""``earsight dream`` and ``earsight auralise``: a file in, its sonification out; the options
come from the parameter table (:mod:`.params`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from .deconv import save_mask_png
from .dream import DreamResult
from .figures import save_dream_png
from .files import sonify_file
from .params import AUDIO_FORMATS, BY_NAME, PARAMS, defaults


def _add_param_options(p: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    for spec in PARAMS:
        if spec.name in ("layer", "channel", "dry", "wet", *skip):
            continue
        kind: Any = {"n": float, "i": int, "s": str}[spec.type]
        p.add_argument(f"--{spec.name.replace('_', '-')}", type=kind, default=spec.default, choices=spec.choices, help=f"{spec.doc} (default {spec.default})")


def _add_common(p: argparse.ArgumentParser) -> None:
    from ..ears import registry

    p.add_argument("file", help="audio file (any rate, mixed to mono)")
    p.add_argument("--ear", default=registry.DEFAULT, choices=registry.names())
    p.add_argument("--layer", required=True, help="layer name (earsight ears / /ear/model/info)")
    p.add_argument("--channel", type=int, default=-1, help="channel (-1: all channels of the layer)")
    p.add_argument("--out", required=True, help="output .wav or .flac")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--seconds", type=float, default=0.0, help="only the first this many seconds (0: all)")


def add_dream_arguments(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    _add_param_options(p, skip=("window", "chunk", "fade", "stride", "steps"))


def add_auralise_arguments(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    p.add_argument("--mix", type=float, default=1.0, help="0 the input, 1 the auralisation")
    p.add_argument("--stride", type=int, default=1, help="ear frames between deconvolved frames")


def _run(args: argparse.Namespace, mode: str) -> int:
    from ..audio import io
    from ..ears import registry

    ear = registry.load(args.ear)
    audio, sr = io.read(args.file, mono=True)
    if args.seconds > 0:
        audio = audio[: int(args.seconds * sr)]
    out_path = Path(args.out)
    if out_path.suffix.lower() not in AUDIO_FORMATS:
        raise BadRequest(f"--out must end in .wav or .flac, got {args.out}")
    if out_path.exists() and not args.overwrite:
        raise BadRequest(f"{out_path} exists (--overwrite to replace it)")
    values = defaults()
    for name in values:
        if hasattr(args, name):
            values[name] = BY_NAME[name].coerce(getattr(args, name))
    out, result = sonify_file(ear, audio, int(sr), mode, values, progress=True)
    io.write(out_path, out, int(sr))
    if isinstance(result, DreamResult):
        title = f"{args.ear} {args.layer}:{args.channel}: {result.rise_spreads:+.2f} spreads"
        png = save_dream_png(audio, out, int(sr), out_path.with_suffix(".png"), title)
        print(f"{out_path}: {result.steps} steps in {result.seconds:.1f} s, activation {result.before:.4g} -> "
              f"{result.after:.4g}: a rise of {result.rise_spreads:+.2f} spreads (raw {result.rise:+.4g}); "
              f"spectrograms {png}")
    else:
        png = save_mask_png(result, out_path.with_suffix(".png"), f"{args.ear} {args.layer}:{args.channel}")
        print(f"{out_path}, mask {png} (peak {result.peak:.4g}{', the feature never fired' if result.peak == 0 else ''})")
    return 0


def run_dream(args: argparse.Namespace) -> int:
    return _run(args, "dream")


def run_auralise(args: argparse.Namespace) -> int:
    return _run(args, "auralise")
