"""Latent-space alignment (arXiv 2503.04478): maps from a source encoder's space to a target's.

Each estimator has ``fit(anchors_src, anchors_tgt)`` on paired anchors (the same images through
both encoders, or (image, text) pairs) and ``transform(x)``; once fitted it is one affine map
``y = x W^T + b`` exposed as ``linear_map()`` -> (W (d_tgt, d_src), b (d_tgt,)), so a stitched
classifier is a plain linear layer in front of the original head and exports unchanged.

- ``ProcrustesAligner``: centre both sides, optionally scale, zero-pad the smaller dimension, and
  solve the orthogonal Procrustes problem (SVD); needs few anchors, preserves angles.
- ``LeastSquaresAligner``: linear map by (ridge-regularised) least squares, no bias.
- ``AffineAligner``: least squares with a bias.
- ``SGDAffineAligner``: the affine map trained by Adam on the mean squared error (mini-batches).
"""

from __future__ import annotations

import numpy as np

from zsmed.errors import AlignmentError


def _check(anchors_src: np.ndarray, anchors_tgt: np.ndarray, min_anchors: int, name: str
           ) -> tuple[np.ndarray, np.ndarray]:
    src = np.asarray(anchors_src, dtype=np.float64)
    tgt = np.asarray(anchors_tgt, dtype=np.float64)
    if src.ndim != 2 or tgt.ndim != 2:
        raise AlignmentError("anchors must be 2-D arrays (n_anchors, dim)")
    if len(src) != len(tgt):
        raise AlignmentError(f"anchor counts differ: {len(src)} source vs {len(tgt)} target; "
                             "anchors must be the same items seen through both encoders")
    if len(src) < min_anchors:
        raise AlignmentError(f"{name} needs at least {min_anchors} anchors, got {len(src)}")
    if not (np.isfinite(src).all() and np.isfinite(tgt).all()):
        raise AlignmentError("anchors contain NaN or infinite values")
    return src, tgt


class Aligner:
    """Base: a fitted affine map; subclasses implement ``_fit``."""

    name = ""

    def min_anchors(self, d_src: int, d_tgt: int) -> int:
        return 2

    def fit(self, anchors_src: np.ndarray, anchors_tgt: np.ndarray) -> Aligner:
        src = np.asarray(anchors_src)
        tgt = np.asarray(anchors_tgt)
        d_src = src.shape[1] if src.ndim == 2 else 0
        d_tgt = tgt.shape[1] if tgt.ndim == 2 else 0
        src, tgt = _check(src, tgt, self.min_anchors(d_src, d_tgt), self.name)
        self.d_src_, self.d_tgt_ = src.shape[1], tgt.shape[1]
        self.weight_, self.bias_ = self._fit(src, tgt)
        return self

    def _fit(self, src: np.ndarray, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def transform(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "weight_"):
            raise AlignmentError(f"{self.name} aligner is not fitted")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.d_src_:
            raise AlignmentError(f"expected source features of dimension {self.d_src_}, got shape {x.shape}")
        return x @ self.weight_.T + self.bias_

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:
        """(W, b) with transform(x) = x W^T + b."""
        return self.weight_.copy(), self.bias_.copy()


class ProcrustesAligner(Aligner):
    """Orthogonal Procrustes with centring, isotropic scaling and zero padding of the smaller space.

    y = s (x - mu_x) R + mu_y, R orthogonal in the padded space (max(d_src, d_tgt)); the padded
    rows/columns are dropped from the final (d_tgt, d_src) matrix, which stays exact because
    padded coordinates are zero on the input side and discarded on the output side.

    With fewer anchors than dimensions (200 anchors, 1280-d features) the anchors fix R only on the
    span they cover; the rest of a full rotation is whatever the SVD routine picks, so stitched
    accuracy moved between machines (CXR at 200 anchors: 87 % and 78 % of native on two hosts).
    ``span_only`` (default) keeps R on the anchors' span and sends the unexplored directions to the
    target mean, the one choice the anchors support: the same R when anchors span the space, and
    better stitching when they do not (docs/bench/zeroshot.md).
    """

    name = "procrustes"

    def __init__(self, center: bool = True, scale: bool = True, span_only: bool = True) -> None:
        self.center, self.scale, self.span_only = center, scale, span_only

    def _fit(self, src: np.ndarray, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu_x = src.mean(axis=0) if self.center else np.zeros(src.shape[1])
        mu_y = tgt.mean(axis=0) if self.center else np.zeros(tgt.shape[1])
        xc, yc = src - mu_x, tgt - mu_y
        d = max(src.shape[1], tgt.shape[1])
        xp = np.zeros((len(xc), d))
        yp = np.zeros((len(yc), d))
        xp[:, : xc.shape[1]] = xc
        yp[:, : yc.shape[1]] = yc
        u, sing, vt = np.linalg.svd(xp.T @ yp)
        rank = int((sing > sing[0] * d * np.finfo(np.float64).eps).sum()) if self.span_only else d
        rotation = u[:, :rank] @ vt[:rank]  # (d, d): x R ~ y
        s = float(sing.sum() / max((xp**2).sum(), 1e-12)) if self.scale else 1.0
        full = s * rotation[: src.shape[1], : tgt.shape[1]]  # (d_src, d_tgt)
        weight = full.T
        bias = mu_y - mu_x @ full
        return weight, bias


class LeastSquaresAligner(Aligner):
    """y = x W^T (no bias, no centring), ridge ``alpha`` relative to the mean squared anchor norm."""

    name = "lstsq"

    def __init__(self, alpha: float = 1e-3) -> None:
        self.alpha = alpha

    def min_anchors(self, d_src: int, d_tgt: int) -> int:
        return 2

    def _solve(self, src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        n, d = src.shape
        reg = self.alpha * float((src**2).sum() / n)
        # Dual form when anchors are fewer than dimensions: (n x n) instead of (d x d).
        if n < d:
            gram = src @ src.T + reg * np.eye(n)
            return (src.T @ np.linalg.solve(gram, tgt)).T
        return np.linalg.solve(src.T @ src + reg * np.eye(d), src.T @ tgt).T

    def _fit(self, src: np.ndarray, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._solve(src, tgt), np.zeros(tgt.shape[1])


class AffineAligner(LeastSquaresAligner):
    """y = x W^T + b: least squares on centred anchors, the bias restores the target mean."""

    name = "affine"

    def min_anchors(self, d_src: int, d_tgt: int) -> int:
        return 3

    def _fit(self, src: np.ndarray, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu_x, mu_y = src.mean(axis=0), tgt.mean(axis=0)
        weight = self._solve(src - mu_x, tgt - mu_y)
        return weight, mu_y - weight @ mu_x


class SGDAffineAligner(Aligner):
    """The affine map trained by gradient descent (heavy-ball momentum) on the MSE, from zero.

    The map a site can train where anchors stream in or are too many to solve for at once. Inputs
    are centred and scaled by one global factor, and the step is 1/L for the loss's Lipschitz
    constant L (measured on the anchors, not tuned): gradient descent from zero then stays in the
    span of the anchors and converges to the minimum-norm solution, the one ``affine`` solves for
    in closed form. Per-dimension standardisation (the first version) changes which solution that
    is and amplifies near-constant feature dimensions: 60 % of native at 200 anchors on chest
    X-rays against affine's 98 % (docs/bench/zeroshot.md). ``lr`` overrides the 1/L step.
    """

    name = "sgd"

    def __init__(self, epochs: int = 300, lr: float | None = None, weight_decay: float = 0.0, batch_size: int = 256,
                 momentum: float = 0.9, seed: int = 0) -> None:
        self.epochs, self.lr, self.weight_decay, self.batch_size = epochs, lr, weight_decay, batch_size
        self.momentum, self.seed = momentum, seed

    def min_anchors(self, d_src: int, d_tgt: int) -> int:
        return 3

    def _fit(self, src: np.ndarray, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        gen = torch.Generator().manual_seed(self.seed)
        mu_x, mu_y = src.mean(axis=0), tgt.mean(axis=0)
        centred = src - mu_x
        scale = float(np.sqrt((centred**2).sum(axis=1).mean())) or 1.0
        x = torch.as_tensor(centred / scale, dtype=torch.float32)
        y = torch.as_tensor(tgt - mu_y, dtype=torch.float32)
        n = len(x)
        # The loss's gradient is Lipschitz with 2 * the largest eigenvalue of x^T x / n (the same
        # nonzero eigenvalues as x x^T / n, the smaller matrix when anchors are fewer than dims).
        gram = x.T @ x if x.shape[1] <= n else x @ x.T
        lipschitz = 2.0 * float(torch.linalg.eigvalsh(gram.double() / n)[-1])
        weight = torch.zeros((y.shape[1], x.shape[1]), requires_grad=True)
        opt = torch.optim.SGD([weight], lr=self.lr or 1.0 / max(lipschitz, 1e-12), momentum=self.momentum,
                              weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                opt.zero_grad()
                loss = ((x[idx] @ weight.T - y[idx]) ** 2).sum(1).mean()
                loss.backward()
                opt.step()
        w = weight.detach().numpy().astype(np.float64) / scale
        return w, mu_y - w @ mu_x


ALIGNERS: dict[str, type[Aligner]] = {
    "procrustes": ProcrustesAligner,
    "lstsq": LeastSquaresAligner,
    "affine": AffineAligner,
    "sgd": SGDAffineAligner,
}


def create_aligner(name: str) -> Aligner:
    try:
        return ALIGNERS[name]()
    except KeyError:
        raise AlignmentError(f"unknown alignment method '{name}'; known: {', '.join(ALIGNERS)}") from None


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    na = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    nb = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.sum(na * nb, axis=1)))
