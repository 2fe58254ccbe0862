"""Writing a file whole or not at all (``zsmed.paths.replacing``), which every settings file, trust
list, DICOM report, text cache, saved picture and imported model goes through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from zsmed.paths import replacing


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_the_new_file_takes_the_old_ones_place_only_when_the_block_ends(tmp_path: Path) -> None:
    target = tmp_path / "site.json"
    target.write_text("old")
    with replacing(target) as temporary:
        temporary.write_text("new")
        assert target.read_text() == "old"  # a reader meanwhile sees the whole old file
        assert temporary.parent == tmp_path and temporary.name.startswith(".site.json.")
    assert target.read_text() == "new" and _leftovers(tmp_path) == []


def test_an_error_in_the_block_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.dcm"
    target.write_bytes(b"intact")
    with pytest.raises(RuntimeError), replacing(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"intact" and _leftovers(tmp_path) == []
    with pytest.raises(RuntimeError), replacing(tmp_path / "new.dcm"):
        raise RuntimeError("cancelled")
    assert not (tmp_path / "new.dcm").exists() and _leftovers(tmp_path) == []


def test_a_durable_write_and_permissions_as_open_gives_them(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        with replacing(tmp_path / "picture.png", durable=True) as temporary:
            temporary.write_bytes(b"\x89PNG")
    finally:
        os.umask(old_umask)
    written = tmp_path / "picture.png"
    assert written.read_bytes() == b"\x89PNG"
    if os.name == "posix":  # readable by the other accounts, as a file saved by any program (not 0600)
        assert stat.S_IMODE(written.stat().st_mode) == 0o644


def test_two_writers_never_share_a_temporary(tmp_path: Path) -> None:
    target = tmp_path / "trust.json"
    with replacing(target) as first, replacing(target) as second:
        assert first != second
        first.write_text("first")
        second.write_text("second")
    assert target.read_text() == "first"  # the outer block ends last and its file stays
    assert _leftovers(tmp_path) == []


def test_a_missing_folder_is_an_oserror_naming_nothing_half_written(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), replacing(tmp_path / "absent" / "x.json"):
        pass
