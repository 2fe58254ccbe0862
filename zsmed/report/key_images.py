"""The reader's key images back to the PACS: a Key Object Selection document (PS3.3 A.35.4, title
DCM 113000 "Of Interest" from CID 7010) that flags images of one study, with the reader's note as its
Key Object Description (DCM 113012) and the reader as the person observer. PACS viewers list such
documents as "key images" so a referring clinician sees the images that matter first.

``write_key_images`` writes one document for images of one study (a series of its own, number 994);
``read_key_images`` reads one back (any KOS: zsmed's or another viewer's), so images flagged earlier
show as key images when the study is opened again. highdicom is imported inside the functions, as in
``zsmed.report.sr``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsmed.errors import DicomReadError, NotDicomError
from zsmed.report.measurements import person_name
from zsmed.report.sr import (
    MANUFACTURER,
    _quietly,
    _refusals,
    _save,
    _uid_from,
    date_time_text,
    device_observer,
    read_source,
)

KEY_IMAGES_SERIES_NUMBER = 994
KEY_IMAGES_SERIES_DESCRIPTION = "zsmed key images"
KEY_OBJECT_SELECTION = "1.2.840.10008.5.1.4.1.1.88.59"
_NOTE_MAX = 1024  # characters of the reader's note kept (a TEXT item's value is UT; a note is a line or two)


@dataclass(frozen=True)
class KeyImageNote:
    """A Key Object Selection document as read: the study, the flagged objects (SOP Instance UIDs), its
    title, the reader's note and who flagged them."""

    path: Path
    study_uid: str
    referenced: frozenset[str]
    title: str
    note: str
    observer: str
    created: str  # "YYYY-MM-DD HH:MM", or ""


def _note(text: str) -> str:
    return " ".join(str(text).split())[:_NOTE_MAX]


@_quietly
def write_key_images(sources: Sequence[str | Path], *, note: str, reader: str, out_dir: Path) -> Path:
    """Flag ``sources`` (DICOM images of one study) as key images "Of Interest" in one Key Object
    Selection document in ``out_dir``; returns its path (``KO_<SOP Instance UID>.dcm``). ``note``: the
    reader's description ('' for none); ``reader``: the observer ('' for zsmed as the device).

    No image, images of two studies, a photograph, a file that is not DICOM or lacks its UIDs: a
    one-line ``ZsmedError`` naming the file, nothing written."""
    import zsmed

    if not sources:
        raise DicomReadError("no image is flagged as a key image: nothing to write", path=out_dir)
    headers = [read_source(source) for source in sources]
    study = str(headers[0].StudyInstanceUID)
    for source, header in zip(sources, headers, strict=True):
        if str(header.StudyInstanceUID) != study:
            raise DicomReadError("is of another study than the first key image: one note is for one study",
                                 path=source)
    from highdicom import UID, sr
    from highdicom.ko import KeyObjectSelection, KeyObjectSelectionDocument
    from pydicom.sr.codedict import codes

    name = person_name(reader)
    person = (sr.ObserverContext(observer_type=codes.DCM.Person,
                                 observer_identifying_attributes=sr.PersonObserverIdentifyingAttributes(name=name))
              if name else None)
    with _refusals(sources[0], "a key image note"):
        content = KeyObjectSelection(
            document_title=codes.DCM.OfInterest, referenced_objects=headers, observer_person_context=person,
            observer_device_context=None if person else device_observer(MANUFACTURER, "key images"),
            description=_note(note) or None,
        )
        document = KeyObjectSelectionDocument(
            evidence=headers, content=content, series_instance_uid=_uid_from("key images", study),
            series_number=KEY_IMAGES_SERIES_NUMBER, sop_instance_uid=UID(), instance_number=1,
            manufacturer=MANUFACTURER, specific_character_set="ISO_IR 192",
        )
        document.SeriesDescription = KEY_IMAGES_SERIES_DESCRIPTION
        document.SoftwareVersions = zsmed.__version__
    return _save(document, Path(out_dir), "KO")


def _walk(items: Any) -> Any:
    for item in items or []:
        yield item
        yield from _walk(item.get("ContentSequence"))


@_quietly
def read_key_images(path: str | Path) -> KeyImageNote:
    """A Key Object Selection document as :class:`KeyImageNote`; a file that is not one: a one-line
    ``ZsmedError`` naming it."""
    from zsmed.dicom.decode import one_line, open_dataset

    path = Path(path)
    ds = open_dataset(path, stop_before_pixels=True)[0]
    sop_class = str(ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
    if sop_class != KEY_OBJECT_SELECTION:
        raise NotDicomError("not a key image note (Key Object Selection document)", path=path)
    try:
        referenced: set[str] = set()
        note, observer = "", ""
        for item in _walk(ds.get("ContentSequence")):
            value_type = str(item.get("ValueType") or "")
            concept = item.get("ConceptNameCodeSequence")
            code = str(concept[0].CodeValue) if concept else ""
            if value_type in ("IMAGE", "COMPOSITE"):
                referenced.update(str(r.ReferencedSOPInstanceUID) for r in item.get("ReferencedSOPSequence") or [])
            elif value_type == "TEXT" and code == "113012" and not note:
                note = str(item.get("TextValue") or "")
            elif value_type == "PNAME" and code == "121008" and not observer:  # Person Observer Name
                observer = str(item.get("PersonName") or "")
        title_item = ds.get("ConceptNameCodeSequence")
        title = str(title_item[0].CodeMeaning) if title_item else ""
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise DicomReadError(f"the key image note cannot be read ({one_line(exc)[:200]})", path=path) from exc
    return KeyImageNote(path=path, study_uid=str(ds.get("StudyInstanceUID") or ""), referenced=frozenset(referenced),
                        title=title, note=note, observer=observer,
                        created=date_time_text(ds.get("ContentDate"), ds.get("ContentTime")))


__all__ = ["KEY_IMAGES_SERIES_DESCRIPTION", "KEY_IMAGES_SERIES_NUMBER", "KEY_OBJECT_SELECTION", "KeyImageNote",
           "read_key_images", "write_key_images"]
