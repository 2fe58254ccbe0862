"""The image viewer: one series (or a set of photographs) at a time, as PACS viewers show it.

Decoding runs in a superqt worker that asks the contained decoder (``SafeDecoder``) for a
``ModalityFrame``: modality values before VOI, the file's windows, the pixel aspect and the
overlay facts. Window/level is then applied here, on the GUI thread, to those cached values
(``display_uint8``), so dragging the window never waits on a decoder. A small LRU cache keeps the
frames decoded lately and the neighbours of the one shown are fetched ahead.

Mouse: wheel = next / previous image; Ctrl+wheel = zoom; left or middle drag = pan; right drag =
window/level (left-right: width, up-down: level); double-click = fit. Keys: arrows = next / previous image, Home / End,
Page Up / Down = previous / next series (``series_step``), 1-9 = the presets in ``presets()``
order, 0 = auto, R = reset, I = invert, F = fit, A = 1:1 (actual pixels), +/- = zoom, O = overlays.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter
from PySide6.QtWidgets import (
    QGraphicsDropShadowEffect,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from zsmed.dicom.display import CT_PRESETS, ModalityFrame, VoiOption, display_uint8, window_option

Key = tuple[str, int]  # (path, frame)
Decode = Callable[[str, int], ModalityFrame]

CACHE_BYTES = 256 * 1024 * 1024
_OVERLAY_STYLE = "color: #d9d9d9; background: transparent; font-size: 12px;"
_VIEWER_STYLE = """
#ImageViewer { background: #141414; }
#ImageViewer QLabel#sliderLabel { color: #bdbdbd; }
#ImageViewer QSlider::groove:horizontal { height: 4px; background: #3a3a3a; border-radius: 2px; }
#ImageViewer QSlider::sub-page:horizontal { background: #5a6e84; border-radius: 2px; }
#ImageViewer QSlider::handle:horizontal { width: 10px; margin: -5px 0; background: #9a9a9a; border-radius: 5px; }
"""
_EDGE_STYLE = "color: #e6d38a; background: transparent; font-size: 14px; font-weight: bold;"
_MESSAGE_STYLE = "color: #e8c36a; background: transparent; font-size: 13px;"


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


def _shadowed(label: QLabel) -> QLabel:
    effect = QGraphicsDropShadowEffect(label)
    effect.setBlurRadius(3)
    effect.setOffset(1, 1)
    effect.setColor(QColor(0, 0, 0, 255))
    label.setGraphicsEffect(effect)
    label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    return label


class _ViewBox(pg.ViewBox):
    """A ViewBox with PACS mouse bindings and none of pyqtgraph's menus."""

    def __init__(self, viewer: ImageViewer) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self._viewer = viewer
        self._wheel_rest = 0

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)  # zoom about the mouse
            return
        self._wheel_rest += int(ev.delta())
        steps = int(self._wheel_rest / 120)
        if steps:
            self._wheel_rest -= steps * 120
            self._viewer.step(-steps)
        ev.accept()

    def mouseClickEvent(self, ev: Any) -> None:
        self._viewer.setFocus()
        if ev.double() and ev.button() == Qt.MouseButton.LeftButton:
            self._viewer.fit()  # double-click: the whole image again
        ev.accept()

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:
        self._viewer.setFocus()
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.buttonDownScreenPos()
            self._viewer._drag_window(ev.isStart(), float(delta.x()), float(delta.y()))
            return
        super().mouseDragEvent(ev, axis)  # left / middle: pan


class ImageViewer(QWidget):
    """One series of images (or photographs): true aspect, window/level, zoom/pan, frames, overlays."""

    current_changed = Signal(object)  # the Path now shown, after it is displayed (also on another frame)
    series_step = Signal(int)  # +1 / -1 on Page Down / Page Up

    def __init__(self, parent: QWidget | None = None, *, decode: Decode | None = None,
                 cache_bytes: int = CACHE_BYTES) -> None:
        super().__init__(parent)
        self._decode = decode or contained_decode
        self._cache_bytes = cache_bytes
        self._paths: list[Path] = []
        self._index = 0
        self._frame = 0
        self._title = ""
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
        self._invert = False
        self._rendered = np.zeros((0, 0), dtype=np.uint8)
        self._message = ""
        self._overlays_on = True
        self._drag_start: tuple[float, float] | None = None
        self._fitted_shape: tuple[Any, ...] | None = None

        self.setObjectName("ImageViewer")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(_VIEWER_STYLE)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(240, 240)

        self.view = pg.GraphicsView(background="#000000")
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.view.setAntialiasing(False)
        # magnified pixels are interpolated (as PACS viewers do), not drawn as blocks
        self.view.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.vb = _ViewBox(self)
        self.view.setCentralItem(self.vb)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image_item)
        self.vb.sigRangeChanged.connect(self._update_zoom_overlay)
        self.view.installEventFilter(self)

        # corners (tl, tr, bl, br) and the orientation letters at the middle of each edge (l, r, t, b)
        self._corners = {name: _shadowed(QLabel(self.view)) for name in ("tl", "tr", "bl", "br", "l", "r", "t", "b")}
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
        self._message_label = _shadowed(QLabel(self.view))
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
        self._slider_row = QWidget()
        row = QHBoxLayout(self._slider_row)
        row.setContentsMargins(6, 0, 6, 2)
        row.addWidget(self.slider, 1)
        row.addWidget(self.slider_label)
        layout.addWidget(self._slider_row)
        self._frame_row = QWidget()
        frow = QHBoxLayout(self._frame_row)
        frow.setContentsMargins(6, 0, 6, 2)
        frow.addWidget(self.frame_slider, 1)
        frow.addWidget(self.frame_label)
        layout.addWidget(self._frame_row)
        self._show_message("No image")
        self._update_sliders()

    # --- public interface -------------------------------------------------------------------------
    def set_images(self, paths: Sequence[Path], index: int = 0, *, title: str = "") -> None:
        """Show the images of one series (or photographs); ``index`` is the one shown first."""
        self._paths = [Path(p) for p in paths]
        self._index = min(max(int(index), 0), max(len(self._paths) - 1, 0))
        self._frame = 0
        self._title = title
        self._failed.clear()
        self._option, self._option_name, self._domain = None, "", None
        self._invert = False
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
        if not self._paths:
            return
        index = min(max(int(index), 0), len(self._paths) - 1)
        frames = self._frames_of.get(str(self._paths[index]))
        frame = max(int(frame), 0) if frames is None else min(max(int(frame), 0), frames - 1)
        if (index, frame) == (self._index, self._frame):
            return
        self._index, self._frame = index, frame
        self._show_current()

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
        frame = self._shown
        if key in CT_PRESETS:
            centre, width = CT_PRESETS[key]
            self._set_option(window_option(centre, width, key), key)
        elif key == "auto":
            if frame is not None:
                self._set_option(frame.auto, "auto")
        elif key.startswith("file "):
            try:
                number = int(key.split()[1])
            except (IndexError, ValueError):
                raise ValueError(f"unknown window preset {name!r}") from None
            if frame is not None and 1 <= number <= len(frame.windows):
                self._set_option(frame.windows[number - 1], key)
        else:
            raise ValueError(f"unknown window preset {name!r} (one of {', '.join(self.presets())})")

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
        """The image's own window, not inverted, fitted."""
        self._option, self._option_name, self._domain = None, "", None
        self._invert = False
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

    def overlay_text(self) -> dict[str, str]:
        """The corner texts (tl, tr, bl, br) and the orientation letters at the edges (l, r, t, b)."""
        return {name: label.text() for name, label in self._corners.items()}

    def rendered_image(self) -> np.ndarray:
        """The uint8 image on screen (after window/level and inversion); empty when none."""
        return self._rendered.copy()

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
        if new_image:
            self.current_changed.emit(Path(key[0]))

    def _render(self) -> None:
        frame, option = self._shown, self._option
        if frame is None or option is None:
            return
        image = display_uint8(frame, option, invert=self._invert)
        self._rendered = image
        self.image_item.setImage(image, levels=(0, 255), autoLevels=False)
        height, width = image.shape[:2]
        self.image_item.setRect(QRectF(0.0, 0.0, float(width), float(height) * frame.pixel_aspect))
        self._update_overlays()

    def _image_rect(self) -> QRectF | None:
        frame = self._shown
        if frame is None:
            return None
        height, width = frame.values.shape[:2]
        return QRectF(0.0, 0.0, float(width), float(height) * frame.pixel_aspect)

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
        frame = self._shown
        texts = dict.fromkeys(self._corners, "")
        if frame is not None:
            fact = frame.fact
            for edge in ("l", "r", "t", "b"):
                texts[edge] = fact({"l": "edge_left", "r": "edge_right", "t": "edge_top", "b": "edge_bottom"}[edge])
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
            texts["bl"] = "\n".join(x for x in (" · ".join(y for y in (position, instance) if y), frames, where,
                                               thickness) if x)
            texts["br"] = self._zoom_text()
        elif self._paths:
            texts["tr"] = self._title
            texts["bl"] = f"Image {self._index + 1}/{len(self._paths)}" if len(self._paths) > 1 else ""
        if loading and self._paths:
            texts["bl"] = "\n".join(x for x in (texts["bl"], "loading…") if x)
        for name, label in self._corners.items():
            label.setText(texts[name])
            label.setVisible(self._overlays_on and bool(texts[name]))
        self._place_labels()

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

    def _zoom_text(self) -> str:
        frame = self._shown
        if frame is None:
            return ""
        lines = [f"Zoom {self.zoom() * 100:.0f} %"]
        if frame.spacing is not None:
            lines.append(f"Pixel {frame.spacing[0]:.3g} x {frame.spacing[1]:.3g} mm")
        if frame.fact("size"):
            lines.append(frame.fact("size"))
        return "\n".join(lines)

    def _update_zoom_overlay(self, *args: Any) -> None:
        if self._shown is not None:
            self._corners["br"].setText(self._zoom_text())
            self._corners["br"].setVisible(self._overlays_on)
            self._place_labels()

    def _place_labels(self) -> None:
        width, height = self.view.width(), self.view.height()
        margin = 6
        for name, label in self._corners.items():
            label.adjustSize()
            if len(name) == 1:  # an edge's orientation letters, at its middle
                x = {"l": margin, "r": width - label.width() - margin}.get(name, (width - label.width()) // 2)
                y = {"t": margin, "b": height - label.height() - margin}.get(name, (height - label.height()) // 2)
            else:
                x = width - label.width() - margin if name.endswith("r") else margin
                y = margin if name.startswith("t") else height - label.height() - margin
            label.move(max(x, 0), max(y, 0))
        self._message_label.setFixedWidth(max(width - 40, 100))
        self._message_label.adjustSize()
        self._message_label.move((width - self._message_label.width()) // 2,
                                 (height - self._message_label.height()) // 2)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.view and event.type() == QEvent.Type.Resize:
            self._place_labels()
        return super().eventFilter(watched, event)

    # --- keys -------------------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        keys = Qt.Key
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
            self.series_step.emit(1)
        elif key == keys.Key_PageUp:
            self.series_step.emit(-1)
        elif keys.Key_1 <= key <= keys.Key_9:
            names = self.presets()
            number = int(key - keys.Key_1)
            if number < len(names):
                self.apply_preset(names[number])
        elif key == keys.Key_0:
            self.apply_preset("auto")
        elif key == keys.Key_R:
            self.reset()
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
        """Where image pixel (x, y) (column, row) is in the view's scene, for tests and tools."""
        return self.image_item.mapToScene(QPointF(x, y))


def _nbytes(frame: ModalityFrame) -> int:
    return int(frame.values.nbytes) + (int(frame.index.nbytes) if frame.index is not None else 0)


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.3g}"
