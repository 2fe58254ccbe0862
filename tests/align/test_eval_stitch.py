"""``zsmed eval stitch`` on real chest films: a Lite0 classifier run on Lite2 features through maps
fitted on unlabelled anchors (24 Kermany films per class, split by patient)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import data_subset
from zsmed.cli.main import main


@pytest.fixture(scope="module")
def stitch_report(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("stitch")
    data = data_subset(shared_data / "cxr_kermany", root / "cxr", 24)
    out = root / "stitch.json"
    with pytest.MonkeyPatch.context() as patch:  # a cold feature cache: both encoders really run
        patch.setenv("ZSMED_CACHE_DIR", str(root / "cache"))
        code = main(["eval", "stitch", str(data), "--src", "efficientnet-lite0", "--tgt", "efficientnet-lite2",
                     "--anchors", "2", "8", "30", "500", "--methods", "procrustes,lstsq,affine", "--json", str(out)])
    assert code == 0
    return json.loads(out.read_text())


def _row(report: dict, method: str, anchors: int) -> dict:
    return next(r for r in report["stitching"] if r["method"] == method and r["anchors"] == anchors)


def test_report_describes_the_split_and_the_native_classifiers(stitch_report: dict) -> None:
    assert stitch_report["classes"] == ["BACTERIA", "NORMAL", "VIRUS"]
    assert stitch_report["n_train"] + stitch_report["n_test"] == 72
    # patients never straddle the halves, so neither half is empty and both native classifiers learn
    assert stitch_report["n_train"] >= 30 and stitch_report["n_test"] >= 20
    assert stitch_report["native_accuracy"] > 0.5 and stitch_report["target_native_accuracy"] > 0.5


def test_more_anchors_align_better_and_the_stitched_classifier_works(stitch_report: dict) -> None:
    for method in ("lstsq", "affine"):
        few, many = _row(stitch_report, method, 8), _row(stitch_report, method, 30)
        assert many["mean_cosine"] > few["mean_cosine"] > 0.3
        # Lite2 features fed straight to the Lite0 classifier would be meaningless (other dimension,
        # other basis); through the map the classifier keeps most of its native accuracy.
        assert many["relative_accuracy"] >= 0.8, many
        assert many["accuracy"] == pytest.approx(many["relative_accuracy"] * stitch_report["native_accuracy"])


def test_impossible_rows_say_why_instead_of_failing_the_run(stitch_report: dict) -> None:
    assert "at least 3 anchors" in _row(stitch_report, "affine", 2)["error"]
    too_many = _row(stitch_report, "lstsq", 500)
    assert "unlabelled training images available" in too_many["error"] and "accuracy" not in too_many
    assert "accuracy" in _row(stitch_report, "procrustes", 30)


def test_unknown_method_fails_before_any_encoding(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "stitch", str(shared_data / "cxr_kermany"), "--methods", "lstsq,magic"])
    assert code == 2 and "magic" in capsys.readouterr().err
