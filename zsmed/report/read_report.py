"""Reports in a study, made readable: a DICOM structured report's content tree as indented lines
(headings for containers, "name: value" for the rest, units and codes in words), and an encapsulated
PDF's document taken out of its file.

A reader opening a prior study finds its report as an SR series (a radiology report, another
viewer's measurements, zsmed's own results) or as an encapsulated PDF: PACS viewers show both. Every
function here takes a pydicom ``Dataset`` and returns plain values; nothing is written.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from zsmed.errors import DicomReadError

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
_SR_CLASS_ROOT = "1.2.840.10008.5.1.4.1.1.88."
_KEY_OBJECT_SELECTION = "1.2.840.10008.5.1.4.1.1.88.59"  # an SR in form, but a list of key images


def is_report_class(sop_class_uid: str | None) -> bool:
    """A structured report's or an encapsulated PDF's SOP class: what ``read_report`` /
    ``encapsulated_pdf`` read (a key image note is shown on its images instead)."""
    uid = sop_class_uid or ""
    return uid == ENCAPSULATED_PDF or (uid.startswith(_SR_CLASS_ROOT) and uid != _KEY_OBJECT_SELECTION)

# UCUM codes written as people write them; other units are given by their code meaning or value
_UNITS = {"[hnsf'U]": "HU", "mm2": "mm²", "cm2": "cm²", "mm3": "mm³", "cm3": "cm³", "deg": "°", "1": "",
          "{ratio}": "", "%": "%", "ml": "ml", "mL": "ml", "s": "s", "ms": "ms"}
_MAX_DEPTH = 64  # a content tree nested deeper than any real report: a malformed file


@dataclass(frozen=True)
class ReportLine:
    """One item of the content tree: its depth (0 under the title), what it is (the concept name) and
    its value in words; ``heading`` for a container (a section of the report)."""

    depth: int
    name: str
    value: str = ""
    heading: bool = False


@dataclass(frozen=True)
class Report:
    """A structured report as a reader sees it: title, status, who and when, and the lines."""

    title: str
    status: str  # "Complete · Verified by Smith^John on 2001-02-13 12:00" / "Partial · not verified"
    when: str
    author: str
    lines: list[ReportLine] = field(default_factory=list)

    def facts(self) -> list[str]:
        """The lines under the title: status, content date, observer (those the report has)."""
        return [x for x in (self.status, self.when and f"Content date {self.when}",
                            self.author and f"Observer {self.author}") if x]

    def text(self) -> str:
        """The report as plain text (to copy into a letter or the reader's own report)."""
        head = [self.title, *self.facts(), ""]
        body = []
        for line in self.lines:
            indent = "  " * line.depth
            text = line.name if line.heading or not line.value else (
                f"{line.name}: {line.value}" if line.name else line.value)
            body.append(indent + text.replace("\n", "\n" + indent + "  "))
        return "\n".join(line.rstrip() for line in head + body).rstrip() + "\n"


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _meaning(item: Dataset, keyword: str = "ConceptNameCodeSequence") -> str:
    codes = item.get(keyword) or []
    if not codes:
        return ""
    code = codes[0]
    return _text(code.get("CodeMeaning", "")) or _text(code.get("CodeValue", ""))


def _date_time(date: Any, time: Any = "") -> str:
    from zsmed.report.sr import date_time_text

    return date_time_text(date, time)


def _unit(item: Dataset) -> str:
    units = item.get("MeasurementUnitsCodeSequence") or []
    if not units:
        return ""
    value = _text(units[0].get("CodeValue", ""))
    if value in _UNITS:
        return _UNITS[value]
    meaning = _text(units[0].get("CodeMeaning", ""))
    return value if value and not value.startswith(("{", "[")) else meaning


def _number(item: Dataset) -> str:
    measured = item.get("MeasuredValueSequence") or []
    if not measured:
        qualifier = _meaning(item, "NumericValueQualifierCodeSequence")
        return f"no value ({qualifier})" if qualifier else "no value"
    value = measured[0].get("NumericValue")
    try:
        number = float(value)
        shown = f"{number:.4g}" if abs(number) < 1e6 else f"{number:.6g}"
    except (TypeError, ValueError):
        shown = _text(value)
    unit = _unit(measured[0])
    return f"{shown} {unit}".strip() if unit not in ("°", "%") else f"{shown}{unit}"


def _reference(item: Dataset) -> str:
    refs = item.get("ReferencedSOPSequence") or []
    if not refs:
        return ""
    ref = refs[0]
    from pydicom.uid import UID

    # the object's kind in words ("CT Image"); its UID means nothing to a reader
    kind = UID(_text(ref.get("ReferencedSOPClassUID", ""))).name.removesuffix(" Storage") or "an object"
    frames = ref.get("ReferencedFrameNumber")
    if frames in (None, ""):
        return kind
    from pydicom.multival import MultiValue

    numbers = [str(f) for f in frames] if isinstance(frames, MultiValue | list | tuple) else [str(frames)]
    return f"{kind}, frame{'' if len(numbers) == 1 else 's'} {', '.join(numbers)}"


def _value(item: Dataset) -> str:
    kind = _text(item.get("ValueType", "")).upper()
    if kind == "TEXT":  # a report's paragraphs keep their line breaks
        lines = str(item.get("TextValue", "") or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return "\n".join(" ".join(line.split()) for line in lines).strip("\n")
    if kind == "CODE":
        return _meaning(item, "ConceptCodeSequence")
    if kind == "NUM":
        return _number(item)
    if kind == "DATETIME":
        value = _text(item.get("DateTime", ""))
        return _date_time(value[:8], value[8:14])
    if kind == "DATE":
        return _date_time(item.get("Date", ""))
    if kind == "TIME":
        value = _text(item.get("Time", ""))
        return f"{value[:2]}:{value[2:4]}" if len(value) >= 4 else value
    if kind == "PNAME":
        return _text(item.get("PersonName", "")).replace("^", " ").strip()
    if kind == "UIDREF":
        return _text(item.get("UID", ""))
    if kind in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        return _reference(item)
    if kind in ("SCOORD", "SCOORD3D"):
        points = item.get("GraphicData") or []
        count = len(points) // (2 if kind == "SCOORD" else 3)
        return f"{_text(item.get('GraphicType', '')).lower()} of {count} point{'' if count == 1 else 's'}"
    if kind == "TCOORD":
        return "time points"
    return ""


def _walk(items: Any, depth: int) -> Iterator[ReportLine]:
    if depth > _MAX_DEPTH:
        raise DicomReadError(f"its content tree is nested more than {_MAX_DEPTH} levels deep")
    for item in items or []:
        kind = _text(item.get("ValueType", "")).upper()
        name = _meaning(item)
        if kind == "CONTAINER":
            yield ReportLine(depth, name or "Section", heading=True)
        else:
            value = _value(item)
            if name or value:
                yield ReportLine(depth, name, value)
        yield from _walk(item.get("ContentSequence"), depth + 1)


def _observer(ds: Dataset) -> str:
    verifiers = ds.get("VerifyingObserverSequence") or []
    for item in ds.get("ContentSequence") or []:
        if _meaning(item) in ("Person Observer Name", "Device Observer Name") and item.get("ValueType") in (
                "PNAME", "TEXT"):
            return _value(item)
    if verifiers:
        return _text(verifiers[0].get("VerifyingObserverName", "")).replace("^", " ").strip()
    return ""


def _status(ds: Dataset) -> str:
    completion = _text(ds.get("CompletionFlag", "")).capitalize()
    verifiers = ds.get("VerifyingObserverSequence") or []
    if _text(ds.get("VerificationFlag", "")).upper() == "VERIFIED" and verifiers:
        who = _text(verifiers[0].get("VerifyingObserverName", "")).replace("^", " ").strip()
        value = _text(verifiers[0].get("VerificationDateTime", ""))
        when = _date_time(value[:8], value[8:14]) if value else ""
        verified = "Verified" + (f" by {who}" if who else "") + (f" on {when}" if when else "")
    else:
        verified = "not verified"
    return " · ".join(x for x in (completion, verified) if x)


def is_structured_report(ds: Dataset) -> bool:
    return "ContentSequence" in ds and _text(ds.get("ValueType", "CONTAINER")).upper() == "CONTAINER"


def read_report(ds: Dataset, path: str | None = None) -> Report:
    """The structured report ``ds`` in words (``DicomReadError`` naming ``path`` when it is not one)."""
    if not is_structured_report(ds):
        raise DicomReadError("not a structured report (no content tree)", path=path)
    try:
        lines = list(_walk(ds.ContentSequence, 0))
    except DicomReadError as exc:
        raise DicomReadError(exc.reason, path=path) from None
    return Report(title=_meaning(ds) or "Report", status=_status(ds),
                  when=_date_time(ds.get("ContentDate", ""), ds.get("ContentTime", "")), author=_observer(ds),
                  lines=lines)


def is_encapsulated_pdf(ds: Dataset) -> bool:
    return _text(ds.get("SOPClassUID", "")) == ENCAPSULATED_PDF or (
        "EncapsulatedDocument" in ds and _text(ds.get("MIMETypeOfEncapsulatedDocument", "")) == "application/pdf")


def encapsulated_pdf(ds: Dataset, path: str | None = None) -> bytes:
    """The PDF inside an Encapsulated PDF object, without the padding byte DICOM adds to an odd length."""
    if not is_encapsulated_pdf(ds) or "EncapsulatedDocument" not in ds:
        raise DicomReadError("not an encapsulated PDF", path=path)
    data = bytes(ds.EncapsulatedDocument)
    length = ds.get("EncapsulatedDocumentLength")
    if length is not None and 0 < int(length) <= len(data):
        data = data[: int(length)]  # without it the padding byte stays: PDF readers ignore bytes after %%EOF
    if not data.startswith(b"%PDF"):
        raise DicomReadError("its encapsulated document is not a PDF", path=path)
    return data


def load_report(path: str | Path) -> Report | bytes:
    """The report in the file at ``path``: a structured report in words, or the PDF an encapsulated PDF report
    holds. ``DicomReadError`` (or another ``ZsmedError``) naming the file where it is neither, cannot be read, or
    holds a damaged value (pydicom converts a value only when it is first read: a truncated sequence surfaces
    here, not when the file is opened)."""
    from zsmed.dicom.decode import damaged_values, read_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a malformed UID or date is shown as it is, not warned about
        ds = read_dataset(path)
        with damaged_values(path):
            if is_encapsulated_pdf(ds):
                return encapsulated_pdf(ds, str(path))
            return read_report(ds, str(path))
