"""Help > Check this installation: ``zsmed doctor`` in a window, for the reader on the phone to IT
("read me the red lines") — the same checks, one row each, copied as the CLI prints them."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from zsmed.doctor import Check, format_lines, run_checks
from zsmed.progress import Job, Progress
from zsmed_desktop import theme
from zsmed_desktop.workers import start_job

STATUS_WORDS = {"ok": "OK", "warning": "Warning", "FAIL": "Fix this"}


def _checks_job() -> Job[list[Check]]:
    yield Progress(0, None, "checking this installation")
    return run_checks()


class DoctorDialog(QDialog):
    """The installation's checks, run in a worker when the dialog opens and on Check again."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Check this installation")
        self.resize(980, 520)
        self.checks: list[Check] = []
        self._worker: Any = None
        self.summary = QLabel("Checking…")
        self.summary.setWordWrap(True)
        # a table, not a tree: its rows grow to show a long finding whole (a path, a fix) instead of "…"
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["", "Check", "What was found"])
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        self.table.setShowGrid(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.sectionResized.connect(lambda *_: self.table.resizeRowsToContents())
        self.copy_button = QPushButton("Copy for IT")
        self.copy_button.setToolTip("Copy every line, as 'zsmed doctor' prints them, for a message or a ticket")
        self.copy_button.clicked.connect(self.copy)
        self.again_button = QPushButton("Check again")
        self.again_button.clicked.connect(self.run)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.again_button, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.run()

    def is_running(self) -> bool:
        return self._worker is not None

    def run(self) -> None:
        if self._worker is not None:
            return
        self.again_button.setEnabled(False)
        self.copy_button.setEnabled(False)
        theme.set_status(self.summary, "Checking…", None)
        self._worker = start_job(_checks_job, on_done=self._show, on_error=self._failed, owner=self)

    def _show(self, checks: list[Check]) -> None:
        self._worker = None
        self.checks = list(checks)
        colours = {"FAIL": theme.accent("error"), "warning": theme.accent("warning")}
        self.table.setRowCount(len(self.checks))
        for row, check in enumerate(self.checks):
            cells = (STATUS_WORDS.get(check.status, check.status), check.name, check.detail)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                colour = colours.get(check.status)
                if colour:
                    item.setForeground(QColor(colour))
                self.table.setItem(row, column, item)
        self.table.resizeRowsToContents()
        broken = sum(check.status == "FAIL" for check in self.checks)
        warnings = sum(check.status == "warning" for check in self.checks)
        if broken:
            text, colour = (f"{broken} to fix before zsmed works fully here"
                            + (f", {warnings} warnings" if warnings else "") + ": see the rows marked 'Fix this'."
                            ), theme.ERROR_COLOUR
        else:
            text = "This installation works" + (f" ({warnings} warnings: read them)" if warnings else "") + "."
            colour = theme.OK_COLOUR
        theme.set_status(self.summary, text, colour)
        self.again_button.setEnabled(True)
        self.copy_button.setEnabled(True)

    def _failed(self, message: str) -> None:
        self._worker = None
        theme.set_status(self.summary, f"The checks could not run: {message}", theme.ERROR_COLOUR)
        self.again_button.setEnabled(True)

    def rows(self) -> list[tuple[str, str, str]]:
        """(status as shown, check, what was found) per row."""
        def text(row: int, column: int) -> str:
            item = self.table.item(row, column)
            return item.text() if item is not None else ""

        return [(text(row, 0), text(row, 1), text(row, 2)) for row in range(self.table.rowCount())]

    def copy_text(self) -> str:
        return "\n".join(format_lines(self.checks))

    def copy(self) -> None:
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(self.copy_text())
