"""Every reference bundle still loads and gives its recorded outputs: old bundles stay readable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.runtime.conftest import reference_bundles
from zsmed.bundle.reference import synthetic_inputs
from zsmed.runtime.predict import load_predictor

BUNDLES = reference_bundles()


def _compare(got: dict, want: dict, tolerance: float, margin: float, what: str) -> None:
    assert set(got["probabilities"]) == set(want["probabilities"]), what
    for name, p in want["probabilities"].items():
        value = got["probabilities"][name]
        assert abs(value - p) <= tolerance, f"{what}: p({name}) {value} vs {p}"
    # The abstain decision is compared where the score is clearly on one side of the threshold.
    if abs(want["ood_score"] - 1.0) > margin:
        assert got["abstain"] == want["abstain"], what
        assert got["label"] == want["label"], what
    assert got["ood_score"] == pytest.approx(want["ood_score"], rel=1e-3, abs=1e-3), what


@pytest.mark.skipif(not BUNDLES, reason="no reference bundles")
@pytest.mark.parametrize("bundle_path", BUNDLES, ids=[p.stem for p in BUNDLES])
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_reference_bundle_gives_recorded_outputs(bundle_path: Path, backend: str, shared_data_optional) -> None:
    expected = json.loads(bundle_path.with_name(bundle_path.stem + ".expected.json").read_text())
    predictor = load_predictor(bundle_path, backend=backend)
    tol, margin = expected["tolerance_probability"], expected["ood_margin"]
    images = synthetic_inputs(predictor.preprocess.size)
    predictions = predictor.predict_images(list(images.values()), list(images))
    got = {p.source: p.to_dict() for p in predictions}
    assert set(expected["synthetic"]) <= set(got)
    # each result carries the embedding its OOD score measured (for similar cases), never in the JSON
    from zsmed.runtime.ood import ood_scores

    stats, threshold = predictor.bundle.ood_arrays(), float(predictor.bundle.ood["threshold"])
    for p in predictions:
        assert p.embedding is not None and p.embedding.shape == stats["mean"].shape and "embedding" not in got[p.source]
        score = float(ood_scores(p.embedding[None, :], stats)[0]) / threshold
        assert score == pytest.approx(p.ood_score, rel=1e-3, abs=1e-3)
    for name, want in expected["synthetic"].items():
        _compare(got[name], want, tol, margin, f"{bundle_path.name} {backend} {name}")
    # The blank and stripe images must never get a confident answer.
    for name in ("black", "white", "stripes_grey"):
        assert got[name]["abstain"] and got[name]["label"] is None
    if "dicom" in expected:
        from pydicom.data import get_testdata_file

        [pred] = predictor.predict_files([get_testdata_file("CT_small.dcm")])
        _compare(pred.to_dict(), expected["dicom"]["CT_small.dcm"], tol, margin, "CT_small.dcm")
    if shared_data_optional is not None and expected.get("shared_data"):
        rels = sorted(expected["shared_data"])
        preds = predictor.predict_files([shared_data_optional / r for r in rels])
        for rel, pred in zip(rels, preds, strict=True):
            _compare(pred.to_dict(), expected["shared_data"][rel], tol, margin, rel)


@pytest.mark.skipif(not BUNDLES, reason="no reference bundles")
def test_reference_bundles_are_small_and_fp32() -> None:
    for path in BUNDLES:
        assert path.stat().st_size <= 25_000_000, path
    from zsmed.runtime.bundle import read_bundle

    bundle = read_bundle(BUNDLES[0])
    assert b'element_type="f16"' not in bundle.files["model.xml"]  # declared fp32, really fp32
    assert np.isfinite(bundle.ood["threshold"])
