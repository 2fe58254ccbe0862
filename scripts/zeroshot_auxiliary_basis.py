#!/usr/bin/env python
"""Diagnostic, never used for selection: does a larger *described* seen basis help HAM10000's
text-only zero-shot? Derm7pt's fine diagnoses (each with its own description in
resources/attributes/derm7pt.yaml) join HAM10000's four seen classes as extra basis rows.

    python scripts/zeroshot_auxiliary_basis.py [--derm7pt ../shared/data/derm7pt]

Derm7pt's dermatofibroma and vascular-lesion cases are left out (they are HAM10000's unseen df and
vasc), as are its 'miscellaneous' cases (no HAM10000 parent). Every other Derm7pt case becomes a
seen training image of its HAM10000 parent (nevi -> nv, melanomas -> mel, seborrheic keratosis,
lentigo and melanosis -> bkl, BCC -> bcc) with its own fine diagnosis as basis row; its features
are moved into HAM10000's frame by centring each data set on its own class-balanced seen mean.
Seen test and unseen images are HAM10000's, as in `zsmed eval zeroshot`. Prints H / seen / unseen
/ ZSL of FSIGenZ and the baselines without and with the auxiliary basis, in one run.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import zsmed.zeroshot.evaluate as zeroshot_evaluate
from zsmed.data.folders import load_class_folders
from zsmed.progress import Job, run_job
from zsmed.zeroshot.arrays import balanced_mean
from zsmed.zeroshot.classdefs import load_class_definitions, semantic_matrix
from zsmed.zeroshot.evaluate import ZeroShotData

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HAM_CLASS_FILE = "resources/attributes/ham10000.yaml"
DERM7PT_CLASS_FILE = "resources/attributes/derm7pt.yaml"
UNSEEN = ["akiec", "df", "vasc"]
METHODS = ["fsigenz", "prototypes", "devise", "eszsl"]
GROUP_PARENT = {"NEV": "nv", "MEL": "mel", "SK": "bkl", "BCC": "bcc"}
DIAGNOSIS_PARENT = {"lentigo": "bkl", "melanosis": "bkl"}  # Derm7pt files these under MISC
LEFT_OUT = {"dermatofibroma", "vascular lesion", "miscellaneous"}


def add_auxiliary_basis(data: ZeroShotData, derm7pt: Path) -> Job[ZeroShotData]:
    """``data`` with Derm7pt's cases as extra seen training images and its fine diagnoses as extra
    basis rows (a generator: encoding goes through the feature cache)."""
    definitions = load_class_definitions(DERM7PT_CLASS_FILE)
    items = [item for item in load_class_folders([derm7pt]).items if item.meta.get("diagnosis") not in LEFT_OUT]
    features, kept = yield from zeroshot_evaluate._encode([item.path for item in items], "efficientnet-lite0")
    items = [items[i] for i in kept]
    diagnoses = [item.meta["diagnosis"] for item in items]
    classes = data.problem.classes
    parent_of = {diagnosis: DIAGNOSIS_PARENT.get(diagnosis) or GROUP_PARENT[str(item.label)]
                 for diagnosis, item in zip(diagnoses, items, strict=True)}
    y = np.array([classes.index(parent_of[d]) for d in diagnoses])
    shifted = features - balanced_mean(features, y) + balanced_mean(data.x_train, data.y_train)
    names = [d for d in sorted(set(diagnoses)) if diagnoses.count(d) >= zeroshot_evaluate.MIN_BASIS_IMAGES]
    problem = data.problem
    assert problem.basis_semantics is not None and problem.basis_parent is not None  # set by build_problem
    first_row = len(problem.basis_names)
    basis = np.array([first_row + names.index(d) if d in names else -1 for d in diagnoses])
    keep = basis >= 0
    problem = replace(
        problem,
        basis_semantics=np.vstack([problem.basis_semantics, semantic_matrix(definitions, names, "text")]),
        basis_parent=np.concatenate([problem.basis_parent, [classes.index(parent_of[d]) for d in names]]),
        basis_names=[*problem.basis_names, *names],
    )
    return replace(
        data, problem=problem,
        x_train=np.vstack([data.x_train, shifted[keep]]),
        y_train=np.concatenate([data.y_train, y[keep]]),
        g_train=np.concatenate([data.g_train, [f"derm7pt/{i}" for i in np.flatnonzero(keep)]]),
        basis_train=np.concatenate([data.basis_train, basis[keep]]),
        train_meta=[*data.train_meta, *({} for _ in range(int(keep.sum())))],
    )


def summary(report: dict[str, Any]) -> dict[str, Any]:
    rows = {}
    for method, result in report["methods"].items():
        calibrated = result["calibrated"]
        rows[method] = {key: round(100 * calibrated[key], 1) for key in ("H", "seen_acc", "unseen_acc", "zsl_acc")}
        rows[method]["setting"] = result.get("setting")
    return {"n_train": report["n_train"], "basis_rows": len(report["basis"]), "methods": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ham", default=str(SHARED / "ham10000_fs"))
    parser.add_argument("--derm7pt", default=str(SHARED / "derm7pt"))
    args = parser.parse_args()
    roots = [Path(args.ham) / "base", Path(args.ham) / "novel_dev"]
    plain_prepare = zeroshot_evaluate.prepare_zeroshot
    results = {}
    for variant in ("HAM10000 basis", "HAM10000 + Derm7pt fine-diagnosis basis"):
        def prepare(*a: Any, _variant: str = variant, **k: Any) -> Job[ZeroShotData]:
            data = yield from plain_prepare(*a, **k)
            if _variant.startswith("HAM10000 +"):
                data = yield from add_auxiliary_basis(data, Path(args.derm7pt))
            return data

        zeroshot_evaluate.prepare_zeroshot = prepare
        report = run_job(zeroshot_evaluate.evaluate_zeroshot(roots, HAM_CLASS_FILE, UNSEEN, semantics="text",
                                                             methods=METHODS))
        results[variant] = summary(report)
    zeroshot_evaluate.prepare_zeroshot = plain_prepare
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
