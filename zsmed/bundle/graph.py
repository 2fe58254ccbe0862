"""ONNX graph clean-up after the torch export.

EfficientNet-Lite's stride-2 convolutions use TF-"same" padding, which is asymmetric (0 before,
1 after) for even inputs. torch's ``Conv2d`` only pads symmetrically, so the export carries an
explicit ``Pad`` node (built from a chain of ConstantOfShape/Concat/Slice/Cast nodes) before each
of them. ONNX ``Conv`` takes asymmetric pads itself; folding them in removes the ``Pad`` nodes and,
more importantly, the layout reorders onnxruntime puts around them (its blocked NCHWc convolutions
cannot consume a plain ``Pad``): about 2 ms of a 11 ms batch-1 inference on the 2-core CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator


def _constant_value(graph: onnx.GraphProto, name: str, opset: list[onnx.OperatorSetIdProto]) -> np.ndarray | None:
    """Value of ``name`` if it depends on initializers and constant nodes only, else None."""
    initializers = {init.name: init for init in graph.initializer}
    if name in initializers:
        return numpy_helper.to_array(initializers[name])
    # protobuf hands out a new wrapper object on each access, so nodes are tracked by index
    producers = {output: index for index, node in enumerate(graph.node) for output in node.output}
    graph_inputs = {value.name for value in graph.input}
    needed: set[int] = set()
    stack, seen = [name], set()
    while stack:
        tensor = stack.pop()
        if tensor in seen or tensor in initializers or not tensor:
            continue
        seen.add(tensor)
        index = producers.get(tensor)
        if tensor in graph_inputs or index is None or graph.node[index].op_type == "Shape":
            return None
        needed.add(index)
        stack.extend(graph.node[index].input)
    nodes = [graph.node[index] for index in sorted(needed)]
    used = {tensor for node in nodes for tensor in node.input}
    subgraph = helper.make_graph(
        nodes, "constant", [], [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)],
        [init for init in graph.initializer if init.name in used],
    )
    values: Any = ReferenceEvaluator(helper.make_model(subgraph, opset_imports=opset)).run(None, {})
    return np.asarray(values[0])


def _attribute(node: onnx.NodeProto, name: str) -> onnx.AttributeProto | None:
    return next((attr for attr in node.attribute if attr.name == name), None)


def _spatial_pads(graph: onnx.GraphProto, pad: onnx.NodeProto,
                  opset: list[onnx.OperatorSetIdProto]) -> list[int] | None:
    """(top, left, bottom, right) of a zero-valued constant NCHW ``Pad`` on H and W only."""
    mode = _attribute(pad, "mode")
    if mode is not None and mode.s not in (b"constant", b""):
        return None
    if len(pad.input) > 3 and pad.input[3]:  # axes input: not what the exporter writes
        return None
    if len(pad.input) > 2 and pad.input[2]:
        fill = _constant_value(graph, pad.input[2], opset)
        if fill is None or np.any(fill != 0):
            return None
    pads = _constant_value(graph, pad.input[1], opset)
    if pads is None or pads.size != 8:
        return None
    n0, c0, top, left, n1, c1, bottom, right = (int(v) for v in pads.reshape(-1))
    if n0 or c0 or n1 or c1 or min(top, left, bottom, right) < 0:
        return None
    return [top, left, bottom, right]


def _prune(graph: onnx.GraphProto) -> int:
    """Drop nodes none of whose outputs is used; returns how many."""
    live = {output.name for output in graph.output}
    keep: list[onnx.NodeProto] = []
    for node in reversed(list(graph.node)):
        if any(output in live for output in node.output):
            keep.append(node)
            live.update(node.input)
    removed = len(graph.node) - len(keep)
    kept = [onnx.NodeProto.FromString(node.SerializeToString()) for node in reversed(keep)]
    del graph.node[:]
    graph.node.extend(kept)
    return removed


def fuse_pads_into_convs(model: onnx.ModelProto) -> int:
    """Fold every zero ``Pad`` that only feeds ``Conv`` data inputs into those convs' ``pads``.

    Modifies ``model`` in place and returns the number of ``Pad`` nodes removed. Pads that are
    not constant, not zero-valued, touch the batch or channel axes, or feed anything but a
    ``Conv`` are left alone, so the result always computes the same function.
    """
    graph = model.graph
    opset = list(model.opset_import)
    outputs = {output.name for output in graph.output}
    fused = 0
    for pad in [node for node in graph.node if node.op_type == "Pad"]:
        users = [node for node in graph.node if pad.output[0] in node.input]
        if pad.output[0] in outputs or not users:
            continue
        if any(user.op_type != "Conv" or list(user.input).index(pad.output[0]) != 0 for user in users):
            continue
        if any((auto := _attribute(user, "auto_pad")) is not None and auto.s not in (b"", b"NOTSET")
               for user in users):
            continue
        spatial = _spatial_pads(graph, pad, opset)
        if spatial is None:
            continue
        for conv in users:
            old = _attribute(conv, "pads")
            base = list(old.ints) if old is not None else [0, 0, 0, 0]
            if old is not None:
                conv.attribute.remove(old)
            conv.attribute.append(helper.make_attribute("pads", [b + s for b, s in zip(base, spatial, strict=True)]))
            conv.input[0] = pad.input[0]
        graph.node.remove(pad)
        fused += 1
    if fused:
        _prune(graph)
    return fused


def optimise_onnx(onnx_bytes: bytes) -> bytes:
    """The exported graph with its Pad nodes folded into the convolutions, checked by onnx."""
    model = onnx.load_from_string(onnx_bytes)
    if not fuse_pads_into_convs(model):
        return onnx_bytes
    onnx.checker.check_model(model)
    return model.SerializeToString()
