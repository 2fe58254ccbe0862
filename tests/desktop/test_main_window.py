"""The reading room's window on real files: opening (menu paths, drop, recent list), problems, the
viewer and classifier hookup, keyboard shortcuts, remembered state and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QPalette

from tests.conftest import dicom_test_file
from tests.desktop.reading_room import (
    SCAN_TIMEOUT,
    make_window,
    open_and_wait,
    pydicom_test_folder,
    small_cd,
    temp_settings,
)
from zsmed_desktop.main_window import MainWindow, short_place, to_qimage


def problem_tab_text(window: MainWindow) -> str:
    return window.bottom.tabText(window.bottom.indexOf(window.problems))


def ct_study(tmp_path: Path) -> Path:
    """A study folder holding CT_small as ct.dcm."""
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(dicom_test_file("CT_small.dcm"), study / "ct.dcm")
    return study


def shown_window(qtbot, tmp_path: Path) -> MainWindow:
    """A window on the screen (for keys), nothing opened yet."""
    window = make_window(qtbot, tmp_path)
    window.show()
    qtbot.waitExposed(window)
    return window


def open_ct(qtbot, window: MainWindow, study: Path) -> None:
    """Open ``study`` and wait until its image is shown."""
    open_and_wait(qtbot, window, [study])
    qtbot.waitUntil(lambda: window.viewer.current_frame_data() is not None, timeout=SCAN_TIMEOUT)


def test_layout_browser_viewer_classifier_and_bottom_tabs(qtbot, tmp_path: Path) -> None:
    window = make_window(qtbot, tmp_path)
    assert [window.h_splitter.widget(k) for k in range(3)][:2] == [window.browser, window.viewer]
    tabs = [window.bottom.tabText(k) for k in range(window.bottom.count())]
    assert tabs[0] == "Problems (0)" and tabs[-1] == "Jobs"
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus == ["File", "View", "Classify", "Models", "Log", "Help"]
    entries = {m.text().replace("&", ""): [a.text() for a in m.menu().actions() if not a.isSeparator()]
               for m in window.menuBar().actions()}
    assert entries["Models"][:4] == ["Build a classifier…", "Models and their cards…",
                                     "Check a model on labelled cases…", "Open a model file…"]
    assert "Check the case log is intact" in entries["Log"] and "Case log" in entries["Log"]
    assert entries["File"][:2] == ["Open folder…", "Open files or DICOMDIR…"]
    # Every frequent action has a key.
    keys = {k: window.action(k).shortcut().toString() for k in
            ("open_folder", "next_series", "previous_series", "reset", "invert", "fit", "confirm", "correct",
             "build_model", "models")}
    assert keys == {"open_folder": "Ctrl+O", "next_series": "PgDown", "previous_series": "PgUp", "reset": "R",
                    "invert": "I", "fit": "F", "confirm": "Return", "correct": "C", "build_model": "Ctrl+B",
                    "models": "Ctrl+M"}
    assert [a.shortcut().toString() for a in window.preset_actions] == [str(n) for n in range(1, 10)]


def test_opening_a_folder_fills_tree_problems_and_status(qtbot, tmp_path: Path) -> None:
    folder = small_cd(tmp_path)
    window = make_window(qtbot, tmp_path)
    open_and_wait(qtbot, window, [folder])
    assert window.index is not None
    counts = window.index.counts()
    assert counts["instances"] == 3  # CT, MR and the RT plan are DICOM; text and junk are not images
    assert window.tree.topLevelItemCount() == counts["patients"] >= 2
    # The corrupt file: its name and reason in one line, the full path only in the tooltip, a count on the tab.
    assert problem_tab_text(window) == "Problems (1)"
    assert window.problems.lines() == ["broken.dcm: not a DICOM file (no 'DICM' marker at byte 128 and no "
                                       "recognisable data set)"] or (
        len(window.problems.lines()) == 1 and window.problems.lines()[0].startswith("broken.dcm: "))
    assert str(folder) not in window.problems.lines()[0]
    assert window.problems.item(0).toolTip().startswith(str(folder / "broken.dcm"))
    assert "2 images and 1 other object (reports, plans)" in window.statusBar().currentMessage()
    assert "1 problem" in window.statusBar().currentMessage()
    # The first series with images is selected and shown.
    assert window.current_series is not None and window.current_series.image_paths
    qtbot.waitUntil(lambda: window.viewer.current_path() is not None, timeout=SCAN_TIMEOUT)
    assert window.viewer.current_path() in window.current_series.image_paths


def test_selecting_a_series_shows_it_and_gives_the_classifier_its_context(qtbot, tmp_path: Path) -> None:
    folder = small_cd(tmp_path)
    window = make_window(qtbot, tmp_path)
    open_and_wait(qtbot, window, [folder])
    items = [i for i in window.browser.series_items() if "MR" in i.text(0)]
    assert len(items) == 1
    window.tree.setCurrentItem(items[0])
    mr = folder / "MR_small.dcm"
    assert window.current_series is not None and window.current_series.image_paths == [mr]
    qtbot.waitUntil(lambda: window.viewer.current_path() == mr, timeout=SCAN_TIMEOUT)
    qtbot.waitUntil(lambda: not window.viewer.is_loading(), timeout=SCAN_TIMEOUT)
    image = np.asarray(window.viewer.rendered_image())
    assert image.shape[:2] == (64, 64) and image.std() > 10  # MR_small is 64 x 64 and not flat
    # the patient said once, top left; top right the series and its window, not the patient again
    texts = window.viewer.overlay_text()
    assert "CompressedSamples" in texts["tl"] and "CompressedSamples" not in texts["tr"]
    assert texts["tr"].startswith("MR · Series")
    qtbot.waitUntil(lambda: window.classify._current == mr, timeout=SCAN_TIMEOUT)
    assert window.classify._series == [mr]


def test_keys_step_series_apply_presets_and_reach_the_classifier(qtbot, tmp_path: Path) -> None:
    window = shown_window(qtbot, tmp_path)
    open_and_wait(qtbot, window, [pydicom_test_folder()])
    first = window.current_series
    assert first is not None
    window.viewer.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    second = window.current_series
    assert second is not None and second.key != first.key
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert window.current_series is not None and window.current_series.key == first.key
    # A CT series: the number keys are the CT window presets.
    ct_item = next(i for i in window.browser.series_items() if "Routine Brain" in i.text(0))
    window.tree.setCurrentItem(ct_item)
    qtbot.waitUntil(lambda: not window.viewer.is_loading() and window.viewer.current_path() is not None,
                    timeout=SCAN_TIMEOUT)
    names = window.preset_names()
    assert names[:5] == ["lung", "mediastinum", "bone", "brain", "soft tissue"]  # a CT in Hounsfield units
    window.viewer.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_2)
    assert window.viewer.window_name() == names[1]
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert window.viewer.window_name() == names[0]
    qtbot.keyClick(window, Qt.Key.Key_I)
    assert window.viewer.is_inverted()
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert not window.viewer.is_inverted()
    # The viewer's tools from the View menu and their keys: measure and region of interest (checkable
    # actions that follow the viewer, Esc included, each turning the other off), rotate, flip, cine.
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    listed = [a.text() for a in view_menu.actions()]
    for text in ("Measure", "Region of interest", "Remove the measurements", "Rotate clockwise", "Flip left-right",
                 "Play / stop cine"):
        assert text in listed
    assert window.action("measure") in window.toolbar.actions()
    assert window.action("roi") not in window.toolbar.actions() and window.action("roi").isCheckable()
    assert window.action("roi").shortcut().toString() == "E"
    qtbot.keyClick(window, Qt.Key.Key_E)
    assert window.viewer.is_roi_mode() and window.action("roi").isChecked()
    qtbot.keyClick(window, Qt.Key.Key_M)  # M and E are exclusive: the other action unchecks itself
    assert window.viewer.is_measuring() and window.action("measure").isChecked()
    assert not window.viewer.is_roi_mode() and not window.action("roi").isChecked()
    window.action("roi").trigger()
    assert window.viewer.is_roi_mode() and window.action("roi").isChecked()
    assert not window.viewer.is_measuring() and not window.action("measure").isChecked()
    window.viewer.roi((10, 10), (60, 40))
    window.viewer.measure((10, 50), (60, 50))
    window.action("clear_measurements").trigger()  # the rulers and the regions of interest
    assert window.viewer.rois() == [] and window.viewer.measurements() == []
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Escape)
    assert not window.viewer.is_roi_mode() and not window.action("roi").isChecked()
    window.action("measure").trigger()
    assert window.viewer.is_measuring() and window.action("measure").isChecked()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Escape)
    assert not window.viewer.is_measuring() and not window.action("measure").isChecked()
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.viewer.is_measuring() and window.action("measure").isChecked()
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert not window.viewer.is_measuring()
    window.action("rotate_clockwise").trigger()
    assert window.viewer.turn() == (0, -1, 1, 0)
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert window.viewer.turn() == (-1, 0, 0, 1)
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.viewer.turn() == (1, 0, 0, 1)
    qtbot.keyClick(window, Qt.Key.Key_P)
    assert window.viewer.is_playing()
    qtbot.keyClick(window, Qt.Key.Key_P)
    assert not window.viewer.is_playing()
    # Typing in the search box is not a tool key.
    window.browser.search.setFocus()
    qtbot.keyClicks(window.browser.search, "me")
    assert not window.viewer.is_measuring() and not window.action("measure").isChecked()
    assert not window.viewer.is_roi_mode() and not window.action("roi").isChecked()
    window.browser.search.clear()
    window.viewer.setFocus()
    # Arrows step through the series' images while the image has the focus.
    assert window.viewer.current_index() == 0
    qtbot.keyClick(window.viewer, Qt.Key.Key_Down)
    assert window.viewer.current_index() == 1
    qtbot.keyClick(window, Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    assert window.viewer.current_index() == 0
    # Enter and C go to the classifier wherever the focus is, but not while typing a search.
    calls: list[str] = []
    window.classify.confirm = lambda: calls.append("confirm")
    window.classify.correct = lambda: calls.append("correct")
    window.viewer.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.keyClick(window, Qt.Key.Key_C)
    window.classify.setFocus()
    qtbot.keyClick(window.classify, Qt.Key.Key_Return)
    assert calls == ["confirm", "correct", "confirm"]
    window.browser.search.setFocus()
    qtbot.keyClicks(window.browser.search, "c")
    qtbot.keyClick(window.browser.search, Qt.Key.Key_Return)
    assert calls == ["confirm", "correct", "confirm"]
    assert window.browser.search.text() == "c"


def test_a_dicomdir_opens_from_the_files_path(qtbot, tmp_path: Path) -> None:
    dicomdir = dicom_test_file("DICOMDIR")
    window = make_window(qtbot, tmp_path)
    open_and_wait(qtbot, window, [dicomdir])
    assert window.index is not None and window.index.dicomdirs == [str(dicomdir)]
    assert window.index.counts()["patients"] >= 2
    assert problem_tab_text(window) == "Problems (0)"


def test_drop_opens_what_was_dropped(qtbot, tmp_path: Path) -> None:
    folder = small_cd(tmp_path)
    window = make_window(qtbot, tmp_path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder / "CT_small.dcm")), QUrl.fromLocalFile(str(folder / "MR_small.dcm"))])
    assert window.dropped_paths(mime) == [str(folder / "CT_small.dcm"), str(folder / "MR_small.dcm")]
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.index is not None, timeout=SCAN_TIMEOUT)
    assert window.index is not None and window.index.counts()["instances"] == 2
    # Text that is not a file is not accepted.
    text_only = QMimeData()
    text_only.setText("hello")
    assert window.dropped_paths(text_only) == []
    assert QPoint(0, 0) == QPoint(0, 0)


def test_recent_list_and_window_state_are_remembered(qtbot, tmp_path: Path) -> None:
    first_folder = small_cd(tmp_path / "one")
    second = tmp_path / "two"
    second.mkdir()
    shutil.copy(dicom_test_file("CT_small.dcm"), second / "CT_small.dcm")
    settings = temp_settings(tmp_path)
    window = make_window(qtbot, tmp_path, settings)
    window.show()
    open_and_wait(qtbot, window, [first_folder])
    open_and_wait(qtbot, window, [second])
    assert window.recent() == [str(second), str(first_folder)]
    recent_actions = [a for a in window.recent_menu.actions() if not a.isSeparator()]
    assert [a.text() for a in recent_actions[:2]] == [short_place(str(second)), short_place(str(first_folder))]
    assert recent_actions[0].text() == "two  (" + tmp_path.name + ")"  # a name and its folder, not a path
    assert recent_actions[0].toolTip() == str(second)
    window.resize(790, 640)  # within the offscreen screen (800 wide), above the window's minimum
    window.h_splitter.setSizes([250, 300, 200])
    qtbot.wait(50)
    sizes = window.h_splitter.sizes()
    window.close()

    again = make_window(qtbot, tmp_path, temp_settings(tmp_path))
    again.show()
    qtbot.waitExposed(again)
    qtbot.wait(50)
    assert again.recent() == [str(second), str(first_folder)]
    assert (again.width(), again.height()) == (790, 640)
    assert again.h_splitter.sizes() == sizes
    assert again.last_folder() == str(second)
    # Choosing a recent entry opens it.
    next(a for a in again.recent_menu.actions() if a.text() == short_place(str(first_folder))).trigger()
    qtbot.waitUntil(lambda: again.index is not None, timeout=SCAN_TIMEOUT)
    assert again.index is not None and again.index.counts()["instances"] == 3


def test_a_folder_without_dicom_says_so_in_the_window(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "holiday"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing medical here")
    (folder / "report.pdf").write_bytes(b"%PDF-1.4 not an image")
    window = make_window(qtbot, tmp_path)
    open_and_wait(qtbot, window, [folder])
    assert "No DICOM images found" in window.statusBar().currentMessage()
    assert window.browser.empty_label.text().startswith("No DICOM images found")
    # A path that is gone: one line, no scan.
    assert window.open_paths([str(tmp_path / "ejected-cd")]) is None
    assert window.statusBar().currentMessage().endswith("ejected-cd: not found (moved, or the disc was taken out?)")


def test_crafted_and_corrupt_files_give_messages_and_the_rest_keeps_working(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "crafted"
    folder.mkdir()
    good = dicom_test_file("CT_small.dcm")
    shutil.copy(good, folder / "good.dcm")
    raw = dicom_test_file("MR_small.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(raw[: len(raw) - 4000])  # header fine, pixels cut off
    (folder / "random.dcm").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "empty.dcm").write_bytes(b"")
    window = make_window(qtbot, tmp_path)
    open_and_wait(qtbot, window, [folder])
    lines = window.problems.lines()
    assert any(line.startswith("random.dcm: ") for line in lines)
    assert any(line.startswith("empty.dcm: ") for line in lines)
    assert problem_tab_text(window) == f"Problems ({len(lines)})"
    # The truncated file is indexed (its header is whole) and fails when shown: a message, no crash.
    truncated = [r for r in window.browser._refs.values() if folder / "truncated.dcm" in r.image_paths]
    assert truncated
    window.tree.setCurrentItem(window.browser._items["e" + truncated[0].key])
    qtbot.waitUntil(lambda: "truncated.dcm" in window.viewer.message(), timeout=SCAN_TIMEOUT)
    assert str(folder) not in window.viewer.message()  # the name, not the path
    # The window still works: another folder opens and shows.
    open_and_wait(qtbot, window, [small_cd(tmp_path)])
    assert window.index is not None and window.index.counts()["instances"] == 3


def test_theme_switches_between_dark_and_light(qtbot, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QApplication

    window = make_window(qtbot, tmp_path)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    window.set_theme("dark")
    dark = app.palette().color(QPalette.ColorRole.Window).lightness()
    window.set_theme("light")
    light = app.palette().color(QPalette.ColorRole.Window).lightness()
    assert dark < 80 < 200 < light
    assert window.settings.value("view/theme") == "light"
    # Status colours follow: the dark theme's pale green would not read on the light background.
    from zsmed_desktop.classify_panel import OK_COLOUR

    window.classify._set_model_status("Verified", OK_COLOUR)
    assert "#2e7d32" in window.classify.model_status.styleSheet()  # shown while light: the dark green
    window.set_theme("dark")
    assert OK_COLOUR in window.classify.model_status.styleSheet()  # recoloured on switching back
    window.set_theme("light")
    assert "#2e7d32" in window.classify.model_status.styleSheet()
    window.set_theme("dark")


def test_to_qimage_keeps_pixels() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    image = to_qimage(grey)
    assert (image.width(), image.height()) == (4, 3)
    assert image.pixelColor(3, 2).value() == int(grey[2, 3])


def test_photographs_open_in_the_viewer_and_the_classifier(qtbot, tmp_path: Path, shared_data: Path) -> None:
    photos = sorted((shared_data / "ham10000_fs" / "base" / "mel").glob("*.jpg"))[:3]
    assert len(photos) == 3
    folder = tmp_path / "derm"
    folder.mkdir()
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    window = make_window(qtbot, tmp_path)
    # Dropped files that are photographs: shown as they are, no scan.
    assert window.open_paths([str(folder / photos[0].name)]) is None
    assert window.photos == [folder / photos[0].name]
    qtbot.waitUntil(lambda: window.viewer.current_path() == folder / photos[0].name, timeout=SCAN_TIMEOUT)
    qtbot.waitUntil(lambda: window.classify._current == folder / photos[0].name, timeout=SCAN_TIMEOUT)
    assert window.action("confirm").isEnabled() and window.action("reset").isEnabled()
    # A folder of photographs holds no DICOM: its photographs are shown instead of "nothing found".
    open_and_wait(qtbot, window, [folder])
    assert window.photos == [folder / p.name for p in photos]
    qtbot.waitUntil(lambda: window.classify._series == window.photos, timeout=SCAN_TIMEOUT)
    assert "No DICOM images found" not in window.statusBar().currentMessage()


def test_escape_cancels_a_scan_and_the_jobs_tab_says_so(qtbot, tmp_path: Path) -> None:
    from tests.desktop.reading_room import big_folder

    folder = big_folder(tmp_path, 5000, per_series=100)
    window = shown_window(qtbot, tmp_path)
    started: list[int] = []
    window.browser.scan_progress.connect(lambda done, total, _m: started.append(done) if total else None)
    window.open_paths([folder])
    assert window.action("cancel_scan").isEnabled()
    qtbot.waitUntil(lambda: bool(started), timeout=SCAN_TIMEOUT)
    # A model built or a warning meanwhile goes below the scan's line, which keeps updating in place.
    window._on_model_built(tmp_path / "skin.zsmb")
    window.show_message("something to know", warning=True)
    assert window.jobs.item(0).data(Qt.ItemDataRole.UserRole) == "running"
    with qtbot.waitSignal(window.browser.scan_cancelled, timeout=SCAN_TIMEOUT):
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert window.index is None and not window.browser.scanning
    assert window.jobs.item(0).text() == "Scan cancelled"
    lines = [window.jobs.item(i).text() for i in range(window.jobs.count())]
    assert "Model 'skin' built and saved in the models folder" in lines and "something to know" in lines
    assert sum(line.startswith(("Scan", "Scanning")) for line in lines) == 1  # one line for the one scan
    assert "Scan cancelled" in window.statusBar().currentMessage()
    assert not window.action("cancel_scan").isEnabled()


def answer_close_box(qtbot, window: MainWindow, answers: list[str]) -> list[str]:
    """Click the close warning's buttons, in order, as each box appears; returns the texts it showed."""
    from PySide6.QtCore import QTimer

    seen: list[str] = []

    def click() -> None:
        box = window.close_box
        if box is None or not box.isVisible() or not answers:
            return
        seen.append(box.text())
        wanted = answers.pop(0)
        button = next(b for b in box.buttons() if b.text().replace("&", "") == wanted)
        button.click()

    timer = QTimer(window)
    timer.setInterval(50)
    timer.timeout.connect(click)
    timer.start()
    return seen


def test_closing_with_results_the_case_log_has_not_taken_warns_and_loses_nothing(
        qtbot, tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import sqlite3

    from PySide6.QtWidgets import QFileDialog

    from tests.conftest import REPO
    from zsmed.store import open_case_log

    photos = sorted((shared_data / "ham10000_fs" / "base" / "mel").glob("*.jpg"))[:2]
    window = make_window(qtbot, tmp_path)
    panel = window.classify
    panel.worker_log_timeout = panel.review_log_timeout = 0.3
    log_path = window.site.resolved_caselog_path()
    with open_case_log(log_path, site=window.site):
        pass
    locker = sqlite3.connect(str(log_path), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another workstation holds the case log
    try:
        panel.load_bundle(REPO / "export" / "reference" / "sgps_ham4_lite0_v1.zsmb")
        qtbot.waitUntil(lambda: panel.model_ready and not panel.is_busy(), timeout=SCAN_TIMEOUT)
        window.show()
        window.open_photos(photos)
        qtbot.waitUntil(lambda: list(panel._series) == photos, timeout=SCAN_TIMEOUT)
        panel.classify("series")
        qtbot.waitUntil(lambda: not panel.is_busy(), timeout=SCAN_TIMEOUT)
        assert panel.pending_count() == 2
        # Cancel: the window stays open with its results.
        seen = answer_close_box(qtbot, window, ["Cancel"])
        assert window.close() is False
        assert window.isVisible() and panel.pending_count() == 2
        assert seen and "2 results are not in the case log" in seen[0]
        # Retry while the log is still locked: asked again; then saved to a file, and the window closes.
        target = tmp_path / "kept.json"
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "JSON (*.json)"))
        seen = answer_close_box(qtbot, window, ["Retry", "Save to a file…"])
        assert window.close() is True
        assert len(seen) == 2, "a failed retry asks again"
        records = json.loads(target.read_text())["unsaved_case_log_records"]
        assert [Path(r["prediction"]["source"]).name for r in records] == [p.name for p in photos]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    # The lock is gone: Retry writes them and the window closes without asking again.
    window.show()
    seen = answer_close_box(qtbot, window, ["Retry"])
    assert window.close() is True and len(seen) == 1
    assert panel.pending_count() == 0
    with open_case_log(log_path, site=window.site) as log:
        assert sorted(Path(r.source or "").name for r in log.list_predictions()) == sorted(p.name for p in photos)


def test_help_lists_the_keys_by_name_and_about_gives_the_version(qtbot, tmp_path: Path) -> None:
    from zsmed import __version__

    window = make_window(qtbot, tmp_path)
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert [a.text() for a in help_menu.actions()] == ["Keyboard shortcuts", "Check this installation…", "About zsmed"]
    listed = window.shortcut_rows()
    rows = dict(listed)
    assert len(rows) == len(listed)  # each key once: the viewer's tools are not listed twice
    assert rows["Ctrl+O"] == "Open folder" and rows["PgDown"] == "Next series"
    assert "Return, Enter" in rows and rows["C"] == "Correct result"
    assert "1 lung" in rows["1–9"] and "5 soft tissue" in rows["1–9"]
    assert "Window and level" in rows["Right-button drag"]
    assert rows["E"].startswith("Region of interest on / off") and "regions of interest" in rows["Delete / Esc"]
    assert not any(text.startswith("Preset ") for text in rows.values())
    box = window.show_shortcuts()
    assert box.isVisible() and "soft tissue" in box.text()
    assert box.sizeHint().height() < 900  # two columns: it fits a 1000-pixel-high screen (one column did not)
    free = box.screen().availableGeometry()
    assert box.width() <= free.width() and box.height() <= free.height()  # a small screen: it scrolls instead
    assert "B" in rows and "Link scrolling" in rows["L"] and rows["K"] == "Key image"
    box.close()
    about = window.show_about()
    assert f"zsmed {__version__}" in about.text() and "Dr Test" in about.text()
    about.close()


def test_measurements_are_saved_as_a_dicom_sr_from_the_view_menu(qtbot, tmp_path: Path, monkeypatch) -> None:
    """View > Save measurements as DICOM SR…: enabled only with a ruler or a region on the image shown;
    it asks where as the classify panel's Save as DICOM SR does (next to the study, or a folder), and
    the window says what came of it in one line, without the folders' paths."""
    from PySide6.QtWidgets import QFileDialog

    from tests.report.sr_items import content_items

    study = ct_study(tmp_path)
    window = make_window(qtbot, tmp_path)
    open_ct(qtbot, window, study)
    action = window.action("save_measurements")
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    listed = [a for a in view_menu.actions() if not a.isSeparator()]
    assert listed.index(action) == listed.index(window.action("cine")) + 1  # after the viewer's tools
    actions = view_menu.actions()  # the group of what goes back to the PACS, a separator before it
    assert actions[actions.index(action) - 1].isSeparator()
    assert [a.text() for a in actions[actions.index(action):actions.index(action) + 5]] == [
        "Save measurements as DICOM SR…", "Save the view for the PACS (presentation state)…",
        "Show the saved presentation state", "Key image", "Save key images for the PACS…"]
    assert action.text() == "Save measurements as DICOM SR…"
    assert [a.text() for a in action.menu().actions()] == ["Next to the study", "To a folder…"]
    assert not action.isEnabled()  # no marks yet
    window.viewer.measure((10.5, 20.5), (60.5, 20.5))
    assert action.isEnabled()

    next_to_the_study, to_a_folder = action.menu().actions()
    next_to_the_study.trigger()
    (written,) = study.glob("SR_*.dcm")
    message = window.statusBar().currentMessage()
    assert message == f"ct.dcm: 1 measurement saved as DICOM SR {written.name} next to the study"
    assert window.jobs.item(0).text() == message and str(tmp_path) not in message

    chosen = tmp_path / "to-pacs"
    chosen.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(chosen))
    window.viewer.roi((30, 40), (90, 70))
    to_a_folder.trigger()
    (sent,) = chosen.glob("SR_*.dcm")
    assert window.statusBar().currentMessage() == f"ct.dcm: 2 measurements saved as DICOM SR {sent.name} in to-pacs"
    sr = pydicom.dcmread(sent)
    items = content_items(sr)
    names = [str(i.PersonName) for i in items if i.ValueType == "PNAME"]
    assert names == ["Dr Test^"]  # the site's reader is the observer
    assert [i.GraphicType for i in items if i.ValueType == "SCOORD"] == ["POLYLINE", "ELLIPSE"]
    assert len(list(study.glob("SR_*.dcm"))) == 1  # the first one only

    not_a_folder = tmp_path / "a file"
    not_a_folder.write_text("x")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(not_a_folder))
    to_a_folder.trigger()
    failure = window.statusBar().currentMessage()
    assert failure.startswith("⚠ ct.dcm: measurements not saved: cannot write the report")
    assert str(tmp_path) not in failure and "\n" not in failure and "Traceback" not in failure
    assert window.jobs.item(0).text() == failure.removeprefix("⚠ ")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: "")
    to_a_folder.trigger()  # cancelled: nothing written, nothing said
    assert window.statusBar().currentMessage() == failure

    window.action("clear_measurements").trigger()
    assert not action.isEnabled()


def test_save_copy_and_tags_of_the_image_shown_from_the_menus(qtbot, tmp_path: Path, monkeypatch) -> None:
    """File > Save the image as… / Copy the image and View > DICOM tags… act on the image shown; Ctrl+C
    copies the image only while the image has the focus (in the study list's search it copies text)."""
    from PySide6.QtGui import QGuiApplication

    from zsmed_desktop import image_export
    from zsmed_desktop.tags_dialog import TagsDialog

    study = ct_study(tmp_path)
    window = shown_window(qtbot, tmp_path)
    for key in ("save_image", "copy_image", "dicom_tags"):
        assert not window.action(key).isEnabled()  # nothing shown yet
    entries = {m.text().replace("&", ""): [a.text() for a in m.menu().actions() if not a.isSeparator()]
               for m in window.menuBar().actions()}
    assert entries["File"][3:5] == ["Save the image as…", "Copy the image"]
    assert "DICOM tags…" in entries["View"]
    open_ct(qtbot, window, study)
    for key in ("save_image", "copy_image", "dicom_tags"):
        assert window.action(key).isEnabled()

    # Ctrl+C with the image focused: the image (no patient details), said in the status bar.
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert (clipboard.image().width(), clipboard.image().height()) == (512, 512)
    assert window.statusBar().currentMessage() == "Image copied (512 × 512, no patient details)"
    # Ctrl+C in the search box copies its text, not the image.
    clipboard.clear()
    search = window.browser.search
    search.setText("CT")
    search.setFocus()
    search.selectAll()
    qtbot.keyClick(search, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert clipboard.text() == "CT" and clipboard.image().isNull()

    # Save: the folder last saved to is offered next time; the window says where, by folder name.
    asked: list[str] = []
    (tmp_path / "out").mkdir()

    def fake_ask(viewer, parent, folder, report):  # the dialog's answer: out/key.png
        asked.append(str(folder))
        return image_export.save_image(viewer, tmp_path / "out" / "key.png")

    monkeypatch.setattr("zsmed_desktop.main_window.ask_and_save_image", fake_ask)
    written = window.save_image()
    assert written == tmp_path / "out" / "key.png" and written.stat().st_size > 0
    assert window.settings.value("export/last_folder") == str(tmp_path / "out")
    monkeypatch.setattr("zsmed_desktop.main_window.ask_and_save_image",
                        lambda viewer, parent, folder, report: asked.append(str(folder)))
    window.save_image()
    assert asked[-1] == str(tmp_path / "out")

    # DICOM tags of the file shown.
    dialog = window.show_dicom_tags()
    assert isinstance(dialog, TagsDialog) and dialog.isVisible()
    qtbot.waitUntil(lambda: not dialog.is_loading(), timeout=SCAN_TIMEOUT)
    assert any(row.tag == "(0010,0010)" for row in dialog.rows())
    assert dialog.windowTitle() == "DICOM tags — ct.dcm"
    dialog.close()


def test_a_window_typed_in_numbers_is_applied(qtbot, tmp_path: Path) -> None:
    """View > Window presets > Set the window… (W): starts at the window in use (HU on CT), applies the
    width and level typed; Cancel changes nothing; an image without a window says so in the window."""
    from zsmed_desktop.window_dialog import WindowDialog

    study = ct_study(tmp_path)
    window = shown_window(qtbot, tmp_path)
    assert not window.action("set_window").isEnabled()
    open_ct(qtbot, window, study)
    assert window.action("set_window").shortcut().toString() == "W"
    window._build_presets()
    assert window.action("set_window") in window.preset_menu.actions()
    window.viewer.set_window(40, 400)
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_W)
    dialog = window.findChild(WindowDialog)
    assert isinstance(dialog, WindowDialog) and dialog.isVisible()
    assert (dialog.width_box.value(), dialog.level_box.value()) == (400, 40)
    assert dialog.width_box.suffix() == " HU"
    dialog.width_box.setValue(2000)
    dialog.level_box.setValue(500)
    dialog.reject()
    assert window.viewer.window_level() == (40, 400)  # cancelled: as it was
    dialog = window.ask_window()
    assert dialog is not None
    dialog.width_box.setValue(2000)
    dialog.level_box.setValue(500)
    dialog.accept()
    assert window.viewer.window_level() == (500, 2000)
    assert "W 2000 L 500" in window.viewer.overlay_text()["tr"]


def test_help_checks_this_installation_as_zsmed_doctor_does(qtbot, tmp_path: Path, monkeypatch) -> None:
    """Help > Check this installation…: the doctor's rows in a window; a case log changed outside zsmed
    is marked 'Fix this' with its row named after Check again; Copy for IT gives the CLI's lines."""
    from PySide6.QtGui import QGuiApplication

    from tests.test_doctor import make_log, tamper
    from zsmed.doctor import format_lines, run_checks
    from zsmed_desktop.doctor_dialog import DoctorDialog

    data = tmp_path / "doctor-data"
    data.mkdir()
    monkeypatch.setenv("ZSMED_DATA_DIR", str(data))
    window = make_window(qtbot, tmp_path)
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert "Check this installation…" in [a.text() for a in help_menu.actions()]
    log_path = make_log(data / "caselog.sqlite", 3)
    dialog = window.open_doctor()
    assert isinstance(dialog, DoctorDialog)
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=SCAN_TIMEOUT)

    def rows() -> dict[str, tuple[str, str]]:
        return {name: (status, detail) for status, name, detail in dialog.rows()}

    assert list(rows()) == [check.name for check in run_checks()]
    assert rows()["case log"][0] == "OK" and "3 predictions, audit chain intact" in rows()["case log"][1]
    assert "to fix" not in dialog.summary.text()
    tamper(log_path, "UPDATE predictions SET label = 'mel', probabilities = '{}' WHERE id = 2")
    dialog.again_button.click()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=SCAN_TIMEOUT)
    status, detail = rows()["case log"]
    assert status == "Fix this" and "row 2" in detail
    assert dialog.summary.text().startswith("1 to fix")
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == "\n".join(format_lines(dialog.checks)) == dialog.copy_text()
    assert any(line.startswith("FAIL     case log") for line in dialog.copy_text().splitlines())
    dialog.close()


def test_the_angle_tool_from_the_view_menu_and_its_sr(qtbot, tmp_path: Path) -> None:
    """View > Angle (N): checked with the viewer's mode, exclusive with Measure; an angle alone enables
    Save measurements as DICOM SR, and the SR holds it in degrees."""
    from tests.report.sr_items import content_items

    study = ct_study(tmp_path)
    window = shown_window(qtbot, tmp_path)
    open_ct(qtbot, window, study)
    angle_action = window.action("angle")
    assert angle_action.isCheckable() and angle_action.shortcut().toString() == "N"
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_N)
    assert angle_action.isChecked() and window.viewer.is_angle_mode()
    qtbot.keyClick(window.viewer, Qt.Key.Key_M)
    assert not angle_action.isChecked() and window.action("measure").isChecked()
    assert not window.action("save_measurements").isEnabled()
    made = window.viewer.angle((20.5, 40.5), (60.5, 40.5), (60.5, 90.5))
    assert made is not None and made.degrees == pytest.approx(90.0)
    assert window.action("save_measurements").isEnabled()
    written = window.save_measurements_sr()
    assert written is not None
    assert window.statusBar().currentMessage().startswith("ct.dcm: 1 measurement saved as DICOM SR")
    items = content_items(pydicom.dcmread(written))
    degrees = [i for i in items if i.ValueType == "NUM" and i.ConceptNameCodeSequence[0].CodeMeaning == "Angle"]
    assert len(degrees) == 1
    value = degrees[0].MeasuredValueSequence[0]
    assert float(value.NumericValue) == pytest.approx(90.0, abs=0.01)
    assert value.MeasurementUnitsCodeSequence[0].CodeValue == "deg"
    assert [len(i.GraphicData) for i in items if i.ValueType == "SCOORD"] == [6]  # three points


def test_the_study_is_exported_de_identified_from_the_file_menu(qtbot, tmp_path: Path, monkeypatch) -> None:
    """File > Export the study de-identified…: the selected study's images go to the empty folder the
    reader picks, without the patient's name or ID; the window says what was written in one line."""
    from PySide6.QtWidgets import QFileDialog

    study = ct_study(tmp_path)
    original = pydicom.dcmread(study / "ct.dcm")
    window = make_window(qtbot, tmp_path)
    assert not window.action("deidentify").isEnabled()
    open_and_wait(qtbot, window, [study])
    assert window.action("deidentify").isEnabled()
    out = tmp_path / "teaching"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(out))
    window.action("deidentify").trigger()
    assert not window.action("deidentify").isEnabled()  # one export at a time
    qtbot.waitUntil(lambda: window._deidentifying is None, timeout=SCAN_TIMEOUT)
    message = window.statusBar().currentMessage()
    assert message.startswith("1 file exported de-identified to teaching"), message
    assert window.jobs.item(0).text() == message and str(tmp_path) not in message
    (written,) = out.rglob("*.dcm")
    copy = pydicom.dcmread(written)
    assert copy.PatientIdentityRemoved == "YES"
    assert str(copy.PatientName) != str(original.PatientName) and copy.PatientID != original.PatientID
    assert copy.StudyInstanceUID != original.StudyInstanceUID
    assert copy.PixelData == original.PixelData
    assert str(original.PatientName) not in written.read_bytes().decode("latin-1")
    assert window.action("deidentify").isEnabled()


def test_the_arrow_tool_from_the_view_menu(qtbot, tmp_path: Path) -> None:
    """View > Arrow (T): checked with the viewer's mode, exclusive with Angle; an arrow is an annotation
    for key images, not a measurement: Save measurements stays off with only arrows."""
    window = shown_window(qtbot, tmp_path)
    open_ct(qtbot, window, ct_study(tmp_path))
    arrow_action = window.action("arrow")
    assert arrow_action.isCheckable() and arrow_action.shortcut().toString() == "T"
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_T)
    assert arrow_action.isChecked() and window.viewer.is_arrow_mode()
    qtbot.keyClick(window.viewer, Qt.Key.Key_N)
    assert not arrow_action.isChecked() and window.action("angle").isChecked()
    assert window.viewer.arrow((10.5, 10.5), (60.5, 60.5), "Lesion") is not None
    assert not window.action("save_measurements").isEnabled()
    assert dict(window.shortcut_rows())["T"].startswith("Arrow on / off")


def test_the_study_is_copied_for_a_cd_or_usb_stick(qtbot, tmp_path: Path) -> None:
    """File > Copy the study to a CD or USB stick…: the study's files with a DICOMDIR, the outcome one line."""
    window = make_window(qtbot, tmp_path)
    assert not window.action("media").isEnabled()  # nothing open
    open_and_wait(qtbot, window, [ct_study(tmp_path)])
    qtbot.waitUntil(lambda: window.current_series is not None, timeout=SCAN_TIMEOUT)
    assert window.action("media").isEnabled()
    worker = window.copy_study_to_media(tmp_path / "usb")
    assert worker is not None and not window.action("media").isEnabled()  # one at a time
    qtbot.waitUntil(lambda: window._writing_media is None, timeout=SCAN_TIMEOUT)
    jobs = [window.jobs.item(k).text() for k in range(window.jobs.count())]
    assert any("written with a DICOMDIR to" in line and str(tmp_path / "usb") in line for line in jobs), jobs
    assert (tmp_path / "usb" / "DICOMDIR").is_file() and window.action("media").isEnabled()
    # a folder that is not empty: said in the window, nothing mixed in
    window.copy_study_to_media(tmp_path / "usb")
    qtbot.waitUntil(lambda: window._writing_media is None, timeout=SCAN_TIMEOUT)
    assert "choose a new or empty folder" in window.statusBar().currentMessage()
