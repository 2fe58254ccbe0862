"""The generator's text prior: descriptions as class directions in the frozen pooled feature space.

A ridge regression from description embeddings (MiniLM) to the class means of L2-normalised frozen
pooled features, fitted in closed form on the described base classes and kept in dual form (one
key and one value per base class, a few hundred kilobytes):

    direction(t) = normalise((t - mean_t) K^T V),  K = centred base texts,  V = (K K^T + lam I)^-1 (P - mean_P)

The generator adds ``beta / K`` times a described class's direction to its row (image episodes, K
images per class) and uses the direction as the row of a text-only episode
(``generator.class_weights``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from zsmed.errors import DatasetError
from zsmed.synth.generator import SGPSGenerator


def fit_dual_ridge(class_means: np.ndarray, texts: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text mean, keys, values) of the ridge map from texts (n, T) to class means (n, D)."""
    if len(class_means) != len(texts) or len(texts) < 3:
        raise DatasetError(f"the text prior needs >= 3 described classes, got {len(texts)}")
    t_mean = texts.mean(axis=0)
    keys = texts - t_mean
    centred = class_means - class_means.mean(axis=0)
    values = np.linalg.solve(keys @ keys.T + lam * np.eye(len(keys)), centred)
    return t_mean, keys, values


def class_means(pooled: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    unit = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    labels_arr = np.asarray(labels)
    return np.stack([unit[labels_arr == c].mean(axis=0) for c in classes])


def with_text_prior(generator: SGPSGenerator, pooled: np.ndarray, labels: Sequence[str],
                    text: Mapping[str, np.ndarray], *, beta: float, lam: float = 0.1) -> SGPSGenerator:
    """A copy of ``generator`` carrying a text prior fitted on every described class of ``labels``."""
    classes = sorted(c for c in set(labels) if c in text)
    t_mean, keys, values = fit_dual_ridge(class_means(pooled, labels, classes),
                                          np.stack([np.asarray(text[c], dtype=np.float64) for c in classes]), lam)
    config = generator.config.with_changes(text_prior_beta=beta, text_prior_classes=len(classes))
    out = SGPSGenerator(config, generator.w0, generator.a0, generator.b0)
    state = {k: v for k, v in generator.state_dict().items() if not k.startswith("text_prior_")}
    state["text_prior_mean"] = torch.as_tensor(t_mean, dtype=torch.float32)
    state["text_prior_keys"] = torch.as_tensor(keys, dtype=torch.float32)
    state["text_prior_values"] = torch.as_tensor(values, dtype=torch.float32)
    out.load_state_dict(state, strict=True)
    return out.eval()
