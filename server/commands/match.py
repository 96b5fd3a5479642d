"""Image -> ambient sound: match a picture (a file, or the view's own) to a bed of sounds that plays."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import DEFERRED, QUANTISE_ARG, Arg, Command, Reply, Request, key_values

if TYPE_CHECKING:
    from ..match.live import Matching


def _match(matching: Matching, req: Request, image: str, quantise: str | None) -> object:
    path = None if image == "view" else req.files.input(image)
    req.until(quantise or "now")  # a bad name is refused now, not after the match
    matching.request("view" if path is None else "image", req, path, quantise or "now")
    return DEFERRED


def _off(matching: Matching, req: Request) -> object:
    matching.request("off", req)
    return DEFERRED


def _follow(matching: Matching, req: Request, seconds: float) -> None:
    matching.set_follow(seconds, req)


def _library(matching: Matching, req: Request, folder: str) -> object:
    matching.request("library", req, None if folder == "default" else req.files.folder(folder))
    return DEFERRED


def _level(matching: Matching, req: Request, level: float) -> None:
    matching.set_level(level)


def _input(matching: Matching, req: Request, on: int) -> None:
    matching.set_level(matching.level, bool(on))


def _fade(matching: Matching, req: Request, seconds: float) -> None:
    matching.set_fade(seconds)


def _status(matching: Matching, req: Request) -> list[Reply]:
    return [("/ear/match/status.reply", key_values(matching.stats()))]


SCENE = {"/ear/match/library": "switch", "/ear/match/level": "glide", "/ear/match/input": "switch",
         "/ear/match/fade": "switch", "/ear/match/follow": "switch"}
"""What a scene holds of the match (and the bed playing, which no single command sets)."""

COMMANDS: tuple[Command, ...] = tuple(
    Command(address, args, handler, reply, doc, "match", coalesce=address in ("/ear/match/level",), scene=SCENE.get(address, ""))
    for address, args, handler, reply, doc in (
        ("/ear/match", (Arg("image", "s", "an image file (png, jpg, ...) in an allowed folder (--allow-dir), or view: the picture the server draws now"), QUANTISE_ARG),
         _match, "/ear/match.reply",
         "Match a picture to a bed of up to three ambient sounds and crossfade to it. Answers one "
         "/ear/match.reply <rank> <divergence> <coverage> <sound> <weight> ... per bed, best first (the first plays): "
         "the KL divergence of the picture's ImageNet classes from the bed's, the share of the picture's classes the "
         "library can express, and each sound's share of the bed's power. A newer /ear/match supersedes one still waiting. "
         "Quantised, the crossfade starts on the next beat or bar after the match is ready."),
        ("/ear/match/follow", (Arg("seconds", "n", "1-3600; 0: off"),), _follow, "/ear/done",
         "Match the view's picture again every so many seconds (its replies go to whoever asked), so the ear's own "
         "picture chooses what it hears next; each change is a crossfade."),
        ("/ear/match/off", (), _off, "/ear/done", "Fade the bed out and stop following the view."),
        ("/ear/match/library", (Arg("folder", "s", "a folder in an allowed folder (--allow-dir), or default"),), _library, "/ear/done",
         "The sounds to match from: every audio file with a sidecar .txt naming the ImageNet classes it evokes (class "
         "names, #index or #first-last, or words of class names; a number after an entry weighs it). Answers /ear/done "
         "/ear/match/library <folder> <sounds>. default: the synthesised library."),
        ("/ear/match/level", (Arg("level", "n", "0-4, default 1"),), _level, "/ear/done",
         "The bed's gain in the output (beside /ear/output/mix's dry and wet; the bed plays at -26 dBFS RMS at 1)."),
        ("/ear/match/input", (Arg("on", "i", "1: the ear hears the bed too; 0 (default): only the output has it"),), _input,
         "/ear/done", "Whether the bed is mixed into what the ear listens to (then it reaches the output as dry input)."),
        ("/ear/match/fade", (Arg("seconds", "n", "0.05-60, default 3"),), _fade, "/ear/done",
         "Length of the crossfade from one bed to the next (equal power: the level does not dip)."),
        ("/ear/match/status", (), _status, "/ear/match/status.reply",
         "Key-value pairs: library, sounds, bed (the one playing), level, input, fade, follow, matches, changes, "
         "superseded, failed, and the last match's read_ms, classify_ms, match_ms, mix_ms."),
    )
)
