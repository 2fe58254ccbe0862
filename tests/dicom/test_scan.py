"""Scanning: index shape, DICOMDIR, and every kind of bad input in one folder."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pydicom
import pytest

from tests.dicom.conftest import data
from zsmed.dicom.header import read_header
from zsmed.dicom.scan import ScanIndex, scan, scan_job
from zsmed.errors import DicomReadError, InputFileError, NotDicomError
from zsmed.progress import Progress


def _problem(index: ScanIndex, name: str) -> str:
    hits = [p.reason for p in index.problems if os.path.basename(p.path) == name]
    assert hits, f"no problem listed for {name}: {index.problems}"
    return hits[0]


def test_dicomdir_tree_sorted() -> None:
    index = scan(data("DICOMDIR"))
    counts = index.counts()
    assert counts["instances"] == 31 and counts["patients"] == 2 and counts["problems"] == 0
    for patient in index.patients:
        for study in patient.studies:
            numbers = [s.number for s in study.series]
            assert numbers == sorted(numbers)
            for series in study.series:
                inst = [i.instance_number for i in series.instances if i.position is None]
                assert inst == sorted(inst)


def test_instances_sorted_by_position(tmp_path: Path) -> None:
    src = pydicom.dcmread(data("CT_small.dcm"))
    for k, z in enumerate([30.0, 10.0, 20.0]):
        src.SOPInstanceUID = f"1.2.3.{k}"
        src.InstanceNumber = k + 1  # deliberately not the spatial order
        src.ImagePositionPatient = [0.0, 0.0, z]
        src.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        src.save_as(tmp_path / f"f{k}.dcm", enforce_file_format=False)
    index = scan(tmp_path)
    series = index.patients[0].studies[0].series[0]
    assert [i.position[2] for i in series.instances] == [10.0, 20.0, 30.0]  # type: ignore[index]


def test_scan_is_a_job_with_progress(tmp_path: Path) -> None:
    for k in range(5):
        shutil.copy(data("MR_small.dcm"), tmp_path / f"m{k}.dcm")
    job = scan_job([tmp_path], report_every=2)
    progress = []
    try:
        while True:
            progress.append(next(job))
    except StopIteration as stop:
        index = stop.value
    assert all(isinstance(p, Progress) for p in progress)
    assert progress[-1].done == 5 and progress[-1].total == 5
    assert index.counts()["instances"] == 1 and index.counts()["problems"] == 4  # same SOP UID: duplicates


@pytest.fixture()
def bad_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    good = data("CT_small.dcm")
    shutil.copy(good, folder / "good.dcm")
    shutil.copy(data("MR_small.dcm"), folder / "sub_good.dcm")
    raw = Path(good).read_bytes()
    (folder / "zero.dcm").write_bytes(b"")
    (folder / "trunc_header.dcm").write_bytes(raw[:400])
    (folder / "trunc_pixels.dcm").write_bytes(raw[: len(raw) - 5000])
    (folder / "random.dcm").write_bytes(os.urandom(4096))
    (folder / "notes.txt").write_text("not an image")
    (folder / "no_preamble.dcm").write_bytes(raw[128:])  # 'DICM' + meta, no preamble: junk
    ds = pydicom.dcmread(data("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.99"
    ds.SOPInstanceUID = "1.2.3.4.99.1"
    ds.save_as(folder / "unknown_ts.dcm", enforce_file_format=False)
    ds = pydicom.dcmread(data("MR_small.dcm"))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.SOPInstanceUID = "1.2.3.4.99.2"
    ds.save_as(folder / "wrong_bits.dcm", enforce_file_format=False)
    shutil.copy(data("rtplan.dcm"), folder / "rtplan.dcm")
    shutil.copy(data("test-SR.dcm"), folder / "sr.dcm")
    with open(folder / "sparse2g.dcm", "wb") as fp:  # costs no disk
        fp.truncate(2 * 1024**3)
    loop = folder / "loopdir"
    loop.mkdir()
    os.symlink(folder, loop / "back_to_top")
    os.symlink(folder / "missing_target", folder / "dangling.dcm")
    return folder


def test_bad_inputs_each_get_a_reason_and_the_rest_is_indexed(bad_folder: Path) -> None:
    start = time.perf_counter()
    index = scan(bad_folder)
    assert time.perf_counter() - start < 20
    paths = {os.path.basename(i.path) for i in index.instances}
    # images and non-image objects with readable headers are indexed
    assert {"good.dcm", "sub_good.dcm", "unknown_ts.dcm", "wrong_bits.dcm", "rtplan.dcm", "sr.dcm"} <= paths
    assert "empty file" in _problem(index, "zero.dcm")
    assert "truncated" in _problem(index, "trunc_header.dcm")
    assert "not a DICOM file" in _problem(index, "random.dcm")
    assert "not a DICOM file" in _problem(index, "no_preamble.dcm")
    assert "not a DICOM file" in _problem(index, "sparse2g.dcm")
    assert "broken symbolic link" in _problem(index, "dangling.dcm")
    loops = [p for p in index.problems if p.kind == "loop"]
    assert loops and "directory loop" in loops[0].reason
    assert index.skipped_non_dicom >= 1  # notes.txt
    # every problem is one line
    assert all("\n" not in p.reason for p in index.problems)


def test_unreadable_file_permission(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "locked.dcm"
    shutil.copy(data("CT_small.dcm"), target)
    shutil.copy(data("MR_small.dcm"), tmp_path / "ok.dcm")
    real_open = open

    def fake_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file) == str(target):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    index = scan(tmp_path)
    assert _problem(index, "locked.dcm") == "permission denied"
    assert [os.path.basename(i.path) for i in index.instances] == ["ok.dcm"]
    with pytest.raises(InputFileError, match="permission denied"):
        read_header(target)


def test_header_errors(tmp_path: Path) -> None:
    raw = Path(data("CT_small.dcm")).read_bytes()
    (tmp_path / "t.dcm").write_bytes(raw[:300])
    with pytest.raises(DicomReadError, match="truncated"):
        read_header(tmp_path / "t.dcm")
    (tmp_path / "z.dcm").write_bytes(b"")
    with pytest.raises(NotDicomError, match="empty"):
        read_header(tmp_path / "z.dcm")


def test_header_matches_pydicom_on_all_test_files() -> None:
    from pydicom.data import get_testdata_files

    checked = 0
    for path in get_testdata_files("*.dcm"):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            header = read_header(path)
        except Exception:
            continue
        for keyword in ("SOPInstanceUID", "Rows", "Columns", "Modality", "SeriesInstanceUID"):
            value = ds.get(keyword)
            if value not in (None, ""):
                assert str(header.get(keyword)) == str(value).strip(), (path, keyword)
        checked += 1
    assert checked > 100


def test_a_damaged_dicomdir_lists_what_it_can(tmp_path: Path) -> None:
    """Bytes of a DICOMDIR overwritten (a scratched CD): pydicom decodes its records only when they
    are read, so the damage shows up there: a damaged record is skipped and named, a damaged list of
    records makes the DICOMDIR one problem; never a traceback."""
    disc = tmp_path / "disc"
    shutil.copytree(Path(data("DICOMDIR")).parent, disc)
    good = (disc / "DICOMDIR").read_bytes()
    damaged = bytearray(good)
    at = damaged.find(b"\x04\x00\x00\x15CS")  # the first record's ReferencedFileID, given a VR no standard has
    damaged[at + 4:at + 6] = b"CL"
    (disc / "DICOMDIR").write_bytes(bytes(damaged))
    index = scan(disc / "DICOMDIR")
    assert index.counts()["instances"] == 30  # of 31: the other records still name their files
    assert "DICOMDIR record 4 is damaged and was skipped" in _problem(index, "DICOMDIR")
    damaged = bytearray(good)
    length = 1870 + 6  # a record's SpecificCharacterSet length, 10 -> 164: the records no longer parse
    assert damaged[length - 6:length] == b"\x08\x00\x05\x00CS" and damaged[length] == 10
    damaged[length] = 164
    (disc / "DICOMDIR").write_bytes(bytes(damaged))
    index = scan(disc / "DICOMDIR")
    assert index.counts()["instances"] == 0
    assert "DICOMDIR unreadable: the DICOMDIR's list of files is damaged" in _problem(index, "DICOMDIR")


def test_the_prior_is_the_same_kind_of_series_from_the_patients_previous_study() -> None:
    from zsmed.dicom.scan import Instance, Patient, ScanIndex, Series, Study, prior_series

    def series(uid: str, modality: str, description: str, images: int, number: int = 1) -> Series:
        return Series(uid, number, modality, description, None,
                      [Instance(f"{uid}/{k}.dcm", f"{uid}.{k}", rows=8, cols=8) for k in range(images)])

    today = Study("s3", "20240301", series=[series("ct-chest", "CT", "Chest with contrast", 200),
                                            series("cr", "CR", "Chest PA", 1)])
    last_year = Study("s2", "20230301", series=[series("ct-abdo", "CT", "Abdomen", 300),
                                                series("ct-chest-old", "CT", "CHEST W CONTRAST 1mm", 150, 3),
                                                series("ct-chest-thick", "CT", "chest contrast 5mm", 40, 2)])
    last_month = Study("s2b", "20240201", series=[series("ct-abdo-new", "CT", "Abdomen", 300)])
    older = Study("s1", "20200101", series=[series("ct-older", "CT", "Chest with contrast", 100)])
    undated = Study("s0", None, series=[series("ct-undated", "CT", "Chest with contrast", 100)])
    other = Patient("P2", "Other^Patient", studies=[Study("x", "20230101", series=[series("ct-x", "CT", "Chest", 9)])])
    studies = [older, undated, last_year, last_month, today]
    index = ScanIndex(patients=[Patient("P1", "Doe^Jane", studies=studies), other])
    prior = prior_series(index, "ct-chest")
    # last year's chest, not last month's abdomen; of its two chest series the one with more images
    assert prior is not None and prior.uid == "ct-chest-old"
    assert prior_series(index, "ct-abdo-new").uid == "ct-abdo"  # the abdomen's prior is last year's abdomen
    assert prior_series(index, "ct-chest-old").uid == "ct-older"  # before last year: the 2020 study
    assert prior_series(index, "cr") is None  # no earlier radiograph
    assert prior_series(index, "ct-older") is None and prior_series(index, "ct-x") is None
    assert prior_series(index, "no-such-series") is None


def test_series_saved_since_the_scan_join_their_study(tmp_path: Path) -> None:
    """A reformat series saved next to pydicom's CT5N (same patient and study) joins that study; a series
    already listed is not listed twice; another patient's study is added; the index scanned is unchanged."""
    from tests.dicom.test_volume import ct5n
    from zsmed.dicom.scan import merge_index
    from zsmed.dicom.volume import load_volume_job
    from zsmed.progress import run_job
    from zsmed.report.reformat_images import ReformatSeries, write_reformat_series_job

    study = tmp_path / "study"
    study.mkdir()
    for path in ct5n():
        shutil.copy(path, study / f"{path.name}.dcm")
    index = scan([study])
    (patient,) = index.patients
    (ct,) = patient.studies
    assert len(ct.series) == 1
    volume = load_volume_job(sorted(study.iterdir()))
    saved = run_job(write_reformat_series_job(run_job(volume), ReformatSeries("coronal", (3, 8)), study))
    added = scan([saved[0].parent])
    merged = merge_index(index, added)
    (merged_patient,) = merged.patients
    (merged_study,) = merged_patient.studies
    assert [se.description for se in merged_study.series] == [ct.series[0].description, "zsmed coronal every 2.44 mm"]
    assert len(merged_study.series[1].instances) == 2 and len(ct.series) == 1  # the scanned index is untouched
    assert merge_index(merged, added).patients[0].studies[0].series == merged_study.series  # no double listing
    other = scan([data("MR_small.dcm")])
    assert len(merge_index(merged, other).patients) == 2
