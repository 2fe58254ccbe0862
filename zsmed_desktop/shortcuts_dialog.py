"""Help > Keyboard shortcuts: the keys in two columns side by side (one column of 40-odd rows is taller
than a laptop's screen), in a window sized to the table but never beyond the screen it opens on, which
scrolls where the screen is smaller than the table (a 1366 × 768 laptop)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QScrollArea, QVBoxLayout, QWidget

_CELL = "<td><b>{}</b></td><td width=300>{}</td>"
_SCREEN_SHARE = 0.9  # of the screen's free area, at most
_WIDTH = 980  # pixels: two columns of keys with their descriptions wrapped in 300-pixel columns


def shortcuts_html(rows: Sequence[tuple[str, str]]) -> str:
    half = (len(rows) + 1) // 2

    def cells(k: int) -> str:
        return _CELL.format(html.escape(rows[k][0]), html.escape(rows[k][1])) if k < len(rows) else ""

    body = "".join(f"<tr>{cells(i)}<td width=24></td>{cells(i + half)}</tr>" for i in range(half))
    return f"<table cellpadding=3>{body}</table>"


class ShortcutsDialog(QDialog):
    def __init__(self, rows: Sequence[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.label = QLabel(shortcuts_html(rows))
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)  # the descriptions wrap in their columns; the keys stay whole
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.label.setContentsMargins(12, 12, 12, 12)
        scroll = QScrollArea()
        scroll.setWidget(self.label)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        width = _WIDTH
        screen = (parent.screen() if parent is not None else None) or self.screen()
        free = screen.availableGeometry().size() if screen is not None else QSize(width, 2000)
        width = min(width, int(free.width() * _SCREEN_SHARE))
        self.label.setMinimumWidth(min(_WIDTH, width) - 2 * scroll.verticalScrollBar().sizeHint().width() - 24)
        height = self.label.heightForWidth(self.label.minimumWidth()) + buttons.sizeHint().height() + 40
        self.resize(width, min(height, int(free.height() * _SCREEN_SHARE)))

    def text(self) -> str:
        return self.label.text()

    def sizeHint(self) -> QSize:
        return self.size()


__all__ = ["ShortcutsDialog", "shortcuts_html"]
