#!/usr/bin/env python
"""Diagnostic, never used for selection: HAM10000 zero-shot on Lite0 features whose last stage is
fine-tuned on the *seen training* images only (the few-shot `transfer` baseline's training).

    python scripts/zeroshot_finetuned_features.py [--epochs 8]

The seen classes' train / test split is the one `zsmed eval zeroshot` makes (checked), so no seen
test image and no unseen image is seen by the fine-tuning. Prints, for the frozen features (pooled
from the float16 trunk-map cache) and the fine-tuned ones, the supervised ceiling and H / seen /
unseen / ZSL of FSIGenZ, ESZSL and DeViSE with text and with attributes + text semantics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from zeroshot_supervised_ceiling import inject_features, supervised_ceiling  # this folder's ceiling script

import zsmed.zeroshot.evaluate as zeroshot_evaluate
from zsmed.data.folders import load_class_folders
from zsmed.encoders import create_image_encoder
from zsmed.features import FeatureCache
from zsmed.fewshot.bank import build_bank, lite_backbone
from zsmed.fewshot.baselines import TransferConfig, train_transfer
from zsmed.progress import run_job
from zsmed.zeroshot.calibration import group_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000_fs"
CLASS_FILE = "resources/attributes/ham10000.yaml"
UNSEEN = ["akiec", "df", "vasc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args()
    roots = [Path(args.data) / "base", Path(args.data) / "novel_dev"]
    encoder = create_image_encoder("efficientnet-lite0")
    bank = run_job(build_bank(load_class_folders(roots), encoder, FeatureCache()))
    labels = np.array(bank.labels)
    groups = np.array([f"{item.label}/{item.group}" for item in bank.items])
    is_seen = ~np.isin(labels, UNSEEN)
    train_mask, _ = group_split(groups[is_seen], 0.2, 0, strata=labels[is_seen])  # as prepare_zeroshot
    train_rows = np.flatnonzero(is_seen)[train_mask]
    stage = train_transfer(lite_backbone(encoder), bank.subset(train_rows.tolist()), TransferConfig(epochs=args.epochs))
    with torch.inference_mode():
        tuned = torch.cat([stage(bank.trunk[i : i + 256].float()) for i in range(0, len(bank.trunk), 256)])
    variants = {"frozen": bank.pooled.numpy().astype(np.float64),
                f"last stage fine-tuned {args.epochs} epochs": tuned.numpy().astype(np.float64)}
    for name, matrix in variants.items():
        inject_features(matrix, [item.path for item in bank.items])
        for semantics in ("text", "both"):
            data = run_job(zeroshot_evaluate.prepare_zeroshot(roots, CLASS_FILE, UNSEEN, semantics=semantics))
            if len(data.x_train) != len(train_rows):
                raise SystemExit("the seen split differs from the one the fine-tuning used")
            report = run_job(zeroshot_evaluate.evaluate_zeroshot(roots, CLASS_FILE, UNSEEN, semantics=semantics,
                                                                 methods=["fsigenz", "eszsl", "devise"]))
            figures = {m: {k: round(100 * r["calibrated"][k], 1) for k in ("H", "seen_acc", "unseen_acc", "zsl_acc")}
                       for m, r in report["methods"].items() if "calibrated" in r}
            print(json.dumps({"features": name, "semantics": semantics,
                              "supervised_ceiling_H": round(100 * supervised_ceiling(data)["H"], 1), **figures}),
                  flush=True)


if __name__ == "__main__":
    main()
