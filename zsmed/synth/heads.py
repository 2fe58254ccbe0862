"""Heads of synthesised classifiers: plain tensor ops on the backbone's trunk map (ONNX-exportable).

Both read ``input_kind = "trunk"`` (the map before the backbone's last 1x1 conv) because the
generated part replaces or adapts that last stage.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zsmed.classifier import Head, register_head


@register_head
class SGPSHybridHead(Head):
    """Generated last stage (1x1 conv with BN and FiLM folded into scale/shift) + cosine head."""

    head_type = "sgps-hybrid"
    input_kind = "trunk"

    def __init__(self, in_channels: int = 320, dim: int = 1280, n_classes: int = 2) -> None:
        super().__init__()
        self.in_channels, self.dim, self.n_classes = in_channels, dim, n_classes
        self.conv = nn.Conv2d(in_channels, dim, 1, bias=False)
        self.scale = nn.Parameter(torch.ones(dim))
        self.shift = nn.Parameter(torch.zeros(dim))
        self.weight = nn.Parameter(torch.zeros(n_classes, dim))  # L2-normalised rows
        self.bias = nn.Parameter(torch.zeros(n_classes))
        self.logit_scale = nn.Parameter(torch.tensor(10.0))

    def config(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "dim": self.dim, "n_classes": self.n_classes}

    def features(self, trunk: torch.Tensor) -> torch.Tensor:
        z = self.conv(trunk) * self.scale[None, :, None, None] + self.shift[None, :, None, None]
        return F.relu6(z).mean(dim=(2, 3))

    def forward(self, trunk: torch.Tensor) -> torch.Tensor:
        f = F.normalize(self.features(trunk), dim=-1)
        return self.logit_scale * (f @ self.weight.t()) + self.bias


@register_head
class SGPSCompactHead(Head):
    """Every parameter generated: 1x1 conv -> depthwise 3x3 -> 1x1 conv -> pool -> cosine head."""

    head_type = "sgps-compact"
    input_kind = "trunk"

    def __init__(self, in_channels: int = 320, mid: int = 384, out: int = 384, n_classes: int = 2) -> None:
        super().__init__()
        self.in_channels, self.mid, self.out, self.n_classes = in_channels, mid, out, n_classes
        self.conv1 = nn.Conv2d(in_channels, mid, 1)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, groups=mid)
        self.conv3 = nn.Conv2d(mid, out, 1)
        self.weight = nn.Parameter(torch.zeros(n_classes, out))
        self.bias = nn.Parameter(torch.zeros(n_classes))
        self.logit_scale = nn.Parameter(torch.tensor(10.0))

    def config(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "mid": self.mid, "out": self.out, "n_classes": self.n_classes}

    def features(self, trunk: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.conv1(trunk))
        x = F.relu6(self.conv2(x))
        return F.relu6(self.conv3(x)).mean(dim=(2, 3))

    def forward(self, trunk: torch.Tensor) -> torch.Tensor:
        f = F.normalize(self.features(trunk), dim=-1)
        return self.logit_scale * (f @ self.weight.t()) + self.bias
