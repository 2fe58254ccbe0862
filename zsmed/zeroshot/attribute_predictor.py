"""Per-image attributes predicted from image features, for data sets without per-image annotations.

FSIGenZ's ridge synthesis is strongest over the finest seen basis, the annotated seen images
themselves (``image_attributes`` in the class file). HAM10000 has no per-image annotations, and with
four seen classes a class-level basis spans only four directions. An attribute predictor trained on
*another* annotated data set (Derm7pt's 7-point criteria) gives every seen training image an
attribute vector, so the per-image basis exists there too. The predictor is trained only on
diagnoses that are not among the unseen classes of the protocols that use it (its file says which
were left out), and it is used at build time only: the exported classifier never calls it.

A class file names it with ``image_attribute_predictor: FILE.npz`` (relative to the class file);
its attribute names must be the file's ``attribute_names``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.errors import ConfigError
from zsmed.zeroshot.arrays import balanced_mean, l2n

FORMAT = "zsmed-attribute-predictor-v1"


@dataclass(frozen=True)
class AttributePredictor:
    """Ridge map from centred, L2-normalised features to attribute values.

    Features are centred on the class-balanced mean of the images being annotated (each data set on
    its own mean, which removes most of the shift between data sets), normalised, then mapped.
    """

    names: list[str]
    encoder: str
    weight: np.ndarray  # (d, k)
    offset: np.ndarray  # (k,): the training annotations' mean
    info: dict[str, Any] = field(default_factory=dict)

    def predict(self, features: np.ndarray, labels: Sequence[str] | np.ndarray) -> np.ndarray:
        """(n, d) features of labelled images -> (n, k) predicted attribute values."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.weight.shape[0]:
            raise ConfigError(f"the attribute predictor expects {self.weight.shape[0]}-d features of {self.encoder}, "
                              f"got shape {features.shape}")
        z = l2n(features - balanced_mean(features, labels))
        return z @ self.weight + self.offset

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        meta = {"format": FORMAT, "names": self.names, "encoder": self.encoder, "info": self.info}
        with path.open("wb") as handle:
            np.savez(handle, weight=self.weight.astype(np.float32), offset=self.offset.astype(np.float32),
                     meta=np.array(json.dumps(meta)))
        return path


def fit_attribute_predictor(
    features: np.ndarray,
    annotations: np.ndarray,
    labels: Sequence[str] | np.ndarray,
    names: Sequence[str],
    encoder: str,
    lam: float = 1.0,
    info: dict[str, Any] | None = None,
) -> AttributePredictor:
    """Ridge regression of 0/1 annotations on features centred on their class-balanced mean."""
    features = np.asarray(features, dtype=np.float64)
    annotations = np.asarray(annotations, dtype=np.float64)
    if annotations.shape != (len(features), len(names)):
        raise ConfigError(f"annotations must be (images, attributes) = ({len(features)}, {len(names)}), "
                          f"got {annotations.shape}")
    z = l2n(features - balanced_mean(features, labels))
    offset = annotations.mean(axis=0)
    weight = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ (annotations - offset))
    return AttributePredictor(list(names), encoder, weight, offset, dict(info or {}, ridge_lambda=lam))


def load_attribute_predictor(path: str | Path) -> AttributePredictor:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            weight = np.asarray(data["weight"], dtype=np.float64)
            offset = np.asarray(data["offset"], dtype=np.float64)
    except FileNotFoundError as exc:
        raise ConfigError("attribute predictor file not found", path=path) from exc
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"not an attribute predictor file ({exc.__class__.__name__}: {exc})", path=path) from exc
    if meta.get("format") != FORMAT:
        raise ConfigError(f"unsupported attribute predictor format {meta.get('format')!r} "
                          f"(this version reads {FORMAT})", path=path)
    names = list(meta["names"])
    if weight.shape[1:] != (len(names),) or offset.shape != (len(names),):
        raise ConfigError("attribute predictor arrays do not match its attribute names", path=path)
    return AttributePredictor(names, str(meta["encoder"]), weight, offset, dict(meta.get("info", {})))
