"""Files named over OSC stay inside the server's folders; writes are all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from earsight.errors import BadRequest, EarsightError, NotFound
from earsight.paths import Folders, write_atomically


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    (tmp_path / "out").mkdir()
    (tmp_path / "music").mkdir()
    (tmp_path / "music" / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    return Folders(tmp_path / "out", [tmp_path / "music"])


def test_relative_names_land_under_the_output_folder(folders: Folders) -> None:
    path = folders.output("take1.wav", "renders", (".wav", ".flac"))
    assert path == folders.out_dir / "renders" / "take1.wav" and path.parent.is_dir()
    assert folders.output("", "snapshots", (".png",), default="x.png") == folders.out_dir / "snapshots" / "x.png"


@pytest.mark.parametrize(
    "name", ["../../escape.png", "/tmp/escape.png", "sub/../../../escape.png", "~/escape.png"]
)
def test_writes_outside_the_output_folder_are_refused_and_create_nothing(folders: Folders, name: str) -> None:
    before = set(folders.out_dir.parent.rglob("*"))
    with pytest.raises(BadRequest, match="only under"):
        folders.output(name, "snapshots", (".png",))
    assert set(folders.out_dir.parent.rglob("*")) == before


def test_a_symlink_that_leads_out_is_refused(folders: Folders, tmp_path: Path) -> None:
    (folders.out_dir / "snapshots").mkdir()
    (folders.out_dir / "snapshots" / "door").symlink_to(tmp_path)
    with pytest.raises(BadRequest, match="only under"):
        folders.output("door/escape.png", "snapshots", (".png",))
    (folders.allowed[0] / "door").symlink_to(tmp_path)
    with pytest.raises(BadRequest, match="only under"):
        folders.input("door/secret.wav")


def test_suffix_and_overwrite_are_checked(folders: Folders) -> None:
    with pytest.raises(BadRequest, match="must end in .png"):
        folders.output("x.sh", "snapshots", (".png",))
    folders.output("x.png", "snapshots", (".png",)).write_bytes(b"png")
    with pytest.raises(BadRequest, match="exists"):
        folders.output("x.png", "snapshots", (".png",))
    assert folders.output("x.png", "snapshots", (".png",), overwrite=True).exists()


def test_inputs_are_read_only_inside_the_allowed_folders(folders: Folders, tmp_path: Path) -> None:
    assert folders.input("a.wav") == folders.allowed[0] / "a.wav"
    assert folders.input(str(tmp_path / "music" / "a.wav")) == folders.allowed[0] / "a.wav"
    for name in ("../secret.wav", str(tmp_path / "secret.wav"), "/etc/passwd"):
        with pytest.raises(BadRequest, match="only under"):
            folders.input(name)
    with pytest.raises(NotFound):
        folders.input("missing.wav")


def test_a_failed_write_leaves_nothing_under_the_final_name(tmp_path: Path) -> None:
    target = tmp_path / "take.wav"

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    with pytest.raises(EarsightError, match=f"cannot write {target}: No space left on device"):
        write_atomically(target, half_then_fail)
    assert list(tmp_path.iterdir()) == []
    write_atomically(target, lambda tmp: tmp.write_bytes(b"whole"))
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("name", ["x" * 5000 + ".wav", "a\x00b.wav"])
def test_names_the_file_system_refuses_are_bad_requests(folders: Folders, name: str) -> None:
    """Too long, a NUL byte: the sender's mistake, answered as one (not an internal error)."""
    for call in (lambda: folders.input(name), lambda: folders.folder(name),
                 lambda: folders.output(name, "renders", (".wav",))):
        with pytest.raises(BadRequest, match="not a usable path"):
            call()


def test_folders_inside_are_found_and_outside_refused(folders: Folders, tmp_path: Path) -> None:
    assert folders.folder(str(tmp_path / "music")) == (tmp_path / "music").resolve()
    with pytest.raises(NotFound, match="no such folder"):
        folders.folder("missing")
    with pytest.raises(BadRequest, match="folders are read only under"):
        folders.folder(str(tmp_path / "out"))
