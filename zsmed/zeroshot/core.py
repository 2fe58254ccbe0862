"""Building blocks of FSIGenZ (arXiv 2507.01026) on frozen pooled image features.

- ``ZeroShotProblem``: the classes to predict (seen and unseen), their semantic rows, and the seen
  *basis* prototypes are synthesised from (the seen classes themselves, or finer seen labels).
- ``MSAS``: model-specific attribute scoring, A = (A_o + A_mdf) W_A with A_mdf = A_o * (A_o > Th);
  W_A is learned on the seen basis so that the similarity structure of the re-scored semantics
  matches the similarity structure of the seen visual means (what *this* encoder separates).
- ``synthesise_prototypes``: unseen semantics as a ridge (or sparse) combination of the seen basis,
  the same combination of the basis' visual means is the prototype; one prototype per lambda.
- ``dpsr_train``: contrastive cosine classifier, L = L_S + beta L_U (BCE) + the regulariser keeping
  the classifier's class-similarity structure close to the semantic similarity structure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from zsmed.errors import ConfigError, DatasetError
from zsmed.zeroshot.arrays import balanced_mean, l2n


@dataclass
class ZeroShotProblem:
    """``classes``: predicted classes; ``seen``: bool mask over them; ``semantics``: (C, k).

    ``basis_semantics`` (B, k) with ``basis_parent`` (B,) class index: the seen basis; defaults to
    the seen classes themselves. Training samples carry a basis index (``fit(..., basis=...)``).
    """

    classes: list[str]
    seen: np.ndarray
    semantics: np.ndarray
    basis_semantics: np.ndarray | None = None
    basis_parent: np.ndarray | None = None
    basis_names: list[str] = field(default_factory=list)
    # Raw (unnormalised) class attribute vectors (C, k), when the classes have attributes: what the
    # per-image synthesis maps, since a class's row is the mean of its images' 0/1 annotations.
    attribute_table: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.seen = np.asarray(self.seen, dtype=bool)
        if len(self.classes) != len(self.seen) or len(self.classes) != len(self.semantics):
            raise ConfigError("classes, seen mask and semantics must have one entry per class")
        if not self.seen.any():
            raise ConfigError("zero-shot learning needs at least one seen class")
        if self.basis_semantics is None:
            idx = np.flatnonzero(self.seen)
            self.basis_semantics = self.semantics[idx]
            self.basis_parent = idx
            self.basis_names = [self.classes[i] for i in idx]
        assert self.basis_parent is not None
        if not all(self.seen[self.basis_parent]):
            raise ConfigError("every basis class must belong to a seen class")

    @property
    def seen_idx(self) -> np.ndarray:
        return np.flatnonzero(self.seen)

    @property
    def unseen_idx(self) -> np.ndarray:
        return np.flatnonzero(~self.seen)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """These optimisations are thousands of tiny matmuls: on a shared CPU, torch's thread pool spends
    more time synchronising (spinning) than computing, 3-6x slower than one thread here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------
def cosine_matrix(rows: np.ndarray) -> np.ndarray:
    normed = l2n(rows)
    return normed @ normed.T


class FeatureNormaliser:
    """u = normalise(x - mean); z = normalise((u - centre) P) with P an optional PCA whitening.

    ``mean`` is the *class-balanced* mean of the seen training images (each seen class weighs the
    same, so the origin is the centre of the seen classes, not of the largest one): centring removes
    the large component every pooled ImageNet feature shares, so cosines separate classes.
    ``whiten`` > 0 keeps that many principal directions of the seen training images, each scaled to
    unit variance (fitted on seen training images only): pooled features are dominated by a few
    high-variance directions that carry little class information; whitening gives every retained
    direction the same weight in cosine and prototype scores.
    """

    def __init__(self, whiten: int = 0) -> None:
        self.whiten = int(whiten)

    def fit(self, x: np.ndarray, y: np.ndarray | None = None) -> FeatureNormaliser:
        if y is None:
            self.mean_ = x.mean(axis=0)
        else:
            self.mean_ = balanced_mean(x, y)
        u = l2n(x - self.mean_)
        k = min(self.whiten, len(u) - 1, u.shape[1])
        if k > 0:
            self.centre_ = u.mean(axis=0)
            _, sing, vt = np.linalg.svd(u - self.centre_, full_matrices=False)
            std = sing[:k] / np.sqrt(max(len(u) - 1, 1))
            self.proj_ = vt[:k].T / np.maximum(std, 1e-8)[None, :]
        else:
            self.centre_ = np.zeros(u.shape[1])
            self.proj_ = None
        return self

    @property
    def dim(self) -> int:
        return len(self.mean_) if self.proj_ is None else self.proj_.shape[1]

    def transform(self, x: np.ndarray) -> np.ndarray:
        u = l2n(x - self.mean_)
        if self.proj_ is None:
            return u
        return l2n((u - self.centre_) @ self.proj_)

    def arrays(self) -> dict[str, np.ndarray]:
        """What the exported head needs: mean (d,), and when whitening centre (d,) and proj (d, k)."""
        if self.proj_ is None:
            return {"mean": self.mean_}
        return {"mean": self.mean_, "centre": self.centre_, "proj": self.proj_}


def centre_semantics(semantics: np.ndarray, seen_rows: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Centre semantic rows on the mean of the *seen classes'* rows, then L2-normalise.

    Sentence embeddings of any two descriptions share a large common component (cosine 0.3-0.8),
    and attribute vectors of dermoscopic classes share their frequent attributes; what relates an
    unseen class to the seen ones is its deviation from the seen classes' centre. Centring on the
    seen centre matches the visual side (features centred on the seen classes' mean), so a ridge
    combination of centred seen semantics maps to the same combination of centred seen means.
    (Centring over *all* classes, seen and unseen, makes every unseen row anti-correlated with all
    seen rows, and the synthesised prototypes point away from every seen class.)
    """
    centre = semantics[seen_rows].mean(axis=0)
    return [l2n(m - centre) for m in (semantics, *others)]


def class_means(z: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    means = np.zeros((n, z.shape[1]))
    for c in range(n):
        rows = z[labels == c]
        if len(rows) == 0:
            raise DatasetError(f"basis class {c} has no training image")
        means[c] = rows.mean(axis=0)
    return means


# ---------------------------------------------------------------------------------------------
# MSAS
# ---------------------------------------------------------------------------------------------
class MSAS:
    """A = (A_o + A_o * (A_o > Th)) W_A.

    ``threshold=None`` uses the median of A_o's entries: the attributes scored above the median for a
    class are emphasised (doubled) before the learned re-scoring. W_A (k x k, initialised at the
    identity, pulled towards it with weight ``eta``) minimises the gap between the cosine-similarity
    matrix of the re-scored seen-basis semantics and that of the seen-basis visual means.
    """

    def __init__(self, threshold: float | None = None, eta: float = 1.0, steps: int = 200, lr: float = 1e-2,
                 seed: int = 0) -> None:
        self.threshold, self.eta, self.steps, self.lr, self.seed = threshold, eta, steps, lr, seed

    def emphasise(self, a: np.ndarray) -> np.ndarray:
        th = self.threshold_
        return a + a * (a > th)

    def fit(self, basis_semantics: np.ndarray, basis_means: np.ndarray) -> MSAS:
        self.threshold_ = float(np.median(basis_semantics)) if self.threshold is None else float(self.threshold)
        k = basis_semantics.shape[1]
        torch.manual_seed(self.seed)
        a = torch.as_tensor(self.emphasise(basis_semantics), dtype=torch.float32)
        target = torch.as_tensor(cosine_matrix(basis_means), dtype=torch.float32)
        eye = torch.eye(k)
        w = eye.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=self.lr)
        n = len(a)
        with single_thread():
            self._optimise(a, w, eye, target, opt, n, k)
        self.weight_ = w.detach().numpy().astype(np.float64)
        return self

    def _optimise(self, a: torch.Tensor, w: torch.Tensor, eye: torch.Tensor, target: torch.Tensor,
                  opt: torch.optim.Optimizer, n: int, k: int) -> None:
        for _ in range(self.steps):
            opt.zero_grad()
            refined = torch.nn.functional.normalize(a @ w, dim=1)
            gap = ((refined @ refined.T - target) ** 2).sum() / max(1, n * n)
            loss = gap + self.eta * ((w - eye) ** 2).sum() / k
            loss.backward()
            opt.step()

    def transform(self, a: np.ndarray) -> np.ndarray:
        return l2n(self.emphasise(a) @ self.weight_)


class IdentityScoring:
    """The 'without MSAS' ablation: the original semantics, unchanged."""

    def fit(self, basis_semantics: np.ndarray, basis_means: np.ndarray) -> IdentityScoring:
        return self

    def transform(self, a: np.ndarray) -> np.ndarray:
        return l2n(a)


# ---------------------------------------------------------------------------------------------
# Prototype synthesis
# ---------------------------------------------------------------------------------------------
def ridge_coefficients(basis: np.ndarray, target: np.ndarray, lam: float) -> np.ndarray:
    """alpha = argmin ||target - basis^T alpha||^2 + lam ||alpha||^2 (basis: (B, k), target: (k,))."""
    gram = basis @ basis.T + lam * np.eye(len(basis))
    return np.linalg.solve(gram, basis @ target)


def sparse_coefficients(basis: np.ndarray, target: np.ndarray, lam: float) -> np.ndarray:
    """Non-negative lasso: few basis classes, each contributing positively (an interpretable mix)."""
    from sklearn.linear_model import Lasso

    model = Lasso(alpha=lam / (2 * basis.shape[1]), fit_intercept=False, positive=True, max_iter=5000)
    model.fit(basis.T, target)
    coef = np.asarray(model.coef_, dtype=np.float64)
    if not coef.any():  # lambda too strong: fall back to the nearest basis class
        coef[int(np.argmax(basis @ target))] = 1.0
    return coef


def synthesise_prototypes(
    basis_semantics: np.ndarray,
    basis_means: np.ndarray,
    targets: np.ndarray,
    lambdas: Sequence[float] = (0.1, 1.0, 10.0),
    sparse: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Prototypes mu = M_s alpha for each target row and lambda. Returns (prototypes, target index)."""
    solve = sparse_coefficients if sparse else ridge_coefficients
    protos, owner = [], []
    for t, target in enumerate(targets):
        for lam in lambdas:
            alpha = solve(basis_semantics, target, float(lam))
            protos.append(alpha @ basis_means)
            owner.append(t)
    return np.asarray(protos), np.asarray(owner, dtype=int)


def instance_prototypes(
    z: np.ndarray,
    y: np.ndarray,
    attributes: np.ndarray,
    targets: np.ndarray,
    lambdas: Sequence[float] = (1.0, 10.0, 100.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Prototype synthesis over the finest seen basis: every annotated seen image.

    FSIGenZ writes an unseen class's semantics as a ridge combination of the seen basis' semantics
    and takes the same combination of their visual means. With one basis row per image (its own
    0/1 annotation ``attributes``, (n, k)) the combination over n images is, in primal form, a
    ridge regression from attributes to features, z ~ z0 + (a - a0) W, and the prototype of a class
    with raw attribute row ``t`` (the mean of its images' annotations) is z0 + (t - a0) W. Images
    are weighted so that every seen class counts the same; one prototype per lambda.
    Returns (prototypes, target index).
    """
    counts = np.bincount(y)
    weights = (1.0 / counts[y]) / len(np.unique(y))
    a0 = weights @ attributes
    z0 = weights @ z
    ac, zc = attributes - a0, z - z0
    gram = ac.T @ (weights[:, None] * ac)
    cross = ac.T @ (weights[:, None] * zc)
    scale = float(np.trace(gram)) / max(gram.shape[0], 1)  # lambda relative to the attributes' variance
    protos, owner = [], []
    for lam in lambdas:
        w = np.linalg.solve(gram + lam * 1e-2 * max(scale, 1e-12) * np.eye(len(gram)), cross)
        for t, target in enumerate(targets):
            protos.append(z0 + (target - a0) @ w)
            owner.append(t)
    return np.asarray(protos), np.asarray(owner, dtype=int)


def bilinear_class_weights(z: np.ndarray, basis: np.ndarray, basis_semantics: np.ndarray,
                           semantics: np.ndarray, lam: float, feature_ridge: float = 1.0) -> np.ndarray:
    """Class weight vectors in feature space, W = V S^T (C, d), from the closed-form bilinear map
    V = (Z^T Z + g I)^-1 Z^T Y S_b (S_b^T S_b + lam I)^-1 trained to *classify* the seen basis
    images (one-vs-rest +-1 targets; Romera-Paredes & Torr's ESZSL solution). Every class,
    seen or unseen, gets its weight from its semantics through the same V, so seen and unseen
    scores are on one scale; an unseen weight is a discriminative, not a mean-based, combination of
    the seen classes, and may leave the span of the seen class means."""
    n_basis = len(basis_semantics)
    y_pm = -np.ones((len(z), n_basis))
    y_pm[np.arange(len(z)), basis] = 1.0
    counts = np.bincount(basis, minlength=n_basis).astype(np.float64)
    row_w = (len(z) / (n_basis * np.maximum(counts, 1)))[basis][:, None]  # each basis class weighs the same
    gram = z.T @ (row_w * z) + feature_ridge * np.eye(z.shape[1])
    left = np.linalg.solve(gram, z.T @ (row_w * y_pm) @ basis_semantics)
    k = basis_semantics.shape[1]
    v = left @ np.linalg.inv(basis_semantics.T @ basis_semantics + lam * np.eye(k))
    return semantics @ v.T


# ---------------------------------------------------------------------------------------------
# DPSR: semantic-aware contrastive classifier with dual-purpose semantic regularisation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DPSRConfig:
    beta: float = 0.2  # weight of the unseen-prototype loss L_U
    reg_weight: float = 1.0  # weight of the semantic-similarity regulariser (0 = ablation)
    scale: float = 10.0  # cosine logit scale (1 / temperature)
    epochs: int = 100
    lr: float = 1e-2
    weight_decay: float = 0.0
    seed: int = 0
    # False: logits = scale * z.w, the class weights keep their norms (as ESZSL's do): a class's
    # weight length then says how far along its direction its images lie
    cosine: bool = True


def similarity_gap(weights: torch.Tensor, semantic_sim: torch.Tensor) -> torch.Tensor:
    """Mean squared gap between the classifier's class-similarity matrix and the semantic one."""
    w = torch.nn.functional.normalize(weights, dim=1)
    return ((w @ w.T - semantic_sim) ** 2).mean()


@single_thread()
def dpsr_train(
    z_seen: np.ndarray,
    y_seen: np.ndarray,
    prototypes: np.ndarray,
    proto_labels: np.ndarray,
    n_classes: int,
    semantic_sim: np.ndarray,
    init_weights: np.ndarray,
    config: DPSRConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (W (C, d), bias (C,)) of logits = scale * cos(z, W_c) + b_c (scale * z.W_c + b_c when
    ``config.cosine`` is off); runs on one torch thread (``single_thread``).

    L_S: one-vs-all BCE of real seen features (class-balanced: each seen class weighs the same),
    L_U: BCE of the synthesised unseen prototypes, scaled by beta; the regulariser keeps the class
    weights' similarity structure near the semantic one, which both places the unseen weights (they
    have only a handful of prototypes) and stops seen classes from pushing them away.
    """
    torch.manual_seed(config.seed)
    x = torch.nn.functional.normalize(torch.as_tensor(z_seen, dtype=torch.float32), dim=1)
    y = torch.as_tensor(y_seen, dtype=torch.long)
    p = torch.nn.functional.normalize(torch.as_tensor(prototypes, dtype=torch.float32), dim=1)
    py = torch.as_tensor(proto_labels, dtype=torch.long)
    counts = torch.bincount(y, minlength=n_classes).float()
    sample_w = (1.0 / counts.clamp(min=1))[y]
    sample_w = sample_w / sample_w.sum()
    sim = torch.as_tensor(semantic_sim, dtype=torch.float32)
    w = torch.nn.Parameter(torch.as_tensor(init_weights, dtype=torch.float32).clone())
    b = torch.nn.Parameter(torch.full((n_classes,), -config.scale * 0.5))
    opt = torch.optim.Adam([w, b], lr=config.lr, weight_decay=config.weight_decay)
    eye = torch.eye(n_classes)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def logits(inputs: torch.Tensor) -> torch.Tensor:
        weights = torch.nn.functional.normalize(w, dim=1) if config.cosine else w
        return config.scale * inputs @ weights.T + b

    for _ in range(config.epochs):
        opt.zero_grad()
        loss_s = (bce(logits(x), eye[y], reduction="none").sum(1) * sample_w).sum()
        loss_u = bce(logits(p), eye[py], reduction="none").sum(1).mean() if len(p) else torch.zeros(())
        loss = loss_s + config.beta * loss_u
        if config.reg_weight > 0:
            loss = loss + config.reg_weight * similarity_gap(w, sim)
        loss.backward()
        opt.step()
    return w.detach().numpy().astype(np.float64), b.detach().numpy().astype(np.float64)
