"""The site's case log: which model said what about which image, what the reader decided, and how
often they agreed -- one SQLite file, no server.

Storage rules:

- WAL mode, a busy timeout, foreign keys on; every write is one ``BEGIN IMMEDIATE`` transaction
  (the write lock is taken up front, so concurrent writers queue instead of failing), and a batch of
  predictions is one transaction.
- Append-only: rows are never updated or deleted (triggers refuse it). A review is a new row; the
  latest review of a prediction is the one that counts.
- Hash-chained audit trail: each write transaction appends, per table it touched, one audit row
  that covers a contiguous id range of new rows with the SHA-256 of each row (``row_digests``, 32
  bytes per row, over the row's ``width`` columns), the SHA-256 of those digests, the previous audit
  row's hash and its own hash.
  ``verify`` recomputes everything and names the first row changed, deleted or inserted behind
  zsmed's back.
- Never the patient's name or birth date; the patient ID only as an HMAC with a per-site secret
  kept outside the database, unless the site opts in.
- Where the caller asks (the app, for the images it reads one by one), the model's embedding of the image
  (L2-normalised, float16: 0.6 to 2.5 KB an image for the shipped models' 320 to 1,280 dimensions):
  ``similar`` ranks the same model's reviewed cases by cosine to a prediction's, so the reader sees what the
  site's readers decided for images like it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from zsmed import __version__
from zsmed.errors import CaseLogError
from zsmed.store.schema import APPLICATION_ID, DATA_TABLES, MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    import sqlite_utils

    from zsmed.runtime.bundle import Bundle
    from zsmed.runtime.predict import Prediction
    from zsmed.site import SiteConfig
    from zsmed.store.identity import ImageIdentity

DEFAULT_TIMEOUT_S = 10.0
GENESIS = "0" * 64
# the reviewed cases a similar-case search reads at most (the most recent): an answer in well under a second
# however long the site has kept its log
SIMILAR_SEARCH_LIMIT = 20_000
ABSTAIN = "(abstain)"  # the model's row in the confusion table for abstained predictions
WAY_OUT = "restore a backup (zsmed log backup) or use --log to keep a new log elsewhere"


# --- records --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewRecord:
    id: int
    prediction_id: int
    verdict: str  # confirmed | corrected
    label: str  # the class the reader chose
    comment: str
    reader: str
    time: str


@dataclass(frozen=True)
class PredictionRecord:
    id: int
    time: str  # ISO 8601, UTC
    model_name: str
    model_sha256: str
    source: str | None
    study_uid: str | None
    series_uid: str | None
    sop_uid: str | None
    frame: int | None
    modality: str | None
    study_date: str | None
    label: str | None
    probabilities: dict[str, float]
    abstain: bool
    ood_score: float | None
    error: str | None
    workstation: str | None
    user: str | None
    signer: str | None
    class_names: list[str]
    review: ReviewRecord | None  # the latest
    top_class: str | None = None  # argmax of the probabilities, also when the model abstained
    image_sha256: str | None = None  # photos (and files that are not DICOM)
    image_kind: str = ""  # dicom | photo | file | missing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SimilarCase:
    """A reviewed case whose image the model sees as much alike (cosine of their embeddings), with the reader's
    class for it."""

    prediction_id: int
    similarity: float  # cosine of the two embeddings, 1.0 = the same
    time: str  # when it was classified (ISO 8601, UTC)
    source: str | None  # the image file, as logged
    image_kind: str
    study_date: str | None
    label: str  # the reader's class (the latest review)
    verdict: str  # confirmed | corrected
    reader: str
    model_label: str | None  # what the model said (None: it gave no result)


@dataclass(frozen=True)
class ModelRecord:
    sha256: str  # the bundle id: SHA-256 of its manifest, which covers every member by its hash
    name: str
    card: dict[str, Any]
    first_seen: str
    signer: str | None
    file_sha256: str | None = None  # SHA-256 of the .zsmb file's bytes when first seen (sha256sum gives it)


@dataclass(frozen=True)
class ModelStats:
    model_name: str
    model_sha256: str
    month: str | None
    predictions: int  # results with model output (errors not counted)
    reviewed: int
    agreed: int  # the reader chose the model's class
    agreement: float | None  # agreed / reviewed predictions that had a class (abstentions have none)
    abstained: int
    abstain_rate: float | None
    errors: int  # files the model could not read
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # model class -> reader class -> n


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows_checked: int
    first_broken: int | None  # id of the first broken row (in first_broken_table)
    message: str
    first_broken_table: str | None = None
    problems: list[str] = field(default_factory=list)  # the first few, in order
    # SHA-256 of the last audit row: noted outside the log (a printout, a ticket), it shows later
    # that nobody rewrote the whole chain (which an unkeyed hash chain alone cannot)
    chain_head: str | None = None


# --- hashing --------------------------------------------------------------------------------------
def row_digest(row: Sequence[Any], width: int | None = None) -> bytes:
    """SHA-256 of a stored row's first ``width`` columns (all: the table's width when it was
    written; a later schema only appends columns). ``ascii()`` escapes by code point alone, so the
    text is the same on every Python version."""
    return hashlib.sha256(ascii(tuple(row[:width])).encode("ascii")).digest()


def audit_row_sha256(audit_id: int, time: str, action: str, table: str, first_id: int, last_id: int, width: int,
                     content_sha256: str, prev_sha256: str) -> str:
    text = "\x1f".join((str(audit_id), time, action, table, str(first_id), str(last_id), str(width),
                        content_sha256, prev_sha256))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _parse_day(value: str | date | None, what: str, path: Path) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    try:
        if len(value) <= 10:
            return date.fromisoformat(value).isoformat()
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CaseLogError(f"{what} must be a date like 2026-12-01 (not {value!r})", path=path) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _day_after(day: str) -> str:
    return (date.fromisoformat(day[:10]) + timedelta(days=1)).isoformat() if len(day) == 10 else day


# --- opening --------------------------------------------------------------------------------------
def open_case_log(path: str | Path | None = None, *, site: SiteConfig | None = None, readonly: bool = False,
                  timeout: float = DEFAULT_TIMEOUT_S) -> CaseLog:
    """Open (and create, or migrate, when writable) the case log. ``path`` None: the site's setting
    (``SiteConfig.caselog_path``; default ``caselog.sqlite`` in the user data dir)."""
    if site is None:
        from zsmed.site import load_site_config

        site = load_site_config()
    target = Path(path).expanduser() if path is not None else site.resolved_caselog_path()
    return CaseLog(target, site=site, readonly=readonly, timeout=timeout)


# SQLite hands back text that is not UTF-8 (a row's value, or an error message naming a table whose
# name was overwritten) only from a damaged file; Python's sqlite3 then raises OperationalError
# "Could not decode to UTF-8" for a value and UnicodeDecodeError for a message.
DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, UnicodeDecodeError)


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """SQLite's message on one line: for a damaged schema it quotes the table's CREATE statement."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _not_utf8(exc: BaseException) -> bool:
    return isinstance(exc, UnicodeDecodeError) or "could not decode to utf-8" in str(exc).lower()


def _sqlite_error(path: Path, exc: BaseException, timeout: float) -> CaseLogError:
    if _not_utf8(exc):
        return CaseLogError(f"the case log is damaged (it holds text that is not UTF-8); {WAY_OUT}", path=path)
    text = _one_line(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        return CaseLogError(f"the case log is in use by another program (waited {timeout:g} s); try again", path=path)
    if "readonly" in low or "read-only" in low:
        return CaseLogError("the case log is read-only here (file or folder not writable); "
                            "use --log to keep the log elsewhere", path=path)
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return CaseLogError(f"the case log is damaged ({text}); {WAY_OUT}", path=path)
    if "unable to open" in low:
        return CaseLogError(f"cannot open the case log ({text}); check the folder exists and is writable, "
                            f"or use --log elsewhere", path=path)
    if "disk is full" in low or "disk i/o" in low:
        return CaseLogError(f"cannot write the case log ({text})", path=path)
    return CaseLogError(f"case-log database error ({text})", path=path)


class CaseLog:
    """An open case log (a context manager). Not for sharing between threads: open one per thread."""

    def __init__(self, path: Path, *, site: SiteConfig, readonly: bool = False,
                 timeout: float = DEFAULT_TIMEOUT_S, _upgrade_to: int = SCHEMA_VERSION) -> None:
        self.path = path
        self._upgrade_to = _upgrade_to  # tests build logs of earlier schema versions with it
        self.site = site
        self.readonly = readonly
        self.timeout = float(timeout)
        self._secret: bytes | None = None
        self._db: sqlite_utils.Database | None = None
        self._conn = self._connect()
        try:
            self._prepare()
            self._columns = {t: [r[1] for r in self._conn.execute(f"PRAGMA table_info({t})")] for t in DATA_TABLES}
        except DB_ERRORS as exc:
            self._conn.close()
            raise _sqlite_error(self.path, exc, self.timeout) from exc
        except BaseException:
            self._conn.close()
            raise

    # -- connection --------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        path = self.path
        if path.is_dir():
            raise CaseLogError("is a folder; give the case log's file name (e.g. caselog.sqlite)", path=path)
        exists = path.exists()
        if self.readonly:
            if not exists:
                raise CaseLogError("no case log here (nothing has been logged yet, or --log names another file)",
                                   path=path)
        else:
            if not exists:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise CaseLogError(f"cannot create the case log's folder ({exc.strerror or exc}); "
                                       f"use --log to keep the log elsewhere", path=path) from exc
            if not os.access(path.parent, os.W_OK):
                raise CaseLogError("the case log's folder is read-only (SQLite needs to write beside the file); "
                                   "use --log to keep the log elsewhere", path=path)
            if exists and not os.access(path, os.W_OK):
                raise CaseLogError("the case log is read-only (no write permission); use --log to keep the log "
                                   "elsewhere", path=path)
        try:
            if self.readonly:
                uri = path.absolute().as_uri()
                try:
                    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=self.timeout, isolation_level=None,
                                           check_same_thread=False)
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                except sqlite3.OperationalError as exc:
                    if "unable to open" not in str(exc) and "readonly" not in str(exc):
                        raise
                    # a WAL log in a read-only folder (a backup on a CD): nobody can be writing it
                    conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=self.timeout,
                                           isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(str(path), timeout=self.timeout, isolation_level=None,
                                       check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
        except DB_ERRORS as exc:
            raise _sqlite_error(path, exc, self.timeout) from exc
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils on this connection, for the schema and its migrations (imported only then:
        it costs ~0.1 s of a command's start)."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self._conn, execute_plugins=False, recursive_triggers=False)
        return self._db

    def _prepare(self) -> None:
        conn = self._conn
        try:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise CaseLogError(f"not a zsmed case log, or the file is damaged ({_one_line(exc)}); {WAY_OUT}",
                               path=self.path) from exc
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id != APPLICATION_ID and (tables or version):
            raise CaseLogError("not a zsmed case log (another program's SQLite database); "
                               "use --log to choose another file", path=self.path)
        if version > SCHEMA_VERSION:
            raise CaseLogError(f"the case log was written by a newer zsmed (case-log version {version}); "
                               f"this zsmed {__version__} reads up to version {SCHEMA_VERSION}: update zsmed",
                               path=self.path)
        self.schema_version = version
        if self.readonly:
            if version == 0:
                raise CaseLogError("the file holds no case log yet", path=self.path)
            return
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.db.enable_wal()
        if version < self._upgrade_to:
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        if version > 0:  # an older zsmed's log: keep a copy of it as it was
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
            self.backup(self.path.with_name(f"{self.path.name}.v{version}-{stamp}.bak"))
        with self._write():
            current = self._conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            for number, (description, step) in enumerate(MIGRATIONS[current : self._upgrade_to], start=current + 1):
                step(self.db)
                self._conn.execute(f"PRAGMA user_version = {number}")
                digest = hashlib.sha256(f"schema {number}: {description}".encode()).digest()
                self._append_audit("migrate", "schema", number, number, digest)
            self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.schema_version = self._conn.execute("PRAGMA user_version").fetchone()[0]

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise CaseLogError("opened read-only", path=self.path)
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except DB_ERRORS as exc:
            raise _sqlite_error(self.path, exc, self.timeout) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except DB_ERRORS as exc:
            if conn.in_transaction:
                with contextlib.suppress(*DB_ERRORS):  # a damaged file may refuse the rollback too
                    conn.execute("ROLLBACK")
            raise _sqlite_error(self.path, exc, self.timeout) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for a multi-statement read, even while others write."""
        conn = self._conn
        own = not conn.in_transaction
        try:
            if own:
                conn.execute("BEGIN")
            yield conn
            if own and conn.in_transaction:
                conn.execute("COMMIT")
        except DB_ERRORS as exc:
            raise _sqlite_error(self.path, exc, self.timeout) from exc
        finally:
            if own and conn.in_transaction:  # a read left early or failed (a damaged page): nothing to keep
                with contextlib.suppress(*DB_ERRORS):
                    conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> CaseLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- audit -------------------------------------------------------------------------------------
    def _append_audit(self, action: str, table: str, first_id: int, last_id: int, digests: bytes,
                      width: int = 0) -> None:
        conn = self._conn
        last = conn.execute("SELECT id, row_sha256 FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        audit_id, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        time = utc_now()
        content = hashlib.sha256(digests).hexdigest()
        row_hash = audit_row_sha256(audit_id, time, action, table, first_id, last_id, width, content, prev)
        conn.execute(
            "INSERT INTO audit (id, time, action, tbl, first_id, last_id, width, row_digests, content_sha256, "
            "prev_sha256, row_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (audit_id, time, action, table, first_id, last_id, width, digests, content, prev, row_hash),
        )

    def _insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert rows with consecutive explicit ids (we hold the write lock) and audit them as read
        back from the database, so the digests are of exactly what is stored."""
        if not rows:
            return []
        conn = self._conn
        start = (conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0) + 1
        columns = [c for c in self._columns[table] if c != "id"]
        for key in rows[0]:
            if key not in columns:
                raise CaseLogError(f"internal: column {table}.{key} missing (schema {self.schema_version})",
                                   path=self.path)
        placeholders = ", ".join("?" * (len(columns) + 1))
        conn.executemany(
            f"INSERT INTO {table} (id, {', '.join(columns)}) VALUES ({placeholders})",
            [(start + i, *(row.get(c) for c in columns)) for i, row in enumerate(rows)],
        )
        end = start + len(rows) - 1
        stored = conn.execute(f"SELECT * FROM {table} WHERE id BETWEEN ? AND ? ORDER BY id", (start, end))
        width = len(self._columns[table])
        self._append_audit("insert", table, start, end, b"".join(row_digest(r, width) for r in stored), width)
        return list(range(start, end + 1))

    # -- writing -----------------------------------------------------------------------------------
    def _patient_fields(self, patient_id: str | None) -> dict[str, str | None]:
        if not patient_id:
            return {}
        from zsmed.store.identity import patient_id_hash, site_secret

        if self._secret is None:
            self._secret = site_secret()
        fields: dict[str, str | None] = {"patient_id_hash": patient_id_hash(patient_id, self._secret)}
        if self.site.store_patient_id:
            fields["patient_id"] = patient_id
        return fields

    def _model_id(self, bundle: Bundle, now: str) -> int:
        found = self._conn.execute("SELECT id FROM models WHERE sha256 = ?", (bundle.bundle_id,)).fetchone()
        if found:
            return int(found[0])
        row: dict[str, str | None] = {"sha256": bundle.bundle_id, "name": model_name(bundle),
               "card": json.dumps(bundle.card, sort_keys=True, ensure_ascii=True), "first_seen": now}
        if "signer" in self._columns["models"]:
            row["signer"] = bundle.signed_by
        if "file_sha256" in self._columns["models"]:
            from zsmed.store.identity import file_sha256

            try:
                row["file_sha256"] = file_sha256(Path(bundle.path))
            except OSError:  # the bundle file went away after loading: the manifest id still names it
                row["file_sha256"] = None
        return self._insert("models", [row])[0]

    def record_predictions(self, bundle: Bundle, results: Sequence[Prediction], *, workstation: str | None = None,
                           user: str | None = None, keep_embeddings: bool = False) -> list[int]:
        """Log results of one bundle in one transaction; returns the prediction ids in ``results``
        order. Error entries (files that could not be read) are logged as errors. ``keep_embeddings``: the
        results' embeddings kept too, for ``similar`` (the app's images read one by one; not a node's every
        slice, which would fill the log)."""
        from zsmed.store.identity import read_identity

        if not results:
            return []
        identities = {}
        for result in results:  # file reads happen before the write lock is taken
            if result.source not in identities:
                identities[result.source] = read_identity(result.source)
        now = utc_now()
        workstation = workstation if workstation is not None else socket.gethostname()
        if user is None:
            from zsmed.site import os_user

            user = os_user()
        images: dict[str, ImageIdentity] = {}
        for identity in identities.values():
            images.setdefault(identity.identity, identity)
        has_source = "source" in self._columns["predictions"]
        run: dict[str, Any] = {"time": now, "workstation": workstation, "os_user": user}
        if "signer" in self._columns["runs"]:
            run["signer"] = bundle.signed_by
        class_names = bundle.class_names
        with self._write() as conn:
            model_id = self._model_id(bundle, now)
            (run_id,) = self._insert("runs", [{**run, "model_id": model_id}])
            image_ids: dict[str, int] = {}
            keys = list(images)
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                image_ids.update(conn.execute(f"SELECT identity, id FROM images WHERE identity IN ({marks})", chunk))
            new = [images[k] for k in keys if k not in image_ids]
            new_rows = []
            for ident in new:
                image_row: dict[str, str | None] = {
                    "identity": ident.identity, "kind": ident.kind, "study_uid": ident.study_uid,
                    "series_uid": ident.series_uid, "sop_uid": ident.sop_uid, "modality": ident.modality,
                    "study_date": ident.study_date, "sha256": ident.sha256, "first_seen": now,
                }
                image_row.update(self._patient_fields(ident.patient_id))
                new_rows.append(image_row)
            image_ids.update(zip((i.identity for i in new), self._insert("images", new_rows), strict=True))
            rows = []
            for result in results:
                row = _prediction_row(result, class_names)
                row.update(run_id=run_id, image_id=image_ids[identities[result.source].identity])
                if has_source:
                    row["source"] = _where_file(result.source)
                rows.append(row)
            ids = self._insert("predictions", rows)
            if keep_embeddings and self._columns.get("embeddings"):
                self._insert("embeddings", [
                    {"prediction_id": pid, "dim": int(result.embedding.size), "vector": _unit_float16(result.embedding)}
                    for pid, result in zip(ids, results, strict=True)
                    if result.embedding is not None and result.error is None and np.isfinite(result.embedding).all()
                ])
            return ids

    def review(self, prediction_id: int, *, confirm: bool = False, correct_to: str | None = None, comment: str = "",
               reader: str | None = None) -> int:
        """The reader confirms the model's class or corrects it to a named class; returns the review id."""
        if confirm == (correct_to is not None):
            raise CaseLogError("a review either confirms the model (--confirm) or names the reader's class "
                               "(--correct CLASS)", path=self.path)
        reader = (reader or "").strip() or self.site.reader
        with self._write():
            record = self.get(prediction_id)
            what = f"prediction {prediction_id}"
            if record.error is not None:
                raise CaseLogError(f"{what} is a file the model could not read ({record.error}): nothing to review",
                                   path=self.path)
            if confirm:
                if record.label is None:
                    raise CaseLogError(f"the model abstained on {what}: nothing to confirm; give the reader's "
                                       f"class with --correct CLASS", path=self.path)
                verdict, label = "confirmed", record.label
            else:
                assert correct_to is not None
                if correct_to not in record.class_names:
                    raise CaseLogError(f"{correct_to!r} is not a class of model {record.model_name} "
                                       f"({', '.join(record.class_names)})", path=self.path)
                verdict = "confirmed" if correct_to == record.label else "corrected"
                label = correct_to
            row = {"prediction_id": prediction_id, "verdict": verdict, "label": label, "comment": str(comment),
                   "reader": reader, "time": utc_now()}
            return self._insert("reviews", [row])[0]

    # -- reading -----------------------------------------------------------------------------------
    def _col(self, table: str, column: str, alias: str) -> str:
        return f"{alias}.{column}" if column in self._columns[table] else "NULL"

    def _select(self) -> str:
        return (
            "SELECT p.id, u.time, m.name, m.sha256, " + self._col("predictions", "source", "p")
            + ", i.study_uid, i.series_uid, i.sop_uid, p.frame, i.modality, i.study_date, p.label, "
            "p.probabilities, p.abstain, p.ood_score, p.error, u.workstation, u.os_user, "
            + self._col("runs", "signer", "u")
            + ", u.model_id, r.id, r.verdict, r.label, r.comment, r.reader, r.time, p.top_class, i.sha256, i.kind "
            "FROM predictions p JOIN runs u ON u.id = p.run_id JOIN models m ON m.id = u.model_id "
            "JOIN images i ON i.id = p.image_id "
            "LEFT JOIN reviews r ON r.id = (SELECT max(id) FROM reviews WHERE prediction_id = p.id)"
        )

    def _where(self, model: str | None, since: str | date | None, until: str | date | None, unreviewed: bool,
               abstained: bool, reviewed: bool | None = None) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if model:
            clauses.append("(m.name = ? OR m.sha256 LIKE ?)")
            params += [model, f"{model.lower()}%"]
        start = _parse_day(since, "--since", self.path)
        if start:
            clauses.append("u.time >= ?")
            params.append(start)
        end = _parse_day(until, "--until", self.path)
        if end:
            clauses.append("u.time < ?")
            params.append(_day_after(end))
        if reviewed is None and unreviewed:
            reviewed = False
        if reviewed is False:
            clauses.append("p.error IS NULL AND NOT EXISTS (SELECT 1 FROM reviews WHERE prediction_id = p.id)")
        elif reviewed is True:
            clauses.append("EXISTS (SELECT 1 FROM reviews WHERE prediction_id = p.id)")
        if abstained:
            clauses.append("p.error IS NULL AND p.abstain = 1")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _class_names(self) -> dict[int, list[str]]:
        return {mid: list(_model_card(card, mid, self.path).get("class_names", []))
                for mid, card in self._conn.execute("SELECT id, card FROM models")}

    def iter_predictions(self, *, model: str | None = None, since: str | date | None = None,
                         until: str | date | None = None, unreviewed: bool = False, abstained: bool = False,
                         limit: int | None = None, offset: int = 0, newest_first: bool = False,
                         reviewed: bool | None = None) -> Iterator[PredictionRecord]:
        """Records one at a time (constant memory: for exports of the whole log). ``reviewed``:
        True = only those a reader reviewed, False = only those not yet reviewed (as ``unreviewed``),
        None = both."""
        where, params = self._where(model, since, until, unreviewed, abstained, reviewed)
        sql = self._select() + where + f" ORDER BY p.id {'DESC' if newest_first else 'ASC'}"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else int(limit), int(offset)]
        with self._read() as conn:
            classes = self._class_names()
            for row in conn.execute(sql, params):
                yield _record(row, classes, self.path)

    def list_predictions(self, *, model: str | None = None, since: str | date | None = None,
                         until: str | date | None = None, unreviewed: bool = False, abstained: bool = False,
                         limit: int | None = None, offset: int = 0, newest_first: bool = False,
                         reviewed: bool | None = None) -> list[PredictionRecord]:
        return list(self.iter_predictions(model=model, since=since, until=until, unreviewed=unreviewed,
                                          abstained=abstained, limit=limit, offset=offset,
                                          newest_first=newest_first, reviewed=reviewed))

    def get(self, prediction_id: int) -> PredictionRecord:
        try:
            number = int(prediction_id)
            if not -(2**63) <= number < 2**63:
                raise OverflowError(number)
        except (TypeError, ValueError, OverflowError) as exc:
            raise CaseLogError(f"{prediction_id!r} is not a prediction id", path=self.path) from exc
        with self._read() as conn:
            row = conn.execute(self._select() + " WHERE p.id = ?", (number,)).fetchone()
            classes = self._class_names() if row else {}
        if row is None:
            raise CaseLogError(f"no prediction {prediction_id} in the case log", path=self.path)
        return _record(row, classes, self.path)

    def similar(self, prediction_id: int, k: int = 5) -> list[SimilarCase]:
        """The ``k`` reviewed cases of the same model whose images its embedding finds most alike that of
        prediction ``prediction_id`` (other images only; among its ``SIMILAR_SEARCH_LIMIT`` most recent reviewed
        cases), most alike first; [] where that prediction's embedding was not kept (classified outside the app,
        or before this zsmed) or no reviewed case has one."""
        record = self.get(prediction_id)
        if not self._columns.get("embeddings"):
            return []
        with self._read() as conn:
            mine = conn.execute("SELECT e.vector, e.dim, p.image_id FROM embeddings e JOIN predictions p "
                                "ON p.id = e.prediction_id WHERE e.prediction_id = ?", (record.id,)).fetchone()
            if mine is None:
                return []
            query = _vector(mine[0], mine[1], self.path)
            cursor = conn.execute(
                "SELECT p.id, e.vector, u.time, " + self._col("predictions", "source", "p")
                + ", i.kind, i.study_date, r.label, r.verdict, r.reader, p.label "
                "FROM embeddings e JOIN predictions p ON p.id = e.prediction_id JOIN runs u ON u.id = p.run_id "
                "JOIN models m ON m.id = u.model_id JOIN images i ON i.id = p.image_id "
                "JOIN reviews r ON r.id = (SELECT max(id) FROM reviews WHERE prediction_id = p.id) "
                "WHERE m.sha256 = ? AND p.image_id != ? AND e.dim = ? ORDER BY p.id DESC LIMIT ?",
                (record.model_sha256, mine[2], mine[1], SIMILAR_SEARCH_LIMIT))
            cases: list[tuple[Any, ...]] = []  # each without its vector: a chunk of vectors at a time in memory
            scores: list[np.ndarray] = []
            while chunk := cursor.fetchmany(2_000):
                scores.append(_vectors([row[1] for row in chunk], int(mine[1]), self.path) @ query)
                cases.extend((row[0], *row[2:]) for row in chunk)
        if not cases:
            return []
        similarity = np.concatenate(scores)
        # the most alike first; of equals the later case (the reader's more recent practice)
        order = sorted(range(len(cases)), key=lambda n: (-float(similarity[n]), -int(cases[n][0])))[: max(int(k), 0)]
        return [SimilarCase(prediction_id=int(cases[n][0]), similarity=round(float(similarity[n]), 4),
                            time=cases[n][1], source=cases[n][2], image_kind=cases[n][3] or "",
                            study_date=cases[n][4], label=cases[n][5], verdict=cases[n][6], reader=cases[n][7],
                            model_label=cases[n][8])
                for n in order]

    def models(self) -> list[ModelRecord]:
        signer, file_sha = self._col("models", "signer", "m"), self._col("models", "file_sha256", "m")
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT m.sha256, m.name, m.card, m.first_seen, {signer}, {file_sha} FROM models m ORDER BY m.id"
            )
            return [ModelRecord(sha256=r[0], name=r[1], card=_model_card(r[2], r[0], self.path), first_seen=r[3],
                                signer=r[4], file_sha256=r[5]) for r in rows]

    def count(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])

    def stats(self, *, by_month: bool = False) -> list[ModelStats]:
        """Per model (and month): predictions, reviews, agreement with the reader, abstain rate and
        the confusion of the model's class against the reader's (latest review of each prediction)."""
        month = "substr(u.time, 1, 7)" if by_month else "NULL"
        counts_sql = (  # per run first (the run_id index keeps predictions in run order), then per model
            f"SELECT u.model_id, {month} AS month, sum(c.ok), sum(c.errors), sum(c.abstained) FROM "
            "(SELECT run_id, sum(error IS NULL) AS ok, sum(error IS NOT NULL) AS errors, "
            "sum(error IS NULL AND abstain = 1) AS abstained FROM predictions GROUP BY run_id) c "
            "JOIN runs u ON u.id = c.run_id GROUP BY u.model_id, month"
        )
        # one pass over the reviews (each prediction's latest, found through the prediction_id index),
        # never a join of every prediction against the reviews
        reviewed_sql = (
            f"SELECT u.model_id, {month} AS month, p.label, r.label, count(*) FROM reviews r "
            "JOIN predictions p ON p.id = r.prediction_id JOIN runs u ON u.id = p.run_id "
            "WHERE r.id = (SELECT max(id) FROM reviews WHERE prediction_id = r.prediction_id) AND p.error IS NULL "
            "GROUP BY u.model_id, month, p.label, r.label"
        )
        with self._read() as conn:
            models = {mid: (name, sha) for mid, name, sha in conn.execute("SELECT id, name, sha256 FROM models")}
            confusion: dict[tuple[int, str | None], dict[str, dict[str, int]]] = {}
            reviewed: dict[tuple[int, str | None], list[int]] = {}  # reviewed, agreed, reviewed with a class
            for mid, mon, model_label, reader_label, n in conn.execute(reviewed_sql):
                row = confusion.setdefault((mid, mon), {}).setdefault(model_label or ABSTAIN, {})
                row[reader_label] = row.get(reader_label, 0) + int(n)
                tally = reviewed.setdefault((mid, mon), [0, 0, 0])
                tally[0] += n
                tally[1] += n if model_label is not None and model_label == reader_label else 0
                tally[2] += n if model_label is not None else 0
            out = []
            for mid, mon, n, errors, abstained in sorted(conn.execute(counts_sql), key=lambda r: (r[0], r[1] or "")):
                name, sha = models[mid]
                n_reviewed, agreed, labelled = reviewed.get((mid, mon), [0, 0, 0])
                out.append(ModelStats(
                    model_name=name, model_sha256=sha, month=mon, predictions=int(n or 0), reviewed=n_reviewed,
                    agreed=agreed, agreement=agreed / labelled if labelled else None,
                    abstained=int(abstained or 0), abstain_rate=(abstained or 0) / n if n else None,
                    errors=int(errors or 0), confusion=confusion.get((mid, mon), {}),
                ))
            return out

    # -- integrity ---------------------------------------------------------------------------------
    def verify(self, *, integrity_check: bool = True) -> VerifyResult:
        from zsmed.store.verify import undecodable_text, verify_log

        with self._read() as conn:
            try:
                return verify_log(conn, integrity_check=integrity_check, path=str(self.path))
            except DB_ERRORS as exc:
                text = str(exc).lower()
                if "locked" in text or "busy" in text:
                    raise _sqlite_error(self.path, exc, self.timeout) from exc
                if not _not_utf8(exc):
                    message = f"the database is damaged ({_one_line(exc)})"
                    return VerifyResult(ok=False, rows_checked=0, first_broken=None, message=message,
                                        problems=[message])
        try:  # a value that is not UTF-8: name its row
            with self._read() as conn:
                found = undecodable_text(conn)
        except CaseLogError:
            found = None
        if found is not None:
            return found
        message = "the database is damaged (it holds text that is not UTF-8)"
        return VerifyResult(ok=False, rows_checked=0, first_broken=None, message=message, problems=[message])

    # -- export and backup -------------------------------------------------------------------------
    def export_csv(self, out: Path | TextIO, **filters: Any) -> int:
        """Every matching prediction with its latest review, one CSV row each; returns the count.
        Text that a spreadsheet would run as a formula is prefixed with a quote."""
        with _output(out) as handle:
            writer = csv.writer(handle)
            writer.writerow(EXPORT_COLUMNS)
            n = 0
            for record in self.iter_predictions(**filters):
                writer.writerow([_cell(v) for v in _flat(record)])
                n += 1
        return n

    def export_json(self, out: Path | TextIO, **filters: Any) -> int:
        """A JSON array of prediction records (with their latest review), written as it is read."""
        with _output(out) as handle:
            handle.write("[")
            n = 0
            for record in self.iter_predictions(**filters):
                handle.write(("," if n else "") + "\n" + json.dumps(record.to_dict(), ensure_ascii=False))
                n += 1
            handle.write("\n]\n" if n else "]\n")
        return n

    def backup(self, dest: Path) -> Path:
        """A consistent copy made with SQLite's online backup (one read snapshot: others may keep
        writing meanwhile), as a single file (rollback journal, not WAL); never overwrites a file."""
        dest = Path(dest).expanduser()
        if dest.is_dir():
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
            dest = dest / f"{self.path.stem}-{stamp}.sqlite"
        if dest.exists():
            raise CaseLogError("a file of that name exists already; choose a new name", path=dest)
        if dest.absolute() == self.path.absolute():
            raise CaseLogError("the backup cannot replace the case log itself", path=dest)
        part = dest.with_name(dest.name + ".part")
        try:
            target = sqlite3.connect(str(part), isolation_level=None)
        except sqlite3.Error as exc:
            raise CaseLogError(f"cannot write the backup ({_one_line(exc)})", path=dest) from exc
        try:
            self._conn.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")
            check = target.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise CaseLogError(f"the backup copy fails its check ({check})", path=dest)
        except sqlite3.Error as exc:
            raise CaseLogError(f"cannot write the backup ({_one_line(exc)})", path=dest) from exc
        finally:
            target.close()
        try:
            os.replace(part, dest)
        except OSError as exc:
            raise CaseLogError(f"cannot write the backup ({exc.strerror or exc})", path=dest) from exc
        finally:
            part.unlink(missing_ok=True)
        return dest


# --- helpers --------------------------------------------------------------------------------------
def model_name(bundle: Bundle) -> str:
    card_name = bundle.card.get("name")
    return str(card_name) if card_name else Path(bundle.path).stem


def _where_file(source: str) -> str:
    """An existing file's absolute path (the log is read months later, from anywhere); anything
    else (a name given to an in-memory image, a file already gone) as given."""
    path = Path(source)
    try:
        return str(path.absolute()) if path.exists() else str(source)
    except (OSError, ValueError):
        return str(source)


def _unit_float16(embedding: np.ndarray) -> bytes:
    """An embedding as kept: L2-normalised (similarity is then a dot product), float16 (half the room, and
    three significant digits are plenty for ranking)."""
    vector = np.asarray(embedding, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype("<f2").tobytes()


def _vector(blob: bytes, dim: int, path: Path | None) -> np.ndarray:
    return _vectors([blob], dim, path)[0]


def _vectors(blobs: Sequence[bytes], dim: int, path: Path | None) -> np.ndarray:
    """Kept embeddings (each ``dim`` float16) as rows of a float32 matrix."""
    if any(not isinstance(blob, bytes) or len(blob) != 2 * int(dim) for blob in blobs):
        raise CaseLogError("an embedding in the case log is damaged (its size does not match)", path=path)
    return np.frombuffer(b"".join(blobs), dtype="<f2").reshape(len(blobs), int(dim)).astype(np.float32)


def _prediction_row(result: Prediction, class_names: Sequence[str]) -> dict[str, Any]:
    probabilities = {str(k): float(v) for k, v in (result.probabilities or {}).items()}
    top = max(probabilities, key=probabilities.__getitem__) if probabilities else None
    ordered = {c: probabilities[c] for c in class_names if c in probabilities}
    ordered.update({c: p for c, p in probabilities.items() if c not in ordered})
    return {
        "frame": None if result.frame is None else int(result.frame),
        "label": None if result.label is None else str(result.label),
        "top_class": top,
        "probabilities": json.dumps(ordered, ensure_ascii=True),
        "abstain": int(bool(result.abstain)),
        "ood_score": None if result.ood_score is None else float(result.ood_score),
        "error": None if result.error is None else str(result.error),
    }


def _json_object(text: str, what: str, path: Path | None) -> dict[str, Any]:
    """A JSON object the log keeps as text (a model card, a result's probabilities); damaged bytes
    are a one-line error naming ``what`` ("prediction 12")."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):  # not JSON any more: said below, as a JSON value that is no object
        value = None
    if not isinstance(value, dict):
        raise CaseLogError(f"{what} in the case log is damaged; zsmed log verify says what else is; {WAY_OUT}",
                           path=path)
    return value


def _model_card(text: str, model: object, path: Path | None) -> dict[str, Any]:
    return _json_object(text, f"the card of model {model}", path)


def _record(row: Sequence[Any], classes: Mapping[int, list[str]], path: Path | None = None) -> PredictionRecord:
    (pid, time, name, sha, source, study, series, sop, frame, modality, study_date, label, probs, abstain, ood,
     error, workstation, user, signer, model_id, rid, verdict, rlabel, comment, reader, rtime, top, image_sha,
     kind) = row
    probabilities = _json_object(probs, f"prediction {pid}", path)
    review = None
    if rid is not None:
        review = ReviewRecord(id=rid, prediction_id=pid, verdict=verdict, label=rlabel, comment=comment,
                              reader=reader, time=rtime)
    return PredictionRecord(
        id=pid, time=time, model_name=name, model_sha256=sha, source=source, study_uid=study, series_uid=series,
        sop_uid=sop, frame=frame, modality=modality, study_date=study_date, label=label,
        probabilities=probabilities, abstain=bool(abstain), ood_score=ood, error=error, workstation=workstation,
        user=user, signer=signer, class_names=list(classes.get(model_id, [])), review=review, top_class=top,
        image_sha256=image_sha, image_kind=kind,
    )


EXPORT_COLUMNS = (
    "id", "time", "model_name", "model_sha256", "signer", "source", "image_kind", "image_sha256", "study_uid",
    "series_uid", "sop_uid", "frame", "modality", "study_date", "label", "top_class", "abstain", "ood_score",
    "error", "probabilities", "workstation", "user", "review_verdict", "review_label", "review_comment",
    "reader", "review_time",
)


def _flat(r: PredictionRecord) -> list[Any]:
    rv = r.review
    return [
        r.id, r.time, r.model_name, r.model_sha256, r.signer, r.source, r.image_kind, r.image_sha256, r.study_uid,
        r.series_uid, r.sop_uid, r.frame, r.modality, r.study_date, r.label, r.top_class, int(r.abstain),
        r.ood_score, r.error, json.dumps(r.probabilities), r.workstation, r.user,
        rv.verdict if rv else None, rv.label if rv else None, rv.comment if rv else None,
        rv.reader if rv else None, rv.time if rv else None,
    ]


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


@contextlib.contextmanager
def _output(out: Path | TextIO) -> Iterator[TextIO]:
    if isinstance(out, (str, Path)):
        path = Path(out)
        try:
            handle = path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise CaseLogError(f"cannot write the export ({exc.strerror or exc})", path=path) from exc
        with handle:
            yield handle
    else:
        yield out
