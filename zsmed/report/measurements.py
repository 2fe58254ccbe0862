"""The reader's rulers and regions of interest back to the PACS: a Comprehensive SR (TID 1500
Measurement Report) in the source image's study, in a series of its own (``zsmed measurements``),
with one TID 1410 planar-ROI measurement group per mark:

- a ruler: a POLYLINE of its two ends and its Length (SCT 410668003) in mm;
- a region of interest: an ELLIPSE (the ends of its major axis, then of its minor axis) and its Area
  (SCT 42798000) in mm²; on grey images also the Mean, Standard Deviation, Minimum and Maximum of the
  pixels inside, in HU when the frame's values are Hounsfield units, else without a unit (UCUM ``1``);
  on colour images (RGB, YBR and palette colour, as the viewer shows them in RGB on a 0-255 scale) the
  mean and the standard deviation of each channel: "RGB R Component" (DCM 110834), "RGB G Component"
  (110835) and "RGB B Component" (110836), the standard names of CID 7469 for TID 1419's measurements,
  each with a Derivation (DCM 121401) of Mean (SCT 373098007) or Standard Deviation (SCT 386136009),
  without a unit (UCUM ``1``);
- an angle: a POLYLINE of its three points (the end of its first arm, its vertex, the end of its second
  arm) and its Angle (SCT 1483009, as pydicom's code tables give it: CID 12304, beside Length and Area)
  in degrees (UCUM ``deg``), as the viewer measured it in the patient's plane.

Graphic data is in DICOM's image coordinates (PS3.3 C.18.6.1.2): (column, row), with (0, 0) the
top-left corner of the top-left pixel, so the centre of pixel (c, r) is (c + 0.5, r + 0.5). The
viewer keeps its marks in the same convention (pixel (c, r) spans [c, c + 1) x [r, r + 1)), so the
points are written as they are, without an offset.

Only marks with a pixel spacing in mm are written: a length in pixels is not a measurement a PACS can
use. Lengths from Imager Pixel Spacing (at the detector) or Nominal Scanned Pixel Spacing (on the
film) are written with a TEXT item saying they are not corrected for the magnification (an angle's
group has none: a magnification the same across and down leaves angles as they are).

The observer is the reader (a person observer, their name as a DICOM PN), not the model; without a
reader name, zsmed as a device. highdicom is imported inside the functions, as in ``zsmed.report.sr``.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsmed.errors import NoPixelSpacingError
from zsmed.report.sr import (
    MANUFACTURER,
    _instance_number,
    _is_multi_frame,
    _quietly,
    _refusals,
    _save,
    _uid_from,
    device_observer,
    measurement_report,
    read_source,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from zsmed.dicom.display import RoiStatistics

MEASUREMENTS_SERIES_NUMBER = 992
MEASUREMENTS_SERIES_DESCRIPTION = "zsmed measurements"
NO_SPACING = "the image has no pixel spacing: its measurements are in pixels and are not written"
# where a spacing is not in the patient, the lengths and areas from it are magnified: the SR says so
SPACING_NOTES = {
    "ImagerPixelSpacing": "Lengths and areas are at the detector (Imager Pixel Spacing): "
                          "not corrected for the geometric magnification",
    "NominalScannedPixelSpacing": "Lengths and areas are on the scanned film (Nominal Scanned Pixel Spacing): "
                                  "not corrected for the magnification",
    # in the patient, but only as true as the machine's assumed speed of sound
    "SequenceOfUltrasoundRegions": "Lengths and areas from the ultrasound scan area's calibration "
                                   "(Physical Delta X and Y of its 2-D regions)",
}
_PN_GROUP_MAX = 64  # characters in one PN component group
Point = tuple[float, float]  # (column, row) in stored pixels, (0, 0) the top-left corner of the image


@dataclass(frozen=True)
class RulerMark:
    """A ruler: its two ends in stored pixels and its length in mm."""

    start: Point
    end: Point
    length_mm: float


@dataclass(frozen=True)
class AngleMark:
    """An angle: the end of its first arm, its vertex and the end of its second arm (stored pixels), and
    the angle at the vertex in degrees (0 to 180) as the viewer measured it."""

    first_end: Point
    vertex: Point
    second_end: Point
    degrees: float


@dataclass(frozen=True)
class RegionMark:
    """An elliptical region of interest: the opposite corners of the rectangle it is inscribed in (stored
    pixels) and its figures as the viewer computed them (area in mm², the values' statistics)."""

    corner_a: Point
    corner_b: Point
    statistics: RoiStatistics


@dataclass(frozen=True)
class PixelSpacing:
    """The spacing the marks were measured with: (row, column) in mm, and the element it came from
    (``PixelSpacing``, ``ImagerPixelSpacing``, ``NominalScannedPixelSpacing`` or, on ultrasound,
    ``SequenceOfUltrasoundRegions``)."""

    row: float
    column: float
    element: str = "PixelSpacing"


# --- pure geometry and names -----------------------------------------------------------------------
def ellipse_points(corner_a: Point, corner_b: Point, spacing: PixelSpacing) -> list[Point]:
    """The four points of a DICOM ELLIPSE for the ellipse inscribed in the rectangle with opposite
    corners ``corner_a`` and ``corner_b``: the ends of its major axis, then of its minor axis. The
    major axis is the longer in mm (pixels need not be square); a circle's is the horizontal one."""
    x0, x1 = sorted((float(corner_a[0]), float(corner_b[0])))
    y0, y1 = sorted((float(corner_a[1]), float(corner_b[1])))
    centre_x, centre_y = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    across = [(x0, centre_y), (x1, centre_y)]
    down = [(centre_x, y0), (centre_x, y1)]
    wide = (x1 - x0) * spacing.column >= (y1 - y0) * spacing.row
    return across + down if wide else down + across


def person_name(reader: str) -> str:
    """The reader's name as a DICOM PN value, '' when none is left. A free-text name cannot be split
    into family and given names safely, so it is all the family-name component, followed by a caret
    (highdicom refuses a PN without one: it is more often a mistake than a one-part name). The
    characters PN gives a meaning (``^ = \\``) and control characters become spaces."""
    spaced = "".join(" " if char in "^=\\" or unicodedata.category(char).startswith("C") else char
                     for char in str(reader))
    name = " ".join(spaced.split())[: _PN_GROUP_MAX - 1].strip()
    return f"{name}^" if name else ""


def _finite(*values: float) -> bool:
    return all(math.isfinite(float(v)) for v in values)


def _check_marks(rulers: Sequence[RulerMark], regions: Sequence[RegionMark], angles: Sequence[AngleMark]) -> None:
    if not rulers and not regions and not angles:
        raise ValueError("no rulers or regions of interest or angles to write")
    for ruler in rulers:
        if not _finite(*ruler.start, *ruler.end, ruler.length_mm) or ruler.length_mm < 0:
            raise ValueError(f"a ruler with points or a length that are not finite: {ruler}")
    for region in regions:
        if not _finite(*region.corner_a, *region.corner_b, region.statistics.area):
            raise ValueError(f"a region of interest with corners or an area that are not finite: {region}")
    for angle in angles:
        if not _finite(*angle.first_end, *angle.vertex, *angle.second_end, angle.degrees) or not (
                0.0 <= angle.degrees <= 180.0):
            raise ValueError(f"an angle with points that are not finite or not 0 to 180 degrees: {angle}")


# --- the SR content ----------------------------------------------------------------------------------
def _observer_context(reader: str) -> Any:
    """The reader as a person observer (TID 1003); without a name, zsmed as the device (TID 1004)."""
    from highdicom import sr
    from pydicom.sr.codedict import codes

    name = person_name(reader)
    if not name:
        return sr.ObservationContext(observer_device_context=device_observer(MANUFACTURER, "measurements"))
    person = sr.ObserverContext(observer_type=codes.DCM.Person,
                                observer_identifying_attributes=sr.PersonObserverIdentifyingAttributes(name=name))
    return sr.ObservationContext(observer_person_context=person)


def _region_measurements(statistics: RoiStatistics) -> list[Any]:
    """Area in mm², on grey images the values' mean, SD, min and max (HU, else unit 1), on colour images
    the mean and SD of R, G and B (:func:`_colour_measurements`)."""
    from highdicom import sr
    from pydicom.sr.codedict import codes

    found = [sr.Measurement(name=codes.SCT.Area, value=float(statistics.area), unit=codes.UCUM.SquareMillimeter)]
    unit = codes.UCUM.HounsfieldUnit if statistics.value_unit == "HU" else codes.UCUM.NoUnits
    figures = ((codes.SCT.Mean, statistics.mean), (codes.SCT.StandardDeviation, statistics.sd),
               (codes.SCT.Minimum, statistics.minimum), (codes.SCT.Maximum, statistics.maximum))
    found += [sr.Measurement(name=name, value=float(value), unit=unit)
              for name, value in figures if value is not None and _finite(value)]
    return found + _colour_measurements(statistics)


def _colour_measurements(statistics: RoiStatistics) -> list[Any]:
    """The mean, then the SD, of each of R, G and B inside a region of a colour image: a NUM named by
    the channel (DCM 110834-110836 "RGB R/G/B Component", CID 7469, the TID 1419 measurements) with
    its Derivation (DCM 121401; SCT Mean or Standard Deviation, CID 7464), on the viewer's 0-255 scale
    without a unit (UCUM 1). None on grey images."""
    from highdicom import sr
    from pydicom.sr.codedict import codes

    if statistics.rgb_mean is None:
        return []
    channels = (codes.DCM.RGBRComponent, codes.DCM.RGBGComponent, codes.DCM.RGBBComponent)
    figures = [(codes.SCT.Mean, statistics.rgb_mean)]
    if statistics.rgb_sd is not None:
        figures.append((codes.SCT.StandardDeviation, statistics.rgb_sd))
    return [sr.Measurement(name=channel, value=float(value), unit=codes.UCUM.NoUnits, derivation=derivation)
            for derivation, values in figures for channel, value in zip(channels, values, strict=True)
            if _finite(value)]


def _group(identifier: str, graphic_type: str, points: list[Point], measurements: list[Any], src: Dataset,
           frame: int | None, note: str | None) -> Any:
    """One TID 1410 group: the mark as a SCOORD on the source image (its frame, for a frame of a
    multi-frame image), its measurements and, where the spacing is not in the patient, a note."""
    import highdicom as hd
    import numpy as np
    from highdicom import sr
    from pydicom.sr.codedict import codes

    frames = [frame + 1] if frame is not None and _is_multi_frame(src) else None
    region = sr.ImageRegion(
        graphic_type=graphic_type, graphic_data=np.asarray(points, dtype=np.float64),  # (column, row): as stored
        source_image=sr.SourceImageForRegion(src.SOPClassUID, src.SOPInstanceUID, frames),
        pixel_origin_interpretation="FRAME" if frames else None,
    )
    group = sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=sr.TrackingIdentifier(uid=hd.UID(), identifier=identifier),
        referenced_region=region, measurements=measurements,
    )
    if note:
        group[0].ContentSequence.append(sr.TextContentItem(
            name=codes.DCM.Comment, value=note, relationship_type=sr.RelationshipTypeValues.CONTAINS))
    return group


def _content(src: Dataset, frame: int | None, rulers: Sequence[RulerMark], regions: Sequence[RegionMark],
             angles: Sequence[AngleMark], spacing: PixelSpacing, reader: str) -> Any:
    from highdicom import sr
    from pydicom.sr.codedict import codes

    note = SPACING_NOTES.get(spacing.element)
    groups = [
        _group(f"Ruler {number}", "POLYLINE", [ruler.start, ruler.end],
               [sr.Measurement(name=codes.SCT.Length, value=float(ruler.length_mm), unit=codes.UCUM.Millimeter)],
               src, frame, note)
        for number, ruler in enumerate(rulers, 1)
    ]
    groups += [
        _group(f"Region {number}", "ELLIPSE", ellipse_points(region.corner_a, region.corner_b, spacing),
               _region_measurements(region.statistics), src, frame, note)
        for number, region in enumerate(regions, 1)
    ]
    groups += [
        _group(f"Angle {number}", "POLYLINE", [angle.first_end, angle.vertex, angle.second_end],
               [sr.Measurement(name=codes.SCT.Angle, value=float(angle.degrees), unit=codes.UCUM.Degree)],
               src, frame, None)
        for number, angle in enumerate(angles, 1)
    ]
    return measurement_report(_observer_context(reader), groups, src)


@_quietly
def write_measurements_sr(source: str | Path, *, frame: int | None, rulers: Sequence[RulerMark],
                          regions: Sequence[RegionMark], spacing: PixelSpacing | None, reader: str,
                          out_dir: Path, angles: Sequence[AngleMark] = ()) -> Path:
    """Write the reader's ``rulers``, ``regions`` and ``angles`` on ``source`` (``frame``: 0-based, the
    frame they were drawn on) as one Comprehensive SR into ``out_dir``; returns its path (``SR_<SOP
    Instance UID>.dcm``). ``spacing``: the one they were measured with; ``reader``: the reader's name
    (the observer; '' for zsmed as the device).

    Without a spacing in mm (a photograph, a file without Pixel Spacing), and for a file that is not
    DICOM or lacks the UIDs a report refers to: a one-line ``ZsmedError`` naming the file, nothing
    written."""
    import zsmed

    if spacing is None:  # before the marks: without a spacing, the viewer's are in pixels
        raise NoPixelSpacingError(NO_SPACING, path=source)
    _check_marks(rulers, regions, angles)
    src = read_source(source, frame)
    from highdicom import UID
    from highdicom.sr import ComprehensiveSR

    with _refusals(source, "a DICOM report of the measurements"):
        document = ComprehensiveSR(
            evidence=[src], content=_content(src, frame, rulers, regions, angles, spacing, reader),
            series_instance_uid=_uid_from("measurements", src.StudyInstanceUID),
            series_number=MEASUREMENTS_SERIES_NUMBER, sop_instance_uid=UID(), instance_number=_instance_number(src),
            manufacturer=MANUFACTURER, is_complete=True, is_final=False,
            series_description=MEASUREMENTS_SERIES_DESCRIPTION, software_versions=zsmed.__version__,
            manufacturer_model_name="zsmed viewer", specific_character_set="ISO_IR 192",
        )
    return _save(document, Path(out_dir), "SR")


__all__ = ["MEASUREMENTS_SERIES_DESCRIPTION", "MEASUREMENTS_SERIES_NUMBER", "AngleMark", "NoPixelSpacingError",
           "PixelSpacing", "RegionMark", "RulerMark", "ellipse_points", "person_name", "write_measurements_sr"]
