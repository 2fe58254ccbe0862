"""``synthesize(support, descriptions) -> Classifier``: one generator forward pass, no fine-tuning.

The returned ``Classifier`` is the frozen backbone (viewed at its trunk map) plus a generated
head (``SGPSHybridHead`` or ``SGPSCompactHead``); it saves, loads and exports like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zsmed.classifier import BackboneView, Classifier, Head, LinearHead, make_classifier
from zsmed.data.folders import ClassFolder, LabeledItem, load_class_folder
from zsmed.errors import DatasetError
from zsmed.features import FeatureCache, file_sha256
from zsmed.fewshot.bank import FeatureBank, build_bank, lite_backbone
from zsmed.fewshot.sampler import Episode
from zsmed.progress import run_job
from zsmed.synth.colour import (
    BankColour,
    ColourBranch,
    ColourStats,
    class_prototypes,
    colour_features,
    prototypes_of,
    read_colour_stats,
    read_colour_stats_file,
)
from zsmed.synth.fallback import fallback_head, fallback_stage_path, load_stage, stage_features
from zsmed.synth.generator import (
    CompactParams,
    HybridParams,
    SGPSGenerator,
    class_weights,
    episode_logits,
    merged_weight,
)
from zsmed.synth.guard import (
    DomainStats,
    GuardDecision,
    decide,
    domain_verdict,
    loo_accuracy,
    protonet_loo,
    protonet_loo_predictions,
    read_domain_check,
    read_tie_rule,
    route,
)
from zsmed.synth.heads import SGPSCompactHead, SGPSHybridHead
from zsmed.synth.train import MetaData, episodes_logits, make_batch

log = logging.getLogger(__name__)

MODALITIES = ("it", "i", "t")


@dataclass
class SupportSet:
    """Encoded support images per class, with what was skipped and why."""

    bank: FeatureBank
    class_names: list[str]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def as_class_folder(support: Mapping[str, Sequence[str | Path]] | str | Path | ClassFolder) -> ClassFolder:
    if isinstance(support, ClassFolder):
        return support
    if isinstance(support, (str, Path)):
        return load_class_folder(support)
    items = [LabeledItem(Path(p), str(label), str(Path(p))) for label, paths in support.items() for p in paths]
    empty = [label for label, paths in support.items() if not list(paths)]
    if empty:
        raise DatasetError(f"class(es) with no images: {', '.join(map(str, empty))}")
    return ClassFolder(Path("."), items)


def filed_under_two_classes(items: Sequence[LabeledItem]) -> list[tuple[LabeledItem, LabeledItem]]:
    """Pairs of support images with the same content under different classes (a copy filed twice):
    the classifier would be told one image is two things at once."""
    first_of: dict[str, LabeledItem] = {}
    clashes = []
    for item in items:
        try:
            digest = file_sha256(item.path)
        except OSError:  # an unreadable file is named by the encoder's report
            continue
        first = first_of.setdefault(digest, item)
        if first.label != item.label:
            clashes.append((first, item))
    return clashes


def encode_support(support: Mapping[str, Sequence[str | Path]] | str | Path | ClassFolder, encoder: object,
                   cache: FeatureCache | None = None, min_shots: int = 1) -> SupportSet:
    folder = as_class_folder(support)
    names = sorted({item.label for item in folder.items})
    if isinstance(support, (str, Path)):
        root = Path(support)
        empty = [p.name for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")
                 and p.name not in names]
        if empty:
            raise DatasetError(f"class folder(s) with no images: {', '.join(empty)}", path=root)
    if len(names) < 2:
        raise DatasetError("a classifier needs at least two classes with images", path=folder.root)
    bank = run_job(build_bank(folder, encoder, cache))
    # among the images read: two damaged copies cut to the same few bytes are not one image filed twice
    clashes = filed_under_two_classes(bank.items)
    if clashes:
        first, second = clashes[0]
        raise DatasetError(f"the same image is filed under two classes ({len(clashes)} such image(s)), e.g. "
                           f"{first.label}/{Path(first.path).name} and {second.label}/{Path(second.path).name}: "
                           "keep each support image in one class folder", path=folder.root)
    counts = {name: 0 for name in names}
    for label in bank.labels:
        counts[label] += 1
    short = {name: n for name, n in counts.items() if n < min_shots}
    if short:
        detail = ", ".join(f"{k} ({v})" for k, v in short.items())
        skipped = "; ".join(f"{p.name}: {why}" for p, why in bank.failures)
        raise DatasetError(f"fewer than {min_shots} usable image(s) for class(es) {detail}"
                           + (f"; skipped {skipped}" if skipped else ""), path=folder.root)
    return SupportSet(bank, names, list(bank.failures))


def _episode_for(bank: FeatureBank, classes: Sequence[str], keep: Sequence[int] | None = None,
                 shots: int | None = None) -> Episode:
    """All support images of each class (cycled to a common K, so the tensor is rectangular)."""
    keep_set = set(range(len(bank.items))) if keep is None else set(keep)
    rows = []
    k = shots or max(len([i for i in bank.indices_of(c) if i in keep_set]) for c in classes)
    for c in classes:
        idx = [int(i) for i in bank.indices_of(c) if i in keep_set]
        # Cycling repeats some images of a smaller class (a slight reweighting of its prototype).
        rows.append(np.resize(np.asarray(idx, dtype=np.int64), k))
    empty = np.zeros(0, dtype=np.int64)
    return Episode(tuple(classes), np.stack(rows), empty, empty)


def generate_params(generator: SGPSGenerator, data: MetaData, episode: Episode, modality: str = "it"
                    ) -> tuple[HybridParams | CompactParams, torch.Tensor]:
    batch, _ = make_batch(data, [episode], torch.device("cpu"), use_text=modality in ("it", "t"),
                          use_images=modality in ("it", "i"), need_conv=generator.config.target == "hybrid")
    with torch.no_grad():
        params = generator(batch)
        rows = class_weights(generator, params, batch)
    return params, rows


def head_from_params(generator: SGPSGenerator, params: HybridParams | CompactParams, rows: torch.Tensor) -> Head:
    cfg = generator.config
    n = rows.shape[1]
    head: SGPSHybridHead | SGPSCompactHead
    with torch.no_grad():
        if isinstance(params, HybridParams):
            head = SGPSHybridHead(cfg.trunk_channels, cfg.image_dim, n)
            head.conv.weight.copy_(merged_weight(generator, params)[0].reshape(cfg.image_dim, cfg.trunk_channels, 1, 1))
            head.scale.copy_(params.scale[0])
            head.shift.copy_(params.shift[0])
        else:
            head = SGPSCompactHead(cfg.trunk_channels, cfg.compact_mid, cfg.compact_out, n)
            m, o = cfg.compact_mid, cfg.compact_out
            head.conv1.weight.copy_(params.w1[0].reshape(m, cfg.trunk_channels, 1, 1))
            head.conv1.bias.copy_(params.b1[0])  # type: ignore[union-attr]
            head.conv2.weight.copy_(params.w2[0].reshape(m, 1, 3, 3))
            head.conv2.bias.copy_(params.b2[0])  # type: ignore[union-attr]
            head.conv3.weight.copy_(params.w3[0].reshape(o, m, 1, 1))
            head.conv3.bias.copy_(params.b3[0])  # type: ignore[union-attr]
        head.weight.copy_(F.normalize(rows[0], dim=-1, eps=1e-6))
        head.bias.copy_(params.head_bias[0])
        head.logit_scale.fill_(float(generator.logit_scale))
    return head.eval()


STAGE_FALLBACK = "ProtoNet on the fine-tuned last stage"
LOO_EPISODES_PER_PASS = 4
# Each left-out image costs one synthesis over all the others (time grows with N^2): past this many
# images the estimate holds out an evenly spread subset of every class instead of every image.
LOO_MAX_IMAGES = 60


def loo_held_out(bank: Any, classes: Sequence[str], limit: int = LOO_MAX_IMAGES) -> list[int]:
    """Support indices the leave-one-out estimate holds out: all of them up to ``limit``, else a
    share of every class proportional to its size (at least one), spread evenly over its images."""
    total = len(bank.items)
    if total <= limit:
        return list(range(total))
    chosen: list[int] = []
    for c in classes:
        idx = bank.indices_of(c)
        quota = max(1, round(limit * len(idx) / total))
        chosen.extend(int(i) for i in idx[np.unique(np.linspace(0, len(idx) - 1, quota).round().astype(int))])
    return sorted(chosen)


def leave_one_out_predictions(generator: SGPSGenerator, data: MetaData, classes: Sequence[str],
                              modality: str = "it", colour: tuple[torch.Tensor, float] | None = None
                              ) -> dict[int, str] | None:
    """The class predicted for each support image held out (``loo_held_out`` says which) by a
    classifier synthesised without it; None where a class has fewer than two images. ``colour``: the
    support images' standardised colour numbers and the branch's weight, where the classifier built will
    carry the colour branch (its prototypes then come from the images kept, as the generator's do)."""
    bank = data.bank
    counts = [len(bank.indices_of(c)) for c in classes]
    if min(counts) < 2:
        return None
    held_out = loo_held_out(bank, classes, LOO_MAX_IMAGES)
    # The leave-one-out episodes (same shape: supports are cycled to K) go through the generator a
    # few at a time: each episode carries the last-conv maps of its whole support set, so one pass
    # over all N of them would hold N x N maps (4 GB for 3 classes x 20 images).
    predicted: dict[int, str] = {}
    for start in range(0, len(held_out), LOO_EPISODES_PER_PASS):
        chunk = held_out[start : start + LOO_EPISODES_PER_PASS]
        episodes = []
        for i in chunk:
            keep = [j for j in range(len(bank.items)) if j != i]
            episode = _episode_for(bank, classes, keep, shots=max(counts))
            episodes.append(Episode(episode.classes, episode.support, np.array([i]),
                                    np.array([classes.index(bank.items[i].label)])))
        batch, _ = make_batch(data, episodes, torch.device("cpu"), use_text=modality in ("it", "t"),
                              use_images=modality in ("it", "i"), need_conv=generator.config.target == "hybrid")
        with torch.no_grad():
            logits = episodes_logits(generator, batch).reshape(len(chunk), len(classes))
        if colour is not None:
            unit, weight = colour
            for row, i in enumerate(chunk):
                kept = [[j for j in bank.indices_of(c) if j != i] for c in classes]
                prototypes = prototypes_of(unit, kept)
                logits[row] += weight * (unit[i] @ prototypes.t())
        best = logits.argmax(-1)
        predicted.update({i: classes[int(b)] for i, b in zip(chunk, best, strict=True)})
    return predicted


def _loo_estimate(predicted: Mapping[int, str] | None, labels: Sequence[str]) -> tuple[float, int] | None:
    """(accuracy, images held out) of leave-one-out predictions."""
    return (loo_accuracy(predicted, labels), len(predicted)) if predicted else None


def _description_texts(classes: Sequence[str], descriptions: Mapping[str, str] | str | Path | None
                       ) -> dict[str, str]:
    from zsmed.descriptions import descriptions_for

    if isinstance(descriptions, Mapping):
        return {c: str(descriptions[c]) for c in classes if descriptions.get(c)}
    sources = [descriptions] if descriptions is not None else None
    return {k: v.description for k, v in descriptions_for(list(classes), sources).items()}


def synthesize(
    support: Mapping[str, Sequence[str | Path]] | str | Path | ClassFolder,
    descriptions: Mapping[str, str] | str | Path | None = None,
    *,
    checkpoint: str | Path | None = None,
    use_text: bool = True,
    cache: FeatureCache | None = None,
    encoder: object | None = None,
    text_encoder: object | None = None,
    loo: bool = True,
    guard: bool = True,
    details: dict[str, Any] | None = None,
    colour_stats: str | Path | None = None,
) -> Classifier:
    """Build a classifier from support images (class -> files, or a folder of class subfolders).

    ``descriptions``: class -> text, a YAML file, or None for the shipped files. A class without a
    description falls back to image-only (noted in ``card.extra['warnings']`` and logged).
    ``guard`` (``zsmed.synth.guard``): a support set outside the generator's meta-training domains,
    or a generated classifier whose leave-one-out estimate is below ProtoNet's, gives ProtoNet
    instead; ``card.extra['guard']`` says which classifier was built and why (also with
    ``guard=False``, which only records the decision).
    ``colour_stats``: a colour statistics file (``scripts/fit_colour_stats.py``) for the generator's colour
    branch (``zsmed.synth.colour``), instead of the one beside its checkpoint (none ships: issue 16,
    thirteenth round); grey images never take it.
    ``details``, when given, receives what the card does not keep (file names stay on this PC):
    ``support`` [(file, class)] in the order encoded, ``skipped`` [(file, why)], and ``loo``
    {file: class predicted with that image left out} of the classifier returned.
    """
    from zsmed.encoders import create_image_encoder, create_text_encoder
    from zsmed.synth.checkpoint import default_checkpoint_paths, load_generator, read_checkpoint_config

    candidates = [Path(checkpoint)] if checkpoint is not None else default_checkpoint_paths()
    configs = [read_checkpoint_config(c) for c in candidates]
    # Each generator runs on the encoder it was meta-trained on; the support set is encoded once
    # per distinct encoder (a given ``encoder`` is used for the candidates that name it).
    encoders: dict[str, Any] = {encoder.spec.name: encoder} if encoder is not None else {}  # type: ignore[attr-defined]
    supports: dict[str, SupportSet] = {}

    def support_on(name: str) -> SupportSet:
        if name not in encoders:
            encoders[name] = create_image_encoder(name)
        if name not in supports:
            supports[name] = encode_support(support, encoders[name], cache)
        return supports[name]

    routing: dict[str, Any] = {}
    candidate_stats = [read_domain_check(c) for c in candidates]
    chosen = 0
    if len(candidates) > 1:
        # One shipped generator per domain: the support set goes to the one it is most inside of.
        pooled_each = [support_on(cfg.encoder).bank.pooled.numpy() for cfg, _ in configs]
        chosen, margins = route(pooled_each, candidate_stats)
        routing = {"candidates": [c.stem for c in candidates],
                   "margins": [None if m is None else round(m, 4) for m in margins],
                   "encoders": [cfg.encoder for cfg, _ in configs], "chosen": candidates[chosen].stem}
    ckpt, stats = candidates[chosen], candidate_stats[chosen]
    config, info = configs[chosen]
    support_set = support_on(config.encoder)
    encoder = encoders[config.encoder]
    generator = load_generator(ckpt, encoder=encoder)
    classes = support_set.class_names
    if len(classes) > config.max_ways:
        raise DatasetError(f"this generator handles at most {config.max_ways} classes, got {len(classes)}")
    # The card travels with the model to other PCs: it counts the unreadable images; their names
    # (which can carry a patient's name) stay in this PC's log and in ``details``.
    for path, why in support_set.skipped:
        log.warning("skipped %s: %s", path.name, why)
    n_skipped = len(support_set.skipped)
    warnings = [f"{n_skipped} support image(s) could not be read and were left out"] if n_skipped else []
    texts = _description_texts(classes, descriptions) if use_text else {}
    missing = [c for c in classes if c not in texts]
    if use_text and missing:
        warnings.append(f"no description for {', '.join(missing)}: image-only for those classes")
    text_vectors: dict[str, np.ndarray] = {}
    if texts:
        if text_encoder is not None:
            keys = list(texts)
            vecs = text_encoder.encode([texts[k] for k in keys])  # type: ignore[attr-defined]
            text_vectors = {k: np.asarray(v, dtype=np.float32) for k, v in zip(keys, vecs, strict=True)}
        else:
            # Known descriptions (shipped or seen before) skip loading the text encoder.
            from zsmed.synth.text_cache import embed_texts

            text_vectors = embed_texts(texts, config.text_encoder,
                                       lambda: create_text_encoder(config.text_encoder))
    for message in warnings:
        log.warning(message)
    data = MetaData(support_set.bank, {}, text_vectors)
    counts = {c: len(support_set.bank.indices_of(c)) for c in classes}
    pooled = support_set.bank.pooled
    domain = domain_verdict(pooled.numpy(), stats)
    metrics: dict[str, Any] = {}
    out_of_domain = guard and domain is not None and domain[1] < domain[2]
    colour_source = read_colour_stats_file(colour_stats) if colour_stats is not None else read_colour_stats(ckpt)
    colour = plan_colour(colour_source, support_set, encoder) if not out_of_domain else None
    colour_loo = (colour.unit(), colour.stats.weight) if colour is not None and colour.used else None
    generator_loo = (leave_one_out_predictions(generator, data, classes, colour=colour_loo)
                     if loo and not out_of_domain else None)
    estimate = _loo_estimate(generator_loo, support_set.bank.labels)
    # Inside its domain a turned-down generator gives ProtoNet on its fine-tuned stage, if it names one
    # (out of its domain the stage is never used: not loaded).
    stage_path = fallback_stage_path(ckpt) if not out_of_domain else None
    stage = load_stage(stage_path, lite_backbone(encoder)) if stage_path is not None else None
    reference = stage_features(stage, support_set.bank.trunk) if stage is not None else pooled
    proto_loo = None
    if loo and min(counts.values()) >= 2:
        held = loo_held_out(support_set.bank, classes, LOO_MAX_IMAGES)
        proto_loo = protonet_loo_predictions(reference.numpy(), support_set.bank.labels, classes, held)
    proto_estimate = _loo_estimate(proto_loo, support_set.bank.labels)
    decision = decide(domain, estimate[0] if estimate else None, proto_estimate[0] if proto_estimate else None,
                      ties=read_tie_rule(ckpt), loo_fallback=STAGE_FALLBACK if stage is not None else "ProtoNet")
    if not stats:
        warnings.append(f"{ckpt.name} has no domain statistics: the guard's domain check was skipped")
    extra_guard = {**decision.to_dict(), "enabled": guard}
    if details is not None:
        details["support"] = [(item.path, item.label) for item in support_set.bank.items]
        details["skipped"] = list(support_set.skipped)
        # The estimate of the classifier that is returned: ProtoNet's (on the features it uses)
        # where the guard turned the generator down.
        chosen_loo = generator_loo if (decision.use_generator or not guard) else proto_loo
        details["loo"] = {support_set.bank.items[i].path: label for i, label in (chosen_loo or {}).items()}
    if guard and not decision.use_generator:
        log.warning("guard: %s", decision.reason)
        if proto_estimate is not None:
            metrics["loo_accuracy"], metrics["loo_images"] = proto_estimate
        fallback_extra = {"guard": extra_guard, "warnings": warnings, "text_classes": [],
                          "generator": {"checkpoint": ckpt.name, "target": config.target,
                                        "info": info.get("name", ""), "used": False, "routing": routing}}
        if decision.fired == "loo" and stage is not None and stage_path is not None:
            fallback_extra["fallback_stage"] = stage_path.stem
            return make_classifier(fallback_head(stage, reference, support_set.bank.labels, classes),
                                   method="protonet-finetuned-stage", class_names=classes,
                                   encoder=encoder.spec,  # type: ignore[union-attr]
                                   backbone=BackboneView(lite_backbone(encoder), "trunk"),
                                   descriptions=texts, support_counts=counts, metrics=metrics, ood=_ood_hint(pooled),
                                   extra=fallback_extra)
        return _protonet_classifier(support_set, classes, encoder, texts, counts, metrics, fallback_extra)
    params, rows = generate_params(generator, data, _episode_for(support_set.bank, classes), "it")
    head = head_from_params(generator, params, rows)
    if estimate is not None:
        metrics["loo_accuracy"], metrics["loo_images"] = estimate
    if proto_estimate is not None:
        metrics["loo_protonet"] = proto_estimate[0]
    # OOD hint for the export/runtime gate: statistics of the support in the frozen pooled space.
    ood = _ood_hint(pooled)
    backbone = BackboneView(lite_backbone(encoder), "trunk")
    extra = {
        "generator": {"checkpoint": ckpt.name, "target": config.target, "info": info.get("name", ""), "used": True,
                      "routing": routing},
        "warnings": warnings,
        "text_classes": sorted(text_vectors),
        "guard": extra_guard,
    }
    if colour is not None:
        extra["colour"] = colour.card
    classifier = make_classifier(head, method=f"sgps-{config.target}", class_names=classes,
                                 encoder=encoder.spec,  # type: ignore[union-attr]
                                 backbone=backbone, descriptions=texts, support_counts=counts, metrics=metrics,
                                 ood=ood, extra=extra)
    if colour is not None and colour.used:
        classifier.colour = colour.branch(support_set.bank.labels, classes)
    return classifier


@dataclass(frozen=True)
class ColourPlan:
    """What a generator's colour statistics make of a support set: its images' colour numbers, whether the
    branch is used (every image's colours are those of the collection the statistics were fitted on) and
    what the card says of it."""

    stats: ColourStats
    features: np.ndarray  # (support images, 73) in the order of the support bank
    used: bool
    card: dict[str, Any]

    def unit(self) -> torch.Tensor:
        """The support images' standardised, unit-length colour numbers."""
        return self.stats.standardised(torch.as_tensor(self.features, dtype=torch.float32))

    def branch(self, labels: Sequence[str], classes: Sequence[str]) -> ColourBranch:
        return ColourBranch.of(self.stats, class_prototypes(self.stats, self.features, list(labels), list(classes)))


def plan_colour(stats: ColourStats | None, support_set: SupportSet, encoder: Any) -> ColourPlan | None:
    """The generator's colour branch for this support set (``ColourPlan``); None for a generator without
    colour statistics (chest X-rays)."""
    if stats is None:
        return None
    from zsmed.imageio import read_image
    from zsmed.preprocess import batch_model_inputs

    pixels = batch_model_inputs([read_image(item.path) for item in support_set.bank.items], stats.preprocess)
    features = colour_features(torch.as_tensor(pixels), stats.preprocess).numpy()
    farthest = float(stats.distances(features).max())
    card: dict[str, Any] = {"weight": stats.weight, "fitted_on": stats.fitted_on,
                            "threshold": round(stats.threshold, 3), "largest_distance": round(farthest, 3)}
    if stats.preprocess != encoder.spec.preprocess:
        return ColourPlan(stats, features, False, {**card, "used": False, "reason": "colour numbers left out: its "
                                                   "statistics were fitted with another preprocessing"})
    if stats.grey(features).any():
        return ColourPlan(stats, features, False, {**card, "used": False, "reason": "colour numbers left out: "
                                                   "grey images have no colours to compare"})
    if not stats.accepts(features):
        return ColourPlan(stats, features, False, {
            **card, "used": False,
            "reason": f"colour numbers left out: the support images' colours are not those of {stats.fitted_on} "
                      f"(distance {farthest:.2f} > {stats.threshold:.2f}): another dermatoscope's colours would "
                      "mislead it"})
    return ColourPlan(stats, features, True, {
        **card, "used": True,
        "reason": f"colour numbers added (weight {stats.weight:g}): the support images' colours are those of "
                  f"{stats.fitted_on}"})


def _ood_hint(pooled: torch.Tensor) -> dict[str, Any]:
    unit = F.normalize(pooled, dim=-1)
    mean_dir = F.normalize(unit.mean(dim=0), dim=-1)
    return {
        "space": "backbone_pooled",
        "support_pooled_mean": [round(float(x), 6) for x in pooled.mean(dim=0)],
        "support_cos_to_mean_min": float((unit @ mean_dir).min()),
        "support_cos_to_mean_mean": float((unit @ mean_dir).mean()),
        "n_support": len(pooled),
    }


def _protonet_classifier(support_set: SupportSet, classes: Sequence[str], encoder: Any, texts: Mapping[str, str],
                         counts: Mapping[str, int], metrics: Mapping[str, Any], extra: Mapping[str, Any]
                         ) -> Classifier:
    """The guard's fallback: cosine to the class means of the unit frozen pooled features (what the
    ``protonet`` baseline of ``zsmed eval fewshot`` does)."""
    from zsmed.fewshot.baselines import PROTO_SCALE

    unit = F.normalize(support_set.bank.pooled.float(), dim=-1)
    means = np.stack([unit[torch.as_tensor(support_set.bank.indices_of(c))].mean(dim=0).numpy() for c in classes])
    head = LinearHead.from_arrays(means, cosine=True, scale=PROTO_SCALE)
    return make_classifier(head, method="protonet-cosine", class_names=classes, encoder=encoder.spec,
                           descriptions=texts, support_counts=counts, metrics=metrics,
                           ood=_ood_hint(support_set.bank.pooled), extra=extra)


# Inference-time ablations of a trained hybrid generator: which generated part is switched off.
ABLATIONS = ("film", "lowrank", "head", "adapt")


def ablate(params: HybridParams | CompactParams, generator: SGPSGenerator, parts: Sequence[str]) -> None:
    """Replace generated parts by their identity value (in place): 'film' (scale/shift back to the
    last stage's BN, with its learned correction if any), 'lowrank' (U = 0), 'head' (no generated
    residual or bias: plain prototypes in the adapted space), 'adapt' (film + lowrank: generated
    head on the last stage without per-episode adaptation)."""
    if not isinstance(params, HybridParams):
        raise ValueError("ablations apply to the hybrid target")
    chosen = set(parts)
    if chosen & {"film", "adapt"}:
        params.scale, params.shift = generator.base_affine(params.scale.shape[0])
    if chosen & {"lowrank", "adapt"}:
        params.u = torch.zeros_like(params.u)
    if "head" in chosen:
        params.head_residual = torch.zeros_like(params.head_residual)
        params.head_bias = torch.zeros_like(params.head_bias)


class SGPSMethod:
    """A generator as a ``FewShotMethod`` on cached features (one forward pass per episode)."""

    def __init__(self, name: str, generator: SGPSGenerator, bank: FeatureBank, text: Mapping[str, np.ndarray],
                 modality: str = "it", ablations: Sequence[str] = (), colour: BankColour | None = None) -> None:
        """``colour``: the generator's colour branch over the bank's images, added to an episode's
        probabilities where its support images' colours are the collection's (as ``synthesize`` adds it)."""
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}")
        unknown = set(ablations) - set(ABLATIONS)
        if unknown:
            raise ValueError(f"unknown ablation(s) {sorted(unknown)}")
        self.name = name
        self.generator = generator.eval()
        self.data = MetaData(bank, {}, dict(text))
        self.modality = modality
        self.ablations = tuple(ablations)
        self.colour = colour
        self.colour_counts = {"colour_episodes": 0, "colour_used": 0}
        self.last_colour_used: list[bool] = []  # of the episodes of the last predict_many

    def take_stats(self) -> dict[str, Any]:
        """How often the colour branch was used (where it is configured)."""
        out: dict[str, Any] = dict(self.colour_counts) if self.colour is not None else {}
        self.colour_counts = {"colour_episodes": 0, "colour_used": 0}
        return out

    def predict(self, episode: Episode) -> np.ndarray:
        return self.predict_many([episode])[0]

    def predict_many(self, episodes: Sequence[Episode]) -> list[np.ndarray]:
        """Episodes of one shape (ways, shots) in one generator pass; query lists are padded to a
        common length by repeating their last index, and the padding is dropped again."""
        lengths = [len(ep.query) for ep in episodes]
        longest = max(lengths)
        padded = [
            Episode(ep.classes, ep.support, np.pad(ep.query, (0, longest - len(ep.query)), mode="edge"),
                    np.pad(ep.query_labels, (0, longest - len(ep.query)), mode="edge"))
            for ep in episodes
        ]
        batch, _ = make_batch(self.data, padded, torch.device("cpu"), use_text=self.modality != "i",
                              use_images=self.modality != "t", need_conv=self.generator.config.target == "hybrid")
        with torch.no_grad():
            params = self.generator(batch)
            if self.ablations:
                ablate(params, self.generator, self.ablations)
            rows = class_weights(self.generator, params, batch)
            probs = torch.softmax(episode_logits(self.generator, params, rows, batch), dim=-1).numpy()
        out = [probs[i, :n] for i, n in enumerate(lengths)]
        self.last_colour_used = [False] * len(out)
        if self.colour is not None:
            for i, ep in enumerate(episodes):
                fused = self.colour.fuse(out[i], ep.support, ep.query)
                self.colour_counts["colour_episodes"] += 1
                if fused is not None:
                    out[i] = fused
                    self.colour_counts["colour_used"] += 1
                    self.last_colour_used[i] = True
        return out


class GuardedSGPSMethod:
    """SGPS behind the synthesis guard (what ``zsmed build fewshot`` ships), as a ``FewShotMethod``:
    per episode, the domain check of its support set and, where K >= 2, the leave-one-out estimates
    of the generated classifier and ProtoNet on its support set pick SGPS or ProtoNet.
    ``take_stats`` reports how often each check fired."""

    LOO_CHUNK = 20  # leave-one-out episodes per generator pass (each carries its support's conv maps)

    def __init__(self, name: str, generator: SGPSGenerator, bank: FeatureBank, text: Mapping[str, np.ndarray],
                 domain_stats: Mapping[str, DomainStats], modality: str = "it", ties: str = "protonet",
                 fallback_stage: Any | None = None, colour: BankColour | None = None) -> None:
        self.name = name
        self.ties = ties
        # with ``colour``, the leave-one-out estimates and the classifier kept carry the branch, as in build
        self.sgps = SGPSMethod(name, generator, bank, text, modality, colour=colour)
        self.pooled = bank.pooled.numpy()
        # The leave-one-out reference and fallback inside the domain: ProtoNet on the generator's
        # fine-tuned stage where it names one (as synthesize), else on the frozen features.
        self.reference = stage_features(fallback_stage, bank.trunk) if fallback_stage is not None else bank.pooled
        self.stats = dict(domain_stats)
        self._reset()

    def _reset(self) -> None:
        self.counts = {"episodes": 0, "fired_domain": 0, "fired_loo": 0}
        if self.sgps.colour is not None:  # episodes whose generated classifier, kept, carried the colour branch
            self.counts.update(colour_episodes=0, colour_used=0)

    def take_stats(self) -> dict[str, Any]:
        n = max(1, self.counts["episodes"])
        out: dict[str, Any] = dict(self.counts)
        out["fired_rate"] = (self.counts["fired_domain"] + self.counts["fired_loo"]) / n
        out["domain_stats"] = bool(self.stats)
        self._reset()
        self.sgps.take_stats()  # its own counts include the leave-one-out episodes: those above do not
        return out

    def predict(self, episode: Episode) -> np.ndarray:
        return self.predict_many([episode])[0]

    def _sgps_loo(self, episodes: Sequence[Episode]) -> list[float]:
        """Leave-one-out accuracy of the generated classifier on each episode's support set."""
        loo: list[Episode] = []
        owner: list[int] = []
        for e, ep in enumerate(episodes):
            for n, row in enumerate(ep.support):
                for k in range(len(row)):
                    rows = ep.support.copy()
                    rows[n] = np.resize(np.delete(row, k), len(row))
                    loo.append(Episode(ep.classes, rows, np.array([row[k]]), np.array([n])))
                    owner.append(e)
        hits = np.zeros(len(episodes))
        for start in range(0, len(loo), self.LOO_CHUNK):
            chunk = loo[start : start + self.LOO_CHUNK]
            for j, probs in enumerate(self.sgps.predict_many(chunk)):
                hits[owner[start + j]] += float(probs.argmax(axis=1)[0] == chunk[j].query_labels[0])
        return [float(h / ep.support.size) for h, ep in zip(hits, episodes, strict=True)]

    def predict_many(self, episodes: Sequence[Episode]) -> list[np.ndarray]:
        from zsmed.fewshot.baselines import proto_probs

        features = torch.as_tensor(self.pooled)
        decisions: list[GuardDecision] = []
        for ep in episodes:
            domain = domain_verdict(self.pooled[ep.support.reshape(-1)], self.stats)
            decisions.append(decide(domain, None, None))
        need_loo = [i for i, (ep, d) in enumerate(zip(episodes, decisions, strict=True))
                    if d.use_generator and ep.shots >= 2]
        if need_loo:
            gen_loo = self._sgps_loo([episodes[i] for i in need_loo])
            for i, acc in zip(need_loo, gen_loo, strict=True):
                ep = episodes[i]
                idx = ep.support.reshape(-1)
                labels = [ep.classes[n] for n in range(ep.ways) for _ in range(ep.shots)]
                proto = protonet_loo(self.reference.numpy()[idx], labels, ep.classes, range(len(idx)))
                domain = domain_verdict(self.pooled[idx], self.stats)
                decisions[i] = decide(domain, acc, proto, ties=self.ties)
        generated = self.sgps.predict_many(episodes)
        out = []
        for ep, d, probs, coloured in zip(episodes, decisions, generated, self.sgps.last_colour_used, strict=True):
            self.counts["episodes"] += 1
            if self.sgps.colour is not None:
                self.counts["colour_episodes"] += 1
                self.counts["colour_used"] += int(coloured and not d.fired)
            if d.fired:
                self.counts[f"fired_{d.fired}"] += 1
                out.append(proto_probs(self.reference if d.fired == "loo" else features, ep))
            else:
                out.append(probs)
        return out


class RoutedMethod:
    """Several per-domain generator methods as one ``FewShotMethod``, as ``synthesize`` uses the
    shipped generators: each episode goes to the generator whose meta-training domain its support
    set is most inside of (``zsmed.synth.guard.route``). ``take_stats`` adds how many episodes
    each generator took to its methods' own statistics (summed: e.g. the guard's firing counts).
    ``pooled``: the bank's pooled features, or one array per generator (same images, in the order
    of the bank) where the generators sit on different encoders."""

    def __init__(self, name: str, methods: Sequence[Any], stats: Sequence[Mapping[str, DomainStats]],
                 labels: Sequence[str], pooled: np.ndarray | Sequence[np.ndarray]) -> None:
        if not methods or len(methods) != len(stats) or len(labels) != len(methods):
            raise ValueError("one method, one set of domain statistics and one label per generator")
        self.name = name
        self.methods = list(methods)
        self.stats = list(stats)
        self.labels = list(labels)
        self.pooled = [pooled] * len(methods) if isinstance(pooled, np.ndarray) else list(pooled)
        if len(self.pooled) != len(methods):
            raise ValueError("one pooled array per generator")
        self.routed = dict.fromkeys(self.labels, 0)

    def predict(self, episode: Episode) -> np.ndarray:
        return self.predict_many([episode])[0]

    def predict_many(self, episodes: Sequence[Episode]) -> list[np.ndarray]:
        chosen = [route([p[ep.support.reshape(-1)] for p in self.pooled], self.stats)[0] for ep in episodes]
        out: list[np.ndarray | None] = [None] * len(episodes)
        for i, method in enumerate(self.methods):
            mine = [j for j, c in enumerate(chosen) if c == i]
            if not mine:
                continue
            self.routed[self.labels[i]] += len(mine)
            many = getattr(method, "predict_many", None)
            results = many([episodes[j] for j in mine]) if many else [method.predict(episodes[j]) for j in mine]
            for j, probs in zip(mine, results, strict=True):
                out[j] = probs
        assert all(p is not None for p in out)  # every episode went to exactly one generator
        return [p for p in out if p is not None]

    def take_stats(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for method in self.methods:
            take = getattr(method, "take_stats", None)
            for key, value in (take() if take else {}).items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    merged[key] = merged.get(key, False) or value
                else:
                    merged[key] = merged.get(key, 0) + value
        if "episodes" in merged:
            merged["fired_rate"] = (merged["fired_domain"] + merged["fired_loo"]) / max(1, merged["episodes"])
        merged["routed"] = dict(self.routed)
        self.routed = dict.fromkeys(self.labels, 0)
        return merged
