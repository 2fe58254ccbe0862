"""Frozen backbone outputs of a labelled folder, cached once and reused by every episode.

We cache the trunk map (the input of the backbone's last 1x1 conv, (320, 7, 7) for Lite0) as
float16: the pooled embedding is recomputed from it exactly by the frozen last stage, and methods
that adapt the last stage (SGPS, the transfer baseline) need the map itself. One backbone pass
per image, ever; episodes then cost a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from zsmed.data.folders import ClassFolder, LabeledItem
from zsmed.errors import DatasetError
from zsmed.features import FeatureCache, encode_files, file_sha256
from zsmed.progress import Job, Progress

if TYPE_CHECKING:
    from zsmed.encoders.efficientnet_lite import EfficientNetLite

TRUNK_SPACE_SUFFIX = "trunk-f16-v1"


def trunk_space(cache_id: str) -> str:
    return f"{cache_id}/{TRUNK_SPACE_SUFFIX}"


def trunk_featurizer(backbone: torch.nn.Module, view: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """(B, 3, S, S) model inputs -> trunk maps as float16 (halves the cache, no accuracy cost);
    with ``view`` (``zsmed.fewshot.views``), of the inputs under that view."""
    from zsmed.fewshot.views import apply_view

    def featurize(batch: np.ndarray) -> np.ndarray:
        if view is not None:
            batch = apply_view(batch, view)
        with torch.inference_mode():
            out = backbone.forward_trunk(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))  # type: ignore[operator]
        return out.to(torch.float16).numpy()

    return featurize


def lite_backbone(encoder: object) -> EfficientNetLite:
    """The EfficientNet-Lite module inside an image encoder (the one exposing ``forward_trunk``)."""
    from zsmed.encoders.efficientnet_lite import EfficientNetLite

    module = encoder.torch_module()  # type: ignore[attr-defined]
    inner = getattr(module, "backbone", module)
    if not isinstance(inner, EfficientNetLite):
        raise DatasetError(f"encoder {encoder.spec.name} exposes no trunk map; few-shot synthesis needs one")  # type: ignore[attr-defined]
    return inner


@dataclass
class FeatureBank:
    """Trunk maps (N, C, h, w) float16, pooled features (N, D) float32 and the frozen last conv's
    output before BN (N, D, h*w) float16 of labelled items."""

    items: list[LabeledItem]
    trunk: torch.Tensor
    pooled: torch.Tensor
    conv: torch.Tensor
    failures: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [item.label for item in self.items]

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    def indices_of(self, label: str) -> np.ndarray:
        return np.array([i for i, item in enumerate(self.items) if item.label == label], dtype=np.int64)

    def subset(self, keep: Sequence[int]) -> FeatureBank:
        index = torch.as_tensor(np.asarray(keep, dtype=np.int64))
        return FeatureBank([self.items[i] for i in keep], self.trunk[index], self.pooled[index], self.conv[index],
                           list(self.failures))

    @staticmethod
    def concat(banks: Sequence[FeatureBank]) -> FeatureBank:
        """One bank holding the items of several (copies the tensors)."""
        return FeatureBank([it for b in banks for it in b.items], torch.cat([b.trunk for b in banks]),
                           torch.cat([b.pooled for b in banks]), torch.cat([b.conv for b in banks]),
                           [f for b in banks for f in b.failures])

    def relabel(self, labels: Sequence[str]) -> FeatureBank:
        items = [LabeledItem(it.path, lab, it.group, it.meta) for it, lab in zip(self.items, labels, strict=True)]
        return FeatureBank(items, self.trunk, self.pooled, self.conv, list(self.failures))


def pool_trunk(backbone: torch.nn.Module, trunk: torch.Tensor, batch_size: int = 128
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen last stage on trunk maps, batched: pooled features (N, D) float32 and the last
    conv's output before BN (N, D, h*w) float16 (SGPS adapts the stage from there)."""
    pooled, convs = [], []
    with torch.inference_mode():
        for start in range(0, len(trunk), batch_size):
            chunk = trunk[start : start + batch_size].float()
            conv = backbone._conv_head(chunk)  # type: ignore[operator]
            pooled.append(torch.nn.functional.relu6(backbone._bn1(conv)).mean(dim=(2, 3)))  # type: ignore[operator]
            convs.append(conv.flatten(2).to(torch.float16))
    if not pooled:
        return torch.zeros(0, 1280), torch.zeros(0, 1280, 49, dtype=torch.float16)
    return torch.cat(pooled), torch.cat(convs)


def build_bank(
    folder: ClassFolder,
    encoder: object,
    cache: FeatureCache | None = None,
    batch_size: int = 32,
    view: str | None = None,
) -> Job[FeatureBank]:
    """Encode (or read from the cache) every item of a class folder. A job: yields Progress.
    ``view`` names a fixed view of every image (``zsmed.fewshot.views``, meta-training task
    augmentation), cached in a feature space of its own."""
    backbone = lite_backbone(encoder)
    paths = [item.path for item in folder.items]
    space = trunk_space(encoder.spec.cache_id)  # type: ignore[attr-defined]
    if view is not None:
        from zsmed.fewshot.views import view_fn

        view_fn(view)  # an unknown name fails before anything is encoded
        space = f"{space}/view-{view}"
    encoded = yield from encode_files(
        paths,
        encoder,
        cache,
        batch_size=batch_size,
        space=space,
        featurize=trunk_featurizer(backbone, view),
    )
    by_path = {p: i for i, p in enumerate(encoded.paths)}
    items = [item for item in folder.items if item.path in by_path]
    if not items:
        raise DatasetError("no image in the folder could be decoded", path=folder.root)
    trunk = torch.from_numpy(np.stack([encoded.features[by_path[item.path]] for item in items]).astype(np.float16))
    yield Progress(len(paths), len(paths), "pooling")
    pooled, conv = pool_trunk(backbone, trunk)
    return FeatureBank(items, trunk, pooled, conv, encoded.failures)


def content_ids(paths: Sequence[Path]) -> list[str]:
    return [file_sha256(p) for p in paths]
