"""Save or copy the image as the reader sees it, on real files: the pixels are the viewer's, under a
window, a rotation and the rulers; no patient details unless asked; nothing on screen changes; one
line for every failure."""

from __future__ import annotations

import errno
import math
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("pyqtgraph")

from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QFileDialog

from tests.conftest import dicom_test_file
from zsmed.dicom.geometry import turned_point
from zsmed_desktop import image_export, ruler_marks
from zsmed_desktop.image_export import (
    ImageExportError,
    ask_and_save_image,
    blank_words,
    copy_image,
    copy_image_and_report,
    default_file_name,
    save_image,
)
from zsmed_desktop.viewer import ImageViewer, SnapshotError

TIMEOUT = 60_000
YELLOW = np.array([0xFF, 0xD5, 0x4A])  # the rulers' colour


def show(qtbot, viewer: ImageViewer, *paths: Path, title: str = "") -> None:
    viewer.set_images(list(paths), title=title)
    qtbot.waitUntil(lambda: not viewer.is_loading(), timeout=TIMEOUT)
    assert viewer.message() == ""


def rgb(image: QImage) -> np.ndarray:
    """(H, W, 3) uint8 of a QImage, independent of its format."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    height, width = image.height(), image.width()
    data = np.frombuffer(bytes(image.constBits()), dtype=np.uint8)
    return data.reshape(height, image.bytesPerLine())[:, : width * 3].reshape(height, width, 3).copy()


def as_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2) if grey.ndim == 2 else grey


def smoothly_scaled(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """The viewer's rendered pixels enlarged as the snapshot enlarges them (Qt's smooth scaling)."""
    pixels = np.ascontiguousarray(as_rgb(pixels))
    image = QImage(pixels.data, pixels.shape[1], pixels.shape[0], pixels.strides[0], QImage.Format.Format_RGB888)
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    return rgb(image.scaled(width, height, Qt.AspectRatioMode.IgnoreAspectRatio,
                            Qt.TransformationMode.SmoothTransformation))


def png_chunks(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        chunks.append(data[at + 4:at + 8])
        at += 12 + length
    return chunks


def screen_state(viewer: ImageViewer) -> tuple[object, ...]:
    corners = tuple((name, label.isVisible(), label.text(), label.pos().toTuple())
                    for name, label in viewer._corners.items())
    marks = tuple((m.start, m.end, m.box.getRect() if m.box else None, m.label.isVisible())
                  for m in viewer._marks())
    return (viewer.overlays_visible(), corners, viewer.zoom(), viewer.vb.viewRect().getRect(), viewer.turn(),
            viewer.window_level(), viewer.is_inverted(), marks, viewer.measurements(), viewer.rois(), viewer.angles(),
            viewer.rendered_image().tobytes())


def test_the_snapshot_is_the_rendered_image_under_a_window_and_a_rotation(qtbot, viewer: ImageViewer) -> None:
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"))
    viewer.toggle_overlays()  # no orientation letters: every pixel is the image's
    stored = viewer.snapshot(with_text=False, min_size=0)
    assert (stored.width(), stored.height()) == (128, 128)  # the stored resolution
    np.testing.assert_array_equal(rgb(stored), as_rgb(viewer.rendered_image()))

    viewer.set_window(40, 400)
    windowed = rgb(viewer.snapshot(with_text=False, min_size=0))
    np.testing.assert_array_equal(windowed, as_rgb(viewer.rendered_image()))
    assert not np.array_equal(windowed, rgb(stored))

    viewer.rotate(1)  # clockwise, as ] turns it
    turned = rgb(viewer.snapshot(with_text=False, min_size=0))
    np.testing.assert_array_equal(turned, np.rot90(windowed, -1))
    np.testing.assert_array_equal(turned, as_rgb(viewer.rendered_image()))
    viewer.flip_horizontal()
    np.testing.assert_array_equal(rgb(viewer.snapshot(with_text=False, min_size=0)), np.rot90(windowed, -1)[:, ::-1])
    viewer.invert()
    np.testing.assert_array_equal(rgb(viewer.snapshot(with_text=False, min_size=0)),
                                  255 - np.rot90(windowed, -1)[:, ::-1])


def test_a_small_image_is_enlarged_to_512_and_stays_the_rendered_image(qtbot, viewer: ImageViewer) -> None:
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"))
    viewer.toggle_overlays()
    picture = rgb(viewer.snapshot(with_text=False))
    assert picture.shape == (512, 512, 3)
    np.testing.assert_array_equal(picture, smoothly_scaled(viewer.rendered_image(), 512, 512))
    blocks = picture[:, :, 0].reshape(128, 4, 128, 4).mean(axis=(1, 3))  # back to the stored pixels
    assert np.abs(blocks - viewer.rendered_image()).mean() < 3


def test_colour_and_non_square_pixels(qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    show(qtbot, viewer, dicom_test_file("US1_UNCR.dcm"))  # RGB ultrasound, 640 x 480
    viewer.toggle_overlays()
    picture = viewer.snapshot(with_text=False)
    assert (picture.width(), picture.height()) == (640, 480)
    np.testing.assert_array_equal(rgb(picture), viewer.rendered_image())

    ds = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
    ds.PixelSpacing = [0.5, 1.0]  # each pixel twice as wide as tall: widened on the screen, never shrunk here
    wide = tmp_path / "wide_pixels.dcm"
    ds.save_as(wide)
    show(qtbot, viewer, wide)
    picture = viewer.snapshot(with_text=False, min_size=0)
    assert (picture.width(), picture.height()) == (256, 128)
    viewer.rotate(1)
    picture = viewer.snapshot(with_text=False, min_size=0)
    assert (picture.width(), picture.height()) == (128, 256)


def yellow_along(picture: np.ndarray, start: tuple[float, float], end: tuple[float, float], scale: float) -> float:
    """The share of points along the line, between its ends, drawn in the rulers' yellow."""
    points = [(start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
              for t in np.linspace(0.1, 0.9, 17)]
    hits = [np.abs(picture[int(y * scale), int(x * scale)].astype(int) - YELLOW).max() < 60 for x, y in points]
    return sum(hits) / len(hits)


def test_rulers_and_regions_are_drawn_where_they_measure_and_turn_with_the_image(
        qtbot, viewer: ImageViewer) -> None:
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"))
    viewer.toggle_overlays()
    before = rgb(viewer.snapshot(with_text=False))
    assert yellow_along(before, (20, 30), (90, 100), 4) == 0
    viewer.measure((20, 30), (90, 100))
    marked = rgb(viewer.snapshot(with_text=False))
    assert yellow_along(marked, (20, 30), (90, 100), 4) > 0.9
    rows, cols = np.nonzero(np.abs(marked.astype(int) - YELLOW).max(axis=2) < 40)
    (x0, y0), (x1, y1) = (20 * 4, 30 * 4), (90 * 4, 100 * 4)
    off_the_line = np.abs((x1 - x0) * (y0 - rows) - (x0 - cols) * (y1 - y0)) / np.hypot(x1 - x0, y1 - y0) > 4
    assert off_the_line.sum() > 50  # the label's text ("65.5 mm") beside the line
    assert viewer.measurements()[0].text == "65.5 mm"
    changed = np.any(marked != before, axis=2)
    assert changed.mean() < 0.25  # the rest is the image

    viewer.roi((60, 20), (100, 50))
    with_roi = rgb(viewer.snapshot(with_text=False))
    top_of_ellipse = with_roi[20 * 4 - 2:20 * 4 + 3, 80 * 4]
    assert (np.abs(top_of_ellipse.astype(int) - YELLOW).max(axis=1) < 60).any()
    assert np.any(with_roi[20 * 4 - 2:20 * 4 + 3, 80 * 4] != marked[20 * 4 - 2:20 * 4 + 3, 80 * 4])

    viewer.rotate(1)
    turned = rgb(viewer.snapshot(with_text=False))
    size = viewer.stored_size()
    start, end = (turned_point(p, size, viewer.turn()) for p in ((20, 30), (90, 100)))
    assert yellow_along(turned, start, end, 4) > 0.9
    assert yellow_along(turned, (20, 30), (90, 100), 4) < 0.5  # not where it was before the turn


def test_angles_are_drawn_as_two_arms_from_the_vertex_with_their_label(qtbot, viewer: ImageViewer) -> None:
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"))
    viewer.toggle_overlays()
    first, vertex, second = (90, 30), (50, 70), (100, 90)
    before = rgb(viewer.snapshot(with_text=False))
    assert yellow_along(before, vertex, first, 4) == 0 and yellow_along(before, vertex, second, 4) == 0
    angle = viewer.angle(first, vertex, second)
    assert angle is not None and angle.text == "66.8°"
    marked = rgb(viewer.snapshot(with_text=False))
    assert yellow_along(marked, vertex, first, 4) > 0.9 and yellow_along(marked, vertex, second, 4) > 0.9
    assert yellow_along(marked, first, second, 4) < 0.2  # a polyline through the vertex, not a closed triangle
    # the label ("66.8°") at the vertex, outside the angle (the arms go right): to its left
    yellow = np.abs(marked.astype(int) - YELLOW).max(axis=2) < 40
    left_of_vertex = yellow[vertex[1] * 4 - 30:vertex[1] * 4 + 30, vertex[0] * 4 - 60:vertex[0] * 4 - 4]
    assert left_of_vertex.sum() > 30
    assert np.any(marked != before, axis=2).mean() < 0.1  # the rest is the image

    viewer.rotate(1)
    turned = rgb(viewer.snapshot(with_text=False))
    size = viewer.stored_size()
    at = {name: turned_point(p, size, viewer.turn()) for name, p in (("first", first), ("vertex", vertex),
                                                                      ("second", second))}
    assert yellow_along(turned, at["vertex"], at["first"], 4) > 0.9
    assert yellow_along(turned, at["vertex"], at["second"], 4) > 0.9
    viewer.clear_measurements()
    assert yellow_along(rgb(viewer.snapshot(with_text=False)), at["vertex"], at["first"], 4) == 0


def barb_ends(tail: tuple[float, float], head: tuple[float, float], length: float) -> list[tuple[float, float]]:
    """Where an arrowhead's barbs reach (picture pixels): ``length`` back from the head, 25° off the shaft."""
    back = np.subtract(tail, head) / np.hypot(*np.subtract(tail, head)) * length
    ends = []
    for sign in (1, -1):
        c, s = math.cos(math.radians(25) * sign), math.sin(math.radians(25) * sign)
        ends.append((head[0] + back[0] * c - back[1] * s, head[1] + back[0] * s + back[1] * c))
    return ends


def yellow_near(picture: np.ndarray, point: tuple[float, float], reach: int = 1) -> bool:
    x, y = round(point[0]), round(point[1])
    patch = picture[y - reach:y + reach + 1, x - reach:x + reach + 1].astype(int)
    return bool((np.abs(patch - YELLOW).max(axis=2) < 60).any())


def test_arrows_are_drawn_with_their_head_at_the_finding_and_their_note_at_the_tail(
        qtbot, viewer: ImageViewer) -> None:
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"))
    viewer.toggle_overlays()
    tail, head = (20, 100), (80, 40)
    before = rgb(viewer.snapshot(with_text=False))
    assert yellow_along(before, tail, head, 4) == 0
    viewer.arrow(tail, head)
    bare = rgb(viewer.snapshot(with_text=False))
    assert yellow_along(bare, tail, head, 4) > 0.9
    picture_tail, picture_head = (tail[0] * 4, tail[1] * 4), (head[0] * 4, head[1] * 4)
    # the arrowhead at the head (14 px barbs on a 512 px picture), none at the tail
    assert all(yellow_near(bare, end) for end in barb_ends(picture_tail, picture_head, 12))
    assert not any(yellow_near(bare, end) for end in barb_ends(picture_head, picture_tail, 12))
    assert np.any(bare != before, axis=2).mean() < 0.05  # no label without a note

    viewer.clear_measurements()
    viewer.arrow(tail, head, "Lesion")
    noted = rgb(viewer.snapshot(with_text=False))
    changed = np.any(noted != bare, axis=2)
    rows, cols = np.nonzero(changed)
    assert len(rows) > 100  # the note's label ...
    # ... at the tail (within a label's size of it), away from the head: below and to the left
    assert np.abs(cols - picture_tail[0]).max() < 120 and np.abs(rows - picture_tail[1]).max() < 40
    assert np.median(rows) > picture_tail[1] - 2
    assert yellow_along(noted, tail, head, 4) > 0.9

    viewer.rotate(1)  # the arrow turns with the image, its head still at the finding
    turned = rgb(viewer.snapshot(with_text=False))
    size = viewer.stored_size()
    t, h = (turned_point(p, size, viewer.turn()) for p in (tail, head))
    assert yellow_along(turned, t, h, 4) > 0.9
    assert all(yellow_near(turned, end) for end in barb_ends((t[0] * 4, t[1] * 4), (h[0] * 4, h[1] * 4), 12))


def test_an_angle_not_finished_is_not_in_the_picture(qtbot, viewer: ImageViewer) -> None:
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"))
    viewer.toggle_overlays()
    plain = rgb(viewer.snapshot(with_text=False))
    viewer.toggle_angle()
    mark = viewer._new_mark(ruler_marks.Angle, (50.0, 70.0))  # as a drag begins one: its second arm to come
    mark.end, mark.second = (90.0, 30.0), (100.0, 90.0)
    viewer._open_angle = mark
    viewer._place_mark(mark)
    assert viewer.angles() == []
    np.testing.assert_array_equal(rgb(viewer.snapshot(with_text=False)), plain)


def test_without_text_there_are_no_patient_details_and_with_text_there_are(qtbot, viewer: ImageViewer) -> None:
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"), title="Patient^Name  ·  Series 1")
    assert "CompressedSamples CT1" in viewer.overlay_text()["tl"]  # drawn top left on the screen
    image = smoothly_scaled(viewer.rendered_image(), 512, 512)
    plain = rgb(viewer.snapshot(with_text=False))
    full = rgb(viewer.snapshot(with_text=True))
    corners = {"tl": (slice(0, 80), slice(0, 200)), "tr": (slice(0, 60), slice(312, 512)),
               "bl": (slice(440, 512), slice(0, 200)), "br": (slice(470, 512), slice(312, 512))}
    for name, (rows, cols) in corners.items():
        np.testing.assert_array_equal(plain[rows, cols], image[rows, cols], err_msg=name)  # nothing drawn
        grey = np.all(np.abs(full[rows, cols].astype(int) - 0xD9) < 25, axis=2)
        text = grey & np.any(full[rows, cols] != image[rows, cols], axis=2)
        assert text.sum() > 100, name  # the overlay's light grey letters
    # the orientation letters name no one: they stay (while the overlays are shown), the middle of each edge
    assert np.any(plain[0:30, 240:272] != image[0:30, 240:272])
    viewer.toggle_overlays()
    np.testing.assert_array_equal(rgb(viewer.snapshot(with_text=False)), image)
    # asked for, the details are drawn even while hidden on the screen
    np.testing.assert_array_equal(rgb(viewer.snapshot(with_text=True))[corners["tl"]], full[corners["tl"]])


def test_nothing_on_screen_changes(qtbot, viewer: ImageViewer) -> None:
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"), title="CT chest")
    viewer.zoom_by(1.7)
    viewer.rotate(1)
    viewer.measure((20, 30), (90, 100))
    viewer.roi((60, 20), (100, 50))
    viewer.angle((90, 30), (50, 70), (100, 90))
    viewer.toggle_measuring()
    qtbot.wait(20)
    for overlays in (True, False):
        assert viewer.overlays_visible() is overlays
        state, screen = screen_state(viewer), viewer.view.grab().toImage()
        for with_text in (False, True):
            viewer.snapshot(with_text=with_text)
            copy_image(viewer, with_text=with_text)
        qtbot.wait(20)
        assert screen_state(viewer) == state
        assert viewer.view.grab().toImage() == screen
        viewer.toggle_overlays()


def test_save_png_and_jpeg(qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"), title="Patient^Name")
    viewer.measure((20, 30), (90, 100))
    expected = rgb(viewer.snapshot(with_text=False))
    written = save_image(viewer, tmp_path / "key.png")
    assert written == tmp_path / "key.png"
    saved = QImage(str(written))
    assert (saved.width(), saved.height()) == (512, 512)
    np.testing.assert_array_equal(rgb(saved), expected)
    # no text chunks (nor EXIF): nothing about the patient in the file's metadata
    assert not {b"tEXt", b"zTXt", b"iTXt", b"eXIf"} & set(png_chunks(written))
    assert Image.open(written).text == {}
    assert b"Patient" not in written.read_bytes() and b"CompressedSamples" not in written.read_bytes()

    with_text = save_image(viewer, tmp_path / "details.png", with_text=True)
    np.testing.assert_array_equal(rgb(QImage(str(with_text))), rgb(viewer.snapshot(with_text=True)))

    jpeg = save_image(viewer, tmp_path / "key.JPG")
    assert jpeg.read_bytes()[:2] == b"\xff\xd8"
    assert b"CompressedSamples" not in jpeg.read_bytes() and b"Patient" not in jpeg.read_bytes()
    loaded = rgb(QImage(str(jpeg)))
    assert loaded.shape == expected.shape
    assert np.abs(loaded.astype(int) - expected).mean() < 2.5  # quality 95
    low = tmp_path / "low.jpg"
    image_export.JPEG_QUALITY, quality = 20, image_export.JPEG_QUALITY
    try:
        save_image(viewer, low)
    finally:
        image_export.JPEG_QUALITY = quality
    assert jpeg.stat().st_size > 1.5 * low.stat().st_size  # the quality is the one asked for

    assert save_image(viewer, tmp_path / "noext") == tmp_path / "noext.png"
    assert (tmp_path / "noext.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["details.png", "key.JPG", "key.png", "low.jpg", "noext.png"]


def test_copy_puts_the_snapshot_on_the_clipboard(qtbot, viewer: ImageViewer) -> None:
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"))
    viewer.set_window(40, 400)
    copied = copy_image(viewer)
    pasted = clipboard.image()
    assert (pasted.width(), pasted.height()) == (512, 512)
    np.testing.assert_array_equal(rgb(pasted), rgb(copied))
    np.testing.assert_array_equal(rgb(pasted), rgb(viewer.snapshot(with_text=False)))
    said: list[tuple[str, bool]] = []
    assert copy_image_and_report(viewer, lambda text, warning: said.append((text, warning)), with_text=True)
    assert said == [("Image copied (512 × 512, with patient details)", False)]
    np.testing.assert_array_equal(rgb(clipboard.image()), rgb(viewer.snapshot(with_text=True)))


def test_failures_are_one_line(qtbot, viewer: ImageViewer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[tuple[str, bool]] = []

    def report(text: str, *, warning: bool = False) -> None:
        said.append((text, warning))

    # no image
    with pytest.raises(SnapshotError, match="No image"):
        viewer.snapshot(with_text=False)
    with pytest.raises(ImageExportError, match="No image to save or copy"):
        save_image(viewer, tmp_path / "x.png")
    assert not copy_image_and_report(viewer, report)
    assert ask_and_save_image(viewer, None, tmp_path, report=report) is None  # no dialog to wait for
    assert said == [("No image to save or copy: open a series first", True)] * 2
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"DICM" * 10)
    viewer.set_images([broken])
    qtbot.waitUntil(lambda: not viewer.is_loading(), timeout=TIMEOUT)
    assert viewer.message()
    with pytest.raises(ImageExportError, match="No image"):
        copy_image(viewer)

    show(qtbot, viewer, dicom_test_file("CT_small.dcm"))
    # a folder that is not there, a name that is a folder, a full disk
    for target, reason in (
            (tmp_path / "missing" / "x.png", "Image not saved: the folder missing does not exist"),
            (tmp_path / "taken.png", f"Image not saved as taken.png in {tmp_path.name}: is a directory")):
        if target.name == "taken.png":
            target.mkdir()
        with pytest.raises(ImageExportError) as caught:
            save_image(viewer, target)
        assert str(caught.value) == reason
    existing = tmp_path / "key.png"
    existing.write_bytes(b"the older picture")

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    import zsmed.paths  # the picture is written through zsmed.paths.replacing, which flushes it to the disk

    monkeypatch.setattr(zsmed.paths.os, "fsync", disk_full)
    with pytest.raises(ImageExportError) as caught:
        save_image(viewer, existing)
    assert str(caught.value) == f"Image not saved as key.png in {tmp_path.name}: no space left on device"
    assert existing.read_bytes() == b"the older picture"  # left as it was, and no half-written file beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.dcm", "key.png", "taken.png"]


def run_dialog(qtbot, act) -> list[str]:
    """Run ``act(dialog, box)`` on the Save the image dialog once it is open; returns what it saw."""
    seen: list[str] = []

    def when_open() -> None:
        dialogs = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, QFileDialog) and w.objectName() == "SaveImageDialog" and w.isVisible()]
        if not dialogs:
            QTimer.singleShot(20, when_open)
            return
        dialog = dialogs[0]
        box = dialog.findChild(QCheckBox, "includePatientDetails")
        try:
            seen.extend([dialog.directory().absolutePath(), dialog.selectedFiles()[0], str(box.isChecked())])
            act(dialog, box)
        finally:
            if dialog.isVisible():  # ``act`` failed: close the dialog, or the test would wait for ever
                dialog.reject()

    QTimer.singleShot(0, when_open)
    return seen


def test_the_dialog_offers_a_name_without_the_patient_and_no_details_by_default(
        qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    show(qtbot, viewer, dicom_test_file("CT_small.dcm"), title="Patient^Name")
    assert default_file_name(viewer) == "CT_series1_image1.png"
    said: list[tuple[str, bool]] = []

    def report(text: str, *, warning: bool = False) -> None:
        said.append((text, warning))

    def plain(dialog: QFileDialog, box: QCheckBox) -> None:
        dialog.selectFile(str(tmp_path / "plain"))
        dialog.accept()

    seen = run_dialog(qtbot, plain)
    written = ask_and_save_image(viewer, None, tmp_path, report=report)
    assert seen == [str(tmp_path), str(tmp_path / "CT_series1_image1.png"), "False"]
    assert written == tmp_path / "plain.png" and written.is_file()
    np.testing.assert_array_equal(rgb(QImage(str(written))), rgb(viewer.snapshot(with_text=False)))
    assert said == [("Image saved as plain.png in " + tmp_path.name + " (no patient details)", False)]

    renamed: list[str] = []

    def details_as_jpeg(dialog: QFileDialog, box: QCheckBox) -> None:
        box.setChecked(True)
        combo = dialog.findChild(QComboBox, "fileTypeCombo")  # the reader picks JPEG in the list of types
        qtbot.keyClick(combo, Qt.Key.Key_Down)
        renamed.extend(dialog.selectedFiles())
        dialog.selectFile(str(tmp_path / "details"))
        dialog.accept()

    run_dialog(qtbot, details_as_jpeg)
    written = ask_and_save_image(viewer, None, tmp_path, report=report)
    assert renamed == [str(tmp_path / "CT_series1_image1.jpg")]  # the name follows the type chosen
    assert written == tmp_path / "details.jpg" and written.read_bytes()[:2] == b"\xff\xd8"
    loaded, full = rgb(QImage(str(written))), rgb(viewer.snapshot(with_text=True))
    assert np.abs(loaded[:80, :200].astype(int) - full[:80, :200]).mean() < 4  # the patient's corner is there
    assert said[-1] == ("Image saved as details.jpg in " + tmp_path.name + " (with patient details)", False)

    run_dialog(qtbot, lambda dialog, box: dialog.reject())
    assert ask_and_save_image(viewer, None, tmp_path / "not-there", report=report) is None  # cancelled: nothing said
    assert len(said) == 2

    (tmp_path / "taken.png").mkdir()

    def onto_a_folder(dialog: QFileDialog, box: QCheckBox) -> None:
        dialog.selectFile(str(tmp_path / "taken.png" / "nested" / "x.png"))
        dialog.accept()

    run_dialog(qtbot, onto_a_folder)
    assert ask_and_save_image(viewer, None, tmp_path, report=report) is None
    text, warning = said[-1]
    assert warning and text == "Image not saved: the folder nested does not exist"


def test_default_names_of_frames_and_photos(qtbot, viewer: ImageViewer, tmp_path: Path) -> None:
    show(qtbot, viewer, dicom_test_file("emri_small.dcm"))  # 10 frames
    viewer.go_to(0, 2)
    qtbot.waitUntil(lambda: not viewer.is_loading(), timeout=TIMEOUT)
    name = default_file_name(viewer, ".jpg")
    assert name.startswith("MR_") and name.endswith("_frame3.jpg")
    photo = tmp_path / "Smith John.png"
    Image.fromarray(np.full((40, 60, 3), 128, dtype=np.uint8)).save(photo)
    show(qtbot, viewer, photo)
    assert default_file_name(viewer) == "photo_image1.png"  # not the file's name: it may be the patient's


def test_text_burned_into_the_pixels_is_warned_of(qtbot, viewer: ImageViewer, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Leaving the overlays out cannot remove text in the pixels: where Tesseract is not installed, a picture of
    an image that may carry some (an ultrasound, one flagged Burned In Annotation YES) comes with a warning; a
    CT with a plain note."""
    from zsmed.dicom import text_in_pixels

    monkeypatch.setattr(text_in_pixels, "ocr_program", lambda: None)
    ds = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    burned = tmp_path / "burned.dcm"
    ds.save_as(burned)
    said: list[tuple[str, bool]] = []

    def report(text: str, *, warning: bool = False) -> None:
        said.append((text, warning))

    show(qtbot, viewer, dicom_test_file("CT_small.dcm"))
    assert copy_image_and_report(viewer, report)
    assert said[-1][1] is False and "no patient details)" in said[-1][0]
    for image in (burned, dicom_test_file("US1_UNCR.dcm")):
        show(qtbot, viewer, image)
        assert copy_image_and_report(viewer, report)
        assert said[-1][1] is True and "burned into its pixels" in said[-1][0]
    assert copy_image_and_report(viewer, report, with_text=True)
    assert said[-1] == (said[-1][0], False) and "with patient details" in said[-1][0]


@pytest.mark.skipif(shutil.which("tesseract") is None,
                    reason="Tesseract not installed (Debian package tesseract-ocr; installer/system-packages.sh)")
def test_an_ultrasounds_printed_words_are_blanked_in_the_picture(qtbot, viewer: ImageViewer) -> None:
    """An ultrasound machine prints the hospital's name and the time into the image: without the patient
    details, the picture has them blanked (the ruler drawn on it, and its label, stay); with them, as shown."""
    from zsmed.dicom.text_in_pixels import find_text

    said: list[tuple[str, bool]] = []
    show(qtbot, viewer, dicom_test_file("US1_UNCR.dcm"))
    viewer.toggle_overlays()
    viewer.measure((100.5, 200.5), (300.5, 200.5))
    assert copy_image_and_report(viewer, lambda text, *, warning=False: said.append((text, warning)))
    assert said[-1][1] is True and "words text recognition read in its pixels blanked" in said[-1][0]
    plain = viewer.snapshot(with_text=False)
    blanked = viewer.snapshot(with_text=False, blank=blank_words)
    words_before = {word.text for word in find_text(rgb(plain))}
    words_after = {word.text for word in find_text(rgb(blanked))}
    assert {"BAPTIST", "MED", "CTR", "LYMPH", "NODE"} <= words_before
    assert not {"BAPTIST", "MED", "CTR", "LYMPH", "NODE"} & words_after
    assert not rgb(blanked)[5:25, 15:60].any()  # where BAPTIST is printed (top left): black
    ruler_row = rgb(blanked)[200, 120:280]
    assert np.array_equal(ruler_row, rgb(plain)[200, 120:280])  # the ruler drawn after the blanking
