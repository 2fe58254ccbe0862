"""Encoder registry: ``create_encoder(name)`` for image and text encoders, all offline.

Names: ``efficientnet-lite0`` (default image), ``efficientnet-lite2``, ``all-MiniLM-L6-v2`` (default
text; alias ``minilm``), ``hf-local:<folder>`` (local BERT-like checkpoint), and
``timm-local:<timm model name>@<checkpoint path>``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from zsmed.encoders.base import EncoderSpec, ImageEncoder, TextEncoder
from zsmed.errors import UnknownEncoderError

DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"

Factory = Callable[..., ImageEncoder | TextEncoder]
_REGISTRY: dict[str, tuple[str, Factory]] = {}
_PREFIXES: dict[str, tuple[str, Callable[[str], ImageEncoder | TextEncoder]]] = {}


def register_encoder(name: str, kind: str, factory: Factory) -> None:
    _REGISTRY[name.lower()] = (kind, factory)


def register_prefix(prefix: str, kind: str, factory: Callable[[str], ImageEncoder | TextEncoder]) -> None:
    _PREFIXES[prefix] = (kind, factory)


def list_encoders() -> dict[str, str]:
    """Registered names and their kind ('image' / 'text'); prefixes end with ':'."""
    listing = {name: kind for name, (kind, _) in _REGISTRY.items()}
    listing.update({f"{prefix}:": kind for prefix, (kind, _) in _PREFIXES.items()})
    return listing


def create_encoder(name: str, **kwargs: Any) -> ImageEncoder | TextEncoder:
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _PREFIXES:
        return _PREFIXES[prefix][1](rest)
    try:
        _, factory = _REGISTRY[name.lower()]
    except KeyError:
        known = ", ".join(sorted(list_encoders()))
        raise UnknownEncoderError(f"unknown encoder '{name}'; known: {known}") from None
    return factory(**kwargs)


def create_image_encoder(name: str = DEFAULT_IMAGE_ENCODER, **kwargs: Any) -> ImageEncoder:
    encoder = create_encoder(name, **kwargs)
    if not isinstance(encoder, ImageEncoder):
        raise UnknownEncoderError(f"'{name}' is a text encoder, an image encoder is needed here")
    return encoder


def create_text_encoder(name: str = DEFAULT_TEXT_ENCODER, **kwargs: Any) -> TextEncoder:
    encoder = create_encoder(name, **kwargs)
    if not isinstance(encoder, TextEncoder):
        raise UnknownEncoderError(f"'{name}' is an image encoder, a text encoder is needed here")
    return encoder


@lru_cache(maxsize=4)
def shared_encoder(name: str) -> ImageEncoder | TextEncoder:
    """One loaded instance per name per process (loading weights costs seconds)."""
    return create_encoder(name)


def _lite(name: str) -> Factory:
    def factory(weights: str | None = None) -> ImageEncoder:
        from zsmed.encoders.image import create_efficientnet_lite

        return create_efficientnet_lite(name, weights)

    return factory


def _minilm() -> TextEncoder:
    from zsmed.encoders.text import create_minilm

    return create_minilm()


def _hf_local(folder: str) -> TextEncoder:
    from zsmed.encoders.text import create_hf_local

    return create_hf_local(folder)


def _timm_local(rest: str) -> ImageEncoder:
    from zsmed.encoders.image import create_timm_local

    model_name, sep, path = rest.partition("@")
    if not sep:
        raise UnknownEncoderError("timm-local needs '<timm model name>@<checkpoint path>'")
    return create_timm_local(model_name, path)


for _name in ("efficientnet-lite0", "efficientnet-lite2"):
    register_encoder(_name, "image", _lite(_name))
register_encoder(DEFAULT_TEXT_ENCODER, "text", _minilm)
register_encoder("minilm", "text", _minilm)
register_prefix("hf-local", "text", _hf_local)
register_prefix("timm-local", "image", _timm_local)

__all__ = [
    "DEFAULT_IMAGE_ENCODER",
    "DEFAULT_TEXT_ENCODER",
    "EncoderSpec",
    "ImageEncoder",
    "TextEncoder",
    "create_encoder",
    "create_image_encoder",
    "create_text_encoder",
    "list_encoders",
    "register_encoder",
    "register_prefix",
    "shared_encoder",
]
