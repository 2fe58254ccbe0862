"""The view saved for the PACS as a presentation state from the window, and shown again: after a
restart (the folder scanned again), from the View menu and by opening the state's series."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from tests.conftest import dicom_test_file
from tests.desktop.reading_room import SCAN_TIMEOUT, make_window, open_and_wait
from zsmed.dicom.geometry import CLOCKWISE, UPRIGHT
from zsmed_desktop.main_window import MainWindow


def _study(tmp_path: Path, *names: str) -> Path:
    study = tmp_path / "study"
    study.mkdir()
    for name in names:
        shutil.copy(dicom_test_file(name), study / name)
    return study


def _open(qtbot, tmp_path: Path, study: Path, name: str = "settings") -> MainWindow:
    from tests.desktop.reading_room import temp_settings

    window = make_window(qtbot, tmp_path, temp_settings(tmp_path / name))
    open_and_wait(qtbot, window, [study])
    qtbot.waitUntil(lambda: window.viewer.current_frame_data() is not None, timeout=SCAN_TIMEOUT)
    return window


def _centre(area: tuple[tuple[float, float], tuple[float, float]]) -> tuple[float, float]:
    return (area[0][0] + area[1][0]) / 2, (area[0][1] + area[1][1]) / 2


def _fitted_zoom(viewer) -> float:
    viewer.fit()
    return viewer.zoom()


def _draw(window: MainWindow) -> None:
    viewer = window.viewer
    viewer.set_window(60.0, 350.0)
    viewer.invert()
    viewer.rotate(1)
    assert viewer.measure((20.5, 30.5), (90.5, 70.5)) is not None
    assert viewer.roi((40.0, 40.0), (80.0, 60.0)) is not None
    assert viewer.angle((20.5, 40.5), (60.5, 40.5), (60.5, 90.5)) is not None
    assert viewer.arrow((100.0, 100.0), (70.0, 80.0), "hypodense lesion") is not None


def _series_labels(window: MainWindow) -> list[str]:
    """The browser's lines for the series of the first patient's first study."""
    study = window.browser.tree.topLevelItem(0).child(0)
    return [study.child(k).text(0) for k in range(study.childCount())]


def test_the_view_is_saved_for_the_pacs_and_shown_again_after_a_restart(qtbot, tmp_path: Path) -> None:
    study = _study(tmp_path, "CT_small.dcm")
    window = _open(qtbot, tmp_path, study)
    action = window.action("save_presentation")
    assert action.isEnabled() and not window.action("show_presentation").isEnabled()
    _draw(window)
    viewer = window.viewer
    before = (viewer.measurements(), viewer.rois(), viewer.angles(), viewer.arrows())
    fitted = _fitted_zoom(viewer)
    viewer.show_area((30.0, 30.0), (90.0, 80.0))  # zoomed in on part of the image
    zoom, area = viewer.zoom(), viewer.shown_area()
    assert area is not None and zoom > 1.5 * fitted
    written = window.save_presentation_state()
    assert written is not None and written.parent == study
    assert window.statusBar().currentMessage() == (
        f"CT_small.dcm: the view and 4 marks saved as presentation state {written.name} next to the study")
    jobs = [window.jobs.item(k).text() for k in range(window.jobs.count())]
    assert window.statusBar().currentMessage() in jobs
    ds = pydicom.dcmread(written)
    assert ds.Modality == "PR" and str(ds.ContentCreatorName) == "Dr Test^"
    assert window.action("show_presentation").isEnabled()  # saved here: known at once

    # The reader changes the view, then asks for the saved one back.
    viewer.reset()
    viewer.clear_measurements()
    assert viewer.turn() == UPRIGHT and not viewer.measurements()
    assert window.show_saved_state()
    assert window.statusBar().currentMessage().startswith("Presentation state saved ")
    assert window.statusBar().currentMessage().endswith("by Dr Test shown: 4 marks")
    after = (viewer.measurements(), viewer.rois(), viewer.angles(), viewer.arrows())
    assert after == before  # the same points, lengths, figures and note
    assert viewer.turn() == CLOCKWISE and viewer.is_inverted() and viewer.window_level() == (60.0, 350.0)
    restored = viewer.shown_area()  # zoomed and panned as it was (to the displayed area's whole pixels)
    assert restored is not None and viewer.zoom() == pytest.approx(zoom, rel=0.05)
    assert _centre(restored) == pytest.approx(_centre(area), abs=1.5)

    # Another day: the folder is opened again; the state's series is in the tree, and the image says so.
    window.close()
    again = _open(qtbot, tmp_path, study, "settings2")
    assert "Series 993  ·  PR  ·  zsmed presentation state   (1 presentation state)" in _series_labels(again)
    assert again.action("show_presentation").isEnabled()
    assert "a presentation state was saved " in again.statusBar().currentMessage()
    assert again.viewer.measurements() == []  # not shown until asked for

    # Opening the state's series shows its image with the state on it.
    pr_series = next(ref for ref in (again.browser.series_ref(s.uid) for p in again.index.patients
                                     for st in p.studies for s in st.series) if ref and ref.series.modality == "PR")
    again.browser.select_series(pr_series.key)
    qtbot.waitUntil(lambda: len(again.viewer.arrows()) == 1, timeout=SCAN_TIMEOUT)
    assert again.viewer.current_path() == study / "CT_small.dcm"
    assert (again.viewer.measurements(), again.viewer.rois(), again.viewer.angles(), again.viewer.arrows()) == after
    assert again.viewer.turn() == CLOCKWISE and again.viewer.window_level() == (60.0, 350.0)


def test_the_state_goes_to_a_folder_the_reader_picks(qtbot, tmp_path: Path) -> None:
    study = _study(tmp_path, "CT_small.dcm")
    window = _open(qtbot, tmp_path, study)
    out = tmp_path / "to_pacs"
    written = window.save_presentation_state(out)
    assert written is not None and written.parent == out
    assert window.statusBar().currentMessage().endswith(f"the view (no marks) saved as presentation state "
                                                        f"{written.name} in to_pacs")
    menu = [a.text() for a in window.presentation_menu.actions()]
    assert menu == ["Next to the study", "To a folder…"]


def test_a_palette_colour_images_view_is_saved_as_a_pseudo_colour_state_and_found_again(qtbot, tmp_path: Path
                                                                                       ) -> None:
    study = _study(tmp_path, "OBXXXX1A.dcm")
    window = _open(qtbot, tmp_path, study)
    viewer = window.viewer
    viewer.rotate(1)
    assert viewer.measure((100.5, 100.5), (300.5, 200.5)) is not None
    assert viewer.arrow((400.0, 300.0), (350.0, 250.0), "cyst") is not None
    written = window.save_presentation_state()
    assert written is not None and written.parent == study
    assert pydicom.dcmread(written).SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.3"  # Pseudo-Color Softcopy PS
    assert window.statusBar().currentMessage().startswith("OBXXXX1A.dcm: the view and 2 marks saved")
    before = (viewer.measurements(), viewer.arrows())
    window.close()

    # the folder scanned again: the pseudo-colour state is recognised as one, and shown on its image
    again = _open(qtbot, tmp_path, study, "settings2")
    assert "Series 993  ·  PR  ·  zsmed presentation state   (1 presentation state)" in _series_labels(again)
    assert again.action("show_presentation").isEnabled()
    assert again.show_saved_state()
    assert (again.viewer.measurements(), again.viewer.arrows()) == before
    assert again.viewer.turn() == CLOCKWISE


def test_an_image_no_state_can_refer_to_gets_a_message_in_the_window_not_a_file(qtbot, tmp_path: Path) -> None:
    study = _study(tmp_path, "color-pl.dcm")  # a retired SOP class
    window = _open(qtbot, tmp_path, study)
    assert window.save_presentation_state() is None
    message = window.statusBar().currentMessage()
    assert message.startswith("⚠ color-pl.dcm: presentation state not saved: its SOP class")
    assert "retired or unknown" in message
    assert sorted(p.name for p in study.iterdir()) == ["color-pl.dcm"]


def test_photographs_have_no_presentation_state(qtbot, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (64, 48), (120, 80, 60)).save(folder / "lesion.png")
    window = make_window(qtbot, tmp_path)
    window.open_photos([folder / "lesion.png"])
    qtbot.waitUntil(lambda: window.viewer.current_frame_data() is not None, timeout=SCAN_TIMEOUT)
    assert not window.action("save_presentation").isEnabled()
    assert window.save_presentation_state() is None
    assert "photographs have none" in window.statusBar().currentMessage()
    assert not window.action("show_presentation").isEnabled()
