"""The offline kit's installer (installer/offline_install.py, install.py in a kit), the parts that decide before
anything is installed: a kit for another PC or Python refused with what it is for, a damaged kit refused, where
zsmed and its menu entry go on Linux and Windows (for one user, for everyone, where IT says), the Start menu
shortcut's PowerShell. The kit built and installed end to end: tests/installer/test_offline_kit.py (slow)."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("offline_install", REPO / "installer" / "offline_install.py")
assert _spec is not None and _spec.loader is not None
offline_install = importlib.util.module_from_spec(_spec)
sys.modules["offline_install"] = offline_install  # dataclasses look their module up
_spec.loader.exec_module(offline_install)
InstallError = offline_install.InstallError


def test_a_kit_for_another_system_or_python_is_refused_saying_what_it_is_for() -> None:
    check = offline_install.check_platform
    check("linux-x86_64 cp312", "linux-x86_64 cp312")
    check("windows-x86_64 cp312", "windows-x86_64 cp312")
    with pytest.raises(InstallError, match="this kit is for Windows on x86_64; this PC runs Linux on x86_64"):
        check("windows-x86_64 cp312", "linux-x86_64 cp312")
    with pytest.raises(InstallError, match="this kit is for Linux on x86_64; this PC runs Linux on aarch64"):
        check("linux-x86_64 cp312", "linux-aarch64 cp312")
    with pytest.raises(InstallError, match=r"this kit is for Python 3\.12; the Python installing it is 3\.11"):
        check("windows-x86_64 cp312", "windows-x86_64 cp311")
    check("", "linux-x86_64 cp312")  # a kit made before PLATFORM files: pip still checks each wheel
    system, python = offline_install.this_pc().split()
    assert python == f"cp{sys.version_info[0]}{sys.version_info[1]}" and system.startswith(("linux-", "windows-"))


def _kit(tmp_path: Path) -> Path:
    kit = tmp_path / "kit"
    (kit / "wheels").mkdir(parents=True)
    for name, data in (("zsmed-1.0-py3-none-any.whl", b"zsmed"), ("numpy-2.0-cp312-cp312-win_amd64.whl", b"np")):
        (kit / "wheels" / name).write_bytes(data)
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  wheels/{p.name}"
             for p in sorted((kit / "wheels").iterdir())]
    (kit / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return kit


def test_a_damaged_kit_is_refused(tmp_path: Path) -> None:
    kit = _kit(tmp_path)
    assert [w.name for w in offline_install.check_kit(kit)] == ["numpy-2.0-cp312-cp312-win_amd64.whl",
                                                               "zsmed-1.0-py3-none-any.whl"]
    (kit / "wheels" / "extra-1.0-py3-none-any.whl").write_bytes(b"planted")  # pip would consider it
    with pytest.raises(InstallError, match=r"wheels/extra-1\.0-py3-none-any\.whl is not in SHA256SUMS"):
        offline_install.check_kit(kit)
    (kit / "wheels" / "extra-1.0-py3-none-any.whl").unlink()
    (kit / "wheels" / "numpy-2.0-cp312-cp312-win_amd64.whl").write_bytes(b"changed")
    with pytest.raises(InstallError, match="does not match SHA256SUMS"):
        offline_install.check_kit(kit)
    (kit / "wheels" / "numpy-2.0-cp312-cp312-win_amd64.whl").unlink()
    with pytest.raises(InstallError, match=r"wheels/numpy-2\.0-cp312-cp312-win_amd64\.whl is missing"):
        offline_install.check_kit(kit)
    (kit / "SHA256SUMS").unlink()
    with pytest.raises(InstallError, match="SHA256SUMS is missing from the kit"):
        offline_install.check_kit(kit)


def test_where_zsmed_goes_on_linux_and_windows() -> None:
    places = offline_install.default_places
    home = Path("/home/reader")
    assert places(False, True, {}, home, None) == offline_install.Places(
        Path("/opt/zsmed"), Path("/usr/local/bin"), Path("/usr/share/applications"))
    user = places(False, False, {}, home, None)
    assert user.prefix == home / ".local/share/zsmed-app" and user.bin_dir == home / ".local/bin"
    assert user.menu_dir == home / ".local/share/applications"
    windows_env = {"LOCALAPPDATA": "C:/Users/reader/AppData/Local", "APPDATA": "C:/Users/reader/AppData/Roaming",
                   "PROGRAMFILES": "C:/Program Files", "PROGRAMDATA": "C:/ProgramData"}
    mine = places(True, False, windows_env, home, None)  # a reader installing for themselves
    assert mine.prefix == Path("C:/Users/reader/AppData/Local/Programs/zsmed") and mine.bin_dir is None
    assert mine.menu_dir == Path("C:/Users/reader/AppData/Roaming/Microsoft/Windows/Start Menu/Programs")
    everyone = places(True, True, windows_env, home, None)  # IT, as administrator: every user's Start menu
    assert everyone.prefix == Path("C:/Program Files/zsmed")
    assert everyone.menu_dir == Path("C:/ProgramData/Microsoft/Windows/Start Menu/Programs")
    it = places(True, True, {**windows_env, "ZSMED_BIN_DIR": "D:/tools", "ZSMED_MENU_DIR": "D:/menu"}, home,
                "D:/apps/z")
    assert it == offline_install.Places(Path("D:/apps/z"), Path("D:/tools"), Path("D:/menu"))
    assert offline_install.venv_file(Path("D:/apps/z"), True, "zsmed-desktop") == Path(
        "D:/apps/z/venv/Scripts/zsmed-desktop.exe")
    assert offline_install.venv_file(Path("/opt/zsmed"), False, "zsmed") == Path("/opt/zsmed/venv/bin/zsmed")


def test_the_start_menu_shortcut_is_made_by_powershell_with_paths_quoted() -> None:
    command = offline_install.shortcut_command(Path("C:/Users/o'brien/Start Menu/zsmed.lnk"),
                                               Path("C:/Users/o'brien/zsmed/venv/Scripts/zsmed-desktop.exe"),
                                               Path("C:/Users/o'brien/zsmed"))
    assert command[:2] == ["powershell", "-NoProfile"] and "-ExecutionPolicy" in command
    script = command[-1]
    assert "CreateShortcut('" in script and "o''brien" in script and "o'brien" not in script.replace("o''brien", "")
    assert "$s.Save()" in script


def test_the_installer_says_a_refusal_in_one_line(tmp_path: Path) -> None:
    """Run as a kit runs it: install.py beside a kit made for another system stops before installing anything."""
    kit = _kit(tmp_path)
    shutil.copy(REPO / "installer" / "offline_install.py", kit / "install.py")
    (kit / "PLATFORM").write_text("windows-x86_64 cp312\n" if not sys.platform.startswith("win")
                                  else "linux-x86_64 cp312\n")
    prefix = tmp_path / "prefix"
    done = subprocess.run([sys.executable, str(kit / "install.py"), str(prefix)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and not prefix.exists()
    assert done.stderr.startswith("zsmed install: this kit is for ") and len(done.stderr.strip().splitlines()) == 1
    usage = subprocess.run([sys.executable, str(kit / "install.py"), "a", "b"], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage: install.sh [--uninstall] [PREFIX]" in usage.stderr


def _installed(tmp_path: Path, windows: bool) -> Any:
    """What install() leaves, without pip: PREFIX/venv, the commands and the menu entry pointing into it."""
    prefix, bin_dir, menu = tmp_path / "zsmed", tmp_path / "bin", tmp_path / "menu"
    for folder in (prefix / "venv" / ("Scripts" if windows else "bin"), bin_dir, menu):
        folder.mkdir(parents=True)
    places = offline_install.Places(prefix, bin_dir, menu)
    for command in ("zsmed", "zsmed-desktop"):
        offline_install.venv_file(prefix, windows, command).write_text("program")
    offline_install._place_commands(places, windows)
    if windows:
        (menu / "zsmed.lnk").write_bytes(b"L\x00\x00\x00shortcut")
    else:
        offline_install._add_to_menu(places, False)
    return places


def test_uninstalling_removes_what_was_installed_and_nothing_else(tmp_path: Path) -> None:
    places = _installed(tmp_path, windows=False)
    other = tmp_path / "elsewhere" / "zsmed"  # IT's own zsmed-desktop link, to another installation: kept
    other.parent.mkdir()
    other.write_text("x")
    (tmp_path / "bin" / "zsmed-desktop").unlink()
    (tmp_path / "bin" / "zsmed-desktop").symlink_to(other)
    (tmp_path / "bin" / "dcmdump").write_text("another program")
    removed = offline_install.uninstall(places, windows=False)
    assert sorted(p.name for p in removed) == ["venv", "zsmed", "zsmed", "zsmed.desktop"]  # link, venv, prefix
    assert not (tmp_path / "zsmed").exists() and not (tmp_path / "bin" / "zsmed").is_symlink()
    assert (tmp_path / "bin" / "zsmed-desktop").is_symlink() and (tmp_path / "bin" / "dcmdump").is_file()
    assert not (tmp_path / "menu" / "zsmed.desktop").exists()
    with pytest.raises(InstallError, match=r"zsmed is not installed in .* \(no venv folder there\)"):
        offline_install.uninstall(places, windows=False)


def test_uninstalling_on_windows_removes_the_command_files_and_the_shortcut(tmp_path: Path) -> None:
    places = _installed(tmp_path, windows=True)
    assert (tmp_path / "bin" / "zsmed.cmd").read_text().startswith('@"') and (tmp_path / "menu" / "zsmed.lnk").exists()
    (tmp_path / "zsmed" / "notes.txt").write_text("IT's notes in the folder: the folder stays")
    removed = offline_install.uninstall(places, windows=True)
    assert sorted(p.name for p in removed) == ["venv", "zsmed-desktop.cmd", "zsmed.cmd", "zsmed.lnk"]
    assert (tmp_path / "zsmed" / "notes.txt").is_file() and not (tmp_path / "zsmed" / "venv").exists()
    assert not list((tmp_path / "bin").iterdir()) and not list((tmp_path / "menu").iterdir())
