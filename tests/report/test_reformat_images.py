"""Reformats saved for the PACS as a derived CT / MR series, on pydicom's real CT series (dicomdirtests CT5N)
and MR image (MR_small): read back, every image is the reformat (the same modality values), lies where the
reformat lies in the patient, in the source's study and frame of reference; a saved coronal series is itself
a volume whose axial is the original; dciodvfy finds nothing the source does not already have."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import dicom_test_file
from tests.dicom.test_volume import copies, ct5n, load
from tests.report.sr_items import dciodvfy_errors
from zsmed.dicom.display import image_plane
from zsmed.dicom.volume import plane_count, reformat, reformat_plane
from zsmed.errors import Cancelled, DicomReadError
from zsmed.progress import CancelToken, Progress, run_job
from zsmed.report.reformat_images import (
    REFORMAT_SERIES_NUMBER,
    ReformatSeries,
    every_mm,
    stored_values,
    write_reformat_series_job,
)


def ct5n_folder(tmp_path: Path) -> Path:
    """CT5N's files copied into a folder of their own, as a series a reader gives the command line."""
    folder = tmp_path / "ct5n"
    folder.mkdir()
    for path in ct5n():
        shutil.copy(path, folder / f"{path.name}.dcm")
    return folder


def modality_values(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_every_coronal_saved_is_the_reformat_where_it_lies(tmp_path: Path) -> None:
    volume = load(ct5n())
    indices = every_mm(volume, "coronal", 0.0)  # every slice
    assert indices == tuple(range(16))
    series = ReformatSeries("coronal", indices, window=(40.0, 400.0), reader="Doe, Jane")
    reports: list[Progress] = []
    written = run_job(write_reformat_series_job(volume, series, tmp_path), reports.append)
    assert len(written) == 16 and len({p.parent for p in written}) == 1
    assert written[0].parent.parent == tmp_path and written[0].parent.name.startswith("MPR_coronal_")
    assert [r.done for r in reports] == list(range(1, 17)) and reports[-1].message == "saving reformat image 16 of 16"
    source = pydicom.dcmread(volume.paths[0], stop_before_pixels=True)
    series_uids = set()
    for number, (path, index) in enumerate(zip(written, indices, strict=True), 1):
        ds = pydicom.dcmread(path)
        series_uids.add(ds.SeriesInstanceUID)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and ds.Modality == "CT" and ds.InstanceNumber == number
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "REFORMATTED"]
        assert ds.DerivationCodeSequence[0].CodeValue == "113072"
        for keyword in ("StudyInstanceUID", "PatientID", "PatientName", "FrameOfReferenceUID", "StudyDate"):
            assert ds[keyword].value == source[keyword].value
        assert ds.SeriesNumber == REFORMAT_SERIES_NUMBER and ds.SeriesDescription == "zsmed coronal every 0.488 mm"
        assert ds.OperatorsName == "Doe, Jane^" and (float(ds.WindowCenter), float(ds.WindowWidth)) == (40.0, 400.0)
        np.testing.assert_array_equal(modality_values(ds), reformat(volume, "coronal", index).image)
        saved, expected = image_plane(ds), reformat_plane(volume, "coronal", index)
        assert saved is not None
        np.testing.assert_allclose(saved.position, expected.position, atol=1e-3)
        np.testing.assert_allclose(saved.row_direction + saved.column_direction,
                                   expected.row_direction + expected.column_direction, atol=1e-6)
        assert saved.spacing == pytest.approx(expected.spacing) and saved.size == expected.size
    assert len(series_uids) == 1 and source.SeriesInstanceUID not in series_uids

    # the coronal series is a volume of its own, and its axial slices are the original ones
    again = load(written)
    assert again.voxels.shape == (16, 5, 16)
    for index in range(plane_count(volume, "axial")):
        np.testing.assert_array_equal(reformat(again, "axial", index).image, reformat(volume, "axial", index).image)

    # dciodvfy: nothing the source itself does not already have (CT5N lacks Laterality)
    assert set(dciodvfy_errors(written[0])) <= set(dciodvfy_errors(volume.paths[0]))


def test_a_mean_slab_keeps_its_fractions_and_says_how_it_was_made(tmp_path: Path) -> None:
    volume = load(ct5n())
    series = ReformatSeries("sagittal", (7, 8), slab_mm=2.0, mode="mean")
    first, second = (pydicom.dcmread(p) for p in run_job(write_reformat_series_job(volume, series, tmp_path)))
    shown = reformat(volume, "sagittal", 7, 2.0, "mean")
    assert shown.slab_slices > 1 and not np.allclose(shown.image, np.round(shown.image))  # fractional HU
    slope = float(first.RescaleSlope)
    np.testing.assert_allclose(modality_values(first), shown.image, atol=slope / 2 + 1e-4)
    assert first.DerivationCodeSequence[0].CodeValue == "113072"  # a mean slab: reformatting, no projection code
    assert float(first.SliceThickness) == pytest.approx(shown.slab_mm)
    assert float(first.SpacingBetweenSlices) == pytest.approx(0.488281, rel=1e-5)
    assert first.SeriesDescription == "zsmed sagittal 2 mm mean every 0.488 mm"  # 3 figures: never "4.88281 mm"
    assert second.InstanceNumber == 2
    mip = pydicom.dcmread(run_job(write_reformat_series_job(volume, ReformatSeries("axial", (2,), 5.0, "mip"),
                                                            tmp_path))[0])
    assert mip.DerivationCodeSequence[0].CodeMeaning == "Maximum intensity projection"


def test_stored_values_give_whole_numbers_back_exactly_and_fractions_closely() -> None:
    hu = np.array([[-1024.0, 0.0], [40.0, 3071.0]], dtype=np.float32)
    stored, slope, intercept = stored_values(hu)
    assert stored.dtype == np.uint16 and slope == 1.0
    np.testing.assert_array_equal(stored * slope + intercept, hu)
    wide = np.array([[-0.25, 100000.5]], dtype=np.float32)
    stored, slope, intercept = stored_values(wide)
    np.testing.assert_allclose(stored * slope + intercept, wide, atol=slope / 2 + 1e-3)


def test_an_mr_series_is_saved_as_mr_images_with_its_acquisition(tmp_path: Path) -> None:
    """Four copies of the real MR_small image, 5 mm apart along its normal, as an MR series."""
    source = dicom_test_file("MR_small.dcm")
    header = pydicom.dcmread(source, stop_before_pixels=True)
    row, column = np.asarray(header.ImageOrientationPatient[:3], float), np.asarray(header.ImageOrientationPatient[3:],
                                                                                     float)
    normal = np.cross(row, column)
    start = np.asarray(header.ImagePositionPatient, float)
    change: dict[int, dict[str, object]] = {
        k: {"ImagePositionPatient": [float(v) for v in start + 5.0 * k * normal],
            "SOPInstanceUID": pydicom.uid.generate_uid()} for k in range(4)}
    volume = load(copies(tmp_path, [source] * 4, change))
    assert volume.modality == "MR"
    written = run_job(write_reformat_series_job(volume, ReformatSeries("coronal", (10,)), tmp_path / "out"))
    ds = pydicom.dcmread(written[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and ds.Modality == "MR"
    for keyword in ("ScanningSequence", "SequenceVariant", "EchoTime", "RepetitionTime"):
        assert ds[keyword].value == header[keyword].value
    np.testing.assert_array_equal(modality_values(ds), reformat(volume, "coronal", 10).image)
    assert set(dciodvfy_errors(written[0])) <= set(dciodvfy_errors(source))


def test_only_ct_and_mr_are_saved_and_cancelling_keeps_whole_images(tmp_path: Path) -> None:
    pet = load(copies(tmp_path, ct5n(), {k: {"Modality": "PT"} for k in range(5)}))
    with pytest.raises(DicomReadError) as caught:
        run_job(write_reformat_series_job(pet, ReformatSeries("coronal", (1,)), tmp_path / "pet"))
    assert "only CT and MR reformats" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "pet").exists()

    volume = load(ct5n())
    token = CancelToken()
    with pytest.raises(Cancelled):
        run_job(write_reformat_series_job(volume, ReformatSeries("coronal", (1, 2, 3)), tmp_path / "ct"),
                lambda progress: token.cancel(), token)
    (folder,) = (tmp_path / "ct").iterdir()
    (kept,) = folder.iterdir()  # the first image, whole; nothing half-written beside it
    assert pydicom.dcmread(kept).InstanceNumber == 1
    shutil.rmtree(folder)


def test_cli_saves_a_plane_of_a_series_folder_and_refuses_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.cli.main import main

    folder = ct5n_folder(tmp_path)
    assert main(["reformat", str(folder), "--plane", "sagittal", "--every", "2", "--slab", "3", "--mode", "mean",
                 "--window", "40,400", "--reader", "Doe", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    (saved,) = (tmp_path / "out").iterdir()
    files = sorted(saved.iterdir())
    assert out == f"4 sagittal images saved as a new series of the study in {saved}\n"
    volume = load(ct5n())
    for path, index in zip(files, (0, 4, 8, 12), strict=True):  # 2 mm = 4 columns of 0.49 mm
        ds = pydicom.dcmread(path)
        assert float(ds.WindowCenter) == 40.0 and ds.OperatorsName == "Doe^"
        np.testing.assert_allclose(modality_values(ds), reformat(volume, "sagittal", index, 3.0, "mean").image,
                                   atol=float(ds.RescaleSlope) / 2 + 1e-4)
    assert main(["reformat", str(folder), "--plane", "axial", "--slice", "3", "--out", str(tmp_path / "one")]) == 0
    assert "1 axial image saved" in capsys.readouterr().out
    # one image is not a volume; two series are not one
    assert main(["reformat", str(dicom_test_file("CT_small.dcm"))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CT_small.dcm: a series of 1 image cannot be reformatted" in err
    shutil.copy(dicom_test_file("MR_small.dcm"), folder / "mr.dcm")
    assert main(["reformat", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 series found: give the files or the folder of one series" in err
    assert main(["reformat", str(tmp_path / "missing")]) == 2


def test_cli_saves_an_oblique_plane_drawn_as_a_line_on_a_slice(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    """--oblique axial,3,C1,R1,C2,R2: the plane through that line of axial slice 3, square to it, as the app's
    Oblique tool makes it; every 1 mm of it, lined up on the slice through the line."""
    from zsmed.cli.main import main
    from zsmed.dicom.volume import Oblique, oblique_through

    folder = ct5n_folder(tmp_path)
    assert main(["reformat", str(folder), "--oblique", "axial,3,2,2,14,10", "--every", "1",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    (saved,) = (tmp_path / "out").iterdir()
    files = sorted(saved.iterdir())
    volume = load(ct5n())
    where = reformat_plane(volume, "axial", 2)
    plane = oblique_through(volume, where.patient_point((2.0, 2.0)), where.patient_point((14.0, 10.0)),
                            where.normal)
    assert isinstance(plane, Oblique) and "oblique" in saved.name
    indices = every_mm(volume, plane, 1.0, plane.through)
    assert plane.through in indices and len(files) == len(indices) > 2
    assert out == (f"{len(files)} oblique images (slice {plane.through + 1} through the line) saved as a new series "
                   f"of the study in {saved}\n")
    for path, index in zip(files, indices, strict=True):
        ds = pydicom.dcmread(path)
        lies = reformat_plane(volume, plane, index)
        assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx(list(lies.position), abs=1e-3)
        assert [float(v) for v in ds.ImageOrientationPatient] == pytest.approx([*plane.right, *plane.down], abs=1e-6)
        np.testing.assert_allclose(modality_values(ds), reformat(volume, plane, index).image,
                                   atol=float(ds.RescaleSlope) / 2 + 1e-3)
    assert ds.SeriesDescription == "zsmed oblique every 0.977 mm"
    # a slice the plane does not have, a line of one point, words for numbers: one line each
    assert main(["reformat", str(folder), "--oblique", "axial,9,2,2,14,10"]) == 2
    assert capsys.readouterr().err == "zsmed: error: --oblique: the axial plane has slices 1 to 5\n"
    for bad in ("axial,3,2,2,2,2", "axial,3,two,2,14,10", "oblique,3,2,2,14,10"):
        with pytest.raises(SystemExit):
            main(["reformat", str(folder), "--oblique", bad])
        err = capsys.readouterr().err
        assert "--oblique" in err and "Traceback" not in err


def test_cli_saves_a_curved_reformat_along_a_path_as_a_picture(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--curved axial,3,C1,R1,…: the path through those pixels of axial slice 3, unrolled, as a Secondary
    Capture of the study; a path of one point, words for numbers, or --oblique beside it: one line each."""
    from zsmed.cli.main import main
    from zsmed.dicom.volume import curved_through

    folder = ct5n_folder(tmp_path)
    assert main(["reformat", str(folder), "--curved", "axial,3,2,2,8,10,14,6", "--window", "40,400",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    (saved,) = (tmp_path / "out").iterdir()
    (picture,) = saved.iterdir()
    volume = load(ct5n())
    where = reformat_plane(volume, "axial", 2)
    curved = curved_through(volume, [where.patient_point(p) for p in ((2, 2), (8, 10), (14, 6))], where.normal)
    assert out == (f"1 curved reformat along a {curved.length_mm:.1f} mm path saved as a picture of the study "
                   f"(a Secondary Capture: it lies on no plane) in {saved}\n")
    ds = pydicom.dcmread(picture)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and (ds.Rows, ds.Columns) == (curved.rows, curved.columns)
    assert float(ds.PixelSpacing[0]) == pytest.approx(curved.pixel_mm)
    for bad in ("axial,3,2,2", "axial,3,2,2,2,2", "axial,3,two,2,14,10"):
        with pytest.raises(SystemExit):
            main(["reformat", str(folder), "--curved", bad])
        err = capsys.readouterr().err
        assert "--curved" in err and "Traceback" not in err
    assert main(["reformat", str(folder), "--curved", "axial,3,2,2,8,10", "--oblique", "axial,3,2,2,8,10"]) == 2
    assert capsys.readouterr().err == "zsmed: error: --oblique and --curved: give one of them\n"
    assert main(["reformat", str(folder), "--curved", "axial,9,2,2,8,10"]) == 2
    assert capsys.readouterr().err == "zsmed: error: --curved: the axial plane has slices 1 to 5\n"
