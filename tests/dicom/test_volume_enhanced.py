"""Enhanced multi-frame series as volumes: pydicom's real CT series (dicomdirtests/CT5N) converted by
highdicom into Legacy Converted Enhanced CT objects (every frame's position, orientation, spacing and rescale
in its functional groups, as a modern scanner writes a series in one file) must give the same volume as the
single-frame files they came from; frames that cannot make one volume are refused in one line naming the
file and the frame."""

from __future__ import annotations

from pathlib import Path

import highdicom
import numpy as np
import pydicom
import pytest

from tests.dicom.test_volume import ct5n, load, one_line_naming
from zsmed.dicom.decode import read_dataset
from zsmed.dicom.display import image_plane
from zsmed.dicom.volume import PLANES, ReformatError, reformat, reformat_plane


def enhanced_ct(paths: list[Path], target: Path, *, change: dict[int, dict[str, object]] | None = None) -> Path:
    """The single-frame CT files ``paths`` converted into one Legacy Converted Enhanced CT file at ``target``
    (highdicom), the k-th source file first given the elements in ``change[k]``."""
    sources = []
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        for keyword, value in (change or {}).get(k, {}).items():
            setattr(ds, keyword, value)
        sources.append(ds)
    converted = highdicom.legacy.LegacyConvertedEnhancedCTImage(
        sources, series_instance_uid=str(sources[0].SeriesInstanceUID), series_number=1,
        sop_instance_uid=highdicom.UID(), instance_number=1)
    converted.save_as(target)
    return target


def source_of_frames(enhanced_file: Path, sources: list[Path]) -> list[Path]:
    """The single-frame file each frame was converted from (the converter orders frames its own way)."""
    by_uid = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in sources}
    groups = pydicom.dcmread(enhanced_file, stop_before_pixels=True).PerFrameFunctionalGroupsSequence
    return [by_uid[str(g.ConversionSourceAttributesSequence[0].ReferencedSOPInstanceUID)] for g in groups]


def test_an_enhanced_ct_file_is_the_same_volume_as_its_single_frame_slices(tmp_path: Path) -> None:
    files = ct5n()
    single = load(files)
    enhanced_file = enhanced_ct(files, tmp_path / "enhanced.dcm")
    assert int(pydicom.dcmread(enhanced_file, stop_before_pixels=True).NumberOfFrames) == 5
    enhanced = load([enhanced_file])
    np.testing.assert_array_equal(enhanced.voxels, single.voxels)
    assert enhanced.spacing == pytest.approx(single.spacing)
    assert enhanced.origin == pytest.approx(single.origin)
    assert enhanced.orientation == pytest.approx(single.orientation) and enhanced.normal == single.normal
    assert enhanced.modality == "CT" and enhanced.hounsfield
    assert enhanced.frame_of_reference == single.frame_of_reference
    # every slice is a frame of the one file, in slice order, and lies where that frame's own header says
    assert set(enhanced.paths) == {enhanced_file} and sorted(enhanced.frames) == [0, 1, 2, 3, 4]
    header = read_dataset(enhanced_file, stop_before_pixels=True)
    for k, (path, frame) in enumerate(enhanced.images):
        assert path == enhanced_file
        assert reformat_plane(enhanced, "axial", k) == image_plane(header, frame)
    for plane in PLANES:
        np.testing.assert_array_equal(reformat(enhanced, plane, 2, 5.0).image, reformat(single, plane, 2, 5.0).image)


def test_each_frames_own_rescale_is_applied(tmp_path: Path) -> None:
    """Per-frame Pixel Value Transformation (the converter puts it per frame where the slices differ)."""
    files = ct5n()
    intercepts = {0: -1024.0, 1: -1000.0, 2: -1024.0, 3: -900.0, 4: -1024.0}
    change: dict[int, dict[str, object]] = {k: {"RescaleIntercept": v} for k, v in intercepts.items()}
    enhanced_file = enhanced_ct(files, tmp_path / "enhanced.dcm", change=change)
    per_frame = pydicom.dcmread(enhanced_file, stop_before_pixels=True).PerFrameFunctionalGroupsSequence
    assert all("PixelValueTransformationSequence" in item for item in per_frame)
    volume = load([enhanced_file])
    sources = source_of_frames(enhanced_file, files)
    assert len({float(g.PixelValueTransformationSequence[0].RescaleIntercept) for g in per_frame}) == 3
    for k, (_path, frame) in enumerate(volume.images):
        source = pydicom.dcmread(sources[frame])
        expected = source.pixel_array * float(source.RescaleSlope) + intercepts[files.index(sources[frame])]
        np.testing.assert_allclose(volume.voxels[k], expected)


def test_two_enhanced_files_of_one_series_make_one_volume(tmp_path: Path) -> None:
    files = ct5n()
    single = load(files)
    by_z = sorted(files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    upper = enhanced_ct(by_z[2:], tmp_path / "upper.dcm")
    lower = enhanced_ct(by_z[:2], tmp_path / "lower.dcm")
    volume = load([upper, lower])
    np.testing.assert_array_equal(volume.voxels, single.voxels)
    assert [path for path, _frame in volume.images] == [lower, lower, upper, upper, upper]
    assert [source_of_frames(path, files)[frame] for path, frame in volume.images] == by_z


def test_an_enhanced_file_of_two_frames_is_refused_naming_frames(tmp_path: Path) -> None:
    enhanced_file = enhanced_ct(ct5n()[:2], tmp_path / "two.dcm")
    with pytest.raises(ReformatError) as caught:
        load([enhanced_file])
    assert "2 frames" in one_line_naming(caught, enhanced_file)


def test_frames_at_one_position_are_refused_naming_the_frame(tmp_path: Path) -> None:
    """Two echoes or phases in one file: frames repeat positions, and they are not one volume."""
    enhanced_file = enhanced_ct(ct5n(), tmp_path / "enhanced.dcm")
    ds = pydicom.dcmread(enhanced_file)
    groups = ds.PerFrameFunctionalGroupsSequence
    groups[3].PlanePositionSequence[0].ImagePositionPatient = groups[1].PlanePositionSequence[0].ImagePositionPatient
    ds.save_as(enhanced_file)
    with pytest.raises(ReformatError) as caught:
        load([enhanced_file])
    text = one_line_naming(caught, enhanced_file)
    assert "at the same position as frame" in text and "more than one volume" in text


def test_a_frame_without_a_position_is_refused_naming_it(tmp_path: Path) -> None:
    enhanced_file = enhanced_ct(ct5n(), tmp_path / "enhanced.dcm")
    ds = pydicom.dcmread(enhanced_file)
    del ds.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence
    ds.save_as(enhanced_file)
    with pytest.raises(ReformatError) as caught:
        load([enhanced_file])
    assert "frame 3: no Image Position (Patient)" in one_line_naming(caught, enhanced_file)


def test_a_number_of_frames_the_file_does_not_describe_is_refused_at_once(tmp_path: Path) -> None:
    """A damaged (or hostile) header claiming a billion frames: refused before anything is made of them."""
    enhanced_file = enhanced_ct(ct5n(), tmp_path / "enhanced.dcm")
    ds = pydicom.dcmread(enhanced_file)
    ds.NumberOfFrames = 1_000_000_000
    ds.save_as(enhanced_file)
    with pytest.raises(ReformatError) as caught:
        load([enhanced_file])
    assert "Number of Frames says 1000000000 where the file describes 5" in one_line_naming(caught, enhanced_file)
