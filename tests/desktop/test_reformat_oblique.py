"""Oblique reformats in the reformat window (O, or the Oblique button) on pydicom's real CT series CT5N: a line
dragged on the axial gives the plane through it square to the axial, shown from the slice through the line;
the plane buttons go back and forth; rulers measure on it in mm; it is saved for the PACS with its own
orientation; another series forgets it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from tests.desktop.test_reformat_angles import click
from tests.desktop.test_reformat_window import (
    ct5n,
    mouse_drag,
    open_series,
    ruler_lines,
    screen_point,
    shown_window,
)
from zsmed.dicom.volume import Oblique, reformat, reformat_plane
from zsmed_desktop.reformat_window import OBLIQUE_TEXT, ReformatWindow

SAVE_TIMEOUT = 60_000  # ms


@pytest.fixture()
def window(qtbot) -> ReformatWindow:
    return shown_window(qtbot, reader="Doe, Jane")


def axial_point(window: ReformatWindow, column: float, row: float) -> np.ndarray:
    """Where point (column, row) of the axial shown is in the patient."""
    plane = window.current_plane()
    assert plane is not None
    return np.asarray(plane.patient_point((column, row)))


def test_a_line_dragged_on_the_axial_shows_the_plane_through_it_square_to_the_axial(qtbot, window: ReformatWindow
                                                                                     ) -> None:
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    window.plane_actions["axial"].trigger()
    window.setFocus()
    ends = [axial_point(window, 2.0, 2.0), axial_point(window, 14.0, 10.0)]
    qtbot.keyClick(window, Qt.Key.Key_O)
    assert window.is_oblique_mode() and window.oblique_action.isChecked()
    assert not window.plane_actions["axial"].isChecked()  # the button says a plane is being drawn
    assert window._labels["br"].text().startswith(OBLIQUE_TEXT)
    mouse_drag(window, screen_point(window, 2.0, 2.0), screen_point(window, 14.0, 10.0))
    plane = window.plane()
    assert isinstance(plane, Oblique) and window.oblique() == plane
    assert not window.is_oblique_mode() and window.oblique_action.isChecked()  # the tool off, the plane shown
    assert ruler_lines(window) == []  # the line it was drawn with is gone
    normal = np.asarray(plane.normal)
    assert normal @ [0.0, 0.0, 1.0] == pytest.approx(0.0, abs=1e-9)  # square to the axial
    through = reformat_plane(window.volume(), plane, window.index())  # type: ignore[arg-type]
    assert window.index() == plane.through
    for end in ends:  # the line's ends (as the drag placed them) lie on the slice shown
        assert (end - np.asarray(through.position)) @ normal == pytest.approx(0.0, abs=0.05)
    shown = window.shown()
    assert shown is not None and shown.spacing == (plane.pixel_mm, plane.pixel_mm)
    assert shown.edges[2:] == ("H", "F")  # turned as the coronal it is nearest: the head up
    assert window._labels["bl"].text().startswith(f"Oblique {plane.nearest} {plane.through + 1}/{plane.count}")
    assert "through the line" in window._labels["bl"].text()
    assert window.slider.maximum() == plane.count - 1
    window.step(3)
    assert f"{3 * plane.step_mm:.1f} mm from the line" in window._labels["bl"].text()
    np.testing.assert_array_equal(window.shown().image, reformat(window.volume(), plane, plane.through + 3).image)  # type: ignore[union-attr, arg-type]


def test_the_plane_buttons_go_back_and_forth_and_a_ruler_measures_on_the_oblique(qtbot, window: ReformatWindow
                                                                                 ) -> None:
    open_series(qtbot, window, ct5n())
    window.plane_actions["axial"].trigger()
    plane = window.draw_oblique((2.0, 8.0), (14.0, 4.0))
    assert plane is not None and window.plane() == plane
    ruler = window.measure((1.0, 1.0), (11.0, 1.0))  # square pixels of the finest spacing: 10 of them
    assert ruler is not None and ruler.length_mm == pytest.approx(10 * plane.pixel_mm)
    window.step(2)
    window.plane_actions["axial"].trigger()
    assert window.plane() == "axial" and window.plane_actions["axial"].isChecked()
    assert not window.oblique_action.isChecked() and window.measurements() == []
    window.oblique_action.trigger()  # back to the oblique, at its slice, with its ruler
    assert window.plane() == plane and window.index() == plane.through + 2 and window.oblique_action.isChecked()
    window.step(-2)
    assert window.measurements() == [ruler]
    window.oblique_action.trigger()  # on the oblique: a new line (a double oblique)
    assert window.is_oblique_mode()
    click(qtbot, window, screen_point(window, 5.0, 5.0))  # a click is not a line: nothing changes
    assert window.plane() == plane and window.is_oblique_mode()
    mouse_drag(window, screen_point(window, 3.0, 2.0), screen_point(window, 12.0, 9.0))
    double = window.plane()
    assert isinstance(double, Oblique) and double != plane and window.oblique() == double
    assert np.asarray(double.normal) @ np.asarray(plane.normal) == pytest.approx(0.0, abs=1e-9)  # square to it
    assert window.draw_oblique((4.0, 4.0), (4.0, 4.0)) is None and window.plane() == double  # no line, no plane
    assert window.status_bar.currentMessage().startswith("No oblique plane: an oblique plane needs a line")


def test_an_oblique_image_is_saved_for_the_pacs_with_its_own_orientation(qtbot, window: ReformatWindow,
                                                                          tmp_path: Path) -> None:
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    window.plane_actions["axial"].trigger()
    plane = window.draw_oblique((2.0, 2.0), (14.0, 10.0))
    assert plane is not None
    with qtbot.waitSignal(window.saved, timeout=SAVE_TIMEOUT) as signal:
        window.save_for_pacs(None, tmp_path)
    _message, folder, warning, _files = signal.args
    assert not warning and "oblique" in Path(folder).name
    (image,) = Path(folder).glob("MPR_*.dcm")
    ds = pydicom.dcmread(image)
    where = window.current_plane()
    assert where is not None
    assert [float(v) for v in ds.ImageOrientationPatient] == pytest.approx([*plane.right, *plane.down], abs=1e-6)
    assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx(list(where.position), abs=1e-3)
    assert (ds.Rows, ds.Columns) == (plane.rows, plane.columns)
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([plane.pixel_mm] * 2)
    assert ds.SeriesDescription.startswith("zsmed oblique")
    shown = window.shown()
    assert shown is not None
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(values, shown.image, atol=float(ds.RescaleSlope))


def test_another_series_forgets_the_oblique(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    window.plane_actions["axial"].trigger()
    plane = window.draw_oblique((2.0, 2.0), (14.0, 10.0))
    assert plane is not None
    open_series(qtbot, window, ct5n()[:4])
    assert window.oblique() is None and window.plane() == plane.nearest
    assert window.plane_actions[plane.nearest].isChecked() and not window.oblique_action.isChecked()
    window.oblique_action.trigger()  # none to go back to: the tool that draws one
    assert window.is_oblique_mode()


def test_the_image_read_shows_where_the_oblique_cuts_it(qtbot, tmp_path: Path) -> None:
    """Drawn on the axial, the oblique cuts the axial image read along the line drawn: its dashed reference line
    there passes through the line's ends."""
    from tests.desktop.test_reformat_window import _reading_ct5n_with_its_reformat

    main, reformat_window = _reading_ct5n_with_its_reformat(qtbot, tmp_path)
    reformat_window.plane_actions["axial"].trigger()
    plane = reformat_window.draw_oblique((2.0, 2.0), (14.0, 10.0))
    assert plane is not None
    line = main.viewer.reference_line()
    assert line is not None
    (c0, r0), (c1, r1) = line
    for column, row in ((2.0, 2.0), (14.0, 10.0)):  # on the line through the reference line's ends
        assert (c1 - c0) * (row - r0) - (r1 - r0) * (column - c0) == pytest.approx(0.0, abs=1e-3)
    assert max(abs(c1 - c0), abs(r1 - r0)) > 12.0  # across the image, not a point


def test_the_3d_cursor_finds_its_slice_of_the_oblique(qtbot, tmp_path: Path) -> None:
    """Shift+click on the axial read: the oblique goes to its slice through that point, marked there."""
    from tests.desktop.reading_room import SCAN_TIMEOUT
    from tests.desktop.test_reformat_window import _reading_ct5n_with_its_reformat
    from tests.desktop.test_viewer import click as viewer_click
    from zsmed.dicom.display import image_plane

    main, reformat_window = _reading_ct5n_with_its_reformat(qtbot, tmp_path)
    reformat_window.plane_actions["axial"].trigger()
    plane = reformat_window.draw_oblique((2.0, 2.0), (14.0, 10.0))
    assert plane is not None
    main.viewer.go_to(2)
    qtbot.waitUntil(lambda: main.viewer.current_index() == 2 and not main.viewer.is_loading(), timeout=SCAN_TIMEOUT)
    viewer_click(qtbot, main.viewer, (12.0, 3.0), Qt.KeyboardModifier.ShiftModifier)  # off the line drawn
    clicked = main.viewer.cursor_point()
    assert clicked is not None
    read = image_plane(pydicom.dcmread(main.viewer.current_path(), stop_before_pixels=True))
    assert read is not None
    patient = read.patient_point(clicked)
    here = reformat_window.current_plane()
    assert here is not None and reformat_window.plane() == plane and reformat_window.index() != plane.through
    assert abs(float(here.normal @ (patient - np.asarray(here.position)))) <= plane.step_mm / 2 + 1e-6
    assert reformat_window.cursor_point() == pytest.approx(here.image_point(patient), abs=1e-6)
    assert reformat_window._cursor_item.isVisible()


def test_ctrl_arrows_tilt_the_plane_about_the_middle_of_the_view(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    window.setFocus()
    coronal = window.current_plane()
    assert coronal is not None
    normal = np.asarray(coronal.normal)  # the reader looks along it (a coronal from the front: backwards)
    middle = window.vb.viewRect().center()
    centre = np.asarray(coronal.patient_point((middle.x() / coronal.spacing[1], middle.y() / coronal.spacing[0])))
    qtbot.keyClick(window, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    plane = window.plane()
    assert isinstance(plane, Oblique) and plane.nearest == "coronal" and window.oblique_action.isChecked()
    assert np.asarray(plane.down) @ normal == pytest.approx(-np.sin(np.radians(5.0)))  # the top tipped away
    assert np.asarray(plane.right) == pytest.approx(np.asarray(coronal.row_direction))
    here = window.current_plane()
    assert here is not None and (centre - np.asarray(here.position)) @ np.asarray(here.normal) == pytest.approx(0.0)
    kept = window.vb.viewRect().center()  # the point turned about stays in the middle of the view
    assert np.asarray(here.patient_point((kept.x() / here.spacing[1], kept.y() / here.spacing[0]))) == pytest.approx(
        centre, abs=1e-3)
    qtbot.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)  # back
    back = window.plane()
    assert isinstance(back, Oblique) and np.asarray(back.down) == pytest.approx(np.asarray(coronal.column_direction))
    shift_ctrl = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window, Qt.Key.Key_Right, shift_ctrl)  # 1 degree, the right side away
    swung = window.plane()
    assert isinstance(swung, Oblique) and np.asarray(swung.right) @ normal == pytest.approx(np.sin(np.radians(1.0)))
    index = window.index()
    qtbot.keyClick(window, Qt.Key.Key_Right)  # without Ctrl the arrows still step the slices
    assert window.index() == index + 1 and window.plane() == swung
