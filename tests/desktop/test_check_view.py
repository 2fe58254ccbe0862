"""Checking a model on labelled cases in the app (Models ▸ Check on labelled cases…): the figures in
the window, the misread images shown in the viewer, the summary kept on the model's card, a folder
that is not one of labelled cases said in the window, Cancel, Save, Remove taking the checks along."""

from __future__ import annotations

import html
import json
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from tests.conftest import REPO
from tests.desktop.reading_room import make_window
from tests.runtime.labelled import labelled_photos
from zsmed.progress import Job, Progress
from zsmed.runtime.check import checks_path, read_checks
from zsmed.site import SiteConfig
from zsmed_desktop import check_view
from zsmed_desktop.check_view import CheckDialog

SGPS = REPO / "export" / "reference" / "sgps_ham4_lite0_v1.zsmb"
TIMEOUT = 60_000


@pytest.fixture()
def site(isolated_dirs: Path) -> SiteConfig:
    models = isolated_dirs / "models"
    models.mkdir()
    shutil.copy(SGPS, models / "skin four.zsmb")
    return SiteConfig(reader_name="Dr Check", models_folder=str(models), backend="onnxruntime",
                      caselog_path=str(isolated_dirs / "caselog.sqlite"))


def test_check_a_model_in_the_app(qtbot, tmp_path: Path, site: SiteConfig, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    window = make_window(qtbot, tmp_path)
    window.apply_site(site)
    models = window.open_models()
    qtbot.waitUntil(lambda: models.checked(models.current_path()) is not None, timeout=TIMEOUT)  # type: ignore[arg-type]
    assert "Checked on labelled cases at this site" in models.card_text() and "Not yet." in models.card_text()
    assert models.check_button.isEnabled()
    window.action("check_model").trigger()  # Models ▸ Check a model on labelled cases…
    dialog = models.check_dialog
    assert isinstance(dialog, CheckDialog) and dialog.isVisible() and dialog.model == models.current_path()
    folder = labelled_photos(shared_data, tmp_path / "local cases")
    dialog.start(folder)
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=TIMEOUT)
    report = dialog.report
    assert report is not None and len(report.cases) == 17
    assert dialog.summary.text().startswith(f"{report.correct} of 16 answered case(s) correct")
    assert "1 unreadable" in dialog.summary.text()
    assert "Folder 'to sort' is not a class of the model" in dialog.notes.text()
    # Classes under the titles their descriptions give, with their figures.
    titles = {"nv": "Benign melanocytic nevus", "mel": "Melanoma", "bkl": "Benign keratosis",
              "bcc": "Basal cell carcinoma"}
    rows = dialog.class_rows()
    assert [row[0] for row in rows] == [titles[c] for c in report.classes]
    assert [row[1] for row in rows] == [("5" if c == "mel" else "4") for c in report.classes]
    cells = dialog.confusion_cells()
    counts = [[int(v) for v in row[1:]] for row in cells]
    mel = report.classes.index("mel")
    assert sum(map(sum, counts)) == 17 and counts[mel][-1] == 1  # the melanoma file that is no image
    assert sum(counts[i][i] for i in range(4)) == report.correct
    # Every image not given its class is listed by name only; double-clicking shows it in the viewer.
    names = dialog.wrong_names()
    assert len(names) == 17 - report.correct and names[-1] == "Doe_Jane_scan.jpg"
    assert all("/" not in name for name in names)
    qtbot.waitUntil(dialog.thumbnails_done, timeout=TIMEOUT)
    assert dialog.thumbnail_count() == len(names) - 1  # each misread photograph shown small; not the broken file
    if report.correct < 16:
        with qtbot.waitSignal(models.show_requested, timeout=5_000) as shown:
            dialog.wrong.itemDoubleClicked.emit(dialog.wrong.item(0, 0))
        assert Path(shown.args[0]).name == names[0]
        qtbot.waitUntil(lambda: window.viewer.current_path() is not None
                        and Path(window.viewer.current_path()).name == names[0], timeout=TIMEOUT)
    # The summary is kept with the model, and its card says so.
    model = Path(site.models_folder) / "skin four.zsmb"
    assert len(read_checks(model)) == 1
    assert "Kept with the model" in dialog.status.text()
    qtbot.waitUntil(lambda: f"{report.correct} of 16 answered correct" in models.card_text(), timeout=TIMEOUT)
    # The classifier panel says it too, when the model is chosen for reading.
    window.classify.load_bundle(model)
    qtbot.waitUntil(lambda: window.classify.model_ready, timeout=TIMEOUT)
    assert (f"Checked here on 17 labelled cases ({report.checked_at[:10]}): {report.correct} of 16 answered correctly."
            in window.classify.model_status.text())
    # The report, every image named, where the reader chooses.
    assert dialog.save(tmp_path / "report.json")
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["cases"] == 17 and {Path(c["file"]).name for c in saved["per_case"]} >= {"Doe_Jane_scan.jpg"}
    assert dialog.save(tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and html.escape(report.summary_line()) in page
    assert "Doe_Jane_scan.jpg" in page
    # Removing the model takes its checks into 'removed' with it.
    dialog.close()
    moved = models.remove(model)
    assert moved is not None and checks_path(moved).is_file() and not checks_path(model).exists()


def test_a_folder_that_is_not_labelled_cases_is_said(qtbot, tmp_path: Path, site: SiteConfig) -> None:  # type: ignore[no-untyped-def]
    model = Path(site.models_folder) / "skin four.zsmb"
    dialog = CheckDialog(model, "onnxruntime")
    qtbot.addWidget(dialog)
    (tmp_path / "cases" / "pneumonia").mkdir(parents=True)
    dialog.start(tmp_path / "cases")
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    text = dialog.status.text()
    assert text.startswith("Not checked: cases: holds no subfolder of images named after the model's classes")
    assert str(tmp_path) not in text and "Traceback" not in text
    assert dialog.report is None and not dialog.save_button.isEnabled()
    assert not checks_path(model).exists()


def test_cancel_keeps_nothing(qtbot, tmp_path: Path, site: SiteConfig, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    def endless(model: Path, folder: Path, backend: str = "auto", keep: bool = True) -> Job[None]:
        n = 0
        while True:  # a check of a very large folder
            n += 1
            time.sleep(0.01)
            yield Progress(n, 10_000, "")

    monkeypatch.setattr(check_view, "run_check", endless)
    model = Path(site.models_folder) / "skin four.zsmb"
    dialog = CheckDialog(model, "onnxruntime")
    qtbot.addWidget(dialog)
    dialog.start(tmp_path)
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=TIMEOUT)
    assert dialog.is_running() and dialog.cancel_button.isVisibleTo(dialog)
    dialog.cancel()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert dialog.status.text() == "Cancelled: nothing was kept."
    assert dialog.choose_button.isEnabled() and not checks_path(model).exists()


def test_a_model_opened_from_a_file_is_the_one_checked(qtbot, tmp_path: Path, site: SiteConfig) -> None:  # type: ignore[no-untyped-def]
    window = make_window(qtbot, tmp_path)
    window.apply_site(site)
    elsewhere = tmp_path / "stick" / "from the stick.zsmb"
    elsewhere.parent.mkdir()
    shutil.copy(SGPS, elsewhere)
    window.classify.load_bundle(elsewhere)  # File ▸ Open a model file…: not in the models folder
    qtbot.waitUntil(lambda: window.classify.model_ready, timeout=TIMEOUT)
    dialog = window.open_check()
    assert isinstance(dialog, CheckDialog) and dialog.model == elsewhere
    assert "from the stick" in dialog.windowTitle()
