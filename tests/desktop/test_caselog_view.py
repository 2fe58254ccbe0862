from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("zsmed.store")

from PySide6.QtCore import QModelIndex

from tests.conftest import REPO, dicom_test_file
from zsmed.runtime.predict import Predictor, load_predictor
from zsmed.site import SiteConfig
from zsmed.store import open_case_log
from zsmed_desktop.caselog_view import PAGE, CaseLogView, Filters
from zsmed_desktop.classify_panel import ClassifyPanel

BUNDLE = REPO / "export" / "reference" / "sgps_ham4_lite0_v1.zsmb"
TIMEOUT = 120_000


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return load_predictor(BUNDLE, backend="onnxruntime")


@pytest.fixture()
def site(isolated_dirs: Path) -> SiteConfig:
    return SiteConfig(reader_name="Dr View", caselog_path=str(isolated_dirs / "caselog.sqlite"))


@pytest.fixture()
def inputs(shared_data: Path, tmp_path: Path) -> list[Path]:
    photos = [sorted((shared_data / "ham10000_fs" / "base" / c).glob("*.jpg"))[0] for c in ("bcc", "mel", "nv")]
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 not a jpeg")
    return [*photos, dicom_test_file("CT_small.dcm"), junk]


@pytest.fixture()
def logged(site: SiteConfig, predictor: Predictor, inputs: list[Path]) -> list[int]:
    """Three dermoscopy photos (results), a CT slice (no result) and a broken file (error)."""
    results = predictor.predict_files(inputs)
    assert [r.abstain for r in results[3:]] == [True, True] and results[4].error
    with open_case_log(site.resolved_caselog_path(), site=site) as log:
        return log.record_predictions(predictor.bundle, results, user="Dr View")


def cell(view: CaseLogView, row: int, column: int) -> str:
    return str(view.model.data(view.model.index(row, column)))


def column_of(view: CaseLogView, record_id: int, column: int) -> str:
    row = next(r for r in range(view.model.rowCount()) if view.model.record(r).id == record_id)
    return cell(view, row, column)


def test_table_filters_and_review_from_the_table(qtbot, site: SiteConfig, logged: list[int]) -> None:
    view = CaseLogView(site)
    qtbot.addWidget(view)
    assert view.model.rowCount() == 5
    assert [view.model.record(r).id for r in range(5)] == sorted(logged, reverse=True)  # newest first
    assert column_of(view, logged[3], 4) == "No result"
    assert column_of(view, logged[4], 4) == "Could not be read"
    assert column_of(view, logged[0], 3).endswith(".jpg")
    assert column_of(view, logged[0], 4) in {"Basal cell carcinoma", "Benign keratosis", "Melanoma",
                                             "Benign melanocytic nevus"}
    assert "5 of 5 results" in view.status.text()

    view.set_filters(Filters(abstained=True))
    assert [view.model.record(r).id for r in range(view.model.rowCount())] == [logged[3]]
    view.set_filters(Filters(review="unreviewed"))
    assert view.model.rowCount() == 4  # a file that could not be read has nothing to review
    view.no_result_check.setChecked(False)
    view.review_filter.setCurrentIndex(view.review_filter.findData("all"))
    view.set_filters(Filters())

    # Review from the table: confirm the first photo, correct the second.
    first = next(r for r in range(view.model.rowCount()) if view.model.record(r).id == logged[0])
    view.select_row(first)
    assert view.confirm_button.isEnabled()
    with qtbot.waitSignal(view.reviewed, timeout=5000) as signal:
        assert view.confirm_selected(comment="agree")
    assert signal.args == [logged[0]]
    assert column_of(view, logged[0], 6) == "Confirmed"
    assert column_of(view, logged[0], 7) == "Dr View" and column_of(view, logged[0], 8) == "agree"
    second = view.model.record(next(r for r in range(5) if view.model.record(r).id == logged[1]))
    other = next(c for c in second.class_names if c != second.label)
    view.select_row(next(r for r in range(5) if view.model.record(r).id == logged[1]))
    assert view.correct_selected(other)
    titles = {"bcc": "Basal cell carcinoma", "bkl": "Benign keratosis", "mel": "Melanoma",
              "nv": "Benign melanocytic nevus"}
    assert column_of(view, logged[1], 6) == f"Corrected to {titles[other]}"
    # The no-result row cannot be confirmed, only corrected.
    view.select_row(next(r for r in range(5) if view.model.record(r).id == logged[3]))
    assert not view.confirm_button.isEnabled() and view.correct_button.isEnabled()

    view.set_filters(Filters(review="reviewed"))
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=TIMEOUT)
    assert sorted(view.model.record(r).id for r in range(view.model.rowCount())) == logged[:2]
    assert "2 of 5 results shown" in view.status.text()
    view.set_filters(Filters(model="no such model"))
    assert view.model.rowCount() == 0

    with open_case_log(site.resolved_caselog_path(), site=site) as log:
        assert log.get(logged[0]).review.verdict == "confirmed"  # type: ignore[union-attr]
        assert log.get(logged[1]).review.label == other  # type: ignore[union-attr]

    # Statistics (read when their tab is shown): one model, 4 results with model output, 1 no result,
    # 1 unreadable, 2 reviewed.
    view.set_filters(Filters())
    assert view.stats_table.rowCount() == 0
    view.tabs.setCurrentIndex(1)
    assert view.stats_table.rowCount() == 1
    stats = [view.stats_table.item(0, c).text() for c in range(6)]  # type: ignore[union-attr]
    assert stats[:3] == ["sgps_ham4_lite0_v1", "4", "2"]
    assert stats[3] == "50% (1 of 2)" and stats[4] == "25% (1)" and stats[5] == "1"
    assert len(view.chart.months) == 1 and view.chart.agreement == [0.5] and view.chart.no_result == [0.25]


def test_large_logs_are_fetched_a_page_at_a_time(qtbot, site: SiteConfig, predictor: Predictor,
                                                 inputs: list[Path]) -> None:
    results = predictor.predict_files(inputs[:1]) * (2 * PAGE + 50)
    with open_case_log(site.resolved_caselog_path(), site=site) as log:
        log.record_predictions(predictor.bundle, results)
    view = CaseLogView(site)
    qtbot.addWidget(view)
    assert view.model.rowCount() == PAGE
    assert view.model.canFetchMore(QModelIndex())
    view.model.fetchMore(QModelIndex())
    view.model.fetchMore(QModelIndex())
    assert view.model.rowCount() == 2 * PAGE + 50
    assert not view.model.canFetchMore(QModelIndex())
    ids = [view.model.record(r).id for r in range(view.model.rowCount())]
    assert ids == sorted(set(ids), reverse=True)
    # Scrolling the view to the end fetches the rest by itself.
    view2 = CaseLogView(site)
    qtbot.addWidget(view2)
    view2.resize(900, 500)
    view2.show()
    for _ in range(5):
        view2.table.scrollToBottom()
        qtbot.wait(20)
    assert view2.model.rowCount() == 2 * PAGE + 50



def test_a_row_damaged_on_disk_is_a_message_on_the_page_that_holds_it(qtbot, site: SiteConfig,
                                                                      predictor: Predictor,
                                                                      inputs: list[Path]) -> None:
    results = predictor.predict_files(inputs[:1]) * (PAGE + 20)
    with open_case_log(site.resolved_caselog_path(), site=site) as log:
        ids = log.record_predictions(predictor.bundle, results)
    damaged = ids[5]  # newest first: on the second page
    conn = sqlite3.connect(str(site.resolved_caselog_path()), isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("UPDATE predictions SET probabilities = '{\"nv\": 0.' WHERE id = ?", (damaged,))
    conn.close()
    view = CaseLogView(site)
    qtbot.addWidget(view)
    assert view.model.rowCount() == PAGE and view.model.canFetchMore(QModelIndex())
    view.model.fetchMore(QModelIndex())  # what scrolling does: no exception escapes into Qt
    assert view.model.rowCount() == PAGE  # the rows read so far stay
    assert not view.model.canFetchMore(QModelIndex())
    assert f"prediction {damaged} in the case log is damaged" in view.status.text()
    view.refresh()
    assert view.model.rowCount() == PAGE
    # The newest result damaged as well: the first page cannot be read; the table empties and says why.
    conn = sqlite3.connect(str(site.resolved_caselog_path()), isolation_level=None)
    conn.execute("UPDATE predictions SET probabilities = 'x' WHERE id = ?", (ids[-1],))
    conn.close()
    view.refresh()
    assert view.model.rowCount() == 0
    assert f"prediction {ids[-1]} in the case log is damaged" in view.status.text()

def test_the_audit_check_shows_ok_then_the_broken_row(qtbot, site: SiteConfig, logged: list[int]) -> None:
    view = CaseLogView(site)
    qtbot.addWidget(view)
    view.verify()
    qtbot.waitUntil(lambda: not view.is_verifying(), timeout=TIMEOUT)
    assert view.last_verify is not None and view.last_verify.ok, view.verify_status.text()
    assert view.verify_status.text().startswith("Audit trail OK")

    # Behind zsmed's back: drop the guard and change one result.
    conn = sqlite3.connect(str(site.resolved_caselog_path()), isolation_level=None)
    triggers = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                           "AND tbl_name = 'predictions'")]
    for name in triggers:
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("UPDATE predictions SET label = 'nv', abstain = 0 WHERE id = ?", (logged[3],))
    conn.close()
    view.verify()
    qtbot.waitUntil(lambda: not view.is_verifying(), timeout=TIMEOUT)
    assert view.last_verify is not None and not view.last_verify.ok
    assert view.last_verify.first_broken == logged[3]
    text = view.verify_status.text()
    assert "BROKEN" in text and f"predictions {logged[3]}" in text


def test_csv_export_holds_the_filtered_rows(qtbot, site: SiteConfig, logged: list[int], tmp_path: Path) -> None:
    view = CaseLogView(site)
    qtbot.addWidget(view)
    view.select_row(next(r for r in range(5) if view.model.record(r).id == logged[2]))
    assert view.confirm_selected()
    out = tmp_path / "all.csv"
    with qtbot.waitSignal(view.exported, timeout=TIMEOUT) as signal:
        view.export_csv(out)
    assert signal.args == [5]
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=TIMEOUT)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(int(r["id"]) for r in rows) == logged
    by_id = {int(r["id"]): r for r in rows}
    assert by_id[logged[2]]["review_verdict"] == "confirmed" and by_id[logged[2]]["reader"] == "Dr View"
    assert by_id[logged[3]]["abstain"] == "1" and by_id[logged[3]]["label"] == ""
    assert by_id[logged[4]]["error"] != ""
    assert Path(by_id[logged[0]]["source"]).suffix == ".jpg"
    assert "5 results exported" in view.status.text()

    view.set_filters(Filters(review="reviewed"))
    reviewed = tmp_path / "reviewed.csv"
    with qtbot.waitSignal(view.exported, timeout=TIMEOUT) as signal:
        view.export_csv(reviewed)
    assert signal.args == [1]
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=TIMEOUT)
    assert [int(r["id"]) for r in csv.DictReader(reviewed.open(encoding="utf-8"))] == [logged[2]]

    with qtbot.waitSignal(view.export_failed, timeout=TIMEOUT):
        view.export_csv(tmp_path / "no such folder" / "x.csv")
    assert "could not be written" in view.status.text() and "x.csv" in view.status.text()


def test_no_log_yet_and_a_broken_log_are_messages(qtbot, site: SiteConfig) -> None:
    view = CaseLogView(site)
    qtbot.addWidget(view)
    assert view.model.rowCount() == 0
    assert "No results recorded yet" in view.status.text()
    site.resolved_caselog_path().write_bytes(b"this is not a database" * 100)
    view.refresh()
    assert view.model.rowCount() == 0
    assert str(site.resolved_caselog_path()) in view.status.text()
    assert not view.verify_button.isEnabled()


def test_reviews_from_the_panel_appear_in_the_view_and_the_cli(qtbot, site: SiteConfig, inputs: list[Path],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    photos = inputs[:2]
    panel = ClassifyPanel(site)
    qtbot.addWidget(panel)
    panel.load_bundle(BUNDLE)
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)
    view = CaseLogView(site)
    qtbot.addWidget(view)
    panel.logged.connect(lambda _id: view.refresh())
    panel.set_context(photos[0], 0, photos, photos)
    panel.classify("series")
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)
    ids = panel.last_prediction_ids()
    assert len(ids) == 2 and view.model.rowCount() == 2
    names = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())]  # type: ignore[union-attr]
    assert names == ["Series (1/1 used)", "Series (1/1 used)", photos[0].name, photos[1].name]  # two folders
    panel.table.selectRow(2)  # the first image
    panel.confirm()
    panel.table.selectRow(3)  # the second image
    label = panel.result_label()
    other = next(c for c in ("bcc", "bkl", "mel", "nv") if c != label)
    panel.correct(other, "reader knows best")  # while the confirmation may still be on its way
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=TIMEOUT)
    verdicts = {view.model.record(r).id: cell(view, r, 6) for r in range(view.model.rowCount())}
    assert verdicts[ids[0]] == "Confirmed"
    assert verdicts[ids[1]].startswith("Corrected to ")

    from zsmed.cli.main import main

    code = main(["log", "list", "--log", str(site.resolved_caselog_path()), "--json"])
    assert code == 0
    out = capsys.readouterr().out
    assert str(ids[0]) in out and str(ids[1]) in out
    assert "confirmed" in out and "corrected" in out and "reader knows best" in out


def test_a_review_on_a_locked_log_is_a_message_and_works_once_released(qtbot, site: SiteConfig,
                                                                        logged: list[int]) -> None:
    view = CaseLogView(site)
    qtbot.addWidget(view)
    row = next(r for r in range(5) if view.model.record(r).id == logged[0])
    view.select_row(row)
    locker = sqlite3.connect(str(site.resolved_caselog_path()), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another workstation is writing
    try:
        assert not view.confirm_selected()
        assert "could not be recorded" in view.status.text() and "in use by another program" in view.status.text()
        assert cell(view, row, 6) == ""
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert view.confirm_selected()
    assert cell(view, row, 6) == "Confirmed"
