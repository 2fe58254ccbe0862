"""The runtime path (``zsmed predict``, ``zsmed check``, ``zsmed bundle``) works with torch absent and no network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PRELUDE = r'''
import importlib.abc, socket, sys

BLOCKED = ("torch", "transformers", "torchvision", "timm", "nncf", "zsmed.encoders", "zsmed.bundle")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"blocked for this test: {name}")
        return None

sys.meta_path.insert(0, Block())

def no_network(*args, **kwargs):
    raise AssertionError("network access attempted")

socket.socket.connect = no_network
socket.socket.connect_ex = no_network
socket.socket.sendto = no_network
socket.getaddrinfo = no_network
socket.create_connection = no_network

from zsmed.cli.main import main
code = main(sys.argv[1:])
leaked = [m for m in BLOCKED if m in sys.modules]
assert not leaked, leaked
sys.exit(code)
'''


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"ZSMED_DATA_DIR": str(tmp_path / "data"), "ZSMED_CACHE_DIR": str(tmp_path / "cache"),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", PRELUDE, *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_predict_without_torch_or_network(reference_bundle: Path, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (64, 48), (200, 140, 120)).save(folder / "a.png")
    Image.new("L", (40, 40), 0).save(folder / "b.png")
    from pydicom.data import get_testdata_file

    dicom = get_testdata_file("CT_small.dcm")
    # auto: measures both backends the first time and remembers the choice
    result = _run(["predict", str(reference_bundle), str(folder), dicom, "--json", "--series"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    files = [line for line in lines if "series" not in line or ("source" in line and not line.get("series"))]
    assert len(lines) >= 3 and all("abstain" in line for line in lines)
    assert files
    assert (tmp_path / "data" / "runtime_backends.json").is_file()
    labelled = tmp_path / "labelled"
    (labelled / "NV").mkdir(parents=True)
    (folder / "a.png").rename(labelled / "NV" / "a.png")
    for args in (["bundle", "info", str(reference_bundle)], ["bundle", "verify", str(reference_bundle)],
                 ["check", str(reference_bundle), str(labelled)]):
        result = _run(args, tmp_path)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_each_backend_without_torch(reference_bundle: Path, tmp_path: Path, backend: str) -> None:
    from PIL import Image

    image = tmp_path / "x.png"
    Image.new("RGB", (224, 224), (180, 120, 100)).save(image)
    result = _run(["predict", str(reference_bundle), str(image), "--backend", backend], tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(image) in result.stdout
