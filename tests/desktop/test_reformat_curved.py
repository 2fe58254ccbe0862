"""Curved reformats in the reformat window (C, or Curved) on pydicom's real CT series CT5N: points clicked
along a path on the axial, a double-click or Enter to end, and the surface through the path, swept square to
the axial, shown unrolled; a ruler across it measures along the path; one image (no slices, no slab, not
saved as a series: it lies on no plane)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent

from tests.desktop.test_reformat_angles import click
from tests.desktop.test_reformat_window import ct5n, open_series, ruler_lines, screen_point, shown_window
from zsmed.dicom.volume import Curved
from zsmed_desktop.reformat_window import CURVED_TEXT, ReformatWindow


@pytest.fixture()
def window(qtbot) -> ReformatWindow:
    return shown_window(qtbot)


def double_click(qtbot, window: ReformatWindow, at: QPointF) -> None:
    qtbot.wait(15)
    port = window.view.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, held in ((QEvent.Type.MouseButtonPress, left), (QEvent.Type.MouseButtonRelease, none),
                       (QEvent.Type.MouseButtonDblClick, left), (QEvent.Type.MouseButtonRelease, none)):
        window.view.viewportEvent(QMouseEvent(kind, at, port.mapToGlobal(at), left, held,
                                              Qt.KeyboardModifier.NoModifier))


def test_clicks_along_a_path_show_it_unrolled_and_a_ruler_measures_along_it(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    window.plane_actions["axial"].trigger()
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_C)
    assert window.is_curved_mode() and window.curved_action.isChecked()
    assert window._labels["br"].text().startswith(CURVED_TEXT)
    path = [(2.0, 2.0), (8.0, 10.0), (14.0, 6.0)]
    for point in path[:2]:
        click(qtbot, window, screen_point(window, *point))
    time.sleep(0.02)
    assert len(ruler_lines(window)) == 1  # the path so far
    double_click(qtbot, window, screen_point(window, *path[2]))  # its first click is the last point
    curved = window.plane()
    assert isinstance(curved, Curved) and not window.is_curved_mode() and window.curved_action.isChecked()
    assert ruler_lines(window) == []  # the path it was drawn with is gone
    pixel = 0.488281
    length = float(np.hypot(6, 8) + np.hypot(6, 4)) * pixel  # in the axial's square 0.49 mm pixels
    assert curved.length_mm == pytest.approx(length, abs=0.02)
    shown = window.shown()
    assert shown is not None and shown.image.shape[1] == curved.columns and window.count() == 1
    assert window._labels["bl"].text() == f"Curved · path {curved.length_mm:.1f} mm"
    assert not window._slider_row.isVisible() and not window.slab_box.isEnabled()
    ruler = window.measure((0.0, 2.0), (float(curved.columns - 1), 2.0))  # across the columns: along the path
    assert ruler is not None and ruler.length_mm == pytest.approx(length, abs=curved.pixel_mm)
    assert window.current_plane() is None and window.planes_of_slices() == []  # on no one plane
    assert window.tilt("right", 5.0) is None and window.plane() == curved  # nothing to tilt
    assert window.draw_oblique((1.0, 1.0), (5.0, 3.0)) is None
    assert window.status_bar.currentMessage().startswith("Draw an oblique's line on a plane")
    window.plane_actions["axial"].trigger()
    assert window.plane() == "axial" and not window.curved_action.isChecked()
    window.curved_action.trigger()  # back to the curved reformat, its ruler with it
    assert window.plane() == curved and len(window.measurements()) == 1


def test_enter_ends_a_path_and_esc_drops_one_begun(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    window.plane_actions["axial"].trigger()
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_C)
    click(qtbot, window, screen_point(window, 3.0, 3.0))
    qtbot.keyClick(window, Qt.Key.Key_Return)  # one point is no path: said, the tool stays on
    assert window.plane() == "axial" and window.is_curved_mode()
    assert window.status_bar.currentMessage().startswith("A curved reformat needs a path")
    qtbot.keyClick(window, Qt.Key.Key_Escape)  # the path begun goes, the tool stays on
    assert window.is_curved_mode() and ruler_lines(window) == []
    for point in ((3.0, 12.0), (12.0, 12.0)):
        click(qtbot, window, screen_point(window, *point))
    qtbot.keyClick(window, Qt.Key.Key_Return)
    curved = window.plane()
    assert isinstance(curved, Curved) and curved.length_mm == pytest.approx(9 * 0.488281, abs=0.02)
    open_series(qtbot, window, ct5n()[:4])  # another series: the curve is forgotten
    assert not isinstance(window.plane(), Curved)


def test_a_curved_reformat_is_saved_as_a_picture_of_the_study(qtbot, window: ReformatWindow, tmp_path: Path) -> None:
    """It lies on no plane: a Secondary Capture of the study (not a CT image a PACS would place), as shown (its
    window), its pixel spacing mm along the path and down, its comments saying what it is."""
    from tests.report.sr_items import dciodvfy_errors

    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    window.plane_actions["axial"].trigger()
    curved = window.draw_curved([(2.0, 2.0), (8.0, 10.0), (14.0, 6.0)])
    assert curved is not None and window.save_action.isEnabled()
    with qtbot.waitSignal(window.saved) as signal:
        written = window.save_curved(tmp_path)
    message, folder, warning, _files = signal.args
    assert written is not None and not warning and folder == written.parent and "lies on no plane" in message
    ds = pydicom.dcmread(written)
    source = pydicom.dcmread(ct5n()[0], stop_before_pixels=True)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.PatientID == source.PatientID and list(ds.ImageType) == ["DERIVED", "SECONDARY", "CURVED"]
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([curved.pixel_mm] * 2)
    assert f"a path of {curved.length_mm:.1f} mm" in ds.ImageComments
    np.testing.assert_array_equal(ds.pixel_array, window.rendered_image())
    assert dciodvfy_errors(written) == []
