"""Reports in a study made readable: structured reports as indented lines, encapsulated PDFs taken
out of their files (pydicom's real SR test files, zsmed's own measurement SR, a PDF made by Pillow)."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import dicom_test_file
from zsmed.errors import DicomReadError, ZsmedError
from zsmed.report.read_report import (
    ENCAPSULATED_PDF,
    ReportLine,
    encapsulated_pdf,
    is_encapsulated_pdf,
    read_report,
)


def test_a_verified_comprehensive_sr_reads_as_indented_lines() -> None:
    report = read_report(pydicom.dcmread(dicom_test_file("test-SR.dcm")))
    assert report.title == "Diagnosis"
    assert report.status == "Complete · Verified by Riesmeier Jörg on 2001-02-13 18:47"
    assert report.when == "2001-02-13 18:47"
    assert ReportLine(0, "Section", heading=True) in report.lines
    assert ReportLine(1, "Diameter", "3 cm") in report.lines  # NUM: value and UCUM unit
    assert ReportLine(1, "Text Code", "A mass of") in report.lines
    assert ReportLine(0, "Code", "Sample Text\nA\nB\nC") in report.lines  # the text's line breaks kept
    assert ReportLine(0, "", "CT Image, frames 5, 2") in report.lines  # a reference in words, no UID
    text = report.text()
    assert text.startswith("Diagnosis\nComplete · Verified by Riesmeier Jörg on 2001-02-13 18:47\n")
    assert "\n  Diameter: 3 cm\n" in text and "\nCode: Sample Text\n  A\n  B\n  C\n" in text


def test_a_partial_basic_text_sr_says_not_verified() -> None:
    report = read_report(pydicom.dcmread(dicom_test_file("reportsi.dcm")))
    assert report.title == "Document Title" and report.status == "Partial · not verified"
    assert ReportLine(0, "Section Heading", heading=True) in report.lines
    assert ReportLine(1, "Report Text", "Enter text") in report.lines


def test_zsmeds_own_measurement_sr_reads_back_in_words(tmp_path: Path) -> None:
    from zsmed.report.measurements import PixelSpacing, RulerMark, write_measurements_sr

    written = write_measurements_sr(dicom_test_file("CT_small.dcm"), frame=None,
                                    spacing=PixelSpacing(0.661468, 0.661468, "PixelSpacing"), reader="Dr Who",
                                    rulers=[RulerMark((10.0, 10.0), (40.0, 50.0), 33.07)], regions=[], angles=[],
                                    out_dir=tmp_path)
    report = read_report(pydicom.dcmread(written))
    assert report.title == "Imaging Measurement Report"
    assert any(line.name == "Length" and line.value == "33.07 mm" for line in report.lines)
    assert "Who" in report.author
    assert any(line.value == "polyline of 2 points" for line in report.lines)


def test_what_is_not_a_report_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(DicomReadError, match="not a structured report") as info:
        read_report(pydicom.dcmread(dicom_test_file("CT_small.dcm")), "CT_small.dcm")
    assert info.value.path == "CT_small.dcm"
    ds = pydicom.dcmread(dicom_test_file("reportsi.dcm"))
    item = ds.ContentSequence[0]
    for _ in range(70):  # a content tree nested past any real report
        outer = Dataset()
        outer.ValueType = "CONTAINER"
        outer.ContentSequence = Sequence([item])
        item = outer
    ds.ContentSequence = Sequence([item])
    with pytest.raises(DicomReadError, match="nested more than"):
        read_report(ds, "deep.dcm")


def pdf_dataset(pdf: bytes) -> Dataset:
    """An Encapsulated PDF object holding ``pdf``, as a PACS stores a scanned or typed report."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "DOC"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\x00" if len(pdf) % 2 else b"")
    return ds


def a_pdf() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), "white").save(buffer, format="PDF")
    return buffer.getvalue()


def test_an_encapsulated_pdf_comes_out_byte_for_byte(tmp_path: Path) -> None:
    pdf = a_pdf()
    pdf = pdf if len(pdf) % 2 else pdf + b"\n"  # an odd length: DICOM pads it, the PDF must come out without
    path = tmp_path / "report.dcm"
    pdf_dataset(pdf).save_as(path, enforce_file_format=True)
    ds = pydicom.dcmread(path)
    assert is_encapsulated_pdf(ds)
    assert encapsulated_pdf(ds, str(path)) == pdf
    ds.EncapsulatedDocument = b"not a pdf!"
    with pytest.raises(DicomReadError, match="not a PDF"):
        encapsulated_pdf(ds, str(path))
    with pytest.raises(DicomReadError, match="not an encapsulated PDF"):
        encapsulated_pdf(pydicom.dcmread(dicom_test_file("CT_small.dcm")), "CT_small.dcm")


def test_cli_prints_reports_and_takes_pdfs_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.cli.main import main

    assert main(["read-report", str(dicom_test_file("test-SR.dcm")), str(dicom_test_file("reportsi.dcm"))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Diagnosis\nComplete · Verified by Riesmeier Jörg") and "\n\nDocument Title\n" in out
    pdf = a_pdf()
    path = tmp_path / "letter.dcm"
    pdf_dataset(pdf).save_as(path, enforce_file_format=True)
    assert main(["read-report", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "letter.dcm: an encapsulated PDF: give --pdf-out DIR" in err
    assert main(["read-report", str(path), "--pdf-out", str(tmp_path / "pdfs")]) == 0
    assert (tmp_path / "pdfs" / "letter.pdf").read_bytes() == pdf
    assert main(["read-report", str(tmp_path / "missing.dcm")]) == 2


def test_a_report_cut_short_anywhere_is_one_line_naming_the_file(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """pydicom converts a value only when it is first read: a sequence cut short surfaces in the middle of
    the content tree, after the file opened. Cut every 61 bytes, pydicom's SR is read or refused in one line
    naming the file, never a traceback (``load_report`` is what the app's report window reads with too)."""
    from zsmed.cli.main import main
    from zsmed.report.read_report import load_report

    whole = dicom_test_file("test-SR.dcm").read_bytes()
    damaged = 0
    for length in range(200, len(whole), 61):
        path = tmp_path / f"cut_{length}.dcm"
        path.write_bytes(whole[:length])
        try:
            load_report(path)
        except DicomReadError as exc:
            assert exc.path == str(path)
            damaged += "damaged or cut short" in str(exc)
        except ZsmedError as exc:
            assert path.name in str(exc)
        except OSError:
            pass  # pydicom's own "cannot read": the CLI and the app say it as one line (below)
        rc = main(["read-report", str(path)])
        err = capsys.readouterr().err
        assert rc in (0, 1) and err.count("\n") == (rc == 1) and (rc == 0 or path.name in err), (length, err)
    assert damaged >= 1  # the cut that once escaped as struct.error
