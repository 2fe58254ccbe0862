"""Key images from the window: K flags the image shown, View > Save key images for the PACS writes the
study's flags as one note, and the flags come back when the study is opened again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from tests.conftest import dicom_test_file
from tests.desktop.reading_room import SCAN_TIMEOUT, make_window, open_and_wait, temp_settings
from zsmed_desktop.key_images_flow import FLAGGED_LINE, SAVED_LINE
from zsmed_desktop.main_window import MainWindow


def _study(tmp_path: Path) -> Path:
    """CT_small and a second image of its study."""
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(dicom_test_file("CT_small.dcm"), study / "ct1.dcm")
    ds = pydicom.dcmread(study / "ct1.dcm")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.InstanceNumber = 2
    ds.save_as(study / "ct2.dcm")
    return study


def _open(qtbot, tmp_path: Path, study: Path, name: str) -> MainWindow:
    window = make_window(qtbot, tmp_path, temp_settings(tmp_path / name))
    window.show()
    qtbot.waitExposed(window)
    open_and_wait(qtbot, window, [study])
    qtbot.waitUntil(lambda: window.viewer.current_frame_data() is not None, timeout=SCAN_TIMEOUT)
    return window


def _bottom_left(window: MainWindow) -> str:
    return window.viewer.overlay_text()["bl"]


def test_key_images_are_flagged_saved_for_the_pacs_and_flagged_again_next_time(qtbot, tmp_path: Path,
                                                                               monkeypatch) -> None:
    study = _study(tmp_path)
    window = _open(qtbot, tmp_path, study, "first")
    flag, save = window.action("key_image"), window.action("save_key_images")
    assert flag.shortcut().toString() == "K" and flag.isCheckable() and not save.isEnabled()
    first = window.viewer.current_path()
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_K)
    assert flag.isChecked() and save.isEnabled()
    assert _bottom_left(window).startswith(FLAGGED_LINE)
    assert window.statusBar().currentMessage() == (
        f"{first.name}: flagged as a key image (1 in this study to save: View > Save key images for the PACS)")
    window.viewer.next_image()
    qtbot.waitUntil(lambda: window.viewer.current_path() != first and not window.viewer.is_loading(),
                    timeout=SCAN_TIMEOUT)
    assert not flag.isChecked() and FLAGGED_LINE not in _bottom_left(window)
    assert window.toggle_key_image() and not window.toggle_key_image()  # K twice: the flag is off again
    assert window.statusBar().currentMessage().endswith("no longer a key image (1 flagged in this study)")

    asked: list[int] = []
    monkeypatch.setattr(window, "ask_key_note", lambda count: asked.append(count) or None)
    assert window.save_key_images() is None and not list(study.glob("KO_*"))  # Cancel: nothing written
    monkeypatch.setattr(window, "ask_key_note", lambda count: "lesion in segment 6")
    written = window.save_key_images()
    assert asked == [1] and written is not None and written.parent == study
    assert window.statusBar().currentMessage() == f"1 key image saved as {written.name} next to the study"
    ds = pydicom.dcmread(written)
    referenced = [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in ds.ContentSequence
                  if i.ValueType == "IMAGE"]
    assert referenced == [pydicom.dcmread(first, stop_before_pixels=True).SOPInstanceUID]
    assert not save.isEnabled()  # nothing left to save in this study

    window.close()
    again = _open(qtbot, tmp_path, study, "second")
    labels = [again.browser.tree.topLevelItem(0).child(0).child(k).text(0)
              for k in range(again.browser.tree.topLevelItem(0).child(0).childCount())]
    assert "Series 994  ·  KO  ·  zsmed key images   (1 key image note)" in labels
    again.viewer.go_to(1 - again.viewer.current_index())  # the other image, then the note's series
    qtbot.waitUntil(lambda: again.viewer.current_path() != first and not again.viewer.is_loading(),
                    timeout=SCAN_TIMEOUT)
    note_series = next(ref for ref in (again.browser.series_ref(s.uid) for p in again.index.patients
                                       for st in p.studies for s in st.series) if ref and ref.series.modality == "KO")
    again.browser.select_series(note_series.key)  # opening the note shows its key image
    qtbot.waitUntil(lambda: again.viewer.current_path() == first and not again.viewer.is_loading(),
                    timeout=SCAN_TIMEOUT)
    message = again.statusBar().currentMessage()
    assert message.startswith("Key image note of 20") and message.endswith(
        "by Dr Test, 1 key image (Of Interest): lesion in segment 6")
    assert again.current_series is not None and again.current_series.series.modality == "CT"
    qtbot.waitUntil(lambda: _bottom_left(again).startswith(SAVED_LINE), timeout=SCAN_TIMEOUT)
    assert again.action("key_image").isChecked() and not again.action("save_key_images").isEnabled()
    assert again.toggle_key_image() and not again.action("save_key_images").isEnabled()  # K: stays, not again
    assert again.statusBar().currentMessage() == f"{first.name}: already a key image in a note saved for the PACS"


def test_photographs_cannot_be_flagged(qtbot, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 30)).save(folder / "lesion.png")
    window = make_window(qtbot, tmp_path)
    window.open_photos([folder / "lesion.png"])
    qtbot.waitUntil(lambda: window.viewer.current_frame_data() is not None, timeout=SCAN_TIMEOUT)
    assert not window.action("key_image").isEnabled()
    assert not window.toggle_key_image()
    assert "photographs cannot be flagged" in window.statusBar().currentMessage()
    assert window.save_key_images() is None
