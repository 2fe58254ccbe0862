"""The offline installation kit for hospital PCs: built where there is a package index, installed
where there is none (pip told to use the kit only), it runs a reference bundle without torch; a
damaged kit, or one made for another PC, is refused before anything is installed. The Windows kit
is built here (its wheels chosen for 64-bit Windows and its Python) and checked wheel by wheel; it
cannot be installed on this Linux machine, where its installer refuses it.

Slow (it builds kits of ~290 MB and installs one) and it reads this machine's package index while
building: run with ``pytest -m slow tests/installer``."""

from __future__ import annotations

import os
import subprocess
import sys
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
    # uninstalled: the environment, the links and the menu entry go; the site's data stays, named
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "caselog-marker").write_text("the site's data")
    removed = run(["bash", str(kit / "install.sh"), "--uninstall", str(prefix)], env=env)
    assert removed.returncode == 0, removed.stderr[-2000:]
    assert not prefix.exists() and not (bin_dir / "zsmed").is_symlink() and not (menu / "zsmed.desktop").exists()
    assert (tmp_path / "data" / "caselog-marker").is_file()
    assert f"kept the site's data (case log, settings, models, received studies) in {tmp_path / 'data'}" in (
        removed.stdout)


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


def test_a_kit_for_another_pc_is_refused_before_anything_is_installed(kit: Path, tmp_path: Path) -> None:
    other = tmp_path / "kit"
    subprocess.run(["cp", "-r", str(kit), str(other)], check=True)
    assert (other / "PLATFORM").read_text().split()[1] == f"cp{sys.version_info[0]}{sys.version_info[1]}"
    (other / "PLATFORM").write_text("linux-x86_64 cp39\n")
    prefix = tmp_path / "opt-zsmed"
    done = run(["bash", str(other / "install.sh"), str(prefix)],
               env={"PYTHON": "python3", "ZSMED_BIN_DIR": str(tmp_path / "bin"), "ZSMED_MENU_DIR": str(tmp_path / "m")})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"zsmed install: this kit is for Python 3.9; the Python installing it is "
                                   f"{sys.version_info[0]}.{sys.version_info[1]}: run it with Python 3.9, or make the "
                                   f"kit for {sys.version_info[0]}.{sys.version_info[1]}")
    assert not prefix.exists() and not (tmp_path / "bin").exists()


def _compatible_with_windows(wheel: str, python: tuple[int, int]) -> bool:
    """Whether a wheel's file name says it installs on 64-bit Windows with CPython ``python`` (PEP 427 tags)."""
    parts = wheel[:-len(".whl")].split("-")
    python_tags, abi_tags, platform_tags = (set(parts[-3].split(".")), set(parts[-2].split(".")),
                                            set(parts[-1].split(".")))
    if not platform_tags & {"any", "win_amd64"}:
        return False
    own = f"cp{python[0]}{python[1]}"
    if "none" in abi_tags and python_tags & {"py3", f"py{python[0]}{python[1]}", own}:
        return True
    if own in python_tags and abi_tags & {own, "none"}:
        return True
    stable = [int(t[3:]) for t in python_tags if t.startswith("cp3")]  # cp39-abi3: CPython 3.9 and later
    return "abi3" in abi_tags and any(minor <= python[1] for minor in stable)


def test_the_windows_kit_holds_wheels_for_windows_and_its_installer(tmp_path: Path) -> None:
    out = tmp_path / "zsmed-kit-windows"
    done = run(["bash", str(REPO / "installer" / "offline-kit.sh"), str(out), "--windows", "--python", "3.12"],
               env={"PYTHON": "python3"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "for windows-x86_64 cp312" in done.stdout and "install.cmd" in done.stdout
    wheels = sorted(p.name for p in (out / "wheels").glob("*.whl"))
    foreign = [w for w in wheels if not _compatible_with_windows(w, (3, 12))]
    assert not foreign, foreign
    names = {w.split("-")[0].lower() for w in wheels}
    assert {"zsmed", "numpy", "pydicom", "onnxruntime", "openvino", "pyside6_essentials", "shiboken6", "pyqtgraph",
            "superqt"} <= names
    assert any(w.endswith("win_amd64.whl") for w in wheels) and "torch" not in names
    assert len((out / "SHA256SUMS").read_text().splitlines()) == len(wheels)
    assert (out / "PLATFORM").read_text().strip() == "windows-x86_64 cp312"
    assert not (out / "install.sh").exists() and (out / "install.py").read_bytes() == (
        REPO / "installer" / "offline_install.py").read_bytes()
    command = (out / "install.cmd").read_bytes()
    assert b"py -3.12 \"%KIT%install.py\" %*\r\n" in command and b"@PYTHON_VERSION@" not in command
    assert command.count(b"\n") == command.count(b"\r\n")  # cmd.exe wants CRLF line ends
    # on this Linux machine its installer refuses it, saying what it is for, before installing anything
    prefix = tmp_path / "prefix"
    refused = run(["python3", str(out / "install.py"), str(prefix)])
    assert refused.returncode == 1 and not prefix.exists()
    assert refused.stderr.startswith("zsmed install: this kit is for Windows on x86_64; this PC runs Linux")
