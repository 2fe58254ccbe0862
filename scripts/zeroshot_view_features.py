#!/usr/bin/env python
"""Diagnostic, never used for selection: do flip / rotation-averaged or higher-resolution frozen
EfficientNet-Lite0 features help zero-shot?

    python scripts/zeroshot_view_features.py ../shared/data/derm7pt --classes resources/attributes/derm7pt.yaml \
        --unseen MEL,BCC --semantics both

A dermoscopy image has no up or left: its 8 dihedral views (4 rotations x mirror) are the same
lesion, so the mean of their pooled head features is a feature with less orientation noise.
Variants: the shipped features (224 px, one view), the 8-view mean at 224 px, one view at a
larger input size, and the 8-view mean at that size. For each, the supervised ceiling
(scripts/zeroshot_supervised_ceiling.py's) and the calibrated H of FSIGenZ, ESZSL and DeViSE
through the normal `zsmed eval zeroshot` code (features injected in place of the encoder's).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from zeroshot_supervised_ceiling import add_protocol_arguments, injected_figures  # this folder's ceiling script

from zsmed.data.folders import load_class_folders
from zsmed.encoders.efficientnet_lite import load_efficientnet_lite
from zsmed.imageio import read_model_input
from zsmed.preprocess import PreprocessConfig


def dihedral_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 rotations / mirror images of a (N, 3, H, W) batch."""
    views = []
    for flipped in (x, x.flip(-1)):
        for quarter_turns in range(4):
            views.append(torch.rot90(flipped, quarter_turns, dims=(-2, -1)))
    return views


def view_features(paths: list[Path], size: int) -> dict[str, np.ndarray]:
    """Pooled head features of one view and the mean over the 8 dihedral views, at ``size`` px."""
    model = load_efficientnet_lite("efficientnet-lite0").eval()
    config = PreprocessConfig(size=size)
    single: list[np.ndarray] = []
    mean8: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(paths), 32):
            x = torch.from_numpy(np.stack([read_model_input(p, config) for p in paths[start : start + 32]]))
            per_view = [model.forward_pooled(v).numpy() for v in dihedral_views(x)]
            single.append(per_view[0])
            mean8.append(np.mean(per_view, axis=0))
    return {"1 view": np.concatenate(single).astype(np.float64), "8 views": np.concatenate(mean8).astype(np.float64)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_protocol_arguments(parser)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 320])
    args = parser.parse_args()
    paths = [item.path for item in load_class_folders([Path(d) for d in args.data]).items]
    for size in args.sizes:
        for views, matrix in view_features(paths, size).items():
            figures = injected_figures(matrix, paths, args, ["fsigenz", "eszsl", "devise", "prototypes"],
                                       cs=(0.1, 1.0, 10.0))
            print(json.dumps({"size": size, "views": views, **figures}), flush=True)

if __name__ == "__main__":
    main()
