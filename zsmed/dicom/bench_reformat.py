"""``zsmed bench reformat``: how fast a CT series is read as a volume and cut into reformats, in one run.

``make_volume_series(folder, slices, size)`` writes a CT series of ``slices`` axial images of ``size`` x
``size`` pixels: pydicom's real CT slice (CT_small.dcm, 128 x 128) tiled to the size and shifted a little
from slice to slice, each with its own position 1 mm apart (as a thin-slice chest CT), new UIDs, one series.
``bench_reformat`` then times, on that series: reading it as a volume (through the same decoder the app's
worker uses in this process), a coronal and a sagittal slice, a 20 mm MIP slab, an oblique plane's set-up
and one of its slices and a 10 mm MIP slab of it, a curved reformat along four points, and saving a coronal
series every 5 mm for the PACS; each timing the median of ``repeats`` runs, with the peak RSS of the process.
The figures go to docs/BENCHMARKS.md with the command that made them.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SLICE_SPACING_MM = 1.0


def make_volume_series(folder: str | Path, slices: int, size: int = 512) -> list[Path]:
    """Write the benchmark's CT series into ``folder`` (``IM0001.dcm`` …); returns the files in slice order."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    source = get_testdata_file("CT_small.dcm")
    if not isinstance(source, str):
        raise FileNotFoundError("pydicom's CT_small.dcm is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        template = pydicom.dcmread(source)
    tile = template.pixel_array
    reps = (-(-size // tile.shape[0]), -(-size // tile.shape[1]))
    tiled = np.tile(tile, reps)[:size, :size]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    series, study = generate_uid(), generate_uid()
    written = []
    for k in range(slices):
        ds = template.copy()
        pixels = np.roll(tiled, k % 16, axis=1).astype(tile.dtype)  # slices that differ, as anatomy does
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelData = pixels.tobytes()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID, ds.StudyInstanceUID = series, study
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-125.0, -125.0, round(-k * SLICE_SPACING_MM, 3)]
        ds.SliceLocation = round(-k * SLICE_SPACING_MM, 3)
        ds.SliceThickness = SLICE_SPACING_MM
        path = folder / f"IM{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


def _median_ms(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(times), 2)


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)  # KiB on Linux


def bench_reformat(folder: str | Path, *, repeats: int = 5) -> dict[str, Any]:
    """The whole benchmark on the series in ``folder``; returns the JSON-ready result."""
    from zsmed.dicom.volume import (
        curved_through,
        decode_in_process,
        load_volume_job,
        oblique_through,
        reformat,
        reformat_plane,
    )
    from zsmed.progress import run_job
    from zsmed.report.reformat_images import ReformatSeries, every_mm, write_reformat_series_job

    files = sorted(Path(folder).glob("*.dcm"))
    if not files:
        raise FileNotFoundError(f"no .dcm files in {folder} (use --make-volume SLICES to write a series)")
    start = time.perf_counter()
    volume = run_job(load_volume_job(files, decode=decode_in_process))
    read_s = time.perf_counter() - start
    slices, rows, columns = volume.voxels.shape
    middle = slices // 2
    axial = reformat_plane(volume, "axial", middle)
    centre = np.asarray(axial.patient_point((columns / 2.0, rows / 2.0)))
    turn = np.asarray([np.cos(np.radians(30.0)), np.sin(np.radians(30.0)), 0.0]) * 40.0
    timings = {
        "coronal_slice_ms": _median_ms(lambda: reformat(volume, "coronal", rows // 2), repeats),
        "sagittal_slice_ms": _median_ms(lambda: reformat(volume, "sagittal", columns // 2), repeats),
        "coronal_mip_20mm_ms": _median_ms(lambda: reformat(volume, "coronal", rows // 2, 20.0, "mip"), repeats),
        "oblique_plane_ms": _median_ms(lambda: oblique_through(volume, centre - turn, centre + turn, (0, 0, 1)),
                                       repeats),
    }
    oblique = oblique_through(volume, centre - turn, centre + turn, (0.0, 0.0, 1.0))
    timings["oblique_slice_ms"] = _median_ms(lambda: reformat(volume, oblique, oblique.through), repeats)
    timings["oblique_mip_10mm_ms"] = _median_ms(lambda: reformat(volume, oblique, oblique.through, 10.0, "mip"),
                                                repeats)
    # a curved path across the middle axial, as clicked along a vessel: four points 1/8 of the width apart
    path = [axial.patient_point((columns * f, rows * (0.5 + 0.2 * (-1) ** k))) for k, f in
            enumerate((0.2, 0.4, 0.6, 0.8))]
    timings["curved_ms"] = _median_ms(lambda: reformat(volume, curved_through(volume, path, axial.normal), 0),
                                      repeats)
    indices = every_mm(volume, "coronal", 5.0)
    with tempfile.TemporaryDirectory(prefix="zsmed-bench-reformat-") as out:
        start = time.perf_counter()
        written = run_job(write_reformat_series_job(volume, ReformatSeries("coronal", indices), Path(out)))
        save_s = time.perf_counter() - start
    import pydicom

    return {
        "folder": str(folder),
        "volume": {"slices": slices, "rows": rows, "columns": columns, "spacing_mm": list(volume.spacing),
                   "megabytes": round(volume.voxels.nbytes / 1e6, 1)},
        "read_volume_s": round(read_s, 3),
        **timings,
        "oblique_size": [oblique.rows, oblique.columns, oblique.count],
        "save_coronal_every_5mm": {"images": len(written), "seconds": round(save_s, 3)},
        "repeats": repeats,
        "peak_rss_mb": _peak_rss_mb(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "numpy": np.__version__, "pydicom": pydicom.__version__},
    }


__all__ = ["SLICE_SPACING_MM", "bench_reformat", "make_volume_series"]
