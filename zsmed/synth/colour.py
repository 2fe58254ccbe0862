"""Colour numbers of a dermoscopy image, computed from the model input inside the classifier's graph, and
the colour branch that adds them to a generated classifier's scores where the support set's colours are
those of the collection the numbers were standardised on.

Why: the frozen ImageNet features see shape and texture well and colour poorly, and within one
dermatoscope's collection colour separates lesions (a vascular lesion's red, a dermatofibroma's brown
ring). Across dermatoscopes the same numbers mislead (each device has its own colour cast), so the branch
is used only where every support image's colour moments lie within the collection's own distribution
(``ColourStats.accepts``), and the classifier runs without it elsewhere (docs/bench/fewshot.md, Issue 16,
thirteenth round).

The numbers (73, after Lab conversion of the model input, L scaled to 0-255 and a*, b* offset by 128 as
8-bit Lab images hold them): the mean, SD of L, a*, b* over the image's central half (the lesion, as
dermoscopy photographs centre it), the central mean minus that of the skin beside it (bands at the left and
right edges of the central rows), all / 64, and the square roots of an 8 x 8 a*b* histogram of the central
half (a*, b* from 96 to 192). Every step is a tensor operation, so ``torch.onnx.export`` carries it into the
bundle's graph and the torch-free runtime computes the same numbers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zsmed.errors import CheckpointError
from zsmed.preprocess import PreprocessConfig

N_MOMENTS = 9
HISTOGRAM_BINS = 8
N_COLOUR = N_MOMENTS + HISTOGRAM_BINS * HISTOGRAM_BINS
_HISTOGRAM_RANGE = (96.0, 192.0)  # a*, b* (offset by 128): where skin and lesion colours lie
_SKIN_BAND = 24 / 224  # of the image's width: the skin beside the lesion
_MOMENT_SCALE = 64.0
# the SD of a* and of b* over the lesion (/ 64) under which an image is grey: 0.3 Lab units; the least coloured
# of HAM10000's 2,338 base images and Derm7pt's 643 have 0.013 (0.86 units)
_GREY_CHROMA_SD = 0.005
# sRGB (D65) to XYZ, and the D65 white
_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))
_WHITE = (0.95047, 1.0, 1.08883)


def lab_of(pixels: torch.Tensor, preprocess: PreprocessConfig) -> torch.Tensor:
    """(B, 3, S, S) model input (normalised as ``preprocess`` says) as Lab: L in 0-255, a*, b* offset by 128."""
    mean = torch.tensor(preprocess.mean, dtype=pixels.dtype).view(1, 3, 1, 1)
    std = torch.tensor(preprocess.std, dtype=pixels.dtype).view(1, 3, 1, 1)
    rgb = (pixels * std + mean).clamp(0.0, 1.0)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=pixels.dtype) / torch.tensor(_WHITE, dtype=pixels.dtype).view(3, 1)
    xyz = torch.einsum("ij,bjhw->bihw", matrix, linear)
    delta = 6.0 / 29.0
    f = torch.where(xyz > delta**3, xyz.clamp_min(1e-12) ** (1.0 / 3.0), xyz / (3 * delta**2) + 4.0 / 29.0)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    lightness = (116.0 * fy - 16.0) * 2.55
    return torch.stack([lightness, 500.0 * (fx - fy) + 128.0, 200.0 * (fy - fz) + 128.0], dim=1)


def colour_features(pixels: torch.Tensor, preprocess: PreprocessConfig) -> torch.Tensor:
    """(B, 73) colour numbers of a batch of model inputs (see the module's docstring)."""
    lab = lab_of(pixels, preprocess)
    size = int(pixels.shape[-1])
    low, high = size // 4, size - size // 4
    band = max(1, round(size * _SKIN_BAND))
    centre = lab[:, :, low:high, low:high].flatten(2)  # (B, 3, P)
    skin = torch.cat([lab[:, :, low:high, :band].flatten(2), lab[:, :, low:high, -band:].flatten(2)], dim=2)
    centre_mean = centre.mean(dim=2)
    centre_sd = (centre - centre_mean.unsqueeze(2)).pow(2).mean(dim=2).sqrt()
    moments = torch.cat([centre_mean, centre_sd, centre_mean - skin.mean(dim=2)], dim=1) / _MOMENT_SCALE
    start, stop = _HISTOGRAM_RANGE
    width = (stop - start) / HISTOGRAM_BINS
    edges = start + width * torch.arange(HISTOGRAM_BINS, dtype=pixels.dtype).view(1, HISTOGRAM_BINS, 1)

    def one_hot(values: torch.Tensor) -> torch.Tensor:  # (B, P) -> (B, bins, P): the bin each value falls in
        column = values.unsqueeze(1)
        return ((column >= edges) & (column < edges + width)).to(pixels.dtype)

    counts = torch.bmm(one_hot(centre[:, 1]), one_hot(centre[:, 2]).transpose(1, 2)).flatten(1)  # (B, 64)
    total = counts.sum(dim=1, keepdim=True).clamp_min(1.0)
    return torch.cat([moments, (counts / total).sqrt()], dim=1)


@dataclass(frozen=True)
class ColourStats:
    """A collection's colour numbers: their mean and SD (to standardise), the mean and inverse covariance
    of their first 9 (the moments) and the distance under which an image counts as of that collection
    (its own images' ``quantile``), the branch's weight, and what they were fitted on."""

    mean: tuple[float, ...]
    sd: tuple[float, ...]
    moment_mean: tuple[float, ...]
    moment_inverse_covariance: tuple[tuple[float, ...], ...]
    threshold: float
    weight: float
    preprocess: PreprocessConfig
    fitted_on: str = ""
    images: int = 0
    quantile: float = 0.99

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each image's colour moments to the collection's."""
        offset = np.asarray(features, dtype=np.float64)[:, :N_MOMENTS] - np.asarray(self.moment_mean)
        inverse = np.asarray(self.moment_inverse_covariance, dtype=np.float64)
        return np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", offset, inverse, offset), 0.0))

    @staticmethod
    def grey(features: np.ndarray) -> np.ndarray:
        """Which images are grey (a chest film, a photograph in grey): no colours to compare."""
        return np.any(np.asarray(features)[:, 4:6] <= _GREY_CHROMA_SD, axis=1)

    def accepts(self, features: np.ndarray) -> bool:
        """Whether every image's colours are the collection's (the branch is used only then); a grey image
        never is."""
        values = np.asarray(features)
        return (bool(len(values)) and not bool(self.grey(values).any())
                and bool(np.all(self.distances(values) <= self.threshold)))

    def standardised(self, features: torch.Tensor) -> torch.Tensor:
        """Standardised and unit-length colour numbers: what the branch compares."""
        mean = torch.tensor(self.mean, dtype=features.dtype)
        sd = torch.tensor(self.sd, dtype=features.dtype).clamp_min(1e-6)
        return nn.functional.normalize((features - mean) / sd, dim=-1)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "sd": list(self.sd), "moment_mean": list(self.moment_mean),
                "moment_inverse_covariance": [list(row) for row in self.moment_inverse_covariance],
                "threshold": self.threshold, "weight": self.weight, "preprocess": self.preprocess.to_dict(),
                "fitted_on": self.fitted_on, "images": self.images, "quantile": self.quantile}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColourStats:
        try:
            stats = cls(tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["sd"]),
                        tuple(float(v) for v in data["moment_mean"]),
                        tuple(tuple(float(v) for v in row) for row in data["moment_inverse_covariance"]),
                        float(data["threshold"]), float(data["weight"]),
                        PreprocessConfig.from_dict(dict(data["preprocess"])), str(data.get("fitted_on", "")),
                        int(data.get("images", 0)), float(data.get("quantile", 0.99)))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"colour statistics are missing or have a bad field: {exc}") from exc
        if (len(stats.mean) != N_COLOUR or len(stats.sd) != N_COLOUR or len(stats.moment_mean) != N_MOMENTS
                or len(stats.moment_inverse_covariance) != N_MOMENTS
                or not all(math.isfinite(v) for v in (*stats.mean, *stats.sd, stats.threshold, stats.weight))):
            raise CheckpointError("colour statistics of the wrong size or not finite")
        return stats


def fit_colour_stats(features: np.ndarray, preprocess: PreprocessConfig, *, weight: float, fitted_on: str,
                     quantile: float = 0.99) -> ColourStats:
    """``ColourStats`` of a collection's colour numbers (N, 73)."""
    values = np.asarray(features, dtype=np.float64)
    moments = values[:, :N_MOMENTS]
    inverse = np.linalg.inv(np.cov(moments.T) + 1e-6 * np.eye(N_MOMENTS))
    partial = ColourStats(tuple(values.mean(0)), tuple(values.std(0, ddof=1)), tuple(moments.mean(0)),
                          tuple(tuple(row) for row in inverse), math.inf, weight, preprocess, fitted_on,
                          len(values), quantile)
    threshold = float(np.quantile(partial.distances(values), quantile))
    return ColourStats(partial.mean, partial.sd, partial.moment_mean, partial.moment_inverse_covariance, threshold,
                       weight, preprocess, fitted_on, len(values), quantile)


def colour_stats_path(checkpoint: str | Path) -> Path:
    """Where a generator's colour statistics lie: ``<checkpoint stem>.colour.json`` beside it."""
    path = Path(checkpoint)
    return path.with_name(f"{path.name.removesuffix('.safetensors')}.colour.json")


def read_colour_stats(checkpoint: str | Path) -> ColourStats | None:
    """A generator's colour statistics, or None where it has none (a chest X-ray generator)."""
    path = colour_stats_path(checkpoint)
    return read_colour_stats_file(path) if path.is_file() else None


def read_colour_stats_file(path: str | Path) -> ColourStats:
    """Colour statistics written by ``scripts/fit_colour_stats.py``."""
    try:
        return ColourStats.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the colour statistics ({exc})", path=path) from exc


class ColourBranch(nn.Module):
    """pixels -> weight · cosine of the standardised colour numbers to each class's (B, classes): added to
    a classifier's logits, it is the generator's log-probabilities fused with a colour ProtoNet."""

    mean: torch.Tensor
    sd: torch.Tensor
    prototypes: torch.Tensor

    def __init__(self, mean: Any, sd: Any, prototypes: Any, weight: float, preprocess: PreprocessConfig) -> None:
        """The branch as a model file stores it: the colour numbers' mean and SD, each class's unit mean of
        the standardised numbers, the weight and the model's preprocessing (``of`` builds it from statistics)."""
        super().__init__()
        self.preprocess = preprocess
        self.weight = float(weight)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone())
        self.register_buffer("sd", torch.as_tensor(sd, dtype=torch.float32).clamp_min(1e-6))
        self.register_buffer("prototypes", nn.functional.normalize(torch.as_tensor(prototypes, dtype=torch.float32),
                                                                   dim=-1))

    @classmethod
    def of(cls, stats: ColourStats, prototypes: np.ndarray | torch.Tensor) -> ColourBranch:
        """The branch of a collection's statistics, with these class prototypes."""
        return cls(stats.mean, stats.sd, prototypes, stats.weight, stats.preprocess)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = colour_features(pixels, self.preprocess)
        unit = nn.functional.normalize((features - self.mean) / self.sd, dim=-1)
        return self.weight * unit @ self.prototypes.t()


def prototypes_of(unit: torch.Tensor, groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """Each group's mean of standardised colour numbers (rows of ``unit``), at unit length: a class's
    prototype from its support images (build, its leave-one-out estimate and the evaluation alike)."""
    return nn.functional.normalize(torch.stack([unit[list(group)].mean(dim=0) for group in groups]), dim=-1)


def class_prototypes(stats: ColourStats, features: np.ndarray, labels: list[str], classes: list[str]) -> np.ndarray:
    """Each class's prototype from its support images' colour numbers."""
    unit = stats.standardised(torch.as_tensor(np.asarray(features), dtype=torch.float32))
    return prototypes_of(unit, [[i for i, label in enumerate(labels) if label == c] for c in classes]).numpy()




class BankColour:
    """The colour numbers of a feature bank's images for an evaluation, computed from the images as the
    classifier would (model input, then ``colour_features``) when first asked for, and kept."""

    def __init__(self, stats: ColourStats, paths: list[Path]) -> None:
        self.stats = stats
        self.paths = paths
        self._known: dict[int, np.ndarray] = {}

    def features(self, indices: np.ndarray) -> np.ndarray:
        from zsmed.imageio import read_image
        from zsmed.preprocess import batch_model_inputs

        wanted = [int(i) for i in np.asarray(indices).reshape(-1)]
        missing = sorted({i for i in wanted if i not in self._known})
        for start in range(0, len(missing), 64):
            chunk = missing[start:start + 64]
            pixels = batch_model_inputs([read_image(self.paths[i]) for i in chunk], self.stats.preprocess)
            values = colour_features(torch.as_tensor(pixels), self.stats.preprocess).numpy()
            self._known.update(zip(chunk, values, strict=True))
        return np.stack([self._known[i] for i in wanted])

    def fuse(self, probabilities: np.ndarray, support: np.ndarray, query: np.ndarray) -> np.ndarray | None:
        """An episode's probabilities with the colour branch added (support: (ways, shots) bank indices),
        or None where the support images' colours are not the collection's (the branch is then left out)."""
        support_features = self.features(support)
        if not self.stats.accepts(support_features):
            return None
        unit = self.stats.standardised(torch.as_tensor(support_features, dtype=torch.float32))
        ways, shots = np.asarray(support).shape
        prototypes = prototypes_of(unit, [range(n * shots, (n + 1) * shots) for n in range(ways)])
        queries = self.stats.standardised(torch.as_tensor(self.features(query), dtype=torch.float32))
        logits = torch.log(torch.as_tensor(probabilities, dtype=torch.float32).clamp_min(1e-9))
        return torch.softmax(logits + self.stats.weight * queries @ prototypes.t(), dim=-1).numpy()


__all__ = [
    "N_COLOUR",
    "BankColour",
    "ColourBranch",
    "ColourStats",
    "class_prototypes",
    "colour_features",
    "colour_stats_path",
    "fit_colour_stats",
    "lab_of",
    "prototypes_of",
    "read_colour_stats",
    "read_colour_stats_file",
]
