"""The audit chain against edits behind zsmed's back, schema migrations, concurrent writers, a
writer killed mid-batch, read-only media."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.conftest import ct_file, fake_results, photos
from zsmed.runtime.bundle import Bundle
from zsmed.site import SiteConfig
from zsmed.store import SCHEMA_VERSION, VerifyResult, open_case_log
from zsmed.store.caselog import CaseLog

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def filled(log_env: Path, bundle: Bundle) -> Path:
    path = log_env / "log.sqlite"
    with open_case_log(path) as log:
        for start in range(0, 12, 4):
            ids = log.record_predictions(bundle, fake_results([*photos(3), ct_file()], seed=start))
        log.review(ids[0], correct_to="bcc", comment="first")
        log.review(ids[1], correct_to="nv")
        assert log.verify().ok
    return path


def _tamper(path: Path, *sql: str) -> None:
    """What someone with the sqlite3 shell could do: drop the guard triggers, then edit."""
    conn = sqlite3.connect(path, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    for statement in sql:
        conn.execute(statement)
    conn.close()


def _verify(path: Path) -> VerifyResult:
    with open_case_log(path, readonly=True) as log:
        return log.verify()


def test_triggers_refuse_updates_and_deletes(filled: Path) -> None:
    conn = sqlite3.connect(filled)
    for statement in ("UPDATE predictions SET label = 'mel' WHERE id = 1", "DELETE FROM reviews WHERE id = 1",
                      "DELETE FROM audit WHERE id = 3"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    assert _verify(filled).ok


@pytest.mark.parametrize(
    ("sql", "table", "row", "words"),
    [
        (["UPDATE predictions SET label = 'mel', probabilities = '{}' WHERE id = 6"], "predictions", 6, "changed"),
        (["UPDATE predictions SET ood_score = ood_score + 1e-9 WHERE id = 2"], "predictions", 2, "changed"),
        (["UPDATE reviews SET label = 'mel' WHERE id = 2"], "reviews", 2, "changed"),
        (["UPDATE images SET modality = 'MR' WHERE id = 4"], "images", 4, "changed"),
        (["UPDATE models SET signer = 'evil' WHERE id = 1"], "models", 1, "changed"),
        (["DELETE FROM reviews WHERE id = 1"], "reviews", 1, "deleted"),
        (["DELETE FROM predictions WHERE id = 11"], "predictions", 11, "deleted"),
        (["INSERT INTO reviews (id, prediction_id, verdict, label, comment, reader, time) "
          "VALUES (3, 5, 'confirmed', 'nv', '', 'x', '2026-01-01')"], "reviews", 3, "inserted"),
        (["UPDATE audit SET time = '2020-01-01' WHERE id = 5"], "audit", 5, "changed"),
        (["UPDATE audit SET row_digests = zeroblob(32) WHERE id = 4"], "audit", 4, "changed"),
        (["DELETE FROM audit WHERE id = 7"], "audit", 7, "missing"),
    ],
)
def test_edits_outside_zsmed_are_found_and_named(filled: Path, sql: list[str], table: str, row: int,
                                                 words: str) -> None:
    _tamper(filled, *sql)
    result = _verify(filled)
    assert not result.ok
    assert (result.first_broken_table, result.first_broken) == (table, row), result.message
    assert f"{table} row {row}" in result.message and words in result.message


def test_rewritten_chain_still_fails_on_the_data(filled: Path) -> None:
    """Deleting a prediction and the tail of the audit trail (a consistent chain again) leaves
    data rows no audit row covers."""
    conn = sqlite3.connect(filled)
    last_audit = conn.execute("SELECT max(id) FROM audit WHERE tbl = 'predictions'").fetchone()[0]
    conn.close()
    _tamper(filled, f"DELETE FROM audit WHERE id >= {last_audit}")
    result = _verify(filled)
    assert not result.ok and result.first_broken_table == "predictions" and "inserted outside" in result.message


def test_verify_is_ok_after_more_writes_and_reopening(filled: Path, bundle: Bundle) -> None:
    with open_case_log(filled) as log:
        log.record_predictions(bundle, fake_results(photos(2), seed=9))
        result = log.verify()
    assert result.ok and result.rows_checked > 20 and result.first_broken is None


def _v1_log(path: Path, bundle: Bundle) -> list[int]:
    with CaseLog(path, site=SiteConfig(), _upgrade_to=1) as log:
        assert log.schema_version == 1
        ids = log.record_predictions(bundle, fake_results([*photos(2), ct_file()]))
        log.review(ids[0], correct_to="mel")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "signer" not in {r[1] for r in conn.execute("PRAGMA table_info(predictions)")}
    conn.close()
    return ids


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_every_earlier_version_migrates(log_env: Path, bundle: Bundle, version: int) -> None:
    path = log_env / "old.sqlite"
    old_ids: list[int] = []
    if version == 0:
        sqlite3.connect(path).close()  # an empty SQLite file: version 0
        assert path.exists()
    elif version == 1:
        old_ids = _v1_log(path, bundle)
        with CaseLog(path, site=SiteConfig(), readonly=True) as old:  # read as it is, before upgrading
            assert [r.source for r in old.list_predictions()] == [None] * 3
    else:  # version 2: no embeddings table; verified and read as it is, then upgraded
        with CaseLog(path, site=SiteConfig(), _upgrade_to=version) as log:
            old_ids = log.record_predictions(bundle, fake_results([*photos(2), ct_file()]), keep_embeddings=True)
            log.review(old_ids[0], correct_to="mel")
        with CaseLog(path, site=SiteConfig(), readonly=True) as old:
            assert old.verify().ok and old.similar(old_ids[1]) == []  # nothing kept to compare with
    with open_case_log(path) as log:
        assert log.schema_version == SCHEMA_VERSION
        new_ids = log.record_predictions(bundle, fake_results(photos(1)))
        records = log.list_predictions()
        assert [r.id for r in records] == [*old_ids, *new_ids]
        assert records[-1].source == str(photos(1)[0])
        assert all(r.source is None for r in records[: len(old_ids)]) or version >= 2
        if old_ids:
            assert records[0].review is not None and records[0].review.label == "mel"
        result = log.verify()
        assert result.ok, result.message
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    actions = [r[0] for r in conn.execute("SELECT tbl FROM audit WHERE action = 'migrate' ORDER BY id")]
    assert actions == ["schema"] * SCHEMA_VERSION
    conn.close()
    backups = sorted(log_env.glob("old.sqlite.v*.bak"))
    assert len(backups) == (1 if version else 0)
    if version:
        copy = sqlite3.connect(backups[0])
        assert copy.execute("PRAGMA user_version").fetchone()[0] == version
        assert copy.execute("SELECT count(*) FROM predictions").fetchone()[0] == 3


def _spawn(log_path: Path, n: int, batch: int, seed: int, sources: list[Path]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.writer", str(log_path), str(n), str(batch), str(seed),
         *map(str, sources)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_four_processes_writing_at_once(log_env: Path) -> None:
    path = log_env / "log.sqlite"
    open_case_log(path).close()  # the schema exists before they race (they would also agree without)
    sources = photos(5)
    writers = [_spawn(path, 1000, 25, seed, sources) for seed in range(4)]
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert out.count("committed") == 40
    with open_case_log(path, readonly=True) as log:
        assert log.count() == 4000
        result = log.verify()
        assert result.ok, result.message
        by_writer: dict[str, int] = {}
        for record in log.iter_predictions():
            by_writer[record.workstation or ""] = by_writer.get(record.workstation or "", 0) + 1
        assert by_writer == {f"writer-{seed}": 1000 for seed in range(4)}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM images").fetchone()[0] == 5
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_writer_killed_mid_batch_loses_nothing_committed(log_env: Path, bundle: Bundle) -> None:
    """Batches of 30,000 rows overflow SQLite's page cache, so a batch writes pages to the WAL
    before it commits: the writer is killed once its second batch has written some (the WAL file
    changed after the first commit was reported) and before that batch commits."""
    import threading

    path = log_env / "log.sqlite"
    wal = path.with_name(path.name + "-wal")
    batch = 30_000
    writer = _spawn(path, 10 * batch, batch, 7, photos(3))
    assert writer.stdout is not None
    committed: list[int] = []
    reader = threading.Thread(target=lambda: committed.extend(
        int(line.split()[2]) for line in writer.stdout if line.startswith("committed")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    killed_after = None
    try:
        deadline = time.monotonic() + 240
        while not committed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert committed, "the writer never committed"
        before = wal.stat().st_mtime_ns
        while time.monotonic() < deadline and len(committed) == 1:
            if wal.stat().st_mtime_ns != before:  # the second batch is writing pages
                os.kill(writer.pid, signal.SIGKILL)
                killed_after = len(committed)
                break
            time.sleep(0.002)
    finally:
        writer.kill()
        writer.wait()
        reader.join(timeout=10)
    assert writer.returncode == -signal.SIGKILL
    assert killed_after == 1 and committed == [batch], "not killed inside the second batch; rerun"
    assert wal.stat().st_size > 0
    with open_case_log(path) as log:  # writable open: recovers from the WAL
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert log.count() == batch  # every committed row, nothing of the killed batch
        assert [r.id for r in log.list_predictions(offset=batch - 2)] == [batch - 1, batch]
        result = log.verify()
        assert result.ok, result.message
        assert log.record_predictions(bundle, fake_results(photos(1))) == [batch + 1]


def test_backup_while_another_process_writes(log_env: Path) -> None:
    path = log_env / "log.sqlite"
    open_case_log(path).close()
    writer = _spawn(path, 40_000, 500, 3, photos(3))
    assert writer.stdout is not None
    copies: list[Path] = []
    try:
        with open_case_log(path, readonly=True) as log:
            for line in writer.stdout:
                if line.startswith("committed") and int(line.split()[2]) % 5000 == 0:
                    copies.append(log.backup(log_env / f"copy{len(copies)}.sqlite"))
                    if len(copies) == 4:
                        break
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    assert len(copies) == 4
    counts = []
    for copy in copies:
        conn = sqlite3.connect(copy)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts.append(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])
        conn.close()
        result = _verify(copy)
        assert result.ok, result.message
    assert counts == sorted(counts) and counts[-1] > counts[0] and all(c % 500 == 0 for c in counts)


@pytest.fixture()
def public_dir() -> Iterator[Path]:
    """A folder another (unprivileged) user can reach: pytest's tmp_path is private to root."""
    folder = Path(tempfile.mkdtemp(prefix="zsmed-caselog-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _as_unprivileged(code: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run Python as an ordinary user (file permissions then apply; root ignores them)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot test permissions")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # no machine-wide settings: the session's stand-in lies in a folder the unprivileged user cannot read
    env = {**os.environ, "PYTHONPATH": str(REPO), "ZSMED_DATA_DIR": str(data_dir), "HOME": str(data_dir),
           "ZSMED_SITE_DEFAULTS": str(data_dir / "no-machine-wide-settings.json")}
    return subprocess.run([*prefix, sys.executable, "-c", code], cwd=str(data_dir), env=env, capture_output=True,
                          text=True, timeout=120)


def test_read_only_file_and_folder(public_dir: Path, bundle: Bundle) -> None:
    data = public_dir / "data"
    data.mkdir(mode=0o777)
    data.chmod(0o777)
    ro_folder = public_dir / "cd"
    ro_folder.mkdir()
    with open_case_log(ro_folder / "log.sqlite", site=SiteConfig()) as log:
        log.record_predictions(bundle, fake_results(photos(2)))
    (ro_folder / "log.sqlite").chmod(0o644)
    ro_folder.chmod(0o555)  # read-only folder, readable log
    rw_folder = public_dir / "rw"
    rw_folder.mkdir(mode=0o777)
    rw_folder.chmod(0o777)
    shutil.copy(ro_folder / "log.sqlite", rw_folder / "log.sqlite")
    (rw_folder / "log.sqlite").chmod(0o444)  # read-only file in a writable folder
    code = f"""
from zsmed.errors import CaseLogError
from zsmed.store import open_case_log
from zsmed.runtime.predict import Prediction
for path in ({str(ro_folder / 'log.sqlite')!r}, {str(rw_folder / 'log.sqlite')!r},
             {str(ro_folder / 'new.sqlite')!r}):
    try:
        open_case_log(path)
        print("OPENED", path)
    except CaseLogError as exc:
        print("ERROR", exc)
for path in ({str(ro_folder / 'log.sqlite')!r}, {str(rw_folder / 'log.sqlite')!r}):
    with open_case_log(path, readonly=True) as log:
        print("READ", len(log.list_predictions()), log.verify().ok)
"""
    done = _as_unprivileged(code, data)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    errors = [line for line in lines if line.startswith("ERROR")]
    assert len(errors) == 3, done.stdout
    assert str(ro_folder / "log.sqlite") in errors[0] and "folder is read-only" in errors[0]
    assert str(rw_folder / "log.sqlite") in errors[1] and "read-only" in errors[1] and "--log" in errors[1]
    assert str(ro_folder / "new.sqlite") in errors[2] and "read-only" in errors[2]
    assert lines[-2:] == ["READ 2 True", "READ 2 True"]
    assert not (ro_folder / "new.sqlite").exists()


def test_verify_in_worker_processes_and_tampering_found_there(filled: Path, bundle: Bundle,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A big table is digested by worker processes (threshold lowered here); a row changed in any
    worker's span still sends verify row by row, which names it."""
    from zsmed.store import verify

    with open_case_log(filled) as log:
        for seed in range(6):
            log.record_predictions(bundle, fake_results(photos(3) * 100, seed=seed))
    monkeypatch.setattr(verify, "PARALLEL_MIN_ROWS", 100)
    monkeypatch.setattr(verify.os, "cpu_count", lambda: 3)
    in_main: list[str] = []
    real = verify._fast_span

    def recording(conn: sqlite3.Connection, table: str, low: int, high: int) -> int | None:
        in_main.append(table)  # the worker processes import verify afresh: their calls are not seen here
        return real(conn, table, low, high)

    monkeypatch.setattr(verify, "_fast_span", recording)
    result = _verify(filled)
    assert result.ok and result.rows_checked > 1800, result.message
    assert "predictions" not in in_main and "images" in in_main
    _tamper(filled, "UPDATE predictions SET error = 'x' WHERE id = 1500")
    result = _verify(filled)
    assert not result.ok and (result.first_broken_table, result.first_broken) == ("predictions", 1500)


def test_verify_gives_the_chain_head_to_note_outside(filled: Path, bundle: Bundle) -> None:
    first = _verify(filled)
    assert first.ok and first.chain_head and len(first.chain_head) == 64 and first.chain_head[:16] in first.message
    conn = sqlite3.connect(filled)
    assert first.chain_head == conn.execute("SELECT row_sha256 FROM audit ORDER BY id DESC LIMIT 1").fetchone()[0]
    conn.close()
    with open_case_log(filled) as log:
        log.record_predictions(bundle, fake_results(photos(1)))
    later = _verify(filled)
    assert later.ok and later.chain_head != first.chain_head


def test_a_row_damaged_on_disk_is_named_not_a_traceback(filled: Path) -> None:
    """Bytes overwritten inside a row (a failing disk, a bad copy): the probabilities no longer JSON,
    a label no longer UTF-8. Listing and exporting say which prediction is damaged; verify names it."""
    from zsmed.errors import CaseLogError

    _tamper(filled, "UPDATE predictions SET probabilities = '{\"nv\": 0.7, \"mel' WHERE id = 3")
    with open_case_log(filled, readonly=True) as log:
        with pytest.raises(CaseLogError, match=r"prediction 3 in the case log is damaged.*zsmed log verify"):
            log.list_predictions()
        with pytest.raises(CaseLogError, match="prediction 3"):
            log.export_csv(filled.parent / "out.csv")
        assert log.get(2).id == 2  # the rest of the log still reads
        result = log.verify()
    assert not result.ok and (result.first_broken_table, result.first_broken) == ("predictions", 3)
    _tamper(filled, "UPDATE predictions SET label = CAST(x'6eff' AS TEXT) WHERE id = 5")
    with open_case_log(filled, readonly=True) as log:
        with pytest.raises(CaseLogError, match=r"damaged .*not UTF-8"):
            log.get(5)
        result = log.verify()
    assert not result.ok and (result.first_broken_table, result.first_broken) == ("predictions", 5), result.message
    assert "label is not readable text" in result.message


def test_a_schema_damaged_on_disk_is_refused_in_one_line(filled: Path) -> None:
    """An index's name and its CREATE statement overwritten in the schema: SQLite's own error names
    the object, in bytes that are not UTF-8 (Python's sqlite3 raises UnicodeDecodeError for it)."""
    from zsmed.errors import CaseLogError

    data = bytearray(filled.read_bytes())
    at = data.find(b"indexidx_images_identityimages")
    assert at > 0, "the schema row of idx_images_identity"
    data[at + 8] = 0xFF  # inside the name
    keyword = data.find(b" ON ", at)
    data[keyword + 1:keyword + 3] = b"QQ"  # the CREATE INDEX statement no longer parses
    filled.write_bytes(bytes(data))
    before = filled.read_bytes()
    for readonly in (True, False):
        with pytest.raises(CaseLogError, match="damaged") as raised:
            open_case_log(filled, readonly=readonly)
        assert "\n" not in str(raised.value) and str(filled) in str(raised.value)
    assert filled.read_bytes() == before  # refused, never repaired or replaced
