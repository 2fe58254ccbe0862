"""``zsmed bench scan``: header-scan speed against a plain ``pydicom.dcmread`` loop, and scan RSS.

``make_corpus(folder, n)`` fills a folder with ``n`` copies of real pydicom test files (CT, MR, CR,
US, secondary capture; native and compressed), each rewritten with fresh Study/Series/SOP UIDs and
spread over patients, so the index has realistic shape. ``bench_scan`` times, in one run, the
header scan (``scan_job``: walk + header reads + index) and a plain loop of full ``dcmread`` over
the same files (both after one warm-up pass so both read from the page cache), and measures the
peak RSS of a scan of ``rss_files`` files in a fresh subprocess, so the figure is the scan's own.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

CORPUS_SOURCES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "693_UNCI.dcm",
    "MR2_UNCI.dcm",
    "JPEG2000.dcm",
    "MR_small_RLE.dcm",
    "emri_small.dcm",
    "US1_J2KR.dcm",
    "SC_rgb.dcm",
    "MR_small_implicit.dcm",
    "693_J2KR.dcm",
    "JPGLosslessP14SV1_1s_1f_8b.dcm",
)


def make_corpus(folder: str | Path, n: int, *, files_per_series: int = 50, series_per_patient: int = 4) -> int:
    """Write ``n`` DICOM files under ``folder`` (patient/series sub-folders); return the count."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for name in CORPUS_SOURCES:
        path = get_testdata_file(name)
        if path is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sources.append(pydicom.dcmread(path))
    if not sources:
        raise RuntimeError("pydicom test files not found")
    written = 0
    series_count = (n + files_per_series - 1) // files_per_series
    for s in range(series_count):
        template = sources[s % len(sources)]
        patient = s // series_per_patient
        study_uid = generate_uid(entropy_srcs=[f"zsmed-bench-study-{patient}"])
        series_uid = generate_uid(entropy_srcs=[f"zsmed-bench-series-{s}"])
        sub = folder / f"P{patient:04d}" / f"S{s:05d}"
        sub.mkdir(parents=True, exist_ok=True)
        for k in range(min(files_per_series, n - written)):
            ds = template
            ds.PatientID = f"BENCH{patient:04d}"
            ds.PatientName = f"Bench^Patient{patient:04d}"
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.SeriesNumber = s % series_per_patient + 1
            ds.InstanceNumber = k + 1
            sop = generate_uid(entropy_srcs=[f"zsmed-bench-{s}-{k}"])
            ds.SOPInstanceUID = sop
            ds.file_meta.MediaStorageSOPInstanceUID = sop
            if "ImagePositionPatient" in ds:
                ds.ImagePositionPatient = [0.0, 0.0, float(k) * 2.5]
                ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds.save_as(sub / f"IM{k:05d}.dcm", enforce_file_format=False)
            written += 1
    return written


def list_files(folder: str | Path) -> list[str]:
    out: list[str] = []
    for root, _dirs, files in os.walk(folder):
        out.extend(os.path.join(root, f) for f in files)
    out.sort()
    return out


def _warm(files: list[str]) -> int:
    total = 0
    for path in files:
        with open(path, "rb") as fp:
            while chunk := fp.read(1 << 20):
                total += len(chunk)
    return total


def time_header_scan(folder: str | Path) -> tuple[float, int, Any]:
    from zsmed.dicom.scan import scan

    start = time.perf_counter()
    index = scan(folder)
    return time.perf_counter() - start, index.files_seen, index


def time_plain_loop(files: list[str]) -> float:
    import pydicom

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in files:
            pydicom.dcmread(path)
    return time.perf_counter() - start


_RSS_CHILD = """
import json, resource, sys, time
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import zsmed.dicom.scan as s
after_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
index = s.scan(sys.argv[1])
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"files": index.files_seen, "instances": len(index.instances), "seconds": seconds,
                  "peak_rss_kb": peak, "rss_after_import_kb": after_import}))
"""


def measure_scan_rss(folder: str | Path) -> dict[str, Any]:
    """Peak RSS (ru_maxrss) of a fresh Python process that imports zsmed.dicom.scan and scans ``folder``."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(folder)], check=True, capture_output=True, text=True, timeout=3600
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    # ru_maxrss is in kB on Linux, in bytes on macOS
    kb = result["peak_rss_kb"] / 1024 if sys.platform == "darwin" else result["peak_rss_kb"]
    result["peak_rss_mb"] = round(kb / 1024, 1)
    result["rss_after_import_mb"] = round(result["rss_after_import_kb"] / 1024, 1)
    return result


def bench_scan(folder: str | Path, *, rss_files: int = 10000, repeats: int = 1) -> dict[str, Any]:
    """The whole benchmark; returns the JSON-ready result."""
    folder = Path(folder)
    files = list_files(folder)
    if not files:
        raise FileNotFoundError(f"no files under {folder}")
    _warm(files)
    scan_seconds = min(time_header_scan(folder)[0] for _ in range(repeats))
    index = time_header_scan(folder)[2]
    plain_seconds = min(time_plain_loop(files) for _ in range(repeats))
    result: dict[str, Any] = {
        "folder": str(folder),
        "files": len(files),
        "bytes": sum(os.path.getsize(f) for f in files),
        "header_scan": {
            "seconds": round(scan_seconds, 3),
            "files_per_s": round(len(files) / scan_seconds, 1),
            "instances": len(index.instances),
            "problems": len([p for p in index.problems if p.kind != "not-dicom"]),
        },
        "plain_dcmread_loop": {"seconds": round(plain_seconds, 3), "files_per_s": round(len(files) / plain_seconds, 1)},
        "speedup": round(plain_seconds / scan_seconds, 2),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
    }
    import pydicom

    result["machine"]["pydicom"] = pydicom.__version__
    if rss_files:
        if len(files) >= rss_files:
            rss = measure_scan_rss(folder)
        else:
            with tempfile.TemporaryDirectory(prefix="zsmed-rss-") as tmp:
                make_corpus(tmp, rss_files)
                rss = measure_scan_rss(tmp)
        result["scan_rss"] = rss
    return result
