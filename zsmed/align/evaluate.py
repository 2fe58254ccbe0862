"""``zsmed eval stitch``: a classifier built on one encoder, run on another through a fitted map.

Images of DATA_DIR are split by group into a training half (the native classifier is fitted on
the source encoder's features of it; anchors are drawn from it *without labels*) and a test half.
Per alignment method and anchor count: balanced accuracy of the stitched classifier on the target
encoder's test features, its ratio to the native classifier's accuracy, and the mean cosine between
aligned target features and the true source features of the same test images. Optionally also
zero-shot through text: image features mapped into the text encoder's space with (image,
description of its class) anchor pairs of the seen classes, classified by nearest description.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.align.estimators import create_aligner, mean_cosine
from zsmed.errors import AlignmentError, DatasetError
from zsmed.progress import Job, Progress


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def fit_linear_classifier(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression on standardised features, the standardisation folded into (W, b)."""
    from sklearn.linear_model import LogisticRegression

    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=0.5, max_iter=3000, class_weight="balanced", random_state=seed)
    clf.fit((x - mu) / sd, y)
    weight = clf.coef_ / sd[None, :]
    bias = clf.intercept_ - weight @ mu
    if weight.shape[0] == 1:  # binary: sklearn keeps one row
        weight = np.vstack([-weight, weight]) / 2
        bias = np.array([-bias[0], bias[0]]) / 2
    return weight, bias


def _encode_both(paths: list[Path], names: Sequence[str]) -> Job[list[tuple[np.ndarray, list[int]]]]:
    from zsmed.zeroshot.evaluate import _encode

    out = []
    for name in names:
        out.append((yield from _encode(paths, name)))
    return out


def evaluate_stitch(
    data_dir: str | Path,
    src: str,
    tgt: str,
    *,
    anchors: Sequence[int] = (10, 50, 200, 1000),
    methods: Sequence[str] = ("procrustes", "lstsq", "affine", "sgd"),
    seed: int = 0,
    test_fraction: float = 0.5,
    classes_file: str | Path | None = None,
    unseen: Sequence[str] | None = None,
) -> Job[dict[str, Any]]:
    from zsmed.data.folders import load_class_folder
    from zsmed.zeroshot.calibration import group_split

    for m in methods:
        create_aligner(m)  # unknown names fail before any encoding
    folder = load_class_folder(data_dir)
    items = folder.items
    paths = [i.path for i in items]
    (f_src, k_src), (f_tgt, k_tgt) = yield from _encode_both(paths, [src, tgt])
    common = sorted(set(k_src) & set(k_tgt))
    pos_src = {k: i for i, k in enumerate(k_src)}
    pos_tgt = {k: i for i, k in enumerate(k_tgt)}
    x_src = f_src[[pos_src[k] for k in common]]
    x_tgt = f_tgt[[pos_tgt[k] for k in common]]
    labels = np.array([items[k].label for k in common])
    classes = sorted(set(labels))
    y = np.array([classes.index(lbl) for lbl in labels])
    groups = np.array([f"{items[k].label}/{items[k].group}" for k in common])
    train, test = group_split(groups, test_fraction, seed, strata=y)
    if train.sum() < 2 or test.sum() < 2:
        raise DatasetError("too few images to split into training and test halves", path=data_dir)
    w, b = fit_linear_classifier(x_src[train], y[train], seed)
    native = balanced_accuracy(y[test], np.argmax(x_src[test] @ w.T + b, axis=1))
    w_t, b_t = fit_linear_classifier(x_tgt[train], y[train], seed)
    tgt_native = balanced_accuracy(y[test], np.argmax(x_tgt[test] @ w_t.T + b_t, axis=1))
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(train)
    # The same unlabelled anchor images for every method at a given count (nested draws).
    order = rng.permutation(pool)
    rows: list[dict[str, Any]] = []
    total = len(methods) * len(anchors)
    step = 0
    for method in methods:
        for n in anchors:
            yield Progress(step, total, f"{method} {n} anchors")
            step += 1
            row: dict[str, Any] = {"method": method, "anchors": int(n)}
            if n > len(pool):
                row["error"] = f"only {len(pool)} unlabelled training images available"
                rows.append(row)
                continue
            chosen = order[:n]
            try:
                aligner = create_aligner(method).fit(x_tgt[chosen], x_src[chosen])
            except AlignmentError as exc:
                row["error"] = str(exc)
                rows.append(row)
                continue
            mapped = aligner.transform(x_tgt[test])
            acc = balanced_accuracy(y[test], np.argmax(mapped @ w.T + b, axis=1))
            row.update(accuracy=acc, relative_accuracy=acc / native if native > 0 else None,
                       mean_cosine=mean_cosine(mapped, x_src[test]))
            rows.append(row)
    report: dict[str, Any] = {
        "data": str(data_dir), "src": src, "tgt": tgt, "classes": classes, "seed": seed,
        "n_train": int(train.sum()), "n_test": int(test.sum()),
        "native_accuracy": native, "target_native_accuracy": tgt_native,
        "metric": "balanced accuracy (mean per-class recall) on group-held-out test images",
        "stitching": rows,
    }
    if classes_file is not None:
        metas = [dict(items[k].meta) for k in common]
        report["text_zeroshot"] = text_zeroshot(x_src[train], y[train], x_src[test], y[test], classes,
                                                classes_file, list(unseen or []), methods,
                                                [m for m, t in zip(metas, train, strict=True) if t])
    yield Progress(total, total, "done")
    return report


def image_report(meta: dict[str, str], definitions: Any) -> str | None:
    """A training image's own text: its ``report`` column where metadata.csv has one, else a short
    finding sentence written from its annotated attributes (``image_attributes`` of the class file),
    else None."""
    text = str(meta.get("report") or "").strip()
    if text:
        return text
    if not definitions.image_attributes:
        return None
    matrix, annotated = definitions.image_attribute_matrix([meta])
    if not annotated[0]:
        return None
    found = [name.replace("_", " ") for name, value in zip(definitions.attribute_names, matrix[0], strict=True)
             if value >= 0.5]
    return "Dermoscopy shows " + (", ".join(found) if found else "none of the annotated criteria") + "."


def text_zeroshot(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, classes: list[str],
    classes_file: str | Path, unseen: list[str], methods: Sequence[str],
    train_metas: Sequence[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Map image features into MiniLM space on (seen image, text) anchor pairs; classify by the
    nearest class description among all classes (GZSL) and among unseen only (ZSL).

    The anchor text is each image's own report where the data give one (``image_report``: a report
    column, or findings written from per-image annotations), else the description of its class."""
    from zsmed.encoders import create_text_encoder
    from zsmed.zeroshot.calibration import gzsl_scores
    from zsmed.zeroshot.classdefs import load_class_definitions

    missing = [u for u in unseen if u not in classes]
    if missing:
        raise DatasetError(f"unseen class(es) {', '.join(missing)} have no images in the data folder")
    definitions = load_class_definitions(classes_file)
    definitions.require(classes, "text")
    encoder = create_text_encoder()
    text = encoder.encode([definitions.get(c).text for c in classes]).astype(np.float64)
    seen_mask = np.array([c not in unseen for c in classes])
    keep = seen_mask[y_train]
    reports = [image_report(m, definitions) for m in train_metas] if train_metas is not None else []
    use_reports = len(reports) == len(y_train) and all(r is not None for r, k in zip(reports, keep, strict=True) if k)
    # Centre both spaces on the seen side (image features on the class-balanced mean of the seen
    # training images, descriptions on the mean of the seen descriptions), then normalise: raw
    # MiniLM embeddings of any two descriptions have cosine 0.3-0.8, and raw pooled image features
    # share one large component, so an uncentred map mostly fits the two common offsets.
    seen_y = np.unique(y_train[keep])
    img_centre = np.mean([x_train[y_train == c].mean(axis=0) for c in seen_y], axis=0)
    text_c = text - text[seen_mask].mean(axis=0)
    text_c /= np.maximum(np.linalg.norm(text_c, axis=1, keepdims=True), 1e-12)

    def img(x: np.ndarray) -> np.ndarray:
        xc = x - img_centre
        return np.asarray(xc / np.maximum(np.linalg.norm(xc, axis=1, keepdims=True), 1e-12))

    if use_reports:
        # Many distinct targets: each seen image's own report, centred on the reports' mean (reports
        # and class descriptions are written differently; each is centred on its own seen side).
        anchor_texts = [r for r, k in zip(reports, keep, strict=True) if k]
        embedded = encoder.encode([str(r) for r in anchor_texts]).astype(np.float64)
        targets = embedded - embedded.mean(axis=0)
        targets /= np.maximum(np.linalg.norm(targets, axis=1, keepdims=True), 1e-12)
        distinct = len(set(anchor_texts))
    else:
        targets = text_c[y_train[keep]]
        distinct = int(seen_mask.sum())
    rank = int(np.linalg.matrix_rank(targets))
    out: dict[str, Any] = {
        "unseen": unseen, "anchors": int(keep.sum()),
        "anchor_targets": "per-image reports" if use_reports else "class descriptions",
        "distinct_anchor_targets": distinct, "target_rank": rank, "methods": {},
    }
    if not use_reports:
        out["note"] = (f"the anchor targets are only {distinct} distinct description vectors (rank {rank} after "
                       "centring): a map fitted on them sends every image into their span, and an unseen "
                       "description has no component there beyond its projection on the seen ones")
    for method in methods:
        try:
            aligner = create_aligner(method).fit(img(x_train[keep]), targets)
        except AlignmentError as exc:
            out["methods"][method] = {"error": str(exc)}
            continue
        mapped = aligner.transform(img(x_test))
        mapped /= np.maximum(np.linalg.norm(mapped, axis=1, keepdims=True), 1e-12)
        scores = mapped @ text_c.T
        if seen_mask.all():
            out["methods"][method] = {"accuracy": balanced_accuracy(y_test, np.argmax(scores, axis=1))}
        else:
            out["methods"][method] = gzsl_scores(scores, y_test, seen_mask, 0.0).to_dict()
    return out
