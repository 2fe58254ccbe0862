"""The classifier panel: choose a model, run it on the current image, the series or the study, read
the per-class bars (or the "no result" banner) and, for an image, the cases reviewed here that the model finds
most alike (``similar_cases``), and confirm or correct the result.

Every result goes to the case log with the reader's name. A case log that cannot be written (locked,
read-only, on a missing drive) never loses a result: the records wait in memory, the panel says so,
and Retry or "Save to a file…" keeps them. Inference and the case-log writes of a run happen in a
worker; a review is one small transaction on the GUI thread.
"""

from __future__ import annotations

import html
import json
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from zsmed.descriptions import TITLE_CHARS, shipped_title
from zsmed.errors import ZsmedError
from zsmed.imageio import is_photo
from zsmed.progress import Job, Progress
from zsmed.runtime import format as fmt
from zsmed.runtime.input_kinds import card_input_kinds, describe_kinds, image_kind, kind_mismatch
from zsmed.runtime.predict import Prediction, Predictor, aggregate_series, load_predictor, series_key
from zsmed.runtime.safezip import ZIP_READ_ERRORS
from zsmed.site import SiteConfig
from zsmed_desktop import theme
from zsmed_desktop.similar_cases import SimilarCasesView, SimilarFound, find_similar
from zsmed_desktop.workers import start_job

SCOPES = ("image", "series", "study")
OPEN_FILE = "__open__"
NO_RESULT_TITLE = "Not like the images this model was built on — no result"
WARNING_STYLE = (
    "QLabel { background: #b26a00; color: #fff8e1; border: 2px solid #ffb74d; border-radius: 4px; padding: 10px; }"
)
ERROR_COLOUR, OK_COLOUR = theme.ERROR_COLOUR, theme.OK_COLOUR
WORKER_LOG_TIMEOUT_S = 10.0  # a run's results: written in the worker, may wait for another writer
REVIEW_LOG_TIMEOUT_S = 2.0  # a review or a retry (also in a worker): answer the reader soon
TOP_BAR_STYLE = "QProgressBar::chunk { background: #4f8fd6; }"
OTHER_BAR_STYLE = "QProgressBar::chunk { background: #6b7178; }"


# --- model cards: readable names ----------------------------------------------------------------
def class_titles(card: dict[str, Any]) -> dict[str, str]:
    """Readable class names: the card's ``class_titles``, else the head of each description
    ("Basal cell carcinoma: a pink ..." -> "Basal cell carcinoma"), else, for a description zsmed
    proposed, its class's display name ("akiec" -> "Actinic keratosis / Bowen's disease"), else the
    class name."""
    names = [str(n) for n in card.get("class_names", [])]
    raw_titles, raw_descriptions = card.get("class_titles"), card.get("descriptions")
    given: dict[str, Any] = raw_titles if isinstance(raw_titles, dict) else {}
    descriptions: dict[str, Any] = raw_descriptions if isinstance(raw_descriptions, dict) else {}
    titles = {}
    for name in names:
        title = str(given.get(name) or "").strip()
        if not title:
            text = str(descriptions.get(name) or "").strip()
            head = text.split(":", 1)[0].split(" such as ", 1)[0].strip() if text else ""
            fits = 0 < len(head) <= TITLE_CHARS
            known = None if fits or not text else shipped_title(text)  # the shipped files read once, if ever
            title = head if fits else known if known and len(known) <= TITLE_CHARS else name
        titles[name] = title[:1].upper() + title[1:]
    return titles


def described_classes(card: dict[str, Any]) -> list[str]:
    """The classes a zero-shot model knows from their description alone (no example images): its
    card's unseen classes."""
    extra = card.get("extra")
    unseen = extra.get("unseen") if isinstance(extra, dict) else None
    return [str(c) for c in unseen] if isinstance(unseen, list) else []


def model_title(card: dict[str, Any], path: Path) -> str:
    return str(card.get("name") or card.get("title") or path.stem)


def peek_card(path: Path) -> dict[str, Any] | None:
    """The model card of a bundle file, read without verifying (for the list only; a model is
    verified when it is chosen). None when the file is not a readable bundle."""
    try:
        with zipfile.ZipFile(path) as archive:
            card = json.loads(archive.read(fmt.CARD))
    except ZIP_READ_ERRORS:
        return None
    return card if isinstance(card, dict) else None


def trust_settings() -> tuple[bool, list[str]]:
    """The site's signature policy, as the CLI reads it (ZSMED_REQUIRE_SIGNATURE, ZSMED_TRUSTED_KEYS);
    a malformed value is a ``ConfigError``."""
    from zsmed.runtime.trust import REQUIRE_ENV, env_bool, env_trusted_keys

    return env_bool(REQUIRE_ENV), env_trusted_keys()


def checked_here(path: Path, bundle_id: str) -> str:
    """One sentence on the model's latest check on labelled cases at this site (or that it has none)."""
    from zsmed.runtime.check import read_checks

    checks = read_checks(path, bundle_id)
    if not checks:
        return "Not checked on labelled cases here yet."
    last = checks[-1]
    cases, when = last.get("cases", 0), str(last.get("checked_at", ""))[:10]
    return (f"Checked here on {cases} labelled cases ({when}): "
            f"{last.get('correct', 0)} of {last.get('answered', 0)} answered correctly.")


def plain_words(text: str) -> str:
    """A core message in the app's words: "model file" for "bundle"."""
    return re.sub(r"\bbundle(s?)\b", lambda m: "model file" + m.group(1), text)


# --- results -------------------------------------------------------------------------------------
@dataclass
class ImageRow:
    """One image's result, its case-log id once written, and a review waiting to be written."""

    prediction: Prediction
    log_id: int | None = None
    pending_review: dict[str, Any] | None = None
    # The reader's latest decision (verdict, label, reader, time, comment): kept after it is written,
    # for a DICOM SR of this result, which must carry it beside the model's class.
    review: dict[str, str] | None = None


@dataclass
class Batch:
    """One run of the model: what is written to the case log together."""

    predictor: Predictor
    rows: list[ImageRow]
    reader: str
    error: str | None = None  # why the case log could not take it (None: written)

    @property
    def unwritten(self) -> bool:
        return any(r.log_id is None or r.pending_review is not None for r in self.rows)


@dataclass
class ShownRow:
    """A row of the results table: an image, or a series' summary over its images."""

    kind: str  # "image" | "series"
    prediction: Prediction
    images: list[ImageRow] = field(default_factory=list)  # the image itself, or the series' images


@dataclass
class Outcome:
    scope: str
    batch: Batch
    series: list[Prediction]  # one summary per series (aggregate_series), empty for one image
    members: list[list[int]]  # for each summary, the indices of its images in batch.rows
    similar: SimilarFound = field(default_factory=SimilarFound)  # one image: the reviewed cases most alike


def _one_frame_job(predictor: Predictor, path: Path, frame: int) -> Job[list[Prediction]]:
    """One frame of one file (the one on screen), read once; DICOM decoded in the contained decoder."""
    yield Progress(0, 1, path.name)
    if frame <= 0 or is_photo(path):
        results = yield from predictor.predict_files_job([path], frames="first")
        return results
    try:
        from zsmed.dicom.safe import SafeDecoder
        from zsmed.runtime.predict import UNTRUSTED_DECODE_MB, UNTRUSTED_DECODE_TIMEOUT

        # decoded in the contained worker, as predict does: a crafted file costs its result, not the app
        with SafeDecoder(timeout=UNTRUSTED_DECODE_TIMEOUT, memory_limit_mb=UNTRUSTED_DECODE_MB) as decoder:
            image = decoder.model_image(path, frame)
        result = predictor.predict_images([image], [str(path)])[0]
    except ZsmedError as exc:
        result = Prediction(source=str(path), error=exc.reason)
    except Exception as exc:  # an untrusted file: whatever the decoder lets through is its error
        result = Prediction(source=str(path), error=f"{exc.__class__.__name__}: {exc}")
    result.frame = frame
    yield Progress(1, 1, path.name)
    return [result]


def _classify_job(predictor: Predictor, scope: str, paths: list[Path], frame: int,
                  site: SiteConfig, timeout: float = WORKER_LOG_TIMEOUT_S) -> Job[Outcome]:
    if scope == "image":
        results = yield from _one_frame_job(predictor, paths[0], frame)
    else:
        results = yield from predictor.predict_files_job(paths)
    series: list[Prediction] = []
    members: list[list[int]] = []
    if scope != "image":
        for result in results:  # a series' every slice is not kept for similar cases: it would fill the log
            result.embedding = None
        keys = [r.series or series_key(Path(r.source)) for r in results]  # headers read once, here
        for result, key in zip(results, keys, strict=True):
            result.series = key
        series = aggregate_series(results, predictor.class_names)
        members = [[i for i, key in enumerate(keys) if key == summary.source] for summary in series]
    batch = Batch(predictor, [ImageRow(r) for r in results], site.reader)
    # Written here, before the panel sees the batch; what the log refuses stays in memory with the reason.
    [written] = yield from write_job([WriteTask(batch, list(batch.rows), [])], site, timeout)
    for row, log_id in zip(batch.rows, written.ids, strict=False):
        row.log_id = log_id
    batch.error = written.error
    outcome = Outcome(scope, batch, series, members)
    first = batch.rows[0] if batch.rows else None
    if (scope == "image" and first is not None and first.log_id is not None and first.prediction.error is None
            and not first.prediction.abstain):  # (unlike the model's images: nothing here is alike either)
        outcome.similar = find_similar(site, first.log_id)
    return outcome


@dataclass
class WriteTask:
    """What one write to the case log takes from a run: its results not yet recorded and the
    reviews waiting (taken off their rows while in flight; put back if the write fails)."""

    batch: Batch
    record: list[ImageRow]
    reviews: list[tuple[ImageRow, dict[str, Any]]]


@dataclass
class WriteResult:
    ids: list[int]  # the case-log ids of ``record``, in order (empty when they were not written)
    reviews_done: int  # how many of the task's reviews were written, in order
    last_id: int | None
    error: str | None


def write_job(tasks: list[WriteTask], site: SiteConfig, timeout: float) -> Job[list[WriteResult]]:
    """Write the tasks (each run's results in one transaction, each review in one) in a worker;
    reads the rows, never changes them (the panel applies the ids when the job returns)."""
    from zsmed.store import open_case_log

    yield Progress(0, len(tasks), "writing to the case log")
    try:
        log = open_case_log(site.resolved_caselog_path(), site=site, timeout=timeout)
    except Exception as exc:  # the log cannot be opened: every task waits
        return [WriteResult([], 0, None, _log_error(exc)) for _ in tasks]
    results = []
    with log:
        for number, task in enumerate(tasks, start=1):
            ids: list[int] = []
            done, last = 0, None
            try:
                if task.record:
                    # embeddings kept where the run has them (an image read on screen): for similar cases
                    ids = [int(i) for i in log.record_predictions(task.batch.predictor.bundle,
                                                                  [r.prediction for r in task.record],
                                                                  user=task.batch.reader, keep_embeddings=True)]
                    last = ids[-1] if ids else None
                new = {id(row): log_id for row, log_id in zip(task.record, ids, strict=True)}
                for row, review in task.reviews:
                    log_id = row.log_id if row.log_id is not None else new[id(row)]
                    log.review(log_id, **review)
                    done, last = done + 1, log_id
                results.append(WriteResult(ids, done, last, None))
            except Exception as exc:  # this task waits; the others are tried
                results.append(WriteResult(ids, done, last, _log_error(exc)))
            yield Progress(number, len(tasks), "")
    return results


def _log_error(exc: BaseException) -> str:
    if isinstance(exc, ZsmedError):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}"


class _Worker:
    """A zsmed job on a worker thread (the app's ``start_job``: a superqt GeneratorWorker), its
    progress, result and failure delivered on the GUI thread."""

    def __init__(self, make_job: Callable[[], Job[Any]], *, on_progress: Callable[[int, int, str], None],
                 on_done: Callable[[Any], None], on_error: Callable[[str], None],
                 on_cancelled: Callable[[], None]) -> None:
        def progress(report: Progress) -> None:
            on_progress(report.done, report.total or 0, report.message)

        self.worker = start_job(make_job, on_progress=progress, on_done=on_done, on_error=on_error,
                                on_cancelled=on_cancelled)

    def cancel(self) -> None:
        self.worker.quit()


# --- the correction dialog -----------------------------------------------------------------------
class CorrectDialog(QDialog):
    """The reader's class for this result, and a comment."""

    def __init__(self, class_names: Sequence[str], titles: dict[str, str], current: str | None,
                 comment: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Correct the result")
        self.classes = QComboBox()
        for name in class_names:
            self.classes.addItem(titles.get(name, name), name)
        others = [i for i, n in enumerate(class_names) if n != current]
        self.classes.setCurrentIndex(others[0] if others else 0)
        self.comment = QLineEdit(comment)
        self.comment.setPlaceholderText("optional")
        form = QFormLayout()
        said = QLabel(titles.get(current, current) if current else "No result")
        said.setTextFormat(Qt.TextFormat.PlainText)
        form.addRow("The model said", said)
        form.addRow("The correct class is", self.classes)
        form.addRow("Comment", self.comment)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def choice(self) -> tuple[str, str]:
        return str(self.classes.currentData()), self.comment.text().strip()


# --- the panel -----------------------------------------------------------------------------------
class ClassifyPanel(QWidget):
    logged = Signal(int)  # a prediction id after a result or a review was written to the case log
    sr_saved = Signal(object)  # the Path of a result's DICOM SR just written (the main window sends it on)
    worker_log_timeout = WORKER_LOG_TIMEOUT_S
    review_log_timeout = REVIEW_LOG_TIMEOUT_S

    def __init__(self, site: SiteConfig | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._site = site or SiteConfig()
        self._predictor: Predictor | None = None
        self._titles: dict[str, str] = {}
        self._current: Path | None = None
        self._frame = 0
        self._series: Sequence[Path] = ()
        self._study: Sequence[Path] = ()
        self._worker: _Worker | None = None
        self._loading: _Worker | None = None
        self._batches: list[Batch] = []
        self._shown: list[ShownRow] = []
        self._last_ids: list[int] = []
        self._shown_batch: Batch | None = None
        self._writer: _Worker | None = None  # a write to the case log in flight
        self._flush_again = False
        self._flush_text = ""
        self._pending_scope: str | None = None  # a run held back by the image-kind warning

        # model choice
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(16)
        self.model_combo.activated.connect(self._on_model_chosen)
        self.model_status = QLabel("Choose a model.")
        self.model_status.setWordWrap(True)
        self.model_status.setTextFormat(Qt.TextFormat.PlainText)  # file names and reasons are not markup

        # run
        self.run_buttons: dict[str, QPushButton] = {}
        run_row = QHBoxLayout()
        for scope, text, tip in (("image", "Image", "Classify the image on screen"),
                                 ("series", "Series", "Classify every image of this series"),
                                 ("study", "Study", "Classify every image of this study")):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, s=scope: self.classify(s))
            self.run_buttons[scope] = button
            run_row.addWidget(button)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self.progress_box = QWidget()
        self.progress_box.setLayout(progress_row)
        progress_row.setContentsMargins(0, 0, 0, 0)
        self.progress_box.hide()
        # an image of a kind the model was not built on: said before running, run on request
        self.kind_warning = QLabel()
        self.kind_warning.setWordWrap(True)
        self.kind_warning.setTextFormat(Qt.TextFormat.PlainText)
        self.kind_warning.setStyleSheet(WARNING_STYLE)
        self.run_anyway_button = QPushButton("Run anyway")
        self.run_anyway_button.setToolTip("Classify it with this model all the same")
        self.run_anyway_button.clicked.connect(self.run_anyway)
        kind_buttons = QHBoxLayout()
        kind_buttons.addWidget(self.run_anyway_button)
        kind_buttons.addStretch(1)
        kind_layout = QVBoxLayout()
        kind_layout.setContentsMargins(0, 0, 0, 0)
        kind_layout.addWidget(self.kind_warning)
        kind_layout.addLayout(kind_buttons)
        self.kind_box = QWidget()
        self.kind_box.setLayout(kind_layout)
        self.kind_box.hide()

        # result
        self.result_title = QLabel()
        self.result_title.setWordWrap(True)
        self.top_label = QLabel()
        font = QFont(self.top_label.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.top_label.setFont(font)
        self.top_label.setWordWrap(True)
        self.bars = QWidget()
        self.bars_layout = QGridLayout(self.bars)
        self.bars_layout.setContentsMargins(0, 0, 0, 0)
        self.bars_layout.setColumnStretch(1, 1)
        self.bars_layout.setHorizontalSpacing(8)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(WARNING_STYLE)
        self.banner.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.banner.hide()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        self.similar = SimilarCasesView()

        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Image", "Result", "Probability"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # file names differ at the end
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        self.table.hide()

        # review
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("Comment (optional)")
        self.confirm_button = QPushButton("Confirm  ⏎")
        self.confirm_button.setToolTip("The result is right (Enter)")
        self.confirm_button.clicked.connect(self.confirm)
        self.correct_button = QPushButton("Correct…  C")
        self.correct_button.setToolTip("Record the right class (C)")
        self.correct_button.clicked.connect(lambda: self.correct())
        self.sr_button = QToolButton()
        self.sr_button.setText("Save as DICOM SR…")
        self.sr_button.setToolTip("Write this result as a DICOM Structured Report")
        self.sr_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.sr_button.setMenu(sr_destination_menu(self.sr_button, self.write_sr))
        self.sr_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        # The "…" says a choice follows; Qt's arrow would be drawn over the text's last letters.
        self.sr_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        review_row = QHBoxLayout()
        review_row.addWidget(self.confirm_button)
        review_row.addWidget(self.correct_button)
        review_row.addStretch(1)
        sr_row = QHBoxLayout()  # a row of its own: at the panel's narrowest its text still shows whole
        sr_row.addWidget(self.sr_button)
        sr_row.addStretch(1)

        # case log state
        self.log_status = QLabel()
        self.log_status.setWordWrap(True)
        for label in (self.log_status, self.message, self.result_title, self.top_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(self.retry_pending)
        self.save_pending_button = QPushButton("Save them to a file…")
        self.save_pending_button.clicked.connect(self._ask_save_pending)
        pending_row = QHBoxLayout()
        pending_row.addWidget(self.retry_button)
        pending_row.addWidget(self.save_pending_button)
        pending_row.addStretch(1)
        self.pending_box = QWidget()
        self.pending_box.setLayout(pending_row)
        pending_row.setContentsMargins(0, 0, 0, 0)
        self.pending_box.hide()

        layout = QVBoxLayout(self)
        heading = QLabel("Model")
        heading.setStyleSheet("font-weight: bold;")
        layout.addWidget(heading)
        layout.addWidget(self.model_combo)
        layout.addWidget(self.model_status)
        layout.addSpacing(6)
        classify_heading = QLabel("Classify")
        classify_heading.setStyleSheet("font-weight: bold;")
        layout.addWidget(classify_heading)
        layout.addLayout(run_row)
        layout.addWidget(self.kind_box)
        layout.addWidget(self.progress_box)
        layout.addSpacing(6)
        layout.addWidget(self.result_title)
        layout.addWidget(self.top_label)
        layout.addWidget(self.bars)
        layout.addWidget(self.banner)
        layout.addWidget(self.message)
        layout.addWidget(self.similar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.comment)
        layout.addLayout(review_row)
        layout.addLayout(sr_row)
        layout.addWidget(self.log_status)
        layout.addWidget(self.pending_box)
        layout.addStretch(0)

        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            QShortcut(QKeySequence(key), self, self.confirm, context=context)
        QShortcut(QKeySequence(Qt.Key.Key_C), self, lambda: self.correct(), context=context)

        self.refresh_models()
        self._update_buttons()

    # --- settings and context -------------------------------------------------------------------
    def set_site(self, site: SiteConfig) -> None:
        backend_changed = site.backend != self._site.backend
        self._site = site
        self.refresh_models()
        if backend_changed and self._predictor is not None:
            self.load_bundle(self._predictor.bundle.path)

    def set_context(self, current: Path | None, frame: int, series: Sequence[Path], study: Sequence[Path]) -> None:
        """The image on screen and its series and study. The lists are kept as given (the browser
        makes each once; a CT study may hold 10,000 paths): no copy per call, so choosing a series
        costs no GUI time here. A run takes its own copy when it starts."""
        current = Path(current) if current is not None else None
        if current != self._current:
            self._hide_kind_warning()  # it was about the image that was on screen
        self._current = current
        self._frame = max(0, int(frame))
        self._series = series
        self._study = study
        self._update_buttons()

    # --- models ---------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """The models folder's bundles (readable names from their cards) and "Open a model file…"."""
        chosen = self.model_combo.currentData()
        self.model_combo.clear()
        self.model_combo.addItem("Choose a model…", None)
        folder: Path | None = None
        try:
            folder = self._site.resolved_models_folder()
            files = sorted(folder.glob("*.zsmb")) if folder.is_dir() else []
        except (OSError, ZsmedError):
            files = []
        if not files and self._predictor is None and self._loading is None:
            where = f"in {folder} " if folder is not None else ""
            self._set_model_status(f"No models {where}yet: build one from example images (Models ▸ Build a "
                                   "classifier…, Ctrl+B), choose 'Open a model file…', or copy model files "
                                   "(.zsmb) into the models folder (Settings).", None)
        elif self._predictor is None and self._loading is None:  # (not the combo's "Choose a model…" again)
            count = f"{len(files)} models" if len(files) != 1 else "One model"
            self._set_model_status(f"{count} in the models folder: choose the one built for these images (what "
                                   "each is for: Models ▸ Models and their cards…).", None)
        for path in files:
            card = peek_card(path)
            if card is None:
                self.model_combo.addItem(f"{path.name} (unreadable)", str(path))
                continue
            titles = class_titles(card)
            self.model_combo.addItem(f"{model_title(card, path)} ({len(titles)} classes)", str(path))
            self.model_combo.setItemData(self.model_combo.count() - 1, ", ".join(titles.values()),
                                         Qt.ItemDataRole.ToolTipRole)
        if self._predictor is not None and self.model_combo.findData(str(self._predictor.bundle.path)) < 0:
            self._add_model_item(self._predictor.bundle.path, self._predictor.bundle.card)
        self.model_combo.insertSeparator(self.model_combo.count())
        self.model_combo.addItem("Open a model file…", OPEN_FILE)
        index = self.model_combo.findData(chosen) if chosen not in (None, OPEN_FILE) else -1
        self.model_combo.setCurrentIndex(max(0, index))

    def _add_model_item(self, path: Path, card: dict[str, Any] | None) -> int:
        title = model_title(card or {}, path)
        at = max(1, self.model_combo.findData(OPEN_FILE) - 1) if self.model_combo.findData(OPEN_FILE) >= 0 else (
            self.model_combo.count())
        self.model_combo.insertItem(at, title, str(path))
        return at

    def _on_model_chosen(self, index: int) -> None:
        data = self.model_combo.itemData(index)
        if data == OPEN_FILE:
            start = str(self._site.resolved_models_folder())
            chosen, _ = QFileDialog.getOpenFileName(self, "Open a model file", start, "zsmed models (*.zsmb)")
            if chosen:
                self.load_bundle(Path(chosen))
            else:
                current = self._predictor.bundle.path if self._predictor else None
                self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(str(current)) if current else 0))
        elif data:
            self.load_bundle(Path(data))

    def load_bundle(self, path: Path) -> None:
        """Open and verify a model in a worker; a failure is shown here and leaves no model chosen."""
        path = Path(path)
        index = self.model_combo.findData(str(path))
        if index < 0:
            index = self._add_model_item(path, peek_card(path))
        self.model_combo.setCurrentIndex(index)
        self._predictor = None
        self._titles = {}
        self._hide_kind_warning()
        self._set_model_status(f"Checking {path.name}…", None)
        self._update_buttons()
        backend = self._site.backend
        sizes = max(1, len(self._study) or len(self._series) or 1)

        def make() -> Job[Predictor | str]:
            yield Progress(0, 1, f"checking {path.name}")
            try:
                require, keys = trust_settings()
                predictor = load_predictor(path, backend=backend, require_signature=require, trusted_keys=keys,
                                           n_images=sizes)
            except ZsmedError as exc:  # said in the panel's words: a "model file", not a "bundle"
                return f"{exc.path}: {plain_words(exc.reason)}" if exc.path else plain_words(exc.reason)
            yield Progress(1, 1, "")
            return predictor

        def done(predictor: Predictor | str) -> None:
            if isinstance(predictor, str):
                failed(predictor)
                return
            self._loading = None
            if self.model_combo.currentData() != str(path):
                return  # another model was chosen meanwhile
            self._predictor = predictor
            self._titles = class_titles(predictor.bundle.card)
            bundle = predictor.bundle
            signed = f"signed by key {bundle.signed_by}" if bundle.signed_by else (
                "signed (signature not checked: no trusted key set)" if bundle.signature_present else "not signed")
            site = f" · made at {bundle.card['site']}" if bundle.card.get("site") else ""
            kinds = card_input_kinds(bundle.card)
            built_on = f" Built on {describe_kinds(kinds)}." if kinds else ""
            self._set_model_status(
                f"Verified, {signed}{site}. Classes: {', '.join(self._titles.values())}.{built_on}"
                f" {checked_here(path, bundle.bundle_id)}", OK_COLOUR)
            self._update_buttons()

        def failed(message: str) -> None:
            self._loading = None
            if self.model_combo.currentData() == str(path):
                self._set_model_status(f"This model cannot be used: {message}", ERROR_COLOUR)
                self._update_buttons()

        self._loading = _Worker(make, on_progress=lambda *_: None, on_done=done, on_error=failed,
                                on_cancelled=lambda: failed("cancelled"))

    def _set_model_status(self, text: str, colour: str | None) -> None:
        theme.set_status(self.model_status, text, colour)

    @property
    def model_ready(self) -> bool:
        return self._predictor is not None

    def is_busy(self) -> bool:
        """A model loading, a run, or a write to the case log in flight."""
        return self._worker is not None or self._loading is not None or self._writer is not None

    # --- running --------------------------------------------------------------------------------
    def _scope_paths(self, scope: str) -> Sequence[Path]:
        """The paths a scope covers, as given to ``set_context`` (not copied)."""
        if scope == "image":
            return [self._current] if self._current is not None else []
        return self._series if scope == "series" else self._study

    def _paths_for(self, scope: str) -> list[Path]:
        return [Path(p) for p in self._scope_paths(scope)]

    def classify(self, scope: str, *, anyway: bool = False) -> None:
        """Run the model on ``scope``; unless ``anyway``, an image of a kind the model was not built on
        (its card's ``input_kinds``) first shows a warning with a Run anyway button instead."""
        if scope not in SCOPES:
            self._show_message(f"Unknown scope {scope!r}: use image, series or study.", ERROR_COLOUR)
            return
        if self._worker is not None:
            self._show_message("A classification is already running; wait for it or cancel it.", None)
            return
        predictor = self._predictor
        if predictor is None:
            self._show_message("Choose a model first.", None)
            return
        paths = self._paths_for(scope)
        if not paths:
            self._show_message("Open an image first." if scope == "image" else f"There is no {scope} open.", None)
            return
        if not anyway:
            warning = kind_mismatch(card_input_kinds(predictor.bundle.card),
                                    image_kind(self._current if self._current is not None else paths[0]))
            if warning is not None:
                self._pending_scope = scope
                self.kind_warning.setText(f"{warning} Run it anyway?")
                self.kind_box.show()
                return
        self._hide_kind_warning()
        site, frame, timeout = self._site, self._frame, self.worker_log_timeout
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"Classifying {len(paths)} image{'s' if len(paths) != 1 else ''}…")
        self.progress_box.show()
        self._clear_result()

        def progress(done: int, total: int, message: str) -> None:
            self.progress.setRange(0, total or 0)
            self.progress.setValue(done)
            self.progress.setFormat(f"{done} / {total} · {message}" if total else message or "…")

        def finished(outcome: Outcome) -> None:
            self._worker = None
            self.progress_box.hide()
            self._show_outcome(outcome)
            self._update_buttons()

        def failed(message: str) -> None:
            self._worker = None
            self.progress_box.hide()
            self._show_message(f"Could not classify: {message}", ERROR_COLOUR)
            self._update_buttons()

        def cancelled() -> None:
            self._worker = None
            self.progress_box.hide()
            self._show_message("Cancelled; nothing was recorded.", None)
            self._update_buttons()

        self._worker = _Worker(lambda: _classify_job(predictor, scope, paths, frame, site, timeout),
                               on_progress=progress, on_done=finished, on_error=failed, on_cancelled=cancelled)
        self._update_buttons()

    def run_anyway(self) -> None:
        """The reader's answer to the image-kind warning: run the run it held back."""
        scope = self._pending_scope
        self._hide_kind_warning()
        if scope is not None:
            self.classify(scope, anyway=True)

    def _hide_kind_warning(self) -> None:
        self._pending_scope = None
        self.kind_box.hide()

    def is_kind_warning_shown(self) -> bool:
        return not self.kind_box.isHidden()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self.progress.setFormat("Cancelling…")

    # --- showing --------------------------------------------------------------------------------
    def _clear_result(self) -> None:
        self.result_title.clear()
        self.top_label.clear()
        self._fill_bars({}, None)
        self.banner.hide()
        self.message.hide()
        self.table.setRowCount(0)
        self.table.hide()
        self.similar.clear()
        self._shown = []

    def _show_outcome(self, outcome: Outcome) -> None:
        batch = outcome.batch
        self._batches.append(batch)
        self._shown_batch = batch
        self._titles = class_titles(batch.predictor.bundle.card)
        self._last_ids = [r.log_id for r in batch.rows if r.log_id is not None]
        shown = [ShownRow("series", summary, [batch.rows[i] for i in indices])
                 for summary, indices in zip(outcome.series, outcome.members, strict=True)]
        shown.extend(ShownRow("image", r.prediction, [r]) for r in batch.rows)
        self._shown = shown
        self._fill_table(outcome.scope)
        if shown:
            self.table.selectRow(0)
            self._show_row(shown[0])
        self.similar.show_found(outcome.similar, self._titles)
        if batch.error is None and any(b.unwritten for b in self._batches):
            self._flush()  # the log takes results again: write what earlier runs left waiting
        else:
            self._update_log_status()
            self._prune()
        if self._last_ids:
            self.logged.emit(self._last_ids[-1])

    def _fill_table(self, scope: str) -> None:
        self.table.setRowCount(0)
        if scope == "image":
            self.table.hide()
            return
        self.table.setRowCount(len(self._shown))
        bold = QFont(self.table.font())
        bold.setBold(True)
        for i, row in enumerate(self._shown):
            p = row.prediction
            if row.kind == "series":
                used = (p.series or "").split(" ")[0]
                name = f"Series ({used} used)" if used else "Series"
            else:
                name = Path(p.source).name + (f" · frame {p.frame + 1}" if p.frame is not None else "")
            result, prob = _result_text(p, self._titles)
            items = [QTableWidgetItem(name), QTableWidgetItem(result), QTableWidgetItem(prob)]
            items[0].setToolTip(p.source)
            for item in items:
                if row.kind == "series":
                    item.setFont(bold)
                self.table.setItem(i, items.index(item), item)
        self.table.show()

    def _on_row_selected(self) -> None:
        row = self._selected()
        if row is not None:
            self._show_row(row)

    def _selected(self) -> ShownRow | None:
        if not self._shown:
            return None
        if self.table.isHidden():
            return self._shown[0]
        rows = self.table.selectionModel().selectedRows()
        index = rows[0].row() if rows else 0
        return self._shown[index] if 0 <= index < len(self._shown) else None

    def _show_row(self, row: ShownRow) -> None:
        p = row.prediction
        if row.kind == "series":
            self.result_title.setText(f"Series result ({p.series})")
        else:
            frame = f", frame {p.frame + 1}" if p.frame is not None else ""
            self.result_title.setText(f"{Path(p.source).name}{frame}")
        self.message.hide()
        if p.error:
            self.top_label.clear()
            self._fill_bars({}, None)
            self.banner.hide()
            self._show_message(f"This image could not be read: {p.error}", ERROR_COLOUR)
        elif p.abstain:
            self.top_label.clear()
            self._fill_bars({}, None)
            score = f"{p.ood_score:.2f}" if p.ood_score is not None else "not measurable"
            hint = ""
            if self._shown_batch is not None and all(r.prediction.abstain for r in self._shown_batch.rows):
                what = "these images" if len(self._shown_batch.rows) > 1 else "this image"
                hint = (f"<br>Is this the right model for {what}? It was built for: "
                        f"{html.escape(', '.join(self._titles.values()))}.")
            self.banner.setText(
                f"<b>{NO_RESULT_TITLE}</b><br>Difference from the model's images: {score} "
                f"(the model gives a result up to 1.00).{hint}"
            )
            self.banner.show()
        else:
            self.banner.hide()
            top = p.probabilities.get(p.label or "", 0.0)
            title = self._titles.get(p.label or "", p.label)
            self.top_label.setText(f"{title}  {top:.0%}")
            self._fill_bars(p.probabilities, p.label)
            batch = self._shown_batch
            if batch is not None and p.label in described_classes(batch.predictor.bundle.card):
                self.message.setText(f"The model knows {title} from its description alone, not from example "
                                     "images: a weak result. Read the image without relying on it.")
                self.message.setStyleSheet(f"color: {theme.accent('warning')};")
                self.message.show()
        self._update_buttons()

    def _fill_bars(self, probabilities: dict[str, float], top: str | None) -> None:
        while self.bars_layout.count():
            item = self.bars_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.hide()
                widget.setParent(None)
                widget.deleteLater()
        ordered = sorted(probabilities.items(), key=lambda kv: -kv[1])
        for i, (name, value) in enumerate(ordered):
            label = QLabel(self._titles.get(name, name))
            label.setToolTip(name)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(value * 1000))
            bar.setTextVisible(False)  # the percentage stands beside the bar, not squeezed into its corner
            bar.setFixedHeight(max(12, label.fontMetrics().height() - 2))
            bar.setMinimumWidth(40)  # the bar gives way before the class name does
            bar.setStyleSheet(TOP_BAR_STYLE if name == top else OTHER_BAR_STYLE)
            bar.setObjectName(f"bar_{name}")
            percent = QLabel(f"{value:.0%}")
            percent.setObjectName(f"percent_{name}")
            percent.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            percent.setMinimumWidth(percent.fontMetrics().horizontalAdvance("100%") + 4)
            if name == top:
                percent.setStyleSheet("font-weight: bold;")
            self.bars_layout.addWidget(label, i, 0)
            self.bars_layout.addWidget(bar, i, 1)
            self.bars_layout.addWidget(percent, i, 2)
        self.bars.setVisible(bool(ordered))

    def _show_message(self, text: str, colour: str | None) -> None:
        theme.set_status(self.message, text, colour)
        self.message.show()

    # --- for tests and the main window ------------------------------------------------------------
    def result_label(self) -> str | None:
        """The class shown as the result (the selected row's), None when there is none."""
        row = self._selected()
        return None if row is None or row.prediction.abstain else row.prediction.label

    def bar_values(self) -> dict[str, float]:
        """The bars on screen, top first: class name -> probability shown."""
        bars = [w for w in self.bars.findChildren(QProgressBar) if w.parent() is self.bars]
        return {b.objectName().removeprefix("bar_"): b.value() / 1000 for b in bars if not self.bars.isHidden()}

    def is_abstain_banner_shown(self) -> bool:
        return not self.banner.isHidden()

    def last_prediction_ids(self) -> list[int]:
        return list(self._last_ids)

    def pending_count(self) -> int:
        """Results and reviews not yet in the case log."""
        return sum(1 for b in self._batches for r in b.rows if r.log_id is None or r.pending_review is not None)

    # --- review -----------------------------------------------------------------------------------
    def confirm(self) -> None:
        row = self._selected()
        if row is None:
            return
        label = row.prediction.label
        if row.prediction.abstain or not label:
            self._set_log_status("There is no result to confirm; use Correct to record the right class.", None)
            return
        self._review(row, label, self.comment.text().strip())

    def correct(self, label: str | None = None, comment: str = "") -> None:
        row = self._selected()
        if row is None:
            return
        class_names = self._class_names_of(row)
        if label is None:
            dialog = CorrectDialog(class_names, self._titles, row.prediction.label,
                                   comment or self.comment.text().strip(), self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            label, comment = dialog.choice()
        if label not in class_names:
            self._set_log_status(f"'{label}' is not one of this model's classes ({', '.join(class_names)}).",
                                 ERROR_COLOUR)
            return
        self._review(row, label, comment or self.comment.text().strip())

    def _batch_of(self, row: ShownRow) -> Batch | None:
        return next((b for b in self._batches if row.images and row.images[0] in b.rows), None)

    def _class_names_of(self, row: ShownRow) -> list[str]:
        batch = self._batch_of(row)
        if batch is not None:
            return batch.predictor.class_names
        return self._predictor.class_names if self._predictor is not None else []

    def _review(self, row: ShownRow, truth: str, comment: str) -> None:
        """The reader's class for ``row``: each image (a series: each image it used) is confirmed
        where its own result is ``truth`` and corrected to ``truth`` elsewhere."""
        targets = [r for r in row.images
                   if not r.prediction.error and (row.kind == "image" or not r.prediction.abstain)]
        if not targets:
            self._set_log_status("This image could not be read: there is nothing to review." if row.kind == "image"
                                 else "No image of this series gave a result; review the images one by one.", None)
            return
        for image in targets:
            agree = image.prediction.label == truth and not image.prediction.abstain
            image.pending_review = {"confirm": agree, "correct_to": None if agree else truth, "comment": comment,
                                    "reader": self._site.reader}
            image.review = {"verdict": "confirmed" if agree else "corrected", "label": truth,
                            "reader": self._site.reader, "comment": comment,
                            "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.comment.clear()
        verdict = "Confirmed" if row.prediction.label == truth and not row.prediction.abstain else (
            f"Corrected to {self._titles.get(truth, truth)}")
        self._flush(done_text=f"{verdict} by {self._site.reader}")

    def _flush(self, done_text: str = "") -> None:
        """Write every pending result and review in a worker (one write at a time; what arrives
        meanwhile goes in the next). Whatever the log refuses stays here, and the panel says so."""
        if done_text:
            self._flush_text = done_text
        if self._writer is not None:
            self._flush_again = True
            return
        tasks = []
        for batch in self._batches:
            record = [r for r in batch.rows if r.log_id is None]
            reviews = [(r, r.pending_review) for r in batch.rows if r.pending_review is not None]
            for row, _ in reviews:
                row.pending_review = None
            if record or reviews:
                tasks.append(WriteTask(batch, record, reviews))
        if not tasks:
            return
        self._set_log_status("Saving to the case log…", None)
        site, timeout = self._site, self.review_log_timeout

        def finish(results: list[WriteResult]) -> None:
            self._writer = None
            last: int | None = None
            for task, result in zip(tasks, results, strict=True):
                for row, log_id in zip(task.record, result.ids, strict=False):
                    row.log_id = log_id
                for row, review in task.reviews[result.reviews_done:]:
                    if row.pending_review is None:  # a newer review from the reader wins
                        row.pending_review = review
                task.batch.error = result.error
                last = result.last_id if result.last_id is not None else last
            if self._shown_batch is not None:
                self._last_ids = [r.log_id for r in self._shown_batch.rows if r.log_id is not None]
            if self.pending_count():
                self._update_log_status()
            else:
                text = self._flush_text
                self._set_log_status(f"{text} — saved in the case log." if text else "Saved in the case log.",
                                     OK_COLOUR)
                self.pending_box.hide()
            self._flush_text = ""
            self._prune()
            self._update_buttons()
            if last is not None:
                self.logged.emit(last)
            if self._flush_again:
                self._flush_again = False
                self._flush()

        def failed(message: str) -> None:
            finish([WriteResult([], 0, None, message) for _ in tasks])

        self._writer = _Worker(lambda: write_job(tasks, site, timeout), on_progress=lambda *_: None,
                               on_done=finish, on_error=failed, on_cancelled=lambda: failed("cancelled"))

    def _prune(self) -> None:
        """Forget runs that are written and no longer on screen."""
        self._batches = [b for b in self._batches if b.unwritten or b is self._shown_batch]

    def retry_pending(self) -> None:
        self._flush()

    def _update_log_status(self) -> None:
        pending = self.pending_count()
        if pending:
            reasons = [b.error for b in self._batches if b.error]
            reason = reasons[-1] if reasons else "the case log is not available"
            self._set_log_status(
                f"The case log could not be written ({reason}). {pending} result"
                f"{'s are' if pending != 1 else ' is'} kept here until it can: Retry, or save them to a file.",
                ERROR_COLOUR,
            )
            self.pending_box.show()
        else:
            n = len(self._last_ids)
            self._set_log_status(f"Recorded in the case log ({n} result{'s' if n != 1 else ''}), by "
                                 f"{self._site.reader}." if n else "", OK_COLOUR)
            self.pending_box.hide()

    def _set_log_status(self, text: str, colour: str | None) -> None:
        theme.set_status(self.log_status, text, colour)

    def save_pending(self, path: Path) -> Path:
        """Everything not yet in the case log, as JSON (results, readers, reviews)."""
        records = []
        for batch in self._batches:
            bundle = batch.predictor.bundle
            for row in batch.rows:
                if row.log_id is not None and row.pending_review is None:
                    continue
                records.append({
                    "model": model_title(bundle.card, bundle.path), "model_file": str(bundle.path),
                    "model_id": bundle.bundle_id, "reader": batch.reader, "case_log_id": row.log_id,
                    "prediction": row.prediction.to_dict(), "review": row.pending_review,
                })
        path = Path(path)
        path.write_text(json.dumps({"unsaved_case_log_records": records}, indent=2) + "\n", encoding="utf-8")
        return path

    def pending_reason(self) -> str:
        """Why the case log did not take the results waiting here (the last refusal)."""
        reasons = [b.error for b in self._batches if b.error]
        return reasons[-1] if reasons else "The case log is not available."

    def _ask_save_pending(self) -> None:
        self.ask_save_pending()

    def ask_save_pending(self) -> Path | None:
        """Ask for a file and save what the case log has not taken; the path, or None (cancelled or
        not writable: said in the panel)."""
        chosen, _ = QFileDialog.getSaveFileName(self, "Save the results not yet in the case log",
                                                "zsmed-unsaved-results.json", "JSON (*.json)")
        if not chosen:
            return None
        try:
            saved = self.save_pending(Path(chosen))
        except OSError as exc:
            self._set_log_status(f"{chosen}: could not be saved ({exc.strerror or exc}).", ERROR_COLOUR)
            return None
        self._set_log_status(f"Saved to {chosen}; they also stay here until the case log takes them.", None)
        return saved

    # --- DICOM SR -----------------------------------------------------------------------------------
    def write_sr(self, out_dir: Path | None = None) -> Path | None:
        """The selected result as a DICOM SR next to its image (``out_dir`` None) or in ``out_dir``."""
        row = self._selected()
        if row is None or row.kind != "image" or self._predictor is None:
            self._set_log_status("Choose one image's result to save as a DICOM SR.", None)
            return None
        p = row.prediction
        batch = self._batch_of(row)
        bundle = batch.predictor.bundle if batch else self._predictor.bundle
        try:
            from zsmed.report.sr import ReaderReview, model_identity, write_result_sr

            reviewed = row.images[0].review if row.images else None
            written = write_result_sr(
                Path(p.source), probabilities=p.probabilities, label=p.label, abstain=p.abstain,
                ood_score=p.ood_score, model=model_identity(bundle),
                out_dir=out_dir if out_dir is not None else Path(p.source).parent, frame=p.frame,
                review=ReaderReview(**reviewed) if reviewed else None,
            )
        except ImportError:
            self._set_log_status("DICOM SR writing is not available in this version.", ERROR_COLOUR)
            return None
        except (ZsmedError, OSError) as exc:
            self._set_log_status(f"The DICOM SR could not be written: {exc}", ERROR_COLOUR)
            return None
        self._set_log_status(f"DICOM SR written: {written}", OK_COLOUR)
        self.sr_saved.emit(Path(written))
        return Path(written)

    # --- state ----------------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        idle = self._worker is None
        ready = self._predictor is not None and idle
        for scope, button in self.run_buttons.items():
            button.setEnabled(ready and len(self._scope_paths(scope)) > 0)
        row = self._selected()
        has_row = row is not None and idle
        self.confirm_button.setEnabled(has_row and row is not None and not row.prediction.abstain)
        self.correct_button.setEnabled(has_row and row is not None and not row.prediction.error)
        dicom = row is not None and row.kind == "image" and not is_photo(Path(row.prediction.source))
        self.sr_button.setEnabled(has_row and dicom and not (row is not None and row.prediction.error))
        self.comment.setEnabled(has_row)


def ask_sr_folder(parent: QWidget) -> Path | None:
    """The folder the reader picks for a DICOM SR; None when they cancel."""
    folder = QFileDialog.getExistingDirectory(parent, "Folder for the DICOM SR")
    return Path(folder) if folder else None


def sr_destination_menu(parent: QWidget, write: Callable[[Path | None], object]) -> QMenu:
    """Where a DICOM SR goes: next to the study (``write(None)``: its image's folder) or in a folder the
    reader picks (``write(folder)``). Save as DICOM SR here and the window's Save measurements as DICOM
    SR offer the same choice, so the reader meets one way of sending reports to the PACS."""
    menu = QMenu(parent)
    menu.addAction("Next to the study", lambda: write(None))

    def to_folder() -> None:
        folder = ask_sr_folder(parent)
        if folder is not None:
            write(folder)

    menu.addAction("To a folder…", to_folder)
    return menu


def _result_text(p: Prediction, titles: dict[str, str]) -> tuple[str, str]:
    if p.error:
        return "Could not be read", ""
    if p.abstain or not p.label:
        return "No result", ""
    return titles.get(p.label, p.label), f"{p.probabilities.get(p.label, 0.0):.0%}"
