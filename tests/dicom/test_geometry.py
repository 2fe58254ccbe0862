"""The viewer's geometry (``zsmed.dicom.geometry``): turns and flips as matrices on pixel offsets,
checked against numpy's own rotations and against where each stored pixel lands on the screen."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tests.conftest import dicom_test_files
from zsmed.dicom.display import image_plane
from zsmed.dicom.geometry import (
    ANTICLOCKWISE,
    CLOCKWISE,
    MIRROR_LEFT_RIGHT,
    MIRROR_UP_DOWN,
    UPRIGHT,
    ImagePlane,
    angle_degrees,
    compose_turns,
    inverse_turn,
    locate_point,
    reference_line,
    ruler_length,
    turned_edges,
    turned_image,
    turned_point,
    turned_size,
)

STEPS = (CLOCKWISE, ANTICLOCKWISE, MIRROR_LEFT_RIGHT, MIRROR_UP_DOWN)


def every_turn() -> set[tuple[int, int, int, int]]:
    """The turns reachable from upright by the viewer's four steps: the 8 symmetries of a rectangle."""
    found, frontier = {UPRIGHT}, [UPRIGHT]
    while frontier:
        turn = frontier.pop()
        for step in STEPS:
            nxt = compose_turns(turn, step)
            if nxt not in found:
                found.add(nxt)
                frontier.append(nxt)
    return found


def test_the_steps_reach_eight_turns_each_undone_by_its_inverse() -> None:
    turns = every_turn()
    assert len(turns) == 8
    for turn in turns:
        assert compose_turns(turn, inverse_turn(turn)) == UPRIGHT
    assert compose_turns(CLOCKWISE, CLOCKWISE) == compose_turns(MIRROR_LEFT_RIGHT, MIRROR_UP_DOWN)  # 180°
    assert compose_turns(compose_turns(CLOCKWISE, CLOCKWISE), compose_turns(CLOCKWISE, CLOCKWISE)) == UPRIGHT


def test_turned_images_are_numpys_rotations_and_flips() -> None:
    image = np.arange(3 * 5 * 3).reshape(3, 5, 3)  # rows, columns, colour: not square, so turns show
    assert np.array_equal(turned_image(image, CLOCKWISE), np.rot90(image, k=-1))
    assert np.array_equal(turned_image(image, ANTICLOCKWISE), np.rot90(image, k=1))
    assert np.array_equal(turned_image(image, MIRROR_LEFT_RIGHT), image[:, ::-1])
    assert np.array_equal(turned_image(image, MIRROR_UP_DOWN), image[::-1])
    assert turned_image(image, CLOCKWISE).flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("turn", sorted(every_turn()))
def test_each_stored_pixel_lands_where_turned_point_says(turn: tuple[int, int, int, int]) -> None:
    height, width = 3, 5
    image = np.arange(height * width).reshape(height, width)
    shown = turned_image(image, turn)
    assert (shown.shape[1], shown.shape[0]) == turned_size((width, height), turn)
    for row, column in itertools.product(range(height), range(width)):
        x, y = turned_point((column + 0.5, row + 0.5), (width, height), turn)  # the pixel's centre
        assert shown[int(y), int(x)] == image[row, column]


def test_edge_letters_follow_the_image() -> None:
    letters = {"l": "R", "r": "L", "t": "A", "b": "P"}  # an axial slice as stored
    assert turned_edges(letters, UPRIGHT) == letters
    assert turned_edges(letters, MIRROR_LEFT_RIGHT) == {"l": "L", "r": "R", "t": "A", "b": "P"}
    assert turned_edges(letters, CLOCKWISE) == {"l": "P", "r": "A", "t": "R", "b": "L"}


def test_ruler_length_takes_each_axis_spacing() -> None:
    assert ruler_length((0, 0), (3, 4), None) == pytest.approx(5.0)
    assert ruler_length((0, 0), (30, 20), (2.0, 1.0)) == pytest.approx(50.0)  # 30 columns of 1 mm, 20 rows of 2


def test_angle_degrees_in_the_patients_plane() -> None:
    """By hand: arms (10, 10) and (-10, 10) pixels from the vertex make a right angle on square pixels.
    With columns 1 mm apart and rows 0.5 mm (the spacing is (row, column)) they are (10, 5) and
    (-10, 5) mm: cos = (-100 + 25) / 125 = -0.6, 126.87°, not 90°."""
    vertex, first, second = (20.0, 30.0), (30.0, 40.0), (10.0, 40.0)
    assert angle_degrees(first, vertex, second, None) == pytest.approx(90.0)
    assert angle_degrees(first, vertex, second, (1.0, 1.0)) == pytest.approx(90.0)  # square pixels: the same
    assert angle_degrees(first, vertex, second, (0.5, 1.0)) == pytest.approx(126.8699, abs=1e-4)
    assert angle_degrees(first, vertex, second, (0.5, 1.0)) == pytest.approx(math.degrees(math.acos(-0.6)))
    # the spacings the other way round, (10, 20) and (-10, 20) mm: cos = (-100 + 400) / 500 = 0.6, 53.13°
    assert angle_degrees(first, vertex, second, (1.0, 0.5)) == pytest.approx(math.degrees(math.acos(0.6)))
    # one arm along a row and one at 45° in pixels: on 1 mm x 0.5 mm pixels atan(5 / 10) = 26.57°
    assert angle_degrees((10, 0), (0, 0), (10, 10), None) == pytest.approx(45.0)
    assert angle_degrees((10, 0), (0, 0), (10, 10), (0.5, 1.0)) == pytest.approx(math.degrees(math.atan(0.5)))
    # axis-aligned arms stay at right angles whatever the spacing
    assert angle_degrees((5, 0), (0, 0), (0, 7), (0.3, 2.0)) == pytest.approx(90.0)
    assert angle_degrees((5, 5), (0, 0), (-3, -3), None) == pytest.approx(180.0)  # opposite arms
    assert angle_degrees((5, 5), (0, 0), (2, 2), (0.5, 1.0)) == pytest.approx(0.0, abs=1e-9)  # one on the other
    # either arm first
    assert angle_degrees((1, 2), (4, 6), (9, 1), None) == angle_degrees((9, 1), (4, 6), (1, 2), None)
    assert angle_degrees((0, 0), (0, 0), (3, 4), None) is None  # an arm of no length
    assert angle_degrees((3, 4), (1, 1), (1, 1), (0.5, 1.0)) is None


def test_slice_positions_are_along_the_normal_of_the_orientation() -> None:
    from zsmed.dicom.geometry import slice_positions

    axial = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # normal +z
    assert slice_positions([(0.0, 0.0, -10.0), (5.0, 3.0, -7.5)], axial) == [-10.0, -7.5]
    sagittal = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # rows along y, columns down z: normal -x
    assert slice_positions([(12.0, 0.0, 0.0)], sagittal) == [-12.0]
    assert slice_positions([(0.0, 0.0, 1.0), None], axial) is None  # one image without a position
    assert slice_positions([(0.0, 0.0, 1.0)], None) is None and slice_positions([], axial) is None


def test_a_linked_series_follows_by_position_or_else_image_for_image() -> None:
    from zsmed.dicom.geometry import link_slices

    read = [0.0, 5.0, 10.0, 15.0, 20.0]  # 5 mm slices
    prior = [-18.0, -15.5, -13.0, -10.5, -8.0, -5.5, -3.0, -0.5, 2.0]  # 2.5 mm slices, the table 20 mm off
    link = link_slices(1, read, 1, prior)  # the reader lined up read[1] (5 mm) with prior[1] (-15.5 mm)
    assert link.offset_mm == -20.5
    assert [link.follow(k, read, prior, len(prior)) for k in range(5)] == [0, 1, 3, 5, 7]
    # nearest when between slices; the ends hold beyond the series beside
    assert link.follow(4, [0.0, 1.0, 2.0, 3.0, 40.0], prior, len(prior)) == 8
    no_positions = link_slices(3, None, 1, prior)
    assert no_positions.offset_mm is None
    assert [no_positions.follow(k, None, prior, len(prior)) for k in (3, 4, 0, 20)] == [1, 2, 0, 8]


# --- reference lines --------------------------------------------------------------------------------
def _plane_of(name: str, **changes: object) -> ImagePlane:
    import pydicom

    ds = pydicom.dcmread(next(p for p in dicom_test_files() if str(p).endswith(name)), stop_before_pixels=True)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    plane = image_plane(ds)
    assert plane is not None
    return plane


def test_an_axial_slice_crosses_the_frontal_scout_as_a_horizontal_line() -> None:
    # the study's frontal scout (rows along the patient's left, columns towards the feet from z = 50 mm)
    # at the size it was acquired; the test file keeps its header but only 16 x 16 of its pixels
    scout = _plane_of("CT2N/6924", Rows=512, Columns=512)
    axial = _plane_of("CT5N/2062")  # z = 8.7625 mm, 16 x 16 pixels of 0.488 mm from x = -72.2 mm
    line = reference_line(axial, scout)
    assert line is not None
    (c0, r0), (c1, r1) = sorted(line)
    row = 0.5 + (50.0 - 8.7625) / 0.545455  # the scout row at the slice's z
    assert r0 == pytest.approx(row) and r1 == pytest.approx(row)
    # only as wide as the slice: its first and last pixels' outer edges, in the scout's columns
    left, right = -72.199997 - 0.244141, -72.199997 + 15.5 * 0.488281
    assert c0 == pytest.approx((left + 265.0) / 0.596847 + 0.5, abs=1e-4)
    assert c1 == pytest.approx((right + 265.0) / 0.596847 + 0.5, abs=1e-4)


def test_no_line_where_the_slice_misses_the_scout_or_runs_parallel() -> None:
    assert reference_line(_plane_of("CT5N/2062"), _plane_of("CT2N/6924")) is None  # 16 px cover z 50 to 41 mm only
    assert reference_line(_plane_of("CT5N/2062"), _plane_of("CT5N/3353")) is None  # parallel slices


def test_a_sagittal_cut_of_a_coronal_image_is_a_vertical_line_at_its_x() -> None:
    coronal = ImagePlane((-100.0, 0.0, 100.0), (1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (1.0, 1.0), (200, 200), "1.2.3")
    sagittal = ImagePlane((-40.0, -150.0, 150.0), (0.0, 1.0, 0.0), (0.0, 0.0, -1.0), (1.0, 1.0), (400, 400), "1.2.3")
    (c0, r0), (c1, r1) = sorted(reference_line(sagittal, coronal) or [(0.0, 0.0), (0.0, 0.0)], key=lambda p: p[1])
    assert c0 == pytest.approx(60.5) and c1 == pytest.approx(60.5)  # x = -40: 60 mm from the first pixel centre
    assert (r0, r1) == (pytest.approx(0.0), pytest.approx(200.0))  # the whole height: the sagittal is larger
    assert coronal.image_point(coronal.patient_point((60.5, 17.0))) == pytest.approx((60.5, 17.0))
    from dataclasses import replace

    assert reference_line(replace(sagittal, frame_of_reference="1.2.4"), coronal) is None  # another study
    assert reference_line(replace(sagittal, frame_of_reference=""), coronal) is None  # unknown: not guessed


def test_a_point_is_located_on_the_nearest_slice_of_a_series_in_its_frame_of_reference() -> None:
    axial = sorted((_plane_of(f"CT5N/{name}") for name in ("2062", "2392", "2693", "3023", "3353")),
                   key=lambda plane: plane.position[2])  # z -1.24 ... 8.76 mm, 2.5 mm apart
    frame = axial[0].frame_of_reference
    point = axial[2].patient_point((4.0, 9.0)) + np.array([0.0, 0.0, 1.0])  # 1 mm above slice 2
    assert locate_point(point, axial, frame) == (2, (pytest.approx(4.0), pytest.approx(9.0)))
    assert locate_point(point + np.array([0.0, 0.0, 1.0]), axial, frame)[0] == 3  # type: ignore[index]
    assert locate_point(point, [None, *axial[1:]], frame)[0] == 2  # type: ignore[index]
    assert locate_point(point, axial, "another study") is None
    assert locate_point(point + np.array([0.0, 0.0, 30.0]), axial, frame) is None  # beyond the stack
    assert locate_point(point + np.array([50.0, 0.0, 0.0]), axial, frame) is None  # beside the images


def test_on_a_ct_scout_a_point_is_located_whatever_its_depth() -> None:
    from dataclasses import replace

    scout = _plane_of("CT2N/6924", Rows=512, Columns=512, ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    assert scout.projection  # a CT topogram
    deep = scout.patient_point((100.0, 200.0)) + np.array([0.0, -143.0, 0.0])  # 143 mm in front of its plane
    assert locate_point(deep, [scout], scout.frame_of_reference) == (0, (pytest.approx(100.0), pytest.approx(200.0)))
    assert locate_point(deep, [replace(scout, projection=False)], scout.frame_of_reference) is None
