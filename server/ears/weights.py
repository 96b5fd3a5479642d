"""Reading weights files: a missing, truncated or corrupt file is an error that names the file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import EarsightError, NotFound


@contextmanager
def reading(path: str | Path, what: str, fix: str = "reinstall the package that ships it") -> Iterator[Path]:
    """Wrap the reading (and loading into a network) of the weights at ``path``.

    Whatever the reader raises (safetensors' errors, torch's unpickler refusing a file, a shape
    mismatch in ``load_state_dict``, our checkpoint reader's CRC check) becomes one EarsightError
    naming ``what``, the file, and ``fix``.
    """
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{what}: no weights at {path} ({fix})")
    try:
        yield path
    except EarsightError:
        raise
    except Exception as exc:  # every reader has its own error types; the user needs the file's name
        raise EarsightError(
            f"{what}: cannot load the weights in {path}: {type(exc).__name__}: {exc} "
            f"(the file is broken or truncated: {fix})"
        ) from exc
