#!/usr/bin/env python
"""Diagnostic, never used for selection: would multi-stage EfficientNet-Lite0 features help zero-shot?

    python scripts/zeroshot_feature_variants.py ../shared/data/derm7pt --classes resources/attributes/derm7pt.yaml \
        --unseen MEL,BCC --semantics both

Pools the outputs of the last stages (blocks 7, 10, 14, 15 = stage ends at 80, 112, 192, 320
channels) besides the usual 1280-d head, concatenates centred, L2-normalised parts, and for each
variant prints the supervised ceiling (scripts/zeroshot_supervised_ceiling.py's) and the
calibrated H of FSIGenZ, ESZSL and DeViSE through the normal `zsmed eval zeroshot` code (features
injected in place of the encoder's).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from zeroshot_supervised_ceiling import add_protocol_arguments, injected_figures  # this folder's ceiling script

from zsmed.data.folders import load_class_folders
from zsmed.encoders.efficientnet_lite import load_efficientnet_lite
from zsmed.imageio import read_model_input
from zsmed.preprocess import PreprocessConfig

STAGE_ENDS = (7, 10, 14, 15)


def stage_features(paths: list[Path]) -> dict[str, np.ndarray]:
    model = load_efficientnet_lite("efficientnet-lite0").eval()
    config = PreprocessConfig(size=224)
    parts: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for start in range(0, len(paths), 32):
            x = torch.from_numpy(np.stack([read_model_input(p, config) for p in paths[start : start + 32]]))
            h = F.relu6(model._bn0(model._conv_stem(x)))
            for i, block in enumerate(model._blocks):
                h = block(h)
                if i in STAGE_ENDS:
                    parts.setdefault(f"b{i}", []).append(h.mean(dim=(2, 3)).numpy())
            parts.setdefault("head", []).append(model.forward_head_conv(h).mean(dim=(2, 3)).numpy())
    return {k: np.concatenate(v).astype(np.float64) for k, v in parts.items()}


def _unit(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=0)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_protocol_arguments(parser)
    args = parser.parse_args()
    paths = [item.path for item in load_class_folders([Path(d) for d in args.data]).items]
    feats = stage_features(paths)
    variants: dict[str, Callable[[], np.ndarray]] = {
        "head (1280, the shipped features)": lambda: feats["head"],
        "trunk b15 (320)": lambda: feats["b15"],
        "head + b15 + b14": lambda: np.hstack([_unit(feats[k]) for k in ("head", "b15", "b14")]),
        "head + b14 + b10 + b7": lambda: np.hstack([_unit(feats[k]) for k in ("head", "b14", "b10", "b7")]),
        "head + all four stage ends": lambda: np.hstack([_unit(feats[k]) for k in ("head", "b15", "b14", "b10", "b7")]),
    }
    for name, make in variants.items():
        matrix = make()
        figures = injected_figures(matrix, paths, args, ["fsigenz", "eszsl", "devise"])
        print(json.dumps({"variant": name, "dim": int(matrix.shape[1]), **figures}), flush=True)

if __name__ == "__main__":
    main()
