"""The synthesis guard: never ship a generated classifier that is likely worse than ProtoNet.

Two checks, run by ``synthesize`` and by the ``sgps-guarded`` method of ``zsmed eval fewshot``:

1. **Domain check.** The checkpoint's ``.json`` carries ``domain_check``: per meta-training domain,
   the mean direction of the L2-normalised frozen pooled features of its meta-training images and
   a threshold on the cosine of an image to it. The threshold was chosen on *held-out base
   classes*: for every class of the domain, the centroid of the *other* classes scores that class's
   images, and the threshold is the lowest of the per-class ``quantile`` quantiles (minus
   ``margin``). A support set whose median image cosine to its nearest domain is below that
   domain's threshold is out of the generator's meta-training distribution.
2. **Leave-one-out comparison** (every class with >= 2 images): the synthesised classifier's
   leave-one-out accuracy on the support set against ProtoNet's; the generator is kept only when
   strictly higher (a tie -> ProtoNet). Chosen on classes the shipped generator never saw (Derm7pt
   fine-grained diagnoses, 2-way 5-shot, 300 episodes): SGPS 71.1 %, ProtoNet 75.2 %, guarded with
   ties to the generator 73.6 %, with ties to ProtoNet 74.6 % (``docs/bench/fewshot.md``).

If either check fails, the classifier is ProtoNet (cosine to the class means of the frozen pooled
features) and the model card and CLI say so and why. Inside its domain, a generator whose checkpoint
names a fine-tuned last stage (``zsmed.synth.fallback``) is compared with, and replaced by, ProtoNet
on that stage's features instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

DOMAIN_CHECK_VERSION = 1


@dataclass(frozen=True)
class DomainStats:
    name: str
    centroid: np.ndarray  # (D,) unit mean direction of unit pooled features
    threshold: float  # lowest accepted median cosine of a support set
    n_images: int
    classes: tuple[str, ...]


@dataclass(frozen=True)
class GuardDecision:
    use_generator: bool
    fired: str  # "" (generator kept), "domain" or "loo"
    reason: str  # one line for the card and the CLI
    domain: str | None = None
    domain_score: float | None = None
    domain_threshold: float | None = None
    loo_generator: float | None = None
    loo_protonet: float | None = None

    @property
    def classifier(self) -> str:
        return "sgps" if self.use_generator else "protonet"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["classifier"] = self.classifier
        return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def domain_cosines(pooled: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """Cosine of each (unnormalised) pooled feature to a domain centroid."""
    return _unit(pooled) @ _unit(centroid)


def fit_domain_stats(pooled: np.ndarray, labels: Sequence[str], domains: Mapping[str, str], *,
                     quantile: float = 0.01, margin: float = 0.02) -> dict[str, DomainStats]:
    """Per-domain centroid and threshold; the threshold from leave-one-class-out scores (see module)."""
    unit = _unit(pooled)
    labels_arr = np.asarray(labels)
    out: dict[str, DomainStats] = {}
    for name in sorted(set(domains[c] for c in set(labels))):
        classes = sorted(c for c in set(labels) if domains[c] == name)
        mask = np.isin(labels_arr, classes)
        centroid = _unit(unit[mask].mean(axis=0))
        lows = []
        for c in classes:
            own = labels_arr == c
            others = mask & ~own
            ref = _unit(unit[others].mean(axis=0)) if others.any() else centroid
            lows.append(float(np.quantile(unit[own] @ ref, quantile)))
        out[name] = DomainStats(name, centroid.astype(np.float32), min(lows) - margin, int(mask.sum()),
                                tuple(classes))
    return out


def domain_check_json(stats: Mapping[str, DomainStats], *, quantile: float, margin: float) -> dict[str, Any]:
    return {
        "version": DOMAIN_CHECK_VERSION,
        "space": "backbone_pooled",
        "rule": f"median cosine of the support images to the nearest domain centroid >= its threshold "
                f"(threshold = lowest per-held-out-class {quantile:.0%} quantile - {margin})",
        "domains": {
            s.name: {"centroid": [round(float(v), 6) for v in s.centroid], "threshold": round(s.threshold, 6),
                     "n_images": s.n_images, "classes": list(s.classes)}
            for s in stats.values()
        },
    }


def write_domain_check(checkpoint: str | Path, stats: Mapping[str, DomainStats], *, quantile: float = 0.01,
                       margin: float = 0.02) -> None:
    """Add (or replace) the ``domain_check`` entry of a checkpoint's ``.json``."""
    path = Path(checkpoint).with_suffix(".json")
    meta = json.loads(path.read_text())
    ties = (meta.get("domain_check") or {}).get("loo_ties")
    meta["domain_check"] = domain_check_json(stats, quantile=quantile, margin=margin)
    if ties is not None:  # the tie rule was chosen separately: new statistics keep it
        meta["domain_check"]["loo_ties"] = ties
    path.write_text(json.dumps(meta, indent=2, sort_keys=True))


def read_domain_check(checkpoint: str | Path) -> dict[str, DomainStats]:
    """The checkpoint's domain statistics; empty when it has none (made before the guard)."""
    path = Path(checkpoint).with_suffix(".json")
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    entry = meta.get("domain_check") or {}
    if int(entry.get("version", 0)) > DOMAIN_CHECK_VERSION:
        return {}
    out = {}
    for name, d in (entry.get("domains") or {}).items():
        out[name] = DomainStats(name, np.asarray(d["centroid"], dtype=np.float32), float(d["threshold"]),
                                int(d.get("n_images", 0)), tuple(d.get("classes", ())))
    return out


def domain_verdict(pooled: np.ndarray, stats: Mapping[str, DomainStats]) -> tuple[str, float, float] | None:
    """(nearest domain, support score, its threshold) or None without statistics."""
    if not stats:
        return None
    scored = [(float(np.median(domain_cosines(pooled, s.centroid))), s) for s in stats.values()]
    score, best = max(scored, key=lambda t: t[0] - t[1].threshold)
    return best.name, score, best.threshold


def route(pooled: np.ndarray | Sequence[np.ndarray], candidates: Sequence[Mapping[str, DomainStats]]
          ) -> tuple[int, list[float | None]]:
    """Which of several generators a support set goes to: the one whose nearest meta-training
    domain it is most inside of (largest domain-check margin, score - threshold). Returns the index
    (0 when no candidate has statistics) and each candidate's margin (None without statistics).
    ``pooled``: the support's pooled features, or one array per candidate where the generators sit
    on different encoders (each margin is measured in its own generator's feature space).
    The chosen generator's own guard then still decides between it and ProtoNet."""
    per_candidate = [pooled] * len(candidates) if isinstance(pooled, np.ndarray) else list(pooled)
    if len(per_candidate) != len(candidates):
        raise ValueError("one pooled array per candidate generator")
    margins: list[float | None] = []
    for features, stats in zip(per_candidate, candidates, strict=True):
        verdict = domain_verdict(features, stats)
        margins.append(None if verdict is None else verdict[1] - verdict[2])
    scored = [(m, i) for i, m in enumerate(margins) if m is not None]
    return (max(scored, key=lambda t: (t[0], -t[1]))[1] if scored else 0), margins


def protonet_loo_predictions(pooled: np.ndarray, labels: Sequence[str], classes: Sequence[str],
                             held_out: Sequence[int]) -> dict[int, str]:
    """ProtoNet's class for each held-out support image, from the class means of the others
    (cosine to class means of unit features)."""
    unit = _unit(pooled)
    labels_arr = np.asarray(labels)
    predicted = {}
    for i in held_out:
        keep = np.ones(len(unit), dtype=bool)
        keep[i] = False
        protos = _unit(np.stack([unit[keep & (labels_arr == c)].mean(axis=0) for c in classes]))
        predicted[int(i)] = classes[int(np.argmax(protos @ unit[i]))]
    return predicted


def loo_accuracy(predicted: Mapping[int, str], labels: Sequence[str]) -> float:
    """The share of held-out support images (index -> predicted class) predicted as their label."""
    return sum(label == labels[i] for i, label in predicted.items()) / max(1, len(predicted))


def protonet_loo(pooled: np.ndarray, labels: Sequence[str], classes: Sequence[str], held_out: Sequence[int]
                 ) -> float:
    """ProtoNet's leave-one-out accuracy on the support set."""
    return loo_accuracy(protonet_loo_predictions(pooled, labels, classes, held_out), labels)


TIE_RULES = ("protonet", "generator")


def read_tie_rule(checkpoint: str | Path) -> str:
    """Who wins a tie of the leave-one-out estimates for this generator: ``domain_check.loo_ties``
    in its ``.json``, chosen on its own held-out base classes; ProtoNet when absent or unknown."""
    try:
        meta = json.loads(Path(checkpoint).with_suffix(".json").read_text())
    except (OSError, json.JSONDecodeError):
        return "protonet"
    rule = (meta.get("domain_check") or {}).get("loo_ties", "protonet")
    return rule if rule in TIE_RULES else "protonet"


def decide(domain: tuple[str, float, float] | None, loo_generator: float | None, loo_protonet: float | None,
           ties: str = "protonet", loo_fallback: str = "ProtoNet") -> GuardDecision:
    """The guard's rule (see the module docstring); ``ties`` says who wins equal leave-one-out
    estimates (ProtoNet unless the generator's checkpoint says otherwise, ``read_tie_rule``);
    ``loo_fallback`` names the classifier a failed leave-one-out comparison gives (``zsmed.synth.fallback``)."""
    name, score, threshold = domain if domain is not None else (None, None, None)
    common: dict[str, Any] = {"domain": name, "domain_score": score, "domain_threshold": threshold,
              "loo_generator": loo_generator, "loo_protonet": loo_protonet}
    if domain is not None and score is not None and threshold is not None and score < threshold:
        return GuardDecision(False, "domain", f"support set outside the generator's meta-training data (nearest "
                             f"domain {name}: score {score:.3f} < {threshold:.3f}); ProtoNet used instead", **common)
    if loo_generator is not None and loo_protonet is not None and (
            loo_generator < loo_protonet or (loo_generator == loo_protonet and ties != "generator")):
        tie = loo_generator == loo_protonet
        return GuardDecision(False, "loo", f"leave-one-out on the support set: generator {100 * loo_generator:.1f} % "
                             f"{'=' if tie else '<'} {loo_fallback} {100 * loo_protonet:.1f} %"
                             f"{' (ties go to ProtoNet for this generator)' if tie else ''}; "
                             f"{loo_fallback} used instead", **common)
    where = f"domain {name} (score {score:.3f} >= {threshold:.3f})" if domain is not None else \
        "no domain statistics in the checkpoint"
    if loo_generator is not None and loo_protonet is not None:
        loo = (f"leave-one-out generator {100 * loo_generator:.1f} % {'>' if loo_generator > loo_protonet else '='} "
               f"{loo_fallback} {100 * loo_protonet:.1f} %")
    else:
        loo = "no leave-one-out comparison (a class has 1 image)"
    return GuardDecision(True, "", f"generator kept: {where}; {loo}", **common)
