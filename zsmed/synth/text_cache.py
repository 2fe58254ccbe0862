"""Description embeddings without loading the text encoder when they are known.

Loading MiniLM (transformers import + weights) is about half of ``zsmed build fewshot`` on a
2-core CPU, while the descriptions are nearly always the shipped ones. Embeddings are looked up
by the SHA-256 of (text encoder name, text) in

1. ``resources/descriptions/embeddings/<text encoder>.npz`` (precomputed for every shipped
   description: ``python -m zsmed.synth.text_cache`` rewrites it), then
2. ``<user cache>/text_embeddings/<text encoder>.npz`` (filled after each encoder run),

and only the texts found in neither are encoded (then cached). The vectors are the encoder's own
float32 output (equal to a fresh encoding up to float rounding from batch padding).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.paths import replacing

log = logging.getLogger(__name__)


def text_key(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()


def shipped_embeddings_path(model: str) -> Path:
    from zsmed.resources import resources_dir

    return resources_dir() / "descriptions" / "embeddings" / f"{model}.npz"


def user_embeddings_path(model: str) -> Path:
    from zsmed.paths import user_cache_dir

    return user_cache_dir() / "text_embeddings" / f"{model}.npz"


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path) as data:
            return {k: np.asarray(data[k], dtype=np.float32) for k in data.files}
    except (OSError, ValueError) as exc:  # a damaged cache is only a cache
        log.warning("ignoring unreadable text-embedding cache %s (%s)", path, exc)
        return {}


def _write(path: Path, table: Mapping[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {k: np.asarray(v, dtype=np.float32) for k, v in table.items()}
    with replacing(path) as temporary, open(temporary, "wb") as out:  # a file object: savez adds no ".npz"
        np.savez(out, **arrays)


def embed_texts(texts: Mapping[str, str], model: str, make_encoder: Callable[[], object],
                use_user_cache: bool = True) -> dict[str, np.ndarray]:
    """label -> text  =>  label -> (T,) float32 embedding; the encoder is built only on a miss."""
    if not texts:
        return {}
    keys = {label: text_key(model, text) for label, text in texts.items()}
    known = _read(shipped_embeddings_path(model))
    user_path = user_embeddings_path(model) if use_user_cache else None
    if user_path is not None and any(k not in known for k in keys.values()):
        known.update(_read(user_path))
    missing = [label for label, key in keys.items() if key not in known]
    if missing:
        encoder = make_encoder()
        vectors = encoder.encode([texts[label] for label in missing])  # type: ignore[attr-defined]
        fresh = {keys[label]: np.asarray(v, dtype=np.float32) for label, v in zip(missing, vectors, strict=True)}
        known.update(fresh)
        if user_path is not None:
            try:
                table = _read(user_path)
                table.update(fresh)
                _write(user_path, table)
            except OSError as exc:
                log.warning("could not cache text embeddings in %s (%s)", user_path, exc)
    return {label: known[key].copy() for label, key in keys.items()}


def rebuild_shipped(model: str = "all-MiniLM-L6-v2") -> Path:
    """Encode every shipped description (all YAML files) into the shipped table."""
    from zsmed.descriptions import load_descriptions
    from zsmed.encoders import create_text_encoder

    texts = sorted({entry.description for entry in load_descriptions()})
    encoder = create_text_encoder(model)
    vectors = encoder.encode(texts)
    path = shipped_embeddings_path(model)
    _write(path, {text_key(model, t): np.asarray(v, dtype=np.float32) for t, v in zip(texts, vectors, strict=True)})
    return path


if __name__ == "__main__":
    print(rebuild_shipped())
