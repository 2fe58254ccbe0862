"""``zsmed predict`` and ``zsmed bundle`` from the command line (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from zsmed.cli.main import main


def test_predict_folder_json_with_a_bad_file(reference_bundle: Path, tmp_path: Path, isolated_dirs: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (120, 90), (190, 130, 110)).save(folder / "a.jpg")
    Image.new("L", (64, 64), 255).save(folder / "sub" / "b.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code = main(["predict", str(reference_bundle), str(folder), "--json", "--backend", "onnxruntime",
                 "--batch-size", "2"])
    assert code == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [Path(r["source"]).name for r in lines] == ["a.jpg", "broken.png", "b.png"]
    assert "error" in lines[1] and lines[1]["label"] is None
    assert all(set(r["probabilities"]) == {"nv", "mel", "bkl", "bcc"} for r in (lines[0], lines[2]))
    assert "1 of 3 files could not be read" in captured.err


def test_predict_refuses_unsigned_where_required(reference_bundle: Path, tmp_path: Path, isolated_dirs: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle", "keygen", str(tmp_path / "site")]) == 0
    image = tmp_path / "x.png"
    Image.new("RGB", (64, 64)).save(image)
    code = main(["predict", str(reference_bundle), str(image), "--require-signature",
                 "--trusted-key", str(tmp_path / "site.pub")])
    assert code == 2
    assert "not signed, and this site requires signed bundles" in capsys.readouterr().err
    assert main(["bundle", "keygen", str(tmp_path / "site")]) == 2  # never overwrites a key


def test_bundle_info_and_verify(
    reference_bundle: Path, isolated_dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bundle", "info", str(reference_bundle), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["manifest"]["format"] == "zsmed-bundle" and info["card"]["class_names"]
    assert main(["bundle", "verify", str(reference_bundle), "--backend", "openvino"]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["predict", str(reference_bundle), str(reference_bundle.parent / "absent.png")]) == 2
