"""Text burned into the pixels found by OCR (zsmed.dicom.text_in_pixels), blanked in de-identified copies
(``Blanking(found_text=True)``, ``zsmed deidentify --blank-found-text``) and looked for by ``zsmed find-text``,
on pydicom's real ultrasound images (US1: "BAPTIST MED CTR" and a clock printed above the scan, "LYMPH NODE"
typed under it) and its CT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.conftest import dicom_test_file
from zsmed.cli.main import main
from zsmed.dicom.burned_in import Box
from zsmed.dicom.deidentify import Blanking, deidentify_job
from zsmed.dicom.text_in_pixels import (
    MIN_CONFIDENCE,
    FoundText,
    boxes_to_blank,
    describe_found,
    find_text_in_dataset,
    frames_to_read,
    outside_scan,
    parse_words,
)
from zsmed.errors import OcrUnavailableError
from zsmed.progress import run_job

needs_ocr = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="Tesseract not installed (Debian package tesseract-ocr; installer/system-packages.sh installs it)")

# the words pydicom's US1 ultrasound carries (a hospital's name printed by the machine, a sonographer's label)
HOSPITAL_WORDS = {"BAPTIST", "MED", "CTR"}


def _words(found: list[FoundText]) -> set[str]:
    return {word.text for word in found}


@pytest.fixture(scope="module")
def us1_found() -> list[FoundText]:
    if shutil.which("tesseract") is None:
        pytest.skip("Tesseract not installed (Debian package tesseract-ocr; installer/system-packages.sh installs it)")
    path = dicom_test_file("US1_UNCR.dcm")
    return find_text_in_dataset(pydicom.dcmread(path), path=path)


def test_parse_words_keeps_sure_words_and_maps_boxes_back() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "5\t1\t1\t1\t1\t1\t40\t20\t60\t16\t96.2\tDOE",  # kept, halved back from the 2x copy
        "5\t1\t1\t1\t1\t2\t110\t20\t9\t16\t95.0\tX",  # one character: dropped
        "5\t1\t1\t1\t1\t3\t130\t21\t50\t16\t41.0\tPUR",  # below the confidence: dropped
        "4\t1\t1\t1\t1\t0\t40\t20\t200\t16\t-1\t",  # a line, not a word
        "5\t1\t1\t1\t1\t4\t181\t20\t31\t17\t88.0\t1234",  # odd pixels round outwards
    ]
    found = parse_words("\n".join([header, *rows]), scale=2.0)
    assert [(w.text, w.box) for w in found] == [("DOE", Box(20, 10, 30, 8)), ("1234", Box(90, 10, 16, 9))]
    assert [w.text for w in parse_words("\n".join([header, *rows]), 2.0, min_confidence=40.0)] == [
        "DOE", "PUR", "1234"]
    assert MIN_CONFIDENCE > 40.0


def test_boxes_are_grown_kept_on_the_image_and_not_repeated() -> None:
    word = FoundText(Box(0, 5, 10, 4), "ID", 90.0)
    edge = FoundText(Box(95, 46, 5, 4), "99", 90.0)
    assert boxes_to_blank([word, word, edge], rows=50, columns=100, pad=2) == [Box(0, 3, 12, 8), Box(93, 44, 7, 6)]


def test_frames_read_and_the_scan_area() -> None:
    assert frames_to_read(1) == [0]
    assert frames_to_read(2) == [0, 1]
    assert frames_to_read(30) == [0, 15, 29]
    inside, above = FoundText(Box(100, 100, 20, 10), "AB", 50.0), FoundText(Box(100, 2, 20, 10), "AB", 50.0)
    scan = (10, 40, 600, 400)
    assert not outside_scan(inside, scan) and outside_scan(above, scan)
    assert not outside_scan(above, None)  # no regions: no lower bar anywhere


def test_the_printed_hospital_name_and_the_typed_label_are_found(us1_found: list[FoundText]) -> None:
    words = _words(us1_found)
    assert words >= HOSPITAL_WORDS
    assert {"LYMPH", "NODE"} <= words
    baptist = next(w for w in us1_found if w.text == "BAPTIST")
    # where the machine prints it: the top left corner, above the scan
    assert baptist.box.left < 60 and baptist.box.top < 40 and 40 < baptist.box.width < 120
    assert all(w.confidence >= MIN_CONFIDENCE for w in us1_found)  # US1 has no scan regions: one bar
    assert describe_found(us1_found).startswith(f'{len(us1_found)} words: "BAPTIST", "MED", "CTR"')


@needs_ocr
def test_no_text_on_a_ct_slice() -> None:
    path = dicom_test_file("CT_small.dcm")
    assert find_text_in_dataset(pydicom.dcmread(path), path=path) == []


@needs_ocr
def test_a_multiframe_ultrasound_is_read_frame_by_frame() -> None:
    path = dicom_test_file("OBXXXX1A_2frame.dcm")
    words = _words(find_text_in_dataset(pydicom.dcmread(path), path=path))
    assert {"Gen", "OB"} <= words


@needs_ocr
def test_an_export_blanks_the_words_found_and_keeps_the_scan(tmp_path: Path, us1_found: list[FoundText]) -> None:
    source = dicom_test_file("US1_UNCR.dcm")
    result = run_job(deidentify_job([source], tmp_path / "out", blanking=Blanking(found_text=True)))
    assert result.written == 1 and result.blanked == 1 and not result.problems
    assert any(note.startswith("OCR found text on 1 image") for note in result.notes)
    assert not result.burned_in  # blanked: no longer listed as an image to check for names
    written = pydicom.dcmread(result.files[0])
    assert written.PatientIdentityRemoved == "YES" and written.BurnedInAnnotation == "NO"
    before, after = pydicom.dcmread(source).pixel_array, written.pixel_array
    for word in us1_found:
        if word.text in HOSPITAL_WORDS | {"LYMPH", "NODE"}:
            box = word.box
            assert not after[box.top:box.top + box.height, box.left:box.left + box.width].any(), word.text
    # the scan itself (between the header and the label) is left as it was, all but a few pixels
    scan = slice(110, 330), slice(20, 600)
    assert np.mean(np.any(before[scan] != after[scan], axis=-1)) < 0.02
    # looked at again, the hospital's name and the label are gone
    again = _words(find_text_in_dataset(written, path=result.files[0]))
    assert not (HOSPITAL_WORDS | {"LYMPH", "NODE"}) & again


@needs_ocr
def test_a_ct_is_never_touched_by_the_ocr_blanking(tmp_path: Path) -> None:
    source = dicom_test_file("CT_small.dcm")
    result = run_job(deidentify_job([source], tmp_path / "out", blanking=Blanking(found_text=True)))
    written = pydicom.dcmread(result.files[0])
    assert written.PixelData == pydicom.dcmread(source).PixelData
    assert not any("OCR" in note for note in result.notes)


def test_without_the_ocr_program_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    source = dicom_test_file("US1_UNCR.dcm")
    with pytest.raises(OcrUnavailableError, match="tesseract"):
        run_job(deidentify_job([source], tmp_path / "out", blanking=Blanking(found_text=True)))
    assert not (tmp_path / "out").exists()
    assert main(["deidentify", str(source), "--out", str(tmp_path / "o2"), "--blank-found-text"]) == 2
    assert main(["find-text", str(source)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("zsmed: error: ") and "apt-get install tesseract-ocr" in line
                                 for line in err)
    assert not (tmp_path / "o2").exists()


@needs_ocr
def test_find_text_checks_an_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(dicom_test_file("US1_UNCR.dcm"), folder / "us.dcm")
    shutil.copy(dicom_test_file("CT_small.dcm"), folder / "ct.dcm")
    (folder / "notes.txt").write_text("not an image")
    # a photo of the ultrasound screen (as a phone or a capture card gives it)
    Image.fromarray(pydicom.dcmread(folder / "us.dcm").pixel_array).save(folder / "screen.png")

    assert main(["find-text", str(folder)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 3  # the DICOM, the photo, the summary
    assert lines[0].startswith(f"{folder / 'screen.png'}: ") and '"BAPTIST"' in lines[0]
    assert lines[1].startswith(f"{folder / 'us.dcm'}: ") and '"BAPTIST"' in lines[1]
    assert lines[2] == "text found on 2 of 3 images; 1 file could not be read"
    assert captured.err.strip().splitlines()[-1].startswith(f"zsmed: not read: {folder / 'notes.txt'}: ")

    assert main(["find-text", str(folder / "ct.dcm")]) == 0
    assert capsys.readouterr().out.strip() == "no text found on 1 image"

    assert main(["find-text", str(folder / "us.dcm"), "--json"]) == 1
    record = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert record["file"] == str(folder / "us.dcm")
    baptist = next(word for word in record["words"] if word["text"] == "BAPTIST")
    assert len(baptist["box"]) == 4 and baptist["confidence"] >= MIN_CONFIDENCE

    assert main(["find-text", str(tmp_path / "missing")]) == 2


@needs_ocr
def test_cli_export_then_check_finds_none_of_the_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = dicom_test_file("US1_UNCR.dcm")
    assert main(["deidentify", str(source), "--out", str(tmp_path / "out"), "--blank-found-text"]) == 0
    summary = capsys.readouterr().out
    assert "OCR found text on 1 image and it was blanked" in summary
    main(["find-text", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "BAPTIST" not in out and "LYMPH" not in out
