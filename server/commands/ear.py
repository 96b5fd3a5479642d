"""The ear: which one listens, what it has, which of its neurons are chosen, what it encodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import DEFERRED, Arg, Command, Reply, Request

if TYPE_CHECKING:
    from ..embed import EmbedFitter
    from ..listen import Track
    from ..state import EarState


def _model_list(track: Track, req: Request) -> list[Reply]:
    return [("/ear/model/list.reply", track.names())]


def _model_load(track: Track, req: Request, name: str) -> object:
    track.load(name, req)
    return DEFERRED


def _model_info(track: Track, req: Request) -> list[Reply]:
    return [("/ear/model/info.reply", track.info())]


def _select(state: EarState, req: Request, layer: str, *channels: int) -> None:
    state.select(layer, list(channels))


def _top(state: EarState, req: Request, count: int, threshold: float) -> None:
    state.set_top(count, threshold)


def _embed_fit(fitter: EmbedFitter, req: Request, layer: str, seconds: float | None, dims: int | None) -> object:
    fitter.fit(layer, 10.0 if seconds is None else seconds, 10 if dims is None else dims, req)
    return DEFERRED


COMMANDS: tuple[Command, ...] = (
    Command(
        "/ear/select",
        (Arg("layer", "s", "a layer of the ear (see /ear/model/info)"), Arg("channels", "i", "channel numbers; none: all", variadic=True)),
        _select, "/ear/done",
        "Choose the neurons of the act stream (and the highlighted ones in the view).",
        "state", scene="switch",
    ),
    Command("/ear/model/list", (), _model_list, "/ear/model/list.reply", "The names of the ears.", "ear"),
    Command(
        "/ear/model/load", (Arg("name", "s", "an ear from /ear/model/list"),), _model_load, "/ear/done",
        "Switch ears while audio plays; /ear/done once the new ear is listening.", "ear", scene="switch",
    ),
    Command(
        "/ear/model/info", (), _model_info, "/ear/model/info.reply",
        "name, sample_rate, frame_rate, latency_ms, labels (count), layers (count), then per layer: name, channels, units.",
        "ear",
    ),
    Command(
        "/ear/top", (Arg("count", "i", "at most this many labels (P)"), Arg("threshold", "n", "0-1: each at least this probable")),
        _top, "/ear/done",
        "The selection of the top stream (audio-visual hallucinations: the P most probable labels above a threshold).",
        "state", scene="switch",
    ),
    Command(
        "/ear/embed/fit",
        (
            Arg("layer", "s", "the layer to encode"),
            Arg("seconds", "n", "how much audio to fit on, from now (default 10)", optional=True),
            Arg("dims", "i", "dimensions (default 10, at most 32)", optional=True),
        ),
        _embed_fit, "/ear/done",
        "Fit the embed stream (PCA of a layer, each dimension scaled to 0-1) on the coming seconds; "
        "answers /ear/done /ear/embed/fit <layer> <dims> when fitted.",
        "embed",
    ),
)
