"""verify and stats on many rows (the 1,000,000-row figures are the bench's; marked slow here)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import dicom_test_files
from zsmed.store import open_case_log
from zsmed.store.bench import _bundles, fill, measure_cli


def _filled(path: Path, rows: int) -> None:
    fill(path, rows, dicom_test_files(), _bundles(), batch=5000)


def test_verify_and_stats_on_many_rows(log_env: Path) -> None:
    path = log_env / "many.sqlite"
    _filled(path, 30_000)
    with open_case_log(path, readonly=True) as log:
        start = time.perf_counter()
        result = log.verify()
        verify_s = time.perf_counter() - start
        start = time.perf_counter()
        stats = log.stats(by_month=True)
        stats_s = time.perf_counter() - start
    assert result.ok, result.message
    assert result.rows_checked > 30_000
    assert sum(s.predictions + s.errors for s in stats) == 30_000
    assert sum(s.reviewed for s in stats) == sum(sum(sum(r.values()) for r in s.confusion.values()) for s in stats)
    assert all(s.errors == pytest.approx((s.predictions + s.errors) / 50, abs=2) for s in stats)
    assert {s.model_name for s in stats} == {b.path.stem for b in _bundles()}
    assert verify_s < 10 and stats_s < 10  # 1,000,000 rows: docs/BENCHMARKS.md (bench log)


@pytest.mark.slow
def test_a_million_predictions_verify_and_stats_within_10_s_and_300_mb(log_env: Path) -> None:
    path = log_env / "million.sqlite"
    _filled(path, 1_000_000)
    for argv in (["log", "verify", "--log", str(path)], ["log", "stats", "--by", "month", "--log", str(path)]):
        figures = measure_cli(argv)
        assert figures["code"] == 0, figures
        assert figures["seconds"] <= 10, json.dumps(figures)
        assert figures["peak_rss_mb"] <= 300, json.dumps(figures)


@pytest.mark.slow
def test_bench_log_command(log_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.cli.main import main

    out = log_env / "bench.json"
    assert main(["bench", "log", "--json", str(out), "--rows", "20000", "--workdir", str(log_env / "work")]) == 0
    result = json.loads(out.read_text())
    assert result["concurrent"]["rows"] == 4000 and result["concurrent"]["verify_ok"]
    assert result["sigkill"]["all_committed_present"] and result["sigkill"]["integrity_check"] == "ok"
    assert result["verify"]["code"] == 0 and result["stats"]["code"] == 0
    similar = result["similar"]  # a search over as many reviewed cases as it reads: five found
    assert similar["code"] == 0 and similar["reviewed_with_embeddings"] == 20_000 and len(similar["stdout_tail"]) == 1
    capsys.readouterr()
