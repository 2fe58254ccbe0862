"""The first window: open a folder, a CD (DICOMDIR) or files, browse patients / studies / series,
see an image, and read the problems found. Scanning and decoding run in workers; decoding goes
through the contained ``SafeDecoder`` so a crafted file cannot take the app down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
)

from zsmed import __version__
from zsmed.dicom.scan import Instance, ScanIndex, scan_job
from zsmed_desktop.workers import JobRunner, single_step_job

INSTANCE_ROLE = Qt.ItemDataRole.UserRole + 1


def to_qimage(image: np.ndarray) -> QImage:
    """uint8 (H, W) or (H, W, 3) -> QImage (copied, so the numpy buffer may go)."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    if image.ndim == 2:
        return QImage(image.data, width, height, width, QImage.Format.Format_Grayscale8).copy()
    return QImage(image.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(f"zsmed {__version__}")
        self.resize(1100, 700)
        self.index: ScanIndex | None = None
        self._runners: list[JobRunner] = []

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Patient / study / series", "Modality", "Images"])
        self.tree.itemSelectionChanged.connect(self._on_selection)
        self.viewer = QLabel("Open a folder, a DICOMDIR or files to begin.")
        self.viewer.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.viewer.setMinimumSize(320, 320)
        self.problems = QListWidget()
        self.problems.setToolTip("Files that could not be read, with the reason")

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.viewer)
        right.addWidget(self.problems)
        right.setStretchFactor(0, 4)
        splitter = QSplitter()
        splitter.addWidget(self.tree)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 2)
        self.setCentralWidget(splitter)

        toolbar = self.addToolBar("Open")
        self.open_folder_action = QAction("Open folder…", self)
        self.open_folder_action.triggered.connect(self._ask_folder)
        self.open_files_action = QAction("Open files / DICOMDIR…", self)
        self.open_files_action.triggered.connect(self._ask_files)
        toolbar.addAction(self.open_folder_action)
        toolbar.addAction(self.open_files_action)
        self.statusBar().showMessage("Ready")

    # --- opening ----------------------------------------------------------------------------
    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of DICOM files")
        if folder:
            self.open_paths([folder])

    def _ask_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open DICOM files or a DICOMDIR")
        if files:
            self.open_paths(files)

    def open_paths(self, paths: list[str]) -> JobRunner:
        dialog = QProgressDialog("Scanning…", "Cancel", 0, 0, self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(400)
        runner = JobRunner(lambda: scan_job([Path(p) for p in paths]))
        self._runners.append(runner)
        dialog.canceled.connect(runner.cancel)

        def progress(done: int, total: int, message: str) -> None:
            dialog.setMaximum(total)
            dialog.setValue(done)
            dialog.setLabelText(message or "Scanning…")

        def finished(index: ScanIndex) -> None:
            dialog.close()
            self.show_index(index)

        def failed(message: str) -> None:
            dialog.close()
            self.statusBar().showMessage(message)
            QMessageBox.warning(self, "zsmed", message)

        runner.signals.progress.connect(progress)
        runner.signals.finished.connect(finished)
        runner.signals.failed.connect(failed)
        def cancelled() -> None:
            dialog.close()
            self.statusBar().showMessage("Scan cancelled")

        runner.signals.cancelled.connect(cancelled)
        return runner.start()

    # --- showing ----------------------------------------------------------------------------
    def show_index(self, index: ScanIndex) -> None:
        self.index = index
        self.tree.clear()
        for patient in index.patients:
            n_patient = sum(len(se.instances) for st in patient.studies for se in st.series)
            p_item = QTreeWidgetItem([f"{patient.name or '(no name)'} [{patient.id}]", "", str(n_patient)])
            for study in patient.studies:
                n_study = sum(len(se.instances) for se in study.series)
                label = " ".join(x for x in (study.date, study.description) if x) or study.uid
                s_item = QTreeWidgetItem([label, "", str(n_study)])
                for series in study.series:
                    name = f"#{series.number} {series.description or ''}".strip() if series.number else (
                        series.description or series.uid
                    )
                    se_item = QTreeWidgetItem([name, series.modality or "", str(len(series.instances))])
                    first = next((i for i in series.instances if i.is_image), None)
                    se_item.setData(0, INSTANCE_ROLE, first)
                    s_item.addChild(se_item)
                p_item.addChild(s_item)
            self.tree.addTopLevelItem(p_item)
        self.tree.expandAll()
        self.problems.clear()
        for problem in index.problems:
            if problem.kind != "not-dicom":
                self.problems.addItem(f"{problem.path}: {problem.reason}")
        counts = index.counts()
        self.statusBar().showMessage(
            f"{counts['patients']} patients, {counts['studies']} studies, {counts['series']} series, "
            f"{counts['instances']} instances; {counts['skipped_non_dicom']} non-DICOM skipped, "
            f"{counts['problems']} problems"
        )

    def _on_selection(self) -> None:
        items = self.tree.selectedItems()
        if not items:
            return
        instance = items[0].data(0, INSTANCE_ROLE)
        if isinstance(instance, Instance):
            self.show_instance(instance)

    def show_instance(self, instance: Instance) -> JobRunner:
        from zsmed.dicom.safe import safe_display_image

        runner = JobRunner(lambda: single_step_job(lambda: safe_display_image(instance.path), "decoding"))
        self._runners.append(runner)

        def finished(image: Any) -> None:
            pixmap = QPixmap.fromImage(to_qimage(np.asarray(image)))
            self.viewer.setPixmap(
                pixmap.scaled(self.viewer.size(), Qt.AspectRatioMode.KeepAspectRatio,
                              Qt.TransformationMode.SmoothTransformation)
            )
            self.statusBar().showMessage(instance.path)

        def failed(message: str) -> None:
            self.viewer.setText(message)
            self.statusBar().showMessage(message)

        runner.signals.finished.connect(finished)
        runner.signals.failed.connect(failed)
        return runner.start()
