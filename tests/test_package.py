"""An installed wheel finds its shaders and models too, not only the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_code_shaders_and_models(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, timeout=300, cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("earsight-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for shader in (ROOT / "shaders").glob("*.glsl"):
        assert f"earsight/shaders/{shader.name}" in names
    for model in (ROOT / "models").iterdir():
        if model.suffix in (".safetensors", ".md", ".json", ".npz", ".png"):
            assert f"earsight/models/{model.name}" in names
    assert "earsight/ears/crepe.py" in names and "earsight/cli.py" in names
    assert "earsight/render/renderer.py" in names and "earsight/render/state.py" in names
    assert not any(n.startswith(("server/", "models/", "shaders/")) for n in names)  # no stray top-level packages
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "earsight = earsight.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
