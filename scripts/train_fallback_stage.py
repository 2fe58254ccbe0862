#!/usr/bin/env python
"""Fine-tune the backbone's last stage on base classes: the in-domain fallback of a generator's guard.

    python scripts/train_fallback_stage.py --data-root ../shared/data --sets ham10000 \
        --out resources/checkpoints/fallback-ham10000_efficientnet-lite0 \
        --attach resources/checkpoints/sgps_efficientnet-lite0

Writes OUT.safetensors (the stage), OUT.json (config, encoder, classes, the exact command) and
OUT.data_list.csv (every image it was fitted on, with its SHA-256). ``--attach`` names it as the
fallback of a generator (``domain_check.fallback_stage`` in the generator's .json; see
``zsmed.synth.fallback``). The same fit as the ``transfer`` baseline of ``zsmed eval fewshot``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--sets", default="ham10000", help="base sets to fit on (ham10000, derm7pt, cxr)")
    p.add_argument("--encoder", default="efficientnet-lite0")
    p.add_argument("--out", type=Path, required=True, help="output path without suffix")
    p.add_argument("--attach", type=Path, metavar="CHECKPOINT", help="generator whose guard falls back to it")
    p.add_argument("--views", default="",
                   help="cached augmented views of every image added to the fit (zsmed.fewshot.views, e.g. "
                        "hflip,rot90,rot180,rot270,zoom,contrast)")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from zsmed.encoders import create_image_encoder
    from zsmed.features import FeatureCache, file_sha256
    from zsmed.fewshot.bank import FeatureBank, lite_backbone
    from zsmed.fewshot.baselines import TransferConfig, train_transfer
    from zsmed.fewshot.views import parse_views
    from zsmed.synth.data import load_base_bank, named_base_sources, view_copies
    from zsmed.synth.fallback import FALLBACK_KEY, save_stage

    encoder = create_image_encoder(args.encoder)
    sources = named_base_sources(args.data_root, args.sets)
    cache = FeatureCache()
    bank, domains = load_base_bank(sources, encoder, cache)
    views = parse_views(args.views)
    fit_bank = bank
    if views:
        copies, _ = view_copies(bank, domains, encoder, cache, views)
        fit_bank = FeatureBank.concat([bank, copies])
    config = TransferConfig()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the epoch losses go into the .json as the training log
        stage = train_transfer(lite_backbone(encoder), fit_bank, config, log=True)
    print(printed.getvalue(), end="", flush=True)
    info = {"train_log": printed.getvalue().splitlines(), "kind": "fallback_stage", "encoder": encoder.spec.name,
            "encoder_sha256": encoder.spec.weights_sha256,
            "transfer_config": asdict(config), "classes": bank.classes, "images": len(bank.items),
            **({"views": list(views)} if views else {}),
            "command": f"python scripts/train_fallback_stage.py {' '.join(sys.argv[1:] if argv is None else argv)}"}
    out = save_stage(stage, args.out, info)
    with out.parent.joinpath(f"{out.with_suffix('').name}.data_list.csv").open("w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["split", "domain", "label", "file", "sha256"])
        for item in bank.items:
            rows.writerow(["train", domains[item.label], item.label, os.path.relpath(item.path, args.data_root),
                           file_sha256(item.path)])
    print(f"fallback stage: {len(bank.items)} images, {len(bank.classes)} classes -> {out}", flush=True)
    if args.attach:
        meta_path = args.attach.with_suffix(".json")
        meta = json.loads(meta_path.read_text())
        meta.setdefault("domain_check", {})[FALLBACK_KEY] = out.with_suffix("").name
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True))
        print(f"attached to {meta_path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
