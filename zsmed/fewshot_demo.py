"""The demo's classifier builder (kept apart so the demo module itself stays torch-free)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zsmed.classifier import Classifier, LinearHead, make_classifier, save_classifier


def build_demo_classifier(support: dict[str, list[str]], out_dir: Path) -> tuple[Classifier, Path]:
    """A prototype classifier (cosine to class means of frozen features) from the support files."""
    from zsmed.dicom.safe import safe_model_image
    from zsmed.encoders import create_image_encoder
    from zsmed.preprocess import batch_model_inputs

    encoder = create_image_encoder()
    labels = sorted(support)
    prototypes = []
    for label in labels:
        images = [safe_model_image(p) for p in support[label]]
        features = encoder.encode(batch_model_inputs(images, encoder.preprocess))
        features /= np.linalg.norm(features, axis=1, keepdims=True)
        prototypes.append(features.mean(0))
    head = LinearHead.from_arrays(np.stack(prototypes).astype(np.float32), cosine=True, scale=20.0)
    classifier = make_classifier(head, method="protonet", class_names=labels, encoder=encoder.spec,
                                 support_counts={k: len(v) for k, v in support.items()})
    return classifier, save_classifier(classifier, out_dir / "demo_ct_vs_mr.zsm")
