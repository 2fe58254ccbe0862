"""Image features with an on-disk cache keyed by file content hash + encoder identity.

Encoding the same folder twice is nearly free: the second pass hashes files and reads vectors
from a SQLite table (WAL mode, so several processes may share it). Files that fail to decode are
skipped and reported by name with the reason, never fatal for the rest. The cache is an
optimisation only: when it cannot be opened or written, encoding goes on without it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np

from zsmed.digest import file_sha256
from zsmed.errors import InputFileError, ZsmedError
from zsmed.log import get_logger
from zsmed.paths import user_cache_dir
from zsmed.progress import Job, Progress

log = get_logger(__name__)

CACHE_FILE_NAME = "features.sqlite"
_HASH_PROGRESS_EVERY = 64  # files hashed between progress reports (each one a cancellation point)


class FeatureCache:
    """Vectors keyed by (content hash, feature-space id). Thread- and process-safe.

    ``hits`` and ``misses`` count lookups through this instance. A cache file that is not a
    SQLite database (a crash mid-copy, a stray file) is moved aside and started afresh.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else user_cache_dir() / CACHE_FILE_NAME
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputFileError(f"cannot create the feature cache folder ({exc.strerror or exc})",
                                 path=self.path.parent) from exc
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.OperationalError as exc:  # locked, unable to open, read-only, disk I/O
            raise InputFileError(f"cannot open the feature cache ({exc})", path=self.path) from exc
        except sqlite3.DatabaseError as exc:  # "file is not a database", "disk image is malformed"
            aside = self.path.with_name(f"{self.path.name}.broken-{int(time.time())}")
            log.warning("feature cache %s is unreadable (%s); moved to %s", self.path, exc, aside.name)
            try:
                os.replace(self.path, aside)
            except OSError as move_exc:
                raise InputFileError(f"the feature cache is corrupt and cannot be moved aside ({move_exc})",
                                     path=self.path) from exc
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL never corrupts the file; at worst a power cut loses the last vectors.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS features (content_sha256 TEXT, space TEXT, dtype TEXT, "
                "shape TEXT, vector BLOB, PRIMARY KEY (content_sha256, space))"
            )
            conn.commit()
        except BaseException:
            conn.close()
            raise
        self._pid = os.getpid()
        return conn

    def _connection(self) -> sqlite3.Connection:
        # A SQLite connection must not cross fork(); a worker process gets its own.
        if self._pid != os.getpid():
            self._conn = self._connect()
        return self._conn

    def get_many(self, keys: Sequence[str], space: str) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            conn = self._connection()
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT content_sha256, dtype, shape, vector FROM features "
                    f"WHERE space = ? AND content_sha256 IN ({marks})",
                    [space, *chunk],
                ).fetchall()
                for key, dtype, shape, blob in rows:
                    try:
                        dims = tuple(int(s) for s in shape.split(",") if s)
                        found[key] = np.frombuffer(blob, dtype=np.dtype(dtype)).reshape(dims)
                    except (TypeError, ValueError):
                        continue  # a damaged row is a miss; it is rewritten on the next put
            self.hits += len(found)
            self.misses += len(unique) - len(found)
        return found

    def put_many(self, entries: dict[str, np.ndarray], space: str) -> None:
        rows = [
            (key, space, str(v.dtype), ",".join(map(str, v.shape)), np.ascontiguousarray(v).tobytes())
            for key, v in entries.items()
        ]
        if not rows:
            return
        with self._lock:
            conn = self._connection()
            with conn:  # one transaction: all rows or none, then commit
                conn.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?)", rows)

    def count(self, space: str | None = None) -> int:
        with self._lock:
            conn = self._connection()
            if space is None:
                row = conn.execute("SELECT COUNT(*) FROM features").fetchone()
            else:
                row = conn.execute("SELECT COUNT(*) FROM features WHERE space = ?", (space,)).fetchone()
        return int(row[0])

    def clear(self, space: str | None = None) -> None:
        with self._lock:
            conn = self._connection()
            with conn:
                if space is None:
                    conn.execute("DELETE FROM features")
                else:
                    conn.execute("DELETE FROM features WHERE space = ?", (space,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass
class EncodedImages:
    """Features for the files that decoded; ``failures`` names the others with the reason."""

    paths: list[Path]
    features: np.ndarray
    failures: list[tuple[Path, str]] = field(default_factory=list)
    cache_hits: int = 0


def _decode_reason(exc: Exception) -> str:
    if isinstance(exc, ZsmedError):
        return exc.reason
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__


def encode_files(
    paths: Sequence[str | Path],
    encoder: object,
    cache: FeatureCache | None = None,
    batch_size: int = 32,
    space: str | None = None,
    featurize: object | None = None,
) -> Job[EncodedImages]:
    """Encode image files with an image encoder, through the cache. A job: yields Progress.

    Each distinct file content is decoded and encoded once, and not at all when the cache has it.
    ``featurize`` (optional) maps a (B, 3, S, S) batch to arrays of any shape, for callers that
    cache intermediate maps; ``space`` then names that feature space in the cache.
    """
    from zsmed.encoders.base import ImageEncoder
    from zsmed.imageio import read_model_input

    if not isinstance(encoder, ImageEncoder):
        raise TypeError(f"encode_files needs an ImageEncoder, got {type(encoder).__name__}")
    fn = featurize if featurize is not None else encoder.encode
    space_id = space or encoder.spec.cache_id
    batch_size = max(1, int(batch_size))
    files = [Path(p) for p in paths]
    total = len(files)
    yield Progress(0, total, "hashing")
    keys: dict[Path, str] = {}
    failed: dict[Path, str] = {}
    for index, path in enumerate(files, 1):
        try:
            keys[path] = file_sha256(path)
        except OSError as exc:
            failed[path] = f"cannot read ({exc.strerror or exc})"
        if index % _HASH_PROGRESS_EVERY == 0:
            yield Progress(0, total, f"hashing {index}/{total}")
    cached: dict[str, np.ndarray] = {}
    if cache is not None:
        try:
            cached = cache.get_many(list(keys.values()), space_id)
        except sqlite3.Error as exc:
            log.warning("feature cache unreadable, encoding without it: %s", exc)
            cache = None
    vectors: dict[str, np.ndarray] = dict(cached)
    # One representative path per content not yet known; duplicates share its vector or its failure.
    paths_of: dict[str, list[Path]] = {}
    for path, key in keys.items():
        paths_of.setdefault(key, []).append(path)
    todo = [key for key in paths_of if key not in vectors]
    done = total - sum(len(paths_of[key]) for key in todo)
    yield Progress(done, total, "encoding")
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        inputs, ok = [], []
        for key in chunk:
            path = paths_of[key][0]
            try:
                inputs.append(read_model_input(path, encoder.preprocess))
                ok.append(key)
            except Exception as exc:  # untrusted files: any decoder error is this file's failure only
                reason = _decode_reason(exc)
                for same in paths_of[key]:
                    failed[same] = reason
        if inputs:
            out = fn(np.stack(inputs))  # type: ignore[operator]
            new = {key: np.asarray(vec) for key, vec in zip(ok, out, strict=True)}
            vectors.update(new)
            if cache is not None:
                try:
                    cache.put_many(new, space_id)
                except sqlite3.Error as exc:
                    log.warning("feature cache not writable, going on without it: %s", exc)
                    cache = None
        done += sum(len(paths_of[key]) for key in chunk)
        yield Progress(done, total, "encoding")
    kept = [p for p in files if p in keys and keys[p] in vectors and p not in failed]
    if kept:
        features = np.stack([vectors[keys[p]] for p in kept])
    else:
        features = np.zeros((0, encoder.dim), dtype=np.float32)
    failures = [(p, failed[p]) for p in dict.fromkeys(files) if p in failed]
    hits = sum(1 for p in kept if keys[p] in cached)
    return EncodedImages(kept, features, failures, hits)
