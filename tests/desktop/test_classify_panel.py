from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.conftest import REPO, dicom_test_file
from tests.report.sr_items import text_values
from tests.runtime.conftest import with_zip_version
from zsmed.site import SiteConfig
from zsmed_desktop.classify_panel import NO_RESULT_TITLE, ClassifyPanel, class_titles, peek_card

BUNDLE = REPO / "export" / "reference" / "sgps_ham4_lite0_v1.zsmb"
TIMEOUT = 120_000


@pytest.fixture()
def site(isolated_dirs: Path) -> SiteConfig:
    return SiteConfig(reader_name="Dr Panel", caselog_path=str(isolated_dirs / "caselog.sqlite"),
                      models_folder=str(isolated_dirs / "models"))


@pytest.fixture()
def melanoma_photos(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "ham10000_fs" / "base" / "mel").glob("*.jpg"))[:3]
    assert len(files) == 3
    return files


def loaded_panel(qtbot, site: SiteConfig, bundle: Path = BUNDLE) -> ClassifyPanel:
    panel = ClassifyPanel(site)
    qtbot.addWidget(panel)
    panel.load_bundle(bundle)
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)
    return panel


def cell(panel: ClassifyPanel, row: int, column: int) -> str:
    item = panel.table.item(row, column)
    assert item is not None
    return item.text()


def run(qtbot, panel: ClassifyPanel, scope: str) -> None:
    panel.classify(scope)
    assert panel.is_busy()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)


def test_model_list_reads_readable_names_from_the_cards(qtbot, site: SiteConfig) -> None:
    empty = ClassifyPanel(site)
    qtbot.addWidget(empty)
    assert "No models in" in empty.model_status.text() and "Open a model file" in empty.model_status.text()
    assert "Build a classifier" in empty.model_status.text()
    folder = site.resolved_models_folder()
    folder.mkdir(parents=True)
    shutil.copy(BUNDLE, folder / BUNDLE.name)
    (folder / "junk.zsmb").write_bytes(b"not a zip")
    with_zip_version(BUNDLE, folder / "damaged.zsmb", 65)  # zipfile: NotImplementedError, not BadZipFile
    panel = ClassifyPanel(site)
    qtbot.addWidget(panel)
    items = [panel.model_combo.itemText(i) for i in range(panel.model_combo.count())]
    assert "sgps_ham4_lite0_v1 (4 classes)" in items
    assert "junk.zsmb (unreadable)" in items
    assert panel.model_status.text().startswith("3 models in the models folder: choose the one built for")
    assert "damaged.zsmb (unreadable)" in items
    assert items[-1] == "Open a model file…"
    empty.set_site(site)  # the folder now holds models: listed without restarting
    assert "sgps_ham4_lite0_v1 (4 classes)" in [empty.model_combo.itemText(i) for i in range(empty.model_combo.count())]
    card = peek_card(BUNDLE)
    assert card is not None
    assert class_titles(card) == {"bcc": "Basal cell carcinoma", "bkl": "Benign keratosis", "mel": "Melanoma",
                                  "nv": "Benign melanocytic nevus"}
    # A description too long to title itself: the display name of the shipped class it is (word for
    # word) instead of the folder name "akiec"; an edited description gives no such name.
    from zsmed.descriptions import descriptions_for

    akiec = descriptions_for(["akiec"])["akiec"].description
    assert class_titles({"class_names": ["akiec"], "descriptions": {"akiec": akiec}}) == {
        "akiec": "Actinic keratosis / Bowen's disease"}
    edited = akiec.replace("face or scalp", "face, scalp or hands")
    assert class_titles({"class_names": ["akiec"], "descriptions": {"akiec": edited}}) == {"akiec": "Akiec"}


def test_classify_a_series_of_dermoscopy_photos(qtbot, site: SiteConfig, melanoma_photos: list[Path]) -> None:
    panel = loaded_panel(qtbot, site)
    assert panel.model_ready
    assert "Verified" in panel.model_status.text() and "Melanoma" in panel.model_status.text()
    panel.set_context(melanoma_photos[0], 0, melanoma_photos, melanoma_photos)
    run(qtbot, panel, "series")
    # The series summary is shown first: a class of the model, with one bar per class.
    assert panel.result_label() in {"bcc", "bkl", "mel", "nv"}
    assert not panel.is_abstain_banner_shown()
    bars = panel.bar_values()
    values = list(bars.values())
    assert set(bars) == {"bcc", "bkl", "mel", "nv"}
    assert abs(sum(values) - 1.0) <= 0.004 and values == sorted(values, reverse=True)
    assert max(bars, key=lambda k: bars[k]) == panel.result_label()
    assert panel.top_label.text().startswith(
        {"bcc": "Basal cell carcinoma", "bkl": "Benign keratosis", "mel": "Melanoma",
         "nv": "Benign melanocytic nevus"}[str(panel.result_label())])
    # The table: the series summary, then one row per image.
    assert panel.table.rowCount() == 4
    assert cell(panel, 0, 0) == "Series (3/3 used)"
    assert [cell(panel, i, 0) for i in range(1, 4)] == [p.name for p in melanoma_photos]
    panel.table.selectRow(2)
    assert panel.result_title.text() == melanoma_photos[1].name


@pytest.fixture(scope="module")
def zeroshot_bundle(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zero-shot bundle as `zsmed build zeroshot` and `zsmed export` make it: HAM10000's four base
    classes from 12 images each, akiec / df / vasc from their descriptions alone."""
    from tests.conftest import data_subset
    from zsmed.bundle.export import calibration_from_support, export_job
    from zsmed.progress import run_job
    from zsmed.zeroshot.build import build_zeroshot

    root = tmp_path_factory.mktemp("zeroshot")
    base = data_subset(shared_data / "ham10000_fs" / "base", root / "base", 12)
    classifier = run_job(build_zeroshot([base], REPO / "resources" / "attributes" / "ham10000.yaml",
                                        ["akiec", "df", "vasc"], semantics="text"))
    support = {c.name: sorted(c.iterdir()) for c in base.iterdir() if c.is_dir()}
    bundle = root / "zeroshot.zsmb"
    run_job(export_job(classifier, bundle, calibration_from_support(support, classifier)))
    return bundle


def test_a_class_known_from_its_description_alone_is_said_with_its_result(qtbot, site: SiteConfig, shared_data: Path,
                                                                           zeroshot_bundle: Path) -> None:
    from zsmed_desktop.models_view import card_html

    panel = loaded_panel(qtbot, site, zeroshot_bundle)
    assert panel.model_ready
    novel = shared_data / "ham10000_fs" / "novel_dev"
    # Few of these photographs are given a class the model knows by description only (it leans towards
    # the classes it has seen): 10 each of akiec and df hold some.
    photos = [p for c in ("akiec", "df") for p in sorted((novel / c).glob("*.jpg"))[:10]]
    panel.set_context(photos[0], 0, photos, photos)
    run(qtbot, panel, "series")
    said: dict[str, str] = {}
    for row in range(1, panel.table.rowCount()):
        panel.table.selectRow(row)
        label = panel.result_label()
        if label is not None:
            said[label] = panel.message.text() if not panel.message.isHidden() else ""
    described = {"akiec", "df", "vasc"}
    assert described & set(said) and set(said) - described, said  # both kinds of result among these photographs
    titles = class_titles(peek_card(zeroshot_bundle) or {})
    for label, message in said.items():
        weak = f"The model knows {titles[label]} from its description alone, not from example images: a weak result."
        assert message.startswith(weak) if label in described else "from its description alone" not in message
    # The model card says the same: no examples for those classes, and no leave-one-out estimate.
    page = card_html(peek_card(zeroshot_bundle) or {}, "zero-shot")
    assert page.count("none: its description") == 3
    assert "from the description alone (zero-shot, no example images), the other classes from their example " \
           "images" in page
    assert "a class known from its description alone has no examples to check it on" in page


def test_an_out_of_domain_image_shows_the_no_result_banner(qtbot, site: SiteConfig) -> None:
    ct = dicom_test_file("CT_small.dcm")
    panel = loaded_panel(qtbot, site)
    panel.set_context(ct, 0, [ct], [ct])
    run(qtbot, panel, "image")
    assert panel.is_abstain_banner_shown()
    assert panel.result_label() is None
    assert NO_RESULT_TITLE in panel.banner.text()
    assert "up to 1.00" in panel.banner.text()
    assert "Is this the right model for this image? It was built for: Basal cell carcinoma" in panel.banner.text()
    assert panel.bars.isHidden() and panel.top_label.text() == ""
    assert not panel.confirm_button.isEnabled()
    assert "abstain" not in panel.banner.text().lower() and "ood" not in panel.banner.text().lower()


def test_a_bundle_that_fails_verification_is_a_message_and_no_model(qtbot, site: SiteConfig,
                                                                   tmp_path: Path) -> None:
    data = bytearray(BUNDLE.read_bytes())
    data[len(data) // 2] ^= 0xFF
    broken = tmp_path / "tampered.zsmb"
    broken.write_bytes(bytes(data))
    panel = loaded_panel(qtbot, site, broken)
    assert not panel.model_ready
    assert "This model cannot be used" in panel.model_status.text()
    assert "tampered.zsmb" in panel.model_status.text()
    reason = panel.model_status.text().rsplit("tampered.zsmb: ", 1)[1]
    assert reason and "bundle" not in reason  # the app's words: a model file
    assert not panel.run_buttons["image"].isEnabled()
    panel.classify("image")
    assert "Choose a model first" in panel.message.text()
    # The good model still loads afterwards.
    panel.load_bundle(BUNDLE)
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)
    assert panel.model_ready


def test_an_unreadable_image_in_a_series_is_its_own_row(qtbot, site: SiteConfig, melanoma_photos: list[Path],
                                                         tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 not really a jpeg")
    panel = loaded_panel(qtbot, site)
    files = [melanoma_photos[0], junk]
    panel.set_context(files[0], 0, files, files)
    run(qtbot, panel, "study")
    texts = {cell(panel, i, 0): cell(panel, i, 1) for i in range(panel.table.rowCount())}
    assert texts["junk.jpg"] == "Could not be read"
    row = next(i for i in range(panel.table.rowCount()) if cell(panel, i, 0) == "junk.jpg")
    panel.table.selectRow(row)
    assert "could not be read" in panel.message.text()


def test_results_and_reviews_go_to_the_case_log(qtbot, site: SiteConfig, melanoma_photos: list[Path]) -> None:
    from zsmed.store import open_case_log

    panel = loaded_panel(qtbot, site)
    panel.set_context(melanoma_photos[0], 0, melanoma_photos, melanoma_photos)
    with qtbot.waitSignal(panel.logged, timeout=TIMEOUT):
        panel.classify("image")
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)
    ids = panel.last_prediction_ids()
    assert len(ids) == 1
    label = panel.result_label()
    assert label is not None
    panel.show()
    panel.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is panel, timeout=5000)
    panel.model_combo.setFocus()
    with qtbot.waitSignal(panel.logged, timeout=5000) as signal:
        qtbot.keyClick(panel.model_combo, Qt.Key.Key_Return)  # one keystroke confirms
    assert signal.args == [ids[0]]
    with open_case_log(site.resolved_caselog_path(), site=site) as log:
        record = log.get(ids[0])
    assert record.label == label and record.user == "Dr Panel"
    assert record.review is not None and record.review.verdict == "confirmed" and record.review.reader == "Dr Panel"

    other = next(c for c in ("bcc", "bkl", "mel", "nv") if c != label)
    with qtbot.waitSignal(panel.logged, timeout=TIMEOUT):
        panel.correct(other, "looks like it to me")
    with open_case_log(site.resolved_caselog_path(), site=site) as log:
        record = log.get(ids[0])
    assert record.review is not None and record.review.verdict == "corrected"
    assert record.review.label == other and record.review.comment == "looks like it to me"


def test_the_reviewed_cases_most_alike_show_under_the_result(qtbot, site: SiteConfig,
                                                             melanoma_photos: list[Path]) -> None:
    """An image read after others were reviewed: the reviewed cases the model finds most alike, with the
    reader's class, date and thumbnail; a series run keeps no embeddings (a CT's every slice would fill the log)."""
    from zsmed.store import open_case_log

    panel = loaded_panel(qtbot, site)
    first, second, third = melanoma_photos
    panel.set_context(first, 0, [first], [first])
    run(qtbot, panel, "image")
    assert panel.similar.isHidden()  # nothing reviewed yet
    [first_id], said = panel.last_prediction_ids(), panel.result_label()
    with qtbot.waitSignal(panel.logged, timeout=TIMEOUT):
        panel.correct("mel", "histology: melanoma")
    panel.set_context(second, 0, [second], [second])
    run(qtbot, panel, "image")
    [second_id] = panel.last_prediction_ids()
    assert not panel.similar.isHidden()
    title = class_titles(panel._shown_batch.predictor.bundle.card)["mel"]
    verdict = "confirmed" if said == "mel" else "corrected"
    assert panel.similar.labels() == [f"{title} ({verdict})"]
    assert panel.similar.heading.text() == f"Most alike among the cases reviewed here: 1 of 1 {title}"
    item = panel.similar.list.item(0)
    assert not item.icon().isNull() and first.name in item.toolTip() and "Dr Panel" in item.toolTip()
    assert "alike 0." in item.text() or "alike 1." in item.text()
    # a double-click shows the case's image in a window of its own, titled with the reader's class
    panel.show()
    qtbot.waitExposed(panel)
    viewport = panel.similar.list.viewport()
    where = panel.similar.list.visualItemRect(item).center()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=where)  # (Qt takes a double-click where it was pressed)
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=where)
    case = panel.similar.case_window
    assert case is not None and case.isVisible() and title in case.windowTitle()
    qtbot.waitUntil(lambda: case.viewer.current_path() == first and not case.viewer.is_loading(), timeout=TIMEOUT)
    assert "Dr Panel" in case.note.text() and panel._current == second  # the reading stays where it was
    panel.set_context(third, 0, [second, third], [second, third])
    run(qtbot, panel, "series")
    assert panel.similar.isHidden()
    with open_case_log(site.resolved_caselog_path(), site=site) as log:
        kept = {row[0] for row in log.db.execute("SELECT prediction_id FROM embeddings")}
    assert kept == {first_id, second_id}  # the two images read one by one


@pytest.mark.parametrize("how", ["read-only", "locked", "no folder"])
def test_a_case_log_that_cannot_be_written_keeps_the_results_and_says_so(
        qtbot, site: SiteConfig, melanoma_photos: list[Path], tmp_path: Path, how: str) -> None:
    from zsmed.store import open_case_log

    path = site.resolved_caselog_path()
    with open_case_log(path, site=site):
        pass
    locker: sqlite3.Connection | None = None
    if how == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes read-only files")
        path.chmod(0o444)
        path.parent.chmod(0o555)
    elif how == "locked":  # another workstation is writing and does not let go
        locker = sqlite3.connect(str(path), isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
    else:  # the configured folder cannot be made (a file of that name is in the way)
        (tmp_path / "share").write_text("not a folder")
        path = tmp_path / "share" / "caselog.sqlite"
        site = replace(site, caselog_path=str(path))
    panel = loaded_panel(qtbot, site)
    panel.worker_log_timeout = panel.review_log_timeout = 0.3
    try:
        panel.set_context(melanoma_photos[0], 0, melanoma_photos, melanoma_photos)
        run(qtbot, panel, "series")
        assert panel.result_label() is not None  # the result is shown all the same
        assert panel.pending_count() == 3
        status = panel.log_status.text()
        assert "could not be written" in status and "3 results are kept here" in status
        assert str(path) in status
        assert not panel.pending_box.isHidden()
        panel.confirm()  # a review waits with its result
        qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)
        assert panel.pending_count() == 3 and "could not be written" in panel.log_status.text()
        saved = panel.save_pending(tmp_path / "unsaved.json")
        records = json.loads(saved.read_text())["unsaved_case_log_records"]
        assert [Path(r["prediction"]["source"]).name for r in records] == [p.name for p in melanoma_photos]
        assert sum(r["review"] is not None for r in records) >= 1
    finally:
        if how == "read-only":
            path.parent.chmod(0o755)
            path.chmod(0o644)
        elif locker is not None:
            locker.execute("ROLLBACK")
            locker.close()
        else:
            (tmp_path / "share").unlink()
    with qtbot.waitSignal(panel.logged, timeout=TIMEOUT):
        panel.retry_pending()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)
    assert panel.pending_count() == 0
    assert "Saved in the case log" in panel.log_status.text()
    with open_case_log(path, site=site) as log:
        records = log.list_predictions()
    assert [Path(r.source or "").name for r in records] == [p.name for p in melanoma_photos]
    assert all(r.user == "Dr Panel" for r in records)
    assert sum(r.review is not None for r in records) >= 1


@pytest.mark.parametrize(("value", "expected"), [("1", "signatures are required"), ("perhaps", "not a yes/no value")])
def test_the_site_signature_policy_applies_on_load(qtbot, site: SiteConfig, monkeypatch: pytest.MonkeyPatch,
                                                   value: str, expected: str) -> None:
    monkeypatch.setenv("ZSMED_REQUIRE_SIGNATURE", value)
    monkeypatch.delenv("ZSMED_TRUSTED_KEYS", raising=False)
    panel = loaded_panel(qtbot, site)
    assert not panel.model_ready
    assert "This model cannot be used" in panel.model_status.text()
    assert expected in panel.model_status.text()


def test_a_result_is_written_as_a_dicom_sr(qtbot, site: SiteConfig, tmp_path: Path,
                                           melanoma_photos: list[Path]) -> None:
    import pydicom

    ct = dicom_test_file("CT_small.dcm")
    panel = loaded_panel(qtbot, site)
    panel.set_context(melanoma_photos[0], 0, [melanoma_photos[0]], [melanoma_photos[0]])
    run(qtbot, panel, "image")
    assert not panel.sr_button.isEnabled()  # a photo has no study to report into
    panel.set_context(ct, 0, [ct], [ct])
    run(qtbot, panel, "image")
    assert panel.sr_button.isEnabled()
    out = tmp_path / "sr"
    out.mkdir()
    written = panel.write_sr(out)
    assert written is not None and written.parent == out
    sr = pydicom.dcmread(written)
    source = pydicom.dcmread(ct, stop_before_pixels=True)
    assert sr.Modality == "SR"
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert "DICOM SR written" in panel.log_status.text()
    assert not any(text.startswith("Reviewed by") for text in text_values(sr))
    # After the reader's correction the report carries it beside the model's result.
    panel.correct("mel", "seen at the clinic")
    qtbot.waitUntil(lambda: panel.pending_count() == 0, timeout=TIMEOUT)
    again = panel.write_sr(out)
    assert again is not None
    texts = text_values(pydicom.dcmread(again))
    assert any(t.startswith(f"Reviewed by {site.reader} on ") and t.endswith(
        "corrected the result to mel. Comment: seen at the clinic") for t in texts), texts
    (tmp_path / "a file").write_text("in the way")
    assert panel.write_sr(tmp_path / "a file") is None
    assert "could not be written" in panel.log_status.text()


def test_cancel_stops_the_run_and_records_nothing(qtbot, site: SiteConfig, shared_data: Path) -> None:
    files = sorted((shared_data / "ham10000_fs" / "base" / "nv").glob("*.jpg"))[:64]
    panel = loaded_panel(qtbot, site)
    panel.set_context(files[0], 0, files, files)
    panel.classify("study")
    assert not panel.progress_box.isHidden() and not panel.run_buttons["study"].isEnabled()
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)
    assert "Cancelled; nothing was recorded" in panel.message.text()
    assert panel.progress_box.isHidden() and panel.run_buttons["study"].isEnabled()
    assert panel.last_prediction_ids() == [] and panel.pending_count() == 0
    assert not site.resolved_caselog_path().exists()


def test_image_scope_classifies_the_frame_on_screen(qtbot, site: SiteConfig) -> None:
    from zsmed.store import open_case_log

    cine = dicom_test_file("emri_small.dcm")
    panel = loaded_panel(qtbot, site)
    panel.set_context(cine, 3, [cine], [cine])
    run(qtbot, panel, "image")
    assert panel.result_title.text() == "emri_small.dcm, frame 4"
    assert panel.is_abstain_banner_shown()  # an MR slice is nothing like dermoscopy
    ids = panel.last_prediction_ids()
    assert len(ids) == 1
    with open_case_log(site.resolved_caselog_path(), site=site) as log:
        record = log.get(ids[0])
    assert record.frame == 3 and record.abstain and record.label is None and record.modality == "MR"
    # The whole series: every frame, one row each, and the series says it has no result.
    run(qtbot, panel, "series")
    assert panel.table.rowCount() == 11
    assert cell(panel, 0, 1) == "No result"
    assert panel.is_abstain_banner_shown()


def test_correct_asks_for_the_class_and_a_comment(qtbot, site: SiteConfig, melanoma_photos: list[Path]) -> None:
    from PySide6.QtCore import QTimer

    from zsmed.store import open_case_log
    from zsmed_desktop.classify_panel import CorrectDialog

    panel = loaded_panel(qtbot, site)
    panel.set_context(melanoma_photos[0], 0, melanoma_photos, melanoma_photos)
    run(qtbot, panel, "image")
    label = panel.result_label()
    other = next(c for c in ("bcc", "bkl", "mel", "nv") if c != label)
    seen: list[str] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, CorrectDialog)
        seen.extend(dialog.classes.itemText(i) for i in range(dialog.classes.count()))
        dialog.classes.setCurrentIndex(dialog.classes.findData(other))
        dialog.comment.setText("seen in clinic")
        dialog.accept()

    QTimer.singleShot(100, answer)
    with qtbot.waitSignal(panel.logged, timeout=TIMEOUT):
        panel.correct()
    assert seen == ["Basal cell carcinoma", "Benign keratosis", "Melanoma", "Benign melanocytic nevus"]
    with open_case_log(site.resolved_caselog_path(), site=site) as log:
        review = log.get(panel.last_prediction_ids()[0]).review
    assert review is not None and review.verdict == "corrected" and review.label == other
    assert review.comment == "seen in clinic" and review.reader == "Dr Panel"
    assert "Corrected to" in panel.log_status.text()


def test_a_broken_file_at_a_later_frame_is_a_message(qtbot, site: SiteConfig, tmp_path: Path) -> None:
    cine = dicom_test_file("emri_small.dcm")
    broken = tmp_path / "cut.dcm"
    broken.write_bytes(cine.read_bytes()[: cine.stat().st_size // 2])  # pixel data cut off half way
    panel = loaded_panel(qtbot, site)
    panel.set_context(broken, 7, [broken], [broken])
    run(qtbot, panel, "image")
    assert panel.result_label() is None and not panel.is_abstain_banner_shown()
    assert panel.message.text().startswith("This image could not be read:")
    assert not panel.confirm_button.isEnabled() and not panel.correct_button.isEnabled()


def test_an_image_of_another_kind_is_named_before_running(qtbot, site: SiteConfig, tmp_path: Path) -> None:
    from PIL import Image

    from tests.runtime.conftest import with_card_fields

    ct = dicom_test_file("CT_small.dcm")
    bundle = with_card_fields(BUNDLE, tmp_path / "photo_model.zsmb", input_kinds=["photo"])
    panel = loaded_panel(qtbot, site, bundle)
    assert panel.model_ready and "Built on photographs." in panel.model_status.text()
    panel.set_context(ct, 0, [ct], [ct])
    panel.classify("image")
    assert not panel.is_busy()  # held back: nothing runs until the reader asks
    assert panel.is_kind_warning_shown()
    assert panel.kind_warning.text() == ("This model was built on photographs; this image is a CT. "
                                         "Run it anyway?")
    assert panel.last_prediction_ids() == [] and panel.table.isHidden() and not panel.is_abstain_banner_shown()
    qtbot.mouseClick(panel.run_anyway_button, Qt.MouseButton.LeftButton)
    assert panel.is_busy() and not panel.is_kind_warning_shown()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)
    assert panel.is_abstain_banner_shown() and len(panel.last_prediction_ids()) == 1
    # another image on screen: the old warning goes; a photograph runs at once
    panel.classify("image")
    assert panel.is_kind_warning_shown()
    photo = tmp_path / "skin.png"
    Image.new("RGB", (224, 224), (190, 130, 110)).save(photo)
    panel.set_context(photo, 0, [photo], [photo])
    assert not panel.is_kind_warning_shown()
    run(qtbot, panel, "image")
    assert len(panel.last_prediction_ids()) == 1 and not panel.is_kind_warning_shown()


def test_a_model_without_kinds_runs_on_any_image_as_before(qtbot, site: SiteConfig) -> None:
    ct = dicom_test_file("CT_small.dcm")
    panel = loaded_panel(qtbot, site)  # the reference bundle records no kinds
    assert "Built on" not in panel.model_status.text()
    panel.set_context(ct, 0, [ct], [ct])
    run(qtbot, panel, "image")
    assert not panel.is_kind_warning_shown() and panel.is_abstain_banner_shown()
