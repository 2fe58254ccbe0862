"""What the viewer and the reformat window draw their images with: a view box with the PACS mouse (the
wheel steps through the slices, Ctrl+wheel zooms, a right drag windows, a left drag draws a mark or pans)
and none of pyqtgraph's menus, labels on the image readable on white as on black and where they go, the
dashed reference line, and the reader's rulers with where their labels go."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QGraphicsDropShadowEffect, QHBoxLayout, QLabel, QWidget

REFERENCE_COLOUR = "#4dd0e1"  # cyan, dashed: where another window's slice cuts this image, not a mark
WHEEL_NOTCH = 120  # angle delta of one wheel notch (Qt): one slice
TEXT_MARGIN = 6  # screen pixels between the texts over the image and its edges


class SteppingViewBox(pg.ViewBox):
    """An image's view with the aspect locked, y down, and PACS wheel bindings: a notch steps one slice
    (``step(-notches)``), Ctrl+wheel zooms about the mouse; a touchpad's small deltas add up to notches."""

    def __init__(self, step: Callable[[int], None]) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self._step = step
        self._wheel_rest = 0

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)  # zoom about the mouse
            return
        self._wheel_rest += int(ev.delta())
        steps = int(self._wheel_rest / WHEEL_NOTCH)
        if steps:
            self._wheel_rest -= steps * WHEEL_NOTCH
            self._step(-steps)
        ev.accept()


@dataclass(frozen=True)
class ImageMouse:
    """What the mouse does on an image (``ImageViewBox``): the window's own functions."""

    step: Callable[[int], None]  # the wheel: this many slices on (negative: back)
    double_click: Callable[[QPointF], None]  # a left double-click there (view coordinates): the fit, say
    locate: Callable[[QPointF], None]  # Shift+click there: the 3D cursor
    drag_window: Callable[[bool, float, float], None]  # a right drag: begun now, and dx, dy (screen pixels) so far
    marking: Callable[[], bool]  # whether a left drag draws a mark now (else it pans)
    drag_mark: Callable[[bool, bool, QPointF, QPointF], None]  # a left drag while marking: begun, ended, press, mouse
    click: Callable[[QPointF], None] = lambda _at: None  # a plain left click there


class ImageViewBox(SteppingViewBox):
    """An image's view with the mouse of PACS viewers, alike in the viewer and the reformat window: the wheel
    steps (``SteppingViewBox``), a right drag windows, a left drag draws the mark of the tool on (else it pans,
    as a middle drag does), a double-click fits, Shift+click marks the point for the other windows; a press
    gives ``window`` the keys. What each does is the window's (``mouse``)."""

    def __init__(self, window: QWidget, mouse: ImageMouse) -> None:
        super().__init__(mouse.step)
        self._window, self._mouse = window, mouse

    def mouseClickEvent(self, ev: Any) -> None:
        self._window.setFocus()
        left, at = ev.button() == Qt.MouseButton.LeftButton, self.mapToView(ev.pos())
        if left and ev.double():
            self._mouse.double_click(at)
        elif left and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._mouse.locate(at)
        elif left:
            self._mouse.click(at)
        ev.accept()

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:
        self._window.setFocus()
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.buttonDownScreenPos()
            self._mouse.drag_window(ev.isStart(), float(delta.x()), float(delta.y()))
            return
        if ev.button() == Qt.MouseButton.LeftButton and self._mouse.marking():
            ev.accept()
            self._mouse.drag_mark(ev.isStart(), ev.isFinish(), self.mapToView(ev.buttonDownPos()),
                                  self.mapToView(ev.pos()))
            return
        super().mouseDragEvent(ev, axis)  # left (no tool on) / middle: pan


def image_view(box: pg.ViewBox) -> tuple[pg.GraphicsView, pg.ImageItem]:
    """The black view that shows ``box``, and the image in it (rows first, as arrays are). Magnified pixels are
    interpolated, as PACS show them, not drawn as blocks (a slice's pixels several mm apart are stretched many
    screen pixels tall); the view takes no focus: the window keeps the keys."""
    view = pg.GraphicsView(background="#000000")
    view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    view.setAntialiasing(False)
    view.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    view.setCentralItem(box)
    image_item = pg.ImageItem(axisOrder="row-major")
    box.addItem(image_item)
    return view, image_item


def row_under_image(wide: QWidget, side: QWidget, *, bottom: int) -> QWidget:
    """A row under the image: ``wide`` (a slider, a progress bar) across it, ``side`` (its label, a button) at
    its right, ``bottom`` pixels above the next."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(6, 0, 6, bottom)
    layout.addWidget(wide, 1)
    layout.addWidget(side)
    return row


def shadowed(label: QLabel) -> QLabel:
    """``label`` (drawn over the image) with a dark shadow, readable on white bone as on black air, and
    letting the mouse through to the image."""
    effect = QGraphicsDropShadowEffect(label)
    effect.setBlurRadius(3)
    effect.setOffset(1, 1)
    effect.setColor(QColor(0, 0, 0, 255))
    label.setGraphicsEffect(effect)
    label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    return label


def place_texts(view: QWidget, labels: Mapping[str, QLabel], message: QLabel) -> None:
    """Lay out the texts over the image in ``view``: the patient's directions (``labels`` named l, r, t, b) at
    the middle of their edges, the corner texts (tl, tr, bl, br) in their corners, and the ``message`` shown
    in place of an image across its middle."""
    width, height, margin = view.width(), view.height(), TEXT_MARGIN
    # corner texts that would run into each other (on a laptop's narrow viewer, the patient's name top left
    # and the series' title top right) keep to their half of the view each, wrapped; otherwise as they are
    half = max((width - 3 * margin) // 2, 60)
    natural: dict[str, int] = {}
    for name, label in labels.items():
        if len(name) == 2:
            label.setWordWrap(False)
            label.setMinimumSize(0, 0)
            label.setMaximumSize(16777215, 16777215)
            label.adjustSize()
            natural[name] = label.width() if label.text() else 0
    for name, label in labels.items():
        if len(name) != 2:
            continue
        beside = natural.get(name[0] + ("r" if name[1] == "l" else "l"), 0)
        if natural[name] + beside + 3 * margin > width and natural[name] > half:
            label.setWordWrap(True)
            label.setFixedWidth(half)
            label.setFixedHeight(label.heightForWidth(half))
    corners = {name: label for name, label in labels.items() if len(name) == 2}
    for name, label in corners.items():
        label.adjustSize()
        x = width - label.width() - margin if name.endswith("r") else margin
        y = margin if name.startswith("t") else height - label.height() - margin
        label.move(max(x, 0), max(y, 0))
    for name, label in labels.items():
        if len(name) != 1:
            continue
        label.adjustSize()  # an edge's letters, at its middle
        x = {"l": margin, "r": width - label.width() - margin}.get(name, (width - label.width()) // 2)
        y = {"t": margin, "b": height - label.height() - margin}.get(name, (height - label.height()) // 2)
        if name in "tb":  # clear of a corner text long enough to reach the middle (a long series title)
            span = range(x, x + label.width())
            reaching = [c for key, c in corners.items() if key[0] == name and c.text() and not c.isHidden()
                        and c.x() < span.stop and span.start < c.x() + c.width()]
            if reaching and name == "t":
                y = max(c.y() + c.height() for c in reaching) + margin // 2
            elif reaching:
                y = min(c.y() for c in reaching) - label.height() - margin // 2
        label.move(max(x, 0), max(y, 0))
    message.setFixedWidth(max(width - 40, 100))
    message.adjustSize()
    message.move((width - message.width()) // 2, (height - message.height()) // 2)


def add_reference_item(box: pg.ViewBox) -> pg.PlotCurveItem:
    """The dashed reference line's item in ``box``: hidden until given ends, over the image and under
    the reader's own marks, and left out of the view's auto-range."""
    item = pg.PlotCurveItem(pen=pg.mkPen(REFERENCE_COLOUR, width=1.5, style=Qt.PenStyle.DashLine), antialias=True)
    item.setZValue(5)
    item.setVisible(False)
    box.addItem(item, ignoreBounds=True)
    return item


def add_cursor_item(box: pg.ViewBox) -> pg.ScatterPlotItem:
    """The 3D cursor's cross in ``box``: a fixed size on the screen whatever the zoom, in the reference
    line's colour, hidden until given a point."""
    # filled, with a dark rim: readable on white bone as on black air
    item = pg.ScatterPlotItem(size=20, symbol="+", pen=pg.mkPen("#000000", width=1),
                              brush=pg.mkBrush(REFERENCE_COLOUR), pxMode=True)
    item.setZValue(6)
    item.setVisible(False)
    box.addItem(item, ignoreBounds=True)
    return item


# --- the reader's rulers: drawn alike in the viewer and the reformat window ----------------------------
RULER_COLOUR = "#ffd54a"  # yellow: stands out on grey images and on most photographs
RULER_FONT_PIXELS = 13


def add_ruler_items(box: pg.ViewBox) -> tuple[pg.PlotCurveItem, pg.TextItem]:
    """A ruler's line and label in ``box``, as the viewer draws its rulers: a yellow line on a dark halo and a
    bold yellow text on a dark fill, so that both read on white bone as on black air; above the image and
    the reference line, and left out of the view's auto-range (a ruler must not change the fit)."""
    line = pg.PlotCurveItem(pen=pg.mkPen(RULER_COLOUR, width=2), shadowPen=pg.mkPen("#000000", width=4),
                            antialias=True)  # a slanting line drawn without it looks dashed
    label = pg.TextItem("", color=RULER_COLOUR, fill=pg.mkBrush(0, 0, 0, 170))
    font = QFont()
    font.setPixelSize(RULER_FONT_PIXELS)
    font.setBold(True)
    label.setFont(font)
    for item in (line, label):
        item.setZValue(10)
        box.addItem(item, ignoreBounds=True)
    return line, label


def place_label(spots: Sequence[tuple[QPointF, QPointF]], size: QSizeF, room: QRectF,
                keep_off: Sequence[QRectF]) -> tuple[int, tuple[float, float], QRectF]:
    """Where a mark's label of ``size`` goes, the viewer's rule: at one of its ``spots`` (pairs of (the point
    it goes past, the point it keeps away from), best first; in the same screen pixels as ``room``, the
    picture, and ``keep_off``, the texts it must not cover), past the first spot's point on the side away
    from its pair (so it covers neither the line nor what it measures), else on another side of it, else at
    the next spot; the first free place, else the least covered. Returns (which spot, the label's anchor as
    pyqtgraph's TextItem takes it, its box)."""
    places: list[tuple[int, QPointF, tuple[float, float]]] = []  # (which spot, its point, anchor)
    for spot, (point, back) in enumerate(spots):
        right, down = point.x() >= back.x(), point.y() >= back.y()  # away from the line
        places += [(spot, point, (0.0 if r else 1.0, 0.0 if d else 1.0))
                   for r, d in ((right, down), (not right, down), (right, not down), (not right, not down))]
    boxes = [QRectF(point.x() - anchor[0] * size.width(), point.y() - anchor[1] * size.height(),
                    size.width(), size.height()) for _spot, point, anchor in places]

    def covered(box: QRectF) -> float:
        """How much of the label would be off the picture or over a text (0: a free place)."""
        inside = room.intersected(box)
        over = sum(part.width() * part.height() for part in (box.intersected(text) for text in keep_off
                                                               if box.intersects(text)))
        cover = box.width() * box.height() - inside.width() * inside.height() + over
        # less than a pixel is the rounding of points mapped to the screen (266.99999999999994 for 267), not
        # a cover: a free place all the same, else a label leaves its best place for no reason
        return cover if cover >= 1.0 else 0.0

    best = min(range(len(places)), key=lambda i: covered(boxes[i]))  # min keeps the first of equals
    spot, _point, anchor = places[best]
    return spot, anchor, boxes[best]
