"""The sonifiers' control surface: a declarative table, importable without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from earsight.errors import BadRequest
from earsight.sonify import params


def test_params_table_is_declarative_and_defaults_are_valid() -> None:
    names = [p.name for p in params.PARAMS]
    assert len(names) == len(set(names))
    for name in ("lr", "steps", "mix", "strength", "window", "region_start", "region_end", "jitter", "hf_penalty", "dry", "wet"):
        assert name in names
    for p in params.PARAMS:
        assert p.type in ("n", "i", "s") and p.doc
        assert p.coerce(p.default) == p.default
    assert params.BY_NAME["steps"].coerce(3.0) == 3  # Pd sends ints as floats
    for bad in (float("nan"), float("inf"), -1.0, "fast"):
        with pytest.raises(BadRequest):
            params.BY_NAME["lr"].coerce(bad)


def test_params_import_without_torch() -> None:
    """The command table reads this module: it must not load a network library."""
    code = "import sys, earsight.sonify.params as p; assert p.PARAMS; assert 'torch' not in sys.modules, 'torch'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
