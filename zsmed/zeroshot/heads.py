"""The exported head of a zero-shot (FSIGenZ / DPSR) classifier: plain tensor ops.

u = normalise(x - mean); z = normalise((u - centre) @ proj) when the features were whitened (proj:
the PCA whitening), else z = u;
logits = scale * <z, w_c> + b_c (unit class weights for a cosine classifier), with the
calibrated-stacking constant already subtracted from the seen classes' biases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from zsmed.classifier import Head, register_head


@register_head
class ZeroShotCosineHead(Head):
    head_type = "zeroshot_cosine"
    input_kind = "pooled"

    def __init__(self, in_dim: int, n_classes: int, scale: float = 10.0, proj_dim: int | None = None,
                 whitened: bool = True) -> None:
        super().__init__()
        self.in_dim, self.n_classes, self.scale = int(in_dim), int(n_classes), float(scale)
        # False: no projection step (nothing was whitened). It saves a d x d identity matrix in every
        # bundle (6.5 MB of float32 at d = 1280); heads saved before the flag existed load as True.
        self.whitened = bool(whitened)
        self.proj_dim = int(proj_dim) if proj_dim and self.whitened else self.in_dim
        self.mean = nn.Parameter(torch.zeros(in_dim), requires_grad=False)
        if self.whitened:
            self.centre = nn.Parameter(torch.zeros(in_dim), requires_grad=False)
            self.proj = nn.Parameter(torch.eye(in_dim, self.proj_dim), requires_grad=False)
        self.weight = nn.Parameter(torch.zeros(n_classes, self.proj_dim), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(n_classes), requires_grad=False)

    def config(self) -> dict[str, Any]:
        return {"in_dim": self.in_dim, "n_classes": self.n_classes, "scale": self.scale, "proj_dim": self.proj_dim,
                "whitened": self.whitened}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x - self.mean
        # x / max(||x||, eps), written out so that exporters see only elementary ops.
        z = z / torch.clamp(torch.sqrt((z * z).sum(dim=-1, keepdim=True)), min=1e-12)
        if self.whitened:
            z = (z - self.centre) @ self.proj
            z = z / torch.clamp(torch.sqrt((z * z).sum(dim=-1, keepdim=True)), min=1e-12)
        return self.scale * (z @ self.weight.t()) + self.bias

    @classmethod
    def from_arrays(cls, mean: np.ndarray, weight: np.ndarray, bias: np.ndarray, scale: float,
                    centre: np.ndarray | None = None, proj: np.ndarray | None = None) -> ZeroShotCosineHead:
        in_dim = len(mean)
        # neither a centre nor a projection given: no projection step (see __init__)
        whitened = proj is not None or centre is not None
        head = cls(in_dim, weight.shape[0], scale, weight.shape[1], whitened=whitened)
        with torch.no_grad():
            head.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            if centre is not None:
                head.centre.copy_(torch.as_tensor(centre, dtype=torch.float32))
            if proj is not None:
                head.proj.copy_(torch.as_tensor(proj, dtype=torch.float32))
            head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        return head
