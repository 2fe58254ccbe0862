"""Workstation settings shared by the CLI and the desktop app: one small JSON file in the user
data dir (``site.json``), so that a case-log location or a reader name set in the app is the one
``zsmed log`` and ``zsmed predict --log`` use too.

Window geometry, splitters and recent folders are the app's own business (QSettings); what lives
here is what changes results or where they are kept.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from zsmed.errors import ConfigError, input_file_error
from zsmed.paths import read_text_if_present, user_data_dir

SITE_FILE_NAME = "site.json"
BACKENDS = ("auto", "openvino", "onnxruntime")
THEMES = ("dark", "light")


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no LOGNAME/USER
        return "unknown"


@dataclass(frozen=True)
class SiteConfig:
    """What a site sets once. Empty strings mean "the default" so the file stays portable."""

    site_name: str = ""
    reader_name: str = ""  # empty: the OS user
    # Patient IDs are stored only as a keyed hash unless the site opts in to keep them readable.
    store_patient_id: bool = False
    caselog_path: str = ""  # empty: <user data dir>/caselog.sqlite
    models_folder: str = ""  # empty: <user data dir>/models
    backend: str = "auto"
    theme: str = "dark"
    # The site's Ed25519 private key (``zsmed bundle keygen``) that signs the models built here, so
    # that PCs trusting its public key accept them; empty: models built here are not signed.
    signing_key: str = ""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.theme not in THEMES:
            raise ConfigError(f"theme must be one of {', '.join(THEMES)}, not {self.theme!r}")

    @property
    def reader(self) -> str:
        return self.reader_name.strip() or os_user()

    def resolved_caselog_path(self) -> Path:
        return Path(self.caselog_path).expanduser() if self.caselog_path.strip() else user_data_dir() / "caselog.sqlite"

    def resolved_models_folder(self) -> Path:
        return Path(self.models_folder).expanduser() if self.models_folder.strip() else user_data_dir() / "models"


def site_file() -> Path:
    return user_data_dir() / SITE_FILE_NAME


def _from_mapping(raw: Any, path: Path) -> SiteConfig:
    if not isinstance(raw, dict):
        raise ConfigError("settings must be a JSON object", path=path)
    known = {f.name: f for f in fields(SiteConfig)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            continue  # a setting from a newer zsmed: ignored here, kept by nobody (we rewrite whole)
        expected = bool if key == "store_patient_id" else str
        if not isinstance(value, expected):
            raise ConfigError(f"setting {key!r} must be {'true/false' if expected is bool else 'text'}", path=path)
        values[key] = value
    try:
        return SiteConfig(**values)
    except ConfigError as exc:
        raise ConfigError(exc.reason, path=path) from exc


def load_site_config(path: Path | None = None) -> SiteConfig:
    """The saved settings, or the defaults when none were saved. A broken file is an error (never
    silently replaced: it may hold the site's case-log location)."""
    path = path or site_file()
    text = read_text_if_present(path)
    if text is None:
        return SiteConfig()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"settings file is not valid JSON (line {exc.lineno}); fix or delete it", path=path) from exc
    return _from_mapping(raw, path)


def save_site_config(config: SiteConfig, path: Path | None = None) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a settings file."""
    path = path or site_file()
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(asdict(config), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise input_file_error(path, exc) from exc
    return path


def updated(config: SiteConfig, **changes: Any) -> SiteConfig:
    return replace(config, **changes)
