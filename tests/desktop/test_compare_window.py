"""A series beside the one read (B), in a window of its own, and its scrolling linked (L): by slice
position where both series have positions, image for image where they do not."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from tests.conftest import dicom_test_file
from tests.desktop.reading_room import SCAN_TIMEOUT, make_window, open_and_wait
from zsmed_desktop.main_window import MainWindow


def _series(folder: Path, description: str, study_uid: str, z: list[float | None], number: int,
            date: str = "20040119") -> None:
    """CT_small as one series of len(z) slices at those table positions (None: no position), in a
    study of ``date``."""
    series_uid = pydicom.uid.generate_uid()
    for k, position in enumerate(z):
        ds = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = description, number, k + 1
        ds.StudyDate = date
        if position is None:
            del ds.ImagePositionPatient
        else:
            ds.ImagePositionPatient = [-40.0, -40.0, position]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.save_as(folder / f"{description}_{k}.dcm")


def _open(qtbot, tmp_path: Path, folder: Path) -> MainWindow:
    window = make_window(qtbot, tmp_path)
    window.show()
    qtbot.waitExposed(window)
    open_and_wait(qtbot, window, [folder])
    return window


def _choose(qtbot, window: MainWindow, description: str) -> None:
    ref = next(r for r in (window.browser.series_ref(s.uid) for p in window.index.patients for st in p.studies
                           for s in st.series) if r and r.series.description == description)
    window.browser.select_series(ref.key)
    qtbot.waitUntil(lambda: window.viewer.current_frame_data() is not None and not window.viewer.is_loading(),
                    timeout=SCAN_TIMEOUT)


def _shown(qtbot, viewer, index: int) -> None:
    qtbot.waitUntil(lambda: viewer.current_index() == index and not viewer.is_loading(), timeout=SCAN_TIMEOUT)


def test_a_prior_beside_follows_the_slices_read_by_position(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "studies"
    folder.mkdir()
    _series(folder, "today", pydicom.uid.generate_uid(), [0.0, 5.0, 10.0, 15.0, 20.0], 2)
    _series(folder, "prior", pydicom.uid.generate_uid(), [-18.0 + 2.5 * k for k in range(9)], 3)  # 2.5 mm, 20 mm off
    window = _open(qtbot, tmp_path, folder)
    _choose(qtbot, window, "prior")
    compare = window.put_series_beside()
    assert compare is not None and compare.isVisible() and compare.viewer.image_count() == 9
    assert window.action("compare").shortcut().toString() == "B"
    assert "prior" in compare.windowTitle()
    _choose(qtbot, window, "today")
    window.viewer.go_to(1)  # the reader lines up today's 5 mm slice with the prior's -15.5 mm one
    _shown(qtbot, window.viewer, 1)
    compare.viewer.go_to(1)
    _shown(qtbot, compare.viewer, 1)
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_L)
    assert window.action("link_compare").isChecked() and compare.is_linked()
    assert window.statusBar().currentMessage() == "Scrolling linked with the series beside, by position, -20.5 mm apart"
    for today, prior in ((2, 3), (4, 7), (0, 0)):
        window.viewer.go_to(today)
        _shown(qtbot, compare.viewer, prior)
    qtbot.keyClick(window.viewer, Qt.Key.Key_L)  # unlinked: the prior stays where it is
    assert not compare.is_linked() and not window.action("link_compare").isChecked()
    window.viewer.go_to(4)
    _shown(qtbot, window.viewer, 4)
    assert compare.viewer.current_index() == 0
    compare.close()
    assert not window.action("link_compare").isChecked()
    assert not window.toggle_compare_link()
    assert "put a series beside first" in window.statusBar().currentMessage()


def test_series_without_positions_follow_image_for_image(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "films"
    folder.mkdir()
    study = pydicom.uid.generate_uid()
    _series(folder, "one", study, [None] * 4, 2)
    _series(folder, "two", study, [None] * 4, 3)
    window = _open(qtbot, tmp_path, folder)
    _choose(qtbot, window, "two")
    compare = window.put_series_beside()
    assert compare is not None
    compare.viewer.go_to(0)
    _shown(qtbot, compare.viewer, 0)
    _choose(qtbot, window, "one")
    window.viewer.go_to(1)
    _shown(qtbot, window.viewer, 1)
    assert window.toggle_compare_link()
    assert window.statusBar().currentMessage().endswith("image for image (no slice positions)")
    window.viewer.go_to(3)
    _shown(qtbot, compare.viewer, 2)  # one behind, as lined up


def test_the_prior_study_is_put_beside_at_the_same_place_in_its_stack(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "patient"
    folder.mkdir()
    _series(folder, "chest today", pydicom.uid.generate_uid(), [float(5 * k) for k in range(5)], 2, "20240301")
    _series(folder, "chest last year", pydicom.uid.generate_uid(), [float(2.5 * k) for k in range(9)], 2, "20230301")
    _series(folder, "abdomen last year", pydicom.uid.generate_uid(), [float(k) for k in range(3)], 3, "20230302")
    window = _open(qtbot, tmp_path, folder)
    _choose(qtbot, window, "chest last year")
    assert window.compare_with_prior() is None  # nothing before last year's study
    assert "no earlier study of this patient with a CT series" in window.statusBar().currentMessage()
    _choose(qtbot, window, "chest today")
    window.viewer.go_to(3)  # three quarters through today's stack
    _shown(qtbot, window.viewer, 3)
    compare = window.compare_with_prior()
    assert compare is not None and "chest last year" in compare.windowTitle()  # not the later abdomen study
    _shown(qtbot, compare.viewer, 6)  # three quarters through the prior's nine slices
    assert window.action("compare_prior").shortcut().toString() == "Shift+B"
    assert window.statusBar().currentMessage().startswith("Prior beside: ")
    window.close()  # the window beside goes with the main one (else the app would not quit)
    assert not compare.isVisible()
