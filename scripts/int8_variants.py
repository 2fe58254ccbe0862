#!/usr/bin/env python
"""Diagnostic: how far NNCF post-training INT8 variants drift from a bundle's fp32 IR on this CPU.

    python scripts/int8_variants.py BUNDLE.zsmb SUPPORT_DIR HELD_OUT_DIR [--held-out-per-class 50]

Each variant is calibrated on SUPPORT_DIR (as `zsmed export --int8` does) and compared with the
fp32 IR on the calibration images and on held-out images (HELD_OUT_DIR's class subfolders, files
21-70 by name, i.e. not the first 20 that make the reference support set): top-1 agreement and
OpenVINO batch-1 latency. Where the CPU has BF16, the fp32 IR run in bfloat16 is measured too.
The last variant is NNCF's accuracy-controlled quantisation (layers reverted to fp32 until
agreement on one half of the held-out images drops <= 1 point), scored on the other half.
Used to decide what `zsmed export --int8` should do; nothing is shipped from here.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import nncf
import numpy as np
import openvino as ov

from zsmed.imageio import is_candidate_image, read_model_input
from zsmed.runtime.backends import read_ir
from zsmed.runtime.bundle import read_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("support")
    parser.add_argument("held_out")
    parser.add_argument("--held-out-per-class", type=int, default=50)
    args = parser.parse_args()
    bundle = read_bundle(args.bundle)
    core = ov.Core()

    def fp32_model() -> Any:
        return read_ir(core, bundle)

    def pixels(files: list[Path]) -> np.ndarray:
        return np.stack([read_model_input(p, bundle.preprocess) for p in files])

    def run(model: Any, x: np.ndarray, precision: str = "f32") -> tuple[np.ndarray, float]:
        compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 2, "INFERENCE_PRECISION_HINT": precision})
        request = compiled.create_infer_request()
        logits = np.concatenate([request.infer({0: x[i : i + 16]})[compiled.outputs[0]].copy()
                                 for i in range(0, len(x), 16)])
        start = time.perf_counter()
        for _ in range(30):
            request.infer({0: x[:1]})
        return logits.argmax(1), (time.perf_counter() - start) / 30 * 1000

    calibration = pixels([p for p in sorted(Path(args.support).rglob("*")) if p.is_file() and is_candidate_image(p)])
    held_out = pixels([p for c in bundle.class_names
                       for p in sorted((Path(args.held_out) / c).iterdir())[20 : 20 + args.held_out_per_class]])
    ref_cal, fp32_ms = run(fp32_model(), calibration)
    ref_held, _ = run(fp32_model(), held_out)
    report: dict[str, Any] = {"calibration_images": len(calibration), "held_out_images": len(held_out),
                              "fp32_ms_batch1": round(fp32_ms, 3), "variants": {}}
    dataset = nncf.Dataset([calibration[i : i + 1] for i in range(len(calibration))])
    variants: dict[str, dict[str, Any]] = {
        "mixed (export's setting)": {"preset": nncf.QuantizationPreset.MIXED},
        "mixed, full bias correction": {"preset": nncf.QuantizationPreset.MIXED, "fast_bias_correction": False},
        "performance": {"preset": nncf.QuantizationPreset.PERFORMANCE},
        "mixed, MatMul kept fp32": {"preset": nncf.QuantizationPreset.MIXED,
                                    "ignored_scope": nncf.IgnoredScope(types=["MatMul"])},
        "mixed, full bias correction, MatMul kept fp32": {
            "preset": nncf.QuantizationPreset.MIXED, "fast_bias_correction": False,
            "ignored_scope": nncf.IgnoredScope(types=["MatMul"])},
        "mixed, depthwise convs kept fp32": {"preset": nncf.QuantizationPreset.MIXED,
                                             "ignored_scope": nncf.IgnoredScope(types=["GroupConvolution"])},
    }
    for name, kwargs in variants.items():
        quantised = nncf.quantize(fp32_model(), dataset, subset_size=len(calibration), **kwargs)
        cal, ms = run(quantised, calibration)
        held, _ = run(quantised, held_out)
        report["variants"][name] = {"agreement_calibration": float((cal == ref_cal).mean()),
                                    "agreement_held_out": float((held == ref_held).mean()), "ms_batch1": round(ms, 3)}
        print(name, report["variants"][name], flush=True)

    if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        # not INT8, but the other reduced precision such a CPU offers: the fp32 IR run in bfloat16
        cal, ms = run(fp32_model(), calibration, "bf16")
        held, _ = run(fp32_model(), held_out, "bf16")
        report["variants"]["bf16 inference of the fp32 IR (no quantisation)"] = {
            "agreement_calibration": float((cal == ref_cal).mean()),
            "agreement_held_out": float((held == ref_held).mean()), "ms_batch1": round(ms, 3)}

    half_a, half_b = held_out[::2], held_out[1::2]
    ref_a, ref_b = ref_held[::2], ref_held[1::2]

    def agreement(compiled: Any, items: Any) -> float:
        return float(np.mean([compiled(x)[compiled.outputs[0]].argmax(1)[0] == label for x, label in items]))

    validation = nncf.Dataset([(half_a[i : i + 1], int(ref_a[i])) for i in range(len(half_a))], lambda item: item[0])
    controlled = nncf.quantize_with_accuracy_control(
        fp32_model(), dataset, validation, validation_fn=agreement, max_drop=0.01,
        drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calibration))
    held_b, ms = run(controlled, half_b)
    report["variants"]["accuracy control (max drop 1 point on half A)"] = {
        "agreement_held_out_half_b": float((held_b == ref_b).mean()), "ms_batch1": round(ms, 3)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
