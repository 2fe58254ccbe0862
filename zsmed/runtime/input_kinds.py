"""The kinds of images a model was built on, and whether an image to classify is one of them.

A kind is ``"photo"`` for a photograph (PNG, JPEG, ...) or a DICOM file's Modality code (``CT``,
``CR``, ``DX``, ``MR``, ...), read from the header alone. A model card may list the kinds of its
support / seen / calibration images (``input_kinds``); an image of another kind is named before
running (the app asks, the CLI says so on stderr) instead of the model only abstaining afterwards.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

PHOTO = "photo"
MAX_KIND_FILES = 2000  # headers read at build time, spread over the files
_MODALITY_NAMES = {
    "CT": "a CT", "MR": "an MR image", "CR": "an X-ray (CR)", "DX": "an X-ray (DX)", "MG": "a mammogram",
    "US": "an ultrasound image", "PT": "a PET image", "NM": "a nuclear medicine image", "XA": "an angiogram",
    "SM": "a slide scan", "OP": "an eye photograph (OP)", "XC": "an external camera photograph (XC)",
}
_MODALITY_PLURALS = {
    "CT": "CT", "MR": "MR images", "CR": "X-rays (CR)", "DX": "X-rays (DX)", "MG": "mammograms",
    "US": "ultrasound images", "PT": "PET images", "NM": "nuclear medicine images", "XA": "angiograms",
    "SM": "slide scans", "OP": "eye photographs (OP)", "XC": "external camera photographs (XC)",
}


def image_kind(path: str | Path) -> str | None:
    """``"photo"``, the DICOM Modality code, or None (not readable, or no Modality)."""
    from zsmed.imageio import is_photo

    path = Path(path)
    if is_photo(path):
        return PHOTO
    try:
        import pydicom

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["Modality"])
        modality = str(ds.get("Modality") or "").strip().upper()
    except Exception:  # not DICOM, or a header pydicom cannot read: no kind, no warning
        return None
    return modality if modality and modality.isprintable() and len(modality) <= 16 else None


def input_kinds_of(paths: Iterable[str | Path], limit: int = MAX_KIND_FILES) -> list[str]:
    """The kinds among ``paths`` (at most ``limit`` headers read, spread over them), most common
    first and at most 16 (what a card may hold)."""
    files = list(paths)
    if len(files) > limit:
        step = len(files) / limit
        files = [files[int(i * step)] for i in range(limit)]
    counts = Counter(kind for kind in map(image_kind, files) if kind is not None)
    return [kind for kind, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))][:16]


def describe_kind(kind: str) -> str:
    """One image of this kind, in words: "a photograph", "a CT"."""
    if kind == PHOTO:
        return "a photograph"
    return _MODALITY_NAMES.get(kind, f"a DICOM {kind} image")


def describe_kinds(kinds: Sequence[str]) -> str:
    """Images of these kinds, in words: "photographs", "X-rays (CR) and X-rays (DX)"."""
    words = ["photographs" if k == PHOTO else _MODALITY_PLURALS.get(k, f"DICOM {k} images") for k in kinds]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def card_input_kinds(card: dict[str, object]) -> list[str]:
    """The kinds a (checked) card lists; [] when it says nothing."""
    kinds = card.get("input_kinds")
    return [str(k) for k in kinds] if isinstance(kinds, list) else []


def kind_mismatch(model_kinds: Sequence[str], kind: str | None) -> str | None:
    """The sentence to show when an image of ``kind`` is not among what the model was built on
    (None when the card lists nothing, the image's kind is unknown, or it is one of them)."""
    if not model_kinds or kind is None or kind in model_kinds:
        return None
    return f"This model was built on {describe_kinds(model_kinds)}; this image is {describe_kind(kind)}."
