"""THE table of OSC commands: address, arguments, handler, reply, doc — composed from each service's own.

Each module here declares one service's commands (``server``, ``streams``, ``ear``, ``audio``,
``view``, ``sonify``, ``match``, ``scenes``, ``link``); a command's handler gets that service (``handler(service, request,
*args)``). The README's reference, the patches' help and the tests are generated from
:data:`COMMANDS`. Nothing here imports torch.
"""

from __future__ import annotations

from . import audio, ear, link, match, scenes, server, sonify, streams, view
from .base import DEFERRED, ROOT, TYPES, Address, Arg, Command, Reply, Request, in_background
from .dispatch import Dispatcher

COMMANDS: tuple[Command, ...] = (
    server.COMMANDS + streams.COMMANDS + ear.COMMANDS + audio.COMMANDS + view.COMMANDS + sonify.COMMANDS
    + match.COMMANDS + scenes.COMMANDS + link.COMMANDS
)
BY_ADDRESS: dict[str, Command] = {c.address: c for c in COMMANDS}
SERVICES = tuple(dict.fromkeys(c.service for c in COMMANDS))

__all__ = [
    "BY_ADDRESS", "COMMANDS", "DEFERRED", "ROOT", "SERVICES", "TYPES", "Address", "Arg", "Command", "Dispatcher",
    "SCENE", "SETTER", "Reply", "Request", "in_background", "marks", "reference_markdown",
]


SETTER = (
    "*(setter)*: when one sender's messages arrive faster than the server applies them, its latest value of a "
    "setter stands for the ones before it (a fader flood) and one answer stands for them; `/ear/status` counts "
    "the others as `coalesced`."
)

SCENE = (
    "*(scene: switch)* and *(scene: glide)*: a scene (`/ear/scene/save`) holds this setting; a recall glides the "
    "*glide* ones over its fade and switches the others at its end."
)


def marks(command: Command) -> str:
    """The notes after a command's doc: *(setter)*, *(scene: ...)*."""
    return (" *(setter)*" if command.coalesce else "") + (f" *(scene: {command.scene})*" if command.scene else "")


def reference_markdown() -> str:
    """The README's OSC reference, generated from the table."""
    lines = [
        "| address | arguments | reply | what it does |",
        "|---|---|---|---|",
    ]
    for c in COMMANDS:
        args = "<br>".join(f"`{a.signature()}` {a.doc}".strip() for a in c.args) or "–"
        lines.append(f"| `{c.address}` | {args} | `{c.reply}` | {c.doc}{marks(c)} |")
    lines.append("")
    lines.append("Types: " + "; ".join(f"`{k}` {v}" for k, v in TYPES.items()) + ". "
                 "Every command answers its reply or `/ear/fail <address> <reason>`. " + SETTER + " " + SCENE)
    return "\n".join(lines)
