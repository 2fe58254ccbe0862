#!/usr/bin/env python
"""Diagnostic, never used for selection: every candidate setting's seen-only fold H beside its
test H, per seen-class split, to see whether the folds rank candidates the way the test does.

    python scripts/zeroshot_candidates.py derm --seeds 0 1 2 3 4 --methods fsigenz prototypes

Protocols: ``derm`` (Derm7pt, unseen MEL/BCC, attributes + descriptions) and ``ham`` (HAM10000,
unseen akiec/df/vasc, descriptions). One JSON line per (seed, method, candidate).
"""

from __future__ import annotations

import argparse
import json

from zsmed.progress import run_job
from zsmed.zeroshot.calibration import choose_gamma, gzsl_scores
from zsmed.zeroshot.evaluate import METHODS, prepare_zeroshot, usable_candidates

DATA = "../shared/data"
PROTOCOLS = {
    "derm": ([f"{DATA}/derm7pt"], "resources/attributes/derm7pt.yaml", ["MEL", "BCC"], "both"),
    "ham": ([f"{DATA}/ham10000_fs/base", f"{DATA}/ham10000_fs/novel_dev"], "resources/attributes/ham10000.yaml",
            ["akiec", "df", "vasc"], "text"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol", choices=sorted(PROTOCOLS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=["fsigenz"], choices=sorted(METHODS))
    args = parser.parse_args()
    roots, class_file, unseen, semantics = PROTOCOLS[args.protocol]
    for seed in args.seeds:
        data = run_job(prepare_zeroshot(roots, class_file, unseen, semantics=semantics, seed=seed))
        for method in args.methods:
            for label, make in usable_candidates(METHODS[method], data.a_train is not None):
                calibration = choose_gamma(make, data.x_train, data.y_train, data.g_train, data.problem,
                                           data.basis_train, seed=seed, attributes=data.a_train)
                model = make().fit(data.x_train, data.y_train, data.problem, data.basis_train, data.a_train)
                test = gzsl_scores(model.scores(data.x_test), data.y_test, data.problem.seen, calibration.gamma)
                print(json.dumps({"seed": seed, "method": method, "setting": label,
                                  "fold_H": round(100 * (calibration.val_h or 0.0), 1),
                                  "test_H": round(100 * test.h, 1)}), flush=True)


if __name__ == "__main__":
    main()
