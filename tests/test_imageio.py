"""Finding images in folders: linked subfolders are followed, once each."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from zsmed.data.folders import load_class_folder
from zsmed.imageio import candidate_images


def test_linked_subfolders_are_followed_once(shared_data: Path, tmp_path: Path) -> None:
    photos = sorted((shared_data / "ham10000_fs" / "base" / "nv").iterdir())[:3]
    archive = tmp_path / "archive" / "study"
    archive.mkdir(parents=True)
    shutil.copy(photos[0], archive / "a.jpg")
    root = tmp_path / "reading"
    (root / "local").mkdir(parents=True)
    shutil.copy(photos[1], root / "local" / "b.jpg")
    (root / "local" / "notes.txt").write_text("not an image")
    os.symlink(archive, root / "linked")  # a study folder linked in from an archive
    os.symlink(root, root / "local" / "up")  # a link back up the tree must not loop
    os.symlink("/", root / "local" / "top")  # nor walk the whole disk
    found = candidate_images(root)
    assert [p.relative_to(root).as_posix() for p in found] == ["linked/a.jpg", "local/b.jpg"]
    # class folders see the linked study too (label = the link's name)
    folder = load_class_folder(root)
    assert sorted(folder.classes) == ["linked", "local"] and len(folder.items) == 2
