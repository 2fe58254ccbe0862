"""The study in panes (G): the study's series hung side by side, the one read first and localizers last,
panes in the same plane scrolling together by position, other planes left alone, L unlinking, each pane's
menu hanging another series, a double-click opening a series in the main window."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt

from tests.desktop.reading_room import AXIAL, SCAN_TIMEOUT, ct_series, make_window, open_and_wait
from zsmed.dicom.geometry import slice_normal
from zsmed_desktop.main_window import MainWindow
from zsmed_desktop.study_grid import (
    GridSeries,
    PaneRule,
    StudyGridWindow,
    follow_index,
    grid_shape,
    hang_by_rule,
    hanging_order,
    parallel,
    parse_rule,
    prior_columns,
    study_kind,
)

SAGITTAL = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]


@pytest.fixture()
def window(qtbot, tmp_path: Path) -> MainWindow:
    folder = tmp_path / "study"
    folder.mkdir()
    study = pydicom.uid.generate_uid()
    ct_series(folder, study, "LOCALIZER", 1, [[-40.0, -40.0, 0.0]], AXIAL)
    ct_series(folder, study, "T1 AX", 2, [[-40.0, -40.0, 5.0 * k] for k in range(5)], AXIAL)  # 0 .. 20 mm
    ct_series(folder, study, "T2 AX", 3, [[-40.0, -40.0, -2.5 + 2.5 * k] for k in range(9)], AXIAL)  # -2.5 .. 17.5
    ct_series(folder, study, "T2 SAG", 4, [[-10.0 + 10.0 * k, -40.0, 40.0] for k in range(3)], SAGITTAL)
    main = make_window(qtbot, tmp_path)
    open_and_wait(qtbot, main, [folder])
    _choose(qtbot, main, "T1 AX")
    return main


def _choose(qtbot, window: MainWindow, description: str, study_uid: str | None = None) -> None:
    ref = next(r for r in (window.browser.series_ref(s.uid) for p in window.index.patients for st in p.studies
                           for s in st.series) if r and r.series.description == description
               and study_uid in (None, r.study.uid))
    window.browser.select_series(ref.key)
    qtbot.waitUntil(lambda: window.current_series is not None and window.current_series.key == ref.key
                    and not window.viewer.is_loading(), timeout=SCAN_TIMEOUT)


def _next_study(qtbot, window: MainWindow, folder: Path, read: str,
                series: list[tuple[str, int, list[list[float]], list[float]]]) -> StudyGridWindow:
    """Another study of the same kind (its series: description, number, positions, orientation) opened, ``read``
    chosen, and hung in the panes."""
    folder.mkdir()
    study = pydicom.uid.generate_uid()
    for description, number, positions, orientation in series:
        ct_series(folder, study, description, number, positions, orientation)
    open_and_wait(qtbot, window, [folder])
    _choose(qtbot, window, read)
    grid = window.open_study_grid()
    assert grid is not None
    return grid


def _shown(qtbot, viewer, index: int) -> None:
    qtbot.waitUntil(lambda: viewer.current_index() == index and not viewer.is_loading(), timeout=SCAN_TIMEOUT)


def test_the_study_hangs_read_series_first_and_localizers_last(qtbot, window: MainWindow) -> None:
    assert window.action("study_grid").shortcut().toString() == "G"
    grid = window.open_study_grid()
    assert grid is not None and grid.isVisible()
    titles = [pane.chooser.currentText() for pane in grid.panes]
    assert titles == ["Series 2  ·  CT  ·  T1 AX  ·  5 images", "Series 3  ·  CT  ·  T2 AX  ·  9 images",
                      "Series 4  ·  CT  ·  T2 SAG  ·  3 images", "Series 1  ·  CT  ·  LOCALIZER  ·  1 image"]
    assert (grid.grid.rowCount(), grid.grid.columnCount()) == (2, 2)
    assert [pane.viewer.image_count() for pane in grid.panes] == [5, 9, 3, 1]
    assert "Panes in the same plane scroll together" in grid.note.text()
    assert "T1 AX" not in grid.windowTitle() and "the study in panes" in grid.windowTitle()


def _position(grid: StudyGridWindow, pane) -> tuple[int, int]:
    row, column, _rows, _columns = grid.grid.getItemPosition(grid.grid.indexOf(pane))
    return row, column


def test_the_panes_rearrange_for_a_portrait_or_a_wide_monitor(qtbot, window: MainWindow) -> None:
    """Made tall (a portrait reading screen), the four panes stand one above the other; across two monitors, in a
    row; each keeps its series and its place in it."""
    grid = window.open_study_grid()
    assert grid is not None and grid.shape == (2, 2)
    t1 = grid.panes[0]
    t1.viewer.go_to(3)
    _shown(qtbot, t1.viewer, 3)
    grid.resize(640, 1800)
    qtbot.waitUntil(lambda: grid.shape == (4, 1), timeout=SCAN_TIMEOUT // 10)
    assert [_position(grid, pane) for pane in grid.panes] == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert [grid.grid.rowStretch(r) for r in range(4)] == [1, 1, 1, 1] and grid.grid.columnStretch(1) == 0
    grid.resize(2000, 500)
    qtbot.waitUntil(lambda: grid.shape == (1, 4), timeout=SCAN_TIMEOUT // 10)
    assert [_position(grid, pane) for pane in grid.panes] == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert grid.grid.rowStretch(1) == 0  # the rows left empty take no room
    assert [pane.series.description for pane in grid.panes] == ["T1 AX", "T2 AX", "T2 SAG", "LOCALIZER"]
    assert t1.viewer.current_index() == 3


def test_panes_in_one_plane_scroll_together_and_l_unlinks_them(qtbot, window: MainWindow) -> None:
    grid = window.open_study_grid()
    assert grid is not None
    t1, t2, sagittal, _localizer = grid.panes
    _shown(qtbot, t1.viewer, 2)  # the middle of T1: 10 mm
    _shown(qtbot, t2.viewer, 5)  # hung at T1's place: 10 mm is T2's image 5
    start_sagittal = sagittal.viewer.current_index()
    t1.viewer.go_to(3)  # 15 mm
    _shown(qtbot, t2.viewer, 7)
    t2.viewer.go_to(0)  # -2.5 mm: T1's nearest is 0 mm
    _shown(qtbot, t1.viewer, 0)
    assert sagittal.viewer.current_index() == start_sagittal  # another plane: left where it is
    grid.activateWindow()
    t1.viewer.setFocus()
    grid.link_action.trigger()
    assert not grid.linked
    t1.viewer.go_to(4)
    _shown(qtbot, t1.viewer, 4)
    qtbot.wait(100)
    assert t2.viewer.current_index() == 0


def test_a_pane_hangs_another_series_and_a_double_click_opens_it(qtbot, window: MainWindow) -> None:
    grid = window.open_study_grid()
    assert grid is not None
    last = grid.panes[3]
    last.chooser.setCurrentIndex(1)  # T2 AX in the localizer's pane, at T1's place
    qtbot.waitUntil(lambda: last.viewer.image_count() == 9 and last.viewer.current_index() == 5, timeout=SCAN_TIMEOUT)
    viewport = last.viewer.view.viewport()  # where a double-click on the image lands
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=QPoint(viewport.width() // 2, viewport.height() // 2))
    qtbot.waitUntil(lambda: window.current_series is not None and window.current_series.series.description == "T2 AX",
                    timeout=SCAN_TIMEOUT)


def test_a_study_of_one_series_says_so(qtbot, tmp_path: Path) -> None:
    window = make_window(qtbot, tmp_path)
    assert window.open_study_grid() is None
    assert "a DICOM study with two image series or more" in window.statusBar().currentMessage()
    folder = tmp_path / "one"
    folder.mkdir()
    ct_series(folder, pydicom.uid.generate_uid(), "T1 AX", 2, [[0.0, 0.0, 5.0 * k] for k in range(3)], AXIAL)
    open_and_wait(qtbot, window, [folder])
    _choose(qtbot, window, "T1 AX")
    assert window.open_study_grid() is None
    assert "this study has one image series" in window.statusBar().currentMessage()


def test_the_hanging_rules() -> None:
    def series(key: str, count: int, positions: tuple[float, ...] | None = None,
               orientation: list[float] | None = None) -> GridSeries:
        return GridSeries(key, key, tuple(Path(f"{key}{k}") for k in range(count)), positions,
                          slice_normal(orientation) if orientation else None)

    study = [series("scout", 2), series("t1", 20), series("t2", 20), series("dwi", 30)]
    assert [s.key for s in hanging_order(study, "t2")] == ["t2", "t1", "dwi", "scout"]
    assert [grid_shape(n) for n in (1, 2, 3, 4)] == [(1, 1), (1, 2), (1, 3), (2, 2)]  # a landscape window
    assert [grid_shape(n, 9 / 16) for n in (2, 3, 4)] == [(2, 1), (3, 1), (2, 2)]  # a portrait monitor
    assert grid_shape(3, 0.75) == (2, 2)  # (3 x 1 would show each image smaller)
    assert grid_shape(4, 3.2) == (1, 4) and grid_shape(3, 16 / 9) == (1, 3)  # two monitors; one wide
    # with the prior below: three of the study's series where the window is 1.5 times as wide as high or more
    assert prior_columns(study, 1.6) == 3 and prior_columns(study, 1.25) == 2
    assert prior_columns(study[:3], 1.6) == 2  # a scout is not hung in the third column
    assert prior_columns(study[:2], 1.6) == 2 and prior_columns(study[:1], 1.6) == 1
    # the same plane with its normal the other way round: positions counted the other way
    up = series("up", 3, (0.0, 5.0, 10.0), AXIAL)
    down = series("down", 3, (-10.0, -5.0, 0.0), [1.0, 0.0, 0.0, 0.0, -1.0, 0.0])
    assert parallel(up, down) and follow_index(up, 2, down) == 0 and follow_index(up, 0, down) == 2
    assert not parallel(up, series("sag", 3, (0.0, 1.0, 2.0), SAGITTAL))
    assert not parallel(up, series("no positions", 3, None, AXIAL))


def test_other_planes_show_where_the_image_scrolled_cuts_them(qtbot, window: MainWindow) -> None:
    grid = window.open_study_grid()
    assert grid is not None
    t1, t2, sagittal, _localizer = grid.panes
    _shown(qtbot, t1.viewer, 2)
    qtbot.waitUntil(lambda: sagittal.viewer.reference_line() is not None, timeout=SCAN_TIMEOUT)
    (_c1, row1), (_c2, row2) = sagittal.viewer.reference_line()
    assert abs(row1 - row2) < 1e-6  # an axial slice cuts a sagittal image along a row
    assert t2.viewer.reference_line() is None  # parallel to T1: no line
    t1.viewer.go_to(4)  # 10 mm higher up: the line moves up the sagittal image (its rows run down, -z)
    qtbot.waitUntil(lambda: sagittal.viewer.reference_line() is not None
                    and sagittal.viewer.reference_line()[0][1] < row1 - 1, timeout=SCAN_TIMEOUT)
    sagittal.viewer.go_to(0)  # now the sagittal is the one scrolled: its cut shows on the axial panes
    qtbot.waitUntil(lambda: t1.viewer.reference_line() is not None and sagittal.viewer.reference_line() is None,
                    timeout=SCAN_TIMEOUT)


def test_a_hanging_chosen_by_hand_is_kept_for_that_kind_of_study(qtbot, window: MainWindow, tmp_path: Path) -> None:
    grid = window.open_study_grid()
    kind = "CT · e 1"  # CT_small's modality and study description ("e+1")
    assert grid is not None and grid.kind == kind and "Hung as you hung" not in grid.note.text()
    grid.panes[0].chooser.setCurrentIndex(2)  # the sagittal in the first pane, by hand
    assert [pane.description for pane in grid.remembered(kind)] == ["T2 SAG", "T2 AX", "T2 SAG", "LOCALIZER"]
    # another study of the same kind, series described alike (in another case): hung the same way
    grid = _next_study(qtbot, window, tmp_path / "next", "T1 AX", [
        ("t2 sag", 7, [[-10.0 + 10.0 * k, -40.0, 40.0] for k in range(3)], SAGITTAL),
        ("T1 AX", 8, [[-40.0, -40.0, 5.0 * k] for k in range(5)], AXIAL),
        ("T2 AX", 9, [[-40.0, -40.0, 5.0 * k] for k in range(5)], AXIAL)])
    descriptions = [pane.series.description for pane in grid.panes if pane.series is not None]
    assert descriptions == ["t2 sag", "T2 AX", "T1 AX"]  # the rule's panes, then the rest
    assert f"Hung as you hung the last {kind} study." in grid.note.text()


def test_hanging_rules_match_descriptions_by_their_words() -> None:
    def series(description: str) -> GridSeries:
        return GridSeries(description, description, (Path(description),), None, None, description)

    study = [series(d) for d in ("AX T1", "AX T2 FLAIR", "DWI b1000", "SAG T1 MPRAGE")]
    assert [s.key for s in hang_by_rule(study, ["dwi b1000", "t1 ax"])] == ["DWI b1000", "AX T1", "AX T2 FLAIR",
                                                                            "SAG T1 MPRAGE"]
    # nothing matches the first pane's: the default order fills it; most shared words wins the second
    assert [s.key for s in hang_by_rule(study, ["perfusion", "sag mprage"])] == ["AX T1", "SAG T1 MPRAGE",
                                                                                "AX T2 FLAIR", "DWI b1000"]
    assert study_kind("mr", "Brain  routine") == "MR · brain routine" and study_kind("CT", None) == "CT"


def test_the_panes_follow_the_study_read(qtbot, window: MainWindow, tmp_path: Path) -> None:
    """Another study opened in the main window: the panes hang it; a study of one series closes them."""
    other = tmp_path / "other"
    other.mkdir()
    study = pydicom.uid.generate_uid()
    ct_series(other, study, "PD AX", 5, [[-40.0, -40.0, 5.0 * k] for k in range(4)], AXIAL)
    ct_series(other, study, "STIR COR", 6, [[-40.0, 5.0 * k, 40.0] for k in range(3)], [1.0, 0.0, 0.0, 0.0, 0.0, -1.0])
    single = tmp_path / "single"
    single.mkdir()
    ct_series(single, pydicom.uid.generate_uid(), "SCOUT ONLY", 9, [[0.0, 0.0, 0.0]], AXIAL)
    open_and_wait(qtbot, window, [tmp_path / "study", other, single])
    _choose(qtbot, window, "T1 AX")
    grid = window.open_study_grid()
    assert grid is not None and grid.isVisible()
    _choose(qtbot, window, "PD AX")
    assert grid.isVisible() and [p.series.description for p in grid.panes if p.series] == ["PD AX", "STIR COR"]
    _choose(qtbot, window, "STIR COR")  # the same study: the panes stay as they are
    assert [p.series.description for p in grid.panes if p.series] == ["PD AX", "STIR COR"]
    _choose(qtbot, window, "SCOUT ONLY")
    assert not grid.isVisible()


def test_a_series_hung_twice_in_two_windows_is_hung_so_again(qtbot, window: MainWindow, tmp_path: Path) -> None:
    """A chest CT read as PACS hang it: the same series in the lung and in the mediastinal window side by side,
    each pane's window kept with the hanging and given back to the next study of that kind."""
    grid = window.open_study_grid()
    assert grid is not None
    first, second = grid.panes[0], grid.panes[1]
    second.chooser.setCurrentIndex(0)  # T1 AX in the second pane too, by hand
    _shown(qtbot, second.viewer, first.viewer.current_index())
    qtbot.keyClick(first.viewer, Qt.Key.Key_1)  # CT_small is in HU: 1 = lung, 2 = mediastinum
    qtbot.keyClick(second.viewer, Qt.Key.Key_2)
    assert first.viewer.window_name() == "lung" and second.viewer.window_name() == "mediastinum"
    kind = grid.kind
    assert grid.remembered(kind)[:2] == [PaneRule("T1 AX", "lung"), PaneRule("T1 AX", "mediastinum")]
    grid = _next_study(qtbot, window, tmp_path / "next", "T2 AX", [
        ("T2 AX", 8, [[-40.0, -40.0, 5.0 * k] for k in range(5)], AXIAL),
        ("T1 AX", 9, [[-40.0, -40.0, 5.0 * k] for k in range(5)], AXIAL)])
    assert [pane.series.description for pane in grid.panes if pane.series] == ["T1 AX", "T1 AX", "T2 AX"]
    lung, mediastinum = grid.panes[0].viewer, grid.panes[1].viewer
    qtbot.waitUntil(lambda: not lung.is_loading() and not mediastinum.is_loading(), timeout=SCAN_TIMEOUT)
    assert lung.window_name() == "lung" and lung.window_level() == (-600.0, 1500.0)
    assert mediastinum.window_name() == "mediastinum" and mediastinum.window_level() == (50.0, 350.0)
    assert grid.panes[2].viewer.window_name() not in ("lung", "mediastinum")  # the rest: the image's own window
    assert [grid.panes[0].chooser.itemText(k) for k in range(grid.panes[0].chooser.count())].count(
        grid.panes[0].chooser.currentText()) == 1  # the menus list each series once
    qtbot.keyClick(grid.panes[1].viewer, Qt.Key.Key_R)  # R: the image's own window, and the hanging forgets it
    assert grid.remembered(kind)[1] == PaneRule("T1 AX", "")


def test_remembered_hangings_read_older_settings_and_hang_twice_only_with_a_window() -> None:
    def series(description: str) -> GridSeries:
        return GridSeries(description, description, (Path(description),), None, None, description)

    assert parse_rule('["AX T1", "DWI"]') == [PaneRule("AX T1"), PaneRule("DWI")]  # as kept before windows were
    assert parse_rule('[{"series": "CHEST", "window": "lung"}]') == [PaneRule("CHEST", "lung")]
    assert parse_rule("not json") == [] and parse_rule('{"a": 1}') == []
    study = [series(d) for d in ("CHEST 1.25", "CHEST 5", "SCOUT")]
    twice = hang_by_rule(study, [PaneRule("chest 1.25", "lung"), PaneRule("CHEST 1.25", "mediastinum")])
    assert [s.key for s in twice] == ["CHEST 1.25", "CHEST 1.25", "CHEST 5", "SCOUT"]
    # without a window of its own, a pane does not take a series already hung: the rest fills it
    once = hang_by_rule(study, [PaneRule("CHEST 1.25"), PaneRule("CHEST 1.25")])
    assert [s.key for s in once] == ["CHEST 1.25", "CHEST 5", "SCOUT"]


def test_the_study_and_its_prior_hang_above_each_other_and_scroll_lined_up(qtbot, window: MainWindow,
                                                                           tmp_path: Path) -> None:
    """Shift+G: two of the study's series above the same series of the patient's previous study, each prior pane
    following the one above by the distance they were lined up at (another frame of reference: positions there are
    another place in the patient), L re-lining them up; the prior panes' menus hang the prior's series."""
    prior_folder = tmp_path / "prior"
    prior_folder.mkdir()
    prior_uid, frame = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    earlier = {"study_date": "20000101", "frame": frame}
    ct_series(prior_folder, prior_uid, "T2 AX", 3, [[-40.0, -40.0, 100.0 + 5.0 * k] for k in range(5)], **earlier)
    # 9 images 2.5 mm apart, 100 mm up the table: followed by mm, not image for image
    ct_series(prior_folder, prior_uid, "T1 AX", 2, [[-40.0, -40.0, 100.0 + 2.5 * k] for k in range(9)], **earlier)
    ct_series(prior_folder, prior_uid, "SCOUT", 1, [[-40.0, -40.0, 0.0]], AXIAL, **earlier)
    current_uid = window.current_series.study.uid
    open_and_wait(qtbot, window, [tmp_path / "study", prior_folder])
    _choose(qtbot, window, "T1 AX", current_uid)
    assert window.action("study_grid_prior").shortcut().toString() == "Shift+G"
    window.action("study_grid_prior").trigger()
    grid = window.study_grid
    assert grid is not None and grid.isVisible() and grid.with_prior
    # a window 1.5 times as wide as high: three of the study's series, the prior's alike below (it has no sagittal:
    # its scout under the sagittal, its menu hangs another)
    assert [(p.series.description, p.prior) for p in grid.panes] == [
        ("T1 AX", False), ("T2 AX", False), ("T2 SAG", False), ("T1 AX", True), ("T2 AX", True), ("SCOUT", True)]
    assert grid.shape == (2, 3) and _position(grid, grid.panes[4]) == (1, 1)
    t1, t2, _sagittal, prior_t1, _prior_t2, _scout = grid.panes
    assert t1.series.study == current_uid and prior_t1.series.study == prior_uid
    assert [prior_t1.chooser.itemText(k).split("  ·  ")[4] for k in range(prior_t1.chooser.count())] == [
        "T1 AX", "T2 AX", "SCOUT"]  # the prior's own series, said to be
    assert prior_t1.chooser.currentText().startswith("Prior  ·  2000-01-01  ·  Series 2")
    assert "Below, the prior study" in grid.note.text() and "2000" in grid.windowTitle()
    _shown(qtbot, t1.viewer, 2)  # the middle of 5 (10 mm) ...
    _shown(qtbot, prior_t1.viewer, 4)  # ... and the middle of 9 (110 mm): lined up 100 mm apart
    t1.viewer.go_to(4)  # 20 mm: the prior goes to 120 mm (its last image), not four images on
    _shown(qtbot, prior_t1.viewer, 8)
    _shown(qtbot, t2.viewer, 8)  # the same study's T2 AX by position (its last, 17.5 mm, nearest)
    assert prior_t1.viewer.reference_line() is None  # another frame of reference: no line
    grid.set_linked(False)  # lined up again by hand: the prior two images (5 mm) lower
    prior_t1.viewer.go_to(6)
    _shown(qtbot, prior_t1.viewer, 6)
    assert t1.viewer.current_index() == 4
    qtbot.keyClick(grid, Qt.Key.Key_L)
    assert grid.linked
    t1.viewer.go_to(2)  # 10 mm: 95 mm apart now, so 105 mm
    _shown(qtbot, prior_t1.viewer, 2)
    # the prior study read in the main window: it has no prior here, so it is hung alone; Shift+G on it says why not
    _choose(qtbot, window, "SCOUT")
    assert grid.isVisible() and not grid.with_prior and {p.series.study for p in grid.panes} == {prior_uid}
    grid.close()
    assert window.open_study_grid(with_prior=True) is None
    assert "no earlier study of this patient" in window.statusBar().currentMessage()


def test_a_prior_of_one_series_hangs_under_its_like_alone(qtbot, window: MainWindow, tmp_path: Path) -> None:
    """A prior with fewer series than the row above: each of its series once, under the one described alike."""
    prior_folder = tmp_path / "prior"
    prior_folder.mkdir()
    ct_series(prior_folder, pydicom.uid.generate_uid(), "T1 AX", 2,
              [[-40.0, -40.0, 100.0 + 2.5 * k] for k in range(9)], study_date="20000101")
    current_uid = window.current_series.study.uid
    open_and_wait(qtbot, window, [tmp_path / "study", prior_folder])
    _choose(qtbot, window, "T1 AX", current_uid)
    grid = window.open_study_grid(with_prior=True)
    assert grid is not None
    assert [(p.series.description, p.prior) for p in grid.panes] == [("T1 AX", False), ("T2 AX", False),
                                                                    ("T2 SAG", False), ("T1 AX", True)]
    assert grid.shape == (2, 3) and _position(grid, grid.panes[3]) == (1, 0)
    # in a narrower window (under 1.5 times as wide as high), Shift+G again hangs two of the study's series
    grid.resize(1000, 800)
    qtbot.waitUntil(lambda: grid.width() == 1000, timeout=SCAN_TIMEOUT // 10)
    window.action("study_grid_prior").trigger()
    assert [(p.series.description, p.prior) for p in grid.panes] == [("T1 AX", False), ("T2 AX", False),
                                                                    ("T1 AX", True)]
    assert grid.shape == (2, 2) and grid.grid.columnStretch(2) == 0  # the third column takes no room now
