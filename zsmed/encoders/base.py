"""Encoder interfaces. Image encoders map preprocessed pixels to vectors; text encoders map text."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from zsmed.preprocess import DEFAULT_WINDOW, PreprocessConfig

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class EncoderSpec:
    """What identifies an encoder's output space; saved in checkpoints and bundles."""

    name: str  # registry name, e.g. "efficientnet-lite0"
    kind: str  # "image" or "text"
    dim: int
    weights_sha256: str = ""
    preprocess: PreprocessConfig | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["preprocess"] = self.preprocess.to_dict() if self.preprocess else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderSpec:
        pre = data.get("preprocess")
        return cls(
            name=data["name"],
            kind=data["kind"],
            dim=int(data["dim"]),
            weights_sha256=data.get("weights_sha256", ""),
            preprocess=PreprocessConfig.from_dict(pre) if pre else None,
            extra=dict(data.get("extra") or {}),
        )

    @property
    def cache_id(self) -> str:
        """Identity of the feature space, for the feature cache: name, weights and preprocessing."""
        data = self.to_dict()
        pre = data.get("preprocess")
        if pre and pre.get("window") == DEFAULT_WINDOW:
            # Caches written before the window policy was recorded used this one: same identity.
            data["preprocess"] = {k: v for k, v in pre.items() if k != "window"}
        blob = repr(sorted(data.items())).encode()
        return f"{self.name}-{hashlib.sha256(blob).hexdigest()[:16]}"


class ImageEncoder(ABC):
    spec: EncoderSpec

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def preprocess(self) -> PreprocessConfig:
        assert self.spec.preprocess is not None
        return self.spec.preprocess

    @abstractmethod
    def encode(self, batch: np.ndarray) -> np.ndarray:
        """(B, 3, S, S) float32 model inputs -> (B, dim) float32 features."""

    @abstractmethod
    def torch_module(self) -> nn.Module:
        """The encoder as a torch module, pixels (B, 3, S, S) -> features (B, dim), in eval mode."""


class TextEncoder(ABC):
    spec: EncoderSpec

    @property
    def dim(self) -> int:
        return self.spec.dim

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts -> (N, dim) float32, L2-normalised."""
