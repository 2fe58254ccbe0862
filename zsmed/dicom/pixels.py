"""Minimal first version; replaced by the full decoding and display pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zsmed.errors import DicomReadError, NoPixelDataError, PixelDecodeError


def load_model_image(path: str | Path, frame: int = 0) -> np.ndarray:
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(str(path))
    except Exception as exc:
        raise DicomReadError(f"not readable as DICOM ({exc})", path=path) from exc
    if "PixelData" not in ds:
        raise NoPixelDataError("holds no image", path=path)
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise PixelDecodeError(str(exc), path=path) from exc
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        arr = arr[frame]
    if ds.get("SamplesPerPixel", 1) == 3:
        return arr.astype(np.float32) / float(arr.max() or 1)
    arr = apply_voi_lut(apply_modality_lut(arr, ds), ds).astype(np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    out = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        out = 1.0 - out
    return out
