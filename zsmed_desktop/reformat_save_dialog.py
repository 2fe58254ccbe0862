"""Asked when the reformat is saved for the PACS: the image shown, or the whole plane as a series every so
many mm (the count it makes said as the step changes), and where: next to the study or in a folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

TITLE = "Save the reformat for the PACS"


class ReformatSaveDialog(QDialog):
    """What to save of the plane shown (``plane_name``, e.g. "Coronal"): this image, or every ``step`` mm
    across the plane, ``count_for(step)`` images; where: next to the study, or a folder the reader picks."""

    def __init__(self, plane_name: str, slab_text: str, spacing_mm: float, default_step_mm: float,
                 count_for: Callable[[float], int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        self._count_for = count_for
        self._folder: Path | None = None
        what = f"{plane_name.lower()} {slab_text}".strip()
        intro = QLabel(f"Saved as a new series of the study ({what}): CT or MR images at their place in the "
                       "patient, with the window shown now, for the PACS and any viewer to read and measure; "
                       "the rulers, regions and angles drawn on an image saved go with it as a DICOM SR.")
        intro.setWordWrap(True)
        self.this_image = QRadioButton("This image")
        self.whole_plane = QRadioButton("The whole plane, an image every")
        self.whole_plane.setChecked(True)
        self.step_box = QDoubleSpinBox()
        self.step_box.setDecimals(1)
        self.step_box.setRange(round(spacing_mm, 1) or 0.1, 100.0)
        self.step_box.setSingleStep(max(round(spacing_mm, 1), 0.5))
        self.step_box.setSuffix(" mm")
        self.step_box.setValue(max(default_step_mm, spacing_mm))
        self.count_label = QLabel()
        what_group = QButtonGroup(self)
        what_group.addButton(self.this_image)
        what_group.addButton(self.whole_plane)
        plane_row = QHBoxLayout()
        plane_row.addWidget(self.whole_plane)
        plane_row.addWidget(self.step_box)
        plane_row.addWidget(self.count_label)
        plane_row.addStretch(1)

        self.next_to_study = QRadioButton("Next to the study (a folder of its own beside the series)")
        self.next_to_study.setChecked(True)
        self.to_folder = QRadioButton("In a folder:")
        self.folder_button = QPushButton("Choose…")
        self.folder_button.clicked.connect(self._choose_folder)
        self.folder_label = QLabel("none chosen")
        where_group = QButtonGroup(self)
        where_group.addButton(self.next_to_study)
        where_group.addButton(self.to_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.to_folder)
        folder_row.addWidget(self.folder_button)
        folder_row.addWidget(self.folder_label, 1)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(QLabel("<b>What</b>"))
        layout.addWidget(self.this_image)
        layout.addLayout(plane_row)
        layout.addWidget(QLabel("<b>Where</b>"))
        layout.addWidget(self.next_to_study)
        layout.addLayout(folder_row)
        layout.addWidget(self.buttons)
        for signal in (self.step_box.valueChanged, self.this_image.toggled, self.to_folder.toggled):
            signal.connect(lambda *_: self._update())
        self._update()
        self.setMinimumWidth(520)

    def step_mm(self) -> float | None:
        """mm between the images of the whole plane; None: the image shown only."""
        return None if self.this_image.isChecked() else float(self.step_box.value())

    def out_dir(self) -> Path | None:
        """The folder chosen; None: next to the study."""
        return self._folder if self.to_folder.isChecked() else None

    def set_folder(self, folder: Path | None) -> None:
        self._folder = folder
        self.folder_label.setText(folder.name or str(folder) if folder is not None else "none chosen")
        self.folder_label.setToolTip(str(folder) if folder is not None else "")
        if folder is not None:
            self.to_folder.setChecked(True)
        self._update()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the reformat series")
        if folder:
            self.set_folder(Path(folder))

    def _update(self) -> None:
        count = self._count_for(float(self.step_box.value()))
        self.count_label.setText(f"({count} image{'' if count == 1 else 's'})")
        self.step_box.setEnabled(not self.this_image.isChecked())
        self.count_label.setEnabled(not self.this_image.isChecked())
        ready = self.next_to_study.isChecked() or self._folder is not None
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(ready)


__all__ = ["TITLE", "ReformatSaveDialog"]
