"""The display pipeline as small pure functions over arrays (PS3.3 C.7.6.3, C.11; PS3.4 N).

stored values → ``mask_stored_bits`` (odd bit depths, signed) → ``apply_rescale`` (modality LUT or
slope/intercept) → ``apply_voi`` (VOI LUT, or window LINEAR / LINEAR_EXACT / SIGMOID, or a robust
percentile window) → ``invert_monochrome1``; colour goes through ``to_rgb`` (YBR_FULL,
YBR_FULL_422, palette colour incl. segmented LUTs). ``render`` chains them into a float image in
[0, 1]; ``to_display_uint8`` turns that into 8 bits for the screen.

Enhanced multi-frame objects keep rescale and windows in functional groups: ``frame_view`` lifts
the ones for a frame to the top level so the same functions apply.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from zsmed.errors import PixelDecodeError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from zsmed.dicom.geometry import ImagePlane

_PERCENTILES = (0.5, 99.5)
_T = TypeVar("_T")
_NO_FACTS: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VoiOption:
    """One way to window a grey image: a VOI LUT (``lut_index``) or a window centre/width."""

    label: str
    center: float | None = None
    width: float | None = None
    function: str = "LINEAR"
    lut_index: int | None = None


# --- functional groups ---------------------------------------------------------------------------
_LIFTED = {
    "PixelValueTransformationSequence": ("RescaleSlope", "RescaleIntercept", "RescaleType"),
    "FrameVOILUTSequence": ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction"),
}


def frame_view(ds: Dataset, frame: int = 0) -> Dataset:
    """A shallow copy of ``ds`` with the frame's functional-group rescale and windows at top level."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not shared and not per_frame:
        return ds
    from pydicom.dataset import Dataset

    view = Dataset()
    view.update(ds)  # a new element mapping: the caller's data set is not modified
    sources = []
    if shared:
        sources.append(shared[0])
    if per_frame and 0 <= frame < len(per_frame):
        sources.append(per_frame[frame])
    for item in sources:  # per-frame values override shared ones
        for seq_name, keywords in _LIFTED.items():
            seq = item.get(seq_name)
            if not seq:
                continue
            for keyword in keywords:
                if keyword in seq[0]:
                    setattr(view, keyword, seq[0][keyword].value)
    return view


# --- stored values --------------------------------------------------------------------------------
def mask_stored_bits(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """Keep only BitsStored bits (e.g. 12 in 16; overlays in the high bits), sign-extending signed data."""
    if arr.dtype.kind not in "iu":
        return arr
    bits_stored = int(ds.get("BitsStored") or arr.dtype.itemsize * 8)
    bits_total = arr.dtype.itemsize * 8
    if bits_stored >= bits_total or bits_stored <= 0:
        return arr
    if int(ds.get("PixelRepresentation", 0) or 0) == 1 and arr.dtype.kind == "i":
        shift = bits_total - bits_stored
        return (arr << shift) >> shift
    mask = (1 << bits_stored) - 1
    return arr & np.asarray(mask, dtype=arr.dtype) if arr.dtype.kind == "u" else arr


def _float(arr: np.ndarray) -> np.ndarray:
    wide = (arr.dtype.itemsize >= 4 and arr.dtype.kind in "iu") or arr.dtype == np.float64
    return arr.astype(np.float64 if wide else np.float32, copy=False)


def _number(value: Any, default: float | None = None) -> float | None:
    if value is None or value == "":
        return default
    try:
        if isinstance(value, list | tuple) or (hasattr(value, "__getitem__") and not isinstance(value, str)):
            value = value[0]
        out = float(value)
    except (TypeError, ValueError, IndexError):
        return default
    return out if math.isfinite(out) else default


def apply_rescale(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """Modality LUT: a Modality LUT Sequence if present, else RescaleSlope/RescaleIntercept."""
    seq = ds.get("ModalityLUTSequence")
    if seq:
        return _float(_apply_lut(arr, seq[0], signed_first=int(ds.get("PixelRepresentation", 0) or 0) == 1)[0])
    slope = _number(ds.get("RescaleSlope"), 1.0)
    intercept = _number(ds.get("RescaleIntercept"), 0.0)
    out = _float(arr)
    if slope not in (None, 1.0):
        out = out * slope
    if intercept not in (None, 0.0):
        out = out + intercept
    return out


def _lut_data(item: Any) -> np.ndarray:
    data = item.get("LUTData")
    value = data.value if hasattr(data, "value") else data
    if isinstance(value, bytes | bytearray):
        return np.frombuffer(value, dtype="<u2" if len(value) % 2 == 0 else np.uint8)
    if isinstance(value, int | float):
        return np.asarray([value], dtype=np.float64)
    return np.asarray(list(value), dtype=np.float64)


def _read_lut(item: Any, signed_first: bool) -> tuple[np.ndarray, int, int]:
    """A LUT item's (entries, first stored value mapped, bits), its descriptor applied."""
    desc = list(item.LUTDescriptor)
    entries = int(desc[0]) or 65536
    first = int(desc[1])
    if signed_first and first > 32767:
        first -= 65536
    bits = int(desc[2]) if len(desc) > 2 else 16
    lut = _lut_data(item)
    if lut.size == 0:
        raise PixelDecodeError("LUT has no data")
    return (lut[:entries] if lut.size >= entries else lut), first, bits


def _apply_lut(arr: np.ndarray, item: Any, signed_first: bool) -> tuple[np.ndarray, int]:
    """Look stored values up in a LUT item; return (values, LUT bits)."""
    lut, first, bits = _read_lut(item, signed_first)
    index = np.clip(np.rint(_float(arr)) - first, 0, lut.size - 1).astype(np.intp)
    return lut[index], bits


def voi_options(ds: Dataset) -> list[VoiOption]:
    """Every VOI transform in the data set: VOI LUTs first, then each window centre/width."""
    options: list[VoiOption] = []
    for i, item in enumerate(ds.get("VOILUTSequence") or []):
        if "LUTDescriptor" in item and "LUTData" in item:
            label = str(item.get("LUTExplanation", "") or f"VOI LUT {i + 1}")
            options.append(VoiOption(label=label, lut_index=i))
    centers = ds.get("WindowCenter")
    widths = ds.get("WindowWidth")
    if centers is not None and widths is not None:
        cs = list(centers) if _is_multi(centers) else [centers]
        ws = list(widths) if _is_multi(widths) else [widths]
        explanations = ds.get("WindowCenterWidthExplanation")
        ex = list(explanations) if _is_multi(explanations) else [explanations] if explanations else []
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
        for i, (c, w) in enumerate(zip(cs, ws, strict=False)):
            center, width = _number(c), _number(w)
            if center is None or width is None or width <= 0:
                continue
            label = str(ex[i]) if i < len(ex) and ex[i] else f"window {i + 1}"
            options.append(VoiOption(label=label, center=center, width=width, function=function))
    return options


def _is_multi(value: Any) -> bool:
    return value is not None and not isinstance(value, str | bytes) and hasattr(value, "__len__")


def apply_window(arr: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Window to [0, 1] with the DICOM VOI LUT function (PS3.3 C.11.2.1.2)."""
    x = _float(arr)
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        out = 1.0 / (1.0 + np.exp(np.clip(-4.0 * (x - center) / width, -80, 80)))
    elif function == "LINEAR_EXACT":
        out = np.clip((x - center) / width + 0.5, 0.0, 1.0)
    else:  # LINEAR, and the default for unknown names
        if width < 1:
            width = 1.0
        if width == 1:
            out = (x >= center - 0.5).astype(x.dtype)  # a threshold (C.11.2.1.2.1)
        else:
            out = np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    return out.astype(np.float32, copy=False)


def auto_window(arr: np.ndarray, ds: Dataset | None = None) -> tuple[float, float]:
    """A window when the file has none: the full stored range for unrescaled ≤ 8-bit data, else a
    robust 0.5–99.5 percentile range (min/max when that collapses)."""
    if ds is not None and arr.dtype.kind in "iu":
        bits = int(ds.get("BitsStored") or 0)
        plain = "ModalityLUTSequence" not in ds and _number(ds.get("RescaleSlope"), 1.0) == 1.0
        if plain and 0 < bits <= 8 and int(ds.get("PixelRepresentation", 0) or 0) == 0:
            return 0.0, float((1 << bits) - 1)
    flat = arr.reshape(-1)
    if flat.size > 262144:
        flat = flat[:: flat.size // 262144]
    flat = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
    if flat.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(flat, _PERCENTILES))
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    return lo, hi


def _scale(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    x = _float(arr)
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32, copy=False)


def apply_voi(arr: np.ndarray, ds: Dataset, window_index: int = 0, *, stored: np.ndarray | None = None) -> np.ndarray:
    """VOI transform to [0, 1]: option ``window_index`` of ``voi_options(ds)``, else ``auto_window``.

    ``arr`` is the modality-rescaled image. VOI LUTs index the rescaled values (as PS3.4 says);
    ``stored`` is accepted for callers that only have stored values.
    """
    options = voi_options(ds)
    if options:
        option = options[min(max(window_index, 0), len(options) - 1)]
        if option.lut_index is not None:
            item = ds.VOILUTSequence[option.lut_index]
            signed = int(ds.get("PixelRepresentation", 0) or 0) == 1 or float(np.min(arr)) < 0
            values, bits = _apply_lut(arr, item, signed_first=signed)
            top = max(float((1 << bits) - 1), float(np.max(_lut_data(item))))
            return np.clip(values / top, 0.0, 1.0).astype(np.float32) if top > 0 else np.zeros_like(values, np.float32)
        assert option.center is not None and option.width is not None
        return apply_window(arr, option.center, option.width, option.function)
    lo, hi = auto_window(stored if stored is not None else arr, ds if stored is not None else None)
    if stored is not None:
        rescaled_lo_hi = apply_rescale(np.asarray([lo, hi]), ds)
        lo, hi = float(rescaled_lo_hi.min()), float(rescaled_lo_hi.max())
    return _scale(arr, lo, hi)


def is_inverted(ds: Dataset) -> bool:
    """MONOCHROME1, or MONOCHROME2 with an INVERSE presentation LUT shape."""
    pi = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if pi == "MONOCHROME1":
        return True
    return pi == "MONOCHROME2" and str(ds.get("PresentationLUTShape", "") or "").strip().upper() == "INVERSE"


def invert_monochrome1(image01: np.ndarray, ds: Dataset) -> np.ndarray:
    """Flip a [0, 1] grey image when the data set says low values are white."""
    return (1.0 - image01).astype(np.float32, copy=False) if is_inverted(ds) else image01


# --- colour ---------------------------------------------------------------------------------------
def to_rgb(arr: np.ndarray, ds: Dataset, photometric: str | None = None) -> np.ndarray:
    """Colour stored values → RGB float32 in [0, 1].

    ``photometric`` is the interpretation of ``arr`` as it is now (pydicom's ``pixel_array``
    already converts YBR to RGB, so callers pass ``"RGB"`` for its output); default: the data set's.
    """
    from pydicom.pixels import apply_color_lut, convert_color_space

    pi = (photometric or str(ds.get("PhotometricInterpretation", "") or "")).strip().upper()
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(np.asarray(arr), ds)
        top = 255.0 if rgb.dtype == np.uint8 or float(rgb.max(initial=0)) <= 255 else 65535.0
        return (rgb.astype(np.float32) / top).astype(np.float32)
    if arr.ndim < 3 or arr.shape[-1] != 3:
        raise PixelDecodeError(f"{pi or 'colour'} image without 3 samples per pixel (shape {arr.shape})")
    if pi in ("YBR_FULL", "YBR_FULL_422"):
        arr = convert_color_space(np.asarray(arr), pi, "RGB")
    if arr.dtype.kind == "f":
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        return _scale(arr, min(lo, 0.0), hi if hi > 1 else 1.0)
    bits = int(ds.get("BitsStored") or arr.dtype.itemsize * 8)
    bits = min(bits, arr.dtype.itemsize * 8)
    return (mask_stored_bits(arr, ds).astype(np.float64) / float((1 << bits) - 1)).clip(0, 1).astype(np.float32)


# --- the whole chain ------------------------------------------------------------------------------
def is_colour(arr: np.ndarray, ds: Dataset) -> bool:
    pi = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    return pi == "PALETTE COLOR" or int(ds.get("SamplesPerPixel", 1) or 1) > 1


def render(
    arr: np.ndarray,
    ds: Dataset,
    *,
    frame: int = 0,
    window_index: int = 0,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """One frame of ``stored_pixels`` output → float32 in [0, 1], grey (H, W) or RGB (H, W, 3).

    ``window`` = (centre, width) overrides the file's windows (the viewer's interactive window).
    """
    if arr.ndim == 4 or (arr.ndim == 3 and not is_colour(arr, ds)):
        raise PixelDecodeError(f"render() takes one frame; got an array of shape {arr.shape}")
    if is_colour(arr, ds):
        pi = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
        # pydicom's pixel_array has already converted YBR (and the J2K codecs ICT/RCT) to RGB.
        return to_rgb(arr, ds, photometric="PALETTE COLOR" if pi == "PALETTE COLOR" else "RGB")
    view = frame_view(ds, frame)
    stored = mask_stored_bits(arr, view)
    rescaled = apply_rescale(stored, view)
    if window is not None:
        image = apply_window(rescaled, float(window[0]), float(window[1]), "LINEAR")
    elif voi_options(view):
        image = apply_voi(rescaled, view, window_index)
    else:
        image = apply_voi(rescaled, view, window_index, stored=stored)
    image = np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0)
    return invert_monochrome1(image, view)


def to_display_uint8(image01: np.ndarray) -> np.ndarray:
    """A [0, 1] float image → uint8 for the screen (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(image01, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def render_display(
    arr: np.ndarray,
    ds: Dataset,
    *,
    frame: int = 0,
    window_index: int = 0,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """``render`` then ``to_display_uint8``: uint8 (H, W) or (H, W, 3)."""
    return to_display_uint8(render(arr, ds, frame=frame, window_index=window_index, window=window))


# --- the interactive viewer's pieces --------------------------------------------------------------
# The viewer decodes once (in the contained decoder) to modality values, then windows on the GUI
# thread: ``modality_frame`` makes the cached values, ``display_uint8`` the screen image.

#: CT windows (centre, width) in HU, as PACS viewers label them; the number keys follow this order.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "soft tissue": (40.0, 400.0),
}

_MAX_ASPECT = 20.0  # a pixel more than 20 times taller than wide is a broken header, not an image


@dataclass(frozen=True)
class LutTable:
    """A VOI LUT ready to apply: ``table[value - first]`` scaled by ``1 / top`` (clipped at the ends)."""

    table: np.ndarray
    first: int
    top: float


@dataclass(frozen=True)
class ModalityFrame:
    """One frame decoded for the viewer: modality values (rescale applied, before VOI) and the facts
    the viewer shows around it. Picklable, so it crosses the contained decoder's pipe.

    Grey images: ``values`` float32 (H, W) in modality units (HU for CT). Colour (and photos):
    float32 (H, W, 3) or (H, W) on a 0-255 scale, whose identity window is ``auto``.
    """

    values: np.ndarray
    colour: bool
    inverted: bool  # MONOCHROME1 / INVERSE: low values are white
    windows: tuple[VoiOption, ...]  # the file's own (VOI LUTs index ``luts``)
    luts: tuple[LutTable, ...]
    auto: VoiOption  # the window used when the file has none
    frames: int = 1
    frame: int = 0
    pixel_aspect: float = 1.0  # height / width of one pixel on the screen
    spacing: tuple[float, float] | None = None  # (row, column) spacing in mm, when the file says
    # the element ``spacing`` came from: PixelSpacing (in the patient), ImagerPixelSpacing (at the
    # detector: not corrected for the magnification) or NominalScannedPixelSpacing (on the scanned film)
    spacing_source: str = ""
    frame_rate: float | None = None  # frames per second to play the frames at, when the file says
    hounsfield: bool = False  # values are HU, so the CT presets mean something
    facts: tuple[tuple[str, str], ...] = ()  # header facts for the overlays (see ``image_facts``)
    # integer-valued grey images: ``values - index_base`` as uint16, so windowing is one table look-up
    index: np.ndarray | None = None
    index_base: float = 0.0

    def fact(self, name: str) -> str:
        return dict(self.facts).get(name, "")

    @property
    def default_window(self) -> VoiOption:
        return self.windows[0] if self.windows else self.auto


def _spacing_pair(value: Any) -> tuple[float, float] | None:
    if not _is_multi(value) or len(value) < 2:
        return None
    a, b = _number(value[0]), _number(value[1])
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return a, b


def pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    """(row spacing, column spacing) in mm: Pixel Spacing (also in enhanced objects' Pixel Measures),
    else Imager Pixel Spacing, else an ultrasound scan area's calibration; None when the file gives none
    (or nonsense)."""
    found = pixel_spacing_with_source(ds)
    return found[0] if found is not None else None


ULTRASOUND_CALIBRATION = "SequenceOfUltrasoundRegions"


def pixel_spacing_with_source(ds: Dataset) -> tuple[tuple[float, float], str] | None:
    """``pixel_spacing`` and the keyword of the element it came from. PixelSpacing is in the patient;
    ImagerPixelSpacing is at the detector, so a projection radiograph's lengths from it are magnified by
    the beam's divergence (the object is nearer the source than the detector). An ultrasound image
    without either gives its 2-D scan regions' calibration (``zsmed.dicom.ultrasound``), in the patient,
    as source ``ULTRASOUND_CALIBRATION``."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        pair = _spacing_pair(ds.get(keyword))
        if pair is not None:
            return pair, keyword
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        seq = ds.get(group)
        if seq:
            measures = seq[0].get("PixelMeasuresSequence")
            if measures:
                pair = _spacing_pair(measures[0].get("PixelSpacing"))
                if pair is not None:
                    return pair, "PixelSpacing"
    from zsmed.dicom.ultrasound import calibrated_spacing

    ultrasound = calibrated_spacing(ds)  # an ultrasound scan area's own calibration (in the patient)
    return (ultrasound, ULTRASOUND_CALIBRATION) if ultrasound is not None else None


def frame_group_value(ds: Dataset, frame: int, sequence: str, keyword: str) -> Any:
    """``keyword`` of an enhanced object's functional group ``sequence`` for ``frame`` (its per-frame
    group, else the shared one); None where neither has it."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    groups = [per_frame[frame]] if per_frame and 0 <= frame < len(per_frame) else []
    shared = ds.get("SharedFunctionalGroupsSequence")
    groups += [shared[0]] if shared else []
    for group in groups:
        items = group.get(sequence)
        if items and items[0].get(keyword) is not None:
            return items[0].get(keyword)
    return None


def frame_pixel_spacing(ds: Dataset, frame: int = 0) -> tuple[float, float] | None:
    """(row, column) spacing in mm of ``frame`` in the patient: its own Pixel Measures where an enhanced
    object gives them frame by frame, else ``pixel_spacing`` where that is Pixel Spacing (in the
    patient, not at a detector or an ultrasound calibration); None otherwise."""
    pair = _spacing_pair(frame_group_value(ds, frame, "PixelMeasuresSequence", "PixelSpacing"))
    if pair is not None:
        return pair
    found = pixel_spacing_with_source(ds)
    return found[0] if found is not None and found[1] == "PixelSpacing" else None


def image_plane(ds: Dataset, frame: int = 0) -> ImagePlane | None:
    """Where ``ds``'s image (``frame`` of an enhanced object) lies in the patient, for reference lines;
    None without a position, an orientation or a pixel spacing in the patient (a projection radiograph's
    detector spacing, an ultrasound, a photograph)."""
    from zsmed.dicom.geometry import ImagePlane

    position = ds.get("ImagePositionPatient")
    if position is None:
        position = frame_group_value(ds, frame, "PlanePositionSequence", "ImagePositionPatient")
    orientation = ds.get("ImageOrientationPatient")
    if orientation is None:
        orientation = frame_group_value(ds, frame, "PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = frame_pixel_spacing(ds, frame)
    try:
        xyz = [float(v) for v in position]
        cosines = [float(v) for v in orientation]
        rows, columns = int(ds.Rows), int(ds.Columns)
    except (TypeError, ValueError, AttributeError):
        return None
    if (len(xyz) != 3 or len(cosines) != 6 or not all(math.isfinite(v) for v in xyz + cosines)
            or spacing is None or rows <= 0 or columns <= 0):
        return None
    row_direction, column_direction = np.asarray(cosines[:3]), np.asarray(cosines[3:])
    if not (0.5 < np.linalg.norm(row_direction) < 1.5 and 0.5 < np.linalg.norm(column_direction) < 1.5):
        return None  # not direction cosines: a damaged header
    r = row_direction / np.linalg.norm(row_direction)
    c = column_direction / np.linalg.norm(column_direction)
    return ImagePlane((xyz[0], xyz[1], xyz[2]), (float(r[0]), float(r[1]), float(r[2])),
                      (float(c[0]), float(c[1]), float(c[2])), spacing, (rows, columns),
                      str(ds.get("FrameOfReferenceUID", "") or "").strip(), _is_localizer(ds))


def _is_localizer(ds: Dataset) -> bool:
    """A CT scout (topogram): Image Type LOCALIZER on a CT, a projection through the patient. An MR's
    localizers are true slices and are not one."""
    value = ds.get("ImageType")
    values = [str(v).upper() for v in value] if value is not None and not isinstance(value, str) else [str(value)]
    return "LOCALIZER" in values and str(ds.get("Modality", "") or "").strip().upper() == "CT"


_MAX_FRAME_RATE = 1000.0  # frames per second; more is a broken header
_MIN_TIMED_FRAME_RATE = 1.0  # frames per second, for a rate from per-frame times (see cine_frame_rate)


def cine_frame_rate(ds: Dataset) -> float | None:
    """Frames per second to play a multi-frame image at, from the first of these that the file gives
    and that makes sense (finite, above 0, at most 1000 fps):

    1. Cine Rate;
    2. Recommended Display Frame Rate;
    3. 1000 / Frame Time (ms);
    4. 1000 / the mean of Frame Time Vector's intervals (ms) after the first (PS3.3 C.7.6.5.1.2);
    5. enhanced objects' per-frame Frame Content (PS3.3 C.7.6.16.2.2): 1 / the median gap between
       consecutive frames' Frame Reference DateTime, else Frame Acquisition DateTime, else 1000 / the
       median Frame Acquisition Duration (ms).

    A rate from 4 or 5 below one frame a second is not taken (a volume acquired over time, not a loop).
    None when the file says none of them. Reads the header only: no pixel data is needed."""
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = _number(ds.get(keyword))
        if rate is not None and 0 < rate <= _MAX_FRAME_RATE:
            return rate
    frame_time = _number(ds.get("FrameTime"))
    if frame_time is not None and frame_time >= 1000.0 / _MAX_FRAME_RATE:
        return 1000.0 / frame_time
    rate = _frame_time_vector_rate(ds)
    rate = rate if rate is not None else _frame_content_rate(ds)
    # frames timed further apart than a second are a volume or a series acquired over time (an
    # enhanced MR's slices), not a loop to play at that pace: the viewer's default rate then
    return rate if rate is not None and rate >= _MIN_TIMED_FRAME_RATE else None


def _rate_from_interval(seconds: float) -> float | None:
    """Frames per second for frames ``seconds`` apart; None for a gap that is not finite, not positive,
    or too short to be real."""
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    rate = 1.0 / seconds
    return rate if rate <= _MAX_FRAME_RATE else None


def _element_or_none(ds: Dataset, keyword: str) -> Any:
    # a damaged timing element (pydicom decodes on first read and can raise anything) should leave the
    # later sources of the rate to try, not lose the rate altogether
    try:
        return ds.get(keyword)
    except Exception:
        return None


def _frame_time_vector_rate(ds: Dataset) -> float | None:
    """Frame Time Vector holds, per frame, the ms since the previous frame (the first is 0): the rate
    from the mean of the later intervals above 0. Entries that are no number, zero or negative are
    left out; a vector with fewer than 2 numbers says nothing."""
    vector = _element_or_none(ds, "FrameTimeVector")
    if not _is_multi(vector):
        return None
    values = [_number(value) for value in vector]
    if sum(value is not None for value in values) < 2:
        return None
    intervals = [value for value in values[1:] if value is not None and value > 0]
    return _rate_from_interval(statistics.fmean(intervals) / 1000.0) if intervals else None


def _utc_datetime(value: Any) -> datetime | None:
    """A DT value as a naive UTC date-time (taken as UTC when it gives no offset, so that values with
    and without one can be subtracted); None when it is no date-time. Kept a date-time, not seconds
    since 1970, so that gaps of a few ms keep their microseconds."""
    from pydicom.valuerep import DT

    try:
        moment = value if isinstance(value, datetime) else DT(str(value).strip())
    except (TypeError, ValueError, OverflowError):
        return None
    if moment is None:
        return None
    return moment.replace(tzinfo=None) - (moment.utcoffset() or timedelta(0))


def _frame_contents(ds: Dataset) -> list[Dataset]:
    """Each frame's Frame Content item, in frame order; frames without one are left out."""
    contents = []
    for frame in _element_or_none(ds, "PerFrameFunctionalGroupsSequence") or ():
        content = _element_or_none(frame, "FrameContentSequence")
        if content:
            contents.append(content[0])
    return contents


def _frame_times(contents: list[Dataset], keyword: str) -> list[datetime] | None:
    """The frames' ``keyword`` date-times, in frame order (frames without one left out); None when
    any of them cannot be read, as such an element's times cannot be trusted."""
    times = []
    for content in contents:
        try:
            value = content.get(keyword)
        except Exception:  # damaged: as unreadable as a value that does not parse
            return None
        if value is None or str(value).strip() == "":
            continue
        moment = _utc_datetime(value)
        if moment is None:
            return None
        times.append(moment)
    return times


def _frame_content_rate(ds: Dataset) -> float | None:
    """The rate from enhanced objects' per-frame times: the median of the positive gaps between
    consecutive frames, so that a pause, frames out of time order or several frames at one moment
    (slices of one time point) do not set it; else from the median Frame Acquisition Duration."""
    contents = _frame_contents(ds)
    for keyword in ("FrameReferenceDateTime", "FrameAcquisitionDateTime"):
        times = _frame_times(contents, keyword)
        if times is None or len(times) < 2:
            continue
        gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(times) if later > earlier]
        rate = _rate_from_interval(statistics.median(gaps)) if gaps else None
        if rate is not None:
            return rate
    durations = [
        duration
        for duration in (_number(_element_or_none(content, "FrameAcquisitionDuration")) for content in contents)
        if duration is not None
    ]
    return _rate_from_interval(statistics.median(durations) / 1000.0) if durations else None


def true_aspect(ds: Dataset) -> float:
    """How tall one pixel is relative to its width on the screen (PS3.3 C.7.6.3.1.7): row spacing /
    column spacing, else Pixel Aspect Ratio (vertical / horizontal), else 1. Absurd values give 1."""
    spacing = pixel_spacing(ds)
    if spacing is not None:
        ratio = spacing[0] / spacing[1]
    else:
        pair = _spacing_pair(ds.get("PixelAspectRatio"))
        ratio = pair[0] / pair[1] if pair is not None else 1.0
    return ratio if 1.0 / _MAX_ASPECT <= ratio <= _MAX_ASPECT else 1.0


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed element: no overlay text rather than no image
        return ""
    if value is None:
        return ""
    from pydicom.multival import MultiValue

    if isinstance(value, list | tuple | MultiValue):
        value = "\\".join(str(v) for v in value)
    return " ".join(str(value).replace("^", " ").split())[:80]


def format_dicom_date(value: str) -> str:
    """'20040119' -> '2004-01-19'; anything else as it is."""
    value = value.strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def format_dicom_time(value: str) -> str:
    """'072730.123' -> '07:27:30'; anything else as it is."""
    value = value.strip()
    digits = value.split(".")[0]
    if len(digits) in (4, 6) and digits.isdigit():
        return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))
    return value


_FACTS = (
    ("patient", "PatientName"), ("patient_id", "PatientID"), ("birth_date", "PatientBirthDate"),
    ("sex", "PatientSex"), ("study_date", "StudyDate"), ("study_time", "StudyTime"),
    ("study", "StudyDescription"), ("institution", "InstitutionName"), ("modality", "Modality"),
    ("series_number", "SeriesNumber"), ("series", "SeriesDescription"), ("instance_number", "InstanceNumber"),
    ("slice_location", "SliceLocation"), ("slice_thickness", "SliceThickness"), ("rescale_type", "RescaleType"),
    # whether the pixels themselves carry text (names, dates): a key image without the overlays is then
    # still not free of patient details
    ("burned_in", "BurnedInAnnotation"),
)


_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}


def direction_letters(vector: Any, threshold: float = 0.3) -> str:
    """Where a direction in the patient (LPS) system points, as letters: (1, 0, 0) -> 'L', (0, -1, 0)
    -> 'A', an oblique (0.7, 0, -0.7) -> 'LF' (largest component first, those >= ``threshold``, 2 at most)."""
    letters = []
    for axis in sorted(range(3), key=lambda i: -abs(float(vector[i]))):
        value = float(vector[axis])
        if abs(value) >= threshold:
            letters.append((("R", "L"), ("A", "P"), ("F", "H"))[axis][value > 0])
    return "".join(letters[:2])


def orientation_labels(ds: Dataset) -> tuple[str, str, str, str] | None:
    """The patient directions at the image's (left, right, top, bottom) edges, as PACS viewers letter
    them: from Image Orientation (Patient) (also in enhanced objects' Plane Orientation), else from
    Patient Orientation (projection radiographs); None when the file says neither."""
    iop = ds.get("ImageOrientationPatient")
    if iop is None:
        for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
            seq = ds.get(group)
            plane = seq[0].get("PlaneOrientationSequence") if seq else None
            if plane:
                iop = plane[0].get("ImageOrientationPatient")
                break
    numbers = [_number(v) for v in iop] if _is_multi(iop) and len(iop) == 6 else []
    if len(numbers) == 6 and all(n is not None for n in numbers):
        row = np.asarray(numbers[:3], dtype=float)
        col = np.asarray(numbers[3:], dtype=float)
        if np.linalg.norm(row) > 0.5 and np.linalg.norm(col) > 0.5:
            return direction_letters(-row), direction_letters(row), direction_letters(-col), direction_letters(col)
    po = ds.get("PatientOrientation")
    if _is_multi(po) and len(po) == 2:
        right, bottom = ("".join(c for c in str(v).upper() if c in _OPPOSITE) for v in po)
        if right and bottom:
            left = "".join(_OPPOSITE[c] for c in right)
            top = "".join(_OPPOSITE[c] for c in bottom)
            return left, right, top, bottom
    return None


def image_facts(ds: Dataset) -> tuple[tuple[str, str], ...]:
    """The header facts the viewer's corner overlays show, as (name, text) pairs (empty ones left out);
    ``edge_left`` .. ``edge_bottom`` are the orientation letters."""
    facts = [(name, _text(ds, keyword)) for name, keyword in _FACTS]
    try:
        edges = orientation_labels(ds)
    except (TypeError, ValueError, AttributeError, IndexError):  # a malformed element: no letters
        edges = None
    if edges is not None:
        facts += list(zip(("edge_left", "edge_right", "edge_top", "edge_bottom"), edges, strict=True))
    facts = [(name, format_dicom_date(text) if name.endswith("date") else text) for name, text in facts]
    facts = [(name, format_dicom_time(text) if name.endswith("time") else text) for name, text in facts]
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if rows and cols:
        facts.append(("size", f"{cols} x {rows}"))
    return tuple((name, text) for name, text in facts if text)


def _lut_table(item: Any, signed: bool) -> LutTable:
    raw, first, bits = _read_lut(item, signed)
    lut = np.asarray(raw, dtype=np.float32)
    return LutTable(table=lut, first=first, top=max(float((1 << bits) - 1), float(lut.max())))


def apply_lut_table(values: np.ndarray, lut: LutTable) -> np.ndarray:
    """A ``LutTable`` on modality values → float32 in [0, 1] (as ``apply_voi`` does for VOI LUTs)."""
    index = np.clip(np.rint(values) - lut.first, 0, lut.table.size - 1).astype(np.intp)
    out = lut.table[index] / lut.top if lut.top > 0 else np.zeros(values.shape, np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def window_option(centre: float, width: float, label: str = "", function: str = "LINEAR") -> VoiOption:
    return VoiOption(label=label, center=float(centre), width=float(width), function=function)


def colour_identity_window() -> VoiOption:
    """The window that shows 0-255 values as they are (LINEAR_EXACT: x / 255)."""
    return window_option(127.5, 255.0, "auto", "LINEAR_EXACT")


def _label_or(default: _T, read: Callable[[Dataset], _T], ds: Dataset) -> _T:
    """Spacing, pixel aspect and the overlay facts only label the image: a damaged element leaves
    them out (square pixels, no scale) rather than leaving the image unshown. pydicom decodes an
    element when it is first read, and a damaged one can raise anything (an unknown VR, a bad length)."""
    try:
        return read(ds)
    except Exception:
        return default


def modality_frame(arr: np.ndarray, ds: Dataset, frame: int = 0) -> ModalityFrame:
    """One frame of ``stored_pixels`` output → the viewer's ``ModalityFrame``: modality values
    (masked stored bits, rescale / modality LUT) with the frame's windows, the auto window, the
    pixel aspect and the overlay facts. Colour is converted to RGB on a 0-255 scale."""
    from zsmed.dicom.decode import number_of_frames

    frames = number_of_frames(ds)
    spacing = _label_or(None, pixel_spacing_with_source, ds)
    common: dict[str, Any] = {
        "frames": frames, "frame": frame, "pixel_aspect": _label_or(1.0, true_aspect, ds),
        "spacing": spacing[0] if spacing else None, "spacing_source": spacing[1] if spacing else "",
        "frame_rate": _label_or(None, cine_frame_rate, ds), "facts": _label_or(_NO_FACTS, image_facts, ds),
    }
    if is_colour(arr, ds):
        if arr.ndim == 4:
            raise PixelDecodeError(f"modality_frame() takes one frame; got an array of shape {arr.shape}")
        rgb = render(arr, ds)  # colour: the RGB conversion is the whole display chain
        return ModalityFrame(values=(rgb * np.float32(255.0)).astype(np.float32), colour=True, inverted=False,
                             windows=(), luts=(), auto=colour_identity_window(), **common)
    if arr.ndim != 2:
        raise PixelDecodeError(f"modality_frame() takes one frame; got an array of shape {arr.shape}")
    view = frame_view(ds, frame)
    stored = mask_stored_bits(arr, view)
    top = float(np.finfo(np.float32).max)
    values = np.nan_to_num(apply_rescale(stored, view).astype(np.float32, copy=False), nan=0.0, posinf=top,
                           neginf=-top)
    options = voi_options(view)
    luts: list[LutTable] = []
    windows: list[VoiOption] = []
    signed = int(view.get("PixelRepresentation", 0) or 0) == 1 or (values.size > 0 and float(values.min()) < 0)
    for option in options:
        if option.lut_index is not None:
            try:
                luts.append(_lut_table(view.VOILUTSequence[option.lut_index], signed))
            except (PixelDecodeError, TypeError, ValueError, AttributeError):
                continue  # a broken LUT is left out; the other windows still apply
            windows.append(VoiOption(label=option.label, lut_index=len(luts) - 1))
        else:
            windows.append(option)
    lo, hi = auto_window(stored, view)
    lo_hi = apply_rescale(np.asarray([lo, hi], dtype=np.float64), view)
    lo, hi = float(np.min(lo_hi)), float(np.max(lo_hi))
    if hi <= lo:
        hi = lo + 1.0
    auto = window_option((lo + hi) / 2.0, hi - lo, "auto", "LINEAR_EXACT")
    rescale_type = str(view.get("RescaleType", "") or "").strip().upper()
    modality = str(ds.get("Modality", "") or "").strip().upper()
    hounsfield = rescale_type == "HU" or (modality == "CT" and rescale_type in ("", "HU"))
    index, base = lookup_index(values)
    return ModalityFrame(values=values, colour=False, inverted=is_inverted(view), windows=tuple(windows),
                         luts=tuple(luts), auto=auto, hounsfield=hounsfield, index=index, index_base=base,
                         **common)


def lookup_index(values: np.ndarray) -> tuple[np.ndarray | None, float]:
    """``(values - min)`` as uint16 when every value is an integer and they span < 65536 (CT, MR, CR,
    DX: stored integers times an integer slope), else (None, 0): windowing is then a table look-up,
    exactly equal to windowing each value (the same float32 operations on the same numbers)."""
    if values.size == 0 or values.dtype.kind != "f":
        return None, 0.0
    lo, hi = float(values.min()), float(values.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo >= 65536 or lo != math.floor(lo):
        return None, 0.0
    if not np.array_equal(values, np.floor(values)):
        return None, 0.0
    return (values - np.float32(lo)).astype(np.uint16), lo


def photo_frame(image01: np.ndarray, path: str = "") -> ModalityFrame:
    """A photograph (``read_photo``: float32 in [0, 1]) as a ``ModalityFrame`` on a 0-255 scale."""
    from pathlib import Path

    height, width = image01.shape[:2]
    facts = (("modality", "photo"), ("series", Path(path).name), ("size", f"{width} x {height}"))
    return ModalityFrame(values=(np.asarray(image01, np.float32) * np.float32(255.0)).astype(np.float32),
                         colour=image01.ndim == 3, inverted=False, windows=(), luts=(),
                         auto=colour_identity_window(), facts=tuple((k, v) for k, v in facts if v))


def _voi01(frame: ModalityFrame, values: np.ndarray, option: VoiOption) -> np.ndarray:
    if option.lut_index is not None and 0 <= option.lut_index < len(frame.luts):
        return apply_lut_table(values, frame.luts[option.lut_index])
    centre = option.center if option.center is not None else frame.auto.center
    width = option.width if option.width is not None else frame.auto.width
    assert centre is not None and width is not None
    return apply_window(values, centre, width, option.function)


def display_uint8(frame: ModalityFrame, option: VoiOption, *, invert: bool = False) -> np.ndarray:
    """The screen image of ``frame`` through ``option`` (a window, or one of the frame's VOI LUTs):
    uint8 (H, W) or (H, W, 3); MONOCHROME1 and ``invert`` flip it (each once)."""
    index = frame.index
    if index is not None:  # window the distinct values once, then look each pixel up (exactly equal)
        levels = np.arange(int(index.max(initial=0)) + 1, dtype=np.float32) + np.float32(frame.index_base)
        table = to_display_uint8(_voi01(frame, levels, option))
        out = np.take(table, index)
    else:
        out = to_display_uint8(_voi01(frame, frame.values, option))
    if frame.inverted != invert:
        np.subtract(255, out, out=out)
    return out


# --- regions of interest ---------------------------------------------------------------------------
Point = tuple[float, float]  # (column, row) in stored pixels: pixel (c, r) spans [c, c + 1) x [r, r + 1)


@dataclass(frozen=True)
class RoiStatistics:
    """An ellipse on one frame, in stored pixels (before any rotation or flip on the screen), and the
    statistics of the stored pixels whose centres lie inside it (or on its edge)."""

    centre: Point  # (column, row)
    radii: Point  # (across, down), in pixels
    area: float  # of the ellipse: in mm² from the (row, column) spacing, each axis its own; else in px²
    area_unit: str  # "mm²", or "px²" when the frame has no pixel spacing
    count: int  # the pixels whose centres are inside
    # grey images: the modality values (before windowing; HU for CT); None for colour or no pixel inside
    mean: float | None = None
    sd: float | None = None  # the sample standard deviation (n - 1); 0 for one pixel
    minimum: float | None = None
    maximum: float | None = None
    value_unit: str = ""  # "HU" when the values are Hounsfield units, else "" (no unit known)
    rgb_mean: tuple[float, float, float] | None = None  # colour images: the mean of R, G, B (0-255)
    rgb_sd: tuple[float, float, float] | None = None  # colour images: the sample SD (n - 1) of R, G, B; 0 for one


def _ellipse(corner_a: Point, corner_b: Point) -> tuple[float, float, float, float]:
    """(centre column, centre row, radius across, radius down) of the ellipse inscribed in the
    rectangle with opposite corners ``corner_a`` and ``corner_b``."""
    x0, x1 = sorted((float(corner_a[0]), float(corner_b[0])))
    y0, y1 = sorted((float(corner_a[1]), float(corner_b[1])))
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0, (x1 - x0) / 2.0, (y1 - y0) / 2.0


def _ellipse_window(shape: tuple[int, ...], corner_a: Point, corner_b: Point) -> tuple[slice, slice, np.ndarray]:
    """The rows and columns of an image of ``shape`` (rows, columns, ...) around the ellipse, and the
    boolean mask there of the pixels whose centres (column + 0.5, row + 0.5) lie inside it."""
    cx, cy, rx, ry = _ellipse(corner_a, corner_b)
    height, width = int(shape[0]), int(shape[1])
    empty = slice(0, 0), slice(0, 0), np.zeros((0, 0), dtype=bool)
    if not all(math.isfinite(v) for v in (cx, cy, rx, ry)) or rx <= 0 or ry <= 0:
        return empty
    # the pixels whose centres lie in the ellipse's bounding box
    c0, c1 = max(math.ceil(cx - rx - 0.5), 0), min(math.floor(cx + rx - 0.5), width - 1)
    r0, r1 = max(math.ceil(cy - ry - 0.5), 0), min(math.floor(cy + ry - 0.5), height - 1)
    if c1 < c0 or r1 < r0:
        return empty
    across = (np.arange(c0, c1 + 1, dtype=np.float64) + 0.5 - cx) / rx
    down = (np.arange(r0, r1 + 1, dtype=np.float64) + 0.5 - cy) / ry
    return slice(r0, r1 + 1), slice(c0, c1 + 1), down[:, None] ** 2 + across[None, :] ** 2 <= 1.0


def ellipse_mask(shape: tuple[int, ...], corner_a: Point, corner_b: Point) -> np.ndarray:
    """Boolean (rows, columns) mask of an image of ``shape``: the pixels whose centres lie inside the
    ellipse inscribed in the rectangle with opposite corners ``corner_a`` and ``corner_b`` (column, row)."""
    mask = np.zeros((int(shape[0]), int(shape[1])), dtype=bool)
    rows, cols, inside = _ellipse_window(shape, corner_a, corner_b)
    mask[rows, cols] = inside
    return mask


def _channel_means(picked: np.ndarray) -> tuple[float, float, float]:
    """The mean of each of R, G and B over ``picked``: the (count, channels) values of the pixels inside
    a region, count at least 1."""
    red, green, blue = (float(v) for v in picked[:, :3].mean(axis=0))
    return red, green, blue


def _channel_sds(picked: np.ndarray) -> tuple[float, float, float]:
    """The sample SD (n - 1) of each of R, G and B over ``picked`` (as for ``_channel_means``); 0 for
    one pixel."""
    if picked.shape[0] < 2:
        return 0.0, 0.0, 0.0
    red, green, blue = (float(v) for v in picked[:, :3].std(axis=0, ddof=1))
    return red, green, blue


def roi_statistics(frame: ModalityFrame, corner_a: Point, corner_b: Point) -> RoiStatistics:
    """The statistics of ``frame`` in the ellipse inscribed in the rectangle with opposite corners
    ``corner_a`` and ``corner_b`` (column, row; stored pixels): its area (mm² with a pixel spacing,
    else px²), the count of the pixels whose centres lie inside, and of their values: for grey images
    the modality values' mean, SD, min and max; for colour images the mean and SD of R, G and B."""
    return region_statistics(frame.values, corner_a, corner_b, spacing=frame.spacing, hounsfield=frame.hounsfield)


def region_statistics(values: np.ndarray, corner_a: Point, corner_b: Point, *,
                      spacing: tuple[float, float] | None = None, hounsfield: bool = False) -> RoiStatistics:
    """``roi_statistics`` of any image of modality ``values`` (grey (H, W), colour (H, W, 3)) whose pixels are
    ``spacing`` (row, column) mm apart: a reformat's, say, as well as a decoded frame's."""
    cx, cy, rx, ry = _ellipse(corner_a, corner_b)
    rows, cols, inside = _ellipse_window(values.shape, corner_a, corner_b)
    picked = values[rows, cols][inside].astype(np.float64)
    area = math.pi * rx * ry if math.isfinite(rx * ry) else 0.0
    if spacing is not None:
        area *= spacing[0] * spacing[1]
    common: dict[str, Any] = {"centre": (cx, cy), "radii": (rx, ry), "area": area,
                              "area_unit": "px²" if spacing is None else "mm²", "count": int(picked.shape[0]),
                              "value_unit": "HU" if hounsfield else ""}
    if picked.shape[0] == 0:
        return RoiStatistics(**common)
    if picked.ndim == 2:  # colour: (count, 3)
        return RoiStatistics(**common, rgb_mean=_channel_means(picked), rgb_sd=_channel_sds(picked))
    picked = picked[np.isfinite(picked)]  # float pixel data may hold NaN / inf: no figure of them means anything
    if picked.size == 0:
        return RoiStatistics(**common)
    sd = float(picked.std(ddof=1)) if picked.size > 1 else 0.0
    return RoiStatistics(**common, mean=float(picked.mean()), sd=sd, minimum=float(picked.min()),
                         maximum=float(picked.max()))


def pixel_value_text(frame: ModalityFrame, point: Point) -> str:
    """What PACS viewers show under the mouse: the stored pixel at ``point`` (column, row; stored
    pixels, fractional) and its modality value — HU on CT, the value without a unit where none is
    known, R, G, B on colour images — or "" off the image. The pixel is the one whose square holds the
    point (as the ruler's and the region's pixels are)."""
    values = frame.values
    column, row = math.floor(point[0]), math.floor(point[1])
    if not (0 <= row < values.shape[0] and 0 <= column < values.shape[1]):
        return ""
    where = f"x {column} y {row}"
    value = values[row, column]
    if values.ndim == 3:
        red, green, blue = (float(v) for v in value[:3])
        return f"{where}: R {red:.0f} G {green:.0f} B {blue:.0f}"
    number = float(value)
    if not math.isfinite(number):
        return f"{where}: {number}"  # nan, inf: float pixel data says so
    text = f"{number:.0f}" if number == round(number) else f"{number:.4g}"
    return f"{where}: {text} HU" if frame.hounsfield else f"{where}: {text}"
