"""The paired benchmark's ensembles and paired differences: `zsmed eval fewshot --ensemble NAME=A+B`,
`--paired-against METHOD`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import data_subset


class _Fixed:
    """A method that answers the same probabilities for every query and counts its calls."""

    def __init__(self, name: str, probs: list[float]) -> None:
        self.name = name
        self.probs = np.asarray(probs)
        self.calls = 0

    def predict(self, episode):  # type: ignore[no-untyped-def]
        self.calls += 1
        return np.tile(self.probs, (len(episode.query), 1))


def _episodes(n: int):  # type: ignore[no-untyped-def]
    from zsmed.fewshot.sampler import Episode

    return [Episode(("a", "b"), np.array([[2 * i], [2 * i + 1]]), np.array([100 + i, 200 + i]), np.array([0, 1]))
            for i in range(n)]


def test_ensemble_averages_its_members_and_each_member_runs_once_per_episode() -> None:
    from zsmed.fewshot.evaluate import Ensemble, KeptPredictions, run_benchmark
    from zsmed.progress import run_job

    sure, unsure = _Fixed("sure", [0.9, 0.1]), _Fixed("unsure", [0.3, 0.7])
    kept_sure, kept_unsure = KeptPredictions(sure), KeptPredictions(unsure)
    both = Ensemble("both", [kept_sure, kept_unsure])
    episodes = _episodes(4)
    results = run_job(run_benchmark([kept_sure, kept_unsure, both], {1: episodes}))
    assert [r.method for r in results] == ["sure", "unsure", "both"]
    assert np.allclose(both.predict(episodes[0]), [[0.6, 0.4], [0.6, 0.4]])
    # Half the queries are class 0: every method gets 50 %, but each member ran 4 times, not 8.
    assert [r.accuracy for r in results] == [0.5, 0.5, 0.5]
    assert sure.calls == 4 and unsure.calls == 4
    with pytest.raises(ValueError):
        Ensemble("alone", [kept_sure])


@pytest.fixture
def novel_subset(tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Six real HAM10000 novel images per class, with a feature cache of the test's own."""
    monkeypatch.setenv("ZSMED_CACHE_DIR", str(tmp_path / "cache"))
    return data_subset(shared_data / "ham10000_fs" / "novel_dev", tmp_path / "novel", per_class=6)


def _baselines_cli(folder: Path, classes: tuple[str, str], shots: list[str], episodes: int) -> list[str]:
    return ["eval", "fewshot", str(folder), "--classes", *classes, "--shots", *shots, "--episodes", str(episodes),
            "--queries", "3", "--methods", "protonet,linear"]


def test_eval_fewshot_ensemble_option_on_real_images(tmp_path: Path, novel_subset: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.cli.main import main

    out = tmp_path / "e.json"
    base = _baselines_cli(novel_subset, ("akiec", "df"), ["1"], 6)
    assert main([*base, "--ensemble", "both=protonet+linear", "--json", str(out)]) == 0
    results = {r["method"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == {"protonet", "linear", "both"} and results["both"]["episodes"] == 6
    assert 0.0 <= results["both"]["accuracy"] <= 1.0
    capsys.readouterr()
    # A member that is not evaluated, or a spec without two members: one line naming the problem.
    assert main([*base, "--ensemble", "both=protonet+sgps"]) != 0
    err = capsys.readouterr().err
    assert "sgps not evaluated in this run" in err and "Traceback" not in err
    assert main([*base, "--ensemble", "protonet"]) != 0
    assert "--ensemble wants NAME=A+B" in capsys.readouterr().err
    # No episodes, or every class filtered out: one line, never a table of nan
    assert main(_baselines_cli(novel_subset, ("akiec", "df"), ["1"], 0)) == 2
    assert "--episodes must be at least 1, not 0" in capsys.readouterr().err
    assert main([*base, "--min-images", "100000"]) == 2
    assert "no class is left after --exclude-classes / --min-images 100000" in capsys.readouterr().err


def test_paired_difference_is_the_mean_per_episode_difference_and_tighter_than_two_cis() -> None:
    from zsmed.fewshot.evaluate import MethodResult, add_paired_differences, format_table, mean_ci95

    rng = np.random.default_rng(0)
    hardness = rng.uniform(0.5, 1.0, 200)  # episodes differ a lot; the two methods differ a little
    gain = rng.normal(0.02, 0.01, 200)

    def result(name: str, accs: np.ndarray, shots: int = 1) -> MethodResult:
        mean, ci = mean_ci95(accs)
        return MethodResult(name, shots, len(accs), mean, ci, 0.5, 0.0, list(accs))

    ref, new = result("ref", hardness), result("new", hardness + gain)
    other_k = result("ref", hardness[:50], shots=5)
    add_paired_differences([ref, new, other_k], "ref")
    paired = new.extra["paired"]
    assert paired["against"] == "ref" and paired["delta"] == pytest.approx(gain.mean())
    # the two CIs overlap, the paired one excludes 0
    assert new.accuracy - new.ci95 < ref.accuracy + ref.ci95
    assert paired["delta"] - paired["ci95"] > 0 and paired["ci95"] < new.ci95 / 5
    assert "paired" not in ref.extra and "paired" not in other_k.extra
    table = format_table([ref, new])
    assert "vs ref" in table.splitlines()[0] and f"{100 * gain.mean():+.1f} ±" in table.splitlines()[2]


def test_eval_fewshot_paired_against_on_real_images(tmp_path: Path, novel_subset: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.cli.main import main

    out = tmp_path / "p.json"
    base = _baselines_cli(novel_subset, ("akiec", "vasc"), ["1", "2"], 8)
    assert main([*base, "--paired-against", "protonet", "--json", str(out)]) == 0
    assert "vs protonet" in capsys.readouterr().out
    results = json.loads(out.read_text())["results"]
    for r in results:
        if r["method"] == "protonet":
            assert "paired" not in r.get("extra", {})
        else:
            same_k = next(p for p in results if p["method"] == "protonet" and p["shots"] == r["shots"])
            paired = r["extra"]["paired"]
            assert paired["against"] == "protonet"
            assert paired["delta"] == pytest.approx(r["accuracy"] - same_k["accuracy"])
    # an unevaluated reference is refused before anything is encoded: one line
    monkeypatch.setenv("ZSMED_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert main([*base, "--paired-against", "sgps"]) != 0
    err = capsys.readouterr().err
    assert "--paired-against 'sgps' is not an evaluated method (protonet, linear)" in err and "Traceback" not in err
    assert not (tmp_path / "empty-cache").exists()
    assert main([*base, "--ensemble", "both=protonet+linear", "--paired-against", "both"]) == 0
