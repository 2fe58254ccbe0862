"""The study browser and the problems panel on real DICOM files (pydicom's test set, a DICOMDIR)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QTreeWidgetItem

from tests.desktop.reading_room import SCAN_TIMEOUT, big_folder, dicomdir_tree, pydicom_test_folder
from zsmed.dicom.scan import Problem
from zsmed_desktop.browser import (
    ProblemsPanel,
    StudyBrowser,
    dicom_date,
    person_name,
    problem_line,
    series_label,
    study_label,
    without_paths,
)


def scanned(qtbot, paths: list[str | Path]) -> StudyBrowser:
    browser = StudyBrowser()
    qtbot.addWidget(browser)
    browser.resize(420, 700)
    browser.show()
    with qtbot.waitSignal(browser.scan_finished, timeout=SCAN_TIMEOUT):
        browser.open_paths(paths)
    return browser


def all_items(browser: StudyBrowser) -> list[QTreeWidgetItem]:
    out: list[QTreeWidgetItem] = []

    def visit(item: QTreeWidgetItem) -> None:
        out.append(item)
        for k in range(item.childCount()):
            child = item.child(k)
            assert child is not None
            visit(child)

    for k in range(browser.tree.topLevelItemCount()):
        top = browser.tree.topLevelItem(k)
        assert top is not None
        visit(top)
    return out


def test_labels_are_readable() -> None:
    assert person_name("DOE^JANE") == "DOE, JANE"
    assert person_name("Citizen^Jan^^Dr") == "Citizen, Jan Dr"
    assert person_name("") == "(no name)"
    assert dicom_date("20240301") == "2024-03-01"
    assert dicom_date(None) == "no date"
    assert series_label(2, "CT", "chest", 120) == "Series 2  ·  CT  ·  chest   (120 images)"
    assert series_label(None, "US", None, 1) == "Series (no number)  ·  US   (1 image)"
    assert series_label(993, "PR", "zsmed presentation state", 0, 1) == \
        "Series 993  ·  PR  ·  zsmed presentation state   (1 presentation state)"
    assert series_label(5, "SR", None, 0, 3) == "Series 5  ·  SR   (3 reports)"
    assert series_label(7, "OT", None, 0, 2) == "Series 7  ·  OT   (2 objects)"
    assert dicom_date("1997.04.24") == "1997-04-24"
    assert study_label("20051130", "abdomen^liver") == "2005-11-30   abdomen liver"
    assert without_paths("duplicate of /a/b/CT_small.dcm (same SOP Instance UID)") == (
        "duplicate of CT_small.dcm (same SOP Instance UID)"
    )
    assert problem_line(Problem("/data/cd/IM0001", "truncated (no pixel data)")) == "IM0001: truncated (no pixel data)"


def test_pydicom_test_folder_fills_a_readable_tree_with_thumbnails(qtbot) -> None:
    folder = pydicom_test_folder()
    browser = scanned(qtbot, [folder])
    assert browser.index is not None
    counts = browser.index.counts()
    items = all_items(browser)
    series = [i for i in items if i.data(0, Qt_kind()) == "series"]
    assert len(series) == counts["series"] > 20
    assert browser.tree.topLevelItemCount() == counts["patients"]
    texts = [i.text(0) for i in items]
    # Readable labels: name and ID, date and description, number / modality / description / count.
    assert "Citizen, Jan   ID 12345678" in texts
    assert any(t.startswith("2020-09-13") for t in texts)
    ct = next(t for t in texts if t.startswith("Series") and "  ·  CT  ·  " in t)
    assert ct.endswith("image)") or ct.endswith("images)")
    # No paths in the labels (tooltips have them).
    assert not any(str(folder) in t or "test_files" in t for t in texts)
    assert any(str(folder) in i.toolTip(0) for i in series)
    # Names are never cut off: the column is as wide as its longest label.
    assert browser.tree.columnWidth(0) >= max(browser.tree.fontMetrics().horizontalAdvance(t) for t in texts)
    # A thumbnail per series with images, decoded in the contained decoder: real pixels, not flat.
    qtbot.waitUntil(browser.thumbnails_done, timeout=SCAN_TIMEOUT)
    with_icons = [i for i in series if not i.icon(0).isNull()]
    assert len(with_icons) >= 10
    varied = 0
    for item in with_icons:
        image = item.icon(0).pixmap(48, 48).toImage()
        values = {image.pixelColor(x, y).name() for x in range(0, 48, 4) for y in range(0, 48, 4)}
        varied += len(values) > 8
    assert varied >= 5


def Qt_kind() -> int:
    from zsmed_desktop.browser import KIND_ROLE

    return int(KIND_ROLE)


def test_search_filters_by_name_id_date_description_and_modality(qtbot) -> None:
    browser = scanned(qtbot, [pydicom_test_folder()])
    everything = browser.visible_series_labels()
    browser.search.setText("citizen")
    citizen = browser.visible_series_labels()
    assert 0 < len(citizen) < len(everything)
    visible_patients = [i for i in all_items(browser) if i.data(0, Qt_kind()) == "patient" and not i.isHidden()]
    assert [i.text(0) for i in visible_patients] == ["Citizen, Jan   ID 12345678"]
    browser.search.setText("12345678")  # the patient ID
    assert browser.visible_series_labels() == citizen
    browser.search.setText("MR")
    mr = browser.visible_series_labels()
    assert mr and all("MR" in label for label in mr)
    browser.search.setText("2020-09-13")  # a study date as shown
    assert browser.visible_series_labels() == citizen
    browser.search.setText("peter")
    peter = browser.visible_series_labels()
    browser.search.setText("peter mr")  # words over levels: this patient's MR series only
    both = browser.visible_series_labels()
    assert both and all("MR" in label for label in both) and len(both) < len(peter)
    assert any("CT" in label for label in peter)
    browser.search.setText("no such patient anywhere")
    assert browser.visible_series_labels() == []
    browser.search.clear()
    assert browser.visible_series_labels() == everything


def test_a_dicomdir_opens_its_patients(qtbot, tmp_path: Path) -> None:
    dicomdir = dicomdir_tree(tmp_path)
    browser = scanned(qtbot, [dicomdir])
    assert browser.index is not None
    assert browser.index.dicomdirs == [str(dicomdir)]
    counts = browser.index.counts()
    assert counts["patients"] >= 2 and counts["instances"] >= 20 and counts["problems"] == 0
    assert browser.tree.topLevelItemCount() == counts["patients"]


def test_a_half_copied_cd_lists_the_missing_files_and_shows_the_rest(qtbot, tmp_path: Path) -> None:
    from zsmed.dicom.scan import scan

    dicomdir = dicomdir_tree(tmp_path)
    whole = scan(dicomdir).counts()["instances"]
    files = sorted(p for p in dicomdir.parent.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    removed = files[:5]
    for path in removed:
        path.unlink()
    browser = scanned(qtbot, [dicomdir])
    panel = ProblemsPanel()
    qtbot.addWidget(panel)
    assert browser.index is not None
    panel.add_problems(browser.index.problems)
    lines = panel.lines()
    for path in removed:
        assert any(line.startswith(path.name + ":") and "missing" in line for line in lines), path.name
    assert browser.index.counts()["instances"] == whole - len(removed)
    assert browser.tree.topLevelItemCount() >= 2
    tips = [panel.item(k).toolTip() for k in range(panel.count())]
    assert any(str(dicomdir.parent) in tip for tip in tips)


def test_the_tree_fills_while_scanning_and_a_scan_can_be_cancelled(qtbot, tmp_path: Path) -> None:
    folder = big_folder(tmp_path, 3000, per_series=50)
    browser = StudyBrowser()
    qtbot.addWidget(browser)
    seen_during_scan: list[int] = []

    def on_progress(done: int, total: int, _message: str) -> None:
        if total:
            seen_during_scan.append(len(browser.series_items()))
            if done >= 600:
                browser.cancel_scan()

    browser.scan_progress.connect(on_progress)
    with qtbot.waitSignal(browser.scan_cancelled, timeout=SCAN_TIMEOUT):
        browser.open_paths([folder])
    assert not browser.scanning and browser.index is None
    # Series appeared before the scan ended, and more as it went on.
    assert seen_during_scan and seen_during_scan[0] >= 1 and max(seen_during_scan) > seen_during_scan[0]
    # Cancelled early: what was read so far is there, not all 60 series.
    assert 1 <= len(browser.series_items()) < 60
    # The browser is usable again: the next scan completes.
    browser.scan_progress.disconnect(on_progress)
    with qtbot.waitSignal(browser.scan_finished, timeout=SCAN_TIMEOUT):
        browser.open_paths([folder])
    assert browser.index is not None and browser.index.counts()["series"] == 60


def test_problems_panel_lines_tooltips_and_count(qtbot, tmp_path: Path) -> None:
    panel = ProblemsPanel()
    qtbot.addWidget(panel)
    counts: list[int] = []
    panel.count_changed.connect(counts.append)
    deep = tmp_path / "a" / "very" / "deep" / "folder"
    panel.add_problems([
        Problem(str(deep / "IM0001.dcm"), "truncated (no pixel data)"),
        Problem(str(deep / "notes.txt"), "not a DICOM file", "not-dicom"),  # skipped files are not problems
        Problem(str(deep / "IM0002.dcm"), f"duplicate of {deep / 'IM0001.dcm'} (same SOP Instance UID)", "duplicate"),
    ])
    panel.add_problems([Problem(str(deep / "IM0001.dcm"), "truncated (no pixel data)")])  # the same again
    assert panel.lines() == [
        "IM0001.dcm: truncated (no pixel data)",
        "IM0002.dcm: duplicate of IM0001.dcm (same SOP Instance UID)",
    ]
    assert counts == [2]
    assert panel.item(0).toolTip().startswith(str(deep / "IM0001.dcm"))
    assert os.sep + "deep" + os.sep not in "".join(panel.lines())
