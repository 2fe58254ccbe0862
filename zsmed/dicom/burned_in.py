"""Text burned into the pixels, blanked in de-identified copies.

Ultrasound machines, secondary captures and photographs print the patient's name, ID and date into
the image itself; no header rule can reach it. What PACS teaching-file tools do, and what this module
does, is blank areas of the pixel data that the reader chooses:

* ``outside_ultrasound_regions``: everything outside the ultrasound image proper, i.e. outside the
  bounding box of the file's Sequence of Ultrasound Regions (the scan area, M-mode and Doppler strips,
  ECG trace). The machine prints its header (name, ID, date, hospital) around those regions.
* fixed boxes (``Box``, columns and rows from the image's top left corner), e.g. the band across the
  top where a capture station writes its header, clipped to each image.

Blanking decodes the image and writes it back uncompressed (Explicit VR Little Endian): the blanked
pixels are gone from the file, not hidden by a flag. Areas are filled with the darkest value (black
for RGB and YBR, which become RGB; the minimum for MONOCHROME2, the maximum for MONOCHROME1, the index
of the darkest palette entry for palette colour). Text elsewhere in the image, e.g. a name typed over
the scan area, is not found: the reader checks the exported images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zsmed.dicom.ultrasound import region_bounds, regions_fit
from zsmed.errors import ConfigError, DicomReadError, ZsmedError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


@dataclass(frozen=True)
class Box:
    """A rectangle of pixels: ``left``, ``top`` (0-based column and row of its first pixel), ``width``
    and ``height`` in pixels."""

    left: int
    top: int
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Box:
        """``"X,Y,WIDTH,HEIGHT"`` in pixels, e.g. ``"0,0,640,40"`` for a 40-pixel band across the top."""
        parts = [p.strip() for p in text.split(",")]
        try:
            left, top, width, height = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"an area to blank is X,Y,WIDTH,HEIGHT in whole pixels, not '{text}'") from None
        if left < 0 or top < 0 or width < 1 or height < 1:
            raise ConfigError(f"an area to blank starts at X, Y >= 0 and has a width and height of at least 1 "
                              f"pixel, not '{text}'")
        return cls(left, top, width, height)

    def clipped(self, rows: int, columns: int) -> Box | None:
        """The part of the box inside an image of ``rows`` x ``columns``; None when none is."""
        right, bottom = min(self.left + self.width, columns), min(self.top + self.height, rows)
        if self.left >= right or self.top >= bottom:
            return None
        return Box(self.left, self.top, right - self.left, bottom - self.top)

    def __str__(self) -> str:
        return f"{self.width} x {self.height} pixels at ({self.left}, {self.top})"


def outside_ultrasound_regions(ds: Dataset) -> list[Box]:
    """Boxes covering everything outside the bounding box of ``ds``'s ultrasound regions (a band above,
    one below, one each side); empty when the file has no regions or they do not fit its image
    (``zsmed.dicom.ultrasound.regions_fit``)."""
    bounds = region_bounds(ds)
    if bounds is None or not regions_fit(ds):
        return []
    rows, columns = int(ds.Rows), int(ds.Columns)
    left, top, right, bottom = bounds
    boxes = [Box(0, 0, columns, top), Box(0, bottom + 1, columns, rows - bottom - 1),
             Box(0, top, left, bottom - top + 1), Box(right + 1, top, columns - right - 1, bottom - top + 1)]
    return [b for b in boxes if b.width > 0 and b.height > 0]


def blank_boxes(pixels: np.ndarray, boxes: Sequence[Box], fill: int | float, *, frames: bool) -> np.ndarray:
    """A copy of ``pixels`` with ``boxes`` set to ``fill`` on every frame. ``pixels`` is (rows, columns
    [, samples]) or, with ``frames``, (frames, rows, columns [, samples])."""
    out = np.array(pixels, copy=True)
    view = out if frames else out[np.newaxis]
    rows, columns = view.shape[1], view.shape[2]
    for box in boxes:
        inside = box.clipped(rows, columns)
        if inside is not None:
            view[:, inside.top:inside.top + inside.height, inside.left:inside.left + inside.width] = fill
    return out


def darkest_value(ds: Dataset, pixels: np.ndarray) -> int | float:
    """The stored value shown darkest: see the module's docstring."""
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "MONOCHROME1":
        return pixels.max().item()
    if photometric == "PALETTE COLOR":
        return _darkest_palette_index(ds, pixels)
    if photometric.startswith("MONOCHROME"):
        return pixels.min().item()
    return 0


def _darkest_palette_index(ds: Dataset, pixels: np.ndarray) -> int:
    from pydicom.pixels import apply_color_lut

    candidates = np.unique(pixels)
    try:
        colours = apply_color_lut(candidates.astype(pixels.dtype), ds).astype(np.float64)
    except Exception:  # a palette pydicom cannot apply: the image's own smallest index
        return int(candidates.min())
    return int(candidates[int(np.argmin(colours.reshape(len(candidates), -1).sum(axis=1)))])


def blank_dataset(ds: Dataset, boxes: Sequence[Box], *, path: str | Path | None = None) -> list[Box]:
    """Blank ``boxes`` (clipped to the image) on every frame of ``ds``, in place, writing the pixel data
    back uncompressed; returns the boxes blanked (none: ``ds`` is untouched)."""
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian

    from zsmed.dicom.decode import number_of_frames, stored_pixels

    rows, columns = int(ds.Rows), int(ds.Columns)
    inside = [c for c in (b.clipped(rows, columns) for b in boxes) if c is not None]
    if not inside:
        return []
    spath = str(path) if path is not None else None
    try:
        pixels = stored_pixels(ds, path=spath)
    except ZsmedError as exc:  # not exported unblanked: the reader asked for the text to go
        raise DicomReadError(f"its pixels could not be decoded to blank the burned-in text ({exc.reason}): "
                             "not exported", path=spath) from None
    frames = number_of_frames(ds) > 1
    samples = int(ds.get("SamplesPerPixel", 1))
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if samples == 3:
        # pydicom hands YBR back as RGB (JPEG and JPEG 2000 decoders too): it is written so
        photometric = "RGB"
    blanked = blank_boxes(pixels, inside, darkest_value(ds, pixels), frames=frames)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID") == ExplicitVRBigEndian:
        # the decoded values are native numbers; pydicom writes new pixel data little-endian only
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    try:
        ds.set_pixel_data(blanked, photometric, int(ds.get("BitsStored", blanked.dtype.itemsize * 8)),
                          generate_instance_uid=False)  # the export's UIDs are dicognito's
    except (ValueError, AttributeError, NotImplementedError) as exc:
        raise DicomReadError(f"the pixels could not be written back after blanking ({exc})", path=spath) from None
    return inside


def describe_boxes(boxes: Sequence[Box]) -> str:
    return "; ".join(str(b) for b in boxes)


def areas_to_blank(ds: Dataset, *, outside_ultrasound: bool, boxes: Sequence[Box]) -> list[Box]:
    """The areas a de-identified copy of ``ds`` gets blanked: outside its ultrasound regions (where it
    has them and ``outside_ultrasound``) and the fixed ``boxes``."""
    found = outside_ultrasound_regions(ds) if outside_ultrasound else []
    return [*found, *boxes]
