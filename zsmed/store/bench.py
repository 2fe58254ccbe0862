"""``zsmed bench log``: the case log's speed and robustness figures (docs/BENCHMARKS.md).

- one writer: batched ``record_predictions`` beside a plain one-transaction-per-row loop, on real
  files (first-time images, so each DICOM header is read / each photo hashed; and images already
  known, the database alone);
- four processes each logging 1,000 predictions at once (rows counted, verify);
- a writer killed with SIGKILL mid-batch (integrity check, verify, committed rows all there);
- ``zsmed log verify`` and ``zsmed log stats`` on ``rows`` predictions, each in a fresh process:
  wall time and peak RSS;
- ``zsmed log similar`` where a model has as many reviewed cases with embeddings as a search reads
  (``SIMILAR_SEARCH_LIMIT``), in a fresh process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zsmed.errors import CaseLogError

REFERENCE_BUNDLES = ("ham4_protonet_lite0_v1.zsmb", "sgps_ham4_lite0_v1.zsmb")


def _reference_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "export" / "reference"


def _bundles() -> list[Any]:
    from zsmed.runtime.bundle import read_bundle

    found = [_reference_dir() / name for name in REFERENCE_BUNDLES if (_reference_dir() / name).is_file()]
    if not found:
        raise CaseLogError("the reference bundles (export/reference/*.zsmb) are needed", path=_reference_dir())
    return [read_bundle(path) for path in found]


def _image_files(images: Path | None) -> list[Path]:
    if images is not None:
        from zsmed.imageio import candidate_images

        files = list(candidate_images(images))
    else:  # pydicom's own test files (installed with it)
        import pydicom.data

        root = Path(pydicom.data.__file__).parent / "test_files"
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith((".py", ".pyc", ".json")))
    if not files:
        raise CaseLogError("no images found for the bench", path=images)
    return files


def _results(sources: Sequence[Path | str], class_names: Sequence[str], seed: int) -> list[Any]:
    """Predictions shaped as the runtime gives them (a fifth abstain, one in fifty an error)."""
    from zsmed.runtime.predict import Prediction

    rng = random.Random(seed)
    out = []
    for i, source in enumerate(sources):
        if i % 50 == 49:
            out.append(Prediction(source=str(source), error="cannot decode the pixel data"))
            continue
        weights = [rng.random() ** 3 for _ in class_names]
        total = sum(weights)
        probs = {c: round(w / total, 6) for c, w in zip(class_names, weights, strict=True)}
        abstain = i % 5 == 4
        out.append(Prediction(source=str(source), label=None if abstain else max(probs, key=probs.__getitem__),
                              probabilities=probs, abstain=abstain, ood_score=round(rng.uniform(0.2, 2.5), 4)))
    return out


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def bench_single_writer(workdir: Path, files: list[Path], bundle: Any, per_row: int = 1000,
                        batched: int = 20000, batch: int = 1000) -> dict[str, Any]:
    from zsmed.site import SiteConfig
    from zsmed.store import open_case_log

    site = SiteConfig()
    out: dict[str, Any] = {"batch_size": batch}
    # images seen for the first time: every distinct file read once (DICOM header / photo SHA-256)
    first = files[: min(len(files), batched)]
    with open_case_log(workdir / "first.sqlite", site=site) as log:
        results = _results(first, bundle.class_names, 1)
        start = time.perf_counter()
        for i in range(0, len(results), batch):
            log.record_predictions(bundle, results[i : i + batch])
        out["new_images_batched"] = {"rows": len(results), "per_s": _rate(len(results), time.perf_counter() - start)}
    # images already in the log: the database work alone
    pool = files[:200]
    with open_case_log(workdir / "single.sqlite", site=site) as log:
        log.record_predictions(bundle, _results(pool, bundle.class_names, 0))
        results = _results([pool[i % len(pool)] for i in range(batched)], bundle.class_names, 2)
        start = time.perf_counter()
        for i in range(0, len(results), batch):
            log.record_predictions(bundle, results[i : i + batch])
        out["known_images_batched"] = {"rows": len(results), "per_s": _rate(len(results), time.perf_counter() - start)}
        results = results[:per_row]
        start = time.perf_counter()
        for result in results:
            log.record_predictions(bundle, [result])
        out["known_images_one_transaction_per_row"] = {"rows": len(results),
                                                       "per_s": _rate(len(results), time.perf_counter() - start)}
        out["verify_ok"] = log.verify().ok
    return out


def _writer(path: str, sources: list[str], n: int, batch: int, seed: int, queue: Any) -> None:
    from zsmed.site import SiteConfig
    from zsmed.store import open_case_log

    bundle = _bundles()[0]
    results = _results([sources[i % len(sources)] for i in range(n)], bundle.class_names, seed)
    with open_case_log(path, site=SiteConfig(), timeout=120) as log:
        for i in range(0, n, batch):
            ids = log.record_predictions(bundle, results[i : i + batch], workstation=f"writer-{seed}")
            if queue is not None:
                queue.put(ids[-1])


def bench_concurrent(workdir: Path, files: list[Path], processes: int = 4, each: int = 1000,
                     batch: int = 50) -> dict[str, Any]:
    from zsmed.store import open_case_log

    path = workdir / "concurrent.sqlite"
    open_case_log(path).close()
    ctx = multiprocessing.get_context("spawn")
    sources = [str(p) for p in files[:100]]
    workers = [ctx.Process(target=_writer, args=(str(path), sources, each, batch, seed, None))
               for seed in range(processes)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - start
    with open_case_log(path, readonly=True) as log:
        rows = log.count()
        result = log.verify()
    return {"processes": processes, "each": each, "batch_size": batch, "rows": rows, "expected": processes * each,
            "exit_codes": [w.exitcode for w in workers], "seconds_incl_start": round(seconds, 2),
            "verify_ok": result.ok, "verify_message": result.message}


def bench_kill(workdir: Path, files: list[Path], batch: int = 30000) -> dict[str, Any]:
    """Batches big enough to spill pages into the WAL before they commit; the writer is killed
    once its second batch has written some (the WAL changed after the first commit)."""
    from zsmed.store import open_case_log

    path = workdir / "killed.sqlite"
    wal = path.with_name(path.name + "-wal")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    worker = ctx.Process(target=_writer, args=(str(path), [str(p) for p in files[:100]], 10 * batch, batch, 9, queue))
    worker.start()
    committed = [queue.get(timeout=600)]
    before = wal.stat().st_mtime_ns
    deadline = time.monotonic() + 600
    while wal.stat().st_mtime_ns == before and queue.empty() and time.monotonic() < deadline:
        time.sleep(0.002)
    inside = queue.empty()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    while not queue.empty():
        committed.append(queue.get())
    inside = inside and len(committed) == 1
    with open_case_log(path) as log:
        conn = sqlite3.connect(path)
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
        rows = log.count()
        ids = {r.id for r in log.iter_predictions()}
        result = log.verify()
    return {"batch_size": batch, "exit_code": worker.exitcode, "killed_inside_a_batch_that_had_written_pages": inside,
            "last_committed_id": committed[-1], "rows": rows, "nothing_uncommitted": rows == committed[-1],
            "all_committed_present": set(range(1, committed[-1] + 1)) <= ids,
            "integrity_check": integrity, "verify_ok": result.ok}


def fill(path: Path, rows: int, files: list[Path], bundles: list[Any], batch: int = 10000,
         review_every: int = 10) -> dict[str, Any]:
    """``rows`` predictions over the given files and bundles, a tenth of them reviewed."""
    from zsmed.site import SiteConfig
    from zsmed.store import open_case_log
    from zsmed.store.caselog import utc_now

    start = time.perf_counter()
    rng = random.Random(5)
    with open_case_log(path, site=SiteConfig()) as log:
        done = 0
        while done < rows:
            bundle = bundles[(done // batch) % len(bundles)]
            n = min(batch, rows - done)
            sources = [files[(done + i) % len(files)] for i in range(n)]
            results = _results(sources, bundle.class_names, done)
            ids = log.record_predictions(bundle, results)
            reviews = []
            for pid, result in zip(ids, results, strict=True):
                if pid % review_every or result.error:
                    continue
                agree = result.label is not None and rng.random() < 0.8
                label = result.label if agree else rng.choice(bundle.class_names)
                reviews.append({"prediction_id": pid, "verdict": "confirmed" if label == result.label else "corrected",
                                "label": label, "comment": "", "reader": "bench", "time": utc_now()})
            with log._write():  # the bench's reviews in one transaction per batch (review() is one per call)
                log._insert("reviews", reviews)
            done += n
    return {"rows": rows, "seconds": round(time.perf_counter() - start, 1), "size_mb": round(path.stat().st_size / 1e6)}


def bench_similar(workdir: Path, files: list[Path], bundle: Any, reviewed: int | None = None) -> dict[str, Any]:
    """``zsmed log similar`` on a log where ``bundle`` has ``reviewed`` reviewed cases with embeddings (default:
    as many as a search reads), each of the bundle's dimension; the last prediction, not reviewed, is asked."""
    import numpy as np

    from zsmed.site import SiteConfig
    from zsmed.store import open_case_log
    from zsmed.store.caselog import SIMILAR_SEARCH_LIMIT, utc_now

    reviewed = SIMILAR_SEARCH_LIMIT if reviewed is None else reviewed
    path = workdir / "similar.sqlite"
    dim = int(bundle.ood_arrays()["mean"].shape[0])
    rng = np.random.default_rng(11)
    start = time.perf_counter()
    with open_case_log(path, site=SiteConfig()) as log:
        kept = query = 0
        done = 0
        while kept <= reviewed:
            sources = [files[(done + i) % len(files)] for i in range(5000)]
            results = _results(sources, bundle.class_names, done)
            for result in results:
                result.embedding = rng.standard_normal(dim).astype(np.float32)
            ids = log.record_predictions(bundle, results, keep_embeddings=True)
            reviews = []
            for pid, result in zip(ids, results, strict=True):
                if result.error:
                    continue
                if kept == reviewed:  # the case asked about: read, not reviewed
                    query = pid
                    kept += 1
                    break
                reviews.append({"prediction_id": pid, "verdict": "corrected", "label": bundle.class_names[0],
                                "comment": "", "reader": "bench", "time": utc_now()})
                kept += 1
            with log._write():
                log._insert("reviews", reviews)
            done += len(sources)
    filled = round(time.perf_counter() - start, 1)
    figures = measure_cli(["log", "similar", str(query), "--log", str(path)])
    return {"reviewed_with_embeddings": reviewed, "dimensions": dim, "fill_s": filled,
            "size_mb": round(path.stat().st_size / 1e6), **figures}


_MEASURE = """
import json, resource, sys, time
from zsmed.cli.main import main
start = time.perf_counter()
cpu = time.process_time()
code = main(sys.argv[1:])
seconds = time.perf_counter() - start
cpu = time.process_time() - cpu + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
def peak_mb():  # VmHWM: this process's own high-water mark (ru_maxrss keeps the parent's across exec)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps({"code": code, "seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": peak_mb(),
                  "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}),
      file=sys.stderr)
"""


def measure_cli(argv: list[str]) -> dict[str, Any]:
    """One ``zsmed`` command in a fresh process: the command's time (``seconds``, from main() on)
    and the whole process's (``process_wall_s``, interpreter start and imports included), its peak
    RSS and the largest of its worker processes' (verify's digest workers, if it used any)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True, text=True)
    wall = time.perf_counter() - start
    figures = json.loads(done.stderr.strip().splitlines()[-1])
    figures["process_wall_s"] = round(wall, 2)
    figures["stdout_tail"] = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else []
    return dict(figures)


def run_log_bench(rows: int = 1_000_000, images: Path | None = None, workdir: Path | None = None) -> dict[str, Any]:
    files = _image_files(images)
    bundles = _bundles()
    own = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="zsmed-bench-log-")) if workdir is None else Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version, "cpus": os.cpu_count(), "load_at_start": os.getloadavg()},
        "images": {"folder": str(images) if images else "pydicom test files", "files": len(files)},
    }
    try:
        result["single_writer"] = bench_single_writer(folder, files, bundles[0])
        result["concurrent"] = bench_concurrent(folder, files)
        result["sigkill"] = bench_kill(folder, files)
        big = folder / "big.sqlite"
        result["fill"] = fill(big, rows, files, bundles)
        result["verify"] = measure_cli(["log", "verify", "--log", str(big)])
        result["stats"] = measure_cli(["log", "stats", "--by", "month", "--log", str(big)])
        result["stats_all"] = measure_cli(["log", "stats", "--log", str(big)])
        result["similar"] = bench_similar(folder, files, max(bundles, key=lambda b: b.ood_arrays()["mean"].size))
    finally:
        if own:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    result["machine"]["load_at_end"] = os.getloadavg()
    single = result["single_writer"]
    result["summary"] = {
        "batched_per_s_known_images": single["known_images_batched"]["per_s"],
        "batched_per_s_new_images": single["new_images_batched"]["per_s"],
        "one_transaction_per_row_per_s": single["known_images_one_transaction_per_row"]["per_s"],
        "concurrent_rows": f"{result['concurrent']['rows']}/{result['concurrent']['expected']}, verify "
                           f"{'ok' if result['concurrent']['verify_ok'] else 'FAILED'}",
        "sigkill": "ok" if (result["sigkill"]["all_committed_present"] and result["sigkill"]["verify_ok"]
                            and result["sigkill"]["nothing_uncommitted"]
                            and result["sigkill"]["integrity_check"] == "ok") else "FAILED",
        "rows": rows,
        "verify_s": result["verify"]["seconds"], "verify_peak_rss_mb": result["verify"]["peak_rss_mb"],
        "verify_worker_peak_rss_mb": result["verify"]["worker_peak_rss_mb"], "verify_cpu_s": result["verify"]["cpu_s"],
        "stats_by_month_s": result["stats"]["seconds"], "stats_peak_rss_mb": result["stats"]["peak_rss_mb"],
        "stats_cpu_s": result["stats"]["cpu_s"],
        "similar_s": result["similar"]["seconds"], "similar_peak_rss_mb": result["similar"]["peak_rss_mb"],
        "similar_reviewed": result["similar"]["reviewed_with_embeddings"],
    }
    return result
