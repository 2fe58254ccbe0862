"""Check a model on labelled cases (Models ▸ Check a model on labelled cases…).

The reader picks a folder with one subfolder of images per class, named as the model's classes;
the core's ``check_job`` runs the model on every image in the app's worker (progress, Cancel), and
the window shows what a reader asks of a test: how many it got right with a 95 % interval, each
class's sensitivity and positive predictive value, the confusion table (with the gate's "no result"
and unreadable files as columns of their own) and every image it did not give its class —
double-click one to see it in the viewer. The summary (figures only, no file names) is kept
beside the model so its card says how it did at this site; "Save the report…" writes everything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from zsmed.errors import ZsmedError
from zsmed.progress import Job, Progress
from zsmed.runtime.check import (
    NO_RESULT,
    UNREADABLE,
    CheckReport,
    check_job,
    labelled_cases,
    proportion_text,
    record_check,
    report_html,
)
from zsmed_desktop import theme
from zsmed_desktop.browser import thumbnail_job, thumbnail_pixmap, without_paths
from zsmed_desktop.classify_panel import class_titles, model_title, peek_card, plain_words, trust_settings
from zsmed_desktop.workers import start_job

PATH_ROLE = Qt.ItemDataRole.UserRole
WRONG_THUMB = 56  # px: enough to tell a lesion or a film apart at a glance
# Cell tints of the confusion table: right answers and wrong ones, readable on both themes.
RIGHT_TINT, WRONG_TINT, NO_RESULT_TINT = QColor(102, 187, 106, 70), QColor(239, 83, 80, 70), QColor(224, 160, 48, 60)
HOW_TO_READ = (
    "<p><b>How to read this</b></p>"
    "<p>A <b>case</b> is a photograph, or a DICOM series (its images' answers combined, as for a patient).</p>"
    "<p><b>Sensitivity</b>: of the cases of a class that got an answer, the share the model gave that class. "
    "<b>Positive predictive value</b>: of the cases the model gave a class, the share that were of it. "
    "The range after each figure is its 95 % confidence interval: with few cases it is wide, and the true "
    "figure may lie anywhere in it.</p>"
    "<p><b>No result</b>: the model judged the case unlike the images it was built on and gave no answer, "
    "as it would for a patient. <b>Unreadable</b>: the file could not be read as an image.</p>"
    "<p>A check is only as good as its cases: use cases whose diagnosis is confirmed, from patients the model "
    "was not built from, in the proportions seen in practice.</p>"
)


def run_check(model: Path, folder: Path, backend: str = "auto", keep: bool = True) -> Job[CheckReport]:
    """The check as one job: open the model with the site's trust settings, find the labelled
    images, run them, and keep the summary beside the model (a model on a read-only share is still
    checked; the report then says it was not kept)."""
    from zsmed.runtime.predict import load_predictor

    yield Progress(0, None, "opening the model")
    require, keys = trust_settings()
    predictor = load_predictor(model, backend=backend, require_signature=require, trusted_keys=keys)
    check_set = labelled_cases(folder, predictor.class_names)
    report = yield from check_job(predictor, check_set, model=model_title(predictor.bundle.card, model))
    if keep:
        try:
            record_check(model, report)
        except ZsmedError as exc:
            report.notes.append(f"the summary could not be kept with the model ({exc.reason})")
    return report


class CheckDialog(QDialog):
    """One model, checked on one labelled folder at a time."""

    show_requested = Signal(object)  # a Path to show in the viewer
    checked = Signal(object)  # the model's Path, once a check is kept

    def __init__(self, model: Path, backend: str = "auto", parent: QWidget | None = None, site_name: str = "") -> None:
        super().__init__(parent)
        self.model = Path(model)
        self.backend = backend
        self.site_name = site_name
        self.report: CheckReport | None = None
        self._worker: Any = None
        card = peek_card(self.model) or {}
        self.titles = class_titles(card) if card else {}
        name = model_title(card, self.model) if card else self.model.stem
        self.setWindowTitle(f"Check '{name}' on labelled cases")
        folders = ", ".join(f"'{c}'" for c in card.get("class_names", [])) if card else ""
        intro = QLabel(f"Choose a folder with one subfolder of images per class, named as the model's classes"
                       f"{f' ({folders})' if folders else ''}. Use cases the model was not built from: its own "
                       "examples make the result look better than it is.")
        intro.setWordWrap(True)
        self.choose_button = QPushButton("Choose a folder…")
        self.choose_button.clicked.connect(self.ask_folder)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.progress = QProgressBar()
        self.progress.hide()
        top = QHBoxLayout()
        top.addWidget(intro, 1)
        top.addWidget(self.choose_button)
        self.heading = QLabel(f"<h3>Check of '{name}' on labelled cases</h3>")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("font-size: 14px;")
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.per_class = self._table(["Class", "Cases", "Sensitivity (95 % CI)",
                                      "Positive predictive value (95 % CI)"])
        self.confusion = self._table([])
        self.wrong = self._table(["Case", "True class", "The model said", "Confidence"])
        self.wrong.itemDoubleClicked.connect(self._show_wrong)
        self.wrong.setIconSize(QSize(WRONG_THUMB, WRONG_THUMB))
        self.wrong.verticalHeader().setDefaultSectionSize(WRONG_THUMB + 6)
        # Class names can be long ("Actinic keratosis / Bowen's disease"): the two class columns share
        # the width and wrap onto a second line (the rows are a thumbnail tall), so the confidence
        # stays in view without a sideways scroll.
        wrong_header = self.wrong.horizontalHeader()
        wrong_header.setStretchLastSection(False)
        for column in (1, 2):
            wrong_header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        self.wrong.setWordWrap(True)
        self._thumbs: Any = None
        self.wrong.setToolTip("Double-click an image to see it in the viewer")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("<b>Each class</b>"))
        left_layout.addWidget(self.per_class)
        left_layout.addWidget(QLabel("<b>True class (rows) and the model's answer (columns)</b>"))
        left_layout.addWidget(self.confusion)
        help_text = QLabel(HOW_TO_READ)
        help_text.setWordWrap(True)
        help_text.setAlignment(Qt.AlignmentFlag.AlignTop)
        help_text.setStyleSheet(f"color: {theme.accent('muted')};")
        left_layout.addWidget(help_text, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self.wrong_title = QLabel("<b>Not given their class</b>")
        right_layout.addWidget(self.wrong_title)
        right_layout.addWidget(self.wrong, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([560, 440])
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.save_button = QPushButton("Save the report…")
        self.save_button.setToolTip("A page to print or file (HTML), or every image and its answer as JSON; "
                                    "both name the image files")
        self.save_button.clicked.connect(self.ask_save)
        self.save_button.setEnabled(False)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.progress)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.save_button)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.notes)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)
        self.resize(1060, 660)
        self._show_empty()

    @staticmethod
    def _table(headers: Sequence[str]) -> QTableWidget:
        table = QTableWidget(0, len(headers))
        table.setHorizontalHeaderLabels(list(headers))
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(bool(headers))
        return table

    @staticmethod
    def _fit_height(table: QTableWidget) -> None:
        """As tall as its rows (a few classes): the space below goes to the notes on reading it."""
        height = table.horizontalHeader().height() + 2 * table.frameWidth()
        height += sum(table.rowHeight(r) for r in range(table.rowCount()))
        if table.horizontalScrollBar().isVisible():
            height += table.horizontalScrollBar().height()
        table.setFixedHeight(min(max(height, 60), 320))

    def _title(self, name: str) -> str:
        return self.titles.get(name, name)

    def _show_empty(self) -> None:
        self.summary.setText("Not checked yet: choose a folder of labelled cases.")
        for table in (self.per_class, self.confusion, self.wrong):
            table.setRowCount(0)
        self.confusion.setColumnCount(0)
        self.per_class.setFixedHeight(60)
        self.confusion.setFixedHeight(60)

    # --- running ---------------------------------------------------------------------------------
    def ask_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder of labelled cases (one subfolder per class)")
        if chosen:
            self.start(Path(chosen))

    def start(self, folder: Path) -> Any:
        """Check the model on ``folder`` in the worker; returns the worker."""
        if self._worker is not None:
            return self._worker
        self.report = None
        self._show_empty()
        self.notes.setText("")
        self.save_button.setEnabled(False)
        self.choose_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self._say(f"Checking on '{folder.name}'…", None)
        model, backend = self.model, self.backend
        self._worker = start_job(lambda: run_check(model, folder, backend), on_progress=self._on_progress,
                                 on_done=self._on_done, on_error=self._on_failed, on_cancelled=self._on_cancelled,
                                 owner=self)
        return self._worker

    def _on_progress(self, step: Progress) -> None:
        if step.total:
            self.progress.setRange(0, step.total)
            self.progress.setValue(step.done)

    def _finish(self) -> None:
        self._worker = None
        self.progress.hide()
        self.cancel_button.hide()
        self.choose_button.setEnabled(True)

    def _on_failed(self, message: str) -> None:
        self._finish()
        self._say(f"Not checked: {without_paths(plain_words(message))}", theme.ERROR_COLOUR)

    def _on_cancelled(self) -> None:
        self._finish()
        self._say("Cancelled: nothing was kept.", None)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()

    def is_running(self) -> bool:
        return self._worker is not None

    def _on_done(self, report: CheckReport) -> None:
        self._finish()
        self.report = report
        self.show_report(report)
        self.save_button.setEnabled(True)
        kept = not any(note.startswith("the summary could not be kept") for note in report.notes)
        self._say("Kept with the model: its card now says how it did on these cases." if kept
                  else "Checked; the summary could not be kept with the model (see above).",
                  theme.OK_COLOUR if kept else None)
        if kept:
            self.checked.emit(self.model)

    # --- the report ------------------------------------------------------------------------------
    def show_report(self, report: CheckReport) -> None:
        text = report.summary_line()
        if report.answered:
            auc = report.auc
            text += f" Balanced accuracy {100 * report.balanced_accuracy:.0f} %"
            text += "." if math.isnan(auc) else f", ROC AUC {auc:.2f}."
        self.summary.setText(text)
        self.notes.setText("; ".join(report.notes).capitalize() + "." if report.notes else "")
        rows = report.per_class()
        self.per_class.setRowCount(len(rows))
        for r, row in enumerate(rows):
            cells = [self._title(row.name), str(row.cases),
                     proportion_text(row.correct, row.answered), proportion_text(row.correct, row.predicted)]
            for c, value in enumerate(cells):
                item = QTableWidgetItem(value)
                if c == 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.per_class.setItem(r, c, item)
        self.per_class.setToolTip("Sensitivity: of the images of the class that got an answer, how many were given "
                                  "it. Positive predictive value: of the images given the class, how many were of it.")
        self._show_confusion(report)
        self._show_wrong_cases(report)
        self._fit_height(self.per_class)
        self._fit_height(self.confusion)

    def _show_confusion(self, report: CheckReport) -> None:
        columns = [*report.classes, NO_RESULT, UNREADABLE]
        table = report.confusion()
        # the two extra columns only where something fell in them
        columns = [c for c in columns if c in report.classes or any(row[c] for row in table.values())]
        self.confusion.setColumnCount(len(columns) + 1)
        self.confusion.setHorizontalHeaderLabels(["", *[self._title(c).capitalize() if c in (NO_RESULT, UNREADABLE)
                                                        else self._title(c) for c in columns]])
        self.confusion.setRowCount(len(report.classes))
        for r, truth in enumerate(report.classes):
            head = QTableWidgetItem(self._title(truth))
            head.setFont(self.confusion.horizontalHeader().font())
            self.confusion.setItem(r, 0, head)
            for c, answer in enumerate(columns, start=1):
                count = table[truth][answer]
                item = QTableWidgetItem(str(count))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if count and answer == truth:
                    item.setBackground(QBrush(RIGHT_TINT))
                elif count and answer in (NO_RESULT, UNREADABLE):
                    item.setBackground(QBrush(NO_RESULT_TINT))
                elif count:
                    item.setBackground(QBrush(WRONG_TINT))
                self.confusion.setItem(r, c, item)

    def _show_wrong_cases(self, report: CheckReport) -> None:
        wrong = report.wrong_cases()
        self.wrong_title.setText(f"<b>Not given their class ({len(wrong)})</b>" if wrong
                                 else "<b>Every image was given its class</b>")
        self.wrong.setRowCount(len(wrong))
        for r, case in enumerate(wrong):
            if case.outcome == UNREADABLE:
                said = f"unreadable: {without_paths(case.error or '')}"
            elif case.outcome == NO_RESULT:
                said = "no result (unlike the model's images)"
            else:
                said = self._title(case.outcome)
            cells = [case.name, self._title(case.truth), said,
                     "" if case.confidence is None else f"{100 * case.confidence:.0f} %"]
            for c, value in enumerate(cells):
                item = QTableWidgetItem(value)
                item.setData(PATH_ROLE, str(case.path))
                if c == 0:
                    item.setToolTip(f"{case.path.parent.name}/{case.path.name}")
                self.wrong.setItem(r, c, item)
        self._load_thumbnails(wrong)

    @staticmethod
    def _cells(table: QTableWidget) -> list[list[str]]:
        return [[(item.text() if (item := table.item(r, c)) is not None else "") for c in range(table.columnCount())]
                for r in range(table.rowCount())]

    def _load_thumbnails(self, wrong: Sequence[Any]) -> None:
        wanted = [(str(r), str(case.path)) for r, case in enumerate(wrong) if case.outcome != UNREADABLE]
        if self._thumbs is not None:
            self._thumbs.quit()
        if not wanted:
            return

        def deliver(result: tuple[str, Any]) -> None:
            key, image = result
            item = self.wrong.item(int(key), 0)
            if image is not None and item is not None:
                item.setIcon(QIcon(thumbnail_pixmap(image, WRONG_THUMB)))

        make: Any = lambda: thumbnail_job(wanted, 2 * WRONG_THUMB)  # noqa: E731 (yields thumbnails, not Progress)
        self._thumbs = start_job(make, on_progress=deliver, on_done=lambda *_: self._thumbs_done(),
                                 on_error=lambda *_: self._thumbs_done(), owner=self)

    def _thumbs_done(self) -> None:
        self._thumbs = None

    def thumbnails_done(self) -> bool:
        return self._thumbs is None

    def thumbnail_count(self) -> int:
        return sum(1 for r in range(self.wrong.rowCount())
                   if (item := self.wrong.item(r, 0)) is not None and not item.icon().isNull())

    def wrong_names(self) -> list[str]:
        return [row[0] for row in self._cells(self.wrong)]

    def confusion_cells(self) -> list[list[str]]:
        return self._cells(self.confusion)

    def class_rows(self) -> list[list[str]]:
        return self._cells(self.per_class)

    def _show_wrong(self, item: QTableWidgetItem) -> None:
        self.show_requested.emit(Path(item.data(PATH_ROLE)))

    # --- saving ----------------------------------------------------------------------------------
    def ask_save(self) -> None:
        if self.report is None:
            return
        chosen, kind = QFileDialog.getSaveFileName(
            self, "Save the check's report", f"{self.model.stem} check.html",
            "Report to print or file (*.html);;Every image, for software (*.json)")
        if chosen:
            target = Path(chosen)
            if target.suffix.lower() not in (".html", ".htm", ".json"):
                target = target.with_name(target.name + (".json" if "json" in kind else ".html"))
            self.save(target)

    def save(self, target: Path) -> bool:
        if self.report is None:
            return False
        if target.suffix.lower() == ".json":
            text = json.dumps(self.report.to_dict(), indent=2) + "\n"
        else:
            text = report_html(self.report, self.site_name)
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            self._say(f"Not saved: {target.name}: {exc.strerror or exc}", theme.ERROR_COLOUR)
            return False
        self._say(f"Report saved as {target.name}.", theme.OK_COLOUR)
        return True

    def _say(self, text: str, colour: str | None) -> None:
        theme.set_status(self.status, text, colour)

    def closeEvent(self, event: Any) -> None:
        self.cancel()
        if self._thumbs is not None:
            self._thumbs.quit()
        super().closeEvent(event)


__all__ = ["CheckDialog", "run_check"]
