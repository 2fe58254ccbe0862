"""The case log through the library (the calls the CLI and the desktop use), on real files."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import sqlite3
import stat
import warnings
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pydicom
import pytest

from tests.conftest import dicom_test_file, dicom_test_files
from tests.store.conftest import CLASSES, ct_file, fake_results, photos
from zsmed.errors import CaseLogError
from zsmed.runtime.bundle import Bundle
from zsmed.site import SiteConfig
from zsmed.store import SCHEMA_VERSION, open_case_log
from zsmed.store.caselog import ABSTAIN


def test_real_predictor_results_are_logged_with_image_identity(log_env: Path, bundle_path: Path) -> None:
    """The runtime's own results (a photo, a CT that makes the dermoscopy model abstain, an
    unreadable file) go into the log as they came out, with the DICOM header's identity."""
    from zsmed.runtime.predict import load_predictor

    broken = log_env / "broken.dcm"
    broken.write_bytes(b"DICM" * 10)
    sources = [*photos(2), ct_file(), broken]
    predictor = load_predictor(bundle_path, backend="onnxruntime")
    results = predictor.predict_files(sources)
    assert results[2].abstain and results[3].error
    with open_case_log(log_env / "log.sqlite") as log:
        ids = log.record_predictions(predictor.bundle, results, workstation="ws-1", user="dr-a")
        assert ids == [1, 2, 3, 4]
        records = [log.get(i) for i in ids]
    photo, ct, bad = records[0], records[2], records[3]
    assert photo.image_kind == "photo" and photo.sop_uid is None
    assert photo.image_sha256 == hashlib.sha256(sources[0].read_bytes()).hexdigest()
    assert photo.label == results[0].label and photo.probabilities == results[0].probabilities
    assert list(photo.probabilities) == CLASSES and photo.class_names == CLASSES
    assert photo.model_sha256 == predictor.bundle.bundle_id and photo.model_name == "ham4_protonet_lite0_v1"
    assert (photo.workstation, photo.user, photo.source) == ("ws-1", "dr-a", str(sources[0]))
    header = pydicom.dcmread(ct_file(), stop_before_pixels=True)
    assert (ct.study_uid, ct.series_uid, ct.sop_uid) == (header.StudyInstanceUID, header.SeriesInstanceUID,
                                                         header.SOPInstanceUID)
    assert (ct.modality, ct.study_date) == ("CT", header.StudyDate)
    assert ct.abstain and ct.label is None and ct.ood_score == results[2].ood_score
    assert ct.ood_score is not None and ct.ood_score > 1.0
    assert ct.top_class in CLASSES
    assert bad.error == results[3].error and not bad.probabilities
    assert datetime.fromisoformat(photo.time).tzinfo is not None


def test_one_image_seen_twice_is_one_image_row(log_env: Path, bundle: Bundle) -> None:
    sources = photos(3)
    with open_case_log(log_env / "log.sqlite") as log:
        log.record_predictions(bundle, fake_results(sources))
        log.record_predictions(bundle, fake_results([sources[0], ct_file(), ct_file()]))
        db = sqlite3.connect(log.path)
        assert db.execute("SELECT count(*) FROM images").fetchone()[0] == 4
        assert db.execute("SELECT count(*) FROM predictions").fetchone()[0] == 6
        assert db.execute("SELECT count(*) FROM models").fetchone()[0] == 1
        assert [m.sha256 for m in log.models()] == [bundle.bundle_id]
        assert log.models()[0].card["class_names"] == CLASSES
        assert log.models()[0].file_sha256 == hashlib.sha256(Path(bundle.path).read_bytes()).hexdigest()


def test_the_bundle_signer_is_recorded(log_env: Path, bundle_path: Path) -> None:
    from tests.runtime.test_bad_input import _rebuild
    from zsmed.runtime import format as fmt
    from zsmed.runtime.bundle import read_bundle

    private, public = fmt.generate_keypair(log_env / "site")
    signed_path = _rebuild(bundle_path, log_env / "signed.zsmb", sign_key=private)
    signed = read_bundle(signed_path, require_signature=True, trusted_keys=[public])
    unchecked = read_bundle(bundle_path)
    assert signed.signed_by
    with open_case_log(log_env / "log.sqlite") as log:
        (a,) = log.record_predictions(signed, fake_results(photos(1)))
        (b,) = log.record_predictions(unchecked, fake_results(photos(1)))
        assert log.get(a).signer == signed.signed_by and log.get(b).signer is None
        by_id = {m.sha256: m for m in log.models()}
        assert by_id[signed.bundle_id].signer == signed.signed_by


def test_reviews_and_stats_give_agreement_and_confusion(log_env: Path, bundle: Bundle) -> None:
    results = fake_results(photos(6), abstain_every=0)
    results[5].abstain, results[5].label = True, None
    with open_case_log(log_env / "log.sqlite", site=SiteConfig(reader_name="Dr Who")) as log:
        ids = log.record_predictions(bundle, results)
        first = log.review(ids[0], confirm=True, comment="as expected")
        other = next(c for c in CLASSES if c != results[1].label)
        log.review(ids[1], correct_to=other, reader="dr-b")
        log.review(ids[2], correct_to=results[2].label)  # the reader's class is the model's: confirmed
        log.review(ids[3], confirm=True)
        log.review(ids[3], correct_to=other if other != results[3].label else CLASSES[0])  # latest counts
        log.review(ids[5], correct_to="mel")
        rec0, rec1, rec2 = log.get(ids[0]), log.get(ids[1]), log.get(ids[2])
        assert rec0.review is not None and rec0.review.id == first
        assert (rec0.review.verdict, rec0.review.label, rec0.review.reader) == ("confirmed", results[0].label, "Dr Who")
        assert rec0.review.comment == "as expected"
        assert rec1.review is not None and (rec1.review.verdict, rec1.review.label) == ("corrected", other)
        assert rec1.review.reader == "dr-b"
        assert rec2.review is not None and rec2.review.verdict == "confirmed"
        rec3 = log.get(ids[3])
        assert rec3.review is not None and rec3.review.verdict == "corrected"
        (stats,) = log.stats()
        assert (stats.predictions, stats.reviewed, stats.abstained, stats.errors) == (6, 5, 1, 0)
        assert stats.agreed == 2 and stats.agreement == pytest.approx(2 / 4)
        assert stats.abstain_rate == pytest.approx(1 / 6)
        assert stats.confusion[ABSTAIN] == {"mel": 1}
        assert sum(sum(row.values()) for row in stats.confusion.values()) == 5
        assert stats.confusion[str(results[1].label)][other] >= 1
        (monthly,) = log.stats(by_month=True)
        assert monthly.month == datetime.now(timezone.utc).strftime("%Y-%m")
        assert monthly.agreed == stats.agreed


def test_review_refuses_what_cannot_be_reviewed(log_env: Path, bundle: Bundle) -> None:
    from zsmed.runtime.predict import Prediction

    results = fake_results(photos(2), abstain_every=2)
    results.append(Prediction(source=str(log_env / "gone.png"), error="file not found"))
    with open_case_log(log_env / "log.sqlite") as log:
        ok, abstained, failed = log.record_predictions(bundle, results)
        with pytest.raises(CaseLogError, match="no prediction 99") as missing:
            log.review(99, confirm=True)
        assert str(log.path) in str(missing.value) and "\n" not in str(missing.value)
        with pytest.raises(CaseLogError, match=r"'akiec' is not a class of model .*nv, mel, bkl, bcc"):
            log.review(ok, correct_to="akiec")
        with pytest.raises(CaseLogError, match="abstained"):
            log.review(abstained, confirm=True)
        with pytest.raises(CaseLogError, match="could not read"):
            log.review(failed, correct_to="nv")
        with pytest.raises(CaseLogError, match="either confirms"):
            log.review(ok, confirm=True, correct_to="nv")
        with pytest.raises(CaseLogError, match="either confirms"):
            log.review(ok)
        assert log.get(abstained).review is None
        assert log.review(abstained, correct_to="bcc") > 0
        (stats,) = log.stats()
        assert stats.errors == 1 and stats.predictions == 2


def test_list_filters(log_env: Path, bundle: Bundle) -> None:
    results = fake_results(photos(10), abstain_every=3)
    with open_case_log(log_env / "log.sqlite") as log:
        ids = log.record_predictions(bundle, results)
        log.review(ids[0], confirm=True)
        everything = log.list_predictions()
        assert [r.id for r in everything] == ids
        abstained = [i for i, r in zip(ids, results, strict=True) if r.abstain]
        assert [r.id for r in log.list_predictions(abstained=True)] == abstained
        assert [r.id for r in log.list_predictions(unreviewed=True)] == ids[1:]
        assert [r.id for r in log.list_predictions(model="ham4_protonet_lite0_v1", limit=3)] == ids[:3]
        assert [r.id for r in log.list_predictions(model=bundle.bundle_id[:12], limit=2, offset=8)] == ids[8:]
        assert log.list_predictions(model="other") == []
        assert [r.id for r in log.list_predictions(newest_first=True, limit=2)] == ids[::-1][:2]
        today = datetime.now(timezone.utc).date()
        assert len(log.list_predictions(since=today)) == 10
        assert len(log.list_predictions(since=today.isoformat(), until=today.isoformat())) == 10
        assert log.list_predictions(since=today + timedelta(days=1)) == []
        assert log.list_predictions(until=date(2000, 1, 1)) == []
        with pytest.raises(CaseLogError, match="--since must be a date"):
            log.list_predictions(since="yesterday")


def test_export_csv_and_json(log_env: Path, bundle: Bundle) -> None:
    results = fake_results([*photos(3), ct_file()])
    with open_case_log(log_env / "log.sqlite") as log:
        ids = log.record_predictions(bundle, results)
        log.review(ids[1], correct_to="bcc", comment="=HYPERLINK(\"x\")")
        buffer = io.StringIO()
        assert log.export_csv(buffer) == 4
        rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
        assert [int(r["id"]) for r in rows] == ids
        assert rows[1]["review_label"] == "bcc" and rows[1]["review_comment"].startswith("'=")
        assert json.loads(rows[0]["probabilities"]) == results[0].probabilities
        assert rows[3]["modality"] == "CT" and rows[3]["sop_uid"]
        out = log_env / "e.json"
        assert log.export_json(out, abstained=True) == sum(r.abstain for r in results)
        data = json.loads(out.read_text(encoding="utf-8"))
        assert all(d["abstain"] for d in data) and {d["id"] for d in data} < set(ids)
        empty = log_env / "none.json"
        assert log.export_json(empty, model="nothing") == 0 and json.loads(empty.read_text()) == []


def test_patient_id_is_a_keyed_hash_with_the_secret_outside(log_env: Path, bundle: Bundle) -> None:
    from zsmed.store.identity import secret_file

    mr = dicom_test_file("MR_small.dcm")
    patient_id = str(pydicom.dcmread(mr, stop_before_pixels=True).PatientID)
    assert patient_id
    with open_case_log(log_env / "log.sqlite") as log:
        log.record_predictions(bundle, fake_results([mr]))
    secret_path = secret_file()
    assert secret_path.parent == log_env.parent / "data"
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    secret = bytes.fromhex(secret_path.read_text().strip())
    db = sqlite3.connect(log_env / "log.sqlite")
    stored_hash, plain = db.execute("SELECT patient_id_hash, patient_id FROM images").fetchone()
    assert plain is None
    assert stored_hash == hmac.new(secret, patient_id.encode(), hashlib.sha256).hexdigest()
    assert stored_hash != hashlib.sha256(patient_id.encode()).hexdigest()
    dump = "\n".join(db.iterdump())
    assert secret.hex() not in dump and patient_id not in dump
    with open_case_log(log_env / "opt-in.sqlite", site=SiteConfig(store_patient_id=True)) as log:
        log.record_predictions(bundle, fake_results([mr]))
    row = sqlite3.connect(log_env / "opt-in.sqlite").execute("SELECT patient_id_hash, patient_id FROM images")
    assert row.fetchone() == (stored_hash, patient_id)  # same site secret: same hash


def _header(path: Path) -> pydicom.Dataset | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        return None


def test_no_patient_name_or_birth_date_in_any_column(log_env: Path, bundle: Bundle) -> None:
    """Every pydicom test file that carries a patient name or birth date is logged (predictions,
    reviews); then every column of every table is scanned for them."""
    carriers = []
    names: set[str] = set()
    births: set[str] = set()
    ids_plain: set[str] = set()
    for path in dicom_test_files():
        ds = _header(path)
        if ds is None or not (ds.get("PatientName") or ds.get("PatientBirthDate")):
            continue
        carriers.append(path)
        name = str(ds.get("PatientName") or "")
        if name:
            variants = {name.lower(), " ".join(name.replace("^", " ").split()).lower()}
            names.update(v for v in variants if len(v) >= 4)
        if ds.get("PatientBirthDate") and str(ds.PatientBirthDate) != str(ds.get("StudyDate", "")):
            births.add(str(ds.PatientBirthDate))  # (one file has placeholder dates, birth = study)
        if ds.get("PatientID") and len(str(ds.PatientID)) >= 6:
            ids_plain.add(str(ds.PatientID).lower())
    assert len(carriers) >= 20 and births and names
    with open_case_log(log_env / "log.sqlite", site=SiteConfig(reader_name="reader")) as log:
        ids = log.record_predictions(bundle, fake_results(carriers))
        for pid in ids[:5]:
            record = log.get(pid)
            if record.label:
                log.review(pid, confirm=True, comment="ok")
        assert log.verify().ok
    db = sqlite3.connect(log_env / "log.sqlite")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert {"images", "models", "predictions", "reviews", "audit"} <= set(tables)
    cells = 0
    for table in tables:
        columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        for row in db.execute(f"SELECT * FROM {table}"):
            for column, value in zip(columns, row, strict=True):
                if value is None or isinstance(value, bytes):
                    continue
                text = str(value).lower()
                cells += 1
                assert not any(n in text for n in names), (table, column, value)
                assert text not in ids_plain, (table, column, value)
                hashed = column.endswith(("uid", "sha256", "hash", "digests")) or column == "identity"
                if not hashed:
                    assert not any(b in text for b in births), (table, column, value)
                else:
                    assert text not in births
    assert cells > 1000


def test_opening_errors_name_the_file(log_env: Path) -> None:
    folder = log_env / "a-folder"
    folder.mkdir()
    with pytest.raises(CaseLogError, match="is a folder") as exc:
        open_case_log(folder)
    assert str(folder) in str(exc.value)
    with pytest.raises(CaseLogError, match="no case log here"):
        open_case_log(log_env / "absent.sqlite", readonly=True)
    assert not (log_env / "absent.sqlite").exists()
    created = open_case_log(log_env / "deep" / "er" / "log.sqlite")
    created.close()
    assert created.path.is_file()


def test_corrupted_file_is_refused_and_kept(log_env: Path, bundle: Bundle) -> None:
    path = log_env / "log.sqlite"
    with open_case_log(path) as log:
        log.record_predictions(bundle, fake_results(photos(2)))
    good = path.read_bytes()
    garbage = log_env / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all\n" * 200)
    before = garbage.read_bytes()
    with pytest.raises(CaseLogError, match=r"restore a backup .* --log") as exc:
        open_case_log(garbage)
    assert str(garbage) in str(exc.value) and "\n" not in str(exc.value)
    assert garbage.read_bytes() == before  # never re-created over the old one
    # a log whose pages were overwritten in the middle: opens (the header is fine) but cannot be used
    damaged = log_env / "damaged.sqlite"
    damaged.write_bytes(good[:8192] + b"\xff" * (len(good) - 8192))
    damaged_before = damaged.read_bytes()
    with pytest.raises(CaseLogError, match=r"restore a backup|damaged"), open_case_log(damaged) as log:
        log.list_predictions()
        raise AssertionError("a damaged log must not list")
    assert damaged.read_bytes() == damaged_before


def test_other_programs_database_and_newer_version_are_refused(log_env: Path) -> None:
    other = log_env / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE things (x)")
    conn.commit()
    conn.close()
    with pytest.raises(CaseLogError, match="not a zsmed case log"):
        open_case_log(other)
    path = log_env / "newer.sqlite"
    open_case_log(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.commit()
    conn.close()
    with pytest.raises(CaseLogError, match=rf"newer zsmed \(case-log version {SCHEMA_VERSION + 3}\).*"
                                           rf"up to version {SCHEMA_VERSION}") as exc:
        open_case_log(path)
    assert str(path) in str(exc.value)
    with pytest.raises(CaseLogError, match="newer zsmed"):
        open_case_log(path, readonly=True)


def test_locked_database_waits_then_names_the_file(log_env: Path, bundle: Bundle) -> None:
    import time

    path = log_env / "log.sqlite"
    open_case_log(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        with open_case_log(path, timeout=0.5) as log:
            start = time.monotonic()
            with pytest.raises(CaseLogError, match="in use by another program") as exc:
                log.record_predictions(bundle, fake_results(photos(1)))
            waited = time.monotonic() - start
            assert 0.4 <= waited < 5
            assert str(path) in str(exc.value) and "\n" not in str(exc.value)
            assert log.list_predictions() == []  # readers are not blocked by a writer (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with open_case_log(path) as log:
        assert log.record_predictions(bundle, fake_results(photos(1))) == [1]


def test_backup_is_a_consistent_single_file(log_env: Path, bundle: Bundle) -> None:
    path = log_env / "log.sqlite"
    with open_case_log(path) as log:
        ids = log.record_predictions(bundle, fake_results(photos(4)))
        log.review(ids[0], confirm=True) if log.get(ids[0]).label else log.review(ids[0], correct_to="nv")
        copy = log.backup(log_env / "backup.sqlite")
        with pytest.raises(CaseLogError, match="exists already"):
            log.backup(copy)
        in_folder = log.backup(log_env)
    assert in_folder.parent == log_env and in_folder.name.startswith("log-")
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with open_case_log(copy, readonly=True) as restored:
        assert [r.id for r in restored.list_predictions()] == ids
        assert restored.verify().ok
        with pytest.raises(CaseLogError, match="read-only"):
            restored.review(ids[1], correct_to="nv")


def test_the_store_never_imports_torch(log_env: Path, bundle_path: Path) -> None:
    import subprocess
    import sys

    code = f"""
import sys
from zsmed.runtime.bundle import read_bundle
from zsmed.runtime.predict import Prediction
from zsmed.store import open_case_log
with open_case_log({str(log_env / 'log.sqlite')!r}) as log:
    log.record_predictions(read_bundle({str(bundle_path)!r}), [Prediction(source={str(ct_file())!r})])
    log.stats(); log.verify()
print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_relative_sources_are_kept_as_absolute_paths(log_env: Path, bundle: Bundle,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    photo = photos(1)[0]
    monkeypatch.chdir(photo.parent)
    results = fake_results([photo.name, "image 0"])
    with open_case_log(log_env / "log.sqlite") as log:
        ids = log.record_predictions(bundle, results)
        assert log.get(ids[0]).source == str(photo.absolute())
        assert log.get(ids[1]).source == "image 0"  # an in-memory image's name stays a name
