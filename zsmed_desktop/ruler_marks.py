"""The reader's marks on an image, as the viewer and the reformat window both keep and handle them: a mark's
points in the image's own pixels and the items that draw it, taking hold of a mark's point by a press near it,
telling a jittery click from a drag, the mouse cursor that says what a press does, and where each label goes
on the screen. What a mark measures, and how image pixels map to the view, stay with each window."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QLabel

from zsmed_desktop.image_view import add_ruler_items, place_label

HOLD_PIXELS = 8.0  # how near (screen pixels) a press must come to a mark's point to take hold of it
CLICK_PIXELS = 3.0  # a drag shorter than this (screen pixels) is a jittery click: it draws no mark

Spots = Sequence[tuple[QPointF, QPointF]]  # where a label may go: (the point it goes past, the one it keeps from)
M = TypeVar("M", bound="Mark")


@dataclass
class Mark:
    """A mark on the image (a ruler; in the viewer also a region, an angle or an arrow): its points in the
    image's own pixels (column, row), so that neither a zoom, a pan nor a turn changes what it measures; the
    items that draw it, and where its label is on the screen (viewport pixels), for the others to keep off."""

    start: tuple[float, float]
    end: tuple[float, float]
    line: pg.PlotCurveItem
    label: pg.TextItem
    box: QRectF | None = None

    @classmethod
    def drawn_in(cls: type[M], box: pg.ViewBox, point: tuple[float, float]) -> M:
        """A new mark from ``point`` to itself (a drag then moves its end), drawn in ``box`` as every ruler is."""
        line, label = add_ruler_items(box)
        return cls(point, point, line, label)

    def remove_from(self, box: pg.ViewBox) -> None:
        box.removeItem(self.line)
        box.removeItem(self.label)

    def view_box(self) -> pg.ViewBox | None:
        """The view box it is drawn in; None once removed."""
        box = self.line.getViewBox()
        return box if isinstance(box, pg.ViewBox) else None

    def move_to(self, box: pg.ViewBox) -> None:
        """Draw it in ``box`` from now on, taken out of the view box it was drawn in: one mark on one image that
        two views show in turn (the reformat window's plane alone, and its pane of the three planes)."""
        here = self.view_box()
        if here is box:
            return
        if here is not None:
            self.remove_from(here)
        for item in (self.line, self.label):
            box.addItem(item, ignoreBounds=True)

    def points(self) -> tuple[tuple[float, float], ...]:
        """Its points, in the order ``set_point`` numbers them: its start and its end."""
        return self.start, self.end

    def set_point(self, index: int, point: tuple[float, float]) -> None:
        """Move point ``index`` (0 its start, 1 its end) to ``point``."""
        if index == 0:
            self.start = point
        else:
            self.end = point


@dataclass
class Angle(Mark):
    """An angle at its vertex ``start`` between the arm to ``end`` (drawn first, by a drag) and the arm to
    ``second`` (None until the mouse has moved on from the first arm). Until a click places the second end,
    the angle is open: its second arm follows the mouse."""

    second: tuple[float, float] | None = None

    def points(self) -> tuple[tuple[float, float], ...]:
        """Its vertex, the end of its first arm and, once there is one, the end of its second."""
        return (self.start, self.end) if self.second is None else (self.start, self.end, self.second)

    def set_point(self, index: int, point: tuple[float, float]) -> None:
        """Move point ``index`` (0 the vertex, 1 the first arm's end, 2 the second's) to ``point``."""
        if index == 2:
            self.second = point
        else:
            super().set_point(index, point)


def angle_text(degrees: float) -> str:
    return f"{degrees:.1f}°"


def angle_spots(points: Sequence[QPointF]) -> list[tuple[QPointF, QPointF]]:
    """Where an angle's label may go, best first, for its ``points`` (vertex, first end[, second end], in any
    pixels with square units): past the vertex, outside the angle, else past either arm's end, else inside
    the angle."""
    vertex, first = points[0], points[1]
    second = points[2] if len(points) > 2 else None
    inside = _inside_the_angle(vertex, first, second)
    ends = [(first, vertex)] + ([(second, vertex)] if second is not None else [])
    return [(vertex, inside), *ends, (inside, vertex)]


def _inside_the_angle(vertex: QPointF, first: QPointF, second: QPointF | None) -> QPointF:
    """A point on the bisector of the angle at ``vertex`` (the arms to ``first`` and ``second``, in any
    pixels with square units), inside the angle: its label goes past the vertex away from it, outside
    the angle and off both arms. With one arm (the second not yet there), a point on it; with the arms
    opposite, a point to one side."""
    arms = [point - vertex for point in (first, second) if point is not None]
    lengths = [math.hypot(arm.x(), arm.y()) for arm in arms]
    units = [arm / length for arm, length in zip(arms, lengths, strict=True) if length > 0]
    if not units:
        return vertex + QPointF(-1.0, -1.0)  # no arm: the label below and to the right of the vertex
    direction = units[0] + units[1] if len(units) == 2 else units[0]
    if math.hypot(direction.x(), direction.y()) < 1e-6:  # a straight angle: either side of it is outside
        direction = QPointF(-units[0].y(), units[0].x())
    return vertex + direction * max(min(length for length in lengths if length > 0) / 2.0, 1e-3)


class Ruler(Mark):
    """A ruler from ``start`` to ``end``."""

    def hold_by(self, end: int) -> None:
        """Take hold of the ruler by its start (0) or its end (1): the end held is made its ``end``, the point
        that follows the mouse."""
        if end == 0:
            self.start, self.end = self.end, self.start


def ellipse_outline(start: QPointF, end: QPointF) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys) of the ellipse inscribed in the rectangle with opposite corners ``start`` and ``end``: a region
    of interest as drawn (96 segments)."""
    angle = np.linspace(0.0, 2.0 * math.pi, 97)
    centre, half = (start + end) / 2.0, (end - start) / 2.0
    return centre.x() + abs(half.x()) * np.cos(angle), centre.y() + abs(half.y()) * np.sin(angle)


def inside_ellipse(at: QPointF, start: QPointF, end: QPointF) -> bool:
    """Whether ``at`` is inside the ellipse inscribed in the rectangle with opposite corners ``start`` and ``end``
    (any coordinates in which the ellipse is one: a region's inside, where a press takes hold of it)."""
    centre, half = (start + end) / 2.0, (end - start) / 2.0
    return abs(half.x()) > 0 and abs(half.y()) > 0 and (
        ((at.x() - centre.x()) / half.x()) ** 2 + ((at.y() - centre.y()) / half.y()) ** 2 <= 1.0)


def moved_within(corners: Sequence[tuple[float, float]], travel: tuple[float, float], size: tuple[float, float]
                 ) -> tuple[tuple[float, float], ...]:
    """``corners`` (image pixels) moved by ``travel`` (the mouse's since the press), the whole kept on an image of
    ``size`` (width, height): a region dragged against the edge stops there, its shape kept."""
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    dx = min(max(travel[0], -min(xs)), size[0] - max(xs))
    dy = min(max(travel[1], -min(ys)), size[1] - max(ys))
    return tuple((x + dx, y + dy) for x, y in corners)


def ruler_spots(start: QPointF, end: QPointF) -> list[tuple[QPointF, QPointF]]:
    """Where a ruler's label may go, best first: past its end, else past its start, away from the other end."""
    return [(end, start), (start, end)]


def nearest_point(box: pg.ViewBox, at: QPointF, marks: Iterable[tuple[M, Sequence[QPointF]]]
                  ) -> tuple[M, int] | None:
    """The mark's point a left press at ``at`` takes hold of, as PACS viewers do: of the ``marks``' points
    (each mark with its points in view coordinates), the nearest within ``HOLD_PIXELS`` on the screen, as
    (the mark, which of its points); None where none is that near (the press draws a new mark) or the view
    is not laid out yet."""
    press = box.mapViewToDevice(at)
    if press is None:
        return None
    nearest: tuple[float, M, int] | None = None
    for mark, points in marks:
        for index, point in enumerate(points):
            where = box.mapViewToDevice(point)
            if where is None:
                continue
            distance = math.hypot(where.x() - press.x(), where.y() - press.y())
            if distance <= HOLD_PIXELS and (nearest is None or distance < nearest[0]):
                nearest = (distance, mark, index)
    return (nearest[1], nearest[2]) if nearest is not None else None


def is_click(box: pg.ViewBox, down: QPointF, now: QPointF) -> bool:
    """Whether a left drag from ``down`` to ``now`` (view coordinates) went less than ``CLICK_PIXELS`` on the
    screen: a jittery click, not a drag, so the mark it began measures nothing and goes."""
    tip, tail = box.mapViewToDevice(now), box.mapViewToDevice(down)
    return tip is not None and tail is not None and math.hypot(tip.x() - tail.x(), tip.y() - tail.y()) < CLICK_PIXELS


def set_marking_cursor(view: pg.GraphicsView, marking: bool, over_mark: bool = False) -> None:
    """The mouse cursor over the image says what a left press does: while a tool is on (``marking``), move
    the mark it is over (``over_mark``) or draw a new one; else the usual one (a left drag pans)."""
    port = view.viewport()
    if not marking:
        port.unsetCursor()
    else:
        port.setCursor(Qt.CursorShape.SizeAllCursor if over_mark else Qt.CursorShape.CrossCursor)


def place_in_turn(marks: Sequence[M], place: Callable[[M], None]) -> None:
    """Place the ``marks`` one after the other, each label keeping off those placed before it (the places
    they had are forgotten first: they are all placed afresh)."""
    for mark in marks:
        mark.box = None
    for mark in marks:
        place(mark)


def place_mark_label(view: pg.GraphicsView, box: pg.ViewBox, label: pg.TextItem, spots: Spots,
                     texts: Iterable[QLabel], others: Iterable[QRectF] = ()) -> QRectF | None:
    """Put a mark's ``label`` past the first of its ``spots`` (view coordinates), away from the point it is
    paired with (so it covers neither the line nor what it measures); where that leaves the view or lies under
    the visible ``texts`` over the image (its corner texts) or the ``others`` (the labels placed before it),
    on another side of it, else at the next spot (``place_label``). Returns where it went on the screen
    (viewport pixels); None while the view is not laid out (it is placed again once it is: its range changes)."""
    label.setPos(spots[0][0])
    on_screen = [(box.mapViewToDevice(point), box.mapViewToDevice(back)) for point, back in spots]
    screen_spots = [(point, back) for point, back in on_screen if point is not None and back is not None]
    if len(screen_spots) != len(spots):
        return None
    port = view.viewport()
    room = QRectF(0.0, 0.0, float(port.width()), float(port.height()))
    keep_off = [QRectF(port.mapFrom(view, text.pos()), text.size().toSizeF()) for text in texts if text.isVisible()]
    chosen, anchor, where = place_label(screen_spots, label.textItem.boundingRect().size(), room,
                                        [*keep_off, *others])
    label.setPos(spots[chosen][0])
    label.setAnchor(anchor)
    return where
