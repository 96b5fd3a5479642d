"""``earsight probe EAR``: the linear probes of a trained CPC ear, run again (after the probes
changed, or on an ear trained with ``--no-probe``); ``--write`` puts them into its report."""

from __future__ import annotations

import argparse
import json

import torch

from ..ears.cpc import load_net
from ..errors import NotFound
from .loop import weights_of
from .probes import probe, probe_nets
from .report import write_json


def flat(results: dict[str, object]) -> list[tuple[str, str, float]]:
    """(task, features, accuracy) rows of a probe result, in its order."""
    rows: list[tuple[str, str, float]] = []
    for name, value in results.items():
        if isinstance(value, dict) and name == "key":
            rows += [
                ("key", k, float(v)) for k, v in value.items()
                if isinstance(v, float) and ("." in k or k in ("chance", "majority"))
            ]
        elif isinstance(value, dict) and {"pitch_class", "instrument"} <= set(value):
            rows += [(task, name, float(value[task])) for task in ("pitch_class", "instrument")]
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ear", help="a CPC ear: cpc, a trained ear's name, or a weights file")
    parser.add_argument("--seed", type=int, default=None, help="probe seed (default: the report's training seed, else 0)")
    parser.add_argument("--chorales", type=int, default=None, help="key probe: this many chorales (default 40)")
    parser.add_argument("--keys", type=int, default=None, help="key probe: each chorale in this many keys (default 12)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="replace the probes in the ear's report (NAME.report.json)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    path = weights_of(args.ear)
    report_path = path.with_suffix(".report.json")
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    if args.write and report is None:
        raise NotFound(f"no report beside {path} to write the probes into ({report_path.name})")
    seed = args.seed if args.seed is not None else int((report or {}).get("config", {}).get("seed", 0))
    key = {"chorales": args.chorales, "transpositions": args.keys}
    results = probe(probe_nets(load_net(path), seed), seed=seed, key={k: v for k, v in key.items() if v is not None})
    for task, features, accuracy in flat(results):
        print(f"{task:12s} {features:24s} {100 * accuracy:5.1f} %")
    if args.write:
        assert report is not None
        report["probe"] = results
        write_json(report, path)
        print(f"wrote the probes into {report_path}")
    return 0
