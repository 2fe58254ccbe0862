"""File > Get studies from the PACS…: find a patient's studies on the PACS and fetch those chosen, as a PACS
workstation's query / retrieve does (the core's ``find_studies_job`` and ``retrieve_job`` in the worker).

The patient shown is looked for at once by ID; another ID or a name (DOE*) can be typed. The studies are a
table, newest first, the ones already on this PC said so; Get fetches the selected ones with a progress bar
and Cancel, and the window's study list takes them (``fetched``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from zsmed.dicom.network import PacsNode
from zsmed.dicom.query import RetrieveResult, StudyMatch
from zsmed.progress import Progress
from zsmed_desktop.browser import dicom_date, person_name

COLUMNS = ("Date", "Modality", "Description", "Images", "Patient")
ERROR_STYLE = "color: #e53935;"


class PacsQueryDialog(QDialog):
    fetched = Signal(object, str)  # the study folders fetched, and the line saying so

    def __init__(self, node: PacsNode, folder: Path, *, patient_id: str = "",
                 here: Callable[[str], bool] = lambda _: False, parent: QWidget | None = None) -> None:
        """``folder``: where fetched studies go; ``here(study_uid)``: whether a study is on this PC already."""
        super().__init__(parent)
        self.setWindowTitle(f"Get studies from the PACS ({node.ae_title})")
        self.setMinimumSize(720, 420)
        self._node, self._folder, self._here = node, folder, here
        self._matches: list[StudyMatch] = []
        self._worker: Any = None

        self.patient_id = QLineEdit(patient_id)
        self.patient_id.setPlaceholderText("patient ID")
        self.name = QLineEdit()
        self.name.setPlaceholderText("or a name: DOE^JANE, DOE*")
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        for field in (self.patient_id, self.name):
            field.returnPressed.connect(self.search)
        search_row = QHBoxLayout()
        search_row.addWidget(QLabel("Patient ID"))
        search_row.addWidget(self.patient_id, 1)
        search_row.addWidget(QLabel("Name"))
        search_row.addWidget(self.name, 1)
        search_row.addWidget(self.search_button)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self.get_selected())

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.progress = QProgressBar()
        self.progress.hide()
        self.buttons = QDialogButtonBox()
        self.get_button = self.buttons.addButton("Get", QDialogButtonBox.ButtonRole.AcceptRole)
        self.get_button.setToolTip("Fetch the selected studies to this PC; they join the study list")
        self.get_button.clicked.connect(self.get_selected)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.cancel_button.clicked.connect(self._cancel_or_close)

        layout = QVBoxLayout(self)
        layout.addLayout(search_row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.progress)
        layout.addWidget(self.buttons)
        self._update_buttons()
        if patient_id.strip():
            self.search()

    # --- searching --------------------------------------------------------------------------------------------
    def search(self) -> None:
        """Ask the PACS for the studies of the ID / name typed (in the worker)."""
        from zsmed.dicom.query import find_studies_job
        from zsmed_desktop.workers import start_job

        if self.is_busy():
            return
        patient_id, name = self.patient_id.text().strip(), self.name.text().strip()
        if not patient_id and not name:
            self._say("Type a patient ID or a name (DOE* finds every DOE).", error=True)
            return
        self._say(f"Asking {self._node}…")
        self._worker = start_job(lambda: find_studies_job(self._node, patient_id=patient_id, patient_name=name),
                                 on_done=self._show_matches, on_error=self._failed, on_cancelled=self._idle,
                                 owner=self)
        self._update_buttons()

    def _show_matches(self, matches: list[StudyMatch]) -> None:
        self._idle()
        self._matches = matches
        self.table.setRowCount(len(matches))
        for row, match in enumerate(matches):
            here = self._here(match.study_uid)
            name = person_name(match.patient_name)
            values = (dicom_date(match.date), match.modalities.replace("\\", ", "),
                      match.description + ("  (on this PC)" if here else ""),
                      "" if match.images is None else str(match.images),
                      f"{name} · {match.patient_id}" if match.patient_id else name)
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(f"Study Instance UID {match.study_uid}")
                self.table.setItem(row, column, item)
        count = len(matches)
        self._say(f"{count} stud{'y' if count == 1 else 'ies'} on the PACS" if count else
                  "No study on the PACS matches.")
        if count:
            self.table.selectRow(0)  # the newest: the one most often wanted
        self._update_buttons()

    # --- fetching ---------------------------------------------------------------------------------------------
    def selected(self) -> list[StudyMatch]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self._matches[row] for row in rows if row < len(self._matches)]

    def get_selected(self) -> None:
        """Fetch the selected studies (in the worker, with a progress bar and Cancel)."""
        from zsmed.dicom.query import retrieve_job
        from zsmed_desktop.workers import start_job

        chosen = self.selected()
        if not chosen or self.is_busy():
            return
        expected = sum(match.images or 0 for match in chosen)
        self.progress.setRange(0, max(expected, 0))
        self.progress.setValue(0)
        self.progress.show()
        self._say(f"Getting {len(chosen)} stud{'y' if len(chosen) == 1 else 'ies'} from {self._node}…")
        uids = [match.study_uid for match in chosen]
        self._worker = start_job(lambda: retrieve_job(self._node, uids, self._folder), on_progress=self._advanced,
                                 on_done=self._fetched, on_error=self._failed, on_cancelled=self._cancelled,
                                 owner=self)
        self._update_buttons()

    def _advanced(self, progress: Progress) -> None:
        if progress.total:
            self.progress.setRange(0, progress.total)
        self.progress.setValue(progress.done)

    def _fetched(self, result: RetrieveResult) -> None:
        self._idle()
        line = result.summary()
        self._say(line + ("" if not result.problems else "\n" + "\n".join(result.problems)),
                  error=bool(result.problems))
        if result.folders:
            self.fetched.emit(result.folders, line)

    def _cancelled(self) -> None:
        self._idle()
        self._say("Cancelled: the images fetched so far are kept, each whole.")

    def _failed(self, message: str) -> None:
        self._idle()
        self._say(message, error=True)

    # --- state ------------------------------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return self._worker is not None

    def _idle(self) -> None:
        self._worker = None
        self.progress.hide()
        self._update_buttons()

    def _cancel_or_close(self) -> None:
        if self._worker is not None:
            self._worker.quit()
        else:
            self.reject()

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        self.search_button.setEnabled(not busy)
        self.get_button.setEnabled(not busy and bool(self.selected()))
        self.cancel_button.setText("Cancel" if busy else "Close")

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else "")


__all__ = ["PacsQueryDialog"]
