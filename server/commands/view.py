"""The live picture: what it shows, how, and snapshots of it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import Arg, Command, Reply, Request, in_background

if TYPE_CHECKING:
    from ..display import Display


def _view(display: Display, req: Request, name: str) -> None:
    display.set("view", name)


def _colormap(display: Display, req: Request, name: str) -> None:
    display.set("colormap", name)


def _mode(display: Display, req: Request, name: str) -> None:
    display.set("mode", name)


def _number(name: str) -> Callable[[Display, Request, float], None]:
    def handler(display: Display, req: Request, value: float) -> None:
        display.set(name, float(value))  # validated against the setting's range (BadRequest)

    return handler


def _labels(display: Display, req: Request, on: int) -> None:
    display.set("labels", bool(on))


def _highlight(display: Display, req: Request, layer: str, *channels: int) -> None:
    display.highlight(layer, list(channels))


def _shuffle(display: Display, req: Request, seed: int | None) -> list[Reply]:
    return [("/ear/done", [req.address, *display.shuffle(seed)])]


def _snapshot(display: Display, req: Request, name: str | None) -> list[Reply]:
    stamp = time.strftime("earsight-%Y%m%d-%H%M%S.png")
    path = req.files.output(name or "", "snapshots", (".png",), default=stamp, overwrite=True)
    return [("/ear/done", [req.address, str(display.snapshot(path))])]


def _size(display: Display, req: Request, width: int, height: int) -> None:
    display.set_size(width, height)


def _relayout(display: Display, req: Request, seed: int) -> object:
    def relayout() -> list[object]:
        display.relayout(seed)
        return [seed]

    return in_background(req, relayout)  # a layout takes seconds


def _fps(display: Display, req: Request, fps: float) -> None:
    display.set_fps(fps)


def _track(display: Display, req: Request, number: int) -> None:
    display.show_track(number)


def _url(display: Display, req: Request) -> list[Reply]:
    return [("/ear/view/url.reply", [display.url])]


COALESCED = ("/ear/view/size", "/ear/view/fps", "/ear/view/tau", "/ear/view/gain", "/ear/view/decay", "/ear/view/glow")
"""Faders: a burst of them keeps only the latest value."""
SCENE = {
    "/ear/view": "switch", "/ear/view/colormap": "switch", "/ear/view/mode": "switch", "/ear/view/labels": "switch",
    "/ear/view/size": "switch", "/ear/view/fps": "switch", "/ear/view/layout": "switch", "/ear/view/track": "switch",
    "/ear/view/tau": "glide", "/ear/view/gain": "glide", "/ear/view/decay": "glide", "/ear/view/glow": "glide",
}
"""What a scene holds of the view (the highlight follows /ear/select; a shuffle is a redraw, not a setting)."""

COMMANDS: tuple[Command, ...] = tuple(
    Command(address, args, handler, reply, doc, "view", coalesce=address in COALESCED, scene=SCENE.get(address, ""))
    for address, args, handler, reply, doc in (
        ("/ear/view", (Arg("name", "s", "layout, hallucination or features"),), _view, "/ear/done",
         "What the picture shows: every neuron laid out, a generative image steered by the tags, or the embed features mapped to shapes."),
        ("/ear/view/colormap", (Arg("name", "s", "magma, viridis, inferno or gray"),), _colormap, "/ear/done",
         "The colour map of the neurons."),
        ("/ear/view/mode", (Arg("name", "s", "change or raw"),), _mode, "/ear/done",
         "How a neuron lights: change (the default: its deviation from its own running level, in its own running spreads; silence is dark, a change lights what changed) or raw (its level, scaled per layer)."),
        ("/ear/view/tau", (Arg("seconds", "n", "0.05-600; default 1"),), _number("tau"), "/ear/done",
         "Time constant of each neuron's running level in change mode (its spread follows ten times slower): short shows onsets, long shows whole passages."),
        ("/ear/view/gain", (Arg("gain", "n", "0.01-100; default 1"),), _number("gain"), "/ear/done",
         "Light per deviation: at gain 1 a neuron 3 spreads off its level (change) or at the top of its layer's range (raw) is fully lit."),
        ("/ear/view/decay", (Arg("seconds", "n", "0-30; default 0.25"),), _number("decay"), "/ear/done",
         "Time constant of the light's fade (it rises at once)."),
        ("/ear/view/glow", (Arg("strength", "n", "0-4; default 1.5, 0: none"),), _number("glow"), "/ear/done",
         "How brightly the space between neurons glows with their light."),
        ("/ear/view/labels", (Arg("on", "i", "1: layer labels and the legend on the picture, 0: off"),), _labels, "/ear/done",
         "Layer labels and the legend (colour map and what full light means) over the layout view."),
        ("/ear/view/highlight", (Arg("layer", "s"), Arg("channels", "i", "none: clear", variadic=True)), _highlight, "/ear/done",
         "Highlight neurons in the picture only (/ear/select highlights and streams)."),
        ("/ear/view/shuffle", (Arg("seed", "i", "for a repeatable mapping", optional=True),), _shuffle, "/ear/done",
         "Redraw which embed feature drives which visual parameter (10! mappings); answers /ear/done /ear/view/shuffle <permutation...>."),
        ("/ear/view/snapshot", (Arg("name", "s", "a .png file under the output folder (--out-dir; relative: under its snapshots/)", optional=True),), _snapshot, "/ear/done",
         "Draw now and save a PNG; answers /ear/done /ear/view/snapshot <path>."),
        ("/ear/view/size", (Arg("width", "i", "64-3840"), Arg("height", "i", "64-2160")), _size, "/ear/done",
         "Picture size in pixels."),
        ("/ear/view/fps", (Arg("fps", "n", "1-120"),), _fps, "/ear/done", "Frames per second while someone watches."),
        ("/ear/view/layout", (Arg("seed", "i", "0 is the shipped layout"),), _relayout, "/ear/done",
         "Lay the neurons out again from another seed (cached per seed; the first time takes seconds)."),
        ("/ear/view/track", (Arg("track", "i", "1 (default) to the number of inputs (--inputs)"),), _track, "/ear/done",
         "Which track's ear the picture shows (its layout and activations, redrawn)."),
        ("/ear/view/url", (), _url, "/ear/view/url.reply", "The address of the web page with the live picture."),
    )
)
