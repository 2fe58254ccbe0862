"""Base tasks for meta-training: class folders, optional fine-grained relabelling, exclusions.

The default recipe (``default_base_sources``) uses HAM10000's base classes, Derm7pt's fine-grained
diagnoses (minus dermatofibroma and vascular lesions, which are novel classes of the benchmark)
and the chest X-ray classes; each set is its own domain, so one episode never mixes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zsmed.data.folders import LabeledItem, load_class_folder
from zsmed.errors import DatasetError
from zsmed.features import FeatureCache
from zsmed.fewshot.bank import FeatureBank, build_bank
from zsmed.progress import run_job

# Never meta-train on the benchmark's novel classes, whatever folder they hide in.
NOVEL_LABELS = frozenset({"akiec", "df", "vasc", "dermatofibroma", "vascular lesion"})


@dataclass(frozen=True)
class BaseSource:
    root: Path
    domain: str
    label_column: str | None = None  # relabel by this metadata column (fine-grained classes)
    exclude: frozenset[str] = field(default_factory=lambda: NOVEL_LABELS)
    min_images: int = 12
    # Share of the set's groups (patients, lesions) reserved for evaluation and never loaded for
    # meta-training (``reserved_group``): the chest X-ray dev split of the few-shot benchmark.
    reserve_fraction: float = 0.0


def reserved_group(group: str, fraction: float) -> bool:
    """Whether a group (patient / lesion id) falls in the reserved evaluation share: a fixed hash of
    its id, so any tool can tell the same split without a list."""
    if fraction <= 0:
        return False
    return int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) / 2**32 < fraction


def default_base_sources(data_root: str | Path) -> list[BaseSource]:
    root = Path(data_root)
    return [
        BaseSource(root / "ham10000_fs" / "base", "ham10000"),
        BaseSource(root / "derm7pt", "derm7pt", label_column="diagnosis"),
        BaseSource(root / "cxr_kermany", "cxr"),
    ]


def named_base_sources(data_root: str | Path, names: str) -> list[BaseSource]:
    """The default base sources whose domain is in a comma-separated list (``--sets ham10000,cxr``)."""
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    return [s for s in default_base_sources(data_root) if s.domain in wanted]


def load_base_bank(sources: Sequence[BaseSource], encoder: object, cache: FeatureCache | None,
                   max_per_class: int = 0) -> tuple[FeatureBank, dict[str, str]]:
    """One bank over all sources (a label may live in one domain only); ``max_per_class`` caps
    the images per class before anything is encoded (tests, quick runs)."""
    banks: list[FeatureBank] = []
    domains: dict[str, str] = {}
    for source in sources:
        folder = load_class_folder(source.root)
        items = []
        for item in folder.items:
            label = item.meta.get(source.label_column, "") if source.label_column else item.label
            if not label:
                raise DatasetError(f"no '{source.label_column}' for {item.path.name}", path=source.root)
            if label.lower() in source.exclude or item.label.lower() in source.exclude:
                continue
            if reserved_group(item.group, source.reserve_fraction):
                continue
            items.append(LabeledItem(item.path, label, f"{source.domain}:{item.group}", item.meta))
        counts: dict[str, int] = {}
        for it in items:
            counts[it.label] = counts.get(it.label, 0) + 1
        items = [it for it in items if counts[it.label] >= source.min_images]
        if max_per_class:
            taken: dict[str, int] = {}
            capped = []
            for it in items:
                taken[it.label] = taken.get(it.label, 0) + 1
                if taken[it.label] <= max_per_class:
                    capped.append(it)
            items = capped
        folder.items = items
        bank = run_job(build_bank(folder, encoder, cache))
        for label in bank.classes:
            if label in domains and domains[label] != source.domain:
                raise DatasetError(f"class '{label}' appears in two domains", path=source.root)
            domains[label] = source.domain
        banks.append(bank)
    if not banks:
        raise DatasetError("no base data")
    return FeatureBank.concat(banks), domains


PSEUDO_MARK = "~"
ROTATED_MARK = "@"


def view_copies(bank: FeatureBank, domains: dict[str, str], encoder: object, cache: FeatureCache | None,
                views: Sequence[str], *, only_domains: Sequence[str] | None = None,
                rotated_classes: bool = False) -> tuple[FeatureBank, dict[str, str]]:
    """Task augmentation from cached augmented views: every image of the bank (of ``only_domains``)
    again under each view (``zsmed.fewshot.views``), same label and group (a view never lands on
    the other side of a support / query split from its original). With ``rotated_classes`` the
    quarter-turned copies become new classes ``label@rot90`` of the same domain instead (task
    augmentation by rotation: an episode may then pit a class against its own turned copy).
    Returns the bank of the copies and the domains of any new labels."""
    from zsmed.data.folders import ClassFolder
    from zsmed.fewshot.views import ROTATIONS

    items = [it for it in bank.items if only_domains is None or domains[it.label] in only_domains]
    if not items or not views:
        raise DatasetError("no base image to make views of")
    folder = ClassFolder(root=items[0].path.parent, items=items)
    parts: list[FeatureBank] = []
    new_domains: dict[str, str] = {}
    for view in views:
        copies = run_job(build_bank(folder, encoder, cache, view=view))
        if rotated_classes and view in ROTATIONS:
            new_domains.update({f"{it.label}{ROTATED_MARK}{view}": domains[it.label] for it in copies.items})
            copies = copies.relabel([f"{it.label}{ROTATED_MARK}{view}" for it in copies.items])
        parts.append(copies)
    return FeatureBank.concat(parts), new_domains


def pseudo_classes(bank: FeatureBank, domains: dict[str, str], *, images_per_cluster: int = 60,
                   max_clusters: int = 8, min_images: int = 12, seed: int = 0,
                   only_domains: Sequence[str] | None = None) -> tuple[FeatureBank, dict[str, str]]:
    """Task augmentation: k-means clusters of each base class's frozen pooled features become new
    classes ``label~j`` of the domain ``<domain>~pseudo`` (so an episode never mixes them with real
    classes). Returns the bank of the clustered copies (same images, new labels) and their domains."""
    import torch.nn.functional as F
    from sklearn.cluster import KMeans

    keep: list[int] = []
    labels: list[str] = []
    new_domains: dict[str, str] = {}
    for label in bank.classes:
        domain = domains[label]
        if only_domains is not None and domain not in only_domains:
            continue
        idx = bank.indices_of(label)
        k = int(np.clip(len(idx) // images_per_cluster, 2, max_clusters))
        if len(idx) < 2 * min_images:
            continue
        x = F.normalize(bank.pooled[idx].float(), dim=-1).numpy()
        assign = KMeans(k, n_init=3, random_state=seed).fit_predict(x)
        for j in range(k):
            chosen = idx[assign == j]
            if len(chosen) < min_images:
                continue
            name = f"{label}{PSEUDO_MARK}{j}"
            keep.extend(int(i) for i in chosen)
            labels.extend([name] * len(chosen))
            new_domains[name] = f"{domain}{PSEUDO_MARK}pseudo"
    if not keep:
        raise DatasetError("no base class is large enough for pseudo-classes")
    return bank.subset(keep).relabel(labels), new_domains


def description_embeddings(labels: Sequence[str], text_encoder: object, sources: Sequence[str | Path] | None = None
                           ) -> dict[str, np.ndarray]:
    """MiniLM embedding of each label's description; labels without one are left out."""
    from zsmed.descriptions import descriptions_for

    found = descriptions_for(list(labels), sources)
    keys = [label for label in labels if label in found]
    if not keys:
        return {}
    vectors = text_encoder.encode([found[k].description for k in keys])  # type: ignore[attr-defined]
    return {k: np.asarray(v, dtype=np.float32) for k, v in zip(keys, vectors, strict=True)}
