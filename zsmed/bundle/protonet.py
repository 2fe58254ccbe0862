"""A ProtoNet-style few-shot classifier (cosine to class means of pooled features).

Used for the reference bundles and the export tests until the other methods' heads land: it is
a real few-shot classifier (Snell et al. 2017 with cosine similarity), built from support images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from zsmed.classifier import Classifier, LinearHead, make_classifier
from zsmed.imageio import read_image
from zsmed.preprocess import batch_model_inputs
from zsmed.runtime.input_kinds import input_kinds_of

PROTONET_SCALE = 20.0  # cosine logits scaled so that softmax is neither flat nor one-hot


def build_protonet(
    support: Mapping[str, Sequence[str | Path]],
    encoder_name: str = "efficientnet-lite0",
    descriptions: Mapping[str, str] | None = None,
) -> Classifier:
    from zsmed.encoders import create_image_encoder

    encoder = create_image_encoder(encoder_name)
    means = []
    for paths in support.values():
        pixels = batch_model_inputs([read_image(p) for p in paths], encoder.preprocess)
        features = encoder.encode(pixels)
        features /= np.linalg.norm(features, axis=1, keepdims=True)
        means.append(features.mean(axis=0))
    head = LinearHead.from_arrays(np.stack(means), cosine=True, scale=PROTONET_SCALE)
    return make_classifier(
        head,
        method="protonet-cosine",
        class_names=list(support),
        encoder=encoder.spec,
        descriptions=descriptions,
        support_counts={name: len(paths) for name, paths in support.items()},
        input_kinds=input_kinds_of([p for paths in support.values() for p in paths]),
    )
