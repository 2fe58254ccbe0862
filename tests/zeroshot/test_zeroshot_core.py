from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsmed.errors import ConfigError
from zsmed.zeroshot.calibration import gzsl_scores
from zsmed.zeroshot.classdefs import class_definitions_from_dict, load_class_definitions
from zsmed.zeroshot.core import (
    MSAS,
    DPSRConfig,
    ZeroShotProblem,
    cosine_matrix,
    dpsr_train,
    ridge_coefficients,
    similarity_gap,
    synthesise_prototypes,
)
from zsmed.zeroshot.estimators import ESZSL, DeViSE, FSIGenZ
from zsmed.zeroshot.evaluate import resolve_classes

REPO = Path(__file__).resolve().parents[2]


def test_ridge_synthesis_reproduces_a_known_combination() -> None:
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(4, 10))
    alpha = np.array([0.5, -0.2, 0.0, 0.7])
    target = alpha @ basis
    np.testing.assert_allclose(ridge_coefficients(basis, target, 1e-10), alpha, atol=1e-6)
    means = rng.normal(size=(4, 6))
    protos, owner = synthesise_prototypes(basis, means, target[None], lambdas=(1e-10, 1.0))
    assert protos.shape == (2, 6) and owner.tolist() == [0, 0]
    np.testing.assert_allclose(protos[0], alpha @ means, atol=1e-6)
    # a larger lambda shrinks the combination
    assert np.linalg.norm(protos[1]) < np.linalg.norm(protos[0]) + 1e-9


def test_sparse_synthesis_is_nonnegative() -> None:
    rng = np.random.default_rng(1)
    basis = np.abs(rng.normal(size=(5, 12)))
    target = 0.6 * basis[1] + 0.4 * basis[3]
    protos, _ = synthesise_prototypes(basis, np.eye(5), target[None], lambdas=(1e-3,), sparse=True)
    assert (protos >= -1e-12).all() and {1, 3} <= set(np.flatnonzero(protos[0] > 0.05).tolist())


def test_msas_threshold_shapes_and_structure_gap() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(6, 5))
    msas = MSAS(threshold=0.5, eta=0.01, steps=200)
    emphasised = (a + a * (a > 0.5))
    means = rng.normal(size=(6, 20))
    msas.fit(a, means)
    np.testing.assert_allclose(msas.emphasise(a), emphasised)
    out = msas.transform(rng.normal(size=(3, 5)))
    assert out.shape == (3, 5) and np.allclose(np.linalg.norm(out, axis=1), 1)
    target = cosine_matrix(means)
    before = np.mean((cosine_matrix(emphasised) - target) ** 2)
    after = np.mean((cosine_matrix(msas.transform(a)) - target) ** 2)
    assert after < before


def test_dpsr_regulariser_reduces_similarity_gap() -> None:
    import torch

    rng = np.random.default_rng(3)
    z = rng.normal(size=(60, 16))
    y = np.repeat([0, 1, 2], 20)
    z[y == 0, 0] += 3
    z[y == 1, 1] += 3
    z[y == 2, 2] += 3
    protos = rng.normal(size=(3, 16))
    protos[:, 3] += 3
    sem = np.array([[1, .8, .1, .2], [.8, 1, .1, .2], [.1, .1, 1, .6], [.2, .2, .6, 1]])
    init = rng.normal(size=(4, 16))
    gaps = {}
    for weight in (0.0, 20.0):
        w, _ = dpsr_train(z, y, protos, np.array([3, 3, 3]), 4, sem, init,
                          DPSRConfig(reg_weight=weight, epochs=150))
        gaps[weight] = float(similarity_gap(torch.as_tensor(w, dtype=torch.float32),
                                            torch.as_tensor(sem, dtype=torch.float32)))
    assert gaps[20.0] < gaps[0.0]


def _synthetic_problem(seed: int = 0) -> tuple[ZeroShotProblem, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Visual class means are a linear image of the class semantics: ZSL is solvable exactly."""
    rng = np.random.default_rng(seed)
    n_cls, k, d = 7, 6, 32
    sem = rng.normal(size=(n_cls, k))
    proj = rng.normal(size=(k, d))
    means = sem @ proj + 5.0
    x, y = [], []
    for c in range(n_cls):
        x.append(means[c] + 0.5 * rng.normal(size=(40, d)))
        y += [c] * 40
    xs, ys = np.concatenate(x), np.array(y)
    seen = np.array([True] * 5 + [False] * 2)
    problem = ZeroShotProblem([f"c{i}" for i in range(n_cls)], seen, sem)
    train = seen[ys] & (np.arange(len(ys)) % 40 < 30)
    test = ~train
    return problem, xs[train], ys[train], xs[test], ys[test]


@pytest.mark.parametrize("make", [FSIGenZ, DeViSE, ESZSL])
def test_estimators_beat_chance_on_unseen_synthetic_classes(make: type) -> None:
    problem, xtr, ytr, xte, yte = _synthetic_problem()
    model = make().fit(xtr, ytr, problem)
    scores = model.scores(xte)
    assert scores.shape == (len(xte), 7)
    result = gzsl_scores(scores, yte, problem.seen, 0.0)
    assert result.zsl is not None and result.zsl > 0.7


def test_calibration_averages_pseudo_unseen_folds_over_several_seen_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    import zsmed.zeroshot.calibration as calibration

    problem, xtr, ytr, _, _ = _synthetic_problem()
    groups = np.arange(len(ytr)) // 2  # two images per lesion
    splits: list[int] = []
    fits: list[float] = []  # a fingerprint of each fit's training images
    real_split = calibration.group_split

    def recording_split(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        splits.append(int(args[2]))  # the seed
        return real_split(*args, **kwargs)  # type: ignore[arg-type]

    class CountingESZSL(ESZSL):
        def fit(self, x: np.ndarray, *args: object, **kwargs: object) -> CountingESZSL:
            fits.append(round(float(x.sum()), 6))
            return super().fit(x, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(calibration, "group_split", recording_split)
    result = calibration.choose_gamma(CountingESZSL, xtr, ytr, groups, problem, seed=4, split_repeats=3)
    step = calibration.SPLIT_SEED_STEP
    assert splits == [4, 4 + step, 4 + 2 * step]
    assert len(fits) == 3 * 5  # every seen class hidden once per split
    assert result.folds == ["c0", "c1", "c2", "c3", "c4"] and result.val_h is not None
    # each split fits on other lesions: the three rounds of a class's fold are not the same images
    assert len(set(fits[0::5])) == 3
    splits.clear()
    single = calibration.choose_gamma(ESZSL, xtr, ytr, groups, problem, seed=4, split_repeats=1)
    assert splits == [4] and single.val_h is not None
    with pytest.raises(ConfigError, match="split_repeats must be at least 1"):
        calibration.choose_gamma(ESZSL, xtr, ytr, groups, problem, split_repeats=0)


@pytest.mark.parametrize("cosine", [True, False])
def test_fsigenz_head_matches_estimator(cosine: bool) -> None:
    import torch

    from zsmed.zeroshot.core import DPSRConfig
    from zsmed.zeroshot.heads import ZeroShotCosineHead

    problem, xtr, ytr, xte, _ = _synthetic_problem(1)
    model = FSIGenZ(whiten=8, dpsr=DPSRConfig(cosine=cosine)).fit(xtr, ytr, problem)
    # the plain-dot classifier keeps weight lengths: its exported rows are not unit vectors
    norms = np.linalg.norm(model.head_arrays()["weight"], axis=1)
    assert np.allclose(norms, 1.0) == cosine
    model.calibration = 0.7
    arrays = model.head_arrays()
    head = ZeroShotCosineHead.from_arrays(arrays["mean"], arrays["weight"], arrays["bias"], model.config.dpsr.scale,
                                          centre=arrays["centre"], proj=arrays["proj"])
    with torch.no_grad():
        out = head(torch.as_tensor(xte, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, model.decision_function(xte), atol=1e-3)


def test_fsigenz_ensemble_is_one_exported_head_and_averages_its_members() -> None:
    import torch

    from zsmed.zeroshot.estimators import FSIGenZConfig, FSIGenZEnsemble
    from zsmed.zeroshot.heads import ZeroShotCosineHead

    problem, xtr, ytr, xte, yte = _synthetic_problem(2)
    configs = [FSIGenZConfig(synthesis=s, init=s if s == "bilinear" else "means", dpsr=DPSRConfig(cosine=c, epochs=40))
               for s in ("bilinear", "ridge") for c in (True, False)]
    ensemble = FSIGenZEnsemble([*configs, configs[0]]).fit(xtr, ytr, problem)
    assert len(ensemble.members_) == 4  # a setting named twice counts once
    # the average of the members' standardised scores, the scale of each taken from training images
    members = [FSIGenZ(c).fit(xtr, ytr, problem) for c in configs]
    standardised = [(m.scores(xte) - m.scores(xtr).mean()) / m.scores(xtr).std() for m in members]
    np.testing.assert_allclose(ensemble.scores(xte), np.mean(standardised, axis=0), atol=1e-6)
    ensemble.calibration = 0.3
    arrays = ensemble.head_arrays()
    head = ZeroShotCosineHead.from_arrays(arrays["mean"], arrays["weight"], arrays["bias"], float(arrays["scale"]),
                                          centre=arrays.get("centre"), proj=arrays.get("proj"))
    with torch.no_grad():
        out = head(torch.as_tensor(xte, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, ensemble.decision_function(xte), atol=1e-4)
    # nothing was whitened: the head has no projection step (no d x d identity in every bundle)
    assert not head.whitened and "proj" not in head.state_dict()
    # a head saved before the flag existed (config without it, identity projection stored) loads
    # as it was and scores the same
    old_config = {k: v for k, v in head.config().items() if k != "whitened"}
    old_head = ZeroShotCosineHead(**old_config)
    state = {**head.state_dict(), "centre": torch.zeros(head.in_dim), "proj": torch.eye(head.in_dim)}
    old_head.load_state_dict(state)
    with torch.no_grad():
        np.testing.assert_allclose(old_head(torch.as_tensor(xte, dtype=torch.float32)).numpy(), out, atol=1e-5)
    assert gzsl_scores(ensemble.scores(xte), yte, problem.seen, 0.0).zsl > 0.7
    with pytest.raises(ValueError, match="normalisation"):
        FSIGenZEnsemble([FSIGenZConfig(whiten=8)])


def test_class_definition_errors() -> None:
    with pytest.raises(ConfigError, match="unknown attribute"):
        class_definitions_from_dict({"attribute_names": ["a"], "classes": {"x": {"attributes": {"b": 1}}}})
    with pytest.raises(ConfigError, match="neither a description nor attributes"):
        class_definitions_from_dict({"classes": {"x": {"name": "X"}}})
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        class_definitions_from_dict({"classes": {"x": {"attributes": {"a": 3}}}})
    defs = class_definitions_from_dict({"classes": {"x": {"description": "an x"}, "y": {"attributes": {"a": 1}}}})
    with pytest.raises(ConfigError, match=r"without attributes: x$"):
        defs.require(["x", "y", "x"], "attributes")  # a class in two roles is named once
    with pytest.raises(ConfigError, match="not defined"):
        defs.require(["z"], "text")
    with pytest.raises(ConfigError, match="also have seen"):
        resolve_classes(defs, ["x", "y"], ["y"])


def test_shipped_attribute_files_load() -> None:
    derm = load_class_definitions(REPO / "resources" / "attributes" / "derm7pt.yaml")
    assert derm.basis_column == "diagnosis" and len(derm.attribute_names) == 18
    assert {c.key for c in derm.children("NEV")} >= {"clark nevus", "blue nevus"}
    ham = load_class_definitions(REPO / "resources" / "attributes" / "ham10000.yaml")
    ham.require(["nv", "mel", "bkl", "bcc", "akiec", "df", "vasc"], "both")


def test_semantics_are_centred_on_seen_classes_only() -> None:
    from zsmed.zeroshot.core import centre_semantics

    rng = np.random.default_rng(4)
    sem = rng.normal(size=(5, 8)) + 3.0
    seen = np.array([0, 1, 2])
    (a,) = centre_semantics(sem, seen)
    other = sem.copy()
    other[3:] = rng.normal(size=(2, 8))  # different unseen classes: seen rows must not move
    (b,) = centre_semantics(other, seen)
    np.testing.assert_allclose(a[:3], b[:3])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0)


def test_feature_whitening_is_fitted_on_training_images() -> None:
    from zsmed.zeroshot.core import FeatureNormaliser

    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 12)) * np.linspace(0.1, 10, 12)
    y = np.repeat([0, 1], 100)
    norm = FeatureNormaliser(whiten=6).fit(x, y)
    assert norm.dim == 6 and norm.transform(x[:3]).shape == (3, 6)
    u = x - norm.mean_
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = (u - norm.centre_) @ norm.proj_
    np.testing.assert_allclose(np.cov(w.T), np.eye(6), atol=1e-8)


def test_instance_prototypes_recover_a_linear_attribute_map() -> None:
    """Images whose features are a linear function of their own 0/1 annotations: a class never seen,
    with attribute row t (the mean of its images' annotations), gets the prototype z0 + t W."""
    from zsmed.zeroshot.core import instance_prototypes

    rng = np.random.default_rng(0)
    k, d, n = 6, 20, 600
    w_true = rng.normal(size=(k, d))
    attributes = (rng.random((n, k)) < 0.3).astype(float)
    y = rng.integers(0, 3, size=n)
    z = 0.5 + attributes @ w_true + 0.01 * rng.normal(size=(n, d))
    target = np.array([[1.0, 1.0, 0.0, 0.0, 1.0, 0.5]])
    protos, owner = instance_prototypes(z, y, attributes, target, lambdas=(1e-3, 1.0))
    assert owner.tolist() == [0, 0]
    np.testing.assert_allclose(protos[0], 0.5 + target[0] @ w_true, atol=0.05)
    # a stronger ridge shrinks the prototype towards the seen images' centre
    centre = z.mean(axis=0)
    assert np.linalg.norm(protos[1] - centre) < np.linalg.norm(protos[0] - centre)


def test_image_attribute_section_reads_metadata_rows() -> None:
    from zsmed.zeroshot.classdefs import class_definitions_from_dict

    data = {
        "attribute_names": ["veil", "network_atypical"],
        "image_attributes": {"veil": {"column": "blue_whitish_veil", "values": ["present"]},
                             "network_atypical": {"column": "pigment_network", "values": ["Atypical"]}},
        "classes": {"MEL": {"description": "melanoma", "attributes": {"veil": 0.5, "network_atypical": 0.6}}},
    }
    definitions = class_definitions_from_dict(data)
    matrix, annotated = definitions.image_attribute_matrix([
        {"blue_whitish_veil": "present", "pigment_network": "atypical"},
        {"blue_whitish_veil": "absent", "pigment_network": "typical"},
        {"blue_whitish_veil": "", "pigment_network": "atypical"},  # not annotated
    ])
    assert matrix.tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    assert annotated.tolist() == [True, True, False]
    for broken, message in (
        ({"veil": {"column": "blue_whitish_veil", "values": ["present"]}}, "missing: network_atypical"),
        ({**data["image_attributes"], "streaks": {"column": "s", "values": ["x"]}}, "unknown attribute"),
        ({**data["image_attributes"], "veil": {"column": "blue_whitish_veil"}}, "non-empty list"),
    ):
        with pytest.raises(ConfigError, match=message):
            class_definitions_from_dict({**data, "image_attributes": broken})


def test_cli_lists_every_zero_shot_method_and_semantics() -> None:
    from zsmed.cli.zeroshot_commands import SEMANTICS_CHOICES, ZEROSHOT_METHODS
    from zsmed.zeroshot.classdefs import AUTO_SEMANTICS, SEMANTIC_MODES
    from zsmed.zeroshot.evaluate import ALL_METHODS

    assert ZEROSHOT_METHODS == ALL_METHODS
    assert (AUTO_SEMANTICS, *SEMANTIC_MODES) == SEMANTICS_CHOICES


def test_auto_semantics_take_all_every_class_has() -> None:
    both = {"description": "d", "attributes": {"a": 1}}
    defs = class_definitions_from_dict({"classes": {"x": both, "y": both, "t": {"description": "only text"},
                                                    "u": {"attributes": {"a": 0.5}}}})
    assert defs.resolve_semantics(["x", "y"], "auto") == "both"
    assert defs.resolve_semantics(["x", "t"], "auto") == "text"
    assert defs.resolve_semantics(["x", "u"], "auto") == "attributes"
    # an explicit mode is kept as given (require() checks it later)
    assert defs.resolve_semantics(["x", "t"], "attributes") == "attributes"
    with pytest.raises(ConfigError, match="without a description: u; without attributes: t"):
        defs.resolve_semantics(["x", "t", "u"], "auto")
    with pytest.raises(ConfigError, match="not defined"):
        defs.resolve_semantics(["x", "zz"], "auto")
