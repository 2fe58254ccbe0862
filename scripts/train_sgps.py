#!/usr/bin/env python
"""Meta-train an SGPS generator on cached frozen features.

Single process (CPU or one GPU):
    python scripts/train_sgps.py --data-root ../shared/data --out runs/sgps
Several GPUs / CPU processes (DDP; NCCL on GPUs, gloo on CPUs):
    torchrun --nproc_per_node 2 scripts/train_sgps.py --data-root ../shared/data --out runs/sgps
Re-running with the same --out resumes from runs/sgps/state.pt.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="run folder (state.pt, train_log.jsonl, generator)")
    p.add_argument("--encoder", default="efficientnet-lite0", help="image encoder (efficientnet-lite0 / -lite2)")
    p.add_argument("--target", choices=["hybrid", "compact"], default="hybrid")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-episodes", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=None,
                   help="seed of the validation split (default: --seed); generators of several seeds trained on one "
                        "split can be compared or ensembled on its validation images")
    p.add_argument("--adapt-l2", type=float, default=0.0, help="pull generated adaptation towards identity")
    p.add_argument("--queries", type=int, default=10)
    p.add_argument("--rank", type=int, default=8, help="rank of the generated last-conv update (0 = off)")
    p.add_argument("--no-film", action="store_true")
    p.add_argument("--compact-base-lr", type=float, default=1.0,
                   help="lr multiplier of the compact target's learned base weights (e.g. 0.02)")
    p.add_argument("--compact-proto", action="store_true", help="compact head rows = support prototypes + residual")
    p.add_argument("--stage-lr", type=float, default=0.0,
                   help="lr multiplier of a learned correction to the backbone's last stage shared by every "
                        "synthesised classifier (0 = the ImageNet stage stays frozen)")
    p.add_argument("--no-gen-head", action="store_true")
    p.add_argument("--no-proto-head", action="store_true")
    p.add_argument("--no-text", action="store_true", help="never show descriptions (image-only training)")
    p.add_argument("--sets", default="ham10000,derm7pt,cxr", help="base sets: ham10000,derm7pt,cxr")
    p.add_argument("--max-per-class", type=int, default=0, help="cap images per class (tests)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="held-out base lesions for validation")
    p.add_argument("--val-every", type=int, default=100,
                   help="validate (and save the state) every N steps; 0: at the end only")
    p.add_argument("--snapshot-every", type=int, default=0,
                   help="also save generator_step<N> every N steps (to take a step chosen on held-out classes)")
    p.add_argument("--val-episodes", type=int, default=100)
    p.add_argument("--val-classes", default="",
                   help="whole base classes held out of meta-training for validation and selection "
                        "(comma-separated, e.g. 'bkl,VIRUS,seborrheic keratosis'); the generator with the best "
                        "held-out-class accuracy is saved as generator_best and exported")
    p.add_argument("--val-protocol", choices=["mixed", "heldout-pairs"], default="mixed",
                   help="with --val-classes: 'mixed' pits a held-out class against any class of its domain and "
                        "selects on generator accuracy; 'heldout-pairs' draws both classes of every validation "
                        "episode among the held-out classes of one domain (a domain with one held-out class is "
                        "split into k-means pseudo-classes of that class) and selects on generator minus ProtoNet")
    p.add_argument("--reserve-cxr", type=float, default=0.0,
                   help="share of chest X-ray patients never loaded (CXR dev split; synth.data.reserved_group)")
    p.add_argument("--pseudo-classes", default="", help="domains whose classes are split into k-means pseudo-classes")
    p.add_argument("--views", default="",
                   help="cached augmented views of the training images added to meta-training "
                        "(zsmed.fewshot.views: hflip,vflip,rot90,rot180,rot270,zoom,contrast)")
    p.add_argument("--view-domains", default="", help="domains whose images get --views (default: every domain)")
    p.add_argument("--rotated-classes", action="store_true",
                   help="quarter-turned views (rot90/rot180/rot270 in --views) become new classes of their domain")
    p.add_argument("--ways", default="2,3", help="N-way choices, e.g. 2,3,4,5")
    p.add_argument("--shots", default="1,2,3,5", help="K-shot choices, e.g. 1,2,3,5,10")
    p.add_argument("--imbalance", type=float, default=0.0, help="share of episodes with imbalanced supports")
    p.add_argument("--uniform-domains", action="store_true", help="draw each episode's domain uniformly")
    p.add_argument("--inference-ablations", default="", help="generated parts off at synthesis (e.g. lowrank)")
    p.add_argument("--domain-check-only", type=Path, metavar="CHECKPOINT",
                   help="only add the guard's domain statistics to an existing checkpoint's .json, from the "
                        "'train' images of its data list (<name>.data_list.csv) found in --sets")
    p.add_argument("--text-prior", type=Path, metavar="CHECKPOINT",
                   help="only fit the text prior (zsmed.synth.text_prior) of an existing checkpoint on every "
                        "described base class of --sets and write the result to --out (a checkpoint path)")
    p.add_argument("--text-prior-beta", type=float, default=1.0,
                   help="weight of the text prior in image episodes (divided by the images per class)")
    p.add_argument("--text-prior-exclude", default="", help="described classes left out of the text prior's fit")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when present)")
    p.add_argument("--export", type=Path, help="copy the final generator (+ log, data list, command) here")
    p.add_argument("--name", default="sgps", help="name recorded in the checkpoint info")
    return p.parse_args(argv)


def heldout_pair_data(bank, domains: dict[str, str], text: dict, held: list[str], *, seed: int):
    """Validation data of ``--val-protocol heldout-pairs``: the held-out classes' images only; a
    domain with a single held-out class contributes k-means pseudo-classes of it instead (so every
    domain has >= 2 held-out classes to pair). Returns the MetaData and its class names."""
    from zsmed.fewshot.bank import FeatureBank
    from zsmed.synth.data import pseudo_classes
    from zsmed.synth.train import MetaData

    per_domain: dict[str, list[str]] = {}
    for c in held:
        per_domain.setdefault(domains[c], []).append(c)
    paired = [c for cs in per_domain.values() if len(cs) >= 2 for c in cs]
    single = [cs[0] for cs in per_domain.values() if len(cs) == 1]
    parts, val_domains, names = [], dict(domains), list(paired)
    if paired:
        parts.append(bank.subset([i for i, it in enumerate(bank.items) if it.label in paired]))
    if single:
        alone = bank.subset([i for i, it in enumerate(bank.items) if it.label in single])
        extra, extra_domains = pseudo_classes(alone, domains, seed=seed, images_per_cluster=40, max_clusters=4)
        parts.append(extra)
        val_domains.update(extra_domains)
        names += sorted(extra_domains)
    return MetaData(FeatureBank.concat(parts), val_domains, text), names


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from zsmed.encoders import create_image_encoder, create_text_encoder
    from zsmed.features import FeatureCache, file_sha256
    from zsmed.fewshot.bank import FeatureBank, lite_backbone
    from zsmed.fewshot.views import parse_views
    from zsmed.synth.checkpoint import new_generator
    from zsmed.synth.config import SGPSConfig
    from zsmed.synth.data import (
        PSEUDO_MARK,
        ROTATED_MARK,
        description_embeddings,
        load_base_bank,
        named_base_sources,
        pseudo_classes,
        view_copies,
    )
    from zsmed.synth.guard import fit_domain_stats, write_domain_check
    from zsmed.synth.train import MetaData, check_resumable, class_holdout_validator, meta_train, split_by_group

    encoder = create_image_encoder(args.encoder)
    sources = named_base_sources(args.data_root, args.sets)
    if args.reserve_cxr:
        from dataclasses import replace

        sources = [replace(s, reserve_fraction=args.reserve_cxr) if s.domain == "cxr" else s for s in sources]
    t0 = time.time()
    cache = FeatureCache()
    bank, domains = load_base_bank(sources, encoder, cache, max_per_class=args.max_per_class)
    print(f"base bank: {len(bank.items)} images, {len(bank.classes)} classes in {time.time() - t0:.1f} s",
          flush=True)
    if args.domain_check_only:
        ckpt = args.domain_check_only.with_suffix("")
        with ckpt.parent.joinpath(f"{ckpt.name}.data_list.csv").open(newline="") as handle:
            listed = {row["sha256"] for row in csv.DictReader(handle) if row["split"] == "train"}
        keep = [i for i, it in enumerate(bank.items) if file_sha256(it.path) in listed]
        sub = bank.subset(keep)
        stats = fit_domain_stats(sub.pooled.numpy(), sub.labels, domains)
        write_domain_check(ckpt, stats)
        for s in stats.values():
            print(f"domain check {s.name}: {s.n_images} images, threshold {s.threshold:.3f}", flush=True)
        return 0
    text = {} if args.no_text else description_embeddings(bank.classes, create_text_encoder())
    if args.text_prior:
        from zsmed.synth.checkpoint import load_generator, read_checkpoint_config, save_generator
        from zsmed.synth.text_prior import with_text_prior

        left_out = {c.strip() for c in args.text_prior_exclude.split(",") if c.strip()}
        keep = [i for i, it in enumerate(bank.items) if it.label in text and it.label not in left_out]
        sub = bank.subset(keep)
        source = args.text_prior.with_suffix(".safetensors")
        _, info = read_checkpoint_config(source)
        fitted = with_text_prior(load_generator(source, encoder=encoder), sub.pooled.numpy(), sub.labels, text,
                                 beta=args.text_prior_beta)
        info["text_prior"] = {"classes": sorted(set(sub.labels)), "beta": args.text_prior_beta, "lambda": 0.1,
                              "command": f"python scripts/train_sgps.py {' '.join(sys.argv[1:])}"}
        out = save_generator(fitted, args.out.with_suffix(".safetensors"), info)
        old_meta = json.loads(source.with_suffix(".json").read_text())
        meta = json.loads(out.with_suffix(".json").read_text())
        if "domain_check" in old_meta:  # the guard's statistics travel with the generator
            meta["domain_check"] = old_meta["domain_check"]
        out.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        # The data list gains the images the prior was fitted on (split 'text_prior').
        source_list = args.text_prior.parent / f"{args.text_prior.with_suffix('').name}.data_list.csv"
        out_list = out.parent / f"{out.with_suffix('').name}.data_list.csv"
        with source_list.open(newline="") as handle:
            rows = [r for r in csv.reader(handle) if r and r[0] != "text_prior"]
        for item in sub.items:
            rows.append(["text_prior", domains[item.label], item.label, os.path.relpath(item.path, args.data_root),
                         file_sha256(item.path)])
        with out_list.open("w", newline="") as handle:
            csv.writer(handle).writerows(rows)
        print(f"text prior: {len(set(sub.labels))} described classes, beta {args.text_prior_beta} -> {out}", flush=True)
        return 0
    held = [c.strip() for c in args.val_classes.split(",") if c.strip()]
    missing = [c for c in held if c not in bank.classes]
    if missing:
        raise SystemExit(f"--val-classes not among the base classes: {missing}")
    validate = None
    split_seed = args.seed if args.split_seed is None else args.split_seed
    if held:
        # Validation = whole held-out classes + held-out groups of the other classes of their domains.
        val_domains = {domains[c] for c in held}
        split_labels = [c for c in bank.classes if domains[c] in val_domains and c not in held]
        train_idx, val_idx = split_by_group(bank, args.val_fraction, split_seed, split_labels)
        val_idx = sorted(set(val_idx) | {i for i, it in enumerate(bank.items) if it.label in held})
        train_idx = [i for i in train_idx if bank.items[i].label not in held]
    else:
        # Validation holds out lesions / patients of the two large sets (never novel classes).
        val_labels = [c for c in bank.classes if domains[c] in ("ham10000", "cxr")]
        train_idx, val_idx = split_by_group(bank, args.val_fraction, split_seed, val_labels)
    train_bank = bank.subset(train_idx)
    meta_bank, meta_domains = train_bank, dict(domains)
    pseudo_domains = [d.strip() for d in args.pseudo_classes.split(",") if d.strip()]
    if pseudo_domains:
        extra, extra_domains = pseudo_classes(train_bank, domains, seed=args.seed, only_domains=pseudo_domains)
        meta_bank = FeatureBank.concat([train_bank, extra])
        meta_domains.update(extra_domains)
        print(f"pseudo-classes: {len(extra_domains)} from {len(extra.items)} images", flush=True)
    views = parse_views(args.views)
    if views:
        view_domains = [d.strip() for d in args.view_domains.split(",") if d.strip()] or None
        copies, copy_domains = view_copies(train_bank, domains, encoder, cache, views,
                                           only_domains=view_domains, rotated_classes=args.rotated_classes)
        meta_bank = FeatureBank.concat([meta_bank, copies])
        meta_domains.update(copy_domains)
        print(f"views {','.join(views)}: {len(copies.items)} images"
              + (f", {len(copy_domains)} rotated classes" if copy_domains else ""), flush=True)
    train = MetaData(meta_bank, meta_domains, text)
    val = MetaData(bank.subset(val_idx), domains, text) if val_idx and args.val_fraction > 0 else None
    if held:
        val = None
        val_data = MetaData(bank.subset(val_idx), domains, text)
        val_held = list(held)
        if args.val_protocol == "heldout-pairs":
            val_data, val_held = heldout_pair_data(bank, domains, text, held, seed=args.seed)
            print(f"held-out-pair validation classes: {', '.join(val_held)}", flush=True)
        validate = class_holdout_validator(val_data, val_held, episodes=args.val_episodes,
                                           heldout_pairs=args.val_protocol == "heldout-pairs")
    config = SGPSConfig(
        encoder=encoder.spec.name, encoder_sha256=encoder.spec.weights_sha256, target=args.target,
        trunk_channels=int(lite_backbone(encoder)._conv_head.weight.shape[1]),
        steps=args.steps, batch_episodes=args.batch_episodes, lr=args.lr, seed=args.seed, rank=args.rank,
        film=not args.no_film, gen_head=not args.no_gen_head, proto_head=not args.no_proto_head,
        compact_base_lr=args.compact_base_lr, compact_proto=args.compact_proto, stage_lr=args.stage_lr,
        val_every=args.val_every, val_episodes=args.val_episodes, adapt_l2=args.adapt_l2, queries=args.queries,
        image_dropout=0.0 if args.no_text else SGPSConfig.image_dropout,
        ways=tuple(int(w) for w in args.ways.split(",")), shots=tuple(int(k) for k in args.shots.split(",")),
        imbalance=args.imbalance, uniform_domains=args.uniform_domains,
        train_views=views, rotated_classes=bool(args.rotated_classes and views),
        inference_ablations=tuple(a for a in args.inference_ablations.split(",") if a),
    )
    generator = new_generator(config, lite_backbone(encoder))
    n_params = sum(p.numel() for p in generator.parameters())
    print(f"generator: {n_params / 1e6:.2f} M parameters, target {config.target}", flush=True)
    info = {"name": args.name, "command": f"python scripts/train_sgps.py {' '.join(sys.argv[1:])}",
            "base_classes": {c: domains[c] for c in bank.classes}, "train_images": len(train_idx),
            "val_images": len(val_idx), "generator_parameters": n_params, "val_classes": held,
            "pseudo_classes": sorted(c for c in meta_domains if c not in domains and PSEUDO_MARK in c),
            "rotated_classes": sorted(c for c in meta_domains if c not in domains and ROTATED_MARK in c),
            "val_protocol": args.val_protocol if held else None,
            "reserved_cxr_patients": args.reserve_cxr}
    state = check_resumable(args.out, config)  # before the data list below overwrites another run's
    args.out.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("RANK", "0")) == 0:
        with (args.out / "data_list.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["split", "domain", "label", "file", "sha256"])
            for split, idx in (("train", train_idx), ("val", val_idx)):
                for i in idx:
                    item = bank.items[i]
                    rel = os.path.relpath(item.path, args.data_root)
                    writer.writerow([split, domains[item.label], item.label, rel, file_sha256(item.path)])
    meta_train(generator, train, args.out, val=val, device=args.device, info=info, validate=validate,
               snapshot_every=args.snapshot_every, resume_state=state)
    final = args.out / ("generator_best" if held else "generator")
    if int(os.environ.get("RANK", "0")) == 0:
        # Domain statistics of the meta-training images (real classes) for the synthesis guard.
        stats = fit_domain_stats(train_bank.pooled.numpy(), train_bank.labels, domains)
        write_domain_check(final, stats)
        for s in stats.values():
            print(f"domain check {s.name}: {s.n_images} images, threshold {s.threshold:.3f}", flush=True)
    if args.export and int(os.environ.get("RANK", "0")) == 0:
        dest = args.export.with_suffix("")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(final.with_suffix(".safetensors"), dest.with_suffix(".safetensors"))
        shutil.copy(final.with_suffix(".json"), dest.with_suffix(".json"))
        shutil.copy(args.out / "train_log.jsonl", dest.parent / f"{dest.name}.train_log.jsonl")
        shutil.copy(args.out / "data_list.csv", dest.parent / f"{dest.name}.data_list.csv")
        print(f"exported {dest.with_suffix('.safetensors')}")
    log = [json.loads(line) for line in (args.out / "train_log.jsonl").read_text().splitlines()]
    vals = [r for r in log if "val_acc_2w1s" in r]
    if vals:
        print(f"final val: 1-shot {vals[-1]['val_acc_2w1s']:.3f}, 5-shot {vals[-1]['val_acc_2w5s']:.3f}")
    return 0


if __name__ == "__main__":
    from zsmed.errors import ZsmedError

    try:
        raise SystemExit(main())
    except ZsmedError as exc:  # a bad folder, a run folder of another config: one line, no traceback
        raise SystemExit(f"train_sgps: {exc}") from None
