from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from zsmed.align.estimators import (
    AffineAligner,
    LeastSquaresAligner,
    ProcrustesAligner,
    SGDAffineAligner,
    create_aligner,
    mean_cosine,
)
from zsmed.align.stitch import StitchedHead, stitch_classifier
from zsmed.classifier import LinearHead
from zsmed.errors import AlignmentError


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_procrustes_recovers_rotation_scale_and_shift_exactly() -> None:
    rng = _rng()
    rot = ortho_group.rvs(6, random_state=1)
    x = rng.normal(size=(30, 6))
    y = 2.5 * x @ rot + np.arange(6.0)
    aligner = ProcrustesAligner().fit(x, y)
    new = rng.normal(size=(5, 6))
    np.testing.assert_allclose(aligner.transform(new), 2.5 * new @ rot + np.arange(6.0), atol=1e-9)
    w, b = aligner.linear_map()
    np.testing.assert_allclose(new @ w.T + b, aligner.transform(new), atol=1e-12)


def test_procrustes_zero_pads_smaller_source_space() -> None:
    rng = _rng()
    rot = ortho_group.rvs(3, random_state=2)
    x = rng.normal(size=(20, 3))
    y = np.concatenate([x @ rot, np.zeros((20, 2))], axis=1) + 1.0  # 3-d data living in a 5-d space
    aligner = ProcrustesAligner().fit(x, y)
    assert aligner.linear_map()[0].shape == (5, 3)
    np.testing.assert_allclose(aligner.transform(x), y, atol=1e-9)
    # and the other way round (5 -> 3) drops the padded coordinates
    back = ProcrustesAligner().fit(y, x)
    np.testing.assert_allclose(back.transform(y), x, atol=1e-9)


def test_procrustes_with_fewer_anchors_than_dimensions_keeps_to_their_span() -> None:
    rng = _rng()
    rot = ortho_group.rvs(40, random_state=3)
    x = rng.normal(size=(12, 40))  # 12 anchors in 40-d: the centred anchors span 11 directions
    y = 1.7 * x @ rot + 3.0
    aligner = ProcrustesAligner().fit(x, y)
    np.testing.assert_allclose(aligner.transform(x), y, atol=1e-8)  # the anchors themselves: exact
    centred = x - x.mean(axis=0)
    unexplored = rng.normal(size=40)
    unexplored -= np.linalg.lstsq(centred.T, unexplored, rcond=None)[0] @ centred  # orthogonal to the span
    assert np.abs(centred @ unexplored).max() < 1e-9
    # a direction no anchor explored goes to the target mean, not to an SVD routine's guess
    np.testing.assert_allclose(aligner.transform((x.mean(axis=0) + unexplored)[None])[0], y.mean(axis=0), atol=1e-8)
    rotated = ProcrustesAligner(span_only=False).fit(x, y)  # a full rotation: kept as an option
    moved = rotated.transform((x.mean(axis=0) + unexplored)[None])[0] - y.mean(axis=0)
    assert np.linalg.norm(moved) == pytest.approx(1.7 * np.linalg.norm(unexplored), rel=1e-6)
    np.testing.assert_allclose(rotated.transform(x), y, atol=1e-8)


def test_least_squares_and_affine_recover_known_maps() -> None:
    rng = _rng()
    x = rng.normal(size=(100, 4))
    w = rng.normal(size=(3, 4))
    lin = LeastSquaresAligner(alpha=0.0).fit(x, x @ w.T)
    np.testing.assert_allclose(lin.linear_map()[0], w, atol=1e-8)
    aff = AffineAligner(alpha=0.0).fit(x, x @ w.T + 5.0)
    np.testing.assert_allclose(aff.linear_map()[0], w, atol=1e-8)
    np.testing.assert_allclose(aff.linear_map()[1], 5.0, atol=1e-8)


def test_sgd_affine_approximates_the_map() -> None:
    rng = _rng()
    x = rng.normal(size=(200, 8))
    w = rng.normal(size=(4, 8))
    y = x @ w.T - 2.0
    aligner = SGDAffineAligner(epochs=150).fit(x, y)  # mini-batches of 256 > 200: one batch
    assert mean_cosine(aligner.transform(x), y) > 0.99
    np.testing.assert_allclose(aligner.linear_map()[0], w, atol=1e-3)
    np.testing.assert_allclose(aligner.linear_map()[1], -2.0, atol=1e-3)


def test_sgd_affine_with_fewer_anchors_than_dimensions_finds_the_closed_form_solution() -> None:
    # Under-determined (30 anchors, 60-d source, features of very unequal scales as in real
    # embeddings): gradient descent from zero reaches affine's minimum-norm map, so unseen inputs
    # are mapped alike too.
    rng = _rng()
    x = rng.normal(size=(30, 60)) * np.geomspace(3.0, 0.01, 60)
    y = x @ rng.normal(size=(60, 20)) + 1.0
    sgd = SGDAffineAligner(epochs=2000).fit(x, y)
    closed = AffineAligner(alpha=1e-9).fit(x, y)
    new = rng.normal(size=(10, 60)) * np.geomspace(3.0, 0.01, 60)
    expected = closed.transform(new)
    np.testing.assert_allclose(sgd.transform(new), expected, atol=0.05 * np.abs(expected).max())


@pytest.mark.parametrize("name", ["procrustes", "lstsq", "affine", "sgd"])
def test_bad_anchors_are_clear_errors(name: str) -> None:
    aligner = create_aligner(name)
    with pytest.raises(AlignmentError, match="at least"):
        aligner.fit(np.ones((1, 4)), np.ones((1, 4)))
    with pytest.raises(AlignmentError, match="counts differ"):
        create_aligner(name).fit(np.ones((10, 4)), np.ones((9, 4)))
    with pytest.raises(AlignmentError, match="unknown alignment"):
        create_aligner("magic")


def test_transform_rejects_other_encoder_dimension() -> None:
    aligner = ProcrustesAligner().fit(np.random.default_rng(0).normal(size=(10, 4)),
                                      np.random.default_rng(1).normal(size=(10, 4)))
    with pytest.raises(AlignmentError, match="dimension 4"):
        aligner.transform(np.ones((2, 5)))


def test_stitched_head_is_map_then_inner_head() -> None:
    inner = LinearHead.from_arrays(np.eye(3, 4), np.zeros(3))
    head = StitchedHead(5, 4, "linear", inner.config())
    with torch.no_grad():
        head.map.weight.copy_(torch.randn(4, 5))
        head.inner.load_state_dict(inner.state_dict())
    x = torch.randn(2, 5)
    torch.testing.assert_close(head(x), inner(head.map(x)))


def test_stitch_classifier_refuses_mismatched_encoder_anchors() -> None:
    from zsmed.classifier import make_classifier
    from zsmed.encoders import create_image_encoder

    spec = create_image_encoder("efficientnet-lite0").spec
    clf = make_classifier(LinearHead.from_arrays(np.ones((2, spec.dim)), np.zeros(2)), method="t",
                          class_names=["a", "b"], encoder=spec, backbone=torch.nn.Identity())
    with pytest.raises(AlignmentError, match="another encoder"):
        stitch_classifier(clf, spec, np.ones((20, 7)), np.ones((20, spec.dim)))
    with pytest.raises(AlignmentError, match="built on"):
        other = type(spec)(name="efficientnet-lite2", kind="image", dim=spec.dim, preprocess=spec.preprocess)
        stitch_classifier(clf, spec, np.ones((20, spec.dim)), np.ones((20, spec.dim)), native_spec=other)
