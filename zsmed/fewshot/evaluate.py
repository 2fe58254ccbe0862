"""Paired few-shot benchmark: every method sees the same cached features and the same episodes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from zsmed.fewshot.sampler import Episode
from zsmed.progress import Job, Progress


class FewShotMethod(Protocol):
    name: str

    def predict(self, episode: Episode) -> np.ndarray:
        """(M, N) class probabilities of the episode's queries."""


@dataclass
class MethodResult:
    method: str
    shots: int
    episodes: int
    accuracy: float
    ci95: float
    auc: float
    seconds_per_episode: float
    accuracies: list[float]
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the guard's firing counts

    def to_dict(self) -> dict[str, Any]:
        return {**({"extra": self.extra} if self.extra else {}),
            "method": self.method,
            "shots": self.shots,
            "episodes": self.episodes,
            "accuracy": self.accuracy,
            "ci95": self.ci95,
            "auc": self.auc,
            "seconds_per_episode": self.seconds_per_episode,
        }


def predict_all(method: FewShotMethod, episodes: Sequence[Episode]) -> list[np.ndarray]:
    """The method's probabilities for each episode, in one ``predict_many`` call where it has one."""
    many = getattr(method, "predict_many", None)
    return many(episodes) if many is not None else [method.predict(e) for e in episodes]


def _episode_key(episode: Episode) -> tuple[Any, ...]:
    return episode.classes, episode.support.tobytes(), episode.query.tobytes()


class KeptPredictions:
    """A method whose predictions are kept per episode, so that an ensemble reuses them: each member
    runs once per episode, and its own statistics (the guard's, the routing's) count it once."""

    def __init__(self, method: FewShotMethod) -> None:
        self.method = method
        self.name = method.name
        self._kept: dict[tuple[Any, ...], np.ndarray] = {}

    def predict_many(self, episodes: Sequence[Episode]) -> list[np.ndarray]:
        missing = [e for e in episodes if _episode_key(e) not in self._kept]
        if missing:
            for episode, probs in zip(missing, predict_all(self.method, missing), strict=True):
                self._kept[_episode_key(episode)] = probs
        return [self._kept[_episode_key(e)] for e in episodes]

    def predict(self, episode: Episode) -> np.ndarray:
        return self.predict_many([episode])[0]

    def take_stats(self) -> dict[str, Any]:
        take = getattr(self.method, "take_stats", None)
        return take() if take is not None else {}


class Ensemble:
    """The mean of its members' class probabilities (equal weights: nothing to fit on the support)."""

    def __init__(self, name: str, members: Sequence[FewShotMethod]) -> None:
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two methods")
        self.name = name
        self.members = list(members)

    def predict_many(self, episodes: Sequence[Episode]) -> list[np.ndarray]:
        outputs = [predict_all(member, episodes) for member in self.members]
        return [np.mean([out[i] for out in outputs], axis=0) for i in range(len(episodes))]

    def predict(self, episode: Episode) -> np.ndarray:
        return self.predict_many([episode])[0]


def episode_auc(probs: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of one episode: binary for 2 ways, macro one-vs-rest otherwise."""
    from sklearn.metrics import roc_auc_score

    if probs.shape[1] == 2:
        return float(roc_auc_score(labels == 1, probs[:, 1]))
    return float(roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=list(range(probs.shape[1]))))


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    if len(arr) < 2:
        return float(arr.mean()) if len(arr) else float("nan"), float("nan")
    return float(arr.mean()), float(1.96 * arr.std(ddof=1) / math.sqrt(len(arr)))


def run_method(method: FewShotMethod, episodes: Sequence[Episode], shots: int, chunk: int = 25
               ) -> Job[MethodResult]:
    """Accuracy, AUC and time per episode. Methods with ``predict_many`` get ``chunk`` episodes at
    a time (the generator batches them); the time per episode is the total over the count."""
    accs, aucs = [], []
    start = time.perf_counter()
    step = chunk if hasattr(method, "predict_many") else 1
    for i in range(0, len(episodes), step):
        group = episodes[i : i + step]
        for episode, probs in zip(group, predict_all(method, group), strict=True):
            accs.append(float((probs.argmax(axis=1) == episode.query_labels).mean()))
            aucs.append(episode_auc(probs, episode.query_labels))
        yield Progress(i + len(group), len(episodes), f"{method.name} {shots}-shot")
    elapsed = time.perf_counter() - start
    mean, ci = mean_ci95(accs)
    take_stats = getattr(method, "take_stats", None)
    extra = take_stats() if take_stats is not None else {}
    return MethodResult(method.name, shots, len(episodes), mean, ci, float(np.mean(aucs)),
                        elapsed / max(1, len(episodes)), accs, extra)


def run_benchmark(
    methods: Sequence[FewShotMethod],
    episodes_by_shot: Mapping[int, Sequence[Episode]],
    on_result: Callable[[MethodResult], None] | None = None,
) -> Job[list[MethodResult]]:
    results = []
    for shots, episodes in episodes_by_shot.items():
        for method in methods:
            result = yield from run_method(method, episodes, shots)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def paired_difference(result: MethodResult, reference: MethodResult) -> tuple[float, float]:
    """Mean and 95 % CI of the per-episode accuracy difference ``result - reference`` on the same
    episodes: far tighter than comparing two means with their own CIs, since both methods see the
    same hard and easy episodes."""
    if (result.shots, result.episodes) != (reference.shots, reference.episodes):
        raise ValueError(f"{result.method} and {reference.method} were not run on the same episodes")
    return mean_ci95([a - b for a, b in zip(result.accuracies, reference.accuracies, strict=True)])


def add_paired_differences(results: Sequence[MethodResult], against: str) -> None:
    """Record in each result's ``extra`` its paired difference to method ``against`` at the same K."""
    reference = {r.shots: r for r in results if r.method == against}
    for r in results:
        if r.method != against and r.shots in reference:
            delta, ci = paired_difference(r, reference[r.shots])
            r.extra["paired"] = {"against": against, "delta": delta, "ci95": ci}


def format_table(results: Sequence[MethodResult]) -> str:
    paired = next((r.extra["paired"]["against"] for r in results if "paired" in r.extra), None)
    column = f" {'vs ' + paired:>16}" if paired else ""
    width = max([12, *(len(r.method) for r in results)])
    lines = [f"{'method':<{width}} {'K':>2} {'accuracy':>16} {'AUC':>6} {'s/episode':>10}{column}"]
    for r in results:
        note = ""
        if paired:
            p = r.extra.get("paired")
            note += f" {100 * p['delta']:>+8.1f} ± {100 * p['ci95']:>4.1f}" if p else f" {'':>16}"
        if "fired_rate" in r.extra:
            note += (f"  guard fired {100 * r.extra['fired_rate']:.1f} % (domain {r.extra['fired_domain']}, "
                     f"leave-one-out {r.extra['fired_loo']} of {r.extra['episodes']})")
        lines.append(f"{r.method:<{width}} {r.shots:>2} {100 * r.accuracy:>8.1f} ± {100 * r.ci95:>4.1f} % "
                     f"{r.auc:>6.3f} {r.seconds_per_episode:>10.4f}{note}")
    return "\n".join(lines)
