"""The reformat of an enhanced multi-frame series in the app: pydicom's real CT series (CT5N) converted by
highdicom into one Legacy Converted Enhanced CT file, as a modern scanner writes a series. The reformat is
offered and made from its frames, reference lines and the 3D cursor go to the frame (not only the file) they
concern, and a multi-frame file whose frames have no positions is refused in a line in the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from tests.conftest import dicom_test_file
from tests.desktop.reading_room import SCAN_TIMEOUT, make_window, open_and_wait
from tests.desktop.test_reformat_window import LOAD_TIMEOUT, _choose, ct5n, screen_point, shift_click
from tests.desktop.test_viewer import click
from tests.dicom.test_volume_enhanced import enhanced_ct
from zsmed.dicom.decode import read_dataset
from zsmed.dicom.display import image_plane
from zsmed_desktop.main_window import MainWindow
from zsmed_desktop.reformat_window import ReformatWindow


def frame_heights(path: Path) -> list[float]:
    """Each frame's height in the patient (z, mm), in frame order."""
    groups = pydicom.dcmread(path, stop_before_pixels=True).PerFrameFunctionalGroupsSequence
    return [float(g.PlanePositionSequence[0].ImagePositionPatient[2]) for g in groups]


def reading_enhanced_ct(qtbot, tmp_path: Path) -> tuple[MainWindow, Path]:
    folder = tmp_path / "study"
    folder.mkdir()
    enhanced = enhanced_ct(ct5n(), folder / "enhanced_ct.dcm")
    main = make_window(qtbot, tmp_path)
    main.show()
    qtbot.waitExposed(main)
    open_and_wait(qtbot, main, [folder])
    _choose(qtbot, main, "enhanced_ct")
    return main, enhanced


def test_an_enhanced_ct_is_reformatted_and_the_3d_cursor_finds_its_frames(qtbot, tmp_path: Path) -> None:
    main, enhanced = reading_enhanced_ct(qtbot, tmp_path)
    assert main.current_series is not None and main.current_series.image_paths == [enhanced]
    assert main.action("reformat").isEnabled()  # one file, five frames: a volume
    reformat_window = main.open_reformat()
    assert reformat_window is not None
    qtbot.waitUntil(lambda: not reformat_window.is_loading() and reformat_window.shown() is not None,
                    timeout=LOAD_TIMEOUT)
    volume = reformat_window.volume()
    assert volume is not None and volume.voxels.shape == (5, 16, 16) and set(volume.paths) == {enhanced}
    shown = reformat_window.shown()
    assert shown is not None and shown.plane == "coronal" and shown.image.shape == (5, 16)

    # the frame read is a line across the coronal, at that frame's row (head at the top)
    heights = frame_heights(enhanced)
    heads_first = sorted(range(5), key=lambda f: -heights[f])
    for frame in (1, 3):
        main.viewer.go_to(0, frame)
        qtbot.waitUntil(lambda f=frame: main.viewer.current_frame() == f and not main.viewer.is_loading(),
                        timeout=SCAN_TIMEOUT)
        line = reformat_window.reference_line()
        assert line is not None
        (_c0, r0), (_c1, r1) = sorted(line)
        assert r0 == pytest.approx(r1) == pytest.approx(heads_first.index(frame) + 0.5)

    # Shift+click on the reformat's lowest row: the image read goes to the feet-most frame, the point marked
    shift_click(reformat_window, screen_point(reformat_window, 8.0, 4.5))
    feet_most = min(range(5), key=lambda f: heights[f])
    qtbot.waitUntil(lambda: main.viewer.current_frame() == feet_most and main.viewer.cursor_point() is not None,
                    timeout=SCAN_TIMEOUT)
    assert main.viewer.current_index() == 0
    plane = image_plane(read_dataset(enhanced, stop_before_pixels=True), feet_most)
    coronal = reformat_window.current_plane()
    on_reformat, on_image = reformat_window.cursor_point(), main.viewer.cursor_point()
    assert plane is not None and coronal is not None and on_reformat is not None and on_image is not None
    clicked, marked = coronal.patient_point(on_reformat), plane.patient_point(on_image)
    # the mark is the clicked point moved onto that frame's plane (at most half a slice away)
    assert abs(float((clicked - marked) @ plane.normal)) <= 2.5 / 2 + 1e-6
    np.testing.assert_allclose(marked - plane.normal * float((marked - clicked) @ plane.normal), clicked, atol=1e-6)

    # and from the frame read to the reformat: Shift+click on frame 2 moves the coronal to that point's depth
    main.viewer.go_to(0, 2)
    qtbot.waitUntil(lambda: main.viewer.current_frame() == 2 and not main.viewer.is_loading(), timeout=SCAN_TIMEOUT)
    click(qtbot, main.viewer, (4.0, 3.0), Qt.KeyboardModifier.ShiftModifier)
    point = main.viewer.cursor_point()
    assert point is not None
    frame_plane = image_plane(read_dataset(enhanced, stop_before_pixels=True), 2)
    assert frame_plane is not None
    patient = frame_plane.patient_point(point)
    coronal = reformat_window.current_plane()
    assert coronal is not None
    assert abs(float(coronal.normal @ (patient - np.asarray(coronal.position)))) <= 0.4883 / 2 + 1e-6


def test_a_cine_file_is_refused_in_the_window(qtbot, tmp_path: Path) -> None:
    """pydicom's emri_small.dcm: 10 frames, no position for each: no volume, a line saying why."""
    cine = dicom_test_file("emri_small.dcm")
    window = ReformatWindow()
    qtbot.addWidget(window)
    window.show()
    window.show_series([cine], "emri_small")
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=LOAD_TIMEOUT)
    assert window.volume() is None
    assert "emri_small.dcm" in window.message() and "without a position for each" in window.message()
