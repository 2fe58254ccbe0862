"""Oblique reformats (``oblique_through``): the plane through a line drawn on a reformat, square to it, on
pydicom's real CT series CT5N (as acquired, and re-labelled as a sagittal acquisition). Their geometry is
checked through values that trilinear sampling reproduces exactly: a volume whose every voxel holds a linear
function of its patient position, so each oblique pixel must hold that function of where its plane says it is."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.dicom.test_volume import copies, ct5n, load, z_of
from zsmed.dicom.volume import (
    Oblique,
    ReformatError,
    Volume,
    oblique_through,
    plane_count,
    plane_spacing,
    plane_word,
    reformat,
    reformat_plane,
    volume_directions,
)

GRADIENT = np.asarray([1.5, -0.75, 2.0])  # value per mm along the patient's x, y, z


def linear(volume: Volume) -> Volume:
    """``volume`` with each voxel set to GRADIENT · its centre (patient mm) + 100."""
    directions = volume_directions(volume)
    k, i, j = np.indices(volume.voxels.shape, dtype=np.float64)
    centres = (np.asarray(volume.origin) + k[..., None] * volume.spacing[0] * directions[0]
               + i[..., None] * volume.spacing[1] * directions[1] + j[..., None] * volume.spacing[2] * directions[2])
    return dataclasses.replace(volume, voxels=(centres @ GRADIENT + 100.0).astype(np.float32))


def mm(x: float, y: float, z: float) -> np.ndarray:
    """A displacement in the patient (LPS, mm)."""
    return np.asarray([x, y, z], dtype=np.float64)


def volume_centre(volume: Volume) -> np.ndarray:
    directions = volume_directions(volume)
    half = [(n - 1) / 2.0 * d for n, d in zip(volume.voxels.shape, volume.spacing, strict=True)]
    return np.asarray(volume.origin) + sum(h * d for h, d in zip(half, directions, strict=True))


@pytest.fixture(params=["axial", "sagittal"])
def volume(request: pytest.FixtureRequest, tmp_path: Path) -> Volume:
    files = sorted(ct5n(), key=z_of)
    if request.param == "sagittal":
        change = {k: {"ImageOrientationPatient": [0, 1, 0, 0, 0, -1], "ImagePositionPatient": [20.0 + 3 * k, -100, 60]}
                  for k in range(5)}
        files = copies(tmp_path, files, change)
    return linear(load(files))


def test_each_pixel_of_an_oblique_holds_the_volume_where_its_plane_says(volume: Volume) -> None:
    centre = volume_centre(volume)
    # a line drawn on an axial, 30° off the patient's left-right, through the middle
    direction = np.asarray([np.cos(np.radians(30)), np.sin(np.radians(30)), 0.0])
    plane = oblique_through(volume, centre - 2 * direction, centre + 2 * direction, (0.0, 0.0, 1.0))
    assert plane.pixel_mm == plane.step_mm == pytest.approx(min(volume.spacing))
    assert plane_count(volume, plane) == plane.count and plane_spacing(volume, plane) == plane.step_mm
    checked = 0
    for index in (0, plane.through, plane.count - 1):
        shown = reformat(volume, plane, index)
        where = reformat_plane(volume, plane, index)
        assert shown.image.shape == where.size == (plane.rows, plane.columns) and shown.plane == plane
        inside = shown.image > volume.voxels.min()  # outside the volume: its lowest value (black)
        for row, column in zip(*np.nonzero(inside), strict=True):
            point = np.asarray(where.patient_point((column + 0.5, row + 0.5)))
            assert shown.image[row, column] == pytest.approx(point @ GRADIENT + 100.0, abs=1e-3)
            checked += 1
    assert checked > 100
    # the slice through the line holds the line: its two ends are on it
    through = reformat_plane(volume, plane, plane.through)
    normal = np.asarray(plane.normal)
    for end in (centre - 2 * direction, centre + 2 * direction):
        assert (end - np.asarray(through.position)) @ normal == pytest.approx(0.0, abs=1e-6)


def test_it_is_square_to_the_image_drawn_on_and_turned_as_the_nearest_standard_plane(volume: Volume) -> None:
    centre = volume_centre(volume)
    # on an axial, nearly left-right: an oblique coronal, the patient's left on the right, the feet down
    coronal = oblique_through(volume, centre + mm(-3.0, 0.3, 0.0), centre + mm(3.0, -0.3, 0.0), (0.0, 0.0, 1.0))
    assert coronal.nearest == "coronal" and np.asarray(coronal.normal) @ [0.0, 0.0, 1.0] == pytest.approx(0.0)
    assert np.asarray(coronal.right) @ [1.0, 0.0, 0.0] > 0.99
    assert np.asarray(coronal.down) @ [0, 0, -1] == pytest.approx(1)
    shown = reformat(volume, coronal, coronal.through)
    assert shown.edges == ("R", "L", "H", "F") and shown.location_mm == 0.0
    # on a coronal, tilted 20° from the feet-head: an oblique sagittal, the front on the left
    tilt = np.radians(20)
    arm = mm(np.sin(tilt), 0, np.cos(tilt))
    sagittal = oblique_through(volume, centre - arm, centre + arm, (0.0, 1.0, 0.0))
    assert sagittal.nearest == "sagittal" and np.asarray(sagittal.right) @ [0.0, 1.0, 0.0] == pytest.approx(1.0)
    assert np.asarray(sagittal.down) @ [np.sin(tilt), 0, np.cos(tilt)] == pytest.approx(-1.0)  # the feet down
    assert reformat(volume, sagittal, 0).edges[:2] == ("A", "P")
    assert plane_word(sagittal) == "oblique" and plane_word("coronal") == "coronal"


def test_its_slices_cover_the_whole_volume_and_scroll_along_its_normal(volume: Volume) -> None:
    centre = volume_centre(volume)
    plane = oblique_through(volume, centre - mm(2.0, 1.0, 0.5), centre + mm(2.0, 1.0, 0.5), (0.0, 0.0, 1.0))
    directions = volume_directions(volume)
    sizes = [(n - 1) * s * d for n, s, d in zip(volume.voxels.shape, volume.spacing, directions, strict=True)]
    corners = [np.asarray(volume.origin) + sum(f * size for f, size in zip(factors, sizes, strict=True))
               for factors in np.ndindex(2, 2, 2)]
    first = np.asarray(plane.first)
    axes = [(np.asarray(plane.right), plane.pixel_mm, plane.columns),
            (np.asarray(plane.down), plane.pixel_mm, plane.rows),
            (np.asarray(plane.normal), plane.step_mm, plane.count)]
    for corner in corners:
        for axis, step, size in axes:
            assert -1e-6 <= (corner - first) @ axis <= (size - 1) * step + 1e-6
    # a slice on is step_mm along the normal; the location says how far from the line drawn
    a, b = reformat(volume, plane, plane.through), reformat(volume, plane, plane.through + 2)
    assert b.location_mm - a.location_mm == pytest.approx(2 * plane.step_mm)
    assert reformat(volume, plane, 10_000).index == plane.count - 1  # kept within its slices


def test_an_oblique_slab_is_the_max_mean_min_of_its_planes(volume: Volume) -> None:
    centre = volume_centre(volume)
    plane = oblique_through(volume, centre - mm(2.0, 0.0, 0.0), centre + mm(2.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    index, reach = plane.through, 2
    planes = np.stack([reformat(volume, plane, k).image for k in range(index - reach, index + reach + 1)])
    slab_mm = 2 * reach * plane.step_mm
    mip = reformat(volume, plane, index, slab_mm, "mip")
    assert mip.slab_slices == 2 * reach + 1 and mip.slab_mm == pytest.approx(slab_mm)
    np.testing.assert_allclose(mip.image, planes.max(axis=0))
    np.testing.assert_allclose(reformat(volume, plane, index, slab_mm, "minip").image, planes.min(axis=0))
    np.testing.assert_allclose(reformat(volume, plane, index, slab_mm, "mean").image, planes.mean(axis=0), rtol=1e-5)


def test_a_line_of_no_length_is_refused(volume: Volume) -> None:
    centre = volume_centre(volume)
    with pytest.raises(ReformatError, match="line"):
        oblique_through(volume, centre, centre, (0.0, 0.0, 1.0))
    with pytest.raises(ReformatError):  # along the normal of the image drawn on: no line on it
        oblique_through(volume, centre, centre + mm(0.0, 0.0, 3.0), (0.0, 0.0, 1.0))
    assert isinstance(oblique_through(volume, centre, centre + mm(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)), Oblique)


def test_images_one_pixel_wide_are_refused_for_an_oblique(volume: Volume) -> None:
    thin = dataclasses.replace(volume, voxels=np.ascontiguousarray(volume.voxels[:, :, :1]))
    centre = volume_centre(volume)
    with pytest.raises(ReformatError, match="too small for an oblique plane"):
        oblique_through(thin, centre, centre + mm(1.0, 0.0, 0.0), (0.0, 0.0, 1.0))


@pytest.mark.parametrize("about", ["right", "down"])
def test_a_plane_tilted_about_its_own_axis_through_its_centre(volume: Volume, about: str) -> None:
    from zsmed.dicom.volume import tilted

    index = plane_count(volume, "coronal") // 2
    before = reformat_plane(volume, "coronal", index)
    rows, columns = before.size
    centre = np.asarray(before.patient_point((columns / 2.0, rows / 2.0)))
    turned = tilted(volume, "coronal", index, about, 10.0)  # type: ignore[arg-type]
    assert turned.nearest == "coronal"
    assert float(np.degrees(np.arccos(np.clip(np.asarray(turned.normal) @ before.normal, -1, 1)))) == pytest.approx(10)
    axis = np.asarray(before.row_direction if about == "right" else before.column_direction)
    assert np.asarray(turned.right if about == "right" else turned.down) == pytest.approx(axis)  # the axis stays
    # which way: about "right" the bottom edge goes along the old normal, about "down" the right edge against it
    moved = np.asarray(turned.down if about == "right" else turned.right) @ before.normal
    assert moved == pytest.approx(np.sin(np.radians(10)) * (1 if about == "right" else -1))
    through = reformat_plane(volume, turned, turned.through)
    assert (centre - np.asarray(through.position)) @ np.asarray(turned.normal) == pytest.approx(0.0, abs=1e-6)
    shown = reformat(volume, turned, turned.through)
    inside = shown.image > volume.voxels.min()
    for row, column in list(zip(*np.nonzero(inside), strict=True))[::7]:
        point = np.asarray(through.patient_point((column + 0.5, row + 0.5)))
        assert shown.image[row, column] == pytest.approx(point @ GRADIENT + 100.0, abs=1e-3)
    # tilted back about the same point of the patient: the coronal it was, that slice's plane
    back = tilted(volume, turned, turned.through, about, -10.0, around=through.image_point(centre))  # type: ignore[arg-type]
    assert np.asarray(back.right) == pytest.approx(np.asarray(before.row_direction), abs=1e-9)
    assert np.asarray(back.down) == pytest.approx(np.asarray(before.column_direction), abs=1e-9)
    back_slice = reformat_plane(volume, back, back.through)
    assert (np.asarray(before.position) - np.asarray(back_slice.position)) @ before.normal == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="tilt about"):
        tilted(volume, "coronal", index, "normal", 5.0)  # type: ignore[arg-type]


# --- curved reformats -----------------------------------------------------------------------------------
def test_a_curved_reformat_unrolls_the_path_its_columns_a_length_along_it(volume: Volume) -> None:
    from zsmed.dicom.volume import Curved, curve_points, curved_through

    centre = volume_centre(volume)
    path = [centre + mm(-3.0, -2.0, 0.0), centre + mm(0.0, 1.0, 0.0), centre + mm(3.0, -1.0, 0.0)]  # on an axial
    curved = curved_through(volume, path, (0.0, 0.0, 1.0))
    assert isinstance(curved, Curved) and plane_count(volume, curved) == 1 and plane_word(curved) == "curved"
    length = float(np.hypot(3.0, 3.0) + np.hypot(3.0, 2.0))
    assert curved.length_mm == pytest.approx(length)
    assert curved.columns == int(np.floor(length / curved.pixel_mm + 1e-6)) + 1
    assert np.asarray(curved.across) == pytest.approx([0.0, 0.0, -1.0])  # down the image: towards the feet
    shown = reformat(volume, curved, 0)
    assert shown.image.shape == (curved.rows, curved.columns) and shown.spacing == (curved.pixel_mm,) * 2
    assert shown.edges[2:] == ("H", "F")
    # each pixel holds the volume at its point: the path's point of its column, moved down its row
    points = curve_points(curved)
    assert points[0] == pytest.approx(path[0]) and float(np.linalg.norm(points[1] - points[0])) == pytest.approx(
        curved.pixel_mm)
    inside = shown.image > volume.voxels.min()
    checked = 0
    for row, column in zip(*np.nonzero(inside), strict=True):
        point = points[column] + (curved.top_mm + row * curved.pixel_mm) * np.asarray(curved.across)
        assert shown.image[row, column] == pytest.approx(point @ GRADIENT + 100.0, abs=1e-3)
        checked += 1
    assert checked > 50
    with pytest.raises(ReformatError, match="lies on no one plane"):
        reformat_plane(volume, curved, 0)


def test_a_curved_path_of_no_length_is_refused(volume: Volume) -> None:
    from zsmed.dicom.volume import curved_through

    centre = volume_centre(volume)
    with pytest.raises(ReformatError, match="needs a path"):
        curved_through(volume, [centre, centre], (0.0, 0.0, 1.0))
    with pytest.raises(ReformatError, match="needs a path"):  # along the view: one point on the image drawn on
        curved_through(volume, [centre, centre + mm(0.0, 0.0, 4.0)], (0.0, 0.0, 1.0))
