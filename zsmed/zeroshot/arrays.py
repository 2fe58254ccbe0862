"""Numpy-only helpers shared by the zero-shot modules (no torch here, so class files and the
attribute predictor load without it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def l2n(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def balanced_mean(x: np.ndarray, labels: Sequence[str] | Sequence[int] | np.ndarray) -> np.ndarray:
    """Mean of the class means: every class weighs the same, whatever its size."""
    labels = np.asarray(labels)
    return np.mean([x[labels == c].mean(axis=0) for c in np.unique(labels)], axis=0)
