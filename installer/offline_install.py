"""Install zsmed from an offline kit (installer/offline-kit.sh) with no network at all, on Linux or Windows.

    Linux:    bash install.sh [--uninstall] [PREFIX]     (runs this file with python3)
    Windows:  install.cmd [--uninstall] [PREFIX]         (runs this file with the Python the kit was made for)

It refuses a kit made for another system or Python version, and a damaged one (a wheel that does not match
SHA256SUMS, or one SHA256SUMS does not list), before anything is installed. Then it makes a Python environment in
PREFIX/venv, installs from the kit's wheels only (this PC's pip configuration and any index ignored), puts the
commands where the PC finds them and the app in the desktop's menu (Linux: links in a bin folder and a .desktop
entry; Windows: a Start menu shortcut, and zsmed.cmd in ZSMED_BIN_DIR where IT sets one), and ends with
`zsmed doctor`. Running it again upgrades in place. --uninstall removes what it installed there (the environment,
the commands and the menu entry it made, each only where it points into PREFIX) and keeps the site's data: the case
log, settings, models and received studies stay in the zsmed data folder, which it names.

PREFIX defaults to /opt/zsmed as root, else ~/.local/share/zsmed-app (Linux); on Windows to C:\\Program Files\\zsmed
for an administrator (the Start menu of every user), else %LOCALAPPDATA%\\Programs\\zsmed (the user's own).
ZSMED_BIN_DIR and ZSMED_MENU_DIR move the commands and the menu entry.

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MIN_PYTHON = (3, 10)
WINDOWS = sys.platform.startswith("win")  # the PC installing


class InstallError(Exception):
    """What stops the installation, said in one line."""


@dataclass(frozen=True)
class Places:
    prefix: Path
    bin_dir: Path | None  # where the commands go (None: left in PREFIX/venv, said at the end)
    menu_dir: Path | None  # where the app's menu entry goes (None: nowhere)


def this_pc() -> str:
    """This PC as a kit's PLATFORM file names one: "linux-x86_64 cp311", "windows-amd64 cp312"."""
    system = "windows" if WINDOWS else sys.platform.rstrip("0123456789")
    machine = platform.machine().lower() or "unknown"
    return f"{system}-{_same_machine(machine)} cp{sys.version_info[0]}{sys.version_info[1]}"


def _same_machine(machine: str) -> str:
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def check_platform(kit_platform: str, pc: str) -> None:
    """Refuse a kit made for another system, processor or Python version (its wheels would not install)."""
    made_for = kit_platform.split()
    here = pc.split()
    if len(made_for) != 2:
        return  # a kit from before PLATFORM files: its wheels are checked by pip
    (kit_system, kit_python), (pc_system, pc_python) = made_for, here
    kit_os, _, kit_machine = kit_system.partition("-")
    pc_os, _, pc_machine = pc_system.partition("-")
    if kit_os != pc_os or _same_machine(kit_machine) != _same_machine(pc_machine):
        raise InstallError(f"this kit is for {_system_name(kit_system)}; this PC runs {_system_name(pc_system)}: "
                           f"make the kit for this PC (installer/offline-kit.sh)")
    if kit_python != pc_python:
        raise InstallError(f"this kit is for Python {_python_name(kit_python)}; the Python installing it is "
                           f"{_python_name(pc_python)}: run it with Python {_python_name(kit_python)}, or make the "
                           f"kit for {_python_name(pc_python)}")


def _system_name(system: str) -> str:
    name, _, machine = system.partition("-")
    return f"{ {'windows': 'Windows', 'linux': 'Linux', 'darwin': 'macOS'}.get(name, name)} on {machine}"


def _python_name(tag: str) -> str:
    digits = tag.removeprefix("cp")
    return f"{digits[0]}.{digits[1:]}" if len(digits) > 1 else digits


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_kit(kit: Path) -> list[Path]:
    """The kit's wheels, each matching SHA256SUMS, and no wheel it does not list (pip would consider one)."""
    sums = kit / "SHA256SUMS"
    try:
        lines = sums.read_text(encoding="utf-8").splitlines()
    except OSError:
        raise InstallError(f"{sums.name} is missing from the kit: copy the whole kit again") from None
    listed: dict[str, str] = {}
    for line in lines:
        digest, _, name = line.strip().partition(" ")
        if digest and name:
            listed[name.strip().lstrip("*").replace("\\", "/")] = digest.lower()
    wheels = sorted((kit / "wheels").glob("*.whl"))
    for wheel in wheels:
        name = f"wheels/{wheel.name}"
        if name not in listed:
            raise InstallError(f"the kit is damaged ({name} is not in SHA256SUMS): copy it again")
        if sha256(wheel) != listed[name]:
            raise InstallError(f"the kit is damaged ({name} does not match SHA256SUMS): copy it again")
    missing = sorted(set(listed) - {f"wheels/{w.name}" for w in wheels})
    if missing:
        raise InstallError(f"the kit is damaged ({missing[0]} is missing): copy it again")
    if not any(w.name.startswith("zsmed-") for w in wheels):
        raise InstallError("the kit has no zsmed wheel: make it again with installer/offline-kit.sh")
    return wheels


def default_places(windows: bool, admin: bool, env: dict[str, str], home: Path, prefix: str | None) -> Places:
    """Where zsmed goes on this PC (see the module), ZSMED_BIN_DIR and ZSMED_MENU_DIR overriding."""
    if windows:  # an administrator installs for every user, anyone else for themselves
        if admin:
            chosen = Path(prefix) if prefix else Path(env.get("PROGRAMFILES") or "C:/Program Files") / "zsmed"
            start_menu = Path(env.get("PROGRAMDATA") or "C:/ProgramData")
        else:
            local = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
            chosen = Path(prefix) if prefix else local / "Programs" / "zsmed"
            start_menu = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        bin_dir: Path | None = None
        menu_dir: Path | None = start_menu / "Microsoft" / "Windows" / "Start Menu" / "Programs"
    elif admin:
        chosen = Path(prefix or "/opt/zsmed")
        bin_dir, menu_dir = Path("/usr/local/bin"), Path("/usr/share/applications")
    else:
        chosen = Path(prefix) if prefix else home / ".local" / "share" / "zsmed-app"
        bin_dir, menu_dir = home / ".local" / "bin", home / ".local" / "share" / "applications"
    if env.get("ZSMED_BIN_DIR"):
        bin_dir = Path(env["ZSMED_BIN_DIR"])
    if env.get("ZSMED_MENU_DIR"):
        menu_dir = Path(env["ZSMED_MENU_DIR"])
    return Places(chosen, bin_dir, menu_dir)


def venv_file(prefix: Path, windows: bool, name: str) -> Path:
    """A program of the environment: venv/bin/NAME, or venv\\Scripts\\NAME.exe on Windows."""
    return prefix / "venv" / ("Scripts" if windows else "bin") / (f"{name}.exe" if windows else name)


def shortcut_command(link: Path, target: Path, working_dir: Path) -> list[str]:
    """PowerShell making a Start menu shortcut (a .lnk, which only the Windows shell writes)."""
    def quoted(value: Path) -> str:
        return "'" + str(value).replace("'", "''") + "'"

    script = (f"$s = (New-Object -ComObject WScript.Shell).CreateShortcut({quoted(link)}); "
              f"$s.TargetPath = {quoted(target)}; $s.WorkingDirectory = {quoted(working_dir)}; "
              "$s.Description = 'Build and run image classifiers from a few local examples, offline'; $s.Save()")
    return ["powershell", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command", script]


def desktop_entry(prefix: Path) -> str:
    return ("[Desktop Entry]\nType=Application\nName=zsmed\n"
            "Comment=Build and run image classifiers from a few local examples, offline\n"
            f"Exec={venv_file(prefix, False, 'zsmed-desktop')} %F\nTerminal=false\n"
            "Categories=Graphics;MedicalSoftware;Science;\n")


def places_here(prefix: str | None) -> Places:
    """Where zsmed goes on this PC (``default_places`` for this system, user and environment)."""
    return default_places(WINDOWS, _is_admin(WINDOWS), dict(os.environ), Path.home(), prefix)


def _is_admin(windows: bool) -> bool:
    if windows:
        try:
            import ctypes

            return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
        except (ImportError, AttributeError, OSError):
            return False
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env)
    if done.returncode != 0:
        raise InstallError(f"{what} failed (exit status {done.returncode}; pip said why above)")


def install(kit: Path, prefix_arg: str | None) -> Places:
    if sys.version_info < MIN_PYTHON:
        raise InstallError(f"Python {sys.version_info[0]}.{sys.version_info[1]} is too old: install Python "
                           f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer first")
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        raise InstallError(f"{sys.executable} cannot make environments: install the python3-venv package first"
                           ) from None
    platform_file = kit / "PLATFORM"
    if platform_file.is_file():
        check_platform(platform_file.read_text(encoding="utf-8").strip(), this_pc())
    print("zsmed install: checking the kit's wheels", flush=True)
    wheels = check_kit(kit)
    extras = (kit / "EXTRAS").read_text(encoding="utf-8").strip() if (kit / "EXTRAS").is_file() else "runtime,desktop"
    places = places_here(prefix_arg)
    prefix = places.prefix
    prefix.mkdir(parents=True, exist_ok=True)
    prefix = prefix.resolve()
    # Nothing from this PC's pip configuration (an index, a proxy) and no index at all: the kit only.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run([sys.executable, "-m", "venv", str(prefix / "venv")], env, "making the environment")
    python = venv_file(prefix, WINDOWS, "python")
    pip = [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(kit / "wheels"), "--upgrade"]
    _run([*pip, "pip"], env, "updating pip from the kit")
    wheel = max((w for w in wheels if w.name.startswith("zsmed-")), key=lambda w: w.stat().st_mtime)
    print(f"zsmed install: installing zsmed[{extras}] into {prefix}", flush=True)
    _run([*pip, f"{wheel}[{extras}]"], env, "installing zsmed")
    places = Places(prefix, places.bin_dir, places.menu_dir)
    _place_commands(places, WINDOWS)
    _add_to_menu(places, WINDOWS)
    return places


def _place_commands(places: Places, windows: bool) -> None:
    if places.bin_dir is None:
        return
    places.bin_dir.mkdir(parents=True, exist_ok=True)
    for command in ("zsmed", "zsmed-desktop"):
        target = venv_file(places.prefix, windows, command)
        if windows:  # no links for everyone on Windows: a one-line command file
            (places.bin_dir / f"{command}.cmd").write_text(f'@"{target}" %*\r\n', encoding="utf-8")
        else:
            link = places.bin_dir / command
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target)


def _add_to_menu(places: Places, windows: bool) -> None:
    menu = places.menu_dir
    if menu is None or not menu.parent.is_dir():
        return
    menu.mkdir(parents=True, exist_ok=True)
    if windows:
        app = venv_file(places.prefix, True, "zsmed-desktop")
        done = subprocess.run(shortcut_command(menu / "zsmed.lnk", app, places.prefix), capture_output=True, text=True)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            print(f"zsmed install: warning: no Start menu shortcut ({why}); the app is {app}", file=sys.stderr)
    else:
        (menu / "zsmed.desktop").write_text(desktop_entry(places.prefix), encoding="utf-8")


def _points_into(path: Path, prefix: Path) -> bool:
    """Whether a command link, command file or menu entry is one this installer made for ``prefix``."""
    try:
        if path.is_symlink():
            return Path(os.readlink(path)).resolve().is_relative_to(prefix)
        if path.suffix in (".cmd", ".desktop"):
            return str(prefix / "venv") in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return path.suffix == ".lnk"  # a shortcut is binary: the one named zsmed.lnk is this installer's


def data_folder(prefix: Path, windows: bool) -> str | None:
    """Where the installed zsmed keeps the site's data (asked of it, before it is removed)."""
    python = venv_file(prefix, windows, "python")
    if not python.is_file():
        return None
    done = subprocess.run([str(python), "-c", "from zsmed.paths import user_data_dir; "
                           "print(user_data_dir(create=False))"], capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def uninstall(places: Places, windows: bool) -> list[Path]:
    """Remove what ``install`` put in ``places`` (see the module); what was removed. The site's data stays."""
    import shutil

    prefix = places.prefix.resolve()
    if not (prefix / "venv").is_dir():
        raise InstallError(f"zsmed is not installed in {prefix} (no venv folder there): name the folder it was "
                           "installed in")
    removed: list[Path] = []
    names = [f"{c}.cmd" for c in ("zsmed", "zsmed-desktop")] if windows else ["zsmed", "zsmed-desktop"]
    candidates = [places.bin_dir / n for n in names] if places.bin_dir else []
    if places.menu_dir is not None:
        candidates.append(places.menu_dir / ("zsmed.lnk" if windows else "zsmed.desktop"))
    for path in candidates:
        if (path.is_symlink() or path.is_file()) and _points_into(path, prefix):
            path.unlink()
            removed.append(path)
    shutil.rmtree(prefix / "venv")
    removed.append(prefix / "venv")
    if not any(prefix.iterdir()):  # the installer's folder, now empty
        prefix.rmdir()
        removed.append(prefix)
    return removed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    removing = bool(args) and args[0] == "--uninstall"
    args = args[1:] if removing else args
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print("usage: install.sh [--uninstall] [PREFIX] (Linux), install.cmd [--uninstall] [PREFIX] (Windows)",
              file=sys.stderr)
        return 2
    if removing:
        places = places_here(args[0] if args else None)
        data = data_folder(places.prefix, WINDOWS)
        try:
            removed = uninstall(places, WINDOWS)
        except InstallError as exc:
            print(f"zsmed install: {exc}", file=sys.stderr)
            return 1
        print(f"zsmed install: removed {', '.join(str(p) for p in removed)}")
        print(f"zsmed install: kept the site's data (case log, settings, models, received studies)"
              f"{' in ' + data if data else ''}; remove it yourself only once it is backed up or no longer needed")
        return 0
    kit = Path(__file__).resolve().parent
    try:
        places = install(kit, args[0] if args else None)
    except InstallError as exc:
        print(f"zsmed install: {exc}", file=sys.stderr)
        return 1
    zsmed = venv_file(places.prefix, WINDOWS, "zsmed")
    where = (f"{places.bin_dir / 'zsmed'}, {places.bin_dir / 'zsmed-desktop'}" if places.bin_dir and not WINDOWS
             else f"{zsmed} and {venv_file(places.prefix, WINDOWS, 'zsmed-desktop')}")
    menu = " (the app is in the desktop's menu)" if places.menu_dir is not None else ""
    print(f"zsmed install: done: {where}{menu}", flush=True)
    if subprocess.run([str(zsmed), "doctor"]).returncode != 0:
        print("zsmed install: 'zsmed doctor' found something to fix (above)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
