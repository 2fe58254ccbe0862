"""An ultrasound image's regions (Sequence of Ultrasound Regions, PS3.3 C.8.5.5): where the scan area
is in the image, and its calibration.

Ultrasound images carry no Pixel Spacing: each region of the image (the 2-D scan, an M-mode or
Doppler strip, the ECG trace) says what one pixel is worth in it. A 2-D region calibrated in cm in
both directions gives the scan area's pixel size, so rulers and areas on it are in mm, as on the
ultrasound machine. Regions are trusted only where they lie inside the image: a capture scaled after
the machine wrote them (the same regions on an image half the size) would give wrong distances and a
wrong scan area.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

SPATIAL_FORMAT_2D = 1  # Region Spatial Format: a 2-D scan (tissue or colour flow)
UNITS_CM = 3  # Physical Units X / Y Direction: cm
_SAME_CALIBRATION = 0.01  # relative difference between two 2-D regions' pixel sizes still taken as one


def _corners(region: Any) -> tuple[int, int, int, int] | None:
    try:
        return (int(region.RegionLocationMinX0), int(region.RegionLocationMinY0),
                int(region.RegionLocationMaxX1), int(region.RegionLocationMaxY1))
    except (AttributeError, TypeError, ValueError):
        return None  # a region without its four corners marks nothing


def _inside(corners: tuple[int, int, int, int], rows: int, columns: int) -> bool:
    # a last pixel one past the image (MaxX1 = Columns) is a common off-by-one of the machines: allowed
    left, top, right, bottom = corners
    return 0 <= left <= right <= columns and 0 <= top <= bottom <= rows


def region_bounds(ds: Dataset) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom), inclusive pixels, of the union of ``ds``'s ultrasound regions, clipped
    to the image; None when it has none."""
    found = [c for c in (_corners(r) for r in ds.get("SequenceOfUltrasoundRegions") or []) if c is not None]
    if not found:
        return None
    rows, columns = int(ds.Rows), int(ds.Columns)
    return (min(c[0] for c in found), min(c[1] for c in found),
            min(columns - 1, max(c[2] for c in found)), min(rows - 1, max(c[3] for c in found)))


def regions_fit(ds: Dataset) -> bool | None:
    """Whether ``ds``'s ultrasound regions lie inside its image (None: it has none). Regions that reach
    past it were set for another size of it, and neither their area nor their calibration is used."""
    found = [c for c in (_corners(r) for r in ds.get("SequenceOfUltrasoundRegions") or []) if c is not None]
    if not found:
        return None
    rows, columns = int(ds.Rows), int(ds.Columns)
    return all(_inside(c, rows, columns) for c in found)


def calibrated_spacing(ds: Dataset) -> tuple[float, float] | None:
    """(row, column) pixel size in mm of the 2-D scan regions calibrated in cm; None when there is none,
    when the regions do not fit the image, or when two 2-D regions are calibrated differently (a
    measurement's scale would then depend on where it is drawn)."""
    if not regions_fit(ds):
        return None
    sizes = []
    for region in ds.get("SequenceOfUltrasoundRegions") or []:
        try:
            if (int(region.RegionSpatialFormat) != SPATIAL_FORMAT_2D or int(region.PhysicalUnitsXDirection) != UNITS_CM
                    or int(region.PhysicalUnitsYDirection) != UNITS_CM):
                continue
            column_mm, row_mm = abs(float(region.PhysicalDeltaX)) * 10.0, abs(float(region.PhysicalDeltaY)) * 10.0
        except (AttributeError, TypeError, ValueError):
            continue
        if math.isfinite(row_mm) and math.isfinite(column_mm) and row_mm > 0 and column_mm > 0:
            sizes.append((row_mm, column_mm))
    if not sizes:
        return None
    first = sizes[0]
    if any(abs(a - b) > _SAME_CALIBRATION * b for size in sizes for a, b in zip(size, first, strict=True)):
        return None
    return first
