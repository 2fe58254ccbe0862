"""A site's folder of labelled cases, from real HAM10000 photographs (shared by the check tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

CLASSES = ["nv", "mel", "bkl", "bcc"]  # the reference bundles' classes
# folder names as a site would type them: letter case and underscores differ from the model's
FOLDER_NAMES = ["NV", "Mel", "bkl", "BCC"]


def labelled_photos(shared_data: Path, folder: Path, per_class: int = 4) -> Path:
    """``per_class`` photographs per class of the reference bundles, a file that is no image (its name
    a patient's, as file names can be) in 'Mel', and a stray folder that names no class."""
    base = shared_data / "ham10000_fs" / "base"
    for name, folder_name in zip(CLASSES, FOLDER_NAMES, strict=True):
        (folder / folder_name).mkdir(parents=True)
        for image in sorted((base / name).glob("*.jpg"))[-per_class:]:
            shutil.copy(image, folder / folder_name / image.name)
    (folder / "Mel" / "Doe_Jane_scan.jpg").write_bytes(b"not a jpeg")
    (folder / "to sort").mkdir()
    shutil.copy(sorted((base / "nv").glob("*.jpg"))[0], folder / "to sort" / "x.jpg")
    return folder
