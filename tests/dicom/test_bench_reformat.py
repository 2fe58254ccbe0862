"""``zsmed bench reformat`` on a small series made from pydicom's real CT slice: the series is one volume of
slices 1 mm apart, every timing is there and positive, and the coronal series saved every 5 mm has its images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zsmed.dicom.bench_reformat import bench_reformat, make_volume_series
from zsmed.dicom.volume import decode_in_process, load_volume_job
from zsmed.progress import run_job


def test_the_series_made_is_one_volume_of_slices_1_mm_apart(tmp_path: Path) -> None:
    files = make_volume_series(tmp_path / "series", 6, 64)
    volume = run_job(load_volume_job(files, decode=decode_in_process))
    assert volume.voxels.shape == (6, 64, 64) and volume.spacing[0] == pytest.approx(1.0)
    assert volume.hounsfield and not np.array_equal(volume.voxels[0], volume.voxels[1])  # slices differ


def test_cli_times_every_step_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.cli.main import main

    out = tmp_path / "bench.json"
    assert main(["bench", "reformat", str(tmp_path / "series"), "--make-volume", "12", "--size", "64",
                 "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["volume"]["slices"] == 12 and result["volume"]["rows"] == 64
    for key in ("read_volume_s", "coronal_slice_ms", "sagittal_slice_ms", "coronal_mip_20mm_ms", "oblique_plane_ms",
                "oblique_slice_ms", "oblique_mip_10mm_ms", "curved_ms"):
        assert result[key] > 0, key
    every = round(5.0 / result["volume"]["spacing_mm"][1])  # coronal slices 5 mm apart
    assert result["save_coronal_every_5mm"]["images"] == len(range(0, 64, every))
    assert main(["bench", "reformat", str(tmp_path / "none")]) == 2
    assert "no .dcm series" in capsys.readouterr().err
    assert bench_reformat(tmp_path / "series", repeats=1)["repeats"] == 1
