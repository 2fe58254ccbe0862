"""Reformats back to the PACS as a derived series, as reading workstations save them: each reformat image
(a coronal, a sagittal, a thick-slab MIP …) a CT or MR image of its own in a new series of the study,
placed in the patient by its own Image Position and Orientation (the source's Frame of Reference), so
that every PACS viewer shows it at true scale, measures it in mm and draws reference lines with it.

The values are the source's modality values (HU for CT) through Rescale Slope / Intercept, the window
is the one the reader used, the Image Type says DERIVED \\ SECONDARY \\ REFORMATTED and the Derivation
Code says how (DCM 113072 Multiplanar reformatting, 113078 / 113079 maximum / minimum intensity
projection for a MIP / MinIP slab). ``write_reformat_series_job`` writes one image per slice asked for,
into a folder of its own, each file whole or not at all.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from zsmed.dicom.volume import (
    AnyPlane,
    Curved,
    Reformat,
    SlabMode,
    Volume,
    plane_count,
    plane_spacing,
    plane_word,
    reformat,
    reformat_plane,
)
from zsmed.errors import DicomReadError
from zsmed.progress import Job, Progress
from zsmed.report.measurements import person_name
from zsmed.report.sr import MANUFACTURER, _quietly, _save, read_source

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

REFORMAT_SERIES_NUMBER = 995
CURVED_SERIES_NUMBER = 996  # a curved reformat: a secondary capture, on no plane
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
_STORAGE = {"CT": CT_IMAGE_STORAGE, "MR": MR_IMAGE_STORAGE}
_MODE_WORDS = {"mip": "MIP", "mean": "mean", "minip": "MinIP"}
# DCM codes of CID 7203 (Image Derivation) for how the image was made
_DERIVATION = {"reformat": ("113072", "Multiplanar reformatting"), "mip": ("113078", "Maximum intensity projection"),
               "minip": ("113079", "Minimum intensity projection")}
# copied from the source: the patient, the study, the frame of reference and what the MR / CT was
_PATIENT_AND_STUDY = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
                      "PatientAge", "PatientWeight", "PatientSize", "StudyInstanceUID", "StudyDate", "StudyTime",
                      "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription",
                      "FrameOfReferenceUID", "PositionReferenceIndicator", "BodyPartExamined", "PatientPosition",
                      "Laterality",
                      "SpecificCharacterSet")
# present, empty where the source has none; Laterality (2C, for paired organs) is empty when unknown, as
# validators expect it and the reformat cannot know it where the source does not say
_TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
           "ReferringPhysicianName", "StudyID", "AccessionNumber", "PositionReferenceIndicator", "Laterality")
_MR_ACQUISITION = ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "RepetitionTime",
                   "EchoTime", "EchoTrainLength", "MagneticFieldStrength", "SequenceName")
_UINT16_TOP = 65535


@dataclass(frozen=True)
class ReformatSeries:
    """A reformat series asked for: the plane, its slices (indices of ``plane``), the slab and its mode,
    the window (centre, width) in modality units, and who saved it."""

    plane: AnyPlane  # a standard plane by name, or an oblique one
    indices: tuple[int, ...]
    slab_mm: float = 0.0
    mode: SlabMode = "mip"
    window: tuple[float, float] | None = None
    reader: str = ""


def every_mm(volume: Volume, plane: AnyPlane, step_mm: float, around: int | None = None) -> tuple[int, ...]:
    """Slices of ``plane`` ``step_mm`` apart (at least one slice apart) across the whole volume, lined up
    on slice ``around`` (default the first): a batch of coronals every 3 mm, say."""
    count, spacing = plane_count(volume, plane), plane_spacing(volume, plane)
    step = max(1, round(step_mm / spacing)) if step_mm > 0 else 1
    start = (around if around is not None else 0) % step
    return tuple(range(start, count, step))


def description(volume: Volume, series: ReformatSeries) -> str:
    """The series' description as a PACS lists it: "zsmed coronal 5 mm MIP", "zsmed sagittal"."""
    words = f"zsmed {plane_word(series.plane)}"
    if series.slab_mm > 0:
        words += f" {series.slab_mm:.3g} mm {_MODE_WORDS[series.mode]}"
    if len(series.indices) > 1:
        step = (series.indices[1] - series.indices[0]) * plane_spacing(volume, series.plane)
        words += f" every {step:.3g} mm"
    return words[:64]  # LO


def stored_values(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Modality values as unsigned 16-bit stored values with the slope and intercept that give them back:
    whole numbers (a CT's HU, a plain slice) exactly, fractions (a mean slab) to 1 / 65535 of the range."""
    finite = np.nan_to_num(image.astype(np.float64), nan=0.0)
    low, high = float(finite.min()), float(finite.max())
    whole = bool(np.all(np.abs(finite - np.round(finite)) < 1e-3))
    if whole and high - low <= _UINT16_TOP:
        intercept, slope = float(math.floor(low)), 1.0
    else:
        intercept, slope = low, (high - low) / _UINT16_TOP or 1.0
    stored = np.clip(np.round((finite - intercept) / slope), 0, _UINT16_TOP).astype(np.uint16)
    return stored, slope, intercept


@_quietly
def reformat_dataset(volume: Volume, source: Dataset, series: ReformatSeries, shown: Reformat, *, series_uid: str,
                     instance: int, now: datetime.datetime) -> Dataset:
    """One reformat image (``shown``, a slice or slab of ``series.plane``) as a CT or MR image of the
    derived series ``series_uid``, with the patient and study of ``source``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    modality = volume.modality
    ds = Dataset()
    for keyword in _PATIENT_AND_STUDY:
        if keyword in source:
            setattr(ds, keyword, source[keyword].value)
    for keyword in _TYPE_2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    ds.SOPClassUID = _STORAGE[modality]
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = REFORMAT_SERIES_NUMBER
    ds.SeriesDescription = description(volume, series)
    ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.InstanceNumber = instance
    ds.Manufacturer = MANUFACTURER
    ds.ImageType = ["DERIVED", "SECONDARY", "REFORMATTED"]
    if person_name(series.reader):
        ds.OperatorsName = person_name(series.reader)
    plane = reformat_plane(volume, series.plane, shown.index)
    slab = f", {shown.slab_mm:.3g} mm {_MODE_WORDS[shown.mode]}" if shown.slab_slices > 1 else ""
    source_series = source.get("SeriesNumber", "")
    ds.DerivationDescription = f"{plane_word(series.plane)} reformat{slab} of series {source_series}".strip()
    code = _DERIVATION[shown.mode] if shown.slab_slices > 1 and shown.mode in _DERIVATION else _DERIVATION["reformat"]
    derivation = Dataset()
    derivation.CodeValue, derivation.CodingSchemeDesignator, derivation.CodeMeaning = code[0], "DCM", code[1]
    ds.DerivationCodeSequence = [derivation]
    ds.ImagePositionPatient = [round(v, 4) for v in plane.position]
    ds.ImageOrientationPatient = [round(v, 6) for v in (*plane.row_direction, *plane.column_direction)]
    ds.PixelSpacing = [round(plane.spacing[0], 6), round(plane.spacing[1], 6)]
    ds.SliceThickness = round(shown.slab_mm if shown.slab_slices > 1 else plane_spacing(volume, series.plane), 6)
    if len(series.indices) > 1:
        ds.SpacingBetweenSlices = round((series.indices[1] - series.indices[0]) * plane_spacing(volume, series.plane),
                                        6)
    ds.SliceLocation = round(shown.location_mm, 4)
    stored, slope, intercept = stored_values(shown.image)
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if volume.inverted else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope = f"{intercept:.10g}", f"{slope:.10g}"
    if modality == "CT":
        ds.RescaleType = "HU" if volume.hounsfield else "US"
        ds.KVP = source.get("KVP", "")
        ds.AcquisitionNumber = ""
    else:
        for keyword in _MR_ACQUISITION:
            setattr(ds, keyword, source[keyword].value if keyword in source else "")
        ds.ScanningSequence = source.get("ScanningSequence") or "RM"  # type 1: research mode where unknown
        ds.SequenceVariant = source.get("SequenceVariant") or "NONE"
    if series.window is not None:
        centre, width = series.window
        ds.WindowCenter, ds.WindowWidth = f"{centre:.6g}", f"{max(width, 1.0):.6g}"
        ds.WindowCenterWidthExplanation = "as read"
    ds.PixelData = stored.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def write_reformat_series_job(volume: Volume, series: ReformatSeries, out_dir: Path | None = None) -> Job[list[Path]]:
    """The slices ``series`` asks for as a new derived series of the study, one file each, in a folder of
    their own inside ``out_dir`` (default: beside the series' first file), yielding ``Progress`` for each
    image written (cancelling stops before the next; the images written stay, each whole)."""
    if volume.modality not in _STORAGE:
        raise DicomReadError(f"a {volume.modality or 'series without a modality'}: only CT and MR reformats can be "
                             "saved as images for the PACS", path=volume.paths[0])
    if not series.indices:
        raise DicomReadError("no reformat slice to save", path=volume.paths[0])
    from pydicom.uid import generate_uid

    source = read_source(volume.paths[0])
    now = datetime.datetime.now()
    series_uid = str(generate_uid())
    base = out_dir if out_dir is not None else volume.paths[0].parent
    folder = base / f"MPR_{plane_word(series.plane)}_{now.strftime('%Y%m%d_%H%M%S')}"
    written: list[Path] = []
    for number, index in enumerate(series.indices, 1):
        shown = reformat(volume, series.plane, index, series.slab_mm, series.mode)
        dataset = reformat_dataset(volume, source, series, shown, series_uid=series_uid, instance=number, now=now)
        written.append(_save(dataset, folder, "MPR", name=f"MPR_{number:04d}.dcm", what="the reformat image"))
        yield Progress(number, len(series.indices), f"saving reformat image {number} of {len(series.indices)}")
    return written


@_quietly
def write_curved_capture(volume: Volume, shown: Reformat, pixels: np.ndarray, *, reader: str = "",
                         out_dir: Path | None = None) -> Path:
    """A curved reformat (``shown``, of a ``Curved`` plane) as the reader sees it (``pixels``: uint8 grey, its
    window) saved as a Secondary Capture image of the study, in a series of its own, next to the series (or in
    ``out_dir``): it lies on no plane, so it cannot be a CT or MR image a PACS would place in the patient.
    Its pixel spacing is mm along the path (across) and mm down, as the reader measured it; its comments say
    what it is. Returns the file written."""
    import zsmed

    plane = shown.plane
    if not isinstance(plane, Curved):
        raise DicomReadError("only a curved reformat is saved as a picture; planes are saved as CT / MR images",
                             path=volume.paths[0])
    from highdicom import UID
    from highdicom.sc import SCImage

    from zsmed.report.sr import _refusals

    source = read_source(volume.paths[0])
    now = datetime.datetime.now()
    with _refusals(volume.paths[0], "a curved reformat picture"):
        capture = SCImage.from_ref_dataset(
            source, np.ascontiguousarray(pixels, dtype=np.uint8), "MONOCHROME2", 8, "PATIENT",
            series_instance_uid=UID(), series_number=CURVED_SERIES_NUMBER, sop_instance_uid=UID(),
            instance_number=1, manufacturer=MANUFACTURER,
            pixel_spacing=cast(Any, (plane.pixel_mm, plane.pixel_mm)),  # highdicom's hint says int: mm are floats
            patient_orientation=(shown.edges[1][:1] or "L", shown.edges[3][:1] or "F"),  # highdicom: one letter
            series_description="zsmed curved reformat",
            software_versions=zsmed.__version__, specific_character_set="ISO_IR 192",
        )
        capture.copy_patient_and_study_information(source)
    capture.Laterality = ""  # type 2C: present, empty when unknown
    # along the path at its end ("PL" where it runs obliquely: DICOM allows combined letters), and down; the
    # row direction turns with the path, as the comments say
    capture.PatientOrientation = [shown.edges[1] or "L", shown.edges[3] or "F"]
    capture.ImageType = ["DERIVED", "SECONDARY", "CURVED"]
    capture.BurnedInAnnotation = "NO"
    capture.DerivationDescription = (f"curved reformat of series {source.get('SeriesNumber', '')} along a "
                                     f"{plane.length_mm:.1f} mm path, rendered with its window").strip()[:1024]
    capture.ImageComments = (f"Curved reformat: columns are {plane.pixel_mm:.3g} mm apart along a path of "
                             f"{plane.length_mm:.1f} mm drawn by the reader, rows {plane.pixel_mm:.3g} mm apart "
                             "across it; not a plane of the patient (no position, no reference lines)")
    if person_name(reader):
        capture.OperatorsName = person_name(reader)
    base = out_dir if out_dir is not None else volume.paths[0].parent
    return _save(capture, base / f"MPR_curved_{now.strftime('%Y%m%d_%H%M%S')}", "SC",
                 name="CURVED_0001.dcm", what="the curved reformat picture")


__all__ = ["CURVED_SERIES_NUMBER", "REFORMAT_SERIES_NUMBER", "ReformatSeries", "description", "every_mm",
           "reformat_dataset", "stored_values", "write_curved_capture", "write_reformat_series_job"]
