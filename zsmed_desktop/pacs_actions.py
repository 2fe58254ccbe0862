"""What the reader did on a viewer, saved for the PACS: the rulers, regions and angles as a DICOM SR, the
view as a presentation state, and the key images flagged in a study as a key image note. The main
window and the window beside both save through these, on their own viewer and the study it shows, so
the files and the lines that say what came of them are the same from either window. Each save returns
a ``Saved`` (the line to show, the file written) instead of raising: the window shows the line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import QInputDialog, QWidget

from zsmed.errors import ZsmedError
from zsmed.imageio import is_photo
from zsmed_desktop.key_images_flow import KeyImages, save_key_images
from zsmed_desktop.presentation_flow import save_view
from zsmed_desktop.viewer import ImageViewer


@dataclass(frozen=True)
class ActionText:
    """An action's words, icon (a qtawesome name) and tooltip, the same in every window that offers it."""

    text: str
    icon_name: str
    tip: str


SAVE_MEASUREMENTS = ActionText("Save measurements as DICOM SR…", "mdi6.file-send-outline",
                               "Save the rulers and regions of interest as a DICOM SR for the PACS")
SAVE_VIEW = ActionText("Save the view for the PACS (presentation state)…", "mdi6.monitor-share",
                       "Save the window, rotation, rulers, regions, angles and arrows as a DICOM presentation "
                       "state, which PACS viewers show over the image")
SAVE_KEY_IMAGES = ActionText("Save key images for the PACS…", "mdi6.star-box-multiple-outline",
                             "Save the study's flagged images as a key image note (DICOM Key Object Selection) "
                             "for the PACS")
KEY_IMAGE = ActionText("Key image", "mdi6.star-outline",
                       "Flag the image as a key image (K again takes the flag off); save the study's flags for "
                       "the PACS with Save key images for the PACS")


@dataclass(frozen=True)
class Saved:
    """What came of a save (or a flag): the line for the window, the file written (None: nothing was),
    whether the line is a warning, and a tooltip for it (the file's whole path)."""

    message: str
    written: Path | None = None
    warning: bool = False
    tooltip: str | None = None


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc)


def _where(out_dir: Path | None) -> str:
    return "next to the study" if out_dir is None else f"in {out_dir.name or out_dir}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def dicom_image_shown(viewer: ImageViewer) -> Path | None:
    """The DICOM file whose image the viewer shows (decoded); None for none or a photograph."""
    path = viewer.current_path()
    if path is None or viewer.current_frame_data() is None or is_photo(path):
        return None
    return path


def has_measurements(viewer: ImageViewer) -> bool:
    """A ruler, a region of interest or an angle on the image shown: what a measurements SR holds."""
    return viewer.current_frame_data() is not None and bool(viewer.measurements() or viewer.rois()
                                                            or viewer.angles())


def save_measurements(viewer: ImageViewer, reader: str, out_dir: Path | None) -> Saved:
    """The rulers, regions of interest and angles on the image shown as a DICOM SR next to its file
    (``out_dir`` None) or in ``out_dir``."""
    path, frame = viewer.current_path(), viewer.current_frame_data()
    # the marks' figures are of the frame shown: none while it is not (a frame that failed to decode)
    rulers, regions, angles = ((viewer.measurements(), viewer.rois(), viewer.angles())
                               if frame is not None else ([], [], []))
    if path is None or frame is None or not (rulers or regions or angles):
        return Saved("No rulers, regions of interest or angles on the image to save")
    try:
        from zsmed.report.measurements import AngleMark, PixelSpacing, RegionMark, RulerMark, write_measurements_sr

        spacing = (PixelSpacing(frame.spacing[0], frame.spacing[1], frame.spacing_source or "PixelSpacing")
                   if frame.spacing is not None else None)
        written = write_measurements_sr(
            path, frame=viewer.current_frame(), spacing=spacing, reader=reader,
            rulers=[RulerMark(m.start, m.end, m.length) for m in rulers if m.unit == "mm"],
            regions=[RegionMark(r.start, r.end, r.statistics) for r in regions if r.statistics.area_unit == "mm²"],
            angles=[AngleMark(a.first_end, a.vertex, a.second_end, a.degrees) for a in angles],
            out_dir=out_dir if out_dir is not None else path.parent,
        )
    except ImportError:
        return Saved("DICOM SR writing is not available in this version", warning=True)
    except (ZsmedError, OSError, ValueError) as exc:
        return Saved(_one_line(f"{path.name}: measurements not saved: {_reason(exc)}"), warning=True,
                     tooltip=str(path))
    count = len(rulers) + len(regions) + len(angles)
    return Saved(f"{path.name}: {count} measurement{'' if count == 1 else 's'} saved as DICOM SR "
                 f"{written.name} {_where(out_dir)}", written)


def save_presentation(viewer: ImageViewer, reader: str, out_dir: Path | None) -> Saved:
    """How the image is shown — window, inversion, rotation and flip, rulers, regions, angles, arrows —
    as a DICOM presentation state next to its file (``out_dir`` None) or in ``out_dir``."""
    path = dicom_image_shown(viewer)
    if path is None:
        return Saved("Presentation state: show a DICOM image first (photographs have none)", warning=True)
    marks = len(viewer.measurements()) + len(viewer.rois()) + len(viewer.angles()) + len(viewer.arrows())
    try:
        written = save_view(viewer, reader, out_dir)
    except (ZsmedError, OSError, ValueError) as exc:
        return Saved(_one_line(f"{path.name}: presentation state not saved: {_reason(exc)}"), warning=True,
                     tooltip=str(path))
    what = f"the view and {marks} mark{'' if marks == 1 else 's'}" if marks else "the view (no marks)"
    return Saved(f"{path.name}: {what} saved as presentation state {written.name} {_where(out_dir)}", written)


def flag_key_image(key_images: KeyImages, path: Path | None, study_uid: str | None, save_with: str) -> Saved:
    """K: flag ``path`` (an image of study ``study_uid``) as a key image, or take its flag off; the line
    says how many of the study wait to be saved with ``save_with`` (where the window offers it)."""
    if path is None or is_photo(path) or not study_uid:
        return Saved("Key images: show a DICOM image first (photographs cannot be flagged for the PACS)",
                     warning=True)
    flagged = key_images.toggle(path, study_uid)
    waiting = len(key_images.unsaved(study_uid))
    if key_images.is_saved(path):
        return Saved(f"{path.name}: already a key image in a note saved for the PACS")
    if flagged:
        return Saved(f"{path.name}: flagged as a key image ({waiting} in this study to save: {save_with})")
    return Saved(f"{path.name}: no longer a key image ({waiting} flagged in this study)")


def ask_key_note(parent: QWidget, count: int) -> str | None:
    """The reader's optional note for the key images; None when they cancel."""
    text, ok = QInputDialog.getText(parent, "Save key images for the PACS",
                                    f"Note for the {count} key image{'' if count == 1 else 's'} (optional):")
    return text if ok else None


def save_study_key_images(key_images: KeyImages, study_uid: str | None, *, ask_note: Callable[[int], str | None],
                          reader: str, out_dir: Path | None) -> Saved | None:
    """The flagged images of study ``study_uid`` as one key image note next to the study (``out_dir``
    None) or in ``out_dir``, with the note ``ask_note(count)`` gives; None where the reader cancels it."""
    images = key_images.unsaved(study_uid) if study_uid else []
    if not images:
        return Saved("No image of this study is flagged as a key image (K flags the image shown)", warning=True)
    note = ask_note(len(images))
    if note is None:
        return None
    try:
        written = save_key_images(images, note=note, reader=reader, out_dir=out_dir)
        from zsmed.report.key_images import read_key_images

        key_images.saved(read_key_images(written), images)
    except (ZsmedError, OSError) as exc:
        return Saved(_one_line(f"Key images not saved: {_reason(exc)}"), warning=True,
                     tooltip=str(getattr(exc, "path", "") or ""))
    return Saved(f"{len(images)} key image{'' if len(images) == 1 else 's'} saved as {written.name} "
                 f"{_where(out_dir)}", written)


__all__ = ["KEY_IMAGE", "SAVE_KEY_IMAGES", "SAVE_MEASUREMENTS", "SAVE_VIEW", "ActionText", "Saved", "ask_key_note",
           "dicom_image_shown", "flag_key_image", "has_measurements", "save_measurements", "save_presentation",
           "save_study_key_images"]
