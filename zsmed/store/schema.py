"""The case log's schema and its forward migrations.

The version lives in ``PRAGMA user_version``; ``PRAGMA application_id`` marks the file as a zsmed
case log, so another program's SQLite file is never taken for one. A released migration is never
edited: a new schema is a new step appended to ``MIGRATIONS``, and opening an older log applies the
missing steps in one transaction (after a backup copy of the old file).

Version 1: images, models, runs (one per logged batch: time, model, workstation, OS user),
predictions, reviews and the hash-chained audit trail.
Version 2: the bundle's signer (key id) on models and runs, the SHA-256 of the bundle file's
bytes (what ``sha256sum`` and the DICOM SR give), and the source file path of each prediction (needed
to write a DICOM SR that copies the image's patient module).
Version 3: embeddings — the model's embedding of an image classified in the app (L2-normalised, float16), for
finding the reviewed cases most alike; audited and append-only as the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

APPLICATION_ID = 0x7A736C67  # "zslg"
DATA_TABLES = ("images", "models", "runs", "predictions", "reviews", "embeddings")  # audited, append-only


def _v1(db: sqlite_utils.Database) -> None:
    db.table("images").create(
        {
            "id": int, "identity": str, "kind": str, "study_uid": str, "series_uid": str, "sop_uid": str,
            "modality": str, "study_date": str, "sha256": str, "patient_id_hash": str, "patient_id": str,
            "first_seen": str,
        },
        pk="id", not_null={"identity", "kind", "first_seen"},
    )
    db.table("images").create_index(["identity"], unique=True)
    db.table("models").create(
        {"id": int, "sha256": str, "name": str, "card": str, "first_seen": str},
        pk="id", not_null={"sha256", "name", "card", "first_seen"},
    )
    db.table("models").create_index(["sha256"], unique=True)
    # what one logging call shares (time, model, workstation, OS user) is kept once, not per row:
    # narrower prediction rows are read and verified faster
    db.table("runs").create(
        {"id": int, "time": str, "model_id": int, "workstation": str, "os_user": str},
        pk="id", not_null={"time", "model_id"}, foreign_keys=[("model_id", "models", "id")],
    )
    db.table("runs").create_index(["time"])
    db.table("runs").create_index(["model_id", "time"])
    db.table("predictions").create(
        {
            "id": int, "run_id": int, "image_id": int, "frame": int, "label": str, "top_class": str,
            "probabilities": str, "abstain": int, "ood_score": float, "error": str,
        },
        pk="id", not_null={"run_id", "image_id", "probabilities", "abstain"},
        foreign_keys=[("run_id", "runs", "id"), ("image_id", "images", "id")],
    )
    db.table("predictions").create_index(["run_id"])
    db.table("reviews").create(
        {"id": int, "prediction_id": int, "verdict": str, "label": str, "comment": str, "reader": str, "time": str},
        pk="id", not_null={"prediction_id", "verdict", "label", "comment", "reader", "time"},
        foreign_keys=[("prediction_id", "predictions", "id")],
    )
    db.table("reviews").create_index(["prediction_id"])
    db.table("audit").create(
        {"id": int, "time": str, "action": str, "tbl": str, "first_id": int, "last_id": int, "width": int,
         "row_digests": bytes, "content_sha256": str, "prev_sha256": str, "row_sha256": str},
        pk="id", not_null={"time", "action", "tbl", "first_id", "last_id", "width", "row_digests", "content_sha256",
                           "prev_sha256", "row_sha256"},
    )
    db.table("audit").create_index(["tbl", "first_id"])
    # Append-only: zsmed never updates or deletes a row. The triggers stop accidents; the hash
    # chain (checked by `zsmed log verify`) catches anyone who drops them.
    _append_only(db, ("images", "models", "runs", "predictions", "reviews", "audit"))  # version 1's tables


def _append_only(db: sqlite_utils.Database, tables: tuple[str, ...]) -> None:
    for table in tables:
        for event in ("UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the zsmed case log is append-only'); END"
            )


def _v2(db: sqlite_utils.Database) -> None:
    db.table("models").add_column("signer", str)
    db.table("models").add_column("file_sha256", str)
    db.table("runs").add_column("signer", str)
    db.table("predictions").add_column("source", str)


def _v3(db: sqlite_utils.Database) -> None:
    db.table("embeddings").create(
        {"id": int, "prediction_id": int, "dim": int, "vector": bytes},
        pk="id", not_null={"prediction_id", "dim", "vector"}, foreign_keys=[("prediction_id", "predictions", "id")],
    )
    db.table("embeddings").create_index(["prediction_id"], unique=True)
    _append_only(db, ("embeddings",))


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("images, models, predictions, reviews, audit trail", _v1),
    ("bundle signer and file SHA-256 on models, signer on runs, source path on predictions", _v2),
    ("embeddings of images classified in the app, for the reviewed cases most alike", _v3),
)
SCHEMA_VERSION = len(MIGRATIONS)
