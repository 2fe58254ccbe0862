"""scan_job hands out what it read as it goes (ScanProgress batches), for views that fill while scanning."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import dicom_test_file
from zsmed.dicom.scan import ScanProgress, header_keys, scan_job


def test_batches_add_up_to_the_final_index(tmp_path: Path) -> None:
    names = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "emri_small.dcm")
    for name in names:
        shutil.copy(dicom_test_file(name), tmp_path / name)
    (tmp_path / "broken.dcm").write_bytes(b"\x00" * 40)
    job = scan_job([tmp_path], report_every=2)
    batches: list[ScanProgress] = []
    try:
        while True:
            progress = next(job)
            if isinstance(progress, ScanProgress):
                batches.append(progress)
    except StopIteration as stop:
        index = stop.value
    # 6 files, a report every 2: three batches, each with only what is new since the last one.
    assert len(batches) == 3
    paths = [h.path for b in batches for h in b.headers]
    assert len(paths) == len(set(paths)) == 5
    assert sorted(Path(p).name for p in paths) == sorted(names)
    assert [Path(p.path).name for b in batches for p in b.problems] == ["broken.dcm"]
    # The keys the batches group by are the final index's patients / studies / series.
    final_series = {se.uid for p in index.patients for st in p.studies for se in st.series}
    assert {header_keys(h)[2] for b in batches for h in b.headers} == final_series
    assert batches[-1].done == batches[-1].total == 6


def test_the_last_report_comes_even_when_the_last_file_was_seen_before(tmp_path: Path) -> None:
    shutil.copy(dicom_test_file("CT_small.dcm"), tmp_path / "a.dcm")
    (tmp_path / "b.dcm").symlink_to(tmp_path / "a.dcm")  # the same file again, last in the walk
    job = scan_job([tmp_path], report_every=100)
    reports = []
    try:
        while True:
            reports.append(next(job))
    except StopIteration as stop:
        index = stop.value
    assert reports[-1].done == reports[-1].total == 2
    assert index.counts()["instances"] == 1 and index.files_seen == 1
