"""A study's reports read in the app: structured reports in a dialog (copyable text), encapsulated
PDFs handed to the computer's PDF viewer, unreadable files one line in the window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtGui import QDesktopServices, QGuiApplication

from tests.conftest import dicom_test_file
from tests.report.test_read_report import a_pdf, pdf_dataset
from zsmed_desktop.report_view import show_reports


class Reports:
    def __init__(self) -> None:
        self.lines: list[tuple[str, bool]] = []

    def __call__(self, text: str, *, warning: bool = False) -> None:
        self.lines.append((text, warning))


def test_a_structured_report_is_shown_and_its_text_copied(qtbot: Any) -> None:
    reports = Reports()
    dialog = show_reports(None, [dicom_test_file("test-SR.dcm"), dicom_test_file("reportsi.dcm")], reports,
                          "Series 1 · SR")
    assert dialog is not None
    qtbot.addWidget(dialog)
    shown = dialog.browser.toPlainText()
    assert "Diagnosis" in shown and "Diameter: 3 cm" in shown and "Document Title" in shown
    assert "Complete · Verified by Riesmeier Jörg on 2001-02-13 18:47" in shown
    assert dialog.windowTitle() == "Series 1 · SR" and reports.lines == []
    dialog.copy_button.click()
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith("Diagnosis\n") and "\n  Diameter: 3 cm\n" in copied and "Partial · not verified" in copied


def test_a_pdf_report_opens_in_the_pdf_viewer(qtbot: Any, tmp_path: Path, isolated_dirs: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = a_pdf()
    path = tmp_path / "letter.dcm"
    pdf_dataset(pdf).save_as(path, enforce_file_format=True)
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    reports = Reports()
    assert show_reports(None, [path], reports) is None  # nothing to show in the app itself
    assert len(opened) == 1 and Path(opened[0]).read_bytes() == pdf and opened[0].endswith("letter.pdf")
    assert reports.lines == [("letter.dcm: opened in the PDF viewer", False)]


def test_no_pdf_viewer_and_unreadable_files_are_lines_in_the_window(qtbot: Any, tmp_path: Path,
                                                                    isolated_dirs: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pdf_path = tmp_path / "letter.dcm"
    pdf_dataset(a_pdf()).save_as(pdf_path, enforce_file_format=True)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)
    reports = Reports()
    assert show_reports(None, [pdf_path, junk, dicom_test_file("CT_small.dcm")], reports) is None
    [(text, warning)] = reports.lines
    assert warning
    assert "letter.dcm: no PDF viewer on this computer opened it (its copy letter.pdf is in " in text
    assert "junk.dcm: " in text and "CT_small.dcm: not a structured report" in text


def test_opening_a_report_series_in_the_browser_shows_it(qtbot: Any, tmp_path: Path, isolated_dirs: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A study with its CT, zsmed's measurement SR of it and a PDF letter: the browser lists both report
    series, and opening each shows it (the SR as text in the app, the PDF in the PDF viewer)."""
    import shutil

    import pydicom

    from tests.desktop.reading_room import SCAN_TIMEOUT, make_window, open_and_wait, temp_settings
    from zsmed.report.measurements import PixelSpacing, RulerMark, write_measurements_sr

    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(dicom_test_file("CT_small.dcm"), study / "ct.dcm")
    write_measurements_sr(study / "ct.dcm", frame=None, spacing=PixelSpacing(0.66, 0.66, "PixelSpacing"),
                          reader="Dr Who", rulers=[RulerMark((10.0, 10.0), (40.0, 50.0), 33.0)], regions=[],
                          angles=[], out_dir=study)
    ct = pydicom.dcmread(study / "ct.dcm")
    letter = pdf_dataset(a_pdf())
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate"):
        setattr(letter, keyword, ct.get(keyword))
    letter.SeriesInstanceUID = pydicom.uid.generate_uid()
    letter.SeriesNumber = 900
    letter.file_meta.MediaStorageSOPClassUID = letter.SOPClassUID
    letter.file_meta.MediaStorageSOPInstanceUID = letter.SOPInstanceUID
    letter.save_as(study / "letter.dcm", enforce_file_format=True)
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)

    window = make_window(qtbot, tmp_path, temp_settings(tmp_path / "settings"))
    window.show()
    qtbot.waitExposed(window)
    open_and_wait(qtbot, window, [study])
    refs = {ref.series.modality: ref for ref in (window.browser.series_ref(s.uid) for p in window.index.patients
                                                  for st in p.studies for s in st.series) if ref is not None}
    assert refs["SR"].title and refs["DOC"]
    window.browser.select_series(refs["SR"].key)
    qtbot.waitUntil(lambda: window.report_dialog is not None, timeout=SCAN_TIMEOUT)
    dialog = window.report_dialog
    assert dialog is not None and dialog.isVisible()
    assert "Imaging Measurement Report" in dialog.browser.toPlainText()
    assert "Length: 33 mm" in dialog.browser.toPlainText()
    window.browser.select_series(refs["DOC"].key)
    qtbot.waitUntil(lambda: bool(opened), timeout=SCAN_TIMEOUT)
    assert Path(opened[0]).name == "letter.pdf"
    assert "letter.dcm: opened in the PDF viewer" in window.statusBar().currentMessage()
