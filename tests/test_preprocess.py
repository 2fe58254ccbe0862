"""The fast photo decode and model-input paths are bit-identical to the plain numpy formulas
(the features cached at build time and the runtime's inputs must not drift apart)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zsmed.imageio import read_photo
from zsmed.preprocess import PreprocessConfig, resize_for_model, to_model_input


def _reference_photo(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        image.load()
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        return np.asarray(image, dtype=np.float32) / 255.0


def _reference_input(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    rgb = resize_for_model(image, config)
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    return np.ascontiguousarray(((rgb - mean) / std).transpose(2, 0, 1), dtype=np.float32)


def _photos(shared_data: Path, tmp_path: Path) -> list[Path]:
    real = sorted((shared_data / "ham10000_fs" / "base" / "mel").glob("*.jpg"))[:3]
    rng = np.random.default_rng(0)
    grey = tmp_path / "grey.png"
    Image.fromarray(rng.integers(0, 256, (61, 97), dtype=np.uint8), mode="L").save(grey)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(rng.integers(0, 256, (40, 30, 4), dtype=np.uint8), mode="RGBA").save(rgba)
    return [*real, grey, rgba]


def test_photo_decode_is_bit_identical_to_divide_by_255(shared_data: Path, tmp_path: Path) -> None:
    for path in _photos(shared_data, tmp_path):
        fast, reference = read_photo(path), _reference_photo(path)
        assert fast.dtype == np.float32 and fast.shape == reference.shape
        np.testing.assert_array_equal(fast, reference)
    assert read_photo(_photos(shared_data, tmp_path)[-2]).max() <= 1.0


@pytest.mark.parametrize("config", [
    PreprocessConfig(),
    PreprocessConfig(size=96, keep_aspect=False, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    PreprocessConfig(size=80, pad_value=0.3),
])
def test_model_input_is_bit_identical_to_the_plain_formula(config: PreprocessConfig, shared_data: Path,
                                                             tmp_path: Path) -> None:
    for path in _photos(shared_data, tmp_path):
        image = read_photo(path)
        fast = to_model_input(image, config)
        assert fast.flags.c_contiguous and fast.shape == (3, config.size, config.size)
        np.testing.assert_array_equal(fast, _reference_input(image, config))
