"""Where things live: shaders and models (found through the package, so a wheel works like the
checkout), the cache, and the folders OSC may name (:class:`Folders`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path


def shaders_dir() -> Path:
    return Path(str(resources.files("earsight.shaders")))


def models_dir() -> Path:
    """The shipped ears (weights, cards, layouts)."""
    return Path(str(resources.files("earsight.models")))


def cache_dir() -> Path:
    """Writable place for derived files (converted weights, layouts of user ears)."""
    base = os.environ.get("EARSIGHT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "earsight"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


class Folders:
    """The one place that resolves paths named over OSC or by the web page.

    Writes go only under ``out_dir`` (snapshots, renders, layouts, scenes); reads of input files
    only under the ``allowed`` folders. ``..``, absolute paths elsewhere and symlinks that lead out
    are refused with a reason that names the folders. A path the user gives on the command line
    is theirs and is not checked here.
    """

    def __init__(self, out_dir: Path | None = None, allowed: Sequence[Path] = ()) -> None:
        self.out_dir = (out_dir or cache_dir()).expanduser().resolve()
        self.allowed = tuple(p.expanduser().resolve() for p in (allowed or [Path.cwd()]))

    def output(self, name: str, sub: str, suffixes: Sequence[str], *, default: str | None = None,
               overwrite: bool = False) -> Path:
        """Where to write ``name`` (relative: under ``out_dir/sub``); its suffix one of ``suffixes``."""
        from .errors import BadRequest

        if not name:
            if default is None:
                raise BadRequest("a file name is needed")
            name = default
        with _usable(name):
            base = self.out_dir / sub
            path = Path(name).expanduser()
            path = (path if path.is_absolute() else base / path).resolve()
            if not path.is_relative_to(self.out_dir):
                raise BadRequest(f"{name}: files are written only under {self.out_dir} (--out-dir)")
            if path.suffix.lower() not in suffixes:
                raise BadRequest(f"{path.name}: the file must end in {' or '.join(suffixes)}")
            if path.exists() and not overwrite:
                raise BadRequest(f"{path} exists (ask to overwrite it)")
            path.parent.mkdir(parents=True, exist_ok=True)
            return path

    def input(self, name: str) -> Path:
        """An existing file to read, inside an allowed folder."""
        return self._readable(name, "file", Path.is_file)

    def folder(self, name: str) -> Path:
        """An existing folder to read from, inside an allowed folder."""
        return self._readable(name, "folder", Path.is_dir)

    def _readable(self, name: str, what: str, exists: Callable[[Path], bool]) -> Path:
        from .errors import BadRequest, NotFound

        with _usable(name):
            path = Path(name).expanduser()
            path = (path if path.is_absolute() else self.allowed[0] / path).resolve()
            if not any(path.is_relative_to(folder) for folder in self.allowed):
                folders = ", ".join(str(f) for f in self.allowed)
                raise BadRequest(f"{name}: {what}s are read only under {folders} (--allow-dir)")
            if not exists(path):
                raise NotFound(f"no such {what}: {name}")
            return path


@contextmanager
def _usable(name: str) -> Iterator[None]:
    """A name the file system refuses (too long, a NUL byte, a loop of links) is the sender's
    mistake, said as such, not an internal error."""
    from .errors import BadRequest

    try:
        yield
    except (OSError, ValueError) as exc:
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise BadRequest(f"{shown!r} is not a usable path: {getattr(exc, 'strerror', None) or exc}") from exc


def write_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary)`` in ``path``'s folder, then rename it to ``path``.

    A failed or interrupted write (a full disk, a crash) leaves nothing under the final name; an
    OSError becomes an EarsightError that names the file and the reason.
    The temporary keeps the suffix, so writers that pick a format by suffix still do.
    """
    from .errors import EarsightError

    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a folder gone, no permission: the user's to fix, said plainly
        raise EarsightError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path
