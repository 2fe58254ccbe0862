"""The builder: a classifier from a few example images per class, made where the reader works.

Classes are columns: a name, a short description (the shipped one is filled in where the name is
a known class), and the example images as thumbnails — added from files, from a folder of class
folders, by dropping files on a column, or as the image on screen. A findings list checks the
support set as it changes (``zsmed.synth.builder.check_support``: errors stop the build, each
finding selects the images it concerns). Build encodes, synthesises and exports in a worker with
progress and Cancel; the model lands in the models folder, and each support image the model gets
wrong when that image is left out of the build is outlined in red, with what it was taken for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QIcon,
    QKeyEvent,
    QPainter,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from zsmed.progress import Job, Progress
from zsmed.site import SiteConfig
from zsmed_desktop import theme
from zsmed_desktop.browser import thumbnail_job, thumbnail_pixmap, without_paths
from zsmed_desktop.classify_panel import class_titles
from zsmed_desktop.workers import start_job

PATH_ROLE = Qt.ItemDataRole.UserRole
IMAGE_ROLE = Qt.ItemDataRole.UserRole + 1  # the thumbnail's pixels, to redraw it outlined
ERROR_COLOUR, OK_COLOUR = theme.ERROR_COLOUR, theme.OK_COLOUR
WRONG_OUTLINE = "#ff5252"
MAX_IMAGES_PER_FOLDER = 200  # a folder of class folders: the first images of each, not a whole archive
CHECK_DELAY_MS = 300
FINDINGS_HEIGHT = 140  # the checks' share of the window where there are findings: a few lines
QWIDGETSIZE_MAX = 16_777_215  # Qt's "no maximum" (QWIDGETSIZE_MAX, not exported by PySide6)
IMAGE_FILTER = "Images (*.dcm *.DCM *.dicom *.png *.PNG *.jpg *.JPG *.jpeg *.JPEG *);;All files (*)"
THUMB_SIZE = 96  # lesions and films need a larger look than the browser's series icons
SEVERITY_MARK = {"error": "✖", "warning": "⚠", "note": "ℹ"}
SEVERITY_COLOUR = {"error": "error", "warning": "warning", "note": "muted"}


def _outlined(icon_image: np.ndarray | None, colour: str | None) -> QIcon:
    """The thumbnail, with a thick frame of ``colour`` when given (a grey square when unreadable)."""
    if icon_image is not None:
        pixmap = thumbnail_pixmap(icon_image, THUMB_SIZE)
    else:
        pixmap = QPixmap(THUMB_SIZE, THUMB_SIZE)
        pixmap.fill(QColor("#555555"))
    if colour:
        painter = QPainter(pixmap)
        pen = QPen(QColor(colour))
        pen.setWidth(6)
        painter.setPen(pen)
        painter.drawRect(3, 3, THUMB_SIZE - 6, THUMB_SIZE - 6)
        painter.end()
    return QIcon(pixmap)


class ImageList(QListWidget):
    """A class's example images as thumbnails; files dropped on it are added."""

    files_dropped = Signal(list)
    delete_pressed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.setGridSize(QSize(THUMB_SIZE + 16, THUMB_SIZE + 30))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setMinimumHeight(THUMB_SIZE + 40)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selectedItems():
            self.delete_pressed.emit()
        else:
            super().keyPressEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)


class ClassColumn(QFrame):
    """One class: its name, its description, its images."""

    changed = Signal()
    remove_requested = Signal(object)
    thumbnails_wanted = Signal(list)  # [(key, path)]

    def __init__(self, on_screen: Callable[[], Path | None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._on_screen = on_screen
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(3 * (THUMB_SIZE + 16) + 30)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Class name, e.g. Melanoma")
        self.name_edit.textChanged.connect(lambda *_: self.changed.emit())
        self.name_edit.editingFinished.connect(self.fill_known_description)
        remove = QToolButton()
        remove.setText("✕")
        remove.setToolTip("Remove this class")
        remove.clicked.connect(lambda: self.remove_requested.emit(self))
        top = QHBoxLayout()
        top.addWidget(self.name_edit, 1)
        top.addWidget(remove)
        self.description = QPlainTextEdit()
        self.description.setPlaceholderText("What it looks like, in a sentence or two (optional; helps most "
                                            "with few images)")
        self.description.setMaximumHeight(96)
        self.description_note = QLabel("")
        self.description_note.setStyleSheet(f"color: {theme.accent('muted')};")
        self.description_note.setWordWrap(True)
        self.description_note.hide()
        self.description.textChanged.connect(self._description_edited)
        self.images = ImageList()
        self.images.files_dropped.connect(self.add_paths)
        self.images.delete_pressed.connect(self.remove_selected)
        self.images.itemSelectionChanged.connect(self._update_buttons)
        self.count_label = QLabel("No images yet: add a few examples")
        add = QPushButton("Add images…")
        add.clicked.connect(self.ask_images)
        self.add_screen_button = QPushButton("Add the image on screen")
        self.add_screen_button.clicked.connect(self.add_image_on_screen)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected images from this class (Delete)")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        for button in (add, self.add_screen_button, self.remove_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.description)
        layout.addWidget(self.description_note)
        layout.addWidget(self.images, 1)
        layout.addWidget(self.count_label)
        layout.addLayout(buttons)
        self._filled_description = ""
        self._update_buttons()

    # --- contents -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.name_edit.text().strip()

    def paths(self) -> list[Path]:
        return [Path(self.images.item(i).data(PATH_ROLE)) for i in range(self.images.count())]

    def items(self) -> list[QListWidgetItem]:
        return [self.images.item(i) for i in range(self.images.count())]

    def add_paths(self, paths: Sequence[Path]) -> int:
        """Add files (folders: the images in them); returns how many were added."""
        from zsmed.imageio import candidate_images

        files: list[Path] = []
        for path in map(Path, paths):
            if path.is_dir():
                files.extend(candidate_images(path)[:MAX_IMAGES_PER_FOLDER])
            else:
                files.append(path)
        wanted = []
        for path in files:
            item = QListWidgetItem(_outlined(None, None), path.name)
            item.setData(PATH_ROLE, str(path))
            item.setToolTip(str(path))
            self.images.addItem(item)
            wanted.append((str(id(item)), str(path)))
        if wanted:
            self.thumbnails_wanted.emit(wanted)
            self._counted()
            self.changed.emit()
        return len(files)

    def ask_images(self) -> None:
        chosen, _ = QFileDialog.getOpenFileNames(self, f"Example images of {self.name or 'this class'}", "",
                                                 IMAGE_FILTER)
        if chosen:
            self.add_paths([Path(p) for p in chosen])

    def add_image_on_screen(self) -> None:
        path = self._on_screen()
        if path is not None:
            self.add_paths([path])

    def remove_selected(self) -> None:
        for item in self.images.selectedItems():
            self.images.takeItem(self.images.row(item))
        self._counted()
        self.changed.emit()

    def _counted(self) -> None:
        n = self.images.count()
        self.count_label.setText("No images yet: add a few examples" if n == 0 else
                                 f"{n} image{'s' if n != 1 else ''}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(bool(self.images.selectedItems()))
        self.add_screen_button.setEnabled(self._on_screen() is not None)

    def set_thumbnail(self, key: str, image: np.ndarray | None) -> bool:
        for item in self.items():
            if str(id(item)) == key:
                item.setData(IMAGE_ROLE, image)
                item.setIcon(_outlined(image, None))
                return True
        return False

    # --- descriptions ---------------------------------------------------------------------------
    def fill_known_description(self) -> None:
        """A known class name (Melanoma, bcc, NORMAL, …) brings its shipped description, to edit
        freely; a description the reader wrote is never replaced."""
        text = self.description.toPlainText().strip()
        if not self.name or (text and text != self._filled_description):
            return
        from zsmed.descriptions import descriptions_for
        from zsmed.errors import ZsmedError

        try:
            found = descriptions_for([self.name]).get(self.name)
        except ZsmedError:
            found = None
        if found is None:
            if text and text == self._filled_description:  # renamed away from a known class
                self._set_description("", "")
            return
        self._set_description(found.description, "A description zsmed knows for this class: edit it freely.")

    def set_description(self, text: str) -> None:
        """The reader's own description (from a saved examples folder): never replaced by a shipped one."""
        self.description.setPlainText(text)
        self._filled_description = ""
        self.description_note.hide()

    def _set_description(self, text: str, note: str) -> None:
        self._filled_description = text
        self.description.blockSignals(True)
        self.description.setPlainText(text)
        self.description.blockSignals(False)
        self.description_note.setText(note)
        self.description_note.setVisible(bool(note))
        self.changed.emit()

    def _description_edited(self) -> None:
        if self.description.toPlainText().strip() != self._filled_description:
            self.description_note.hide()
        self.changed.emit()

    # --- the build's verdict --------------------------------------------------------------------
    def mark(self, wrong: dict[Path, str], titles: dict[str, str]) -> None:
        """Outline the images the model got wrong when left out; clear the others' outlines."""
        for item in self.items():
            path = Path(item.data(PATH_ROLE))
            said = wrong.get(path)
            item.setIcon(_outlined(item.data(IMAGE_ROLE), WRONG_OUTLINE if said is not None else None))
            tip = str(path)
            if said is not None:
                tip += f"\nLeft out of the build, the model took it for {titles.get(said, said)}"
            item.setToolTip(tip)

    def select(self, paths: set[Path]) -> int:
        """Select the images among ``paths``; returns how many."""
        hits = 0
        for item in self.items():
            chosen = Path(item.data(PATH_ROLE)) in paths
            item.setSelected(chosen)
            if chosen:
                hits += 1
                self.images.scrollToItem(item)
        return hits


class BuilderWindow(QWidget):
    """Build a classifier from example images: classes as columns, findings, Build."""

    built = Signal(object)  # the bundle's Path, once written
    use_requested = Signal(object)  # the bundle's Path: "Use this model"
    check_requested = Signal(object)  # the bundle's Path: "Check on labelled cases…"

    def __init__(self, site: SiteConfig, on_screen: Callable[[], Path | None] | None = None,
                 parent: QWidget | None = None, *, model_folder: Path | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Build a classifier")
        self.site = site
        self._on_screen = on_screen or (lambda: None)
        self._model_folder = model_folder
        self.columns: list[ClassColumn] = []
        self.findings: list[Any] = []
        self.outcome: Any = None
        self._worker: Any = None
        self._checker: Any = None
        self._thumbs: list[Any] = []
        self._check_again = False
        self._name_typed = False

        intro = QLabel("Give each class a name and a few example images (two or more each; 8 in all at least). "
                       "Drop image files, folders or a series from the study list on a class, or add the image "
                       "on screen.")
        intro.setWordWrap(True)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Model name, e.g. Melanoma vs naevus")
        self.name_edit.textEdited.connect(self._name_edited)
        add_class = QPushButton("Add a class")
        add_class.clicked.connect(lambda: self.add_class())
        load = QPushButton("Load a folder of class folders…")
        load.setToolTip("A folder with one subfolder of example images per class")
        load.clicked.connect(self.ask_folder)
        self.save_button = QPushButton("Save the examples…")
        self.save_button.setToolTip("Copy the examples into a new folder, one subfolder per class, with the "
                                    "descriptions: to go on later, or to build the same model elsewhere")
        self.save_button.clicked.connect(self.ask_save)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model name"))
        top.addWidget(self.name_edit, 1)
        top.addWidget(add_class)
        top.addWidget(load)
        top.addWidget(self.save_button)

        self.columns_box = QWidget()
        self.columns_layout = QHBoxLayout(self.columns_box)
        self.columns_layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.columns_box)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

        self.findings_list = QListWidget()
        self.findings_list.setWordWrap(True)
        self.findings_list.setToolTip("Click a finding to select the images it is about")
        self.findings_list.itemClicked.connect(self._finding_clicked)
        self.findings_title = QLabel("Checks")
        self.findings_box = findings_box = QWidget()
        findings_layout = QVBoxLayout(findings_box)
        findings_layout.setContentsMargins(0, 0, 0, 0)
        findings_layout.addWidget(self.findings_title)
        findings_layout.addWidget(self.findings_list)

        self.build_button = QPushButton("Build the model")
        self.build_button.setDefault(True)
        self.build_button.clicked.connect(self.build)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Choose it in the classifier panel of the main window")
        self.use_button.clicked.connect(self._use)
        self.use_button.hide()
        self.check_button = QPushButton("Check on labelled cases…")
        self.check_button.setToolTip("Run the new model on other cases whose diagnosis is known")
        self.check_button.clicked.connect(self._check_built)
        self.check_button.hide()
        actions = QHBoxLayout()
        actions.addWidget(self.progress, 1)
        actions.addWidget(self.cancel_button)
        actions.addStretch(0)
        actions.addWidget(self.check_button)
        actions.addWidget(self.use_button)
        actions.addWidget(self.build_button)

        self.splitter = splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(scroll)
        splitter.addWidget(findings_box)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([560, FINDINGS_HEIGHT])  # the classes first; the checks are a few lines
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        layout.addLayout(actions)

        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(CHECK_DELAY_MS)
        self._check_timer.timeout.connect(self.check)
        self.resize(1100, 720)
        for _ in range(2):
            self.add_class()

    # --- classes --------------------------------------------------------------------------------
    def add_class(self, name: str = "", paths: Sequence[Path] = ()) -> ClassColumn:
        column = ClassColumn(self._on_screen)
        column.changed.connect(self._changed)
        column.remove_requested.connect(self.remove_class)
        column.thumbnails_wanted.connect(self._load_thumbnails)
        self.columns.append(column)
        self.columns_layout.addWidget(column, 1)
        if name:
            column.name_edit.setText(name)
            column.fill_known_description()
        if paths:
            column.add_paths(paths)
        self._changed()
        return column

    def remove_class(self, column: ClassColumn) -> None:
        if column in self.columns:
            self.columns.remove(column)
            column.setParent(None)
            column.deleteLater()
            self._changed()

    def ask_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "A folder with one subfolder of images per class")
        if chosen:
            self.load_folder(Path(chosen))

    def load_folder(self, folder: Path) -> int:
        """One class per subfolder that holds images (replacing empty, unnamed columns)."""
        from zsmed.imageio import candidate_images

        try:
            subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError as exc:
            self._say(f"Cannot read {folder.name}: {exc.strerror or exc}", ERROR_COLOUR)
            return 0
        found = [(sub, candidate_images(sub)[:MAX_IMAGES_PER_FOLDER]) for sub in subfolders]
        found = [(sub, files) for sub, files in found if files]
        if not found:
            self._say(f"{folder.name} has no subfolders with images: make one folder per class", ERROR_COLOUR)
            return 0
        for column in list(self.columns):
            if not column.name and not column.paths():
                self.remove_class(column)
        from zsmed.errors import ZsmedError
        from zsmed.synth.builder import folder_descriptions

        try:  # a folder saved from here brings its descriptions back
            saved = folder_descriptions(folder, [sub.name for sub, _ in found])
        except ZsmedError as exc:
            saved = {}
            self._say(f"The descriptions in {folder.name} could not be read: {exc.reason}", ERROR_COLOUR)
        for sub, files in found:
            column = self.add_class(sub.name, files)
            if sub.name in saved:
                column.set_description(saved[sub.name])
        if not self._name_typed:  # the folder's name, unless the reader named the model
            self.name_edit.setText(folder.name)
            self._name_typed = True
        return len(found)

    def ask_save(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Where to save the examples (a new folder is made there)")
        if chosen:
            self.save_examples(Path(chosen) / (self.model_name() or "examples"))

    def save_examples(self, folder: Path) -> Path | None:
        """Copy the examples and descriptions into ``folder`` (new or empty)."""
        from zsmed.errors import ZsmedError
        from zsmed.synth.builder import model_file_name, save_support_folder

        try:
            folder = folder.with_name(model_file_name(folder.name))
            saved = save_support_folder(self.class_images(), self.descriptions(), folder)
        except ZsmedError as exc:  # the folder's name and the reason: no full paths in the window
            self._say(f"Not saved: {folder.name}: {exc.reason}", ERROR_COLOUR)
            return None
        except OSError as exc:
            self._say(f"Not saved: {folder.name}: {exc.strerror or exc}", ERROR_COLOUR)
            return None
        self._say(f"Examples saved in the folder {saved.name} (Load a folder of class folders… opens it again).",
                  OK_COLOUR)
        return saved

    def class_images(self) -> dict[str, list[Path]]:
        return {column.name: column.paths() for column in self.columns}

    def class_pairs(self) -> list[tuple[str, list[Path]]]:
        """(name, images) per column: two columns given one name stay two, for the checks."""
        return [(column.name, column.paths()) for column in self.columns]

    def descriptions(self) -> dict[str, str]:
        return {column.name: column.description.toPlainText().strip() for column in self.columns}

    def _name_edited(self, text: str) -> None:
        self._name_typed = bool(text.strip())

    def model_name(self) -> str:
        if self._name_typed and self.name_edit.text().strip():
            return self.name_edit.text().strip()
        names = [c.name for c in self.columns if c.name]
        return " vs ".join(names) if names else ""

    # --- thumbnails -----------------------------------------------------------------------------
    def _load_thumbnails(self, wanted: list[tuple[str, str]]) -> None:
        def deliver(result: tuple[str, np.ndarray | None]) -> None:
            key, image = result
            for column in self.columns:
                if column.set_thumbnail(key, image):
                    return

        make: Any = lambda: thumbnail_job(wanted, 2 * THUMB_SIZE)  # noqa: E731 (yields thumbnails, not Progress)
        worker = start_job(make, on_progress=deliver, on_done=lambda *_: self._thumb_done(worker),
                           on_error=lambda *_: self._thumb_done(worker), owner=self)
        self._thumbs.append(worker)

    def _thumb_done(self, worker: Any) -> None:
        if worker in self._thumbs:
            self._thumbs.remove(worker)

    def thumbnails_done(self) -> bool:
        return not self._thumbs

    # --- checks ---------------------------------------------------------------------------------
    def _changed(self) -> None:
        if not self._name_typed:
            self.name_edit.setText(self.model_name())
        self.outcome = None
        self.use_button.hide()
        self.check_button.hide()
        self._check_timer.start()
        self._update_build_button()

    def check(self) -> None:
        """Check the support set in a worker (it reads every file); a change meanwhile checks again."""
        if self._checker is not None:
            self._check_again = True
            return
        classes = self.class_pairs()

        def make() -> Job[list[Any]]:
            from zsmed.synth.builder import check_support

            yield Progress(0, 1, "checking")
            return check_support(classes)

        def done(findings: list[Any]) -> None:
            self._checker = None
            if self._check_again:
                self._check_again = False
                self.check()
                return
            self.show_findings(findings)

        def failed(message: str) -> None:
            self._checker = None
            self.show_findings([])
            self._say(f"The images could not be checked: {without_paths(message)}", ERROR_COLOUR)

        self._checker = start_job(make, on_done=done, on_error=failed, on_cancelled=lambda: failed("cancelled"),
                                  owner=self)

    def checking(self) -> bool:
        return self._checker is not None or self._check_timer.isActive()

    def show_findings(self, findings: Sequence[Any]) -> None:
        self.findings = list(findings)
        self.findings_list.clear()
        for finding in findings:
            n = len(finding.images)
            count = f"  ({n} image{'s' if n != 1 else ''})" if n else ""
            item = QListWidgetItem(f"{SEVERITY_MARK[finding.severity]}  {finding.message}{count}")
            item.setForeground(QColor(theme.accent(SEVERITY_COLOUR[finding.severity])))
            item.setData(PATH_ROLE, [str(p) for p in finding.images])
            if finding.images:
                item.setToolTip("\n".join(p.name for p in finding.images[:20]))
            self.findings_list.addItem(item)
        errors = sum(f.severity == "error" for f in findings)
        self._fit_findings_box(bool(findings))
        if not findings:
            self.findings_title.setText("Checks: nothing to report")
        else:
            self.findings_title.setText(f"Checks: {errors} to fix before building" if errors else
                                        f"Checks: {len(findings)} to know")
        self._update_build_button()

    def _fit_findings_box(self, any_findings: bool) -> None:
        """With nothing to report the checks take one line and the examples the room (no empty panel); findings
        get their few lines back."""
        was_empty = self.findings_list.isHidden()
        self.findings_list.setVisible(any_findings)
        self.findings_box.setMaximumHeight(QWIDGETSIZE_MAX if any_findings
                                           else self.findings_title.sizeHint().height())
        if any_findings and was_empty:
            total = sum(self.splitter.sizes())
            self.splitter.setSizes([max(total - FINDINGS_HEIGHT, 0), FINDINGS_HEIGHT])

    def _finding_clicked(self, item: QListWidgetItem) -> None:
        paths = {Path(p) for p in item.data(PATH_ROLE) or []}
        if paths:
            for column in self.columns:
                column.select(paths)

    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def _update_build_button(self) -> None:
        busy = self._worker is not None
        self.build_button.setEnabled(not busy and not self.has_errors() and len(self.columns) >= 2
                                     and not self._check_timer.isActive() and self._checker is None)

    # --- build ----------------------------------------------------------------------------------
    def build(self) -> None:
        from zsmed.errors import ZsmedError
        from zsmed.synth.builder import build_tools_missing, model_file_name

        if self._worker is not None or self.has_errors():
            return
        missing = build_tools_missing()
        if missing:
            self._say(f"Not built: {missing}.", ERROR_COLOUR)
            return
        try:
            stem = model_file_name(self.model_name())
        except ZsmedError as exc:
            self._say(str(exc), ERROR_COLOUR)
            return
        folder = self.site.resolved_models_folder()
        replace = False
        if (folder / f"{stem}.zsmb").exists():
            answer = QMessageBox.question(self, "Replace the model?",
                                          f"A model named '{stem}' is already in the models folder. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                self._say("Not built: choose another model name.", None)
                return
            replace = True
        classes, descriptions = self.class_images(), self.descriptions()
        site_name, model_folder = self.site.site_name, self._model_folder
        sign_key = Path(self.site.signing_key).expanduser() if self.site.signing_key.strip() else None

        def make() -> Job[Any]:
            from zsmed.synth.builder import build_job

            return (yield from build_job(classes, descriptions, folder, stem, model_folder=model_folder,
                                         site=site_name, replace=replace, sign_key=sign_key))

        for column in self.columns:
            column.mark({}, {})
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.use_button.hide()
        self.check_button.hide()
        self._say("Building…", None)
        self._worker = start_job(make, on_progress=self._on_progress, on_done=self._on_built,
                                 on_error=self._on_failed, on_cancelled=self._on_cancelled, owner=self)
        self._update_build_button()

    def _on_progress(self, step: Progress) -> None:
        if step.total:
            self.progress.setRange(0, step.total)
            self.progress.setValue(step.done)
        if step.message:
            self._say(f"Building: {step.message}…", None)

    def _finish(self) -> None:
        self._worker = None
        self.progress.hide()
        self.cancel_button.hide()
        self._update_build_button()

    def _on_built(self, outcome: Any) -> None:
        self._finish()
        self.outcome = outcome
        card = outcome.classifier.card
        titles = class_titles({"class_names": list(card.class_names), "descriptions": dict(card.descriptions)})
        wrong = {path: said for path, _, said in outcome.loo_wrong}
        for column in self.columns:
            column.mark(wrong, titles)
        counts = ", ".join(f"{name} {n}" for name, n in card.support_counts.items())
        if outcome.loo:
            right = len(outcome.loo) - len(wrong)
            estimate = (f"Each example left out in turn, the model named {right} of {len(outcome.loo)} correctly"
                        + (" (those it missed are outlined in red)." if wrong else "."))
        else:
            estimate = "With one image in a class there is no leave-one-out check: add a second image to each."
        self._say(f"Built '{outcome.bundle_path.stem}' in {outcome.seconds:.0f} s from {counts} images: "
                  f"{outcome.method_text}. {estimate} Saved in the models folder"
                  f"{', signed with the site key' if outcome.signed else ''}.", OK_COLOUR)
        if outcome.findings:
            self.show_findings(list(self.findings) + list(outcome.findings))
        self.use_button.show()
        self.check_button.show()
        self.built.emit(outcome.bundle_path)

    def _on_failed(self, message: str) -> None:
        self._finish()
        self._say(f"Not built: {without_paths(message)}", ERROR_COLOUR)

    def _on_cancelled(self) -> None:
        self._finish()
        self._say("Cancelled: nothing was saved in the models folder.", None)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()

    def is_building(self) -> bool:
        return self._worker is not None

    def _check_built(self) -> None:
        if self.outcome is not None:
            self.check_requested.emit(self.outcome.bundle_path)

    def _use(self) -> None:
        if self.outcome is not None:
            self.use_requested.emit(self.outcome.bundle_path)

    def _say(self, text: str, colour: str | None) -> None:
        theme.set_status(self.status, text, colour)

    def closeEvent(self, event: Any) -> None:
        self.cancel()
        for worker in list(self._thumbs):
            worker.quit()
        super().closeEvent(event)
