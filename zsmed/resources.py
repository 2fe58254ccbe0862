"""Where shipped resources (checkpoints, descriptions, attribute tables, icons) live."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from zsmed.errors import InputFileError


def resources_dir() -> Path:
    """The resources folder: $ZSMED_RESOURCES, the source checkout's, or the installed copy."""
    candidates = []
    if env := os.environ.get("ZSMED_RESOURCES"):
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parents[1] / "resources")
    candidates.append(Path(sys.prefix) / "share" / "zsmed" / "resources")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise InputFileError("the zsmed resources folder is missing; reinstall zsmed", path=candidates[0])


def resource_path(*parts: str) -> Path:
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise InputFileError("shipped resource not found; reinstall zsmed", path=path)
    return path
