"""View > Window presets > Set the window…: a window typed in as numbers (width and level), as PACS
viewers let a reader do for a window no preset has (a stroke window W 40 L 40, a bone window W 2000
L 500)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QWidget

# Wide enough for CT (HU from -1024 to 3071 and beyond), 16-bit images and float pixel data.
_LIMIT = 1.0e7


class WindowDialog(QDialog):
    """Width and level, started at the window in use; ``window()`` is what was typed (level, width)."""

    def __init__(self, parent: QWidget | None, centre: float, width: float, *, unit: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Set the window")
        suffix = f" {unit}" if unit else ""
        self.width_box = self._box(max(width, 1.0), 1.0, suffix)
        self.level_box = self._box(centre, -_LIMIT, suffix)
        form = QFormLayout(self)
        form.addRow(QLabel("Type the window's width and level" + (f" in {unit}" if unit else "") + "."))
        form.addRow("Width (W)", self.width_box)
        form.addRow("Level (L)", self.level_box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.width_box.setFocus()
        self.width_box.selectAll()

    @staticmethod
    def _box(value: float, minimum: float, suffix: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(minimum, _LIMIT)
        box.setDecimals(1)
        box.setSuffix(suffix)
        box.setValue(round(value, 1))
        box.setMinimumWidth(140)
        return box

    def chosen(self) -> tuple[float, float]:
        """(level, width) as typed: the centre first, as ``ImageViewer.set_window`` takes them."""
        return self.level_box.value(), self.width_box.value()
