"""Scanning folders, DICOMDIRs and file lists into a Patient → Study → Series → Instance index.

``scan_job(inputs)`` is a job (yields ``Progress``, returns a ``ScanIndex``) shared by the CLI and
the desktop app. Only headers are read (``zsmed.dicom.header``), so 10,000 files take seconds and
little memory. Folders are walked recursively following symlinks, with loops detected by device and
inode; a DICOMDIR given as input is read for its records and the files they reference. Files that
are not DICOM are skipped and counted (listed as problems when their name says ``.dcm``); files that
cannot be read are listed with the reason; nothing stops the scan.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zsmed.dicom.header import Header, read_header
from zsmed.errors import DicomReadError, InputFileError, NotDicomError, ZsmedError
from zsmed.progress import Job, Progress, run_job

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ".ima"})
_SKIP_NAMES = frozenset({"thumbs.db", ".ds_store", "desktop.ini"})


@dataclass
class Instance:
    path: str
    sop_instance_uid: str
    sop_class_uid: str | None = None
    instance_number: int | None = None
    position: tuple[float, ...] | None = None
    orientation: tuple[float, ...] | None = None
    slice_location: float | None = None
    rows: int | None = None
    cols: int | None = None
    frames: int = 1
    photometric: str | None = None
    bits_allocated: int | None = None
    transfer_syntax: str | None = None

    @property
    def is_image(self) -> bool:
        return bool(self.rows and self.cols)


@dataclass
class Series:
    uid: str
    number: int | None = None
    modality: str | None = None
    description: str | None = None
    body_part: str | None = None
    instances: list[Instance] = field(default_factory=list)


@dataclass
class Study:
    uid: str
    date: str | None = None
    time: str | None = None
    description: str | None = None
    accession: str | None = None
    study_id: str | None = None
    series: list[Series] = field(default_factory=list)


@dataclass
class Patient:
    id: str
    name: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    studies: list[Study] = field(default_factory=list)


@dataclass
class Problem:
    path: str
    reason: str
    kind: str = "error"  # error | not-dicom | duplicate | loop | missing


@dataclass(frozen=True)
class ScanProgress(Progress):
    """Progress while headers are read, carrying what was found since the previous report, so a
    view can fill its tree as the scan goes on (the returned ``ScanIndex`` stays the full answer)."""

    headers: tuple[Header, ...] = ()
    problems: tuple[Problem, ...] = ()


def header_keys(h: Header) -> tuple[str, str, str]:
    """(patient key, study UID, series UID) as ``build_index`` groups them."""
    pid = h.get("PatientID") or "(no patient ID)"
    study_uid = h.get("StudyInstanceUID") or f"(no study UID) {pid}"
    series_uid = h.get("SeriesInstanceUID") or f"(no series UID) {study_uid}"
    return f"{pid}\x00{h.get('PatientName') or ''}", study_uid, series_uid


@dataclass
class ScanIndex:
    patients: list[Patient] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files_seen: int = 0
    skipped_non_dicom: int = 0
    dicomdirs: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def instances(self) -> list[Instance]:
        return [i for p in self.patients for st in p.studies for se in st.series for i in se.instances]

    def counts(self) -> dict[str, int]:
        studies = [st for p in self.patients for st in p.studies]
        series = [se for st in studies for se in st.series]
        return {
            "files": self.files_seen,
            "patients": len(self.patients),
            "studies": len(studies),
            "series": len(series),
            "instances": sum(len(se.instances) for se in series),
            "skipped_non_dicom": self.skipped_non_dicom,
            "problems": sum(1 for p in self.problems if p.kind != "not-dicom"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
            "dicomdirs": self.dicomdirs,
            "patients": [asdict(p) for p in self.patients],
            "problems": [asdict(p) for p in self.problems],
        }


# --- walking --------------------------------------------------------------------------------------
def _walk(root: str, problems: list[Problem]) -> Iterable[str]:
    """Files under ``root`` (sorted), following symlinks, each directory visited once."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:
            problems.append(Problem(folder, f"cannot open folder ({exc.strerror or exc})"))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            problems.append(
                Problem(folder, f"directory loop: leads back to {os.path.realpath(folder)} (not followed)", "loop")
            )
            continue
        seen.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            problems.append(Problem(folder, "permission denied (folder)"))
            continue
        except OSError as exc:
            problems.append(Problem(folder, f"cannot list folder ({exc.strerror or exc})"))
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=True):
                    subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=True):
                    yield entry.path
                elif entry.is_symlink():
                    problems.append(Problem(entry.path, "broken symbolic link"))
            except OSError as exc:
                problems.append(Problem(entry.path, f"cannot stat ({exc.strerror or exc})"))
        stack.extend(reversed(subdirs))


def dicomdir_files(path: str | Path) -> tuple[list[str], list[Problem]]:
    """Files referenced by a DICOMDIR's records (resolved case-insensitively, as on CDs)."""
    from zsmed.dicom.decode import open_dataset

    ds, _notes = open_dataset(path, stop_before_pixels=True)
    base = os.path.dirname(os.path.abspath(str(path)))
    files: list[str] = []
    problems: list[Problem] = []
    listing_cache: dict[str, dict[str, str]] = {}

    real_base = os.path.realpath(base)

    def inside_disc(parts: list[str]) -> bool:
        """A File ID is a relative path of plain components (PS3.10 8.5): no '..', no absolute
        path, no drive, no separator; and what it names, links resolved, stays on the disc."""
        return all(p and p not in (".", "..") and not any(c in p for c in "/\\:") for p in parts)

    def resolve(parts: list[str]) -> str | None:
        current = base
        for part in parts:
            candidate = os.path.join(current, part)
            if os.path.exists(candidate):
                current = candidate
                continue
            if current not in listing_cache:
                try:
                    listing_cache[current] = {n.upper(): n for n in os.listdir(current)}
                except OSError:
                    return None
            real = listing_cache[current].get(part.upper()) or listing_cache[current].get(part.upper() + ".")
            if real is None:
                return None
            current = os.path.join(current, real)
        return current

    try:
        records = list(ds.get("DirectoryRecordSequence") or [])
    except Exception as exc:  # pydicom decodes the sequence when it is first read: a damaged one fails here
        raise DicomReadError(f"the DICOMDIR's list of files is damaged ({exc.__class__.__name__}: {exc})",
                             path=path) from exc
    for number, record in enumerate(records, start=1):
        try:
            file_id = record.get("ReferencedFileID")
        except Exception as exc:  # one record's bytes damaged: the others still name their files
            problems.append(Problem(str(path), f"DICOMDIR record {number} is damaged and was skipped "
                                    f"({exc.__class__.__name__}: {exc})"))
            continue
        if not file_id:
            continue
        parts = [
            str(p).strip()
            for p in (
                file_id
                if isinstance(file_id, list | tuple) or (hasattr(file_id, "__iter__") and not isinstance(file_id, str))
                else [file_id]
            )
        ]
        if len(parts) == 1 and "\\" in parts[0]:
            parts = parts[0].split("\\")
        if not inside_disc(parts):
            problems.append(Problem(str(path), f"DICOMDIR record names {'/'.join(parts)[:200]!r}, a path outside "
                                    "the DICOMDIR's folder: refused", "outside"))
            continue
        resolved = resolve(parts)
        if resolved is not None:
            real = os.path.realpath(resolved)
            if os.path.commonpath([real_base, real]) != real_base:
                problems.append(Problem(resolved, "a link on the disc leads outside the DICOMDIR's folder: refused",
                                        "outside"))
                continue
        if resolved is None:
            problems.append(Problem(os.path.join(base, *parts), "referenced by the DICOMDIR but missing", "missing"))
        else:
            files.append(resolved)
    return files, problems


# --- indexing -------------------------------------------------------------------------------------
def _sort_key_slices(series: Series) -> None:
    instances = series.instances
    if len(instances) > 1 and all(i.position and len(i.position) == 3 for i in instances):
        orient = next((i.orientation for i in instances if i.orientation and len(i.orientation) == 6), None)
        if orient is not None:
            r, c = orient[:3], orient[3:]
            normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])

            def along(i: Instance) -> tuple[float, int, str]:
                assert i.position is not None
                d = sum(p * n for p, n in zip(i.position, normal, strict=False))
                return (d, i.instance_number if i.instance_number is not None else 0, i.path)

            instances.sort(key=along)
            return
    instances.sort(key=lambda i: (i.instance_number is None, i.instance_number or 0, i.path))


def _classify_failure(path: str, exc: ZsmedError) -> Problem:
    if isinstance(exc, NotDicomError):
        suffix = os.path.splitext(path)[1].lower()
        if suffix in DICOM_SUFFIXES or "empty file" in exc.reason:
            return Problem(path, exc.reason, "error")
        return Problem(path, exc.reason, "not-dicom")
    return Problem(path, exc.reason, "error")


def build_index(headers: Iterable[Header], problems: list[Problem] | None = None) -> ScanIndex:
    index = ScanIndex(problems=list(problems or []))
    patients: dict[str, Patient] = {}
    studies: dict[str, Study] = {}
    series_map: dict[str, Series] = {}
    seen_sop: dict[str, str] = {}
    for h in headers:
        sop_uid = h.get("SOPInstanceUID") or f"(no SOP Instance UID) {h.path}"
        if sop_uid in seen_sop:
            index.problems.append(
                Problem(h.path, f"duplicate of {seen_sop[sop_uid]} (same SOP Instance UID)", "duplicate")
            )
            continue
        seen_sop[sop_uid] = h.path
        pid = h.get("PatientID") or "(no patient ID)"
        patient_key, study_uid, series_uid = header_keys(h)
        patient = patients.get(patient_key)
        if patient is None:
            patient = Patient(pid, h.get("PatientName"), h.get("PatientBirthDate"), h.get("PatientSex"))
            patients[patient_key] = patient
        study = studies.get(study_uid)
        if study is None:
            study = Study(
                study_uid,
                h.get("StudyDate"),
                h.get("StudyTime"),
                h.get("StudyDescription"),
                h.get("AccessionNumber"),
                h.get("StudyID"),
            )
            studies[study_uid] = study
            patient.studies.append(study)
        series = series_map.get(series_uid)
        if series is None:
            series = Series(
                series_uid,
                h.get("SeriesNumber"),
                h.get("Modality"),
                h.get("SeriesDescription"),
                h.get("BodyPartExamined"),
            )
            series_map[series_uid] = series
            study.series.append(series)
        series.instances.append(
            Instance(
                path=h.path,
                sop_instance_uid=sop_uid,
                sop_class_uid=h.sop_class,
                instance_number=h.get("InstanceNumber"),
                position=h.get("ImagePositionPatient"),
                orientation=h.get("ImageOrientationPatient"),
                slice_location=h.get("SliceLocation"),
                rows=h.get("Rows"),
                cols=h.get("Columns"),
                frames=int(h.get("NumberOfFrames") or 1),
                photometric=h.get("PhotometricInterpretation"),
                bits_allocated=h.get("BitsAllocated"),
                transfer_syntax=h.transfer_syntax,
            )
        )
    for series in series_map.values():
        _sort_key_slices(series)
    for study in studies.values():
        study.series.sort(key=lambda s: (s.number is None, s.number or 0, s.uid))
    for patient in patients.values():
        patient.studies.sort(key=lambda s: (s.date or "", s.time or "", s.uid))
    index.patients = sorted(patients.values(), key=lambda p: ((p.name or "").lower(), p.id))
    return index


def merge_index(index: ScanIndex, added: ScanIndex) -> ScanIndex:
    """``index`` with ``added``'s series joined to it (files saved since the scan: a reformat series, say):
    each in its patient and study where ``index`` has them (by patient ID and name, study UID), new series
    only (one already listed keeps its instances), in the order ``build_index`` gives. ``index`` is not
    changed."""
    import copy

    merged = copy.deepcopy(index)
    patients = {f"{p.id}\x00{p.name or ''}": p for p in merged.patients}
    for patient in added.patients:
        mine = patients.setdefault(f"{patient.id}\x00{patient.name or ''}", copy.deepcopy(patient))
        if mine not in merged.patients:
            merged.patients.append(mine)
            continue
        studies = {st.uid: st for st in mine.studies}
        for study in patient.studies:
            if study.uid not in studies:
                mine.studies.append(copy.deepcopy(study))
                continue
            known = {se.uid for se in studies[study.uid].series}
            studies[study.uid].series.extend(copy.deepcopy(se) for se in study.series if se.uid not in known)
            studies[study.uid].series.sort(key=lambda s: (s.number is None, s.number or 0, s.uid))
        mine.studies.sort(key=lambda s: (s.date or "", s.time or "", s.uid))
    merged.patients.sort(key=lambda p: ((p.name or "").lower(), p.id))
    merged.problems.extend(added.problems)
    merged.files_seen += added.files_seen
    return merged


def scan_job(inputs: Iterable[str | Path], *, report_every: int = 100) -> Job[ScanIndex]:
    """Scan folders, DICOMDIR files and single files into a ``ScanIndex`` (yields Progress)."""
    started = time.perf_counter()
    problems: list[Problem] = []
    files: list[str] = []
    dicomdirs: list[str] = []
    seen_files: set[Any] = set()
    yield Progress(0, None, "listing files")
    for item in inputs:
        item = str(item)
        if os.path.isdir(item):
            for path in _walk(item, problems):
                files.append(path)
                if len(files) % 1000 == 0:
                    yield Progress(len(files), None, "listing files")
        elif os.path.basename(item).upper().startswith("DICOMDIR") and os.path.isfile(item):
            try:
                referenced, missing = dicomdir_files(item)
                dicomdirs.append(item)
                files.extend(referenced)
                problems.extend(missing)
            except ZsmedError as exc:
                problems.append(Problem(item, f"DICOMDIR unreadable: {exc.reason}"))
        elif os.path.lexists(item) and not os.path.exists(item):
            problems.append(Problem(item, "broken symbolic link"))
        else:
            files.append(item)
    headers: list[Header] = []
    batch_start = 0
    problems_reported = 0
    skipped = 0
    total = len(files)
    for done, path in enumerate(files, 1):
        try:
            st = os.stat(path)
            key: Any = (st.st_dev, st.st_ino)
        except OSError:
            key = path
        name = os.path.basename(path).lower()
        if key in seen_files:  # the same file reached twice (symlinks, DICOMDIR + folder): read once
            pass
        elif name in _SKIP_NAMES:
            seen_files.add(key)
            skipped += 1
        else:
            seen_files.add(key)
            try:
                header = read_header(path)
                if header.is_dicomdir:
                    dicomdirs.append(path)
                else:
                    headers.append(header)
            except InputFileError as exc:
                problems.append(Problem(path, exc.reason))
            except ZsmedError as exc:
                problem = _classify_failure(path, exc)
                if problem.kind == "not-dicom":
                    skipped += 1
                problems.append(problem)
            except Exception as exc:  # never let one file stop the scan
                problems.append(Problem(path, f"unexpected {exc.__class__.__name__}: {str(exc)[:200]}"))
        if done % report_every == 0 or done == total:
            yield ScanProgress(
                done, total, os.path.basename(path), tuple(headers[batch_start:]), tuple(problems[problems_reported:])
            )
            batch_start, problems_reported = len(headers), len(problems)
    index = build_index(headers, problems)
    index.files_seen = len(seen_files)
    index.skipped_non_dicom = skipped
    index.dicomdirs = dicomdirs
    index.seconds = time.perf_counter() - started
    return index


def scan(inputs: Iterable[str | Path] | str | Path) -> ScanIndex:
    """``scan_job`` run to completion without progress reporting."""
    if isinstance(inputs, str | Path):
        inputs = [inputs]
    return run_job(scan_job(inputs))


def _words(text: str | None) -> set[str]:
    return {w for w in "".join(c.lower() if c.isalnum() else " " for c in (text or "")).split() if len(w) > 1}


def prior_series(index: ScanIndex, series_uid: str) -> Series | None:
    """The series a reader compares ``series_uid`` with, as a PACS's hanging protocol picks it: of the
    same patient's studies before this one (by Study Date; a study without a date is not before
    anything), a series of the same modality with images — one whose description or body part shares a
    word with this one's before one that shares none (last year's chest CT before last month's abdomen
    CT), then the most recent study, then the most words shared, more images, the lower series number.
    None where the patient has no earlier study with such a series."""
    for patient in index.patients:
        for study in patient.studies:
            current = next((se for se in study.series if se.uid == series_uid), None)
            if current is None:
                continue
            wanted = _words(current.description) | _words(current.body_part)
            candidates = [(st, se) for st in patient.studies
                          if st.uid != study.uid and st.date and study.date and st.date < study.date
                          for se in st.series
                          if se.modality == current.modality and any(i.is_image for i in se.instances)]
            return max(candidates, key=lambda pair: _prior_rank(wanted, *pair))[1] if candidates else None
    return None


def _prior_rank(wanted: set[str], study: Study, series: Series) -> tuple[bool, str, int, int, int]:
    shared = len(wanted & (_words(series.description) | _words(series.body_part)))
    images = sum(1 for i in series.instances if i.is_image)
    return shared > 0, f"{study.date}{study.time or ''}", shared, images, -(series.number or 0)


def format_tree(index: ScanIndex, *, max_problems: int = 200) -> str:
    """Human-readable tree with counts and problems (``zsmed scan`` without --json)."""
    lines: list[str] = []
    for p in index.patients:
        n_inst = sum(len(se.instances) for st in p.studies for se in st.series)
        lines.append(f"Patient {p.name or '(no name)'} [{p.id}]  {len(p.studies)} studies, {n_inst} instances")
        for st in p.studies:
            lines.append(f"  Study {st.date or '????????'} {st.description or ''}".rstrip() + f"  [{st.uid}]")
            for se in st.series:
                frames = sum(i.frames for i in se.instances)
                desc = f"#{se.number if se.number is not None else '-'} {se.modality or '??'} {se.description or ''}"
                lines.append(f"    Series {desc.rstrip()}  {len(se.instances)} instances, {frames} frames")
    counts = index.counts()
    lines.append("")
    lines.append(
        f"{counts['files']} files: {counts['patients']} patients, {counts['studies']} studies, "
        f"{counts['series']} series, {counts['instances']} instances; "
        f"{counts['skipped_non_dicom']} non-DICOM skipped; {counts['problems']} problems "
        f"({index.seconds:.2f} s)"
    )
    shown = [p for p in index.problems if p.kind != "not-dicom"]
    if shown:
        lines.append("Problems:")
        for problem in shown[:max_problems]:
            lines.append(f"  [{problem.kind}] {problem.path}: {problem.reason}")
        if len(shown) > max_problems:
            lines.append(f"  ... and {len(shown) - max_problems} more (use --json for all)")
    return "\n".join(lines)
