"""Zero-shot estimators with fit / scores / predict: FSIGenZ and the DeViSE and ESZSL baselines.

All share one interface, so calibrated stacking and the evaluation treat them alike:
``fit(x, y, problem, basis=None)`` with ``x`` (n, d) pooled features of seen images, ``y`` (n,)
class indices into ``problem.classes`` (seen classes only), ``basis`` (n,) indices into the
problem's seen basis (finer labels; defaults to the class itself). ``scores(x)`` gives raw
(n, C) scores; ``decision_function`` subtracts the calibration constant from seen classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from zsmed.errors import ConfigError, DatasetError
from zsmed.zeroshot.core import (
    MSAS,
    DPSRConfig,
    FeatureNormaliser,
    IdentityScoring,
    ZeroShotProblem,
    bilinear_class_weights,
    centre_semantics,
    class_means,
    cosine_matrix,
    dpsr_train,
    instance_prototypes,
    l2n,
    synthesise_prototypes,
)


def default_basis(y: np.ndarray, problem: ZeroShotProblem) -> np.ndarray:
    """Basis index of each sample when the basis is the seen classes themselves."""
    assert problem.basis_parent is not None
    lookup = {int(c): i for i, c in enumerate(problem.basis_parent)}
    if len(lookup) != len(problem.basis_parent):
        raise DatasetError("the problem has a finer seen basis: pass each sample's basis label")
    try:
        return np.array([lookup[int(c)] for c in y], dtype=int)
    except KeyError as exc:
        raise DatasetError(f"training label {exc} is not a seen class") from None


def _require_instance_inputs(problem: ZeroShotProblem, attributes: np.ndarray | None, n: int) -> np.ndarray:
    """The problem's raw class attribute table, after checking the per-image annotations fit it."""
    if attributes is None:
        raise DatasetError("this setting needs per-image attribute annotations ('image_attributes' in the "
                           "class-definition file and the columns in metadata.csv)")
    if problem.attribute_table is None:
        raise DatasetError("this setting needs attribute semantics for every class")
    if attributes.shape != (n, problem.attribute_table.shape[1]):
        raise DatasetError(f"image attributes have shape {attributes.shape}, expected ({n}, "
                           f"{problem.attribute_table.shape[1]})")
    return problem.attribute_table


class ZeroShotEstimator:
    calibration: float = 0.0
    name: str = ""
    whiten: int = 0

    # True when fit() cannot work without per-image attribute annotations
    needs_image_attributes: bool = False

    def fit(self, x: np.ndarray, y: np.ndarray, problem: ZeroShotProblem,
            basis: np.ndarray | None = None, attributes: np.ndarray | None = None) -> ZeroShotEstimator:
        """``attributes``: (n, k) raw 0/1 annotations of each training image, where the data have them."""
        raise NotImplementedError

    def scores(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return self.scores(x) - self.calibration * self.seen_mask_[None, :]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.decision_function(x), axis=1)

    def _setup(self, x: np.ndarray, y: np.ndarray, problem: ZeroShotProblem,
               basis: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if len(x) != len(y):
            raise DatasetError("features and labels differ in length")
        if not problem.seen[np.asarray(y, dtype=int)].all():
            raise DatasetError("training images must all belong to seen classes")
        self.problem_ = problem
        self.seen_mask_ = problem.seen.astype(np.float64)
        self.norm_ = FeatureNormaliser(self.whiten).fit(x, np.asarray(y))
        z = self.norm_.transform(x)
        b = default_basis(y, problem) if basis is None else np.asarray(basis, dtype=int)
        assert problem.basis_semantics is not None
        self.semantics_, self.basis_semantics_ = centre_semantics(problem.semantics, problem.seen_idx,
                                                                  problem.basis_semantics)
        return z, b


@dataclass(frozen=True)
class FSIGenZConfig:
    whiten: int = 0  # PCA-whitening dimensions of the features (0 = centre + normalise only)
    msas: bool = True
    msas_eta: float = 1.0
    threshold: float | None = None
    lambdas: tuple[float, ...] = (0.1, 1.0, 10.0)
    sparse: bool = False
    # "bilinear": discriminative map; "ridge": combination over the finest seen basis given to fit():
    # the annotated seen images themselves when per-image attributes are passed, else the seen
    # (fine) classes' means
    synthesis: str = "bilinear"
    instance_lambdas: tuple[float, ...] = (1.0, 10.0, 100.0)
    init: str = "bilinear"  # DPSR start: "bilinear" weights for all classes, or "means" (seen means, prototypes)
    dpsr: DPSRConfig = field(default_factory=DPSRConfig)


class FSIGenZ(ZeroShotEstimator):
    """MSAS -> prototype synthesis over the seen basis -> DPSR contrastive classifier."""

    name = "fsigenz"

    def __init__(self, config: FSIGenZConfig | None = None, **changes: Any) -> None:
        self.config = replace(config or FSIGenZConfig(), **changes)
        self.whiten = self.config.whiten

    def fit(self, x: np.ndarray, y: np.ndarray, problem: ZeroShotProblem,
            basis: np.ndarray | None = None, attributes: np.ndarray | None = None) -> FSIGenZ:
        cfg = self.config
        z, b = self._setup(x, y, problem, basis)
        assert problem.basis_semantics is not None
        n_basis = len(problem.basis_semantics)
        basis_means = class_means(z, b, n_basis)
        scoring = MSAS(threshold=cfg.threshold, eta=cfg.msas_eta) if cfg.msas else IdentityScoring()
        scoring.fit(self.basis_semantics_, basis_means)
        self.scoring_ = scoring
        refined_all = scoring.transform(self.semantics_)
        refined_basis = scoring.transform(self.basis_semantics_)
        unseen = problem.unseen_idx
        n_classes = len(problem.classes)
        bilinear = ([bilinear_class_weights(z, b, refined_basis, refined_all, lam) for lam in cfg.lambdas]
                    if cfg.synthesis == "bilinear" or cfg.init == "bilinear" else [])
        if len(unseen) and cfg.synthesis == "ridge" and attributes is not None:
            # the finest seen basis there is: every annotated seen image
            table = _require_instance_inputs(problem, attributes, len(x))
            protos, owner = instance_prototypes(z, np.asarray(y, dtype=int), np.asarray(attributes, dtype=np.float64),
                                                table[unseen], cfg.instance_lambdas)
            protos = l2n(protos)
            proto_labels = unseen[owner]
        elif len(unseen) and cfg.synthesis == "bilinear":
            protos = l2n(np.concatenate([w[unseen] for w in bilinear]))
            proto_labels = np.tile(unseen, len(bilinear))
        elif len(unseen):
            protos, owner = synthesise_prototypes(refined_basis, basis_means, refined_all[unseen],
                                                  cfg.lambdas, cfg.sparse)
            protos = l2n(protos)
            proto_labels = unseen[owner]
        else:
            protos, proto_labels = np.zeros((0, z.shape[1])), np.zeros(0, dtype=int)
        self.prototypes_, self.prototype_labels_ = protos, proto_labels
        init = np.zeros((n_classes, z.shape[1]))
        y = np.asarray(y, dtype=int)
        for c in range(n_classes):
            if cfg.init == "bilinear":
                rows = np.stack([l2n(w[c]) for w in bilinear])
            else:
                rows = z[y == c] if problem.seen[c] else protos[proto_labels == c]
            init[c] = rows.mean(axis=0) if len(rows) else 0.0
        self.weight_, self.bias_ = dpsr_train(z, y, protos, proto_labels, n_classes,
                                              cosine_matrix(refined_all), init, cfg.dpsr)
        return self

    def class_weights(self) -> np.ndarray:
        """The DPSR class weights as the logits use them (unit rows for the cosine classifier)."""
        return l2n(self.weight_) if self.config.dpsr.cosine else self.weight_

    def scores(self, x: np.ndarray) -> np.ndarray:
        z = self.norm_.transform(x)
        return self.config.dpsr.scale * (z @ self.class_weights().T) + self.bias_[None, :]

    def head_arrays(self) -> dict[str, np.ndarray]:
        """Tensors of the exported head (logits = scale * z.weight + bias); the calibration constant
        is folded into the bias."""
        return {**self.norm_.arrays(), "weight": self.class_weights(),
                "bias": self.bias_ - self.calibration * self.seen_mask_,
                "scale": np.asarray(self.config.dpsr.scale, dtype=np.float64)}


class FSIGenZEnsemble(ZeroShotEstimator):
    """The mean of several FSIGenZ settings' scores, each standardised by its own scores on the
    training images (cosine and plain-dot logits live on different scales).

    Why: the pseudo-unseen folds rank the settings noisily (a hidden *seen* class is not an unseen
    class), so the one setting they rank first is often not the best; averaging the few they rank
    highest removes most of that choice's variance. Every member shares the feature normalisation
    (none whitens), so the average is one linear head over the same normalised features.
    """

    name = "fsigenz"

    def __init__(self, configs: Sequence[FSIGenZConfig]) -> None:
        self.configs = list(dict.fromkeys(configs))  # an ablation may map two settings onto one
        if not self.configs:
            raise ConfigError("an ensemble needs at least one setting")
        if any(c.whiten for c in self.configs):
            raise ConfigError("ensemble members must share the feature normalisation (no whitening)")

    def fit(self, x: np.ndarray, y: np.ndarray, problem: ZeroShotProblem,
            basis: np.ndarray | None = None, attributes: np.ndarray | None = None) -> FSIGenZEnsemble:
        self.members_ = [FSIGenZ(c).fit(x, y, problem, basis, attributes) for c in self.configs]
        self.standardise_ = []
        for member in self.members_:
            train_scores = member.scores(x)
            self.standardise_.append((float(train_scores.mean()), float(train_scores.std()) + 1e-9))
        self.problem_ = problem
        self.seen_mask_ = problem.seen.astype(np.float64)
        return self

    def scores(self, x: np.ndarray) -> np.ndarray:
        return np.mean([(member.scores(x) - centre) / spread
                        for member, (centre, spread) in zip(self.members_, self.standardise_, strict=True)], axis=0)

    def head_arrays(self) -> dict[str, np.ndarray]:
        """One head: each member's logits are linear in the shared normalised features, so the
        average of their standardised logits is too (scale 1; calibration folded into the bias)."""
        weight = np.zeros_like(self.members_[0].class_weights())
        bias = np.zeros(len(self.seen_mask_))
        for member, (centre, spread) in zip(self.members_, self.standardise_, strict=True):
            weight += member.config.dpsr.scale * member.class_weights() / spread
            bias += (member.bias_ - centre) / spread
        n = len(self.members_)
        return {**self.members_[0].norm_.arrays(), "weight": weight / n,
                "bias": bias / n - self.calibration * self.seen_mask_, "scale": np.asarray(1.0)}


class DeViSE(ZeroShotEstimator):
    """Plain linear semantic embedding: ridge map from features to the semantic space, trained on the
    seen (basis) semantics; a class scores by the cosine of the mapped image to its semantics."""

    name = "devise"

    def __init__(self, lam: float = 1.0, whiten: int = 0, targets: str = "classes") -> None:
        self.lam, self.whiten, self.target_kind = lam, whiten, targets

    @property
    def needs_image_attributes(self) -> bool:  # type: ignore[override]
        return self.target_kind == "images"

    def fit(self, x: np.ndarray, y: np.ndarray, problem: ZeroShotProblem,
            basis: np.ndarray | None = None, attributes: np.ndarray | None = None) -> DeViSE:
        z, b = self._setup(x, y, problem, basis)
        assert problem.basis_semantics is not None
        if self.target_kind == "images":
            # Regress each image's own annotation (attribute prediction), centred on the seen
            # classes' mean row; a class scores by the cosine to its centred attribute row.
            table = _require_instance_inputs(problem, attributes, len(x))
            centre = table[problem.seen_idx].mean(axis=0)
            targets = np.asarray(attributes, dtype=np.float64) - centre
            balance_by = np.asarray(y, dtype=int)  # each seen class weighs the same
            self.targets_ = l2n(table - centre)
        else:
            targets = self.basis_semantics_[b]
            balance_by = b  # each basis class weighs the same
            self.targets_ = self.semantics_
        weights = (1.0 / np.bincount(balance_by)[balance_by])[:, None]
        gram = z.T @ (weights * z) + self.lam * np.eye(z.shape[1]) / len(z)
        self.map_ = np.linalg.solve(gram, z.T @ (weights * targets))
        return self

    def scores(self, x: np.ndarray) -> np.ndarray:
        return l2n(self.norm_.transform(x) @ self.map_) @ self.targets_.T


class ESZSL(ZeroShotEstimator):
    """Embarrassingly simple ZSL (Romera-Paredes & Torr 2015), closed form:
    V = (X X^T + g I)^-1 X Y S^T (S S^T + l I)^-1, score = x^T V s_c."""

    name = "eszsl"

    def __init__(self, gamma: float = 1.0, lam: float = 1.0, whiten: int = 0) -> None:
        self.gamma, self.lam, self.whiten = gamma, lam, whiten

    def fit(self, x: np.ndarray, y: np.ndarray, problem: ZeroShotProblem,
            basis: np.ndarray | None = None, attributes: np.ndarray | None = None) -> ESZSL:
        z, b = self._setup(x, y, problem, basis)
        assert problem.basis_semantics is not None
        s = self.basis_semantics_.T  # (k, B)
        y_pm = -np.ones((len(z), s.shape[1]))
        y_pm[np.arange(len(z)), b] = 1.0
        left = np.linalg.solve(z.T @ z + self.gamma * np.eye(z.shape[1]), z.T @ y_pm @ s.T)
        self.v_ = left @ np.linalg.inv(s @ s.T + self.lam * np.eye(s.shape[0]))
        self.targets_ = self.semantics_
        return self

    def scores(self, x: np.ndarray) -> np.ndarray:
        return self.norm_.transform(x) @ self.v_ @ self.targets_.T
