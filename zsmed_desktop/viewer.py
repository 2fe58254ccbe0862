"""The image viewer: one series (or a set of photographs) at a time, as PACS viewers show it.

Decoding runs in a superqt worker that asks the contained decoder (``SafeDecoder``) for a
``ModalityFrame``: modality values before VOI, the file's windows, the pixel aspect and the
overlay facts. Window/level is then applied here, on the GUI thread, to those cached values
(``display_uint8``), so dragging the window never waits on a decoder. A small LRU cache keeps the
frames decoded lately and the neighbours of the one shown are fetched ahead.

Mouse: wheel = next / previous image; Ctrl+wheel = zoom; left or middle drag = pan (left drag
measures while measuring, draws a region of interest while E is on, an angle's first arm while N is
on); right drag = window/level (left-right: width, up-down: level); double-click = fit. Keys:
arrows = next / previous image,
Home / End, Page Up / Down = previous / next series (``series_step``), 1-9 = the presets in
``presets()`` order, 0 = auto, R = reset (window, inversion, rotation and flip, fit), I = invert,
F = fit, A = 1:1 (actual pixels), +/- = zoom, O = overlays, M = measure on / off (a left drag
draws a ruler: mm from the pixel spacing, px without one), E = region of interest on / off (a
left drag draws an ellipse: its area, and the mean ± SD, min and max of the modality values
inside, or of R, G, B on colour images), N = angle on / off (a left drag from the vertex draws the
first arm; the second then follows the mouse from the vertex and a left click places its end: the
angle in degrees, in the patient's plane from the pixel spacing), T = arrow on / off (a left drag
from the note to the finding draws an arrow, its head at the finding, then asks for an optional note,
drawn at its tail: an annotation for key images, not a measurement); M, E, N and T are exclusive; while
measuring, in the angle, arrow or region mode, a press on a ruler's or an arrow's end, an angle's point
or inside a region moves it), Delete = remove the rulers, regions of interest, angles and arrows, Esc =
remove them, stop measuring (the region of interest, the angle, the arrow) and playing; with an angle's
second arm still to place, Esc removes only that angle. ] or Ctrl+R / [ = rotate 90° clockwise / anticlockwise, H / V =
flip left-right / up-down, P = play / stop cine (through the frames and images, looping, at the file's
frame rate). Rotation and flip stay while scrolling through the series; the rulers, regions of
interest, angles and arrows stay until another file (on another frame of the same file, a region's
statistics are that frame's).
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSizeF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QHideEvent,
    QImage,
    QKeyEvent,
    QPainter,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QInputDialog,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from zsmed.dicom.display import (
    CT_PRESETS,
    ModalityFrame,
    RoiStatistics,
    VoiOption,
    display_uint8,
    pixel_value_text,
    roi_statistics,
    window_option,
)
from zsmed.dicom.geometry import (
    ALL_TURNS,
    ANTICLOCKWISE,
    CLOCKWISE,
    MIRROR_LEFT_RIGHT,
    MIRROR_UP_DOWN,
    UPRIGHT,
    Turn,
    angle_degrees,
    compose_turns,
    inverse_turn,
    ruler_length,
    turned_edges,
    turned_image,
    turned_point,
    turned_size,
)
from zsmed.errors import ZsmedError
from zsmed_desktop.image_view import (
    RULER_COLOUR,
    ImageMouse,
    ImageViewBox,
    add_cursor_item,
    add_reference_item,
    image_view,
    place_label,
    place_texts,
    row_under_image,
    shadowed,
)
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

Key = tuple[str, int]  # (path, frame)
Decode = Callable[[str, int], ModalityFrame]

CACHE_BYTES = 256 * 1024 * 1024
_OVERLAY_COLOUR = "#d9d9d9"  # the corner texts (a snapshot draws them in the same colours and sizes)
_EDGE_COLOUR = "#e6d38a"  # the orientation letters
_OVERLAY_STYLE = f"color: {_OVERLAY_COLOUR}; background: transparent; font-size: 12px;"
_VIEWER_STYLE = """
#ImageViewer { background: #141414; }
#ImageViewer QLabel#sliderLabel { color: #bdbdbd; }
#ImageViewer QSlider::groove:horizontal { height: 4px; background: #3a3a3a; border-radius: 2px; }
#ImageViewer QSlider::sub-page:horizontal { background: #5a6e84; border-radius: 2px; }
#ImageViewer QSlider::handle:horizontal { width: 10px; margin: -5px 0; background: #9a9a9a; border-radius: 5px; }
"""
_EDGE_STYLE = f"color: {_EDGE_COLOUR}; background: transparent; font-size: 14px; font-weight: bold;"
_MESSAGE_STYLE = "color: #e8c36a; background: transparent; font-size: 13px;"
_RULER_COLOUR = RULER_COLOUR  # yellow: stands out on grey images and on most photographs
DEFAULT_CINE_FPS = 10.0  # when the file gives no Cine Rate, Recommended Display Frame Rate or Frame Time
# where the spacing is not in the patient, lengths say so (they are magnified)
_SPACING_WHERE = {"ImagerPixelSpacing": "at the detector", "NominalScannedPixelSpacing": "on the film"}

# snapshots ("Save the image as…", "Copy the image"): the long side of the picture, in pixels
SNAPSHOT_MIN_SIZE = 512  # a smaller image is enlarged to it (smoothly), so that its labels stay legible
SNAPSHOT_MAX_SIZE = 8192  # a larger one is reduced to it: a picture for a report, not a copy of the archive
_SNAPSHOT_TEXT_AT = 768  # up to this long side the texts and lines are the screen's size; beyond, they grow


class SnapshotError(ZsmedError):
    """No picture of the image to take: none is shown, or it is still loading."""


def contained_decode(path: str, frame: int) -> ModalityFrame:
    """Decode in the shared contained decoder process (a crashing codec cannot take the app down)."""
    from zsmed.dicom.safe import shared_decoder

    result: ModalityFrame = shared_decoder().modality_frame(path, frame)
    return result


Result = tuple[Key, ModalityFrame | None, str]  # (key, frame or None, one-line error)


def decode_result(decode: Decode, key: Key) -> Result:
    """Decode one frame; never raises: an error comes back as one short line naming the file."""
    path, frame = key
    try:
        return key, decode(path, frame), ""
    except Exception as exc:
        reason = str(getattr(exc, "reason", None) or f"{exc.__class__.__name__}: {exc}")
        first = reason.splitlines()[0] if reason.strip() else "cannot be shown"
        return key, None, f"{Path(path).name}: {first}"


@dataclass(frozen=True)
class Measurement:
    """One ruler as the reader sees it: its ends in stored-image pixels (column, row: before any
    rotation or flip), its length and the text next to it."""

    start: tuple[float, float]
    end: tuple[float, float]
    length: float
    unit: str  # "mm", or "px" when the image has no pixel spacing
    text: str


@dataclass(frozen=True)
class AngleMeasurement:
    """One angle as the reader sees it: the end of its first arm, its vertex and the end of its second
    arm in stored-image pixels (column, row: before any rotation or flip), the angle at the vertex in
    degrees (0 to 180, in the patient's plane: from the pixel spacing, so non-square pixels are taken
    into account) and the text next to it."""

    first_end: tuple[float, float]
    vertex: tuple[float, float]
    second_end: tuple[float, float]
    degrees: float
    text: str


@dataclass(frozen=True)
class Arrow:
    """One arrow annotation (a key image's pointer, not a measurement): its tail, where its note is, and
    its head, at the finding, in stored-image pixels (column, row: before any rotation or flip)."""

    tail: tuple[float, float]
    head: tuple[float, float]
    note: str = ""


@dataclass(frozen=True)
class RegionOfInterest:
    """One elliptical region of interest as the reader sees it: the corners of the rectangle it is
    inscribed in, in stored-image pixels (column, row: before any rotation or flip), its statistics
    on the frame shown and the text next to it."""

    start: tuple[float, float]
    end: tuple[float, float]
    statistics: RoiStatistics
    text: str


def _value(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"


def roi_text(statistics: RoiStatistics, spacing_source: str = "") -> str:
    """The lines next to a region of interest: the area (mm², cm² from 100 mm²; px² without a pixel
    spacing; where the spacing is not in the patient, where it is), the values' mean ± SD, min and
    max (HU on CT) or, on colour images, the mean and SD of R, G and B, and the count of pixels."""
    area = statistics.area
    if statistics.area_unit != "mm²":
        size = f"{area:.0f} {statistics.area_unit}" if area >= 100 else f"{area:.1f} {statistics.area_unit}"
    else:
        size = f"{area / 100:.2f} cm²" if area >= 100 else f"{area:.1f} mm²"
    lines = [" ".join(x for x in ("Area", size, _SPACING_WHERE.get(spacing_source, "")) if x)]
    if statistics.rgb_mean is not None:
        red, green, blue = statistics.rgb_mean
        lines.append(f"Mean R {red:.1f} · G {green:.1f} · B {blue:.1f}")
        if statistics.rgb_sd is not None:
            red_sd, green_sd, blue_sd = statistics.rgb_sd
            lines.append(f"SD R {red_sd:.1f} · G {green_sd:.1f} · B {blue_sd:.1f}")
    elif statistics.mean is not None:
        unit = f" {statistics.value_unit}" if statistics.value_unit else ""
        lines.append(f"Mean {_value(statistics.mean)} ± {_value(statistics.sd)}{unit}")
        if statistics.minimum is not None and statistics.maximum is not None:
            lines.append(f"Min {_num(statistics.minimum)} · Max {_num(statistics.maximum)}{unit}")
    lines.append(f"{statistics.count} pixel{'' if statistics.count == 1 else 's'}")
    return "\n".join(lines)


_M = TypeVar("_M", bound=Mark)


@dataclass
class _Roi(Mark):
    """An ellipse inscribed in the rectangle with opposite corners ``start`` and ``end`` (on the
    screen an ellipse too: the turns and the pixel aspect keep its axes along the image's), and its
    statistics (with the frame and corners they are of), kept while the view only zooms or pans."""

    cached: tuple[ModalityFrame, tuple[float, float], tuple[float, float], RoiStatistics] | None = None


@dataclass
class _Arrow(Mark):
    """An arrow from its tail ``start`` (where its note is drawn) to its head ``end`` (pointing at the
    finding)."""

    note: str = ""


class _Held(NamedTuple):
    """A mark taken hold of by a left press: which of its points follows the mouse (0 its start, 1 its
    end, 2 an angle's second end; -1 a region, moved whole), its points then, and the press (stored-image
    points)."""

    mark: Mark
    point: int
    before: tuple[tuple[float, float], ...]
    down: tuple[float, float]


_ARROWHEAD_PIXELS = 14.0  # an arrowhead's barbs, screen pixels (the snapshot's grow with its texts)


class ImageViewer(QWidget):
    """One series of images (or photographs): true aspect, window/level, zoom/pan, frames, overlays,
    rulers, regions of interest, angles, rotation and flip, cine."""

    current_changed = Signal(object)  # the Path now shown, after it is displayed (also on another frame)
    series_step = Signal(int)  # +1 / -1 on Page Down / Page Up
    measuring_changed = Signal(bool)  # measure mode on / off (M, Esc), for a checkable tool button
    roi_mode_changed = Signal(bool)  # region-of-interest mode on / off (E, Esc; M turns it off)
    angle_mode_changed = Signal(bool)  # angle mode on / off (N, Esc; M and E turn it off)
    arrow_mode_changed = Signal(bool)  # arrow mode on / off (T, Esc; M, E and N turn it off)
    # the reader chose a window preset by key (1-9, 0 = 'auto'), or R ('': the image's own window)
    window_preset_chosen = Signal(str)
    # how many rulers, regions, (finished) angles and arrows are on the image, after one is added, moved or removed
    marks_changed = Signal(int)
    # Shift+click on the image: the stored point (column, row) to find in the other windows (the 3D cursor)
    locate_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, decode: Decode | None = None,
                 cache_bytes: int = CACHE_BYTES) -> None:
        super().__init__(parent)
        self._decode = decode or contained_decode
        self._cache_bytes = cache_bytes
        self._paths: list[Path] = []
        self._index = 0
        self._frame = 0
        self._title = ""
        self._key_images: dict[str, str] = {}  # image file -> its key-image line ("Key image", "… (saved)")
        self._cache: OrderedDict[Key, ModalityFrame] = OrderedDict()
        self._failed: dict[Key, str] = {}
        self._frames_of: dict[str, int] = {}
        self._in_flight: Key | None = None
        self._worker: Any = None  # the superqt worker decoding ``_in_flight``
        self._shown: ModalityFrame | None = None
        self._shown_key: Key | None = None
        self._option: VoiOption | None = None
        self._option_name = ""
        self._domain: tuple[Any, ...] | None = None
        self._wanted_window = ""  # a preset to show the next series in, once its first image says it fits
        self._invert = False
        self._rendered = np.zeros((0, 0), dtype=np.uint8)
        self._message = ""
        self._overlays_on = True
        self._drag_start: tuple[float, float] | None = None
        self._fitted_shape: tuple[Any, ...] | None = None
        self._turn = UPRIGHT
        # what a left drag draws, one tool at a time: "" (nothing: it pans), "measure", "roi", "angle" or "arrow"
        self._tool = ""
        self._rulers: list[Ruler] = []
        self._rois: list[_Roi] = []
        self._angles: list[Angle] = []
        self._arrows: list[_Arrow] = []
        # asks for an arrow's note, given the note it has ("" for a new arrow); None: cancelled
        self.ask_note: Callable[[str], str | None] = self._ask_note
        self._drawing: Mark | None = None  # the ruler, region or angle's arm a left drag is drawing now
        self._open_angle: Angle | None = None  # an angle whose second arm follows the mouse, until a click
        self._held: _Held | None = None  # an existing one the drag moves instead
        self._cine = QTimer(self)
        self._cine.timeout.connect(self._cine_tick)

        self.setObjectName("ImageViewer")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(_VIEWER_STYLE)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(240, 240)

        self.vb = ImageViewBox(self, ImageMouse(step=self.step, double_click=self._double_click, locate=self._locate,
                                                drag_window=self._drag_window, marking=self._tool_on,
                                                drag_mark=self._drag_mark, click=self._click))
        self.view, self.image_item = image_view(self.vb)
        self.vb.sigRangeChanged.connect(self._update_zoom_overlay)
        self.vb.sigRangeChanged.connect(self._place_marks)  # the labels keep clear of the view's edges
        self._reference: tuple[tuple[float, float], tuple[float, float]] | None = None  # stored-pixel ends
        self._reference_item = add_reference_item(self.vb)
        self._cursor: tuple[float, float] | None = None  # the 3D cursor's point, stored pixels
        self._cursor_on: tuple[Path, int] | None = None  # the image (file, frame) it is on: shown there only
        self._cursor_item = add_cursor_item(self.vb)
        self.view.installEventFilter(self)
        self.view.viewport().installEventFilter(self)
        self._pointer: tuple[float, float] | None = None  # the stored point under the mouse
        self.view.scene().sigMouseMoved.connect(self._hover)

        # corners (tl, tr, bl, br) and the orientation letters at the middle of each edge (l, r, t, b)
        self._corners = {name: shadowed(QLabel(self.view)) for name in ("tl", "tr", "bl", "br", "l", "r", "t", "b")}
        for name, label in self._corners.items():
            label.setStyleSheet(_OVERLAY_STYLE)
            label.setTextFormat(Qt.TextFormat.PlainText)
            if len(name) == 1:
                label.setStyleSheet(_EDGE_STYLE)
                label.setAlignment(Qt.AlignmentFlag.AlignCenter)
                continue
            right = name.endswith("r")
            top = name.startswith("t")
            label.setAlignment((Qt.AlignmentFlag.AlignRight if right else Qt.AlignmentFlag.AlignLeft)
                               | (Qt.AlignmentFlag.AlignTop if top else Qt.AlignmentFlag.AlignBottom))
        self._message_label = shadowed(QLabel(self.view))
        self._message_label.setStyleSheet(_MESSAGE_STYLE)
        self._message_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message_label.setWordWrap(True)
        self._message_label.setTextFormat(Qt.TextFormat.PlainText)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("Images of the series (wheel, arrow keys)")
        self.slider.valueChanged.connect(self._slider_moved)
        self.slider_label = QLabel("")
        self.slider_label.setObjectName("sliderLabel")
        self.slider_label.setMinimumWidth(90)
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.frame_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.frame_slider.setToolTip("Frames of this image")
        self.frame_slider.valueChanged.connect(self._frame_slider_moved)
        self.frame_label = QLabel("")
        self.frame_label.setObjectName("sliderLabel")
        self.frame_label.setMinimumWidth(90)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.view, 1)
        self._slider_row = row_under_image(self.slider, self.slider_label, bottom=2)
        layout.addWidget(self._slider_row)
        self._frame_row = row_under_image(self.frame_slider, self.frame_label, bottom=2)
        layout.addWidget(self._frame_row)
        self._show_message("No image")
        self._update_sliders()

    # --- public interface -------------------------------------------------------------------------
    def set_images(self, paths: Sequence[Path], index: int = 0, *, title: str = "", window: str = "") -> None:
        """Show the images of one series (or photographs); ``index`` is the one shown first, in the window
        preset ``window`` where it is one of the first image's ``presets()`` (else the image's own)."""
        self.stop_cine()
        self.clear_measurements()
        self._paths = [Path(p) for p in paths]
        self._index = min(max(int(index), 0), max(len(self._paths) - 1, 0))
        self._frame = 0
        self._title = title
        self._failed.clear()
        self._option, self._option_name, self._domain = None, "", None
        self._wanted_window = window.strip().lower()
        self._invert = False
        self._turn = UPRIGHT
        self._fitted_shape = None
        self._shown, self._shown_key = None, None
        if not self._paths:
            self.image_item.clear()
            self._rendered = np.zeros((0, 0), dtype=np.uint8)
            self._show_message("No image")
            self._update_sliders()
            self._update_overlays()
            return
        self._show_current()

    def current_path(self) -> Path | None:
        return self._paths[self._index] if self._paths else None

    def current_frame(self) -> int:
        return self._frame

    def current_index(self) -> int:
        return self._index

    def image_count(self) -> int:
        return len(self._paths)

    def frame_count(self) -> int:
        """Frames of the current image (1 until it is decoded)."""
        path = self.current_path()
        return self._frames_of.get(str(path), 1) if path is not None else 0

    def is_loading(self) -> bool:
        """True while the image asked for is still being decoded."""
        return bool(self._paths) and self._key() not in self._cache and self._key() not in self._failed

    def is_busy(self) -> bool:
        """True while a decode (of the image shown or of a neighbour) is running."""
        return self._in_flight is not None

    def next_image(self) -> None:
        self.step(1)

    def previous_image(self) -> None:
        self.step(-1)

    def step(self, steps: int) -> None:
        """Move ``steps`` frames / images on (negative: back), through the frames of a multi-frame
        image and then on to the next image; stops at the ends."""
        if not self._paths:
            return
        index, frame = self._index, self._frame
        for _ in range(abs(steps)):
            frames = self._frames_of.get(str(self._paths[index]), 1)
            if steps > 0:
                if frame < frames - 1:
                    frame += 1
                elif index < len(self._paths) - 1:
                    index, frame = index + 1, 0
            elif frame > 0:
                frame -= 1
            elif index > 0:
                index -= 1
                frame = self._frames_of.get(str(self._paths[index]), 1) - 1
        self.go_to(index, frame)

    def go_to(self, index: int, frame: int = 0) -> None:
        """Show that image (and frame); the reader choosing an image stops the cine."""
        self.stop_cine()
        self._go_to(index, frame)

    def presets(self) -> list[str]:
        """Window presets for the image shown, in number-key order: CT windows (for HU images),
        the file's own windows ('file 1', ...), then 'auto'."""
        frame = self._shown
        if frame is None:
            return [*CT_PRESETS, "auto"]
        names = list(CT_PRESETS) if frame.hounsfield else []
        names += [f"file {i + 1}" for i in range(len(frame.windows))]
        return [*names, "auto"]

    def apply_preset(self, name: str) -> None:
        """Window by name: a CT preset, 'file N' (the file's N-th window or VOI LUT) or 'auto'."""
        key = name.strip().lower()
        option = self._preset_option(key, self._shown)
        if option is not None:
            self._set_option(option, key)

    def _preset_option(self, key: str, frame: ModalityFrame | None) -> VoiOption | None:
        """The window a preset name stands for on ``frame`` (None where it has none: 'auto' or 'file N' with no
        image, a 'file N' the image lacks)."""
        if key in CT_PRESETS:
            centre, width = CT_PRESETS[key]
            return window_option(centre, width, key)
        if key == "auto":
            return frame.auto if frame is not None else None
        if key.startswith("file "):
            try:
                number = int(key.split()[1])
            except (IndexError, ValueError):
                raise ValueError(f"unknown window preset {key!r}") from None
            return frame.windows[number - 1] if frame is not None and 1 <= number <= len(frame.windows) else None
        raise ValueError(f"unknown window preset {key!r} (one of {', '.join(self.presets())})")

    def window_level(self) -> tuple[float, float] | None:
        """(centre, width) in use; None with no image, or while a VOI LUT (no window) is applied.
        (Not ``window()``: that is QWidget's top-level window, which Qt and callers rely on.)"""
        option = self._option
        if self._shown is None or option is None or option.center is None or option.width is None:
            return None
        return float(option.center), float(option.width)

    def window_name(self) -> str:
        return self._option_name

    def set_window(self, centre: float, width: float) -> None:
        self._set_option(window_option(centre, max(float(width), 1.0), "custom"), "custom")

    def invert(self) -> None:
        self._invert = not self._invert
        self._render()

    def is_inverted(self) -> bool:
        return self._invert

    def reset(self) -> None:
        """The image's own window, not inverted, upright and not flipped, fitted."""
        self._option, self._option_name, self._domain = None, "", None
        self._invert = False
        self._turn = UPRIGHT
        if self._shown is not None:
            self._option = self._shown.default_window
            self._option_name = "file 1" if self._shown.windows else "auto"
            self._domain = (self._shown.colour, self._shown.hounsfield, self._shown.fact("modality"))
        self._render()
        self.fit()

    def fit(self) -> None:
        rect = self._image_rect()
        if rect is not None:
            self.vb.setRange(rect=rect, padding=0.0)

    def shown_area(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The part of the stored image in view (zoomed and panned): its top-left and bottom-right corners
        (column, row; before any rotation or flip), kept on the image; None with no image shown."""
        if self._shown is None:
            return None
        view = self.vb.viewRect()
        a, b = self._image_point(view.topLeft()), self._image_point(view.bottomRight())
        return (min(a[0], b[0]), min(a[1], b[1])), (max(a[0], b[0]), max(a[1], b[1]))

    def show_area(self, corner_a: tuple[float, float], corner_b: tuple[float, float]) -> None:
        """Zoom and pan so that the part of the stored image between these corners (column, row) fills the
        view as far as its shape allows (a presentation state's displayed area, scaled to fit)."""
        if self._shown is None:
            return
        area = QRectF(self._view_point(corner_a), self._view_point(corner_b)).normalized()
        if area.width() > 0 and area.height() > 0:
            self.vb.setRange(rect=area, padding=0.0)

    def one_to_one(self) -> None:
        """One image pixel (across) to one screen pixel, about the centre of the view."""
        rect = self._image_rect()
        if rect is None:
            return
        width, height = self.vb.width(), self.vb.height()
        if width <= 0 or height <= 0:
            return
        centre = self.vb.viewRect().center()
        self.vb.setRange(xRange=(centre.x() - width / 2, centre.x() + width / 2),
                         yRange=(centre.y() - height / 2, centre.y() + height / 2), padding=0.0)

    def zoom_by(self, factor: float) -> None:
        if factor > 0:
            self.vb.scaleBy((1.0 / factor, 1.0 / factor))

    def zoom(self) -> float:
        """Screen pixels per image pixel (across): 1.0 at 1:1."""
        if self._shown is None:
            return 0.0
        px = self.vb.viewPixelSize()[0]
        return 1.0 / px if px > 0 else 0.0

    def toggle_overlays(self) -> None:
        self._overlays_on = not self._overlays_on
        self._update_overlays()

    def overlays_visible(self) -> bool:
        return self._overlays_on

    # rotation and flip: of the screen image only; the rulers keep measuring the stored pixels
    def rotate(self, quarter_turns: int = 1) -> None:
        """Turn the image 90° clockwise ``quarter_turns`` times (negative: anticlockwise), then fit."""
        step = CLOCKWISE if quarter_turns > 0 else ANTICLOCKWISE
        for _ in range(abs(quarter_turns)):
            self._turn = compose_turns(self._turn, step)
        self._render()
        self.fit()  # the image's width and height have swapped

    def flip_horizontal(self) -> None:
        """Mirror the image as shown left to right."""
        self._turn = compose_turns(self._turn, MIRROR_LEFT_RIGHT)
        self._render()

    def flip_vertical(self) -> None:
        """Mirror the image as shown top to bottom."""
        self._turn = compose_turns(self._turn, MIRROR_UP_DOWN)
        self._render()

    def turn(self) -> Turn:
        """How the image is turned on the screen (``UPRIGHT`` when as stored)."""
        return self._turn

    def set_turn(self, turn: Turn) -> None:
        """Turn the image as ``turn`` says (one of the eight turns and flips; a presentation state's), then fit."""
        if tuple(turn) not in ALL_TURNS:
            raise ValueError(f"not a turn of the image: {turn!r}")
        self._turn = (turn[0], turn[1], turn[2], turn[3])
        self._render()
        self.fit()

    # measuring and regions of interest
    def toggle_measuring(self) -> None:
        """Measure mode on / off: while on, a left drag draws a ruler instead of panning (and the
        region-of-interest mode is off)."""
        self._set_tool("" if self._measuring else "measure")

    def is_measuring(self) -> bool:
        return self._measuring

    def toggle_roi(self) -> None:
        """Region-of-interest mode on / off: while on, a left drag draws an ellipse instead of
        panning (and the measure mode is off)."""
        self._set_tool("" if self._roi_mode else "roi")

    def is_roi_mode(self) -> bool:
        return self._roi_mode

    def toggle_angle(self) -> None:
        """Angle mode on / off: while on, a left drag from the vertex draws the first arm; the second then
        follows the mouse from the vertex until a left click places its end (the measure and region modes
        are off). Turned off, an angle not finished goes."""
        self._set_tool("" if self._angle_mode else "angle")

    def is_angle_mode(self) -> bool:
        return self._angle_mode

    def toggle_arrow(self) -> None:
        """Arrow mode on / off: while on, a left drag draws an arrow from the press (its tail, where the
        note goes) to the release (its head, pointing at the finding), then asks for an optional note
        (``ask_note``); the other tools are off."""
        self._set_tool("" if self._arrow_mode else "arrow")

    def is_arrow_mode(self) -> bool:
        return self._arrow_mode

    def _tool_on(self) -> bool:
        return self._measuring or self._roi_mode or self._angle_mode or self._arrow_mode

    @property
    def _measuring(self) -> bool:
        return self._tool == "measure"

    @property
    def _roi_mode(self) -> bool:
        return self._tool == "roi"

    @property
    def _angle_mode(self) -> bool:
        return self._tool == "angle"

    @property
    def _arrow_mode(self) -> bool:
        return self._tool == "arrow"

    def _set_tool(self, tool: str) -> None:
        """What a left drag draws: a ruler ("measure"), a region of interest ("roi"), an angle, an arrow,
        or ("") nothing: it pans."""
        was, self._tool = self._tool, tool
        if not self._angle_mode and self._open_angle is not None:
            self._remove_mark(self._open_angle)  # another tool: the angle begun is not finished
        set_marking_cursor(self.view, self._tool_on())
        self._update_zoom_overlay()
        for name, changed in (("measure", self.measuring_changed), ("roi", self.roi_mode_changed),
                              ("angle", self.angle_mode_changed), ("arrow", self.arrow_mode_changed)):
            if (was == name) != (tool == name):
                changed.emit(tool == name)

    def measurements(self) -> list[Measurement]:
        """The rulers on the image, oldest first."""
        return [self._measurement(ruler) for ruler in self._rulers]

    def measure(self, start: tuple[float, float], end: tuple[float, float]) -> Measurement | None:
        """A ruler between two points (column, row) of the stored image, as a left drag draws it;
        None when no image is shown."""
        if self._shown is None:
            return None
        ruler = self._new_mark(Ruler, start)
        ruler.end = end
        self._place_mark(ruler)
        return self._measurement(ruler)

    def rois(self) -> list[RegionOfInterest]:
        """The regions of interest on the image, oldest first."""
        return [self._region(roi) for roi in self._rois]

    def roi(self, corner_a: tuple[float, float], corner_b: tuple[float, float]) -> RegionOfInterest | None:
        """An elliptical region of interest inscribed in the rectangle with opposite corners
        ``corner_a`` and ``corner_b`` (column, row) of the stored image, as a left drag in the
        region-of-interest mode draws it; None when no image is shown."""
        if self._shown is None:
            return None
        roi = self._new_mark(_Roi, corner_a)
        roi.end = corner_b
        self._place_mark(roi)
        return self._region(roi)

    def angles(self) -> list[AngleMeasurement]:
        """The angles on the image, oldest first (not one whose second end is still to be placed)."""
        return [self._angle_measurement(mark) for mark in self._angles if self._finished(mark)]

    def angle(self, first_end: tuple[float, float], vertex: tuple[float, float],
              second_end: tuple[float, float]) -> AngleMeasurement | None:
        """An angle at ``vertex`` between the arms to ``first_end`` and ``second_end`` (points (column, row)
        of the stored image), as a drag and a click in the angle mode draw it; None when no image is
        shown or an arm has no length."""
        if self._shown is None or angle_degrees(first_end, vertex, second_end, self._angle_spacing()) is None:
            return None
        mark = self._new_mark(Angle, vertex)
        mark.end, mark.second = first_end, second_end
        self._place_mark(mark)
        self.marks_changed.emit(self._mark_count())
        return self._angle_measurement(mark)

    def set_reference_line(self, ends: tuple[tuple[float, float], tuple[float, float]] | None) -> None:
        """Draw where another image's plane cuts this one (``zsmed.dicom.geometry.reference_line``: ends in
        stored pixels, column, row), or nothing; it turns and zooms with the image."""
        self._reference = ends
        self._place_reference()

    def reference_line(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        return self._reference

    def set_cursor_point(self, point: tuple[float, float] | None, on: tuple[Path, int] | None = None) -> None:
        """Mark ``point`` (stored pixels, column, row) of the image ``on`` (file, frame; default the one
        shown) with the 3D cursor's cross, or nothing; it shows only while that image does."""
        self._cursor = point
        path = self.current_path()
        self._cursor_on = on if on is not None else ((path, self.current_frame()) if path is not None else None)
        self._place_reference()

    def paths(self) -> list[Path]:
        """The files of the series shown, in order."""
        return list(self._paths)

    def cursor_point(self) -> tuple[float, float] | None:
        return self._cursor

    def _locate(self, at: QPointF) -> None:
        """Shift+click: the point under the mouse, marked here and asked for in the other windows."""
        if self._shown is None or not self._on_image(at):
            return
        point = self._image_point(at)
        self.set_cursor_point(point)
        self.locate_requested.emit(point)

    def _place_reference(self) -> None:
        cursor, path = self._cursor, self.current_path()
        if cursor is None or self._shown is None or self._cursor_on != (path, self.current_frame()):
            self._cursor_item.setVisible(False)
        else:
            where = self._view_point(cursor)
            self._cursor_item.setData([where.x()], [where.y()])
            self._cursor_item.setVisible(True)
        ends = self._reference
        if ends is None or self._shown is None:
            self._reference_item.setVisible(False)
            return
        start, end = self._view_point(ends[0]), self._view_point(ends[1])
        self._reference_item.setData([start.x(), end.x()], [start.y(), end.y()])
        self._reference_item.setVisible(True)

    def arrows(self) -> list[Arrow]:
        """The arrows on the image, oldest first."""
        return [Arrow(mark.start, mark.end, mark.note) for mark in self._arrows]

    def arrow(self, tail: tuple[float, float], head: tuple[float, float], note: str = "") -> Arrow | None:
        """An arrow from ``tail`` (where its note goes) to ``head`` (the finding it points at), points
        (column, row) of the stored image, as a drag in the arrow mode draws it; None when no image is
        shown or the arrow has no length."""
        if self._shown is None or tuple(tail) == tuple(head):
            return None
        mark = self._new_mark(_Arrow, (float(tail[0]), float(tail[1])))
        mark.end, mark.note = (float(head[0]), float(head[1])), note.strip()
        self._place_mark(mark)
        return Arrow(mark.start, mark.end, mark.note)

    def _ask_note(self, current: str = "") -> str | None:
        """An arrow's note from a small dialog, started at ``current``; None when it is cancelled."""
        text, ok = QInputDialog.getText(self, "Arrow", "Note (optional):", text=current)
        return text if ok else None

    def _double_click(self, at: QPointF) -> None:
        """A left double-click (view coordinates): in the arrow mode on an arrow, its note again; else the
        whole image again."""
        if not self.edit_note_at(at):
            self.fit()

    def edit_note_at(self, at: QPointF) -> bool:
        """In the arrow mode, a double-click on an arrow's tail or head (view coordinates ``at``) asks for
        its note again, started at the one it has (an empty answer removes it, Cancel keeps it). Returns
        whether there was an arrow to edit (else the double-click fits the image, as everywhere)."""
        target = self._hold_target(at) if self._arrow_mode else None
        if target is None or not isinstance(target[0], _Arrow):
            return False
        mark = target[0]
        note = self.ask_note(mark.note)
        if note is not None and mark in self._arrows:  # the arrow may have gone with its file meanwhile
            mark.note = note.strip()
            self._place_mark(mark)
            self.marks_changed.emit(self._mark_count())
        return True

    def stored_size(self) -> tuple[float, float]:
        """(width, height) in pixels of the image shown, as stored (before a rotation); (0, 0) when none."""
        return self._stored_size()

    def clear_measurements(self) -> None:
        """Remove the rulers, the regions of interest, the angles and the arrows."""
        for mark in self._marks():
            self._remove_mark(mark)
        self._drawing = None

    # cine
    def play(self) -> None:
        """Play through the frames and images, looping, at the file's frame rate (else 10 per second)."""
        if len(self._paths) < 2 and self.frame_count() < 2:
            return  # one picture: nothing to play
        self._cine.start(self._cine_interval())
        self._update_overlays(loading=self.is_loading())

    def stop_cine(self) -> None:
        if self._cine.isActive():
            self._cine.stop()
            self._update_overlays(loading=self.is_loading())

    def toggle_cine(self) -> None:
        if self._cine.isActive():
            self.stop_cine()
        else:
            self.play()

    def is_playing(self) -> bool:
        return self._cine.isActive()

    def cine_rate(self) -> float:
        """Frames per second the cine plays at: the file's, else ``DEFAULT_CINE_FPS``."""
        frame = self._shown
        rate = frame.frame_rate if frame is not None else None
        return float(rate) if rate else DEFAULT_CINE_FPS

    def set_key_images(self, lines: dict[Path, str]) -> None:
        """The images flagged as key images and the line each shows above its position ("★ Key image")."""
        self._key_images = {str(path): line for path, line in lines.items()}
        self._update_overlays()

    def overlay_text(self) -> dict[str, str]:
        """The corner texts (tl, tr, bl, br) and the orientation letters at the edges (l, r, t, b)."""
        return {name: label.text() for name, label in self._corners.items()}

    def rendered_image(self) -> np.ndarray:
        """The uint8 image on screen (after window/level, inversion, rotation and flip); empty when none."""
        return self._rendered.copy()

    def snapshot(self, *, with_text: bool, min_size: int = SNAPSHOT_MIN_SIZE,
                 blank: Callable[[QImage], QImage] | None = None) -> QImage:
        """The image as the reader sees it, for a report, a teaching file or a meeting: its window/level,
        inversion, rotation and flip, the rulers, regions of interest, (finished) angles and arrows with their
        labels (an arrow's note), and the edges' orientation letters (while the overlays are shown: they name no one).
        ``with_text`` adds the corner texts (patient, IDs, dates, institution, the series' title), whether
        or not they are shown now; without it the picture carries no patient details. Raises
        ``SnapshotError`` (one line) with no image shown, or while the image asked for is still loading.

        The whole image at its stored resolution, not the view on the screen (whatever the zoom and pan):
        the picture is drawn here from the rendered pixels and the marks' stored points (nothing on the
        screen is touched, hidden or moved), rather than grabbed from the view, which would give the
        screen's pixels, cropped to the zoom and padded with the view's black. Non-square pixels are
        stretched to their true aspect (never shrunk); an image under ``min_size`` pixels on its long side
        is enlarged smoothly to it, so that the labels stay legible beside its pixels (0: as stored); one
        over ``SNAPSHOT_MAX_SIZE`` is reduced to it. Texts and lines are the screen's size up to a
        ``_SNAPSHOT_TEXT_AT`` px long side and grow with larger pictures. ``blank`` is applied to the picture
        before the marks are drawn on it (the words burned into the pixels blanked, the marks' labels kept)."""
        frame = self._shown
        rect = self._image_rect()
        if frame is None or rect is None or self._rendered.size == 0:
            raise SnapshotError("No image to save or copy: open a series first")
        if self.is_loading():
            raise SnapshotError("The image is still loading: try again in a moment")
        shown_width, shown_height = turned_size(self._stored_size(), self._turn)
        long_side = max(rect.width(), rect.height())
        scale = max(1.0, shown_height / rect.height(), min_size / long_side)
        scale = min(scale, SNAPSHOT_MAX_SIZE / long_side)
        width, height = max(round(rect.width() * scale), 1), max(round(rect.height() * scale), 1)
        picture = _qimage(self._rendered).convertToFormat(QImage.Format.Format_RGB32)
        if (width, height) != (shown_width, shown_height):
            picture = picture.scaled(width, height, Qt.AspectRatioMode.IgnoreAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation)  # interpolated, as on the screen
        if blank is not None:
            picture = blank(picture)
        sx, sy = width / rect.width(), height / rect.height()
        grow = max(1.0, max(width, height) / _SNAPSHOT_TEXT_AT)
        room = QRectF(0.0, 0.0, float(width), float(height))

        def at(point: tuple[float, float]) -> QPointF:
            view = self._view_point(point)
            return QPointF(view.x() * sx, view.y() * sy)

        # the texts' places first: the marks' labels keep off them, as on the screen
        texts: list[tuple[QRectF, int, str, QFont, QColor]] = []
        margin = 6.0 * grow
        for name, text in self._overlay_texts(screen=False).items():
            edge = len(name) == 1
            if not text or not (with_text or (edge and self._overlays_on)):
                continue
            font = QFont()
            font.setPixelSize(round((14 if edge else 12) * grow))
            font.setBold(edge)
            if edge:
                flags = int(Qt.AlignmentFlag.AlignCenter)
            else:
                flags = int((Qt.AlignmentFlag.AlignRight if name.endswith("r") else Qt.AlignmentFlag.AlignLeft)
                            | (Qt.AlignmentFlag.AlignTop if name.startswith("t") else Qt.AlignmentFlag.AlignBottom))
            metrics = QFontMetricsF(font)
            if not edge:  # each corner keeps to its half, clear of the other corner and of the letters between
                half = max(width / 2 - margin - 10 * grow, 40.0)
                text = "\n".join(metrics.elidedText(line, Qt.TextElideMode.ElideRight, half)
                                 for line in text.splitlines())
            size = metrics.boundingRect(QRectF(), flags, text).size()
            if edge:
                x = {"l": margin, "r": width - size.width() - margin}.get(name, (width - size.width()) / 2)
                y = {"t": margin, "b": height - size.height() - margin}.get(name, (height - size.height()) / 2)
            else:
                x = width - size.width() - margin if name.endswith("r") else margin
                y = margin if name.startswith("t") else height - size.height() - margin
            texts.append((QRectF(QPointF(max(x, 0.0), max(y, 0.0)), size), flags, text,
                          font, QColor(_EDGE_COLOUR if edge else _OVERLAY_COLOUR)))

        painter = QPainter(picture)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
            label_font = QFont()
            label_font.setPixelSize(round(13 * grow))
            label_font.setBold(True)
            pad = 4.0 * grow  # the screen label's margin around its text
            keep_off = [box for box, *_ in texts]
            for mark in self._marks():
                if not self._finished(mark):
                    continue  # an angle whose second end is not placed: not a measurement yet
                start, end = at(mark.start), at(mark.end)
                corners = [at(point) for point in mark.points()]
                for pen_colour, pen_width in (("#000000", 4.0), (_RULER_COLOUR, 2.0)):  # the dark halo, then the line
                    pen = QPen(QColor(pen_colour), pen_width * grow)
                    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
                    painter.setPen(pen)
                    painter.setBrush(Qt.BrushStyle.NoBrush)
                    if isinstance(mark, _Roi):
                        painter.drawEllipse(QRectF(start, end).normalized())
                    elif isinstance(mark, Angle):  # first end, vertex, second end
                        painter.drawPolyline(QPolygonF([corners[1], corners[0], corners[2]]))
                    elif isinstance(mark, _Arrow):  # the shaft, then the head's barbs
                        left, right = _arrowhead(start, end, _ARROWHEAD_PIXELS * grow)
                        painter.drawLine(start, end)
                        painter.drawPolyline(QPolygonF([left, end, right]))
                    else:
                        painter.drawLine(start, end)
                if isinstance(mark, _Roi):
                    label = self._region(mark).text
                elif isinstance(mark, Angle):
                    label = self._angle_measurement(mark).text
                elif isinstance(mark, Ruler):
                    label = self._measurement(mark).text
                elif isinstance(mark, _Arrow) and mark.note:
                    label = mark.note
                else:
                    continue
                flags = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
                size = QFontMetricsF(label_font).boundingRect(QRectF(), flags, label).size()
                size = QSizeF(size.width() + 2 * pad, size.height() + 2 * pad)
                _spot, _anchor, box = place_label(_label_spots(mark, corners), size, room, keep_off)
                keep_off.append(box)
                painter.fillRect(box, QColor(0, 0, 0, 170))
                painter.setPen(QColor(_RULER_COLOUR))
                painter.setFont(label_font)
                painter.drawText(box.adjusted(pad, pad, -pad, -pad), flags, label)
            for box, flags, text, font, colour in texts:
                painter.setFont(font)
                shadow = max(1.0, grow)
                painter.setPen(QColor(0, 0, 0))
                painter.drawText(box.translated(shadow, shadow), flags, text)
                painter.setPen(colour)
                painter.drawText(box, flags, text)
        finally:
            painter.end()
        return picture

    def message(self) -> str:
        """The text shown in place of an image (a decode error, 'No image'); '' when an image is shown."""
        return self._message

    def current_frame_data(self) -> ModalityFrame | None:
        return self._shown

    def is_cached(self, path: Path, frame: int = 0) -> bool:
        """Whether that frame is decoded and kept (the one shown, or a neighbour fetched ahead)."""
        return (str(path), frame) in self._cache

    # --- navigation and decoding ------------------------------------------------------------------
    def _key(self) -> Key:
        return str(self._paths[self._index]), self._frame

    def _go_to(self, index: int, frame: int) -> None:
        if not self._paths:
            return
        index = min(max(int(index), 0), len(self._paths) - 1)
        frames = self._frames_of.get(str(self._paths[index]))
        frame = max(int(frame), 0) if frames is None else min(max(int(frame), 0), frames - 1)
        if (index, frame) == (self._index, self._frame):
            return
        if index != self._index:
            self.clear_measurements()  # the marks belong to one file: its frames share the geometry
        self._index, self._frame = index, frame
        self._show_current()

    def _after(self, index: int, frame: int) -> tuple[int, int]:
        """The frame the cine shows next: the next frame, else the next image, else the first again."""
        if frame < self._frames_of.get(str(self._paths[index]), 1) - 1:
            return index, frame + 1
        return (index + 1, 0) if index < len(self._paths) - 1 else (0, 0)

    def _cine_tick(self) -> None:
        if not self._paths:
            self.stop_cine()
            return
        if self.is_loading():
            return  # the last frame asked for is still decoding: skip this tick rather than ask for more
        self._go_to(*self._after(self._index, self._frame))

    def _cine_interval(self) -> int:
        return max(round(1000.0 / self.cine_rate()), 1)

    def _show_current(self) -> None:
        self._update_sliders()
        key = self._key()
        if key in self._cache:
            self._cache.move_to_end(key)
            self._display(key, self._cache[key])
        elif key in self._failed:
            self._show_failure(key, self._failed[key])
        else:
            self._update_overlays(loading=True)
        self._request()

    def _wanted(self) -> list[Key]:
        """The frame shown first, then its neighbours (next, previous, the ones after)."""
        if not self._paths:
            return []
        keys = [self._key()]
        path, frame = self._key()
        frames = self._frames_of.get(path)
        if frames is not None:
            keys += [(path, f) for f in (frame + 1, frame - 1, frame + 2) if 0 <= f < frames]
        for index in (self._index + 1, self._index - 1, self._index + 2):
            if 0 <= index < len(self._paths):
                keys.append((str(self._paths[index]), 0))
        return keys

    def _request(self) -> None:
        if self._in_flight is not None:
            return
        around = self._wanted()
        missing = [k for k in around if k not in self._cache and k not in self._failed]
        if not missing:
            return
        key = missing[0]
        if key != around[0]:  # a neighbour: only when it fits beside the others kept around this one
            kept = sum(_nbytes(self._cache[k]) for k in around if k in self._cache)
            size = _nbytes(self._shown) if self._shown is not None else 0
            if kept + size > self._cache_bytes:
                return
        self._in_flight = key
        worker = create_worker(decode_result, self._decode, key, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._decoded)
        self._worker = worker
        worker.start()

    def _decoded(self, result: Result) -> None:
        key, frame, error = result
        if key != self._in_flight:
            return
        self._in_flight = None
        self._worker = None
        if frame is None:
            self._failed[key] = error or f"{Path(key[0]).name}: cannot be shown"
        else:
            self._frames_of[key[0]] = max(int(frame.frames), 1)
            self._cache[key] = frame
            self._evict()
        if self._paths and key == self._key():
            if frame is None:
                self._show_failure(key, self._failed[key])
            else:
                self._display(key, frame)
            self._update_sliders()
        self._request()

    def _cache_total(self) -> int:
        return sum(_nbytes(f) for f in self._cache.values())

    def _evict(self) -> None:
        """Least recently used first; the frames around the one shown last, the one shown never."""
        total = self._cache_total()
        wanted = self._wanted()
        current = wanted[0] if wanted else None
        order = [k for k in self._cache if k not in wanted] + [k for k in reversed(wanted) if k in self._cache]
        for key in order:
            if total <= self._cache_bytes:
                break
            if key != current:
                total -= _nbytes(self._cache.pop(key))

    # --- drawing ----------------------------------------------------------------------------------
    def _display(self, key: Key, frame: ModalityFrame) -> None:
        new_image = key != self._shown_key  # another file, or another frame of the same file
        self._shown, self._shown_key = frame, key
        self._message = ""
        self._message_label.hide()
        domain = (frame.colour, frame.hounsfield, frame.fact("modality"))
        if self._option is None or self._domain != domain:
            self._option = frame.default_window
            self._option_name = "file 1" if frame.windows else "auto"
            self._domain = domain
            wanted, self._wanted_window = self._wanted_window, ""
            if wanted and wanted in self.presets():  # a CT window on a CT image, a file's window it has
                option = self._preset_option(wanted, frame)
                if option is not None:
                    self._option, self._option_name = option, wanted
        elif self._option_name.startswith("file "):  # the file's own window: this image's, if it has one
            number = int(self._option_name.split()[1])
            if number <= len(frame.windows):
                self._option = frame.windows[number - 1]
        self._render()
        shape = (frame.values.shape[:2], round(frame.pixel_aspect, 6))
        if shape != self._fitted_shape:
            self._fitted_shape = shape
            self.fit()
        self._update_overlays()
        if self._cine.isActive() and self._cine.interval() != self._cine_interval():
            self._cine.setInterval(self._cine_interval())  # a file of the series with its own rate
        if new_image:
            self.current_changed.emit(Path(key[0]))

    def _render(self) -> None:
        frame, option = self._shown, self._option
        if frame is None or option is None:
            return
        image = turned_image(display_uint8(frame, option, invert=self._invert), self._turn)
        self._rendered = image
        self.image_item.setImage(image, levels=(0, 255), autoLevels=False)
        rect = self._image_rect()
        assert rect is not None
        self.image_item.setRect(rect)
        self._place_marks()
        self._update_overlays()

    def _stored_size(self) -> tuple[float, float]:
        """(width, height) of the stored image shown, in pixels; (0, 0) when none."""
        if self._shown is None:
            return 0.0, 0.0
        height, width = self._shown.values.shape[:2]
        return float(width), float(height)

    def _image_rect(self) -> QRectF | None:
        """Where the image, turned, lies in the view: one unit per shown column, so shown rows are
        as tall as the pixel aspect makes them (its inverse after a quarter turn)."""
        frame = self._shown
        if frame is None:
            return None
        width, height = turned_size(self._stored_size(), self._turn)
        aspect = frame.pixel_aspect if self._turn[1] == 0 else 1.0 / frame.pixel_aspect
        return QRectF(0.0, 0.0, width, height * aspect)

    # --- rulers, regions of interest and angles --------------------------------------------------
    def _view_point(self, point: tuple[float, float]) -> QPointF:
        """A stored-image point (column, row) in the view's coordinates, wherever the turn has put it."""
        shown = turned_point(point, self._stored_size(), self._turn)
        return self.image_item.mapToParent(QPointF(*shown))

    def _image_point(self, view_point: QPointF, *, keep_on_image: bool = True) -> tuple[float, float]:
        """A point in the view's coordinates as a stored-image point (column, row), kept on the image
        unless ``keep_on_image`` is False."""
        shown = self.image_item.mapFromParent(view_point)
        width, height = self._stored_size()
        x, y = turned_point((shown.x(), shown.y()), turned_size((width, height), self._turn), inverse_turn(self._turn))
        if not keep_on_image:
            return x, y
        return min(max(x, 0.0), width), min(max(y, 0.0), height)

    def _on_image(self, view_point: QPointF) -> bool:
        rect = self._image_rect()
        return rect is not None and rect.contains(view_point)

    def _drag_mark(self, start: bool, finish: bool, down: QPointF, now: QPointF) -> None:
        """Left drag while measuring (or in the region-of-interest or angle mode): a ruler from where the
        button went down to the mouse (view coordinates), the ellipse inscribed in the rectangle they
        span, or an angle's first arm from its vertex (the press), its figures shown as it is drawn; with
        an angle open, a drag places its second end where it ends, as a click does. A drag begun off the
        image draws nothing. The points are taken back through the turn to the stored image, where the
        mark keeps them."""
        if start:
            self._held = None
            if self._open_angle is not None:
                self._drawing = self._open_angle
            else:
                self._held = self._take_hold(down)
                if self._held is not None:
                    self._drawing = self._held.mark
                else:
                    kind: type[Mark] = (_Roi if self._roi_mode else Angle if self._angle_mode
                                        else _Arrow if self._arrow_mode else Ruler)
                    self._drawing = self._new_mark(kind, self._image_point(down)) if self._on_image(down) else None
        mark, held = self._drawing, self._held
        if mark is None or self._shown is None:
            return
        if isinstance(mark, Angle) and mark is self._open_angle:
            mark.second = self._image_point(now)
        elif held is not None and held.point < 0:
            mark.start, mark.end = self._moved_region(held, self._image_point(now))
        elif held is not None:
            mark.set_point(held.point, self._image_point(now))
        else:
            mark.end = self._image_point(now)
        self._place_mark(mark)
        if not finish:
            return
        self._drawing, self._held = None, None
        if isinstance(mark, Angle) and mark is self._open_angle:
            self._finish_angle(mark)
        elif held is None and is_click(self.vb, down, now):
            self._remove_mark(mark)  # a jittery click, not a drag: nothing to measure
        elif held is None and isinstance(mark, Angle) and mark.end == mark.start:
            self._remove_mark(mark)  # dragged off the image from its edge: an arm of no length, no angle to make
        elif held is None and isinstance(mark, Angle):
            self._open_angle = mark  # the first arm drawn: the second now follows the mouse
        elif held is None and isinstance(mark, _Arrow) and mark.end == mark.start:
            self._remove_mark(mark)  # dragged off the image from its edge: an arrow of no length
        elif held is None and isinstance(mark, _Arrow):
            self._ask_arrow_note(mark)
        elif held is not None:
            if isinstance(mark, Angle) and self._degrees(mark) is None:  # a point put on another: no angle
                for index, point in enumerate(held.before):
                    mark.set_point(index, point)
                self._place_mark(mark)
            self.marks_changed.emit(self._mark_count())  # the same count, other figures

    def _click(self, at: QPointF) -> None:
        """A left click (view coordinates): with an angle open, its second end goes there and the angle is
        finished (unless the click is on the vertex: it stays open)."""
        mark = self._open_angle
        if mark is None or self._shown is None:
            return
        mark.second = self._image_point(at)
        self._place_mark(mark)
        self._finish_angle(mark)

    def _ask_arrow_note(self, mark: _Arrow) -> None:
        """The note for an arrow just drawn (``ask_note``): drawn at its tail; none when cancelled."""
        note = self.ask_note("")
        if note and mark in self._arrows:  # the arrow may have gone with its file while the dialog was open
            mark.note = note.strip()
            self._place_mark(mark)

    def _finish_angle(self, mark: Angle) -> None:
        if self._degrees(mark) is None:
            return  # the second end on the vertex: no angle yet, the arm goes on following the mouse
        self._open_angle = None
        self._place_mark(mark)
        self.marks_changed.emit(self._mark_count())

    def _hold_target(self, at: QPointF) -> tuple[Mark, int] | None:
        """What a left press at ``at`` (view coordinates) would take hold of, as PACS viewers do: while
        measuring, a ruler by an end within a few screen pixels (in the arrow mode, an arrow, by its tail or
        its head, the same way); in the angle mode, an angle by one of its
        three points, the same way; in the region mode, a region by its inside. Returns the mark and which
        point (0 its start: a ruler's start, an angle's vertex; 1 its end; 2 an angle's second end; -1 a
        region, whole); None: the press draws a new mark."""
        if self.vb.mapViewToDevice(at) is None:
            return None  # the view is not laid out yet
        if self._measuring or self._angle_mode or self._arrow_mode:
            marks: list[Mark] = (list(self._rulers) if self._measuring else list(self._arrows) if self._arrow_mode
                                 else [mark for mark in self._angles if self._finished(mark)])
            points = ((mark, [self._view_point(point) for point in mark.points()]) for mark in marks)
            return nearest_point(self.vb, at, points)
        if self._roi_mode:
            for region in reversed(self._rois):  # the last drawn is on top
                if inside_ellipse(at, self._view_point(region.start), self._view_point(region.end)):
                    return region, -1
        return None

    def _take_hold(self, down: QPointF) -> _Held | None:
        """Take hold of what a press at ``down`` is on (``_hold_target``): a ruler's end then follows the
        mouse (it is made the ruler's ``end``), so does an angle's point, and a region moves whole."""
        target = self._hold_target(down)
        if target is None:
            return None
        mark, point = target
        if isinstance(mark, Ruler):
            mark.hold_by(point)
            point = 1
        return _Held(mark, point, mark.points(), self._image_point(down))

    def _hover(self, scene_pos: QPointF) -> None:
        """The mouse moved over the view: the value of the pixel under it in the bottom-right corner
        (none off the image); with an angle open, its second arm follows the mouse; while measuring, in
        the region or the angle mode, a cursor that says whether a press there moves a mark (over a
        ruler's end or an angle's point, inside a region) or draws a new one."""
        if self._shown is None:
            return
        at = self.vb.mapSceneToView(scene_pos)
        self._pointer = self._image_point(at, keep_on_image=False)
        if self._open_angle is not None and self._drawing is None:
            self._open_angle.second = self._image_point(at)
            self._place_mark(self._open_angle)
        elif self._tool_on() and self._drawing is None:
            set_marking_cursor(self.view, True, over_mark=self._hold_target(at) is not None)
        self._update_zoom_overlay()

    def pixel_value(self) -> str:
        """The pixel under the mouse and its value, as the bottom-right corner shows it ("" off the image)."""
        if self._shown is None or self._pointer is None:
            return ""
        return pixel_value_text(self._shown, self._pointer)

    def _moved_region(self, held: _Held, now: tuple[float, float]) -> tuple[tuple[float, float], tuple[float, float]]:
        """A held region's corners moved by the mouse's travel since the press (in stored pixels), the
        whole region kept on the image."""
        start, end = moved_within(held.before, (now[0] - held.down[0], now[1] - held.down[1]), self._stored_size())
        return start, end

    def _marks(self) -> list[Mark]:
        return [*self._rulers, *self._rois, *self._angles, *self._arrows]

    def _finished(self, mark: Mark) -> bool:
        """Whether a mark measures something yet: an angle once its second end is placed."""
        return not isinstance(mark, Angle) or (mark.second is not None and mark is not self._open_angle)

    def _mark_count(self) -> int:
        """The rulers, the regions and the finished angles: what ``marks_changed`` tells."""
        return sum(1 for mark in self._marks() if self._finished(mark))

    def _remove_mark(self, mark: Mark) -> None:
        counted = self._finished(mark)
        if isinstance(mark, _Roi):
            self._rois.remove(mark)
        elif isinstance(mark, Angle):
            self._angles.remove(mark)
        elif isinstance(mark, _Arrow):
            self._arrows.remove(mark)
        elif isinstance(mark, Ruler):
            self._rulers.remove(mark)
        if mark is self._open_angle:
            self._open_angle = None
        if mark is self._drawing:
            self._drawing, self._held = None, None
        mark.remove_from(self.vb)
        if counted:
            self.marks_changed.emit(self._mark_count())

    def _new_mark(self, kind: type[_M], point: tuple[float, float]) -> _M:
        """A ruler, a region of interest or an angle from ``point`` to itself, all drawn in the same colour
        and type (an angle is told of once it is finished)."""
        mark = kind.drawn_in(self.vb, point)  # the reformat window draws its rulers alike
        if isinstance(mark, _Roi):
            self._rois.append(mark)
        elif isinstance(mark, Angle):
            self._angles.append(mark)
        elif isinstance(mark, _Arrow):
            self._arrows.append(mark)
        elif isinstance(mark, Ruler):
            self._rulers.append(mark)
        if not isinstance(mark, Angle):
            self.marks_changed.emit(self._mark_count())
        return mark

    def _measurement(self, ruler: Ruler) -> Measurement:
        frame = self._shown
        spacing = frame.spacing if frame is not None else None
        length = ruler_length(ruler.start, ruler.end, spacing)
        if spacing is None:  # pixels, said so: a photograph or a file without a pixel spacing
            return Measurement(ruler.start, ruler.end, length, "px", f"{length:.1f} px")
        where = _SPACING_WHERE.get(frame.spacing_source, "") if frame is not None else ""
        text = " ".join(x for x in (f"{length:.1f} mm", where) if x)
        return Measurement(ruler.start, ruler.end, length, "mm", text)

    def _angle_spacing(self) -> tuple[float, float] | None:
        """The (row, column) spacing angles are measured with: the pixel spacing; without one, the pixel
        aspect the image is shown with (a Pixel Aspect Ratio, else square pixels). Only the ratio matters
        to an angle, so a spacing at the detector or on the film gives the angle in the patient too."""
        frame = self._shown
        if frame is None:
            return None
        return frame.spacing if frame.spacing is not None else (frame.pixel_aspect, 1.0)

    def _degrees(self, mark: Angle) -> float | None:
        if mark.second is None:
            return None
        return angle_degrees(mark.end, mark.start, mark.second, self._angle_spacing())

    def _angle_measurement(self, mark: Angle) -> AngleMeasurement:
        degrees = self._degrees(mark)
        assert mark.second is not None and degrees is not None  # a finished angle has two arms
        return AngleMeasurement(mark.end, mark.start, mark.second, degrees, angle_text(degrees))

    def _region(self, roi: _Roi) -> RegionOfInterest:
        """The region's statistics on the frame shown (computed again only when the frame or the
        corners have changed: not on a zoom or a pan), and its text."""
        frame, cached = self._shown, roi.cached
        if frame is not None and (cached is None or cached[0] is not frame or cached[1:3] != (roi.start, roi.end)):
            cached = roi.cached = (frame, roi.start, roi.end, roi_statistics(frame, roi.start, roi.end))
        assert cached is not None  # placed on a frame shown
        text = roi_text(cached[3], cached[0].spacing_source if cached[0].spacing is not None else "")
        return RegionOfInterest(roi.start, roi.end, cached[3], text)

    def _place_mark(self, mark: Mark) -> None:
        start, end = self._view_point(mark.start), self._view_point(mark.end)
        if isinstance(mark, _Roi):  # the ellipse inscribed in the rectangle the two corners span on the screen
            mark.line.setData(*ellipse_outline(start, end))
            text = self._region(mark).text
        elif isinstance(mark, Angle):  # first end, vertex, second end
            points = [end, start] if mark.second is None else [end, start, self._view_point(mark.second)]
            mark.line.setData([p.x() for p in points], [p.y() for p in points])
            degrees = self._degrees(mark)
            text = "" if degrees is None else angle_text(degrees)
        elif isinstance(mark, _Arrow):  # the shaft, then the head's barbs: one polyline
            size = _ARROWHEAD_PIXELS * float(self.vb.viewPixelSize()[0])  # view units are square on the screen
            left, right = _arrowhead(start, end, size)
            points = [start, end, left, end, right]
            mark.line.setData([p.x() for p in points], [p.y() for p in points])
            text = mark.note
        else:
            mark.line.setData([start.x(), end.x()], [start.y(), end.y()])
            text = self._measurement(mark).text if isinstance(mark, Ruler) else ""
        mark.label.setText(text)
        mark.label.setVisible(bool(text))
        others = [other.box for other in self._marks() if other is not mark and other.box is not None]
        spots = _label_spots(mark, [self._view_point(point) for point in mark.points()])
        box = place_mark_label(self.view, self.vb, mark.label, spots, self._corners.values(), others)
        mark.box = box if text else None

    def _place_marks(self, *args: Any) -> None:
        self._place_reference()  # turned and zoomed with the image, like the marks
        if self._shown is not None:
            place_in_turn(self._marks(), self._place_mark)

    def _show_failure(self, key: Key, message: str) -> None:
        self._shown, self._shown_key = None, key
        self.image_item.clear()
        self._rendered = np.zeros((0, 0), dtype=np.uint8)
        self._show_message(message)
        self._update_overlays()

    def _show_message(self, text: str) -> None:
        self._message = text
        self._message_label.setText(text)
        self._message_label.show()
        self._place_labels()

    def _set_option(self, option: VoiOption, name: str) -> None:
        self._option, self._option_name = option, name
        if self._shown is not None:
            self._domain = (self._shown.colour, self._shown.hounsfield, self._shown.fact("modality"))
        self._render()

    def _drag_window(self, start: bool, dx: float, dy: float) -> None:
        """Right-button drag: left-right changes the width, up-down the level (down = darker)."""
        frame = self._shown
        if frame is None:
            return
        if start or self._drag_start is None:
            current = self.window_level()
            if current is None:
                auto = frame.auto
                assert auto.center is not None and auto.width is not None
                current = (auto.center, auto.width)
            self._drag_start = current
        centre, width = self._drag_start
        unit = max(float(frame.auto.width or 1.0), 1.0) / 256.0  # a full sweep over ~256 px spans the image
        self.set_window(centre + dy * unit, max(width + dx * unit, 1.0))

    # --- sliders and overlays ---------------------------------------------------------------------
    def _update_sliders(self) -> None:
        count = len(self._paths)
        frames = self.frame_count()
        by_frames = count == 1 and frames > 1
        self.slider.blockSignals(True)
        self.frame_slider.blockSignals(True)
        try:
            if by_frames:
                self.slider.setRange(0, frames - 1)
                self.slider.setValue(self._frame)
                self.slider_label.setText(f"frame {self._frame + 1}/{frames}")
            else:
                self.slider.setRange(0, max(count - 1, 0))
                self.slider.setValue(self._index)
                self.slider_label.setText(f"image {self._index + 1}/{count}" if count else "")
            self._slider_row.setVisible(count > 1 or by_frames)
            self.frame_slider.setRange(0, max(frames - 1, 0))
            self.frame_slider.setValue(self._frame)
            self.frame_label.setText(f"frame {self._frame + 1}/{frames}")
            self._frame_row.setVisible(count > 1 and frames > 1)
        finally:
            self.slider.blockSignals(False)
            self.frame_slider.blockSignals(False)

    def _slider_moved(self, value: int) -> None:
        if len(self._paths) == 1:
            self.go_to(0, value)
        else:
            self.go_to(value, 0)

    def _frame_slider_moved(self, value: int) -> None:
        self.go_to(self._index, value)

    def _update_overlays(self, loading: bool = False) -> None:
        texts = self._overlay_texts(loading=loading)
        for name, label in self._corners.items():
            label.setText(texts[name])
            label.setVisible(self._overlays_on and bool(texts[name]))
        self._place_labels()

    def _overlay_texts(self, *, loading: bool = False, screen: bool = True) -> dict[str, str]:
        """The corner texts (tl, tr, bl, br) and the edges' orientation letters (l, r, t, b); with
        ``screen`` False, as a snapshot shows them: without what only the screen has (the zoom, the tool
        in use, the cine, 'loading…')."""
        frame = self._shown
        texts = dict.fromkeys(self._corners, "")
        if frame is not None:
            fact = frame.fact
            stored = {edge: fact(f"edge_{name}") for edge, name in
                      (("l", "left"), ("r", "right"), ("t", "top"), ("b", "bottom"))}
            texts.update(turned_edges(stored, self._turn))  # the letters follow a rotation or a flip
            patient_id = f"[{fact('patient_id')}]" if fact("patient_id") else ""
            patient = " ".join(x for x in (fact("patient"), patient_id) if x)
            birth = fact("birth_date") and f"born {fact('birth_date')}"
            born = " · ".join(x for x in (birth, fact("sex") and f"sex {fact('sex')}") if x)
            study = " ".join(x for x in (fact("study_date"), fact("study_time")) if x)
            texts["tl"] = "\n".join(x for x in (patient, born, study, fact("study"), fact("institution")) if x)
            series = fact("series_number") and f"Series {fact('series_number')}"
            head = " · ".join(x for x in (fact("modality"), series, fact("series")) if x)
            texts["tr"] = "\n".join(x for x in (self._title, head, self._window_text()) if x)
            position = f"Image {self._index + 1}/{len(self._paths)}" if len(self._paths) > 1 else ""
            instance = fact("instance_number") and f"Instance {fact('instance_number')}"
            frames = f"Frame {self._frame + 1}/{frame.frames}" if frame.frames > 1 else ""
            location = fact("slice_location")
            where = ""
            if location:
                with contextlib.suppress(ValueError):
                    where = f"Location {float(location):.1f} mm"
            thickness = ""
            if fact("slice_thickness"):
                with contextlib.suppress(ValueError):
                    thickness = f"Thickness {float(fact('slice_thickness')):.1f} mm"
            cine = f"Cine {self.cine_rate():.3g} fps" if screen and self._cine.isActive() else ""
            key = self._key_images.get(str(self.current_path()), "")
            texts["bl"] = "\n".join(x for x in (key, " · ".join(y for y in (position, instance) if y), frames, where,
                                               thickness, cine) if x)
            texts["br"] = self._zoom_text(screen=screen)
        elif self._paths:
            texts["tr"] = self._title
            texts["bl"] = f"Image {self._index + 1}/{len(self._paths)}" if len(self._paths) > 1 else ""
        if loading and self._paths:
            texts["bl"] = "\n".join(x for x in (texts["bl"], "loading…") if x)
        return texts

    def _window_text(self) -> str:
        frame, option = self._shown, self._option
        if frame is None or option is None:
            return ""
        if option.lut_index is not None:
            text = f"VOI LUT: {option.label}"
        elif option.center is None or option.width is None:
            text = ""
        elif frame.colour:
            if self._option_name == "auto" and not self._invert:
                return ""  # a photograph or colour image shown as it is: no window to report
            text = f"W {option.width:.0f} L {option.center:.0f}"
        else:
            text = f"W {_num(option.width)} L {_num(option.center)}"
        name = self._option_name
        if name and name != "custom":
            label = option.label if name.startswith("file ") and option.label else name
            text = f"{text} ({label})" if text else label
        if self._invert:
            text += " · inverted"
        return text

    def _zoom_text(self, *, screen: bool = True) -> str:
        """The bottom-right corner: the tool in use and the zoom (on the screen only), the pixel
        spacing and the stored size."""
        frame = self._shown
        if frame is None:
            return ""
        lines = ["Measuring: left drag (M: stop)"] if screen and self._measuring else []
        if screen and self._roi_mode:
            lines.append("Region of interest: left drag (E: stop)")
        if screen and self._angle_mode:
            lines.append("Angle: drag the first arm, then click the second (N: stop)")
        if screen and self._arrow_mode:
            lines.append("Arrow: drag from the note to the finding (T: stop)")
        if screen:
            lines.append(f"Zoom {self.zoom() * 100:.0f} %")
            probe = self.pixel_value()
            if probe:
                lines.insert(0, probe)
        if frame.spacing is not None:
            where = _SPACING_WHERE.get(frame.spacing_source, "")
            lines.append(" ".join(x for x in (f"Pixel {frame.spacing[0]:.3g} x {frame.spacing[1]:.3g} mm", where) if x))
        if frame.fact("size"):
            lines.append(frame.fact("size"))
        return "\n".join(lines)

    def _update_zoom_overlay(self, *args: Any) -> None:
        if self._shown is not None:
            self._corners["br"].setText(self._zoom_text())
            self._corners["br"].setVisible(self._overlays_on)
            self._place_labels()

    def _place_labels(self) -> None:
        place_texts(self.view, self._corners, self._message_label)

    def hideEvent(self, event: QHideEvent) -> None:
        self.stop_cine()  # a viewer out of sight has nothing to play for, and should not keep decoding
        super().hideEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.view and event.type() == QEvent.Type.Resize:
            self._place_labels()
        if watched is self.view.viewport() and event.type() == QEvent.Type.Leave and self._pointer is not None:
            self._pointer = None  # the mouse left the image: no value to show
            self._update_zoom_overlay()
        return super().eventFilter(watched, event)

    def event(self, event: QEvent) -> bool:
        # Esc and Delete are the window's shortcuts too (Esc cancels a scan): while the viewer has
        # rulers, regions or angles to remove, a measuring, a region-of-interest or angle mode or a cine
        # to stop, they are the viewer's
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            busy = bool(self._marks()) or self._tool_on() or self._cine.isActive()
            if event.key() in (Qt.Key.Key_Escape, Qt.Key.Key_Delete) and busy:
                event.accept()
                return True
        return super().event(event)

    # --- keys -------------------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        keys = Qt.Key
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if key in (keys.Key_Right, keys.Key_Down):
            self.next_image()
        elif key in (keys.Key_Left, keys.Key_Up):
            self.previous_image()
        elif key == keys.Key_Home:
            self.go_to(0, 0)
        elif key == keys.Key_End:  # the last image; in a single multi-frame file, its last frame
            if len(self._paths) == 1:
                self.go_to(0, self.frame_count() - 1)
            else:
                self.go_to(len(self._paths) - 1, 0)
        elif key == keys.Key_PageDown:
            self.stop_cine()
            self.series_step.emit(1)
        elif key == keys.Key_PageUp:
            self.stop_cine()
            self.series_step.emit(-1)
        elif keys.Key_1 <= key <= keys.Key_9:
            names = self.presets()
            number = int(key - keys.Key_1)
            if number < len(names):
                self.apply_preset(names[number])
                self.window_preset_chosen.emit(names[number])
        elif key == keys.Key_0:
            self.apply_preset("auto")
            self.window_preset_chosen.emit("auto")
        elif key == keys.Key_BracketRight or (key == keys.Key_R and ctrl):
            self.rotate(1)
        elif key == keys.Key_BracketLeft:
            self.rotate(-1)
        elif key == keys.Key_R:
            self.reset()
            self.window_preset_chosen.emit("")
        elif key == keys.Key_H:
            self.flip_horizontal()
        elif key == keys.Key_V:
            self.flip_vertical()
        elif key == keys.Key_M:
            self.toggle_measuring()
        elif key == keys.Key_E:
            self.toggle_roi()
        elif key == keys.Key_N:
            self.toggle_angle()
        elif key == keys.Key_T:
            self.toggle_arrow()
        elif key == keys.Key_Delete:
            self.clear_measurements()
        elif key == keys.Key_Escape and self._open_angle is not None:
            self._remove_mark(self._open_angle)  # only the angle begun: the others, and the mode, stay
        elif key == keys.Key_Escape:
            self.clear_measurements()
            self.stop_cine()
            self._set_tool("")
        elif key == keys.Key_P:
            self.toggle_cine()
        elif key == keys.Key_I:
            self.invert()
        elif key == keys.Key_F:
            self.fit()
        elif key == keys.Key_A:
            self.one_to_one()
        elif key in (keys.Key_Plus, keys.Key_Equal):
            self.zoom_by(1.25)
        elif key == keys.Key_Minus:
            self.zoom_by(0.8)
        elif key == keys.Key_O:
            self.toggle_overlays()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def scene_point(self, x: float, y: float) -> QPointF:
        """Where point (x, y) (column, row) of the stored image is in the view's scene, wherever a
        rotation or flip has put it; for tests and tools."""
        return self.vb.childGroup.mapToScene(self._view_point((x, y)))


def _label_spots(mark: Mark, points: Sequence[QPointF]) -> list[tuple[QPointF, QPointF]]:
    """Where a mark's label may go, best first, as (the point it goes past, the point it keeps away
    from), for the mark's ``points`` (``Mark.points``: in any pixels with square units): a ruler's past its
    end, else past its start (a region's past a corner, else the other); an angle's past the vertex,
    outside the angle, else past either arm's end, else inside the angle."""
    if isinstance(mark, _Arrow):  # its note at the tail, away from the head: off the finding
        return [(points[0], points[1])]
    if not isinstance(mark, Angle):
        return ruler_spots(points[0], points[1])
    return angle_spots(points)


def _arrowhead(tail: QPointF, head: QPointF, size: float) -> tuple[QPointF, QPointF]:
    """The ends of an arrowhead's two barbs at ``head``, pointing away from ``tail`` (in any pixels with
    square units), ``size`` long (shorter on a short arrow), 25° either side of the shaft."""
    shaft = head - tail
    length = math.hypot(shaft.x(), shaft.y())
    if length < 1e-9:
        return head, head
    back = -shaft / length * min(size, length * 0.6)
    turn = math.radians(25.0)
    barbs = []
    for sign in (1.0, -1.0):
        c, s = math.cos(sign * turn), math.sin(sign * turn)
        barbs.append(head + QPointF(back.x() * c - back.y() * s, back.x() * s + back.y() * c))
    return barbs[0], barbs[1]


def _qimage(pixels: np.ndarray) -> QImage:
    """A QImage (its own copy) of uint8 (H, W) grey or (H, W, 3) RGB pixels."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    grey = pixels.ndim == 2
    fmt = QImage.Format.Format_Grayscale8 if grey else QImage.Format.Format_RGB888
    return QImage(pixels.data, width, height, int(pixels.strides[0]), fmt).copy()


def _nbytes(frame: ModalityFrame) -> int:
    return int(frame.values.nbytes) + (int(frame.index.nbytes) if frame.index is not None else 0)


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.3g}"
