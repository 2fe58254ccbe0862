"""Deterministic inputs for the reference bundles' expected outputs (numpy only, no RNG).

Analytic patterns, so the same pixels are produced by any numpy version on any machine: the
reference test can compare a bundle's outputs across zsmed versions without shipping images.
"""

from __future__ import annotations

import numpy as np


def synthetic_inputs(size: int = 224) -> dict[str, np.ndarray]:
    """Named [0, 1] RGB images: lesion-like blobs on skin tones, and inputs that must abstain."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
    images: dict[str, np.ndarray] = {}
    skin = np.array([0.85, 0.65, 0.55])
    blobs = [
        (0.5, 0.5, 0.25, (0.35, 0.2, 0.15)),
        (0.45, 0.55, 0.18, (0.25, 0.15, 0.12)),
        (0.55, 0.45, 0.3, (0.6, 0.35, 0.3)),
    ]
    for i, (cx, cy, radius, tone) in enumerate(blobs):
        distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
        blob = 1.0 / (1.0 + np.exp((distance - radius) * 40.0))
        texture = 0.03 * np.sin(37.0 * x + 11.0 * y + i) * np.cos(23.0 * y - 7.0 * x)
        image = skin[None, None, :] * (1 - blob[..., None]) + np.asarray(tone)[None, None, :] * blob[..., None]
        images[f"blob{i}"] = np.clip(image + texture[..., None], 0, 1).astype(np.float32)
    images["black"] = np.zeros((size, size, 3), dtype=np.float32)
    images["white"] = np.ones((size, size, 3), dtype=np.float32)
    stripes = 0.5 + 0.5 * np.sin(60.0 * x) * np.sin(45.0 * y)
    images["stripes_grey"] = stripes.astype(np.float32)
    # A chest-film-like grey image: bright mediastinum, darker lungs, wide and not square.
    wide_y, wide_x = np.mgrid[0:180, 0:240].astype(np.float64)
    lungs = 0.3 + 0.5 * np.exp(-(((wide_x - 120) / 25.0) ** 2)) + 0.1 * (wide_y / 180.0)
    images["grey_film"] = np.clip(lungs, 0, 1).astype(np.float32)
    return images
