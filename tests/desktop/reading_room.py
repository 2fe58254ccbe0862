"""Helpers for the reading-room tests: a window with its own QSettings file and site folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from PySide6.QtCore import QSettings

from tests.conftest import dicom_test_file
from zsmed.site import SiteConfig
from zsmed_desktop.main_window import MainWindow

SCAN_TIMEOUT = 120_000
AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def ct_series(folder: Path, study_uid: str, description: str, number: int, positions: list[list[float] | None],
              orientation: list[float] = AXIAL, *, study_date: str | None = None, frame: str | None = None) -> None:
    """CT_small as one series of a study: an image at each position (None: no position), in that orientation
    (and on that date, in that frame of reference, where given)."""
    series_uid = pydicom.uid.generate_uid()
    for k, position in enumerate(positions):
        ds = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
        if study_date is not None:
            ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study_date
        if frame is not None:
            ds.FrameOfReferenceUID = frame
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = description, number, k + 1
        if position is None:
            del ds.ImagePositionPatient
        else:
            ds.ImagePositionPatient = position
        ds.ImageOrientationPatient = orientation
        ds.save_as(folder / f"{description}_{k}.dcm")


def temp_settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "zsmed-app.ini"), QSettings.Format.IniFormat)


def make_window(qtbot, tmp_path: Path, settings: QSettings | None = None) -> MainWindow:
    site = SiteConfig(reader_name="Dr Test", caselog_path=str(tmp_path / "caselog.sqlite"),
                      models_folder=str(tmp_path / "models"))
    window = MainWindow(settings=settings or temp_settings(tmp_path), site=site)
    qtbot.addWidget(window)
    return window


def open_and_wait(qtbot, window: MainWindow, paths: list[str | Path]) -> None:
    window.open_paths(paths)
    qtbot.waitUntil(lambda: window.index is not None and not window.browser.scanning, timeout=SCAN_TIMEOUT)


def pydicom_test_folder() -> Path:
    return dicom_test_file("CT_small.dcm").parent


def small_cd(tmp_path: Path) -> Path:
    """CT, MR and an RT plan, a text file and a truncated '.dcm'."""
    folder = tmp_path / "cd"
    folder.mkdir(parents=True)
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm"):
        shutil.copy(dicom_test_file(name), folder / name)
    (folder / "notes.txt").write_text("not DICOM")
    (folder / "broken.dcm").write_bytes(b"\x00" * 50)
    return folder


def dicomdir_tree(tmp_path: Path) -> Path:
    """pydicom's DICOMDIR test set copied to tmp (returns the DICOMDIR file)."""
    source = dicom_test_file("DICOMDIR")
    if source.parent.name != "dicomdirtests":
        pytest.skip("pydicom's dicomdirtests folder is not on this machine")
    target = tmp_path / "cdrom"
    shutil.copytree(source.parent, target, ignore=shutil.ignore_patterns("DICOMDIR-*", "*.py*"))
    return target / "DICOMDIR"


def big_folder(tmp_path: Path, n: int = 2000, per_series: int = 100) -> Path:
    """``n`` distinct DICOM files (pydicom's MR_small with new instance and series UIDs), in series
    of ``per_series``: a folder as big as a CD's, written in a second (the UIDs are patched in bytes
    of equal length)."""
    import io

    import pydicom

    ds = pydicom.dcmread(dicom_test_file("MR_small.dcm"))
    sop, series = "1.2.826.0.1.3680043.9.7777.1.1000000", "1.2.826.0.1.3680043.9.7777.2.1000000"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(sop)
    ds.SeriesInstanceUID = pydicom.uid.UID(series)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    template = buffer.getvalue()
    folder = tmp_path / "big"
    folder.mkdir()
    for k in range(n):
        data = template.replace(sop.encode(), f"{sop[:-7]}{1_000_000 + k}".encode())
        data = data.replace(series.encode(), f"{series[:-7]}{1_000_000 + k // per_series}".encode())
        (folder / f"IM{k:05d}.dcm").write_bytes(data)
    return folder
