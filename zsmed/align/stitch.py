"""Stitched classifiers: a fitted linear map from a new encoder's space into the space a classifier
was built on, followed by the classifier's original head. The card names the encoder the stitched
model runs on; the map is one ``nn.Linear``, so the model saves, loads and exports like any other."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from zsmed.align.estimators import Aligner, create_aligner
from zsmed.classifier import Classifier, Head, head_class, make_classifier, register_head
from zsmed.encoders.base import EncoderSpec
from zsmed.errors import AlignmentError


@register_head
class StitchedHead(Head):
    head_type = "stitched"
    input_kind = "pooled"

    def __init__(self, in_dim: int, mid_dim: int, inner_type: str, inner_config: dict[str, Any],
                 inner_module: str = "zsmed.classifier") -> None:
        super().__init__()
        self.in_dim, self.mid_dim = int(in_dim), int(mid_dim)
        self.inner_type, self.inner_module, self.inner_config = inner_type, inner_module, dict(inner_config)
        self.map = nn.Linear(self.in_dim, self.mid_dim)
        self.inner = head_class(inner_type, inner_module).from_config(self.inner_config)

    def config(self) -> dict[str, Any]:
        return {"in_dim": self.in_dim, "mid_dim": self.mid_dim, "inner_type": self.inner_type,
                "inner_config": self.inner.config(), "inner_module": self.inner_module}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.map(x))


def anchors_match(spec: EncoderSpec, anchors: np.ndarray, role: str) -> None:
    if anchors.ndim != 2 or anchors.shape[1] != spec.dim:
        raise AlignmentError(f"{role} anchors have shape {anchors.shape}, but encoder {spec.name} gives "
                             f"{spec.dim}-d features: were they made with another encoder?")


def stitch_classifier(
    classifier: Classifier,
    new_encoder: EncoderSpec,
    anchors_new: np.ndarray,
    anchors_native: np.ndarray,
    method: str | Aligner = "procrustes",
    native_spec: EncoderSpec | None = None,
) -> Classifier:
    """Run ``classifier`` (built on its card's encoder) on ``new_encoder`` features.

    ``anchors_new`` / ``anchors_native``: the same unlabelled images through the new encoder and the
    classifier's encoder (row i = image i). ``native_spec``, when given, is the spec the native
    anchors were computed with and must be the classifier's encoder.
    """
    head = classifier.head
    if head.input_kind != "pooled":
        raise AlignmentError(f"only heads on pooled features can be stitched, not '{head.input_kind}'")
    card_spec = classifier.card.encoder
    if native_spec is not None and (native_spec.name != card_spec.name or native_spec.dim != card_spec.dim
                                    or (native_spec.weights_sha256 and card_spec.weights_sha256
                                        and native_spec.weights_sha256 != card_spec.weights_sha256)):
        raise AlignmentError(f"native anchors come from {native_spec.name}, but the classifier was built on "
                             f"{card_spec.name}")
    anchors_new = np.asarray(anchors_new)
    anchors_native = np.asarray(anchors_native)
    anchors_match(new_encoder, anchors_new, "new-encoder")
    anchors_match(card_spec, anchors_native, "native")
    aligner = create_aligner(method) if isinstance(method, str) else method
    aligner.fit(anchors_new, anchors_native)
    weight, bias = aligner.linear_map()
    stitched = StitchedHead(new_encoder.dim, card_spec.dim, head.head_type, head.config(), type(head).__module__)
    with torch.no_grad():
        stitched.map.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        stitched.map.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        stitched.inner.load_state_dict(head.state_dict())
    card = classifier.card
    extra = {**card.extra, "stitched_from": card_spec.to_dict(), "alignment": aligner.name,
             "n_anchors": len(anchors_new)}
    return make_classifier(stitched, method=f"{card.method}+stitched", class_names=card.class_names,
                           encoder=new_encoder, descriptions=card.descriptions, support_counts=card.support_counts,
                           metrics={}, extra=extra, input_kinds=card.input_kinds)
