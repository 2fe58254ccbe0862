"""The study browser (patients → studies → series, with a thumbnail per series and a search box)
and the problems panel (one short line per file that could not be read).

Scanning runs ``zsmed.dicom.scan.scan_job`` in a worker; its ``ScanProgress`` batches fill the tree
while the scan goes on, and the returned ``ScanIndex`` then replaces it, sorted. Thumbnails are
decoded in the contained decoder process (``zsmed.dicom.safe``) from a worker thread, so a crafted
file costs a thumbnail, never the app. Labels show no paths; full paths live in tooltips.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import numpy as np
from PySide6.QtCore import QMimeData, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from zsmed.dicom.header import Header
from zsmed.dicom.scan import (
    Patient,
    Problem,
    ScanIndex,
    ScanProgress,
    Series,
    Study,
    header_keys,
    merge_index,
    scan_job,
)
from zsmed_desktop.workers import start_job

THUMB_SIZE = 48
SERIES_ROLE = Qt.ItemDataRole.UserRole + 1
KIND_ROLE = Qt.ItemDataRole.UserRole + 2
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 3
MAX_THUMBNAILS = 500


# --- labels -------------------------------------------------------------------------------------
def person_name(raw: str | None) -> str:
    """DICOM person name ``DOE^JANE^^DR`` → ``DOE, JANE``; empty → ``(no name)``."""
    if not raw:
        return "(no name)"
    first_group = str(raw).split("=")[0]
    parts = [p.strip() for p in first_group.split("^")]
    family, given = [*parts, "", ""][:2]
    rest = " ".join(p for p in parts[2:4] if p)
    name = ", ".join(x for x in (family, " ".join(y for y in (given, rest) if y)) if x)
    return name or "(no name)"


def dicom_date(raw: str | None) -> str:
    """``20240301`` → ``2024-03-01``; anything else unchanged; empty → ``no date``."""
    text = (raw or "").strip()
    if len(text) == 10 and text[4] == text[7] == "." and text.replace(".", "").isdigit():  # ACR-NEMA 1997.04.24
        text = text.replace(".", "")
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text or "no date"


def readable(text: str | None) -> str:
    """A DICOM text value for reading: component separators (``abdomen^liver``) become spaces."""
    return " ".join((text or "").replace("^", " ").split())


def patient_label(name: str | None, pid: str | None) -> str:
    pid_text = f"ID {pid}" if pid and not pid.startswith("(no patient ID") else "no patient ID"
    return f"{person_name(name)}   {pid_text}"


def study_label(date: str | None, description: str | None) -> str:
    return f"{dicom_date(date)}   {readable(description) or 'no description'}"


# what a series without images holds, by its modality (a PACS lists them so too)
_NON_IMAGE_KINDS = {"PR": ("presentation state", "presentation states"), "SR": ("report", "reports"),
                    "KO": ("key image note", "key image notes"), "RTPLAN": ("plan", "plans"),
                    "DOC": ("document", "documents")}


def series_label(number: int | None, modality: str | None, description: str | None, images: int,
                 others: int = 0) -> str:
    """'Series 2 · CT · chest (120 images)'; a series of ``others`` objects that are not images says what
    they are: 'Series 993 · PR · zsmed presentation state (1 presentation state)'."""
    head = f"Series {number}" if number is not None else "Series (no number)"
    parts = [head, modality or "", readable(description)]
    if images or not others:
        count = f"{images} image" + ("" if images == 1 else "s")
    else:
        one, many = _NON_IMAGE_KINDS.get((modality or "").upper(), ("object", "objects"))
        count = f"{others} {one if others == 1 else many}"
    return "  ·  ".join(p for p in parts if p) + f"   ({count})"


_ABSOLUTE_PATH = re.compile(r"(?:[A-Za-z]:)?[/\\][^\s()]*[/\\]([^\s()/\\]+)")


def without_paths(text: str) -> str:
    """Full paths in a reason (``duplicate of /a/b/c.dcm``) shortened to their file names."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)


def problem_line(problem: Problem) -> str:
    name = os.path.basename(problem.path.rstrip("/\\")) or problem.path
    return f"{name}: {without_paths(problem.reason)}"


def shown_problems(problems: Sequence[Problem]) -> list[Problem]:
    """Files that are not DICOM and do not pretend to be (notes.txt) are skipped, not problems."""
    return [p for p in problems if p.kind != "not-dicom"]


def _children(item: QTreeWidgetItem) -> list[QTreeWidgetItem]:
    return [cast(QTreeWidgetItem, item.child(k)) for k in range(item.childCount())]


# --- thumbnails (worker side) -------------------------------------------------------------------
def thumbnail_array(image: np.ndarray, size: int = 2 * THUMB_SIZE) -> np.ndarray:
    """Stride an 8-bit display image down to about ``size`` pixels on its long side (true aspect)."""
    step = max(1, max(image.shape[:2]) // size)
    return np.ascontiguousarray(image[::step, ::step])


def thumbnail_job(items: Sequence[tuple[str, str]], size: int = 2 * THUMB_SIZE
                  ) -> Generator[tuple[str, np.ndarray | None], None, None]:
    """(key, file) → (key, small 8-bit image, or None when it cannot be decoded): photographs
    through the photo reader, DICOM through the contained decoder (a crafted file costs its
    thumbnail)."""
    from zsmed.dicom.safe import safe_display_image
    from zsmed.errors import ZsmedError
    from zsmed.imageio import is_photo, read_photo

    for key, path in items:
        try:
            if is_photo(path):
                image = np.round(read_photo(path) * 255).astype(np.uint8)
            else:
                image = np.asarray(safe_display_image(path))
            yield key, thumbnail_array(image, size)
        except (ZsmedError, OSError, ValueError):
            yield key, None


def to_qimage(image: np.ndarray) -> QImage:
    """uint8 (H, W) or (H, W, 3) → QImage (copied, so the numpy buffer may go)."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    height, width = image.shape[:2]
    if image.ndim == 2:
        return QImage(image.data, width, height, width, QImage.Format.Format_Grayscale8).copy()
    return QImage(image.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def thumbnail_icon(image: np.ndarray, size: int = THUMB_SIZE) -> QIcon:
    """The image centred on a square, true aspect, so rows line up."""
    return QIcon(thumbnail_pixmap(image, size))


def thumbnail_pixmap(image: np.ndarray, size: int = THUMB_SIZE) -> QPixmap:
    pixmap = QPixmap.fromImage(to_qimage(image)).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    square = QPixmap(size, size)
    square.fill(Qt.GlobalColor.black)
    from PySide6.QtGui import QPainter

    painter = QPainter(square)
    painter.drawPixmap((size - pixmap.width()) // 2, (size - pixmap.height()) // 2, pixmap)
    painter.end()
    return square


@dataclass
class SeriesRef:
    """What a series item carries: its key, its instances (image files first) and a title."""

    key: str
    series: Series
    study: Study
    patient: Patient

    @cached_property
    def image_paths(self) -> list[Path]:
        return [Path(i.path) for i in self.series.instances if i.is_image]

    @property
    def title(self) -> str:
        number = f"Series {self.series.number}" if self.series.number is not None else ""
        return "  ·  ".join(
            x for x in (person_name(self.patient.name), dicom_date(self.study.date), number,
                        self.series.modality or "", self.series.description or "") if x
        )


# --- the problems panel -------------------------------------------------------------------------
class ProblemsPanel(QListWidget):
    """One short line per unreadable file: its name and the reason; the full path in the tooltip."""

    count_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlternatingRowColors(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.setUniformItemSizes(True)
        self._seen: set[tuple[str, str]] = set()

    def clear_problems(self) -> None:
        self.clear()
        self._seen.clear()
        self.count_changed.emit(0)

    def add_problems(self, problems: Sequence[Problem]) -> None:
        added = 0
        for problem in shown_problems(problems):
            key = (problem.path, problem.reason)
            if key in self._seen:
                continue
            self._seen.add(key)
            item = QListWidgetItem(problem_line(problem))
            item.setToolTip(f"{problem.path}\n{problem.reason}")
            item.setData(Qt.ItemDataRole.UserRole, problem.path)
            self.addItem(item)
            added += 1
        if added:
            self.count_changed.emit(self.count())

    def add_message(self, path: str, reason: str) -> None:
        """A problem found outside a scan (a file the viewer could not decode)."""
        self.add_problems([Problem(path, reason)])

    def lines(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count())]


# --- the study browser --------------------------------------------------------------------------
MAX_DRAGGED_FILES = 500


class SeriesTree(QTreeWidget):
    """The patient / study / series tree; a series dragged out of it carries its image files (as a
    file manager's drag does), so it can be dropped on a class of the builder."""

    def __init__(self, files_of: Callable[[QTreeWidgetItem], list[Path]]) -> None:
        super().__init__()
        self._files_of = files_of
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, items: Sequence[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        files = [path for item in items for path in self._files_of(item)][:MAX_DRAGGED_FILES]
        data.setUrls([QUrl.fromLocalFile(str(path)) for path in files])
        return data


class StudyBrowser(QWidget):
    """Search box, patient / study / series tree with thumbnails, and a scan progress line."""

    series_activated = Signal(object)  # SeriesRef
    scan_started = Signal()
    scan_progress = Signal(int, int, str)  # done, total (0 = unknown), message
    scan_finished = Signal(object)  # ScanIndex
    scan_cancelled = Signal()
    scan_failed = Signal(str)
    problems_found = Signal(object)  # list[Problem]
    index_extended = Signal(object)  # ScanIndex: files saved since the scan (a reformat series) joined to it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index: ScanIndex | None = None
        self.scanning = False
        self._worker: Any = None
        self._thumb_worker: Any = None
        self._thumbs: dict[str, QIcon] = {}
        self._placeholder_icon = QIcon()
        self._items: dict[str, QTreeWidgetItem] = {}
        self._refs: dict[str, SeriesRef] = {}
        self._partial_counts: dict[str, int] = {}
        self._partial_meta: dict[str, tuple[Any, Any, Any]] = {}
        self._study_paths: dict[str, list[Path]] = {}
        self._scan_id = 0
        self._adding: Any = None  # the worker reading files saved since the scan

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search patient, ID, date, description, modality…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.apply_filter)

        self.tree = SeriesTree(self._dragged_files)
        self.tree.setHeaderHidden(True)
        self.tree.setColumnCount(1)
        self.tree.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.tree.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setUniformRowHeights(False)
        self.tree.currentItemChanged.connect(self._on_current)

        self.empty_label = QLabel("Open a folder, a CD (DICOMDIR) or files:\nFile ▸ Open, Ctrl+O, or drop them here.")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.progress_row = QWidget()
        row = QHBoxLayout(self.progress_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        self.progress_row.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.empty_label, 1)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.progress_row)
        self.tree.hide()

    # --- scanning -------------------------------------------------------------------------------
    def open_paths(self, paths: Sequence[str | Path]) -> Any:
        """Scan folders, DICOMDIRs or files; the tree fills while it runs. Returns the worker."""
        self.cancel_scan()
        inputs = [str(p) for p in paths]
        self.index = None
        self.scanning = True
        self._clear_tree()
        self.progress.setRange(0, 0)
        self.progress.setFormat("Listing files…")
        self.progress_row.show()
        self.scan_started.emit()
        # Reports of a cancelled scan still queued behind a new one must not reach its tree.
        scan_id = self._scan_id = self._scan_id + 1

        def current(handler: Any) -> Any:
            return lambda *args: handler(*args) if scan_id == self._scan_id else None

        worker = start_job(
            lambda: scan_job(inputs),
            on_progress=current(self._on_progress),
            on_done=current(self._on_done),
            on_error=current(self._on_error),
            on_cancelled=current(self._on_cancelled),
            start=False,
            owner=self,
        )
        self._worker = worker
        worker.start()
        return worker

    def add_paths(self, paths: Sequence[str | Path]) -> Any:
        """Read files saved since the scan (a reformat series saved next to the study, say) and join their
        series to the tree, where their patient and study are; the series shown stays as it is. Nothing
        while a scan runs or before one (the scan reads them itself). Returns the worker, or None."""
        if self.index is None or self.scanning:
            return None
        inputs = [str(p) for p in paths]
        scan_id = self._scan_id

        def joined(added: ScanIndex) -> None:
            self._adding = None
            if scan_id != self._scan_id or self.index is None:
                return  # another scan replaced the tree meanwhile
            self.show_index(merge_index(self.index, added), quiet=True)
            self.index_extended.emit(self.index)

        def failed(message: str) -> None:
            self._adding = None
            self.scan_failed.emit(message)

        self._adding = start_job(lambda: scan_job(inputs), on_done=joined, on_error=failed, owner=self)
        return self._adding

    def cancel_scan(self) -> None:
        """Stop the scan at its next report; what was read so far stays in the tree."""
        if self._worker is not None and self.scanning:
            self._worker.quit()

    def _on_progress(self, progress: Any) -> None:
        if not self.scanning:
            return
        total = progress.total or 0
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(progress.done)
            self.progress.setFormat(f"Reading {progress.done:,} of {total:,} files")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(f"Listing files… {progress.done:,}")
        if isinstance(progress, ScanProgress):
            if progress.headers:
                self._add_headers(progress.headers)
            if progress.problems:
                self.problems_found.emit(list(progress.problems))
        self.scan_progress.emit(progress.done, total, progress.message)

    def _on_done(self, index: ScanIndex) -> None:
        self.scanning = False
        self.progress_row.hide()
        self._worker = None
        self.show_index(index)
        # The rest (problems, selecting and showing the first series) in the next turn of the event
        # loop, so the window repaints between the two halves of a big scan's ending.
        QTimer.singleShot(0, lambda: self._announce(index))

    def _announce(self, index: ScanIndex) -> None:
        if index is not self.index:
            return  # another scan started meanwhile
        self.problems_found.emit(list(index.problems))
        self.scan_finished.emit(index)

    def _on_error(self, message: str) -> None:
        self.scanning = False
        self.progress_row.hide()
        self._worker = None
        self.scan_failed.emit(message)

    def _on_cancelled(self) -> None:
        self.scanning = False
        self.progress_row.hide()
        self._worker = None
        self.scan_cancelled.emit()

    # --- the tree -------------------------------------------------------------------------------
    def _clear_tree(self) -> None:
        if self._thumb_worker is not None:
            self._thumb_worker.quit()
            self._thumb_worker = None
        self.tree.clear()
        self._items.clear()
        self._refs.clear()
        self._partial_counts.clear()
        self._partial_meta.clear()
        self._thumbs.clear()
        self.tree.hide()
        self.empty_label.show()

    def _ensure_visible_tree(self) -> None:
        if not self.tree.isVisible() and self.tree.topLevelItemCount():
            self.empty_label.hide()
            self.tree.show()

    def _make_item(self, parent: QTreeWidgetItem | None, label: str, kind: str, search: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([label])
        item.setData(0, KIND_ROLE, kind)
        item.setData(0, SEARCH_ROLE, search.lower())
        item.setToolTip(0, label)
        if parent is None:
            self.tree.addTopLevelItem(item)
        else:
            parent.addChild(item)
        return item

    def _add_headers(self, headers: Sequence[Header]) -> None:
        """While scanning: add each header's patient / study / series if new, count images. Labels
        change once per batch and the column is sized once per batch (not once per file)."""
        touched: dict[str, tuple[QTreeWidgetItem, Any, Any, Any]] = {}
        for h in headers:
            patient_key, study_uid, series_uid = header_keys(h)
            p_item = self._items.get("p" + patient_key)
            if p_item is None:
                name, pid = h.get("PatientName"), h.get("PatientID")
                p_item = self._make_item(None, patient_label(name, pid), "patient",
                                         f"{person_name(name)} {name or ''} {pid or ''}")
                self._items["p" + patient_key] = p_item
            s_item = self._items.get("s" + study_uid)
            if s_item is None:
                date, desc = h.get("StudyDate"), h.get("StudyDescription")
                accession = h.get("AccessionNumber") or ""
                s_item = self._make_item(p_item, study_label(date, desc), "study",
                                         f"{dicom_date(date)} {date or ''} {desc or ''} {accession}")
                self._items["s" + study_uid] = s_item
                p_item.setExpanded(True)
            se_item = self._items.get("e" + series_uid)
            if se_item is None:
                number, modality, desc = h.get("SeriesNumber"), h.get("Modality"), h.get("SeriesDescription")
                se_item = self._make_item(s_item, "", "series", f"{number or ''} {modality or ''} {desc or ''}")
                self._items["e" + series_uid] = se_item
                s_item.setExpanded(True)
                touched[series_uid] = (se_item, number, modality, desc)
            elif series_uid not in touched:
                previous = self._partial_meta.get(series_uid, (None, None, None))
                touched[series_uid] = (se_item, *previous)
            if h.get("Rows") and h.get("Columns"):
                self._partial_counts[series_uid] = self._partial_counts.get(series_uid, 0) + 1
        for series_uid, (item, number, modality, desc) in touched.items():
            self._partial_meta[series_uid] = (number, modality, desc)
            label = series_label(number, modality, desc, self._partial_counts.get(series_uid, 0))
            item.setText(0, label)
            item.setToolTip(0, label)
        self._ensure_visible_tree()
        if self.search.text():
            self.apply_filter(self.search.text())

    def show_index(self, index: ScanIndex, *, quiet: bool = False) -> None:
        """The final, sorted tree of a finished scan (replaces what the batches built). ``quiet``: the
        series chosen is chosen again without announcing it (the tree grew; the reader's place stays)."""
        selected = self.current_series()
        keep = selected.key if selected is not None else None
        self.tree.clear()
        self._items.clear()
        self._refs.clear()
        self._study_paths.clear()
        self.index = index
        thumbs_needed: list[tuple[str, str]] = []
        for patient in index.patients:
            p_item = self._make_item(None, patient_label(patient.name, patient.id), "patient",
                                     f"{person_name(patient.name)} {patient.name or ''} {patient.id}")
            for study in patient.studies:
                s_item = self._make_item(
                    p_item, study_label(study.date, study.description), "study",
                    f"{dicom_date(study.date)} {study.date or ''} {study.description or ''} {study.accession or ''}",
                )
                for series in study.series:
                    images = [i for i in series.instances if i.is_image]
                    label = series_label(series.number, series.modality, series.description, len(images),
                                         len(series.instances) - len(images))
                    se_item = self._make_item(
                        s_item, label, "series",
                        f"{series.number if series.number is not None else ''} {series.modality or ''} "
                        f"{series.description or ''} {series.body_part or ''}",
                    )
                    ref = SeriesRef(series.uid, series, study, patient)
                    self._refs[series.uid] = ref
                    self._items["e" + series.uid] = se_item
                    se_item.setData(0, SERIES_ROLE, series.uid)
                    first = images[0].path if images else (series.instances[0].path if series.instances else "")
                    se_item.setToolTip(0, f"{label}\nfirst file: {first}")
                    if series.uid in self._thumbs:
                        se_item.setIcon(0, self._thumbs[series.uid])
                    elif images and len(thumbs_needed) < MAX_THUMBNAILS:
                        se_item.setIcon(0, self._placeholder_icon)
                        thumbs_needed.append((series.uid, images[len(images) // 2].path))
                    if not images:
                        se_item.setForeground(0, self.palette().placeholderText())
        self.tree.expandAll()
        self.empty_label.setText(
            "No DICOM images found here.\nThe Problems tab lists what could not be read."
            if not index.patients else self.empty_label.text()
        )
        if index.patients:
            self.empty_label.hide()
            self.tree.show()
        else:
            self.tree.hide()
            self.empty_label.show()
        if self.search.text():
            self.apply_filter(self.search.text())
        if keep is not None and "e" + keep in self._items:
            self.tree.blockSignals(quiet)
            self.tree.setCurrentItem(self._items["e" + keep])
            self.tree.blockSignals(False)
        if thumbs_needed:
            self._start_thumbnails(thumbs_needed)

    def _start_thumbnails(self, items: list[tuple[str, str]]) -> None:
        holder: list[Any] = []

        def finished(*_: Any) -> None:
            if holder and holder[0] is self._thumb_worker:
                self._thumb_worker = None

        make: Any = lambda: thumbnail_job(items)  # noqa: E731 (yields thumbnails, not Progress)
        worker = start_job(make, on_progress=self._on_thumbnail, on_done=finished, on_error=finished,
                           on_cancelled=finished, start=False, owner=self)
        holder.append(worker)
        self._thumb_worker = worker
        worker.start()

    def _on_thumbnail(self, result: tuple[str, np.ndarray | None]) -> None:
        key, image = result
        item = self._items.get("e" + key)
        if item is None:
            return
        if image is None:
            item.setToolTip(0, item.toolTip(0) + "\n(no preview: the image could not be decoded)")
            return
        icon = thumbnail_icon(image)
        self._thumbs[key] = icon
        item.setIcon(0, icon)

    def content_width(self) -> int:
        """Pixels the longest label needs, with its indentation and thumbnail (every row, not
        only those scrolled into view)."""
        metrics = self.tree.fontMetrics()
        widest = 0

        def visit(item: QTreeWidgetItem, depth: int) -> None:
            nonlocal widest
            icon = THUMB_SIZE + 6 if item.data(0, KIND_ROLE) == "series" else 0
            widest = max(widest, (depth + 1) * self.tree.indentation() + icon + metrics.horizontalAdvance(item.text(0)))
            for child in _children(item):
                visit(child, depth + 1)

        for item in self._top_items():
            visit(item, 0)
        return widest + 16

    def thumbnails_done(self) -> bool:
        return self._thumb_worker is None

    # --- search ---------------------------------------------------------------------------------
    def apply_filter(self, text: str) -> None:
        """Show the items whose text with their ancestors' holds every word (``jane ct``: Jane's CT
        series), and the ancestors of those."""
        words = text.lower().split()

        def visit(item: QTreeWidgetItem, chain: str) -> bool:
            joined = f"{chain} {item.data(0, SEARCH_ROLE) or ''} {item.text(0).lower()}"
            own = all(w in joined for w in words)
            children = [visit(child, joined) for child in _children(item)]
            visible = own or any(children)
            item.setHidden(not visible)
            return visible

        for item in self._top_items():
            visit(item, "")

    def visible_series_labels(self) -> list[str]:
        out = []
        for item in self.series_items():
            parent = item.parent()
            if not item.isHidden() and not (parent is not None and parent.isHidden()):
                out.append(item.text(0))
        return out

    # --- selection ------------------------------------------------------------------------------
    def series_items(self) -> list[QTreeWidgetItem]:
        out: list[QTreeWidgetItem] = []

        def visit(item: QTreeWidgetItem) -> None:
            if item.data(0, KIND_ROLE) == "series":
                out.append(item)
            for child in _children(item):
                visit(child)

        for item in self._top_items():
            visit(item)
        return out

    def _top_items(self) -> list[QTreeWidgetItem]:
        return [cast(QTreeWidgetItem, self.tree.topLevelItem(k)) for k in range(self.tree.topLevelItemCount())]

    def _dragged_files(self, item: QTreeWidgetItem) -> list[Path]:
        """The image files a dragged series item stands for (a patient or study item: none)."""
        key = item.data(0, SERIES_ROLE)
        ref = self._refs.get(key) if key else None
        return list(ref.image_paths) if ref is not None else []

    def current_series(self) -> SeriesRef | None:
        item = self.tree.currentItem()
        if item is None:
            return None
        key = item.data(0, SERIES_ROLE)
        return self._refs.get(key) if key else None

    def series_ref(self, key: str) -> SeriesRef | None:
        return self._refs.get(key)

    def select_series(self, key: str) -> bool:
        """Make series ``key`` the current one (as a click on it does); False where the tree has none."""
        for item in self.series_items():
            if item.data(0, SERIES_ROLE) == key:
                self.tree.setCurrentItem(item)
                self.tree.scrollToItem(item)  # the series opened in its place in the tree, in view
                return True
        return False

    def select_first_series(self) -> bool:
        for item in self.series_items():
            if item.data(0, SERIES_ROLE) and not item.isHidden():
                ref = self._refs.get(item.data(0, SERIES_ROLE))
                if ref is not None and ref.image_paths:
                    self.tree.setCurrentItem(item)
                    return True
        return False

    def step_series(self, step: int) -> bool:
        """Page Up / Page Down: the previous / next series with images, across studies."""
        items = [
            i for i in self.series_items()
            if not i.isHidden() and i.data(0, SERIES_ROLE) and self._refs[i.data(0, SERIES_ROLE)].image_paths
        ]
        if not items:
            return False
        current = self.tree.currentItem()
        position = items.index(current) if current in items else (-1 if step > 0 else len(items))
        target = position + (1 if step > 0 else -1)
        if not 0 <= target < len(items):
            return False
        self.tree.setCurrentItem(items[target])
        return True

    def study_paths(self, ref: SeriesRef) -> list[Path]:
        """Every image of the series' study (made once per study: a CT study may hold 10,000)."""
        paths = self._study_paths.get(ref.study.uid)
        if paths is None:
            paths = [p for se in ref.study.series for p in self._series_paths(se)]
            self._study_paths[ref.study.uid] = paths
        return paths

    def _series_paths(self, series: Series) -> list[Path]:
        ref = self._refs.get(series.uid)
        return ref.image_paths if ref is not None else [Path(i.path) for i in series.instances if i.is_image]

    def shutdown(self) -> None:
        """Stop the scan and the thumbnails (the window is closing)."""
        self.cancel_scan()
        if self._thumb_worker is not None:
            self._thumb_worker.quit()

    def _on_current(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        if current is None:
            return
        key = current.data(0, SERIES_ROLE)
        ref = self._refs.get(key) if key else None
        if ref is not None:
            self.series_activated.emit(ref)

