"""``zsmed bench runtime`` runs end to end (slow: it quantises, spawns processes, times backends)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_bench_runtime_smoke(shared_data: Path, tmp_path: Path, isolated_dirs: Path) -> None:
    from tests.runtime.conftest import reference_bundles
    from zsmed.cli.main import main

    bundles = reference_bundles()
    if not bundles:
        pytest.skip("no reference bundle")
    out = tmp_path / "bench.json"
    code = main(["bench", "runtime", str(bundles[0]), str(shared_data / "ham10000_fs" / "base" / "nv"),
                 "--json", str(out), "--repeats", "3", "--rss-images", "20",
                 "--ood-out", str(shared_data / "cxr_kermany" / "NORMAL")])
    assert code == 0
    result = json.loads(out.read_text())
    for name in ("torch-eager", "onnxruntime", "openvino", "openvino-int8"):
        assert result["network"][name]["batch1_ms_per_image"] > 0
    whole = result["whole_path"]
    for name in ("torch-eager", "onnxruntime", "openvino"):
        assert whole[f"{name}_batch1_ms_per_image"] > whole["decode_and_preprocess_ms_per_image"] > 0
    assert result["summary"]["speedup_vs_torch_whole_path"]["batch1"] > 0
    assert result["predict_folder"]["exit_code"] == 0 and result["predict_folder"]["peak_rss_mb"] > 50
    assert result["summary"]["ood_auroc"] >= 0.95
