"""Predicted per-image attributes: the shipped Derm7pt 7-point predictor and the HAM10000 class
file that uses it, on real images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import data_subset
from zsmed.cli.main import main
from zsmed.errors import ConfigError
from zsmed.zeroshot.attribute_predictor import fit_attribute_predictor, load_attribute_predictor
from zsmed.zeroshot.calibration import harmonic
from zsmed.zeroshot.classdefs import load_class_definitions

REPO = Path(__file__).resolve().parents[2]
ATTRIBUTES = REPO / "resources" / "attributes"
HAM_7POINT = ATTRIBUTES / "ham10000_7point.yaml"


def _features(paths: list[Path]) -> np.ndarray:
    from zsmed.encoders import create_image_encoder
    from zsmed.features import FeatureCache, encode_files
    from zsmed.progress import run_job

    encoded = run_job(encode_files(paths, create_image_encoder("efficientnet-lite0"), FeatureCache()))
    assert [Path(p) for p in encoded.paths] == paths
    return np.asarray(encoded.features, dtype=np.float64)


def test_shipped_predictor_reads_the_7_point_criteria_off_dermoscopy(shared_data: Path) -> None:
    definitions = load_class_definitions(HAM_7POINT)
    predictor = definitions.load_attribute_predictor()
    assert predictor is not None and predictor.encoder == "efficientnet-lite0"
    assert predictor.names == definitions.attribute_names and len(predictor.names) == 18
    assert set(predictor.info["left_out_diagnoses"]) == {"dermatofibroma", "vascular lesion"}
    definitions.require(["nv", "mel", "bkl", "bcc", "akiec", "df", "vasc"], "both")
    # Derm7pt cases annotated with arborizing vessels (BCC) against nevi without: the predictor
    # must rank the vessel attribute higher on the former
    import csv

    with (shared_data / "derm7pt" / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    bcc = [shared_data / "derm7pt" / r["file"] for r in rows if r["vascular_structures"] == "arborizing"][:8]
    nev = [shared_data / "derm7pt" / r["file"] for r in rows
           if r["diagnosis_group"] == "NEV" and r["vascular_structures"] == "absent"][:8]
    paths = bcc + nev
    predicted = predictor.predict(_features(paths), ["BCC"] * len(bcc) + ["NEV"] * len(nev))
    arborizing = predictor.names.index("vessels_arborizing")
    assert predicted.shape == (len(paths), 18) and np.isfinite(predicted).all()
    assert predicted[: len(bcc), arborizing].mean() > predicted[len(bcc):, arborizing].mean() + 0.2


def test_predictor_round_trip_and_bad_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    features = rng.standard_normal((40, 12))
    annotations = (rng.random((40, 3)) > 0.5).astype(float)
    labels = np.repeat(["a", "b"], 20)
    predictor = fit_attribute_predictor(features, annotations, labels, ["p", "q", "r"], "enc", lam=0.5)
    loaded = load_attribute_predictor(predictor.save(tmp_path / "p.npz"))
    np.testing.assert_allclose(loaded.predict(features, labels), predictor.predict(features, labels), atol=1e-5)
    assert loaded.names == ["p", "q", "r"] and loaded.info["ridge_lambda"] == 0.5
    with pytest.raises(ConfigError, match="12-d features"):
        loaded.predict(features[:, :5], labels)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match=r"junk\.npz"):
        load_attribute_predictor(tmp_path / "junk.npz")


def test_class_file_predictor_errors(tmp_path: Path) -> None:
    text = HAM_7POINT.read_text()
    missing = tmp_path / "missing.yaml"
    missing.write_text(text)  # names derm7pt_7point_predictor.npz, absent beside this copy
    with pytest.raises(ConfigError, match="image_attribute_predictor: file not found"):
        load_class_definitions(missing)
    both = tmp_path / "both.yaml"
    import yaml

    data = yaml.safe_load(text)
    data["image_attributes"] = yaml.safe_load((ATTRIBUTES / "derm7pt.yaml").read_text())["image_attributes"]
    both.write_text(yaml.safe_dump(data))
    shutil.copy(ATTRIBUTES / "derm7pt_7point_predictor.npz", tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        load_class_definitions(both)
    other = tmp_path / "other.yaml"
    other.write_text(text.replace("- vessels_within_regression\n", "- vessels_within_regression\n- milia_like_cysts\n"))
    with pytest.raises(ConfigError, match="predicts other attributes"):
        load_class_definitions(other).load_attribute_predictor()


def test_eval_and_build_use_predicted_attributes_of_seen_images(shared_data: Path, tmp_path: Path) -> None:
    from zsmed.classifier import load_classifier
    from zsmed.zeroshot.evaluate import predicted_image_attributes

    base = data_subset(shared_data / "ham10000_fs" / "base", tmp_path / "base", 12)
    novel = data_subset(shared_data / "ham10000_fs" / "novel_dev", tmp_path / "novel", 5)
    out = tmp_path / "zs.json"
    code = main(["eval", "zeroshot", str(base), str(novel), "--classes", str(HAM_7POINT), "--unseen", "akiec,df,vasc",
                 "--semantics", "attributes", "--methods", "prototypes", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["image_attribute_basis"] == report["n_train"] > 0  # one basis row per seen training image
    assert report["image_attribute_source"] == "predicted from the image features by derm7pt_7point_predictor.npz"
    cal = report["methods"]["prototypes"]["calibrated"]
    assert cal["H"] == pytest.approx(harmonic(cal["seen_acc"], cal["unseen_acc"]))
    model = tmp_path / "zs.zsm"
    assert main(["build", "zeroshot", "--seen", str(base), "--classes", str(HAM_7POINT), "--unseen",
                 "akiec,df,vasc", "--semantics", "attributes", "--out", str(model)]) == 0
    card = load_classifier(model).card
    assert card.extra["image_attribute_basis"] == 48 and list(card.class_names[-3:]) == ["akiec", "df", "vasc"]
    with pytest.raises(ConfigError, match="trained on efficientnet-lite0 features, not efficientnet-lite2"):
        predicted_image_attributes(load_class_definitions(HAM_7POINT), ["nv"], np.zeros((1, 1280)),
                                   "efficientnet-lite2")
