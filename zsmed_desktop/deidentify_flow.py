"""Export studies de-identified, from the app (a teaching file, a research colleague, a meeting).

``ask_and_deidentify`` is the window's action: it asks for an output folder (empty or new: an export
never mixes with other files), then runs ``zsmed.dicom.deidentify`` through the app's one worker
mechanism (``zsmed_desktop.workers.start_job``) and reports one line through ``report(text,
warning=...)`` (the window's ``show_message``): "12 files exported de-identified to teaching: 1
patient, 2 studies, 3 series; 3 ultrasound images may have names burned into their pixels: check
them". When the study has images that may carry burned-in text (ultrasound, secondary captures,
photographs) it also asks which areas of them to blank (``zsmed_desktop.blanking_dialog``).
``start_deidentify`` does the same without asking (tests, or a folder chosen elsewhere). Neither raises.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from zsmed.progress import Progress
from zsmed_desktop.blanking_dialog import ask_blanking
from zsmed_desktop.workers import start_job

if TYPE_CHECKING:
    from zsmed.dicom.deidentify import Blanking

Report = Callable[..., object]  # report(text, warning=True / False): the window's show_message
DIALOG_TITLE = "Export the study de-identified"
FOLDER_CAPTION = "Folder for the de-identified copy (empty or new)"


def _folder_is_empty(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except FileNotFoundError:
        return True


def start_deidentify(paths: Iterable[str | Path], out_dir: str | Path, report: Report,
                     on_progress: Callable[[Progress], None] | None = None, owner: QObject | None = None,
                     blanking: Blanking | None = None, as_media: bool = False) -> Any:
    """Export ``paths`` (files, folders, DICOMDIRs) de-identified into ``out_dir`` in a worker thread,
    blanking ``blanking``'s areas on images that may carry burned-in text (with ``as_media``, as a CD or USB
    stick's file-set with a DICOMDIR: ``zsmed.dicom.media.deidentify_to_media_job``);
    progress goes to ``on_progress``, the outcome as one line to ``report(text, warning=...)`` (a
    warning when a file failed, nothing was written or an image may carry burned-in text). Returns
    the worker (``worker.quit()`` stops it between two files)."""
    from zsmed.dicom.deidentify import deidentify_paths_job

    sources = [str(p) for p in paths]
    out = Path(out_dir)
    where = out.name or str(out)

    def done(outcome: Any) -> None:
        result, media = outcome if isinstance(outcome, tuple) else (outcome, None)
        text = result.summary(where)
        if media is not None:
            text += f"; as a CD or USB stick: {media.summary().replace(f' to {out}', '')}"
        if result.problems:
            first = result.problems[0]
            more = f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
            text = f"{text}: {first}{more}"
        report(text, warning=bool(result.problems or result.burned_in or not result.written))

    def failed(message: str) -> None:
        report(f"De-identified export to {where} failed: {message}", warning=True)

    def cancelled() -> None:
        report(f"De-identified export to {where} cancelled: the files written so far stay there", warning=True)

    def make_job() -> Any:
        if as_media:
            from zsmed.dicom.media import deidentify_to_media_job

            return deidentify_to_media_job(sources, out, blanking=blanking)
        return deidentify_paths_job(sources, out, blanking=blanking)

    return start_job(make_job, on_progress=on_progress, on_done=done, on_error=failed, on_cancelled=cancelled,
                     owner=owner)


def ask_and_deidentify(parent: QWidget | None, paths: Iterable[str | Path], last_folder: str | Path,
                       report: Report, on_progress: Callable[[Progress], None] | None = None,
                       burned_in_kinds: Sequence[str] = (), as_media: bool = False) -> Any:
    """The window's Export the study de-identified…: asks for an output folder, starting in
    ``last_folder``; one that is not empty is refused (the reader may pick another); with
    ``burned_in_kinds`` (the study's "ultrasound images"...) asks which areas of them to blank; then
    the export runs as ``start_deidentify``. Returns the worker, or None when nothing was started (nothing
    selected, the reader cancelled or refused another folder)."""
    sources = [str(p) for p in paths]
    if not sources:
        report("Nothing to export: select a study first", warning=True)
        return None
    start = str(last_folder) if last_folder and Path(last_folder).is_dir() else str(Path.home())
    while True:
        chosen = QFileDialog.getExistingDirectory(parent, FOLDER_CAPTION, start)
        if not chosen:
            return None
        folder = Path(chosen)
        if folder.exists() and not folder.is_dir():
            report(f"De-identified export not started: {folder.name} is not a folder", warning=True)
            return None
        if _folder_is_empty(folder):
            break
        again = QMessageBox.question(
            parent, DIALOG_TITLE,
            f"The folder {folder.name} is not empty. A de-identified export goes into an empty or new folder, "
            "so that it never mixes with other files.\n\nChoose another folder?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        if again != QMessageBox.StandardButton.Yes:
            report(f"De-identified export not started: the folder {folder.name} is not empty", warning=True)
            return None
        start = str(folder)
    blanking = None
    if burned_in_kinds:
        blanking = ask_blanking(parent, burned_in_kinds)
        if blanking is None:
            report("De-identified export not started", warning=True)
            return None
    return start_deidentify(sources, folder, report, on_progress, owner=parent, blanking=blanking, as_media=as_media)
