"""A second series beside the one being read — a prior study, another sequence — in a window of its
own that a reading room puts on its second monitor. The viewer in it answers the same keys and mouse
as the main one; linked (L), it follows the main viewer's slices by position (mm along the slice
normal, lined up where the reader had both when linking) or, without positions, image for image.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QToolBar, QVBoxLayout, QWidget

from zsmed.dicom.geometry import SliceLink, link_slices
from zsmed_desktop.viewer import ImageViewer


class CompareWindow(QWidget):
    """The series beside: its viewer, and the link to the main viewer's slices."""

    closed = Signal()
    link_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("zsmed — beside")
        self.viewer = ImageViewer()
        self.positions: list[float] | None = None
        self._link: SliceLink | None = None
        bar = QToolBar()
        self.link_action = QAction("Link scrolling", self)
        self.link_action.setCheckable(True)
        self.link_action.setShortcut(QKeySequence("L"))
        self.link_action.setToolTip("Follow the main viewer's slices (L), lined up where the two are now")
        self.link_action.toggled.connect(lambda on: self.link_changed.emit(on))
        bar.addAction(self.link_action)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(bar)
        layout.addWidget(self.viewer, 1)
        self.resize(900, 900)

    def show_series(self, paths: list[Path], title: str, positions: list[float] | None) -> None:
        """Show ``paths`` (one series, in slice order) with ``positions`` (mm along its normal, or None)."""
        self.unlink()
        self.positions = positions
        self.viewer.set_images(paths, len(paths) // 2, title=title)
        self.setWindowTitle(f"zsmed — beside: {title}")

    def link(self, index: int, positions: list[float] | None) -> SliceLink:
        """Follow the main viewer from now on, lined up as the two are: its image ``index`` (of a series
        with ``positions``) with the image shown here."""
        self._link = link_slices(index, positions, self.viewer.current_index(), self.positions)
        if not self.link_action.isChecked():
            self.link_action.blockSignals(True)
            self.link_action.setChecked(True)
            self.link_action.blockSignals(False)
        return self._link

    def unlink(self) -> None:
        self._link = None
        if self.link_action.isChecked():
            self.link_action.blockSignals(True)
            self.link_action.setChecked(False)
            self.link_action.blockSignals(False)

    def is_linked(self) -> bool:
        return self._link is not None

    def follow(self, index: int, positions: list[float] | None) -> None:
        """The main viewer shows its image ``index``: show the linked image here."""
        if self._link is None or not self.viewer.image_count():
            return
        target = self._link.follow(index, positions, self.positions, self.viewer.image_count())
        if target != self.viewer.current_index():
            self.viewer.go_to(target)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.unlink()
        self.viewer.stop_cine()
        self.closed.emit()
        super().closeEvent(event)


__all__ = ["CompareWindow"]
