"""Rulers, regions and angles on the reformat window's three planes, on pydicom's real CT series CT5N (5 axial
slices of 16 x 16 pixels of 0.49 mm, 2.5 mm apart): with M, E or N on, a left drag in a pane draws on that
pane's image instead of moving the crosshair, measured in the patient as on one plane; a mark belongs to its
image (plane, slice, slab) whichever layout shows it, so a ruler drawn on the coronal pane is on the coronal
shown alone at that slice and the other way round, and a pane shows only the marks of the slice it shows;
Delete removes the marks of the pane used last. Everything is driven by the mouse and the keys as the
reader does it."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pyqtgraph as pg
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent

from tests.desktop.test_reformat_three_planes import pane_point, press
from tests.desktop.test_reformat_window import (
    ct5n,
    mouse_drag,
    open_series,
    ruler_labels,
    screen_point,
    shown_window,
)
from zsmed.dicom.display import region_statistics
from zsmed.dicom.volume import Plane, reformat
from zsmed_desktop.mpr_panes import MprPanes
from zsmed_desktop.reformat_window import ReformatWindow

ROW_MM, COLUMN_MM = 2.5, 0.488281  # CT5N's coronal and sagittal: slices 2.5 mm apart (rows), pixels 0.49 mm
SAVE_TIMEOUT = 60_000  # ms


@pytest.fixture()
def window(qtbot) -> ReformatWindow:
    return shown_window(qtbot, reader="Doe, Jane", size=(900, 500))


def three_planes(qtbot, window: ReformatWindow) -> MprPanes:
    """CT5N read, at a CT window, shown as three planes."""
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    window.three_action.trigger()
    assert window.is_three_planes()
    window.setFocus()
    return window.panes


def send(panes: MprPanes, plane: Plane, kind: QEvent.Type, at: QPointF, changed: Qt.MouseButton,
         held: Qt.MouseButton) -> None:
    view = panes.panes[plane].view
    port = view.viewport()
    view.viewportEvent(QMouseEvent(kind, at, port.mapToGlobal(at), changed, held, Qt.KeyboardModifier.NoModifier))


def pane_drag(panes: MprPanes, plane: Plane, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A left drag in ``plane``'s pane from image point ``start`` to ``end`` (column, row), in a few moves, as a
    hand makes it."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    down, up = pane_point(panes, plane, *start), pane_point(panes, plane, *end)
    time.sleep(0.02)
    send(panes, plane, QEvent.Type.MouseButtonPress, down, left, left)
    for step in range(1, 6):
        time.sleep(0.012)  # pyqtgraph drops moves closer together than its mouse rate limit (10 ms)
        send(panes, plane, QEvent.Type.MouseMove, down + (up - down) * (step / 5), none, left)
    send(panes, plane, QEvent.Type.MouseButtonRelease, up, left, none)


def pane_move(panes: MprPanes, plane: Plane, at: QPointF) -> None:
    """The mouse moved (no button) to ``at`` (viewport pixels) in ``plane``'s pane."""
    time.sleep(0.012)
    send(panes, plane, QEvent.Type.MouseMove, at, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)


def pane_wheel(panes: MprPanes, plane: Plane, notches: int) -> None:
    """The wheel turned ``notches`` towards the reader (slices on) over ``plane``'s pane."""
    view = panes.panes[plane].view
    centre = view.viewport().rect().center()
    for _ in range(notches):
        view.wheelEvent(QWheelEvent(QPointF(centre), QPointF(view.viewport().mapToGlobal(centre)), QPoint(0, 0),
                                    QPoint(0, -120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                    Qt.ScrollPhase.NoScrollPhase, False))


def pane_labels(panes: MprPanes, plane: Plane) -> list[str]:
    """The marks' labels shown on ``plane``'s pane, oldest first."""
    return [item.textItem.toPlainText() for item in panes.panes[plane].box.childGroup.childItems()
            if isinstance(item, pg.TextItem) and item.isVisible()]


def pane_mark_lines(panes: MprPanes, plane: Plane) -> list[pg.PlotCurveItem]:
    """The marks' lines shown on ``plane``'s pane (not the other planes' lines through the crosshair)."""
    pane = panes.panes[plane]
    crosshair = list(pane.lines.values())
    return [item for item in pane.box.childGroup.childItems() if isinstance(item, pg.PlotCurveItem)
            and item.isVisible() and not any(item is line for line in crosshair)]


def test_a_ruler_dragged_on_the_coronal_pane_measures_the_patient_and_is_on_the_coronal_alone(
        qtbot, window: ReformatWindow) -> None:
    panes = three_planes(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_M)  # the measuring tools are the panes' too
    assert window.is_measuring() and window.measure_action.isChecked()
    assert panes.panes["coronal"].view.viewport().cursor().shape() == Qt.CursorShape.CrossCursor
    assert "Measuring" in window.status_bar.currentMessage()  # no corner text here: the status bar says it
    crosshair, coronal_index = panes.point(), panes.index("coronal")
    assert crosshair is not None
    pane_drag(panes, "coronal", (2.0, 1.5), (14.0, 1.5))  # 12 columns of 0.49 mm
    point = panes.point()
    assert point is not None and point == pytest.approx(crosshair)  # drawing: the crosshair stays
    assert panes.index("coronal") == coronal_index and panes.active == "coronal"
    (ruler,) = window.measurements()  # the pane used last's
    assert ruler.start == pytest.approx((2.0, 1.5), abs=0.05) and ruler.end == pytest.approx((14.0, 1.5), abs=0.05)
    assert ruler.length_mm == pytest.approx(12 * COLUMN_MM, abs=0.03) and ruler.text == "5.9 mm"
    assert pane_labels(panes, "coronal") == ["5.9 mm"]  # its figure next to it on the pane
    xs, ys = pane_mark_lines(panes, "coronal")[0].getData()  # in the pane's mm
    assert list(xs) == pytest.approx([2.0 * COLUMN_MM, 14.0 * COLUMN_MM], abs=0.03)
    assert list(ys) == pytest.approx([1.5 * ROW_MM, 1.5 * ROW_MM], abs=0.1)
    assert pane_labels(panes, "axial") == [] and pane_labels(panes, "sagittal") == []  # the coronal's only
    # a double-click shows the coronal alone at that slice: the ruler is there, drawn in its view
    press(panes, "coronal", pane_point(panes, "coronal", 8.0, 3.5), double=True)
    assert not window.is_three_planes() and window.plane() == "coronal" and window.index() == coronal_index
    assert window.is_measuring()  # the tool stays on
    assert window.measurements() == [ruler]
    assert [label.textItem.toPlainText() for label in ruler_labels(window)] == ["5.9 mm"]
    assert pane_labels(panes, "coronal") == []  # moved, not copied
    # measured alone: back on the three planes it is on the coronal pane, the same mark
    mouse_drag(window, screen_point(window, 4.0, 0.5), screen_point(window, 4.0, 4.5))  # 4 slices: 10 mm
    assert [m.text for m in window.measurements()] == ["5.9 mm", "10.0 mm"]
    window.three_action.trigger()
    assert panes.index("coronal") == coronal_index
    assert pane_labels(panes, "coronal") == ["5.9 mm", "10.0 mm"] and ruler_labels(window) == []
    assert len(pane_mark_lines(panes, "coronal")) == 2


def test_a_region_on_the_axial_pane_gives_the_hu_of_that_slice_and_of_the_slab(qtbot, window: ReformatWindow
                                                                              ) -> None:
    panes = three_planes(qtbot, window)
    volume = window.volume()
    assert volume is not None
    qtbot.keyClick(window, Qt.Key.Key_E)
    assert window.is_region_mode()
    pane_drag(panes, "axial", (3.0, 4.0), (12.0, 11.0))
    axial_index = panes.index("axial")
    (region,) = window.rois()
    assert region.start == pytest.approx((3.0, 4.0), abs=0.05) and region.end == pytest.approx((12.0, 11.0), abs=0.05)
    # the axial slice's own HU, worked out here from the volume's voxels, apart from the window's image
    expected = region_statistics(volume.voxels[axial_index], region.start, region.end,
                                 spacing=(COLUMN_MM, COLUMN_MM), hounsfield=True)
    assert region.statistics.mean == pytest.approx(expected.mean)
    assert region.statistics.sd == pytest.approx(expected.sd)
    assert region.statistics.area == pytest.approx(math.pi * 4.5 * 3.5 * COLUMN_MM ** 2, rel=0.02)
    assert region.statistics.value_unit == "HU" and " HU" in region.text
    assert pane_labels(panes, "axial") == [region.text]
    # a drag inside it moves it whole; its figures are the new place's
    pane_drag(panes, "axial", (7.5, 7.5), (9.5, 8.5))
    (moved,) = window.rois()
    assert moved.start == pytest.approx((5.0, 5.0), abs=0.05) and moved.end == pytest.approx((14.0, 12.0), abs=0.05)
    assert moved.statistics.mean == pytest.approx(region_statistics(
        volume.voxels[axial_index], moved.start, moved.end, spacing=(COLUMN_MM, COLUMN_MM), hounsfield=True).mean)
    # a 5 mm MIP is another image of the pane: the region hidden; one drawn on it gives the MIP's values
    window.set_slab(5.0, "mip")
    assert window.rois() == [] and pane_labels(panes, "axial") == []
    pane_drag(panes, "axial", (3.0, 4.0), (12.0, 11.0))
    (on_slab,) = window.rois()
    slab = reformat(volume, "axial", axial_index, 5.0, "mip")
    assert slab.slab_slices > 1
    assert on_slab.statistics.mean == pytest.approx(region_statistics(
        slab.image, on_slab.start, on_slab.end, spacing=slab.spacing, hounsfield=True).mean)
    assert on_slab.statistics.mean > expected.mean  # a MIP is brighter than its centre slice here
    window.set_slab(0.0)
    assert window.rois() == [moved] and pane_labels(panes, "axial") == [moved.text]


def test_a_ruler_drawn_alone_is_on_the_pane_at_its_slice_and_follows_the_crosshair(qtbot, window: ReformatWindow
                                                                                   ) -> None:
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    assert window.plane() == "coronal" and window.index() == 8
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_M)
    mouse_drag(window, screen_point(window, 8.0, 0.5), screen_point(window, 8.0, 4.5))  # 4 slices of 2.5 mm
    (alone,) = window.measurements()
    assert alone.text == "10.0 mm"
    window.three_action.trigger()
    panes = window.panes
    assert panes.index("coronal") == 8
    assert pane_labels(panes, "coronal") == ["10.0 mm"] and ruler_labels(window) == []
    assert pane_labels(panes, "axial") == [] and pane_labels(panes, "sagittal") == []
    # the crosshair moved (the tool off: a click moves it) to another coronal slice: the ruler hidden there
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert not window.is_marking()
    where = panes.panes["axial"].where
    point = panes.point()
    assert where is not None and point is not None
    column, _row = where.image_point(point)  # on the axial, a row is a coronal slice (its middle at .5)
    press(panes, "axial", pane_point(panes, "axial", column, 2.5))
    assert panes.index("coronal") == 2
    assert pane_labels(panes, "coronal") == [] and pane_mark_lines(panes, "coronal") == []
    # a ruler on this slice is this slice's only
    qtbot.keyClick(window, Qt.Key.Key_M)
    pane_drag(panes, "coronal", (1.0, 0.5), (1.0, 2.5))  # 2 slices: 5 mm
    assert pane_labels(panes, "coronal") == ["5.0 mm"]
    # the wheel over the coronal pane, six slices on: the first ruler shows again, the other hidden
    pane_wheel(panes, "coronal", 6)
    assert panes.index("coronal") == 8
    assert pane_labels(panes, "coronal") == ["10.0 mm"] and len(pane_mark_lines(panes, "coronal")) == 1
    assert window.measurements() == [alone]


def test_with_no_tool_on_a_drag_in_a_pane_moves_the_crosshair_and_draws_nothing(qtbot, window: ReformatWindow
                                                                                ) -> None:
    panes = three_planes(qtbot, window)
    assert not window.is_marking()
    assert panes.panes["axial"].view.viewport().cursor().shape() != Qt.CursorShape.CrossCursor
    with qtbot.waitSignal(window.crosshair_moved):
        pane_drag(panes, "axial", (3.5, 3.5), (12.5, 10.5))
    where, point = panes.panes["axial"].where, panes.point()
    assert where is not None and point is not None
    assert where.image_point(point) == pytest.approx((12.5, 10.5), abs=0.05)  # the crosshair followed the mouse
    assert panes.index("coronal") in (10, 11) and panes.index("sagittal") in (12, 13)  # the others followed it
    assert window.measurements() == [] and window.rois() == [] and window.angles() == []
    assert all(pane_labels(panes, plane) == [] and pane_mark_lines(panes, plane) == []
               for plane in ("axial", "coronal", "sagittal"))


def test_delete_clears_the_marks_of_the_pane_used_last_only(qtbot, window: ReformatWindow) -> None:
    panes = three_planes(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_M)
    pane_drag(panes, "coronal", (2.0, 1.5), (14.0, 1.5))
    pane_drag(panes, "sagittal", (2.0, 0.5), (2.0, 4.5))
    qtbot.keyClick(window, Qt.Key.Key_E)
    pane_drag(panes, "axial", (3.0, 4.0), (12.0, 11.0))
    assert panes.active == "axial"
    # the reader sees which pane Delete acts on: its name alone underlined
    assert ["underline" in panes.panes[plane].title.styleSheet() for plane in ("axial", "coronal", "sagittal")] == [
        True, False, False]
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert pane_labels(panes, "axial") == [] and pane_mark_lines(panes, "axial") == []
    assert pane_labels(panes, "coronal") == ["5.9 mm"] and pane_labels(panes, "sagittal") == ["10.0 mm"]
    press(panes, "sagittal", pane_point(panes, "sagittal", 8.0, 2.5))  # a click there: the pane used last
    assert panes.active == "sagittal" and len(window.measurements()) == 1  # the click drew nothing
    assert "underline" in panes.panes["sagittal"].title.styleSheet()
    assert "underline" not in panes.panes["axial"].title.styleSheet()
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert pane_labels(panes, "sagittal") == [] and pane_labels(panes, "coronal") == ["5.9 mm"]
    # cleared for good: the coronal alone at its slice has its ruler, the sagittal none
    coronal_index, sagittal_index = panes.index("coronal"), panes.index("sagittal")
    window.set_plane("sagittal")
    assert window.index() == sagittal_index and window.measurements() == []
    window.set_plane("coronal")
    assert window.index() == coronal_index and [m.text for m in window.measurements()] == ["5.9 mm"]


def test_holding_a_rulers_end_in_a_pane_moves_that_end(qtbot, window: ReformatWindow) -> None:
    panes = three_planes(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_M)
    pane_drag(panes, "sagittal", (3.0, 0.5), (3.0, 4.5))  # 4 slices: 10 mm
    (drawn,) = window.measurements()
    assert drawn.text == "10.0 mm"
    # over its start the cursor says a press takes hold of it
    pane_move(panes, "sagittal", pane_point(panes, "sagittal", 3.0, 0.5) + QPointF(2, 0))
    assert panes.panes["sagittal"].view.viewport().cursor().shape() == Qt.CursorShape.SizeAllCursor
    pane_drag(panes, "sagittal", (3.0, 0.5), (11.0, 0.5))  # the start held: 8 columns to the right
    (moved,) = window.measurements()
    ends = sorted([moved.start, moved.end], key=lambda p: p[1])
    assert ends[0] == pytest.approx((11.0, 0.5), abs=0.05) and ends[1] == pytest.approx((3.0, 4.5), abs=0.05)
    assert moved.length_mm == pytest.approx(math.hypot(8 * COLUMN_MM, 4 * ROW_MM), abs=0.05)
    assert pane_labels(panes, "sagittal") == [moved.text] and len(pane_mark_lines(panes, "sagittal")) == 1


def test_an_angle_on_a_pane_is_the_patients_and_esc_drops_one_begun(qtbot, window: ReformatWindow) -> None:
    panes = three_planes(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert window.is_angle_mode()
    pane_drag(panes, "sagittal", (2.0, 4.0), (14.0, 4.0))  # the first arm, from the vertex along the columns
    assert window.angles() == []  # the second arm to come: it follows the mouse on the pane
    pane_move(panes, "sagittal", pane_point(panes, "sagittal", 6.0, 0.5))
    xs, _ys = pane_mark_lines(panes, "sagittal")[0].getData()
    assert len(xs) == 3 and xs[2] == pytest.approx(6.0 * COLUMN_MM, abs=0.05)
    time.sleep(0.02)
    press(panes, "sagittal", pane_point(panes, "sagittal", 6.0, 0.5))  # a click puts its end down
    (angle,) = window.angles()
    assert angle.vertex == pytest.approx((2.0, 4.0), abs=0.05)
    assert angle.second_end == pytest.approx((6.0, 0.5), abs=0.05)
    # in the patient: 4 columns of 0.49 mm against 3.5 rows of 2.5 mm, not the pixels' angle
    assert angle.degrees == pytest.approx(math.degrees(math.atan2(3.5 * ROW_MM, 4 * COLUMN_MM)), abs=0.3)
    assert pane_labels(panes, "sagittal") == [angle.text]
    # one begun on the coronal, then Esc: only it goes, the tool and the finished angle stay
    pane_drag(panes, "coronal", (2.0, 4.0), (14.0, 4.0))
    assert len(pane_mark_lines(panes, "coronal")) == 1
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert pane_mark_lines(panes, "coronal") == [] and window.is_angle_mode()
    assert pane_labels(panes, "sagittal") == [angle.text]
    # one begun on the coronal, then a drag on the axial: the one begun goes, a new one begins there
    pane_drag(panes, "coronal", (2.0, 4.0), (14.0, 4.0))
    pane_drag(panes, "axial", (2.0, 8.0), (14.0, 8.0))
    assert pane_mark_lines(panes, "coronal") == [] and len(pane_mark_lines(panes, "axial")) == 1
    qtbot.keyClick(window, Qt.Key.Key_Escape)  # the angle begun goes; Esc again: the tool off, the marks kept
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.is_marking() and pane_labels(panes, "sagittal") == [angle.text]


def test_a_ruler_drawn_on_a_pane_is_saved_with_its_image(qtbot, window: ReformatWindow, tmp_path: Path) -> None:
    import pydicom

    from tests.report.sr_items import content_items

    panes = three_planes(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_M)
    pane_drag(panes, "coronal", (8.0, 0.5), (8.0, 4.5))  # 4 slices of 2.5 mm
    press(panes, "coronal", pane_point(panes, "coronal", 12.0, 3.5), double=True)  # the coronal alone
    assert window.plane() == "coronal" and window.save_action.isEnabled()
    with qtbot.waitSignal(window.saved, timeout=SAVE_TIMEOUT) as signal:
        assert window.save_for_pacs(None, tmp_path)  # the image shown
    message, folder, warning, _files = signal.args
    assert not warning and message.endswith(", with 1 measurement (DICOM SR)")
    (report,) = folder.glob("SR_*.dcm")
    numbers = [float(item.MeasuredValueSequence[0].NumericValue) for item in content_items(pydicom.dcmread(report))
               if item.ValueType == "NUM" and "MeasuredValueSequence" in item]
    assert any(n == pytest.approx(10.0, abs=0.05) for n in numbers)  # the ruler, in mm
