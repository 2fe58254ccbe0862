"""Nothing a reader needs is cut off: at 1280x800 and 1600x1000, with a result on screen, every
visible button and one-line label of the classifier panel and the case-log screen is at least as
wide as its text needs, and the case log's buttons lie inside the bottom panel (not scrolled away)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QAbstractButton, QLabel, QProgressBar, QWidget

from tests.conftest import REPO
from tests.desktop.reading_room import SCAN_TIMEOUT, make_window
from zsmed_desktop.main_window import MainWindow

BUNDLE = REPO / "export" / "reference" / "sgps_ham4_lite0_v1.zsmb"


def clipped(root: QWidget) -> list[str]:
    """Visible buttons and one-line labels under ``root`` narrower than their text."""
    found = []
    for widget in root.findChildren(QWidget):
        if not widget.isVisible() or not isinstance(widget, QAbstractButton | QLabel):
            continue
        if isinstance(widget, QLabel) and (widget.wordWrap() or not widget.text()):
            continue
        need = widget.minimumSizeHint().width() if isinstance(widget, QLabel) else widget.sizeHint().width()
        if widget.width() < need:
            found.append(f"{type(widget).__name__} {widget.text()!r}: {widget.width()} < {need} px")
    return found


def inside(widget: QWidget, area: QWidget) -> bool:
    top_left = widget.mapTo(area.window(), QPoint(0, 0))
    box = QRect(top_left, widget.size())
    area_box = QRect(area.mapTo(area.window(), QPoint(0, 0)), area.size())
    return area_box.contains(box)


@pytest.fixture()
def window_with_result(qtbot, tmp_path: Path, shared_data: Path) -> MainWindow:
    photo = sorted((shared_data / "ham10000_fs" / "base" / "mel").glob("*.jpg"))[0]
    window = make_window(qtbot, tmp_path)
    window.show()
    panel = window.classify
    panel.load_bundle(BUNDLE)
    qtbot.waitUntil(lambda: panel.model_ready and not panel.is_busy(), timeout=SCAN_TIMEOUT)
    window.open_photos([photo])
    qtbot.waitUntil(lambda: panel._current == photo, timeout=SCAN_TIMEOUT)
    panel.classify("image")
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=SCAN_TIMEOUT)
    assert panel.bar_values() and panel.result_label()
    return window


@pytest.mark.parametrize("size", [(1280, 800), (1600, 1000)])
def test_nothing_is_cut_off(qtbot, window_with_result: MainWindow, size: tuple[int, int]) -> None:
    window = window_with_result
    window.resize(*size)
    qtbot.wait(150)
    panel = window.classify
    assert panel.sr_button.isVisible() and panel.sr_button.text() == "Save as DICOM SR…"
    assert clipped(panel) == []
    # The percentages stand beside their bars, whole, not drawn inside them.
    percents = [w for w in panel.bars.findChildren(QLabel) if w.objectName().startswith("percent_")]
    assert len(percents) == len(panel.bar_values()) == 4
    for label in percents:
        bar = panel.bars.findChild(QProgressBar, "bar_" + label.objectName().removeprefix("percent_"))
        assert bar is not None and not bar.isTextVisible()
        assert label.geometry().left() >= bar.geometry().right()
    # The case log: its buttons in view within the bottom panel, its labels whole.
    window.show_tab("Case log")
    qtbot.wait(150)
    view = window.caselog
    for button in (view.verify_button, view.export_button, view.confirm_button, view.correct_button):
        assert button.isVisible() and inside(button, window.bottom), button.text()
    assert clipped(view) == []
