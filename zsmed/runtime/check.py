"""Check a model on this site's own labelled cases before relying on it.

A folder with one subfolder per class (named as the model's classes) is run through the bundle's
runtime, exactly as ``zsmed predict`` and the app run it, and compared with the labels. A case is a
photograph, or a DICOM series (its images' answers combined as ``predict --series`` combines them):
120 slices of one CT are one patient's answer, not 120 independent ones, and counting them apart
would make the intervals falsely narrow. The figures: accuracy,
per-class sensitivity and positive predictive value with Wilson 95 % intervals, the confusion
matrix (with the gate's "no result" and unreadable files as their own columns), ROC AUC, and every
image the model got wrong. No torch: this runs on the hospital PC the model was carried to.

A summary without file names (they can carry patient names) can be kept beside the model
(``record_check``), so whoever opens the model later sees how it did on local cases.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.errors import NO_IMAGE_IN_OBJECT, DatasetError, InputFileError
from zsmed.imageio import candidate_images, is_photo
from zsmed.progress import Job, Progress
from zsmed.runtime.predict import Prediction, Predictor, _header_value, aggregate_series

NO_RESULT = "no result"  # the OOD gate abstained: unlike the images the model was built on
UNREADABLE = "unreadable"
CHECKS_SUFFIX = ".checks.jsonl"  # beside the model file: one summary per check, oldest first


@dataclass(frozen=True)
class LabelledCase:
    path: Path
    truth: str  # a class name of the model


@dataclass(frozen=True)
class CheckSet:
    """The labelled cases of a folder, and what of the folder was not used (said to the user)."""

    cases: list[LabelledCase]
    notes: list[str] = field(default_factory=list)


def _folded(name: str) -> str:
    # "Actinic_keratosis", "actinic-keratosis " and "Actinic keratosis" are one class to a reader
    return re.sub(r"[\s_\-]+", " ", name).strip().casefold()


def labelled_cases(folder: str | Path, class_names: Sequence[str]) -> CheckSet:
    """The images of ``folder``'s class subfolders whose names are the model's classes (letter
    case, spaces, ``_`` and ``-`` aside). A subfolder that names no class, or a class without a
    subfolder, is a note; no usable subfolder at all is an error naming the folder."""
    root = Path(folder)
    if not root.is_dir():
        raise InputFileError("not a folder (a folder with one subfolder per class is needed)", path=root)
    by_folded = {_folded(name): name for name in class_names}
    try:
        subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise InputFileError(f"cannot list the folder ({exc.strerror or exc})", path=root) from exc
    cases: list[LabelledCase] = []
    notes: list[str] = []
    found: set[str] = set()
    for sub in subfolders:
        name = by_folded.get(_folded(sub.name))
        images = candidate_images(sub)
        if name is None:
            notes.append(f"folder '{sub.name}' is not a class of the model: its {len(images)} image(s) not used")
            continue
        if not images:
            notes.append(f"folder '{sub.name}' holds no images")
            continue
        found.add(name)
        cases.extend(LabelledCase(path, name) for path in images)
    for name in class_names:
        if name not in found:
            notes.append(f"no images of class '{name}' (a subfolder named '{name}')")
    if not cases:
        classes = ", ".join(f"'{n}'" for n in class_names)
        raise DatasetError(f"holds no subfolder of images named after the model's classes ({classes})", path=root)
    return CheckSet(cases, notes)


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion: sound at the small counts a site checks with
    (the normal approximation gives intervals past 100 % at 9 of 10)."""
    if trials <= 0:
        return (math.nan, math.nan)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def proportion_text(hits: int, of: int) -> str:
    """``hits`` of ``of`` as a reader reads it: "78 % (55–91 %), 14 of 18", its Wilson 95 % interval in
    brackets; "—" when there is nothing to count."""
    if of <= 0:
        return "—"
    low, high = wilson_interval(hits, of)
    return f"{100 * hits / of:.0f} % ({100 * low:.0f}–{100 * high:.0f} %), {hits} of {of}"


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), NaN without both positives and negatives."""
    positive = positive.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class CaseResult:
    path: Path  # the case's file; of a DICOM series, its first image
    truth: str
    predicted: str | None  # None: no result (the gate) or unreadable
    confidence: float | None  # the predicted class's probability
    abstained: bool
    error: str | None
    probabilities: dict[str, float] = field(default_factory=dict)
    images: int = 1  # a DICOM series: its images in the folder

    @property
    def name(self) -> str:
        """The case as a reader finds it: the file name, and for a series how many images it has."""
        return self.path.name if self.images == 1 else f"{self.path.name} (series of {self.images} images)"

    @property
    def outcome(self) -> str:
        """The column of the confusion matrix: a class, NO_RESULT or UNREADABLE."""
        if self.error is not None:
            return UNREADABLE
        if self.abstained or self.predicted is None:
            return NO_RESULT
        return self.predicted

    @property
    def wrong(self) -> bool:
        return self.outcome != self.truth


@dataclass(frozen=True)
class ClassFigures:
    name: str
    cases: int  # labelled cases of the class (readable or not)
    answered: int  # of those, with a result
    correct: int
    predicted: int  # cases of any class the model gave this label
    sensitivity: float  # correct / answered
    sensitivity_ci: tuple[float, float]
    ppv: float  # correct / predicted
    ppv_ci: tuple[float, float]


@dataclass
class CheckReport:
    """A model's results on labelled local cases."""

    model: str  # the model's title
    bundle_id: str
    classes: list[str]
    cases: list[CaseResult]
    notes: list[str] = field(default_factory=list)
    checked_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def answered(self) -> list[CaseResult]:
        return [c for c in self.cases if c.outcome not in (NO_RESULT, UNREADABLE)]

    @property
    def correct(self) -> int:
        return sum(not c.wrong for c in self.answered)

    @property
    def abstained(self) -> int:
        return sum(c.outcome == NO_RESULT for c in self.cases)

    @property
    def unreadable(self) -> int:
        return sum(c.outcome == UNREADABLE for c in self.cases)

    @property
    def accuracy(self) -> float:
        answered = len(self.answered)
        return self.correct / answered if answered else math.nan

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        return wilson_interval(self.correct, len(self.answered))

    def confusion(self) -> dict[str, dict[str, int]]:
        """truth -> outcome -> count, every class and both extra columns present."""
        columns = [*self.classes, NO_RESULT, UNREADABLE]
        table = {truth: dict.fromkeys(columns, 0) for truth in self.classes}
        for case in self.cases:
            table[case.truth][case.outcome] += 1
        return table

    def per_class(self) -> list[ClassFigures]:
        rows = []
        answered = self.answered
        for name in self.classes:
            mine = [c for c in answered if c.truth == name]
            hits = sum(c.predicted == name for c in mine)
            called = sum(c.predicted == name for c in answered)
            rows.append(ClassFigures(
                name=name,
                cases=sum(c.truth == name for c in self.cases),
                answered=len(mine),
                correct=hits,
                predicted=called,
                sensitivity=hits / len(mine) if mine else math.nan,
                sensitivity_ci=wilson_interval(hits, len(mine)),
                ppv=hits / called if called else math.nan,
                ppv_ci=wilson_interval(hits, called),
            ))
        return rows

    @property
    def balanced_accuracy(self) -> float:
        values = [row.sensitivity for row in self.per_class() if row.answered]
        return float(np.mean(values)) if values else math.nan

    @property
    def auc(self) -> float:
        """ROC AUC over the answered cases: of the second class for two classes, else the mean
        one-vs-rest AUC of the classes that have both positives and negatives."""
        answered = [c for c in self.answered if c.probabilities]
        if not answered:
            return math.nan
        probs = np.array([[c.probabilities.get(name, 0.0) for name in self.classes] for c in answered])
        truth = np.array([self.classes.index(c.truth) for c in answered])
        if len(self.classes) == 2:
            return roc_auc(probs[:, 1], truth == 1)
        values = [roc_auc(probs[:, k], truth == k) for k in range(len(self.classes))]
        finite = [v for v in values if not math.isnan(v)]
        return float(np.mean(finite)) if finite else math.nan

    def wrong_cases(self) -> list[CaseResult]:
        """Every case not given its own class (misread, no result, unreadable), most confident first."""
        wrong = [c for c in self.cases if c.wrong]
        return sorted(wrong, key=lambda c: (c.outcome == UNREADABLE, c.outcome == NO_RESULT, -(c.confidence or 0.0)))

    def summary_line(self) -> str:
        """One sentence a reader understands."""
        answered = len(self.answered)
        if not answered:
            return (f"No result on any of the {len(self.cases)} case(s): "
                    f"{self.abstained} unlike the model's images, {self.unreadable} unreadable.")
        low, high = self.accuracy_ci
        text = (f"{self.correct} of {answered} answered case(s) correct ({_percent(self.accuracy)}, "
                f"95 % CI {_percent(low)}–{_percent(high)})")
        extra = []
        if self.abstained:
            extra.append(f"{self.abstained} with no result (unlike the model's images)")
        if self.unreadable:
            extra.append(f"{self.unreadable} unreadable")
        return text + ("; " + ", ".join(extra) if extra else "") + "."

    @property
    def images(self) -> int:
        return sum(c.images for c in self.cases)

    def record(self) -> dict[str, Any]:
        """The summary kept beside the model: figures only, no file or folder names."""
        return {
            "checked_at": self.checked_at,
            "bundle_id": self.bundle_id,
            "cases": len(self.cases),
            "images": self.images,
            "answered": len(self.answered),
            "correct": self.correct,
            "no_result": self.abstained,
            "unreadable": self.unreadable,
            "accuracy": _rounded(self.accuracy),
            "accuracy_ci": [_rounded(v) for v in self.accuracy_ci],
            "balanced_accuracy": _rounded(self.balanced_accuracy),
            "auc": _rounded(self.auc),
            "per_class": [{"name": r.name, "cases": r.cases, "answered": r.answered, "correct": r.correct,
                           "sensitivity": _rounded(r.sensitivity), "ppv": _rounded(r.ppv)}
                          for r in self.per_class()],
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, per image included (a local report file; it names the files)."""
        return {
            **self.record(),
            "model": self.model,
            "classes": self.classes,
            "notes": self.notes,
            "confusion": self.confusion(),
            "per_class": [{"name": r.name, "cases": r.cases, "answered": r.answered, "correct": r.correct,
                           "predicted": r.predicted, "sensitivity": _rounded(r.sensitivity),
                           "sensitivity_ci": [_rounded(v) for v in r.sensitivity_ci], "ppv": _rounded(r.ppv),
                           "ppv_ci": [_rounded(v) for v in r.ppv_ci]} for r in self.per_class()],
            "per_case": [{"file": str(c.path), "images": c.images, "truth": c.truth, "outcome": c.outcome,
                          "confidence": c.confidence, "error": c.error} for c in self.cases],
        }


def report_html(report: CheckReport, site: str = "") -> str:
    """The check as a page to print or file (a QA record): the figures, the confusion table and the
    cases not given their class by file name (not by path). Every text is escaped."""
    from html import escape as e

    columns = [*report.classes, NO_RESULT, UNREADABLE]
    confusion = report.confusion()
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    confusion_rows = "".join(
        f"<tr><th>{e(truth)}</th>" + "".join(f"<td class='n'>{row[c]}</td>" for c in columns) + "</tr>"
        for truth, row in confusion.items())
    class_rows = "".join(
        f"<tr><th>{e(r.name)}</th><td class='n'>{r.cases}</td>"
        f"<td>{proportion_text(r.correct, r.answered)}</td><td>{proportion_text(r.correct, r.predicted)}</td></tr>"
        for r in report.per_class())
    wrong_rows = "".join(
        f"<tr><td>{e(c.name)}</td><td>{e(c.truth)}</td><td>{e(c.outcome)}</td>"
        f"<td class='n'>{'' if c.confidence is None else f'{100 * c.confidence:.0f} %'}</td></tr>"
        for c in report.wrong_cases())
    extra = []
    if report.answered:
        extra.append(f"Balanced accuracy {100 * report.balanced_accuracy:.0f} %")
        if not math.isnan(report.auc):
            extra.append(f"ROC AUC {report.auc:.3f}")
    notes = "".join(f"<li>{e(n)}</li>" for n in report.notes)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Check of {e(report.model)}</title><style>"
        "body{font-family:sans-serif;margin:2em;} table{border-collapse:collapse;margin:.5em 0 1.5em;}"
        "th,td{border:1px solid #999;padding:4px 8px;text-align:left;} td.n{text-align:right;}"
        "</style></head><body>"
        f"<h1>Check of '{e(report.model)}' on labelled cases</h1>"
        f"<p>Checked {e(report.checked_at[:16].replace('T', ' '))} UTC{f' at {e(site)}' if site else ''}; "
        f"model id {e(report.bundle_id[:16])}; "
        f"{cases_text(report)}.</p>"
        f"<p><b>{e(report.summary_line())}</b> {e('. '.join(extra) + '.' if extra else '')}</p>"
        + (f"<ul>{notes}</ul>" if notes else "")
        + "<h2>Each class</h2><table><tr><th>Class</th><th>Cases</th><th>Sensitivity (95 % CI)</th>"
        f"<th>Positive predictive value (95 % CI)</th></tr>{class_rows}</table>"
        f"<h2>True class (rows) and the model's answer (columns)</h2><table><tr><th></th>{head}</tr>"
        f"{confusion_rows}</table>"
        f"<h2>Not given their class ({len(report.wrong_cases())})</h2>"
        + (f"<table><tr><th>Case</th><th>True class</th><th>The model's answer</th><th>Confidence</th></tr>"
           f"{wrong_rows}</table>" if wrong_rows else "<p>Every image was given its class.</p>")
        + "<p><small>A case is a photograph or a DICOM series. Sensitivity: of the cases of a class that got an "
        "answer, the share given that class. Positive predictive value: of the cases given a class, the share "
        "that were of it. Intervals are Wilson 95 % intervals. No result: the model judged the case unlike the "
        "images it was built on. "
        "A check is only as good as its cases.</small></p></body></html>\n"
    )


def cases_text(report: CheckReport) -> str:
    """"49 labelled cases", or "3 labelled cases (130 images)" where series hold several images."""
    text = f"{len(report.cases)} labelled case(s)"
    return text if report.images == len(report.cases) else f"{text} ({report.images} images)"


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def _percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.0f} %"


def _case_result(case: LabelledCase, prediction: Prediction) -> CaseResult:
    confidence = prediction.probabilities.get(prediction.label) if prediction.label is not None else None
    return CaseResult(path=case.path, truth=case.truth, predicted=prediction.label, confidence=confidence,
                      abstained=prediction.abstain, error=prediction.error, probabilities=prediction.probabilities)


def _series_uid(path: Path) -> str | None:
    """A DICOM file's SeriesInstanceUID (header only); None for a photograph or a file without one."""
    if is_photo(path):
        return None
    uid = _header_value(path, "SeriesInstanceUID")
    return str(uid) if uid else None


def _combined(members: list[tuple[LabelledCase, Prediction]], class_names: Sequence[str]) -> CaseResult:
    """One DICOM series' answer from its images', combined by ``aggregate_series`` (as ``predict
    --series`` combines them); unreadable when none of its files could be read."""
    first = members[0][0]
    predictions = [p for _, p in members]
    if all(p.error is not None for p in predictions):
        return CaseResult(first.path, first.truth, None, None, True, predictions[0].error, images=len(members))
    combined = aggregate_series([replace(p, series="this case") for p in predictions], class_names)[0]
    return replace(_case_result(first, combined), images=len(members))


def check_job(predictor: Predictor, check_set: CheckSet, *, model: str = "", batch_size: int = 8,
              per_series: bool = True) -> Job[CheckReport]:
    """Predict every labelled image (first frame of a multi-frame file) and compare, a DICOM series
    of a class folder as one case (``per_series``; else every image file is a case). A job: yields
    ``Progress``, cancellable between batches; an unreadable file is a result, never a stop."""
    paths = [case.path for case in check_set.cases]
    yield Progress(0, len(paths), "checking")
    predictions = yield from predictor.predict_files_job(paths, batch_size, frames="first")
    groups: dict[tuple[str, str], list[tuple[LabelledCase, Prediction]]] = {}
    notes = list(check_set.notes)
    without_image = 0
    for case, prediction in zip(check_set.cases, predictions, strict=True):
        if prediction.error is not None and prediction.error.startswith(NO_IMAGE_IN_OBJECT):
            without_image += 1  # a report or presentation state exported with the images: not a case
            continue
        uid = _series_uid(case.path) if per_series else None
        groups.setdefault((case.truth, f"series {uid}" if uid else f"file {case.path}"), []).append(
            (case, prediction))
    results = [_case_result(*members[0]) if len(members) == 1 else _combined(members, predictor.class_names)
               for members in groups.values()]
    title = model or str(predictor.bundle.card.get("name") or "").strip() or predictor.bundle.path.stem
    if without_image:
        notes.append(f"{without_image} DICOM object(s) without an image (reports, presentation states) not counted")
    return CheckReport(model=title, bundle_id=predictor.bundle.bundle_id,
                       classes=list(predictor.class_names), cases=results, notes=notes)


def checks_path(model_path: str | Path) -> Path:
    path = Path(model_path)
    return path.with_name(path.name + CHECKS_SUFFIX)


def record_check(model_path: str | Path, report: CheckReport) -> Path:
    """Append the report's summary (no file names) to the model's checks file."""
    target = checks_path(model_path)
    try:
        with target.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(report.record(), sort_keys=True) + "\n")
    except OSError as exc:
        raise InputFileError(f"cannot keep the check beside the model ({exc.strerror or exc})", path=target) from exc
    return target


def read_checks(model_path: str | Path, bundle_id: str | None = None) -> list[dict[str, Any]]:
    """The kept check summaries of a model, oldest first; with ``bundle_id``, only those of that
    very model (a file of the same name replaced by another model has other checks). Lines that
    are not summaries are skipped: the file is a convenience, the bundle is what is trusted."""
    target = checks_path(model_path)
    try:
        lines = target.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if _is_summary(record) and (bundle_id is None or record.get("bundle_id") == bundle_id):
            records.append(record)
    return records


_COUNTS = ("cases", "answered", "correct", "no_result")


def _is_summary(record: object) -> bool:
    """A line as ``record_check`` writes it, in the fields shown from it (an edited or damaged line
    is skipped rather than shown wrong or failing the models window)."""
    if not isinstance(record, dict) or not isinstance(record.get("checked_at"), str):
        return False
    counts = [record.get(key) for key in _COUNTS]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        return False
    cases, answered, correct = (int(record[key]) for key in _COUNTS[:3])
    if correct > answered or answered > cases:
        return False
    accuracy, interval = record.get("accuracy"), record.get("accuracy_ci")
    return (accuracy is None or _is_fraction(accuracy)) and (
        interval is None or (isinstance(interval, list) and len(interval) == 2
                             and all(v is None or _is_fraction(v) for v in interval)))


def _is_fraction(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def peek_bundle_id(model_path: str | Path) -> str | None:
    """The bundle id (SHA-256 of its manifest) without verifying the bundle: which model a kept check
    belongs to. None for a file that is not a readable bundle."""
    import zipfile

    from zsmed.digest import sha256_hex
    from zsmed.runtime.format import MANIFEST, MAX_MANIFEST_BYTES
    from zsmed.runtime.safezip import ZIP_READ_ERRORS

    try:
        with zipfile.ZipFile(model_path) as archive:
            info = archive.getinfo(MANIFEST)
            if info.file_size > MAX_MANIFEST_BYTES:
                return None
            return sha256_hex(archive.read(info))
    except ZIP_READ_ERRORS:
        return None


def describe_record(record: dict[str, Any]) -> str:
    """A kept check in one line: date, cases, correct, the interval, no results."""
    when = str(record.get("checked_at", ""))[:10]
    answered, correct, cases = record["answered"], record["correct"], record["cases"]
    text = f"{when}: {cases} case(s), {correct} of {answered} answered correct"
    accuracy, interval = record.get("accuracy"), record.get("accuracy_ci") or [None, None]
    if accuracy is not None and None not in interval:
        text += f" ({100 * accuracy:.0f} %, 95 % CI {100 * interval[0]:.0f}–{100 * interval[1]:.0f} %)"
    if record.get("no_result"):
        text += f", {record['no_result']} with no result"
    return text


__all__ = [
    "NO_RESULT", "UNREADABLE", "CaseResult", "CheckReport", "CheckSet", "ClassFigures", "LabelledCase",
    "cases_text", "check_job", "checks_path", "describe_record", "labelled_cases", "peek_bundle_id", "proportion_text",
    "read_checks", "record_check", "report_html", "roc_auc", "wilson_interval",
]
