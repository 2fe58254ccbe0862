"""The reformat window (View > Reformat, Shift+M) on a real CT series (pydicom's dicomdirtests CT5N: 5 axial
slices 2.5 mm apart): the planes as the patient lies, at true scale in mm, the slider, wheel and keys, the
slab MIP, the window / level, a series that cannot be reformatted, cancelling, and its place in the main
window."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent

from tests.conftest import dicom_test_file, dicom_test_files
from tests.desktop.reading_room import SCAN_TIMEOUT, make_window, open_and_wait
from zsmed.dicom.volume import decode_in_process, reformat
from zsmed_desktop.main_window import MainWindow
from zsmed_desktop.reformat_window import ReformatWindow

LOAD_TIMEOUT = 60_000  # ms: five slices through the contained decoder on a busy 2-core machine


def ct5n() -> list[Path]:
    files = sorted(p for p in dicom_test_files() if "dicomdirtests/98892001/CT5N/" in p.as_posix())
    if len(files) != 5:
        pytest.skip("pydicom's dicomdirtests CT5N series is not on this machine")
    return files


@pytest.fixture()
def window(qtbot) -> ReformatWindow:
    """A shown reformat window, 820 x 900, decoding through the app's contained decoder."""
    widget = ReformatWindow()
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


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
    assert window.window_box.currentText() == "As in the viewer (W 350 L 50)"
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


def test_reference_lines_between_the_slice_read_and_the_reformat(qtbot, tmp_path: Path) -> None:
    """The axial slice read is a line across the coronal reformat, at its row; the coronal slice is a line
    across the axial image, at its depth; each follows the other's scrolling."""
    import pydicom

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
