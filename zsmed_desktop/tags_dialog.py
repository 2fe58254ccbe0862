"""The "DICOM tags" dialog: every element of the file shown, as PACS viewers list them (Weasis's
DICOM information, RadiAnt's DICOM tags).

Tag, name, VR and value in a tree (sequences expand to their items), private tags in a muted
colour, a filter that keeps the sequences above each match, and Copy (Ctrl+C) as tab-separated
text for a ticket or an e-mail to the vendor. The file is read off the GUI thread with the app's
one worker mechanism (``start_job``); a file that cannot be read is a message in the dialog.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFontDatabase, QGuiApplication, QKeyEvent, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QTreeWidgetItemIterator,
    QVBoxLayout,
    QWidget,
)

from zsmed.dicom.tags import ELEMENT, ITEM, MORE, TagRow, read_tag_rows, row_matches, summary_text
from zsmed.progress import Job, Progress
from zsmed_desktop import theme
from zsmed_desktop.workers import start_job

COLUMNS = ("Tag", "Name", "VR", "Value")
TAG, NAME, VR, VALUE = range(4)
ROW_ROLE = Qt.ItemDataRole.UserRole
FILTER_DELAY_MS = 150  # typing "Patient" filters once, not seven times over 20,000 rows
MAX_NAME_WIDTH = 340
EXPAND_ALL_BELOW = 600  # small files open fully expanded; large ones show top-level sequences' items


def tags_job(path: Path) -> Job[tuple[list[TagRow], list[str]]]:
    """Read the rows of ``path`` (a job, so it runs in the app's worker)."""
    yield Progress(0, None, f"reading {path.name}")
    return read_tag_rows(path)


def copy_text(rows: list[TagRow]) -> str:
    """Rows as tab-separated lines (tag, name, VR, value), nesting shown as '>' before the tag, as
    the standard's module tables write it."""
    return "\n".join("\t".join((">" * row.depth + row.tag, row.name, row.vr, row.value)) for row in rows)


class TagsDialog(QDialog):
    """Every element of one DICOM file; reading starts at once, in a worker."""

    def __init__(self, parent: QWidget | None, path: str | Path) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.setWindowTitle(f"DICOM tags — {self.path.name}")
        self.resize(900, 700)
        self._rows: list[TagRow] = []
        self._loading = True
        self._error: str | None = None
        self._summary = ""

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by tag, name or value")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setEnabled(False)
        self._filter_timer = QTimer(self, singleShot=True, interval=FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self.apply_filter)
        self.filter_edit.textChanged.connect(lambda _text: self._filter_timer.start())

        self.summary = QLabel("Reading…")
        self.summary.setToolTip(str(self.path))
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setUniformRowHeights(True)  # 20,000 rows scroll smoothly
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.tree.header().setStretchLastSection(True)
        self.tree.installEventFilter(self)
        self.tree.itemExpanded.connect(self._widen_tag_column)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the selected rows (all shown rows when none is selected) as "
                                    "tab-separated text (Ctrl+C)")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy_rows)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        close = buttons.button(QDialogButtonBox.StandardButton.Close)
        close.setAutoDefault(False)
        self.copy_button.setAutoDefault(False)

        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.summary)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)

        self._worker = start_job(lambda: tags_job(self.path), on_done=self._loaded, on_error=self._failed,
                                 on_cancelled=lambda: self._failed("cancelled"), owner=self)

    # --- state, for callers and tests ---------------------------------------------------------
    def is_loading(self) -> bool:
        return self._loading

    def error(self) -> str | None:
        """The one-line reason the file could not be shown (file name, not its full path)."""
        return self._error

    def rows(self) -> list[TagRow]:
        return list(self._rows)

    def visible_rows(self) -> list[TagRow]:
        """The rows the filter leaves, in tree order (collapsed ones included)."""
        return [self._row_of(item) for item in self._items(QTreeWidgetItemIterator.IteratorFlag.NotHidden)]

    # --- reading ------------------------------------------------------------------------------
    def _loaded(self, result: tuple[list[TagRow], list[str]]) -> None:
        rows, notes = result
        self._loading = False
        self._rows = rows
        self._populate(rows)
        self._summary = summary = summary_text(rows)
        tip = str(self.path)
        if notes:
            summary = self._summary = summary + f" · {len(notes)} read warning{'s' if len(notes) != 1 else ''}"
            tip += "\n\n" + "\n".join(notes)
            self.summary.setStyleSheet(f"color: {theme.accent('warning')};")
        self.summary.setText(summary)
        self.summary.setToolTip(tip)
        self.filter_edit.setEnabled(True)
        self.copy_button.setEnabled(bool(rows))
        if self.filter_edit.text().strip():
            self.apply_filter()
        self.filter_edit.setFocus()

    def _failed(self, message: str) -> None:
        self._loading = False
        # The error names the file by its full path; the dialog says the file's name (its tooltip
        # has the path), so a long network path does not push the reason out of sight.
        reason = message.replace(str(self.path), self.path.name)
        self._error = reason
        theme.set_status(self.message, f"Cannot show the DICOM tags: {reason}", theme.ERROR_COLOUR)
        self.message.show()
        for widget in (self.filter_edit, self.summary, self.tree):
            widget.hide()

    def _populate(self, rows: list[TagRow]) -> None:
        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        muted = QBrush(self.palette().color(QPalette.ColorRole.PlaceholderText))
        warning = QBrush(QColor(theme.accent("warning")))
        self.tree.setUpdatesEnabled(False)
        try:
            self.tree.clear()
            top_level: list[QTreeWidgetItem] = []
            parents: list[QTreeWidgetItem] = []  # the open item at each depth
            for index, row in enumerate(rows):
                # A sequence item is labelled beside its arrow, as a tree reads: "▾ Item 1".
                texts = [row.name, "", "", row.value] if row.kind == ITEM else [row.tag, row.name, row.vr, row.value]
                item = QTreeWidgetItem(texts)
                item.setData(TAG, ROW_ROLE, index)
                item.setFont(TAG, fixed)
                item.setFont(VR, fixed)
                if len(row.value) > 30:  # may be elided in the column
                    item.setToolTip(VALUE, row.value)
                if row.private:
                    for column in range(len(COLUMNS)):
                        item.setForeground(column, muted)
                if row.kind == ELEMENT and row.value.startswith("unreadable:"):
                    item.setForeground(VALUE, warning)
                if row.kind in (ITEM, MORE):
                    font = item.font(TAG if row.kind == ITEM else NAME)
                    font.setItalic(True)
                    item.setFont(TAG if row.kind == ITEM else NAME, font)
                del parents[row.depth :]
                if parents:
                    parents[-1].addChild(item)
                else:
                    top_level.append(item)
                parents.append(item)
            self.tree.addTopLevelItems(top_level)
            self._default_expansion()
            self._fit_columns()
        finally:
            self.tree.setUpdatesEnabled(True)

    def _default_expansion(self) -> None:
        self.tree.collapseAll()
        if len(self._rows) <= EXPAND_ALL_BELOW:
            self.tree.expandAll()
        else:
            self.tree.expandToDepth(1)  # top-level sequences and their items' elements

    def _fit_columns(self) -> None:
        for column in (TAG, NAME, VR):
            self.tree.resizeColumnToContents(column)
            self.tree.setColumnWidth(column, self.tree.columnWidth(column) + 12)
        if self.tree.columnWidth(NAME) > MAX_NAME_WIDTH:
            self.tree.setColumnWidth(NAME, MAX_NAME_WIDTH)

    def _widen_tag_column(self, _item: QTreeWidgetItem | None = None) -> None:
        """A nested sequence opened: its deeper-indented tags keep room (never narrowed)."""
        wanted = self.tree.sizeHintForColumn(TAG) + 12
        if wanted > self.tree.columnWidth(TAG):
            self.tree.setColumnWidth(TAG, wanted)

    # --- filter -------------------------------------------------------------------------------
    def apply_filter(self) -> None:
        """Hide the rows that do not match the filter text, keeping the sequence and item rows
        above each match (expanded, so the match is in sight)."""
        self._filter_timer.stop()
        text = self.filter_edit.text()
        self.tree.setUpdatesEnabled(False)
        try:
            if not text.strip():
                for each in self._items():
                    each.setHidden(False)
                self._default_expansion()
                self.summary.setText(self._summary)
                return
            for index in range(self.tree.topLevelItemCount()):
                if (top := self.tree.topLevelItem(index)) is not None:
                    self._filter_item(top, text)
            matching = sum(1 for row in self._rows if row.kind == ELEMENT and row_matches(row, text))
            self.summary.setText(f"{matching} matching · {self._summary}")
        finally:
            self.tree.setUpdatesEnabled(True)

    def _filter_item(self, item: QTreeWidgetItem, text: str) -> bool:
        shown_child = False
        for index in range(item.childCount()):
            child = item.child(index)
            if child is not None:
                shown_child = self._filter_item(child, text) or shown_child
        shown = shown_child or row_matches(self._row_of(item), text)
        item.setHidden(not shown)
        if shown_child:
            item.setExpanded(True)
        return shown

    # --- copy ---------------------------------------------------------------------------------
    def copy_rows(self) -> str:
        """Put the selected rows (all shown rows when none is selected) on the clipboard as
        tab-separated text; return that text."""
        selected = [item for item in self._items(QTreeWidgetItemIterator.IteratorFlag.NotHidden) if item.isSelected()]
        rows = [self._row_of(item) for item in selected] if selected else self.visible_rows()
        text = copy_text(rows)
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None and text:
            clipboard.setText(text)
        return text

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Ctrl+C in the tree copies whole rows (the view alone would copy one cell)."""
        if (watched is self.tree and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
                and event.matches(QKeySequence.StandardKey.Copy)):
            self.copy_rows()
            return True
        return super().eventFilter(watched, event)

    # --- helpers ------------------------------------------------------------------------------
    def _items(self, flags: QTreeWidgetItemIterator.IteratorFlag | None = None) -> list[QTreeWidgetItem]:
        iterator = QTreeWidgetItemIterator(self.tree, flags or QTreeWidgetItemIterator.IteratorFlag.All)
        items = []
        while (item := iterator.value()) is not None:
            items.append(item)
            iterator += 1
        return items

    def _row_of(self, item: QTreeWidgetItem) -> TagRow:
        return self._rows[int(item.data(TAG, ROW_ROLE))]
