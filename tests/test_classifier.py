from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from zsmed.classifier import (
    LinearHead,
    load_classifier,
    make_classifier,
    read_card,
    save_classifier,
)
from zsmed.encoders import create_image_encoder
from zsmed.errors import CheckpointError


@pytest.fixture(scope="module")
def encoder():
    return create_image_encoder("efficientnet-lite0")


def test_linear_classifier_round_trips_through_model_file(tmp_path, encoder) -> None:
    rng = np.random.default_rng(0)
    head = LinearHead.from_arrays(rng.normal(size=(3, 1280)).astype(np.float32), np.array([0.1, 0, -0.1]),
                                  cosine=True, scale=10.0)
    clf = make_classifier(head, method="test", class_names=["a", "b", "c"], encoder=encoder.spec,
                          descriptions={"a": "first"})
    pixels = torch.from_numpy(rng.normal(size=(2, 3, 224, 224)).astype(np.float32))
    before = clf.predict_proba(pixels)
    assert before.shape == (2, 3)
    np.testing.assert_allclose(before.sum(1), 1.0, rtol=1e-5)
    path = save_classifier(clf, tmp_path / "m.zsm")
    again = load_classifier(path)
    np.testing.assert_allclose(again.predict_proba(pixels), before, atol=1e-6)
    assert again.class_names == ["a", "b", "c"]
    assert read_card(path).descriptions == {"a": "first"}


def test_newer_format_and_corrupt_files_are_refused(tmp_path, encoder) -> None:
    head = LinearHead(1280, 2)
    clf = make_classifier(head, method="test", class_names=["x", "y"], encoder=encoder.spec)
    path = save_classifier(clf, tmp_path / "m.zsm")
    with zipfile.ZipFile(path) as archive:
        card = json.loads(archive.read("model.json"))
        weights = archive.read("weights.safetensors")
    card["format_version"] = 99
    newer = tmp_path / "newer.zsm"
    with zipfile.ZipFile(newer, "w") as archive:
        archive.writestr("model.json", json.dumps(card))
        archive.writestr("weights.safetensors", weights)
    with pytest.raises(CheckpointError, match="newer"):
        load_classifier(newer)
    junk = tmp_path / "junk.zsm"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"junk\.zsm"):
        load_classifier(junk)
