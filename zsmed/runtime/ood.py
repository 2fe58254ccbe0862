"""The out-of-distribution gate: how far an image's embedding lies from the support set.

Score: a Mahalanobis distance in a probabilistic-PCA model of the L2-normalised support
embeddings (mean, top principal directions with shrunk variances, one shared residual variance),
divided by the embedding dimension. Only aggregate statistics are stored, never per-image vectors.
The abstain threshold is a quantile of *held-out* support scores (k-fold cross-fitting): scores of
the images a model was fitted on are optimistically small, and a threshold set on them would
reject ordinary in-domain images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OOD_METHOD = "ppca-mahalanobis-v1"


def _normalise(embedding: np.ndarray) -> np.ndarray:
    x = np.asarray(embedding, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    # A zero embedding (e.g. all activations clipped) has no direction: keep it at the origin,
    # which lies far from any support mean on the unit sphere.
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 1e-12)


def _fit_stats(x: np.ndarray, max_components: int, shrinkage: float) -> dict[str, np.ndarray]:
    n, dim = x.shape
    mean = x.mean(axis=0)
    centred = x - mean
    k = int(max(1, min(max_components, n - 1)))
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variances = singular**2 / max(1, n - 1)
    total = float(variances.sum())
    top = variances[:k]
    residual = max((total - float(top.sum())) / max(1, dim - k), 1e-12)
    # Shrink the leading variances toward the average variance: with tens of support images the
    # sample eigenvalues are too spread, and tiny ones would make the score explode.
    average = total / dim
    top = (1.0 - shrinkage) * top + shrinkage * average
    residual = max(residual, shrinkage * average)
    return {
        "mean": mean.astype(np.float32),
        "components": vt[:k].astype(np.float32),
        "variances": np.maximum(top, 1e-12).astype(np.float32),
        "residual_variance": np.asarray([residual], dtype=np.float32),
    }


def ood_scores(embedding: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    """Raw distance score per row (larger: farther from the support set)."""
    x = _normalise(embedding) - stats["mean"].astype(np.float64)
    components = stats["components"].astype(np.float64)
    projected = x @ components.T
    residual = (x * x).sum(axis=1) - (projected * projected).sum(axis=1)
    score = (projected**2 / stats["variances"].astype(np.float64)).sum(axis=1)
    score += np.maximum(residual, 0.0) / float(stats["residual_variance"][0])
    return (score / x.shape[1]).astype(np.float64)


def fit_ood(
    embedding: np.ndarray,
    *,
    quantile: float = 0.99,
    margin: float = 1.1,
    max_components: int = 32,
    shrinkage: float = 0.2,
    folds: int = 5,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit the gate on support embeddings; returns (arrays for ood.npz, settings for the card)."""
    x = _normalise(embedding)
    n = len(x)
    if n < 4:
        raise ValueError(f"the OOD gate needs at least 4 support images, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    held_out = np.empty(n, dtype=np.float64)
    n_folds = min(folds, n)
    for fold in range(n_folds):
        test = order[fold::n_folds]
        train = np.setdiff1d(order, test)
        stats = _fit_stats(x[train], max_components, shrinkage)
        held_out[test] = ood_scores(x[test], stats)
    stats = _fit_stats(x, max_components, shrinkage)
    threshold = float(np.quantile(held_out, quantile)) * margin
    settings = {
        "method": OOD_METHOD,
        "threshold": threshold,
        "quantile": quantile,
        "margin": margin,
        "max_components": int(stats["components"].shape[0]),
        "shrinkage": shrinkage,
        "n_support": int(n),
        "held_out_abstain_rate": float(np.mean(held_out > threshold)),
        "held_out_score_median": float(np.median(held_out)),
    }
    return stats, settings


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Area under the ROC curve for 'out' scoring higher than 'in' (ties count half)."""
    a = np.asarray(in_scores, dtype=np.float64)
    b = np.asarray(out_scores, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    greater = (b[:, None] > a[None, :]).sum()
    ties = (b[:, None] == a[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(a) * len(b)))
