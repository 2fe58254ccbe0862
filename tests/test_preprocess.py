"""The fast photo decode and model-input paths are bit-identical to the plain numpy formulas
(the features cached at build time and the runtime's inputs must not drift apart)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zsmed import imageio
from zsmed.errors import ConfigError, ImageFormatError
from zsmed.imageio import read_image, read_model_input, read_photo
from zsmed.preprocess import PreprocessConfig, resize_for_model, shades_of_gray, to_model_input


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


@pytest.mark.parametrize("config", [
    PreprocessConfig(),
    PreprocessConfig(size=61, keep_aspect=False, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
])
def test_read_model_input_is_bit_identical_and_takes_the_table_path_at_model_size(
        config: PreprocessConfig, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.data import get_testdata_file

    rng = np.random.default_rng(1)
    grey_at_size = tmp_path / "grey_at_size.png"
    Image.fromarray(rng.integers(0, 256, (config.size, config.size), dtype=np.uint8), mode="L").save(grey_at_size)
    rgb_at_size = tmp_path / "rgb_at_size.png"
    Image.fromarray(rng.integers(0, 256, (config.size, config.size, 3), dtype=np.uint8), mode="RGB").save(rgb_at_size)
    dicom = Path(get_testdata_file("CT_small.dcm"))
    files = [*_photos(shared_data, tmp_path), grey_at_size, rgb_at_size, dicom]
    fast_calls: list[Path] = []
    table_path = imageio._photo_at_model_size

    def counting(path: Path, cfg: PreprocessConfig) -> np.ndarray | None:
        out = table_path(path, cfg)
        if out is not None:
            fast_calls.append(path)
        return out

    monkeypatch.setattr(imageio, "_photo_at_model_size", counting)
    for path in files:
        got = read_model_input(path, config)
        assert got.dtype == np.float32 and got.shape == (3, config.size, config.size)
        np.testing.assert_array_equal(got, _reference_input(read_image(path), config))
    # 224 px HAM10000 JPEGs and the two synthetic photos at model size take the table path;
    # other sizes, RGBA and DICOM go the general way
    expected = {grey_at_size, rgb_at_size} | ({*files[:3]} if config.size == 224 else set())
    assert set(fast_calls) == expected


def test_read_model_input_names_the_file_it_cannot_decode(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageFormatError, match=r"broken\.jpg"):
        read_model_input(broken, PreprocessConfig())


def _oriented_jpeg(path: Path, pixels: np.ndarray, orientation: int) -> Path:
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[imageio.EXIF_ORIENTATION] = orientation
    image.save(path, exif=exif, quality=100, subsampling=0)
    return path


def test_photos_are_read_as_shown_by_their_exif_orientation(tmp_path: Path) -> None:
    # a bright block in the top-left corner of a landscape image, stored with "rotate 90° clockwise
    # to show" (orientation 6), as phones store portrait photos
    stored = np.zeros((100, 200, 3), np.uint8)
    stored[:20, :40] = 255
    photo = read_photo(_oriented_jpeg(tmp_path / "portrait.jpg", stored, 6))
    assert photo.shape == (200, 100, 3)  # portrait, as shown
    shown = np.rot90(stored, k=-1)  # clockwise
    assert np.abs(photo - shown / 255.0).max() < 0.1
    assert photo[:40, -20:].mean() > 0.9 and photo[:40, :20].mean() < 0.1  # the block is now top-right


def test_the_table_path_does_not_skip_the_orientation(tmp_path: Path) -> None:
    config = PreprocessConfig(size=224)
    stored = np.zeros((224, 224, 3), np.uint8)
    stored[:30, :60] = 200
    upside_down = _oriented_jpeg(tmp_path / "flipped.jpg", stored, 3)  # "rotate 180° to show"
    upright = _oriented_jpeg(tmp_path / "upright.jpg", stored, 1)
    expected = to_model_input(read_photo(upside_down), config)
    np.testing.assert_array_equal(read_model_input(upside_down, config), expected)
    assert not np.array_equal(read_model_input(upside_down, config), read_model_input(upright, config))


def test_shades_of_gray_balances_a_colour_cast_and_leaves_grey_alone(shared_data: Path) -> None:
    photo = read_photo(sorted((shared_data / "ham10000_fs" / "base" / "mel").glob("*.jpg"))[0])
    balanced = shades_of_gray(photo)
    assert balanced.dtype == np.float32 and balanced.shape == photo.shape
    # the documented formula, in float64 (SPEC.md): what any reader of a bundle must reproduce
    light64 = np.power(np.power(photo.astype(np.float64), 6).mean(axis=(0, 1)), 1 / 6)
    formula = np.clip(photo / (light64 / np.linalg.norm(light64) * np.sqrt(3.0)), 0.0, 1.0)
    np.testing.assert_allclose(balanced, formula, atol=1e-6)
    assert balanced.min() >= 0.0 and balanced.max() <= 1.0

    def light(image: np.ndarray) -> np.ndarray:  # the Shades-of-Gray estimate of the light, p = 6
        return np.power(np.power(image.astype(np.float64), 6).mean(axis=(0, 1)), 1 / 6)

    def tint(image: np.ndarray) -> np.ndarray:  # the light's colour, whatever its strength
        return light(image) / light(image).sum()

    # the same lesion under a bluish light (red dimmed, blue kept) comes back with the original's
    # balanced colours (a dimmer light stays dimmer: the balance is of colour, not brightness)
    cast = photo * np.array([0.6, 0.8, 1.0], dtype=np.float32)
    assert np.abs(tint(shades_of_gray(cast)) / tint(balanced) - 1.0).max() < 0.01
    assert np.abs(tint(cast) / tint(photo) - 1.0).max() > 0.15  # the cast was real
    np.testing.assert_allclose(tint(balanced), 1 / 3, atol=0.01)  # balanced to a grey light
    # a grey image (equal channels) and a black one are unchanged
    grey = np.repeat(photo.mean(axis=2, keepdims=True), 3, axis=2)
    np.testing.assert_allclose(shades_of_gray(grey), grey, atol=1e-6)
    np.testing.assert_array_equal(shades_of_gray(np.zeros((8, 8, 3), np.float32)), np.zeros((8, 8, 3), np.float32))


def test_the_colour_policy_is_applied_before_padding_and_travels_with_the_config(shared_data: Path,
                                                                               tmp_path: Path) -> None:
    config = PreprocessConfig(colour="shades-of-gray", pad_value=0.3)
    padded = 0
    for path in _photos(shared_data, tmp_path):
        image = read_photo(path)
        plain = resize_for_model(image, PreprocessConfig(pad_value=0.3))
        got = resize_for_model(image, config)
        differs = np.abs(plain - 0.3).max(axis=2) > 0  # the image; the rest is padding
        rows, cols = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
        inside = np.s_[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        np.testing.assert_array_equal(got[inside], shades_of_gray(plain[inside]))
        padding = np.ones(plain.shape[:2], dtype=bool)
        padding[inside] = False
        np.testing.assert_array_equal(got[padding], plain[padding])
        padded += int(padding.any())
        # the file path (no table shortcut for a balanced model) gives the same input
        np.testing.assert_array_equal(read_model_input(path, config), to_model_input(image, config))
    assert padded == 2  # the two synthetic photos are not square; the HAM10000 JPEGs are
    # round trip; a config without a colour policy is written as before the field existed
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    assert "colour" not in PreprocessConfig().to_dict()
    assert PreprocessConfig.from_dict(PreprocessConfig().to_dict()).colour == "none"
    with pytest.raises(ConfigError, match=r"unknown colour policy 'retinex'.*update zsmed"):
        PreprocessConfig(colour="retinex")
