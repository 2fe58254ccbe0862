from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "export" / "reference"


def reference_bundles() -> list[Path]:
    return sorted(REFERENCE.glob("*.zsmb"))


@pytest.fixture(scope="session")
def reference_bundle() -> Path:
    bundles = reference_bundles()
    if not bundles:
        pytest.skip("no reference bundle in export/reference (run scripts/make_reference_bundles.py)")
    return bundles[0]


def read_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture(scope="session")
def shared_data_optional() -> Path | None:
    """The shared data folder, or None when absent (for tests with an optional data part)."""
    from tests.conftest import SHARED_DATA

    return SHARED_DATA if SHARED_DATA.is_dir() else None


def with_card_fields(source: Path, target: Path, **fields: object) -> Path:
    """A consistent, unsigned copy of bundle ``source`` (fresh manifest) whose card has ``fields`` set."""
    import json

    from zsmed.runtime import format as fmt

    members = read_members(source)
    manifest = json.loads(members[fmt.MANIFEST])
    files = {k: v for k, v in members.items() if k not in (fmt.MANIFEST, fmt.SIGNATURE)}
    files[fmt.CARD] = json.dumps({**json.loads(files[fmt.CARD]), **fields}).encode()
    return fmt.write_bundle(target, files, opset=manifest["onnx_opset"], created=manifest["created"])


def with_zip_version(source: Path, target: Path, version: int) -> Path:
    """``source`` with every central-directory entry's "version needed to extract" set to
    ``version`` (one damaged field: zipfile refuses it with NotImplementedError, not BadZipFile)."""
    data = bytearray(source.read_bytes())
    start = 0
    while (at := data.find(b"PK\x01\x02", start)) >= 0:
        data[at + 6:at + 8] = version.to_bytes(2, "little")
        start = at + 4
    target.write_bytes(bytes(data))
    return target

