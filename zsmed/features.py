"""Image features with an on-disk cache keyed by file content hash + encoder identity.

Encoding the same folder twice is nearly free: the second pass hashes files and reads vectors
from a SQLite table (WAL mode, so several processes may share it). Files that fail to decode are
skipped and reported by name with the reason, never fatal for the rest.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zsmed.errors import ZsmedError
from zsmed.paths import user_cache_dir
from zsmed.progress import Job, Progress


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FeatureCache:
    """Vectors keyed by (content hash, feature-space id). Thread- and process-safe."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else user_cache_dir() / "features.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS features (content_sha256 TEXT, space TEXT, dtype TEXT, "
                "shape TEXT, vector BLOB, PRIMARY KEY (content_sha256, space))"
            )
            self._conn.commit()

    def get_many(self, keys: Sequence[str], space: str) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT content_sha256, dtype, shape, vector FROM features "
                    f"WHERE space = ? AND content_sha256 IN ({marks})",
                    [space, *chunk],
                ).fetchall()
                for key, dtype, shape, blob in rows:
                    dims = tuple(int(s) for s in shape.split(",") if s)
                    found[key] = np.frombuffer(blob, dtype=dtype).reshape(dims)
        return found

    def put_many(self, entries: dict[str, np.ndarray], space: str) -> None:
        rows = [
            (key, space, str(v.dtype), ",".join(map(str, v.shape)), np.ascontiguousarray(v).tobytes())
            for key, v in entries.items()
        ]
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?)", rows)
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@dataclass
class EncodedImages:
    """Features for the files that decoded; ``failures`` names the others with the reason."""

    paths: list[Path]
    features: np.ndarray
    failures: list[tuple[Path, str]] = field(default_factory=list)
    cache_hits: int = 0


def encode_files(
    paths: Sequence[str | Path],
    encoder: object,
    cache: FeatureCache | None = None,
    batch_size: int = 32,
    space: str | None = None,
    featurize: object | None = None,
) -> Job[EncodedImages]:
    """Encode image files with an image encoder, through the cache. A job: yields Progress.

    ``featurize`` (optional) maps a (B, 3, S, S) batch to arrays of any shape, for callers that
    cache intermediate maps; ``space`` then names that feature space in the cache.
    """
    from zsmed.encoders.base import ImageEncoder
    from zsmed.imageio import read_image
    from zsmed.preprocess import to_model_input

    assert isinstance(encoder, ImageEncoder)
    fn = featurize if featurize is not None else encoder.encode
    space_id = space or encoder.spec.cache_id
    files = [Path(p) for p in paths]
    total = len(files)
    yield Progress(0, total, "hashing")
    keys: dict[Path, str] = {}
    failures: list[tuple[Path, str]] = []
    for path in files:
        try:
            keys[path] = file_sha256(path)
        except OSError as exc:
            failures.append((path, f"cannot read ({exc.strerror or exc})"))
    cached = cache.get_many(list(set(keys.values())), space_id) if cache else {}
    vectors: dict[str, np.ndarray] = dict(cached)
    todo = [p for p in files if p in keys and keys[p] not in vectors]
    done = total - len(todo)
    yield Progress(done, total, "encoding")
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        inputs, ok = [], []
        for path in chunk:
            try:
                inputs.append(to_model_input(read_image(path), encoder.preprocess))
                ok.append(path)
            except ZsmedError as exc:
                failures.append((path, exc.reason))
        if inputs:
            out = fn(np.stack(inputs))  # type: ignore[operator]
            new = {keys[path]: np.asarray(vec) for path, vec in zip(ok, out, strict=True)}
            vectors.update(new)
            if cache:
                cache.put_many(new, space_id)
        done += len(chunk)
        yield Progress(done, total, "encoding")
    kept = [p for p in files if p in keys and keys[p] in vectors]
    failed = {p for p, _ in failures}
    kept = [p for p in kept if p not in failed]
    if kept:
        features = np.stack([vectors[keys[p]] for p in kept])
    else:
        features = np.zeros((0, encoder.dim), dtype=np.float32)
    hits = sum(1 for p in kept if keys[p] in cached)
    return EncodedImages(kept, features, failures, hits)
