"""Where the pixels of a stored image go on the screen when it is turned or flipped, and lengths and
angles between stored pixels in the patient's plane: the viewer's geometry as pure functions (no Qt),
so that what a ruler, an angle or a region of interest measures never depends on how the image is
shown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# How the image is turned on the screen, as a 2x2 matrix (a, b, c, d) on pixel offsets from its
# centre: shown (u, v) = (a*u + b*v, c*u + d*v), u to the right, v down. Turns and flips compose as
# matrices, so any sequence of them is one of these 8 and undoes exactly.
Turn = tuple[int, int, int, int]
UPRIGHT: Turn = (1, 0, 0, 1)
CLOCKWISE: Turn = (0, -1, 1, 0)
ANTICLOCKWISE: Turn = (0, 1, -1, 0)
MIRROR_LEFT_RIGHT: Turn = (-1, 0, 0, 1)
MIRROR_UP_DOWN: Turn = (1, 0, 0, -1)


def compose_turns(first: Turn, second: Turn) -> Turn:
    """``first`` and then ``second`` (done to the screen image as it is after ``first``)."""
    a, b, c, d = second
    e, f, g, h = first
    return a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h


def _all_turns() -> frozenset[Turn]:
    turns, turn = set(), UPRIGHT
    for _ in range(4):
        turns.update({turn, compose_turns(turn, MIRROR_LEFT_RIGHT)})
        turn = compose_turns(turn, CLOCKWISE)
    return frozenset(turns)


ALL_TURNS = _all_turns()  # the four quarter turns, each with and without a mirror


def inverse_turn(turn: Turn) -> Turn:
    """The turn back: the transpose (the matrices are orthogonal)."""
    a, b, c, d = turn
    return a, c, b, d


def turned_image(image: np.ndarray, turn: Turn) -> np.ndarray:
    """``image`` (H, W) or (H, W, 3) as the turn shows it."""
    a, b, c, d = turn
    if b == 0:  # no quarter turn: each axis kept, perhaps mirrored
        out = image[::d, ::a]
    else:  # a quarter turn: the shown columns are the stored rows
        out = image.swapaxes(0, 1)[::c, ::b]
    return np.ascontiguousarray(out)


def turned_size(size: tuple[float, float], turn: Turn) -> tuple[float, float]:
    """(width, height) of a (width, height) image once turned."""
    return size if turn[1] == 0 else (size[1], size[0])


def turned_point(point: tuple[float, float], size: tuple[float, float], turn: Turn) -> tuple[float, float]:
    """Where point (x, y) of a (width, height) image is once the image is turned (pixel units)."""
    a, b, c, d = turn
    u, v = point[0] - size[0] / 2, point[1] - size[1] / 2
    width, height = turned_size(size, turn)
    return a * u + b * v + width / 2, c * u + d * v + height / 2


def turned_edges(edges: dict[str, str], turn: Turn) -> dict[str, str]:
    """The stored image's edge texts (l, r, t, b) at the edges where the turn shows them."""
    directions = {"l": (-1, 0), "r": (1, 0), "t": (0, -1), "b": (0, 1)}
    back = inverse_turn(turn)
    names = {direction: name for name, direction in directions.items()}
    return {name: edges[names[(back[0] * du + back[1] * dv, back[2] * du + back[3] * dv)]]
            for name, (du, dv) in directions.items()}


def ruler_length(start: tuple[float, float], end: tuple[float, float],
                 spacing: tuple[float, float] | None) -> float:
    """Length between two points (column, row) of the stored image: in mm with the (row, column)
    spacing in mm, each axis by its own spacing (pixels need not be square), else in pixels."""
    across, down = end[0] - start[0], end[1] - start[1]
    if spacing is None:
        return math.hypot(across, down)
    return math.hypot(across * spacing[1], down * spacing[0])


def angle_degrees(first_end: tuple[float, float], vertex: tuple[float, float], second_end: tuple[float, float],
                  spacing: tuple[float, float] | None) -> float | None:
    """The angle at ``vertex`` between its arms to ``first_end`` and to ``second_end`` (points (column,
    row) of the stored image), 0 to 180 degrees, in the patient's plane: with the (row, column) spacing
    each arm is scaled by it first, so on non-square pixels the angle is not the one the pixels make;
    without a spacing, in pixels. None when an arm has no length."""
    across, down = (1.0, 1.0) if spacing is None else (float(spacing[1]), float(spacing[0]))
    ax, ay = (first_end[0] - vertex[0]) * across, (first_end[1] - vertex[1]) * down
    bx, by = (second_end[0] - vertex[0]) * across, (second_end[1] - vertex[1]) * down
    if math.hypot(ax, ay) == 0 or math.hypot(bx, by) == 0:
        return None
    # atan2 of |cross| and dot: exact near 0° and 180°, where acos of the cosine loses its digits
    return math.degrees(math.atan2(abs(ax * by - ay * bx), ax * bx + ay * by))


# --- two series side by side: slices matched by position --------------------------------------------
def slice_positions(positions: Sequence[Sequence[float] | None],
                    orientation: Sequence[float] | None) -> list[float] | None:
    """Each image's place (mm) along the slice normal of ``orientation`` (Image Orientation (Patient):
    row then column direction cosines); None unless every image has a position and the orientation is
    known (a radiograph, a photograph, a header without geometry)."""
    if orientation is None or len(orientation) != 6 or not positions:
        return None
    r, c = orientation[:3], orientation[3:]
    normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    out = []
    for position in positions:
        if position is None or len(position) != 3:
            return None
        out.append(float(sum(p * n for p, n in zip(position, normal, strict=True))))
    return out


@dataclass(frozen=True)
class SliceLink:
    """How a series beside follows the one read: by the distance (mm) between the slices the reader
    lined up when linking, where both have positions along their normals (a prior study lined up on the
    same anatomy, whatever the table moved), else by the number of images between them."""

    offset_mm: float | None
    offset_images: int

    def follow(self, index: int, positions: Sequence[float] | None, other_positions: Sequence[float] | None,
               other_count: int) -> int:
        """The image of the series beside to show when the one read shows image ``index``."""
        if self.offset_mm is not None and positions is not None and other_positions:
            target = positions[index] + self.offset_mm
            return min(range(len(other_positions)), key=lambda k: abs(other_positions[k] - target))
        return min(max(index + self.offset_images, 0), max(other_count - 1, 0))


def link_slices(index: int, positions: Sequence[float] | None, other_index: int,
                other_positions: Sequence[float] | None) -> SliceLink:
    """The link that keeps image ``other_index`` of the series beside with image ``index`` of the one
    read (as the reader has lined them up)."""
    offset_mm = (other_positions[other_index] - positions[index]
                 if positions is not None and other_positions is not None else None)
    return SliceLink(offset_mm, other_index - index)
