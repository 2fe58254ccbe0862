"""``zsmed build stitch``: move a saved classifier onto another encoder with a site's own unlabelled
images as anchors.

The anchors are encoded by both encoders; a share of them is held out, and the map fitted on the
rest is checked there without labels: the stitched classifier on the new encoder should give the
same top-1 class as the original classifier on its own encoder. The model saved is then fitted on
all anchors, and the check travels in its card (``extra.stitch_check``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.classifier import Classifier, load_classifier
from zsmed.errors import AlignmentError, DatasetError
from zsmed.progress import Job, Progress

MIN_CHECK_IMAGES = 10  # fewer held-out anchors than this give no meaningful agreement figure


def _top1(classifier: Classifier, features: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        logits = classifier.head(torch.as_tensor(features, dtype=torch.float32))
    return np.asarray(logits.argmax(dim=1))


def anchor_files(folders: Sequence[str | Path], max_anchors: int, seed: int = 0) -> list[Path]:
    """Image and DICOM files under ``folders`` (recursive), at most ``max_anchors`` of them drawn at
    random but reproducibly (``seed``)."""
    from zsmed.runtime.predict import expand_inputs

    files = expand_inputs(folders)
    if not files:
        raise DatasetError(f"no images under {', '.join(str(f) for f in folders)} to use as anchors")
    if len(files) > max_anchors:
        keep = np.sort(np.random.default_rng(seed).choice(len(files), size=max_anchors, replace=False))
        files = [files[i] for i in keep]
    return files


def build_stitched(
    model: str | Path,
    target_encoder: str,
    anchors: Sequence[str | Path],
    *,
    method: str = "affine",
    max_anchors: int = 1000,
    check_fraction: float = 0.2,
    seed: int = 0,
) -> Job[tuple[Classifier, dict[str, Any]]]:
    """A job (yields Progress) returning the stitched classifier and its unlabelled check."""
    import torch

    from zsmed.align.estimators import create_aligner, mean_cosine
    from zsmed.align.stitch import StitchedHead, stitch_classifier
    from zsmed.encoders import create_image_encoder
    from zsmed.zeroshot.evaluate import _encode

    if not 0.0 <= check_fraction < 1.0:
        raise AlignmentError("--check-fraction must lie in [0, 1)")
    create_aligner(method)  # an unknown method fails before any encoding
    classifier = load_classifier(model)
    native = classifier.card.encoder
    target = create_image_encoder(target_encoder).spec
    if target.name == native.name and target.weights_sha256 == native.weights_sha256:
        raise AlignmentError(f"the classifier already runs on {native.name}: nothing to stitch", path=model)
    if classifier.head.input_kind != "pooled":
        raise AlignmentError(f"only classifiers on pooled features can be stitched, not "
                             f"'{classifier.head.input_kind}' heads", path=model)
    native_spec = create_image_encoder(native.name).spec
    if native.weights_sha256 and native_spec.weights_sha256 and native.weights_sha256 != native_spec.weights_sha256:
        raise AlignmentError(f"this machine's {native.name} weights differ from those the classifier was built on: "
                             "its anchors would come from another feature space", path=model)
    files = anchor_files(anchors, max_anchors, seed)
    features_native, kept_native = yield from _encode(files, native.name)
    features_target, kept_target = yield from _encode(files, target.name)
    common = sorted(set(kept_native) & set(kept_target))
    row_native = {k: i for i, k in enumerate(kept_native)}
    row_target = {k: i for i, k in enumerate(kept_target)}
    x_native = features_native[[row_native[k] for k in common]]
    x_target = features_target[[row_target[k] for k in common]]
    yield Progress(0, 2, "fitting the map")
    order = np.random.default_rng(seed).permutation(len(common))
    n_check = round(check_fraction * len(common))
    check: dict[str, Any] = {"held_out": 0, "note": "no check asked for (--check-fraction 0)" if not check_fraction
                             else f"too few anchors to hold {MIN_CHECK_IMAGES} out for a check"}
    if n_check >= MIN_CHECK_IMAGES:
        held, fit = order[:n_check], order[n_check:]
        trial = stitch_classifier(classifier, target, x_target[fit], x_native[fit], method, native_spec)
        assert isinstance(trial.head, StitchedHead)
        with torch.inference_mode():  # the trial's own fitted map, not a second fit of the same anchors
            aligned = trial.head.map(torch.as_tensor(x_target[held], dtype=torch.float32)).numpy()
        check = {
            "held_out": n_check,
            "fitted_on": len(fit),
            "top1_agreement": float(np.mean(_top1(trial, x_target[held]) == _top1(classifier, x_native[held]))),
            "mean_cosine": float(mean_cosine(aligned, x_native[held])),
        }
    yield Progress(1, 2, "fitting on all anchors")
    stitched = stitch_classifier(classifier, target, x_target, x_native, method, native_spec)
    stitched.card.extra["stitch_check"] = check
    yield Progress(2, 2, "done")
    report = {"model": str(model), "native_encoder": native.name, "target_encoder": target.name,
              "method": method, "anchors": len(common), "unreadable_anchors": len(files) - len(common),
              "check": check}
    return stitched, report
