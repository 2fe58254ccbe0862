"""Safety logic pinned to expected values (no shared data needed): each test here fails when the
small planted bug named in its docstring is put back (each was checked by planting it).

A range check (0 <= H <= 1) passes whatever the code does; these compare with values worked out
independently of the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsmed.bundle.privacy import check_card
from zsmed.errors import ExportError
from zsmed.runtime.ood import _fit_stats, _normalise, fit_ood, ood_scores
from zsmed.runtime.predict import Prediction, aggregate_series
from zsmed.zeroshot.calibration import choose_gamma, gzsl_scores
from zsmed.zeroshot.core import ZeroShotProblem
from zsmed.zeroshot.estimators import ZeroShotEstimator

CLASSES = ["a", "b"]


def _pred(series: str, probs: list[float] | None, abstain: bool, ood: float | None = None,
          error: str | None = None) -> Prediction:
    return Prediction(source=f"{series}/img", series=series, abstain=abstain, error=error, ood_score=ood,
                      probabilities=dict(zip(CLASSES, probs, strict=True)) if probs is not None else {},
                      label=None if abstain else CLASSES[int(np.argmax(probs))] if probs else None)


# --- series vote -------------------------------------------------------------------------------
def test_series_vote_ignores_abstained_images_and_an_all_abstained_series_abstains() -> None:
    """Plant: ``usable = [m for m in members if m.probabilities]`` (abstained images counted)."""
    results = [
        # all three abstained (they still carry probabilities, all for 'b'): the series must abstain
        _pred("s1", [0.1, 0.9], True, 1.5), _pred("s1", [0.2, 0.8], True, 2.5), _pred("s1", [0.3, 0.7], True, 3.0),
        # two usable images for 'a', one abstained image strongly 'b', one unreadable file
        _pred("s2", [0.8, 0.2], False, 0.4), _pred("s2", [0.6, 0.4], False, 0.6), _pred("s2", [0.0, 1.0], True, 1.2),
        _pred("s2", None, True, None, error="cannot decode"),
    ]
    out = {entry.source: entry for entry in aggregate_series(results, CLASSES)}
    s1, s2 = out["s1"], out["s2"]
    assert s1.abstain is True and s1.label is None and s1.probabilities == {}
    assert s1.series == "0/3 images used" and s1.ood_score == 2.5
    assert s2.abstain is False and s2.label == "a"
    assert s2.probabilities == {"a": pytest.approx(0.7), "b": pytest.approx(0.3)}  # mean of the two used only
    assert s2.series == "2/4 images used" and s2.ood_score == 0.6  # median of 0.4, 0.6, 1.2


# --- privacy -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["DOE^JOHN", "Doe^John", "doe^john", "O'Brien^Mary", "Smith-Jones^A"])
def test_person_names_are_caught_in_any_case(name: str) -> None:
    """Plant: the person-name pattern made upper-case only (``[A-Z][A-Z'\\-]*\\^[A-Z]``)."""
    with pytest.raises(ExportError, match="looks like a DICOM person name"):
        check_card({"class_names": ["nv", "mel"], "descriptions": {"nv": f"seen in {name} last year"}})


def test_a_card_without_identifiers_passes() -> None:
    check_card({"class_names": ["nv", "mel"], "descriptions": {"nv": "a benign naevus; x^2 growth"}})


# --- OOD threshold -----------------------------------------------------------------------------
def _held_out_scores(embedding: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """The cross-fitted support scores, recomputed here from the published recipe (export/SPEC.md)."""
    x = _normalise(embedding)
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    held = np.empty(n)
    for fold in range(folds):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        held[test] = ood_scores(x[test], _fit_stats(x[train], 32, 0.2))
    return held


@pytest.mark.parametrize(("quantile", "margin"), [(0.99, 1.1), (0.9, 1.0), (0.75, 1.3)])
def test_ood_threshold_is_the_quantile_of_held_out_scores_times_the_margin(quantile: float, margin: float) -> None:
    """Plant: a different quantile (0.95, 1 - q, in-sample scores) in ``fit_ood``."""
    rng = np.random.default_rng(3)
    embedding = rng.normal(size=(200, 48)) + 2.0 * rng.normal(size=(1, 48))
    held = _held_out_scores(embedding)
    _, settings = fit_ood(embedding, quantile=quantile, margin=margin)
    expected = float(np.quantile(held, quantile)) * margin
    assert settings["threshold"] == pytest.approx(expected, rel=1e-9)
    assert settings["held_out_abstain_rate"] == pytest.approx(float(np.mean(held > expected)))
    if margin == 1.0:  # 200 scores, q = 0.9: the 20 above the interpolated 180th/181st value abstain
        assert settings["held_out_abstain_rate"] == pytest.approx(0.1)
    # in-sample scores are optimistic: a threshold from them would be smaller
    stats, _ = fit_ood(embedding)
    assert np.quantile(ood_scores(embedding, stats), 0.99) * 1.1 < fit_ood(embedding)[1]["threshold"]


def test_ood_defaults_are_the_documented_ones() -> None:
    """Plant: default quantile 0.99 -> 0.95 (or margin 1.1 -> 1.0)."""
    rng = np.random.default_rng(5)
    embedding = rng.normal(size=(120, 40)) + 1.5
    _, settings = fit_ood(embedding)
    assert (settings["quantile"], settings["margin"]) == (0.99, 1.1)
    assert settings["threshold"] == pytest.approx(float(np.quantile(_held_out_scores(embedding), 0.99)) * 1.1)


# --- zero-shot calibration constant --------------------------------------------------------------
class _Scores(ZeroShotEstimator):
    """Scores are the features themselves plus a bias toward the classes seen at fit time (what
    real models do: seen classes score higher). Lets the best calibration be worked out by hand."""

    name = "fixed"

    def __init__(self, seen_bias: float = 1.3) -> None:
        self.seen_bias = seen_bias

    def fit(self, x: np.ndarray, y: np.ndarray, problem: ZeroShotProblem, basis: np.ndarray | None = None,
            attributes: np.ndarray | None = None) -> _Scores:
        self._setup(x, y, problem, basis)
        return self

    def scores(self, x: np.ndarray) -> np.ndarray:
        return x + self.seen_bias * self.seen_mask_[None, :]


def test_calibration_is_subtracted_from_seen_classes_only() -> None:
    """Plant: ``scores + calibration * seen`` in ``decision_function`` or in ``gzsl_scores``."""
    problem = ZeroShotProblem(["s0", "s1", "u0"], np.array([True, True, False]), np.eye(3))
    model = _Scores(seen_bias=0.0).fit(np.zeros((2, 3)), np.array([0, 1]), problem)
    model.calibration = 0.5
    x = np.array([[1.0, 0.2, 0.7], [0.1, 0.6, 0.3]])
    np.testing.assert_allclose(model.decision_function(x), [[0.5, -0.3, 0.7], [-0.4, 0.1, 0.3]])
    assert model.predict(x).tolist() == [2, 2]
    # the metric applies gamma the same way: the unseen image (class 2) becomes right, one seen wrong
    scores = gzsl_scores(x, np.array([2, 1]), problem.seen, gamma=0.5)
    assert (scores.seen, scores.unseen, scores.h) == (0.0, 1.0, 0.0)
    scores = gzsl_scores(x, np.array([2, 1]), problem.seen, gamma=0.0)
    assert (scores.seen, scores.unseen) == (1.0, 0.0)


def test_calibration_constant_is_the_one_the_pseudo_unseen_folds_choose() -> None:
    """Plant: gamma fixed at 0 / the first grid value / the fold H maximised with the wrong sign.

    Every image scores 1.0 on its own class, 0 elsewhere, and the model adds 1.3 to every class it
    was fitted as seen. A hidden class's images then lose to a seen class by 0.3, and held-out seen
    images beat the hidden class by 2.3: every gamma in (0.3, 2.3) gives fold H = 1, none outside."""
    n_per = 6
    y = np.repeat(np.arange(4), n_per)
    x = np.eye(5)[y]  # four seen classes and one unseen, one-hot own-class scores
    problem = ZeroShotProblem([f"c{i}" for i in range(5)], np.array([True] * 4 + [False]), np.eye(5))
    groups = np.arange(len(y))
    result = choose_gamma(_Scores, x, y, groups, problem, seed=0, split_repeats=2)
    assert result.method == "pseudo-unseen" and result.folds == ["c0", "c1", "c2", "c3"]
    assert result.val_h == pytest.approx(1.0)
    assert 0.3 < result.gamma < 2.3
    # without calibration the hidden classes are never found
    fold = _Scores().fit(x[y != 0], y[y != 0], ZeroShotProblem(problem.classes, np.array([False, True, True, True,
                                                                                            False]), np.eye(5)))
    assert gzsl_scores(fold.scores(x), y, fold.seen_mask_.astype(bool), 0.0).unseen == 0.0


def test_a_built_zero_shot_model_carries_the_chosen_calibration(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Plant: ``model.calibration = 0`` (instead of the folds' gamma) in ``build_zeroshot``.

    The image encoder is replaced by fixed features and the setting search by one known setting and
    gamma, so what is checked is only what ``build_zeroshot`` does with them: the exported head's
    logits must be the model's scores minus gamma on seen classes."""
    import torch
    from PIL import Image

    import zsmed.zeroshot.evaluate as evaluate
    from tests.zeroshot.test_zeroshot_core import REPO
    from zsmed.progress import run_job
    from zsmed.zeroshot.build import build_zeroshot
    from zsmed.zeroshot.calibration import CalibrationResult
    from zsmed.zeroshot.estimators import FSIGenZ

    seen = ["bcc", "bkl", "mel", "nv"]
    rng = np.random.default_rng(0)
    for label in seen:
        (tmp_path / "seen" / label).mkdir(parents=True)
        for i in range(4):
            pixels = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "seen" / label / f"{label}{i}.png")
    dim = 1280
    centres = {label: rng.normal(size=dim) for label in seen}

    def fake_encode(paths, encoder_name):
        features = np.stack([centres[p.parent.name] + 0.1 * rng.normal(size=dim) for p in paths])
        yield from ()
        return features.astype(np.float32), list(range(len(paths)))

    made: list[FSIGenZ] = []

    def make() -> FSIGenZ:
        made.append(FSIGenZ())
        return made[-1]

    gamma = 0.37
    monkeypatch.setattr(evaluate, "_encode", fake_encode)

    def fixed_setting(*args, **kwargs):  # type: ignore[no-untyped-def]
        yield from ()
        return "fixed", make, CalibrationResult(gamma, "pseudo-unseen"), {}

    monkeypatch.setattr(evaluate, "select_setting_job", fixed_setting)
    classifier = run_job(build_zeroshot([tmp_path / "seen"], REPO / "resources" / "attributes" / "ham10000.yaml",
                                        ["akiec", "df", "vasc"], semantics="attributes"))
    model = made[-1]
    assert classifier.card.metrics["calibration"]["gamma"] == gamma
    probe = np.stack([centres[label] for label in seen]).astype(np.float32)
    seen_mask = np.array([c in seen for c in classifier.class_names], dtype=np.float64)
    assert seen_mask.sum() == 4 and len(seen_mask) == 7
    expected = model.scores(probe) - gamma * seen_mask[None, :]
    with torch.no_grad():
        logits = classifier.head(torch.as_tensor(probe)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-3)
