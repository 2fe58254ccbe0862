"""N-way K-shot Q-query episodes, support and query disjoint by group (lesion, patient).

Episodes are index arrays into a ``FeatureBank``; a seeded sampler gives the same episodes to
every method, so comparisons are paired. With ``domains`` (label -> domain), the ways of one
episode come from one domain: mixing chest X-rays with dermoscopy would make trivial tasks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from zsmed.errors import DatasetError


@dataclass(frozen=True)
class Episode:
    classes: tuple[str, ...]
    support: np.ndarray  # (N, K) bank indices, row n = class n
    query: np.ndarray  # (M,) bank indices
    query_labels: np.ndarray  # (M,) in 0..N-1

    @property
    def ways(self) -> int:
        return len(self.classes)

    @property
    def shots(self) -> int:
        return int(self.support.shape[1])


class EpisodeSampler:
    def __init__(
        self,
        labels: Sequence[str],
        groups: Sequence[str],
        *,
        ways: int,
        shots: int,
        queries: int,
        seed: int = 0,
        classes: Sequence[str] | None = None,
        domains: Mapping[str, str] | None = None,
        strict_queries: bool = False,
        uniform_domains: bool = False,
    ) -> None:
        if ways < 2:
            raise DatasetError("an episode needs at least 2 ways")
        if shots < 1 or queries < 1:
            raise DatasetError("shots and queries must be at least 1")
        self.ways, self.shots, self.queries = ways, shots, queries
        self.strict_queries = strict_queries
        self.rng = np.random.default_rng(seed)
        by_class: dict[str, list[int]] = defaultdict(list)
        for i, label in enumerate(labels):
            by_class[label].append(i)
        wanted = list(classes) if classes is not None else sorted(by_class)
        self.groups = np.asarray(groups, dtype=object)
        self.by_class: dict[str, np.ndarray] = {}
        for label in wanted:
            idx = np.asarray(by_class.get(label, []), dtype=np.int64)
            n_groups = len(set(self.groups[idx])) if len(idx) else 0
            # Support needs `shots` images and at least one other group must remain for queries.
            if len(idx) < shots + 1 or n_groups < 2:
                raise DatasetError(
                    f"class '{label}' has {len(idx)} image(s) in {n_groups} group(s); "
                    f"{shots}-shot episodes need at least {shots + 1} images from 2 or more groups"
                )
            self.by_class[label] = idx
        self.domains: dict[str, list[str]] = defaultdict(list)
        for label in self.by_class:
            self.domains[(domains or {}).get(label, "")].append(label)
        usable = {d: cls for d, cls in self.domains.items() if len(cls) >= ways}
        if not usable:
            raise DatasetError(f"{ways}-way episodes need {ways} classes, found {len(self.by_class)}")
        self.domain_names = sorted(usable)
        # Domains are drawn in proportion to their number of possible class subsets (capped), so a
        # rich domain is not starved and a 3-class domain is not over-drawn.
        weights = np.array([1.0 if uniform_domains else min(len(usable[d]) ** 2, 400) for d in self.domain_names],
                           dtype=float)
        self.domain_weights = weights / weights.sum()

    def _class_split(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        idx = self.by_class[label]
        order = self.rng.permutation(len(idx))
        support: list[int] = []
        used_groups: set[object] = set()
        # Prefer support images from distinct groups (K views of one lesion teach less).
        for j in order:
            if len(support) == self.shots:
                break
            if self.groups[idx[j]] not in used_groups:
                support.append(int(idx[j]))
                used_groups.add(self.groups[idx[j]])
        for j in order:
            if len(support) == self.shots:
                break
            if int(idx[j]) not in support:
                support.append(int(idx[j]))
                used_groups.add(self.groups[idx[j]])
        candidates = [int(idx[j]) for j in order if self.groups[idx[j]] not in used_groups]
        if not candidates or (self.strict_queries and len(candidates) < self.queries):
            raise DatasetError(f"class '{label}' has too few groups left for {self.queries} queries")
        return np.asarray(support, dtype=np.int64), np.asarray(candidates[: self.queries], dtype=np.int64)

    def sample(self) -> Episode:
        domain = self.domain_names[int(self.rng.choice(len(self.domain_names), p=self.domain_weights))]
        pool = self.domains[domain]
        chosen = [pool[i] for i in self.rng.choice(len(pool), size=self.ways, replace=False)]
        supports, queries, query_labels = [], [], []
        for n, label in enumerate(chosen):
            s, q = self._class_split(label)
            supports.append(s)
            queries.append(q)
            query_labels.append(np.full(len(q), n, dtype=np.int64))
        return Episode(tuple(chosen), np.stack(supports), np.concatenate(queries), np.concatenate(query_labels))

    def episodes(self, n: int) -> list[Episode]:
        return [self.sample() for _ in range(n)]
