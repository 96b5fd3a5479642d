"""The live picture: what it shows, how, and snapshots of it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .base import Arg, Command, Reply, Request, in_background

if TYPE_CHECKING:
    from ..display import Display


def _view(display: Display, req: Request, name: str) -> None:
    display.set("view", name)


def _colormap(display: Display, req: Request, name: str) -> None:
    display.set("colormap", name)


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


def _url(display: Display, req: Request) -> list[Reply]:
    return [("/ear/view/url.reply", [display.url])]


COMMANDS: tuple[Command, ...] = tuple(
    Command(address, args, handler, reply, doc, "view", coalesce=address in ("/ear/view/size", "/ear/view/fps"))
    for address, args, handler, reply, doc in (
        ("/ear/view", (Arg("name", "s", "layout, hallucination or features"),), _view, "/ear/done",
         "What the picture shows: every neuron laid out, a generative image steered by the tags, or the embed features mapped to shapes."),
        ("/ear/view/colormap", (Arg("name", "s", "magma, viridis, inferno or gray"),), _colormap, "/ear/done",
         "The colour map of the neurons."),
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
        ("/ear/view/url", (), _url, "/ear/view/url.reply", "The address of the web page with the live picture."),
    )
)
