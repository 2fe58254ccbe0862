"""Helpers shared by the synthesis tests and the export tests that build through the guard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def every_image_wrong(generator: Any, data: Any, classes: Sequence[str], modality: str = "it",
                      colour: Any = None) -> dict[int, str]:
    """A stand-in for ``leave_one_out_predictions`` whose generator gets every support image wrong
    (its estimate 0 %): the guard must turn it down inside its domain."""
    return {i: next(c for c in classes if c != label) for i, label in enumerate(data.bank.labels)}
