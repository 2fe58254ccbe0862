"""The image viewer on real files: rendered pixel values, navigation, true aspect, keys, failures."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.conftest import dicom_test_file
from zsmed.dicom.decode import load_dataset_and_pixels
from zsmed.dicom.display import (
    CT_PRESETS,
    ModalityFrame,
    display_uint8,
    modality_frame,
    render_display,
    window_option,
)
from zsmed_desktop.viewer import ImageViewer

TIMEOUT = 60_000


def shown(qtbot, viewer: ImageViewer) -> None:
    qtbot.waitUntil(lambda: not viewer.is_loading(), timeout=TIMEOUT)


def expected_window(hu: float, centre: float, width: float) -> int:
    """PS3.3 C.11.2.1.2 LINEAR window, to 8 bits."""
    return int(np.rint(np.clip((hu - (centre - 0.5)) / (width - 1) + 0.5, 0.0, 1.0) * 255))


def ct_hounsfield() -> np.ndarray:
    ref = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
    return ref.pixel_array.astype(np.float64) * float(ref.RescaleSlope) + float(ref.RescaleIntercept)


def test_ct_lung_and_mediastinum_windows_and_invert(qtbot, viewer: ImageViewer) -> None:
    ct = dicom_test_file("CT_small.dcm")
    with qtbot.waitSignal(viewer.current_changed, timeout=TIMEOUT) as changed:
        viewer.set_images([ct], title="CT chest")
    assert changed.args == [ct]
    assert viewer.current_path() == ct and viewer.message() == ""
    assert viewer.presets() == ["lung", "mediastinum", "bone", "brain", "soft tissue", "auto"]
    hu = ct_hounsfield()
    lung_px = tuple(np.argwhere((hu > -870) & (hu < -800))[0])  # aerated lung
    soft_px = tuple(np.argwhere((hu > 30) & (hu < 60))[0])  # soft tissue

    viewer.apply_preset("lung")
    assert viewer.window_level() == (-600.0, 1500.0)
    lung = viewer.rendered_image()
    assert lung.shape == (128, 128) and lung.dtype == np.uint8
    assert lung[lung_px] == expected_window(hu[lung_px], -600, 1500)
    assert 40 < lung[lung_px] < 120 and lung[soft_px] > 220

    viewer.apply_preset("mediastinum")
    mediastinum = viewer.rendered_image()
    assert mediastinum[lung_px] == 0  # lung is black in a mediastinal window
    assert mediastinum[soft_px] == expected_window(hu[soft_px], 50, 350)
    assert 90 < mediastinum[soft_px] < 160
    assert "W 350 L 50 (mediastinum)" in viewer.overlay_text()["tr"]

    viewer.invert()
    np.testing.assert_array_equal(viewer.rendered_image(), 255 - mediastinum)
    assert "inverted" in viewer.overlay_text()["tr"]
    viewer.set_window(40, 400)
    assert viewer.window_level() == (40.0, 400.0)
    assert viewer.rendered_image()[soft_px] == 255 - expected_window(hu[soft_px], 40, 400)


def test_ct_overlays_show_the_header_facts_and_toggle(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm")], title="CT chest")
    shown(qtbot, viewer)
    text = viewer.overlay_text()
    assert "CompressedSamples CT1" in text["tl"] and "2004-01-19" in text["tl"]
    assert "CT · Series 1" in text["tr"] and "CT chest" in text["tr"]
    assert "Instance 1" in text["bl"]
    assert "Zoom" in text["br"] and "Pixel 0.661 x 0.661 mm" in text["br"]
    assert (text["l"], text["r"], text["t"], text["b"]) == ("R", "L", "A", "P")  # axial CT orientation
    labels = viewer._corners.values()
    assert all(label.isVisible() for label in labels)
    qtbot.keyClick(viewer, Qt.Key.Key_O)
    assert not viewer.overlays_visible() and not any(label.isVisible() for label in labels)
    viewer.toggle_overlays()
    assert all(label.isVisible() for label in labels)


def test_mr_uses_its_own_window(qtbot, viewer: ImageViewer) -> None:
    mr = dicom_test_file("MR_small.dcm")
    viewer.set_images([mr])
    shown(qtbot, viewer)
    assert viewer.window_level() == (600.0, 1600.0)
    assert viewer.presets() == ["file 1", "auto"]  # no HU, so no CT presets
    ds, arr = load_dataset_and_pixels(mr)
    np.testing.assert_array_equal(viewer.rendered_image(), render_display(arr, ds))
    viewer.apply_preset("auto")
    assert viewer.window_level() != (600.0, 1600.0)
    qtbot.keyClick(viewer, Qt.Key.Key_1)  # number key 1 = the first preset: the file's window
    assert viewer.window_level() == (600.0, 1600.0)
    with pytest.raises(ValueError, match="unknown window preset"):
        viewer.apply_preset("liver")


def test_multi_frame_by_slider_and_keys(qtbot, viewer: ImageViewer) -> None:
    path = dicom_test_file("emri_small.dcm")
    viewer.set_images([path])
    shown(qtbot, viewer)
    assert viewer.frame_count() == 10 and viewer.slider.maximum() == 9 and not viewer.slider.isHidden()
    first = viewer.rendered_image()
    window = viewer.window_level()
    assert window is not None

    with qtbot.waitSignal(viewer.current_changed, timeout=TIMEOUT) as changed:  # another frame: said too
        viewer.slider.setValue(4)
        assert viewer.current_frame() == 4
    assert changed.args == [path]
    ds, arr = load_dataset_and_pixels(path, 4)
    local = modality_frame(arr, ds, 4)
    # the window stays as it was on frame 1 while scrolling (no brightness jumps between frames)
    expected = display_uint8(local, window_option(*window, function="LINEAR_EXACT"))
    np.testing.assert_array_equal(viewer.rendered_image(), expected)
    assert not np.array_equal(viewer.rendered_image(), first)
    assert "Frame 5/10" in viewer.overlay_text()["bl"] and viewer.slider_label.text() == "frame 5/10"

    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.current_frame() == 5 and viewer.slider.value() == 5
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    assert viewer.current_frame() == 3
    qtbot.keyClick(viewer, Qt.Key.Key_End)
    assert viewer.current_frame() == 9
    qtbot.keyClick(viewer, Qt.Key.Key_Right)  # stops at the end
    assert viewer.current_frame() == 9
    shown(qtbot, viewer)
    qtbot.keyClick(viewer, Qt.Key.Key_Home)
    assert viewer.current_frame() == 0
    shown(qtbot, viewer)
    np.testing.assert_array_equal(viewer.rendered_image(), first)


def test_series_of_files_wheel_and_page_keys(qtbot, viewer: ImageViewer) -> None:
    paths = [dicom_test_file(n) for n in ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm")]
    viewer.set_images(paths)
    shown(qtbot, viewer)
    assert viewer.slider.maximum() == 2 and viewer.current_index() == 0
    with qtbot.waitSignal(viewer.current_changed, timeout=TIMEOUT) as changed:
        qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert changed.args == [paths[1]] and viewer.current_index() == 1
    assert "Image 2/3" in viewer.overlay_text()["bl"]

    # the wheel scrolls images: one notch down = next
    port = viewer.view.viewport()
    centre = QPointF(port.width() / 2, port.height() / 2)
    wheel = QWheelEvent(centre, port.mapToGlobal(centre), QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    with qtbot.waitSignal(viewer.current_changed, timeout=TIMEOUT) as changed:
        viewer.view.viewportEvent(wheel)
    assert viewer.current_index() == 2 and changed.args == [paths[2]]
    shown(qtbot, viewer)
    assert not viewer._frame_row.isHidden()  # this image has frames of its own: a second slider

    viewer.slider.setValue(0)
    assert viewer.current_index() == 0
    with qtbot.waitSignal(viewer.series_step) as step:
        qtbot.keyClick(viewer, Qt.Key.Key_PageDown)
    assert step.args == [1]
    with qtbot.waitSignal(viewer.series_step) as step:
        qtbot.keyClick(viewer, Qt.Key.Key_PageUp)
    assert step.args == [-1]


def test_non_square_pixels_are_shown_at_true_aspect(qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
    ds.PixelSpacing = [0.5, 1.0]  # rows 0.5 mm apart, columns 1 mm: each pixel twice as wide as tall
    path = tmp_path / "wide_pixels.dcm"
    ds.save_as(path)
    viewer.set_images([path])
    shown(qtbot, viewer)
    item = viewer.image_item
    on_screen = item.mapRectToScene(item.boundingRect())
    assert on_screen.width() / on_screen.height() == pytest.approx(2.0, rel=1e-3)
    assert viewer.rendered_image().shape == (128, 128)
    assert "Pixel 0.5 x 1 mm" in viewer.overlay_text()["br"]
    # fitted: the whole image is in view
    view_rect = viewer.vb.viewRect()
    assert view_rect.width() >= 128 - 1e-6 and view_rect.height() >= 64 - 1e-6


def test_zoom_fit_one_to_one_and_reset_keys(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    fitted = viewer.zoom()
    assert fitted > 1.5  # a 128 px image fills a 640 px viewer
    viewer.one_to_one()
    assert viewer.zoom() == pytest.approx(1.0, rel=0.02)
    assert "Zoom 100 %" in viewer.overlay_text()["br"]
    qtbot.keyClick(viewer, Qt.Key.Key_F)
    assert viewer.zoom() == pytest.approx(fitted, rel=0.02)
    qtbot.keyClick(viewer, Qt.Key.Key_Plus)
    assert viewer.zoom() == pytest.approx(fitted * 1.25, rel=0.02)

    auto = viewer.window_level()
    qtbot.keyClick(viewer, Qt.Key.Key_1)
    assert viewer.window_level() == CT_PRESETS["lung"]
    qtbot.keyClick(viewer, Qt.Key.Key_2)
    assert viewer.window_level() == CT_PRESETS["mediastinum"]
    before = viewer.rendered_image()
    qtbot.keyClick(viewer, Qt.Key.Key_I)
    np.testing.assert_array_equal(viewer.rendered_image(), 255 - before)
    qtbot.keyClick(viewer, Qt.Key.Key_R)
    assert viewer.window_level() == auto and not viewer.is_inverted()
    assert viewer.zoom() == pytest.approx(fitted, rel=0.02)


def test_right_drag_changes_window_and_level(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    viewer.apply_preset("soft tissue")
    port = viewer.view.viewport()
    start = QPointF(port.width() / 2, port.height() / 2)

    def send(kind: QEvent.Type, pos: QPointF, buttons: Qt.MouseButton) -> None:
        event = QMouseEvent(kind, pos, port.mapToGlobal(pos), Qt.MouseButton.RightButton, buttons,
                            Qt.KeyboardModifier.NoModifier)
        viewer.view.viewportEvent(event)

    send(QEvent.Type.MouseButtonPress, start, Qt.MouseButton.RightButton)
    for step in range(1, 11):  # right and down
        send(QEvent.Type.MouseMove, start + QPointF(8 * step, 4 * step), Qt.MouseButton.RightButton)
    send(QEvent.Type.MouseButtonRelease, start + QPointF(80, 40), Qt.MouseButton.NoButton)
    window = viewer.window_level()
    assert window is not None
    centre, width = window
    assert width > 400 and centre > 40  # wider and higher than the soft tissue window it started from
    assert viewer.overlay_text()["tr"].endswith(f"W {width:.0f} L {centre:.0f}")


def test_corrupt_file_gives_a_message_and_the_viewer_goes_on(qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(Path(dicom_test_file("CT_small.dcm")).read_bytes()[:20000])
    ct = tmp_path / "ct.dcm"
    shutil.copy(dicom_test_file("CT_small.dcm"), ct)
    viewer.set_images([junk, truncated, ct])
    shown(qtbot, viewer)
    assert viewer.message().startswith("junk.dcm: not a DICOM file")
    assert viewer.rendered_image().size == 0 and viewer.window_level() is None
    assert viewer._message_label.isVisible()
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    shown(qtbot, viewer)
    assert viewer.message().startswith("truncated.dcm:") and viewer.rendered_image().size == 0
    with qtbot.waitSignal(viewer.current_changed, timeout=TIMEOUT):
        qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.message() == "" and not viewer._message_label.isVisible()
    assert viewer.rendered_image().shape == (128, 128)
    viewer.apply_preset("lung")
    assert viewer.window_level() == CT_PRESETS["lung"]


def test_empty_series_and_missing_file(qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    viewer.set_images([])
    assert viewer.message() == "No image" and viewer.current_path() is None and viewer.window_level() is None
    viewer.next_image()  # nothing to do, nothing breaks
    viewer.set_images([tmp_path / "gone.dcm"])
    shown(qtbot, viewer)
    assert "gone.dcm" in viewer.message() and "not found" in viewer.message()


def test_photo_is_shown_the_same_way(qtbot, viewer: ImageViewer, shared_data: Path) -> None:
    from zsmed.imageio import read_photo

    photo = next(p for p in sorted((shared_data / "ham10000_fs" / "novel_dev").rglob("*")) if p.suffix == ".jpg")
    viewer.set_images([photo])
    shown(qtbot, viewer)
    assert viewer.message() == ""
    expected = np.rint(read_photo(photo) * 255).astype(np.uint8)
    np.testing.assert_array_equal(viewer.rendered_image(), expected)  # shown as it is: identity window
    assert viewer.presets() == ["auto"]
    assert "photo" in viewer.overlay_text()["tr"]
    item = viewer.image_item
    rect = item.mapRectToScene(item.boundingRect())
    assert rect.width() / rect.height() == pytest.approx(expected.shape[1] / expected.shape[0], rel=1e-3)
    viewer.invert()
    np.testing.assert_array_equal(viewer.rendered_image(), 255 - expected)


def test_signals_do_not_leak_references_to_true(qtbot, viewer: ImageViewer) -> None:
    """PySide6 6.12.0 dropped a reference to True on every Signal.emit(); on Python 3.11 the app then
    aborted ('bool_dealloc') after a few thousand signals, e.g. a mouse moving over the image."""
    import sys

    before = sys.getrefcount(True)
    for _ in range(500):
        viewer.series_step.emit(1)
    assert sys.getrefcount(True) >= before - 10


def test_neighbours_are_fetched_ahead_and_kept_in_a_bounded_cache(qtbot) -> None:
    from zsmed_desktop.viewer import contained_decode

    calls: list[tuple[str, int]] = []

    def counting(path: str, frame: int) -> ModalityFrame:
        calls.append((Path(path).name, frame))
        return contained_decode(path, frame)

    paths = [dicom_test_file(n) for n in ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm")]
    widget = ImageViewer(decode=counting, cache_bytes=10**9)
    widget.show()
    widget.set_images(paths)
    qtbot.waitUntil(lambda: not widget.is_loading() and not widget.is_busy(), timeout=TIMEOUT)
    assert calls[0] == ("CT_small.dcm", 0)  # the image asked for first, then its neighbours
    assert widget.is_cached(paths[1]) and widget.is_cached(paths[2])
    widget.next_image()
    assert widget.message() == "" and widget.current_path() == paths[1]
    assert widget.rendered_image().shape == (64, 64)  # shown at once from the cache
    widget.previous_image()
    qtbot.waitUntil(lambda: not widget.is_busy(), timeout=TIMEOUT)
    assert calls.count(("CT_small.dcm", 0)) == 1 and calls.count(("MR_small.dcm", 0)) == 1
    widget.close()
    widget.deleteLater()

    small = ImageViewer(decode=counting, cache_bytes=1)  # keeps the one shown and one more
    small.show()
    small.set_images(paths)
    qtbot.waitUntil(lambda: not small.is_loading() and not small.is_busy(), timeout=TIMEOUT)
    assert len(small._cache) <= 2 and small.is_cached(paths[0])
    small.close()
    small.deleteLater()


def test_a_codec_that_kills_the_decoder_process_leaves_the_viewer_working(qtbot, tmp_path: Path) -> None:
    from zsmed.dicom.safe import SafeDecoder

    crash = tmp_path / "crash.dcm"
    shutil.copy(dicom_test_file("CT_small.dcm"), crash)
    with SafeDecoder(timeout=60) as decoder:

        def decode(path: str, frame: int) -> ModalityFrame:
            if Path(path).name == "crash.dcm":  # what a GDCM abort on a crafted file does to the process
                decoder.call("abort", path=path)
            result: ModalityFrame = decoder.modality_frame(path, frame)
            return result

        widget = ImageViewer(decode=decode)
        widget.show()
        widget.set_images([crash, dicom_test_file("MR_small.dcm")])
        qtbot.waitUntil(lambda: not widget.is_loading(), timeout=TIMEOUT)
        assert widget.message().startswith("crash.dcm: the decoder process was killed by SIGABRT")
        widget.next_image()
        qtbot.waitUntil(lambda: not widget.is_loading(), timeout=TIMEOUT)
        assert widget.message() == "" and widget.window_level() == (600.0, 1600.0)
        assert decoder.restarts >= 1
        qtbot.waitUntil(lambda: not widget.is_busy(), timeout=TIMEOUT)
        widget.close()
        widget.deleteLater()


def test_ctrl_wheel_zooms_and_left_drag_pans(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm"), dicom_test_file("MR_small.dcm")])
    shown(qtbot, viewer)
    port = viewer.view.viewport()
    centre = QPointF(port.width() / 2, port.height() / 2)
    fitted = viewer.zoom()
    wheel = QWheelEvent(centre, port.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    viewer.view.viewportEvent(wheel)
    assert viewer.zoom() > fitted * 1.1 and viewer.current_index() == 0  # zoomed, not paged
    before = viewer.vb.viewRect()

    def send(kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton, buttons: Qt.MouseButton) -> None:
        viewer.view.viewportEvent(QMouseEvent(kind, pos, port.mapToGlobal(pos), button, buttons,
                                              Qt.KeyboardModifier.NoModifier))

    left = Qt.MouseButton.LeftButton
    send(QEvent.Type.MouseButtonPress, centre, left, left)
    for step in range(1, 6):
        send(QEvent.Type.MouseMove, centre + QPointF(10 * step, 0), Qt.MouseButton.NoButton, left)
    send(QEvent.Type.MouseButtonRelease, centre + QPointF(50, 0), left, Qt.MouseButton.NoButton)
    after = viewer.vb.viewRect()
    assert after.center().x() < before.center().x() - 1  # the image moved right with the mouse
    assert after.width() == pytest.approx(before.width())
    assert viewer.window_level() is not None and viewer.current_index() == 0


def test_window_is_qt_top_level_and_window_level_is_the_grey_window(qtbot) -> None:
    """``ImageViewer.window()`` is QWidget's own (the top-level window, which Qt's focus and dialog
    code call); the (centre, width) in use is ``window_level()``."""
    from PySide6.QtWidgets import QMainWindow

    host = QMainWindow()
    qtbot.addWidget(host)
    viewer = ImageViewer()
    host.setCentralWidget(viewer)
    assert viewer.window() is host
    with qtbot.waitSignal(viewer.current_changed, timeout=TIMEOUT):
        viewer.set_images([dicom_test_file("CT_small.dcm")])
    viewer.apply_preset("bone")
    assert viewer.window_level() == CT_PRESETS["bone"]
    assert viewer.window() is host
    qtbot.waitUntil(lambda: not viewer.is_busy(), timeout=TIMEOUT)


# --- rulers, rotation and flip, cine ---------------------------------------------------------------
def wide_pixels(tmp_path: Path, name: str = "wide_pixels.dcm") -> Path:
    """CT_small with rows 0.5 mm apart and columns 1 mm: each pixel twice as wide as tall."""
    ds = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
    ds.PixelSpacing = [0.5, 1.0]
    path = tmp_path / name
    ds.save_as(path)
    return path


def imager_spacing_ct(tmp_path: Path) -> Path:
    """CT_small with its spacing as Imager Pixel Spacing (0.2 mm rows, 0.4 mm columns): at the detector,
    not corrected for the magnification."""
    ds = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
    del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.2, 0.4]
    path = tmp_path / "imager.dcm"
    ds.save_as(path)
    return path


def left_drag(qtbot, viewer: ImageViewer, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A left-button drag on the screen from one point (column, row) of the stored image to another,
    as the mouse sends it (press, moves, release), wherever rotation or flip shows those points.
    The moves are spaced out: pyqtgraph drops moves that come less than 10 ms apart."""
    port = viewer.view.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    a = QPointF(viewer.view.mapFromScene(viewer.scene_point(*start)))
    b = QPointF(viewer.view.mapFromScene(viewer.scene_point(*end)))

    def send(kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton, buttons: Qt.MouseButton) -> None:
        viewer.view.viewportEvent(QMouseEvent(kind, pos, port.mapToGlobal(pos), button, buttons,
                                              Qt.KeyboardModifier.NoModifier))

    send(QEvent.Type.MouseButtonPress, a, left, left)
    for step in range(1, 6):
        qtbot.wait(15)
        send(QEvent.Type.MouseMove, a + (b - a) * (step / 5), none, left)
    send(QEvent.Type.MouseButtonRelease, b, left, none)


def edges(viewer: ImageViewer) -> tuple[str, str, str, str]:
    text = viewer.overlay_text()
    return text["l"], text["r"], text["t"], text["b"]


def test_a_left_drag_while_measuring_draws_rulers_in_mm_on_non_square_pixels(
        qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    viewer.set_images([wide_pixels(tmp_path)])
    shown(qtbot, viewer)
    before = viewer.vb.viewRect()
    qtbot.keyClick(viewer, Qt.Key.Key_M)
    assert viewer.is_measuring() and viewer.overlay_text()["br"].startswith("Measuring")
    left_drag(qtbot, viewer, (10, 20), (50, 80))
    assert viewer.vb.viewRect() == before  # measured, not panned
    [ruler] = viewer.measurements()
    # by hand: 40 columns x 1 mm across, 60 rows x 0.5 mm down -> sqrt(40² + 30²) = 50 mm
    # (pixels alone would say 72.1; the spacings swapped, 63.2)
    assert ruler.unit == "mm" and ruler.length == pytest.approx(50.0, abs=0.3)
    assert np.allclose(ruler.start, (10, 20), atol=0.3) and np.allclose(ruler.end, (50, 80), atol=0.3)
    assert ruler.text == f"{ruler.length:.1f} mm"
    label = viewer._rulers[0].label
    assert label.toPlainText() == ruler.text and label.isVisible()

    left_drag(qtbot, viewer, (100, 10), (100, 110))  # straight down: 100 rows x 0.5 mm
    assert len(viewer.measurements()) == 2 and viewer.measurements()[1].length == pytest.approx(50.0, abs=0.3)

    qtbot.keyClick(viewer, Qt.Key.Key_BracketRight)  # turned a quarter: the rulers still measure the same
    assert [m.length for m in viewer.measurements()] == pytest.approx([50.0, 50.0], abs=0.3)
    line = viewer._rulers[0].line
    drawn_end = viewer.vb.childGroup.mapToScene(QPointF(line.xData[1], line.yData[1]))
    assert (drawn_end - viewer.scene_point(*viewer.measurements()[0].end)).manhattanLength() < 1e-6
    item = viewer.image_item
    on_screen = item.mapRectToScene(item.boundingRect())
    assert on_screen.width() / on_screen.height() == pytest.approx(0.5, rel=1e-3)  # 64 mm wide, 128 mm tall
    # the same travel, drawn on the turned image (away from the first ruler's ends, which a press would take)
    left_drag(qtbot, viewer, (15, 30), (55, 90))
    assert viewer.measurements()[2].length == pytest.approx(50.0, abs=0.3)
    qtbot.keyClick(viewer, Qt.Key.Key_H)
    left_drag(qtbot, viewer, (60, 100), (20, 40))
    assert viewer.measurements()[3].length == pytest.approx(50.0, abs=0.3)

    qtbot.keyClick(viewer, Qt.Key.Key_Delete)
    assert viewer.measurements() == [] and viewer.is_measuring()
    left_drag(qtbot, viewer, (10, 20), (50, 80))
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)  # removes them and stops measuring
    assert viewer.measurements() == [] and not viewer.is_measuring()
    left_drag(qtbot, viewer, (10, 20), (50, 80))  # a plain left drag pans again
    assert viewer.measurements() == [] and viewer.vb.viewRect() != before


def test_rulers_say_px_without_spacing_and_at_the_detector_with_imager_spacing(
        qtbot, viewer: ImageViewer, tmp_path: Path, shared_data: Path) -> None:
    photo = sorted((shared_data / "ham10000_fs" / "base" / "nv").glob("*.jpg"))[0]
    viewer.set_images([photo])
    shown(qtbot, viewer)
    viewer.toggle_measuring()
    left_drag(qtbot, viewer, (20, 10), (170, 210))  # on a 224 x 224 photograph
    [ruler] = viewer.measurements()
    assert ruler.unit == "px" and ruler.text.endswith(" px") and "mm" not in ruler.text
    assert ruler.length == pytest.approx(250.0, abs=1.0)  # sqrt(150² + 200²) pixels

    viewer.set_images([imager_spacing_ct(tmp_path)])
    shown(qtbot, viewer)
    assert viewer.measurements() == []  # another file: the photograph's ruler went with it
    left_drag(qtbot, viewer, (20, 10), (50, 110))
    [ruler] = viewer.measurements()
    assert ruler.length == pytest.approx(float(np.hypot(30 * 0.4, 100 * 0.2)), abs=0.2)  # 23.3 mm
    assert ruler.text == f"{ruler.length:.1f} mm at the detector"
    assert "mm at the detector" in viewer.overlay_text()["br"]
    # A ruler placed from code (the screenshots' way) measures as a drag does, from stored pixels.
    assert viewer.stored_size() == (128.0, 128.0)
    placed = viewer.measure((20, 10), (50, 110))
    assert placed is not None and placed.length == pytest.approx(float(np.hypot(30 * 0.4, 100 * 0.2)), abs=1e-9)
    assert len(viewer.measurements()) == 2


def test_rulers_stay_on_the_frames_of_a_file_and_go_with_another_file(qtbot, viewer: ImageViewer) -> None:
    paths = [dicom_test_file("emri_small.dcm"), dicom_test_file("MR_small.dcm")]
    viewer.set_images(paths)
    shown(qtbot, viewer)
    viewer.toggle_measuring()
    left_drag(qtbot, viewer, (5, 5), (40, 40))
    assert len(viewer.measurements()) == 1
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.current_frame() == 1 and len(viewer.measurements()) == 1
    viewer.go_to(1)
    assert viewer.current_path() == paths[1] and viewer.measurements() == []
    assert [type(item).__name__ for item in viewer.vb.addedItems] == ["ImageItem"]  # the lines went too


def test_rotate_and_flip_turn_the_image_and_its_orientation_letters(qtbot, viewer: ImageViewer,
                                                                    tmp_path: Path) -> None:
    second = tmp_path / "ct2.dcm"
    shutil.copy(dicom_test_file("CT_small.dcm"), second)
    viewer.set_images([dicom_test_file("CT_small.dcm"), second])
    shown(qtbot, viewer)
    viewer.apply_preset("mediastinum")
    upright = viewer.rendered_image()
    assert edges(viewer) == ("R", "L", "A", "P")

    qtbot.keyClick(viewer, Qt.Key.Key_BracketRight)  # clockwise: the left edge goes to the top
    np.testing.assert_array_equal(viewer.rendered_image(), np.rot90(upright, -1))
    assert edges(viewer) == ("P", "A", "R", "L")
    qtbot.keyClick(viewer, Qt.Key.Key_BracketLeft)
    np.testing.assert_array_equal(viewer.rendered_image(), upright)
    qtbot.keyClick(viewer, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Ctrl+R turns too
    np.testing.assert_array_equal(viewer.rendered_image(), np.rot90(upright, -1))
    qtbot.keyClick(viewer, Qt.Key.Key_BracketLeft)

    qtbot.keyClick(viewer, Qt.Key.Key_H)  # the patient's right is now on the screen's right
    np.testing.assert_array_equal(viewer.rendered_image(), upright[:, ::-1])
    assert edges(viewer) == ("L", "R", "A", "P")
    qtbot.keyClick(viewer, Qt.Key.Key_V)
    np.testing.assert_array_equal(viewer.rendered_image(), upright[::-1, ::-1])
    assert edges(viewer) == ("L", "R", "P", "A")
    qtbot.keyClick(viewer, Qt.Key.Key_BracketRight)  # a turn after a flip turns what is on the screen
    np.testing.assert_array_equal(viewer.rendered_image(), np.rot90(upright[::-1, ::-1], -1))
    assert edges(viewer) == ("A", "P", "L", "R")

    with qtbot.waitSignal(viewer.current_changed, timeout=TIMEOUT):
        qtbot.keyClick(viewer, Qt.Key.Key_Right)  # kept while scrolling through the series
    np.testing.assert_array_equal(viewer.rendered_image(), np.rot90(upright[::-1, ::-1], -1))
    assert edges(viewer) == ("A", "P", "L", "R")
    qtbot.keyClick(viewer, Qt.Key.Key_R)  # reset: upright again, with the file's window
    assert viewer.window_level() != CT_PRESETS["mediastinum"] and edges(viewer) == ("R", "L", "A", "P")
    viewer.apply_preset("mediastinum")
    np.testing.assert_array_equal(viewer.rendered_image(), upright)


def test_cine_plays_looping_at_the_file_rate_and_stops_on_a_navigation_key(
        qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    path = dicom_test_file("emri_small.dcm")  # 10 frames, no frame rate: 10 per second
    viewer.set_images([path])
    shown(qtbot, viewer)
    assert viewer.cine_rate() == 10.0 and not viewer.is_playing()
    qtbot.keyClick(viewer, Qt.Key.Key_P)
    assert viewer.is_playing() and "Cine 10 fps" in viewer.overlay_text()["bl"]
    qtbot.waitUntil(lambda: viewer.current_frame() == 9, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: viewer.current_frame() < 9, timeout=TIMEOUT)  # past the last: round again
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert not viewer.is_playing() and "Cine" not in viewer.overlay_text()["bl"]
    stopped = viewer.current_frame()
    qtbot.wait(400)
    assert viewer.current_frame() == stopped
    qtbot.keyClick(viewer, Qt.Key.Key_P)
    assert viewer.is_playing()
    qtbot.keyClick(viewer, Qt.Key.Key_P)
    assert not viewer.is_playing()

    ds = pydicom.dcmread(path)
    ds.RecommendedDisplayFrameRate = 25
    rated = tmp_path / "rated.dcm"
    ds.save_as(rated)
    viewer.set_images([rated])
    shown(qtbot, viewer)
    viewer.play()
    assert viewer.cine_rate() == 25.0 and "Cine 25 fps" in viewer.overlay_text()["bl"]
    qtbot.waitUntil(lambda: viewer.current_frame() >= 2, timeout=TIMEOUT)
    qtbot.keyClick(viewer, Qt.Key.Key_Home)
    assert not viewer.is_playing() and viewer.current_frame() == 0


def test_cine_waits_for_a_slow_decode_rather_than_skipping_frames(qtbot) -> None:
    import time

    from zsmed_desktop.viewer import contained_decode

    def slow(path: str, frame: int) -> ModalityFrame:
        time.sleep(0.25)  # slower than the 10 per second asked for
        return contained_decode(path, frame)

    widget = ImageViewer(decode=slow)
    widget.show()
    seen: list[int] = []
    widget.current_changed.connect(lambda _path: seen.append(widget.current_frame()))
    widget.set_images([dicom_test_file("emri_small.dcm")])
    qtbot.waitUntil(lambda: not widget.is_loading(), timeout=TIMEOUT)
    widget.play()
    qtbot.waitUntil(lambda: widget.current_frame() >= 4 and not widget.is_loading(), timeout=TIMEOUT)
    widget.stop_cine()
    assert seen == list(range(len(seen))) and len(seen) >= 5  # every frame, in order: none skipped
    qtbot.waitUntil(lambda: not widget.is_busy(), timeout=TIMEOUT)
    widget.close()
    widget.deleteLater()


def test_escape_and_delete_are_the_viewers_while_it_has_rulers(qtbot, tmp_path: Path) -> None:
    """The main window's Esc cancels a scan; on the image, while there are rulers to remove, a
    measuring or a cine to stop, Esc does that instead (and otherwise still reaches the window)."""
    from PySide6.QtGui import QAction, QKeySequence
    from PySide6.QtWidgets import QMainWindow

    host = QMainWindow()
    qtbot.addWidget(host)
    cancelled: list[bool] = []
    cancel = QAction("Cancel scan", host)
    cancel.setShortcut(QKeySequence("Esc"))
    cancel.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    cancel.triggered.connect(lambda *_: cancelled.append(True))
    host.addAction(cancel)
    viewer = ImageViewer()
    host.setCentralWidget(viewer)
    host.resize(640, 560)
    host.show()
    viewer.set_images([wide_pixels(tmp_path)])
    shown(qtbot, viewer)
    viewer.setFocus()
    qtbot.keyClick(viewer, Qt.Key.Key_M)
    left_drag(qtbot, viewer, (10, 20), (50, 80))
    assert len(viewer.measurements()) == 1
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert viewer.measurements() == [] and not viewer.is_measuring() and cancelled == []
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)  # nothing of the viewer's left: the window's Esc
    assert cancelled == [True]
    qtbot.keyClick(viewer, Qt.Key.Key_E)  # a region-of-interest mode to stop: the viewer's Esc again
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert not viewer.is_roi_mode() and cancelled == [True]
    qtbot.keyClick(viewer, Qt.Key.Key_N)  # an angle mode to stop: the viewer's too
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert not viewer.is_angle_mode() and cancelled == [True]
    qtbot.waitUntil(lambda: not viewer.is_busy(), timeout=TIMEOUT)


def test_the_viewer_tells_when_its_marks_change(qtbot, viewer: ImageViewer) -> None:
    """The window enables Save measurements from this: a count after each ruler or region added or removed."""
    counts: list[int] = []
    viewer.marks_changed.connect(counts.append)
    viewer.set_images([dicom_test_file("CT_small.dcm"), dicom_test_file("MR_small.dcm")])
    shown(qtbot, viewer)
    assert counts == []  # nothing to clear
    viewer.measure((10, 10), (60, 10))
    viewer.roi((20, 20), (50, 40))
    viewer.angle((90, 30), (50, 70), (100, 90))
    assert counts == [1, 2, 3]
    viewer.setFocus()
    qtbot.keyClick(viewer, Qt.Key.Key_Delete)
    assert counts[-1] == 0 and viewer.measurements() == [] and viewer.rois() == [] and viewer.angles() == []
    viewer.measure((10, 10), (60, 10))
    counts.clear()
    viewer.go_to(1)  # another file: its marks go, and the window hears of it
    assert counts == [0]
    shown(qtbot, viewer)
    viewer.toggle_measuring()
    left_drag(qtbot, viewer, (5, 5), (40, 40))  # a drag: the ruler is there from the press on
    assert counts == [0, 1] and len(viewer.measurements()) == 1


# --- regions of interest ---------------------------------------------------------------------------
def ellipse_inside(shape: tuple[int, ...], centre: tuple[float, float], radii: tuple[float, float]) -> np.ndarray:
    """The stored pixels whose centres lie in the ellipse of that centre (column, row) and radii
    (across, down): worked out here, apart from the viewer's code."""
    rows, cols = np.indices(shape[:2])
    return ((cols + 0.5 - centre[0]) / radii[0]) ** 2 + ((rows + 0.5 - centre[1]) / radii[1]) ** 2 <= 1.0


def on_the_outline(viewer: ImageViewer, index: int = 0) -> np.ndarray:
    """(x / rx)² + (y / ry)² of each point of the outline drawn, taken back to the stored image."""
    roi = viewer.rois()[index]
    (cx, cy), (rx, ry) = roi.statistics.centre, roi.statistics.radii
    line = viewer._rois[index].line
    points = [viewer._image_point(QPointF(float(x), float(y))) for x, y in zip(line.xData, line.yData, strict=True)]
    return np.array([((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 for x, y in points])


def test_a_left_drag_in_roi_mode_gives_the_hounsfield_statistics_of_the_ellipse(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    before = viewer.vb.viewRect()
    with qtbot.waitSignal(viewer.roi_mode_changed) as changed:
        qtbot.keyClick(viewer, Qt.Key.Key_E)
    assert changed.args == [True] and viewer.is_roi_mode() and not viewer.is_measuring()
    assert viewer.overlay_text()["br"].startswith("Region of interest: left drag (E: stop)")
    left_drag(qtbot, viewer, (30, 40), (70, 80))
    assert viewer.vb.viewRect() == before  # drawn, not panned
    [roi] = viewer.rois()
    stats = roi.statistics
    assert np.allclose(roi.start, (30, 40), atol=0.3) and np.allclose(roi.end, (70, 80), atol=0.3)
    assert stats.centre == pytest.approx(((roi.start[0] + roi.end[0]) / 2, (roi.start[1] + roi.end[1]) / 2))
    assert stats.radii == pytest.approx((20.0, 20.0), abs=0.3)

    # the same pixels, from the file: stored values x slope + intercept
    hu = ct_hounsfield()
    inside = hu[ellipse_inside(hu.shape, stats.centre, stats.radii)]
    assert stats.count == inside.size and abs(inside.size - np.pi * 400) < 40  # about π r²
    assert stats.mean == pytest.approx(float(inside.mean()), abs=1e-6)
    assert stats.sd == pytest.approx(float(inside.std(ddof=1)), abs=1e-6)
    assert (stats.minimum, stats.maximum) == (inside.min(), inside.max())
    assert inside.max() - inside.min() > 500  # not a flat patch: the numbers say where the ellipse is
    spacing = 0.661468  # mm, rows and columns
    assert stats.value_unit == "HU" and stats.area_unit == "mm²"
    assert stats.area == pytest.approx(np.pi * stats.radii[0] * stats.radii[1] * spacing ** 2, rel=1e-5)
    assert roi.text == (f"Area {stats.area / 100:.2f} cm²\nMean {stats.mean:.1f} ± {stats.sd:.1f} HU\n"
                        f"Min {inside.min():.0f} · Max {inside.max():.0f} HU\n{inside.size} pixels")
    label = viewer._rois[0].label
    assert label.toPlainText() == roi.text and label.isVisible()
    assert np.allclose(on_the_outline(viewer), 1.0, atol=1e-6)  # drawn where it measures

    small = viewer.roi((80, 20), (100, 30))  # placed from code: under 100 mm², in mm²
    assert small is not None and small.statistics.centre == (90.0, 25.0) and small.statistics.radii == (10.0, 5.0)
    assert small.text.startswith(f"Area {np.pi * 50 * spacing ** 2:.1f} mm²\n")
    assert len(viewer.rois()) == 2

    # M and E are exclusive, and both signals say so
    said: list[tuple[str, bool]] = []
    viewer.measuring_changed.connect(lambda on: said.append(("measuring", on)))
    viewer.roi_mode_changed.connect(lambda on: said.append(("roi", on)))
    qtbot.keyClick(viewer, Qt.Key.Key_M)
    assert viewer.is_measuring() and not viewer.is_roi_mode()
    assert said == [("measuring", True), ("roi", False)]
    assert "Region of interest" not in viewer.overlay_text()["br"]
    left_drag(qtbot, viewer, (10, 100), (50, 100))
    assert len(viewer.measurements()) == 1 and len(viewer.rois()) == 2
    qtbot.keyClick(viewer, Qt.Key.Key_E)
    assert viewer.is_roi_mode() and not viewer.is_measuring()
    assert said[2:] == [("measuring", False), ("roi", True)]

    qtbot.keyClick(viewer, Qt.Key.Key_Delete)  # the rulers and the regions go together
    assert viewer.rois() == [] and viewer.measurements() == [] and viewer.is_roi_mode()
    assert [type(item).__name__ for item in viewer.vb.addedItems] == ["ImageItem"]
    left_drag(qtbot, viewer, (30, 40), (70, 80))
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)  # removes them and stops the region-of-interest mode
    assert viewer.rois() == [] and not viewer.is_roi_mode() and "Region" not in viewer.overlay_text()["br"]
    left_drag(qtbot, viewer, (30, 40), (70, 80))  # a plain left drag pans again
    assert viewer.rois() == [] and viewer.vb.viewRect() != before


def test_roi_area_on_non_square_pixels_uses_both_spacings(qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    viewer.set_images([wide_pixels(tmp_path)])  # rows 0.5 mm apart, columns 1 mm
    shown(qtbot, viewer)
    viewer.toggle_roi()
    left_drag(qtbot, viewer, (20, 20), (60, 100))  # 40 columns by 80 rows: 40 by 40 mm, a circle on the screen
    [roi] = viewer.rois()
    (rx, ry) = roi.statistics.radii
    assert (rx, ry) == pytest.approx((20.0, 40.0), abs=0.3)
    # π x 20 mm x 20 mm; the pixels alone would say π x 20 x 40 = 2513 px², one spacing squared 628 or 2513 mm²
    assert roi.statistics.area == pytest.approx(np.pi * rx * 1.0 * ry * 0.5, rel=1e-9)
    assert roi.statistics.area == pytest.approx(np.pi * 400, rel=0.03)
    assert roi.text.startswith(f"Area {roi.statistics.area / 100:.2f} cm²\n")
    line = viewer._rois[0].line  # drawn in the view's units, the same across as down on the screen
    assert float(np.ptp(line.xData)) == pytest.approx(float(np.ptp(line.yData)), rel=0.02)  # round on the screen
    hu = ct_hounsfield()
    inside = hu[ellipse_inside(hu.shape, roi.statistics.centre, roi.statistics.radii)]
    assert roi.statistics.count == inside.size and roi.statistics.mean == pytest.approx(float(inside.mean()))


def test_rotated_and_flipped_views_give_the_same_statistics_for_the_same_stored_region(
        qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    viewer.toggle_roi()
    # an ellipse no pixel centre lies near the edge of (|(x/rx)² + (y/ry)² - 1| > 0.05 for all), so a
    # drag that lands a few hundredths of a pixel off each corner holds the same pixels
    corner_a, corner_b = (55.75, 58.75), (73.25, 69.25)
    hu = ct_hounsfield()
    rows, cols = np.indices(hu.shape)
    edge = ((cols + 0.5 - 64.5) / 8.75) ** 2 + ((rows + 0.5 - 64.0) / 5.25) ** 2
    assert np.abs(edge - 1.0).min() > 0.05
    inside = hu[edge <= 1.0]
    seen: list[tuple[float, ...]] = []
    turns = [("upright", lambda: None), ("clockwise", lambda: viewer.rotate(1)),
             ("and flipped left-right", viewer.flip_horizontal), ("and flipped up-down", viewer.flip_vertical),
             ("anticlockwise", lambda: viewer.rotate(-1))]
    for index, (_name, turn) in enumerate(turns):
        turn()
        viewer.fit()
        viewer.zoom_by(4)  # the mouse lands on the screen's pixels: a quarter of one at 17 to a pixel
        left_drag(qtbot, viewer, corner_a, corner_b)
        roi = viewer.rois()[index]
        assert np.allclose(roi.start, corner_a, atol=0.05) and np.allclose(roi.end, corner_b, atol=0.05)
        stats = roi.statistics
        seen.append((stats.count, stats.mean, stats.sd, stats.minimum, stats.maximum))
        assert np.allclose(on_the_outline(viewer, index), 1.0, atol=1e-6)
    assert viewer.turn() != (1, 0, 0, 1)
    assert len(set(seen)) == 1  # the same numbers in every view
    count, mean, sd, minimum, maximum = seen[0]
    assert count == inside.size == 142 and mean == pytest.approx(float(inside.mean()), abs=1e-6)
    assert sd == pytest.approx(float(inside.std(ddof=1)), abs=1e-6)
    assert (minimum, maximum) == (inside.min(), inside.max())
    # placed from code in this view, as in any: the ellipse's own figures
    placed = viewer.roi(corner_a, corner_b)
    assert placed is not None and placed.statistics.centre == (64.5, 64.0)
    assert (placed.statistics.count, placed.statistics.mean) == (count, mean)
    # the regions drawn keep their numbers as the view turns on
    before = viewer.rois()
    viewer.rotate(1)
    viewer.flip_vertical()
    assert viewer.rois() == before


def test_roi_on_a_photograph_gives_px_and_rgb_means_and_on_imager_spacing_says_at_the_detector(
        qtbot, viewer: ImageViewer, tmp_path: Path, shared_data: Path) -> None:
    from zsmed.imageio import read_photo

    photo = sorted((shared_data / "ham10000_fs" / "base" / "nv").glob("*.jpg"))[0]
    viewer.set_images([photo])
    shown(qtbot, viewer)
    qtbot.keyClick(viewer, Qt.Key.Key_E)
    left_drag(qtbot, viewer, (20, 10), (170, 210))  # on a 224 x 224 photograph
    [roi] = viewer.rois()
    stats = roi.statistics
    assert stats.area_unit == "px²" and stats.area == pytest.approx(np.pi * 75 * 100, rel=0.01)
    rgb = np.asarray(read_photo(photo), dtype=np.float32) * np.float32(255.0)
    inside = rgb[ellipse_inside(rgb.shape, stats.centre, stats.radii)]
    assert stats.count == len(inside) and stats.mean is None and stats.sd is None
    assert stats.rgb_mean == pytest.approx(tuple(float(v) for v in inside.astype(np.float64).mean(axis=0)),
                                           abs=1e-3)
    red, green, blue = stats.rgb_mean
    assert red > blue  # a naevus on skin: redder than blue
    sds = inside.astype(np.float64).std(axis=0, ddof=1)
    assert stats.rgb_sd == pytest.approx(tuple(float(v) for v in sds), abs=1e-2)
    assert roi.text == (f"Area {stats.area:.0f} px²\nMean R {red:.1f} · G {green:.1f} · B {blue:.1f}\n"
                        "SD R {:.1f} · G {:.1f} · B {:.1f}\n".format(*stats.rgb_sd) + f"{stats.count} pixels")

    viewer.set_images([imager_spacing_ct(tmp_path)])
    shown(qtbot, viewer)
    assert viewer.rois() == [] and viewer.is_roi_mode()  # another file: the photograph's region went with it
    placed = viewer.roi((20, 10), (60, 110))
    assert placed is not None
    assert placed.statistics.area == pytest.approx(np.pi * 20 * 0.4 * 50 * 0.2)  # π x 8 mm x 10 mm = 251.3 mm²
    assert placed.text.startswith("Area 2.51 cm² at the detector\n")


def test_rois_follow_the_frames_of_a_file_and_go_with_another_file(qtbot, viewer: ImageViewer) -> None:
    paths = [dicom_test_file("emri_small.dcm"), dicom_test_file("MR_small.dcm")]
    viewer.set_images(paths)
    shown(qtbot, viewer)
    first = viewer.roi((10, 10), (50, 40))
    assert first is not None and first.statistics.value_unit == "" and " HU" not in first.text  # MR: no unit
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    shown(qtbot, viewer)
    assert viewer.current_frame() == 1
    [now] = viewer.rois()
    ds, arr = load_dataset_and_pixels(paths[0], 1)
    values = modality_frame(arr, ds, 1).values.astype(np.float64)
    inside = values[ellipse_inside(values.shape, (30.0, 25.0), (20.0, 15.0))]
    assert now.start == first.start and now.statistics.count == first.statistics.count == inside.size
    assert now.statistics.mean == pytest.approx(float(inside.mean())) != first.statistics.mean  # this frame's
    assert viewer._rois[0].label.toPlainText() == now.text
    viewer.go_to(1)
    assert viewer.current_path() == paths[1] and viewer.rois() == []
    assert [type(item).__name__ for item in viewer.vb.addedItems] == ["ImageItem"]


def test_the_labels_stay_in_view_and_off_each_other(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    viewer.roi((30, 40), (70, 80))
    viewer.roi((80, 20), (100, 30))
    viewer.roi((100, 100), (126, 124))  # in the bottom-right corner: past it is off the view
    viewer.measure((10, 60), (25, 110))
    viewer.angle((90, 30), (50, 70), (100, 90))  # its label at the vertex, outside the angle
    viewer.angle((20, 20), (5, 5), (30, 5))  # the vertex under the top-left texts: the label goes past an end
    port = viewer.view.viewport()
    room = QRectF(0.0, 0.0, float(port.width()), float(port.height()))
    qtbot.wait(50)
    for _ in range(2):  # as placed, and placed again on a zoom
        marks = viewer._marks()
        boxes = [mark.box for mark in marks]
        assert all(box is not None and room.contains(box) for box in boxes)
        assert not any(a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a and b)
        for mark, box in zip(marks, boxes, strict=True):  # drawn where the box says
            drawn = viewer.view.mapFromScene(mark.label.mapRectToScene(mark.label.boundingRect())).boundingRect()
            assert box is not None and abs(drawn.center().x() - box.center().x()) < 3
            assert abs(drawn.center().y() - box.center().y()) < 3
        viewer.zoom_by(1.1)


def test_a_ruler_end_and_a_region_are_taken_hold_of_and_moved(qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    """As in PACS viewers: while measuring, a press on a ruler's end moves that end (the other stays;
    the length follows, in mm on non-square pixels, also on a turned image); in the region mode a press
    inside a region moves the whole region (its figures are then those of the new place), kept on the
    image; a press elsewhere draws a new one; a click on an end does not remove the ruler."""
    counts: list[int] = []
    viewer.set_images([wide_pixels(tmp_path)])  # 1 mm across, 0.5 mm down
    shown(qtbot, viewer)
    viewer.marks_changed.connect(counts.append)
    qtbot.keyClick(viewer, Qt.Key.Key_M)
    left_drag(qtbot, viewer, (10, 20), (50, 80))
    left_drag(qtbot, viewer, (50, 81), (50, 121))  # from the first ruler's end: that end moves
    [ruler] = viewer.measurements()
    assert np.allclose(ruler.start, (10, 20), atol=0.3) and np.allclose(ruler.end, (50, 121), atol=0.3)
    assert ruler.length == pytest.approx(math.hypot(40, 101 * 0.5), abs=0.3)
    left_drag(qtbot, viewer, (10, 21), (30, 20))  # its start moves too (the other end stays)
    [ruler] = viewer.measurements()
    assert {tuple(np.round(p)) for p in (ruler.start, ruler.end)} == {(30, 20), (50, 121)}
    qtbot.keyClick(viewer, Qt.Key.Key_BracketRight)  # on the turned image, the same
    left_drag(qtbot, viewer, (50, 121), (50, 100))
    [ruler] = viewer.measurements()
    assert {tuple(np.round(p)) for p in (ruler.start, ruler.end)} == {(30, 20), (50, 100)}
    assert ruler.length == pytest.approx(math.hypot(20, 80 * 0.5), abs=0.3)
    left_drag(qtbot, viewer, (30, 20), (30.2, 20))  # a click on an end: still there
    assert len(viewer.measurements()) == 1
    left_drag(qtbot, viewer, (5, 60), (5, 110))  # away from its ends: a new ruler
    assert len(viewer.measurements()) == 2 and counts[-1] == 2
    assert counts == [1, 1, 1, 1, 2]  # drawn, then each of the three holds told the window (other figures)

    qtbot.keyClick(viewer, Qt.Key.Key_E)
    left_drag(qtbot, viewer, (10, 10), (30, 50))  # a region 20 × 40 pixels, centred on (20, 30)
    before = viewer.rois()[0].statistics
    left_drag(qtbot, viewer, (20, 30), (35, 60))  # inside it: the whole region moves by (15, 30)
    [region] = viewer.rois()
    # (the press and the release each land on a whole screen pixel: a travel within ±0.6 stored pixels)
    assert np.allclose(region.start, (25, 40), atol=0.6) and np.allclose(region.end, (45, 80), atol=0.6)
    assert region.statistics.centre == pytest.approx((35, 60), abs=0.6)
    assert region.statistics.area == pytest.approx(before.area, rel=1e-3)  # moved, not resized
    left_drag(qtbot, viewer, (35, 60), (200, 60))  # pushed against the right edge: it stops there
    [region] = viewer.rois()
    assert max(region.start[0], region.end[0]) == pytest.approx(viewer.stored_size()[0], abs=1e-6)
    assert abs(region.end[0] - region.start[0]) == pytest.approx(20, abs=0.3)
    left_drag(qtbot, viewer, (2, 120), (12, 126))  # outside it: a new region
    assert len(viewer.rois()) == 2


def hover(qtbot, viewer: ImageViewer, point: tuple[float, float]) -> None:
    """The mouse moved (no button) over a stored-image point (column, row), wherever the turn shows it
    (after a pause: pyqtgraph drops moves that come less than 10 ms apart)."""
    qtbot.wait(15)
    port = viewer.view.viewport()
    pos = QPointF(viewer.view.mapFromScene(viewer.scene_point(*point)))
    viewer.view.viewportEvent(QMouseEvent(QEvent.Type.MouseMove, pos, port.mapToGlobal(pos), Qt.MouseButton.NoButton,
                                          Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))


def test_the_value_under_the_mouse_and_the_cursor_over_a_mark(qtbot, viewer: ImageViewer) -> None:
    """As PACS viewers do: the pixel under the mouse and its HU value in the bottom-right corner, from the
    file (stored value x slope + intercept), also on a turned image; gone when the mouse leaves and never
    in a saved picture; over a ruler's end (measuring) the cursor says a drag moves it."""
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    hu = ct_hounsfield()
    hover(qtbot, viewer, (70.5, 40.5))
    expected = f"x 70 y 40: {hu[40, 70]:.0f} HU"
    assert viewer.pixel_value() == expected
    assert viewer.overlay_text()["br"].splitlines()[0] == expected
    qtbot.keyClick(viewer, Qt.Key.Key_BracketRight)
    qtbot.keyClick(viewer, Qt.Key.Key_H)
    hover(qtbot, viewer, (20.5, 100.5))
    assert viewer.pixel_value() == f"x 20 y 100: {hu[100, 20]:.0f} HU"
    assert viewer._overlay_texts(screen=False)["br"].splitlines()[0] != viewer.pixel_value()  # screen only
    QApplication.sendEvent(viewer.view.viewport(), QEvent(QEvent.Type.Leave))
    assert viewer.pixel_value() == "" and "HU" not in viewer.overlay_text()["br"]

    port = viewer.view.viewport()
    viewer.toggle_measuring()
    viewer.measure((10.5, 20.5), (60.5, 20.5))
    hover(qtbot, viewer, (60.5, 20.5))
    assert port.cursor().shape() == Qt.CursorShape.SizeAllCursor
    hover(qtbot, viewer, (35.5, 70.5))
    assert port.cursor().shape() == Qt.CursorShape.CrossCursor


# --- angles ------------------------------------------------------------------------------------------
def click(qtbot, viewer: ImageViewer, point: tuple[float, float],
          modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """A left click (press and release, no move) on a stored-image point (column, row), wherever the turn
    shows it, with ``modifiers`` held."""
    qtbot.wait(15)
    port = viewer.view.viewport()
    pos = QPointF(viewer.view.mapFromScene(viewer.scene_point(*point)))
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, buttons in ((QEvent.Type.MouseButtonPress, left), (QEvent.Type.MouseButtonRelease, none)):
        viewer.view.viewportEvent(QMouseEvent(kind, pos, port.mapToGlobal(pos), left, buttons, modifiers))


def items_drawn(viewer: ImageViewer) -> list[str]:
    """What is drawn in the view: the image, and each mark's line and label (``vb.addedItems`` leaves out
    what was added with ``ignoreBounds``, as the marks are); not the reference line and the 3D cursor,
    which are always there (hidden without a window beside)."""
    return [type(item).__name__ for item in viewer.vb.childGroup.childItems()
            if item not in (viewer._reference_item, viewer._cursor_item)]


def drawn_points(viewer: ImageViewer, index: int = 0) -> list[tuple[float, float]]:
    """The points of an angle's polyline as drawn, taken back to the stored image."""
    line = viewer._angles[index].line
    return [viewer._image_point(QPointF(float(x), float(y))) for x, y in zip(line.xData, line.yData, strict=True)]


# By hand, on wide_pixels (columns 1 mm apart, rows 0.5 mm): from the vertex (60, 60) the arms to (80, 80)
# and (40, 80) are (20, 20) and (-20, 20) pixels, a right angle on the pixels, but (20, 10) and (-20, 10)
# mm in the patient: cos = (-400 + 100) / 500 = -0.6, 126.87°.
WIDE_ANGLE = math.degrees(math.acos(-0.6))


def test_an_angle_is_a_drag_then_a_click_and_measures_in_the_patients_plane(
        qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    viewer.set_images([wide_pixels(tmp_path)])
    shown(qtbot, viewer)
    counts: list[int] = []
    viewer.marks_changed.connect(counts.append)
    before = viewer.vb.viewRect()
    qtbot.keyClick(viewer, Qt.Key.Key_N)
    assert viewer.is_angle_mode() and not viewer.is_measuring() and not viewer.is_roi_mode()
    assert "Angle: drag the first arm, then click the second (N: stop)" in viewer.overlay_text()["br"]
    left_drag(qtbot, viewer, (60, 60), (80, 80))  # the first arm, from the vertex
    assert viewer.vb.viewRect() == before  # drawn, not panned
    assert viewer.angles() == [] and counts == []  # not an angle yet: its second arm is to come
    assert len(drawn_points(viewer)) == 2
    hover(qtbot, viewer, (50, 90))
    hover(qtbot, viewer, (40, 80))  # the second arm follows the mouse from the vertex
    points = drawn_points(viewer)
    assert len(points) == 3 and np.allclose(points, [(80, 80), (60, 60), (40, 80)], atol=0.3)
    assert viewer._angles[0].label.toPlainText() == f"{WIDE_ANGLE:.1f}°"  # shown as it moves
    click(qtbot, viewer, (40, 80))
    [angle] = viewer.angles()
    assert counts == [1]
    assert np.allclose([angle.first_end, angle.vertex, angle.second_end], [(80, 80), (60, 60), (40, 80)], atol=0.3)
    assert angle.degrees == pytest.approx(WIDE_ANGLE, abs=0.5) and abs(angle.degrees - 90.0) > 30
    assert angle.text == f"{angle.degrees:.1f}°" and angle.text.endswith("°")
    label, box = viewer._angles[0].label, viewer._angles[0].box
    assert label.toPlainText() == angle.text and label.isVisible()
    vertex = QPointF(viewer.view.mapFromScene(viewer.scene_point(*angle.vertex)))
    # at the vertex, outside the angle: the arms go down from it, the label sits on it from above
    assert box is not None and box.bottom() == pytest.approx(vertex.y(), abs=1.0)
    assert box.left() - 1 <= vertex.x() <= box.right() + 1
    hover(qtbot, viewer, (100, 20))  # finished: the mouse no longer moves it
    assert viewer.angles() == [angle]
    assert viewer.vb.viewRect() == before

    # turned and flipped, the same stored points and the same degrees, drawn where they are
    for key in (Qt.Key.Key_BracketRight, Qt.Key.Key_H, Qt.Key.Key_V):
        qtbot.keyClick(viewer, key)
        assert viewer.angles() == [angle]
        drawn_vertex = viewer.vb.childGroup.mapToScene(QPointF(viewer._angles[0].line.xData[1],
                                                              viewer._angles[0].line.yData[1]))
        assert (drawn_vertex - viewer.scene_point(*angle.vertex)).manhattanLength() < 1e-6
    # drawn on the turned image: by hand, arms (0, 60) and (-30, 30) px are (0, 30) and (-30, 15) mm:
    # atan(30 / 15) = 63.43° (45° on the pixels)
    left_drag(qtbot, viewer, (100, 40), (100, 100))
    hover(qtbot, viewer, (70, 70))
    click(qtbot, viewer, (70, 70))
    assert len(viewer.angles()) == 2 and counts == [1, 2]
    assert viewer.angles()[1].degrees == pytest.approx(math.degrees(math.atan(2.0)), abs=0.5)
    qtbot.keyClick(viewer, Qt.Key.Key_R)  # upright again: the same figures
    assert viewer.angles()[0] == angle

    qtbot.keyClick(viewer, Qt.Key.Key_Delete)
    assert viewer.angles() == [] and counts[-1] == 0 and viewer.is_angle_mode()
    assert items_drawn(viewer) == ["ImageItem"]  # the lines and labels went


def test_escape_removes_an_angle_not_finished_and_only_it(qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    viewer.set_images([wide_pixels(tmp_path)])
    shown(qtbot, viewer)
    viewer.toggle_measuring()
    left_drag(qtbot, viewer, (10, 100), (50, 120))
    viewer.toggle_angle()
    assert viewer.angle((80, 80), (60, 60), (40, 80)) is not None
    left_drag(qtbot, viewer, (20, 20), (40, 30))  # a second angle begun
    hover(qtbot, viewer, (30, 50))
    assert len(viewer._angles) == 2 and len(viewer.angles()) == 1
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert len(viewer._angles) == 1 and len(viewer.angles()) == 1 and len(viewer.measurements()) == 1
    assert viewer.is_angle_mode()  # the mode, the ruler and the finished angle stay
    assert items_drawn(viewer) == ["ImageItem"] + ["PlotCurveItem", "TextItem"] * 2  # the unfinished one's went
    click(qtbot, viewer, (30, 50))  # nothing open: a click adds nothing
    assert len(viewer._angles) == 1
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)  # otherwise as before: everything goes, the mode stops
    assert viewer.angles() == [] and viewer.measurements() == [] and not viewer.is_angle_mode()
    # a drag that comes back to within 3 screen pixels of its press is a jittery click: no arm, no angle open
    viewer.toggle_angle()
    port = viewer.view.viewport()
    press = QPointF(viewer.view.mapFromScene(viewer.scene_point(40, 40)))
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, pos, button, buttons in ((QEvent.Type.MouseButtonPress, press, left, left),
                                       (QEvent.Type.MouseMove, press + QPointF(30, 0), none, left),
                                       (QEvent.Type.MouseMove, press + QPointF(1, 1), none, left),
                                       (QEvent.Type.MouseButtonRelease, press + QPointF(1, 1), left, none)):
        qtbot.wait(15)
        viewer.view.viewportEvent(QMouseEvent(kind, pos, port.mapToGlobal(pos), button, buttons,
                                              Qt.KeyboardModifier.NoModifier))
    assert viewer._angles == [] and viewer._open_angle is None and items_drawn(viewer) == ["ImageItem"]
    viewer.toggle_angle()
    # turning the mode off (M here) drops an angle begun too
    viewer.toggle_angle()
    left_drag(qtbot, viewer, (20, 20), (40, 30))
    qtbot.keyClick(viewer, Qt.Key.Key_M)
    assert viewer._angles == [] and viewer.is_measuring() and not viewer.is_angle_mode()


def test_n_toggles_the_angle_mode_exclusive_with_measuring_and_regions(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    told: list[tuple[str, bool]] = []
    viewer.angle_mode_changed.connect(lambda on: told.append(("angle", on)))
    viewer.measuring_changed.connect(lambda on: told.append(("measure", on)))
    viewer.roi_mode_changed.connect(lambda on: told.append(("roi", on)))
    for key in (Qt.Key.Key_N, Qt.Key.Key_M, Qt.Key.Key_N, Qt.Key.Key_E, Qt.Key.Key_N, Qt.Key.Key_N):
        qtbot.keyClick(viewer, key)
    assert told == [("angle", True), ("measure", True), ("angle", False), ("measure", False), ("angle", True),
                    ("roi", True), ("angle", False), ("roi", False), ("angle", True), ("angle", False)]
    assert not (viewer.is_angle_mode() or viewer.is_measuring() or viewer.is_roi_mode())
    assert "Angle:" not in viewer.overlay_text()["br"]
    left_drag(qtbot, viewer, (10, 10), (50, 50))  # no mode: a left drag pans
    assert viewer._angles == []


def test_an_angles_points_are_taken_hold_of_and_moved(qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    """In the angle mode, a press near an angle's vertex or one of its ends moves that point (the others
    stay, the degrees follow, in the patient's plane); the window hears of it (the same count)."""
    viewer.set_images([wide_pixels(tmp_path)])
    shown(qtbot, viewer)
    port = viewer.view.viewport()
    viewer.toggle_angle()
    viewer.angle((80, 80), (60, 60), (40, 80))
    counts: list[int] = []
    viewer.marks_changed.connect(counts.append)
    hover(qtbot, viewer, (60, 60.5))  # over the vertex: a drag there moves it
    assert port.cursor().shape() == Qt.CursorShape.SizeAllCursor
    hover(qtbot, viewer, (60, 90))
    assert port.cursor().shape() == Qt.CursorShape.CrossCursor
    left_drag(qtbot, viewer, (60, 60.5), (60, 40))  # the vertex moves up 20 rows
    [angle] = viewer.angles()
    assert np.allclose([angle.first_end, angle.vertex, angle.second_end], [(80, 80), (60, 40), (40, 80)], atol=0.3)
    # by hand: arms (20, 40) and (-20, 40) px are (20, 20) and (-20, 20) mm: a right angle now
    assert angle.degrees == pytest.approx(90.0, abs=0.5)
    assert counts == [1] and len(viewer._angles) == 1
    left_drag(qtbot, viewer, (40, 80), (60, 120))  # the second end moves: straight down from the vertex
    [angle] = viewer.angles()
    assert np.allclose(angle.second_end, (60, 120), atol=0.3) and np.allclose(angle.vertex, (60, 40), atol=0.3)
    # by hand: arms (20, 20) and (0, 40) mm: 45°
    assert angle.degrees == pytest.approx(45.0, abs=0.5) and counts == [1, 1]
    left_drag(qtbot, viewer, (80, 80), (60, 40))  # an end put on the vertex: no angle, so the move is undone
    assert viewer.angles()[0] == angle and counts == [1, 1, 1]


def test_angles_stay_on_the_frames_of_a_file_and_go_with_another_file(qtbot, viewer: ImageViewer) -> None:
    paths = [dicom_test_file("emri_small.dcm"), dicom_test_file("MR_small.dcm")]
    viewer.set_images(paths)
    shown(qtbot, viewer)
    counts: list[int] = []
    viewer.marks_changed.connect(counts.append)
    placed = viewer.angle((40, 10), (10, 10), (10, 40))
    assert placed is not None and placed.degrees == pytest.approx(90.0) and counts == [1]
    assert viewer.angle((40, 10), (10, 10), (10, 10)) is None and counts == [1]  # an arm of no length: none
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.current_frame() == 1 and viewer.angles() == [placed]
    viewer.go_to(1)
    assert viewer.current_path() == paths[1] and viewer.angles() == [] and counts == [1, 0]
    assert items_drawn(viewer) == ["ImageItem"]


# --- arrows ------------------------------------------------------------------------------------------
def test_t_toggles_the_arrow_mode_exclusive_with_the_other_tools(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    told: list[tuple[str, bool]] = []
    viewer.arrow_mode_changed.connect(lambda on: told.append(("arrow", on)))
    viewer.angle_mode_changed.connect(lambda on: told.append(("angle", on)))
    viewer.measuring_changed.connect(lambda on: told.append(("measure", on)))
    viewer.roi_mode_changed.connect(lambda on: told.append(("roi", on)))
    qtbot.keyClick(viewer, Qt.Key.Key_T)
    assert viewer.is_arrow_mode()
    assert "Arrow: drag from the note to the finding (T: stop)" in viewer.overlay_text()["br"]
    for key in (Qt.Key.Key_M, Qt.Key.Key_T, Qt.Key.Key_E, Qt.Key.Key_T, Qt.Key.Key_N, Qt.Key.Key_T, Qt.Key.Key_T):
        qtbot.keyClick(viewer, key)
    assert told == [("arrow", True), ("measure", True), ("arrow", False), ("measure", False), ("arrow", True),
                    ("roi", True), ("arrow", False), ("roi", False), ("arrow", True), ("angle", True),
                    ("arrow", False), ("angle", False), ("arrow", True), ("arrow", False)]
    assert not (viewer.is_arrow_mode() or viewer.is_angle_mode() or viewer.is_measuring() or viewer.is_roi_mode())
    assert "Arrow:" not in viewer.overlay_text()["br"]
    qtbot.keyClick(viewer, Qt.Key.Key_T)
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)  # Esc stops it too
    assert told[-1] == ("arrow", False)
    left_drag(qtbot, viewer, (10, 10), (50, 50))  # no mode: a left drag pans
    assert viewer.arrows() == []


def arrow_head_drawn(viewer: ImageViewer, index: int = 0) -> tuple[float, float]:
    """Where the arrow's barbs meet as drawn (the point the polyline comes back to), in stored pixels."""
    line = viewer._arrows[index].line
    points = list(zip(line.xData, line.yData, strict=True))
    [meeting] = {point for point in points if points.count(point) > 1}
    return viewer._image_point(QPointF(float(meeting[0]), float(meeting[1])))


def test_a_drag_in_the_arrow_mode_draws_an_arrow_to_the_finding_with_a_note(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    notes: list[str | None] = ["Lesion 2 cm", None]
    asked: list[int] = []

    def ask(current: str) -> str | None:
        assert current == ""  # a new arrow has no note yet
        asked.append(len(viewer.arrows()))  # asked once the arrow is drawn
        return notes.pop(0)

    viewer.ask_note = ask
    counts: list[int] = []
    viewer.marks_changed.connect(counts.append)
    qtbot.keyClick(viewer, Qt.Key.Key_T)
    left_drag(qtbot, viewer, (20, 100), (80, 40))
    [arrow] = viewer.arrows()
    assert np.allclose([arrow.tail, arrow.head], [(20, 100), (80, 40)], atol=0.3) and arrow.note == "Lesion 2 cm"
    assert asked == [1] and counts == [1]
    assert np.allclose(arrow_head_drawn(viewer), (80, 40), atol=0.3)  # the arrowhead at the finding
    label = viewer._arrows[0].label
    assert label.isVisible() and label.textItem.toPlainText() == "Lesion 2 cm"
    tail_on_screen = viewer.view.mapFromScene(viewer.scene_point(20, 100))
    assert viewer._arrows[0].box is not None and viewer._arrows[0].box.adjusted(-2, -2, 2, 2).contains(
        QPointF(tail_on_screen))  # the note at the tail

    viewer.rotate(1)  # on a turned image: the stored points are the drag's, the head still at the finding
    qtbot.keyClick(viewer, Qt.Key.Key_H)
    left_drag(qtbot, viewer, (100, 20), (60, 70))
    assert len(viewer.arrows()) == 2 and asked == [1, 2]
    second = viewer.arrows()[1]
    assert np.allclose([second.tail, second.head], [(100, 20), (60, 70)], atol=0.3)
    assert second.note == "" and not viewer._arrows[1].label.isVisible()  # cancelled: the arrow stays, no note
    assert np.allclose(arrow_head_drawn(viewer, 1), (60, 70), atol=0.3)
    assert np.allclose(arrow_head_drawn(viewer, 0), (80, 40), atol=0.3)  # the first turned with the image
    assert viewer.arrows()[0] == arrow and counts == [1, 2]

    left_drag(qtbot, viewer, (30, 30), (30.2, 30.2))  # a jittery click leaves nothing and asks nothing
    assert len(viewer.arrows()) == 2 and asked == [1, 2] and counts[-1] == 2
    assert viewer.measurements() == [] and viewer.angles() == []  # not a measurement
    qtbot.keyClick(viewer, Qt.Key.Key_Delete)
    assert viewer.arrows() == [] and counts[-1] == 0 and items_drawn(viewer) == ["ImageItem"]


def test_an_arrows_ends_are_taken_hold_of_and_moved(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    viewer.ask_note = lambda current: pytest.fail("a move asks for no note")
    port = viewer.view.viewport()
    viewer.toggle_arrow()
    assert viewer.arrow((20, 100), (80, 40), "Mass") is not None
    assert viewer.arrow((10, 10), (10, 10)) is None  # no length: none
    counts: list[int] = []
    viewer.marks_changed.connect(counts.append)
    hover(qtbot, viewer, (80, 40.5))
    assert port.cursor().shape() == Qt.CursorShape.SizeAllCursor
    hover(qtbot, viewer, (50, 100))
    assert port.cursor().shape() == Qt.CursorShape.CrossCursor
    left_drag(qtbot, viewer, (80, 40.5), (90, 60))  # the head moves, the tail stays
    [arrow] = viewer.arrows()
    assert np.allclose([arrow.tail, arrow.head], [(20, 100), (90, 60)], atol=0.3) and arrow.note == "Mass"
    assert np.allclose(arrow_head_drawn(viewer), (90, 60), atol=0.3)
    left_drag(qtbot, viewer, (20, 100), (30, 110))  # the tail moves: still the tail, the head stays
    [arrow] = viewer.arrows()
    assert np.allclose([arrow.tail, arrow.head], [(30, 110), (90, 60)], atol=0.3)
    assert np.allclose(arrow_head_drawn(viewer), (90, 60), atol=0.3)
    assert counts == [1, 1] and len(viewer._arrows) == 1


def test_arrows_stay_on_the_frames_of_a_file_and_go_with_another_file(qtbot, viewer: ImageViewer) -> None:
    paths = [dicom_test_file("emri_small.dcm"), dicom_test_file("MR_small.dcm")]
    viewer.set_images(paths)
    shown(qtbot, viewer)
    counts: list[int] = []
    viewer.marks_changed.connect(counts.append)
    placed = viewer.arrow((40, 10), (10, 10), "here")
    assert placed is not None and counts == [1]
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.current_frame() == 1 and viewer.arrows() == [placed]
    viewer.go_to(1)
    assert viewer.current_path() == paths[1] and viewer.arrows() == [] and counts == [1, 0]
    assert items_drawn(viewer) == ["ImageItem"]


def double_click(qtbot, viewer: ImageViewer, point: tuple[float, float]) -> None:
    """A left double-click on a stored-image point (column, row), as the mouse sends it."""
    port = viewer.view.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    pos = QPointF(viewer.view.mapFromScene(viewer.scene_point(*point)))
    qtbot.wait(15)
    for kind, button, buttons in ((QEvent.Type.MouseButtonPress, left, left),
                                  (QEvent.Type.MouseButtonRelease, left, none),
                                  (QEvent.Type.MouseButtonDblClick, left, left),
                                  (QEvent.Type.MouseButtonRelease, left, none)):
        viewer.view.viewportEvent(QMouseEvent(kind, pos, port.mapToGlobal(pos), button, buttons,
                                              Qt.KeyboardModifier.NoModifier))
    qtbot.wait(5)


def test_a_double_click_on_an_arrow_edits_its_note(qtbot, viewer: ImageViewer) -> None:
    """In the arrow mode a double-click on an arrow's tail asks for its note again, started at the note
    it has (Cancel keeps it, an empty answer removes it); elsewhere a double-click still fits the image."""
    viewer.set_images([dicom_test_file("CT_small.dcm")])
    shown(qtbot, viewer)
    viewer.arrow((50.5, 75.5), (75.5, 50.5), "Lesion")
    answers: list[str | None] = ["Lesion 2 cm", None, ""]
    offered: list[str] = []

    def ask(current: str) -> str | None:
        offered.append(current)
        return answers.pop(0)

    viewer.ask_note = ask
    viewer.zoom_by(1.5)  # (the arrow stays in view)
    zoomed = viewer.zoom()
    qtbot.keyClick(viewer, Qt.Key.Key_T)
    double_click(qtbot, viewer, (50.5, 75.5))
    assert offered == ["Lesion"] and viewer.arrows()[0].note == "Lesion 2 cm"
    assert viewer._arrows[0].label.textItem.toPlainText() == "Lesion 2 cm"
    assert viewer.zoom() == pytest.approx(zoomed)  # edited, not fitted
    double_click(qtbot, viewer, (75.5, 50.5))  # the head too; cancelled: kept
    assert offered == ["Lesion", "Lesion 2 cm"] and viewer.arrows()[0].note == "Lesion 2 cm"
    double_click(qtbot, viewer, (50.5, 75.5))  # an empty note: removed
    assert viewer.arrows()[0].note == ""
    qtbot.keyClick(viewer, Qt.Key.Key_T)  # out of the arrow mode: a double-click fits, asks nothing
    double_click(qtbot, viewer, (50.5, 75.5))
    assert len(offered) == 3 and viewer.zoom() != pytest.approx(zoomed)


def test_a_ruler_on_an_ultrasound_is_in_mm_from_its_scan_areas_calibration(qtbot, viewer: ImageViewer) -> None:
    viewer.set_images([dicom_test_file("JPGLosslessP14SV1_1s_1f_8b.dcm")])  # 1024 x 768, 0.0255 cm a pixel
    shown(qtbot, viewer)
    ruler = viewer.measure((100.0, 100.0), (400.0, 500.0))
    assert ruler is not None and ruler.unit == "mm"
    assert ruler.length == pytest.approx(500 * 0.25476697, rel=1e-4)
    assert ruler.text.startswith(f"{ruler.length:.1f} mm")
