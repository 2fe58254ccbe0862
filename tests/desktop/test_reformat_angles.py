"""Angles on the reformat (N) on pydicom's real CT series CT5N, whose coronal has 2.5 mm rows (the slices) and
0.49 mm columns: the angle is the patient's, each arm scaled by its axis's own mm, not the one the stretched
pixels make; drawn as in the viewer (a drag from the vertex, then a click), its points dragged, kept with its
slice, Esc taking only an angle begun, and saved with the image as a measurements SR."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent

from tests.desktop.test_reformat_window import (
    ct5n,
    mouse_drag,
    open_series,
    ruler_labels,
    ruler_lines,
    screen_point,
    shown_window,
)
from zsmed_desktop.reformat_window import ANGLE_TEXT, ReformatWindow

SAVE_TIMEOUT = 60_000  # ms
ROW_MM, COLUMN_MM = 2.5, 0.488281  # CT5N's coronal: slices 2.5 mm apart, pixels 0.49 mm


@pytest.fixture()
def window(qtbot) -> ReformatWindow:
    return shown_window(qtbot, reader="Doe, Jane")


def patient_degrees(first: tuple[float, float], vertex: tuple[float, float], second: tuple[float, float]) -> float:
    """The angle at ``vertex`` with each arm in mm (columns 0.49 mm, rows 2.5 mm), worked out here apart."""
    a = ((first[0] - vertex[0]) * COLUMN_MM, (first[1] - vertex[1]) * ROW_MM)
    b = ((second[0] - vertex[0]) * COLUMN_MM, (second[1] - vertex[1]) * ROW_MM)
    cosine = (a[0] * b[0] + a[1] * b[1]) / (math.hypot(*a) * math.hypot(*b))
    return math.degrees(math.acos(cosine))


def move(window: ReformatWindow, at: QPointF) -> None:
    time.sleep(0.012)  # pyqtgraph's mouse rate limit
    port = window.view.viewport()
    window.view.viewportEvent(QMouseEvent(QEvent.Type.MouseMove, at, port.mapToGlobal(at), Qt.MouseButton.NoButton,
                                          Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))


def click(qtbot, window: ReformatWindow, at: QPointF) -> None:
    """A left click (press and release, no move) at ``at`` (viewport pixels)."""
    qtbot.wait(15)
    port = window.view.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, held in ((QEvent.Type.MouseButtonPress, left), (QEvent.Type.MouseButtonRelease, none)):
        window.view.viewportEvent(QMouseEvent(kind, at, port.mapToGlobal(at), left, held,
                                              Qt.KeyboardModifier.NoModifier))


def test_an_angle_on_the_coronal_is_the_patients_not_the_pixels(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    shown = window.shown()
    assert shown is not None and shown.spacing == pytest.approx((ROW_MM, COLUMN_MM))
    right = window.angle((14.0, 4.0), (2.0, 4.0), (2.0, 0.0))  # along the columns, then up the slices
    assert right is not None and right.degrees == pytest.approx(90.0) and right.text == "90.0°"
    # 4 columns and 4 rows: 45° in pixels, 79° in the patient (a row is 5 times a column's mm)
    slanted = window.angle((14.0, 4.0), (2.0, 4.0), (6.0, 0.0))
    expected = patient_degrees((14.0, 4.0), (2.0, 4.0), (6.0, 0.0))
    assert slanted is not None and slanted.degrees == pytest.approx(expected)
    assert expected == pytest.approx(78.95, abs=0.01) and slanted.text == "78.9°"
    assert (slanted.first_end, slanted.vertex, slanted.second_end) == ((14.0, 4.0), (2.0, 4.0), (6.0, 0.0))
    assert window.angles() == [right, slanted]
    assert [label.textItem.toPlainText() for label in ruler_labels(window)] == ["90.0°", "78.9°"]
    xs, ys = ruler_lines(window)[1].getData()  # first end, vertex, second end in the view's mm
    assert list(xs) == pytest.approx([14 * COLUMN_MM, 2 * COLUMN_MM, 6 * COLUMN_MM])
    assert list(ys) == pytest.approx([4 * ROW_MM, 4 * ROW_MM, 0.0])
    assert window.angle((2.0, 4.0), (2.0, 4.0), (6.0, 0.0)) is None  # an arm of no length: no angle


def test_n_then_a_drag_and_a_click_draw_an_angle_and_its_points_move(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    window.setFocus()
    fitted = window.vb.viewRect()
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert window.is_angle_mode() and window.angle_action.isChecked() and not window.is_measuring()
    assert window._labels["br"].text().startswith(ANGLE_TEXT)  # the corner says what a left drag does
    assert window.view.viewport().cursor().shape() == Qt.CursorShape.CrossCursor
    mouse_drag(window, screen_point(window, 2, 4), screen_point(window, 14, 4))  # the first arm, from the vertex
    assert window.vb.viewRect() == fitted and window.angles() == []  # no pan; the second arm to come
    move(window, screen_point(window, 6, 0.5))  # the second arm follows the mouse ...
    xs, _ys = ruler_lines(window)[0].getData()
    assert len(xs) == 3 and xs[2] == pytest.approx(6 * COLUMN_MM, abs=0.05)
    click(qtbot, window, screen_point(window, 6, 0.5))  # ... until a click puts its end down
    (angle,) = window.angles()
    assert angle.vertex == pytest.approx((2.0, 4.0), abs=0.02)
    assert angle.first_end == pytest.approx((14.0, 4.0), abs=0.02)
    assert angle.second_end == pytest.approx((6.0, 0.5), abs=0.02)
    assert angle.degrees == pytest.approx(patient_degrees(angle.first_end, angle.vertex, angle.second_end))
    # over a point the cursor says a press takes hold of it; the vertex dragged, the arms' ends stay
    move(window, screen_point(window, 2, 4) + QPointF(2, 0))
    assert window.view.viewport().cursor().shape() == Qt.CursorShape.SizeAllCursor
    mouse_drag(window, screen_point(window, 2, 4), screen_point(window, 2, 2))
    (moved,) = window.angles()
    assert moved.vertex == pytest.approx((2.0, 2.0), abs=0.02)
    assert (moved.first_end, moved.second_end) == (angle.first_end, angle.second_end)
    assert moved.degrees == pytest.approx(patient_degrees(moved.first_end, moved.vertex, moved.second_end))
    # a point dragged onto the vertex makes no angle: it goes back
    mouse_drag(window, screen_point(window, *moved.second_end), screen_point(window, *moved.vertex))
    assert window.angles() == [moved]
    # an angle begun, then Esc: only it goes, the mode and the finished angle stay
    mouse_drag(window, screen_point(window, 10, 1), screen_point(window, 14, 1))
    assert len(ruler_lines(window)) == 2
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert window.angles() == [moved] and len(ruler_lines(window)) == 1 and window.is_angle_mode()
    # M switches to rulers: a press on the angle's vertex then draws a ruler, it does not move the angle
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.is_measuring() and not window.is_angle_mode() and not window.angle_action.isChecked()
    mouse_drag(window, screen_point(window, 2, 2), screen_point(window, 2, 0))
    assert window.angles() == [moved] and len(window.measurements()) == 1
    qtbot.keyClick(window, Qt.Key.Key_Escape)  # the slice's marks go, and the tool
    assert window.angles() == [] and window.measurements() == [] and not window.is_marking()


def test_an_angle_stays_with_its_slice_and_one_begun_goes_with_another(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    finished = window.angle((14.0, 4.0), (2.0, 4.0), (2.0, 0.0))
    window.set_angle_mode(True)
    mouse_drag(window, screen_point(window, 10, 1), screen_point(window, 14, 1))  # begun, not finished
    assert window.angles() == [finished] and len(ruler_lines(window)) == 2
    window.step(1)  # another slice: the finished angle hidden, the one begun gone
    assert window.angles() == [] and ruler_lines(window) == []
    window.step(-1)
    assert window.angles() == [finished] and len(ruler_lines(window)) == 1
    mouse_drag(window, screen_point(window, 10, 1), screen_point(window, 14, 1))
    window.set_region_mode(True)  # another tool: the angle begun goes, the finished one stays
    assert window.angles() == [finished] and len(ruler_lines(window)) == 1


def test_an_angle_on_a_saved_image_goes_with_it_in_the_measurements_sr(qtbot, window: ReformatWindow,
                                                                       tmp_path: Path) -> None:
    from tests.report.sr_items import content_items, dciodvfy_errors

    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    angle = window.angle((14.0, 4.0), (2.0, 4.0), (6.0, 0.0))
    assert angle is not None
    with qtbot.waitSignal(window.saved, timeout=SAVE_TIMEOUT) as signal:
        window.save_for_pacs(None, tmp_path)  # the image shown
    message, folder, warning, files = signal.args
    assert not warning and message.endswith(", with 1 measurement (DICOM SR)")
    (image,) = folder.glob("MPR_*.dcm")
    (report,) = folder.glob("SR_*.dcm")
    assert files == [image, report]  # the image and its measurements, both for the PACS
    sr = pydicom.dcmread(report)
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
    assert [item.ReferencedSOPInstanceUID for item in evidence] == [pydicom.dcmread(image).SOPInstanceUID]
    degrees = [float(item.MeasuredValueSequence[0].NumericValue) for item in content_items(sr)
               if item.ValueType == "NUM" and "MeasuredValueSequence" in item
               and item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "deg"]
    assert degrees == [pytest.approx(angle.degrees, abs=0.01)]
    polylines = [[float(v) for v in item.GraphicData] for item in content_items(sr)
                 if item.ValueType == "SCOORD" and item.GraphicType == "POLYLINE"]
    assert polylines == [pytest.approx([14.0, 4.0, 2.0, 4.0, 6.0, 0.0])]
    assert dciodvfy_errors(report) == []
