"""The reading room: study browser on the left, the image in the centre, the classifier on the
right, and Problems | Case log | Jobs below — the layout PACS viewers taught radiologists.

The window is glue: it opens folders, CDs (DICOMDIR) and files (menu, toolbar, Ctrl+O, drag and
drop, a recent list), hands the selected series to the viewer and the viewer's current image to the
classifier, and remembers its geometry, splitters and last folders in QSettings. Long work runs in
workers (``zsmed_desktop.workers``); every failure is a line in the window, never a crash.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QByteArray,
    QDeadlineTimer,
    QEventLoop,
    QModelIndex,
    QSettings,
    Qt,
    QThreadPool,
    QTimer,
    QUrl,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QCursor,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QDialog,
    QFileDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QSplitter,
    QTabWidget,
    QTextEdit,
    QToolBar,
    QWidget,
)

from zsmed import __version__
from zsmed.dicom.geometry import ImagePlane, Point, slice_normal, slice_positions
from zsmed.dicom.scan import Problem, ScanIndex, Study
from zsmed.errors import ZsmedError
from zsmed.imageio import is_photo
from zsmed.progress import Progress
from zsmed.site import SiteConfig, load_site_config
from zsmed_desktop import theme
from zsmed_desktop.browser import ProblemsPanel, SeriesRef, StudyBrowser, dicom_date, person_name, to_qimage
from zsmed_desktop.builder import BuilderWindow
from zsmed_desktop.caselog_view import CaseLogView
from zsmed_desktop.classify_panel import ClassifyPanel, sr_destination_menu
from zsmed_desktop.compare_window import CompareWindow
from zsmed_desktop.deidentify_flow import ask_and_deidentify
from zsmed_desktop.doctor_dialog import DoctorDialog
from zsmed_desktop.image_export import ask_and_save_image, copy_image_and_report
from zsmed_desktop.key_images_flow import KEY_OBJECT_SELECTION, KeyImages
from zsmed_desktop.models_view import ModelsDialog
from zsmed_desktop.pacs_actions import (
    KEY_IMAGE,
    SAVE_KEY_IMAGES,
    SAVE_MEASUREMENTS,
    SAVE_VIEW,
    Saved,
    ask_key_note,
    dicom_image_shown,
    flag_key_image,
    has_measurements,
    save_measurements,
    save_presentation,
    save_study_key_images,
)
from zsmed_desktop.pacs_link import PacsLink
from zsmed_desktop.presentation_flow import PRESENTATION_STATE_CLASSES, SavedStates, describe, show_state
from zsmed_desktop.reformat_window import ReformatWindow
from zsmed_desktop.settings_dialog import SettingsDialog
from zsmed_desktop.shortcuts_dialog import ShortcutsDialog
from zsmed_desktop.study_grid import GridSeries, StudyGridWindow, study_kind
from zsmed_desktop.tags_dialog import TagsDialog
from zsmed_desktop.theme import icon
from zsmed_desktop.viewer import ImageViewer
from zsmed_desktop.window_dialog import WindowDialog

if TYPE_CHECKING:
    import numpy as np

    from zsmed.dicom.network import PacsNode
    from zsmed.report.presentation import PresentationState

ORGANISATION = "zsmed"
APPLICATION = "zsmed"
MAX_RECENT = 10
PRESET_KEYS = 9
# The viewer's tools the View menu lists (their keys are the viewer's own)
# The viewer's drawing tools, one at a time: action key -> (the viewer's toggle, its "is on" query)
TOOL_MODES = {"measure": ("toggle_measuring", "is_measuring"), "roi": ("toggle_roi", "is_roi_mode"),
              "angle": ("toggle_angle", "is_angle_mode"), "arrow": ("toggle_arrow", "is_arrow_mode")}
VIEWER_TOOLS = ("measure", "roi", "angle", "arrow", "clear_measurements", "rotate_clockwise", "rotate_anticlockwise",
                "flip_horizontal", "flip_vertical", "cine")

__all__ = ["MainWindow", "app_settings", "to_qimage"]


def app_settings() -> QSettings:
    """The app's own QSettings (window geometry, splitters, recent folders): INI in the user scope,
    so tests redirect it with ``QSettings.setPath``."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def short_place(path: str) -> str:
    """``/media/cdrom/DICOMDIR`` → ``DICOMDIR  (cdrom)``: the name and its folder, never the whole path."""
    p = Path(path)
    parent = p.parent.name
    return f"{p.name or path}  ({parent})" if parent else (p.name or path)


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, site: SiteConfig | None = None) -> None:
        super().__init__()
        self.settings = settings if settings is not None else app_settings()
        self.setWindowTitle(f"zsmed {__version__}")
        self.setAcceptDrops(True)
        self.index: ScanIndex | None = None
        self._opened: list[str] = []
        self.site, site_problem = self._load_site(site)
        self.pacs = PacsLink(lambda: self.site, self)  # sending to and receiving from the PACS of the settings
        self.pacs.said.connect(self._pacs_said)
        self.pacs.arrived.connect(self._on_received)
        # whether this workstation is receiving from the PACS, always in sight (IT asks; the reader trusts it)
        self.receiving_label = QLabel()
        self.receiving_label.setToolTip("Studies sent from the PACS to this workstation arrive in the study list "
                                        "(File ▸ Settings ▸ PACS)")
        self.receiving_label.hide()
        self.statusBar().addPermanentWidget(self.receiving_label)
        self.pacs.listening.connect(self._show_listening)
        self.current_series: SeriesRef | None = None
        self.photos: list[Path] = []  # photographs shown instead of a series (dermoscopy, clinical photos)
        self._actions: dict[str, QAction] = {}
        self._icon_names: dict[str, str] = {}
        self.last_message = ""
        self.close_box: QMessageBox | None = None
        self.builder: BuilderWindow | None = None
        self.models_dialog: ModelsDialog | None = None

        # --- panels -----------------------------------------------------------------------------
        self.browser = StudyBrowser()
        self.browser.series_activated.connect(self._on_series)
        self.browser.scan_started.connect(self._on_scan_started)
        self.browser.scan_progress.connect(self._on_scan_progress)
        self.browser.scan_finished.connect(self._on_scan_finished)
        self.browser.scan_cancelled.connect(self._on_scan_cancelled)
        self.browser.scan_failed.connect(self._on_scan_failed)
        self.browser.problems_found.connect(self._on_problems)
        self.browser.index_extended.connect(self._remember_index)
        self.tree = self.browser.tree

        self.viewer = ImageViewer()
        self._deidentifying: Any = None  # the de-identified export's worker while it runs
        self._writing_media: Any = None  # the CD / USB stick writer's worker while it runs
        self.saved_states = SavedStates()
        self.key_images = KeyImages()
        self.compare: CompareWindow | None = None  # the series beside, once the reader puts one there
        self.study_grid: StudyGridWindow | None = None  # the study in panes (G), once asked for
        self._grid_study = ""  # the Study Instance UID the panes show
        self.reformat: ReformatWindow | None = None  # coronal / sagittal / MIP of the series, once asked for
        self.report_dialog: QDialog | None = None  # the reports of the series last opened, while shown
        self._series_positions: dict[str, list[float] | None] = {}  # series key -> slice positions (mm)
        self._planes: dict[Path, list[ImagePlane | None]] = {}  # image -> where each of its frames lies
        self._sop_uids: dict[Path, str] = {}  # image file -> SOP Instance UID, from the scan
        self._images_by_uid: dict[str, tuple[Path, str]] = {}  # the other way: (image file, its series' UID)
        # a state to show once its image is on the screen (opened from a presentation-state series)
        self._pending_state: tuple[PresentationState, str, Path] | None = None
        self._state_hint_for: Path | None = None
        self.viewer.current_changed.connect(self._on_current_image)
        self.viewer.series_step.connect(self.step_series)
        for changed in (self.viewer.measuring_changed, self.viewer.roi_mode_changed, self.viewer.angle_mode_changed,
                        self.viewer.arrow_mode_changed):
            changed.connect(lambda *_: self._show_tools())
        self.viewer.marks_changed.connect(lambda *_: self._update_measurements_action())
        self.viewer.current_changed.connect(lambda *_: self._update_image_actions())
        self.viewer.current_changed.connect(lambda *_: self._follow_beside())
        self.viewer.current_changed.connect(lambda *_: self._update_reference_lines())
        self.viewer.locate_requested.connect(lambda point: self._locate(self.viewer, point))

        self.classify = ClassifyPanel(self.site)
        self.classify.setMinimumWidth(300)
        self._take_over_panel_keys(self.classify)
        self.classify.sr_saved.connect(lambda path: self._send_saved([path]))

        self.problems = ProblemsPanel()
        self.problems.count_changed.connect(self._update_problem_tab)
        self.caselog = CaseLogView(self.site)
        self.classify.logged.connect(lambda *_: self.caselog.refresh())
        self.jobs = QListWidget()
        self.jobs.setAlternatingRowColors(True)

        self.bottom = QTabWidget()
        self.bottom.setDocumentMode(True)
        self.bottom.addTab(self.problems, "Problems (0)")
        # Not in a scroll area: that let the log view grow past the panel and hid its buttons below
        # the fold; the view's minimum height is small instead (its tables give way, its buttons stay).
        self.bottom.addTab(self.caselog, "Case log")
        self.bottom.addTab(self.jobs, "Jobs")

        self.h_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.h_splitter.setObjectName("h_splitter")
        self.h_splitter.addWidget(self.browser)
        self.h_splitter.addWidget(self.viewer)
        self.h_splitter.addWidget(self.classify)
        self.h_splitter.setStretchFactor(0, 0)
        self.h_splitter.setStretchFactor(1, 1)
        self.h_splitter.setStretchFactor(2, 0)
        self.h_splitter.setChildrenCollapsible(False)
        self.h_splitter.setSizes([340, 860, 320])
        self.v_splitter = QSplitter(Qt.Orientation.Vertical)
        self.v_splitter.setObjectName("v_splitter")
        self.v_splitter.addWidget(self.h_splitter)
        self.v_splitter.addWidget(self.bottom)
        self.v_splitter.setStretchFactor(0, 1)
        self.v_splitter.setStretchFactor(1, 0)
        self.v_splitter.setSizes([700, 170])
        self.setCentralWidget(self.v_splitter)

        self._pending_image: Path | None = None
        self._context_timer = QTimer(self)
        self._context_timer.setSingleShot(True)
        self._context_timer.setInterval(120)
        self._context_timer.timeout.connect(self._send_context)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self.statusBar().showMessage("Ready: open a folder, a CD (DICOMDIR) or files (Ctrl+O), or drop them here")
        self.resize(1500, 920)
        self.restore_state()
        self._update_actions()
        if site_problem:
            self.show_message(site_problem, warning=True)
        self._received_later: list[Path] = []
        self.browser.scan_finished.connect(lambda _index: self._join_received_later())
        self.pacs.start_receiving()

    @staticmethod
    def _take_over_panel_keys(panel: QWidget) -> None:
        """Enter and C are the window's (they confirm / correct wherever the focus is); the panel's
        own shortcuts for them would make each key ambiguous, and Qt then fires neither."""
        taken = {QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter), QKeySequence(Qt.Key.Key_C)}
        for shortcut in panel.findChildren(QShortcut):
            if shortcut.key() in taken:
                shortcut.setEnabled(False)

    # --- settings ---------------------------------------------------------------------------------
    @staticmethod
    def _load_site(site: SiteConfig | None) -> tuple[SiteConfig, str | None]:
        if site is not None:
            return site, None
        try:
            return load_site_config(), None
        except ZsmedError as exc:
            return SiteConfig(), f"Site settings not used: {exc}"

    def restore_state(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(QByteArray(geometry))
        for splitter in (self.h_splitter, self.v_splitter):
            state = self.settings.value(f"window/{splitter.objectName()}")
            if isinstance(state, QByteArray | bytes):
                splitter.restoreState(QByteArray(state))
        self._rebuild_recent_menu()

    def _place_where_it_was(self, window: QWidget, name: str) -> None:
        """A window of its own (the series beside, the reformat) opens where the reader last had it, on
        the second monitor say; it remembers the place whenever it closes. Qt brings a place on a screen
        no longer attached back onto one."""
        geometry = self.settings.value(f"{name}/geometry")
        if isinstance(geometry, QByteArray | bytes):
            window.restoreGeometry(QByteArray(geometry))
        closed = getattr(window, "closed", None)
        if closed is not None:
            closed.connect(lambda: self.settings.setValue(f"{name}/geometry", window.saveGeometry()))

    def save_state(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        for splitter in (self.h_splitter, self.v_splitter):
            self.settings.setValue(f"window/{splitter.objectName()}", splitter.saveState())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.may_close():
            event.ignore()
            return
        self.browser.shutdown()
        self.pacs.stop_receiving()
        for window in (self.compare, self.reformat, self.study_grid):
            if window is not None:
                window.close()  # a window of its own: left open, it would keep the app running
        if self.builder is not None:
            self.builder.close()  # cancels a build in progress: nothing half-written is left
        self.save_state()
        super().closeEvent(event)
        # Workers stop at their next step; wait a moment so none outlives the window's objects.
        QThreadPool.globalInstance().waitForDone(3000)

    def may_close(self) -> bool:
        """Results the case log has not taken yet (locked, read-only, drive gone) are never dropped
        silently: the reader is warned and chooses Retry, Save to a file, Close anyway or Cancel."""
        while (pending := self.classify.pending_count()) > 0:
            box = QMessageBox(QMessageBox.Icon.Warning, "Results not in the case log",
                              f"{pending} result{'s are' if pending != 1 else ' is'} not in the case log yet "
                              "(it could not be written).", parent=self)
            box.setInformativeText(
                f"{self.classify.pending_reason()}\n\nRetry writing to the case log, save them to a file "
                "(to add later), or close and lose them.")
            retry = box.addButton("Retry", QMessageBox.ButtonRole.AcceptRole)
            save = box.addButton("Save to a file…", QMessageBox.ButtonRole.ActionRole)
            discard = box.addButton("Close anyway", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(retry)
            self.close_box = box  # for tests
            box.exec()
            clicked = box.clickedButton()
            self.close_box = None
            if clicked is retry:
                self.classify.retry_pending()
                deadline = QDeadlineTimer(int(1000 * (self.classify.review_log_timeout + 10)))
                while self.classify.is_busy() and not deadline.hasExpired():
                    QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
                continue  # written: closes; still refused: asks again
            if clicked is save:
                saved = self.classify.ask_save_pending()
                if saved is None:
                    continue
                self.show_message(f"{pending} result{'s' * (pending != 1)} not in the case log saved to {saved}")
                return True
            return clicked is discard
        return True

    def recent(self) -> list[str]:
        value: Any = self.settings.value("recent/paths", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if str(v)]

    def _remember(self, paths: Sequence[str]) -> None:
        entries = [os.path.abspath(p) for p in paths]
        key = entries[0] if len(entries) == 1 else os.path.dirname(entries[0])
        recent = [key, *[r for r in self.recent() if r != key]][:MAX_RECENT]
        self.settings.setValue("recent/paths", recent)
        self.settings.setValue("recent/last_folder", key if os.path.isdir(key) else os.path.dirname(key))
        self.settings.sync()
        self._rebuild_recent_menu()

    def last_folder(self) -> str:
        folder = str(self.settings.value("recent/last_folder", "") or "")
        return folder if folder and os.path.isdir(folder) else str(Path.home())

    # --- actions ----------------------------------------------------------------------------------
    def _action(self, key: str, text: str, slot: Callable[[], Any], shortcut: Any = None,
                icon_name: str | None = None, tip: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if icon_name:
            action.setIcon(icon(icon_name))
            self._icon_names[key] = icon_name
        hint = tip or text.rstrip("…")
        if shortcut is not None:
            hint = f"{hint} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})"
        action.setToolTip(hint)
        action.setStatusTip(hint)
        action.triggered.connect(lambda *_: slot())
        self.addAction(action)  # shortcuts work with menus and toolbars hidden
        self._actions[key] = action
        return action

    def action(self, key: str) -> QAction:
        return self._actions[key]

    def _build_actions(self) -> None:
        a = self._action
        a("open_folder", "Open folder…", self.ask_folder, QKeySequence.StandardKey.Open, "mdi6.folder-open-outline",
          "Open a folder of DICOM files")
        a("open_files", "Open files or DICOMDIR…", self.ask_files, "Ctrl+Shift+O", "mdi6.disc",
          "Open DICOM files or a CD's DICOMDIR")
        a("cancel_scan", "Cancel scan", self.browser.cancel_scan, "Esc", "mdi6.close-circle-outline")
        a("settings", "Settings…", self.open_settings, QKeySequence.StandardKey.Preferences, "mdi6.cog-outline")
        a("quit", "Quit", self.close, QKeySequence.StandardKey.Quit)
        a("next_image", "Next image", lambda: self._viewer_call("next_image"), "Space", "mdi6.chevron-down")
        a("previous_image", "Previous image", lambda: self._viewer_call("previous_image"), "Shift+Space",
          "mdi6.chevron-up")
        a("next_series", "Next series", lambda: self.step_series(1), "PgDown", "mdi6.chevron-double-down")
        a("previous_series", "Previous series", lambda: self.step_series(-1), "PgUp", "mdi6.chevron-double-up")
        a("reset", "Reset view", lambda: self._viewer_call("reset"), "R", "mdi6.restore")
        a("invert", "Invert", lambda: self._viewer_call("invert"), "I", "mdi6.invert-colors")
        a("fit", "Fit to window", lambda: self._viewer_call("fit"), "F", "mdi6.fit-to-screen-outline")
        a("one_to_one", "Actual pixels (1:1)", lambda: self._viewer_call("one_to_one"), "Ctrl+1",
          "mdi6.numeric-1-box-outline")
        a("overlays", "Show / hide image text", lambda: self._viewer_call("toggle_overlays"), "O",
          "mdi6.information-outline")
        # The viewer's tools, in the View menu (and Measure on the toolbar) so that they can be found
        # without knowing the keys; the keys are the viewer's own.
        a("measure", "Measure", lambda: self._toggle_tool("measure"), "M", "mdi6.ruler",
          "Measure: a left-button drag draws a ruler (mm from the pixel spacing)")
        self._actions["measure"].setCheckable(True)
        a("roi", "Region of interest", lambda: self._toggle_tool("roi"), "E", "mdi6.ellipse-outline",
          "Region of interest: a left-button drag draws an ellipse (area; mean ± SD, min, max; pixels)")
        self._actions["roi"].setCheckable(True)
        a("angle", "Angle", lambda: self._toggle_tool("angle"), "N", "mdi6.angle-acute",
          "Angle: a left-button drag from the vertex draws the first arm, a click places the second "
          "(degrees, in the patient's plane)")
        self._actions["angle"].setCheckable(True)
        a("arrow", "Arrow", lambda: self._toggle_tool("arrow"), "T", "mdi6.arrow-bottom-right",
          "Arrow: a left-button drag from the note to the finding, then an optional note (for key images)")
        self._actions["arrow"].setCheckable(True)
        a("clear_measurements", "Remove the measurements", lambda: self._viewer_call("clear_measurements"), None,
          "mdi6.eraser")
        a("rotate_clockwise", "Rotate clockwise", lambda: self._viewer_call("rotate", 1), "]", "mdi6.rotate-right")
        a("rotate_anticlockwise", "Rotate anticlockwise", lambda: self._viewer_call("rotate", -1), "[",
          "mdi6.rotate-left")
        a("flip_horizontal", "Flip left-right", lambda: self._viewer_call("flip_horizontal"), "H",
          "mdi6.flip-horizontal")
        a("flip_vertical", "Flip up-down", lambda: self._viewer_call("flip_vertical"), "V", "mdi6.flip-vertical")
        a("cine", "Play / stop cine", lambda: self._viewer_call("toggle_cine"), "P", "mdi6.play-pause",
          "Play through the frames and images (the file's frame rate, else 10 per second)")
        # Its menu asks where, as the classify panel's Save as DICOM SR does; triggered directly, it shows that menu.
        self.measurements_menu = sr_destination_menu(self, self.save_measurements_sr)
        a("save_measurements", SAVE_MEASUREMENTS.text, lambda: self.measurements_menu.popup(QCursor.pos()), None,
          SAVE_MEASUREMENTS.icon_name, SAVE_MEASUREMENTS.tip)
        self._actions["save_measurements"].setMenu(self.measurements_menu)
        self.presentation_menu = sr_destination_menu(self, self.save_presentation_state)
        a("save_presentation", SAVE_VIEW.text, lambda: self.presentation_menu.popup(QCursor.pos()), None,
          SAVE_VIEW.icon_name, SAVE_VIEW.tip)
        self._actions["save_presentation"].setMenu(self.presentation_menu)
        a("show_presentation", "Show the saved presentation state", self.show_saved_state, None,
          "mdi6.monitor-eye", "Show the image as it was saved for the PACS: its window, rotation and marks")
        a("compare", "Put this series beside (compare)", self.put_series_beside, "B", "mdi6.compare",
          "Show this series in a window of its own (for a second monitor), to read another series beside it")
        a("link_compare", "Link scrolling with the series beside", self.toggle_compare_link, "L", "mdi6.link-variant",
          "The series beside follows this one's slices, lined up as the two are now (by position in mm)")
        self._actions["link_compare"].setCheckable(True)
        a("study_grid", "The study in panes", self.open_study_grid, "G", "mdi6.view-grid-outline",
          "This study's series side by side (up to four), those in the same plane scrolling together, as a PACS "
          "hangs an MR's sequences")
        a("study_grid_prior", "The study and its prior in panes", lambda: self.open_study_grid(with_prior=True),
          "Shift+G", "mdi6.view-split-horizontal",
          "Two of this study's series (three in a wide window) above the same series of the patient's previous "
          "study, each prior pane following the one above (a PACS's follow-up hanging protocol)")
        a("compare_prior", "Compare with the prior study", self.compare_with_prior, "Shift+B", "mdi6.history",
          "Put the same kind of series from this patient's previous study beside (a PACS's hanging protocol)")
        a("reformat", "Reformat (coronal / sagittal / MIP)…", self.open_reformat, "Shift+M", "mdi6.axis-arrow",
          "This series as axial, coronal and sagittal slices and thick-slab MIPs, at true scale, in a window of "
          "its own")
        a("key_image", KEY_IMAGE.text, self.toggle_key_image, "K", KEY_IMAGE.icon_name,
          "Flag the image as a key image (K again takes the flag off); save the study's flags for the PACS "
          "with View > Save key images for the PACS")
        self._actions["key_image"].setCheckable(True)
        self.key_images_menu = sr_destination_menu(self, self.save_key_images)
        a("save_key_images", SAVE_KEY_IMAGES.text, lambda: self.key_images_menu.popup(QCursor.pos()), None,
          SAVE_KEY_IMAGES.icon_name, SAVE_KEY_IMAGES.tip)
        self._actions["save_key_images"].setMenu(self.key_images_menu)
        a("save_image", "Save the image as…", self.save_image, QKeySequence.StandardKey.Save, "mdi6.image-move",
          "Save the image as shown (window, rulers, regions) as PNG or JPEG, without patient details unless asked")
        a("copy_image", "Copy the image", self.copy_image, QKeySequence.StandardKey.Copy, "mdi6.content-copy",
          "Copy the image as shown, without patient details, to paste into a report or a slide")
        # Ctrl+C copies the image only while the image has the focus: in the study list's search, the case
        # log's table or a comment it copies their text as everywhere else.
        self.removeAction(self._actions["copy_image"])
        self._actions["copy_image"].setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.viewer.addAction(self._actions["copy_image"])
        a("deidentify", "Export the study de-identified…", self.export_deidentified, None, "mdi6.incognito",
          "Copy the selected study with names, IDs, dates and UIDs replaced and private tags and comments removed "
          "(a teaching file, a colleague, a meeting)")
        a("deidentify_media", "Export the study de-identified to a CD or USB stick…",
          lambda: self.export_deidentified(as_media=True), None, "mdi6.incognito",
          "The de-identified copy as a CD or USB stick's DICOM files with a DICOMDIR (a tumour board, a meeting)")
        a("media", "Copy the study to a CD or USB stick…", self.copy_study_to_media, None, "mdi6.disc",
          "Write the selected study as a CD or USB stick's DICOM files with a DICOMDIR, which any DICOM viewer "
          "opens (for the patient, a referring physician): into an empty folder, to burn or copy as it is")
        a("get_studies", "Get studies from the PACS…", self.get_studies_from_pacs, None, "mdi6.cloud-download-outline",
          "Find the patient's studies on the PACS (priors, say) and fetch those chosen; they join the study list")
        a("send_study", "Send the study to the PACS…", self.send_study_to_pacs, None, "mdi6.server-network",
          "Store every image of the selected study on the PACS of the settings (a study brought on a CD, say)")
        a("dicom_tags", "DICOM tags…", self.show_dicom_tags, "Ctrl+I", "mdi6.tag-text-outline",
          "Every element of the file shown: tag, name, VR and value (filter, copy)")
        a("confirm", "Confirm result", self.confirm, Qt.Key.Key_Return, "mdi6.check-bold",
          "Confirm the classifier's result")
        a("correct", "Correct result…", self.correct, "C", "mdi6.pencil-outline", "Correct the classifier's result")
        a("case_log", "Case log", lambda: self.show_tab("Case log"), "Ctrl+L", "mdi6.notebook-outline")
        a("problems", "Problems", lambda: self.show_tab("Problems"), "Ctrl+P", "mdi6.alert-outline")
        a("shortcuts", "Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents,
          "mdi6.keyboard-outline")
        a("about", "About zsmed", self.show_about)
        a("doctor", "Check this installation…", self.open_doctor, None, "mdi6.stethoscope",
          "Check settings, folders, the case log, the models and the software zsmed needs (as 'zsmed doctor')")
        a("build_model", "Build a classifier…", self.open_builder, "Ctrl+B", "mdi6.hammer-wrench",
          "Build a classifier from a few example images per class")
        a("models", "Models and their cards…", self.open_models, "Ctrl+M", "mdi6.card-text-outline",
          "The models in the models folder, what each was built on and how it checked out")
        a("check_model", "Check a model on labelled cases…", self.open_check, None, "mdi6.clipboard-check-outline",
          "Run a model on cases whose diagnosis is known and see how many it gets right")
        a("open_model", "Open a model file…", self.ask_model, None, "mdi6.brain")
        a("refresh_models", "Look again in the models folder", self.classify.refresh_models)
        a("verify_log", "Check the case log is intact", self._verify_log)
        a("theme_dark", "Dark theme", lambda: self.set_theme("dark"))
        a("theme_light", "Light theme", lambda: self.set_theme("light"))
        # The keypad's Enter confirms too.
        self._actions["confirm"].setShortcuts([QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)])
        self.preset_actions: list[QAction] = []
        # Number keys: the viewer's window presets for the image shown (CT windows, the file's own, auto).
        for number in range(1, PRESET_KEYS + 1):
            action = QAction(f"Preset {number}", self)
            action.setShortcut(QKeySequence(str(number)))
            action.triggered.connect(lambda *_, n=number: self.apply_preset_number(n))
            self.addAction(action)
            self.preset_actions.append(action)
        a("auto_window", "Automatic window", lambda: self._viewer_call("apply_preset", "auto"), "0")
        a("set_window", "Set the window…", self.ask_window, "W", None,
          "Type the window's width and level (for a window no preset has)")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.action("open_folder"))
        file_menu.addAction(self.action("open_files"))
        self.recent_menu = QMenu("Open &recent", self)
        self.recent_menu.setToolTipsVisible(True)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.action("save_image"))
        file_menu.addAction(self.action("copy_image"))
        file_menu.addAction(self.action("deidentify"))
        file_menu.addAction(self.action("deidentify_media"))
        file_menu.addAction(self.action("media"))
        file_menu.addAction(self.action("get_studies"))
        file_menu.addAction(self.action("send_study"))
        file_menu.addSeparator()
        file_menu.addAction(self.action("settings"))
        file_menu.addSeparator()
        file_menu.addAction(self.action("quit"))

        view_menu = bar.addMenu("&View")
        for key in ("next_image", "previous_image", "next_series", "previous_series"):
            view_menu.addAction(self.action(key))
        view_menu.addSeparator()
        self.preset_menu = QMenu("Window &presets", self)
        self.preset_menu.aboutToShow.connect(self._build_presets)
        view_menu.addMenu(self.preset_menu)
        for key in ("reset", "invert", "fit", "one_to_one", "overlays"):
            view_menu.addAction(self.action(key))
        view_menu.addSeparator()
        for key in VIEWER_TOOLS:
            view_menu.addAction(self.action(key))
        view_menu.addSeparator()  # what goes back to the PACS
        view_menu.addAction(self.action("save_measurements"))
        view_menu.addAction(self.action("save_presentation"))
        view_menu.addAction(self.action("show_presentation"))
        view_menu.addAction(self.action("key_image"))
        view_menu.addAction(self.action("save_key_images"))
        view_menu.addSeparator()  # a second series beside
        view_menu.addAction(self.action("study_grid"))
        view_menu.addAction(self.action("study_grid_prior"))
        view_menu.addAction(self.action("compare"))
        view_menu.addAction(self.action("compare_prior"))
        view_menu.addAction(self.action("link_compare"))
        view_menu.addAction(self.action("reformat"))
        view_menu.addSeparator()
        view_menu.addAction(self.action("dicom_tags"))
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("&Theme")
        theme_menu.addAction(self.action("theme_dark"))
        theme_menu.addAction(self.action("theme_light"))
        self._build_presets()

        classify_menu = bar.addMenu("&Classify")
        classify_menu.addAction(self.action("confirm"))
        classify_menu.addAction(self.action("correct"))

        models_menu = bar.addMenu("&Models")
        models_menu.addAction(self.action("build_model"))
        models_menu.addAction(self.action("models"))
        models_menu.addAction(self.action("check_model"))
        models_menu.addSeparator()
        models_menu.addAction(self.action("open_model"))
        models_menu.addAction(self.action("refresh_models"))
        self.action_models_folder = QAction("Models folder…", self)
        self.action_models_folder.triggered.connect(self.open_settings)
        models_menu.addAction(self.action_models_folder)

        log_menu = bar.addMenu("&Log")
        log_menu.addAction(self.action("case_log"))
        log_menu.addAction(self.action("verify_log"))
        log_menu.addAction(self.action("problems"))

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.action("shortcuts"))
        help_menu.addAction(self.action("doctor"))
        help_menu.addAction(self.action("about"))

    def preset_names(self) -> list[str]:
        try:
            return [str(n) for n in self.viewer.presets()][:PRESET_KEYS]
        except Exception:  # a viewer without presets
            return []

    def _build_presets(self) -> None:
        """Label the number-key actions with the presets of the image shown (on opening the menu)."""
        self.preset_menu.clear()
        names = self.preset_names()
        for number, action in enumerate(self.preset_actions, 1):
            if number <= len(names):
                action.setText(names[number - 1].capitalize() if not names[number - 1].startswith("file")
                               else f"Window {names[number - 1][5:]} from the file")
                self.preset_menu.addAction(action)
        self.preset_menu.addAction(self.action("auto_window"))
        self.preset_menu.addSeparator()
        self.preset_menu.addAction(self.action("set_window"))

    def ask_window(self) -> WindowDialog | None:
        """View > Window presets > Set the window… (W): the window in use, to be typed over; OK applies it."""
        if self._typing():
            return None
        current = self.viewer.window_level()
        frame = self.viewer.current_frame_data()
        if frame is None:
            self.show_message("Set the window: show an image first", warning=True)
            return None
        if current is None:
            self.show_message("Set the window: the image is shown through its own lookup table (VOI LUT); "
                              "choose a window preset (1–9) or the automatic window (0) first", warning=True)
            return None
        dialog = WindowDialog(self, *current, unit="HU" if frame.hounsfield else "")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        # the viewer directly: at OK the focus may still be in the dialog's boxes, where _viewer_call stops
        dialog.accepted.connect(lambda: self.viewer.set_window(*dialog.chosen()))
        dialog.open()
        return dialog

    def apply_preset_number(self, number: int) -> None:
        names = self.preset_names()
        if 1 <= number <= len(names):
            self._viewer_call("apply_preset", names[number - 1])

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("main_toolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(toolbar)
        for key in ("open_folder", "open_files"):
            toolbar.addAction(self.action(key))
        toolbar.addSeparator()
        for key in ("previous_series", "next_series", "reset", "invert", "fit", "measure"):
            toolbar.addAction(self.action(key))
        toolbar.addSeparator()
        for key in ("confirm", "correct"):
            toolbar.addAction(self.action(key))
        toolbar.addSeparator()
        toolbar.addAction(self.action("build_model"))
        toolbar.addAction(self.action("settings"))
        self.toolbar = toolbar

    def _rebuild_recent_menu(self) -> None:
        if not hasattr(self, "recent_menu"):
            return
        self.recent_menu.clear()
        recent = self.recent()
        for path in recent:
            action = QAction(short_place(path), self.recent_menu)
            action.setToolTip(path)
            action.setEnabled(os.path.exists(path))
            action.triggered.connect(lambda *_, p=path: self.open_paths([p]))
            self.recent_menu.addAction(action)
        if recent:
            self.recent_menu.addSeparator()
            clear = QAction("Clear the list", self.recent_menu)
            clear.triggered.connect(self._clear_recent)
            self.recent_menu.addAction(clear)
        self.recent_menu.setEnabled(bool(recent))

    def _clear_recent(self) -> None:
        self.settings.setValue("recent/paths", [])
        self._rebuild_recent_menu()

    def _update_actions(self) -> None:
        has_image = self._image_open()
        for key in ("next_image", "previous_image", "reset", "invert", "fit", "one_to_one", "overlays",
                    "set_window", *VIEWER_TOOLS):
            self.action(key).setEnabled(has_image)
        for action in self.preset_actions:
            action.setEnabled(has_image)
        self.action("next_series").setEnabled(self.index is not None)
        self.action("previous_series").setEnabled(self.index is not None)
        has_panel = self.classify is not None and has_image
        self.action("confirm").setEnabled(has_panel)
        self.action("correct").setEnabled(has_panel)
        self.action("cancel_scan").setEnabled(self.browser.scanning)
        self.action("reformat").setEnabled(self._can_reformat())
        self._update_measurements_action()
        self._update_image_actions()

    def _image_open(self) -> bool:
        """A series or photographs are open (the viewer may still be decoding its image)."""
        return self.current_series is not None or bool(self.photos)

    def _image_shown(self) -> bool:
        """An image of what is open is on the screen (decoded)."""
        return self.viewer.current_frame_data() is not None and self._image_open()

    def _update_image_actions(self) -> None:
        """Save / copy the image while one is shown; its DICOM tags for a DICOM file (not a photograph)."""
        shown = self._image_shown()
        path = self.viewer.current_path()
        self.action("save_image").setEnabled(shown)
        self.action("copy_image").setEnabled(shown)
        self.action("dicom_tags").setEnabled(path is not None and not is_photo(path) and self._image_open())
        self.action("deidentify").setEnabled(self.current_series is not None and self._deidentifying is None)
        self.action("deidentify_media").setEnabled(self.action("deidentify").isEnabled())
        self.action("send_study").setEnabled(self.current_series is not None and self.pacs_node() is not None)
        self.action("media").setEnabled(self.current_series is not None and self._writing_media is None)
        self.action("get_studies").setEnabled(self.pacs_node() is not None)
        dicom_shown = shown and path is not None and not is_photo(path)
        self.action("save_presentation").setEnabled(dicom_shown)
        self._update_saved_state(path if dicom_shown else None)
        self._update_key_image_actions(path if dicom_shown else None)

    def _update_measurements_action(self) -> None:
        """Save measurements only with a ruler or a region on the image shown."""
        self.action("save_measurements").setEnabled(self._image_open() and has_measurements(self.viewer))

    # --- opening ----------------------------------------------------------------------------------
    def ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of DICOM files", self.last_folder())
        if folder:
            self.open_paths([folder])

    def ask_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open DICOM files or a CD's DICOMDIR", self.last_folder())
        if files:
            self.open_paths(files)

    def open_paths(self, paths: Sequence[str | Path]) -> Any:
        """Scan what was opened; the tree fills as the scan runs. Returns the scan worker."""
        texts = [str(p) for p in paths]
        missing = [p for p in texts if not os.path.lexists(p)]
        if missing and len(missing) == len(texts):
            self.show_message(f"{Path(missing[0]).name}: not found (moved, or the disc was taken out?)",
                              warning=True, tooltip=missing[0])
            return None
        photos = [Path(p) for p in texts if os.path.isfile(p) and is_photo(p)]
        if photos and len(photos) == len(texts):
            self._remember(texts)
            self.open_photos(photos)
            return None
        self._remember(texts)
        self._opened = [p for p in texts if not (os.path.isfile(p) and is_photo(p))]
        self.index = None
        self.current_series = None
        self.photos = []
        self.problems.clear_problems()
        self.setWindowTitle(f"zsmed {__version__} — {short_place(texts[0])}")
        return self.browser.open_paths(self._opened)

    def open_photos(self, photos: Sequence[Path]) -> None:
        """Photographs (dermoscopy, clinical photos) in the viewer and the classifier; no tree."""
        self.photos = [Path(p) for p in photos]
        self.current_series = None
        self.browser.tree.setCurrentIndex(QModelIndex())  # no series: a click on one shows it again
        count = len(self.photos)
        title = f"{count} photograph{'s' * (count != 1)}"
        self.setWindowTitle(f"zsmed {__version__} — {short_place(str(self.photos[0]))}")
        self.viewer.set_images(self.photos, 0, title=title)
        self.statusBar().showMessage(f"{title}: {', '.join(p.name for p in self.photos[:3])}"
                                     + (" …" if count > 3 else ""))
        self._update_actions()
        self._on_current_image(self.photos[0])

    # drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.paths_to_open(event.source(), event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self.paths_to_open(event.source(), event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def paths_to_open(self, source: Any, mime: Any) -> list[str]:
        """What a drop on the window opens. A series dragged out of this window's own study list is
        for the builder: dropped back here it would replace the open studies with that one series."""
        return [] if source is self.tree else self.dropped_paths(mime)

    @staticmethod
    def dropped_paths(mime: Any) -> list[str]:
        if mime is None or not mime.hasUrls():
            return []
        urls: list[QUrl] = mime.urls()
        return [u.toLocalFile() for u in urls if u.isLocalFile() and u.toLocalFile()]

    # --- scanning feedback ------------------------------------------------------------------------
    def _job_line(self, text: str) -> None:
        if self.jobs.count() and self.jobs.item(0).data(Qt.ItemDataRole.UserRole) == "running":
            self.jobs.item(0).setText(text)
        else:
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, "running")
            self.jobs.insertItem(0, item)

    def _finish_job_line(self, text: str) -> None:
        self._job_line(text)
        self.jobs.item(0).setData(Qt.ItemDataRole.UserRole, "done")

    def _on_scan_started(self) -> None:
        self._job_line("Scanning: listing files…")
        self._update_actions()

    def _on_scan_progress(self, done: int, total: int, _message: str) -> None:
        text = f"Scanning: {done:,} of {total:,} files read" if total else f"Scanning: {done:,} files found"
        self.statusBar().showMessage(text + "   (Esc cancels)")
        self._job_line(text)

    def _remember_index(self, index: ScanIndex) -> None:
        """The studies open now, and the look-ups made from them (also when series saved since the scan
        join them: a reformat series)."""
        self.index = index
        self._images_by_uid = {i.sop_instance_uid: (Path(i.path), se.uid) for pa in index.patients
                               for st in pa.studies for se in st.series for i in se.instances if i.is_image}
        self._sop_uids = {path: uid for uid, (path, _) in self._images_by_uid.items()}

    def _on_scan_finished(self, index: ScanIndex) -> None:
        self._remember_index(index)
        self._series_positions.clear()
        self.saved_states.set_files(Path(i.path) for i in index.instances
                                    if i.sop_class_uid in PRESENTATION_STATE_CLASSES)
        self.key_images.clear_saved()
        self.key_images.load((Path(i.path) for i in index.instances if i.sop_class_uid == KEY_OBJECT_SELECTION),
                             {uid: path for uid, (path, _) in self._images_by_uid.items()})
        self._show_key_images()
        counts = index.counts()
        images = sum(1 for i in index.instances if i.is_image)
        summary = (
            f"{counts['patients']} patient{'s' * (counts['patients'] != 1)}, "
            f"{counts['studies']} stud{'ies' if counts['studies'] != 1 else 'y'}, "
            f"{counts['series']} series, {images} image{'s' * (images != 1)}"
        )
        if counts["instances"] > images:
            others = counts["instances"] - images
            summary += f" and {others} other object{'s' * (others != 1)} (reports, plans)"
        extra = []
        if counts["problems"]:
            extra.append(f"{counts['problems']} problem{'s' * (counts['problems'] != 1)} (see the Problems tab)")
        if counts["skipped_non_dicom"]:
            skipped = counts["skipped_non_dicom"]
            extra.append(f"{skipped} other file{'s' * (skipped != 1)} skipped (not DICOM)")
        text = summary + ("; " + "; ".join(extra) if extra else "")
        if index.seconds >= 1:
            text += f" (read in {index.seconds:.0f} s)"
        self._finish_job_line("Scan finished: " + text)
        photos = [] if index.patients else self._photos_in(self._opened)
        if photos:
            self._finish_job_line(f"No DICOM here; showing {len(photos)} photographs")
            self.open_photos(photos)
        elif not index.patients:
            self.show_message(
                "No DICOM images found in what was opened"
                + (f"; {counts['problems']} files could not be read (Problems tab)" if counts["problems"] else ""),
                warning=True,
            )
            if counts["problems"]:
                self.show_tab("Problems")
        else:
            self.statusBar().showMessage(text)
            self.fit_browser_width()
            if self.browser.current_series() is None:
                self.browser.select_first_series()
        self._update_actions()

    def fit_browser_width(self) -> None:
        """Widen the browser so its longest label shows whole (up to 40 % of the window), taking
        the room from the image."""
        tree = self.browser.tree
        needed = self.browser.content_width() + tree.verticalScrollBar().sizeHint().width() + 2 * tree.frameWidth() + 8
        sizes = self.h_splitter.sizes()
        if len(sizes) != 3 or sizes[0] >= needed:
            return
        total = sum(sizes)
        width = min(needed, int(0.4 * total))
        viewer = max(self.viewer.minimumSizeHint().width(), sizes[1] - (width - sizes[0]))
        self.h_splitter.setSizes([width, viewer, max(0, total - width - viewer)])

    def _on_scan_cancelled(self) -> None:
        self._finish_job_line("Scan cancelled")
        self.statusBar().showMessage("Scan cancelled: what was read so far stays in the list")
        self._update_actions()

    def _on_scan_failed(self, message: str) -> None:
        self._finish_job_line("Scan failed: " + message)
        self.show_message(message, warning=True)
        self._update_actions()

    def _on_problems(self, problems: list[Problem]) -> None:
        self.problems.add_problems(problems)

    def _update_problem_tab(self, count: int) -> None:
        position = self.bottom.indexOf(self.problems)
        self.bottom.setTabText(position, f"Problems ({count})")
        self.bottom.setTabToolTip(position, f"{count} file{'s' * (count != 1)} could not be read")

    def show_tab(self, name: str) -> None:
        for k in range(self.bottom.count()):
            if self.bottom.tabText(k).startswith(name):
                self.bottom.setCurrentIndex(k)
                return

    # --- series, images, classifier ---------------------------------------------------------------
    def _on_series(self, ref: SeriesRef) -> None:
        self.current_series = ref
        self.photos = []
        paths = ref.image_paths
        if not paths and (self._open_presentation_series(ref) or self._open_key_image_series(ref)
                          or self._open_report_series(ref)):
            return
        if not paths:
            self.statusBar().showMessage(f"{ref.title}: no images in this series (a report or a plan)")
            self._update_actions()
            return
        try:
            # no title line: the corners say the patient, the study and the series from the images' own headers
            self.viewer.set_images(paths, 0)
        except Exception as exc:  # the viewer reports its own decode failures; this is a last guard
            self.show_message(f"{paths[0].name}: cannot be shown ({exc})", warning=True, tooltip=str(paths[0]))
        self._update_actions()
        self._on_current_image(paths[0])
        grid = self.study_grid
        # another study read: the panes hang it (as a PACS does), or close where it has one series
        if (grid is not None and grid.isVisible() and ref.study.uid != self._grid_study
                and self.open_study_grid() is None):  # with the prior below where it was
            grid.close()

    def _on_current_image(self, path: Path | None) -> None:
        """The classifier hears of the image shown once the reader stops on it (paging through a
        series at key-repeat speed does not hand it thousands of contexts)."""
        self._pending_image = path
        self._context_timer.start()

    def _send_context(self) -> None:
        path = self._pending_image
        ref = self.current_series
        frame = self.viewer.current_frame()
        current = Path(path) if path is not None else None
        series = ref.image_paths if ref is not None else list(self.photos)
        study = self.browser.study_paths(ref) if ref is not None else list(self.photos)
        self.classify.set_context(current, frame, series, study)

    @staticmethod
    def _photos_in(paths: Sequence[str], limit: int = 5000) -> list[Path]:
        """Photographs directly in the opened folders (sorted), for a folder that holds no DICOM."""
        found: list[Path] = []
        for folder in paths:
            if not os.path.isdir(folder):
                continue
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                continue
            found.extend(Path(folder, n) for n in names if is_photo(n) and os.path.isfile(os.path.join(folder, n)))
            if len(found) >= limit:
                break
        return found[:limit]

    def step_series(self, step: int) -> None:
        if not self.browser.step_series(step):
            self.statusBar().showMessage("No further series" if step > 0 else "No earlier series")

    def _toggle_tool(self, key: str) -> None:
        """A drawing tool's action (Measure, Region of interest, Angle, Arrow): the viewer's own toggle."""
        self._viewer_call(TOOL_MODES[key][0])
        self._show_tools()  # unchanged while typing in the search box: the actions say so again

    def _show_tools(self) -> None:
        """Each drawing tool's action checked as the viewer's mode is (one at a time, or none)."""
        for key, (_, is_on) in TOOL_MODES.items():
            self.action(key).setChecked(bool(getattr(self.viewer, is_on)()))

    def save_image(self) -> Path | None:
        """File > Save the image as…: the image as shown, in the folder an image was last saved to."""
        folder = str(self.settings.value("export/last_folder", "") or "")
        written = ask_and_save_image(self.viewer, self, folder if os.path.isdir(folder) else self.last_folder(),
                                     report=self.show_message)
        if written is not None:
            self.settings.setValue("export/last_folder", str(written.parent))
        return written

    def export_deidentified(self, as_media: bool = False) -> Any:
        """File > Export the study de-identified…: the study of the selected series, into an empty folder
        the reader picks; its progress in the status bar, its outcome one line (and in the Jobs tab)."""
        ref = self.current_series
        if ref is None or self._deidentifying is not None:
            return None
        paths = self.browser.study_paths(ref)

        def progress(report: Progress) -> None:
            total = f"/{report.total}" if report.total else ""
            self.statusBar().showMessage(f"Exporting de-identified: {report.done}{total} files")

        def outcome(text: str, *, warning: bool = False) -> None:
            self._deidentifying = None
            self._update_image_actions()
            self.show_message(text, warning=warning)
            if not warning:
                self._done_job_line(text)

        from zsmed.dicom.deidentify import BURNED_IN_MODALITIES

        kinds = sorted({BURNED_IN_MODALITIES[se.modality][1] for se in ref.study.series
                        if se.modality in BURNED_IN_MODALITIES})
        self._deidentifying = ask_and_deidentify(self, paths, self.last_folder(), outcome, on_progress=progress,
                                                 burned_in_kinds=kinds, as_media=as_media)
        self._update_image_actions()
        return self._deidentifying

    def copy_image(self) -> bool:
        return copy_image_and_report(self.viewer, self.show_message)

    def copy_study_to_media(self, folder: Path | None = None) -> Any:
        """File > Copy the study to a CD or USB stick…: the selected series' study as a DICOM file-set with its
        DICOMDIR (``zsmed.dicom.media``) in an empty folder the reader picks (``folder`` where given); its
        progress in the status bar, its outcome one line (and in the Jobs tab)."""
        from zsmed.dicom.media import MediaResult, write_media_job
        from zsmed_desktop.workers import start_job

        ref = self.current_series
        if ref is None or self._writing_media is not None:
            return None
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, "An empty folder for the CD or USB stick's files",
                                                      self.last_folder())
            if not chosen:
                return None
            folder = Path(chosen)
        paths = self.browser.study_paths(ref)
        patient = person_name(ref.patient.name) or ref.patient.id or "the patient"
        what = f"{patient}'s study of {dicom_date(ref.study.date) or 'no date'}"

        def progress(report: Progress) -> None:
            self.statusBar().showMessage(f"Writing {what} for a CD or USB stick: {report.done}/{report.total} files")

        def finished(line: str, warning: bool, details: str | None = None) -> None:
            self._writing_media = None
            self._update_image_actions()
            self.show_message(line, warning=warning, tooltip=details)
            if not warning:
                self._done_job_line(line, details)

        def done(result: MediaResult) -> None:
            details = "\n".join(result.problems) or None
            finished(f"{what}: {result.summary()}", bool(result.problems) or not result.written, details)

        self._writing_media = start_job(lambda: write_media_job(paths, folder), on_progress=progress, on_done=done,
                                        on_error=lambda message: finished(f"{what} not written: {message}", True),
                                        on_cancelled=lambda: finished(f"{what}: not written (stopped)", True),
                                        owner=self)
        self._update_image_actions()
        return self._writing_media

    def show_dicom_tags(self) -> TagsDialog | None:
        """View > DICOM tags: the file shown, element by element (its own window, one per file asked)."""
        path = self.viewer.current_path()
        if path is None or is_photo(path):
            self.show_message("DICOM tags: show a DICOM image first (photographs have none)", warning=True)
            return None
        dialog = TagsDialog(self, path)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def save_measurements_sr(self, out_dir: Path | None = None) -> Path | None:
        """The rulers, regions of interest and angles on the image shown as a DICOM SR next to it
        (``out_dir`` None) or in ``out_dir``. What came of it is one line in the status bar and the Jobs
        tab, with the file's name and the folder's, never their whole paths."""
        return self._show_saved(save_measurements(self.viewer, self.site.reader, out_dir))

    def _show_saved(self, saved: Saved, files: Sequence[Path] | None = None) -> Path | None:
        """A save's line in the status bar, and in the Jobs tab where it wrote a file or failed; what it wrote
        (``files``, by default the file it names) goes on to the PACS where the settings say so."""
        self.show_message(saved.message, warning=saved.warning, tooltip=saved.tooltip)
        if saved.written is not None:
            self._done_job_line(saved.message)
            self._send_saved(list(files) if files is not None else [saved.written])
        return saved.written

    # --- the PACS --------------------------------------------------------------------------------------
    def pacs_node(self) -> PacsNode | None:
        """The PACS of the settings; None where none is set."""
        return self.pacs.node()

    def _send_saved(self, files: Sequence[Path]) -> None:
        self.pacs.send_saved(files)

    def send_to_pacs(self, files: Sequence[Path], what: str | None = None) -> Any:
        """Store ``files`` on the PACS in the worker (``PacsLink.send``); None where no PACS is set."""
        worker = self.pacs.send(files, what)
        if worker is not None:
            self.statusBar().showMessage(f"Sending to {self.pacs.node()}…")  # until its outcome's line
        return worker

    def _pacs_said(self, text: str, warning: bool, tooltip: str | None) -> None:
        """A line of the PACS link: the status bar, and the Jobs tab (a warning's goes there by itself)."""
        self.show_message(text, warning=warning, tooltip=tooltip)
        if not warning:
            self._done_job_line(text, tooltip)

    def _show_listening(self, text: str) -> None:
        self.receiving_label.setText(text)
        self.receiving_label.setVisible(bool(text))

    def _on_received(self, folders: list[Path]) -> None:
        """Studies sent from the PACS arrived: they join the study list (as on a PACS workstation)."""
        if self.browser.index is None and not self.browser.scanning:
            self.open_paths(folders)  # nothing open yet: what arrived is what is read
        elif self.browser.add_paths(folders) is None:
            self._received_later.extend(folders)  # a scan runs: joined when it ends

    def _join_received_later(self) -> None:
        """Studies that arrived while a scan ran, joined to the list it made."""
        folders, self._received_later = self._received_later, []
        if folders:
            QTimer.singleShot(0, lambda: self.browser.add_paths(folders))

    def get_studies_from_pacs(self) -> Any:
        """File > Get studies from the PACS…: the dialog, looking for the patient shown at once; what it fetches
        joins the study list as received studies do."""
        from zsmed_desktop.pacs_query_dialog import PacsQueryDialog

        node = self.pacs_node()
        if node is None:
            self.show_message("Get studies from the PACS: no PACS is set (File ▸ Settings)", warning=True)
            return None
        index = self.browser.index
        here = {study.uid for patient in index.patients for study in patient.studies} if index is not None else set()
        ref = self.current_series
        dialog = PacsQueryDialog(node, self.site.resolved_receive_folder(),
                                 patient_id=ref.patient.id if ref is not None else "",
                                 here=lambda uid: uid in here, parent=self)
        dialog.fetched.connect(self._on_fetched)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.pacs_query = dialog  # the one open last (tests drive it)
        return dialog

    def _on_fetched(self, folders: list[Path], line: str) -> None:
        """Studies fetched from the PACS: into the study list as received ones, the line in the Jobs tab."""
        self._on_received(folders)
        self._pacs_said(line, False, None)

    def send_study_to_pacs(self) -> Any:
        """File > Send the study to the PACS…: every image of the selected series' study (a study brought on a
        CD, say), after the reader confirms whose study goes where."""
        ref, node = self.current_series, self.pacs_node()
        if ref is None:
            return None
        if node is None:
            self.show_message("Send to the PACS: no PACS is set (File ▸ Settings)", warning=True)
            return None
        paths = self.browser.study_paths(ref)
        patient = person_name(ref.patient.name) or ref.patient.id or "this patient"
        when = dicom_date(ref.study.date) or "an undated study"
        answer = QMessageBox.question(
            self, "Send the study to the PACS",
            f"Send {len(paths)} image{'' if len(paths) == 1 else 's'} of {patient}'s study of {when} "
            f"to {node}?\n\nThe PACS files them under the patient's name and ID as they are in these files.")
        if answer != QMessageBox.StandardButton.Yes:
            return None
        return self.send_to_pacs(paths, f"{patient}'s study of {when}")

    # --- presentation states -------------------------------------------------------------------
    def save_presentation_state(self, out_dir: Path | None = None) -> Path | None:
        """How the image is shown — window, inversion, rotation and flip, rulers, regions, angles, arrows —
        as a DICOM presentation state next to its file (``out_dir`` None) or in ``out_dir``, for the
        PACS's viewers; one line in the status bar and the Jobs tab says what came of it."""
        written = self._show_saved(save_presentation(self.viewer, self.site.reader, out_dir))
        if written is not None:
            self._state_hint_for = self.viewer.current_path()  # just saved: no "a state was saved" hint over it
            self._on_view_saved(written)
        return written

    def _on_view_saved(self, written: Path) -> None:
        """A presentation state saved here or in the window beside: offered from now on for its image."""
        self.saved_states.add(written)
        self._update_image_actions()

    # --- a series beside --------------------------------------------------------------------------
    def _positions(self, ref: SeriesRef | None) -> list[float] | None:
        """The series' images' places along its slice normal (mm), worked out once per series (linked
        scrolling asks on every image the reader pages to)."""
        if ref is None:
            return None
        if ref.key not in self._series_positions:
            images = [i for i in ref.series.instances if i.is_image]
            orientation = next((i.orientation for i in images if i.orientation), None)
            self._series_positions[ref.key] = slice_positions([i.position for i in images], orientation)
        return self._series_positions[ref.key]

    def put_series_beside(self) -> CompareWindow | None:
        """B: the series open now goes to the window beside (made on first use), to compare the next one
        the reader opens with it."""
        ref = self.current_series
        if ref is None or not ref.image_paths:
            self.show_message("Compare: open a DICOM series first, then put it beside (B)", warning=True)
            return None
        compare = self._show_beside(ref)
        self.show_message(f"{ref.title} beside: open the series to compare it with; L links their scrolling")
        return compare

    def compare_with_prior(self) -> CompareWindow | None:
        """Shift+B: the same kind of series from the patient's previous study beside the one read, at the
        same place in its stack (to be lined up on the anatomy, then linked with L)."""
        from zsmed.dicom.scan import prior_series

        ref = self.current_series
        prior = prior_series(self.index, ref.series.uid) if ref is not None and self.index is not None else None
        prior_ref = self.browser.series_ref(prior.uid) if prior is not None else None
        if ref is None or prior_ref is None or not prior_ref.image_paths:
            kind = f"a {ref.series.modality} series" if ref is not None and ref.series.modality else "a series"
            where = "; File ▸ Get studies from the PACS… finds it there" if self.pacs_node() is not None else ""
            self.show_message(f"Compare with the prior study: no earlier study of this patient with {kind} "
                              f"in what is open{where}", warning=True)
            return None
        compare = self._show_beside(prior_ref)
        count, shown = self.viewer.image_count(), self.viewer.current_index()
        fraction = shown / (count - 1) if count > 1 else 0.5
        compare.viewer.go_to(round(fraction * (len(prior_ref.image_paths) - 1)))
        self.show_message(f"Prior beside: {prior_ref.title}, at the same place in its stack; line it up on the "
                          "anatomy, then L links the scrolling")
        return compare

    def open_study_grid(self, with_prior: bool | None = None) -> StudyGridWindow | None:
        """G: the study's image series side by side (up to four), the one read first, in a window of its own;
        Shift+G (``with_prior``): two or three of them (by the window's shape) above the same series of the
        patient's previous study. None: as the panes are now (another study read, hung in its turn)."""
        from zsmed.dicom.scan import prior_series

        ref = self.current_series
        following = with_prior is None  # another study read while the panes are open
        if with_prior is None:
            with_prior = self.study_grid is not None and self.study_grid.with_prior
        items = self._grid_series(ref.study) if ref is not None and not self.photos else []
        if len(items) < 2 and not (with_prior and items):
            what = "a DICOM study with two image series or more" if ref is None or self.photos else (
                "this study has one image series; B puts a series of another study beside")
            self.show_message(f"The study in panes: {what}", warning=True)
            return None
        assert ref is not None
        prior_items: list[GridSeries] = []
        prior_title = ""
        if with_prior:
            prior = prior_series(self.index, ref.series.uid) if self.index is not None else None
            prior_ref = self.browser.series_ref(prior.uid) if prior is not None else None
            prior_items = self._grid_series(prior_ref.study, prior=True) if prior_ref is not None else []
            if prior_ref is not None and prior_items:
                prior_title = "  ·  ".join(x for x in (dicom_date(prior_ref.study.date),
                                                       prior_ref.study.description or "") if x)
            elif not (following and len(items) >= 2):  # (the study read next without a prior: hung alone)
                kind = f"a {ref.series.modality} series" if ref.series.modality else "a series"
                where = "; File ▸ Get studies from the PACS… finds it there" if self.pacs_node() is not None else ""
                self.show_message(f"The study and its prior in panes: no earlier study of this patient with {kind} "
                                  f"in what is open{where}", warning=True)
                return None
        if self.study_grid is None:
            self.study_grid = StudyGridWindow(self, plane_of=self._image_plane, settings=self.settings)
            self.study_grid.open_series.connect(self.browser.select_series)
            self._place_where_it_was(self.study_grid, "study_grid")
        patient = person_name(ref.patient.name) or ref.patient.id or ""
        title = "  ·  ".join(x for x in (patient, dicom_date(ref.study.date), ref.study.description or "") if x)
        self.study_grid.show_study(items, title, ref.key, study_kind(ref.series.modality, ref.study.description),
                                   prior=prior_items, prior_title=prior_title)
        self._grid_study = ref.study.uid
        self.study_grid.show()
        self.study_grid.raise_()
        return self.study_grid

    def _grid_series(self, study: Study, prior: bool = False) -> list[GridSeries]:
        """A study's image series as the panes hang them (in the study's order); a prior's titles say so, with its
        date."""
        items = []
        for series_ref in (self.browser.series_ref(s.uid) for s in study.series):
            if series_ref is None or not series_ref.image_paths:
                continue
            images = [i for i in series_ref.series.instances if i.is_image]
            positions = self._positions(series_ref)
            count = len(series_ref.image_paths)
            number = f"Series {series_ref.series.number}" if series_ref.series.number is not None else "Series"
            title = "  ·  ".join(x for x in (number, series_ref.series.modality or "", series_ref.series.description
                                             or "", f"{count} image{'s' * (count != 1)}") if x)
            if prior:
                title = "  ·  ".join(x for x in ("Prior", dicom_date(study.date), title) if x)
            items.append(GridSeries(series_ref.key, title, tuple(series_ref.image_paths),
                                    tuple(positions) if positions is not None and len(positions) == count else None,
                                    slice_normal(next((i.orientation for i in images if i.orientation), None)),
                                    series_ref.series.description or "", study.uid))
        return items

    def _show_beside(self, ref: SeriesRef) -> CompareWindow:
        if self.compare is None:
            self.compare = CompareWindow(self, key_images=self.key_images, reader=lambda: self.site.reader,
                                         icon=icon)
            self.compare.link_changed.connect(self._on_compare_link)
            self.compare.closed.connect(self._on_compare_closed)
            self.compare.key_images_changed.connect(self._show_key_images)
            self.compare.view_saved.connect(self._on_view_saved)
            self.compare.job_done.connect(self._done_job_line)
            self.compare.file_saved.connect(lambda path: self._send_saved([path]))
            self.compare.viewer.current_changed.connect(lambda *_: self._update_reference_lines())
            self.compare.viewer.locate_requested.connect(
                lambda point: self.compare is not None and self._locate(self.compare.viewer, point))
            self._place_where_it_was(self.compare, "compare")
        self.compare.show_series(list(ref.image_paths), ref.title, self._positions(ref), ref.study.uid)
        self.compare.show()
        self.compare.raise_()
        self.action("link_compare").setChecked(False)
        return self.compare

    def _can_reformat(self) -> bool:
        """A DICOM series of at least 3 slices is open (images, or the frames of an enhanced multi-frame
        file): a volume to cut other planes from."""
        series = self.current_series
        return (series is not None and not self.photos
                and sum(max(i.frames, 1) for i in series.series.instances if i.is_image) >= 3)

    def open_reformat(self) -> ReformatWindow | None:
        """Shift+M: the series open now as axial / coronal / sagittal slices and slabs, in the window made on
        first use, windowed as the viewer is now."""
        ref = self.current_series
        if ref is None or not self._can_reformat():
            self.show_message("Reformat: open a CT or MR series of at least 3 images first", warning=True)
            return None
        if self.reformat is None:
            self.reformat = ReformatWindow(self, reader=lambda: self.site.reader, icon=icon)
            self.reformat.saved.connect(self._on_reformat_saved)
            self.reformat.slice_shown.connect(self._update_reference_lines)
            self.reformat.locate_requested.connect(self._locate_from_reformat)
            self.reformat.crosshair_moved.connect(self._locate_from_crosshair)
            self.reformat.closed.connect(lambda: QTimer.singleShot(0, self._update_reference_lines))
            self._place_where_it_was(self.reformat, "reformat")
        self.reformat.show_series(ref.image_paths, ref.title, self.viewer.window_level())
        self.reformat.show()
        self.reformat.raise_()
        return self.reformat

    def _on_reformat_saved(self, message: str, folder: Path | None, warning: bool, files: list[Path]) -> None:
        """The reformat window's save for the PACS: its line here too, and in the Jobs tab; the new series
        joins the study list (as a PACS lists a series sent to it) and goes to the PACS where the settings say."""
        self._show_saved(Saved(message, folder, warning, str(folder) if folder is not None else None), files)
        if folder is not None:
            self.browser.add_paths([folder])

    def toggle_compare_link(self) -> bool:
        """L: link the series beside to this one's slices (lined up as they are now), or unlink."""
        self._on_compare_link(not (self.compare is not None and self.compare.is_linked()))
        return self.compare is not None and self.compare.is_linked()

    def _on_compare_link(self, on: bool) -> None:
        compare = self.compare
        beside = compare is not None and compare.isVisible()
        if on and compare is not None and beside and self.current_series is not None:
            link = compare.link(self.viewer.current_index(), self._positions(self.current_series))
            how = (f"by position, {link.offset_mm:+.1f} mm apart" if link.offset_mm is not None
                   else "image for image (no slice positions)")
            self.show_message(f"Scrolling linked with the series beside, {how}")
        elif on:
            self.show_message("Link scrolling: put a series beside first (B), then open the one to read",
                              warning=True)
        elif compare is not None and compare.is_linked():
            compare.unlink()
            self.show_message("Scrolling no longer linked with the series beside")
        self.action("link_compare").setChecked(compare is not None and compare.is_linked())

    def _on_compare_closed(self) -> None:
        self.action("link_compare").setChecked(False)
        QTimer.singleShot(0, self._update_reference_lines)  # once it is closed: its slice is no longer read

    def _image_plane(self, path: Path | None, frame: int) -> ImagePlane | None:
        """Where an image (a frame of it) lies in the patient, from its header."""
        planes = self._frame_planes(path) if path is not None else []
        if 0 <= frame < len(planes):
            return planes[frame]
        return planes[0] if len(planes) == 1 else None  # a cine's frames all lie where its one position says

    def _frame_planes(self, path: Path) -> list[ImagePlane | None]:
        """Where each frame of a file lies in the patient, from its header, read once: an enhanced
        multi-frame file gives each frame described in its functional groups a plane of its own; any other
        file one plane (its frames, a cine's, all lie there)."""
        if path not in self._planes:
            from zsmed.dicom.decode import read_dataset
            from zsmed.dicom.display import image_plane

            planes: list[ImagePlane | None] = [None]
            if not is_photo(path):
                try:
                    header = read_dataset(path, stop_before_pixels=True)
                    # the frames described, not Number of Frames: a damaged header may claim millions
                    described = len(header.get("PerFrameFunctionalGroupsSequence") or ()) or 1
                    planes = [image_plane(header, frame) for frame in range(described)]
                except (ZsmedError, OSError, ValueError):
                    pass  # no line rather than a message: the image itself says what is wrong
            self._planes[path] = planes
        return self._planes[path]

    def _slices_of(self, viewer: ImageViewer) -> list[tuple[int, int, ImagePlane | None]]:
        """Every image and frame a viewer can show, as (image index, frame, where it lies): the slices
        the 3D cursor chooses among."""
        return [(index, frame, plane) for index, path in enumerate(viewer.paths())
                for frame, plane in enumerate(self._frame_planes(path))]

    def _update_reference_lines(self) -> None:
        """Reference lines, as PACS viewers draw them: on the series beside and on the reformat, where the
        image read cuts them (a localizer shows the slice being read); on the image read, where the
        reformat's slice cuts it while its window is open, else the image beside. Nothing for parallel
        slices, another frame of reference (a prior) or images without geometry."""
        from zsmed.dicom.geometry import reference_line

        def cut(cutting: ImagePlane | None, shown: ImagePlane | None) -> tuple[Point, Point] | None:
            return reference_line(cutting, shown) if cutting is not None and shown is not None else None

        compare = self.compare if self.compare is not None and self.compare.isVisible() else None
        reformat = self.reformat if self.reformat is not None and self.reformat.isVisible() else None
        here = self._image_plane(self.viewer.current_path(), self.viewer.current_frame())
        beside = (self._image_plane(compare.viewer.current_path(), compare.viewer.current_frame())
                  if compare is not None else None)
        other = reformat.current_plane() if reformat is not None else None
        if compare is not None:
            compare.viewer.set_reference_line(cut(here, beside))
        if reformat is not None:
            reformat.set_reference_line(cut(here, other))
        self.viewer.set_reference_line(cut(other, here) or cut(beside, here))

    def _locate(self, source: ImageViewer, point: Point) -> bool:
        """Shift+click on one viewer (the 3D cursor): the other windows show the slice of their series
        nearest that point of the patient, the point marked on it (the window beside, the reformat; from
        the window beside, the image read). False, with a line saying why, where none can."""
        from zsmed.dicom.geometry import locate_point

        compare = self.compare if self.compare is not None and self.compare.isVisible() else None
        reformat = self.reformat if self.reformat is not None and self.reformat.isVisible() else None
        if source is not self.viewer:
            reformat = None  # from the window beside: the image read follows, and the reformat with it
        if compare is None and reformat is None:
            self.show_message("3D cursor (Shift+click): put a series beside (B) or open the reformat (Shift+M) "
                              "first", warning=True)
            return False
        plane = self._image_plane(source.current_path(), source.current_frame())
        if plane is None:
            self.show_message("3D cursor: this image has no position in the patient", warning=True)
            return False
        patient = plane.patient_point(point)
        found_any = False
        if reformat is not None:
            found = locate_point(patient, reformat.planes_of_slices(), plane.frame_of_reference)
            if found is not None:
                reformat.show_point(*found)
                found_any = True
        if compare is not None:
            target = compare.viewer if source is self.viewer else self.viewer
            found_any = self._show_point_in(target, patient, plane.frame_of_reference) or found_any
        if not found_any:
            self.show_message("3D cursor: that point is not in the other series (another study, or outside "
                              "its slices)", warning=True)
        return found_any

    def _locate_from_reformat(self, point: Point) -> bool:
        """Shift+click on the reformat: the image read goes to its slice through that point, marked."""
        reformat = self.reformat
        plane = reformat.current_plane() if reformat is not None else None
        if plane is None:
            return False
        if not self._show_point_in(self.viewer, plane.patient_point(point), plane.frame_of_reference):
            self.show_message("3D cursor: that point is not in the series read", warning=True)
            return False
        return True

    def _locate_from_crosshair(self, patient: np.ndarray) -> bool:
        """The reformat's three planes' crosshair moved: the image read goes to its slice through it, marked."""
        volume = self.reformat.volume() if self.reformat is not None else None
        if volume is None:
            return False
        if not self._show_point_in(self.viewer, patient, volume.frame_of_reference):
            self.show_message("3D cursor: that point is not in the series read", warning=True)
            return False
        return True

    def _show_point_in(self, viewer: ImageViewer, patient: np.ndarray, frame_of_reference: str) -> bool:
        """The viewer goes to its slice (image, or frame of an enhanced file) nearest a point of the
        patient, the point marked on it; False, and no mark, where none holds it."""
        from zsmed.dicom.geometry import locate_point

        slices = self._slices_of(viewer)
        found = locate_point(patient, [plane for _index, _frame, plane in slices], frame_of_reference)
        if found is None:
            viewer.set_cursor_point(None)
            return False
        index, frame, _plane = slices[found[0]]
        viewer.set_cursor_point(found[1], on=(viewer.paths()[index], frame))
        viewer.go_to(index, frame)
        return True

    def _follow_beside(self) -> None:
        if self.compare is not None and self.compare.is_linked():
            self.compare.follow(self.viewer.current_index(), self._positions(self.current_series))

    # --- key images ---------------------------------------------------------------------------------
    def toggle_key_image(self) -> bool:
        """K: flag the image shown as a key image, or take the flag off; returns whether it is flagged."""
        path = self.viewer.current_path()
        study = self.current_series.study.uid if self.current_series is not None else None
        self._show_saved(flag_key_image(self.key_images, path, study, "View > Save key images for the PACS"))
        self._show_key_images()
        return self.key_images.is_key(path)

    def ask_key_note(self, count: int) -> str | None:
        """The reader's optional note for the key images; None when they cancel."""
        return ask_key_note(self, count)

    def save_key_images(self, out_dir: Path | None = None, note: str | None = None) -> Path | None:
        """The flagged images of the study shown as one key image note next to the study (``out_dir``
        None) or in ``out_dir``, with ``note`` (None: asked for, optional); one line says what came of it."""
        ref = self.current_series
        saved = save_study_key_images(self.key_images, ref.study.uid if ref is not None else None,
                                      ask_note=self.ask_key_note if note is None else lambda _count: note,
                                      reader=self.site.reader, out_dir=out_dir)
        if saved is None:
            return None
        written = self._show_saved(saved)
        self._show_key_images()
        return written

    def _show_key_images(self) -> None:
        """The flags changed (here, in the window beside, or by a scan): both viewers show them again,
        and both windows' key image actions follow."""
        self.viewer.set_key_images(self.key_images.lines())
        self._update_key_image_actions(dicom_image_shown(self.viewer) if self._image_open() else None)
        if self.compare is not None:
            self.compare.show_key_images()

    def _update_key_image_actions(self, path: Path | None) -> None:
        flag = self.action("key_image")
        flag.setEnabled(path is not None)
        flag.setChecked(self.key_images.is_key(path))
        ref = self.current_series
        self.action("save_key_images").setEnabled(
            ref is not None and bool(self.key_images.unsaved(ref.study.uid)))

    def _shown_sop_uid(self, path: Path | None) -> str:
        return self._sop_uids.get(path, "") if path is not None else ""

    def _update_saved_state(self, path: Path | None) -> None:
        """Offer the newest saved state of the image shown; say so once when the reader comes to it.
        A state waiting for its image (opened from its series) is shown as soon as the image is."""
        uid = self._shown_sop_uid(path)
        pending = self._pending_state
        if pending is not None and path == pending[2] and uid and not self.viewer.is_loading() \
                and self.viewer.current_frame_data() is not None:
            self._pending_state = None
            self._show_state(pending[0], uid)
        states = self.saved_states.for_image(uid) if uid else []
        action = self.action("show_presentation")
        action.setEnabled(bool(states))
        action.setToolTip(f"Show the presentation state {describe(states[0])}" if states
                          else "No presentation state saved for this image")
        if states and path != self._state_hint_for and pending is None:
            self.statusBar().showMessage(f"{path.name if path else ''}: a presentation state was "
                                         f"{describe(states[0])} (View > Show the saved presentation state)")
        self._state_hint_for = path if states else None

    def show_saved_state(self) -> bool:
        """View > Show the saved presentation state: the newest one for the image shown."""
        path = self.viewer.current_path()
        uid = self._shown_sop_uid(path)
        states = self.saved_states.for_image(uid) if uid else []
        if not states or self.viewer.current_frame_data() is None:
            self.show_message("No presentation state is saved for this image", warning=True)
            return False
        self._show_state(states[0], uid)
        return True

    def _show_state(self, state: PresentationState, uid: str) -> None:
        shown = show_state(self.viewer, state, uid)
        notes = [f"{shown.marks} mark{'' if shown.marks == 1 else 's'}"]
        if shown.not_placed:
            notes.append(f"{shown.not_placed} that could not be placed on the image")
        if shown.not_shown:
            notes.append(f"{shown.not_shown} drawing{'' if shown.not_shown == 1 else 's'} of another viewer "
                         "not shown (not a ruler, region, angle or arrow)")
        self.show_message(f"Presentation state {describe(state)} shown: " + "; ".join(notes), tooltip=str(state.path))
        self._update_measurements_action()

    def _open_presentation_series(self, ref: SeriesRef) -> bool:
        """A presentation-state series activated in the browser: its newest state's image is opened in its
        own series and the state shown on it. False where the series holds no readable state."""
        states = self.saved_states.in_files(Path(i.path) for i in ref.series.instances
                                            if i.sop_class_uid in PRESENTATION_STATE_CLASSES)
        for state in states:
            for uid in sorted(uid for uid in state.referenced if uid in self._images_by_uid):
                # waiting before the image is asked for: a cached image is shown at once
                self._pending_state = (state, uid, self._images_by_uid[uid][0])
                if self._open_image(uid) is None:
                    self._pending_state = None
                    continue
                self._update_image_actions()  # already decoded (a cached image): shown now
                return True
        if states:
            self.show_message(f"{ref.title}: the images its presentation states are for are not in what is open",
                              warning=True)
            return True
        return False

    def _open_report_series(self, ref: SeriesRef) -> bool:
        """A series of reports activated in the browser: structured reports shown as text in a window of
        their own, PDF reports in the computer's PDF viewer. False where the series holds no report."""
        from zsmed.report.read_report import is_report_class
        from zsmed_desktop.report_view import show_reports

        paths = [Path(i.path) for i in ref.series.instances if is_report_class(i.sop_class_uid)]
        if not paths:
            return False
        self.report_dialog = show_reports(self, paths, self.show_message, ref.title)
        return True

    def _open_key_image_series(self, ref: SeriesRef) -> bool:
        """A key image note's series activated in the browser: its first key image that is open is shown
        in its own series, and one line gives the note. False where the series holds no readable note."""
        from zsmed.report.key_images import read_key_images

        for instance in ref.series.instances:
            if instance.sop_class_uid != KEY_OBJECT_SELECTION:
                continue
            try:
                note = read_key_images(instance.path)
            except (ZsmedError, OSError):
                continue
            images = sorted((uid for uid in note.referenced if uid in self._images_by_uid),
                            key=lambda uid: str(self._images_by_uid[uid][0]))
            if not images or self._open_image(images[0]) is None:
                self.show_message(f"{ref.title}: the key images it names are not in what is open", warning=True)
                return True
            who = note.observer.replace("^", " ").strip()
            said = f": {note.note}" if note.note else ""
            self.show_message(f"Key image note{' of ' + note.created if note.created else ''}"
                              f"{' by ' + who if who else ''}, {len(images)} key image"
                              f"{'' if len(images) == 1 else 's'} ({note.title}){said}", tooltip=instance.path)
            return True
        return False

    def _open_image(self, uid: str) -> Path | None:
        """Show image ``uid`` (a SOP Instance UID of the scan) in its own series, as a click on the series
        and paging to it would; its file, or None where it is not in what is open."""
        found = self._images_by_uid.get(uid)
        target = self.browser.series_ref(found[1]) if found is not None else None
        if found is None or target is None or found[0] not in target.image_paths:
            return None
        self.browser.select_series(target.key)  # opens it (the tree's current series is this one)
        self.viewer.go_to(target.image_paths.index(found[0]))
        return found[0]

    def _done_job_line(self, text: str, tooltip: str | None = None) -> None:
        """A finished job's line in the Jobs tab, below a scan still running (whose line updates in place:
        a line put above it would take its place, and the scan's next step would start another)."""
        running = self.jobs.count() > 0 and self.jobs.item(0).data(Qt.ItemDataRole.UserRole) == "running"
        item = QListWidgetItem(text)
        item.setToolTip(tooltip or text)
        item.setData(Qt.ItemDataRole.UserRole, "done")
        self.jobs.insertItem(1 if running else 0, item)

    def _viewer_call(self, name: str, *args: Any) -> None:
        if self._typing():
            return
        method = getattr(self.viewer, name, None)
        if method is not None and self._image_open():
            method(*args)

    @staticmethod
    def _typing() -> bool:
        """Enter and letters belong to a text field that has the focus (the search box)."""
        focus = QApplication.focusWidget()
        return isinstance(focus, QLineEdit | QTextEdit | QPlainTextEdit | QAbstractSpinBox)

    def confirm(self) -> None:
        if self._typing():
            return
        self.classify.confirm()

    def correct(self) -> None:
        if self._typing():
            return
        self.classify.correct()

    def ask_model(self) -> None:
        start = str(self.site.resolved_models_folder())
        chosen, _ = QFileDialog.getOpenFileName(self, "Open a model file", start, "zsmed models (*.zsmb)")
        if chosen:
            self.classify.load_bundle(Path(chosen))

    def open_builder(self) -> BuilderWindow:
        """The builder window (one per main window; shown again if already open)."""
        if self.builder is None:
            self.builder = BuilderWindow(self.site, self.viewer.current_path, self)
            self.builder.built.connect(self._on_model_built)
            self.builder.use_requested.connect(self._use_built_model)
            self.builder.check_requested.connect(self.check_model_at)
        self.builder.show()
        self.builder.raise_()
        self.builder.activateWindow()
        return self.builder

    def open_models(self) -> ModelsDialog:
        """The models folder's models and their cards (one window, shown again if open)."""
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(self.site, self)
            self.models_dialog.use_requested.connect(self._use_built_model)
            self.models_dialog.models_changed.connect(self.classify.refresh_models)
            self.models_dialog.show_requested.connect(lambda path: self.open_paths([path]))
        else:
            self.models_dialog.refresh()
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def open_check(self) -> Any:
        """The check window for the model chosen in the classifier panel (else the first in the
        models folder), from the models window, whose card then shows the result."""
        chosen = self.classify.model_combo.currentData()
        if chosen:
            return self.check_model_at(Path(chosen))
        return self.open_models().open_check()

    def check_model_at(self, path: Path) -> Any:
        """The check window for the model at ``path`` (selected in the models window where it is in
        the models folder, so that its card shows the result)."""
        models = self.open_models()
        models.refresh(select=Path(path))
        return models.open_check(Path(path))

    def _on_model_built(self, path: Path) -> None:
        self.classify.refresh_models()
        text = f"Model '{Path(path).stem}' built and saved in the models folder"
        self._done_job_line(text)  # a scan may be running: its line stays its own
        self.statusBar().showMessage(text)

    def _use_built_model(self, path: Path) -> None:
        self.classify.load_bundle(Path(path))
        self.raise_()
        self.activateWindow()

    def _verify_log(self) -> None:
        self.show_tab("Case log")
        self.caselog.verify()

    # --- settings, theme, messages ----------------------------------------------------------------
    def open_settings(self) -> Any:
        dialog = SettingsDialog(self.site, self)
        dialog.settings_changed.connect(self.apply_site)
        dialog.open()
        return dialog

    def apply_site(self, site: SiteConfig) -> None:
        self.site = site
        self.set_theme(site.theme)
        self.classify.set_site(site)
        self.caselog.set_site(site)
        if self.builder is not None:
            self.builder.site = site
        if self.models_dialog is not None:
            self.models_dialog.site = site
            self.models_dialog.refresh()
        self._update_image_actions()  # Send the study to the PACS follows the PACS set
        self.statusBar().showMessage("Settings saved")
        self.pacs.start_receiving()  # after: a port that cannot be listened on is the line left in the window

    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply_theme(app, name)
            theme.retint(self, name)
            for key, icon_name in self._icon_names.items():
                self._actions[key].setIcon(icon(icon_name))
            if self.compare is not None:
                self.compare.set_icons(icon)
            if self.reformat is not None:
                self.reformat.set_icons(icon)
        self.settings.setValue("view/theme", name)

    def show_message(self, text: str, *, warning: bool = False, tooltip: str | None = None) -> None:
        """A failure or notice in the window: the status bar, and for warnings the Jobs/problems log."""
        self.statusBar().showMessage(("⚠ " if warning else "") + text)
        if warning:
            self._done_job_line(text, tooltip)
        self.last_message = text

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(keys, what they do) for Help > Keyboard shortcuts: the window's actions, then the
        image's keys and mouse (presets by name, not "Preset 1")."""
        rows = []
        described = {self._actions[key] for key in ("auto_window", *VIEWER_TOOLS)}  # their rows are below
        for action in self._actions.values():
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
            if keys and action not in described:
                rows.append((keys, action.text().replace("&", "").rstrip("…")))
        from zsmed.dicom.display import CT_PRESETS

        ct = ", ".join(f"{n} {name}" for n, name in enumerate(CT_PRESETS, 1))
        rows += [
            ("1–9", f"Window presets. CT: {ct}; other images: the file's own windows"),
            ("0", "Automatic window"),
            ("→ ↓ / ← ↑, wheel", "Next / previous image or frame (the image has the focus)"),
            ("Home / End", "First / last image"),
            ("Right-button drag", "Window and level (left-right: width, up-down: level)"),
            ("Ctrl+wheel, + / −", "Zoom"),
            ("Left-button or middle-button drag", "Pan"),
            ("A / double-click", "Actual pixels (1:1) / fit"),
            ("Shift+click", "3D cursor: the series beside and the reformat go to their slice through that point "
                            "of the patient, the point marked (a scout: where the point projects)"),
            ("M", "Measure on / off: a left-button drag draws a ruler (mm; px without a pixel spacing); "
                  "drag a ruler's end to move it"),
            ("E", "Region of interest on / off: a left-button drag draws an ellipse with its area, mean ± SD, "
                  "min and max (HU on CT; R, G, B means on photographs); drag inside a region to move it"),
            ("N", "Angle on / off: drag the first arm from the vertex, then click the second arm's end; drag a "
                  "point to move it"),
            ("T", "Arrow on / off: drag from the note to the finding, then type an optional note; double-click "
                  "an arrow's end to change its note"),
            ("Delete / Esc", "Remove the rulers, regions of interest, angles and arrows (Esc also stops measuring "
                             "and cine)"),
            ("] or Ctrl+R / [", "Rotate 90° clockwise / anticlockwise"),
            ("H / V", "Flip left-right / up-down"),
            ("P", "Play / stop cine through the frames and images (the file's frame rate, else 10 per second)"),
        ]
        return rows

    def show_shortcuts(self) -> ShortcutsDialog:
        box = ShortcutsDialog(self.shortcut_rows(), self)
        box.open()
        return box

    def about_text(self) -> str:
        import platform

        from PySide6 import __version__ as pyside_version

        return (f"<h3>zsmed {html.escape(__version__)}</h3>"
                "<p>Build and run image classifiers from a few local examples, offline: nothing leaves "
                "this computer.</p><p>Results support, and never replace, the reader's judgement.</p>"
                f"<p>Site: {html.escape(self.site.site_name or 'not set')} · Reader: {html.escape(self.site.reader)}"
                f"<br>Python {platform.python_version()} · Qt (PySide6) {pyside_version}</p>"
                "<p>Keys: Help ▸ Keyboard shortcuts (F1).</p>")

    def open_doctor(self) -> DoctorDialog:
        """Help > Check this installation…: the doctor's checks in a window (runs them on opening)."""
        dialog = DoctorDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_about(self) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Information, "About zsmed", self.about_text(),
                          QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()
        return box

