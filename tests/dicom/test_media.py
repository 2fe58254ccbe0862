"""A study written for a CD or a USB stick (zsmed.dicom.media, ``zsmed media``): a DICOM file-set with its DICOMDIR
that zsmed's own reader (as any viewer) opens with every image, the data sets unchanged, dciodvfy finding no error
in the DICOMDIR; placeholders only in the DICOMDIR where files leave record values empty; what cannot go on the
media said, file by file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import dicom_test_file
from zsmed.cli.main import main
from zsmed.dicom.media import write_media_job
from zsmed.dicom.scan import scan_job
from zsmed.errors import ConfigError, InputFileError
from zsmed.progress import run_job

FILES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "test-SR.dcm", "emri_small.dcm", "rtplan.dcm")


def test_a_study_written_with_a_dicomdir_reads_back_whole(tmp_path: Path) -> None:
    sources = [dicom_test_file(name) for name in FILES]
    result = run_job(write_media_job(sources, tmp_path / "cd"))
    assert (result.written, result.patients, result.problems) == (6, 6, [])
    assert result.dicomdir.is_file() and (tmp_path / "cd" / "README.TXT").is_file()
    # every file under an 8-character upper-case ID, as the media profiles require
    written = [p for p in (tmp_path / "cd").rglob("*") if p.is_file() and p.name not in ("DICOMDIR", "README.TXT")]
    assert len(written) == 6
    parts = [part for p in written for part in p.relative_to(tmp_path / "cd").parts]
    assert all(len(part) <= 8 and part == part.upper() for part in parts)
    # zsmed's reader opens the DICOMDIR and finds every instance, their data sets as given
    index = run_job(scan_job([result.dicomdir]))
    found = {i.sop_instance_uid: Path(i.path) for p in index.patients for st in p.studies for s in st.series
             for i in s.instances}
    by_uid = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in sources}
    assert set(found) == set(by_uid)
    for uid, copy in found.items():
        original, back = pydicom.dcmread(by_uid[uid]), pydicom.dcmread(copy)
        assert back == original  # every element, the pixels as encoded
        if "PixelData" in original:
            assert np.array_equal(back.pixel_array, original.pixel_array)
    # placeholders in the DICOMDIR only: the SR and the MR have no Patient ID, and keep none in their files
    assert result.placeholders["PatientID"] == 2
    assert "Patient ID (2)" in result.summary()
    assert not pydicom.dcmread(found[str(pydicom.dcmread(dicom_test_file("test-SR.dcm")).SOPInstanceUID)]).PatientID


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed (installer/system-packages.sh)")
def test_dciodvfy_finds_no_error_in_the_dicomdir(tmp_path: Path) -> None:
    result = run_job(write_media_job([dicom_test_file(name) for name in FILES], tmp_path / "cd"))
    checked = subprocess.run(["dciodvfy", str(result.dicomdir)], capture_output=True, text=True, timeout=60)
    report = checked.stdout + checked.stderr
    assert "BasicDirectory" in report
    assert "Error" not in report, report


def test_what_cannot_go_on_the_media_is_said(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff not really")
    ct = dicom_test_file("CT_small.dcm")
    result = run_job(write_media_job([ct, ct, photo, dicom_test_file("DICOMDIR")], tmp_path / "cd"))
    assert result.written == 1
    assert result.skipped == {"DICOMDIR": 1, "already given": 1}
    assert len(result.problems) == 1 and result.problems[0].startswith(f"{photo}: ")
    # a folder with files in it is not mixed with a CD's
    with pytest.raises(InputFileError, match="new or empty folder"):
        run_job(write_media_job([ct], tmp_path / "cd"))
    with pytest.raises(ConfigError, match="1 to 16 capital letters"):
        run_job(write_media_job([ct], tmp_path / "other", file_set_id="my lovely cd"))
    # nothing DICOM at all: nothing written, no DICOMDIR
    empty = run_job(write_media_job([photo], tmp_path / "none"))
    assert empty.written == 0 and not (tmp_path / "none" / "DICOMDIR").exists()


def test_zsmed_media_writes_a_study_and_says_what_was_left_out(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "study"
    study.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(dicom_test_file(name), study / name)
    assert main(["media", str(study), "--out", str(tmp_path / "cd"), "--label", "DR SMITH 2026"]) == 0
    out = capsys.readouterr().out
    assert f"2 DICOM files of 2 patients (2 studies) written with a DICOMDIR to {tmp_path / 'cd'}" in out
    assert pydicom.dcmread(tmp_path / "cd" / "DICOMDIR").FileSetID == "DR SMITH 2026"
    (study / "notes.txt").write_text("not DICOM")
    assert main(["media", str(study), "--out", str(tmp_path / "cd2")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"zsmed: left out: {study / 'notes.txt'}: ") and len(err.strip().splitlines()) == 1


def test_a_deidentified_study_goes_on_a_cd_in_one_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "study"
    study.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(dicom_test_file(name), study / name)
    cd = tmp_path / "board" / "cd"
    assert main(["deidentify", str(study), "--out", str(cd), "--dicomdir"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"2 files exported de-identified to {cd}")
    assert out[1].startswith(f"2 DICOM files of 2 patients (2 studies) written with a DICOMDIR to {cd}")
    index = run_job(scan_job([cd / "DICOMDIR"]))
    names = {str(p.name) for p in index.patients}
    assert len(index.patients) == 2 and not names & {"CompressedSamples^CT1", "CompressedSamples^MR1"}
    assert "de-identified by zsmed" in (cd / "README.TXT").read_text()
    assert [p.name for p in (tmp_path / "board").iterdir()] == ["cd"]  # the staging folder is gone


def test_the_copies_staged_while_writing_are_removed_written_or_cancelled(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """pydicom stages a whole copy of every file in a temporary folder: gone as soon as the job ends, whether it
    wrote the CD or was cancelled halfway, not whenever Python collects the object (a CT's worth of /tmp)."""
    import tempfile

    staging = tmp_path / "tmp"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    sources = [dicom_test_file(name) for name in FILES]
    result = run_job(write_media_job(sources, tmp_path / "cd"))
    assert result.written == len(FILES) and list(staging.iterdir()) == []
    job = write_media_job(sources, tmp_path / "cancelled")
    next(job), next(job), next(job)  # two files staged, then the reader cancels
    assert len(list(next(staging.iterdir()).iterdir())) >= 1
    job.close()
    assert list(staging.iterdir()) == [] and not (tmp_path / "cancelled").exists()
