"""``zsmed encoders list`` and ``zsmed encode``, run in-process through the real entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from zsmed.cli.main import main


@pytest.fixture()
def class_folder(tmp_path: Path, novel_images: list[Path]) -> Path:
    root = tmp_path / "cases"
    for label, images in (("akiec", novel_images[:2]), ("vasc", novel_images[-2:])):
        (root / label).mkdir(parents=True)
        for image in images:
            shutil.copy(image, root / label / image.name)
    # A JPEG cut off after its header: decoding must fail for this file only.
    (root / "vasc" / "broken.jpg").write_bytes(novel_images[0].read_bytes()[:300])
    return root


def test_encoders_list_table_and_json(isolated_dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoders", "list"]) == 0
    table = capsys.readouterr().out
    assert "efficientnet-lite0 *" in table and "1280" in table and "384" in table
    assert "hf-local:<folder>" in table
    assert main(["encoders", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["efficientnet-lite2"]["dim"] == 1280 and rows["efficientnet-lite2"]["available"] is True
    assert rows["all-MiniLM-L6-v2"]["kind"] == "text"


def test_encode_class_folder_through_the_cache(
    isolated_dirs: Path, class_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = isolated_dirs / "features.npz"
    assert main(["encode", str(class_folder), "--encoder", "efficientnet-lite0", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and "encoded 4 of 5 images in 2 classes" in captured.out
    with np.load(out) as data:
        assert data["features"].shape == (4, 1280) and data["features"].dtype == np.float32
        assert sorted(data["labels"].tolist()) == ["akiec", "akiec", "vasc", "vasc"]
        assert all(Path(p).is_file() for p in data["paths"])
        assert [Path(p).name for p in data["failed_paths"]] == ["broken.jpg"]
        assert data["failed_reasons"][0]
        spec = json.loads(str(data["encoder"]))
        assert spec["name"] == "efficientnet-lite0" and str(data["cache_id"]).startswith("efficientnet-lite0-")
        first = data["features"].copy()
    # Second run: every decodable image comes from the cache (in isolated_dirs' cache folder).
    assert main(["encode", str(class_folder), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["from_cache"] == 4 and summary["encoded"] == 4 and len(summary["failed"]) == 1
    with np.load(out) as data:
        np.testing.assert_array_equal(data["features"], first)


def test_encode_flat_folder_and_errors(isolated_dirs: Path, novel_images: list[Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(novel_images[0], flat / "a.jpg")
    out = tmp_path / "out.features"  # any suffix: written exactly where asked
    assert main(["encode", str(flat), "--out", str(out), "--no-cache"]) == 0
    with np.load(out) as data:
        assert data["labels"].tolist() == [""] and data["features"].shape == (1, 1280)
    capsys.readouterr()
    assert main(["encode", str(tmp_path / "absent"), "--out", str(out)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["encode", str(flat), "--encoder", "minilm", "--out", str(out)]) == 2
    assert "text encoder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["encode", str(empty), "--out", str(out)]) == 2
    assert "holds no images" in capsys.readouterr().err


def test_encode_with_only_broken_images_exits_1(isolated_dirs: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    flat = tmp_path / "bad"
    flat.mkdir()
    (flat / "x.png").write_bytes(b"not a png")
    assert main(["encode", str(flat), "--out", str(tmp_path / "f.npz")]) == 1
    assert "x.png" in capsys.readouterr().err
