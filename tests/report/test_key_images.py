"""Key image notes (DICOM Key Object Selection) written for the reader's flagged images and read back,
on real files, checked element by element and with dicom3tools' dciodvfy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from tests.conftest import dicom_test_file
from tests.report.sr_items import dciodvfy_errors
from zsmed.errors import DicomReadError, NotDicomError, ZsmedError
from zsmed.report.key_images import KEY_IMAGES_SERIES_NUMBER, read_key_images, write_key_images


def _two_of_one_study(tmp_path: Path) -> list[Path]:
    """CT_small and a copy of it as another image of the same study (new SOP Instance UID)."""
    first = tmp_path / "ct1.dcm"
    shutil.copy(dicom_test_file("CT_small.dcm"), first)
    ds = pydicom.dcmread(first)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.InstanceNumber = 2
    second = tmp_path / "ct2.dcm"
    ds.save_as(second)
    return [first, second]


def test_flagged_images_are_one_note_of_interest_with_the_readers_words(tmp_path: Path) -> None:
    images = _two_of_one_study(tmp_path)
    path = write_key_images(images, note="Hypodense lesion,\n  segment 6", reader="Doe, Jane",
                            out_dir=tmp_path / "out")
    assert path.name.startswith("KO_") and dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    src = pydicom.dcmread(images[0], stop_before_pixels=True)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59" and ds.Modality == "KO"
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientID == src.PatientID
    assert ds.SeriesNumber == KEY_IMAGES_SERIES_NUMBER and ds.SeriesDescription == "zsmed key images"
    title = ds.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == ("113000", "DCM", "Of Interest")
    uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in images}
    evidence = {i.ReferencedSOPInstanceUID for s in ds.CurrentRequestedProcedureEvidenceSequence
                for se in s.ReferencedSeriesSequence for i in se.ReferencedSOPSequence}
    assert evidence == uids

    note = read_key_images(path)
    assert note.referenced == frozenset(uids) and note.note == "Hypodense lesion, segment 6"
    assert note.title == "Of Interest" and note.observer == "Doe, Jane^" and note.created.startswith("20")
    assert note.study_uid == src.StudyInstanceUID


def test_without_a_reader_zsmed_is_the_observer_and_without_a_note_there_is_none(tmp_path: Path) -> None:
    path = write_key_images([dicom_test_file("MR_small.dcm")], note="  ", reader="", out_dir=tmp_path)
    assert dciodvfy_errors(path) == []
    note = read_key_images(path)
    assert note.note == "" and note.observer == "" and len(note.referenced) == 1


def test_images_of_two_studies_or_none_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    ct, mr = dicom_test_file("CT_small.dcm"), dicom_test_file("MR_small.dcm")
    with pytest.raises(DicomReadError, match="another study") as caught:
        write_key_images([ct, mr], note="", reader="", out_dir=tmp_path)
    assert mr.name in str(caught.value)
    with pytest.raises(ZsmedError, match="nothing to write"):
        write_key_images([], note="", reader="", out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_reading_something_that_is_not_a_note_names_the_file() -> None:
    source = dicom_test_file("CT_small.dcm")
    with pytest.raises(NotDicomError, match="not a key image note") as caught:
        read_key_images(source)
    assert str(source) in str(caught.value)


def test_cli_writes_one_note_and_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.cli.main import main

    images = _two_of_one_study(tmp_path)
    out = tmp_path / "pacs"
    assert main(["key-images", *map(str, images), "--note", "see segment 6", "--reader", "Doe, Jane",
                 "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    written = next(out.glob("KO_*.dcm"))
    assert line == f"2 key images (Of Interest) saved as {written}"
    note = read_key_images(written)
    assert note.note == "see segment 6" and note.observer == "Doe, Jane^" and len(note.referenced) == 2


def test_cli_refuses_missing_files_and_mixed_studies_in_one_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.cli.main import main

    assert main(["key-images", str(tmp_path / "absent.dcm"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"zsmed: error: {tmp_path / 'absent.dcm'}: file not found"
    mr = dicom_test_file("MR_small.dcm")
    assert main(["key-images", str(dicom_test_file("CT_small.dcm")), str(mr), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and mr.name in err[0] and "another study" in err[0]
    assert list(tmp_path.glob("KO_*")) == []


def test_an_image_with_a_damaged_value_is_refused_in_one_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Bytes that name no value representation (a damaged header: 'SA' where the Accession Number's 'SH'
    was) surface only when highdicom reads the value: one line naming the file, nothing written."""
    from zsmed.cli.main import main

    data = dicom_test_file("CT_small.dcm").read_bytes()
    at = data.find(b"\x08\x00\x50\x00SH")  # (0008,0050) Accession Number, explicit VR
    assert at > 0
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(data[: at + 4] + b"SA" + data[at + 6:])
    out = tmp_path / "out"
    with pytest.raises(DicomReadError, match="damaged or cut short") as caught:
        write_key_images([damaged], note="", reader="", out_dir=out)
    assert caught.value.path == str(damaged) and not out.exists()
    assert main(["key-images", str(damaged), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged.dcm: a value in the file is damaged or cut short" in err
    assert not out.exists()
