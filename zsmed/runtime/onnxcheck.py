"""Walk an ONNX model's protobuf (no ``onnx`` package needed) for external data references.

A tensor anywhere in the model (graph initializers, constants in node attributes, sparse tensors,
every subgraph of If/Loop/Scan, functions, training graphs) may say its bytes live in another
file (``data_location = EXTERNAL``, ``external_data`` entries ``location``/``offset``/``length``).
onnxruntime resolves such a location against the current folder when the model comes from memory,
so a crafted bundle could read any file into the model. A bundle's only legitimate external
file is its own ``model.bin``, within its size: anything else is refused.
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_DEPTH = 64

# field numbers from onnx.proto
_MODEL_GRAPH, _MODEL_FUNCTIONS, _MODEL_TRAINING = 7, 25, 20
_TRAINING_GRAPHS = (1, 2)
_GRAPH_NODE, _GRAPH_INIT, _GRAPH_SPARSE_INIT = 1, 5, 15
_NODE_ATTRIBUTE = 5
_FUNCTION_NODE = 7
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


class OnnxFormatError(ValueError):
    """The model is not valid protobuf (``malformed``) or refers to data it may not use."""

    def __init__(self, message: str, malformed: bool = True) -> None:
        super().__init__(message)
        self.malformed = malformed


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise OnnxFormatError("truncated or malformed varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of one protobuf message; length-delimited values as views
    (no copies: a model's inline weights are skipped, not duplicated)."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 1:
            pos += 8
            yield number, wire, 0
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise OnnxFormatError("a field runs past the end of its message")
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 5:
            pos += 4
            yield number, wire, 0
        else:
            raise OnnxFormatError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise OnnxFormatError("truncated message")


def _sub(data: memoryview, wanted: tuple[int, ...]) -> Iterator[tuple[int, memoryview]]:
    for number, wire, value in fields(data):
        if number in wanted and wire == 2 and isinstance(value, memoryview):
            yield number, value


def external_references(model: bytes) -> list[tuple[str, dict[str, str], int]]:
    """Every tensor that declares external data: (tensor name, its external_data entries,
    data_location), from the whole model including subgraphs."""
    found: list[tuple[str, dict[str, str], int]] = []

    def tensor(data: memoryview) -> None:
        name, entries, location = "", {}, 0
        for number, wire, value in fields(data):
            if number == _TENSOR_NAME and isinstance(value, memoryview):
                name = bytes(value).decode("utf-8", "replace")
            elif number == _TENSOR_LOCATION and wire == 0 and isinstance(value, int):
                location = value
            elif number == _TENSOR_EXTERNAL and isinstance(value, memoryview):
                key = val = ""
                for n2, _w2, v2 in fields(value):
                    if isinstance(v2, memoryview) and n2 == _ENTRY_KEY:
                        key = bytes(v2).decode("utf-8", "replace")
                    elif isinstance(v2, memoryview) and n2 == _ENTRY_VALUE:
                        val = bytes(v2).decode("utf-8", "replace")
                if key in entries:
                    raise OnnxFormatError(f"tensor '{name}' repeats its external data key '{key}'")
                entries[key] = val
        if entries or location:
            found.append((name, entries, location))

    def sparse(data: memoryview, depth: int) -> None:
        for _n, value in _sub(data, (_SPARSE_VALUES, _SPARSE_INDICES)):
            tensor(value)

    def graph(data: memoryview, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise OnnxFormatError("subgraphs nested too deeply")
        for number, value in _sub(data, (_GRAPH_NODE, _GRAPH_INIT, _GRAPH_SPARSE_INIT)):
            if number == _GRAPH_NODE:
                node(value, depth)
            elif number == _GRAPH_INIT:
                tensor(value)
            else:
                sparse(value, depth)

    def node(data: memoryview, depth: int) -> None:
        for _n, attribute in _sub(data, (_NODE_ATTRIBUTE,)):
            for number, value in _sub(attribute, (_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE,
                                                  _ATTR_SPARSES)):
                if number in (_ATTR_T, _ATTR_TENSORS):
                    tensor(value)
                elif number in (_ATTR_G, _ATTR_GRAPHS):
                    graph(value, depth + 1)
                else:
                    sparse(value, depth)

    for number, value in _sub(memoryview(model), (_MODEL_GRAPH, _MODEL_FUNCTIONS, _MODEL_TRAINING)):
        if number == _MODEL_GRAPH:
            graph(value, 0)
        elif number == _MODEL_FUNCTIONS:
            for _n, function_node in _sub(value, (_FUNCTION_NODE,)):
                node(function_node, 1)
        else:
            for _n, training_graph in _sub(value, _TRAINING_GRAPHS):
                graph(training_graph, 1)
    return found


def check_external_data(model: bytes, allowed_location: str, allowed_size: int) -> None:
    """Raise ``OnnxFormatError`` unless every external reference names ``allowed_location`` and
    stays within its ``allowed_size`` bytes."""
    for name, entries, _location in external_references(model):
        where = entries.get("location")
        if where != allowed_location:
            raise OnnxFormatError(f"tensor '{name[:80]}' takes its data from {where!r}, not the bundle's "
                                  f"{allowed_location}", malformed=False)
        unknown = set(entries) - {"location", "offset", "length", "checksum"}
        if unknown:
            raise OnnxFormatError(f"tensor '{name[:80]}' has unknown external data keys {sorted(unknown)}",
                                  malformed=False)
        try:
            offset = int(entries.get("offset", "0"))
            length = int(entries["length"]) if "length" in entries else allowed_size - offset
        except ValueError as exc:
            raise OnnxFormatError(f"tensor '{name[:80]}' has a malformed offset or length") from exc
        if offset < 0 or length < 0 or offset + length > allowed_size:
            raise OnnxFormatError(f"tensor '{name[:80]}' points outside {allowed_location} "
                                  f"({offset}+{length} of {allowed_size} bytes)", malformed=False)
