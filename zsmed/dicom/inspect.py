"""``zsmed inspect``: one JSON record per file, decoded in a contained worker.

A record has ``file``, ``sop_class``, ``sop_class_name``, ``modality``, ``transfer_syntax``,
``transfer_syntax_name``, ``photometric``, ``rows``, ``cols``, ``frames``, ``bits_allocated`` and
``pixel_sha256``: the SHA-256 of the decoded stored-value array exactly as pydicom 3's
``Dataset.pixel_array`` returns it (all frames, C order, its own dtype), plus ``dtype`` and
``shape`` of that array. A file with no image or a broken one has ``error`` (a one-line reason)
instead of ``pixel_sha256``, with whatever header fields could be read. ``warnings`` lists
read-time oddities when there are any.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.errors import ZsmedError
from zsmed.progress import Job, Progress

FIELDS = (
    "file",
    "sop_class",
    "sop_class_name",
    "modality",
    "transfer_syntax",
    "transfer_syntax_name",
    "photometric",
    "rows",
    "cols",
    "frames",
    "bits_allocated",
)


def array_sha256(arr: np.ndarray) -> str:
    """SHA-256 of an array's bytes in C order and its own dtype."""
    data = np.ascontiguousarray(arr)
    return hashlib.sha256(data.data.cast("B")).hexdigest()


def _uid_name(uid: str | None) -> str | None:
    if not uid:
        return None
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name != uid else None


def _int(value: Any) -> int | None:
    try:
        return int(float(str(value))) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _header_record(path: str, ds: Any) -> dict[str, Any]:
    from zsmed.dicom.decode import number_of_frames, transfer_syntax

    meta = getattr(ds, "file_meta", None)
    sop = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta is not None else None)
    ts = transfer_syntax(ds)
    record: dict[str, Any] = {
        "file": path,
        "sop_class": str(sop) if sop else None,
        "sop_class_name": _uid_name(str(sop) if sop else None),
        "modality": str(ds.get("Modality", "") or "") or None,
        "transfer_syntax": ts,
        "transfer_syntax_name": _uid_name(ts),
        "photometric": str(ds.get("PhotometricInterpretation", "") or "") or None,
        "rows": _int(ds.get("Rows")),
        "cols": _int(ds.get("Columns")),
        "frames": number_of_frames(ds) if "Rows" in ds else None,
        "bits_allocated": _int(ds.get("BitsAllocated")),
    }
    return record


def inspect_file(path: str | Path) -> dict[str, Any]:
    """Inspect one file in this process (``SafeDecoder.inspect`` runs it in the worker)."""
    from zsmed.dicom.decode import open_dataset, stored_pixels

    spath = str(path)
    record: dict[str, Any] = {"file": spath}
    try:
        ds, notes = open_dataset(spath)
        record = _header_record(spath, ds)
        if notes:
            record["warnings"] = [n.splitlines()[0][:200] for n in notes]
        arr = stored_pixels(ds, path=spath, notes=notes)
        record["pixel_sha256"] = array_sha256(arr)
        record["dtype"] = arr.dtype.str
        record["shape"] = list(arr.shape)
    except ZsmedError as exc:
        record["error"] = f"{type(exc).__name__}: {exc.reason}"
    except Exception as exc:  # anything pydicom lets through: still one line
        text = str(exc).strip().splitlines()
        record["error"] = f"{type(exc).__name__}: {text[0][:300] if text else 'unexpected failure'}"
    return record


def _crash_record(path: str, exc: ZsmedError) -> dict[str, Any]:
    """Record for a file that took the worker down: header fields read here, then the error."""
    from zsmed.dicom.header import read_header

    record: dict[str, Any] = {"file": path}
    try:
        header = read_header(path)
        record.update(
            {
                "sop_class": header.sop_class,
                "sop_class_name": _uid_name(header.sop_class),
                "modality": header.get("Modality"),
                "transfer_syntax": header.transfer_syntax,
                "transfer_syntax_name": _uid_name(header.transfer_syntax),
                "photometric": header.get("PhotometricInterpretation"),
                "rows": header.get("Rows"),
                "cols": header.get("Columns"),
                "frames": header.get("NumberOfFrames", 1) if header.get("Rows") else None,
                "bits_allocated": header.get("BitsAllocated"),
            }
        )
    except (ZsmedError, OSError, ValueError):
        pass
    record["error"] = f"{type(exc).__name__}: {exc.reason}"
    return record


def expand_inputs(inputs: Iterable[str | Path]) -> list[str]:
    """Files as given; folders expanded recursively (sorted, symlink loops not followed)."""
    out: list[str] = []
    for item in inputs:
        item = str(item)
        if os.path.isdir(item):
            seen: set[tuple[int, int]] = set()
            for root, dirs, files in os.walk(item, followlinks=True):
                st = os.stat(root)
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    dirs[:] = []
                    continue
                seen.add(key)
                dirs.sort()
                out.extend(os.path.join(root, name) for name in sorted(files))
        else:
            out.append(item)
    return out


def inspect_job(
    paths: Iterable[str | Path],
    *,
    timeout: float = 60.0,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    decoder: Any = None,
) -> Job[list[dict[str, Any]]]:
    """Inspect files one by one in a contained worker; yields Progress, returns the records.

    ``on_record`` receives each record as soon as it is ready (the CLI streams JSON lines).
    """
    from zsmed.dicom.safe import SafeDecoder

    files = [str(p) for p in paths]
    records: list[dict[str, Any]] = []
    own = decoder is None
    worker = SafeDecoder(timeout=timeout) if own else decoder
    try:
        yield Progress(0, len(files), "")
        for index, path in enumerate(files):
            try:
                record = worker.inspect(path)
            except ZsmedError as exc:
                record = _crash_record(path, exc)
            records.append(record)
            if on_record is not None:
                on_record(record)
            yield Progress(index + 1, len(files), os.path.basename(path))
    finally:
        if own:
            worker.close()
    return records
