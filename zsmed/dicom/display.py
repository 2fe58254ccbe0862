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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from zsmed.errors import PixelDecodeError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

_PERCENTILES = (0.5, 99.5)


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


def _apply_lut(arr: np.ndarray, item: Any, signed_first: bool) -> tuple[np.ndarray, int]:
    """Look stored values up in a LUT item; return (values, LUT bits)."""
    desc = list(item.LUTDescriptor)
    entries = int(desc[0]) or 65536
    first = int(desc[1])
    if signed_first and first > 32767:
        first -= 65536
    bits = int(desc[2]) if len(desc) > 2 else 16
    lut = _lut_data(item)
    if lut.size == 0:
        raise PixelDecodeError("LUT has no data")
    lut = lut[:entries] if lut.size >= entries else lut
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
