"""Export-time checks that no pixel data and no patient identifiers enter a bundle.

The model card is scanned string by string (keys too) for DICOM person names (``DOE^JOHN``), UIDs,
patient-level DICOM keywords and image file names; numeric arrays in the card are capped. Network
tensors are checked for shapes that look like an image (a support image baked into a head).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from zsmed.errors import ExportError

_PERSON_NAME = re.compile(r"[A-Za-z][A-Za-z'\-]*\^[A-Za-z]")
_UID = re.compile(r"(?<![\d.])[012](?:\.(?:0|[1-9]\d*)){4,}(?![\d.])")
_KEYWORDS = re.compile(
    r"Patient(?:Name|ID|BirthDate|BirthTime|Address|TelephoneNumbers|MotherBirthName)|OtherPatient(?:IDs|Names)|"
    r"AccessionNumber|(?:Study|Series|SOP)InstanceUID|InstitutionName|ReferringPhysicianName|MedicalRecordLocator",
    re.IGNORECASE,
)
_IMAGE_FILE = re.compile(r"\.(?:dcm|dicom|ima|png|jpe?g|bmp|tiff?|webp)\b", re.IGNORECASE)
MAX_CARD_NUMBERS = 4096
MIN_IMAGE_SIDE = 64


def _walk(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{where}.{key}", str(key)
            yield from _walk(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, f"{where}[{i}]")
    else:
        yield where, value


def _count_numbers(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count_numbers(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_count_numbers(v) for v in value)
    return 1 if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def check_card(card: dict[str, Any]) -> None:
    """Refuse a card that carries patient identifiers, image file names or bulk numbers."""
    for where, value in _walk(card, "card"):
        if not isinstance(value, str):
            continue
        for pattern, what in (
            (_PERSON_NAME, "a DICOM person name"),
            (_UID, "a DICOM UID"),
            (_KEYWORDS, "a patient-level DICOM attribute"),
            (_IMAGE_FILE, "an image file name (file names can carry patient names or accession numbers)"),
        ):
            match = pattern.search(value)
            if match:
                raise ExportError(
                    f"refusing to export: {where} looks like {what} ('{match.group(0)}'); "
                    "remove it from the classifier's card (no patient data may leave the workstation)"
                )
    for key, value in card.items():
        count = _count_numbers(value)
        if count > MAX_CARD_NUMBERS:
            raise ExportError(
                f"refusing to export: card field '{key}' holds {count} numbers; bulk arrays (possibly pixel "
                "data) do not belong in the model card"
            )


def looks_like_image(shape: tuple[int, ...], input_size: int) -> bool:
    """A tensor shaped like a picture: (..., [1|3|4], H, W) with large H, W, or (S, S) at input size."""
    if len(shape) < 2:
        return False
    height, width = shape[-2], shape[-1]
    if (height, width) == (input_size, input_size):
        return True
    big = height >= MIN_IMAGE_SIDE and width >= MIN_IMAGE_SIDE and 0.25 <= height / width <= 4
    return big and len(shape) >= 3 and shape[-3] in (1, 3, 4)


def check_tensors(tensors: dict[str, tuple[int, ...]], input_size: int) -> None:
    for name, shape in tensors.items():
        if looks_like_image(tuple(int(d) for d in shape), input_size):
            raise ExportError(
                f"refusing to export: network tensor '{name}' of shape {tuple(shape)} looks like image data; "
                "a head must not store support images"
            )


def check_arrays(arrays: dict[str, np.ndarray], input_size: int) -> None:
    check_tensors({k: tuple(v.shape) for k, v in arrays.items()}, input_size)
