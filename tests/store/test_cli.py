"""``zsmed predict --log`` and ``zsmed log ...`` end to end on real files."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pydicom
import pytest

from tests.report.sr_items import text_values
from tests.store.conftest import ct_file, photos
from zsmed.cli.main import main
from zsmed.site import SiteConfig, save_site_config
from zsmed.store import open_case_log


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def logged(log_env: Path, bundle_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A predict run on two photos, a CT (abstains) and a broken file, logged."""
    broken = log_env / "broken.dcm"
    broken.write_bytes(b"\x00" * 128 + b"DICM" + b"\x01" * 50)
    log = log_env / "log.sqlite"
    code, out, err = _run(capsys, "predict", str(bundle_path), *map(str, photos(2)), str(ct_file()), str(broken),
                          "--backend", "onnxruntime", f"--log={log}")
    assert code == 0, err
    assert len(out.splitlines()) == 4
    assert f"logged 4 results in {log} (ids 1-4)" in err
    return log


def test_predict_log_records_every_result(logged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open_case_log(logged, readonly=True) as log:
        records = log.list_predictions()
    assert [Path(str(r.source)).name for r in records] == [*(p.name for p in photos(2)), "CT_small.dcm", "broken.dcm"]
    assert records[0].label and not records[0].abstain
    assert records[2].abstain and records[2].modality == "CT"
    assert records[3].error and not records[3].probabilities
    code, out, _ = _run(capsys, "log", "list", "--log", str(logged))
    lines = out.splitlines()
    assert code == 0 and [line.split("\t")[0] for line in lines] == ["4", "3", "2", "1"]
    assert "error:" in lines[0] and "abstain" in lines[1]
    code, out, _ = _run(capsys, "log", "list", "--abstained", "--log", str(logged))
    assert [line.split("\t")[0] for line in out.splitlines()] == ["3"]
    code, out, _ = _run(capsys, "log", "list", "--unreviewed", "--json", "--limit", "2", "--log", str(logged))
    assert [json.loads(line)["id"] for line in out.splitlines()] == [3, 2]


def test_predict_keeps_embeddings_where_asked_and_log_similar_uses_them(
        logged: Path, log_env: Path, bundle_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "log", "similar", "1", "--log", str(logged))
    assert code == 0 and "no reviewed case to compare prediction 1 with" in err  # --log alone keeps none
    log = log_env / "similar.sqlite"
    code, _, err = _run(capsys, "predict", str(bundle_path), *map(str, photos(3)), str(ct_file()), "--backend",
                        "onnxruntime", f"--log={log}", "--keep-embeddings")
    assert code == 0, err
    with open_case_log(log) as opened:
        assert opened.db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 4  # the CT's too
    for number, truth in ((1, "nv"), (2, "mel")):
        assert _run(capsys, "log", "review", str(number), "--correct", truth, "--log", str(log))[0] == 0
    code, out, _ = _run(capsys, "log", "similar", "3", "--log", str(log))
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and sorted(row[0] for row in rows) == ["1", "2"]  # the reviewed ones, not itself
    assert {row[2] for row in rows} == {"nv", "mel"} and all(-1.0 <= float(row[1]) <= 1.0 for row in rows)
    assert float(rows[0][1]) >= float(rows[1][1])  # the most alike first


def test_predict_log_without_path_uses_the_site_setting(log_env: Path, bundle_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.paths import user_data_dir

    code, _, err = _run(capsys, "predict", str(bundle_path), str(photos(1)[0]), "--log")
    assert code == 0, err
    default = user_data_dir() / "caselog.sqlite"
    assert default.is_file() and str(default) in err
    moved = log_env / "site-log.sqlite"
    save_site_config(SiteConfig(caselog_path=str(moved)))
    code, _, err = _run(capsys, "predict", str(bundle_path), str(photos(1)[0]), "--log")
    assert code == 0 and moved.is_file() and str(moved) in err
    code, out, _ = _run(capsys, "log", "list")  # the log commands follow the setting too
    assert code == 0 and len(out.splitlines()) == 1


def test_review_show_stats_export(logged: Path, log_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = ["--log", str(logged)]
    code, out, _ = _run(capsys, "log", "review", "1", "--confirm", "--reader", "dr-a", *log)
    assert code == 0 and "confirmed" in out and "dr-a" in out
    code, out, _ = _run(capsys, "log", "review", "3", "--correct", "mel", "--comment", "a melanoma after all", *log)
    assert code == 0 and "corrected as mel" in out
    code, _, err = _run(capsys, "log", "review", "2", "--correct", "vasc", *log)
    assert code == 2 and "'vasc' is not a class" in err and str(logged) in err and len(err.splitlines()) == 1
    code, _, err = _run(capsys, "log", "review", "77", "--confirm", *log)
    assert code == 2 and "no prediction 77" in err
    code, _, err = _run(capsys, "log", "review", "4", "--correct", "nv", *log)
    assert code == 2 and "could not read" in err
    code, out, _ = _run(capsys, "log", "show", "3", *log)
    assert code == 0 and "corrected mel by" in out and "a melanoma after all" in out
    assert pydicom.dcmread(ct_file(), stop_before_pixels=True).SOPInstanceUID in out
    code, out, _ = _run(capsys, "log", "stats", "--json", *log)
    (stats,) = json.loads(out)
    assert (stats["predictions"], stats["reviewed"], stats["agreed"], stats["abstained"], stats["errors"]) == \
        (3, 2, 1, 1, 1)
    assert stats["confusion"]["(abstain)"] == {"mel": 1}
    code, out, _ = _run(capsys, "log", "stats", "--by", "month", *log)
    assert code == 0 and "100.0%" in out and "(abstain)" in out
    code, out, _ = _run(capsys, "log", "export", "--csv", "--unreviewed", *log)
    assert [row["id"] for row in csv.DictReader(io.StringIO(out))] == ["2"]
    target = log_env / "all.json"
    code, _, err = _run(capsys, "log", "export", "--json", "--out", str(target), *log)
    assert code == 0 and "wrote 4 predictions" in err
    data = json.loads(target.read_text())
    assert [d["id"] for d in data] == [1, 2, 3, 4] and data[2]["review"]["label"] == "mel"


def test_verify_names_the_first_broken_row(logged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "log", "verify", "--log", str(logged))
    assert code == 0 and "OK" in out
    conn = sqlite3.connect(logged, isolation_level=None)
    conn.execute("DROP TRIGGER predictions_no_update")
    conn.execute("UPDATE predictions SET label = 'mel', abstain = 0 WHERE id = 3")
    conn.close()
    code, _, err = _run(capsys, "log", "verify", "--log", str(logged))
    assert code == 1 and "BROKEN" in err and "predictions row 3 was changed outside zsmed" in err
    code, out, _ = _run(capsys, "log", "verify", "--json", "--log", str(logged))
    result = json.loads(out)
    assert code == 1 and result["first_broken"] == 3 and result["first_broken_table"] == "predictions"


def test_backup_and_bad_logs(logged: Path, log_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "log", "backup", str(log_env / "copy.sqlite"), "--log", str(logged))
    assert code == 0 and (log_env / "copy.sqlite").is_file() and "copy.sqlite" in out
    code, _, _ = _run(capsys, "log", "verify", "--log", str(log_env / "copy.sqlite"))
    assert code == 0
    bad = log_env / "bad.sqlite"
    bad.write_bytes(b"garbage" * 1000)
    code, _, err = _run(capsys, "log", "list", "--log", str(bad))
    assert code == 2 and str(bad) in err and "restore a backup" in err and len(err.splitlines()) == 1
    holder = sqlite3.connect(logged, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        from zsmed.store import caselog

        original = caselog.DEFAULT_TIMEOUT_S
        caselog.DEFAULT_TIMEOUT_S = 0.3
        try:
            code, _, err = _run(capsys, "log", "review", "1", "--confirm", "--log", str(logged))
        finally:
            caselog.DEFAULT_TIMEOUT_S = original
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2 and "in use by another program" in err and str(logged) in err


def test_log_sr_writes_a_report_from_what_the_log_holds(logged: Path, log_env: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = log_env / "sr"
    code, out, err = _run(capsys, "log", "sr", "3", "1", "--out", str(out_dir), "--log", str(logged))
    assert code == 1  # the CT gets its report; the photo cannot have one
    (line,) = out.splitlines()
    written = Path(line.split("\t")[1])
    assert line.startswith("3\t") and written.parent == out_dir
    assert "zsmed: error:" in err and len(err.splitlines()) == 1
    sr = pydicom.dcmread(written)
    source = pydicom.dcmread(ct_file(), stop_before_pixels=True)
    assert sr.Modality == "SR" and sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.PatientID == source.PatientID
    with open_case_log(logged, readonly=True) as log:
        (model,) = log.models()
    assert model.file_sha256 is not None
    assert model.file_sha256.encode() in written.read_bytes()  # the model identity predict --sr writes
    texts = text_values(sr)
    assert not any(text.startswith("Reviewed by") for text in texts)  # not reviewed yet: the model's result only
    # Reviewed: the report sent to PACS carries the reader's decision beside the model's class.
    _run(capsys, "log", "review", "3", "--correct", "bcc", "--comment", "ulcerated", "--reader", "Dr  Who",
         "--log", str(logged))
    code, out, _ = _run(capsys, "log", "sr", "3", "--out", str(out_dir), "--log", str(logged))
    assert code == 0
    reviewed = pydicom.dcmread(Path(out.split("\t")[1].strip()))
    texts = text_values(reviewed)
    (line,) = [text for text in texts if text.startswith("Reviewed by")]
    assert line.startswith("Reviewed by Dr  Who on 20")
    assert line.endswith("corrected the result to bcc. Comment: ulcerated")


def test_log_sr_send_puts_the_reviewed_result_on_the_pacs(logged: Path, log_env: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from tests.pacs_server import free_port, storage_server

    out_dir = log_env / "sr"
    # no PACS set and none given: said before a report is written
    code, out, err = _run(capsys, "log", "sr", "3", "--out", str(out_dir), "--log", str(logged), "--send")
    assert code == 2 and out == "" and "no PACS is set" in err and not out_dir.exists()
    code, _, _ = _run(capsys, "log", "review", "3", "--correct", "bcc", "--reader", "Dr Who", "--log", str(logged))
    assert code == 0
    for pacs in storage_server():
        code, out, err = _run(capsys, "log", "sr", "3", "--out", str(out_dir), "--log", str(logged), "--send",
                              "--pacs", pacs.node.address())
        assert code == 0 and err == ""
        report_line, summary = out.splitlines()
        written = Path(report_line.split("\t")[1])
        assert summary == f"1 file sent to {pacs.node}"
        (stored,) = pacs.received
        assert stored.SOPInstanceUID == pydicom.dcmread(written).SOPInstanceUID
        assert any(text.startswith("Reviewed by Dr Who") for text in text_values(stored))
        # a PACS that stores it but changed some values: said on stderr, as zsmed send says it; still sent
        pacs.status = lambda ds: 0xB000
        code, out, err = _run(capsys, "log", "sr", "3", "--out", str(out_dir), "--log", str(logged), "--send",
                              "--pacs", pacs.node.address())
        assert code == 0
        assert out.splitlines()[-1] == f"1 file sent to {pacs.node}; 1 stored with a warning from the PACS"
        assert err.startswith("zsmed: warning: ") and err.rstrip().endswith(
            "the PACS changed some of its values to store it") and len(err.strip().splitlines()) == 1
    closed = f"PACS@127.0.0.1:{free_port()}"
    code, out, err = _run(capsys, "log", "sr", "3", "--out", str(out_dir), "--log", str(logged), "--send",
                          "--pacs", closed)
    assert code == 2 and "cannot reach the PACS" in err and len(err.strip().splitlines()) == 1


def test_predict_stops_before_predicting_when_the_log_cannot_be_written(
        log_env: Path, bundle_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = log_env / "damaged.sqlite"
    damaged.write_bytes(b"not sqlite" * 500)
    code, out, err = _run(capsys, "predict", str(bundle_path), str(photos(1)[0]), f"--log={damaged}")
    assert code == 2 and out == ""
    assert err.startswith(f"zsmed: error: {damaged}:") and "restore a backup" in err and len(err.splitlines()) == 1
    assert damaged.read_bytes() == b"not sqlite" * 500
