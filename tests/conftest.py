from __future__ import annotations

import csv
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ZSMED_SHARED_DATA", REPO.parent / "shared" / "data"))

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "", None}


class NetworkAccessError(OSError):
    pass


def _is_loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) and address else address
    return host in _LOCAL_HOSTS or (isinstance(host, str) and host.startswith("127."))


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    """No test may reach the network: connections beyond loopback fail at once.

    pydicom's data manager would otherwise try to download the few test files that the
    pydicom-data package does not carry, with retries and sleeps.
    """
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NetworkAccessError(f"network access attempted in a test: {address!r}")
        real_connect(self, address)  # type: ignore[arg-type]

    def guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        # the wildcard addresses name this machine's own interfaces (a receiver listening), never a lookup
        if not _is_loopback(host) and host not in ("0.0.0.0", "::"):
            raise NetworkAccessError(f"DNS lookup attempted in a test: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo  # type: ignore[assignment]
    try:
        import pydicom.data.data_manager as data_manager

        def no_download(name: str, *args: object, **kwargs: object) -> Path:
            raise NetworkAccessError(f"pydicom tried to download test file {name!r}")

        data_manager.data_path_with_download = no_download  # type: ignore[assignment]
    except ImportError:
        pass
    yield
    socket.socket.connect = real_connect  # type: ignore[method-assign]
    socket.getaddrinfo = real_getaddrinfo


@pytest.fixture(autouse=True, scope="session")
def _no_machine_wide_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests' settings are their own: a workstation's machine-wide zsmed settings (/etc/zsmed/site.json,
    which IT may have deployed where the tests run) are not read; a test that wants one sets its own."""
    from zsmed.site import MACHINE_SITE_ENV

    before = os.environ.get(MACHINE_SITE_ENV)
    os.environ[MACHINE_SITE_ENV] = str(tmp_path_factory.mktemp("machine") / "no-machine-wide-settings.json")
    yield
    if before is None:
        os.environ.pop(MACHINE_SITE_ENV, None)
    else:
        os.environ[MACHINE_SITE_ENV] = before


def dicom_test_files() -> list[Path]:
    """Every DICOM test file on disk: pydicom's own and the pydicom-data package's (no download)."""
    from zsmed.demo import embedded_dicom_folders

    files = []
    for root in embedded_dicom_folders():
        files.extend(p for p in root.rglob("*") if p.is_file() and not p.name.endswith((".py", ".pyc", ".json")))
    return sorted(files)


def dicom_test_file(name: str) -> Path:
    matches = [p for p in dicom_test_files() if p.name == name]
    if not matches:
        pytest.skip(f"DICOM test file {name} not on this machine")
    return matches[0]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture()
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZSMED_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ZSMED_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def data_subset(src: Path, dst: Path, per_class: int) -> Path:
    """A folder of symlinks to the first images of each class, with their metadata rows."""
    with (src / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    taken: dict[str, int] = {}
    kept = []
    for row in rows:
        label = row["file"].split("/")[0]
        if taken.get(label, 0) >= per_class:
            continue
        taken[label] = taken.get(label, 0) + 1
        (dst / label).mkdir(parents=True, exist_ok=True)
        os.symlink(src / row["file"], dst / row["file"])
        kept.append(row)
    with (dst / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return dst
