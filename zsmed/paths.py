"""Per-user folders (platformdirs), overridable for tests and shared workstations."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "zsmed"


def user_data_dir() -> Path:
    path = Path(os.environ.get("ZSMED_DATA_DIR") or platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_cache_dir() -> Path:
    path = Path(os.environ.get("ZSMED_CACHE_DIR") or platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path
