"""``zsmed log verify``: SQLite's own integrity check, the audit hash chain, and every data row
against the digest its audit row recorded. Streams both sides in id order (constant memory).

The common case (nothing touched) runs at C speed: a whole audit range of rows is digested with
``map`` over built-ins and compared as one byte string. Only a table where that fails is walked
row by row, to name the first row changed, deleted or inserted behind zsmed's back."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import threading
from itertools import islice
from operator import itemgetter, methodcaller
from pathlib import Path

from zsmed.store.caselog import GENESIS, VerifyResult, audit_row_sha256, row_digest
from zsmed.store.schema import DATA_TABLES

MAX_PROBLEMS = 20
_RANGES_SQL = ("SELECT id, first_id, last_id, width, row_digests FROM audit WHERE tbl = ? AND action = 'insert' "
               "ORDER BY first_id")


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str | None, int | None, str]] = []

    def add(self, table: str | None, row_id: int | None, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append((table, row_id, message))

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_PROBLEMS


def verify_log(conn: sqlite3.Connection, *, integrity_check: bool = True,
               path: str | None = None) -> VerifyResult:
    """``path``: the database file, so SQLite's integrity check runs on its own connection in a
    thread beside the Python-side hashing (SQLite releases the GIL while it checks)."""
    problems = _Problems()
    checker = _IntegrityCheck(conn, path) if integrity_check else None
    audit_rows, head = _check_chain(conn, problems)
    data_rows = 0
    present = _tables(conn)
    for table in DATA_TABLES:
        if problems.full:
            break
        if table not in present:  # a log from before the table was (an older schema, opened read-only) ...
            if conn.execute("SELECT 1 FROM audit WHERE tbl = ? LIMIT 1", (table,)).fetchone():  # ... or dropped
                problems.add(table, None, f"the {table} table is missing (dropped outside zsmed)")
            continue
        checked = _fast_check(conn, table, path)
        data_rows += checked if checked is not None else _check_table(conn, table, problems)
    if checker is not None:
        found = checker.result()
        if found != ["ok"]:
            problems.items.insert(0, (None, None, f"SQLite integrity check failed: {'; '.join(found[:3])}"))
    checked = audit_rows + data_rows
    if not problems.items:
        return VerifyResult(ok=True, rows_checked=checked, first_broken=None, chain_head=head,
                            message=f"{data_rows} rows match the {audit_rows} rows of the audit chain "
                                    f"(head {head[:16]})")
    broken_table, row_id, first = problems.items[0]
    more = len(problems.items) - 1
    suffix = f" (and {more}{'+' if problems.full else ''} more problem{'s' if more != 1 else ''})" if more else ""
    return VerifyResult(ok=False, rows_checked=checked, first_broken=row_id, first_broken_table=broken_table,
                        message=first + suffix, problems=[p[2] for p in problems.items], chain_head=head)


def undecodable_text(conn: sqlite3.Connection) -> VerifyResult | None:
    """The first row holding text that is not UTF-8, found after reading the log failed on one
    (SQLite names the column, not the row). Only a damaged file holds such text: zsmed writes
    Python strings. Reads each text value as bytes, so nothing here fails to decode."""
    present = _tables(conn)
    for table in ("audit", *DATA_TABLES):
        if table not in present:
            continue
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        as_bytes = ", ".join(f"CASE WHEN typeof({c}) = 'text' THEN CAST({c} AS BLOB) END" for c in columns)
        for row in conn.execute(f"SELECT id, {as_bytes} FROM {table} ORDER BY id"):
            for column, value in zip(columns, row[1:], strict=True):
                if value is None:
                    continue
                try:
                    bytes(value).decode("utf-8")
                except UnicodeDecodeError:
                    message = (f"{table} row {row[0]} is damaged: its {column} is not readable text "
                               "(bytes overwritten on disk)")
                    return VerifyResult(ok=False, rows_checked=0, first_broken=int(row[0]), first_broken_table=table,
                                        message=message, problems=[message])
    return None


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


class _IntegrityCheck:
    def __init__(self, conn: sqlite3.Connection, path: str | None) -> None:
        self._found: list[str] | None = None
        self._conn = conn
        self._thread: threading.Thread | None = None
        if path:
            self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
            self._thread.start()

    def _run(self, path: str) -> None:
        try:
            other = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, check_same_thread=False)
            try:
                self._found = [r[0] for r in other.execute("PRAGMA integrity_check(5)")]
            finally:
                other.close()
        except (sqlite3.Error, UnicodeDecodeError):
            self._found = None  # e.g. an immutable (read-only folder) log: checked on the main connection

    def result(self) -> list[str]:
        if self._thread is not None:
            self._thread.join()
        if self._found is None:
            self._found = [r[0] for r in self._conn.execute("PRAGMA integrity_check(5)")]
        return self._found


def _check_chain(conn: sqlite3.Connection, problems: _Problems) -> tuple[int, str]:
    prev = GENESIS
    expected = 1
    n = 0
    sha256 = hashlib.sha256
    for (audit_id, time, action, table, first, last, width, digests, content, prev_hash, row_hash) in conn.execute(
        "SELECT id, time, action, tbl, first_id, last_id, width, row_digests, content_sha256, prev_sha256, "
        "row_sha256 FROM audit ORDER BY id"
    ):
        n += 1
        if problems.full:
            continue
        if audit_id != expected:
            problems.add("audit", expected, f"audit row {expected} is missing (deleted outside zsmed)")
        elif prev_hash != prev:
            problems.add("audit", audit_id, f"audit row {audit_id} does not chain to the row before it "
                                            f"(a row was changed, deleted or inserted outside zsmed)")
        if not isinstance(digests, bytes) or len(digests) != 32 * (last - first + 1) or \
                sha256(digests).hexdigest() != content:
            problems.add("audit", audit_id, f"audit row {audit_id} was changed outside zsmed (its row digests "
                                            f"do not match its content hash)")
        elif audit_row_sha256(audit_id, time, action, table, first, last, width, content, prev_hash) != row_hash:
            problems.add("audit", audit_id, f"audit row {audit_id} was changed outside zsmed (its hash does not "
                                            f"match its content)")
        prev = row_hash
        expected = audit_id + 1
    return n, prev


PARALLEL_MIN_ROWS = 200_000  # a table this big is digested by several processes
_LAST_ID = 2**63 - 1
_SPAN_RANGES_SQL = ("SELECT first_id, last_id, width, row_digests FROM audit WHERE tbl = ? AND action = 'insert' "
                    "AND first_id >= ? AND first_id < ? ORDER BY first_id")


def _fast_check(conn: sqlite3.Connection, table: str, path: str | None = None) -> int | None:
    """The rows checked when every audit range matches at once; None at the first doubt."""
    total, lowest, highest = conn.execute(
        "SELECT sum(last_id - first_id + 1), min(first_id), max(last_id) FROM audit "
        "WHERE tbl = ? AND action = 'insert'", (table,)).fetchone()
    workers = min(4, os.cpu_count() or 1)
    if not path or not total or total < PARALLEL_MIN_ROWS or workers < 2 or not _can_spawn():
        return _fast_span(conn, table, 0, _LAST_ID)
    # rows past the last audited id in this snapshot, then the audited id space cut at range starts
    if conn.execute(f"SELECT 1 FROM {table} WHERE id > ? LIMIT 1", (highest,)).fetchone():
        return None
    bounds = [0]
    for k in range(1, workers):
        found = conn.execute("SELECT min(first_id) FROM audit WHERE tbl = ? AND action = 'insert' AND first_id >= ?",
                             (table, lowest + (highest - lowest) * k // workers)).fetchone()[0]
        if found is not None and found > bounds[-1]:
            bounds.append(found)
    bounds.append(highest + 1)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    try:
        with ProcessPoolExecutor(max_workers=len(bounds) - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
            spans = list(pool.map(_fast_span_file, [path] * (len(bounds) - 1), [table] * (len(bounds) - 1),
                                  bounds[:-1], bounds[1:]))
    except Exception:  # no worker processes here (a locked-down PC, a broken pool): digest it in this one
        return _fast_span(conn, table, 0, _LAST_ID)
    return None if any(n is None for n in spans) else sum(n for n in spans if n is not None)


def _can_spawn() -> bool:
    """Worker processes re-import the main script: not from a frozen app (it would start the app
    again) nor from a main that is no file (``python -`` reading stdin)."""
    if getattr(sys, "frozen", False):
        return False
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or Path(main_file).is_file()


def _fast_span_file(path: str, table: str, low: int, high: int) -> int | None:
    """``_fast_span`` in a worker process, on its own read-only connection and snapshot."""
    uri = Path(path).absolute().as_uri()
    try:
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
            conn.execute("SELECT 1 FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
        try:
            conn.execute("BEGIN")
            return _fast_span(conn, table, low, high)
        finally:
            conn.close()
    except (sqlite3.Error, UnicodeDecodeError):
        return None  # the main process walks the table itself and reports what it finds


def _fast_span(conn: sqlite3.Connection, table: str, low: int, high: int) -> int | None:
    """Audit ranges starting in [low, high) against the rows with ids in [low, high)."""
    rows = conn.execute(f"SELECT * FROM {table} WHERE id >= ? AND id < ? ORDER BY id", (low, high))
    full = len(rows.description)
    digest, sha256 = methodcaller("digest"), hashlib.sha256
    checked = 0
    for first, last, width, digests in conn.execute(_SPAN_RANGES_SQL, (table, low, high)):
        n = last - first + 1
        chunk = islice(rows, n) if width == full else map(itemgetter(slice(0, width)), islice(rows, n))
        got = b"".join(map(digest, map(sha256, map(str.encode, map(ascii, chunk)))))
        if got != digests:  # (each digest covers the row's id: matching digests are the right rows)
            return None
        checked += n
    return None if next(rows, None) is not None else checked


def _check_table(conn: sqlite3.Connection, table: str, problems: _Problems) -> int:
    """Row by row: names what was changed, deleted or inserted."""
    rows = conn.execute(f"SELECT * FROM {table} ORDER BY id")
    row = next(rows, None)
    checked = 0
    covered = 0
    for audit_id, first, last, width, digests in conn.execute(_RANGES_SQL, (table,)):
        if problems.full:
            return checked
        if first <= covered:
            problems.add("audit", audit_id, f"audit row {audit_id} records {table} rows {first}-{last} a second time "
                                            f"(inserted outside zsmed)")
            continue
        while row is not None and row[0] < first:
            problems.add(table, row[0], f"{table} row {row[0]} was inserted outside zsmed (no audit row covers it)")
            row = next(rows, None)
        view = memoryview(digests) if isinstance(digests, bytes) else memoryview(b"")
        for k, row_id in enumerate(range(first, last + 1)):
            if row is None or row[0] > row_id:
                problems.add(table, row_id, f"{table} row {row_id} was deleted outside zsmed "
                                            f"(audit row {audit_id} recorded it)")
                continue
            if row_digest(row, width) != view[32 * k : 32 * k + 32]:
                problems.add(table, row_id, f"{table} row {row_id} was changed outside zsmed "
                                            f"(it no longer matches audit row {audit_id})")
            checked += 1
            row = next(rows, None)
        covered = last
    while row is not None and not problems.full:
        problems.add(table, row[0], f"{table} row {row[0]} was inserted outside zsmed (no audit row covers it)")
        row = next(rows, None)
    return checked
