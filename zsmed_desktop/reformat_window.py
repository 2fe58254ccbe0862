"""The series open in the main viewer as axial, coronal and sagittal slices (multiplanar reformats) and as
thick slabs (MIP for vessels and nodules, MinIP for airways, mean), in a window of its own, as every PACS
viewer offers.

The volume is read in the app's worker (``workers.start_job``) through the contained decoder, with its
progress in the window and a Cancel button; a series that cannot be reformatted (one image, slices of
several planes, a missing slice …) says why in the window. Pixels are shown at their true size in mm: a
coronal of a CT with 5 mm slices is as tall as the anatomy, not squashed into a strip.

Mouse and keys, as in the main viewer: wheel or arrow keys = next / previous slice (Home / End: the first /
last), right drag = window / level, 1–9 = the window presets, 0 = automatic window, Ctrl+wheel = zoom,
left drag = pan, double-click = fit, M = measure on / off (a left drag then draws a ruler instead of
panning; a press on a ruler's end drags that end), E = region of interest on / off (a left drag draws an
ellipse: its area in mm², mean ± SD, min and max, HU on CT; a drag inside one moves it), N = angle on / off
(a left drag from the vertex draws the first arm, a click places the second end; a press on an angle's
point drags it), Delete = remove the rulers, regions and angles on the slice shown, Esc = remove them and
stop measuring (with an angle's second arm still to place, only that angle goes), P = play / stop cine
through the plane's slices (looping; a slice chosen, or Esc, stops it), O = the Oblique tool (a
left drag draws a line along a structure; the window then shows the plane through that line square to the
image it was drawn on, and its parallel slices: an oblique; drawn on an oblique, a double oblique; the
Oblique button goes back to it from another plane), Ctrl+arrows = tilt the plane shown 5° (Ctrl+Shift: 1°)
about the middle of the view (Up tips its top away from the reader, Right swings its right side away): an
oblique plane, as PACS tilt a reformat. C = the Curved tool (clicks place the points of a path along a
structure, a double-click or Enter ends it, Esc drops a path begun): the surface through the path, swept square
to the image it was drawn on, unrolled into one image whose columns are mm along the path (a ruler across it
measures a vessel's length); it lies on no plane, so it has no slices, slab or reference lines, and Save… keeps
it as a picture of the study (a Secondary Capture, ``write_curved_capture``), not as CT / MR images.
3 planes = axial, coronal and sagittal side by side through one point
(``mpr_panes``): the image read follows its crosshair (``crosshair_moved``), a double-click shows one alone;
M, E and N measure on any pane as on one plane (a left drag then draws on that pane instead of moving the
crosshair), Delete removing the marks of the pane used last.

Save… (Ctrl+S) saves the image shown, or the whole plane every so many mm, as a new CT / MR series of the
study for the PACS (``zsmed.report.reformat_images``): in the worker, with progress and Cancel; the rulers
regions and angles drawn on an image saved go with it as a measurements SR on that image. The line that says what
came of it is in the window's status bar and the main window's Jobs tab. Ctrl+C copies the reformat as shown,
without the series' title (it names the patient), for a slide or a teaching file.

Rulers, regions and angles measure in the patient, in mm: each axis by the reformat's own pixel spacing, so
on the coronal of a CT of 2.5 mm slices a ruler four rows tall is 10 mm whatever the in-plane pixels are (and
an angle is the patient's, not the one the stretched pixels make: a kyphosis on a sagittal); a region's values
are the reformat's (a slab's MIP, mean or MinIP values on a slab). A mark belongs to the
image it was drawn on: it is kept per plane, slice and slab (a MIP through 10 mm is another image than
its centre slice) and shown on that image only, in whichever layout shows it (a ruler drawn on the coronal
pane at slice 40 is on the coronal shown alone at slice 40, and the other way round); scrolling away (or
moving the crosshair off its slice) hides it, scrolling back shows it again, and another series removes them
all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QGuiApplication,
    QIcon,
    QImage,
    QKeyEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QStackedWidget,
    QStatusBar,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from zsmed.dicom.display import CT_PRESETS, auto_window, region_statistics
from zsmed.dicom.geometry import ImagePlane, angle_degrees, ruler_length
from zsmed.dicom.volume import (
    PLANES,
    SLAB_MODES,
    AnyPlane,
    Curved,
    Oblique,
    Plane,
    Reformat,
    ReformatError,
    SlabMode,
    SliceDecoder,
    Volume,
    curved_through,
    load_volume_job,
    oblique_through,
    plane_count,
    plane_spacing,
    plane_word,
    reformat,
    reformat_plane,
    tilted,
    windowed,
)
from zsmed.progress import Progress
from zsmed.report.reformat_images import ReformatSeries, every_mm, write_reformat_series_job
from zsmed_desktop import theme
from zsmed_desktop.image_view import (
    ImageMouse,
    ImageViewBox,
    add_cursor_item,
    add_reference_item,
    image_view,
    place_texts,
    row_under_image,
    shadowed,
)
from zsmed_desktop.mpr_panes import PANE_NAMES, MprPanes, PaneTools, image_point, mm_rect, view_point
from zsmed_desktop.ruler_marks import (
    Angle,
    Mark,
    Ruler,
    angle_spots,
    angle_text,
    ellipse_outline,
    inside_ellipse,
    is_click,
    moved_within,
    nearest_point,
    place_in_turn,
    place_mark_label,
    ruler_spots,
    set_marking_cursor,
)
from zsmed_desktop.viewer import AngleMeasurement, RegionOfInterest, roi_text
from zsmed_desktop.workers import start_job

PLANE_SHORT: dict[Plane, str] = {"axial": "Ax", "coronal": "Cor", "sagittal": "Sag"}
SLAB_NAMES: dict[SlabMode, str] = {"mip": "MIP", "mean": "Mean", "minip": "MinIP"}
SLAB_TIPS: dict[SlabMode, str] = {
    "mip": "Maximum intensity projection: the brightest value through the slab (vessels, nodules, bone)",
    "mean": "The mean through the slab: a thicker slice, with less noise",
    "minip": "Minimum intensity projection: the darkest value through the slab (airways, emphysema)",
}
VIEWER_WINDOW = "viewer"  # the window the main viewer had when the reformat was opened
# the main viewer's colours (its corner texts and orientation letters), so both windows read alike
_TEXT_STYLE = "color: #d9d9d9; background: transparent; font-size: 12px;"
_EDGE_STYLE = "color: #e6d38a; background: transparent; font-size: 14px; font-weight: bold;"

_MESSAGE_STYLE = "color: #e8c36a; background: transparent; font-size: 13px;"
_MAX_SLAB_MM = 500.0
TILT_DEGREES = 5.0  # Ctrl+arrow turns the plane this much (Ctrl+Shift+arrow: 1 degree)
CINE_FPS = 10.0  # the slices a second P plays through the plane (the viewer's rate for a file that gives none)
MEASURING_TEXT = "Measuring: left drag (M: stop)"  # the bottom-right corner while measuring, as the viewer's
REGION_TEXT = "Region of interest: left drag (E: stop)"
ANGLE_TEXT = "Angle: drag the first arm, then click the second (N: stop)"
OBLIQUE_TEXT = "Oblique: drag a line along the structure (O: stop)"
CURVED_TEXT = "Curved: click along the structure, double-click or Enter to end (C: stop)"
Tool = str  # what a left drag draws: "" (nothing: it pans), "measure", "region", "angle", "oblique" or "curved"
_TOOL_TEXTS = {"measure": MEASURING_TEXT, "region": REGION_TEXT, "angle": ANGLE_TEXT,  # the bottom-right corner
               "oblique": OBLIQUE_TEXT, "curved": CURVED_TEXT}
_ONE_PLANE_TOOLS = ("oblique", "curved")  # drawn on one plane shown alone; not on the three planes' panes
_ON_THE_PANES = ", on any pane"  # the tool's text in the status bar, on the three planes (no corner text there)


MarkT = TypeVar("MarkT", bound=Mark)


class Region(Mark):
    """An elliptical region of interest inscribed in the rectangle with opposite corners ``start`` and
    ``end`` (column, row of the reformat image)."""


@dataclass(frozen=True)
class RulerMeasurement:
    """One ruler on the reformat as the reader sees it: its ends in the reformat image's pixels (column,
    row), its length in the patient (each axis by the reformat's own spacing) and the text next to it."""

    start: tuple[float, float]
    end: tuple[float, float]
    length_mm: float
    text: str


class _ImageKey(NamedTuple):
    """The image a ruler was drawn on, the only one it is shown on: the plane, the slice (a slab's centre)
    and the slab (how it combines its slices, and how many; None for one slice)."""

    plane: AnyPlane
    slice_index: int
    slab: tuple[SlabMode, int] | None


def image_key(shown: Reformat) -> _ImageKey:
    """The image ``shown`` is, as its marks are kept: its plane, slice and slab."""
    return _ImageKey(shown.plane, shown.index, (shown.mode, shown.slab_slices) if shown.slab_slices > 1 else None)


@dataclass(frozen=True)
class _Surface:
    """An image on the screen that the reader draws marks on: the one plane shown alone, or one pane of the
    three planes. Every mark function takes the surface it acts on, so a ruler, a region or an angle is drawn,
    held and measured alike on both; the marks of its image are drawn in ``box`` (``view``'s), their labels
    kept inside ``view`` and off its ``texts``."""

    view: pg.GraphicsView
    box: pg.ViewBox
    shown: Reformat
    texts: tuple[QLabel, ...]

    @property
    def key(self) -> _ImageKey:
        return image_key(self.shown)


def contained_decoder() -> SliceDecoder:
    """The app's contained decoder (a crashing codec cannot take the app down), as the viewer decodes."""
    from zsmed.dicom.safe import shared_decoder

    decoder = shared_decoder()
    return lambda path: decoder.stored_pixels(path)


def location_text(shown: Reformat) -> str:
    """Where the slice is along its patient axis, as PACS letter it: 'H 105.5 mm', 'R 12.0 mm'; an oblique's,
    from the line it was drawn through: 'H 4.0 mm from the line' (0: 'through the line')."""
    negative, positive = shown.location_letters
    letter = positive if shown.location_mm >= 0 else negative
    if isinstance(shown.plane, Curved):
        return f"path {shown.plane.length_mm:.1f} mm"
    if isinstance(shown.plane, Oblique):
        if abs(shown.location_mm) < 0.05:
            return "through the line"
        return f"{letter} {abs(shown.location_mm):.1f} mm from the line"
    return f"{letter} {abs(shown.location_mm):.1f} mm"


def plane_name(plane: AnyPlane) -> str:
    """The plane as the window names it: "Coronal"; an oblique one as the plane it is turned as: "Oblique
    coronal"."""
    if isinstance(plane, Curved):
        return "Curved"
    if isinstance(plane, Oblique):
        return f"Oblique {plane.nearest}"
    return PANE_NAMES[plane]


def _shadowed(label: QLabel, style: str) -> QLabel:
    """A plain-text label drawn on the image in ``style``, readable on white as on black (as the viewer's are)."""
    label.setStyleSheet(style)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return shadowed(label)


class ReformatWindow(QWidget):
    """Axial / coronal / sagittal slices and slabs of one series, at true scale."""

    closed = Signal()
    loaded = Signal()  # a volume is ready (or could not be read: see ``message()``)
    slice_shown = Signal()  # another plane, slice or slab is on the screen: the reference lines follow
    # Shift+click on the image: the point (column, row of the reformat) to find in the image read (3D cursor)
    locate_requested = Signal(object)
    # a save for the PACS ended: its line, the folder written (None: nothing was), whether the line is a warning
    saved = Signal(str, object, bool, object)  # its line, the folder, a warning?, the files written (for the PACS)
    crosshair_moved = Signal(object)  # the three planes' crosshair moved by the reader: the patient point (mm)

    def __init__(self, parent: QWidget | None = None, *, decode: Callable[[], SliceDecoder] = contained_decoder,
                 reader: Callable[[], str] = lambda: "", icon: Callable[[str], QIcon] = theme.icon) -> None:
        """``decode``: makes the function that decodes a file's stored values (default: the app's
        contained decoder); ``reader``: who saves the reformats (the site's reader); ``icon``: the app's icon
        for a qtawesome name (the tools' buttons show the icons the main window's menu has)."""
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("zsmed — reformat")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._decode = decode
        self._reader = reader
        self._saver: Any = None  # the worker saving reformats for the PACS
        self._paths: tuple[Path, ...] = ()
        self._title = ""
        self._volume: Volume | None = None
        self._worker: Any = None
        self._reading = 0  # which reading the worker's reports are for: a superseded one's are dropped
        self._cancel_asked = False  # the reading is stopping: asked again, the series is read afresh
        self._plane: AnyPlane = "coronal"
        self._oblique: Oblique | None = None  # the oblique plane last drawn on this volume (Oblique goes back to it)
        self._curved: Curved | None = None  # the curved reformat last drawn on this volume (Curved goes back to it)
        self._path: list[tuple[float, float]] = []  # the points clicked so far for a curved reformat
        self._indices: dict[AnyPlane, int] = {}  # the slice shown in each plane: switching back returns there
        self._shown: Reformat | None = None
        self._rendered = np.zeros((0, 0), dtype=np.uint8)
        self._viewer_window: tuple[float, float] | None = None
        self._window: tuple[float, float] = (0.0, 1.0)
        self._window_name = ""
        self._auto: tuple[float, float] = (0.0, 1.0)
        self._drag_start: tuple[float, float] | None = None
        self._fitted: tuple[Any, ...] | None = None
        self._message = ""
        self._tool: Tool = ""  # what a left drag draws instead of panning
        self._marks: dict[_ImageKey, list[Mark]] = {}  # each image's rulers, regions and angles, oldest first
        self._drawing: Mark | None = None  # the mark a left drag draws (or one it holds by a point) now
        # that drag took hold of a mark drawn before: which of its points follows the mouse (1: a ruler's end,
        # made so by ``hold_by``; an angle's 0 vertex, 1 first end, 2 second end; -1 a region, moved whole)
        # and its points before
        self._held: tuple[int, tuple[tuple[float, float], ...]] | None = None
        self._open_angle: Angle | None = None  # an angle whose second arm follows the mouse, until a click
        self._cine = QTimer(self)  # P: the slices one after the other
        self._cine.timeout.connect(self._cine_tick)
        self._guide: Ruler | None = None  # the line an oblique plane is drawn through, while it is dragged

        # --- the bar: plane, slab, window --------------------------------------------------------------
        bar = QToolBar()
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.plane_group = QActionGroup(self)
        self.plane_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)  # none on an oblique
        self.plane_actions: dict[Plane, QAction] = {}
        for plane in PLANES:
            action = QAction(PLANE_SHORT[plane], self)  # as PACS label them: the bar keeps within the window
            action.setCheckable(True)
            action.setToolTip(f"{PANE_NAMES[plane]} slices of the series, as the patient lies")
            action.triggered.connect(lambda _checked=False, p=plane: self.set_plane(p))
            self.plane_group.addAction(action)
            bar.addAction(action)
            self.plane_actions[plane] = action
        self.plane_actions["coronal"].setChecked(True)
        self.oblique_action = QAction("Oblique", self)
        self.oblique_action.setCheckable(True)
        self.oblique_action.setToolTip("Oblique (O): drag a line along a structure (a vessel, a disc, a bone's axis) "
                                       "on any plane; the reformat then shows the plane through that line, square to "
                                       "the image it was drawn on, and its parallel slices (drawn again on the "
                                       "oblique: a double oblique). Here again: back to the last oblique drawn. "
                                       "Ctrl+arrows tilt the plane shown 5° (Ctrl+Shift: 1°) about the middle "
                                       "of the view")
        self.oblique_action.triggered.connect(self._oblique_clicked)
        bar.addAction(self.oblique_action)
        self.curved_action = QAction("Curved", self)
        self.curved_action.setCheckable(True)
        self.curved_action.setToolTip("Curved (C): click points along a vessel, the mandible or the spine on any "
                                      "plane, double-click or Enter to end; the reformat then shows the surface "
                                      "through that path, unrolled: a ruler across it measures along the path. "
                                      "Here again: back to the last curved reformat")
        self.curved_action.triggered.connect(self._curved_clicked)
        bar.addAction(self.curved_action)
        self.three_action = QAction("3 planes", self)
        self.three_action.setCheckable(True)
        self.three_action.setToolTip("Axial, coronal and sagittal side by side through one point (the crosshair): "
                                     "a left press or drag in one moves it (with Measure, Region or Angle on, it "
                                     "draws there), the wheel steps that plane, a double-click shows that plane "
                                     "alone")
        self.three_action.triggered.connect(self.set_three_planes)
        bar.addAction(self.three_action)
        bar.addSeparator()
        self.measure_action = QAction("Measure", self)
        self.measure_action.setCheckable(True)
        self.measure_action.setToolTip("Measure (M): a left-button drag draws a ruler, in mm in the patient "
                                       "(a drag on a ruler's end moves it); Delete removes the rulers on this "
                                       "slice, Esc also stops measuring")
        self.measure_action.triggered.connect(self.set_measuring)
        bar.addAction(self.measure_action)
        self.region_action = QAction("Region", self)
        self.region_action.setCheckable(True)
        self.region_action.setToolTip("Region of interest (E): a left-button drag draws an ellipse with its area in "
                                      "mm², mean ± SD, min and max (HU on CT; a slab's values on a slab); a drag "
                                      "inside one moves it")
        self.region_action.triggered.connect(self.set_region_mode)
        bar.addAction(self.region_action)
        self.angle_action = QAction("Angle", self)
        self.angle_action.setCheckable(True)
        self.angle_action.setToolTip("Angle (N): a left-button drag from the vertex draws the first arm, a click "
                                     "places the second (degrees in the patient: a kyphosis on a sagittal)")
        self.angle_action.triggered.connect(self.set_angle_mode)
        bar.addAction(self.angle_action)
        self.save_action = QAction("Save…", self)
        self.save_action.setShortcut("Ctrl+S")
        self.save_action.setToolTip("Save… for the PACS (Ctrl+S): this image, or the whole plane every so many mm, "
                                    "as a new CT / MR series of the study (a curved reformat: as a picture of the "
                                    "study, a Secondary Capture)")
        self.save_action.triggered.connect(self.ask_and_save)
        bar.addAction(self.save_action)
        # the tools as the PACS draw them, a ruler, an ellipse, an angle, and Save as a disk, named in their
        # tooltips: in words the bar was wider than the window's minimum
        self._icon_names = {self.measure_action: "mdi6.ruler", self.region_action: "mdi6.ellipse-outline",
                            self.angle_action: "mdi6.angle-acute", self.save_action: "mdi6.content-save-outline",
                            self.curved_action: "mdi6.vector-polyline", self.three_action: "mdi6.view-column-outline"}
        for action in self._icon_names:
            button = bar.widgetForAction(action)
            if isinstance(button, QToolButton):
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)  # words where no icon is drawn
        self.set_icons(icon)
        # Ctrl+C, off the bar (its width is spent): the picture for a slide or a teaching file
        self.copy_action = QAction("Copy picture", self)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setToolTip("Copy the reformat as shown, without the patient's name (Ctrl+C)")
        self.copy_action.triggered.connect(self.copy_picture)
        self.addAction(self.copy_action)
        bar.addSeparator()
        slab_tip = "Slab thickness: the MIP, mean or MinIP through the slices within it (off: one slice)"
        slab_label = QLabel("Slab")
        slab_label.setToolTip(slab_tip)
        bar.addWidget(slab_label)
        self.slab_box = QDoubleSpinBox()
        self.slab_box.setRange(0.0, _MAX_SLAB_MM)
        self.slab_box.setDecimals(1)
        self.slab_box.setSuffix(" mm")
        self.slab_box.setSpecialValueText("off")
        self.slab_box.setToolTip(slab_tip)
        self.slab_box.setKeyboardTracking(False)  # typing "15" does not compute a 1 mm slab on the way
        self.slab_box.setFixedWidth(88)  # "500.0 mm" whole; its own size hint leaves room for more digits
        self.slab_box.valueChanged.connect(lambda *_: self._slab_changed())
        bar.addWidget(self.slab_box)
        self.mode_box = QComboBox()
        for mode in SLAB_MODES:
            self.mode_box.addItem(SLAB_NAMES[mode], mode)
            self.mode_box.setItemData(self.mode_box.count() - 1, SLAB_TIPS[mode], Qt.ItemDataRole.ToolTipRole)
        self.mode_box.setToolTip("How the slab's slices are combined: MIP (brightest), Mean, MinIP (darkest)")
        self.mode_box.currentIndexChanged.connect(lambda *_: self._slab_changed())
        bar.addWidget(self.mode_box)
        bar.addSeparator()
        window_tip = "Window / level: a preset (keys 1–9, 0 automatic); a right-button drag adjusts it"
        # radiology's short name: with "Window" in words and Measure the bar was wider than the window's minimum
        window_label = QLabel("W/L")
        window_label.setToolTip(window_tip)
        bar.addWidget(window_label)
        self.window_box = QComboBox()
        self.window_box.setToolTip(window_tip)
        self.window_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.window_box.activated.connect(lambda k: self.apply_preset(str(self.window_box.itemData(k))))
        bar.addWidget(self.window_box)
        self.toolbar = bar

        # --- the image: mm on both axes with the aspect locked (true scale), the viewer's mouse ------------
        self.vb = ImageViewBox(self, ImageMouse(
            step=self.step, double_click=self._double_click, locate=self._locate, drag_window=self.drag_window,
            marking=self.is_marking,
            drag_mark=lambda start, finish, down, now: self._drag_mark(self._single_surface(), start, finish, down,
                                                                       now),
            click=lambda at: self._click(self._single_surface(), at)))
        self.view, self.image_item = image_view(self.vb)
        self._reference: tuple[tuple[float, float], tuple[float, float]] | None = None  # image pixels
        self._reference_item = add_reference_item(self.vb)  # where the main viewer's slice cuts this plane
        self._cursor: tuple[tuple[float, float], AnyPlane, int] | None = None  # the 3D cursor: point, its slice
        self._cursor_item = add_cursor_item(self.vb)
        # the labels keep inside the view as it zooms
        self.vb.sigRangeChanged.connect(lambda *_: self._place_marks(self._single_surface()))
        self.view.scene().sigMouseMoved.connect(
            lambda scene_pos: self._hover(self._single_surface(), self.vb.mapSceneToView(scene_pos)))
        self.view.installEventFilter(self)
        # the patient's directions at the middle of each edge (l, r, t, b), and the facts in the corners
        self._labels = {name: _shadowed(QLabel(self.view), _EDGE_STYLE if len(name) == 1 else _TEXT_STYLE)
                        for name in ("l", "r", "t", "b", "tr", "bl", "br")}
        for name, label in self._labels.items():
            if name in ("tr", "br"):
                label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self._message_label = _shadowed(QLabel(self.view), _MESSAGE_STYLE)
        self._message_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message_label.setWordWrap(True)
        self._message_label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, False)  # its tooltip

        # --- the slices of the plane, and the reading's progress -----------------------------------------
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("The slices of this plane (wheel, arrow keys)")
        self.slider.valueChanged.connect(self.go_to)
        self.slider_label = QLabel("")
        self.slider_label.setMinimumWidth(130)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop reading the series (or saving the reformats)")
        self.cancel_button.clicked.connect(self._cancel_running)
        self.status_bar = QStatusBar()
        self.status_bar.setSizeGripEnabled(False)
        self.last_saved = ""  # the line of the last save (the status bar's shows for a while only)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(bar)
        # the measuring tools on the panes: the same functions as on one plane, on the pane's surface
        self.panes = MprPanes(self.drag_window, PaneTools(
            marking=self.is_marking,
            drag_mark=lambda plane, start, finish, down, now: self._drag_mark(self._pane_surface(plane), start,
                                                                              finish, down, now),
            click=lambda plane, at: self._click(self._pane_surface(plane), at),
            hover=lambda plane, at: self._hover(self._pane_surface(plane), at),
            place=lambda plane: self._place_marks(self._pane_surface(plane))))
        self.panes.plane_chosen.connect(lambda plane: self._show_alone(plane))
        self.panes.images_shown.connect(self._show_marks)
        self.panes.point_moved.connect(self.crosshair_moved)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.panes)
        layout.addWidget(self.stack, 1)
        self._slider_row = row_under_image(self.slider, self.slider_label, bottom=4)
        layout.addWidget(self._slider_row)
        self._progress_row = row_under_image(self.progress, self.cancel_button, bottom=4)
        layout.addWidget(self._progress_row)
        self._progress_row.hide()
        layout.addWidget(self.status_bar)
        self._update_controls()
        self._show_message("No series")
        self.setMinimumWidth(800)  # the bar whole (Save… included), the viewer's window named in it included
        self.resize(840, 900)

    def set_icons(self, icon: Callable[[str], QIcon]) -> None:
        """The tools' icons, drawn by ``icon`` (again when the theme changes)."""
        for action, name in self._icon_names.items():
            action.setIcon(icon(name))

    # --- the series -----------------------------------------------------------------------------------
    def show_series(self, paths: Sequence[Path], title: str = "",
                    window: tuple[float, float] | None = None) -> None:
        """Reformat ``paths`` (one series), windowed as ``window`` (centre, width: the main viewer's now)
        when given. The series shown already (or being read) is kept as it is, only its window follows."""
        files = tuple(Path(p) for p in paths)
        self._title = title
        self.setWindowTitle(f"zsmed — reformat: {title}" if title else "zsmed — reformat")
        self._viewer_window = window
        if files == self._paths and (self._volume is not None or (self.is_loading() and not self._cancel_asked)):
            if self._volume is not None and window is not None:
                self._fill_window_box()
                self.apply_preset(VIEWER_WINDOW)
            return
        self.cancel_loading()
        self._paths = files
        self._volume, self._shown = None, None
        self.panes.set_volume(None)
        self._remove_all_marks()  # they measured the series before
        self._indices.clear()
        self._fitted = None
        self.window_box.clear()  # the presets are the next volume's (CT or not, its file's windows)
        self.image_item.clear()
        self._rendered = np.zeros((0, 0), dtype=np.uint8)
        self._update_texts()
        self._show_message(f"Reading {len(files)} image{'' if len(files) == 1 else 's'}…")
        self.progress.setRange(0, 0)
        self._progress_row.show()
        self.cancel_button.setEnabled(True)
        decode = self._decode()
        self._cancel_asked = False
        self._reading += 1
        reading = self._reading

        def current(report: Callable[..., None]) -> Callable[..., None]:
            # the series before, cancelled as this one starts, still reports its end: not to this one
            return lambda *args: report(*args) if reading == self._reading else None

        self._worker = start_job(lambda: load_volume_job(files, decode=decode),
                                 on_progress=current(self._on_progress), on_done=current(self._on_loaded),
                                 on_error=current(self._on_failed), on_cancelled=current(self._on_cancelled),
                                 owner=self)
        self._update_controls()

    def volume(self) -> Volume | None:
        return self._volume

    def is_loading(self) -> bool:
        return self._worker is not None

    def cancel_loading(self) -> None:
        """Stop reading the series (at its next slice)."""
        if self._worker is not None:
            self._cancel_asked = True
            self.cancel_button.setEnabled(False)
            self._worker.quit()

    def message(self) -> str:
        """What the window says instead of an image ('' while one is shown)."""
        return self._message

    def _cancel_running(self) -> None:
        if self._saver is not None:
            self.cancel_button.setEnabled(False)
            self._saver.quit()
        else:
            self.cancel_loading()

    # --- a picture for a slide ---------------------------------------------------------------------------
    def picture(self) -> QImage | None:
        """The reformat as shown (its window, zoom, marks, orientation letters, slice and window texts) without
        the series' title, which names the patient; None with nothing shown."""
        if self._shown is None:
            return None
        if self.is_three_planes():  # the three panes: their names and slices, no title
            return self.panes.grab().toImage()
        title = self._labels["tr"]
        shown = title.isVisible()
        title.hide()
        try:
            return self.view.grab().toImage()
        finally:
            title.setVisible(shown)

    def copy_picture(self) -> bool:
        """Ctrl+C: the picture on the clipboard, to paste into a slide or a report; the status bar says so."""
        image = self.picture()
        clipboard = QGuiApplication.clipboard()
        if image is None or clipboard is None:
            self.status_bar.showMessage("Nothing to copy: the series is not reformatted yet", 8000)
            return False
        clipboard.setImage(image)
        self.status_bar.showMessage("Copied the reformat as a picture, without the patient's name: paste it into a "
                                    "slide or a report", 8000)
        return True

    # --- saving for the PACS -------------------------------------------------------------------------------
    def is_saving(self) -> bool:
        return self._saver is not None

    def ask_and_save(self) -> None:
        """Ctrl+S: the dialog (this image or the whole plane every so many mm; where), then the save."""
        from zsmed_desktop.reformat_save_dialog import ReformatSaveDialog

        volume, shown = self._volume, self._shown
        if volume is None or shown is None or self.is_saving():
            return
        if isinstance(self._plane, Curved):
            self.save_curved()
            return
        spacing = plane_spacing(volume, self._plane)
        slab = f"{shown.slab_mm:.3g} mm {SLAB_NAMES[shown.mode]}" if shown.slab_slices > 1 else ""
        dialog = ReformatSaveDialog(plane_name(self._plane), slab, spacing, max(shown.slab_mm, spacing),
                                    lambda step: len(every_mm(volume, self._plane, step, self.index())), self)
        if dialog.exec():
            self.save_for_pacs(dialog.step_mm(), dialog.out_dir())

    def save_curved(self, out_dir: Path | None = None) -> Path | None:
        """The curved reformat shown, as shown (its window), saved as a picture of the study (a Secondary
        Capture: it lies on no plane) next to the series or in ``out_dir``; the line that says so goes where a
        save's does. None, with the reason in that line, where it could not be written."""
        from zsmed.errors import ZsmedError
        from zsmed.report.reformat_images import write_curved_capture

        volume, shown = self._volume, self._shown
        if volume is None or shown is None or not isinstance(shown.plane, Curved):
            return None
        try:
            written = write_curved_capture(volume, shown, self._rendered, reader=self._reader(), out_dir=out_dir)
        except (ZsmedError, OSError) as exc:
            reason = " ".join(str(getattr(exc, "reason", None) or exc).split())
            self._finished_saving(f"The curved reformat was not saved: {self._named(reason)}", None, warning=True)
            return None
        self._finished_saving(f"The curved reformat saved as a picture of the study (it lies on no plane) in "
                              f"{written.parent.name}", written.parent, files=[written])
        return written

    def save_for_pacs(self, step_mm: float | None, out_dir: Path | None = None) -> bool:
        """Save the image shown (``step_mm`` None) or the plane's slices ``step_mm`` apart, lined up on the one
        shown, at the slab and window shown, as a new series of the study next to it (``out_dir`` None) or in
        ``out_dir``, in the worker; False where there is nothing to save or a save is running."""
        volume, shown = self._volume, self._shown
        if volume is None or shown is None or self.is_saving():
            return False
        indices = (self.index(),) if step_mm is None else every_mm(volume, self._plane, step_mm, self.index())
        series = ReformatSeries(self._plane, indices, shown.slab_mm if shown.slab_slices > 1 else 0.0, shown.mode,
                                self._window, self._reader())
        where = "next to the study" if out_dir is None else f"in {out_dir.name or out_dir}"
        self.progress.setRange(0, len(indices))
        self.progress.setValue(0)
        self._progress_row.show()
        self.cancel_button.setEnabled(True)
        self.save_action.setEnabled(False)

        def done(written: list[Path]) -> None:
            count = len(written)
            line = (f"{count} {series.plane} image{'' if count == 1 else 's'} saved as a new series "
                    f"({written[0].parent.name}) {where}")
            measured, problem = self._save_marks(volume, series, written)
            if measured:
                line += f", with {measured} measurement{'' if measured == 1 else 's'} (DICOM SR)"
            if problem:
                line += f"; the measurements were not saved: {problem}"
            self._finished_saving(line, written[0].parent, warning=bool(problem), files=written)

        def cancelled() -> None:
            self._finished_saving(f"Saving the {plane_word(self._plane)} images was cancelled; those written are "
                                  "kept, each whole", None, warning=True)

        self._saver = start_job(lambda: write_reformat_series_job(volume, series, out_dir),
                                on_progress=self._on_progress, on_done=done,
                                on_error=lambda message: self._finished_saving(
                                    f"The reformat was not saved: {self._named(message)}", None, warning=True),
                                on_cancelled=cancelled, owner=self)
        return True

    def _save_marks(self, volume: Volume, series: ReformatSeries, written: list[Path]) -> tuple[int, str]:
        """The rulers, regions and angles drawn on the images just saved, as a measurements SR on each saved image that
        has any (next to it), so the PACS shows them on the image they were drawn on; returns how many marks
        were saved and what went wrong ('' for nothing). The reports written join ``written``."""
        from zsmed.errors import ZsmedError
        from zsmed.report.measurements import AngleMark, PixelSpacing, RegionMark, RulerMark, write_measurements_sr

        saved = 0
        for path, index in zip(list(written), series.indices, strict=True):
            image = reformat(volume, series.plane, index, series.slab_mm, series.mode)
            marks = self._marks.get(image_key(image), [])
            rulers = [RulerMark(m.start, m.end, self._measurement(m, image).length_mm)
                      for m in marks if isinstance(m, Ruler)]
            regions = [RegionMark(m.start, m.end, self._region(m, image).statistics)
                       for m in marks if isinstance(m, Region)]
            angles = [AngleMark(a.first_end, a.vertex, a.second_end, a.degrees)
                      for a in (self._angle_measurement(m, image) for m in marks
                                if isinstance(m, Angle) and self._finished(m))]
            if not (rulers or regions or angles):
                continue
            try:
                written.append(write_measurements_sr(path, frame=None, rulers=rulers, regions=regions, angles=angles,
                                                     spacing=PixelSpacing(*image.spacing), reader=series.reader,
                                                     out_dir=path.parent))
            except (ZsmedError, OSError) as exc:
                return saved, " ".join(str(getattr(exc, "reason", None) or exc).split())
            saved += len(rulers) + len(regions) + len(angles)
        return saved, ""

    def _finished_saving(self, message: str, folder: Path | None, *, warning: bool = False,
                         files: Sequence[Path] = ()) -> None:
        self._saver = None
        self._progress_row.hide()
        self.last_saved = message
        self.status_bar.showMessage(message, 15_000)
        self._update_controls()
        self.saved.emit(message, folder, warning, list(files))

    def _on_progress(self, progress: Progress) -> None:
        if progress.total:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(progress.done)
        self.progress.setFormat(progress.message or "%p%")

    def _finished_loading(self) -> None:
        self._worker = None
        self._progress_row.hide()

    def _on_loaded(self, volume: Volume) -> None:
        self._finished_loading()
        self.stop_cine()
        self._volume = volume
        if self.is_three_planes():
            self.panes.set_volume(volume)
        if self._oblique is not None:  # drawn on another volume: it cuts nothing of this one
            self._indices.pop(self._oblique, None)
            self._oblique = None
        if isinstance(self._plane, Oblique):
            self._plane = self._plane.nearest
        self._curved = None
        if isinstance(self._plane, Curved):
            self._plane = "coronal"
        lo, hi = auto_window(volume.voxels)  # as the viewer's automatic window, over the whole volume
        self._auto = ((lo + hi) / 2.0, max(hi - lo, 1.0))
        self._fill_window_box()
        # the main viewer's window as it was at opening, else the file's own, else one fitted to the values
        first = VIEWER_WINDOW if self._viewer_window is not None else "file 1" if volume.windows else "auto"
        self.apply_preset(first, show=False)
        self._message = ""
        self._message_label.hide()
        self._update_controls()
        self._show()
        self.loaded.emit()

    def _named(self, message: str) -> str:
        """A line that starts with one of the series' files: its name instead (its folder is in a tooltip)."""
        for path in self._paths:
            if message.startswith(f"{path}:"):
                return path.name + message[len(str(path)):]
        return message

    def _on_failed(self, message: str) -> None:
        self._finished_loading()
        self._show_message(f"This series cannot be reformatted.\n{self._named(message)}", tooltip=message)
        self._update_controls()
        self.loaded.emit()

    def _on_cancelled(self) -> None:
        self._finished_loading()
        self._paths = ()  # asked again, the series is read again
        self._show_message("Reading the series was cancelled.")
        self._update_controls()
        self.loaded.emit()

    # --- plane, slice, slab -----------------------------------------------------------------------------
    def plane(self) -> AnyPlane:
        return self._plane

    def set_plane(self, plane: AnyPlane) -> None:
        """Show ``plane``: a standard one by name, or an oblique one (``oblique_through``; it is kept, and the
        Oblique button goes back to it)."""
        if not isinstance(plane, Oblique | Curved) and plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r} (one of {', '.join(PLANES)})")
        if self.is_three_planes():
            self._leave_three_planes()
        if self.is_oblique_mode() or self.is_curved_mode():
            self._set_tool("")  # a plane chosen: the line for an oblique, the path for a curve, not drawn
        self.stop_cine()
        if isinstance(plane, Oblique):
            self._oblique = plane
            self._indices.setdefault(plane, plane.through)
        if isinstance(plane, Curved):
            self._curved = plane
        self._plane = plane
        self._update_controls()
        self._show()

    # --- three planes --------------------------------------------------------------------------------------
    def is_three_planes(self) -> bool:
        return self.stack.currentWidget() is self.panes

    def set_three_planes(self, on: bool) -> None:
        """Axial, coronal and sagittal side by side (``MprPanes``) through the 3D cursor's point where it is on
        the slice shown, else the middle of that slice; off: the plane shown before, alone."""
        volume = self._volume
        if not on or volume is None:
            if self.is_three_planes():
                self._leave_three_planes()
                self._update_controls()
            self.three_action.setChecked(False)
            return
        if self._tool in _ONE_PLANE_TOOLS:
            self._set_tool("")  # the measuring tools stay on: they draw on the panes too
        self.stop_cine()
        here, cursor = self.current_plane(), self.cursor_point()
        point = None
        if here is not None:
            rows, columns = here.size
            point = np.asarray(here.patient_point(cursor if cursor is not None else (columns / 2.0, rows / 2.0)))
        self.stack.setCurrentWidget(self.panes)
        self.panes.set_window(*self._window)
        self.panes.set_slab(self.slab_box.value(), self.slab_mode())
        self.panes.set_volume(volume, point)  # its images shown: the marks of each on its pane
        self._update_controls()
        self._say_tool()
        self.slice_shown.emit()  # the reference line of a single plane goes from the image read

    def _leave_three_planes(self) -> None:
        self.stack.setCurrentWidget(self.view)
        self.three_action.setChecked(False)
        self._show_marks()  # the plane alone shows its image's marks, the panes' are put away
        if self.status_bar.currentMessage().endswith(_ON_THE_PANES):
            self.status_bar.clearMessage()  # the corner says it on one plane

    def _show_alone(self, plane: Plane) -> None:
        """A pane double-clicked: its plane alone, at the crosshair's slice."""
        self._indices[plane] = self.panes.index(plane)
        self.set_plane(plane)

    def oblique(self) -> Oblique | None:
        """The oblique plane last drawn on this volume; None before one is."""
        return self._oblique

    def draw_oblique(self, start: tuple[float, float], end: tuple[float, float]) -> Oblique | None:
        """The oblique plane through the line from ``start`` to ``end`` (column, row of the image shown), square
        to it, shown from the slice through the line (as the Oblique tool's drag makes it); None when no image
        is shown or the line has no length."""
        volume, here = self._volume, self.current_plane()
        if volume is None or here is None:
            if volume is not None:
                self.status_bar.showMessage("Draw an oblique's line on a plane (axial, coronal, sagittal or "
                                            "oblique)", 10_000)
            return None
        try:
            plane = oblique_through(volume, here.patient_point(start), here.patient_point(end), here.normal)
        except ReformatError as exc:
            self.status_bar.showMessage(f"No oblique plane: {exc.reason}", 10_000)
            return None
        self._indices.pop(plane, None)
        self.set_plane(plane)
        return plane

    def tilt(self, about: Literal["right", "down"], degrees: float) -> Oblique | None:
        """Turn the slice shown by ``degrees`` about its horizontal (``about`` "right") or vertical ("down") axis
        through the point at the middle of the view (``volume.tilted``): the oblique plane it becomes is shown
        from its slice through that point, the point kept in the middle of the view at the same zoom. None
        when no slice is shown."""
        volume, shown = self._volume, self._shown
        if volume is None or shown is None or self.current_plane() is None:
            return None  # three planes, or a curved reformat: no one plane to tilt
        view = self.vb.viewRect()
        around = image_point(shown, view.center(), keep=False)
        here = self.current_plane()
        assert here is not None
        point = np.asarray(here.patient_point(around))
        try:
            plane = tilted(volume, self._plane, shown.index, about, degrees, around=around)
        except ReformatError as exc:
            self.status_bar.showMessage(f"No oblique plane: {exc.reason}", 10_000)
            return None
        self._indices.pop(plane, None)
        self.set_plane(plane)
        shown_now = self._shown
        assert shown_now is not None  # the oblique just shown
        middle = view_point(shown_now, reformat_plane(volume, plane, plane.through).image_point(point))
        self.vb.setRange(rect=QRectF(middle.x() - view.width() / 2.0, middle.y() - view.height() / 2.0,
                                     view.width(), view.height()), padding=0.0)
        return plane

    def _oblique_clicked(self) -> None:
        """The Oblique button: back to the oblique drawn last where another plane is shown, else the tool that
        draws a new one (on the oblique shown: a double oblique)."""
        if self._oblique is not None and not isinstance(self._plane, Oblique) and not self.is_oblique_mode():
            self.set_plane(self._oblique)
        else:
            self.toggle_oblique_mode()

    def index(self) -> int:
        """The slice shown in the plane (the slab's centre)."""
        return self._indices.get(self._plane, 0)

    def count(self) -> int:
        """The slices of the plane shown; 0 before a volume is read."""
        return plane_count(self._volume, self._plane) if self._volume is not None else 0

    def go_to(self, index: int) -> None:
        """Show slice ``index`` of the plane (kept within its slices); the reader choosing a slice stops the
        cine."""
        self.stop_cine()
        self._go(index)

    def _go(self, index: int) -> None:
        count = self.count()
        if not count:
            return
        self._indices[self._plane] = min(max(int(index), 0), count - 1)
        self._show()

    # --- cine: through the slices of the plane, as the viewer plays a series ---------------------------
    def toggle_cine(self) -> None:
        """P: play through the plane's slices (looping, at ``CINE_FPS``), or stop (one plane shown alone)."""
        if self._cine.isActive():
            self.stop_cine()
        elif self.count() > 1 and not self.is_three_planes():
            self._cine.start(round(1000.0 / CINE_FPS))
            self._update_texts()

    def stop_cine(self) -> None:
        if self._cine.isActive():
            self._cine.stop()
            self._update_texts()

    def is_playing(self) -> bool:
        return self._cine.isActive()

    def _cine_tick(self) -> None:
        if self.count() < 2 or self._drawing is not None:  # a mark being drawn keeps its slice
            return
        self._go((self.index() + 1) % self.count())

    def step(self, steps: int) -> None:
        """``steps`` slices on; in the three-plane layout, through the plane of the pane used last."""
        if self.is_three_planes():
            self.panes.step(self.panes.active, steps)
            return
        self.go_to(self.index() + steps)

    def set_slab(self, mm: float, mode: SlabMode | None = None) -> None:
        """A slab of ``mm`` (0: one slice), its slices combined by ``mode`` ("mip", "mean", "minip")."""
        if mode is not None:
            self.mode_box.setCurrentIndex(SLAB_MODES.index(mode))
        self.slab_box.setValue(mm)

    def _slab_changed(self) -> None:
        self._show()
        if self.is_three_planes():
            self.panes.set_slab(self.slab_box.value(), self.slab_mode())

    def slab_mode(self) -> SlabMode:
        return SLAB_MODES[max(self.mode_box.currentIndex(), 0)]

    def shown(self) -> Reformat | None:
        """The reformat on the screen: its values (modality units), spacing, edges."""
        return self._shown

    def rendered_image(self) -> np.ndarray:
        """The 8-bit image on the screen (windowed)."""
        return self._rendered

    def current_plane(self) -> ImagePlane | None:
        """Where the slice shown (the slab's centre) lies in the patient; None before a volume is read, and in
        the three-plane layout (three slices, no one of them the reformat's)."""
        if self._volume is None or self._shown is None or self.is_three_planes() or isinstance(self._plane, Curved):
            return None
        return reformat_plane(self._volume, self._plane, self._shown.index)

    def planes_of_slices(self) -> list[ImagePlane]:
        """Where each slice of the plane shown lies in the patient (for the 3D cursor); none before a volume."""
        volume = self._volume
        if volume is None or isinstance(self._plane, Curved):
            return []  # a curved reformat lies on no plane: the 3D cursor does not come to it
        return [reformat_plane(volume, self._plane, k) for k in range(plane_count(volume, self._plane))]

    def show_point(self, index: int, point: tuple[float, float]) -> None:
        """The 3D cursor from the image read: slice ``index`` of the plane shown, ``point`` (column, row)
        marked on it; in the three-plane layout, the crosshair goes to that point of the patient."""
        if self.is_three_planes() and self._volume is not None:
            self.panes.set_point(np.asarray(reformat_plane(self._volume, self._plane, index).patient_point(point)))
            return
        self._cursor = (point, self._plane, index)
        self.go_to(index)

    def cursor_point(self) -> tuple[float, float] | None:
        """The 3D cursor's point on the slice shown; None where it is on another one (or none)."""
        cursor, shown = self._cursor, self._shown
        if cursor is None or shown is None or (cursor[1], cursor[2]) != (self._plane, shown.index):
            return None
        return cursor[0]

    def _locate(self, at: QPointF) -> None:
        """Shift+click: the point under the mouse, marked here and asked for in the image read."""
        shown = self._shown
        if shown is None or not self.image_rect().contains(at):
            return
        point = image_point(shown, at)
        self._cursor = (point, self._plane, shown.index)
        self._place_reference()
        self.locate_requested.emit(point)

    def set_reference_line(self, ends: tuple[tuple[float, float], tuple[float, float]] | None) -> None:
        """Draw where the main viewer's slice cuts this plane (ends in this image's pixels, column, row), or
        nothing."""
        self._reference = ends
        self._place_reference()

    def reference_line(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        return self._reference

    def _place_reference(self) -> None:
        cursor, shown = self.cursor_point(), self._shown
        if cursor is None or shown is None:
            self._cursor_item.setVisible(False)
        else:
            where = view_point(shown, cursor)
            self._cursor_item.setData([where.x()], [where.y()])
            self._cursor_item.setVisible(True)
        ends = self._reference
        if ends is None or shown is None:
            self._reference_item.setVisible(False)
            return
        first, second = view_point(shown, ends[0]), view_point(shown, ends[1])  # mm from the top-left corner
        self._reference_item.setData([first.x(), second.x()], [first.y(), second.y()])
        self._reference_item.setVisible(True)

    def image_rect(self) -> QRectF:
        """Where the image lies in the view, in mm: its true width and height."""
        return self.image_item.mapRectToParent(self.image_item.boundingRect())

    # --- window / level ---------------------------------------------------------------------------------
    def presets(self) -> list[str]:
        """The window presets in number-key order, as the main viewer's: the CT windows (HU images),
        the file's own windows ('file 1' …), then 'auto'."""
        volume = self._volume
        names = list(CT_PRESETS) if volume is not None and volume.hounsfield else []
        names += [f"file {k + 1}" for k in range(len(volume.windows) if volume is not None else 0)]
        return [*names, "auto"]

    def apply_preset(self, name: str, *, show: bool = True) -> None:
        """Window by name: 'viewer' (the main viewer's window at opening), a CT preset, 'file N', 'auto'."""
        volume = self._volume
        if volume is None:
            return
        key = name.strip().lower()
        if key == VIEWER_WINDOW and self._viewer_window is not None:
            window = self._viewer_window
        elif key in CT_PRESETS:
            window = CT_PRESETS[key]
        elif key.startswith("file ") and key[5:].isdigit() and 1 <= int(key[5:]) <= len(volume.windows):
            window = volume.windows[int(key[5:]) - 1]
        elif key == "auto":
            window = self._auto
        else:
            raise ValueError(f"unknown window preset {name!r} (one of {', '.join(self.presets())})")
        self._set_window(window, key)
        if show:
            self._render()

    def window_level(self) -> tuple[float, float]:
        """(centre, width) in use."""
        return self._window

    def set_window(self, centre: float, width: float) -> None:
        self._set_window((float(centre), max(float(width), 1.0)), "custom")
        self._render()

    def drag_window(self, start: bool, dx: float, dy: float) -> None:
        """Right-button drag, as in the main viewer: left-right changes the width, up-down the level."""
        if self._volume is None:
            return
        if start or self._drag_start is None:
            self._drag_start = self._window
        centre, width = self._drag_start
        unit = max(self._auto[1], 1.0) / 256.0  # a sweep over ~256 screen pixels spans the volume's values
        self.set_window(centre + dy * unit, max(width + dx * unit, 1.0))

    def _set_window(self, window: tuple[float, float], name: str) -> None:
        self._window, self._window_name = (float(window[0]), max(float(window[1]), 1.0)), name
        self.window_box.blockSignals(True)
        found = self.window_box.findData(name)
        if found < 0 and name == "custom":
            self.window_box.addItem("Custom (right drag)", "custom")  # short: the bar keeps within the window
            found = self.window_box.count() - 1
        self.window_box.setCurrentIndex(found)
        self.window_box.blockSignals(False)
        if self.is_three_planes():
            self.panes.set_window(*self._window)

    def _fill_window_box(self) -> None:
        self.window_box.blockSignals(True)
        self.window_box.clear()
        if self._viewer_window is not None:
            centre, width = self._viewer_window
            # its numbers are in the bottom-right corner and the tooltip: in the box they made it (and the bar)
            # wider than the window's minimum width
            self.window_box.addItem("As in the viewer", VIEWER_WINDOW)
            self.window_box.setItemData(0, f"The main viewer's window when this one was opened: W {width:.0f} "
                                           f"L {centre:.0f}", Qt.ItemDataRole.ToolTipRole)
        for number, name in enumerate(self.presets(), 1):
            if name.startswith("file "):
                text = f"From the file, {name[5:]}"
            elif name == "auto":
                text = "Automatic"
            else:
                text = name.capitalize()
            key = "0" if name == "auto" else str(number) if number <= 9 else ""
            self.window_box.addItem(f"{text} ({key})" if key else text, name)
        self.window_box.blockSignals(False)

    # --- measuring ----------------------------------------------------------------------------------------
    def is_measuring(self) -> bool:
        return self._tool == "measure"

    def set_measuring(self, on: bool) -> None:
        """Measure mode on / off: while on, a left drag draws a ruler (or drags a ruler's end) instead of
        panning."""
        self._set_tool("measure" if on else "")

    def toggle_measuring(self) -> None:
        self.set_measuring(not self.is_measuring())

    def is_region_mode(self) -> bool:
        return self._tool == "region"

    def set_region_mode(self, on: bool) -> None:
        """Region-of-interest mode on / off: while on, a left drag draws an ellipse instead of panning."""
        self._set_tool("region" if on else "")

    def toggle_region_mode(self) -> None:
        self.set_region_mode(not self.is_region_mode())

    def is_oblique_mode(self) -> bool:
        return self._tool == "oblique"

    def set_oblique_mode(self, on: bool) -> None:
        """The Oblique tool on / off: while on, a left drag draws the line an oblique plane goes through."""
        self._set_tool("oblique" if on else "")

    def toggle_oblique_mode(self) -> None:
        self.set_oblique_mode(not self.is_oblique_mode())

    def is_angle_mode(self) -> bool:
        return self._tool == "angle"

    def set_angle_mode(self, on: bool) -> None:
        """Angle mode on / off: while on, a left drag from the vertex draws the first arm, the second then
        follows the mouse until a click places its end (a press on a finished angle's point drags it)."""
        self._set_tool("angle" if on else "")

    def toggle_angle_mode(self) -> None:
        self.set_angle_mode(not self.is_angle_mode())

    def is_marking(self) -> bool:
        """A left drag draws a mark (a ruler, a region or an angle) rather than panning."""
        return bool(self._tool)

    def _set_tool(self, tool: Tool) -> None:
        if tool in _ONE_PLANE_TOOLS and self.is_three_planes():
            self._update_plane_checks()  # its button unchecked again: an oblique's line or a curve's path is
            return  # drawn on one plane shown alone (the rulers, regions and angles on the panes too)
        if self._open_angle is not None:
            self._remove_mark(self._open_angle)  # another tool (or none): the angle begun is not finished
        self._tool = tool
        self.measure_action.setChecked(tool == "measure")
        self.region_action.setChecked(tool == "region")
        self.angle_action.setChecked(tool == "angle")
        self._remove_guide()
        self._path = []
        self._drawing, self._held = None, None
        self._update_plane_checks()
        for view in (self.view, *(pane.view for pane in self.panes.panes.values())):
            set_marking_cursor(view, self.is_marking())
        self._update_texts()  # the bottom-right corner says so
        self._say_tool()

    def _say_tool(self) -> None:
        """In the three-plane layout (no corner text for it), the status bar says what a left drag does now."""
        if self.is_three_planes() and self._tool:
            self.status_bar.showMessage(_TOOL_TEXTS[self._tool] + _ON_THE_PANES, 10_000)

    def roi(self, corner_a: tuple[float, float], corner_b: tuple[float, float]) -> RegionOfInterest | None:
        """An elliptical region inscribed in the rectangle with opposite corners ``corner_a`` and ``corner_b``
        (column, row of the reformat image in use: the one shown, or the pane used last), as a left drag in the
        region mode draws it; None when no image is shown."""
        surface = self._surface()
        if surface is None:
            return None
        region = self._new_mark(Region, corner_a, surface)
        region.end = corner_b
        self._place_marks(surface)
        return self._region(region, surface.shown)

    def rois(self) -> list[RegionOfInterest]:
        """The regions of interest on the image in use (the one shown, or the pane used last), oldest first."""
        surface = self._surface()
        return [] if surface is None else [self._region(mark, surface.shown) for mark in self._marks_on(surface)
                                           if isinstance(mark, Region)]

    def _region(self, region: Region, image: Reformat) -> RegionOfInterest:
        """The region's figures on ``image``, the one it is drawn on (its values: a slab's on a slab)."""
        volume = self._volume
        assert volume is not None  # a region is on an image of the volume
        statistics = region_statistics(image.image, region.start, region.end, spacing=image.spacing,
                                       hounsfield=volume.hounsfield)
        return RegionOfInterest(region.start, region.end, statistics, roi_text(statistics))

    def _new_mark(self, kind: type[MarkT], point: tuple[float, float], surface: _Surface) -> MarkT:
        """A ruler, a region or an angle from ``point`` to itself on ``surface``'s image (a drag then moves its
        end), kept with that image whichever layout shows it."""
        mark = kind.drawn_in(surface.box, point)
        self._marks.setdefault(surface.key, []).append(mark)
        return mark

    def measure(self, start: tuple[float, float], end: tuple[float, float]) -> RulerMeasurement | None:
        """A ruler between two points (column, row) of the reformat image in use (the one shown, or the pane
        used last), as a left drag draws it; None when no image is shown."""
        surface = self._surface()
        if surface is None:
            return None
        ruler = self._new_mark(Ruler, start, surface)
        ruler.end = end
        self._place_marks(surface)
        return self._measurement(ruler, surface.shown)

    def measurements(self) -> list[RulerMeasurement]:
        """The rulers on the image in use (the one shown, or the pane used last), oldest first (those drawn on
        other slices are not on it)."""
        surface = self._surface()
        return [] if surface is None else [self._measurement(mark, surface.shown) for mark in self._marks_on(surface)
                                           if isinstance(mark, Ruler)]

    def angle(self, first_end: tuple[float, float], vertex: tuple[float, float],
              second_end: tuple[float, float]) -> AngleMeasurement | None:
        """An angle at ``vertex`` between the arms to ``first_end`` and ``second_end`` (column, row of the
        reformat image in use), as a drag and a click in the angle mode draw it; None when no image is shown
        or an arm has no length."""
        surface = self._surface()
        if surface is None or angle_degrees(first_end, vertex, second_end, surface.shown.spacing) is None:
            return None
        angle = self._new_mark(Angle, vertex, surface)
        angle.end, angle.second = first_end, second_end
        self._place_marks(surface)
        return self._angle_measurement(angle, surface.shown)

    def angles(self) -> list[AngleMeasurement]:
        """The angles on the image in use, oldest first (not one whose second end is still to be placed)."""
        surface = self._surface()
        return [] if surface is None else [self._angle_measurement(mark, surface.shown)
                                           for mark in self._marks_on(surface)
                                           if isinstance(mark, Angle) and self._finished(mark)]

    def _finished(self, mark: Mark) -> bool:
        """Whether a mark measures something yet: an angle once its second end is placed."""
        return not isinstance(mark, Angle) or (mark.second is not None and mark is not self._open_angle)

    @staticmethod
    def _degrees(angle: Angle, image: Reformat) -> float | None:
        """The angle in the patient, each axis by ``image``'s own mm (the image it is drawn on); None until
        it has two arms of some length."""
        if angle.second is None:
            return None
        return angle_degrees(angle.end, angle.start, angle.second, image.spacing)

    def _angle_measurement(self, angle: Angle, image: Reformat) -> AngleMeasurement:
        degrees = self._degrees(angle, image)
        assert angle.second is not None and degrees is not None  # a finished angle has two arms
        return AngleMeasurement(angle.end, angle.start, angle.second, degrees, angle_text(degrees))

    def clear_measurements(self) -> None:
        """Remove the rulers, regions and angles on the image in use (Delete): the one shown, or in the
        three-plane layout the pane used last; those of other slices and panes stay with them."""
        surface = self._surface()
        for mark in list(self._marks_on(surface) if surface is not None else []):
            self._remove_mark(mark)

    # --- where marks are drawn: the plane alone, or the three planes' panes ---------------------------------
    def _single_surface(self) -> _Surface | None:
        """The plane shown alone; None in the three-plane layout or with nothing shown."""
        if self._shown is None or self.is_three_planes():
            return None
        return _Surface(self.view, self.vb, self._shown, tuple(self._labels.values()))

    def _pane_surface(self, plane: Plane) -> _Surface | None:
        """``plane``'s pane of the three planes; None out of that layout or with nothing shown there."""
        pane = self.panes.panes[plane]
        if pane.shown is None or not self.is_three_planes():
            return None
        return _Surface(pane.view, pane.box, pane.shown, self.panes.texts(plane))

    def _surfaces(self) -> list[_Surface]:
        """The images on the screen now that marks are drawn on: the three panes, or the plane alone."""
        if self.is_three_planes():
            return [surface for plane in PLANES if (surface := self._pane_surface(plane)) is not None]
        single = self._single_surface()
        return [single] if single is not None else []

    def _surface(self) -> _Surface | None:
        """The image in use, which the keys and the measuring functions act on: the plane alone, or the pane used
        last (``MprPanes.active``)."""
        return self._pane_surface(self.panes.active) if self.is_three_planes() else self._single_surface()

    def _marks_on(self, surface: _Surface) -> list[Mark]:
        return self._marks.get(surface.key, [])

    def _key_of(self, mark: Mark) -> _ImageKey | None:
        """The image ``mark`` was drawn on."""
        return next((key for key, marks in self._marks.items() if any(mark is kept for kept in marks)), None)

    def _measurement(self, ruler: Ruler, image: Reformat) -> RulerMeasurement:
        """The ruler's length on ``image``, the one it is drawn on."""
        length = ruler_length(ruler.start, ruler.end, image.spacing)  # each axis by its own mm
        return RulerMeasurement(ruler.start, ruler.end, length, f"{length:.1f} mm")

    def _remove_mark(self, ruler: Mark) -> None:
        for key, rulers in list(self._marks.items()):
            if ruler in rulers:
                rulers.remove(ruler)
                if not rulers:
                    del self._marks[key]
        if ruler is self._drawing:
            self._drawing, self._held = None, None
        if ruler is self._open_angle:
            self._open_angle = None
        box = ruler.view_box()
        if box is not None:
            ruler.remove_from(box)

    def _remove_all_marks(self) -> None:
        for rulers in list(self._marks.values()):
            for ruler in list(rulers):
                self._remove_mark(ruler)
        self._marks.clear()

    def _show_marks(self) -> None:
        """Other images on the screen (a slice, a slab, a plane, the layout): each mark is drawn on the surface
        that shows its image, moved into its view (the same ruler on the coronal alone and on the coronal
        pane), every other hidden (a ruler on another slice would measure nothing here). A mark being drawn
        whose image went is left as it is, finished; an angle begun there goes."""
        surfaces = {surface.key: surface for surface in self._surfaces()}
        if self._drawing is not None and self._key_of(self._drawing) not in surfaces:
            self._drawing, self._held = None, None  # the wheel turned during a drag: the mark stays, finished
        if self._open_angle is not None and self._key_of(self._open_angle) not in surfaces:
            self._remove_mark(self._open_angle)  # an angle begun measures nothing on another image: it goes
        for key, marks in self._marks.items():
            surface = surfaces.get(key)
            for mark in marks:
                if surface is not None:
                    mark.move_to(surface.box)
                mark.line.setVisible(surface is not None)
                mark.label.setVisible(surface is not None)
        for surface in surfaces.values():
            self._place_marks(surface)

    def _drag_mark(self, surface: _Surface | None, start: bool, finish: bool, down: QPointF, now: QPointF) -> None:
        """Left drag with a tool on (view coordinates, mm) on ``surface`` (the plane alone or a pane): pressed on
        a mark's point (a ruler's end while measuring, an angle's point in the angle mode), that point follows
        the mouse; with an angle open there, the drag places its second end where it ends, as a click does
        (open on another pane, it goes); else a new ruler, region or angle's first arm from the press to the
        mouse, its figures shown as it is drawn. A drag begun off the image draws nothing; a jittery click
        leaves no mark of no size behind."""
        if surface is None:
            return
        shown, box = surface.shown, surface.box
        if self.is_oblique_mode():
            self._drag_guide(surface, start, finish, down, now)
            return
        if self.is_curved_mode():
            if finish and is_click(box, down, now):
                self._click(surface, now)  # a click that moved a little: a point of the path
            return
        if start:
            self._drawing, self._held = None, None
            self._drop_open_angle_off(surface)
            target = self._hold_target(surface, down) if self._open_angle is None else None
            if self._open_angle is not None:
                self._drawing = self._open_angle
            elif target is not None:
                taken, point = target
                if isinstance(taken, Ruler):
                    taken.hold_by(point)  # the end held is made its end
                    point = 1
                self._drawing, self._held = taken, (point, taken.points())
            elif mm_rect(shown).contains(down):
                kind: type[Mark] = {"measure": Ruler, "region": Region, "angle": Angle}[self._tool]
                self._drawing = self._new_mark(kind, image_point(shown, down), surface)
        mark, held, open_angle = self._drawing, self._held, self._open_angle
        if mark is None:
            return
        if open_angle is not None and mark is open_angle:
            open_angle.second = image_point(shown, now)
        elif held is not None and held[0] < 0:  # a region, moved by the mouse's travel, kept on the image
            travel = image_point(shown, now, keep=False), image_point(shown, down, keep=False)
            rows, columns = shown.image.shape
            mark.start, mark.end = moved_within(held[1], (travel[0][0] - travel[1][0], travel[0][1] - travel[1][1]),
                                                (float(columns), float(rows)))
        else:
            mark.set_point(held[0] if held is not None else 1, image_point(shown, now))
        self._place_marks(surface)
        if not finish:
            return
        self._drawing, self._held = None, None
        if open_angle is not None and mark is open_angle:
            self._finish_angle(open_angle, surface)
        elif held is not None:
            if isinstance(mark, Angle) and self._degrees(mark, shown) is None:  # a point put on another: no angle
                for index, before in enumerate(held[1]):
                    mark.set_point(index, before)
                self._place_marks(surface)
        elif is_click(box, down, now) or mark.end == mark.start:
            self._remove_mark(mark)  # a jittery click, or dragged off the image from its edge: nothing drawn
        elif isinstance(mark, Angle):
            self._open_angle = mark  # the first arm drawn: the second now follows the mouse

    def _drop_open_angle_off(self, surface: _Surface) -> None:
        """An angle begun on another pane than ``surface`` goes as the reader presses here: its second end is
        on its own image, not this one."""
        if self._open_angle is not None and not any(self._open_angle is mark for mark in self._marks_on(surface)):
            self._remove_mark(self._open_angle)

    def _drag_guide(self, surface: _Surface, start: bool, finish: bool, down: QPointF, now: QPointF) -> None:
        """The Oblique tool's drag (on the plane shown alone): a line from the press to the mouse (begun on the
        image); let go, the plane through it is shown (``draw_oblique``) and the tool is off; a jittery click
        draws nothing."""
        shown = surface.shown
        if start:
            self._remove_guide()
            if mm_rect(shown).contains(down):
                self._guide = Ruler.drawn_in(surface.box, image_point(shown, down))
        guide = self._guide
        if guide is None:
            return
        guide.end = image_point(shown, now)
        ends = view_point(shown, guide.start), view_point(shown, guide.end)
        guide.line.setData([ends[0].x(), ends[1].x()], [ends[0].y(), ends[1].y()])
        if not finish:
            return
        self._remove_guide()
        if not is_click(surface.box, down, now) and guide.end != guide.start:
            self.draw_oblique(guide.start, guide.end)

    def _remove_guide(self) -> None:
        if self._guide is not None:
            box = self._guide.view_box()
            if box is not None:
                self._guide.remove_from(box)
            self._guide = None

    def _double_click(self, at: QPointF) -> None:
        """A double-click: with the Curved tool on, the path ends there (its first click was its last point);
        otherwise the image is fitted to the view."""
        if self.is_curved_mode():
            self.finish_path()
        else:
            self.fit()

    def _draw_path(self, mouse: QPointF | None = None) -> None:
        """The path clicked so far (and on to the mouse), drawn as the oblique's line is."""
        if not self._path:
            self._remove_guide()
            return
        shown = self._shown
        assert shown is not None  # the path is clicked on the plane shown alone
        if self._guide is None:
            self._guide = Ruler.drawn_in(self.vb, self._path[0])
        points = [view_point(shown, point) for point in self._path] + ([mouse] if mouse is not None else [])
        self._guide.line.setData([p.x() for p in points], [p.y() for p in points])

    def finish_path(self) -> Curved | None:
        """End the path clicked (double-click, Enter): the curved reformat along it (``draw_curved``); the tool
        stays on where the path has fewer than two points apart."""
        path = list(self._path)
        if len(path) < 2:
            self.status_bar.showMessage("A curved reformat needs a path: click at least two points", 10_000)
            return None
        return self.draw_curved(path)

    def draw_curved(self, path: Sequence[tuple[float, float]]) -> Curved | None:
        """The curved reformat along ``path`` (column, row points of the image shown) swept square to it, shown
        (as the Curved tool's clicks make it); None, said in the status bar, on no plane or with no path."""
        volume, here = self._volume, self.current_plane()
        if volume is None or here is None:
            self.status_bar.showMessage("Draw a curved reformat's path on a plane (axial, coronal, sagittal or "
                                        "oblique)", 10_000)
            return None
        try:
            curved = curved_through(volume, [here.patient_point(point) for point in path], here.normal)
        except ReformatError as exc:
            self.status_bar.showMessage(f"No curved reformat: {exc.reason}", 10_000)
            return None
        self._curved = curved
        self.set_plane(curved)
        return curved

    def _curved_clicked(self) -> None:
        """The Curved button: back to the curved reformat drawn last where another plane is shown, else the
        tool that draws a new one."""
        if self._curved is not None and not isinstance(self._plane, Curved) and not self.is_curved_mode():
            self.set_plane(self._curved)
        else:
            self.toggle_curved_mode()

    def is_curved_mode(self) -> bool:
        return self._tool == "curved"

    def set_curved_mode(self, on: bool) -> None:
        """The Curved tool on / off: while on, clicks place the points of a path, a double-click or Enter ends
        it; off, a path begun goes."""
        self._set_tool("curved" if on else "")

    def toggle_curved_mode(self) -> None:
        self.set_curved_mode(not self.is_curved_mode())

    def _click(self, surface: _Surface | None, at: QPointF) -> None:
        """A left click (view coordinates) on ``surface``: with the Curved tool on, a point of the path (on the
        image); with an angle open there, its second end goes there and the angle is finished (unless the click
        is on the vertex: it stays open); an angle open on another pane goes."""
        if surface is None:
            return
        if self.is_curved_mode():
            if mm_rect(surface.shown).contains(at):
                self._path.append(image_point(surface.shown, at))
                self._draw_path()
            return
        self._drop_open_angle_off(surface)
        angle = self._open_angle
        if angle is None:
            return
        angle.second = image_point(surface.shown, at)
        self._finish_angle(angle, surface)

    def _finish_angle(self, angle: Angle, surface: _Surface) -> None:
        if self._degrees(angle, surface.shown) is not None:  # else the second end is on the vertex: it follows on
            self._open_angle = None
        self._place_marks(surface)

    def _hold_target(self, surface: _Surface, at: QPointF) -> tuple[Mark, int] | None:
        """The mark's point on ``surface`` a left press at ``at`` (view coordinates) takes hold of, as PACS
        viewers do: the nearest within a few screen pixels of a ruler's end while measuring, of a finished
        angle's point in the angle mode, as (the mark, which point: 0 a ruler's start or an angle's vertex, 1 its
        end, 2 an angle's second end); in the region mode, the region it is inside (the last drawn on top), as
        (it, -1: whole); None: the press draws a new mark."""
        shown = surface.shown
        if self._tool == "region":
            regions = [mark for mark in self._marks_on(surface) if isinstance(mark, Region)]
            return next(((region, -1) for region in reversed(regions)
                         if inside_ellipse(at, view_point(shown, region.start), view_point(shown, region.end))), None)
        kind = {"measure": Ruler, "angle": Angle}.get(self._tool)
        if kind is None:
            return None
        points = ((mark, [view_point(shown, point) for point in mark.points()])
                  for mark in self._marks_on(surface) if isinstance(mark, kind) and self._finished(mark))
        return nearest_point(surface.box, at, points)

    def _hover(self, surface: _Surface | None, at: QPointF) -> None:
        """The mouse at ``at`` (view coordinates) over ``surface``: with an angle open there, its second arm
        follows the mouse; while measuring or in the angle or region mode, a cursor that says what a press
        there does: move a mark's point (or a region), or draw."""
        if surface is None or self._drawing is not None:
            return
        angle = self._open_angle
        if angle is not None and any(angle is mark for mark in self._marks_on(surface)):
            angle.second = image_point(surface.shown, at)
            self._place_marks(surface)
        elif self.is_curved_mode() and self._path:
            self._draw_path(view_point(surface.shown, image_point(surface.shown, at)))
        elif self._tool in ("measure", "angle", "region"):
            set_marking_cursor(surface.view, True, over_mark=self._hold_target(surface, at) is not None)

    def _place_marks(self, surface: _Surface | None) -> None:
        """Draw the rulers, regions and angles of ``surface``'s image, each label placed in turn off those
        placed before."""
        if surface is not None:
            place_in_turn(self._marks_on(surface), lambda mark: self._place_mark(mark, surface))

    def _place_mark(self, mark: Mark, surface: _Surface) -> None:
        """A ruler's line and its length, a region's ellipse and its figures, or an angle's arms and its degrees,
        on ``surface``'s image, beside it: past its end (else its start; an angle's past its vertex, outside
        it) on the side away from it, inside the view and off its texts and the other labels."""
        shown = surface.shown
        points = [view_point(shown, point) for point in mark.points()]
        start, end = points[0], points[1]
        spots = ruler_spots(start, end)
        if isinstance(mark, Region):  # the ellipse inscribed in the rectangle its corners span
            mark.line.setData(*ellipse_outline(start, end))
            mark.label.setText(self._region(mark, shown).text)
        elif isinstance(mark, Angle):  # first end, vertex, second end
            drawn = [end, start, *points[2:]]
            mark.line.setData([p.x() for p in drawn], [p.y() for p in drawn])
            degrees = self._degrees(mark, shown)
            mark.label.setText("" if degrees is None else angle_text(degrees))
            spots = angle_spots(points)
        elif isinstance(mark, Ruler):
            mark.line.setData([start.x(), end.x()], [start.y(), end.y()])
            mark.label.setText(self._measurement(mark, shown).text)
        others = [other.box for other in self._marks_on(surface) if other is not mark and other.box is not None]
        mark.box = place_mark_label(surface.view, surface.box, mark.label, spots, surface.texts, others)

    # --- drawing ------------------------------------------------------------------------------------------
    def _show(self) -> None:
        """Cut the slice (or slab) asked for and draw it."""
        volume = self._volume
        if volume is None:
            return
        index = self._indices.setdefault(self._plane, plane_count(volume, self._plane) // 2)
        self._shown = reformat(volume, self._plane, index, self.slab_box.value(), self.slab_mode())
        self._show_marks()  # before the fit moves them: this image's only
        self._render()
        shape = (self._plane, self._shown.image.shape)
        if shape != self._fitted:
            self._fitted = shape
            self.fit()
        self._update_controls()
        self.slice_shown.emit()

    def _render(self) -> None:
        shown, volume = self._shown, self._volume
        if shown is None or volume is None:
            return
        self._rendered = image = windowed(shown, self._window, volume.inverted)  # MONOCHROME1 as the viewer shows it
        self.image_item.setImage(image, levels=(0, 255), autoLevels=False)
        self.image_item.setRect(mm_rect(shown))
        self._place_reference()  # the 3D cursor's cross: shown on its own slice only
        self._update_texts()

    def fit(self) -> None:
        if self._shown is not None:
            self.vb.setRange(rect=self.image_rect(), padding=0.0)

    def _update_plane_checks(self) -> None:
        """The plane buttons say what is shown: one of the standard planes, or Oblique (an oblique plane, or
        the line for one being drawn)."""
        three = self.is_three_planes()
        for plane, action in self.plane_actions.items():
            action.setChecked(self._plane == plane and not self.is_oblique_mode() and not self.is_curved_mode()
                              and not three)
        self.oblique_action.setChecked(not three and not self.is_curved_mode()
                                       and (isinstance(self._plane, Oblique) or self.is_oblique_mode()))
        self.curved_action.setChecked(not three and not self.is_oblique_mode()
                                      and (isinstance(self._plane, Curved) or self.is_curved_mode()))
        self.three_action.setChecked(three)

    def _update_controls(self) -> None:
        """The controls as the volume and the plane allow: nothing to choose before a volume is read."""
        volume = self._volume
        three = self.is_three_planes()
        for action in (*self.plane_actions.values(), self.oblique_action, self.curved_action, self.three_action):
            action.setEnabled(volume is not None)
        self._update_plane_checks()
        for box in (self.slab_box, self.mode_box, self.window_box):
            box.setEnabled(volume is not None)
        for action in (self.measure_action, self.region_action, self.angle_action):  # on a plane and on the panes
            action.setEnabled(volume is not None)
        curved = isinstance(self._plane, Curved)
        self.save_action.setEnabled(volume is not None and self._saver is None and not three)
        self.slab_box.setEnabled(volume is not None and not curved)
        self.mode_box.setEnabled(volume is not None and self.slab_box.value() > 0)
        count = self.count()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(count - 1, 0))
        self.slider.setValue(self.index())
        self.slider.blockSignals(False)
        self._slider_row.setVisible(count > 1 and not three)
        if volume is not None:
            step = plane_spacing(volume, self._plane)
            self.slab_box.setSingleStep(round(step, 1) or 0.1)
        shown = self._shown
        if shown is not None and count:
            self.slider_label.setText(f"{plane_name(self._plane).lower()} slice {self.index() + 1}/{count}")

    def _update_texts(self) -> None:
        shown = self._shown
        texts = dict.fromkeys(self._labels, "")
        if shown is not None:
            texts.update(zip(("l", "r", "t", "b"), shown.edges, strict=True))
            texts["tr"] = self._title  # where the main viewer shows the series' title
            number = f" {shown.index + 1}/{shown.count}" if shown.count > 1 else ""  # a curved reformat: one
            where = f"{plane_name(shown.plane)}{number} · {location_text(shown)}"
            slab = (f"{SLAB_NAMES[shown.mode]} through {shown.slab_mm:.1f} mm ({shown.slab_slices} slices)"
                    if shown.slab_slices > 1 else "")
            texts["bl"] = "\n".join(x for x in (where, slab) if x)
            centre, width = self._window
            name = self._window_name
            label = {"auto": "automatic", VIEWER_WINDOW: "as in the viewer", "custom": ""}.get(name, name)
            window = f"W {width:.0f} L {centre:.0f}" + (f" ({label})" if label else "")
            row_mm, column_mm = shown.spacing
            tool = [_TOOL_TEXTS[self._tool]] if self._tool else []
            if self._cine.isActive():
                tool.append(f"Cine {CINE_FPS:.3g} fps (P: stop)")
            texts["br"] = "\n".join([*tool, window, f"Pixel {row_mm:.3g} x {column_mm:.3g} mm",
                                     f"{shown.image.shape[1]} x {shown.image.shape[0]}"])
        for name, text in texts.items():
            self._labels[name].setText(text)
            self._labels[name].setVisible(bool(text))
        self._place_labels()

    def _show_message(self, text: str, *, tooltip: str = "") -> None:
        self._message = text
        self._message_label.setText(text)
        self._message_label.setToolTip(tooltip)
        self._message_label.show()
        self._place_labels()

    def _place_labels(self) -> None:
        place_texts(self.view, self._labels, self._message_label)
        self._place_marks(self._single_surface())  # their labels keep off the corner texts where these are now

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.view and event.type() == QEvent.Type.Resize:
            self._place_labels()
        return super().eventFilter(watched, event)

    # --- keys -------------------------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, keys = event.key(), Qt.Key
        modifiers = event.modifiers()
        arrows = (keys.Key_Up, keys.Key_Down, keys.Key_Left, keys.Key_Right)
        if key in arrows and modifiers & Qt.KeyboardModifier.ControlModifier:
            step = 1.0 if modifiers & Qt.KeyboardModifier.ShiftModifier else TILT_DEGREES
            # the edge pressed towards goes away from the reader: Up tips the top away, Right swings the right
            turns: dict[int, tuple[Literal["right", "down"], float]] = {
                keys.Key_Up: ("right", -1.0), keys.Key_Down: ("right", 1.0),
                keys.Key_Left: ("down", 1.0), keys.Key_Right: ("down", -1.0)}
            about, sign = turns[int(key)]
            self.tilt(about, sign * step)
        elif key in (keys.Key_Right, keys.Key_Down):
            self.step(1)
        elif key in (keys.Key_Left, keys.Key_Up):
            self.step(-1)
        elif key == keys.Key_Home:
            self.go_to(0)
        elif key == keys.Key_End:
            self.go_to(self.count() - 1)
        elif keys.Key_1 <= key <= keys.Key_9:
            names = self.presets()
            number = int(key - keys.Key_1)
            if number < len(names):
                self.apply_preset(names[number])
        elif key == keys.Key_0:
            self.apply_preset("auto")
        elif key == keys.Key_F:
            self.panes.fit() if self.is_three_planes() else self.fit()
        elif key == keys.Key_M:
            self.toggle_measuring()
        elif key == keys.Key_E:
            self.toggle_region_mode()
        elif key == keys.Key_N:
            self.toggle_angle_mode()
        elif key == keys.Key_O:
            self.toggle_oblique_mode()
        elif key == keys.Key_C and not modifiers:
            self.toggle_curved_mode()
        elif key in (keys.Key_Return, keys.Key_Enter) and self.is_curved_mode():
            self.finish_path()
        elif key == keys.Key_Escape and self.is_curved_mode() and self._path:
            self._path = []  # only the path begun: the tool stays on
            self._remove_guide()
        elif key == keys.Key_P:
            self.toggle_cine()
        elif key == keys.Key_Delete:
            self.clear_measurements()  # on the three planes, those of the pane used last
        elif key == keys.Key_Escape and self._open_angle is not None:
            self._remove_mark(self._open_angle)  # only the angle begun: the others, and the mode, stay
        elif key == keys.Key_Escape and self.is_three_planes():
            self._set_tool("")  # the marks stay: which pane's they would be is not on the screen
        elif key == keys.Key_Escape:
            self.clear_measurements()
            self._set_tool("")
            self.stop_cine()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop_cine()
        self.cancel_loading()
        if self._saver is not None:
            self._saver.quit()  # the images written so far stay, each whole
        self.closed.emit()
        super().closeEvent(event)


__all__ = ["ANGLE_TEXT", "CURVED_TEXT", "MEASURING_TEXT", "OBLIQUE_TEXT", "REGION_TEXT", "ReformatWindow", "Region",
           "RulerMeasurement", "contained_decoder", "location_text", "plane_name"]
