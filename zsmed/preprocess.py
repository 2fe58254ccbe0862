"""Model-input preprocessing in numpy: the one definition used at build time and in the runtime.

A ``PreprocessConfig`` travels inside every checkpoint and bundle, so a hospital PC resizes, pads
and normalises exactly as the workstation did. Input is an image already rendered for display
semantics (modality/VOI LUT applied, MONOCHROME1 inverted) as float in [0, 1], grey (H, W) or RGB
(H, W, 3). Output is float32 (3, size, size).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from zsmed.errors import ConfigError, ImageFormatError

# How a file's pixels become the [0, 1] image that is then resized and normalised. Named, and
# carried in every checkpoint and bundle, so a model card says how its images were windowed and a
# runtime that does not implement a policy refuses the model instead of predicting on images
# windowed differently from the ones it was built on.
WINDOW_POLICIES: dict[str, str] = {
    "display-v1": (
        "DICOM: stored bits masked, modality LUT or rescale slope/intercept, then the file's VOI LUT or "
        "its first window (centre/width, with its VOI LUT function), else the 0.5-99.5 percentile range "
        "of the image; MONOCHROME1 inverted; YBR and palette colour converted to RGB. "
        "Photos (PNG/JPEG): turned as their EXIF orientation says, then 8-bit / 255, 16-bit / 65535, "
        "32-bit integer / its maximum, other modes via RGB."
    ),
}
DEFAULT_WINDOW = "display-v1"

# Colour balance of the resized image before normalisation, named and carried like the window
# policy. Dermoscopy photos differ in their light source from clinic to clinic and camera to
# camera; balancing each image to a grey light takes that difference out of the features.
COLOUR_POLICIES: dict[str, str] = {
    "none": "pixels as read",
    "shades-of-gray": (
        "Shades-of-Gray colour constancy (Finlayson & Trezzi 2004, Minkowski norm p = 6): each channel "
        "of the resized image divided by its p-norm mean, scaled so that a grey image is unchanged, "
        "clipped to [0, 1]"
    ),
}
SHADES_OF_GRAY_POWER = 6.0


@dataclass(frozen=True)
class PreprocessConfig:
    size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # Keep the aspect ratio and pad the short side: squashing a chest film distorts anatomy.
    keep_aspect: bool = True
    pad_value: float = 0.0  # in [0, 1] image units, before normalisation
    window: str = DEFAULT_WINDOW  # a key of WINDOW_POLICIES
    colour: str = "none"  # a key of COLOUR_POLICIES

    def __post_init__(self) -> None:
        for kind, name, known in (("window", self.window, WINDOW_POLICIES), ("colour", self.colour, COLOUR_POLICIES)):
            if name not in known:
                raise ConfigError(f"unknown {kind} policy '{name}' (this zsmed applies {', '.join(known)}); "
                                  "the model was made by a newer zsmed: update zsmed")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.colour == "none":
            # Written as before the field existed: feature-cache ids are hashed over this dict
            # (EncoderSpec.cache_id), so every earlier cache stays valid, and model cards and
            # checkpoints of unbalanced models read and compare as they always did.
            del data["colour"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        return cls(
            size=int(data["size"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
            keep_aspect=bool(data.get("keep_aspect", True)),
            pad_value=float(data.get("pad_value", 0.0)),
            # checkpoints and bundles written before the field existed used the only policy there was
            window=str(data.get("window", DEFAULT_WINDOW)),
            colour=str(data.get("colour", "none")),
        )


def _resize_channel(channel: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def as_rgb01(image: np.ndarray) -> np.ndarray:
    """Validate a [0, 1] image and return it as float32 (H, W, 3)."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageFormatError(f"expected a grey or RGB image, got an array of shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ImageFormatError(f"image of {image.shape[1]}x{image.shape[0]} pixels is too small to use")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image).all():
        raise ImageFormatError("image holds NaN or infinite values")
    return image


def shades_of_gray(rgb: np.ndarray, power: float = SHADES_OF_GRAY_POWER) -> np.ndarray:
    """Shades-of-Gray colour constancy of a [0, 1] (H, W, 3) image: each channel divided by its
    Minkowski ``power``-norm mean, the three estimates scaled to length sqrt(3) so that a grey
    image (equal channels) comes back unchanged; clipped to [0, 1]. float32 out."""
    pixels = np.clip(rgb, 0.0, 1.0).astype(np.float32, copy=False)
    if power == 6.0:  # the policy's power: three multiplications instead of a float pow (2.3x faster)
        squared = pixels * pixels
        raised = squared * squared * squared
    else:
        raised = np.power(pixels, np.float32(power))
    light = np.power(raised.reshape(-1, 3).mean(axis=0, dtype=np.float64), 1.0 / power)
    norm = float(np.linalg.norm(light))
    if norm < 1e-8:  # a black image has no light to balance
        return pixels
    light = np.maximum(light / norm * np.sqrt(3.0), 1e-8).astype(np.float32)
    return np.minimum(pixels / light, np.float32(1.0))


def resize_for_model(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Resize a [0, 1] image to (size, size, 3), keeping the aspect ratio with padding if asked;
    the colour policy is applied to the resized image before it is padded."""
    rgb = as_rgb01(image)
    height, width = rgb.shape[:2]
    size = config.size
    if config.keep_aspect:
        scale = size / max(height, width)
        new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    else:
        new_h, new_w = size, size
    if (new_h, new_w) != (height, width):
        rgb = np.stack([_resize_channel(rgb[:, :, c], new_w, new_h) for c in range(3)], axis=2)
    if config.colour == "shades-of-gray":
        rgb = shades_of_gray(rgb)
    if (new_h, new_w) == (size, size):
        return rgb
    canvas = np.full((size, size, 3), config.pad_value, dtype=np.float32)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = rgb
    return canvas


def to_model_input(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """[0, 1] grey or RGB image -> normalised float32 (3, size, size)."""
    rgb = resize_for_model(image, config)
    # channel by channel into a planar array: the same float32 operations as
    # ((rgb - mean) / std).transpose(2, 0, 1), without the strided transpose copy (5x faster)
    out = np.empty((3, *rgb.shape[:2]), dtype=np.float32)
    for c in range(3):
        np.subtract(rgb[:, :, c], np.float32(config.mean[c]), out=out[c])
        np.divide(out[c], np.float32(config.std[c]), out=out[c])
    return out


def batch_model_inputs(images: list[np.ndarray], config: PreprocessConfig) -> np.ndarray:
    return np.stack([to_model_input(image, config) for image in images]) if images else np.zeros(
        (0, 3, config.size, config.size), dtype=np.float32
    )
