"""The offline runtime: load a verified bundle and predict on a CPU, with no torch and no network.

Imports here stay light (numpy, PIL, zsmed.preprocess/imageio): the inference backends are
imported only when a bundle is opened with them.
"""

from zsmed.runtime.bundle import Bundle, read_bundle
from zsmed.runtime.format import BUNDLE_SUFFIX, FORMAT_VERSION
from zsmed.runtime.predict import Prediction, Predictor, expand_inputs, load_predictor

__all__ = [
    "BUNDLE_SUFFIX",
    "FORMAT_VERSION",
    "Bundle",
    "Prediction",
    "Predictor",
    "expand_inputs",
    "load_predictor",
    "read_bundle",
]
