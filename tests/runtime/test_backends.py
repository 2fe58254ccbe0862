"""Backend choice and the per-machine cache of the onnxruntime-optimised graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zsmed.runtime.backends import OnnxRuntimeBackend, open_backend, remembered_choice
from zsmed.runtime.bundle import read_bundle
from zsmed.runtime.predict import Predictor


def test_optimised_graph_cache_is_used_and_repaired(reference_bundle: Path, isolated_dirs: Path) -> None:
    bundle = read_bundle(reference_bundle)
    pixels = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    fresh = OnnxRuntimeBackend(bundle, use_cache=False).run(pixels)
    OnnxRuntimeBackend(bundle)  # writes the cache
    [cached] = list((isolated_dirs / "cache" / "ort-optimized").glob("*.ort"))
    np.testing.assert_allclose(OnnxRuntimeBackend(bundle).run(pixels)[0], fresh[0], atol=1e-5)
    cached.write_bytes(cached.read_bytes()[:1000])  # a damaged cache entry is rebuilt, not trusted
    np.testing.assert_allclose(OnnxRuntimeBackend(bundle).run(pixels)[0], fresh[0], atol=1e-5)
    assert cached.stat().st_size > 1_000_000


def test_auto_measures_once_and_remembers(reference_bundle: Path, isolated_dirs: Path) -> None:
    bundle = read_bundle(reference_bundle)
    backend = open_backend(bundle, "auto", threads=2)
    choice = remembered_choice(bundle, 2)
    assert choice == backend.name
    record = json.loads((isolated_dirs / "data" / "runtime_backends.json").read_text())
    [entry] = record.values()
    assert set(entry["ms_per_image"]) == set(entry["load_s"]) == {"onnxruntime", "openvino"}
    assert open_backend(bundle, "auto", threads=2).name == choice
    # one image: start-up dominates; many images: the per-image time does
    one = min(entry["load_s"], key=lambda k: entry["load_s"][k] + entry["ms_per_image"][k] / 1000)
    many = min(entry["ms_per_image"], key=lambda k: entry["ms_per_image"][k])
    assert remembered_choice(bundle, 2, n_images=1) == one
    assert remembered_choice(bundle, 2, n_images=10**7) == many
    probabilities, _ = Predictor(bundle, backend).infer(np.zeros((1, 3, 224, 224), dtype=np.float32))
    assert probabilities.shape == (1, 4)


def test_int8_backend_absent_is_a_clear_error(reference_bundle: Path) -> None:
    from zsmed.errors import BackendUnavailableError

    bundle = read_bundle(reference_bundle)
    if bundle.has_int8:
        pytest.skip("this reference bundle carries INT8")
    with pytest.raises(BackendUnavailableError, match="no INT8 model"):
        open_backend(bundle, "openvino-int8")
