"""A series as one volume and its multiplanar reformats, on pydicom's real CT and MR series (dicomdirtests):
slices in order along the normal, spacing from their positions, voxels as the viewer's modality values,
planes as the patient lies (a sagittal acquisition gives a true axial), slabs, and one-line refusals of
series a reformat would lie about."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import dicom_test_files
from zsmed.dicom import volume as volume_module
from zsmed.dicom.volume import (
    ReformatError,
    Volume,
    load_volume_job,
    plane_count,
    reformat,
    reformat_plane,
    slab_range,
)
from zsmed.errors import Cancelled, NotDicomError, ZsmedError
from zsmed.progress import CancelToken, Progress, run_job


def series_in(folder: str) -> dict[str, list[Path]]:
    """The files of each series under pydicom's dicomdirtests/``folder``, by Series Instance UID."""
    found: dict[str, list[Path]] = defaultdict(list)
    for path in dicom_test_files():
        if f"dicomdirtests/{folder}/" in path.as_posix():
            found[str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)].append(path)
    if not found:
        pytest.skip(f"pydicom's dicomdirtests/{folder} is not on this machine")
    return found


def ct5n() -> list[Path]:
    """A real CT series: 5 axial slices 2.5 mm apart (16 x 16, HU), in no particular order."""
    (files,) = series_in("98892001/CT5N").values()
    assert len(files) == 5
    shuffled = list(files)
    random.Random(7).shuffle(shuffled)
    return shuffled


def z_of(path: Path) -> float:
    return float(pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient[2])


def load(paths: list[Path]) -> Volume:
    return run_job(load_volume_job(paths))


def one_line_naming(exc: pytest.ExceptionInfo[BaseException], path: Path) -> str:
    """The error's text, checked to be one line naming ``path``."""
    text = str(exc.value)
    assert "\n" not in text and str(path) in text, text
    return text


def copies(tmp_path: Path, paths: list[Path], change: dict[int, dict[str, object]] | None = None) -> list[Path]:
    """``paths`` copied into ``tmp_path``, the k-th with the elements in ``change[k]`` set (None: deleted)."""
    out = []
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        for keyword, value in (change or {}).get(k, {}).items():
            if value is None:
                delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        target = tmp_path / f"slice{k}.dcm"
        ds.save_as(target)
        out.append(target)
    return out


# --- reading ------------------------------------------------------------------------------------------
def test_slices_are_sorted_along_the_normal_and_spaced_by_their_positions() -> None:
    files = ct5n()
    volume = load(files)
    assert volume.voxels.shape == (5, 16, 16) and volume.voxels.dtype == np.float32
    assert [z_of(p) for p in volume.paths] == sorted(z_of(p) for p in files)  # feet to head: +z is the normal
    assert volume.normal == (0.0, 0.0, 1.0)
    assert volume.orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    positions = [z_of(p) for p in volume.paths]
    assert volume.spacing[0] == pytest.approx(positions[1] - positions[0]) == pytest.approx(2.5)
    first = pydicom.dcmread(volume.paths[0], stop_before_pixels=True)
    assert volume.spacing[1:] == pytest.approx([float(v) for v in first.PixelSpacing])
    assert volume.origin == pytest.approx([float(v) for v in first.ImagePositionPatient])
    assert volume.modality == "CT" and volume.hounsfield and not volume.inverted
    assert not volume.voxels.flags.writeable  # shared by every reformat: nobody may change it


def test_voxels_are_the_rescaled_pixels_read_independently() -> None:
    volume = load(ct5n())
    for k, path in enumerate(volume.paths):
        ds = pydicom.dcmread(path)
        expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(volume.voxels[k], expected.astype(np.float32))
    assert volume.voxels.min() < -500  # HU: air around the patient, not stored values


def test_progress_for_each_slice_checked_then_read_through_the_decoder_given() -> None:
    decoded: list[Path] = []

    def decode(path: Path) -> np.ndarray:
        decoded.append(path)
        return pydicom.dcmread(path).pixel_array

    reports: list[Progress] = []
    volume = run_job(load_volume_job(ct5n(), decode=decode), reports.append)
    assert decoded == list(volume.paths)
    assert [r.done for r in reports] == list(range(1, 11)) and {r.total for r in reports} == {10}
    assert reports[0].message == "checking file 1 of 5" and reports[-1].message == "reading slice 5 of 5"


def test_cancelling_stops_the_reading_at_the_next_slice() -> None:
    decoded: list[Path] = []

    def decode(path: Path) -> np.ndarray:
        decoded.append(path)
        return pydicom.dcmread(path).pixel_array

    token = CancelToken()

    def on_progress(progress: Progress) -> None:
        if progress.message.startswith("reading"):
            token.cancel()  # after the first slice read

    with pytest.raises(Cancelled):
        run_job(load_volume_job(ct5n(), decode=decode), on_progress, token)
    assert len(decoded) == 1


# --- planes -------------------------------------------------------------------------------------------
def test_axial_of_an_axial_series_is_its_slice() -> None:
    volume = load(ct5n())
    for index in range(5):
        shown = reformat(volume, "axial", index)
        np.testing.assert_array_equal(shown.image, volume.voxels[index])
        assert shown.count == 5 and shown.index == index and shown.plane == "axial"
    assert shown.spacing == pytest.approx(volume.spacing[1:])
    assert shown.edges == ("R", "L", "A", "P")  # seen from the feet: the patient's right on the left
    assert shown.location_mm == pytest.approx(z_of(volume.paths[4])) and shown.location_letters == ("F", "H")


def test_coronal_is_the_volume_cut_front_to_back_head_up_at_true_spacing() -> None:
    volume = load(ct5n())
    assert plane_count(volume, "coronal") == 16
    for index in (0, 7, 15):
        shown = reformat(volume, "coronal", index)
        np.testing.assert_array_equal(shown.image, volume.voxels[::-1, index, :])  # the head at the top
    assert shown.spacing == pytest.approx((volume.spacing[0], volume.spacing[2]))  # (slice, column spacing)
    assert shown.edges == ("R", "L", "H", "F") and shown.count == 16
    row_y = volume.origin[1] + 15 * volume.spacing[1]
    assert shown.location_mm == pytest.approx(row_y) and shown.location_letters == ("A", "P")


def test_sagittal_is_the_volume_cut_right_to_left_front_on_the_left() -> None:
    volume = load(ct5n())
    shown = reformat(volume, "sagittal", 3)
    np.testing.assert_array_equal(shown.image, volume.voxels[::-1, :, 3])
    assert shown.spacing == pytest.approx((volume.spacing[0], volume.spacing[1]))
    assert shown.edges == ("A", "P", "H", "F") and shown.count == 16


def test_a_sagittal_acquisition_gives_a_true_axial(tmp_path: Path) -> None:
    """The same pixels written as a sagittal MR would be: rows along +y (to the back), columns down to the
    feet, slices 3 mm apart along x. 'axial' must cut across its rows, not return its slices."""
    files = sorted(ct5n(), key=z_of)
    change = {k: {"ImageOrientationPatient": [0, 1, 0, 0, 0, -1], "ImagePositionPatient": [20.0 + 3 * k, -100, 60]}
              for k in range(5)}
    volume = load(copies(tmp_path, files, change))
    assert volume.normal == pytest.approx((-1.0, 0.0, 0.0))  # stacked towards the patient's right
    assert volume.spacing[0] == pytest.approx(3.0)
    axial = reformat(volume, "axial", 4)
    # axial slice 4 counts from the feet: stored row 11 of 16; the patient's right (the last slice) on the left
    np.testing.assert_array_equal(axial.image, volume.voxels[::-1, 11, :].T)
    assert axial.edges == ("R", "L", "A", "P") and axial.count == 16
    assert axial.spacing == pytest.approx((volume.spacing[2], volume.spacing[0]))  # (column, slice spacing)
    sagittal = reformat(volume, "sagittal", 1)
    np.testing.assert_array_equal(sagittal.image, volume.voxels[3])  # slice 1 from the right: stored 3 of 0..4
    assert sagittal.edges == ("A", "P", "H", "F") and sagittal.spacing == pytest.approx(volume.spacing[1:])
    assert sagittal.location_mm == pytest.approx(23.0)
    coronal = reformat(volume, "coronal", 0)
    np.testing.assert_array_equal(coronal.image, volume.voxels[::-1, :, 0].T)
    assert coronal.edges == ("R", "L", "H", "F")


# --- slabs --------------------------------------------------------------------------------------------
def test_a_slab_through_the_whole_volume_is_numpy_max_mean_min_along_the_plane() -> None:
    volume = load(ct5n())
    whole = 1000.0
    np.testing.assert_array_equal(reformat(volume, "axial", 2, whole, "mip").image, volume.voxels.max(axis=0))
    np.testing.assert_array_equal(reformat(volume, "axial", 2, whole, "minip").image, volume.voxels.min(axis=0))
    np.testing.assert_allclose(reformat(volume, "axial", 2, whole, "mean").image, volume.voxels.mean(axis=0),
                               rtol=1e-6)
    coronal = reformat(volume, "coronal", 8, whole, "mip")
    np.testing.assert_array_equal(coronal.image, volume.voxels.max(axis=1)[::-1])
    assert coronal.slab_slices == 16 and coronal.slab_mm == pytest.approx(15 * volume.spacing[1])


def test_a_slab_takes_the_slices_within_half_its_thickness_either_side() -> None:
    volume = load(ct5n())  # 2.5 mm apart
    shown = reformat(volume, "axial", 2, 5.0, "mip")  # ±2.5 mm: slices 1, 2, 3
    np.testing.assert_array_equal(shown.image, volume.voxels[1:4].max(axis=0))
    assert shown.slab_slices == 3 and shown.slab_mm == pytest.approx(5.0) and shown.mode == "mip"
    edge = reformat(volume, "axial", 0, 5.0, "mip")  # at the end of the volume: what there is
    np.testing.assert_array_equal(edge.image, volume.voxels[0:2].max(axis=0))
    thin = reformat(volume, "axial", 2, 4.9, "mip")  # ±2.45 mm reaches no neighbour
    np.testing.assert_array_equal(thin.image, volume.voxels[2])
    assert thin.slab_slices == 1 and thin.slab_mm == 0.0
    assert slab_range(5, 10, 1.0, 0.0) == (5, 6) and slab_range(1, 10, 1.0, 6.0) == (0, 5)


def test_an_unknown_plane_or_mode_is_refused() -> None:
    volume = load(ct5n())
    with pytest.raises(ValueError, match="unknown plane"):
        reformat(volume, "oblique", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown slab mode"):
        reformat(volume, "axial", 0, 5.0, "sum")  # type: ignore[arg-type]


# --- refusals -----------------------------------------------------------------------------------------
def test_two_slices_are_refused_naming_the_file() -> None:
    files = ct5n()[:2]
    with pytest.raises(ReformatError) as caught:
        load(files)
    assert "a series of 2 images cannot be reformatted" in one_line_naming(caught, files[0])


def test_slices_of_another_size_are_refused_naming_the_file(tmp_path: Path) -> None:
    files = sorted(ct5n(), key=z_of)
    small = pydicom.dcmread(files[3])
    small.PixelData = small.pixel_array[:8, :8].copy().tobytes()
    small.Rows = small.Columns = 8
    copied = copies(tmp_path, files)
    small.save_as(copied[3])
    with pytest.raises(ReformatError) as caught:
        load(copied)
    assert "8 x 8 pixels where the first slice" in one_line_naming(caught, copied[3])


def test_a_file_that_is_not_dicom_is_refused_naming_it(tmp_path: Path) -> None:
    notes = tmp_path / "notes.dcm"
    notes.write_text("a report, not an image")
    files = [*ct5n()[:3], notes]
    with pytest.raises(NotDicomError) as caught:
        load(files)
    assert isinstance(caught.value, ZsmedError) and "not a DICOM file" in one_line_naming(caught, notes)


def test_slices_of_several_planes_are_refused() -> None:
    """pydicom's MR localizer: an axial, a coronal and a sagittal slice in one series."""
    localizer = next(files for files in series_in("98892003/MR2").values() if len(files) == 3)
    with pytest.raises(ReformatError) as caught:
        load(localizer)
    assert "oriented otherwise than the first slice" in str(caught.value) and "\n" not in str(caught.value)


def test_a_series_in_parts_is_refused_rather_than_reformatted_across_the_gap() -> None:
    """pydicom's brain CT: one slice 200 mm below three 1.25 mm apart."""
    (files,) = series_in("77654033/CT2").values()
    with pytest.raises(ReformatError) as caught:
        load(files)
    text = str(caught.value)
    assert "202 mm from the slice before" in text and "1.25 mm apart" in text and "\n" not in text


def test_a_missing_slice_or_a_repeated_position_is_refused(tmp_path: Path) -> None:
    files = sorted(ct5n(), key=z_of)
    with pytest.raises(ReformatError) as caught:
        load([files[0], files[1], files[3], files[4]])  # the middle slice missing: 5 mm between two
    assert "a slice is missing" in one_line_naming(caught, files[3])
    repeated = copies(tmp_path, files, {2: {"ImagePositionPatient": [-72.2, -143.0, z_of(files[1])]}})
    with pytest.raises(ReformatError) as caught:
        load(repeated)
    assert "more than one volume" in str(caught.value)


def test_missing_geometry_or_colour_is_refused_naming_the_file(tmp_path: Path) -> None:
    files = sorted(ct5n(), key=z_of)
    (tmp_path / "a").mkdir()
    no_position = copies(tmp_path / "a", files, {1: {"ImagePositionPatient": None}})
    with pytest.raises(ReformatError) as caught:
        load(no_position)
    assert "no Image Position (Patient)" in one_line_naming(caught, no_position[1])
    (tmp_path / "b").mkdir()
    colour = copies(tmp_path / "b", files, {0: {"PhotometricInterpretation": "RGB", "SamplesPerPixel": 3}})
    with pytest.raises(ReformatError) as caught:
        load(colour)
    assert "a colour image (RGB)" in one_line_naming(caught, colour[0])


def test_a_tilted_gantry_is_refused(tmp_path: Path) -> None:
    files = sorted(ct5n(), key=z_of)
    # each slice 2 mm further back than the one below it: a gantry tilted by about 39°
    change = {k: {"ImagePositionPatient": [-72.2, -143.0 + 2 * k, z_of(path)]} for k, path in enumerate(files)}
    with pytest.raises(ReformatError) as caught:
        load(copies(tmp_path, files, change))
    assert "a gantry tilted by 38.7°" in str(caught.value)


def test_a_volume_too_big_for_memory_is_refused_before_any_pixel_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(volume_module, "MAX_VOLUME_BYTES", 4 * 16 * 16 * 4)  # four 16 x 16 slices
    decoded: list[Path] = []
    with pytest.raises(ReformatError) as caught:
        run_job(load_volume_job(ct5n(), decode=lambda p: decoded.append(p) or np.zeros((16, 16))))
    assert "5 slices of 16 x 16 take" in str(caught.value) and decoded == []


def test_a_multi_frame_file_is_refused() -> None:
    enhanced = [p for p in dicom_test_files() if p.name == "emri_small.dcm"]
    if not enhanced:
        pytest.skip("pydicom's emri_small.dcm is not on this machine")
    with pytest.raises(ReformatError) as caught:
        load(enhanced * 3)
    assert "multi-frame" in one_line_naming(caught, enhanced[0])


# --- where a reformat lies in the patient (for reference lines) ------------------------------------------
def _voxel_at(volume: Volume, point: np.ndarray) -> float:
    """The value of the voxel whose centre is ``point`` (patient mm), located independently of reformat."""
    directions = volume_module.volume_directions(volume)
    offset = point - np.asarray(volume.origin)
    k, i, j = (round(float(offset @ directions[a]) / volume.spacing[a]) for a in range(3))
    return float(volume.voxels[k, i, j])


@pytest.mark.parametrize("acquired", ["axial", "sagittal"])
def test_each_pixel_of_a_reformat_lies_where_its_plane_says(tmp_path: Path, acquired: str) -> None:
    files = sorted(ct5n(), key=z_of)
    if acquired == "sagittal":
        change = {k: {"ImageOrientationPatient": [0, 1, 0, 0, 0, -1], "ImagePositionPatient": [20.0 + 3 * k, -100, 60]}
                  for k in range(5)}
        files = copies(tmp_path, files, change)
    volume = load(files)
    assert volume.frame_of_reference == str(pydicom.dcmread(files[0], stop_before_pixels=True).FrameOfReferenceUID)
    for plane in ("axial", "coronal", "sagittal"):
        for index in (0, plane_count(volume, plane) - 1):
            shown = reformat(volume, plane, index)
            where = reformat_plane(volume, plane, index)
            assert where.size == shown.image.shape and where.spacing == pytest.approx(shown.spacing)
            rows, columns = shown.image.shape
            for row, column in ((0, 0), (rows - 1, 0), (0, columns - 1), (rows // 2, columns // 3)):
                centre = where.patient_point((column + 0.5, row + 0.5))
                assert shown.image[row, column] == _voxel_at(volume, centre), (plane, index, row, column)
