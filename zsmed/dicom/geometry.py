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
def slice_normal(orientation: Sequence[float] | None) -> tuple[float, float, float] | None:
    """The unit normal of an image plane from its Image Orientation (Patient) (row, then column direction
    cosines): row × column; None without a usable orientation."""
    if orientation is None or len(orientation) != 6:
        return None
    r, c = orientation[:3], orientation[3:]
    n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    length = math.sqrt(sum(x * x for x in n))
    return (n[0] / length, n[1] / length, n[2] / length) if length > 1e-6 else None


def slice_positions(positions: Sequence[Sequence[float] | None],
                    orientation: Sequence[float] | None) -> list[float] | None:
    """Each image's place (mm) along the slice normal of ``orientation`` (Image Orientation (Patient):
    row then column direction cosines); None unless every image has a position and the orientation is
    known (a radiograph, a photograph, a header without geometry)."""
    normal = slice_normal(orientation)
    if normal is None or not positions:
        return None
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


# --- reference lines: where one image's plane cuts another ------------------------------------------
Point = tuple[float, float]  # (column, row) in stored pixels, (0, 0) the top-left corner of the image
_PARALLEL = math.cos(math.radians(1.0))  # planes within 1° of each other never cross on the image


@dataclass(frozen=True)
class ImagePlane:
    """Where an image lies in the patient (DICOM LPS, mm): the centre of its first pixel (Image
    Position), the directions its rows and columns run (Image Orientation: along a row first), the
    pixel spacing (row, column), the size (rows, columns) and the Frame of Reference UID its position
    is in (positions in two frames of reference, e.g. two studies, cannot be compared)."""

    position: tuple[float, float, float]
    row_direction: tuple[float, float, float]
    column_direction: tuple[float, float, float]
    spacing: tuple[float, float]
    size: tuple[int, int]
    frame_of_reference: str = ""
    projection: bool = False  # a localizer: a projection through the patient, its plane only nominal

    @property
    def normal(self) -> np.ndarray:
        return np.cross(np.asarray(self.row_direction), np.asarray(self.column_direction))

    def patient_point(self, point: Point) -> np.ndarray:
        """A stored-image point (column, row; corners at whole numbers) in the patient: pixel centres are
        half a pixel in from the corner Image Position names."""
        column, row = point
        return (np.asarray(self.position) + (column - 0.5) * self.spacing[1] * np.asarray(self.row_direction)
                + (row - 0.5) * self.spacing[0] * np.asarray(self.column_direction))

    def image_point(self, patient: np.ndarray) -> Point:
        """The inverse of ``patient_point`` for a point in the image's plane."""
        offset = np.asarray(patient) - np.asarray(self.position)
        return (float(offset @ np.asarray(self.row_direction)) / self.spacing[1] + 0.5,
                float(offset @ np.asarray(self.column_direction)) / self.spacing[0] + 0.5)


def _crossings(distance_at: Sequence[float], corners: Sequence[Point]) -> list[Point]:
    """The points on a polygon's edges (corners in order) where a linear function, given at the
    corners, is zero."""
    found: list[Point] = []
    for k in range(len(corners)):
        (x0, y0), (x1, y1) = corners[k], corners[(k + 1) % len(corners)]
        d0, d1 = distance_at[k], distance_at[(k + 1) % len(corners)]
        if d0 == 0.0:
            found.append((x0, y0))
        elif d0 * d1 < 0.0:
            t = d0 / (d0 - d1)
            found.append((x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
    return found


def reference_line(cutting: ImagePlane, shown: ImagePlane) -> tuple[Point, Point] | None:
    """Where the image ``cutting`` (the slice being read) crosses the image ``shown`` (a localizer, or a
    slice of another plane), as a segment in ``shown``'s stored pixels: the reference line PACS viewers
    draw. It spans the shown image where the cutting image reaches along the line (wherever the slice
    lies through the depth of a projection); None where the planes are parallel (within 1°), the
    cutting image does not reach over the shown one, or the two are not in one frame of reference (a
    prior study: the same coordinates there are another place in the patient)."""
    if not cutting.frame_of_reference or cutting.frame_of_reference != shown.frame_of_reference:
        return None
    n = cutting.normal
    if abs(float(n @ shown.normal)) > _PARALLEL:
        return None
    rows, columns = shown.size
    corners: list[Point] = [(0.0, 0.0), (float(columns), 0.0), (float(columns), float(rows)), (0.0, float(rows))]
    origin = np.asarray(cutting.position)
    distances = [float(n @ (shown.patient_point(c) - origin)) for c in corners]
    found = _crossings(distances, corners)
    if len(found) < 2:
        return None
    first, second = max(((a, b) for a in found for b in found), key=lambda ab: math.dist(ab[0], ab[1]))
    if math.dist(first, second) < 1e-6:
        return None
    # The cutting image's extent along the line: its corners projected on it. Along the shown image's
    # normal the slice may lie anywhere (a scout is a projection through the patient), so only its extent
    # along the line limits the segment: an axial slice drawn across a frontal scout as wide as the slice.
    direction = np.cross(n, shown.normal)
    direction /= np.linalg.norm(direction)
    start_mm = float(direction @ shown.patient_point(first))
    end_mm = float(direction @ shown.patient_point(second))
    rows_c, columns_c = cutting.size
    extent = [float(direction @ cutting.patient_point(c))
              for c in ((0.0, 0.0), (float(columns_c), 0.0), (float(columns_c), float(rows_c)), (0.0, float(rows_c)))]
    low_mm, high_mm = min(extent), max(extent)
    if end_mm < start_mm:
        first, second, start_mm, end_mm = second, first, end_mm, start_mm
    t0 = (max(start_mm, low_mm) - start_mm) / (end_mm - start_mm)
    t1 = (min(end_mm, high_mm) - start_mm) / (end_mm - start_mm)
    if t1 - t0 <= 1e-9:
        return None
    inside = (t0, t1)

    def along(t: float) -> Point:
        return first[0] + t * (second[0] - first[0]), first[1] + t * (second[1] - first[1])

    return along(inside[0]), along(inside[1])


# --- a point located in another series (the 3D cursor) -----------------------------------------------
LOCATE_REACH_MM = 10.0  # a point farther than this from every slice of a series is not in it


def locate_point(point: np.ndarray, planes: Sequence[ImagePlane | None], frame_of_reference: str,
                 reach_mm: float = LOCATE_REACH_MM) -> tuple[int, Point] | None:
    """The slice of a series (its images' ``planes``, None where one has no geometry) nearest the
    patient ``point`` (mm) and where the point falls on it (stored pixels, column, row): what a PACS's 3D
    cursor jumps to (on a CT scout, where the point projects, whatever its depth). None where the series
    is in another frame of reference, no slice is within ``reach_mm`` of the point, or the point falls
    outside the nearest slice's image."""
    if not frame_of_reference:
        return None
    best: tuple[float, int] | None = None
    for index, plane in enumerate(planes):
        if plane is None or plane.frame_of_reference != frame_of_reference:
            continue
        offset = np.asarray(point) - np.asarray(plane.position)
        # a scout shows the whole depth of the patient: any point over it is on it
        distance = 0.0 if plane.projection else abs(float(plane.normal @ offset))
        if distance <= reach_mm and (best is None or distance < best[0]):
            best = (distance, index)
    if best is None:
        return None
    plane = planes[best[1]]
    assert plane is not None
    column, row = plane.image_point(point)
    rows, columns = plane.size
    if not (0.0 <= column <= columns and 0.0 <= row <= rows):
        return None
    return best[1], (column, row)
