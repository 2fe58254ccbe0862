"""Crafted ``.zsm`` model files: refused with one message, within limits, before any head module
is imported, any local path opened or any large tensor allocated."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import assert_within_limits, run_guarded

torch = pytest.importorskip("torch")


def _card(**changes: Any) -> dict[str, Any]:
    from zsmed.classifier import ClassifierCard, LinearHead
    from zsmed.encoders.base import EncoderSpec
    from zsmed.preprocess import PreprocessConfig

    head = LinearHead(1280, 4)
    card = ClassifierCard(method="fewshot", class_names=("nv", "mel", "bkl", "bcc"),
                          encoder=EncoderSpec("efficientnet-lite0", "image", 1280, preprocess=PreprocessConfig()),
                          preprocess=PreprocessConfig(), head_type="linear", head_module="zsmed.classifier",
                          head_config=head.config()).to_dict()
    card.update(changes)
    return card


def _weights(in_dim: int = 1280, n_classes: int = 4) -> bytes:
    from safetensors.torch import save

    return save({"head.weight": torch.zeros(n_classes, in_dim), "head.bias": torch.zeros(n_classes)})


def _model_file(path: Path, card: dict[str, Any], weights: bytes | int | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.json", json.dumps(card))
        if isinstance(weights, int):  # that many bytes of zeros, written in chunks
            with archive.open("weights.safetensors", "w", force_zip64=True) as out:
                for _ in range(weights >> 20):
                    out.write(bytes(1 << 20))
        else:
            archive.writestr("weights.safetensors", weights if weights is not None else _weights())
    return path


def test_a_genuine_model_file_loads(tmp_path: Path) -> None:
    from zsmed.classifier import load_classifier

    classifier = load_classifier(_model_file(tmp_path / "ok.zsm", _card()))
    assert classifier.class_names == ["nv", "mel", "bkl", "bcc"]


def test_a_member_inflating_to_gigabytes_is_refused_before_inflating(tmp_path: Path) -> None:
    model = _model_file(tmp_path / "big.zsm", _card(), weights=600 << 20)
    assert model.stat().st_size < 5 << 20
    result = run_guarded(f"""
        from zsmed.classifier import load_classifier
        from zsmed.errors import CheckpointError
        try:
            load_classifier({str(model)!r})
        except CheckpointError as exc:
            print(exc)
    """)
    assert_within_limits(result)
    assert "model file member weights.safetensors is implausibly large (629145600 bytes" in result.stdout


@pytest.mark.parametrize(("card", "weights", "message"), [
    (_card(class_names=[f"c{i}" for i in range(2_000_000)]), None,
     "model file member model.json is implausibly large"),  # 23 MB of card: refused before it is parsed
    (_card(class_names=[f"c{i}" for i in range(5000)]), None, "2 to 1000 classes, this one has 5000"),
    (_card(class_names=["nv", "mel\x1b[2J", "bkl", "bcc"]), None, "holds a control or non-printing character"),
    (_card(head_config={"in_dim": 1_000_000, "n_classes": 1_000_000}), None,
     "the head config asks for 1000001000000 parameters"),
    (_card(head_config={"in_dim": 1280, "n_classes": 4, "evil": 1}), None, "does not fit head type 'linear'"),
    (_card(head_config={"in_dim": 1280, "n_classes": 5}), None, "head weights do not match its config"),
    (_card(preprocess={"size": 9000, "mean": [0, 0, 0], "std": [1, 1, 1]}), None, "preprocess size 9000"),
    # fields of the wrong type, found by fuzzing model cards: each was a traceback
    (_card(preprocess={"size": 224, "mean": [0, 0], "std": [1, 1, 1]}), None, "preprocess mean must be 3 numbers"),
    (_card(preprocess={"size": 224, "mean": [0, 0, 0], "std": [1, 0, 1]}), None, "preprocess std must be positive"),
    (_card(format_version=None), None, "bad field: format_version"),
    (_card(format_version=float("nan")), None, "bad field: format_version"),
    (_card(support_counts=True), None, "model card is missing or has a bad field"),
    (_card(encoder={"name": "efficientnet-lite0", "kind": "image", "dim": 1280, "weights_sha256": 1.5}), None,
     "encoder kind and weights checksum must be text"),
])
def test_model_card_claims_are_checked(tmp_path: Path, card: dict[str, Any], weights: bytes | None,
                                       message: str) -> None:
    from zsmed.classifier import load_classifier
    from zsmed.errors import CheckpointError

    model = _model_file(tmp_path / "m.zsm", card, weights)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_classifier(model)
    assert str(caught.value).startswith(str(model))


@pytest.mark.parametrize("module", ["zsmed.__main__", "zsmed.cli.main", "os", "zsmed.demo"])
def test_head_module_outside_the_allow_list_is_never_imported(tmp_path: Path, module: str) -> None:
    model = _model_file(tmp_path / "m.zsm", _card(head_type="nonexistent", head_module=module))
    result = run_guarded(f"""
        import sys
        from zsmed.classifier import load_classifier
        from zsmed.errors import CheckpointError
        try:
            load_classifier({str(model)!r})
        except CheckpointError as exc:
            print(exc)
        print("imported:", {module!r} in sys.modules and {module!r} != "os")
    """)
    assert_within_limits(result)
    assert f"head module '{module}' is not one of zsmed's head modules" in result.stdout
    assert "imported: False" in result.stdout


def test_an_encoder_given_as_a_local_path_is_refused(tmp_path: Path) -> None:
    from zsmed.classifier import load_classifier, read_card
    from zsmed.errors import CheckpointError

    encoder = {"name": "timm-local:resnet18@/etc/passwd", "kind": "image", "dim": 1280, "preprocess": None}
    model = _model_file(tmp_path / "m.zsm", _card(encoder=encoder))
    with pytest.raises(CheckpointError,
                       match=r"names a local encoder \(.timm-local:resnet18@/etc/passwd.\); a model file may only"):
        load_classifier(model)
    assert read_card(model).encoder.name == encoder["name"]  # reading the card opens nothing


@pytest.mark.parametrize("members", [["model.json"], ["model.json", "weights.safetensors", "extra.py"]])
def test_unexpected_members_are_refused(tmp_path: Path, members: list[str]) -> None:
    from zsmed.classifier import load_classifier
    from zsmed.errors import CheckpointError

    path = tmp_path / "m.zsm"
    with zipfile.ZipFile(path, "w") as archive:
        for name in members:
            archive.writestr(name, json.dumps(_card()) if name == "model.json" else _weights())
    with pytest.raises(CheckpointError, match=r"not a zsmed model file: it holds"):
        load_classifier(path)
