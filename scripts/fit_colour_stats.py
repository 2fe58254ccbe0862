#!/usr/bin/env python
"""Fit a dermoscopy generator's colour statistics on its base collection: the colour branch it adds to the
classifiers it builds where the support images' colours are that collection's (``zsmed.synth.colour``).

    python scripts/fit_colour_stats.py --base ../shared/data/ham10000_fs/base --collection HAM10000 \
        --weight 1.0 --checkpoint resources/checkpoints/sgps_efficientnet-lite0 --out FILE.colour.json

Writes the statistics, the weight, the preprocessing and the exact command to --out (default
CHECKPOINT.colour.json: beside the generator, where ``build`` and ``eval`` use them; elsewhere they are
used with ``--colour-stats FILE``), and FILE.data_list.csv (every image, with its SHA-256). The weight 1.0
was chosen on held-out data only (docs/bench/fewshot.md, Issue 16, thirteenth round): a base class left out
of meta-training (bkl) and another dermatoscope's diagnoses (Derm7pt). Novel classes (akiec, df, vasc, ...) are refused.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--base", type=Path, required=True, help="the base collection: a folder of class subfolders")
    p.add_argument("--checkpoint", type=Path, required=True, help="the generator, without suffix")
    p.add_argument("--collection", default="", help="the collection's name, as model cards will say it")
    p.add_argument("--weight", type=float, default=1.0, help="the colour branch's weight (λ)")
    p.add_argument("--quantile", type=float, default=0.99,
                   help="an image is of the collection within this quantile of its own images' distances")
    p.add_argument("--out", type=Path, help="where to write them (default: beside the checkpoint)")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from zsmed.data.folders import load_class_folder
    from zsmed.imageio import read_image
    from zsmed.preprocess import batch_model_inputs
    from zsmed.synth.checkpoint import read_checkpoint_config
    from zsmed.synth.colour import colour_features, colour_stats_path, fit_colour_stats
    from zsmed.synth.data import NOVEL_LABELS

    checkpoint = args.checkpoint.with_suffix(".safetensors")
    config, _info = read_checkpoint_config(checkpoint)
    from zsmed.encoders import create_image_encoder

    preprocess = create_image_encoder(config.encoder).spec.preprocess
    assert preprocess is not None
    folder = load_class_folder(args.base, None)
    novel = sorted(set(folder.classes) & NOVEL_LABELS)
    if novel:
        print(f"refused: {args.base} holds novel classes ({', '.join(novel)})", file=sys.stderr)
        return 2
    items = list(folder.items)
    features = []
    for start in range(0, len(items), 64):
        batch = items[start:start + 64]
        pixels = batch_model_inputs([read_image(item.path) for item in batch], preprocess)
        features.append(colour_features(torch.as_tensor(pixels), preprocess).numpy())
        print(f"\r{start + len(batch)} / {len(items)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    stats = fit_colour_stats(np.concatenate(features), preprocess, weight=args.weight, quantile=args.quantile,
                             fitted_on=f"{args.collection or args.base.name} ({', '.join(folder.classes)})")
    target = args.out or colour_stats_path(checkpoint)
    data = stats.to_dict()
    data["info"] = {"command": "python scripts/fit_colour_stats.py " + " ".join(sys.argv[1:] if argv is None else argv),
                    "classes": list(folder.classes), "encoder": config.encoder,
                    "chosen": "weight and quantile chosen on held-out data: bkl left out of meta-training and "
                              "Derm7pt's diagnoses (docs/bench/fewshot.md, Issue 16, thirteenth round)"}
    target.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    root = args.base.resolve()
    with open(target.with_name(target.name.removesuffix(".json") + ".data_list.csv"), "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["label", "file", "sha256"])
        for item in items:
            path = Path(item.path)
            writer.writerow([item.label, path.resolve().relative_to(root).as_posix(),
                             hashlib.sha256(path.read_bytes()).hexdigest()])
    print(f"{target}: {len(items)} images, threshold {stats.threshold:.3f}, weight {stats.weight}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
