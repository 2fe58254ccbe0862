"""Fixed views of model inputs for meta-training task augmentation (cached augmented views).

Each view is a pure function of a (B, 3, S, S) batch of normalised model inputs, deterministic so
that its backbone output can be cached once per file (``build_bank(..., view=...)``) like the
original's. Flips and quarter turns are exact; ``zoom`` and ``contrast`` stand in for the crop and
colour changes of another acquisition. A pooled feature of a flipped trunk map equals the
unflipped one (the last stage is a 1x1 conv and a mean), so a view must go through the backbone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from zsmed.errors import ConfigError

ViewFn = Callable[[np.ndarray], np.ndarray]

# Quarter turns: with ``rotated_classes`` in meta-training, copies that become classes of their own.
# (Dermoscopy has no canonical orientation, so for it every flip and turn keeps the class; a chest
# X-ray's does not.)
ROTATIONS = ("rot90", "rot180", "rot270")


def _zoom(batch: np.ndarray, keep: float = 0.8) -> np.ndarray:
    """The central ``keep`` share of each side, resized back to S (bilinear)."""
    import torch
    import torch.nn.functional as F

    size = batch.shape[-1]
    crop = max(1, round(size * keep))
    start = (size - crop) // 2
    centre = torch.from_numpy(np.ascontiguousarray(batch[..., start : start + crop, start : start + crop]))
    return F.interpolate(centre, size=(size, size), mode="bilinear", align_corners=False).numpy()


def _contrast(batch: np.ndarray, factor: float = 0.75) -> np.ndarray:
    """Contrast scaled around each image's channel means (a softer or harder acquisition)."""
    mean = batch.mean(axis=(2, 3), keepdims=True)
    return (mean + (batch - mean) * factor).astype(batch.dtype)


def _tilt(batch: np.ndarray, degrees: float) -> np.ndarray:
    """A small in-plane rotation about the centre (a patient not quite square to the detector);
    the corners it uncovers are filled with each image's mean."""
    import torch
    import torch.nn.functional as F

    theta = np.deg2rad(degrees)
    matrix = torch.tensor([[np.cos(theta), -np.sin(theta), 0.0], [np.sin(theta), np.cos(theta), 0.0]],
                          dtype=torch.float32).expand(batch.shape[0], 2, 3)
    pixels = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    mean = pixels.mean(dim=(2, 3), keepdim=True)
    grid = F.affine_grid(matrix, list(pixels.shape), align_corners=False)
    turned = F.grid_sample(pixels - mean, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (turned + mean).numpy()


VIEWS: dict[str, ViewFn] = {
    "hflip": lambda b: b[..., ::-1],
    "vflip": lambda b: b[..., ::-1, :],
    "rot90": lambda b: np.rot90(b, 1, axes=(2, 3)),
    "rot180": lambda b: np.rot90(b, 2, axes=(2, 3)),
    "rot270": lambda b: np.rot90(b, 3, axes=(2, 3)),
    "zoom": _zoom,
    "contrast": _contrast,
    "contrast_up": lambda b: _contrast(b, 1.25),
    "tilt10": lambda b: _tilt(b, 10.0),
    "tilt-10": lambda b: _tilt(b, -10.0),
}


def view_fn(name: str) -> ViewFn:
    try:
        return VIEWS[name]
    except KeyError:
        raise ConfigError(f"unknown view '{name}' (known: {', '.join(VIEWS)})") from None


def parse_views(text: str) -> tuple[str, ...]:
    """'hflip,rot90' -> ('hflip', 'rot90'), each checked; empty -> ()."""
    names = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    for name in names:
        view_fn(name)
    return names


def apply_view(batch: np.ndarray, names: Sequence[str] | str) -> np.ndarray:
    """The batch under one view (or several, applied in order), as a contiguous float32 array."""
    for name in [names] if isinstance(names, str) else names:
        batch = view_fn(name)(batch)
    return np.ascontiguousarray(batch, dtype=np.float32)
