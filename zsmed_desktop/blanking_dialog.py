"""Asked before a de-identified export of a study with ultrasound, secondary captures or photographs:
which areas of those images to blank, since their machines print the patient's name and ID into the
pixels where no header rule reaches (``zsmed.dicom.burned_in``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from zsmed.dicom.deidentify import Blanking

TITLE = "Text burned into the images"
_WHOLE_WIDTH = 1 << 16  # wider than any image: the band is clipped to each image's width


def _listed(kinds: Sequence[str]) -> str:
    if len(kinds) <= 1:
        return "".join(kinds)
    return f"{', '.join(kinds[:-1])} and {kinds[-1]}"


class BlankingDialog(QDialog):
    """Three choices, all applied only to the images that may carry burned-in text: everything around an
    ultrasound machine's image (on by default), a band across the top of a given height, and the words OCR
    finds (on by default where Tesseract is installed; said where it is not)."""

    def __init__(self, kinds: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        intro = QLabel(
            f"This study has {_listed(kinds)}. Their machines often print the patient's name, ID and the date "
            "into the image itself, where de-identifying the header does not reach.\n\n"
            "Blank these areas in the copy (set to black on every frame):")
        intro.setWordWrap(True)
        self.around_ultrasound = QCheckBox("Everything around the ultrasound scan area")
        self.around_ultrasound.setToolTip("Where an ultrasound machine prints the name, ID and date: outside the "
                                          "regions the image's header marks as the scan. Images without them "
                                          "keep the warning.")
        self.around_ultrasound.setChecked(True)
        self.top_band = QCheckBox("A band across the top of each image,")
        self.band_height = QSpinBox()
        self.band_height.setRange(1, 2000)
        self.band_height.setValue(60)
        self.band_height.setSuffix(" pixels high")
        self.band_height.setEnabled(False)
        self.top_band.toggled.connect(self.band_height.setEnabled)
        band = QHBoxLayout()
        band.addWidget(self.top_band)
        band.addWidget(self.band_height)
        band.addStretch(1)
        from zsmed.dicom.text_in_pixels import ocr_program  # imported when asked: the window starts without it

        self.found_text = QCheckBox("Words read in the images by text recognition (OCR), wherever they are")
        if ocr_program() is not None:
            self.found_text.setToolTip("Tesseract reads each image on this PC; what it reads as words is blanked, "
                                       "labels typed over the scan too. It misses some text and the images are "
                                       "slower to export (a second or two each).")
            self.found_text.setChecked(True)
        else:
            self.found_text.setText("Words read in the images by text recognition (OCR): not installed on this PC")
            self.found_text.setToolTip("Needs the OCR program Tesseract, which the PC's administrator installs "
                                       "(Debian / Ubuntu: apt-get install tesseract-ocr)")
            self.found_text.setEnabled(False)
        after = QLabel("Text recognition misses some words: look through the exported images. "
                       "CT, MR and other images are copied unchanged.")
        after.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.around_ultrasound)
        layout.addLayout(band)
        layout.addWidget(self.found_text)
        layout.addWidget(after)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)

    def blanking(self) -> Blanking:
        from zsmed.dicom.burned_in import Box
        from zsmed.dicom.deidentify import Blanking  # imported when asked: the window starts without it

        boxes = (Box(0, 0, _WHOLE_WIDTH, self.band_height.value()),) if self.top_band.isChecked() else ()
        return Blanking(outside_ultrasound=self.around_ultrasound.isChecked(), boxes=boxes,
                        found_text=self.found_text.isEnabled() and self.found_text.isChecked())


def ask_blanking(parent: QWidget | None, kinds: Sequence[str]) -> Blanking | None:
    """The reader's choice of areas to blank; None when they cancelled the export."""
    dialog = BlankingDialog(kinds, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.blanking()
