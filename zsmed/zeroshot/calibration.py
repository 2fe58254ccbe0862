"""GZSL metrics and calibrated stacking with the constant chosen on seen classes only.

Calibrated stacking (Chao et al. 2016) subtracts a constant gamma from every seen-class score, so
unseen classes are not swamped by the classes the model was trained on. gamma must not be tuned on
unseen images. We choose it by *pseudo-unseen* validation: each seen class in turn is hidden
(its images and basis rows removed), the model is refit on the remaining seen classes' training
part, and gamma is the value maximising the mean harmonic mean H over these folds, measured on
held-out seen groups plus the hidden class; the folds are repeated over a few group splits of the
seen training images (``split_repeats``) and their H averaged. With fewer than three seen classes
no such fold leaves a usable model; gamma then keeps ``seen_keep`` of held-out seen images
predicted as seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from zsmed.errors import ConfigError
from zsmed.zeroshot.core import ZeroShotProblem
from zsmed.zeroshot.estimators import ZeroShotEstimator


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> float:
    """Mean over ``classes`` (those present in y_true) of the per-class accuracy."""
    accs = [float(np.mean(y_pred[y_true == c] == c)) for c in classes if np.any(y_true == c)]
    return float(np.mean(accs)) if accs else 0.0


def harmonic(a: float, b: float) -> float:
    return 0.0 if a + b <= 0 else 2 * a * b / (a + b)


@dataclass
class GZSLScores:
    seen: float
    unseen: float
    h: float
    zsl: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"seen_acc": self.seen, "unseen_acc": self.unseen, "H": self.h, "zsl_acc": self.zsl}


def gzsl_scores(scores: np.ndarray, y: np.ndarray, seen: np.ndarray, gamma: float = 0.0) -> GZSLScores:
    """Per-class mean accuracies on seen and unseen test images among all classes, H, and the
    conventional ZSL accuracy (unseen images, unseen classes only)."""
    seen = np.asarray(seen, dtype=bool)
    pred = np.argmax(scores - gamma * seen[None, :], axis=1)
    seen_cls, unseen_cls = np.flatnonzero(seen), np.flatnonzero(~seen)
    acc_s = per_class_accuracy(y, pred, seen_cls)
    acc_u = per_class_accuracy(y, pred, unseen_cls)
    zsl = None
    in_unseen = np.isin(y, unseen_cls)
    if in_unseen.any() and len(unseen_cls):
        sub = scores[in_unseen][:, unseen_cls]
        zsl = per_class_accuracy(y[in_unseen], unseen_cls[np.argmax(sub, axis=1)], unseen_cls)
    return GZSLScores(acc_s, acc_u, harmonic(acc_s, acc_u), zsl)


def group_split(groups: np.ndarray, fraction: float, seed: int, strata: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks; whole groups go to one side; per stratum (class) when given,
    so every class keeps images on both sides."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(groups), dtype=bool)
    strata = np.zeros(len(groups), dtype=int) if strata is None else np.asarray(strata)
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        uniq = np.unique(groups[idx])
        if len(uniq) < 2:
            continue
        n_test = min(len(uniq) - 1, max(1, round(fraction * len(uniq))))
        chosen = set(rng.choice(uniq, size=n_test, replace=False).tolist())
        test[idx] = np.isin(groups[idx], list(chosen))
    return ~test, test


def _rows(values: np.ndarray | None, mask: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[mask]


def _gamma_candidates(score_sets: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Scale-free grid: quantiles of the margin (best seen - best unseen score) over validation images."""
    gaps = []
    for scores, seen in score_sets:
        gaps.append(scores[:, seen].max(axis=1) - scores[:, ~seen].max(axis=1))
    allgaps = np.concatenate(gaps)
    grid = np.quantile(allgaps, np.linspace(0, 1, 201))
    return np.unique(np.concatenate([grid + 1e-9, [0.0], [float(allgaps.min()) - 1.0]]))


@dataclass
class CalibrationResult:
    gamma: float
    method: str
    folds: list[str] = field(default_factory=list)
    val_h: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {"gamma": self.gamma, "method": self.method, "pseudo_unseen_folds": self.folds, "val_H": self.val_h}


# A small seen class (Derm7pt's seborrhoeic keratoses: ~25 training images) leaves a handful of
# images on the validation side of one split, so one split's fold H moves by several points and
# decides between settings by chance: the folds are repeated over this many group splits and
# their H curves averaged.
DEFAULT_SPLIT_REPEATS = 3
# Seed offset between those splits. A step of 1 would give the runs of `eval zeroshot --repeats`
# (seeds SEED, SEED+1, ...) overlapping inner seeds, i.e. correlated fold splits across runs.
SPLIT_SEED_STEP = 7919


def choose_gamma(
    make: Callable[[], ZeroShotEstimator],
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    problem: ZeroShotProblem,
    basis: np.ndarray | None = None,
    val_fraction: float = 0.25,
    seed: int = 0,
    seen_keep: float = 0.9,
    attributes: np.ndarray | None = None,
    split_repeats: int = DEFAULT_SPLIT_REPEATS,
) -> CalibrationResult:
    """The calibration constant from seen training images only (see module docstring)."""
    if split_repeats < 1:
        raise ConfigError(f"split_repeats must be at least 1, not {split_repeats}")
    seen_idx = problem.seen_idx
    assert problem.basis_parent is not None and problem.basis_semantics is not None
    if basis is None:
        lookup = {int(c): i for i, c in enumerate(problem.basis_parent)}
        basis = np.array([lookup[int(c)] for c in y])
    if len(seen_idx) < 3:
        fit_mask, val_mask = group_split(groups, val_fraction, seed, strata=y)
        model = make().fit(x[fit_mask], y[fit_mask], problem, basis[fit_mask], _rows(attributes, fit_mask))
        scores = model.scores(x[val_mask])
        gaps = scores[:, problem.seen].max(axis=1) - scores[:, ~problem.seen].max(axis=1)
        gamma = float(np.quantile(gaps, 1.0 - seen_keep)) if len(gaps) else 0.0
        return CalibrationResult(gamma, f"seen_keep={seen_keep}")
    folds: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    names = []
    for repeat in range(split_repeats):
        fit_mask, val_mask = group_split(groups, val_fraction, seed + SPLIT_SEED_STEP * repeat, strata=y)
        for h in seen_idx:
            train = fit_mask & (y != h)
            # basis rows of the hidden class go, and so do rows whose images all fell in validation
            in_train = np.bincount(basis[train], minlength=len(problem.basis_parent)) > 0
            keep_basis = (problem.basis_parent != h) & in_train
            new_index = -np.ones(len(keep_basis), dtype=int)
            new_index[keep_basis] = np.arange(int(keep_basis.sum()))
            seen_h = problem.seen.copy()
            seen_h[h] = False
            sub = ZeroShotProblem(problem.classes, seen_h, problem.semantics,
                                  problem.basis_semantics[keep_basis], problem.basis_parent[keep_basis],
                                  [n for n, k in zip(problem.basis_names, keep_basis, strict=True) if k],
                                  problem.attribute_table)
            model = make().fit(x[train], y[train], sub, new_index[basis[train]], _rows(attributes, train))
            evaluate = (val_mask & (y != h)) | (y == h)
            folds.append((model.scores(x[evaluate]), y[evaluate], seen_h))
            if repeat == 0:
                names.append(problem.classes[h])
    grid = _gamma_candidates([(s, m) for s, _, m in folds])
    curve = np.zeros(len(grid))
    for scores, yy, seen_h in folds:
        curve += np.array([gzsl_scores(scores, yy, seen_h, g).h for g in grid])
    curve /= len(folds)
    # Among near-best values take the median one: the H curve is flat-topped and noisy.
    best = np.flatnonzero(curve >= curve.max() - 1e-6)
    pick = int(best[len(best) // 2])
    return CalibrationResult(float(grid[pick]), "pseudo-unseen", names, float(curve[pick]))
