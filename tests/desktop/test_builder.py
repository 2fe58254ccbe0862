"""The builder window (Models > Build a classifier): classes as columns, the checks, the build, and
the model arriving in the classifier panel — on real HAM10000 photographs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from tests.conftest import dicom_test_file
from tests.desktop.reading_room import make_window
from zsmed.site import SiteConfig
from zsmed_desktop.builder import WRONG_OUTLINE, BuilderWindow, ClassColumn

TIMEOUT = 180_000


@pytest.fixture()
def photos(shared_data: Path) -> dict[str, list[Path]]:
    found = {c: sorted((shared_data / "ham10000_fs" / "novel_dev" / c).glob("*.jpg"))[:6] for c in ("akiec", "vasc")}
    assert all(len(v) == 6 for v in found.values())
    return found


@pytest.fixture()
def site(isolated_dirs: Path) -> SiteConfig:
    return SiteConfig(reader_name="Dr Build", site_name="Skin clinic",
                      caselog_path=str(isolated_dirs / "caselog.sqlite"), models_folder=str(isolated_dirs / "models"))


def make_builder(qtbot, site: SiteConfig, on_screen=None) -> BuilderWindow:  # type: ignore[no-untyped-def]
    builder = BuilderWindow(site, on_screen)
    qtbot.addWidget(builder)
    return builder


def fill(builder: BuilderWindow, classes: dict[str, list[Path]]) -> None:
    while len(builder.columns) < len(classes):
        builder.add_class()
    for column, (name, files) in zip(builder.columns, classes.items(), strict=False):
        column.name_edit.setText(name)
        column.add_paths(files)


def settled(qtbot, builder: BuilderWindow) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: not builder.checking() and builder.thumbnails_done(), timeout=TIMEOUT)


def finding_texts(builder: BuilderWindow) -> list[str]:
    return [builder.findings_list.item(i).text() for i in range(builder.findings_list.count())]


def test_build_from_the_window_lands_in_the_classifier_panel(qtbot, tmp_path: Path, isolated_dirs: Path,
                                                             photos: dict[str, list[Path]]) -> None:
    window = make_window(qtbot, tmp_path)
    window.action("build_model").trigger()
    builder = window.builder
    assert builder is not None and builder.isVisible() and len(builder.columns) == 2
    fill(builder, {"akiec": photos["akiec"], "vasc": photos["vasc"]})
    builder.columns[0].fill_known_description()  # as leaving the name field does
    assert builder.columns[0].description.toPlainText().startswith("Actinic keratosis")
    settled(qtbot, builder)
    assert builder.findings_title.text() == "Checks: nothing to report" and builder.build_button.isEnabled()
    # no empty panel below the examples: the checks take their one line
    assert builder.findings_list.isHidden() and builder.findings_box.maximumHeight() < 60
    assert builder.name_edit.text() == "akiec vs vasc"  # named after its classes until the reader names it
    # Every thumbnail arrived (a photograph's pixels, not the grey placeholder).
    assert all(item.data(Qt.ItemDataRole.UserRole + 1) is not None for c in builder.columns for item in c.items())
    with qtbot.waitSignal(builder.built, timeout=TIMEOUT) as built:
        qtbot.mouseClick(builder.build_button, Qt.MouseButton.LeftButton)
        assert builder.is_building() and not builder.build_button.isEnabled()
    bundle = Path(built.args[0])
    assert bundle == Path(window.site.models_folder) / "akiec vs vasc.zsmb" and bundle.is_file()
    assert window.jobs.item(0).text() == "Model 'akiec vs vasc' built and saved in the models folder"
    status = builder.status.text()
    assert status.startswith("Built 'akiec vs vasc' in ") and "from akiec 6, vasc 6 images" in status
    wrong = len(builder.outcome.loo_wrong)
    assert f"the model named {12 - wrong} of 12 correctly" in status
    outlined = [item for c in builder.columns for item in c.items() if "Left out of the build" in item.toolTip()]
    assert len(outlined) == wrong
    # The main window's model list has it; "Use this model" chooses it there.
    combo = window.classify.model_combo
    assert combo.findData(str(bundle)) >= 0
    assert builder.use_button.isVisible()
    builder.use_button.click()
    qtbot.waitUntil(lambda: window.classify.model_ready, timeout=TIMEOUT)
    assert combo.currentData() == str(bundle)
    # akiec's description is the one zsmed proposed: its display name; vasc was given none: its folder name
    assert window.classify.model_status.text().startswith(
        "Verified, not signed. Classes: Actinic keratosis / Bowen's disease, Vasc.")
    assert window.classify.model_status.text().endswith("Not checked on labelled cases here yet.")
    # "Check on labelled cases…" opens the check of the model just built.
    assert builder.check_button.isVisible()
    builder.check_button.click()
    check = window.models_dialog.check_dialog if window.models_dialog is not None else None
    assert check is not None and check.isVisible() and check.model == bundle


def test_checks_block_the_build_and_point_at_the_images(qtbot, site: SiteConfig, tmp_path: Path,
                                                        photos: dict[str, list[Path]]) -> None:
    builder = make_builder(qtbot, site)
    copy = tmp_path / "renamed.jpg"
    shutil.copy(photos["akiec"][0], copy)
    fill(builder, {"akiec": photos["akiec"][:4], "vasc": [*photos["vasc"][:4], copy]})
    settled(qtbot, builder)
    texts = finding_texts(builder)
    assert texts[0] == "✖  the same image is filed under 'akiec' and 'vasc': keep it in one class  (2 images)"
    assert builder.findings_title.text() == "Checks: 1 to fix before building"
    assert not builder.build_button.isEnabled() and not builder.findings_list.isHidden()
    assert builder.findings_box.maximumHeight() > 1000  # the findings get their lines
    builder.findings_list.itemClicked.emit(builder.findings_list.item(0))
    selected = [Path(i.data(Qt.ItemDataRole.UserRole)) for c in builder.columns for i in c.images.selectedItems()]
    assert sorted(selected) == sorted([photos["akiec"][0], copy])
    # Removing the copy clears the error.
    vasc = builder.columns[1]
    vasc.select({copy})
    qtbot.mouseClick(vasc.remove_button, Qt.MouseButton.LeftButton)
    settled(qtbot, builder)
    assert builder.build_button.isEnabled() and vasc.count_label.text() == "4 images"
    # Two classes with one name, and a class left empty.
    builder.columns[1].name_edit.setText("akiec")  # the very same name: two columns, not one merged class
    builder.add_class("df")
    settled(qtbot, builder)
    texts = finding_texts(builder)
    assert "✖  two classes are named 'akiec': give each class its own name" in texts
    assert "✖  class 'df' has no images: add a few examples" in texts
    assert not builder.build_button.isEnabled()


def test_files_a_build_cannot_use_are_said_in_the_window(qtbot, site: SiteConfig, tmp_path: Path,
                                                         photos: dict[str, list[Path]]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    ct = dicom_test_file("CT_small.dcm")
    builder = make_builder(qtbot, site)
    fill(builder, {"akiec": [*photos["akiec"][:5], notes], "vasc": [*photos["vasc"][:5], broken, ct]})
    settled(qtbot, builder)
    texts = finding_texts(builder)
    assert "⚠  1 file(s) are not images zsmed can read: they will be left out  (1 image)" in texts
    assert "⚠  1 image(s) are CT, the rest photographs: build a model on one kind of image  (1 image)" in texts
    assert builder.build_button.isEnabled()  # warnings do not stop a build
    # The unreadable files are left out of the build, each named in the window.
    builder.columns[1].select({ct})
    builder.columns[1].remove_selected()
    settled(qtbot, builder)
    with qtbot.waitSignal(builder.built, timeout=TIMEOUT):
        builder.build()
    texts = finding_texts(builder)
    assert any(t.startswith("⚠  left out broken.jpg: cannot decode the image") for t in texts)
    assert any(t.startswith("⚠  left out notes.txt: ") for t in texts)
    assert "from akiec 5, vasc 5 images" in builder.status.text()


def test_a_folder_of_class_folders_and_dropped_files(qtbot, site: SiteConfig, tmp_path: Path,
                                                     photos: dict[str, list[Path]]) -> None:
    folder = tmp_path / "Vascular study"
    for name, files in photos.items():
        (folder / name).mkdir(parents=True)
        for f in files[:4]:
            shutil.copy(f, folder / name / f.name)
    (folder / "empty").mkdir()
    builder = make_builder(qtbot, site)
    assert builder.load_folder(folder) == 2
    assert [c.name for c in builder.columns] == ["akiec", "vasc"]  # the two empty columns replaced
    assert [len(c.paths()) for c in builder.columns] == [4, 4]
    assert builder.name_edit.text() == "Vascular study"
    assert builder.load_folder(tmp_path / "nowhere") == 0
    assert builder.status.text().startswith("Cannot read nowhere")
    # Files dropped on a column (from a file manager) join that class.
    column = builder.columns[1]
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(p)) for p in photos["vasc"][4:6]])
    event = QDropEvent(QPointF(QPoint(10, 10)), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    column.images.dropEvent(event)
    assert column.paths()[-2:] == photos["vasc"][4:6] and column.count_label.text() == "6 images"
    settled(qtbot, builder)


def test_the_image_on_screen_and_descriptions(qtbot, site: SiteConfig, photos: dict[str, list[Path]]) -> None:
    shown: list[Path | None] = [None]
    builder = make_builder(qtbot, site, lambda: shown[0])
    column: ClassColumn = builder.columns[0]
    assert not column.add_screen_button.isEnabled()  # nothing on screen
    shown[0] = photos["vasc"][0]
    column._update_buttons()
    qtbot.mouseClick(column.add_screen_button, Qt.MouseButton.LeftButton)
    assert column.paths() == [photos["vasc"][0]]
    # A known class name brings its description; the reader's own text is never replaced.
    column.name_edit.setText("vasc")
    column.fill_known_description()
    assert column.description.toPlainText().startswith("Vascular lesion") and column.description_note.isVisibleTo(
        builder)
    column.description.setPlainText("Red lagoons, seen at our clinic")
    column.name_edit.setText("df")
    column.fill_known_description()
    assert column.description.toPlainText() == "Red lagoons, seen at our clinic"
    assert builder.descriptions()["df"] == "Red lagoons, seen at our clinic"
    settled(qtbot, builder)


def test_an_existing_name_asks_first_and_cancel_leaves_nothing(qtbot, site: SiteConfig, isolated_dirs: Path,
                                                                photos: dict[str, list[Path]],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    models = Path(site.models_folder)
    models.mkdir(parents=True)
    (models / "akiec vs vasc.zsmb").write_bytes(b"an older model")
    builder = make_builder(qtbot, site)
    fill(builder, {"akiec": photos["akiec"][:4], "vasc": photos["vasc"][:4]})
    settled(qtbot, builder)
    asked: list[str] = []

    def answer_no(parent, title, text, *args):  # type: ignore[no-untyped-def]
        asked.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", answer_no)
    builder.build()
    assert asked == ["A model named 'akiec vs vasc' is already in the models folder. Replace it?"]
    assert not builder.is_building() and builder.status.text() == "Not built: choose another model name."
    assert (models / "akiec vs vasc.zsmb").read_bytes() == b"an older model"
    # Another name; cancelled at once: nothing new in the models folder.
    builder.name_edit.setText("second try")
    builder._name_edited("second try")
    builder.build()
    assert builder.is_building()
    builder.cancel()
    qtbot.waitUntil(lambda: not builder.is_building(), timeout=TIMEOUT)
    assert builder.status.text() == "Cancelled: nothing was saved in the models folder."
    assert sorted(p.name for p in models.iterdir()) == ["akiec vs vasc.zsmb"]


def test_wrong_images_are_outlined(qtbot, site: SiteConfig, photos: dict[str, list[Path]]) -> None:
    import numpy as np

    builder = make_builder(qtbot, site)
    fill(builder, {"akiec": photos["akiec"][:2], "vasc": photos["vasc"][:2]})
    settled(qtbot, builder)
    column = builder.columns[0]
    item = column.items()[0]
    column.mark({photos["akiec"][0]: "vasc"}, {"vasc": "Vascular lesion"})
    assert item.toolTip().endswith("Left out of the build, the model took it for Vascular lesion")
    corner = item.icon().pixmap(96, 96).toImage().pixelColor(4, 48)
    assert corner.name() == WRONG_OUTLINE
    column.mark({}, {})
    assert "Left out" not in item.toolTip()
    assert item.icon().pixmap(96, 96).toImage().pixelColor(4, 48).name() != WRONG_OUTLINE
    assert np.asarray(item.data(Qt.ItemDataRole.UserRole + 1)).ndim == 3  # the photograph's pixels kept


def test_examples_saved_and_opened_again(qtbot, site: SiteConfig, tmp_path: Path,
                                         photos: dict[str, list[Path]]) -> None:
    builder = make_builder(qtbot, site)
    fill(builder, {"akiec": photos["akiec"][:4], "vasc": photos["vasc"][:4]})
    builder.columns[1].description.setPlainText("Red lagoons")
    builder.name_edit.setText("skin: study 1")
    builder._name_edited("skin: study 1")
    saved = builder.save_examples(tmp_path / "skin: study 1")
    assert saved == tmp_path / "skin- study 1" and builder.status.text().startswith("Examples saved in the folder")
    assert builder.save_examples(saved) is None
    assert builder.status.text() == "Not saved: skin- study 1: the folder is not empty: choose a new or empty folder"
    settled(qtbot, builder)
    again = make_builder(qtbot, site)
    assert again.load_folder(saved) == 2
    assert [(c.name, len(c.paths())) for c in again.columns] == [("akiec", 4), ("vasc", 4)]
    assert again.descriptions()["vasc"] == "Red lagoons"  # the reader's text, not the shipped one
    assert again.descriptions()["akiec"].startswith("Actinic keratosis")  # not saved: the shipped one
    assert again.name_edit.text() == "skin- study 1"
    settled(qtbot, again)


def test_without_build_tools_the_window_says_what_is_missing(qtbot, site: SiteConfig, photos: dict[str, list[Path]],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import zsmed.synth.builder as core

    monkeypatch.setattr(core, "build_tools_missing", lambda: "building a model needs zsmed's build tools")
    builder = make_builder(qtbot, site)
    fill(builder, {"akiec": photos["akiec"][:4], "vasc": photos["vasc"][:4]})
    settled(qtbot, builder)
    builder.build()
    assert not builder.is_building()
    assert builder.status.text() == "Not built: building a model needs zsmed's build tools."


def test_a_failed_build_is_one_line_without_full_paths(qtbot, site: SiteConfig, tmp_path: Path,
                                                       photos: dict[str, list[Path]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import zsmed.synth.builder as core
    from zsmed.errors import DatasetError

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        yield core.Progress(0, 1, "reading the images")
        raise DatasetError("fewer than 1 usable image(s) for class(es) vasc (0)", path=tmp_path / "deep" / "vasc")

    monkeypatch.setattr(core, "build_job", failing)
    builder = make_builder(qtbot, site)
    fill(builder, {"akiec": photos["akiec"][:4], "vasc": photos["vasc"][:4]})
    settled(qtbot, builder)
    builder.build()
    qtbot.waitUntil(lambda: not builder.is_building(), timeout=TIMEOUT)
    assert builder.status.text() == "Not built: vasc: fewer than 1 usable image(s) for class(es) vasc (0)"
    assert builder.build_button.isEnabled()  # the reader can try again


def test_models_built_with_a_site_key_are_signed(qtbot, site: SiteConfig, isolated_dirs: Path,
                                                 photos: dict[str, list[Path]]) -> None:
    from dataclasses import replace

    from zsmed.runtime.format import generate_keypair

    private, _ = generate_keypair(isolated_dirs / "site")
    builder = make_builder(qtbot, replace(site, signing_key=str(private)))
    fill(builder, {"akiec": photos["akiec"][:4], "vasc": photos["vasc"][:4]})
    settled(qtbot, builder)
    with qtbot.waitSignal(builder.built, timeout=TIMEOUT):
        builder.build()
    assert builder.status.text().endswith("Saved in the models folder, signed with the site key.")
    assert builder.outcome.signed


def test_a_series_dragged_from_the_study_list_joins_a_class(qtbot, tmp_path: Path, isolated_dirs: Path) -> None:
    from tests.desktop.reading_room import open_and_wait, small_cd

    window = make_window(qtbot, tmp_path)
    open_and_wait(qtbot, window, [small_cd(tmp_path)])
    item = next(i for i in window.browser.series_items() if "CT" in i.text(0))
    ref = window.browser.series_ref(item.data(0, Qt.ItemDataRole.UserRole + 1))
    assert ref is not None and ref.image_paths
    data = window.tree.mimeData([item])
    assert [Path(u.toLocalFile()) for u in data.urls()] == ref.image_paths
    # Dropped back on the main window it opens nothing (the open studies stay); from elsewhere it would.
    assert window.paths_to_open(window.tree, data) == []
    assert window.paths_to_open(None, data) == [str(p) for p in ref.image_paths]
    patient = window.tree.topLevelItem(0)
    assert window.tree.mimeData([patient]).urls() == []  # a patient row carries no files
    builder = window.open_builder()
    column = builder.columns[0]
    event = QDropEvent(QPointF(QPoint(10, 10)), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    column.images.dropEvent(event)
    assert column.paths() == ref.image_paths
    settled(qtbot, builder)


def test_delete_removes_the_selected_images(qtbot, site: SiteConfig, photos: dict[str, list[Path]]) -> None:
    builder = make_builder(qtbot, site)
    builder.show()
    qtbot.waitExposed(builder)
    column = builder.columns[0]
    column.add_paths(photos["akiec"][:3])
    column.select({photos["akiec"][1]})
    column.images.setFocus()
    qtbot.keyClick(column.images, Qt.Key.Key_Delete)
    assert column.paths() == [photos["akiec"][0], photos["akiec"][2]] and column.count_label.text() == "2 images"
    settled(qtbot, builder)
