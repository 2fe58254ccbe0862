from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file


def data(name: str) -> str:
    """A pydicom / pydicom-data test file, found locally (never downloaded)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"test file {name} not available offline")
    return str(path)


@pytest.fixture(autouse=True)
def _quiet_pydicom() -> None:
    warnings.filterwarnings("ignore", module="pydicom")


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return tmp_path
