"""Image encoders: EfficientNet-Lite0/2 from the weight packages, the fast inference path, local timm."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from zsmed.encoders import ImageEncoder, create_encoder, shared_encoder
from zsmed.encoders.efficientnet_lite import fuse_for_inference, load_efficientnet_lite
from zsmed.encoders.image import create_timm_local
from zsmed.encoders.threads import THREADS_ENV, available_cpus, configure_torch_threads, wanted_threads
from zsmed.errors import EncoderUnavailableError
from zsmed.imageio import read_image
from zsmed.preprocess import to_model_input


def _inputs(encoder: ImageEncoder, paths: list[Path]) -> np.ndarray:
    return np.stack([to_model_input(read_image(p), encoder.preprocess) for p in paths])


def test_lite2_encodes_at_260_pixels(novel_images: list[Path]) -> None:
    encoder = shared_encoder("efficientnet-lite2")
    assert isinstance(encoder, ImageEncoder)
    assert encoder.preprocess.size == 260 and encoder.dim == 1280
    batch = _inputs(encoder, novel_images[:1])
    assert batch.shape == (1, 3, 260, 260)
    features = encoder.encode(batch)
    assert features.shape == (1, 1280) and features.dtype == np.float32 and np.isfinite(features).all()
    # ReLU6 then average pooling: every feature lies in [0, 6].
    assert features.min() >= 0.0 and features.max() <= 6.0


def test_fused_inference_path_matches_the_reference_network() -> None:
    model = load_efficientnet_lite("efficientnet-lite0")
    fused = fuse_for_inference(model)
    pixels = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32))
    with torch.inference_mode():
        # At 224 px TF 'same' pads the stride-2 layers asymmetrically: the fused path must agree.
        trunk = model.forward_trunk(pixels)
        fast_trunk = fused.forward_trunk(pixels)
        torch.testing.assert_close(fast_trunk, trunk, atol=1e-4, rtol=1e-4)
        pooled = model.forward_head_conv(trunk).mean(dim=(2, 3))
        torch.testing.assert_close(fused.forward_head_conv(fast_trunk).mean(dim=(2, 3)), pooled, atol=1e-4, rtol=1e-4)
        assert fused(pixels).shape == (1, 1280)


def test_encode_is_deterministic_batched_and_matches_torch_module(shared_lite0: ImageEncoder,
                                                                  novel_images: list[Path]) -> None:
    batch = _inputs(shared_lite0, novel_images[:2])
    whole = shared_lite0.encode(batch)
    one_by_one = np.concatenate([shared_lite0.encode(batch[i : i + 1]) for i in range(2)])
    np.testing.assert_allclose(whole, one_by_one, atol=1e-4)
    np.testing.assert_array_equal(one_by_one[:1], shared_lite0.encode(batch[:1]))
    module = shared_lite0.torch_module()
    assert not module.training
    with torch.inference_mode():
        exported = module(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(whole, exported, atol=1e-4)
    # The module keeps the weight package's key names (classifiers save adapted backbones by them).
    assert any(key.startswith("backbone._blocks.0._depthwise_conv") for key in module.state_dict())


@pytest.mark.slow
def test_torch_module_exports_to_onnx_with_the_same_outputs(shared_lite0: ImageEncoder, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    module = shared_lite0.torch_module()
    pixels = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32))
    path = tmp_path / "lite0.onnx"
    torch.onnx.export(module, (pixels,), str(path), dynamo=False, input_names=["pixels"],
                      output_names=["features"], opset_version=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"pixels": pixels.numpy()})[0]
    np.testing.assert_allclose(out, shared_lite0.encode(pixels.numpy()), atol=1e-4)


def test_thread_count_is_capped_to_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        assert 1 <= available_cpus() <= (os.cpu_count() or 1)
        monkeypatch.setenv(THREADS_ENV, "1")
        assert wanted_threads() == 1
        assert configure_torch_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv(THREADS_ENV, "nonsense")
        assert wanted_threads() == available_cpus()
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() <= max(before, available_cpus())


def test_timm_local_missing_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailableError, match="checkpoint file not found"):
        create_encoder(f"timm-local:resnet18@{tmp_path / 'absent.pth'}")


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed here")
def test_timm_local_without_timm_is_a_clear_error(tmp_path: Path) -> None:
    checkpoint = tmp_path / "resnet18.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, checkpoint)
    with pytest.raises(EncoderUnavailableError, match="needs the 'timm' package") as info:
        create_encoder(f"timm-local:resnet18@{checkpoint}")
    assert info.value.path == str(checkpoint)


def test_timm_local_with_timm(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet18", pretrained=False, num_classes=0)
    checkpoint = tmp_path / "resnet18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, checkpoint)
    encoder = create_timm_local("resnet18", checkpoint)
    assert encoder.dim == 512 and encoder.spec.name.startswith("timm-local:resnet18@")
    out = encoder.encode(np.zeros((2, 3, encoder.preprocess.size, encoder.preprocess.size), dtype=np.float32))
    assert out.shape == (2, 512)
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in model.state_dict().items() if not k.startswith("layer4")}, partial)
    with pytest.raises(EncoderUnavailableError, match="lacks"):
        create_timm_local("resnet18", partial)
