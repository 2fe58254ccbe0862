"""A second series beside the one being read — a prior study, another sequence — in a window of its
own that a reading room puts on its second monitor. The viewer in it answers the same keys and mouse
as the main one; linked (L), it follows the main viewer's slices by position (mm along the slice
normal, lined up where the reader had both when linking) or, without positions, image for image.
What the reader does on it goes to the PACS from here as from the main window (``pacs_actions``):
its measurements as a DICOM SR, its view as a presentation state, the key images flagged here (K) as
their study's key image note; a line at the window's foot says what came of each.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import QMenu, QStatusBar, QToolBar, QToolButton, QVBoxLayout, QWidget

from zsmed.dicom.geometry import SliceLink, link_slices
from zsmed_desktop.classify_panel import sr_destination_menu
from zsmed_desktop.key_images_flow import KeyImages
from zsmed_desktop.pacs_actions import (
    KEY_IMAGE,
    SAVE_KEY_IMAGES,
    SAVE_MEASUREMENTS,
    SAVE_VIEW,
    ActionText,
    Saved,
    ask_key_note,
    dicom_image_shown,
    flag_key_image,
    has_measurements,
    save_measurements,
    save_presentation,
    save_study_key_images,
)
from zsmed_desktop.viewer import ImageViewer

SAVE_FOR_PACS = ActionText("Save for the PACS", "mdi6.send-outline",
                           "Save what was done on this series for the PACS: its measurements, its view, its key "
                           "images")
SAVE_KEY_IMAGES_HERE = f"{SAVE_FOR_PACS.text} > {SAVE_KEY_IMAGES.text.rstrip('…')}"  # where the window offers it


class CompareWindow(QWidget):
    """The series beside: its viewer, the link to the main viewer's slices, and what goes from it to
    the PACS (its measurements, its view, its study's key images)."""

    closed = Signal()
    link_changed = Signal(bool)
    key_images_changed = Signal()  # a flag set or taken off here, or a study's flags saved
    view_saved = Signal(object)  # the Path of a presentation state saved here
    job_done = Signal(str)  # a line for the main window's Jobs tab: a file saved here, or why not
    file_saved = Signal(object)  # the Path of a file saved here for the PACS (the main window sends it on)

    def __init__(self, parent: QWidget | None = None, *, key_images: KeyImages | None = None,
                 reader: Callable[[], str] = lambda: "",
                 icon: Callable[[str], QIcon] = lambda _name: QIcon()) -> None:
        """``key_images``: the flags of the whole app (the main window's, so that either window saves a
        study's flags); ``reader``: the reader's name now (settings may change it); ``icon``: the app's
        icon for a qtawesome name."""
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("zsmed — beside")
        self.viewer = ImageViewer()
        self.positions: list[float] | None = None
        self.study_uid: str | None = None  # the Study Instance UID of the series shown
        self.key_images = key_images if key_images is not None else KeyImages()
        self._reader = reader
        self._link: SliceLink | None = None
        self._icon_names: dict[QAction, str] = {}
        bar = QToolBar()
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.link_action = QAction("Link scrolling", self)
        self.link_action.setCheckable(True)
        self.link_action.setShortcut(QKeySequence("L"))
        self.link_action.setToolTip("Follow the main viewer's slices (L), lined up where the two are now")
        self.link_action.toggled.connect(lambda on: self.link_changed.emit(on))
        self._icon_names[self.link_action] = "mdi6.link-variant"  # as the main window's Link scrolling
        bar.addAction(self.link_action)
        bar.addSeparator()
        self.key_image_action = self._action(KEY_IMAGE, self.toggle_key_image, shortcut="K",
                                             tip=f"Flag the image as a key image (K again takes the flag off); save "
                                                 f"the study's flags with {SAVE_KEY_IMAGES_HERE}")
        self.key_image_action.setCheckable(True)
        bar.addAction(self.key_image_action)
        self.save_measurements_action = self._save_action(SAVE_MEASUREMENTS, self.save_measurements_sr)
        self.save_view_action = self._save_action(SAVE_VIEW, self.save_presentation_state)
        self.save_key_images_action = self._save_action(SAVE_KEY_IMAGES, self.save_key_images)
        # one button opens the three saves (their words as in the main window's View menu): three buttons
        # with those words would not fit beside the link on a monitor's width
        self.save_menu = QMenu(self)
        for action in (self.save_measurements_action, self.save_view_action, self.save_key_images_action):
            self.save_menu.addAction(action)
        self.save_action = self._action(SAVE_FOR_PACS, None)
        self.save_action.setMenu(self.save_menu)
        bar.addAction(self.save_action)
        button = bar.widgetForAction(self.save_action)
        if isinstance(button, QToolButton):
            button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.status_bar = QStatusBar()
        self.status_bar.setSizeGripEnabled(False)
        self.last_message = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(bar)
        layout.addWidget(self.viewer, 1)
        layout.addWidget(self.status_bar)
        self.toolbar = bar
        self.set_icons(icon)
        self.viewer.current_changed.connect(lambda *_: self.update_actions())
        self.viewer.marks_changed.connect(lambda *_: self.update_actions())
        self.update_actions()
        self.resize(900, 900)

    def _action(self, text: ActionText, slot: Callable[[], object] | None, *, shortcut: str | None = None,
                tip: str | None = None) -> QAction:
        """An action with ``text``'s words and icon, calling ``slot`` (None: one that opens its menu)."""
        action = QAction(text.text, self)
        hint = tip or text.tip
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            hint = f"{hint} ({shortcut})"
        action.setToolTip(hint)
        action.setStatusTip(hint)
        self._icon_names[action] = text.icon_name
        if slot is not None:
            action.triggered.connect(lambda *_: slot())
        self.addAction(action)  # its key works wherever the focus is in this window
        return action

    def _save_action(self, text: ActionText, save: Callable[[Path | None], object]) -> QAction:
        """A save whose menu asks where the file goes, as the main window's do: next to the study
        (``save(None)``) or a folder the reader picks (``save(folder)``)."""
        action = self._action(text, None)
        action.setMenu(sr_destination_menu(self, save))
        return action

    def set_icons(self, icon: Callable[[str], QIcon]) -> None:
        """The actions' icons, drawn by ``icon`` (again when the theme changes)."""
        for action, name in self._icon_names.items():
            action.setIcon(icon(name))

    def show_series(self, paths: list[Path], title: str, positions: list[float] | None,
                    study_uid: str | None = None) -> None:
        """Show ``paths`` (one series, in slice order, of study ``study_uid``) with ``positions`` (mm along
        its normal, or None)."""
        self.unlink()
        self.positions = positions
        self.study_uid = study_uid
        self.viewer.set_key_images(self.key_images.lines())
        self.viewer.set_images(paths, len(paths) // 2, title=title)
        self.setWindowTitle(f"zsmed — beside: {title}")
        self.update_actions()

    def link(self, index: int, positions: list[float] | None) -> SliceLink:
        """Follow the main viewer from now on, lined up as the two are: its image ``index`` (of a series
        with ``positions``) with the image shown here."""
        self._link = link_slices(index, positions, self.viewer.current_index(), self.positions)
        if not self.link_action.isChecked():
            self.link_action.blockSignals(True)
            self.link_action.setChecked(True)
            self.link_action.blockSignals(False)
        return self._link

    def unlink(self) -> None:
        self._link = None
        if self.link_action.isChecked():
            self.link_action.blockSignals(True)
            self.link_action.setChecked(False)
            self.link_action.blockSignals(False)

    def is_linked(self) -> bool:
        return self._link is not None

    def follow(self, index: int, positions: list[float] | None) -> None:
        """The main viewer shows its image ``index``: show the linked image here."""
        if self._link is None or not self.viewer.image_count():
            return
        target = self._link.follow(index, positions, self.positions, self.viewer.image_count())
        if target != self.viewer.current_index():
            self.viewer.go_to(target)

    # --- for the PACS -------------------------------------------------------------------------------
    def show_message(self, text: str, *, warning: bool = False, tooltip: str | None = None) -> None:
        """A notice or a failure at the window's foot (warnings go to the main window's Jobs tab too)."""
        self.status_bar.showMessage(("⚠ " if warning else "") + text)
        self.status_bar.setToolTip(tooltip or text)  # the whole line where a narrow window cuts it
        self.last_message = text
        if warning:
            self.job_done.emit(text)

    def _show_saved(self, saved: Saved) -> Path | None:
        self.show_message(saved.message, warning=saved.warning, tooltip=saved.tooltip)
        if saved.written is not None:
            self.job_done.emit(saved.message)
            self.file_saved.emit(saved.written)
        return saved.written

    def save_measurements_sr(self, out_dir: Path | None = None) -> Path | None:
        """The rulers, regions of interest and angles on the image shown here as a DICOM SR next to it
        (``out_dir`` None) or in ``out_dir``."""
        return self._show_saved(save_measurements(self.viewer, self._reader(), out_dir))

    def save_presentation_state(self, out_dir: Path | None = None) -> Path | None:
        """The view of the image shown here as a presentation state next to it (``out_dir`` None) or in
        ``out_dir``."""
        written = self._show_saved(save_presentation(self.viewer, self._reader(), out_dir))
        if written is not None:
            self.view_saved.emit(written)
        return written

    def toggle_key_image(self) -> bool:
        """K here: flag the image shown as a key image of the study shown here, or take the flag off."""
        path = self.viewer.current_path()
        self._show_saved(flag_key_image(self.key_images, path, self.study_uid, SAVE_KEY_IMAGES_HERE))
        self.show_key_images()
        self.key_images_changed.emit()
        return self.key_images.is_key(path)

    def ask_key_note(self, count: int) -> str | None:
        """The reader's optional note for the key images; None when they cancel."""
        return ask_key_note(self, count)

    def save_key_images(self, out_dir: Path | None = None, note: str | None = None) -> Path | None:
        """The flagged images of the study shown here as one key image note next to the study (``out_dir``
        None) or in ``out_dir``, with ``note`` (None: asked for, optional)."""
        saved = save_study_key_images(self.key_images, self.study_uid,
                                      ask_note=self.ask_key_note if note is None else lambda _count: note,
                                      reader=self._reader(), out_dir=out_dir)
        if saved is None:
            return None
        written = self._show_saved(saved)
        self.show_key_images()
        self.key_images_changed.emit()
        return written

    def show_key_images(self) -> None:
        """The flags changed (here or in the main window): the viewer's lines and the actions follow."""
        self.viewer.set_key_images(self.key_images.lines())
        self.update_actions()

    def update_actions(self) -> None:
        """Each save only where it can work: an image shown, a mark measured, a flag of this study."""
        path = dicom_image_shown(self.viewer)
        self.key_image_action.setEnabled(path is not None and self.study_uid is not None)
        self.key_image_action.setChecked(self.key_images.is_key(path))
        self.save_measurements_action.setEnabled(has_measurements(self.viewer))
        self.save_view_action.setEnabled(path is not None)
        self.save_key_images_action.setEnabled(bool(self.study_uid and self.key_images.unsaved(self.study_uid)))
        self.save_action.setEnabled(any(a.isEnabled() for a in self.save_menu.actions()))

    def closeEvent(self, event: QCloseEvent) -> None:
        self.unlink()
        self.viewer.stop_cine()
        self.closed.emit()
        super().closeEvent(event)


__all__ = ["CompareWindow"]
