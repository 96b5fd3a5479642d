"""``earsight bench``: figures, each beside a baseline measured in the same run.

Not a test: it prints what this machine does. Sections:
- latency: clicks and tone bursts played into the server's JACK input by a separate JACK client,
  timed until the level, onset and pitch streams show them at a real OSC client; beside bare pyo
  processes sending the block peak (C-side and from a Python callback) and the declared latency.
- ears: real-time factor of each ear streaming (256-sample blocks at 48 kHz, as the server runs
  it) and offline; the baseline is the offline pass.
- xruns: JACK xruns over a period while the server streams every feature at full rate under an
  OSC flood, against a quarter of that period of JACK without the server (baseline).
- osc: the fraction of paced /ear/sync requests answered at 2k-20k per second, against a bare
  python-osc parse-and-echo loop on the same machine.
- fuzz: hostile datagrams at 10,000/s with pings between: pings answered, fails, restarts, memory.
- soak: full load (streams, a viewer, a live dream, an OSC flood) for --seconds: memory growth,
  xruns, restarts, counters.
- match: a 1280x720 picture matched on one core beside the network's forward pass; crossfades
  between beds: the largest step beside the beds' own, and JACK xruns while pictures change the bed.
- link: the server and a second Ableton Link peer, in a network namespace of their own: how soon they
  find each other, tempo agreement after either changes it, the beat stream's phase against the
  peer's at the same moment, and how far commands quantised to the bar land from it.
- tracks: 4 tracks of one ear (--inputs 4) through JACK at 48 kHz/256: each track's real-time
  ratio, the ear worker's load and JACK xruns, beside one track in the same run.
- picture: does the picture move with the music (:mod:`earsight.render.picture`): silence vs
  music and clicks in grey levels, onset following, distinct pixels, fps per view with a viewer;
  the light's change mode beside the raw mode (the baseline).
The server runs as its own process (:func:`earsight.cli.running_server`), as users run it: the
bench's clients must not share its GIL.
Stages that add their own figures (render, layout, sonify) are included when present.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..ears import registry
from .common import show

SECTIONS = ("ears", "latency", "xruns", "osc", "fuzz", "stages", "soak", "layout", "picture", "dream", "match", "link", "tracks")
DEFAULT = ("ears", "latency", "xruns", "osc", "stages")
"""Run when no --only is given (fuzz and soak take minutes: ask for them)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", nargs="*", choices=SECTIONS, default=list(DEFAULT), help="sections to run")
    p.add_argument("--ears", nargs="*", default=None, help="ears to measure (default: every ear that loads)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the xrun measurement (and of the soak)")
    p.add_argument("--full", action="store_true",
                   help="xruns at full load: the soak's load (every stream, a viewer, a live dream, a 10,000/s flood)")
    p.add_argument("--datagrams", type=int, default=1_000_000, help="how many datagrams the fuzz section sends")
    p.add_argument("--json", default=None, help="also write all figures to this JSON file")
    p.add_argument("--pictures", default=None, help="the picture section writes its snapshots (PNG) to this folder")


def run(args: argparse.Namespace) -> int:
    import torch

    from .audio import bench_xruns
    from .ears import bench_ear
    from .fuzz import bench_fuzz
    from .latency import bench_latency
    from .osc import bench_osc
    from .soak import bench_soak
    from .stages import bench_stages

    torch.set_num_threads(1)  # as the server runs its ear
    results: dict[str, Any] = {}
    ears = args.ears or registry.names()
    loadable = []
    if "ears" in args.only:
        for name in ears:
            try:
                results[f"ear {name}"] = bench_ear(name)
                loadable.append(name)
            except Exception as exc:  # an ear that cannot load here is reported, not fatal to the bench
                print(f"\n== ear {name}: cannot load ({type(exc).__name__}: {exc})")
                continue
            show(f"ear {name} (1 torch thread)", results[f"ear {name}"])
    if "latency" in args.only:
        results["latency"] = bench_latency()
        show("latency: audio in (JACK, 48 kHz/256) -> OSC out, per stream, beside bare pyo floors", results["latency"])
    if "xruns" in args.only and args.full:
        results["xruns"] = bench_soak(args.seconds)
        show(f"xruns at full load for {args.seconds:g} s: JACK dummy, 48 kHz, 256-sample blocks", results["xruns"])
    elif "xruns" in args.only:
        results["xruns"] = bench_xruns(args.seconds)
        show("xruns: JACK dummy, 48 kHz, 256-sample blocks", results["xruns"])
    if "osc" in args.only:
        results["osc"] = bench_osc()
        show("osc: /ear/sync round trips (fraction answered); a fader flood while audio runs", results["osc"])
    if "fuzz" in args.only:
        results["fuzz"] = bench_fuzz(args.datagrams)
        show(f"fuzz: {args.datagrams} hostile datagrams at 10,000/s, a ping every 100", results["fuzz"])
    if "soak" in args.only:
        results["soak"] = bench_soak(args.seconds)
        show(f"soak: {args.seconds:g} s at full load", results["soak"])
    if "picture" in args.only:
        from pathlib import Path

        from ..render.picture import bench_picture

        folder = Path(args.pictures) if args.pictures else None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        for name in args.ears or [registry.DEFAULT]:
            results[f"picture {name}"] = bench_picture(registry.load(name), snapshots=folder)
            show(f"picture {name} at 1280x720: change mode (default) beside raw mode (baseline)", results[f"picture {name}"])
    if "stages" in args.only:
        results["stages"] = bench_stages(loadable or ears)
    if "dream" in args.only:
        from ..sonify.battery import bench_dreams

        results["dream"] = bench_dreams(args.ears or ["crepe", "musicnn", "cpc"])
    if "layout" in args.only:  # the benchmark net and every ear, beside networkx on the same full graph
        from ..layout import bench_layouts

        for title, figures in bench_layouts(ears).items():
            results[f"layout {title}"] = figures
            show(f"layout: {title} (full connectivity; ours vs networkx.spring_layout)", figures)
    if "match" in args.only:  # a picture's match on one core; crossfades' clicks and xruns
        from ..match.bench import bench_match

        results.update(bench_match())
    if "link" in args.only:
        from .link import bench_link

        results["link"] = bench_link(min(args.seconds, 10.0))
        show("link: the server and a second Link peer (a network namespace with only loopback)", results["link"])
    if "tracks" in args.only:
        from .tracks import bench_tracks

        for name in args.ears or [registry.DEFAULT]:
            results[f"tracks {name}"] = bench_tracks(name, seconds=min(args.seconds, 30.0))
            show(f"tracks: {name} on 1 and 4 tracks, JACK dummy 48 kHz/256, two cores", results[f"tracks {name}"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0
