"""Folding explicit Pad nodes into Conv pads keeps the function and removes the nodes."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

from zsmed.bundle.graph import fuse_pads_into_convs, optimise_onnx


class _PadThenConv(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.depthwise = nn.Conv2d(4, 4, 3, groups=4, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(F.pad(x, [0, 1, 0, 1], value=self.value))  # left, right, top, bottom
        return self.depthwise(F.pad(y, [2, 0, 1, 0])) + 1


def _export(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(module.eval(), (torch.zeros(1, 3, 16, 16),), buffer, dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    return buffer.getvalue()


def _run(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def test_zero_pads_are_folded_and_outputs_unchanged() -> None:
    torch.manual_seed(0)
    original = _export(_PadThenConv(0.0))
    assert sum(node.op_type == "Pad" for node in onnx.load_from_string(original).graph.node) == 2
    fused = optimise_onnx(original)
    graph = onnx.load_from_string(fused).graph
    assert not [node for node in graph.node if node.op_type == "Pad"]
    pads = [list(attr.ints) for node in graph.node if node.op_type == "Conv"
            for attr in node.attribute if attr.name == "pads"]
    assert sorted(pads) == [[0, 0, 1, 1], [2, 3, 1, 1]]  # top, left, bottom, right (+ the conv's own 1)
    x = np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(_run(fused, x), _run(original, x))


def test_non_zero_pad_is_left_alone() -> None:
    model = onnx.load_from_string(_export(_PadThenConv(0.5)))
    assert fuse_pads_into_convs(model) == 1  # only the zero pad before the depthwise conv
    assert sum(node.op_type == "Pad" for node in model.graph.node) == 1
