from __future__ import annotations

import numpy as np
import pytest

from zsmed.errors import DatasetError
from zsmed.fewshot.evaluate import episode_auc, mean_ci95
from zsmed.fewshot.sampler import EpisodeSampler


def _toy(n_classes: int = 4, per_class: int = 30, per_group: int = 3) -> tuple[list[str], list[str]]:
    labels, groups = [], []
    for c in range(n_classes):
        for i in range(per_class):
            labels.append(f"c{c}")
            groups.append(f"c{c}-g{i // per_group}")
    return labels, groups


@pytest.mark.parametrize("shots", [1, 5])
def test_support_and_query_are_group_disjoint(shots: int) -> None:
    labels, groups = _toy()
    sampler = EpisodeSampler(labels, groups, ways=3, shots=shots, queries=10, seed=0)
    for ep in sampler.episodes(50):
        assert ep.support.shape == (3, shots)
        support_groups = {groups[i] for i in ep.support.ravel()}
        query_groups = {groups[i] for i in ep.query}
        assert not support_groups & query_groups
        for n, label in enumerate(ep.classes):
            assert all(labels[i] == label for i in ep.support[n])
            assert all(labels[i] == label for i in ep.query[ep.query_labels == n])
        assert len(set(ep.classes)) == 3


def test_same_seed_same_episodes() -> None:
    labels, groups = _toy()
    a = EpisodeSampler(labels, groups, ways=2, shots=1, queries=5, seed=3).episodes(5)
    b = EpisodeSampler(labels, groups, ways=2, shots=1, queries=5, seed=3).episodes(5)
    for x, y in zip(a, b, strict=True):
        assert x.classes == y.classes and np.array_equal(x.support, y.support) and np.array_equal(x.query, y.query)


def test_domains_are_not_mixed() -> None:
    labels, groups = _toy(n_classes=4)
    domains = {"c0": "a", "c1": "a", "c2": "b", "c3": "b"}
    sampler = EpisodeSampler(labels, groups, ways=2, shots=1, queries=3, seed=0, domains=domains)
    for ep in sampler.episodes(30):
        assert len({domains[c] for c in ep.classes}) == 1


def test_too_few_images_is_a_clear_error() -> None:
    labels, groups = _toy(per_class=3)
    with pytest.raises(DatasetError, match="5-shot"):
        EpisodeSampler(labels, groups, ways=2, shots=5, queries=3)
    with pytest.raises(DatasetError, match="2-way episodes need 2 classes"):
        EpisodeSampler(["a"] * 5, list("abcde"), ways=2, shots=1, queries=1)


def test_metrics() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert episode_auc(probs, np.array([0, 1, 1])) == pytest.approx(1.0)
    mean, ci = mean_ci95([0.5, 0.7, 0.6, 0.8])
    assert mean == pytest.approx(0.65) and 0 < ci < 0.2
