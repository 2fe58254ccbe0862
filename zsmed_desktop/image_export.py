"""Save or copy the image as the reader sees it: a key image for a report, a teaching file, a meeting.

As PACS viewers do (RadiAnt's Export to JPEG / PNG and Copy image to clipboard): the picture is the
viewer's ``snapshot`` (window/level, inversion, rotation and flip, the rulers, regions of interest and
angles with their labels, at the image's stored resolution). By default it carries no patient details: the
corner texts (name, ID, dates, institution, the series' title) are left out unless the reader ticks
"Include patient details". Text burned into the pixels themselves (ultrasound, secondary captures,
photographs, scanned documents): where Tesseract is installed, the words it reads are blanked (the marks'
labels, drawn after, are kept), and the line says to check the picture; elsewhere the line warns.

``save_image`` and ``copy_image`` raise ``ImageExportError`` (one line); ``ask_and_save_image`` and
``copy_image_and_report`` are the window's actions: they never raise, they report one line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QColor, QGuiApplication, QImage, QImageWriter, QPainter
from PySide6.QtWidgets import QCheckBox, QFileDialog, QGridLayout, QLineEdit, QMessageBox, QWidget

from zsmed.errors import ZsmedError
from zsmed.paths import replacing
from zsmed_desktop.viewer import ImageViewer, SnapshotError

JPEG_QUALITY = 95
# the formats offered, by the file name's suffix; the first is the default
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
NAME_FILTERS = ("PNG image (*.png)", "JPEG image (*.jpg *.jpeg)")
PATIENT_DETAILS_TEXT = "Include patient details (name, ID, dates, institution)"
PATIENT_DETAILS_TIP = ("Off: the picture carries no patient details (the image's corner texts are left out, and the "
                       "words text recognition reads in an ultrasound's or a capture's pixels are blanked).\n"
                       "On: the picture as shown, with the corner texts.")

Report = Callable[..., object]  # report(text, warning=True / False): the window's show_message


class ImageExportError(ZsmedError, OSError):
    """The image could not be saved or copied (one line: what and why)."""


def default_file_name(viewer: ImageViewer, suffix: str = ".png") -> str:
    """A file name for the image shown, from its modality, series and instance numbers and the frame
    (``CT_series2_image57.png``, ``US_series1_image3_frame12.png``), never from the patient's name or
    the file's; ``image.png`` with none shown."""
    frame = viewer.current_frame_data()
    if frame is None:
        return f"image{suffix}"
    modality = frame.fact("modality") or "image"
    series = frame.fact("series_number")
    number = frame.fact("instance_number") or str(viewer.current_index() + 1)
    parts = [modality, f"series{series}" if series else "", f"image{number}"]
    if viewer.frame_count() > 1:
        parts.append(f"frame{viewer.current_frame() + 1}")
    name = "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", part).strip("-.") for part in parts if part)
    return f"{name or 'image'}{suffix}"


def _encoded(image: QImage, fmt: str) -> bytes:
    """The picture as PNG or JPEG (quality ``JPEG_QUALITY``) bytes. A QImage built here carries no
    text keys, so the PNG has no text chunks and the JPEG no comment: nothing about the patient."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, fmt.lower().encode())
    if fmt == "JPEG":
        writer.setQuality(JPEG_QUALITY)
    written = writer.write(image)
    buffer.close()
    if not written or data.isEmpty():
        raise ImageExportError(f"Image not saved: it could not be encoded as {fmt} ({writer.errorString()})")
    return bytes(data.data())


def may_carry_text(viewer: ImageViewer) -> bool:
    """Whether the image shown is of a kind that carries text in its pixels: Burned In Annotation YES, or an
    ultrasound, secondary capture, photograph, endoscopy or OT image that does not say NO."""
    from zsmed.dicom.deidentify import BURNED_IN_MODALITIES

    frame = viewer.current_frame_data()
    if frame is None:
        return False
    flag = frame.fact("burned_in").strip().upper()
    return flag == "YES" or (flag != "NO" and frame.fact("modality").strip().upper() in BURNED_IN_MODALITIES)


BLANKING_PASSES = 2  # read again once after blanking (words beside the first come out); each pass ~1 s


def blank_words(picture: QImage) -> QImage:
    """The words OCR reads in ``picture`` painted over in black (each box grown a little), as a de-identified
    export's are, reading again after blanking (``BLANKING_PASSES``)."""
    import numpy as np

    from zsmed.dicom.text_in_pixels import boxes_to_blank, find_text

    image = picture.convertToFormat(QImage.Format.Format_RGB32)
    width, height = image.width(), image.height()
    for _ in range(BLANKING_PASSES):
        bgra = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes()).reshape(height, -1)
        rgb = np.ascontiguousarray(bgra[:, : width * 4].reshape(height, width, 4)[..., 2::-1])
        boxes = boxes_to_blank(find_text(rgb), height, width)
        if not boxes:
            break
        painter = QPainter(image)
        for box in boxes:
            painter.fillRect(box.left, box.top, box.width, box.height, QColor("black"))
        painter.end()
    return image


def _blanks_text(viewer: ImageViewer) -> bool:
    """Whether a picture of the image shown, without the patient details, has its words blanked by OCR."""
    from zsmed.dicom.text_in_pixels import ocr_program

    return may_carry_text(viewer) and ocr_program() is not None


def _snapshot(viewer: ImageViewer, with_text: bool) -> QImage:
    """The picture; without the patient details, an image that carries text has the words OCR reads blanked
    (where Tesseract is installed), so a slide does not show the name an ultrasound machine printed."""
    blank = blank_words if not with_text and _blanks_text(viewer) else None
    try:
        return viewer.snapshot(with_text=with_text, blank=blank)
    except SnapshotError as exc:
        raise ImageExportError(str(exc)) from None
    except ZsmedError as exc:  # OCR failed: no picture rather than one with the name on it
        raise ImageExportError(f"Image not made: the text in its pixels could not be looked for ({exc})") from None


def save_image(viewer: ImageViewer, path: str | Path, *, with_text: bool = False) -> Path:
    """Save the image shown, as the reader sees it, to ``path``: PNG, or JPEG (quality 95) for a
    ``.jpg`` / ``.jpeg`` name (a name with neither gets ``.png``). With ``with_text`` the corner texts
    (patient details) are drawn on it. The file is written whole or not at all (a full disk leaves no
    half picture, and an existing file as it was). Returns the path written; raises
    ``ImageExportError`` with one line."""
    target = Path(path)
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        target = target.with_name(target.name + ".png")
        fmt = "PNG"
    data = _encoded(_snapshot(viewer, with_text), fmt)
    folder = target.parent
    if not folder.is_dir():
        raise ImageExportError(f"Image not saved: the folder {folder.name or folder} does not exist")
    try:
        with replacing(target, durable=True) as temporary:
            temporary.write_bytes(data)
    except OSError as exc:
        reason = (exc.strerror or exc.__class__.__name__).rstrip(".").lower()
        raise ImageExportError(f"Image not saved as {target.name} in {folder.name or folder}: {reason}") from None
    return target


def copy_image(viewer: ImageViewer, *, with_text: bool = False) -> QImage:
    """Put the image shown, as the reader sees it, on the clipboard (to paste into a report, a slide,
    a message) and return it; without ``with_text`` it carries no patient details. Raises
    ``ImageExportError`` with one line."""
    image = _snapshot(viewer, with_text)
    clipboard = QGuiApplication.clipboard()
    if clipboard is None:
        raise ImageExportError("Image not copied: there is no clipboard")
    clipboard.setImage(image)
    return image


def burned_in_text(viewer: ImageViewer) -> bool:
    """Whether the file shown says its pixels carry text (Burned In Annotation YES: ultrasound, secondary
    captures, scanned documents), which leaving the overlays out cannot remove."""
    frame = viewer.current_frame_data()
    return frame is not None and frame.fact("burned_in").strip().upper() == "YES"


def _details(viewer: ImageViewer, with_text: bool) -> tuple[str, bool]:
    """What the picture carries, and whether that is a warning."""
    if with_text:
        return "with patient details", False
    if _blanks_text(viewer):
        return ("no patient details; the words text recognition read in its pixels blanked: check the picture "
                "before sharing it"), True
    if burned_in_text(viewer) or may_carry_text(viewer):
        return ("no patient details added, but the file says text is burned into its pixels: "
                "check the picture for names or dates before sharing it"), True
    return "no patient details", False


def _default_report(parent: QWidget | None) -> Report:
    def report(text: str, *, warning: bool = False) -> None:
        if warning:
            QMessageBox.warning(parent, "Image", text)

    return report


def copy_image_and_report(viewer: ImageViewer, report: Report | None = None, *, with_text: bool = False) -> bool:
    """The window's Copy the image: copies it and reports one line (``report(text, warning=...)``,
    e.g. the window's ``show_message``; by default a warning box for a failure); never raises."""
    say = report or _default_report(viewer)
    try:
        image = copy_image(viewer, with_text=with_text)
    except ImageExportError as exc:
        say(str(exc), warning=True)
        return False
    details, warning = _details(viewer, with_text)
    say(f"Image copied ({image.width()} × {image.height()}, {details})", warning=warning)
    return True


def export_dialog(parent: QWidget | None, folder: str | Path, name: str) -> tuple[QFileDialog, QCheckBox]:
    """The Save the image dialog: PNG (the default) or JPEG, a file name in ``folder``, and the
    "Include patient details" box, off. Qt's own dialog rather than the system's: only it can carry
    the box."""
    dialog = QFileDialog(parent, "Save the image as", str(folder))
    dialog.setObjectName("SaveImageDialog")
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    dialog.setNameFilters(list(NAME_FILTERS))
    dialog.selectNameFilter(NAME_FILTERS[0])
    dialog.setDefaultSuffix("png")
    dialog.selectFile(name)
    details = QCheckBox(PATIENT_DETAILS_TEXT, dialog)
    details.setObjectName("includePatientDetails")
    details.setChecked(False)
    details.setToolTip(PATIENT_DETAILS_TIP)
    layout = dialog.layout()
    if isinstance(layout, QGridLayout):
        layout.addWidget(details, layout.rowCount(), 0, 1, layout.columnCount())

    def filter_chosen(name_filter: str) -> None:  # JPEG chosen: the name's suffix follows
        suffix = "jpg" if "JPEG" in name_filter else "png"
        dialog.setDefaultSuffix(suffix)
        edit = dialog.findChild(QLineEdit, "fileNameEdit")  # the name typed so far
        current = edit.text() if edit is not None else ""
        if current and Path(current).suffix.lower() in FORMATS:
            dialog.selectFile(str(Path(current).with_suffix(f".{suffix}")))

    dialog.filterSelected.connect(filter_chosen)
    return dialog, details


def ask_and_save_image(viewer: ImageViewer, parent: QWidget | None = None, folder: str | Path = "",
                       report: Report | None = None) -> Path | None:
    """The window's Save the image as…: asks where (starting in ``folder``, e.g. the last folder an
    image was saved to, with a name from the series and image, never the patient's), whether to include
    the patient details (off by default), and saves it. Returns the file written, else None (cancelled,
    no image, or it could not be written: then one line goes to ``report(text, warning=True)``, by
    default a warning box). Never raises."""
    say = report or _default_report(parent)
    try:
        viewer.snapshot(with_text=False, min_size=0)  # no image, or still loading: say so before asking where
    except SnapshotError as exc:
        say(str(exc), warning=True)
        return None
    start = Path(folder) if folder and Path(folder).is_dir() else Path.home()
    dialog, details_box = export_dialog(parent, start, default_file_name(viewer))
    try:
        if not dialog.exec():
            return None
        chosen = dialog.selectedFiles()
        with_text = details_box.isChecked()
        jpeg = "JPEG" in dialog.selectedNameFilter()
    finally:
        dialog.deleteLater()
    if not chosen:
        return None
    path = Path(chosen[0])
    if path.suffix.lower() not in FORMATS:
        path = path.with_name(path.name + (".jpg" if jpeg else ".png"))
    try:
        written = save_image(viewer, path, with_text=with_text)
    except ImageExportError as exc:
        say(" ".join(str(exc).split()), warning=True)
        return None
    details, warning = _details(viewer, with_text)
    say(f"Image saved as {written.name} in {written.parent.name or written.parent} ({details})", warning=warning)
    return written
