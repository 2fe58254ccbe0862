"""Reading an SR's content tree back in tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest


def content_items(ds: Any) -> list[Any]:
    """Every content item of an SR tree, depth first."""
    out = []
    for item in ds.get("ContentSequence", []):
        out.append(item)
        out.extend(content_items(item))
    return out


def text_values(ds: Any) -> list[str]:
    """Every TEXT content item's value, depth first."""
    return [str(item.TextValue) for item in content_items(ds) if item.ValueType == "TEXT"]


def dciodvfy_errors(path: Path) -> list[str]:
    """dicom3tools' dciodvfy on a written object: its error lines (warnings are not errors)."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy not installed (Debian package dicom3tools; installer/system-packages.sh installs it)")
    run = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
