"""The reformat window's three-plane layout (3 planes on its bar, or key 3 with Ctrl): the volume's axial,
coronal and sagittal slices side by side, each through one point of the patient, the crosshair, as PACS lay
out an MPR. Each pane draws, in the other planes' colours, the lines where their slices cut it; a left
press or drag in a pane moves the crosshair there (the two other panes go to their slices through it), the
wheel moves it through that pane's slices, a right drag windows (the window's window, shared), a double-click
shows that plane alone at the crosshair's slice. The slab (MIP / mean / MinIP) applies to all three. With one
of the reformat window's measuring tools on (a ruler, a region, an angle), the left button is the tool's on
every pane, as on one plane shown alone: a drag draws the mark on that pane's image (``PaneTools``), and the
crosshair stays.

Only the drawing is here: the volume, the window, the slab, the marks and what a double-click or a right drag
does are the reformat window's (``ReformatWindow``), which reads the series once for both layouts and keeps a
mark with its image whichever layout shows it (``images_shown`` says when the panes' images changed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from zsmed.dicom.geometry import ImagePlane, reference_line
from zsmed.dicom.volume import (
    PLANES,
    Plane,
    Reformat,
    SlabMode,
    Volume,
    plane_count,
    reformat,
    reformat_plane,
    windowed,
)
from zsmed_desktop.image_view import ImageMouse, ImageViewBox, image_view, shadowed

# each plane's colour: its name over its pane and its line in the two others, so the reader tells them apart
PLANE_COLOURS: dict[Plane, str] = {"axial": "#4dd0e1", "coronal": "#9ccc65", "sagittal": "#f48fb1"}
PANE_NAMES: dict[Plane, str] = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal"}
_EDGE_STYLE = "color: #e6d38a; background: transparent; font-size: 12px; font-weight: bold;"


@dataclass(frozen=True)
class PaneTools:
    """What the reformat window's measuring tools do on the panes (its rulers, regions and angles are drawn on a
    pane's image as on one plane shown alone): the panes pass the mouse on, naming the pane's plane."""

    marking: Callable[[], bool]  # whether a tool is on: a left drag or click is then the tool's, not the crosshair's
    drag_mark: Callable[[Plane, bool, bool, QPointF, QPointF], None]  # a left drag: begun, ended, press, mouse (mm)
    click: Callable[[Plane, QPointF], None]  # a plain left click there (view mm)
    hover: Callable[[Plane, QPointF], None]  # the mouse over the pane (view mm): an angle's second arm, the cursor
    place: Callable[[Plane], None]  # the pane zoomed, panned or resized: its marks' labels placed again


NO_TOOLS = PaneTools(marking=lambda: False, drag_mark=lambda *_: None, click=lambda *_: None,
                     hover=lambda *_: None, place=lambda _plane: None)


@dataclass
class _Pane:
    """One plane's view: its box, image, the other planes' lines, its labels and the slice it shows."""

    plane: Plane
    view: pg.GraphicsView
    box: ImageViewBox
    image: pg.ImageItem
    lines: dict[Plane, pg.PlotCurveItem]
    title: QLabel
    edges: dict[str, QLabel]
    shown: Reformat | None = None
    where: ImagePlane | None = None
    fitted: tuple[int, int] | None = None


class MprPanes(QWidget):
    """Axial, coronal and sagittal through one point of the patient (the crosshair)."""

    point_moved = Signal(object)  # the crosshair (patient mm, numpy (3,)) after the reader moved it
    plane_chosen = Signal(str)  # a pane double-clicked: that plane alone, at the crosshair's slice
    images_shown = Signal()  # the panes show other images (slices, slab, volume): their marks shown and hidden

    def __init__(self, drag_window: Callable[[bool, float, float], None], tools: PaneTools = NO_TOOLS,
                 parent: QWidget | None = None) -> None:
        """``drag_window``: what a right drag does (the reformat window's windowing); ``tools``: what its
        measuring tools do on a pane."""
        super().__init__(parent)
        self._tools = tools
        self._volume: Volume | None = None
        self._point: np.ndarray | None = None
        self._window: tuple[float, float] = (0.0, 1.0)
        self._slab: tuple[float, SlabMode] = (0.0, "mip")
        self.panes: dict[Plane, _Pane] = {}
        self._active: Plane = "axial"
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        for plane in PLANES:
            pane = self._make_pane(plane, drag_window)
            self.panes[plane] = pane
            layout.addWidget(pane.view, 1)
        self._style_titles()

    @property
    def active(self) -> Plane:
        """The pane used last: the window's arrow keys step through its plane, Delete clears its marks; its
        name is underlined, so the reader sees which pane they act on."""
        return self._active

    @active.setter
    def active(self, plane: Plane) -> None:
        if plane != self._active:
            self._active = plane
            self._style_titles()

    def _style_titles(self) -> None:
        for plane, pane in self.panes.items():
            underline = " text-decoration: underline;" if plane == self._active else ""
            pane.title.setStyleSheet(f"color: {PLANE_COLOURS[plane]}; background: transparent; font-size: 12px; "
                                     f"font-weight: bold;{underline}")

    def _make_pane(self, plane: Plane, drag_window: Callable[[bool, float, float], None]) -> _Pane:
        tools = self._tools

        def step(steps: int) -> None:
            self.step(plane, steps)

        def dragged(start: bool, finish: bool, down: QPointF, now: QPointF) -> None:
            """A left drag: the tool's mark on this pane with a tool on, else the crosshair after the mouse."""
            self.active = plane  # Delete and the arrow keys act on the pane used last
            if tools.marking():
                tools.drag_mark(plane, start, finish, down, now)
            else:
                self._move_to(plane, now)

        def clicked(at: QPointF) -> None:
            self.active = plane
            if tools.marking():
                tools.click(plane, at)
            else:
                self._move_to(plane, at)

        # a left drag never pans here (``marking`` always): it moves the crosshair or draws
        mouse = ImageMouse(step=step, double_click=lambda _at: self.plane_chosen.emit(plane),
                           locate=lambda at: self._move_to(plane, at), drag_window=drag_window,
                           marking=lambda: True, drag_mark=dragged, click=clicked)
        box = ImageViewBox(self, mouse)
        view, image = image_view(box)
        view.setMinimumSize(120, 120)
        view.scene().sigMouseMoved.connect(lambda scene_pos: tools.hover(plane, box.mapSceneToView(scene_pos)))
        lines = {}
        for other in PLANES:
            if other == plane:
                continue
            line = pg.PlotCurveItem(pen=pg.mkPen(PLANE_COLOURS[other], width=1.5), antialias=True)
            line.setZValue(5)
            box.addItem(line, ignoreBounds=True)
            lines[other] = line
        title = shadowed(QLabel(view))  # styled by _style_titles (the active pane's underlined)
        title.move(6, 4)
        edges = {name: shadowed(QLabel(view)) for name in ("l", "r", "t", "b")}
        for label in edges.values():
            label.setStyleSheet(_EDGE_STYLE)
        box.sigResized.connect(lambda *_: self._place_edges(plane))
        # the marks' labels keep inside the pane and off its texts: placed again as it zooms or pans, and once
        # resized after its edges' letters are
        box.sigRangeChanged.connect(lambda *_: tools.place(plane))
        box.sigResized.connect(lambda *_: tools.place(plane))
        return _Pane(plane, view, box, image, lines, title, edges)

    # --- what is shown --------------------------------------------------------------------------------------
    def set_volume(self, volume: Volume | None, point: np.ndarray | None = None) -> None:
        """Show ``volume`` through ``point`` (patient mm; default its centre)."""
        self._volume = volume
        for pane in self.panes.values():
            pane.fitted = None
        if volume is None:
            self._point = None
            for pane in self.panes.values():
                pane.image.clear()
                pane.shown = pane.where = None
            self.images_shown.emit()
            return
        self._point = np.asarray(point, dtype=np.float64) if point is not None else _centre(volume)
        self._update()

    def set_window(self, centre: float, width: float) -> None:
        self._window = (centre, width)
        for pane in self.panes.values():
            self._render(pane)

    def set_slab(self, mm: float, mode: SlabMode) -> None:
        self._slab = (mm, mode)
        self._update()

    def point(self) -> np.ndarray | None:
        """The crosshair: a point of the patient (mm)."""
        return None if self._point is None else self._point.copy()

    def set_point(self, point: np.ndarray) -> None:
        """Put the crosshair at ``point`` (patient mm), kept within the volume (the 3D cursor from elsewhere)."""
        if self._volume is not None:
            self._point = _within(self._volume, np.asarray(point, dtype=np.float64))
            self._update()

    def index(self, plane: Plane) -> int:
        """The slice of ``plane`` through the crosshair."""
        shown = self.panes[plane].shown
        return shown.index if shown is not None else 0

    def step(self, plane: Plane, steps: int) -> None:
        """Move the crosshair ``steps`` slices through ``plane`` (the wheel over its pane)."""
        volume, pane = self._volume, self.panes[plane]
        self.active = plane
        if volume is None or pane.shown is None or self._point is None:
            return
        index = min(max(pane.shown.index + steps, 0), plane_count(volume, plane) - 1)
        here, there = reformat_plane(volume, plane, pane.shown.index), reformat_plane(volume, plane, index)
        self._point = self._point + (np.asarray(there.position) - np.asarray(here.position))
        self._update()
        self.point_moved.emit(self.point())

    def _move_to(self, plane: Plane, at: QPointF) -> None:
        """The crosshair to the point under the mouse in ``plane``'s pane (view mm), kept on its image."""
        pane = self.panes[plane]
        self.active = plane
        if pane.where is None or pane.shown is None:
            return
        self._point = np.asarray(pane.where.patient_point(image_point(pane.shown, at)))
        self._update()
        self.point_moved.emit(self.point())

    def _update(self) -> None:
        volume, point = self._volume, self._point
        if volume is None or point is None:
            return
        slab_mm, mode = self._slab
        for plane, pane in self.panes.items():
            index = _slice_through(volume, plane, point)
            pane.shown = reformat(volume, plane, index, slab_mm, mode)
            pane.where = reformat_plane(volume, plane, index)
        # the crosshair on the three slices shown, where their lines cross (a point between two slices is
        # shown on the nearer: the lines must not miss it by half a slice)
        wheres = [pane.where for pane in self.panes.values() if pane.where is not None]
        normals = np.asarray([where.normal for where in wheres])
        if len(wheres) == 3 and abs(float(np.linalg.det(normals))) > 1e-6:
            self._point = point = np.linalg.solve(
                normals, [float(where.normal @ np.asarray(where.position)) for where in wheres])
        for plane, pane in self.panes.items():
            assert pane.shown is not None
            index = pane.shown.index
            self._render(pane)
            shape = pane.shown.image.shape
            if pane.fitted != shape:
                pane.fitted = shape
                pane.box.setRange(rect=self._image_rect(pane), padding=0.0)
            slab = f" · {mode.upper() if mode != 'mean' else 'mean'} {pane.shown.slab_mm:.1f} mm" if (
                pane.shown.slab_slices > 1) else ""
            pane.title.setText(f"{PANE_NAMES[plane]} {index + 1}/{pane.shown.count}{slab}")
            pane.title.adjustSize()
            for name, text in zip(("l", "r", "t", "b"), pane.shown.edges, strict=True):
                pane.edges[name].setText(text)
            self._place_edges(plane)
        for pane in self.panes.values():
            for other, line in pane.lines.items():
                cut = self.panes[other].where
                ends = reference_line(cut, pane.where) if cut is not None and pane.where is not None else None
                self._draw_line(pane, line, ends)
        self.images_shown.emit()

    def fit(self) -> None:
        """Each pane's image whole in its pane (F)."""
        for pane in self.panes.values():
            if pane.shown is not None:
                pane.box.setRange(rect=self._image_rect(pane), padding=0.0)

    def _render(self, pane: _Pane) -> None:
        shown, volume = pane.shown, self._volume
        if shown is None or volume is None:
            return
        pane.image.setImage(windowed(shown, self._window, volume.inverted), levels=(0, 255), autoLevels=False)
        pane.image.setRect(self._image_rect(pane))

    @staticmethod
    def _image_rect(pane: _Pane) -> QRectF:
        assert pane.shown is not None
        return mm_rect(pane.shown)

    @staticmethod
    def _draw_line(pane: _Pane, line: pg.PlotCurveItem, ends: tuple[tuple[float, float], tuple[float, float]] | None
                   ) -> None:
        if ends is None or pane.shown is None:
            line.setVisible(False)
            return
        first, second = view_point(pane.shown, ends[0]), view_point(pane.shown, ends[1])
        line.setData([first.x(), second.x()], [first.y(), second.y()])
        line.setVisible(True)

    def line_ends(self, plane: Plane, other: Plane) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """Where ``other``'s slice cuts ``plane``'s pane, in that pane's image pixels (column, row); None
        where it is not drawn."""
        line = self.panes[plane].lines[other]
        shown = self.panes[plane].shown
        if not line.isVisible() or shown is None:
            return None
        xs, ys = line.getData()
        return (image_point(shown, QPointF(float(xs[0]), float(ys[0])), keep=False),
                image_point(shown, QPointF(float(xs[1]), float(ys[1])), keep=False))

    def texts(self, plane: Plane) -> tuple[QLabel, ...]:
        """The texts over ``plane``'s pane (its name, its edges' letters): what a mark's label there keeps off."""
        pane = self.panes[plane]
        return (pane.title, *pane.edges.values())

    def _place_edges(self, plane: Plane) -> None:
        pane = self.panes[plane]
        width, height, margin = pane.view.width(), pane.view.height(), 4
        for name, label in pane.edges.items():
            label.adjustSize()
            x = {"l": margin, "r": width - label.width() - margin}.get(name, (width - label.width()) // 2)
            y = {"t": margin, "b": height - label.height() - margin}.get(name, (height - label.height()) // 2)
            label.move(max(x, 0), max(y, 0))


def mm_rect(shown: Reformat) -> QRectF:
    """Where a reformat lies in its view: its top-left corner at 0, each axis in mm (its true size)."""
    rows, columns = shown.image.shape
    row_mm, column_mm = shown.spacing
    return QRectF(0.0, 0.0, columns * column_mm, rows * row_mm)


def view_point(shown: Reformat, point: tuple[float, float]) -> QPointF:
    """An image point (column, row) of ``shown`` in its view's coordinates: mm from its top-left corner."""
    row_mm, column_mm = shown.spacing
    return QPointF(point[0] * column_mm, point[1] * row_mm)


def image_point(shown: Reformat, at: QPointF, *, keep: bool = True) -> tuple[float, float]:
    """A point of ``shown``'s view (mm) as an image point (column, row), kept on the image (``keep``): a ruler
    dragged past the edge ends at it, a crosshair dragged past it stays on the volume."""
    row_mm, column_mm = shown.spacing
    column, row = at.x() / column_mm, at.y() / row_mm
    if not keep:
        return column, row
    rows, columns = shown.image.shape
    return min(max(column, 0.0), float(columns)), min(max(row, 0.0), float(rows))


def _centre(volume: Volume) -> np.ndarray:
    """The patient point at the middle of the volume."""
    from zsmed.dicom.volume import volume_directions

    directions = volume_directions(volume)
    middle = np.asarray(volume.origin, dtype=np.float64)
    for axis, (count, spacing) in enumerate(zip(volume.voxels.shape, volume.spacing, strict=True)):
        middle = middle + (count - 1) / 2.0 * spacing * directions[axis]
    return middle


def _within(volume: Volume, point: np.ndarray) -> np.ndarray:
    """``point`` moved to the nearest place inside the volume (its voxel centres' box)."""
    from zsmed.dicom.volume import volume_directions

    directions = volume_directions(volume)
    offset = (point - np.asarray(volume.origin)) @ directions.T / np.asarray(volume.spacing)
    kept = np.clip(offset, 0.0, np.asarray(volume.voxels.shape) - 1)
    return np.asarray(volume.origin) + (kept * np.asarray(volume.spacing)) @ directions


def _slice_through(volume: Volume, plane: Plane, point: np.ndarray) -> int:
    """The slice of ``plane`` nearest ``point`` (patient mm), kept within the plane's slices."""
    count = plane_count(volume, plane)
    first, second = reformat_plane(volume, plane, 0), reformat_plane(volume, plane, min(1, count - 1))
    step = np.asarray(second.position) - np.asarray(first.position)
    length = float(step @ step)
    if length == 0.0:
        return 0
    return int(min(max(round(float((point - np.asarray(first.position)) @ step) / length), 0), count - 1))


__all__ = ["NO_TOOLS", "PANE_NAMES", "PLANE_COLOURS", "MprPanes", "PaneTools", "image_point", "mm_rect", "view_point"]
