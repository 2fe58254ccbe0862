"""Saving the reformat for the PACS from its window (Save…, Ctrl+S) on pydicom's real CT series CT5N: the
image shown or the whole plane every so many mm, at the slab and window shown, as a new CT series written in
the worker; the dialog's choices; the line in the window and in the main window's status bar and Jobs tab; a
PET series refused in a line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QDialogButtonBox

from tests.desktop.reading_room import SCAN_TIMEOUT
from tests.desktop.test_reformat_window import (
    LOAD_TIMEOUT,
    _reading_ct5n_with_its_reformat,
    ct5n,
    open_series,
    shown_window,
)
from zsmed.dicom.volume import reformat
from zsmed.report.reformat_images import every_mm
from zsmed_desktop.reformat_save_dialog import ReformatSaveDialog
from zsmed_desktop.reformat_window import ReformatWindow

SAVE_TIMEOUT = 60_000  # ms


@pytest.fixture()
def window(qtbot) -> ReformatWindow:
    return shown_window(qtbot, reader="Doe, Jane")


def saved_files(folder: Path) -> list[Path]:
    (series,) = folder.iterdir()
    return sorted(series.iterdir())


def test_the_whole_plane_every_2_mm_at_the_window_shown(qtbot, window: ReformatWindow, tmp_path: Path) -> None:
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    assert window.plane() == "coronal" and window.save_action.isEnabled()
    window.go_to(5)
    with qtbot.waitSignal(window.saved, timeout=SAVE_TIMEOUT) as signal:
        assert window.save_for_pacs(2.0, tmp_path)
    message, folder, warning, written = signal.args
    files = saved_files(tmp_path)
    assert sorted(written) == files  # what goes to the PACS when the settings say so
    volume = window.volume()
    assert volume is not None
    indices = every_mm(volume, "coronal", 2.0, 5)
    assert indices == (1, 5, 9, 13) and len(files) == 4  # 2 mm = 4 rows of 0.49 mm, lined up on slice 6
    assert not warning and folder == files[0].parent
    assert message == f"4 coronal images saved as a new series ({folder.name}) in {tmp_path.name}"
    assert window.last_saved == message and window.status_bar.currentMessage() == message
    assert not window.is_saving() and not window._progress_row.isVisible()
    for path, index in zip(files, indices, strict=True):
        ds = pydicom.dcmread(path)
        assert (float(ds.WindowCenter), float(ds.WindowWidth)) == window.window_level() == (40.0, 400.0)
        assert ds.OperatorsName == "Doe, Jane^"
        values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(values, reformat(volume, "coronal", index).image)


def test_this_image_as_a_slab_mip(qtbot, window: ReformatWindow, tmp_path: Path) -> None:
    open_series(qtbot, window, ct5n())
    window.set_plane("sagittal")
    window.set_slab(3.0, "mip")
    shown = window.shown()
    assert shown is not None and shown.slab_slices > 1
    with qtbot.waitSignal(window.saved, timeout=SAVE_TIMEOUT):
        window.save_for_pacs(None, tmp_path)
    (path,) = saved_files(tmp_path)
    ds = pydicom.dcmread(path)
    assert ds.DerivationCodeSequence[0].CodeMeaning == "Maximum intensity projection"
    assert float(ds.SliceThickness) == pytest.approx(shown.slab_mm)
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(values, shown.image)


def test_the_dialog_counts_the_images_and_asks_for_a_folder(qtbot) -> None:
    dialog = ReformatSaveDialog("Coronal", "5 mm MIP", 0.5, 5.0, lambda step: int(16 // step))
    qtbot.addWidget(dialog)
    assert dialog.step_mm() == 5.0 and dialog.count_label.text() == "(3 images)"
    dialog.step_box.setValue(2.0)
    assert dialog.count_label.text() == "(8 images)" and dialog.out_dir() is None
    save = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
    dialog.to_folder.setChecked(True)
    assert not save.isEnabled()  # a folder is yet to be chosen
    dialog.set_folder(Path("/tmp/pacs out"))
    assert save.isEnabled() and dialog.out_dir() == Path("/tmp/pacs out") and dialog.folder_label.text() == "pacs out"
    dialog.this_image.setChecked(True)
    assert dialog.step_mm() is None and not dialog.step_box.isEnabled()


def test_ctrl_s_asks_then_saves_next_to_the_study_and_the_main_window_says_so(qtbot, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    main, reformat_window = _reading_ct5n_with_its_reformat(qtbot, tmp_path)
    main.viewer.go_to(2)
    qtbot.waitUntil(lambda: main.viewer.current_index() == 2 and not main.viewer.is_loading(), timeout=SCAN_TIMEOUT)
    reading = main.current_series.key if main.current_series is not None else None
    series_before = len(main.browser.visible_series_labels())

    def answer(dialog: ReformatSaveDialog) -> int:
        dialog.this_image.setChecked(True)
        return 1

    monkeypatch.setattr(ReformatSaveDialog, "exec", answer)
    with qtbot.waitSignal(reformat_window.saved, timeout=SAVE_TIMEOUT):
        reformat_window.save_action.trigger()
    study = tmp_path / "study"
    (folder,) = [p for p in study.iterdir() if p.is_dir()]  # beside the series' files, a folder of its own
    assert folder.name.startswith("MPR_coronal_") and len(list(folder.iterdir())) == 1
    line = f"1 coronal image saved as a new series ({folder.name}) next to the study"
    qtbot.waitUntil(lambda: main.statusBar().currentMessage() == line, timeout=SCAN_TIMEOUT)
    assert main.jobs.item(0).text() == line
    # the new series joins the study list, as a PACS lists a series sent to it; the reader's place stays
    qtbot.waitUntil(lambda: len(main.browser.visible_series_labels()) == series_before + 1, timeout=SCAN_TIMEOUT)
    assert any("zsmed coronal" in label for label in main.browser.visible_series_labels())
    assert main.current_series is not None and main.current_series.key == reading
    assert main.viewer.current_index() == 2
    assert main.index is main.browser.index and len(main.index.instances) == 6
    shutil.rmtree(folder)


def test_a_pet_series_is_refused_in_a_line(qtbot, window: ReformatWindow, tmp_path: Path) -> None:
    folder = tmp_path / "pet"
    folder.mkdir()
    for k, path in enumerate(ct5n()):
        ds = pydicom.dcmread(path)
        ds.Modality = "PT"
        ds.save_as(folder / f"pet{k}.dcm")
    window.show_series(sorted(folder.iterdir()), "PET")
    qtbot.waitUntil(lambda: not window.is_loading() and window.shown() is not None, timeout=LOAD_TIMEOUT)
    with qtbot.waitSignal(window.saved, timeout=SAVE_TIMEOUT) as signal:
        window.save_for_pacs(None, tmp_path / "out")
    message, written, warning, _files = signal.args
    assert warning and written is None and "\n" not in message
    assert message.startswith("The reformat was not saved: pet") and "only CT and MR reformats" in message
    assert str(folder) not in message  # the file's name, not its whole path
    assert not (tmp_path / "out").exists()


def test_rulers_and_regions_on_a_saved_image_go_with_it_as_a_measurements_sr(qtbot, window: ReformatWindow,
                                                                             tmp_path: Path) -> None:
    from tests.report.sr_items import content_items, dciodvfy_errors

    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    window.go_to(5)
    ruler = window.measure((8.0, 0.5), (8.0, 4.5))  # 4 slices of 2.5 mm: 10 mm
    region = window.roi((2.0, 0.5), (14.0, 4.5))
    assert ruler is not None and region is not None
    window.go_to(9)
    assert window.measure((1.0, 1.0), (5.0, 1.0)) is not None  # on slice 10, which is not saved below
    window.go_to(5)
    with qtbot.waitSignal(window.saved, timeout=SAVE_TIMEOUT) as signal:
        window.save_for_pacs(4.0, tmp_path)  # every 8 rows, lined up on slice 6: slices 6 and 14
    message, folder, warning, _files = signal.args
    assert not warning and message.endswith(", with 2 measurements (DICOM SR)")
    images = sorted(folder.glob("MPR_*.dcm"))
    (report,) = folder.glob("SR_*.dcm")
    assert len(images) == 2
    sr = pydicom.dcmread(report)
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
    assert [item.ReferencedSOPInstanceUID for item in evidence] == [pydicom.dcmread(images[0]).SOPInstanceUID]
    numbers = [float(item.MeasuredValueSequence[0].NumericValue) for item in content_items(sr)
               if item.ValueType == "NUM" and "MeasuredValueSequence" in item]
    assert any(n == pytest.approx(10.0, abs=0.05) for n in numbers)  # the ruler, in mm
    assert any(n == pytest.approx(region.statistics.mean, abs=0.05) for n in numbers)  # the region's mean HU
    assert dciodvfy_errors(report) == []


def test_ctrl_c_copies_the_reformat_without_the_patients_name(qtbot, window: ReformatWindow) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    assert not window.copy_picture()  # nothing shown yet: said in the status bar
    assert window.status_bar.currentMessage().startswith("Nothing to copy")
    open_series(qtbot, window, ct5n(), (40.0, 400.0))
    title = window._labels["tr"]
    assert title.isVisible() and "CT5N" in title.text()
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    copied = QGuiApplication.clipboard().image()
    assert not copied.isNull() and copied.size() == window.view.size()
    assert copied != window.view.grab().toImage()  # the screen shows the title; the picture does not
    assert title.isVisible()  # back on the screen
    assert window.status_bar.currentMessage().startswith("Copied the reformat as a picture, without the patient")
