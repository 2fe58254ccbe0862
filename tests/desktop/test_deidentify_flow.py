"""Export studies de-identified from the app: the worker writes the files and reports one line; the
folder dialog refuses a folder that is not empty."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pydicom
import pytest
from PySide6.QtWidgets import QDialog, QFileDialog, QLabel, QMessageBox

from tests.conftest import dicom_test_file
from zsmed.progress import Progress
from zsmed_desktop.deidentify_flow import ask_and_deidentify, start_deidentify
from zsmed_desktop.workers import _Relay

TIMEOUT = 60_000


class Reports:
    def __init__(self) -> None:
        self.lines: list[tuple[str, bool]] = []

    def __call__(self, text: str, *, warning: bool = False) -> None:
        self.lines.append((text, warning))


def _finish(qtbot: Any, worker: Any, reports: Reports) -> tuple[str, bool]:
    qtbot.waitUntil(lambda: bool(reports.lines), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: worker._zsmed_relay not in _Relay._alive, timeout=TIMEOUT)  # the thread is done
    assert len(reports.lines) == 1
    return reports.lines[0]


def test_start_deidentify_writes_the_files_and_reports_one_line(qtbot: Any, tmp_path: Path) -> None:
    out = tmp_path / "meeting"
    reports = Reports()
    steps: list[Progress] = []
    sources = [dicom_test_file("CT_small.dcm"), dicom_test_file("MR_small.dcm")]
    worker = start_deidentify(sources, out, reports, on_progress=steps.append)
    text, warning = _finish(qtbot, worker, reports)
    assert text == "2 files exported de-identified to meeting: 2 patients, 2 studies, 2 series"
    assert not warning
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == 2
    names = {str(pydicom.dcmread(p).PatientName) for p in written}
    assert not names & {"CompressedSamples^CT1", "CompressedSamples^MR1"}
    assert steps and steps[-1].done == steps[-1].total == 2


def test_a_deidentified_copy_goes_to_a_cd_or_usb_stick(qtbot: Any, tmp_path: Path) -> None:
    """File > Export the study de-identified to a CD or USB stick…: the copy with a DICOMDIR, one line."""
    out = tmp_path / "board"
    reports = Reports()
    worker = start_deidentify([dicom_test_file("CT_small.dcm"), dicom_test_file("MR_small.dcm")], out, reports,
                              as_media=True)
    text, warning = _finish(qtbot, worker, reports)
    assert text == ("2 files exported de-identified to board: 2 patients, 2 studies, 2 series; as a CD or USB "
                    "stick: 2 DICOM files of 2 patients (2 studies) written with a DICOMDIR")
    assert not warning
    names = {str(pydicom.dcmread(p).PatientName) for p in out.rglob("IM*")}
    assert len(names) == 2 and not names & {"CompressedSamples^CT1", "CompressedSamples^MR1"}
    assert pydicom.dcmread(out / "DICOMDIR").DirectoryRecordSequence
    assert [p.name for p in tmp_path.iterdir()] == ["board"]  # nothing left of the staging folder


def test_burned_in_text_and_failures_are_warnings(qtbot: Any, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("no image")
    reports = Reports()
    worker = start_deidentify([dicom_test_file("US1_UNCR.dcm"), junk], tmp_path / "out", reports)
    text, warning = _finish(qtbot, worker, reports)
    assert warning
    assert text.startswith("1 file exported de-identified to out: 1 patient, 1 study, 1 series; 1 ultrasound image "
                           "may have names burned into its pixels: check it; 1 file could not be exported: ")
    assert f"{junk}: not a DICOM file" in text


def test_the_dialog_refuses_a_folder_that_is_not_empty(qtbot: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "other.txt").write_text("someone else's file")
    fresh = tmp_path / "fresh"
    answers = iter([str(busy), str(fresh)])
    asked: list[str] = []

    def choose(parent: Any, caption: str, start: str) -> str:
        asked.append(start)
        return next(answers)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", choose)
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    reports = Reports()
    worker = ask_and_deidentify(None, [dicom_test_file("CT_small.dcm")], tmp_path, reports)
    assert worker is not None
    text, _warning = _finish(qtbot, worker, reports)
    assert text.startswith("1 file exported de-identified to fresh: ")
    assert asked == [str(tmp_path), str(busy)]  # asked again, from the refused folder
    assert sorted(p.name for p in busy.iterdir()) == ["other.txt"]
    assert len(list(fresh.rglob("*.dcm"))) == 1


def test_the_dialog_reports_a_refusal_and_starts_nothing(qtbot: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.txt").write_text("x")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(tmp_path))
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.No)
    reports = Reports()
    assert ask_and_deidentify(None, [dicom_test_file("CT_small.dcm")], tmp_path, reports) is None
    assert reports.lines == [(f"De-identified export not started: the folder {tmp_path.name} is not empty", True)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_the_dialog_cancelled_or_nothing_selected(qtbot: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: "")
    reports = Reports()
    assert ask_and_deidentify(None, [dicom_test_file("CT_small.dcm")], tmp_path, reports) is None
    assert reports.lines == []
    assert ask_and_deidentify(None, [], tmp_path, reports) is None
    assert reports.lines == [("Nothing to export: select a study first", True)]


def test_a_cancelled_export_says_so(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zsmed.dicom import deidentify

    gate = threading.Event()
    real_file = deidentify._Export.file

    def held_after_the_first(self: Any, path: str) -> None:
        if self.result.written:
            gate.wait(30)  # until the reader has pressed Cancel
        real_file(self, path)

    monkeypatch.setattr(deidentify._Export, "file", held_after_the_first)
    reports = Reports()
    sources = [dicom_test_file(n) for n in ("CT_small.dcm", "MR_small.dcm", "US1_UNCR.dcm")]

    def cancel_at_the_first(step: Progress) -> None:
        if step.done == 1:
            worker.quit()
            gate.set()

    worker = start_deidentify(sources, tmp_path / "out", reports, on_progress=cancel_at_the_first)
    text, warning = _finish(qtbot, worker, reports)
    assert (text, warning) == ("De-identified export to out cancelled: the files written so far stay there", True)
    # stopped at the first report, or after the file being read when the reader asked: never the third
    assert 1 <= len(list((tmp_path / "out").rglob("*.dcm"))) <= 2
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix != ".dcm"]


def test_the_blanking_dialog_gives_the_readers_areas(qtbot: Any) -> None:
    from zsmed.dicom.burned_in import Box
    from zsmed_desktop.blanking_dialog import BlankingDialog

    dialog = BlankingDialog(["secondary captures", "ultrasound images"])
    qtbot.addWidget(dialog)
    assert "secondary captures and ultrasound images" in dialog.findChildren(QLabel)[0].text()
    chosen = dialog.blanking()
    assert chosen.outside_ultrasound and chosen.boxes == ()  # around the scan by default, no band
    assert not dialog.band_height.isEnabled()
    dialog.top_band.setChecked(True)
    dialog.band_height.setValue(40)
    dialog.around_ultrasound.setChecked(False)
    chosen = dialog.blanking()
    assert not chosen.outside_ultrasound
    assert chosen.boxes[0].clipped(100, 100) == Box(0, 0, 100, 40)  # the whole width of any image


def test_a_study_with_captures_is_asked_what_to_blank_and_gets_it(qtbot: Any, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from zsmed_desktop import blanking_dialog

    out = tmp_path / "teaching"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(out))
    asked: list[list[str]] = []

    def accept_with_a_band(dialog: Any) -> int:
        asked.append(["shown"])
        dialog.top_band.setChecked(True)
        dialog.band_height.setValue(10)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(blanking_dialog.BlankingDialog, "exec", accept_with_a_band)
    reports = Reports()
    source = dicom_test_file("SC_rgb.dcm")
    worker = ask_and_deidentify(None, [source], tmp_path, reports, burned_in_kinds=["images of modality OT"])
    text, warning = _finish(qtbot, worker, reports)
    assert asked and "burned-in text blanked on 1 image" in text and not warning
    pixels = pydicom.dcmread(next(out.rglob("*.dcm"))).pixel_array
    assert (pixels[:10] == 0).all() and (pixels[10:] == pydicom.dcmread(source).pixel_array[10:]).all()


def test_cancelling_the_blanking_question_starts_nothing(qtbot: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from zsmed_desktop import blanking_dialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(tmp_path / "o"))
    monkeypatch.setattr(blanking_dialog.BlankingDialog, "exec", lambda self: QDialog.DialogCode.Rejected)
    reports = Reports()
    assert ask_and_deidentify(None, [dicom_test_file("US1_UNCR.dcm")], tmp_path, reports,
                              burned_in_kinds=["ultrasound images"]) is None
    assert reports.lines == [("De-identified export not started", True)]
    assert not (tmp_path / "o").exists()


def test_the_blanking_dialog_offers_ocr_where_it_is_installed(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from zsmed.dicom import text_in_pixels
    from zsmed_desktop.blanking_dialog import BlankingDialog

    monkeypatch.setattr(text_in_pixels, "ocr_program", lambda: "/usr/bin/tesseract")
    dialog = BlankingDialog(["ultrasound images"])
    qtbot.addWidget(dialog)
    assert dialog.found_text.isEnabled() and dialog.found_text.isChecked()  # on by default
    assert dialog.blanking().found_text
    dialog.found_text.setChecked(False)
    assert not dialog.blanking().found_text

    monkeypatch.setattr(text_in_pixels, "ocr_program", lambda: None)
    missing = BlankingDialog(["ultrasound images"])
    qtbot.addWidget(missing)
    assert not missing.found_text.isEnabled() and "not installed on this PC" in missing.found_text.text()
    assert "tesseract-ocr" in missing.found_text.toolTip()
    assert not missing.blanking().found_text


@pytest.mark.skipif(shutil.which("tesseract") is None,
                    reason="Tesseract not installed (Debian package tesseract-ocr; installer/system-packages.sh)")
def test_an_ultrasound_export_blanks_the_words_ocr_reads(qtbot: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from zsmed.dicom.text_in_pixels import find_text_in_dataset
    from zsmed_desktop import blanking_dialog

    out = tmp_path / "teaching"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(out))

    def only_ocr(dialog: Any) -> int:
        dialog.around_ultrasound.setChecked(False)  # US1 has no scan regions: OCR alone finds its header
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(blanking_dialog.BlankingDialog, "exec", only_ocr)
    reports = Reports()
    source = dicom_test_file("US1_UNCR.dcm")
    worker = ask_and_deidentify(None, [source], tmp_path, reports, burned_in_kinds=["ultrasound images"])
    text, warning = _finish(qtbot, worker, reports)
    assert "OCR found text on 1 image and it was blanked" in text and not warning
    written = next(out.rglob("*.dcm"))
    words = {word.text for word in find_text_in_dataset(pydicom.dcmread(written), path=written)}
    assert not {"BAPTIST", "MED", "CTR", "LYMPH", "NODE"} & words
