"""The reviewed cases most alike (``CaseLog.similar``, ``zsmed log similar``): embeddings kept where asked, the
same model's reviewed cases ranked by cosine, other images only; audited as every other row."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import REFERENCE, fake_results, photos
from tests.store.test_integrity import _tamper, _verify
from zsmed.cli.main import main
from zsmed.errors import CaseLogError
from zsmed.runtime.bundle import Bundle, read_bundle
from zsmed.store import open_case_log

DIM = 8


def _unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(values)] = values
    return vector


def _with_embeddings(sources: list[Path], vectors: list[np.ndarray], seed: int = 0) -> list:
    results = fake_results(sources, seed=seed, abstain_every=0)
    for result, vector in zip(results, vectors, strict=True):
        result.embedding = vector
    return results


@pytest.fixture()
def alike(log_env: Path, bundle: Bundle) -> tuple[Path, list[int]]:
    """Five photos: four reviewed, their embeddings at known angles from the fifth's (not reviewed)."""
    path = log_env / "log.sqlite"
    files = photos(5)
    vectors = [_unit(1, 0), _unit(1, 1), _unit(0, 1), _unit(-1, 0.2), _unit(3, 0.3)]  # the last is the query
    with open_case_log(path) as log:
        ids = log.record_predictions(bundle, _with_embeddings(files, vectors), keep_embeddings=True)
        for prediction_id, label in zip(ids[:4], ("mel", "mel", "nv", "bkl"), strict=True):
            log.review(prediction_id, correct_to=label)
    return path, ids


def test_the_same_models_reviewed_cases_most_alike_first(alike: tuple[Path, list[int]], bundle: Bundle) -> None:
    path, ids = alike
    with open_case_log(path) as log:
        found = log.similar(ids[4], k=3)
        assert [case.prediction_id for case in found] == [ids[0], ids[1], ids[2]]
        assert [case.label for case in found] == ["mel", "mel", "nv"]
        assert found[0].similarity == pytest.approx(3 / np.hypot(3, 0.3), abs=1e-3)  # float16, normalised
        assert found[0].verdict in ("confirmed", "corrected") and found[0].reader
        assert found[0].source == str(photos(5)[0])
        assert [case.prediction_id for case in log.similar(ids[4], k=10)][-1] == ids[3]  # the least alike last
        assert log.similar(ids[4], k=0) == []
        # the image itself read again, and reviewed: not its own "similar case"
        again = log.record_predictions(bundle, _with_embeddings([photos(5)[4]], [_unit(3, 0.3)], seed=1),
                                       keep_embeddings=True)
        log.review(again[0], correct_to="bcc")
        assert again[0] not in [case.prediction_id for case in log.similar(ids[4], k=10)]
        # another model's reviewed cases are not this model's
        other = read_bundle(REFERENCE / "sgps_ham4_lite0_v1.zsmb")
        theirs = log.record_predictions(other, _with_embeddings([photos(6)[5]], [_unit(3, 0.3)]),
                                        keep_embeddings=True)
        log.review(theirs[0], correct_to="nv")
        assert theirs[0] not in [case.prediction_id for case in log.similar(ids[4], k=10)]
        assert [case.prediction_id for case in log.similar(theirs[0])] == []
        assert log.verify().ok


def test_without_embeddings_kept_there_is_nothing_to_compare(log_env: Path, bundle: Bundle) -> None:
    with open_case_log(log_env / "log.sqlite") as log:
        ids = log.record_predictions(bundle, _with_embeddings(photos(2), [_unit(1), _unit(1)]))  # not asked
        log.review(ids[0], correct_to="mel")
        assert log.similar(ids[1]) == [] and log.similar(ids[0]) == []
        assert log.db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 0


def test_embeddings_are_audited_like_every_row(alike: tuple[Path, list[int]]) -> None:
    path, ids = alike
    _tamper(path, "UPDATE embeddings SET vector = zeroblob(10) WHERE id = 1")  # the wrong size: said, not a crash
    with open_case_log(path, readonly=True) as log, pytest.raises(CaseLogError, match=r"embedding .* damaged"):
        log.similar(ids[4])
    _tamper(path, "UPDATE embeddings SET vector = zeroblob(16) WHERE id = 2")
    result = _verify(path)
    assert not result.ok and result.first_broken_table == "embeddings" and result.first_broken == 1
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE embeddings")
    conn.commit()
    conn.close()
    result = _verify(path)
    assert not result.ok and "the embeddings table is missing" in result.message


def test_zsmed_log_similar(alike: tuple[Path, list[int]], capsys: pytest.CaptureFixture[str]) -> None:
    path, ids = alike
    assert main(["log", "similar", str(ids[4]), "-k", "2", "--log", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and re.match(rf"{ids[0]}\t0\.995\tmel\t(confirmed|corrected) by ", lines[0])
    assert lines[0].endswith(photos(5)[0].name)
    assert main(["log", "similar", str(ids[4]), "--json", "--log", str(path)]) == 0
    cases = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [c["label"] for c in cases] == ["mel", "mel", "nv", "bkl"] and cases[0]["similarity"] > 0.99
    assert main(["log", "similar", "999", "--log", str(path)]) != 0
    assert "no prediction 999" in capsys.readouterr().err
