"""Cached augmented views of the base images (meta-training task augmentation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _model_inputs(shared_data: Path, image_encoder, n: int = 3) -> np.ndarray:  # type: ignore[no-untyped-def]
    from zsmed.imageio import read_model_input

    files = sorted((shared_data / "ham10000_fs" / "base" / "bcc").glob("*.jpg"))[:n]
    return np.stack([read_model_input(f, image_encoder.preprocess) for f in files])


def test_views_are_the_transforms_they_name(shared_data: Path, image_encoder) -> None:  # type: ignore[no-untyped-def]
    from zsmed.fewshot.views import apply_view

    batch = _model_inputs(shared_data, image_encoder)
    assert np.array_equal(apply_view(batch, "hflip"), batch[..., ::-1])
    assert np.array_equal(apply_view(batch, ["hflip", "hflip"]), batch)
    assert np.array_equal(apply_view(batch, ["rot90", "rot270"]), batch)
    assert np.array_equal(apply_view(batch, ["rot90", "rot90"]), apply_view(batch, "rot180"))
    assert np.array_equal(apply_view(batch, "rot90")[0, :, 0, :], batch[0, :, :, -1])
    zoomed = apply_view(batch, "zoom")
    assert zoomed.shape == batch.shape and zoomed.dtype == np.float32
    # The centre pixel stays, the border is gone.
    assert np.allclose(zoomed[..., 112, 112], batch[..., 112, 112], atol=0.15)
    assert not np.allclose(zoomed[..., 0, 0], batch[..., 0, 0], atol=0.05)
    flat = apply_view(batch, "contrast")
    assert np.allclose(flat.mean(axis=(2, 3)), batch.mean(axis=(2, 3)), atol=1e-4)
    assert np.all(flat.std(axis=(2, 3)) < batch.std(axis=(2, 3)))
    assert np.all(apply_view(batch, "contrast_up").std(axis=(2, 3)) > batch.std(axis=(2, 3)))
    # A 10 degree tilt moves the image; tilting back restores its centre (up to interpolation).
    tilted = apply_view(batch, "tilt10")
    centre = np.s_[..., 62:162, 62:162]
    back_error = np.abs(apply_view(tilted, "tilt-10")[centre] - batch[centre]).mean()
    assert back_error < 0.5 * np.abs(tilted[centre] - batch[centre]).mean()
    # The uncovered corners hold each image's mean, not black.
    assert np.allclose(tilted[:, :, 0, 0], batch.mean(axis=(2, 3)), atol=0.05)


def test_unknown_view_is_one_clear_error() -> None:
    from zsmed.errors import ConfigError
    from zsmed.fewshot.views import parse_views

    assert parse_views(" hflip, rot90,hflip ") == ("hflip", "rot90")
    assert parse_views("") == ()
    with pytest.raises(ConfigError, match=r"unknown view 'rot45'.*hflip"):
        parse_views("hflip,rot45")


def test_view_bank_is_encoded_through_the_backbone_and_cached_apart(  # type: ignore[no-untyped-def]
        shared_data: Path, feature_cache, image_encoder) -> None:
    import torch

    from zsmed.data.folders import load_class_folder
    from zsmed.fewshot.bank import build_bank
    from zsmed.progress import run_job

    folder = load_class_folder(shared_data / "ham10000_fs" / "base")
    folder.items = [it for label in ("bcc", "mel") for it in folder.of_class(label)[:2]]
    plain = run_job(build_bank(folder, image_encoder, feature_cache))
    flipped = run_job(build_bank(folder, image_encoder, feature_cache, view="hflip"))
    assert [it.path for it in flipped.items] == [it.path for it in plain.items]
    assert [it.label for it in flipped.items] == [it.label for it in plain.items]
    # A flip through the backbone changes the feature a little, never to another image's.
    cos = torch.nn.functional.cosine_similarity(flipped.pooled, plain.pooled)
    assert not torch.equal(flipped.trunk, plain.trunk)
    assert float(cos.min()) > 0.8 and float(cos.max()) < 0.99999
    # The trunk map of the flipped image is (nearly) the flipped trunk map: a real flip, not noise.
    mirrored = plain.trunk.float().flip(-1)
    similarity = torch.nn.functional.cosine_similarity(flipped.trunk.float().flatten(1), mirrored.flatten(1))
    assert float(similarity.min()) > 0.8
    hits = feature_cache.hits
    again = run_job(build_bank(folder, image_encoder, feature_cache, view="hflip"))
    assert feature_cache.hits == hits + len(folder.items)
    assert torch.equal(again.trunk, flipped.trunk)


def test_view_copies_keep_label_and_group_or_make_rotated_classes(  # type: ignore[no-untyped-def]
        shared_data: Path, feature_cache, image_encoder) -> None:
    from zsmed.synth.data import load_base_bank, named_base_sources, view_copies

    bank, domains = load_base_bank(named_base_sources(shared_data, "ham10000"), image_encoder, feature_cache,
                                   max_per_class=3)
    copies, new = view_copies(bank, domains, image_encoder, feature_cache, ["zoom", "rot90"])
    assert new == {}
    assert len(copies.items) == 2 * len(bank.items)
    assert [(it.label, it.group) for it in copies.items] == [(it.label, it.group) for it in bank.items] * 2
    turned, new = view_copies(bank, domains, image_encoder, feature_cache, ["zoom", "rot90"], rotated_classes=True)
    assert new == {f"{c}@rot90": "ham10000" for c in bank.classes}
    assert [it.label for it in turned.items[len(bank.items):]] == [f"{it.label}@rot90" for it in bank.items]
    # Only the domains asked for.
    with pytest.raises(Exception, match="no base image"):
        view_copies(bank, domains, image_encoder, feature_cache, ["zoom"], only_domains=["cxr"])


def test_config_keeps_the_views_it_was_trained_with() -> None:
    from zsmed.synth.config import SGPSConfig

    config = SGPSConfig(train_views=("hflip", "zoom"), rotated_classes=True)
    again = SGPSConfig.from_dict(config.to_dict())
    assert again == config and again.train_views == ("hflip", "zoom")
    assert SGPSConfig.from_dict({k: v for k, v in config.to_dict().items()
                                 if k not in ("train_views", "rotated_classes")}).train_views == ()


def test_shipped_chest_xray_generator_saw_views_of_training_patients_only(shared_data: Path) -> None:
    """The shipped CXR generator was meta-trained with views, on no patient of the CXR dev split
    (the reserved 40 %) and no VIRUS image (held out whole to choose it)."""
    import csv
    import json

    from zsmed.resources import resources_dir
    from zsmed.synth.data import reserved_group

    stem = resources_dir() / "checkpoints" / "sgps-cxr_efficientnet-lite0"
    config = json.loads(stem.with_suffix(".json").read_text())["config"]
    assert config["train_views"] == ["hflip", "zoom", "contrast"] and not config["rotated_classes"]
    with (shared_data / "cxr_kermany" / "metadata.csv").open(newline="") as handle:
        patient = {row["file"]: row["patient_id"] for row in csv.DictReader(handle)}
    with stem.parent.joinpath(f"{stem.name}.data_list.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) > 400 and {r["label"] for r in train} == {"NORMAL", "BACTERIA"}
    files = [r["file"].removeprefix("cxr_kermany/") for r in rows]
    assert all(not reserved_group(f"{patient[f]}", 0.4) for f in files)
