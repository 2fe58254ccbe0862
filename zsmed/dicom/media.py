"""A study on a CD or a USB stick: DICOM files written as a DICOM file-set with its DICOMDIR (PS3.10, the media
layout of PS3.11's General Purpose CD-R / USB profiles, as IHE PDI has a PACS give a patient or a referring
physician their images), readable by any DICOM viewer and by zsmed's own (File ▸ Open files or DICOMDIR).

pydicom's ``FileSet`` writes it: the files under ``PT000000/ST000000/SE000000/IM000000`` (8-character upper-case
IDs, as the media profiles require) and the DICOMDIR at the top, with a README.TXT saying what the folder is.
The images' data sets are written unchanged (every element, the pixels as encoded). Directory records need a
few values many real files leave empty (a Patient ID, a Study ID, an Instance Number, a study date): those go
into the DICOMDIR's records only, as placeholders (a Patient ID made from the patient's name, so two patients
without IDs stay apart), and the result counts them; a file whose record cannot be made (no Study Instance UID,
a report without its title) is one line and left out. DICOMDIRs among the inputs are skipped (the images they
list are written when given), files that are not DICOM (photographs) are one line each, and the same instance
given twice is written once.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsmed.errors import ConfigError, InputFileError, ZsmedError
from zsmed.progress import Job, Progress

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

FILE_SET_ID = "ZSMED"
_TAG = re.compile(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)")
_MAX_FILLS = 12  # record values a file may need filled in before it is given up on
README = """\
This folder (a CD or a USB stick) holds DICOM images: open the file DICOMDIR, or the folder, with any DICOM
viewer (zsmed: File > Open files or DICOMDIR). It was written by zsmed on {date}: {summary}.
{about}
"""
ABOUT_ORIGINALS = ("The images are the originals' data, unchanged; they may show who the patient is. Keep them as you "
                   "keep medical records.")
ABOUT_DEIDENTIFIED = ("The images were de-identified by zsmed (names, IDs and UIDs replaced, dates moved, private "
                      "elements removed); text burned into pixels may remain where the export said so.")


@dataclass
class MediaResult:
    """What was written: the instances, the DICOMDIR, the placeholders its records needed and what was left out."""

    folder: Path
    written: int = 0
    patients: int = 0
    studies: int = 0
    placeholders: dict[str, int] = field(default_factory=dict)  # record value filled in -> how many records
    problems: list[str] = field(default_factory=list)  # "file: why it is not on the media"
    skipped: dict[str, int] = field(default_factory=dict)  # "DICOMDIR" / "already given"

    @property
    def dicomdir(self) -> Path:
        return self.folder / "DICOMDIR"

    def summary(self) -> str:
        """One line: "12 images of 1 patient (2 studies) written with a DICOMDIR to /media/usb"."""
        if not self.written:
            return f"Nothing written to {self.folder}"
        parts = [f"{self.written} DICOM file{'s' * (self.written != 1)} of {self.patients} "
                 f"patient{'s' * (self.patients != 1)} ({self.studies} stud{'ies' if self.studies != 1 else 'y'}) "
                 f"written with a DICOMDIR to {self.folder}"]
        if self.placeholders:
            from pydicom.datadict import dictionary_description, tag_for_keyword

            def named(keyword: str) -> str:
                tag = tag_for_keyword(keyword)
                return dictionary_description(tag) if tag is not None else keyword

            filled = ", ".join(f"{named(name)} ({count})" for name, count in sorted(self.placeholders.items()))
            parts.append(f"placeholders in the DICOMDIR for values the files leave empty: {filled}")
        if self.problems:
            parts.append(f"{len(self.problems)} left out")
        for what, count in sorted(self.skipped.items()):
            parts.append(f"{count} {what} skipped")
        return "; ".join(parts)


def _first(ds: Dataset, *keywords: str) -> str:
    return next((str(ds.get(k)) for k in keywords if ds.get(k) not in (None, "")), "")


def _placeholder(ds: Dataset, keyword: str, vr: str, position: int) -> str | int | None:
    """A value for the record where the file leaves ``keyword`` empty; None where none may be made up."""
    if keyword == "PatientID":
        name = str(ds.get("PatientName") or "")
        return "NOID" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()  # one per name: patients stay apart
    if keyword == "InstanceNumber":
        return position
    if vr == "DA":
        return _first(ds, "StudyDate", "SeriesDate", "ContentDate", "AcquisitionDate") or "19000101"
    if vr == "TM":
        return _first(ds, "StudyTime", "SeriesTime", "ContentTime", "AcquisitionTime") or "000000"
    if vr == "IS":
        return 1
    if vr == "CS":
        return {"Modality": "OT", "CompletionFlag": "PARTIAL", "VerificationFlag": "UNVERIFIED"}.get(keyword, "UNKNOWN")
    if vr in ("SH", "LO", "LT", "ST", "PN"):
        return "1" if keyword == "StudyID" else "UNKNOWN"
    return None


def _leaf(header: Dataset, position: int, filled: dict[str, int]) -> Any:
    """The directory records of one instance (patient, study, series, then its own), as a leaf ``RecordNode``;
    the values the records need and the file leaves empty are filled in the records only. ``ValueError`` saying
    what is missing where no record can be made."""
    import copy

    import pydicom.fileset as fileset
    from pydicom.datadict import dictionary_VR, keyword_for_tag

    record_type = getattr(fileset, "_four_level_record_type", lambda _ds: "IMAGE")(header)
    recorders = fileset.DIRECTORY_RECORDERS
    if record_type not in recorders:
        raise ValueError(f"no DICOMDIR record for its kind of object ({record_type})")
    patched = copy.copy(header)  # a shallow copy: values set here never reach the file written
    for _ in range(_MAX_FILLS):
        try:
            records = [recorders[kind](patched) for kind in ("PATIENT", "STUDY", "SERIES", record_type)]
            break
        except ValueError as exc:
            match = _TAG.search(str(exc))
            if match is None:
                raise
            tag = int(match.group(1) + match.group(2), 16)
            keyword, vr = keyword_for_tag(tag), dictionary_VR(tag)
            value = _placeholder(patched, keyword, vr, position) if keyword else None
            if value is None or (keyword in patched and patched[keyword].value not in (None, "")):
                raise ValueError(f"its header has no {keyword or hex(tag)}") from None
            setattr(patched, keyword, value)
            filled[keyword] = filled.get(keyword, 0) + 1
    else:
        raise ValueError("its header lacks too many of the values a DICOMDIR needs")
    for kind, record in zip(("PATIENT", "STUDY", "SERIES", record_type), records, strict=True):
        record.OffsetOfTheNextDirectoryRecord = 0  # as pydicom's own FileSet.add makes them
        record.RecordInUseFlag = 0xFFFF
        record.OffsetOfReferencedLowerLevelDirectoryEntity = 0
        record.DirectoryRecordType = kind
        if "SpecificCharacterSet" in header:
            record.SpecificCharacterSet = header.SpecificCharacterSet
    leaf = records[-1]
    if "ContentSequence" in leaf:  # pydicom copies a report's whole content: a record keeps concept modifiers only
        modifiers = [item for item in leaf.ContentSequence if item.get("RelationshipType") == "HAS CONCEPT MOD"]
        if modifiers:
            leaf.ContentSequence = modifiers
        else:
            del leaf.ContentSequence
    if leaf.get("VerificationFlag") == "VERIFIED" and "VerificationDateTime" not in leaf:
        observers = header.get("VerifyingObserverSequence") or []
        when = next((o.VerificationDateTime for o in observers if o.get("VerificationDateTime")), None)
        if when is not None:  # the record says when the report was verified, as its verifier's item does
            leaf.VerificationDateTime = when
    leaf.ReferencedFileID = None
    leaf.ReferencedSOPClassUIDInFile = header.SOPClassUID
    leaf.ReferencedSOPInstanceUIDInFile = header.SOPInstanceUID
    leaf.ReferencedTransferSyntaxUIDInFile = header.file_meta.TransferSyntaxUID
    nodes = [fileset.RecordNode(record) for record in records]
    for parent, child in itertools.pairwise(nodes):
        child.parent = parent
    return nodes[-1]


def _new_or_empty(folder: str | Path) -> Path:
    """``folder`` as a Path; ``InputFileError`` where it is a file or holds anything."""
    out = Path(folder)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputFileError("choose a new or empty folder: a CD's files are not mixed with others", path=out)
    return out


def write_media_job(paths: Sequence[str | Path], folder: str | Path, *, file_set_id: str = FILE_SET_ID,
                    about: str = ABOUT_ORIGINALS) -> Job[MediaResult]:
    """Write the DICOM files among ``paths`` into ``folder`` (new or empty) as a file-set with its DICOMDIR and a
    README.TXT; yields ``Progress`` per file read, so a cancellation stops before anything is written. Files left
    out are the result's problem lines; a folder that is not empty is ``InputFileError``."""
    from pydicom.fileset import FileSet

    if not re.fullmatch(r"[A-Z0-9 _]{1,16}", file_set_id):
        raise ConfigError(f"a CD's label is 1 to 16 capital letters, digits, spaces or _, not {file_set_id!r}")
    out = _new_or_empty(folder)
    result = MediaResult(out)
    files = [Path(p) for p in paths]
    file_set = FileSet()
    try:
        return (yield from _fill_and_write(file_set, files, out, result, file_set_id, about))
    finally:
        _discard_staged_copies(file_set)


def _discard_staged_copies(file_set: Any) -> None:
    """Remove the copies pydicom's FileSet stages in a temporary folder (every file, whole) now, written,
    failed or cancelled, rather than whenever the object is collected: a CT's worth of /tmp (pydicom has no
    public way to; its staging folder is ``_stage['t']``)."""
    stage = getattr(file_set, "_stage", None)
    folder = stage.get("t") if isinstance(stage, dict) else None
    if folder is not None and hasattr(folder, "cleanup"):
        folder.cleanup()


def _fill_and_write(file_set: Any, files: list[Path], out: Path, result: MediaResult, file_set_id: str, about: str
                    ) -> Job[MediaResult]:
    import datetime

    from zsmed.dicom.decode import is_dicomdir, open_dataset

    file_set.ID = file_set_id
    seen: set[str] = set()
    numbers: dict[str, int] = {}  # series UID -> instances placed so far (an Instance Number where none is given)
    patients: set[str] = set()
    studies: set[str] = set()
    for index, path in enumerate(files):
        yield Progress(index, len(files), path.name)
        try:
            header, _notes = open_dataset(path, stop_before_pixels=True)
        except ZsmedError as exc:
            result.problems.append(f"{path}: {exc.reason}")
            continue
        if is_dicomdir(header):
            result.skipped["DICOMDIR"] = result.skipped.get("DICOMDIR", 0) + 1
            continue
        uid = str(header.get("SOPInstanceUID") or "")
        if not uid or not header.get("StudyInstanceUID") or not header.get("SeriesInstanceUID"):
            result.problems.append(f"{path}: its header has no SOP, study or series instance UID: not on the media")
            continue
        if uid in seen:
            result.skipped["already given"] = result.skipped.get("already given", 0) + 1
            continue
        if "TransferSyntaxUID" not in getattr(header, "file_meta", {}):
            result.problems.append(f"{path}: no file meta information (a bare data set): not on the media; "
                                   "zsmed deidentify or zsmed send take it")
            continue
        series_uid = str(header.SeriesInstanceUID)
        numbers[series_uid] = numbers.get(series_uid, 0) + 1
        try:
            leaf = _leaf(header, numbers[series_uid], result.placeholders)
        except ValueError as exc:
            result.problems.append(f"{path}: not on the media: {exc}")
            continue
        try:
            file_set.add_custom(path, leaf)  # reads the file whole and stages a copy of it
        except Exception as exc:  # a file damaged past its header: pydicom's errors are of every type
            result.problems.append(f"{path}: not on the media: the file is damaged or cut short "
                                   f"({exc.__class__.__name__})")
            continue
        seen.add(uid)
        patients.add(leaf.ancestors[0].key)  # the PATIENT record's key: its Patient ID, or the placeholder
        studies.add(str(header.StudyInstanceUID))
    yield Progress(len(files), len(files), "writing")
    if not seen:
        return result
    out.mkdir(parents=True, exist_ok=True)
    try:
        file_set.write(out)
    except OSError as exc:
        raise InputFileError(f"cannot write the file-set ({exc.strerror or exc})", path=out) from None
    result.written, result.patients, result.studies = len(seen), len(patients), len(studies)
    (out / "README.TXT").write_text(README.format(date=datetime.date.today().isoformat(), summary=result.summary()
                                                  .replace(f" to {out}", ""), about=about),
                                    encoding="ascii", errors="replace")
    return result


def deidentify_to_media_job(paths: Sequence[str | Path], folder: str | Path, *, seed: str | None = None,
                            blanking: Any = None, file_set_id: str = FILE_SET_ID) -> Job[tuple[Any, MediaResult]]:
    """``zsmed.dicom.deidentify.deidentify_paths_job`` into a staging folder beside ``folder``, then
    ``write_media_job`` of what it wrote into ``folder`` (new or empty): a de-identified study on a CD or USB
    stick (a tumour board, a teaching file). The staging folder is removed whatever happens. Returns both
    results (the de-identification's, with its burned-in warnings, and the media's)."""
    import shutil
    import tempfile

    from zsmed.dicom.deidentify import deidentify_paths_job
    from zsmed.dicom.inspect import expand_inputs

    out = _new_or_empty(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".zsmed-deidentified-", dir=out.parent))
    try:
        deidentified = yield from deidentify_paths_job(paths, staging, seed=seed, blanking=blanking)
        media = yield from write_media_job(expand_inputs([staging]), out, file_set_id=file_set_id,
                                           about=ABOUT_DEIDENTIFIED)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return deidentified, media


__all__ = ["ABOUT_DEIDENTIFIED", "ABOUT_ORIGINALS", "FILE_SET_ID", "MediaResult", "deidentify_to_media_job",
           "write_media_job"]
