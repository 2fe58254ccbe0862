"""Checks on what a bundle (or model file) says about itself, before any of it is used.

A model card or an array header is data from a USB stick: class names become text on a screen and
in a report, sizes become allocations, the OOD threshold decides whether the model may answer at
all. Each check here fails with one message (the caller wraps it in its ``BundleError`` /
``CheckpointError``), never a traceback, and never after a large allocation. No torch.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAX_CLASSES = 1000
MAX_CLASS_NAME = 100
MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 1024
MAX_EMBEDDING = 8192
MAX_COMPONENTS = 1024
MAX_THRESHOLD = 1e6
MAX_INPUT_KINDS = 16
MAX_INPUT_KIND = 16
OOD_ARRAYS = ("mean", "components", "variances", "residual_variance")
_FLOAT_DTYPES = ("<f4", "<f8")


class CardError(ValueError):
    """One thing wrong with a card or array header (the message names it)."""


def plain_text(value: object, what: str, max_len: int = MAX_CLASS_NAME) -> str:
    """``value`` as short printable text: no control characters (terminal escapes, new lines, tabs
    that would forge output lines), no other non-printing characters, not empty, not too long."""
    if not isinstance(value, str):
        raise CardError(f"{what} must be text, not {type(value).__name__}")
    if not value.strip():
        raise CardError(f"{what} is empty")
    if len(value) > max_len:
        raise CardError(f"{what} is {len(value)} characters long (at most {max_len})")
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise CardError(f"{what} {value[:40]!r} holds a control or non-printing character ({bad!r})")
    return value


def check_class_names(names: object) -> list[str]:
    if not isinstance(names, list):
        raise CardError("class_names must be a list")
    if not 2 <= len(names) <= MAX_CLASSES:
        raise CardError(f"a model needs 2 to {MAX_CLASSES} classes, this one has {len(names)}")
    checked = [plain_text(name, f"class name {i + 1}") for i, name in enumerate(names)]
    if len(set(checked)) != len(checked):
        raise CardError("class names are not unique")
    return checked


def check_image_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise CardError(f"preprocess size {size!r} is not an image size between {MIN_IMAGE_SIZE} and "
                        f"{MAX_IMAGE_SIZE} pixels")
    return size


def check_finite_numbers(values: object, what: str, count: int) -> None:
    if not isinstance(values, list | tuple) or len(values) != count:
        raise CardError(f"{what} must be {count} numbers")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise CardError(f"{what} must be {count} finite numbers")


def check_preprocess(pre: object) -> None:
    if not isinstance(pre, Mapping):
        raise CardError("preprocess must be an object")
    check_image_size(pre.get("size"))
    check_finite_numbers(pre.get("mean"), "preprocess mean", 3)
    check_finite_numbers(pre.get("std"), "preprocess std", 3)
    if any(float(v) <= 0 for v in pre["std"]):
        raise CardError("preprocess std must be positive")
    pad = pre.get("pad_value", 0.0)
    if isinstance(pad, bool) or not isinstance(pad, int | float) or not math.isfinite(pad):
        raise CardError("preprocess pad_value must be a finite number")
    window = pre.get("window", "display-v1")
    plain_text(window, "preprocess window", 40)


def check_threshold(value: object) -> float:
    """The OOD gate's threshold: a finite positive number (a negative one would never abstain, an
    absurd one always answer)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CardError(f"the OOD threshold {value!r} is not a finite number")
    if not 0 < value <= MAX_THRESHOLD:
        raise CardError(f"the OOD threshold {value!r} is outside (0, {MAX_THRESHOLD:g}]")
    return float(value)


def check_input_kinds(kinds: object) -> list[str]:
    """``input_kinds``: the kinds of images a model was built on ("photo", DICOM Modality codes),
    a list of 1 to 16 short printable texts."""
    if not isinstance(kinds, list):
        raise CardError("input_kinds must be a list")
    if not 1 <= len(kinds) <= MAX_INPUT_KINDS:
        raise CardError(f"input_kinds must list 1 to {MAX_INPUT_KINDS} kinds, not {len(kinds)}")
    return [plain_text(kind, f"input kind {i + 1}", MAX_INPUT_KIND) for i, kind in enumerate(kinds)]


def check_card(card: object, *, ood_method: str) -> dict[str, Any]:
    """The bundle's model card, checked field by field; returns it."""
    if not isinstance(card, dict):
        raise CardError("the model card is not an object")
    check_class_names(card.get("class_names"))
    if "preprocess" not in card:
        raise CardError("the model card has no preprocess settings")
    check_preprocess(card["preprocess"])
    gate = card.get("ood_gate")
    if not isinstance(gate, dict):
        raise CardError("the model card has no OOD gate (every bundle must be able to abstain)")
    if gate.get("method") != ood_method:
        raise CardError(f"OOD gate method {str(gate.get('method'))[:40]!r} is not {ood_method!r}")
    check_threshold(gate.get("threshold"))
    if "input_kinds" in card:  # optional: bundles made before it was recorded have none
        check_input_kinds(card["input_kinds"])
    return card


# --- .npy headers ------------------------------------------------------------------------------
def npy_header(data: bytes, what: str) -> tuple[str, tuple[int, ...], bool]:
    """(dtype descr, shape, fortran_order) of an .npy file's header, parsed without numpy's
    loader (which would allocate the array the header asks for)."""
    if len(data) < 10 or data[:6] != b"\x93NUMPY":
        raise CardError(f"{what} is not an .npy array")
    major = data[6]
    if major == 1:
        length, start = int.from_bytes(data[8:10], "little"), 10
    elif major in (2, 3):
        length, start = int.from_bytes(data[8:12], "little"), 12
    else:
        raise CardError(f"{what} has an unknown .npy version {major}")
    if length > 4096 or start + length > len(data):
        raise CardError(f"{what} has a malformed .npy header")
    try:
        header = ast.literal_eval(data[start : start + length].decode("latin1"))
        descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError) as exc:
        raise CardError(f"{what} has a malformed .npy header") from exc
    if not isinstance(descr, str) or descr not in _FLOAT_DTYPES:
        raise CardError(f"{what} holds {str(descr)[:40]!r} values; float32 or float64 expected")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                               for d in shape):
        raise CardError(f"{what} has a malformed shape")
    expected = int(np.prod(shape, dtype=np.int64)) * int(descr[-1])
    if len(data) - start - length != expected:
        raise CardError(f"{what}: its header describes {expected} bytes of data, the file holds "
                        f"{len(data) - start - length}")
    return descr, tuple(shape), bool(fortran)


def check_ood_shapes(shapes: Mapping[str, Sequence[int]]) -> None:
    missing = [name for name in OOD_ARRAYS if name not in shapes]
    if missing:
        raise CardError(f"ood.npz lacks {', '.join(missing)}")
    mean, comps, var, resid = (tuple(shapes[name]) for name in OOD_ARRAYS)
    if len(mean) != 1 or not 1 <= mean[0] <= MAX_EMBEDDING:
        raise CardError(f"ood.npz mean has shape {mean}; (D,) with D <= {MAX_EMBEDDING} expected")
    dim = mean[0]
    if len(comps) != 2 or comps[1] != dim or not 1 <= comps[0] <= min(MAX_COMPONENTS, dim):
        raise CardError(f"ood.npz components has shape {comps}; (k, {dim}) expected")
    if var != (comps[0],):
        raise CardError(f"ood.npz variances has shape {var}; ({comps[0]},) expected")
    if resid != (1,):
        raise CardError(f"ood.npz residual_variance has shape {resid}; (1,) expected")


def check_ood_values(arrays: Mapping[str, np.ndarray]) -> None:
    for name in OOD_ARRAYS:
        if not np.isfinite(arrays[name]).all():
            raise CardError(f"ood.npz {name} holds non-finite values")
    if (arrays["variances"] <= 0).any() or (arrays["residual_variance"] <= 0).any():
        raise CardError("ood.npz variances must be positive")


def escape_text(value: object) -> str:
    """``str(value)`` safe for a terminal line or a tab-separated record: every control or
    non-printing character (new line, tab, carriage return, ANSI escape, bidi override ...) written
    as its Python escape, so a file name or class name can neither start a forged result line nor
    recolour or rewrite the terminal."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
