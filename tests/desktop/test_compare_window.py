"""A series beside the one read (B), in a window of its own, and its scrolling linked (L): by slice
position where both series have positions, image for image where they do not. What the reader does on
the series beside goes to the PACS from that window: its measurements (SR), its view (presentation
state) and the key images flagged there (K), each for the study shown there."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.conftest import dicom_test_file
from tests.desktop.reading_room import SCAN_TIMEOUT, ct_series, make_window, open_and_wait
from tests.desktop.test_viewer import click
from tests.report.sr_items import content_items
from zsmed_desktop.compare_window import CompareWindow
from zsmed_desktop.key_images_flow import FLAGGED_LINE, SAVED_LINE
from zsmed_desktop.main_window import MainWindow


def _series(folder: Path, description: str, study_uid: str, z: list[float | None], number: int,
            date: str = "20040119") -> None:
    """CT_small as one axial series of len(z) slices at those table positions (None: no position), in a
    study of ``date``."""
    ct_series(folder, study_uid, description, number, [None if p is None else [-40.0, -40.0, p] for p in z],
              study_date=date)


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
    assert window.statusBar().currentMessage().endswith(
        "no earlier study of this patient with a CT series in what is open")
    # with a PACS set, the reader is told where the prior may be
    window.apply_site(replace(window.site, pacs="PACS@pacs.hospital.invalid:104"))
    assert window.compare_with_prior() is None
    assert window.statusBar().currentMessage().endswith("; File ▸ Get studies from the PACS… finds it there")
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


def _sop_uid(path: Path | None) -> str:
    assert path is not None
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def _jobs(window: MainWindow) -> list[str]:
    return [window.jobs.item(k).text() for k in range(window.jobs.count())]


def _prior_beside(qtbot, tmp_path: Path) -> tuple[MainWindow, CompareWindow, Path, str, str]:
    """Today's study read in the main window, last year's beside it: (window, beside, folder, today's
    Study Instance UID, the prior's)."""
    folder = tmp_path / "patient"
    folder.mkdir()
    today, prior = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    _series(folder, "chest today", today, [0.0, 5.0, 10.0], 2, "20240301")
    _series(folder, "chest last year", prior, [0.0, 5.0, 10.0], 2, "20230301")
    window = _open(qtbot, tmp_path, folder)
    _choose(qtbot, window, "chest today")
    compare = window.compare_with_prior()
    assert compare is not None and "chest last year" in compare.windowTitle()
    qtbot.waitUntil(lambda: compare.viewer.current_frame_data() is not None and not compare.viewer.is_loading(),
                    timeout=SCAN_TIMEOUT)
    return window, compare, folder, today, prior


def test_the_prior_measured_beside_is_saved_for_the_pacs_as_its_own_sr_and_view(qtbot, tmp_path: Path) -> None:
    window, compare, folder, today, prior = _prior_beside(qtbot, tmp_path)
    saves = [compare.save_measurements_action, compare.save_view_action, compare.save_key_images_action]
    # the main window's words, each asking where the file goes
    assert [a.text() for a in compare.save_menu.actions()] == [
        window.action(key).text() for key in ("save_measurements", "save_presentation", "save_key_images")]
    assert all([d.text() for d in a.menu().actions()] == ["Next to the study", "To a folder…"] for a in saves)
    assert compare.save_action.isEnabled() and compare.save_view_action.isEnabled()
    assert not compare.save_measurements_action.isEnabled()  # nothing measured yet
    assert compare.save_measurements_sr() is None
    assert compare.status_bar.currentMessage() == "No rulers, regions of interest or angles on the image to save"

    ruler = compare.viewer.measure((20.5, 30.5), (90.5, 70.5))
    assert ruler is not None and ruler.unit == "mm"
    assert compare.save_measurements_action.isEnabled()
    assert not window.action("save_measurements").isEnabled()  # the main viewer has nothing measured
    prior_image = compare.viewer.current_path()
    out = tmp_path / "to_pacs"
    written = compare.save_measurements_sr(out)
    assert written is not None and written.parent == out
    message = f"{prior_image.name}: 1 measurement saved as DICOM SR {written.name} in to_pacs"
    assert compare.status_bar.currentMessage() == message and message in _jobs(window)
    sr = pydicom.dcmread(written)
    assert sr.Modality == "SR" and sr.StudyInstanceUID == prior != today
    evidence = [image.ReferencedSOPInstanceUID for study in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence for image in series.ReferencedSOPSequence]
    assert evidence == [_sop_uid(prior_image)]
    assert sr.CurrentRequestedProcedureEvidenceSequence[0].StudyInstanceUID == prior
    lengths = [float(i.MeasuredValueSequence[0].NumericValue) for i in content_items(sr)
               if i.ValueType == "NUM" and i.ConceptNameCodeSequence[0].CodeMeaning == "Length"]
    assert lengths == [pytest.approx(ruler.length, abs=0.01)]

    compare.viewer.invert()
    state = compare.save_presentation_state()  # next to the prior's images
    assert state is not None and state.parent == folder
    assert compare.status_bar.currentMessage() == (
        f"{prior_image.name}: the view and 1 mark saved as presentation state {state.name} next to the study")
    pr = pydicom.dcmread(state)
    assert pr.Modality == "PR" and pr.StudyInstanceUID == prior
    assert [image.ReferencedSOPInstanceUID for series in pr.ReferencedSeriesSequence
            for image in series.ReferencedImageSequence] == [_sop_uid(prior_image)]
    assert str(pr.ContentCreatorName) == "Dr Test^"
    assert window.saved_states.for_image(_sop_uid(prior_image))  # the main window offers it for that image
    assert window.viewer.current_path() != prior_image


def test_key_images_flagged_beside_go_in_the_note_of_the_study_shown_there(qtbot, tmp_path: Path,
                                                                           monkeypatch) -> None:
    window, compare, folder, today, prior = _prior_beside(qtbot, tmp_path)
    flag, save = compare.key_image_action, compare.save_key_images_action
    assert flag.shortcut().toString() == "K" and flag.isEnabled() and not save.isEnabled()
    prior_image = compare.viewer.current_path()
    compare.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is compare)
    compare.viewer.setFocus()
    qtbot.keyClick(compare.viewer, Qt.Key.Key_K)  # K in the window beside flags its image, of its study
    assert flag.isChecked() and save.isEnabled() and compare.save_action.isEnabled()
    assert compare.viewer.overlay_text()["bl"].startswith(FLAGGED_LINE)
    assert compare.status_bar.currentMessage() == (
        f"{prior_image.name}: flagged as a key image (1 in this study to save: Save for the PACS > Save key "
        "images for the PACS)")
    assert window.key_images.unsaved(prior) == [prior_image] and window.key_images.unsaved(today) == []
    assert not window.action("save_key_images").isEnabled()  # today's study has no flag
    assert FLAGGED_LINE not in window.viewer.overlay_text()["bl"]

    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    today_image = window.viewer.current_path()
    assert window.toggle_key_image()  # K in the main window flags today's image, of today's study
    assert window.action("save_key_images").isEnabled() and window.key_images.unsaved(today) == [today_image]

    asked: list[int] = []
    monkeypatch.setattr(compare, "ask_key_note", lambda count: asked.append(count) or "unchanged nodule")
    written = compare.save_key_images()
    assert asked == [1] and written is not None and written.parent == folder
    message = f"1 key image saved as {written.name} next to the study"
    assert compare.status_bar.currentMessage() == message and message in _jobs(window)
    note = pydicom.dcmread(written)
    assert note.StudyInstanceUID == prior
    referenced = [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in note.ContentSequence
                  if i.ValueType == "IMAGE"]
    assert referenced == [_sop_uid(prior_image)] and _sop_uid(today_image) not in referenced
    assert not save.isEnabled() and compare.viewer.overlay_text()["bl"].startswith(SAVED_LINE)
    assert window.action("save_key_images").isEnabled()  # today's flag waits for the main window's save

    today_note = window.save_key_images(note="")
    assert today_note is not None and today_note != written
    ds = pydicom.dcmread(today_note)
    assert ds.StudyInstanceUID == today
    assert [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in ds.ContentSequence
            if i.ValueType == "IMAGE"] == [_sop_uid(today_image)]


def test_what_cannot_be_saved_beside_is_a_line_in_that_window(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(dicom_test_file("CT_small.dcm"), folder / "CT_small.dcm")
    window = _open(qtbot, tmp_path, folder)
    compare = window.put_series_beside()
    assert compare is not None
    qtbot.waitUntil(lambda: compare.viewer.current_frame_data() is not None, timeout=SCAN_TIMEOUT)
    assert not compare.save_key_images_action.isEnabled()
    assert compare.save_key_images() is None
    assert compare.status_bar.currentMessage() == (
        "⚠ No image of this study is flagged as a key image (K flags the image shown)")
    assert compare.viewer.measure((20.5, 30.5), (90.5, 70.5)) is not None
    blocked = tmp_path / "not a folder"
    blocked.write_text("a file where the folder should be")
    for save, what in ((compare.save_measurements_sr, "measurements"),
                       (compare.save_presentation_state, "presentation state")):
        assert save(blocked / "for the PACS") is None
        message = compare.status_bar.currentMessage()
        assert message.startswith(f"⚠ CT_small.dcm: {what} not saved: ") and "\n" not in message
        assert message[2:] in _jobs(window)  # the main window's Jobs tab keeps it
    assert sorted(p.name for p in folder.iterdir()) == ["CT_small.dcm"]
    compare.viewer.clear_measurements()
    assert not compare.save_measurements_action.isEnabled() and compare.save_view_action.isEnabled()


def test_a_localizer_beside_shows_the_slice_read_as_a_reference_line(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "studies"
    folder.mkdir()
    study = pydicom.uid.generate_uid()
    _series(folder, "axial", study, [0.0, 10.0], 2)
    scout = pydicom.dcmread(dicom_test_file("CT_small.dcm"))  # its pixels, placed as a frontal localizer
    scout.StudyInstanceUID, scout.SeriesInstanceUID = study, pydicom.uid.generate_uid()
    scout.SOPInstanceUID = scout.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    scout.SeriesDescription, scout.SeriesNumber, scout.StudyDate = "scout", 1, "20040119"
    scout.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # rows to the patient's left, columns to the feet
    scout.ImagePositionPatient = [-40.0, 0.0, 30.0]
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]  # a CT topogram: a projection
    scout.save_as(folder / "scout.dcm")
    row_mm, column_mm = (float(v) for v in scout.PixelSpacing)

    window = _open(qtbot, tmp_path, folder)
    _choose(qtbot, window, "scout")
    compare = window.put_series_beside()
    assert compare is not None
    _choose(qtbot, window, "axial")
    for index, z in ((0, 0.0), (1, 10.0)):
        window.viewer.go_to(index)
        _shown(qtbot, window.viewer, index)
        line = compare.viewer.reference_line()
        assert line is not None  # the slice read, across the localizer beside
        (c0, r0), (c1, r1) = sorted(line)
        assert r0 == pytest.approx(0.5 + (30.0 - z) / row_mm) and r1 == pytest.approx(r0)
        assert (c0, c1) == (pytest.approx(0.0), pytest.approx(128 * 0.661468 / column_mm, rel=1e-3))
        # and the localizer's plane across the axial slice read: a horizontal line at y = 0
        here = window.viewer.reference_line()
        assert here is not None and here[0][1] == pytest.approx(0.5 + (0.0 + 40.0) / row_mm)

    # Shift+click on the localizer at z = 10 mm: the axial series goes to that slice, the point marked on it
    window.viewer.go_to(0)
    _shown(qtbot, window.viewer, 0)
    on_scout = (64.0, 0.5 + (30.0 - 10.0) / row_mm)  # column 64 (x = 2.3 mm), the row at z = 10 mm
    click(qtbot, compare.viewer, on_scout, Qt.KeyboardModifier.ShiftModifier)
    clicked = compare.viewer.cursor_point()  # where the click fell: within a screen pixel of on_scout
    assert clicked == pytest.approx(on_scout, abs=0.5)
    _shown(qtbot, window.viewer, 1)  # the slice at z = 10 mm
    # the same x (both images start at x = -40 mm with the same column spacing), y = 0 there
    assert window.viewer.cursor_point() == pytest.approx((clicked[0], 0.5 + 40.0 / row_mm), abs=1e-6)
    assert window.viewer._cursor_item.isVisible()
    window.viewer.go_to(0)  # scrolled on: the cross stays with its slice
    _shown(qtbot, window.viewer, 0)
    assert not window.viewer._cursor_item.isVisible()
    # and the other way: a point of the axial slice, found on the localizer
    click(qtbot, window.viewer, (30.0, 100.0), Qt.KeyboardModifier.ShiftModifier)
    clicked = window.viewer.cursor_point()
    assert clicked == pytest.approx((30.0, 100.0), abs=0.5)
    assert compare.viewer.cursor_point() == pytest.approx((clicked[0], 0.5 + 30.0 / row_mm), abs=1e-6)  # z = 0
    compare.close()
    qtbot.waitUntil(lambda: window.viewer.reference_line() is None, timeout=SCAN_TIMEOUT)
    click(qtbot, window.viewer, (90.0, 40.0), Qt.KeyboardModifier.ShiftModifier)  # elsewhere: not a double-click
    assert "put a series beside (B) or open the reformat (Shift+M) first" in window.statusBar().currentMessage()
