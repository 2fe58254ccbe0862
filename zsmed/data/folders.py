"""Labelled image folders: one subfolder per class, optionally a ``metadata.csv``.

``metadata.csv`` names each image by ``file`` (path relative to the folder) or ``image_id`` and may
carry a group column (``lesion_id``, ``patient_id``, ``case_index`` ...) so that support and query
images, or train and test, never share a lesion or a patient. Extra columns (e.g. Derm7pt's
7-point criteria) are kept per item.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zsmed.errors import DatasetError, InputFileError
from zsmed.imageio import candidate_images

log = logging.getLogger(__name__)

GROUP_COLUMNS = ("lesion_id", "patient_id", "group", "case_id", "case_index", "study_uid", "subject_id")


@dataclass(frozen=True)
class LabeledItem:
    path: Path
    label: str
    group: str
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class ClassFolder:
    root: Path
    items: list[LabeledItem]
    group_column: str | None = None

    @property
    def classes(self) -> list[str]:
        return sorted({item.label for item in self.items})

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(item.label for item in self.items).items()))

    def of_class(self, label: str) -> list[LabeledItem]:
        return [item for item in self.items if item.label == label]

    def subset(self, labels: Iterable[str]) -> ClassFolder:
        keep = set(labels)
        return ClassFolder(self.root, [i for i in self.items if i.label in keep], self.group_column)


def _read_metadata(root: Path) -> tuple[dict[str, dict[str, str]], str | None]:
    csv_path = root / "metadata.csv"
    if not csv_path.is_file():
        return {}, None
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read metadata.csv ({exc})", path=csv_path) from exc
    if not rows:
        return {}, None
    columns = set(rows[0])
    if not {"file", "image_id"} & columns:
        log.warning("%s has no 'file' or 'image_id' column: its rows name no image and are not used "
                    "(no patient or lesion grouping either)", csv_path)
        return {}, None
    group_column = next((c for c in GROUP_COLUMNS if c in columns), None)
    by_key: dict[str, dict[str, str]] = {}
    for row in rows:
        if row.get("file"):
            by_key[Path(row["file"]).as_posix()] = row
        if row.get("image_id"):
            by_key[row["image_id"]] = row
    return by_key, group_column


def load_class_folder(root: str | Path, classes: Sequence[str] | None = None) -> ClassFolder:
    """Index one folder of class subfolders (nothing is decoded here)."""
    root = Path(root)
    if not root.is_dir():
        raise InputFileError("not a folder of class subfolders", path=root)
    metadata, group_column = _read_metadata(root)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is not None:
        wanted = set(classes)
        missing = wanted - {p.name for p in class_dirs}
        if missing:
            raise DatasetError(f"no subfolder for class(es) {', '.join(sorted(missing))}", path=root)
        class_dirs = [p for p in class_dirs if p.name in wanted]
    if not class_dirs:
        raise DatasetError("holds no class subfolders", path=root)
    items: list[LabeledItem] = []
    ungrouped = 0
    for class_dir in class_dirs:
        for path in candidate_images(class_dir):
            relative = path.relative_to(root).as_posix()
            row = metadata.get(relative) or metadata.get(path.stem) or {}
            # Without a group column each image is its own group (no leakage can be prevented).
            group = row.get(group_column, "") if group_column else ""
            ungrouped += bool(group_column and not group)
            items.append(LabeledItem(path, class_dir.name, group or relative, dict(row)))
    if ungrouped:
        # two images of one patient may then land on both sides of a train / test split
        log.warning("%s: %d image(s) have no %s in metadata.csv; each counts as its own %s", root, ungrouped,
                    group_column, group_column)
    return ClassFolder(root, items, group_column)


def load_class_folders(roots: Sequence[str | Path], classes: Sequence[str] | None = None) -> ClassFolder:
    """Pool the class subfolders of several folders (same class name = same class)."""
    if not roots:
        raise DatasetError("no data folder given")
    folders = [load_class_folder(root) for root in roots]
    items = [item for folder in folders for item in folder.items]
    if classes is not None:
        present = {item.label for item in items}
        missing = set(classes) - present
        if missing:
            raise DatasetError(f"no images for class(es) {', '.join(sorted(missing))}", path=roots[0])
        items = [item for item in items if item.label in set(classes)]
    group_column = next((f.group_column for f in folders if f.group_column), None)
    return ClassFolder(Path(roots[0]), items, group_column)
