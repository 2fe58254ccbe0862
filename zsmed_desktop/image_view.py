"""What the viewer and the reformat window draw their images with: a view box that steps through the
slices on the wheel (Ctrl+wheel zooms) with none of pyqtgraph's menus, labels on the image readable on
white as on black, the dashed reference line and the 3D cursor's cross."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsDropShadowEffect, QLabel

REFERENCE_COLOUR = "#4dd0e1"  # cyan, dashed: where another window's slice cuts this image, not a mark
WHEEL_NOTCH = 120  # angle delta of one wheel notch (Qt): one slice


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
    item = pg.ScatterPlotItem(size=22, symbol="+", pen=pg.mkPen(REFERENCE_COLOUR, width=2), brush=None,
                              pxMode=True)
    item.setZValue(6)
    item.setVisible(False)
    box.addItem(item, ignoreBounds=True)
    return item
