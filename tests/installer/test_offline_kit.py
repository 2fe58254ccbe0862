"""The offline installation kit for hospital PCs: built where there is a package index, installed
where there is none (pip told to use the kit only), it runs a reference bundle without torch; a
damaged kit is refused before anything is installed.

Slow (it builds a kit of ~290 MB and installs it) and it reads this machine's package index while
building: run with ``pytest -m slow tests/installer``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import dicom_test_file

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run(command: list[str], env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kit") / "zsmed-kit"
    done = run(["bash", str(REPO / "installer" / "offline-kit.sh"), str(out)], env={"PYTHON": "python3"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_kit_installs_without_an_index_and_runs_a_bundle_without_torch(kit: Path, tmp_path: Path) -> None:
    wheels = sorted(p.name for p in (kit / "wheels").glob("*.whl"))
    assert any(name.startswith("zsmed-") for name in wheels) and any(name.startswith("onnxruntime-") for name in wheels)
    assert not any(name.startswith("torch-") for name in wheels)  # the reading-room kit has no torch
    assert len((kit / "SHA256SUMS").read_text().splitlines()) == len(wheels)
    prefix, bin_dir, menu = tmp_path / "opt-zsmed", tmp_path / "bin", tmp_path / "applications"
    env = {"PYTHON": "python3", "ZSMED_BIN_DIR": str(bin_dir), "ZSMED_MENU_DIR": str(menu),
           "ZSMED_DATA_DIR": str(tmp_path / "data"), "ZSMED_CACHE_DIR": str(tmp_path / "cache"),
           # an index that cannot be reached: the kit alone must do
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": ""}
    done = run(["bash", str(kit / "install.sh"), str(prefix)], env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (bin_dir / "zsmed").resolve() == (prefix / "venv" / "bin" / "zsmed").resolve()
    assert (bin_dir / "zsmed-desktop").is_symlink()
    entry = (menu / "zsmed.desktop").read_text()
    assert f"Exec={prefix}/venv/bin/zsmed-desktop %F" in entry
    python = prefix / "venv" / "bin" / "python"
    probe = run([str(python), "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"])
    assert probe.stdout.strip() == "True"
    bundle = REPO / "export" / "reference" / "ham4_protonet_lite0_v1.zsmb"
    image = dicom_test_file("CT_small.dcm")
    predicted = run([str(bin_dir / "zsmed"), "predict", str(bundle), str(image)], env=env)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert predicted.stdout.startswith(f"{image}\t") and "abstain" in predicted.stdout  # a CT is not dermoscopy
    doctor = run([str(bin_dir / "zsmed"), "doctor"], env=env)
    assert "runtime" in doctor.stdout and "Traceback" not in doctor.stderr


def test_a_damaged_kit_is_refused_before_anything_is_installed(kit: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "kit"
    subprocess.run(["cp", "-r", str(kit), str(damaged)], check=True)
    wheel = next((damaged / "wheels").glob("zsmed-*.whl"))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))
    prefix = tmp_path / "opt-zsmed"
    done = run(["bash", str(damaged / "install.sh"), str(prefix)],
               env={"PYTHON": "python3", "ZSMED_BIN_DIR": str(tmp_path / "bin"), "ZSMED_MENU_DIR": str(tmp_path / "m")})
    assert done.returncode == 1
    assert "the kit is damaged" in done.stderr and "Traceback" not in done.stderr
    assert not (prefix / "venv").exists() and not (tmp_path / "bin").exists()
