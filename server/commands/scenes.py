"""Scenes: every setting saved under a name, recalled at once or with a crossfade."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .base import QUANTISE_ARG, Arg, Command, Reply, Request, in_background

if TYPE_CHECKING:
    from ..scenes import Scenes


def _save(scenes: Scenes, req: Request, name: str) -> list[Reply]:
    return [("/ear/done", [req.address, name, str(scenes.save(name, req.files))])]


def _recall(scenes: Scenes, req: Request, name: str, fade: float | None, quantise: str | None) -> object:
    seconds = fade or 0.0
    scene, ticket = scenes.ask(name, seconds, req.files)  # a missing or corrupt file is answered now
    start = time.monotonic() + req.until(quantise or "now")
    return in_background(req, lambda: [name, *scenes.recall(scene, seconds, ticket, req, start)])


def _list(scenes: Scenes, req: Request) -> list[Reply]:
    return [("/ear/scene/list.reply", list(scenes.names(req.files)))]


def _delete(scenes: Scenes, req: Request, name: str) -> None:
    scenes.delete(name, req.files)


def _show(scenes: Scenes, req: Request, name: str | None) -> list[Reply]:
    lines = scenes.lines(scenes.capture() if name is None else scenes.read(name, req.files))
    return [*(("/ear/scene/show.reply", line) for line in lines), ("/ear/done", [req.address, len(lines)])]


NAME = "1-64 letters, digits, spaces, '.', '-' or '_'"

COMMANDS: tuple[Command, ...] = tuple(
    Command(address, args, handler, reply, doc, "scenes")
    for address, args, handler, reply, doc in (
        ("/ear/scene/save", (Arg("name", "s", NAME),), _save, "/ear/done",
         "Save every setting a command can set (the table marks them *scene*), the subscribers and their streams, "
         "the fitted embedding and the bed playing, as readable JSON under the output folder's scenes/ (written "
         "whole or not at all); answers /ear/done /ear/scene/save <name> <path>. Saving again replaces it."),
        ("/ear/scene/recall", (Arg("name", "s", "a saved scene"),
                               Arg("fade", "n", "seconds, 0-60 (default 0: at once)", optional=True), QUANTISE_ARG),
         _recall, "/ear/done",
         "Recall a scene: the settings marked *scene: glide* crossfade over the fade, the rest switch at its end (a "
         "new ear first), then /ear/done /ear/scene/recall <name> [services not running, whose settings were "
         "skipped]. The file is checked before anything changes: a corrupt one, or a setting refused on the way "
         "(what the recall had changed is put back), answers /ear/fail with the field at fault. A later recall "
         "supersedes one still fading (or waiting for its beat)."),
        ("/ear/scene/list", (), _list, "/ear/scene/list.reply", "The names of the saved scenes."),
        ("/ear/scene/delete", (Arg("name", "s", "a saved scene"),), _delete, "/ear/done", "Delete a saved scene."),
        ("/ear/scene/show", (Arg("name", "s", "a saved scene (default: the settings now)", optional=True),), _show,
         "/ear/scene/show.reply",
         "One /ear/scene/show.reply per setting (<address> <arguments...>), per subscriber (subscriber <host> <port> "
         "<format> <bundle> <stream> <rate> ...), then embedding <layer> <dims> and bed <sound> <weight> ... (or "
         "none); then /ear/done /ear/scene/show <lines>."),
    )
)
