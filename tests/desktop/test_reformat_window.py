"""The reformat window (View > Reformat, Shift+M) on a real CT series (pydicom's dicomdirtests CT5N: 5 axial
slices 2.5 mm apart): the planes as the patient lies, at true scale in mm, the slider, wheel and keys, the
slab MIP, the window / level, rulers in mm, a series that cannot be reformatted, cancelling, and its place in
the main window."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QWheelEvent

from tests.conftest import dicom_test_file, dicom_test_files
from tests.desktop.reading_room import SCAN_TIMEOUT, make_window, open_and_wait
from zsmed.dicom.volume import decode_in_process, reformat
from zsmed_desktop import theme
from zsmed_desktop.main_window import MainWindow
from zsmed_desktop.reformat_window import MEASURING_TEXT, ReformatWindow

LOAD_TIMEOUT = 60_000  # ms: five slices through the contained decoder on a busy 2-core machine


def ct5n() -> list[Path]:
    files = sorted(p for p in dicom_test_files() if "dicomdirtests/98892001/CT5N/" in p.as_posix())
    if len(files) != 5:
        pytest.skip("pydicom's dicomdirtests CT5N series is not on this machine")
    return files


def shown_window(qtbot, reader: str = "", size: tuple[int, int] | None = None) -> ReformatWindow:
    """A shown reformat window (840 x 900 unless ``size``), decoding through the app's contained decoder, its
    saves by ``reader``: what every reformat test starts from."""
    widget = ReformatWindow(reader=lambda: reader)
    qtbot.addWidget(widget)
    if size is not None:
        widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture()
def window(qtbot) -> ReformatWindow:
    return shown_window(qtbot)


def open_series(qtbot, window: ReformatWindow, paths: list[Path], window_level: tuple[float, float] | None = None
                ) -> None:
    window.show_series(paths, "CT5N", window_level)
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=LOAD_TIMEOUT)


def aspect(window: ReformatWindow) -> float:
    rect = window.image_rect()
    return rect.height() / rect.width()


def test_the_coronal_of_an_axial_ct_at_true_scale_and_its_slices(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    volume = window.volume()
    assert volume is not None and window.message() == ""
    assert window.plane() == "coronal" and window.plane_actions["coronal"].isChecked()
    assert window.count() == 16 and window.index() == 8  # the middle slice first
    shown = window.shown()
    assert shown is not None
    np.testing.assert_array_equal(shown.image, reformat(volume, "coronal", 8).image)
    assert window.rendered_image().shape == (5, 16)  # 5 slices tall, 16 columns wide
    rows, columns = shown.image.shape
    row_mm, column_mm = shown.spacing
    assert (row_mm, column_mm) == pytest.approx((2.5, 0.488281))
    # 5 rows of 2.5 mm against 16 columns of 0.49 mm: taller than wide, not a squashed 5 x 16 strip
    assert aspect(window) == pytest.approx(rows * row_mm / (columns * column_mm)) == pytest.approx(1.6, rel=1e-3)
    assert [window._labels[k].text() for k in ("l", "r", "t", "b")] == ["R", "L", "H", "F"]
    assert window._labels["bl"].text().startswith("Coronal 9/16 · A ")
    # the slider, the wheel's keys and Home / End move through the coronal slices
    window.slider.setValue(3)
    assert window.index() == 3
    np.testing.assert_array_equal(window.shown().image, volume.voxels[::-1, 3, :])
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Down)
    assert window.index() == 4 and window.slider.value() == 4
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.index() == 15 and window.slider_label.text() == "coronal slice 16/16"


def test_switching_planes_shows_each_at_its_own_spacing(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    volume = window.volume()
    assert volume is not None
    window.plane_actions["axial"].trigger()
    assert window.plane() == "axial" and window.count() == 5 and window.slider.maximum() == 4
    window.go_to(1)
    np.testing.assert_array_equal(window.shown().image, volume.voxels[1])
    assert aspect(window) == pytest.approx(1.0)  # square pixels in the axial plane
    assert [window._labels[k].text() for k in ("l", "r", "t", "b")] == ["R", "L", "A", "P"]
    window.plane_actions["sagittal"].trigger()
    assert window.rendered_image().shape == (5, 16)
    assert aspect(window) == pytest.approx(5 * 2.5 / (16 * 0.488281))
    assert [window._labels[k].text() for k in ("l", "r", "t", "b")] == ["A", "P", "H", "F"]
    window.plane_actions["axial"].trigger()
    assert window.index() == 1  # each plane keeps its slice


def test_a_slab_mip_shows_the_brightest_through_it(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    volume = window.volume()
    assert volume is not None
    window.plane_actions["axial"].trigger()
    window.go_to(2)
    single = window.rendered_image().copy()
    assert not window.mode_box.isEnabled()  # no slab: nothing to combine
    window.set_slab(5.0, "mip")  # ±2.5 mm: slices 1 to 3
    assert window.mode_box.isEnabled() and window.mode_box.currentText() == "MIP"
    np.testing.assert_array_equal(window.shown().image, volume.voxels[1:4].max(axis=0))
    assert not np.array_equal(window.rendered_image(), single)
    assert "MIP through 5.0 mm (3 slices)" in window._labels["bl"].text()
    window.set_slab(5.0, "minip")
    np.testing.assert_array_equal(window.shown().image, volume.voxels[1:4].min(axis=0))
    window.slab_box.setValue(0.0)
    np.testing.assert_array_equal(window.rendered_image(), single)


def test_the_window_starts_as_the_viewers_and_follows_presets_and_the_right_drag(qtbot, window: ReformatWindow
                                                                              ) -> None:
    open_series(qtbot, window, ct5n(), (50.0, 350.0))
    assert window.window_level() == (50.0, 350.0)
    # the numbers are in the corner and the item's tooltip: in the box they pushed the bar past the window's width
    assert window.window_box.currentText() == "As in the viewer"
    assert window.window_box.itemData(0, Qt.ItemDataRole.ToolTipRole).endswith("W 350 L 50")
    assert "W 350 L 50 (as in the viewer)" in window._labels["br"].text()
    assert window.presets()[:5] == ["lung", "mediastinum", "bone", "brain", "soft tissue"]  # HU: the CT presets
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert window.window_level() == (-600.0, 1500.0) and window.window_box.currentText() == "Lung (1)"
    before = window.rendered_image().copy()
    window.drag_window(True, 0.0, 0.0)
    window.drag_window(False, -100.0, 40.0)  # narrower and a higher level
    centre, width = window.window_level()
    assert width < 1500.0 and centre > -600.0 and window.window_box.currentText().startswith("Custom")
    assert not np.array_equal(window.rendered_image(), before)
    window.window_box.activated.emit(window.window_box.findData("auto"))
    assert window.window_box.currentText() == "Automatic (0)"


def test_the_wheel_steps_through_the_slices(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    start = window.index()
    centre = window.view.viewport().rect().center()
    event = QWheelEvent(QPointF(centre), QPointF(window.view.viewport().mapToGlobal(centre)), QPoint(0, 0),
                        QPoint(0, -120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    window.view.wheelEvent(event)
    assert window.index() == start + 1


def test_a_series_that_cannot_be_reformatted_says_why_in_the_window(qtbot, window: ReformatWindow,
                                                                    tmp_path: Path) -> None:
    files = ct5n()
    open_series(qtbot, window, files[:2])
    assert window.volume() is None and window.shown() is None
    assert window.message().startswith("This series cannot be reformatted.\n")
    assert f"{files[0].name}: a series of 2 images cannot be reformatted" in window.message()
    assert str(files[0].parent) not in window.message()  # the name; the folder is in the tooltip
    assert window._message_label.isVisible() and not window.plane_actions["axial"].isEnabled()
    notes = tmp_path / "notes.dcm"
    notes.write_text("a report, not an image")
    open_series(qtbot, window, [*files[:3], notes])
    assert "notes.dcm: not a DICOM file" in window.message()
    assert "Traceback" not in window.message()


def test_reading_can_be_cancelled(qtbot, tmp_path: Path) -> None:
    def slow(path: Path) -> np.ndarray:
        time.sleep(0.3)
        return decode_in_process(path)

    window = ReformatWindow(decode=lambda: slow)
    qtbot.addWidget(window)
    window.show()
    window.show_series(ct5n(), "CT5N")
    assert window.is_loading() and window._progress_row.isVisible()
    qtbot.waitUntil(lambda: window.progress.value() >= 6, timeout=LOAD_TIMEOUT)  # the headers, a slice read
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=LOAD_TIMEOUT)
    assert window.volume() is None and window.message() == "Reading the series was cancelled."
    assert not window._progress_row.isVisible()


# --- in the main window -----------------------------------------------------------------------------
def test_shift_m_opens_the_series_read_and_the_window_closes_with_the_main_one(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    for path in ct5n():
        shutil.copy(path, folder / f"ct5n_{path.name}.dcm")
    shutil.copy(dicom_test_file("CT_small.dcm"), folder / "single.dcm")
    main = make_window(qtbot, tmp_path)
    main.show()
    qtbot.waitExposed(main)
    open_and_wait(qtbot, main, [folder])
    action = main.action("reformat")
    assert action.text() == "Reformat (coronal / sagittal / MIP)…" and action.shortcut().toString() == "Shift+M"
    view_menu = next(a.menu() for a in main.menuBar().actions() if a.text() == "&View")
    assert action in view_menu.actions()
    assert dict(main.shortcut_rows())["Shift+M"] == "Reformat (coronal / sagittal / MIP)"
    _choose(qtbot, main, "single.dcm")
    assert not action.isEnabled()  # one image: no volume
    assert main.open_reformat() is None and "at least 3 images" in main.statusBar().currentMessage()
    _choose(qtbot, main, "ct5n_")
    assert action.isEnabled()
    main.viewer.setFocus()
    qtbot.keyClick(main, Qt.Key.Key_M, Qt.KeyboardModifier.ShiftModifier)
    reformat_window = main.reformat
    assert reformat_window is not None and reformat_window.isVisible()
    assert not main.viewer.is_measuring()  # Shift+M is not M
    qtbot.waitUntil(lambda: not reformat_window.is_loading(), timeout=LOAD_TIMEOUT)
    volume = reformat_window.volume()
    assert volume is not None and len(volume.paths) == 5
    assert reformat_window.window_level() == main.viewer.window_level()
    assert reformat_window.windowTitle().startswith("zsmed — reformat: ")
    assert main.open_reformat() is reformat_window and reformat_window.volume() is volume  # the same: not re-read
    main.close()
    assert not reformat_window.isVisible()


def _choose(qtbot, main: MainWindow, file_prefix: str) -> None:
    """Show the series whose first image's file name starts with ``file_prefix``."""
    assert main.index is not None
    refs = [main.browser.series_ref(s.uid) for p in main.index.patients for st in p.studies for s in st.series]
    ref = next(r for r in refs if r and r.image_paths and r.image_paths[0].name.startswith(file_prefix))
    main.browser.select_series(ref.key)
    qtbot.waitUntil(lambda: main.current_series is not None and main.current_series.key == ref.key
                    and main.viewer.current_frame_data() is not None and not main.viewer.is_loading(),
                    timeout=SCAN_TIMEOUT)


def test_the_coronal_window_renders_readably(qtbot, window: ReformatWindow, tmp_path: Path) -> None:
    """The whole window drawn offscreen: the image fills the view's height at its true aspect."""
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    picture = window.grab()
    assert not picture.isNull() and picture.width() >= 800
    assert picture.save(str(tmp_path / "reformat.png"))
    view = window.view.size()
    rect = window.vb.mapViewToDevice(window.image_rect()).boundingRect()
    assert rect.height() == pytest.approx(view.height(), abs=2)  # fitted: as tall as the view
    assert rect.height() / rect.width() == pytest.approx(1.6, rel=0.02)


def _reading_ct5n_with_its_reformat(qtbot, tmp_path: Path) -> tuple[MainWindow, ReformatWindow]:
    """The main window reading CT5N (5 axial slices), its reformat open and shown (coronal)."""
    folder = tmp_path / "study"
    folder.mkdir()
    for path in ct5n():
        shutil.copy(path, folder / f"ct5n_{path.name}.dcm")
    main = make_window(qtbot, tmp_path)
    main.show()
    qtbot.waitExposed(main)
    open_and_wait(qtbot, main, [folder])
    _choose(qtbot, main, "ct5n_")
    reformat_window = main.open_reformat()
    assert reformat_window is not None
    qtbot.waitUntil(lambda: not reformat_window.is_loading() and reformat_window.shown() is not None,
                    timeout=LOAD_TIMEOUT)
    return main, reformat_window


def test_reference_lines_between_the_slice_read_and_the_reformat(qtbot, tmp_path: Path) -> None:
    """The axial slice read is a line across the coronal reformat, at its row; the coronal slice is a line
    across the axial image, at its depth; each follows the other's scrolling."""
    import pydicom

    main, reformat_window = _reading_ct5n_with_its_reformat(qtbot, tmp_path)
    assert reformat_window.plane() == "coronal"
    heads_first = sorted((float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]), p.name)
                         for p in main.current_series.image_paths)[::-1]  # coronal rows: head at the top

    def reformat_row() -> float:
        line = reformat_window.reference_line()
        assert line is not None
        (c0, r0), (c1, r1) = sorted(line)
        assert r0 == pytest.approx(r1) and (c0, c1) == (pytest.approx(0.0), pytest.approx(16.0))  # all across
        return r0

    for index in (0, 3):
        main.viewer.go_to(index)
        qtbot.waitUntil(lambda i=index: main.viewer.current_index() == i and not main.viewer.is_loading(),
                        timeout=SCAN_TIMEOUT)
        name = main.viewer.current_path().name
        assert reformat_row() == pytest.approx([n for _, n in heads_first].index(name) + 0.5)

    header = pydicom.dcmread(main.viewer.current_path(), stop_before_pixels=True)
    y0, row_mm = float(header.ImagePositionPatient[1]), float(header.PixelSpacing[0])
    for index in (8, 11):
        reformat_window.go_to(index)
        line = main.viewer.reference_line()
        assert line is not None
        (c0, r0), (c1, r1) = sorted(line)
        shown = reformat_window.shown()
        assert shown is not None and shown.index == index
        assert r0 == pytest.approx(r1) and r0 == pytest.approx((shown.location_mm - y0) / row_mm + 0.5)
        assert (c0, c1) == (pytest.approx(0.0), pytest.approx(16.0))  # the coronal spans the slice's width
    reformat_window.close()
    qtbot.waitUntil(lambda: main.viewer.reference_line() is None, timeout=SCAN_TIMEOUT)


# --- rulers ------------------------------------------------------------------------------------------
def screen_point(window: ReformatWindow, column: float, row: float) -> QPointF:
    """Where point (column, row) of the reformat shown is in the view's viewport (screen pixels)."""
    shown = window.shown()
    assert shown is not None
    row_mm, column_mm = shown.spacing
    point = window.vb.mapViewToDevice(QPointF(column * column_mm, row * row_mm))
    assert point is not None
    return point


def mouse_drag(window: ReformatWindow, start: QPointF, end: QPointF,
               button: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
    """A drag with ``button`` from ``start`` to ``end`` (viewport pixels), in a few moves, as a hand makes it."""
    port = window.view.viewport()

    def send(kind: QEvent.Type, pos: QPointF, changed: Qt.MouseButton, held: Qt.MouseButton) -> None:
        window.view.viewportEvent(QMouseEvent(kind, pos, port.mapToGlobal(pos), changed, held,
                                              Qt.KeyboardModifier.NoModifier))

    send(QEvent.Type.MouseButtonPress, start, button, button)
    for step in range(1, 6):
        time.sleep(0.012)  # pyqtgraph drops moves closer together than its mouse rate limit (10 ms)
        send(QEvent.Type.MouseMove, start + (end - start) * (step / 5), Qt.MouseButton.NoButton, button)
    send(QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)


def ruler_labels(window: ReformatWindow) -> list[pg.TextItem]:
    """The rulers' labels on the screen, oldest first."""
    return [item for item in window.vb.childGroup.childItems() if isinstance(item, pg.TextItem) and item.isVisible()]


def ruler_lines(window: ReformatWindow) -> list[pg.PlotCurveItem]:
    """The rulers' lines on the screen (the view's mm), oldest first; the reference line is not set here."""
    return [item for item in window.vb.childGroup.childItems()
            if isinstance(item, pg.PlotCurveItem) and item.isVisible()]


def test_a_ruler_on_the_coronal_measures_each_axis_by_its_own_mm(qtbot, window: ReformatWindow) -> None:
    """On the coronal of 2.5 mm axial slices of 0.49 mm pixels: down = slices, across = pixels."""
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    shown = window.shown()
    assert shown is not None and shown.plane == "coronal" and shown.image.shape == (5, 16)
    row_mm, column_mm = shown.spacing
    assert (row_mm, column_mm) == pytest.approx((2.5, 0.488281))
    vertical = window.measure((8.0, 0.5), (8.0, 4.5))  # across 4 rows: 4 slices
    assert vertical is not None
    assert vertical.length_mm == pytest.approx(4 * 2.5) and vertical.text == "10.0 mm"
    # the series is 16 pixels wide: a horizontal ruler across all 16 columns
    horizontal = window.measure((0.0, 2.5), (16.0, 2.5))
    assert horizontal is not None
    assert horizontal.length_mm == pytest.approx(16 * 0.488281) and horizontal.text == "7.8 mm"
    diagonal = window.measure((2.0, 0.5), (14.0, 4.5))
    expected = float(np.hypot(12 * column_mm, 4 * row_mm))  # not hypot(12, 4) pixels of any one size
    assert diagonal is not None and diagonal.length_mm == pytest.approx(expected)
    assert diagonal.text == f"{expected:.1f} mm" == "11.6 mm"
    assert (diagonal.start, diagonal.end) == ((2.0, 0.5), (14.0, 4.5))  # kept in the image's pixels
    assert window.measurements() == [vertical, horizontal, diagonal]
    assert [label.textItem.toPlainText() for label in ruler_labels(window)] == ["10.0 mm", "7.8 mm", "11.6 mm"]
    # drawn in the view's mm, where the image lies at its true size
    xs, ys = ruler_lines(window)[0].getData()
    np.testing.assert_allclose(xs, [8 * column_mm, 8 * column_mm])
    np.testing.assert_allclose(ys, [1.25, 11.25])


def test_the_left_drag_pans_and_while_measuring_draws_a_ruler(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    fitted = window.vb.viewRect()
    mouse_drag(window, screen_point(window, 4, 1), screen_point(window, 12, 1))
    panned = window.vb.viewRect()
    assert panned.center().x() < fitted.center().x() - 1  # not measuring: the image moved with the mouse
    assert panned.width() == pytest.approx(fitted.width()) and window.measurements() == []
    window.fit()
    window.measure_action.trigger()
    assert window.is_measuring() and window.view.viewport().cursor().shape() == Qt.CursorShape.CrossCursor
    mouse_drag(window, screen_point(window, 4, 0.5), screen_point(window, 4, 4.5))
    assert window.vb.viewRect() == fitted  # measuring: no pan
    (ruler,) = window.measurements()
    assert ruler.start == pytest.approx((4.0, 0.5), abs=0.02) and ruler.end == pytest.approx((4.0, 4.5), abs=0.02)
    assert ruler.length_mm == pytest.approx(10.0, abs=0.05) and ruler.text == "10.0 mm"
    # over its end the cursor says a press takes hold of it; there, the end follows, the start stays
    time.sleep(0.012)  # pyqtgraph's mouse rate limit
    over_end = screen_point(window, 4, 4.5) + QPointF(2, 0)
    window.view.viewportEvent(QMouseEvent(QEvent.Type.MouseMove, over_end, window.view.viewport().mapToGlobal(over_end),
                                          Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                          Qt.KeyboardModifier.NoModifier))
    assert window.view.viewport().cursor().shape() == Qt.CursorShape.SizeAllCursor
    mouse_drag(window, screen_point(window, 4, 4.5), screen_point(window, 10, 4.5))
    (moved,) = window.measurements()
    assert moved.start == pytest.approx((4.0, 0.5), abs=0.02) and moved.end == pytest.approx((10.0, 4.5), abs=0.02)
    assert moved.length_mm == pytest.approx(float(np.hypot(6 * 0.488281, 4 * 2.5)), abs=0.05)
    # dragged off the image, a ruler ends at its edge; a press off it draws nothing
    mouse_drag(window, screen_point(window, 12, 2), screen_point(window, 30, 2))
    assert window.measurements()[-1].end == pytest.approx((16.0, 2.0), abs=0.02)
    port = window.view.viewport()
    mouse_drag(window, QPointF(4, port.height() / 2), QPointF(40, port.height() / 2))
    assert len(window.measurements()) == 2
    # the right drag still windows, and draws nothing
    level = window.window_level()
    mouse_drag(window, screen_point(window, 8, 2), screen_point(window, 8, 2) + QPointF(60, 30),
               Qt.MouseButton.RightButton)
    assert window.window_level() != level and len(window.measurements()) == 2


def test_a_ruler_is_shown_on_the_image_it_was_drawn_on_only(qtbot, window: ReformatWindow) -> None:
    """Kept per plane, slice and slab: another slice, a slab or another plane hides it; back, it is there."""
    open_series(qtbot, window, ct5n())
    assert window.index() == 8
    ruler = window.measure((8.0, 0.5), (8.0, 4.5))

    def shown_texts() -> list[str]:
        return [label.textItem.toPlainText() for label in ruler_labels(window)]

    window.step(1)
    assert window.measurements() == [] and shown_texts() == [] and ruler_lines(window) == []
    other = window.measure((2.0, 1.0), (6.0, 1.0))  # slice 9's own
    assert other is not None and shown_texts() == [other.text]
    window.step(-1)
    assert window.measurements() == [ruler] and shown_texts() == ["10.0 mm"]
    window.set_slab(5.0, "mip")  # a MIP through the slices around is another image
    assert window.measurements() == [] and shown_texts() == []
    window.set_slab(0.0)
    assert window.measurements() == [ruler]
    window.plane_actions["axial"].trigger()
    assert window.measurements() == [] and shown_texts() == []
    axial = window.measure((0.0, 0.0), (3.0, 4.0))  # square 0.49 mm pixels: 5 pixels
    assert axial is not None and axial.length_mm == pytest.approx(5 * 0.488281)
    window.plane_actions["coronal"].trigger()
    assert window.index() == 8 and window.measurements() == [ruler] and shown_texts() == ["10.0 mm"]
    # another series: none of these rulers measures it
    open_series(qtbot, window, ct5n()[:2])
    assert window.measurements() == [] and ruler_lines(window) == [] and ruler_labels(window) == []
    open_series(qtbot, window, ct5n())
    assert window.index() == 8 and window.measurements() == [] and ruler_lines(window) == []


def test_m_toggles_measuring_delete_and_esc_remove_the_rulers_and_the_keys_still_work(qtbot, window: ReformatWindow
                                                                                     ) -> None:
    open_series(qtbot, window, ct5n())
    window.setFocus()
    assert not window.is_measuring() and MEASURING_TEXT not in window._labels["br"].text()
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.is_measuring() and window.measure_action.isChecked()
    assert window._labels["br"].text().startswith(MEASURING_TEXT)  # the corner says what a left drag does
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert not window.is_measuring() and not window.measure_action.isChecked()
    assert MEASURING_TEXT not in window._labels["br"].text()
    qtbot.keyClick(window, Qt.Key.Key_M)
    window.measure((8.0, 0.5), (8.0, 4.5))
    window.measure((2.0, 1.0), (6.0, 1.0))
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert window.measurements() == [] and ruler_labels(window) == [] and window.is_measuring()
    kept = window.measure((8.0, 0.5), (8.0, 4.5))
    window.step(1)
    window.measure((2.0, 1.0), (6.0, 1.0))
    qtbot.keyClick(window, Qt.Key.Key_Escape)  # this slice's rulers, and measuring, stop
    assert window.measurements() == [] and not window.is_measuring() and not window.measure_action.isChecked()
    assert window.view.viewport().cursor().shape() == Qt.CursorShape.ArrowCursor
    window.step(-1)
    assert window.measurements() == [kept]  # another slice's rulers are not removed unseen
    # the window's keys as before
    qtbot.keyClick(window, Qt.Key.Key_Down)
    assert window.index() == 9
    qtbot.keyClick(window, Qt.Key.Key_Up)
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert window.window_box.currentText() == "Lung (1)"
    qtbot.keyClick(window, Qt.Key.Key_0)
    assert window.window_box.currentText() == "Automatic (0)"
    window.vb.scaleBy((0.5, 0.5))
    qtbot.keyClick(window, Qt.Key.Key_F)
    rect = window.vb.mapViewToDevice(window.image_rect()).boundingRect()
    assert rect.height() == pytest.approx(window.view.height(), abs=2)  # fitted again


def test_the_bar_fits_the_minimum_width_and_a_ruler_renders_readably(qtbot, window: ReformatWindow,
                                                                     tmp_path: Path) -> None:
    """At its narrowest, the window shows its whole bar (the presets' longest name chosen) and a ruler's
    label inside the view, off the corner texts, over a yellow line."""
    window.setStyleSheet(theme.stylesheet("dark"))  # the app's rules (4 px between the bar's items), on it alone
    open_series(qtbot, window, ct5n(), (-600.0, 1500.0))
    window.drag_window(True, 0.0, 0.0)
    window.drag_window(False, 30.0, 10.0)  # "Custom": the presets' box at its widest
    window.resize(window.minimumWidth(), 700)
    qtbot.waitUntil(lambda: window.width() == window.minimumWidth())
    assert window.toolbar.sizeHint().width() <= window.minimumWidth() == 800
    window.set_measuring(True)
    ruler = window.measure((8.0, 0.5), (8.0, 4.5))
    assert ruler is not None
    picture = window.grab()
    assert picture.save(str(tmp_path / "measure.png"))
    port = window.view.viewport()
    (label,) = ruler_labels(window)
    box = QRectF(window.view.mapFromScene(label.sceneBoundingRect()).boundingRect())
    assert QRectF(port.rect()).contains(box)  # not cut off by the view's edge
    for corner in window._labels.values():
        if corner.isVisible():
            assert not box.intersects(QRectF(port.mapFrom(window.view, corner.pos()), corner.size().toSizeF()))
    middle = port.mapTo(window, screen_point(window, 8.0, 2.5).toPoint())
    image = picture.toImage()
    near = [QColor(image.pixel(middle.x() + dx, middle.y())) for dx in range(-3, 4)]
    assert any(c.red() > 200 and c.green() > 170 and c.blue() < 120 for c in near)  # the yellow line is there


def shift_click(window: ReformatWindow, at: QPointF) -> None:
    """A left click with Shift held at ``at`` (viewport pixels): the 3D cursor."""
    port = window.view.viewport()
    left, none, shift = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.ShiftModifier
    for kind, held in ((QEvent.Type.MouseButtonPress, left), (QEvent.Type.MouseButtonRelease, none)):
        window.view.viewportEvent(QMouseEvent(kind, at, port.mapToGlobal(at), left, held, shift))


def test_the_3d_cursor_between_the_image_read_and_the_reformat(qtbot, tmp_path: Path) -> None:
    """Shift+click on the axial slice read: the coronal reformat goes to its slice through that point, marked
    where the point is; Shift+click on the reformat: the image read goes to the axial slice through it."""
    import pydicom

    from tests.desktop.test_viewer import click
    from zsmed.dicom.display import image_plane

    main, reformat_window = _reading_ct5n_with_its_reformat(qtbot, tmp_path)
    main.viewer.go_to(2)
    qtbot.waitUntil(lambda: main.viewer.current_index() == 2 and not main.viewer.is_loading(), timeout=SCAN_TIMEOUT)

    click(qtbot, main.viewer, (4.0, 3.0), Qt.KeyboardModifier.ShiftModifier)
    clicked = main.viewer.cursor_point()
    assert clicked == pytest.approx((4.0, 3.0), abs=0.5)
    read = image_plane(pydicom.dcmread(main.viewer.current_path(), stop_before_pixels=True))
    assert read is not None
    patient = read.patient_point(clicked)
    coronal = reformat_window.current_plane()
    assert coronal is not None and reformat_window.shown().index != 8  # moved from the middle slice
    assert abs(float(coronal.normal @ (patient - np.asarray(coronal.position)))) <= 0.4883 / 2 + 1e-6  # its slice
    assert reformat_window.cursor_point() == pytest.approx(coronal.image_point(patient), abs=1e-6)
    assert reformat_window._cursor_item.isVisible()
    reformat_window.step(1)  # another coronal slice: the cross stays with its own
    assert reformat_window.cursor_point() is None and not reformat_window._cursor_item.isVisible()

    shift_click(reformat_window, screen_point(reformat_window, 8.0, 4.5))  # the lowest row: the feet-most slice
    qtbot.waitUntil(lambda: not main.viewer.is_loading() and main.viewer.cursor_point() is not None,
                    timeout=SCAN_TIMEOUT)
    lowest = min(main.current_series.image_paths,
                 key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    qtbot.waitUntil(lambda: main.viewer.current_path() == lowest, timeout=SCAN_TIMEOUT)
    assert main.viewer._cursor_item.isVisible()


# --- regions of interest -----------------------------------------------------------------------------
def test_a_region_on_the_coronal_gives_its_area_in_mm2_and_hu_of_the_image_shown(qtbot, window: ReformatWindow
                                                                                  ) -> None:
    """An ellipse over 12 columns x 4 rows of the coronal (0.49 mm pixels across, 2.5 mm slices down): its
    area from each axis's own mm, its HU those of the reformat's pixels inside, on its slice only."""
    from zsmed.dicom.display import ellipse_mask

    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    shown = window.shown()
    assert shown is not None and shown.plane == "coronal"
    region = window.roi((2.0, 0.5), (14.0, 4.5))
    assert region is not None
    row_mm, column_mm = shown.spacing
    assert region.statistics.area == pytest.approx(np.pi * 6 * 2 * row_mm * column_mm)
    inside = shown.image[ellipse_mask(shown.image.shape, (2.0, 0.5), (14.0, 4.5))]
    assert region.statistics.count == inside.size > 0
    assert region.statistics.mean == pytest.approx(float(inside.mean()))
    assert region.statistics.sd == pytest.approx(float(inside.std(ddof=1)))
    assert (region.statistics.minimum, region.statistics.maximum) == (float(inside.min()), float(inside.max()))
    assert region.statistics.value_unit == "HU" and " HU" in region.text and region.text.startswith("Area ")
    assert window.rois() == [region] and window.measurements() == []  # a region is not a ruler
    (label,) = ruler_labels(window)
    assert label.textItem.toPlainText() == region.text
    window.step(1)  # another slice: the region stays with its own
    assert window.rois() == [] and ruler_labels(window) == []
    window.step(-1)
    assert window.rois() == [region]
    # on a slab the values are the slab's: a 5 mm MIP's pixels
    window.set_slab(5.0, "mip")
    slab = window.shown()
    assert slab is not None and slab.slab_slices > 1 and window.rois() == []  # another image
    on_slab = window.roi((2.0, 0.5), (14.0, 4.5))
    assert on_slab is not None
    assert on_slab.statistics.mean == pytest.approx(float(slab.image[ellipse_mask(slab.image.shape, (2.0, 0.5),
                                                                                  (14.0, 4.5))].mean()))
    assert on_slab.statistics.mean >= region.statistics.mean  # a MIP is never darker than its centre slice


def test_e_draws_regions_with_the_left_drag_and_m_switches_to_rulers(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_E)
    assert window.is_region_mode() and not window.is_measuring() and window.region_action.isChecked()
    assert window.view.viewport().cursor().shape() == Qt.CursorShape.CrossCursor
    fitted = window.vb.viewRect()
    mouse_drag(window, screen_point(window, 3, 1), screen_point(window, 11, 4))
    assert window.vb.viewRect() == fitted  # no pan
    (region,) = window.rois()
    assert region.start == pytest.approx((3.0, 1.0), abs=0.05) and region.end == pytest.approx((11.0, 4.0), abs=0.05)
    mouse_drag(window, screen_point(window, 6, 2), screen_point(window, 6, 2) + QPointF(1, 1))  # a jittery click
    assert len(window.rois()) == 1
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.is_measuring() and not window.is_region_mode() and not window.region_action.isChecked()
    mouse_drag(window, screen_point(window, 8, 0.5), screen_point(window, 8, 4.5))
    assert len(window.measurements()) == 1 and len(window.rois()) == 1
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert window.measurements() == [] and window.rois() == []
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.is_marking()


def test_a_drag_inside_a_region_moves_it_whole_and_keeps_it_on_the_image(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    window.set_region_mode(True)
    drawn = window.roi((2.0, 1.0), (6.0, 3.0))
    assert drawn is not None
    time.sleep(0.012)
    inside = screen_point(window, 4.0, 2.0)
    window.view.viewportEvent(QMouseEvent(QEvent.Type.MouseMove, inside, window.view.viewport().mapToGlobal(inside),
                                          Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                          Qt.KeyboardModifier.NoModifier))
    assert window.view.viewport().cursor().shape() == Qt.CursorShape.SizeAllCursor  # a press there moves it
    mouse_drag(window, inside, screen_point(window, 10.0, 3.0))  # 6 columns right, 1 row down
    (moved,) = window.rois()
    assert moved.start == pytest.approx((8.0, 2.0), abs=0.05) and moved.end == pytest.approx((12.0, 4.0), abs=0.05)
    shown = window.shown()
    assert shown is not None
    assert moved.statistics.area == pytest.approx(drawn.statistics.area, rel=0.02)  # the same size ...
    assert moved.statistics.mean != drawn.statistics.mean  # ... over other tissue: its figures are the new place's
    mouse_drag(window, screen_point(window, 10.0, 3.0), screen_point(window, 30.0, 9.0))  # past the corner
    (kept,) = window.rois()
    assert kept.end == pytest.approx((16.0, 5.0), abs=1e-6) and kept.start == pytest.approx((12.0, 3.0), abs=1e-6)


def test_the_reformat_opens_where_the_reader_last_had_it(qtbot, tmp_path: Path) -> None:
    """On a second monitor, say: the place and size are kept when it closes and given back next time (the
    settings are the app's own, read again by a new main window)."""
    main, reformat_window = _reading_ct5n_with_its_reformat(qtbot, tmp_path)
    # within the offscreen screen (800 pixels wide: Qt keeps a restored window on its screen)
    reformat_window.resize(800, 560)
    qtbot.waitUntil(lambda: reformat_window.size().height() == 560)
    reformat_window.close()
    main.settings.sync()
    assert main.settings.value("reformat/geometry") is not None
    again = make_window(qtbot, tmp_path / "again", settings=main.settings)
    again.show()
    open_and_wait(qtbot, again, [tmp_path / "study"])
    _choose(qtbot, again, "ct5n_")
    reopened = again.open_reformat()
    assert reopened is not None and reopened is not reformat_window
    assert (reopened.width(), reopened.height()) == (800, 560)  # not the first opening's 840 x 900


def test_corner_texts_keep_to_their_half_of_a_narrow_view(qtbot) -> None:
    """On a laptop's narrow viewer a long series title (top right) wraps within its half instead of running
    into the patient's name (top left)."""
    from PySide6.QtWidgets import QLabel, QWidget

    from zsmed_desktop.image_view import place_texts

    view = QWidget()
    qtbot.addWidget(view)
    view.resize(520, 400)
    labels = {name: QLabel(view) for name in ("tl", "tr", "bl", "br")}
    labels["tl"].setText("DOE^JANE MARIE-LOUISE [1234567890]")
    labels["tr"].setText("DOE, JANE  ·  2001-01-01  ·  Series 5  ·  CT  ·  SmartScore - Gated 0.5 sec")
    labels["bl"].setText("Image 1/5")
    labels["br"].setText("W 400 L 40")
    place_texts(view, labels, QLabel(view))
    left, right = labels["tl"].geometry(), labels["tr"].geometry()
    assert not left.intersects(right) and right.right() <= view.width()
    assert right.height() > labels["br"].height()  # wrapped onto more lines, none of it cut
    assert labels["br"].width() < 260 and labels["bl"].geometry().y() > right.bottom()


def test_the_edge_letters_clear_a_corner_text_that_reaches_the_middle(qtbot) -> None:
    """The patient's direction at the top (and bottom) stays at the middle of its edge, below (above) a corner text
    long enough to reach it instead of drawn over it; where the corners are short it keeps to the edge."""
    from PySide6.QtWidgets import QLabel, QWidget

    from zsmed_desktop.image_view import TEXT_MARGIN, place_texts

    view = QWidget()
    qtbot.addWidget(view)
    view.resize(640, 480)
    labels = {name: QLabel(view) for name in ("tl", "tr", "bl", "br", "l", "r", "t", "b")}
    for name, letter in (("l", "A"), ("r", "P"), ("t", "H"), ("b", "F")):
        labels[name].setText(letter)
    labels["tl"].setText("Doe Peter [98890234]")
    labels["tr"].setText("Doe, Peter  ·  2003-05-05  ·  Series 700  ·  MR  ·  ANGIO Projected\nW 359 L 149")
    labels["bl"].setText("Image 1/7")
    labels["br"].setText("Zoom 4044 %  ·  Pixel 0.391 x 0.391 mm  ·  Thickness 1.2 mm  ·  16 x 16")
    place_texts(view, labels, QLabel(view))
    top, bottom = labels["t"].geometry(), labels["b"].geometry()
    assert not top.intersects(labels["tr"].geometry()) and top.top() > labels["tr"].geometry().bottom()
    assert not bottom.intersects(labels["br"].geometry()) and bottom.bottom() < labels["br"].geometry().top()
    assert abs(top.center().x() - view.width() // 2) <= 2  # still at the middle of its edge
    labels["tr"].setText("W 359 L 149")
    labels["br"].setText("16 x 16")
    place_texts(view, labels, QLabel(view))
    assert labels["t"].y() == TEXT_MARGIN and labels["b"].geometry().bottom() == view.height() - TEXT_MARGIN - 1


def test_p_plays_through_the_slices_looping_and_a_slice_chosen_stops_it(qtbot, window: ReformatWindow) -> None:
    open_series(qtbot, window, ct5n())
    window.plane_actions["axial"].trigger()  # 5 slices: the loop comes round quickly
    window.go_to(3)
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_P)
    assert window.is_playing() and "Cine 10 fps (P: stop)" in window._labels["br"].text()
    seen: set[int] = set()
    qtbot.waitUntil(lambda: seen.add(window.index()) or seen >= {0, 1, 2, 3, 4}, timeout=5_000)  # round again
    window.step(1)  # the wheel, the arrows, the slider: the reader's slice
    assert not window.is_playing() and "Cine" not in window._labels["br"].text()
    stopped = window.index()
    qtbot.wait(300)
    assert window.index() == stopped
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.keyClick(window, Qt.Key.Key_P)
    assert not window.is_playing()
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.is_playing()
    window.plane_actions["coronal"].trigger()  # another plane: from its own slice, not playing
    assert not window.is_playing()
