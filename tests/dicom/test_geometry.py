"""The viewer's geometry (``zsmed.dicom.geometry``): turns and flips as matrices on pixel offsets,
checked against numpy's own rotations and against where each stored pixel lands on the screen."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from zsmed.dicom.geometry import (
    ANTICLOCKWISE,
    CLOCKWISE,
    MIRROR_LEFT_RIGHT,
    MIRROR_UP_DOWN,
    UPRIGHT,
    compose_turns,
    inverse_turn,
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
