"""Diagnostic, never used for selection: how far a *supervised* classifier gets on the same frozen
features when it may train on half of the unseen classes' images (the zero-shot ceiling).

Same seen train / test split as ``zsmed eval zeroshot``; the unseen images are split in halves at
random (``--repeats`` times): one half joins the training set, the other is tested. Logistic
regression (class-balanced) on centred, normalised features; the GZSL H on the test side.

    python scripts/zeroshot_supervised_ceiling.py ../shared/data/derm7pt \
        --classes resources/attributes/derm7pt.yaml --unseen MEL,BCC
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

import zsmed.zeroshot.evaluate as zeroshot_evaluate
from zsmed.progress import Job, run_job
from zsmed.zeroshot.calibration import gzsl_scores
from zsmed.zeroshot.core import FeatureNormaliser
from zsmed.zeroshot.evaluate import ZeroShotData, prepare_zeroshot


def supervised_ceiling(data: ZeroShotData, repeats: int = 3, c: float = 1.0) -> dict[str, float]:
    """Mean seen / unseen accuracy and H over ``repeats`` random halves of the unseen images
    (``c``: the logistic regression's inverse regularisation strength)."""
    seen = data.problem.seen
    unseen_rows = np.flatnonzero(~seen[data.y_test])
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(repeats):
        half = rng.permutation(unseen_rows)[: len(unseen_rows) // 2]
        rest = np.setdiff1d(np.arange(len(data.y_test)), half)
        x = np.vstack([data.x_train, data.x_test[half]])
        y = np.concatenate([data.y_train, data.y_test[half]])
        norm = FeatureNormaliser(0).fit(x, y)
        model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(norm.transform(x), y)
        scores = model.decision_function(norm.transform(data.x_test[rest]))
        runs.append(gzsl_scores(scores, data.y_test[rest], seen, 0.0).to_dict())
    return {key: float(np.mean([r[key] for r in runs])) for key in ("seen_acc", "unseen_acc", "H")}


def inject_features(matrix: np.ndarray, paths: Sequence[Path]) -> None:
    """Make `zsmed eval zeroshot`'s code read features from ``matrix`` (row i = ``paths[i]``)
    instead of running the encoder: for diagnostics on other features."""
    row_of = {Path(p): i for i, p in enumerate(paths)}

    def injected(paths: Sequence[Path], encoder_name: str) -> Job[tuple[np.ndarray, list[int]]]:
        return matrix[[row_of[Path(p)] for p in paths]], list(range(len(paths)))
        yield  # a job, like the function it stands in for

    zeroshot_evaluate._encode = injected


def injected_figures(matrix: np.ndarray, paths: Sequence[Path], args: argparse.Namespace, methods: Sequence[str],
                     cs: Sequence[float] = (1.0,)) -> dict[str, object]:
    """The protocol of ``args`` (``add_protocol_arguments``) run on ``matrix`` instead of the
    encoder's features: the supervised ceiling (best over ``cs``) and each method's calibrated H, in %."""
    inject_features(matrix, paths)
    unseen = args.unseen.split(",")
    data = run_job(prepare_zeroshot(args.data, args.classes, unseen, semantics=args.semantics))
    report = run_job(zeroshot_evaluate.evaluate_zeroshot(args.data, args.classes, unseen, semantics=args.semantics,
                                                         methods=list(methods)))
    ceiling = max((supervised_ceiling(data, 3, c) for c in cs), key=lambda r: r["H"])
    return {"supervised_ceiling_H": round(100 * ceiling["H"], 1),
            "H": {m: round(100 * r["calibrated"]["H"], 1) for m, r in report["methods"].items() if "calibrated" in r}}


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a `zsmed eval zeroshot` protocol: data folders, class file, unseen, semantics."""
    parser.add_argument("data", nargs="+")
    parser.add_argument("--classes", required=True)
    parser.add_argument("--unseen", required=True)
    parser.add_argument("--semantics", default="text")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_protocol_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--encoder", default="efficientnet-lite0")
    parser.add_argument("--C", type=float, nargs="+", default=[1.0],
                        help="inverse regularisation strengths to try (the highest H is the ceiling)")
    args = parser.parse_args()
    data = run_job(prepare_zeroshot(args.data, args.classes, args.unseen.split(","), semantics=args.semantics,
                                    encoder=args.encoder))
    by_c = {str(c): supervised_ceiling(data, args.repeats, c) for c in args.C}
    best = max(by_c, key=lambda c: by_c[c]["H"])
    print(json.dumps({"data": args.data, "unseen": args.unseen, "repeats": args.repeats, "mean": by_c[best],
                      "C": best, "by_C": by_c}))


if __name__ == "__main__":
    main()
