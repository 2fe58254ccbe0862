"""``zsmed bench runtime``: torch eager vs onnxruntime vs OpenVINO fp32/INT8 on one bundle, in one run.

Figures: network latency (batch 1) and throughput (batch 32) per backend; the whole path (decode,
preprocess, inference, OOD gate) per image; cold start of a fresh ``zsmed predict`` process; peak
RSS of ``zsmed predict`` over a folder of ``rss_images`` files; optionally the OOD gate's AUROC.
The machine is shared, so compare ratios within one run.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.imageio import candidate_images, read_model_input
from zsmed.runtime.backends import available_cpus, create_backend
from zsmed.runtime.bundle import Bundle, read_bundle
from zsmed.runtime.predict import Predictor

COMPUTE_FLOOR_MS = 5.3  # the 2-core machine's FP32 floor for Lite0 (0.77 GFLOP), from the issue
NETWORK_GFLOP = 0.77  # EfficientNet-Lite0 + head at 224 px, per image (the figure)


# Between two libraries' timings: torch's OpenMP workers and onnxruntime's / OpenVINO's pools keep
# spinning for a while after their last call and would take a core from the next runner (in a
# one-off check, onnxruntime's whole path was slower right after a torch pass than alone).
SETTLE_S = 0.3


def _settle() -> None:
    time.sleep(SETTLE_S)


def _median_ms(fn: Callable[[], Any], repeats: int, per: int) -> dict[str, float]:
    """Wall and process-CPU milliseconds per image. CPU time is the figure that survives a shared
    machine: other users' load stretches wall time but not (much) the CPU work of the network."""
    fn()
    fn()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - start) * 1000.0 / per)
        cpu.append((time.process_time() - start_cpu) * 1000.0 / per)
    return {"median_ms_per_image": round(float(np.median(times)), 3), "min_ms_per_image": round(float(min(times)), 3),
            "cpu_ms_per_image": round(float(np.median(cpu)), 3)}


def _images(folder: Path, limit: int) -> list[Path]:
    files = candidate_images(folder)
    if not files:
        raise FileNotFoundError(f"no images under {folder}")
    idx = np.linspace(0, len(files) - 1, min(limit, len(files))).round().astype(int)
    return [files[i] for i in sorted(set(idx.tolist()))]


def _torch_model(bundle: Bundle, model_path: Path | None) -> tuple[Any, str]:
    from zsmed.classifier import Classifier, ClassifierCard, build_backbone, head_class, load_classifier
    from zsmed.encoders.base import EncoderSpec
    from zsmed.encoders.threads import configure_torch_threads

    configure_torch_threads()
    if model_path is not None:
        return load_classifier(model_path), "the exported .zsm model"
    card = bundle.card
    spec = EncoderSpec.from_dict(card["encoder"])
    cls = head_class(card["head_type"], card.get("head_module"))
    head = cls.from_config(card["head_config"])
    classifier_card = ClassifierCard(
        method=card["method"], class_names=tuple(card["class_names"]), encoder=spec,
        preprocess=bundle.preprocess, head_type=card["head_type"], head_module=card.get("head_module", ""),
        head_config=card["head_config"],
    )
    note = "same architecture rebuilt from the card (head weights not in the bundle as tensors): timing only"
    return Classifier(build_backbone(spec, cls.input_kind), head, classifier_card), note


def _int8_for_timing(bundle: Bundle, pixels: np.ndarray) -> tuple[Any, str]:
    """The bundle's INT8 model, or (when it was refused/absent) one quantised here for timing only."""
    if bundle.has_int8:
        return create_backend(bundle, "openvino-int8"), "the bundle's INT8 IR"
    import openvino as ov

    from zsmed.bundle.export import quantise_int8
    from zsmed.runtime.backends import read_ir

    core = ov.Core()
    quantised = quantise_int8(read_ir(core, bundle), pixels)

    class _Backend:
        name = "openvino-int8"

        def __init__(self) -> None:
            config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": available_cpus(),
                      "INFERENCE_PRECISION_HINT": "f32"}
            self.request = core.compile_model(quantised, "CPU", config).create_infer_request()

        def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            result = self.request.infer({"pixels": batch})
            return np.asarray(result[0]), np.asarray(result[1])

    reason = bundle.card.get("int8", {}).get("reason") or "not requested at export"
    return _Backend(), f"quantised for this benchmark only (not in the bundle: {reason})"


# A small launcher process runs the command and reports its child's peak RSS. Measuring from this
# (large, torch-laden) process directly would be wrong: a forked child's peak RSS counts the
# parent's pages it shares until exec.
_LAUNCHER = """
import json, os, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
err = proc.stderr.decode(errors="replace")[-2000:]
print(json.dumps({"wall": wall, "code": proc.returncode, "rss_kb": rss, "stderr": err}))
"""


_COLD_BREAKDOWN = """
import json, sys, time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
from zsmed.runtime.backends import create_backend
from zsmed.runtime.bundle import read_bundle
from zsmed.runtime.predict import Predictor
t2 = time.perf_counter()
bundle = read_bundle(sys.argv[1])
t3 = time.perf_counter()
backend = create_backend(bundle, "onnxruntime")
t4 = time.perf_counter()
Predictor(bundle, backend).predict_files([sys.argv[2]])
t5 = time.perf_counter()
print(json.dumps({"import_numpy": round(t1 - t0, 3), "import_runtime_and_onnxruntime": round(t2 - t1, 3),
                  "read_and_verify_bundle": round(t3 - t2, 3), "create_session": round(t4 - t3, 3),
                  "first_prediction": round(t5 - t4, 3), "total_in_process": round(t5 - t0, 3)}))
"""


def _wait_rss(command: Sequence[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Run a command in a fresh process; (wall seconds, exit code, peak RSS in MB) of the command."""
    import json

    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], capture_output=True, text=True, env=env,
                         check=True)
    record = json.loads(out.stdout)
    if record["code"] != 0:
        sys.stderr.write(record["stderr"])
    divisor = 1024.0 if sys.platform != "darwin" else 2.0**20
    return float(record["wall"]), int(record["code"]), float(record["rss_kb"]) / divisor


def measured_floor_ms(gflop_per_image: float = NETWORK_GFLOP, size: int = 2048,
                      repeats: int = 5) -> tuple[float, float]:
    """This machine's fp32 floor for the network: its GFLOP over the best large-SGEMM rate numpy's
    BLAS reaches on all cores (the highest fp32 rate a program gets here). Returns (GFLOP/s, ms)."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    a @ a  # warm the BLAS threads
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    gflops = 2 * size**3 / best / 1e9
    return gflops, gflop_per_image / gflops * 1000


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _predict_all(predictor: Predictor, paths: Sequence[Path], batch: int) -> None:
    predictor.predict_files(list(paths), batch, frames="first")


def run_runtime_bench(
    bundle_path: str | Path,
    images_dir: str | Path,
    *,
    model_path: str | Path | None = None,
    repeats: int = 30,
    rss_images: int = 1000,
    ood_out_dirs: Sequence[str | Path] = (),
) -> dict[str, Any]:
    import torch

    bundle_path, images_dir = Path(bundle_path), Path(images_dir)
    bundle = read_bundle(bundle_path)
    files = _images(images_dir, 64)
    pixels = np.stack([read_model_input(p, bundle.preprocess) for p in files])
    b1, b32 = pixels[:1], np.concatenate([pixels] * (32 // len(pixels) + 1))[:32]
    result: dict[str, Any] = {
        "bundle": bundle_path.name,
        "bundle_bytes": bundle_path.stat().st_size,
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": available_cpus(),
                    "python": platform.python_version()},
        "images": {"folder": str(images_dir), "used": len(files)},
        "pause_between_runners_s": SETTLE_S,
        "network": {},
    }
    try:
        from zsmed.runtime.backends import _cpu_model

        result["machine"]["cpu"] = _cpu_model()
        result["machine"]["load_average_at_start"] = list(os.getloadavg())
    except OSError:
        pass

    gflops, floor_ms = measured_floor_ms()
    result["machine"].update(sgemm_gflops=round(gflops, 1), fp32_floor_ms=round(floor_ms, 3))
    classifier, torch_note = _torch_model(bundle, Path(model_path) if model_path else None)

    def torch_run(batch: np.ndarray) -> None:
        with torch.inference_mode():
            classifier(torch.from_numpy(batch))

    backends: dict[str, Any] = {}
    for name in ("onnxruntime", "openvino"):
        backends[name] = create_backend(bundle, name)
    backends["openvino-int8"], int8_note = _int8_for_timing(bundle, pixels[: min(len(pixels), 64)])
    try:
        backends["openvino-throughput-hint"] = create_backend(bundle, "openvino", hint="THROUGHPUT")
    except Exception as exc:  # a hint the plugin rejects is a figure we cannot give, not a failure
        result["network"]["openvino-throughput-hint"] = {"error": str(exc)}

    runners: dict[str, Callable[[np.ndarray], Any]] = {"torch-eager": torch_run}
    runners.update({name: backend.run for name, backend in backends.items()})
    # Interleave the backends round by round so load spikes from other users hit all alike.
    samples: dict[str, dict[str, list[float]]] = {name: {"b1": [], "b32": [], "cpu_b1": [], "cpu_b32": []}
                                                  for name in runners}
    for run in runners.values():
        run(b1)
        run(b32)
    rounds = 3
    for _ in range(rounds):
        for name, run in runners.items():
            plan = (("b1", b1, max(3, repeats // rounds)), ("b32", b32, max(2, repeats // 10 // rounds)))
            _settle()
            for key, inputs, count in plan:
                timing = _median_ms(partial(run, inputs), count, len(inputs))
                samples[name][key].append(timing["median_ms_per_image"])
                samples[name][f"cpu_{key}"].append(timing["cpu_ms_per_image"])
    for name in runners:
        result["network"][name] = {
            "batch1_ms_per_image": round(min(samples[name]["b1"]), 3),
            "batch32_ms_per_image": round(min(samples[name]["b32"]), 3),
            "batch1_cpu_ms_per_image": round(min(samples[name]["cpu_b1"]), 3),
            "batch32_cpu_ms_per_image": round(min(samples[name]["cpu_b32"]), 3),
            "batch1_rounds": samples[name]["b1"],
            "batch32_rounds": samples[name]["b32"],
        }
    result["network"]["torch-eager"]["note"] = torch_note
    result["network"]["openvino-int8"]["note"] = int8_note

    # Whole path: decode + preprocess + inference + OOD gate, as `zsmed predict` does it; torch
    # eager timed over the same path (decode + preprocess + forward + softmax), so the whole-path
    # speed-up compares like with like. Interleaved pass by pass, best of three.
    whole: dict[str, Any] = {}
    predictors = {name: Predictor(bundle, backends[name]) for name in ("onnxruntime", "openvino")}

    def torch_whole(paths: Sequence[Path], batch: int) -> None:
        for start in range(0, len(paths), batch):
            inputs = np.stack([read_model_input(p, bundle.preprocess) for p in paths[start:start + batch]])
            with torch.inference_mode():
                torch.softmax(classifier(torch.from_numpy(inputs)), dim=1)

    whole_runners: dict[str, Callable[[Sequence[Path], int], Any]] = {
        "torch-eager": torch_whole,
        **{name: partial(_predict_all, predictor) for name, predictor in predictors.items()},
    }
    for batch in (1, 8, 32):
        subset = files[:32] if batch > 1 else files[:16]
        passes: dict[str, list[float]] = {name: [] for name in whole_runners}
        for run_whole in whole_runners.values():
            run_whole(subset, batch)
        for _ in range(3):  # best of three passes: the machine is shared
            for name, run_whole in whole_runners.items():
                _settle()
                run_whole(subset[:batch], batch)  # wake its threads after the pause, as _median_ms does
                start = time.perf_counter()
                run_whole(subset, batch)
                passes[name].append((time.perf_counter() - start) * 1000 / len(subset))
        for name in whole_runners:
            whole[f"{name}_batch{batch}_ms_per_image"] = round(min(passes[name]), 3)
    start = time.perf_counter()
    for path in files[:32]:
        read_model_input(path, bundle.preprocess)
    whole["decode_and_preprocess_ms_per_image"] = round((time.perf_counter() - start) * 1000 / min(32, len(files)), 3)
    result["whole_path"] = whole

    # Fresh processes: cold start and peak memory.
    env = dict(os.environ)
    work = Path(tempfile.mkdtemp(prefix="zsmed-bench-"))
    try:
        env.setdefault("ZSMED_DATA_DIR", str(work / "data"))
        zsmed = [sys.executable, "-m", "zsmed", "predict", str(bundle_path)]
        cold: dict[str, Any] = {}
        for backend in ("onnxruntime", "openvino", "auto"):
            _wait_rss([*zsmed, str(files[0]), "--backend", backend], env)  # warm the OS file cache (and auto's choice)
            walls = [_wait_rss([*zsmed, str(files[0]), "--backend", backend], env)[0] for _ in range(3)]
            cold[f"zsmed_predict_{backend}_s"] = round(float(np.median(walls)), 3)
        baseline = [_wait_rss([sys.executable, "-c", "pass"], env)[0] for _ in range(3)]
        breakdown = subprocess.run([sys.executable, "-c", _COLD_BREAKDOWN, str(bundle_path), str(files[0])],
                                   capture_output=True, text=True, env=env, check=False)
        if breakdown.returncode == 0:
            import json

            cold["breakdown_onnxruntime_s"] = json.loads(breakdown.stdout)
        cold["python_interpreter_alone_s"] = round(float(np.median(baseline)), 3)
        if model_path is not None:
            script = ("import sys; from zsmed.classifier import load_classifier; "
                      "c = load_classifier(sys.argv[1]); c.predict_files([sys.argv[2]])")
            command = [sys.executable, "-c", script, str(model_path), str(files[0])]
            walls = [_wait_rss(command, env)[0] for _ in range(2)]
            cold["torch_load_and_predict_s"] = round(float(np.median(walls)), 3)
        result["cold_start"] = cold

        folder = work / "many"
        folder.mkdir()
        all_files = _images(images_dir, 10**9)
        for i in range(rss_images):
            source = all_files[i % len(all_files)]
            os.symlink(source.resolve(), folder / f"{i:05d}{source.suffix}")
        wall, code, rss = _wait_rss([*zsmed, str(folder), "--json", "--backend", "onnxruntime"], env)
        result["predict_folder"] = {"images": rss_images, "exit_code": code, "wall_s": round(wall, 2),
                                    "ms_per_image": round(wall * 1000 / rss_images, 2), "peak_rss_mb": round(rss, 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if ood_out_dirs:
        result["ood"] = evaluate_ood(bundle, images_dir, ood_out_dirs)

    net = result["network"]
    torch_b1, torch_b32 = net["torch-eager"]["batch1_ms_per_image"], net["torch-eager"]["batch32_ms_per_image"]
    best_b1 = min(net[k]["batch1_ms_per_image"] for k in ("onnxruntime", "openvino"))
    best_b32 = min(net[k]["batch32_ms_per_image"] for k in ("onnxruntime", "openvino"))
    result["summary"] = {
        "torch_eager_ms": {"batch1": torch_b1, "batch32": torch_b32},
        "onnxruntime_ms": {"batch1": net["onnxruntime"]["batch1_ms_per_image"],
                           "batch32": net["onnxruntime"]["batch32_ms_per_image"]},
        "openvino_fp32_ms": {"batch1": net["openvino"]["batch1_ms_per_image"],
                             "batch32": net["openvino"]["batch32_ms_per_image"]},
        "openvino_int8_ms": {"batch1": net["openvino-int8"]["batch1_ms_per_image"],
                             "batch32": net["openvino-int8"]["batch32_ms_per_image"]},
        "speedup_vs_torch_network": {"batch1": round(torch_b1 / best_b1, 2), "batch32": round(torch_b32 / best_b32, 2)},
        # like with like: torch eager's whole path (decode + preprocess + forward) over ours
        "speedup_vs_torch_whole_path": {
            f"batch{b}": round(whole[f"torch-eager_batch{b}_ms_per_image"]
                               / min(whole[f"{k}_batch{b}_ms_per_image"] for k in ("onnxruntime", "openvino")), 2)
            for b in (1, 32)
        },
        # the strictest reading: torch's network alone over our whole path
        "speedup_whole_path_vs_torch_network": {
            "batch1": round(torch_b1 / whole["onnxruntime_batch1_ms_per_image"], 2),
            "batch32": round(torch_b32 / whole["onnxruntime_batch32_ms_per_image"], 2),
        },
        "network_vs_compute_floor": round(best_b1 / COMPUTE_FLOOR_MS, 2),
        "network_vs_measured_floor": round(best_b1 / result["machine"]["fp32_floor_ms"], 2),
        "cpu_ms_per_image_batch1": {k: net[k]["batch1_cpu_ms_per_image"]
                                    for k in ("torch-eager", "onnxruntime", "openvino", "openvino-int8")},
        "cold_start_s": result["cold_start"]["zsmed_predict_auto_s"],
        "peak_rss_mb_1000_images": result["predict_folder"]["peak_rss_mb"],
        "bundle_mb": round(result["bundle_bytes"] / 1e6, 2),
    }
    if "ood" in result:
        result["summary"]["ood_auroc"] = result["ood"]["auroc_all"]
    return result


def evaluate_ood(
    bundle: Bundle, in_dir: str | Path, out_dirs: Sequence[str | Path], limit: int = 300
) -> dict[str, Any]:
    """AUROC of the OOD score: in-domain images vs each other-modality folder and blank/noise images."""
    from zsmed.bundle.reference import synthetic_inputs
    from zsmed.runtime.ood import auroc

    predictor = Predictor(bundle, create_backend(bundle, "onnxruntime"))

    def scores_of(paths: list[Path]) -> np.ndarray:
        preds = predictor.predict_files(paths)
        return np.array([p.ood_score for p in preds if p.ood_score is not None])

    in_scores = scores_of(_images(Path(in_dir), limit))
    report: dict[str, Any] = {"in_domain": {"folder": str(in_dir), "n": len(in_scores),
                                            "abstain_rate": round(float(np.mean(in_scores > 1)), 4)}}
    pooled = []
    for folder in out_dirs:
        out = scores_of(_images(Path(folder), limit))
        pooled.append(out)
        report[str(folder)] = {"n": len(out), "auroc": round(auroc(in_scores, out), 4),
                               "abstain_rate": round(float(np.mean(out > 1)), 4)}
    rng = np.random.default_rng(0)
    size = bundle.preprocess.size
    synthetic = [image for name, image in synthetic_inputs(size).items() if not name.startswith("blob")]
    synthetic += [rng.random((size, size, 3)).astype(np.float32) for _ in range(10)]
    synthetic += [np.clip(rng.normal(0.5, 0.2, (size, size)), 0, 1).astype(np.float32) for _ in range(10)]
    synthetic += [np.full((size, size, 3), v, dtype=np.float32) for v in (0.1, 0.3, 0.7, 0.9)]
    blank = np.array([p.ood_score for p in predictor.predict_images(synthetic)])
    pooled.append(blank)
    report["blank_and_noise"] = {"n": len(blank), "auroc": round(auroc(in_scores, blank), 4),
                                 "abstain_rate": round(float(np.mean(blank > 1)), 4)}
    report["auroc_all"] = round(auroc(in_scores, np.concatenate(pooled)), 4)
    return report
