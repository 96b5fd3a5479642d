"""Scenes: every setting a command can set, saved under a name and recalled with a crossfade.

A scene is a JSON file under the output folder's ``scenes/``:

- ``settings``: each setting as the command that makes it (address -> arguments), so a scene reads
  like a patch and is checked by the command table, which says what a scene holds and what glides
  (``Command.scene``);
- ``subscribers``: who receives which streams, in what format, at what rate;
- ``embedding``: the fitted embed stream (its arrays as base64 little-endian float64);
- ``bed``: the ambient sounds playing and their shares of its power;
- with several tracks, track k's settings at ``/ear/<k>/...`` addresses, and its subscribers and
  embedding under ``tracks``.

Recall reads and checks the whole file before it changes anything, glides the continuous settings
over the fade, then switches the rest (the ear first, so the selection is checked against the
new one). A setting refused on the way puts back what the recall had changed, and the answer
names the setting. One recall runs at a time; a newer one supersedes one still fading.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .commands.base import DEFERRED, Command, Request
from .commands.dispatch import TRACK_SERVICES, split_track
from .errors import BadRequest, EarsightError, NotFound
from .features import STREAMS, Embedding
from .paths import Folders, write_atomically

log = logging.getLogger(__name__)

FORMAT = "earsight scene"
VERSION = 1
"""The scene format this server writes; it reads this one and older ones."""
FIELDS = ("format", "version", "earsight", "saved", "settings", "subscribers", "embedding", "bed", "tracks")
NAME = re.compile(r"\w[\w .-]{0,63}")
GLIDE_RATE = 30.0
"""Steps per second of a glide."""
MAX_FADE = 60.0
WAIT = 300.0
"""Seconds a setting answered later (an ear loading, a layout, a library) may take."""
MAX_BYTES = 64 * 2**20
"""A bigger file is not a scene of ours: refused before it is read."""
LOAD = "/ear/model/load"
"""Switched first: the other settings are checked against the ear it loads."""


@dataclass
class Scene:
    """A scene as read and checked. ``parts`` has the subscribers, the embedding and the bed, each
    only where the file has it: an older file without one leaves that part as it is."""

    settings: dict[str, list[object]]
    parts: dict[str, Any] = field(default_factory=dict)


class Superseded(EarsightError):
    pass


# ---------------------------------------------------------------- the file (pure)


def encode(scene: Scene) -> str:
    data: dict[str, Any] = {"format": FORMAT, "version": VERSION, "earsight": __version__,
                            "saved": datetime.now(UTC).isoformat(timespec="seconds"), "settings": scene.settings}
    for key, value in scene.parts.items():
        data[key] = _encode_parts(value) if key == "tracks" else _encode_parts({key: value})[key]
    lines = []  # one line per setting and per subscriber: a scene reads (and diffs) like a patch
    for key, value in data.items():
        if key == "settings":
            inner = ",\n".join(f"  {json.dumps(a)}: {json.dumps(args)}" for a, args in value.items())
            lines.append(f' "settings": {{\n{inner}\n }}')
        elif key == "subscribers":
            inner = ",\n".join(f"  {json.dumps(sub)}" for sub in value)
            lines.append(f' "subscribers": [\n{inner}\n ]')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def decode(text: str, table: Mapping[str, Command], where: str) -> Scene:
    """Read and check a scene; raises BadRequest naming the field at fault."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{where} is not a scene: not JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise BadRequest(f"{where} is not a scene: field 'format' must be {FORMAT!r}, got {got!r}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadRequest(f"{where}: field 'version' must be a whole number >= 1, got {version!r}")
    if version > VERSION:
        raise BadRequest(f"{where}: field 'version' is {version}: saved by a newer earsight "
                         f"({data.get('earsight', '?')}); this one reads scene versions up to {VERSION}")
    unknown = [k for k in data if k not in FIELDS]
    if unknown:
        raise BadRequest(f"{where}: field {unknown[0]!r} is not one this version keeps (fields: {', '.join(FIELDS)})")
    settings = data.get("settings")
    if not isinstance(settings, dict):
        raise BadRequest(f"{where}: field 'settings' must be an object of address: [arguments]")
    for address, args in settings.items():
        track, base = split_track(address)
        command = table.get(base)
        if command is None or not command.scene or track != 1 and command.service not in TRACK_SERVICES:
            raise BadRequest(f"{where}: field settings[{address!r}] is not a setting this version keeps")
        if not isinstance(args, list):
            raise BadRequest(f"{where}: field settings[{address!r}] must be a list of arguments")
        try:
            command.coerce(args)
        except BadRequest as exc:
            raise BadRequest(f"{where}: field settings[{address!r}]: {exc}") from exc
    parts = _parts(data, where)
    if "tracks" in data:
        if not isinstance(data["tracks"], dict) or not all(k.isdigit() and int(k) > 1 for k in data["tracks"]):
            raise BadRequest(f"{where}: field 'tracks' must be an object of track numbers (2, 3, ...)")
        if not all(isinstance(v, dict) for v in data["tracks"].values()):
            raise BadRequest(f"{where}: field 'tracks': each track's parts must be an object")
        parts["tracks"] = {int(k): _parts(v, f"{where}: track {k}") for k, v in data["tracks"].items()}
    return Scene(settings, parts)


def _parts(data: Any, where: str) -> dict[str, Any]:
    """The parts no command sets, checked: subscribers, embedding, bed (each only where present)."""
    parts: dict[str, Any] = {}
    for key, check in (("subscribers", _subscribers), ("embedding", _embedding), ("bed", _bed)):
        if isinstance(data, dict) and key in data:
            try:
                parts[key] = None if data[key] is None and key != "subscribers" else check(data[key])
            except (BadRequest, KeyError, TypeError, ValueError, binascii.Error) as exc:
                raise BadRequest(f"{where}: field {key!r}: {_reason(exc)}") from exc
    return parts


def _encode_parts(parts: Mapping[Any, Any]) -> dict[str, Any]:
    """Parts as JSON holds them (an embedding's arrays as base64); a track's under its number."""
    return {str(k): _encode_embedding(v) if k == "embedding" and v is not None
            else _encode_parts(v) if isinstance(k, int) else v for k, v in parts.items()}


def _reason(exc: Exception) -> str:
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc)


def _subscribers(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise BadRequest("must be a list")
    out = []
    for sub in value:
        host, port, fmt, bundle, streams = (sub[k] for k in ("host", "port", "format", "bundle", "streams"))
        if not (isinstance(host, str) and isinstance(port, int) and isinstance(fmt, str) and isinstance(streams, dict)):
            raise BadRequest(f"host, port, format and streams of {sub!r} have the wrong types")
        for name, rate in streams.items():
            if name not in STREAMS:
                raise BadRequest(f"unknown stream {name!r}")
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate >= 0:
                raise BadRequest(f"the rate of {name} must be a number >= 0, got {rate!r}")
        out.append({"host": host, "port": port, "format": fmt, "bundle": int(bool(bundle)), "streams": streams})
    return out


ARRAYS = ("mean", "components", "lo", "hi")


def _encode_embedding(e: Embedding) -> dict[str, Any]:
    out: dict[str, Any] = {"layer": e.layer, "dims": e.dims, "units": int(e.mean.size)}
    for name in ARRAYS:
        out[name] = base64.b64encode(np.asarray(getattr(e, name), "<f8").tobytes()).decode()
    return out


def _embedding(value: Any) -> Embedding:
    layer, dims, units = value["layer"], int(value["dims"]), int(value["units"])
    shapes = {"mean": (units,), "components": (dims, units), "lo": (dims,), "hi": (dims,)}
    arrays = {}
    for name, shape in shapes.items():
        a = np.frombuffer(base64.b64decode(value[name], validate=True), "<f8")
        if a.size != int(np.prod(shape)) or not np.isfinite(a).all():
            raise BadRequest(f"{name} must hold {int(np.prod(shape))} finite numbers, got {a.size}")
        arrays[name] = a.reshape(shape).astype(np.float64)
    return Embedding(str(layer), **arrays)


def _bed(value: Any) -> dict[str, list[Any]]:
    sounds, weights = list(value["sounds"]), [float(w) for w in value["weights"]]
    if not sounds or len(sounds) != len(weights) or not all(isinstance(s, str) for s in sounds):
        raise BadRequest("sounds (names) and weights must be lists of the same, non-zero length")
    if not all(np.isfinite(w) and w >= 0 for w in weights):
        raise BadRequest("weights must be finite and >= 0")
    return {"sounds": sounds, "weights": weights}


def _plain(value: object) -> object:
    """A value JSON can hold (settings may come as numpy scalars), a float that came as OSC's
    float32 written as such (0.2, not 0.20000000298023224)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isfinite(value) and float(np.float32(value)) == value:
        return float(str(np.float32(value)))
    return value


# ---------------------------------------------------------------- the service


class _Answer:
    """Where a setting answered later sends its /ear/done or /ear/fail: waited for, not passed on."""

    def __init__(self, req: Request) -> None:
        self.req = req
        self.settled = threading.Event()
        self.reason: str | None = None

    def send(self, to: tuple[str, int], address: str, args: Any) -> None:
        if not self.settled.is_set() and address in ("/ear/done", "/ear/fail"):
            self.reason = str(args[1]) if address == "/ear/fail" and len(args) > 1 else None
            self.settled.set()
            return
        self.req.send(to, address, args)  # later replies (a follow's matches) go where the recall's go

    def wait(self, timeout: float) -> None:
        if not self.settled.wait(timeout):
            raise EarsightError(f"no answer within {timeout:g} s")
        if self.reason is not None:
            raise EarsightError(self.reason)


class Scenes:
    """The ``scenes`` service. ``services_of(track)``: the services a command of that track reaches
    (the dispatcher's, so the view is seen when it joins; None past the last track). Each with
    settings has ``settings() -> {address: arguments}``; ``streams``, ``state`` and ``match`` also
    keep the parts no command sets."""

    def __init__(self, table: Mapping[str, Command],
                 services_of: Callable[[int], Mapping[str, object | None] | None]) -> None:
        self.table = table
        self.services_of = services_of
        self._lock = threading.Lock()
        self._latest = 0

    @property
    def services(self) -> Mapping[str, object | None]:
        """Track 1's, which are the server's."""
        services = self.services_of(1)
        assert services is not None
        return services

    # ------------------------------------------------------------ files

    def path(self, name: str, files: Folders, *, exists: bool) -> Path:
        if not NAME.fullmatch(name):
            raise BadRequest(f"scene names are 1-64 letters, digits, spaces, '.', '-' or '_', not starting "
                             f"with '.', '-' or a space; got {name[:80]!r}")
        path = files.output(f"{name}.json", "scenes", (".json",), overwrite=True)
        if exists and not path.is_file():
            raise NotFound(f"no scene {name!r} (scenes: {', '.join(self.names(files)) or 'none yet'})")
        return path

    def names(self, files: Folders) -> list[str]:
        folder = files.out_dir / "scenes"
        return sorted(p.stem for p in folder.glob("*.json") if NAME.fullmatch(p.stem)) if folder.is_dir() else []

    def read(self, name: str, files: Folders) -> Scene:
        path = self.path(name, files, exists=True)
        if path.stat().st_size > MAX_BYTES:
            raise BadRequest(f"scene {name!r} is over {MAX_BYTES >> 20} MB: not a scene of ours")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadRequest(f"scene {name!r} cannot be read: {exc}") from exc
        return decode(text, self.table, f"scene {name!r}")

    def save(self, name: str, files: Folders) -> Path:
        path = self.path(name, files, exists=False)
        text = encode(self.capture())
        return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def delete(self, name: str, files: Folders) -> None:
        self.path(name, files, exists=True).unlink()

    # ------------------------------------------------------------ now

    def capture(self) -> Scene:
        """Every setting as it is now, from each running service; track k's at /ear/<k>/... addresses."""
        settings: dict[str, list[object]] = {}
        parts: dict[str, Any] = {}
        track = 1
        while (services := self.services_of(track)) is not None:
            found: dict[str, list[object]] = {}
            for service_name, service in services.items():
                get = getattr(service, "settings", None)
                if get is None or track != 1 and service_name not in TRACK_SERVICES:
                    continue
                for address, args in get().items():
                    command = self.table.get(address)
                    if command is not None and command.scene and command.service == service_name:
                        found[address] = [_plain(a) for a in args]
            prefix = "/ear" if track == 1 else f"/ear/{track}"
            settings.update((prefix + a[4:], found[a]) for a in self.table if a in found)  # in the table's order
            own = {"subscribers": self._service("streams", services).subscriptions(),
                   "embedding": self._service("state", services).embedding}
            if track == 1:
                parts.update(own)
                if services.get("match") is not None:
                    parts["bed"] = self._service("match").bed()
            else:
                parts.setdefault("tracks", {})[track] = own
            track += 1
        return Scene(settings, parts)

    def _service(self, name: str, services: Mapping[str, object | None] | None = None) -> Any:
        service = (self.services if services is None else services).get(name)
        if service is None:
            raise EarsightError(f"{name} is not running")
        return service

    def _where(self, address: str) -> tuple[Command, Mapping[str, object | None] | None]:
        """A setting's command, and the services of its track (None: the server has no such track)."""
        track, base = split_track(address)
        return self.table[base], self.services_of(track)

    def _skipped(self, address: str) -> str | None:
        """Why a setting of a scene is not set here: a service not running or a track the server lacks."""
        command, services = self._where(address)
        if services is None:
            return f"track {split_track(address)[0]}"
        return command.service if services.get(command.service) is None else None

    # ------------------------------------------------------------ recall

    def ask(self, name: str, fade: float, files: Folders) -> tuple[Scene, int]:
        """A recall is asked for (on the OSC thread): the scene read and checked, and a ticket;
        a recall still fading is superseded by it."""
        if not (np.isfinite(fade) and 0.0 <= fade <= MAX_FADE):
            raise BadRequest(f"fade must be in [0, {MAX_FADE:g}] s, got {fade:g}")
        scene = self.read(name, files)
        self._latest += 1
        return scene, self._latest

    def recall(self, scene: Scene, fade: float, ticket: int, req: Request, start: float = 0.0) -> list[str]:
        """From ``start`` (a time.monotonic(): the beat it waits for), glide, then switch (in the caller's
        thread: it takes the fade and any loading); returns the services whose settings were skipped
        because they are not running."""
        while time.monotonic() < start:  # waiting in steps: a later recall supersedes this one at once
            if ticket != self._latest:
                raise Superseded("superseded by a later /ear/scene/recall")
            time.sleep(min(0.05, max(0.0, start - time.monotonic())))
        with self._lock:
            if ticket != self._latest:
                raise Superseded("superseded by a later /ear/scene/recall")
            before = self.capture()
            skipped = sorted({why for a in scene.settings if (why := self._skipped(a))})
            try:
                glided = self._glide(before, scene, fade, ticket, req)
                self._switch(before, scene, glided, req)
            except Superseded:
                raise  # the newer recall starts from where this one got to
            except EarsightError:
                try:
                    self._switch(self.capture(), before, set(), req)
                except EarsightError as exc:
                    log.warning("scene recall: putting back the settings before it: %s", exc)
                raise
            return skipped

    def _glide(self, before: Scene, scene: Scene, fade: float, ticket: int, req: Request) -> set[str]:
        pairs = []
        for address, args in scene.settings.items():
            command = self.table[address] if address in self.table else None  # (glides are the server's)
            if command and command.scene == "glide" and address in before.settings and not self._skipped(address):
                a = np.asarray(command.coerce(before.settings[address]), float)
                pairs.append((command, a, np.asarray(command.coerce(args), float)))
        if fade <= 0 or not pairs:
            return set()
        steps = max(1, round(fade * GLIDE_RATE))
        start = time.monotonic()
        for i in range(1, steps + 1):
            time.sleep(max(0.0, start + i * fade / steps - time.monotonic()))
            if ticket != self._latest:
                raise Superseded("superseded by a later /ear/scene/recall")
            w = i / steps
            for command, a, b in pairs:
                self._apply(command, [float(v) for v in a + (b - a) * w], req, command.address, self.services)
        return {c.address for c, _, _ in pairs}

    def _switch(self, now: Scene, scene: Scene, glided: set[str], req: Request) -> None:
        """Set what differs from ``now`` (the ear first); then the parts. Settings that depend on others
        (a sonify chunk and its fade, a mode and its target) are tried again after the rest."""
        pending = []
        for address, args in scene.settings.items():
            command, services = self._where(address)
            if address in glided or self._skipped(address) or services is None:
                continue
            if address in now.settings and command.coerce(now.settings[address]) == command.coerce(args):
                continue
            if command.address == LOAD:
                self._apply(command, args, req, address, services)
            else:
                pending.append((command, args, address, services))
        while pending:
            refused = []
            for command, args, address, services in pending:
                try:
                    self._apply(command, args, req, address, services)
                except (BadRequest, NotFound) as exc:
                    refused.append((command, args, address, services, exc))
            if len(refused) == len(pending):
                raise type(refused[0][-1])(f"{refused[0][2]}: {refused[0][-1]}")
            pending = [r[:4] for r in refused]
        self._restore(scene.parts, req, self.services)
        for number, parts in scene.parts.get("tracks", {}).items():
            if (services := self.services_of(number)) is not None:
                self._restore(parts, req, services)

    def _restore(self, parts: Mapping[str, Any], req: Request, services: Mapping[str, object | None]) -> None:
        """The parts no command sets, on the track whose ``services`` these are."""
        if "embedding" in parts:
            state = self._service("state", services)
            emb: Embedding | None = parts["embedding"]
            if emb is not None:
                layer = state.ear.layer(emb.layer)  # NotFound for a layer the ear lacks
                if layer.size != emb.mean.size:
                    raise BadRequest(f"embedding: layer {emb.layer} has {layer.size} units, the scene's "
                                     f"embedding {emb.mean.size}")
            state.set_embedding(emb)
        if "subscribers" in parts:
            try:
                self._service("streams", services).restore(parts["subscribers"])
            except EarsightError as exc:
                raise type(exc)(f"subscribers: {exc}") from exc
        if "bed" in parts and self.services.get("match") is not None:
            answer = _Answer(req)
            self._service("match").restore_bed(parts["bed"], self._sub_request(req, "bed", answer))
            try:
                answer.wait(WAIT)
            except EarsightError as exc:
                raise type(exc)(f"bed: {exc}") from exc

    def _apply(self, command: Command, args: list[object], req: Request, where: str,
               services: Mapping[str, object | None]) -> None:
        """Set one setting (at address ``where``) through its command's handler, waiting for one that
        answers later."""
        answer = _Answer(req)
        try:
            service = self._service(command.service, services)
            result = command.handler(service, self._sub_request(req, where, answer), *command.coerce(args))
            if result is DEFERRED:
                answer.wait(WAIT)
            else:
                answer.settled.set()  # later messages (a follow's matches) are passed on
        except EarsightError as exc:
            raise type(exc)(f"{where}: {exc}") from exc

    @staticmethod
    def _sub_request(req: Request, address: str, answer: _Answer) -> Request:
        return Request(address, req.sender, req.reply_to, answer.send, req.files)

    # ------------------------------------------------------------ show

    @staticmethod
    def lines(scene: Scene) -> list[list[object]]:
        """A scene as lines of OSC arguments: each setting's address and arguments, then each subscriber,
        the embedding and the bed (what /ear/scene/show answers)."""
        out: list[list[object]] = [[address, *args] for address, args in scene.settings.items()]
        for number, parts in [(1, scene.parts), *sorted(scene.parts.get("tracks", {}).items())]:
            suffix = "" if number == 1 else f".{number}"
            for sub in parts.get("subscribers") or []:
                streams = [x for name, rate in sub["streams"].items() for x in (name, float(rate))]
                out.append([f"subscriber{suffix}", sub["host"], sub["port"], sub["format"], sub["bundle"], *streams])
            if "embedding" in parts:
                emb = parts["embedding"]
                out.append([f"embedding{suffix}", *([emb.layer, emb.dims] if emb is not None else ["none"])])
        if "bed" in scene.parts:
            bed = scene.parts["bed"]
            out.append(["bed", *([x for s, w in zip(bed["sounds"], bed["weights"], strict=True) for x in (s, w)]
                                 if bed is not None else ["none"])])
        return out
