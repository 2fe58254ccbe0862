"""The reformat window's three-plane layout (3 planes) on pydicom's real CT series CT5N (5 axial slices of
16 x 16, 2.5 mm apart): axial, coronal and sagittal through one point, each pane drawing where the two others
cut it; a click, a drag or the wheel in a pane moves the crosshair and the other panes follow; a double-click
shows that plane alone at the crosshair's slice; the image read follows the crosshair."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent

from tests.desktop.test_reformat_window import ct5n, open_series, shown_window
from zsmed.dicom.volume import Plane
from zsmed_desktop.mpr_panes import MprPanes
from zsmed_desktop.reformat_window import ReformatWindow


@pytest.fixture()
def window(qtbot) -> ReformatWindow:
    return shown_window(qtbot, size=(900, 500))


def pane_point(panes: MprPanes, plane: Plane, column: float, row: float) -> QPointF:
    """Where image point (column, row) of ``plane``'s pane is in that pane's viewport."""
    pane = panes.panes[plane]
    assert pane.shown is not None
    row_mm, column_mm = pane.shown.spacing
    point = pane.box.mapViewToDevice(QPointF(column * column_mm, row * row_mm))
    assert point is not None
    return point


def press(panes: MprPanes, plane: Plane, at: QPointF, *, double: bool = False) -> None:
    """A left click (or double-click) at ``at`` in ``plane``'s pane (viewport pixels)."""
    view = panes.panes[plane].view
    port = view.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    kinds = [(QEvent.Type.MouseButtonPress, left), (QEvent.Type.MouseButtonRelease, none)]
    if double:
        kinds += [(QEvent.Type.MouseButtonDblClick, left), (QEvent.Type.MouseButtonRelease, none)]
    for kind, held in kinds:
        view.viewportEvent(QMouseEvent(kind, at, port.mapToGlobal(at), left, held, Qt.KeyboardModifier.NoModifier))


def on_slice(panes: MprPanes, plane: Plane, point: np.ndarray) -> bool:
    """Whether ``point`` lies on the slice ``plane``'s pane shows (within half its spacing)."""
    where, shown = panes.panes[plane].where, panes.panes[plane].shown
    assert where is not None and shown is not None
    spacing = {"axial": 2.5, "coronal": 0.488281, "sagittal": 0.488281}[plane]
    return abs(float((point - np.asarray(where.position)) @ where.normal)) <= spacing / 2 + 1e-6


def test_three_planes_through_one_point_each_showing_where_the_others_cut_it(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    window.three_action.trigger()
    assert window.is_three_planes() and window.three_action.isChecked()
    assert not any(action.isChecked() for action in window.plane_actions.values())
    assert not window.save_action.isEnabled()  # three slices: no one image to save
    assert window.measure_action.isEnabled() and window.region_action.isEnabled() and window.angle_action.isEnabled()
    panes = window.panes
    shapes = {plane: pane.shown.image.shape for plane, pane in panes.panes.items() if pane.shown is not None}
    assert shapes == {"axial": (16, 16), "coronal": (5, 16), "sagittal": (5, 16)}
    point = panes.point()
    assert point is not None and all(on_slice(panes, plane, point) for plane in ("axial", "coronal", "sagittal"))
    assert panes.panes["axial"].title.text() == f"Axial {panes.index('axial') + 1}/5"
    # on the axial, the coronal's line runs across and the sagittal's down, crossing at the crosshair
    where = panes.panes["axial"].where
    assert where is not None
    column, row = where.image_point(point)
    coronal, sagittal = panes.line_ends("axial", "coronal"), panes.line_ends("axial", "sagittal")
    assert coronal is not None and sagittal is not None
    assert coronal[0][1] == pytest.approx(row) and coronal[1][1] == pytest.approx(row)
    assert sagittal[0][0] == pytest.approx(column) and sagittal[1][0] == pytest.approx(column)
    assert panes.line_ends("coronal", "axial") is not None and panes.line_ends("sagittal", "coronal") is not None


def test_a_click_and_the_wheel_move_the_crosshair_and_the_other_planes_follow(qtbot, window: ReformatWindow
                                                                              ) -> None:
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    window.three_action.trigger()
    panes = window.panes
    with qtbot.waitSignal(window.crosshair_moved) as moved:
        press(panes, "axial", pane_point(panes, "axial", 3.5, 12.5))
    point = panes.point()
    assert point is not None and np.asarray(moved.args[0]) == pytest.approx(point)
    axial = panes.panes["axial"].where
    assert axial is not None and axial.image_point(point) == pytest.approx((3.5, 12.5), abs=0.05)
    assert on_slice(panes, "coronal", point) and on_slice(panes, "sagittal", point)
    axial_index, coronal_index = panes.index("axial"), panes.index("coronal")
    panes.step("coronal", 2)  # the wheel over the coronal: two coronal slices on, the axial stays
    assert panes.index("coronal") == coronal_index + 2 and panes.index("axial") == axial_index
    stepped = panes.point()
    assert stepped is not None and float(np.linalg.norm(stepped - point)) == pytest.approx(2 * 0.488281, abs=1e-4)
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Down)  # the arrows step the pane used last
    assert panes.index("coronal") == coronal_index + 3
    # the window: all three panes drawn anew
    before = panes.panes["sagittal"].image.image.copy()
    window.apply_preset("lung")
    assert not np.array_equal(panes.panes["sagittal"].image.image, before)
    window.set_slab(5.0, "mip")
    assert panes.panes["axial"].shown is not None and panes.panes["axial"].shown.slab_slices > 1
    assert "MIP" in panes.panes["axial"].title.text()


def test_a_double_click_shows_that_plane_alone_at_the_crosshairs_slice(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    window.three_action.trigger()
    panes = window.panes
    press(panes, "axial", pane_point(panes, "axial", 5.5, 3.5))
    coronal_index = panes.index("coronal")
    time.sleep(0.02)
    press(panes, "coronal", pane_point(panes, "coronal", 8.0, 2.5), double=True)
    assert not window.is_three_planes() and window.plane() == "coronal" and window.index() == coronal_index
    assert window.plane_actions["coronal"].isChecked() and not window.three_action.isChecked()
    assert window.measure_action.isEnabled() and window.save_action.isEnabled()
    window.three_action.trigger()
    window.plane_actions["sagittal"].trigger()  # a plane button leaves the layout too
    assert not window.is_three_planes() and window.plane() == "sagittal"
    window.three_action.trigger()
    qtbot.keyClick(window, Qt.Key.Key_O)  # an oblique's line is drawn on one plane: not on the panes
    assert not window.is_oblique_mode() and not window.oblique_action.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_C)
    assert not window.is_curved_mode() and not window.curved_action.isChecked()
    window.three_action.trigger()  # off: the plane shown before, alone
    assert not window.is_three_planes() and window.plane() == "sagittal"


def test_the_image_read_follows_the_crosshair(qtbot, tmp_path: Path) -> None:
    from tests.desktop.reading_room import SCAN_TIMEOUT
    from tests.desktop.test_reformat_window import _reading_ct5n_with_its_reformat

    main, reformat_window = _reading_ct5n_with_its_reformat(qtbot, tmp_path)
    reformat_window.three_action.trigger()
    panes = reformat_window.panes
    press(panes, "coronal", pane_point(panes, "coronal", 8.5, 0.5))  # the top row: the head-most slice
    qtbot.waitUntil(lambda: not main.viewer.is_loading() and main.viewer.cursor_point() is not None,
                    timeout=SCAN_TIMEOUT)
    import pydicom

    highest = max(main.current_series.image_paths,
                  key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    qtbot.waitUntil(lambda: main.viewer.current_path() == highest, timeout=SCAN_TIMEOUT)
    assert main.viewer.cursor_point() == pytest.approx((8.5, panes.panes["axial"].where.image_point(panes.point())[1]),
                                                       abs=0.05)
    assert main.viewer.reference_line() is None  # three slices: none of them is drawn as the reformat's


def test_shift_click_on_the_image_read_puts_the_crosshair_there(qtbot, tmp_path: Path) -> None:
    import pydicom

    from tests.desktop.reading_room import SCAN_TIMEOUT
    from tests.desktop.test_reformat_window import _reading_ct5n_with_its_reformat
    from tests.desktop.test_viewer import click
    from zsmed.dicom.display import image_plane

    main, reformat_window = _reading_ct5n_with_its_reformat(qtbot, tmp_path)
    reformat_window.three_action.trigger()
    main.viewer.go_to(1)
    qtbot.waitUntil(lambda: main.viewer.current_index() == 1 and not main.viewer.is_loading(), timeout=SCAN_TIMEOUT)
    click(qtbot, main.viewer, (12.5, 4.5), Qt.KeyboardModifier.ShiftModifier)
    clicked = main.viewer.cursor_point()
    assert clicked is not None
    read = image_plane(pydicom.dcmread(main.viewer.current_path(), stop_before_pixels=True))
    assert read is not None
    patient = read.patient_point(clicked)
    panes = reformat_window.panes
    point = panes.point()
    assert point is not None and float(np.linalg.norm(point - patient)) <= 0.5  # within half a pixel
    assert all(on_slice(panes, plane, point) for plane in ("axial", "coronal", "sagittal"))
