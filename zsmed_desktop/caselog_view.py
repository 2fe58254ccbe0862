"""The case-log screen: every result with the reader's verdict (filters, paging as the table
scrolls), review from the table, per-model statistics with a chart by month, the audit-trail
check and CSV export.

Reads are small pages on the GUI thread; checking the audit trail reads the whole log, so it runs
in a worker on a connection of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QDate, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from zsmed.errors import ZsmedError
from zsmed.progress import Job, Progress
from zsmed.site import SiteConfig
from zsmed.store import CaseLog, ModelStats, PredictionRecord, VerifyResult, open_case_log
from zsmed.store.caselog import ABSTAIN
from zsmed_desktop import theme
from zsmed_desktop.charts import MonthlyChart
from zsmed_desktop.classify_panel import ERROR_COLOUR, OK_COLOUR, CorrectDialog, class_titles
from zsmed_desktop.settings_dialog import readable_path
from zsmed_desktop.workers import start_job

PAGE = 200
REVIEW_CHOICES = (("all", "All results"), ("unreviewed", "Not yet reviewed"), ("reviewed", "Reviewed"))
COLUMNS = ("#", "Time", "Model", "Image", "Result", "Probability", "Reader's verdict", "Reader", "Comment",
           "Recorded by")
_IndexLike = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class Filters:
    model: str | None = None
    since: date | None = None
    until: date | None = None
    review: str = "all"  # all | unreviewed | reviewed
    abstained: bool = False

    def store_args(self) -> dict[str, Any]:
        """What ``CaseLog.list_predictions`` / ``export_csv`` filter on themselves."""
        reviewed = {"reviewed": True, "unreviewed": False}.get(self.review)
        return {"model": self.model, "since": self.since, "until": self.until, "reviewed": reviewed,
                "abstained": self.abstained}


def fetch_page(log: CaseLog, filters: Filters, offset: int, limit: int) -> tuple[list[PredictionRecord], int]:
    """Up to ``limit`` records (newest first) from ``offset``, and the offset to continue from."""
    records = log.list_predictions(**filters.store_args(), limit=limit, offset=offset, newest_first=True)
    return records, offset + len(records)


def local_time(iso: str) -> str:
    """The log's UTC time as this computer's local time, to the minute."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso[:16].replace("T", " ")


def labelled_reviews(stats: ModelStats) -> int:
    """Reviewed results that had a class (the base of the agreement; a 'no result' has none)."""
    return sum(n for model_label, row in stats.confusion.items() if model_label != ABSTAIN for n in row.values())


def result_text(record: PredictionRecord, titles: dict[str, str]) -> str:
    if record.error:
        return "Could not be read"
    if record.abstain or not record.label:
        return "No result"
    return titles.get(record.label, record.label)


def verdict_text(record: PredictionRecord, titles: dict[str, str]) -> str:
    review = record.review
    if review is None:
        return ""
    if review.verdict == "confirmed":
        return "Confirmed"
    return f"Corrected to {titles.get(review.label, review.label)}"


class PredictionTableModel(QAbstractTableModel):
    """Case-log records, fetched a page at a time as the view scrolls."""

    # A later page could not be read (a row damaged on disk): the view says why; the rows so far stay.
    fetch_failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._records: list[PredictionRecord] = []
        self._next_offset = 0
        self._more = False
        self._fetch: Callable[[int, int], tuple[list[PredictionRecord], int]] | None = None
        self.titles: dict[str, dict[str, str]] = {}  # model sha256 -> class -> readable name

    def reset(self, fetch: Callable[[int, int], tuple[list[PredictionRecord], int]] | None) -> None:
        records: list[PredictionRecord] = []
        next_offset = 0
        if fetch is not None:
            records, next_offset = fetch(0, PAGE)  # may raise: the model is left as it was
        self.beginResetModel()
        self._fetch = fetch
        self._records, self._next_offset, self._more = records, next_offset, len(records) == PAGE
        self.endResetModel()

    def rowCount(self, parent: _IndexLike = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: _IndexLike = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def canFetchMore(self, parent: _IndexLike) -> bool:
        return not parent.isValid() and self._more and self._fetch is not None

    def fetchMore(self, parent: _IndexLike) -> None:
        if parent.isValid() or self._fetch is None or not self._more:
            return
        try:
            records, next_offset = self._fetch(self._next_offset, PAGE)
        except ZsmedError as exc:  # called by the view as it scrolls: no caller to raise to
            self._more = False
            self.fetch_failed.emit(str(exc))
            return
        self._more = len(records) == PAGE
        self._next_offset = next_offset
        if records:
            start = len(self._records)
            self.beginInsertRows(QModelIndex(), start, start + len(records) - 1)
            self._records.extend(records)
            self.endInsertRows()

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def record(self, row: int) -> PredictionRecord:
        return self._records[row]

    def replace(self, row: int, record: PredictionRecord) -> None:
        self._records[row] = record
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def data(self, index: _IndexLike, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._records):
            return None
        record = self._records[index.row()]
        titles = self.titles.get(record.model_sha256, {})
        column = index.column()
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == 3:
                return record.source or ""
            if column == 4 and record.abstain and not record.error and record.ood_score is not None:
                return f"Not like the images this model was built on ({record.ood_score:.2f}; the limit is 1.00)"
            if column == 4 and record.error:
                return record.error
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (0, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if column == 0:
            return str(record.id)
        if column == 1:
            return local_time(record.time)
        if column == 2:
            return record.model_name
        if column == 3:
            name = Path(record.source).name if record.source else (record.sop_uid or "")
            return name + (f" · frame {record.frame + 1}" if record.frame is not None else "")
        if column == 4:
            return result_text(record, titles)
        if column == 5:
            if record.error or record.abstain or not record.label:
                return ""
            return f"{record.probabilities.get(record.label, 0.0):.0%}"
        if column == 6:
            return verdict_text(record, titles)
        if column == 7:
            return record.review.reader if record.review else ""
        if column == 8:
            return record.review.comment if record.review else ""
        if column == 9:
            return record.user or ""
        return None


class CaseLogView(QWidget):
    reviewed = Signal(int)  # a prediction id after a review from this screen
    exported = Signal(int)  # rows written by a CSV export
    export_failed = Signal(str)

    def __init__(self, site: SiteConfig | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._site = site or SiteConfig()
        self._log: CaseLog | None = None
        self._verify_runner: Any = None  # a running audit-trail check (superqt worker)
        self.filters = Filters()
        self.last_verify: VerifyResult | None = None
        self._searcher: Any = None  # workers in flight (superqt)
        self._exporter: Any = None
        self._generation = 0
        self._stats_stale = True
        self._first_seen: dict[str, str] = {}

        # filters
        self.model_filter = QComboBox()
        self.model_filter.setMinimumContentsLength(10)
        self.model_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.since_check = QCheckBox("From")
        self.since_edit = QDateEdit(QDate.currentDate().addMonths(-1))
        self.until_check = QCheckBox("to")
        self.until_edit = QDateEdit(QDate.currentDate())
        for edit in (self.since_edit, self.until_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.review_filter = QComboBox()
        for key, text in REVIEW_CHOICES:
            self.review_filter.addItem(text, key)
        self.no_result_check = QCheckBox("Only 'no result'")
        for signal in (self.model_filter.activated, self.review_filter.activated, self.since_check.toggled,
                       self.until_check.toggled, self.no_result_check.toggled, self.since_edit.dateChanged,
                       self.until_edit.dateChanged):
            signal.connect(self._filters_changed)
        filter_row = QHBoxLayout()
        filter_row.addWidget(QLabel("Model"))
        filter_row.addWidget(self.model_filter)
        filter_row.addWidget(self.since_check)
        filter_row.addWidget(self.since_edit)
        filter_row.addWidget(self.until_check)
        filter_row.addWidget(self.until_edit)
        filter_row.addWidget(self.review_filter)
        filter_row.addWidget(self.no_result_check)
        filter_row.addStretch(1)

        # table
        self.model = PredictionTableModel()
        self.model.fetch_failed.connect(lambda text: self._say(text, ERROR_COLOUR))
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.table.doubleClicked.connect(lambda _: self.correct_selected())

        self.confirm_button = QPushButton("Confirm")
        self.confirm_button.setToolTip("The model's result for the selected row is right")
        self.confirm_button.clicked.connect(lambda: self.confirm_selected())
        self.correct_button = QPushButton("Correct…")
        self.correct_button.setToolTip("Record the right class for the selected row")
        self.correct_button.clicked.connect(lambda: self.correct_selected())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.verify_button = QPushButton("Check the audit trail")
        self.verify_button.setToolTip("Recompute the case log's hash chain: shows whether any row was changed, "
                                      "deleted or inserted outside zsmed")
        self.verify_button.clicked.connect(self.verify)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._ask_export)
        actions = QHBoxLayout()
        actions.addWidget(self.confirm_button)
        actions.addWidget(self.correct_button)
        actions.addStretch(1)
        actions.addWidget(self.refresh_button)
        actions.addWidget(self.verify_button)
        actions.addWidget(self.export_button)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verify_status = QLabel()
        self.verify_status.setWordWrap(True)
        self.verify_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for label in (self.status, self.verify_status):
            label.setTextFormat(Qt.TextFormat.PlainText)  # paths and reasons are not markup

        results = QWidget()
        results_layout = QVBoxLayout(results)
        results_layout.addLayout(filter_row)
        results_layout.addWidget(self.table, 1)
        results_layout.addLayout(actions)

        # statistics
        self.stats_table = QTableWidget(0, 7)
        self.stats_table.setHorizontalHeaderLabels(["Model", "Results", "Reviewed", "Agreement with the reader",
                                                    "No result", "Could not be read", "First seen"])
        self.stats_table.verticalHeader().hide()
        self.stats_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.stats_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.stats_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.stats_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.stats_table.horizontalHeader().setStretchLastSection(True)
        self.stats_table.itemSelectionChanged.connect(self._show_model_chart)
        self.chart_title = QLabel()
        self.chart = MonthlyChart()
        stats = QSplitter(Qt.Orientation.Vertical)
        stats.addWidget(self.stats_table)
        chart_box = QWidget()
        chart_layout = QVBoxLayout(chart_box)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        chart_layout.addWidget(self.chart_title)
        chart_layout.addWidget(self.chart, 1)
        stats.addWidget(chart_box)
        self._monthly: list[ModelStats] = []
        self._model_order: list[str] = []

        self.stats_page = stats
        self.tabs = QTabWidget()
        self.tabs.addTab(results, "Results")
        self.tabs.addTab(stats, "Statistics by model")
        self.tabs.currentChanged.connect(self._on_tab)

        # Small minimum heights: the screen lives in the window's bottom panel, which the reader may
        # keep low; the table shrinks there, never the buttons under it (they stay in view).
        for view in (self.table, self.stats_table):
            view.setMinimumHeight(3 * self.fontMetrics().height())
        self.chart.setMinimumHeight(4 * self.fontMetrics().height())
        results_layout.setContentsMargins(4, 4, 4, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.verify_status)
        self.refresh()

    # --- the log ------------------------------------------------------------------------------------
    def set_site(self, site: SiteConfig) -> None:
        self._close_log()
        self._site = site
        self.verify_status.clear()
        self.refresh()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _open(self) -> CaseLog | None:
        """The case log (kept open), or None with the reason shown. A log that cannot be written
        is opened read-only: it can still be read, checked and exported."""
        if self._log is not None:
            return self._log
        try:
            path = self._site.resolved_caselog_path()
        except ZsmedError as exc:
            self._say(str(exc), ERROR_COLOUR)
            return None
        if not path.exists():
            self._say(f"No results recorded yet ({readable_path(path)}).", None)
            return None
        try:
            self._log = open_case_log(path, site=self._site, timeout=1.0)
        except ZsmedError as exc:
            try:
                self._log = open_case_log(path, site=self._site, readonly=True, timeout=1.0)
            except ZsmedError:
                self._say(str(exc), ERROR_COLOUR)
                return None
            self._say(f"{exc} — shown read-only: reviews cannot be recorded.", ERROR_COLOUR)
        return self._log

    def _say(self, text: str, colour: str | None) -> None:
        theme.set_status(self.status, text, colour)

    def refresh(self) -> None:
        """Re-read the models and the results (first page, current filters); the statistics when
        their tab is shown (they read the whole log)."""
        self._say("", None)
        self._generation += 1
        self._searcher = None
        self._stats_stale = True
        log = self._open()
        if log is None:
            self.model.reset(None)
            self._fill_models([])
            self._fill_stats([], [], {})
            self._update_buttons()
            return
        try:
            models = log.models()
            self.model.titles = {m.sha256: class_titles(m.card) for m in models}
            self._first_seen = {m.sha256: m.first_seen for m in models}
            self._fill_models([m.name for m in models])
            filters = self.filters
            total = log.count()

            def fetch(offset: int, limit: int) -> tuple[list[PredictionRecord], int]:
                return fetch_page(log, filters, offset, limit)

            self.model.reset(fetch)
            self._fit_columns()
            if self.tabs.currentWidget() is self.stats_page:
                self._refresh_stats()
        except ZsmedError as exc:
            self._say(str(exc), ERROR_COLOUR)
            self._close_log()
            self.model.reset(None)
            self._update_buttons()
            return
        if not self.status.text():
            shown = self.model.rowCount()
            more = "+" if self.model.canFetchMore(QModelIndex()) else ""
            where = readable_path(log.path)
            self._say(f"{shown}{more} of {total} result{'s' if total != 1 else ''} shown · {where}", None)
        self._update_buttons()

    def _refresh_stats(self) -> None:
        log = self._open()
        if log is None:
            self._fill_stats([], [], {})
            return
        try:
            self._fill_stats(log.stats(), log.stats(by_month=True), self._first_seen)
        except ZsmedError as exc:
            self._say(str(exc), ERROR_COLOUR)
            return
        self._stats_stale = False

    def _on_tab(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.stats_page and self._stats_stale:
            self._refresh_stats()

    def _fit_columns(self) -> None:
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS) - 1):
            header.resizeSection(column, min(header.sectionSize(column), 280))

    def _fill_models(self, names: list[str]) -> None:
        current = self.model_filter.currentData()
        self.model_filter.blockSignals(True)
        self.model_filter.clear()
        self.model_filter.addItem("All models", None)
        for name in dict.fromkeys(names):
            self.model_filter.addItem(name, name)
        self.model_filter.setCurrentIndex(max(0, self.model_filter.findData(current)) if current else 0)
        self.model_filter.blockSignals(False)

    def _filters_changed(self, *_: object) -> None:
        self.set_filters(Filters(
            model=self.model_filter.currentData(),
            since=self.since_edit.date().toPython() if self.since_check.isChecked() else None,  # type: ignore[arg-type]
            until=self.until_edit.date().toPython() if self.until_check.isChecked() else None,  # type: ignore[arg-type]
            review=str(self.review_filter.currentData()),
            abstained=self.no_result_check.isChecked(),
        ))

    def set_filters(self, filters: Filters) -> None:
        self.filters = filters
        self.refresh()

    # --- statistics ---------------------------------------------------------------------------------
    def _fill_stats(self, overall: list[ModelStats], monthly: list[ModelStats], first_seen: dict[str, str]) -> None:
        self._monthly = monthly
        self._model_order = [s.model_sha256 for s in overall]
        self.stats_table.setRowCount(len(overall))
        for row, s in enumerate(overall):
            agreement = (f"{s.agreement:.0%} ({s.agreed} of {labelled_reviews(s)})" if s.agreement is not None
                         else "no reviews yet")
            no_result = f"{s.abstain_rate:.0%} ({s.abstained})" if s.abstain_rate is not None else ""
            values = [s.model_name, str(s.predictions), str(s.reviewed), agreement, no_result, str(s.errors),
                      first_seen.get(s.model_sha256, "")[:10]]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column == 0:
                    item.setToolTip(f"Model file SHA-256 {s.model_sha256}")
                self.stats_table.setItem(row, column, item)
        if overall:
            self.stats_table.selectRow(0)
        self._show_model_chart()

    def _show_model_chart(self) -> None:
        rows = self.stats_table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self._model_order):
            self.chart_title.setText("By month: choose a model above.")
            self.chart.set_data([], [], [])
            return
        sha = self._model_order[rows[0].row()]
        months = [s for s in self._monthly if s.model_sha256 == sha and s.month]
        name = months[0].model_name if months else ""
        self.chart_title.setText(f"{name} by month: agreement with the reader, and the share of 'no result'")
        self.chart.set_data([str(s.month) for s in months], [s.agreement for s in months],
                            [s.abstain_rate for s in months])

    # --- review -------------------------------------------------------------------------------------
    def selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def confirm_selected(self, comment: str = "") -> bool:
        row = self.selected_row()
        if row is None:
            return False
        record = self.model.record(row)
        if record.error or record.abstain or not record.label:
            self._say("There is no result to confirm on this row; use Correct to record the right class.", None)
            return False
        return self._review(row, confirm=True, comment=comment)

    def correct_selected(self, label: str | None = None, comment: str = "") -> bool:
        row = self.selected_row()
        if row is None:
            return False
        record = self.model.record(row)
        if record.error:
            self._say("This image could not be read: there is nothing to review.", None)
            return False
        if label is None:
            titles = self.model.titles.get(record.model_sha256, {})
            dialog = CorrectDialog(record.class_names, titles, record.label, comment, self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return False
            label, comment = dialog.choice()
        return self._review(row, correct_to=label, comment=comment)

    def _review(self, row: int, *, confirm: bool = False, correct_to: str | None = None, comment: str = "") -> bool:
        log = self._open()
        if log is None:
            return False
        record = self.model.record(row)
        try:
            log.review(record.id, confirm=confirm, correct_to=correct_to, comment=comment, reader=self._site.reader)
            updated = log.get(record.id)
        except ZsmedError as exc:
            self._say(f"The review could not be recorded: {exc}", ERROR_COLOUR)
            return False
        self.model.replace(row, updated)
        titles = self.model.titles.get(updated.model_sha256, {})
        self._say(f"#{updated.id}: {verdict_text(updated, titles)} by {self._site.reader}.", OK_COLOUR)
        self.reviewed.emit(updated.id)
        self._update_buttons()
        return True

    def _update_buttons(self) -> None:
        row = self.selected_row()
        record = self.model.record(row) if row is not None else None
        writable = self._log is not None and not self._log.readonly
        self.confirm_button.setEnabled(bool(record and writable and not record.error and not record.abstain
                                            and record.label))
        self.correct_button.setEnabled(bool(record and writable and not record.error))
        self.export_button.setEnabled(self._log is not None and self._exporter is None)
        self.verify_button.setEnabled(self._log is not None and self._verify_runner is None)

    # --- audit trail and export ----------------------------------------------------------------------
    def verify(self) -> None:
        """Check the hash chain in a worker (a connection of its own); the result is shown here."""
        if self._log is None or self._verify_runner is not None:
            return
        path, site = self._log.path, self._site
        self.verify_status.setText("Checking the audit trail…")
        self.verify_status.setStyleSheet("")

        def job() -> Job[VerifyResult]:
            yield Progress(0, 1, "checking the audit trail")
            with open_case_log(path, site=site, readonly=True) as log:
                result = log.verify()
            yield Progress(1, 1, "")
            return result

        def done(result: VerifyResult) -> None:
            self._verify_runner = None
            self.show_verify_result(result)
            self._update_buttons()

        def failed(message: str) -> None:
            self._verify_runner = None
            self.verify_status.setText(f"The audit trail could not be checked: {message}")
            self.verify_status.setStyleSheet(f"color: {theme.tint(ERROR_COLOUR)};")
            self._update_buttons()

        self._verify_runner = start_job(job, on_done=done, on_error=failed,
                                        on_cancelled=lambda: failed("cancelled"), start=False)
        self._update_buttons()
        self._verify_runner.start()

    def is_verifying(self) -> bool:
        return self._verify_runner is not None

    def show_verify_result(self, result: VerifyResult) -> None:
        self.last_verify = result
        if result.ok:
            self.verify_status.setText(f"Audit trail OK: {result.rows_checked} rows checked, nothing changed "
                                       f"outside zsmed.")
            self.verify_status.setStyleSheet(f"color: {theme.tint(OK_COLOUR)};")
        else:
            where = (f"first broken row: {result.first_broken_table or 'row'} {result.first_broken}"
                     if result.first_broken is not None else "")
            self.verify_status.setText(f"Audit trail BROKEN — {where}{': ' if where else ''}{result.message}")
            self.verify_status.setStyleSheet(f"color: {theme.tint(ERROR_COLOUR)}; font-weight: bold;")

    def export_csv(self, path: Path) -> None:
        """The results matching the filters as CSV (the store's columns), written in a worker;
        ``exported`` tells the count, the status line says where (or why not)."""
        log = self._open()
        if log is None or self._exporter is not None:
            return
        source, site, filters, out = log.path, self._site, self.filters, Path(path)
        self._say(f"Exporting to {out}…", None)

        def done(n: int) -> None:
            self._exporter = None
            self._say(f"{n} result{'s' if n != 1 else ''} exported to {out}", OK_COLOUR)
            self._update_buttons()
            self.exported.emit(n)

        def failed(message: str) -> None:
            self._exporter = None
            self._say(f"The CSV could not be written: {message}", ERROR_COLOUR)
            self._update_buttons()
            self.export_failed.emit(message)

        self._exporter = start_job(lambda: export_job(source, site, filters, out), on_done=done, on_error=failed,
                                   on_cancelled=lambda: failed("cancelled"), start=False)
        self._update_buttons()
        self._exporter.start()

    def is_busy(self) -> bool:
        """Reviewed results being looked for, an export or an audit-trail check in flight."""
        return self._searcher is not None or self._exporter is not None or self._verify_runner is not None

    def _ask_export(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(self, "Export the case log as CSV", "caselog.csv", "CSV (*.csv)")
        if chosen:
            self.export_csv(Path(chosen))

    def closeEvent(self, event: Any) -> None:
        self._close_log()
        super().closeEvent(event)


def export_job(source: Path, site: SiteConfig, filters: Filters, out: Path) -> Job[int]:
    yield Progress(0, 1, f"exporting to {out.name}")
    with open_case_log(source, site=site, readonly=True) as log:
        n = log.export_csv(out, **filters.store_args())
    yield Progress(1, 1, "")
    return n
