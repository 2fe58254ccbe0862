"""The guard's in-domain fallback: ProtoNet on the last stage fine-tuned on the generator's base classes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.synth.helpers import every_image_wrong

NOVEL = ("akiec", "df", "vasc")


def _support(root: Path, src: Path, classes: tuple[str, ...], k: int, offset: int = 0) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True)
        for f in sorted(p for p in (src / c).iterdir() if p.is_file())[offset : offset + k]:
            os.symlink(f, root / c / f.name)
    return root


def test_shipped_dermoscopy_generator_names_its_fallback_stage() -> None:
    from zsmed.encoders import create_image_encoder
    from zsmed.fewshot.bank import lite_backbone
    from zsmed.synth.checkpoint import default_checkpoint_paths
    from zsmed.synth.fallback import fallback_stage_path, load_stage

    derm, chest = default_checkpoint_paths()
    path = fallback_stage_path(derm)
    assert path is not None and path.is_file()
    assert fallback_stage_path(chest) is None  # the chest X-ray generator keeps the frozen ProtoNet
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["classes"] == ["bcc", "bkl", "mel", "nv"] and "train_fallback_stage.py" in info["command"]
    backbone = lite_backbone(create_image_encoder())
    stage = load_stage(path, backbone)
    # Fine-tuned: not the backbone's own last stage.
    assert not torch.allclose(stage.conv.weight, backbone._conv_head.weight)


def test_a_stage_for_another_encoder_is_refused_in_one_line(tmp_path: Path) -> None:
    from zsmed.encoders import create_image_encoder
    from zsmed.errors import CheckpointError
    from zsmed.fewshot.bank import lite_backbone
    from zsmed.synth.checkpoint import default_checkpoint_paths
    from zsmed.synth.fallback import fallback_stage_path, load_stage

    path = fallback_stage_path(default_checkpoint_paths()[0])
    assert path is not None
    with pytest.raises(CheckpointError, match="unusable fallback stage"):
        load_stage(path, lite_backbone(create_image_encoder("efficientnet-lite2")))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="unusable fallback stage"):
        load_stage(broken, lite_backbone(create_image_encoder()))


def test_turned_down_generator_gives_protonet_on_the_finetuned_stage(tmp_path: Path, shared_data: Path,
                                                                     feature_cache, monkeypatch: pytest.MonkeyPatch
                                                                     ) -> None:  # type: ignore[no-untyped-def]
    from zsmed.encoders import create_image_encoder
    from zsmed.fewshot.bank import lite_backbone
    from zsmed.fewshot.baselines import proto_probs
    from zsmed.fewshot.sampler import Episode
    from zsmed.synth import synthesize as synthesize_module
    from zsmed.synth.checkpoint import default_checkpoint_paths
    from zsmed.synth.fallback import fallback_stage_path, load_stage, stage_features

    novel = shared_data / "ham10000_fs" / "novel_dev"
    support = _support(tmp_path / "s", novel, NOVEL, k=3)
    monkeypatch.setattr(synthesize_module, "leave_one_out_predictions", every_image_wrong)
    clf = synthesize_module.synthesize(support, cache=feature_cache)
    guard = clf.card.extra["guard"]
    assert clf.card.method == "protonet-finetuned-stage" and guard["fired"] == "loo"
    assert "ProtoNet on the fine-tuned last stage used instead" in guard["reason"]
    # Its predictions are ProtoNet's (cosine to class means) on the fine-tuned stage's features.
    queries = _support(tmp_path / "q", novel, NOVEL, k=2, offset=3)
    files = [sorted((support / c).iterdir()) for c in NOVEL] + [sorted((queries / c).iterdir()) for c in NOVEL]
    encoder = create_image_encoder()
    bank = synthesize_module.encode_support({f"{i}": f for i, f in enumerate(files)}, encoder, feature_cache).bank
    stage = load_stage(fallback_stage_path(default_checkpoint_paths()[0]), lite_backbone(encoder))  # type: ignore[arg-type]
    features = stage_features(stage, bank.trunk)
    rows = np.stack([bank.indices_of(str(i)) for i in range(3)])
    q = np.concatenate([bank.indices_of(str(i)) for i in range(3, 6)])
    expected = proto_probs(features, Episode(NOVEL, rows, q, np.zeros(len(q), dtype=int)))
    probs = clf.predict_files([f for c in NOVEL for f in sorted((queries / c).iterdir())])
    assert np.allclose(probs, expected, atol=2e-3)
    # Outside the domain the frozen-feature ProtoNet stays the fallback (a stage tuned on dermoscopy
    # is no reference for chest X-rays).
    chest = _support(tmp_path / "c", shared_data / "cxr_kermany", ("NORMAL", "VIRUS"), k=3)
    out = synthesize_module.synthesize(chest, cache=feature_cache, checkpoint=default_checkpoint_paths()[0])
    assert out.card.method == "protonet-cosine" and out.card.extra["guard"]["fired"] == "domain"
