"""A prediction back to the PACS as DICOM: a Comprehensive SR per classified image (and, on request,
a Secondary Capture with the result burned into a banner), in the source image's study.

The SR follows TID 1500 (Measurement Report) with one TID 1501 measurement group that

- references the source SOP instance (and its frame, for a frame of a multi-frame image),
- identifies the model (TID 4019 Algorithm Identification: name, version, and the bundle SHA-256
  as an algorithm parameter),
- holds one NUM per class (its probability, unit UCUM ``1``) and the unlikeness score (OOD score
  relative to the gate's threshold: above 1.0 the model abstains),
- gives the top class or the abstention as a coded ``Finding`` (DCM 121071),
- states in TEXT items that it is not a diagnosis, and the result in words.

Classes and the abstention are coded in the private scheme ``99ZSMED`` (declared in the Coding
Scheme Identification Sequence); dciodvfy warns about any scheme it does not know, so those warnings
are expected. Patient and study modules are copied from the source; the SR goes in a series of its
own (one per study and model, ``zsmed result``), never into the source's series.

Sources are read header-only for the SR; the SC decodes the one frame it shows in the contained
decoder process (``zsmed.dicom.safe``), as ``predict`` does. highdicom and
Pillow are imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import functools
import math
import struct
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from zsmed.digest import file_sha256
from zsmed.errors import DicomReadError, InputFileError, NotDicomError, ZsmedError
from zsmed.imageio import is_photo
from zsmed.paths import replacing

if TYPE_CHECKING:
    import numpy as np
    from pydicom.dataset import Dataset

    from zsmed.runtime.bundle import Bundle

NOT_A_DIAGNOSIS = "Not a diagnosis: decision support only, to be checked by a qualified reader"
ABSTAIN_TEXT = "No result: not like the images this model was built on"
MANUFACTURER = "zsmed"
SERIES_DESCRIPTION = "zsmed result"
CODING_SCHEME = "99ZSMED"
SR_SERIES_NUMBER = 990
SC_SERIES_NUMBER = 991
_ABSTAIN_CODE = "abstain"
_MEANING_MAX = 64  # LO
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelIdentity:
    """The model a result came from, as written into reports and the case log."""

    name: str
    version: str
    bundle_sha256: str  # SHA-256 of the .zsmb file's bytes (hex)


def model_identity(bundle: Bundle) -> ModelIdentity:
    """Name, version and SHA-256 of a runtime ``Bundle``.

    ``bundle_sha256`` is the SHA-256 of the **.zsmb file's bytes** (``sha256sum model.zsmb`` gives the
    same), not ``bundle.bundle_id`` (the SHA-256 of its manifest). The name is the card's ``name`` or
    else the file's stem; the version the card's ``version`` or else its export time stamp (else the
    first 16 hex digits of ``bundle_id``, as ``zsmed bundle info`` shows it)."""
    card = bundle.card
    name = str(card.get("name") or Path(bundle.path).stem)
    version = card.get("version") or (f"exported {card['exported']}" if card.get("exported") else "")
    try:
        sha = file_sha256(bundle.path)
    except OSError as exc:
        raise InputFileError(f"cannot read the bundle to hash it ({exc.strerror or exc})", path=bundle.path) from exc
    return ModelIdentity(name=name, version=str(version or f"id {bundle.bundle_id[:16]}"), bundle_sha256=sha)


# --- the source ----------------------------------------------------------------------------------
_NEEDED = (("StudyInstanceUID", "Study Instance UID"), ("SeriesInstanceUID", "Series Instance UID"),
           ("SOPInstanceUID", "SOP Instance UID"), ("SOPClassUID", "SOP Class UID"))
# Type 2 attributes highdicom reads from the evidence: present (maybe empty) on the copy we hand it
_TYPE2 = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate",
          "StudyTime", "ReferringPhysicianName")


def read_source(source: str | Path, frame: int | None = None) -> Dataset:
    """The source's header (no pixels), checked to be a DICOM instance a report can refer to."""
    path = Path(source)
    if is_photo(path):
        raise NotDicomError("a photo has no DICOM study: no DICOM report can be written for it", path=path)
    from zsmed.dicom.decode import damaged_values, open_dataset

    ds = open_dataset(path, stop_before_pixels=True)[0]
    with damaged_values(path):
        return _checked_source(ds, path, frame)


def _checked_source(ds: Dataset, path: Path, frame: int | None) -> Dataset:
    """``ds`` with the UIDs a report needs (from its file meta where it lacks them) and its type 2 elements,
    ``frame`` checked to be one of its frames."""
    from zsmed.dicom.decode import number_of_frames

    if "SOPClassUID" not in ds and "MediaStorageSOPClassUID" in getattr(ds, "file_meta", {}):
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    if "SOPInstanceUID" not in ds and "MediaStorageSOPInstanceUID" in getattr(ds, "file_meta", {}):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    for keyword, name in _NEEDED:
        if not str(ds.get(keyword) or "").strip():
            raise DicomReadError(f"the file has no {name}: a report cannot be placed in its study", path=path)
    for keyword in _TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    if frame is not None:
        frames = number_of_frames(ds)
        if not 0 <= frame < frames:
            raise DicomReadError(f"frame {frame + 1} does not exist (the image has {frames} frame(s))", path=path)
    return ds


def _is_multi_frame(ds: Dataset) -> bool:
    from zsmed.dicom.decode import number_of_frames

    return number_of_frames(ds) > 1


def _uid_from(*parts: str) -> str:
    """A UID derived from ``parts`` (2.25 form): every report of one model in one study shares a series."""
    from pydicom.uid import generate_uid

    return str(generate_uid(prefix=None, entropy_srcs=["zsmed", *parts]))


def date_time_text(date: object, time: object) -> str:
    """A DICOM DA and TM pair as "YYYY-MM-DD HH:MM" (the date alone without a time); "" for no date."""
    date, time = str(date or ""), str(time or "")
    if len(date) != 8 or not date.isdigit():
        return ""
    text = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    return f"{text} {time[:2]}:{time[2:4]}" if len(time) >= 4 and time[:4].isdigit() else text


def _instance_number(ds: Dataset) -> int:
    try:
        number = int(str(ds.get("InstanceNumber") or 1))
    except ValueError:
        return 1
    return number if number > 0 else 1


# --- codes ---------------------------------------------------------------------------------------
def _meaning(text: str) -> str:
    text = " ".join(str(text).replace("\\", "/").split())
    return text if len(text) <= _MEANING_MAX else text[: _MEANING_MAX - 3] + "..."


def _code(value: str, meaning: str) -> Any:
    from pydicom.sr.coding import Code

    value = value.replace("\\", "/").strip() or "-"
    return Code(value, CODING_SCHEME, _meaning(meaning))


def class_code(name: str) -> Any:
    """A class as a code of the private scheme: the class name itself (a long one goes in Long Code
    Value, as highdicom does for values over 16 characters)."""
    return _code(name, name)


def _probability_code(name: str) -> Any:
    return _code(f"p:{name}", f"Probability of {name}")


def _check_result(probabilities: Mapping[str, float], label: str | None, abstain: bool) -> None:
    if abstain and label is not None:
        raise ValueError("an abstained result carries no label")
    if not abstain and label is None:
        raise ValueError("a result that does not abstain needs its label")
    if label is not None and label not in probabilities:
        raise ValueError(f"the label {label!r} is not among the classes {sorted(probabilities)}")


@dataclass(frozen=True)
class ReaderReview:
    """The reader's decision on the result, as the case log keeps it (``zsmed.store.ReviewRecord``)."""

    verdict: str  # confirmed | corrected
    label: str  # the class the reader chose
    reader: str
    time: str  # ISO date-time
    comment: str = ""


def review_text(review: ReaderReview) -> str:
    """The reader's decision in words, as written into the SR beside the model's result: a report
    sent to PACS must not show the model's class alone where the reader chose another."""
    decision = (f"confirmed the result ({review.label})" if review.verdict == "confirmed"
                else f"corrected the result to {review.label}")
    when = review.time[:16].replace("T", " ")
    text = f"Reviewed by {review.reader or 'the reader'} on {when}: {decision}"
    comment = " ".join(review.comment.split())
    return f"{text}. Comment: {comment}" if comment else text


def result_text(probabilities: Mapping[str, float], label: str | None, abstain: bool,
                ood_score: float | None) -> str:
    """The result in words, as written into the SR and the SC banner."""
    if abstain:
        score = f" (unlikeness score {ood_score:.2f}, threshold 1.00)" if ood_score is not None else ""
        return f"{ABSTAIN_TEXT}{score}"
    assert label is not None
    return f"Top class {label} (probability {float(probabilities[label]):.3f})"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(float(value))


def _quietly(function: F) -> F:
    """pydicom's and highdicom's warnings about values in the source are not printed (the CLI would
    show them in the middle of its output); dciodvfy reports on what is written."""

    @functools.wraps(function)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args, **kwargs)

    return cast(F, quiet)


# --- the SR --------------------------------------------------------------------------------------
def _content(src: Dataset, frame: int | None, probabilities: Mapping[str, float], label: str | None, abstain: bool,
             ood_score: float | None, model: ModelIdentity, review: ReaderReview | None = None) -> Any:
    import highdicom as hd
    from highdicom import sr
    from pydicom.sr.coding import Code

    algorithm = sr.AlgorithmIdentification(name=model.name, version=model.version,
                                           parameters=[f"bundle SHA-256 {model.bundle_sha256}"],
                                           manufacturer=MANUFACTURER)
    unit = Code("1", "UCUM", "no units")
    measurements = [
        sr.Measurement(name=_probability_code(name), value=float(p), unit=unit)
        for name, p in probabilities.items() if _finite(p)
    ]
    if _finite(ood_score):
        measurements.append(sr.Measurement(
            name=_code("ood-ratio", "Unlikeness to the model's images (1 = threshold)"),
            value=float(ood_score), unit=unit))  # type: ignore[arg-type]
    finding = _code(_ABSTAIN_CODE, ABSTAIN_TEXT) if abstain else class_code(str(label))
    evaluations = [sr.QualitativeEvaluation(name=Code("121071", "DCM", "Finding"), value=finding)]
    frames = [frame + 1] if frame is not None and _is_multi_frame(src) else None
    group = sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=sr.TrackingIdentifier(uid=hd.UID(), identifier=SERIES_DESCRIPTION),
        algorithm_id=algorithm,
        measurements=measurements or None,
        qualitative_evaluations=evaluations,
        source_images=[sr.SourceImageForMeasurementGroup(src.SOPClassUID, src.SOPInstanceUID, frames)],
    )
    comment = Code("121106", "DCM", "Comment")
    texts = [NOT_A_DIAGNOSIS, result_text(probabilities, label, abstain, ood_score),
             f"Model {model.name} version {model.version}, bundle SHA-256 {model.bundle_sha256}"]
    if review is not None:
        texts.insert(2, review_text(review))
    for text in texts:
        group[0].ContentSequence.append(
            sr.TextContentItem(name=comment, value=text, relationship_type=sr.RelationshipTypeValues.CONTAINS))
    context = sr.ObservationContext(observer_device_context=device_observer(model.name, model.bundle_sha256))
    return measurement_report(context, [group], src)


def device_observer(name: str, *identity: str) -> Any:
    """TID 1004 device observer context: zsmed (the model ``name``) as the observer; ``identity`` seeds
    its Device Observer UID, so one device keeps one UID across reports."""
    from highdicom import sr
    from pydicom.sr.codedict import codes

    return sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=sr.DeviceObserverIdentifyingAttributes(
            uid=_uid_from("device", *identity), name=_meaning(name), manufacturer_name=MANUFACTURER,
            model_name=_meaning(name)),
    )


def measurement_report(context: Any, groups: list[Any], src: Dataset) -> Any:
    """The TID 1500 Measurement Report content tree of ``groups`` on the image ``src``."""
    from highdicom import sr
    from pydicom.sr.codedict import codes

    procedure = codes.SCT.ImagingProcedure
    try:  # the image library entry describes the source (modality, spacing, orientation ...)
        report = sr.MeasurementReport(observation_context=context, procedure_reported=procedure,
                                      imaging_measurements=groups, referenced_images=[src])
    except (AttributeError, KeyError, TypeError, ValueError):  # a header without what a library entry needs
        report = sr.MeasurementReport(observation_context=context, procedure_reported=procedure,
                                      imaging_measurements=groups)
    return report[0]


def _coding_schemes() -> list[Any]:
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    return [CodingSchemeIdentificationItem(designator=CODING_SCHEME, name="zsmed classes and results",
                                           responsible_organization=MANUFACTURER)]


@_quietly
def write_result_sr(source: str | Path, *, probabilities: Mapping[str, float], label: str | None, abstain: bool,
                    ood_score: float | None, model: ModelIdentity, out_dir: Path, frame: int | None = None,
                    review: ReaderReview | None = None) -> Path:
    """Write one Comprehensive SR for a prediction on ``source`` (``frame``: 0-based, for one frame of a
    multi-frame image) into ``out_dir``; returns its path (``SR_<SOP Instance UID>.dcm``). ``review``: the
    reader's decision on it, written beside the model's result.

    A photo, a file that is not DICOM or lacks the UIDs a report refers to gives a one-line
    ``ZsmedError`` naming the file."""
    import zsmed

    _check_result(probabilities, label, abstain)
    src = read_source(source, frame)
    from highdicom import UID
    from highdicom.sr import ComprehensiveSR

    with _refusals(source, "a DICOM report"):
        content = _content(src, frame, probabilities, label, abstain, ood_score, model, review)
        document = ComprehensiveSR(
            evidence=[src], content=content,
            series_instance_uid=_uid_from("sr", src.StudyInstanceUID, model.bundle_sha256),
            series_number=SR_SERIES_NUMBER, sop_instance_uid=UID(), instance_number=_instance_number(src),
            manufacturer=MANUFACTURER, is_complete=True, is_final=False, series_description=SERIES_DESCRIPTION,
            software_versions=zsmed.__version__, manufacturer_model_name=_meaning(model.name),
            specific_character_set="ISO_IR 192", coding_schemes=_coding_schemes(),
        )
    return _save(document, Path(out_dir), "SR")


# --- the Secondary Capture -------------------------------------------------------------------------
def banner_lines(probabilities: Mapping[str, float], label: str | None, abstain: bool,
                 model: ModelIdentity) -> list[str]:
    top = ABSTAIN_TEXT if abstain else f"Top class: {label} (probability {float(probabilities[str(label)]):.3f})"
    return [top, f"{model.name} ({model.version})", "Not a diagnosis: decision support only"]


def burn_banner(image: np.ndarray, lines: list[str], *, min_width: int = 512) -> np.ndarray:
    """A uint8 grey (H, W) or RGB (H, W, 3) image -> RGB uint8 with a black banner of white text above
    it (the image itself is not covered). Narrow images are enlarged to ``min_width`` first so the
    text stays legible."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    if picture.width < min_width:
        scale = min_width / picture.width
        picture = picture.resize((min_width, max(1, round(picture.height * scale))), Image.Resampling.BILINEAR)
    size = max(12, picture.width // 40)
    font = ImageFont.load_default(size=size)
    pad = size // 2
    line_height = size + pad // 2
    height = pad * 2 + line_height * len(lines)
    canvas = Image.new("RGB", (picture.width, picture.height + height), (0, 0, 0))
    canvas.paste(picture, (0, height))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        text = line
        while len(text) > 4 and draw.textlength(text, font=font) > picture.width - 2 * pad:
            text = text[:-4] + "..."
        draw.text((pad, pad + i * line_height), text, fill=(255, 255, 0) if i == 0 else (255, 255, 255), font=font)
    return np.asarray(canvas, dtype=np.uint8)


@_quietly
def write_result_secondary_capture(source: str | Path, *, probabilities: Mapping[str, float], label: str | None,
                                   abstain: bool, ood_score: float | None, model: ModelIdentity, out_dir: Path,
                                   frame: int | None = None) -> Path:
    """Write a Secondary Capture image of ``source`` (its ``frame``) rendered for display with the result
    burned into a banner above it, in the source's study (a new series); returns its path
    (``SC_<SOP Instance UID>.dcm``)."""
    import zsmed
    from zsmed.dicom.safe import safe_display_image

    _check_result(probabilities, label, abstain)
    src = read_source(source, frame)
    image = safe_display_image(source, frame or 0)  # decoded in the contained worker: an untrusted file
    pixels = burn_banner(image, banner_lines(probabilities, label, abstain, model))
    from highdicom import UID
    from highdicom.sc import SCImage
    from pydicom.dataset import Dataset

    with _refusals(source, "a Secondary Capture"):
        capture = SCImage.from_ref_dataset(
            src, pixels, "RGB", 8, "PATIENT",
            series_instance_uid=_uid_from("sc", src.StudyInstanceUID, model.bundle_sha256),
            series_number=SC_SERIES_NUMBER, sop_instance_uid=UID(), instance_number=_instance_number(src),
            manufacturer=MANUFACTURER, patient_orientation=("L", "F"), series_description=SERIES_DESCRIPTION,
            software_versions=zsmed.__version__, manufacturer_model_name=_meaning(model.name),
            specific_character_set="ISO_IR 192",
        )
        capture.copy_patient_and_study_information(src)
    # the rendered picture has the source's orientation; unknown stays empty (type 2)
    laterality = str(src.get("Laterality") or "").strip().upper()
    capture.Laterality = laterality if laterality in ("R", "L") else ""  # type 2C: present, empty when unknown
    orientation = src.get("PatientOrientation")
    capture.PatientOrientation = [str(v) for v in orientation] if orientation and len(orientation) == 2 else []
    capture.BurnedInAnnotation = "YES"
    capture.ImageComments = f"{NOT_A_DIAGNOSIS}. {result_text(probabilities, label, abstain, ood_score)}. " \
                            f"Model {model.name} {model.version}, bundle SHA-256 {model.bundle_sha256}"
    capture.DerivationDescription = "rendered for display, result banner added by zsmed"
    ref = Dataset()
    ref.ReferencedSOPClassUID = src.SOPClassUID
    ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
    if frame is not None and _is_multi_frame(src):
        ref.ReferencedFrameNumber = frame + 1
    capture.SourceImageSequence = [ref]
    return _save(capture, Path(out_dir), "SC")


@contextmanager
def _refusals(source: str | Path, what: str) -> Iterator[None]:
    """highdicom's refusals of a source header, and values of it pydicom cannot convert (it converts them only
    when highdicom reads them), as one-line errors naming the file."""
    from zsmed.dicom.decode import DAMAGED_VALUE_ERRORS, one_line

    try:
        yield
    except ZsmedError:
        raise
    except (NotImplementedError, EOFError, struct.error) as exc:  # bytes that are no value: a damaged file
        raise DicomReadError(f"a value in the file is damaged or cut short ({one_line(exc)[:200]})",
                             path=source) from exc
    except DAMAGED_VALUE_ERRORS as exc:  # highdicom's refusals (ValueError …)
        raise DicomReadError(f"cannot write {what} for this file ({exc.__class__.__name__}: {one_line(exc)[:200]})",
                             path=source) from exc


def _save(dataset: Any, out_dir: Path, kind: str, *, name: str | None = None, what: str = "the report") -> Path:
    """Write atomically (a temporary file renamed into place): no half-written object is left behind. The
    file is ``<kind>_<SOP Instance UID>.dcm`` unless ``name`` is given; ``what`` names it in the error."""
    target = out_dir / (name or f"{kind}_{dataset.SOPInstanceUID}.dcm")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with replacing(target) as temporary:
            dataset.save_as(temporary, enforce_file_format=True)
    except OSError as exc:
        raise InputFileError(f"cannot write {what} ({exc.strerror or exc})", path=out_dir) from exc
    return target


__all__ = ["ABSTAIN_TEXT", "NOT_A_DIAGNOSIS", "ModelIdentity", "ReaderReview", "model_identity", "review_text",
           "write_result_secondary_capture", "write_result_sr"]
