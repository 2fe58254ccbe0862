"""The chest X-ray encoder: EfficientNet-Lite0 with its last blocks fine-tuned on CXR base classes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TAIL = ROOT / "resources" / "checkpoints" / "encoder-cxr_efficientnet-lite0"


def test_tuned_encoder_is_the_base_with_its_tail_replaced() -> None:
    from zsmed.encoders import create_image_encoder
    from zsmed.fewshot.bank import lite_backbone

    base, tuned = create_image_encoder("efficientnet-lite0"), create_image_encoder("efficientnet-lite0-cxr")
    b, t = lite_backbone(base).state_dict(), lite_backbone(tuned).state_dict()
    info = json.loads(TAIL.with_suffix(".json").read_text())
    start = info["config"]["start_block"]
    assert torch.equal(b["_conv_stem.weight"], t["_conv_stem.weight"])
    assert torch.equal(b[f"_blocks.{start - 1}._project_conv.weight"], t[f"_blocks.{start - 1}._project_conv.weight"])
    assert not torch.allclose(b[f"_blocks.{start}._project_conv.weight"], t[f"_blocks.{start}._project_conv.weight"])
    assert not torch.allclose(b["_conv_head.weight"], t["_conv_head.weight"])
    # Its own feature space: another name, weights identity and cache id; the tail is named in the spec.
    assert tuned.spec.name == "efficientnet-lite0-cxr" and tuned.spec.extra["tuned_tail"] == TAIL.name + ".safetensors"
    assert tuned.spec.weights_sha256 != base.spec.weights_sha256 and tuned.spec.cache_id != base.spec.cache_id
    assert tuned.spec.preprocess == base.spec.preprocess


def test_tuned_encoder_was_fitted_only_on_training_patients_of_normal_and_bacterial_pneumonia(shared_data: Path
                                                                                              ) -> None:
    from zsmed.synth.data import reserved_group

    info = json.loads(TAIL.with_suffix(".json").read_text())
    assert info["classes"] == ["BACTERIA", "NORMAL"] and "train_encoder_tail.py" in info["command"]
    with TAIL.parent.joinpath(TAIL.name + ".data_list.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {r["split"] for r in rows} == {"train"} and {r["label"] for r in rows} == {"BACTERIA", "NORMAL"}
    # Never a patient reserved for the dev split (40 %), nor one of the generator's validation patients.
    with (shared_data / "cxr_kermany" / "metadata.csv").open(newline="") as handle:
        patient = {row["file"]: row["patient_id"] for row in csv.DictReader(handle)}
    assert all(not reserved_group(patient[r["file"].removeprefix("cxr_kermany/")], 0.4) for r in rows)
    generator_list = ROOT / "resources" / "checkpoints" / info["split_from"]
    with generator_list.open(newline="") as handle:
        validation = {r["sha256"] for r in csv.DictReader(handle) if r["split"] != "train"}
    assert validation and not validation & {r["sha256"] for r in rows}


def test_a_foreign_or_corrupt_tail_is_refused_in_one_line(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from zsmed.encoders.efficientnet_lite import load_efficientnet_lite, load_tuned_tail
    from zsmed.errors import EncoderUnavailableError

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(EncoderUnavailableError, match="not a readable encoder tail"):
        load_tuned_tail(load_efficientnet_lite("efficientnet-lite0"), broken)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"_conv_head.weight": torch.zeros(1280, 352, 1, 1)}, str(foreign))  # Lite2's head width
    with pytest.raises(EncoderUnavailableError, match="does not fit efficientnet-lite0"):
        load_tuned_tail(load_efficientnet_lite("efficientnet-lite0"), foreign)
    with pytest.raises(EncoderUnavailableError, match="not found"):
        load_tuned_tail(load_efficientnet_lite("efficientnet-lite0"), tmp_path / "missing.safetensors")


def test_registry_says_why_the_tuned_encoder_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zsmed.encoders import describe_encoders

    row = {e.name: e for e in describe_encoders()}["efficientnet-lite0-cxr"]
    assert row.available and row.kind == "image"
    (tmp_path / "checkpoints").mkdir()
    monkeypatch.setenv("ZSMED_RESOURCES", str(tmp_path))
    row = {e.name: e for e in describe_encoders()}["efficientnet-lite0-cxr"]
    assert not row.available and "encoder-cxr_efficientnet-lite0.safetensors is not installed" in row.reason


def test_lite_tail_prefix_runs_a_tail_file_as_an_encoder_of_its_own(shared_data: Path, tmp_path: Path) -> None:
    """What `zsmed eval fewshot --encoder lite-tail:efficientnet-lite0@FILE` compares tails with."""
    from zsmed.encoders import create_image_encoder, describe_encoders
    from zsmed.errors import EncoderUnavailableError, UnknownEncoderError
    from zsmed.imageio import read_model_input

    tail_file = TAIL.with_suffix(".safetensors")
    shipped = create_image_encoder("efficientnet-lite0-cxr")
    local = create_image_encoder(f"lite-tail:efficientnet-lite0@{tail_file}")
    assert local.spec.name == f"lite-tail:efficientnet-lite0@{tail_file}"
    assert local.spec.weights_sha256 == shipped.spec.weights_sha256 and local.spec.cache_id != shipped.spec.cache_id
    image = sorted((shared_data / "cxr_kermany" / "VIRUS").iterdir())[0]
    pixels = read_model_input(image, local.spec.preprocess)[None]
    assert np.allclose(local.encode(pixels), shipped.encode(pixels), atol=1e-5)
    assert not np.allclose(local.encode(pixels), create_image_encoder().encode(pixels), atol=1e-2)
    assert {e.name: e for e in describe_encoders()}["lite-tail:"].available
    with pytest.raises(UnknownEncoderError, match="lite-tail needs"):
        create_image_encoder(f"lite-tail:{tail_file}")
    with pytest.raises(UnknownEncoderError, match="not a Lite base"):
        create_image_encoder(f"lite-tail:resnet50@{tail_file}")
    with pytest.raises(EncoderUnavailableError, match="not found"):
        create_image_encoder(f"lite-tail:efficientnet-lite0@{tmp_path / 'absent.safetensors'}")


def test_train_tail_learns_the_base_classes_and_names_backbone_entries(shared_data: Path) -> None:
    from zsmed.encoders import create_image_encoder
    from zsmed.fewshot.bank import lite_backbone
    from zsmed.fewshot.views import apply_view
    from zsmed.imageio import read_model_input
    from zsmed.synth.encoder_tail import TailConfig, block_inputs, file_block_inputs, pooled_features, train_tail

    torch.set_num_threads(2)
    encoder = create_image_encoder()
    backbone = lite_backbone(encoder)
    cxr = shared_data / "cxr_kermany"
    files = {c: sorted((cxr / c).iterdir())[:8] for c in ("NORMAL", "BACTERIA")}
    pixels = np.stack([read_model_input(p, encoder.spec.preprocess) for c in files for p in files[c]])
    labels = [c for c in files for _ in files[c]]
    config = TailConfig(start_block=15, epochs=4, lr=1e-3)
    inputs = block_inputs(backbone, pixels, config.start_block)
    # Read from the files a few at a time, with views: the same inputs, in train_tail's label order.
    paths = [p for c in files for p in files[c]]
    streamed = file_block_inputs(backbone, paths, encoder.spec.preprocess, config.start_block, ("hflip", "zoom"),
                                 batch_size=5)
    assert streamed.shape == (48, *inputs.shape[1:]) and torch.equal(streamed[:16], inputs)
    assert torch.equal(streamed[32:], block_inputs(backbone, apply_view(pixels, "zoom"), config.start_block))
    # The frozen tail on these inputs is the backbone's own pooled feature.
    with torch.inference_mode():
        whole = encoder.module(torch.from_numpy(pixels[:2]))
    outputs = list(train_tail(backbone, inputs, labels, config))
    lines, tail = outputs[:-1], outputs[-1]
    assert len(lines) == 4 and all(isinstance(line, str) and line.startswith("epoch") for line in lines)
    first, last = (float(line.split("loss ")[1].split(",")[0]) for line in (lines[0], lines[-1]))
    assert last < first
    state = tail.backbone_state()  # type: ignore[union-attr]
    own = backbone.state_dict()
    assert set(state) <= set(own) and "_blocks.15._project_conv.weight" in state and "_blocks.14._bn0.bias" not in state
    assert not torch.allclose(state["_conv_head.weight"], own["_conv_head.weight"])
    # The backbone itself is untouched (the tail is a copy).
    with torch.inference_mode():
        assert torch.allclose(encoder.module(torch.from_numpy(pixels[:2])), whole)
    assert pooled_features(tail, inputs).shape == (16, 1280)  # type: ignore[arg-type]


def test_script_refuses_a_data_list_whose_images_changed(tmp_path: Path, shared_data: Path) -> None:
    cxr = shared_data / "cxr_kermany" / "NORMAL"
    image = sorted(cxr.iterdir())[0]
    data_list = tmp_path / "list.csv"
    row = f"train,cxr,NORMAL,cxr_kermany/NORMAL/{image.name},{'0' * 64}"
    data_list.write_text(f"split,domain,label,file,sha256\n{row}\n")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_encoder_tail.py"), "--data-root",
                          str(shared_data), "--split-from", str(data_list), "--out", str(tmp_path / "t")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "differ from the data list" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "t.safetensors").exists()
