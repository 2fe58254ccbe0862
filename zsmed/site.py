"""Workstation settings shared by the CLI and the desktop app: one small JSON file in the user
data dir (``site.json``), so that a case-log location or a reader name set in the app is the one
``zsmed log`` and ``zsmed predict --log`` use too.

Window geometry, splitters and recent folders are the app's own business (QSettings); what lives
here is what changes results or where they are kept.

A hospital's IT sets the same settings for every workstation in one machine-wide file of the same
form (``/etc/zsmed/site.json``, ``%PROGRAMDATA%\\zsmed\\site.json`` on Windows, or the file
``ZSMED_SITE_DEFAULTS`` names), with ``"locked": [names]`` for those a reader may not change (a case
log on the department's share, the models folder, the site's name). The machine file gives the
defaults, the reader's own file what they changed, and a locked setting is always the machine's.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsmed.errors import ConfigError, input_file_error
from zsmed.paths import read_text_if_present, replacing, user_data_dir

if TYPE_CHECKING:
    from zsmed.dicom.network import PacsNode, TlsConfig
    from zsmed.dicom.receiver import ReceiverConfig

SITE_FILE_NAME = "site.json"
BOOLEAN_SETTINGS = ("store_patient_id", "pacs_send_saved", "pacs_commit")
MACHINE_SITE_ENV = "ZSMED_SITE_DEFAULTS"
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
    # The PACS results are sent to, as its administrator gives it: AE_TITLE@HOST:PORT; empty: none (files only).
    pacs: str = ""
    pacs_calling_ae: str = ""  # this workstation's AE title as the PACS knows it; empty: ZSMED
    # Whether what is saved for the PACS (reports, measurements, views, key images) is also sent to it at once.
    pacs_send_saved: bool = False
    # Whether the PACS is asked, after each send, to confirm it keeps what was sent (storage commitment); its
    # answer comes to this workstation's receiving port (receive_port) or on the sending connection.
    pacs_commit: bool = False
    # Receiving studies sent from the PACS (this workstation as a DICOM node, AE title pacs_calling_ae):
    # the port ("" : not receiving), the folder they arrive in ("" : <user data dir>/received) and the callers
    # accepted (comma-separated AE titles; "" : any that calls this workstation's AE title).
    receive_port: str = ""
    receive_folder: str = ""
    receive_from: str = ""
    # DICOM over TLS with the PACS (sending, fetching and receiving): the trusted certificate authorities
    # (PEM; set: TLS on), and this workstation's certificate and key (PEM) for mutual TLS and for receiving.
    pacs_tls_ca: str = ""
    pacs_tls_cert: str = ""
    pacs_tls_key: str = ""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.theme not in THEMES:
            raise ConfigError(f"theme must be one of {', '.join(THEMES)}, not {self.theme!r}")
        self.pacs_node()  # a PACS address that cannot be used is said when the settings are read
        self.receiver_config()
        self.tls_config()

    def tls_config(self) -> TlsConfig | None:
        """DICOM over TLS with the PACS where trusted certificates are set; None: plain DICOM."""
        if not self.pacs_tls_ca.strip():
            if self.pacs_tls_cert.strip() or self.pacs_tls_key.strip():
                raise ConfigError("TLS: set the trusted certificates (pacs_tls_ca) with this workstation's own")
            return None
        from zsmed.dicom.network import TlsConfig

        def path(text: str) -> Path | None:
            return Path(text).expanduser() if text.strip() else None

        return TlsConfig(Path(self.pacs_tls_ca).expanduser(), path(self.pacs_tls_cert), path(self.pacs_tls_key))

    def pacs_node(self) -> PacsNode | None:
        """The PACS results are sent to; None where none is set. ``ConfigError`` for one given wrongly."""
        if not self.pacs.strip():
            return None
        from zsmed.dicom.network import PacsNode

        return PacsNode.parse(self.pacs, self.pacs_calling_ae, self.tls_config())

    @property
    def reader(self) -> str:
        return self.reader_name.strip() or os_user()

    def receiver_config(self) -> ReceiverConfig | None:
        """How studies from the PACS are received; None where receiving is off. ``ConfigError`` for a port
        or an AE title given wrongly."""
        if not self.receive_port.strip():
            return None
        from zsmed.dicom.receiver import ReceiverConfig, parse_callers

        try:
            port = int(self.receive_port)
        except ValueError:
            raise ConfigError(f"the port to receive on must be a number, not {self.receive_port!r}") from None
        if not 1 <= port <= 65535:
            raise ConfigError(f"the port to receive on must be 1 to 65535, not {port}")
        return ReceiverConfig(self.resolved_receive_folder(), self.pacs_calling_ae.strip() or "ZSMED", port,
                              allowed_callers=parse_callers(self.receive_from), tls=self.tls_config())

    def resolved_receive_folder(self) -> Path:
        """Where studies from the PACS go (sent to this workstation or fetched): made when the first arrives."""
        return (Path(self.receive_folder).expanduser() if self.receive_folder.strip()
                else user_data_dir(create=False) / "received")

    def resolved_caselog_path(self) -> Path:
        return Path(self.caselog_path).expanduser() if self.caselog_path.strip() else user_data_dir() / "caselog.sqlite"

    def resolved_models_folder(self) -> Path:
        return Path(self.models_folder).expanduser() if self.models_folder.strip() else user_data_dir() / "models"


def site_file() -> Path:
    return user_data_dir() / SITE_FILE_NAME


SETTING_NAMES = tuple(f.name for f in fields(SiteConfig))


def machine_site_file() -> Path:
    """Where IT leaves the machine-wide settings: ``ZSMED_SITE_DEFAULTS``, else the platform's place
    for every user's configuration."""
    raw = os.environ.get(MACHINE_SITE_ENV, "").strip()
    if raw:
        return Path(raw).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "zsmed" / SITE_FILE_NAME
    if sys.platform == "darwin":
        return Path("/Library/Application Support/zsmed") / SITE_FILE_NAME
    return Path("/etc/zsmed") / SITE_FILE_NAME


@dataclass(frozen=True)
class MachineSettings:
    """The machine-wide file's settings (only those it sets) and the names it locks."""

    values: tuple[tuple[str, Any], ...] = ()
    locked: frozenset[str] = frozenset()
    path: Path | None = None  # None: no machine-wide file

    def value(self, name: str) -> Any:
        return dict(self.values).get(name)

    def sets(self, name: str) -> bool:
        return name in dict(self.values)


def _values(raw: Any, path: Path) -> dict[str, Any]:
    """The known settings of a parsed settings file, each checked for its type."""
    if not isinstance(raw, dict):
        raise ConfigError("settings must be a JSON object", path=path)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in SETTING_NAMES:
            continue  # a setting from a newer zsmed (or "locked"): ignored here
        expected = bool if key in BOOLEAN_SETTINGS else str
        if not isinstance(value, expected):
            raise ConfigError(f"setting {key!r} must be {'true/false' if expected is bool else 'text'}", path=path)
        values[key] = value
    return values


def _config(values: dict[str, Any], path: Path) -> SiteConfig:
    try:
        return SiteConfig(**values)
    except ConfigError as exc:
        raise ConfigError(exc.reason, path=path) from exc


def _read_json(path: Path, what: str) -> Any | None:
    text = read_text_if_present(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} file is not valid JSON (line {exc.lineno}); fix or delete it", path=path) from exc


def load_machine_settings(path: Path | None = None) -> MachineSettings:
    """The machine-wide settings (none where there is no such file). A broken file is an error naming
    it: silently ignoring it would put results where the hospital did not mean them to go."""
    path = path or machine_site_file()
    raw = _read_json(path, "machine-wide settings")
    if raw is None:
        return MachineSettings()
    values = _values(raw, path)
    locked = raw.get("locked", [])
    if not isinstance(locked, list) or not all(isinstance(name, str) for name in locked):
        raise ConfigError('"locked" must be a list of setting names', path=path)
    unknown = sorted(set(locked) - set(SETTING_NAMES))
    if unknown:
        raise ConfigError(f"cannot lock unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTING_NAMES)}",
                          path=path)
    _config(values, path)  # the machine's values alone must make valid settings
    return MachineSettings(tuple(sorted(values.items())), frozenset(locked), path)


def load_site_config(path: Path | None = None, *, machine: MachineSettings | None = None) -> SiteConfig:
    """The settings in force: the defaults, then the machine-wide file's, then the reader's saved ones
    (``path``, by default site.json in the user data dir), a locked setting always the machine's. A
    broken file is an error (never silently replaced: it may hold the site's case-log location)."""
    path = path or site_file()
    machine = machine if machine is not None else load_machine_settings()
    values = dict(machine.values)
    raw = _read_json(path, "settings")
    if raw is not None:
        own = _values(raw, path)
        values.update((name, value) for name, value in own.items() if name not in machine.locked)
    return _config(values, path if raw is not None else (machine.path or path))


def save_site_config(config: SiteConfig, path: Path | None = None, *, machine: MachineSettings | None = None) -> Path:
    """Write the reader's own settings atomically (temp file + rename, so a crash never leaves half a
    settings file). What the machine-wide file sets is not copied: a locked setting is never written,
    nor one equal to the machine's, so that what IT changes later reaches every workstation."""
    path = path or site_file()
    machine = machine if machine is not None else load_machine_settings()
    own = {name: value for name, value in asdict(config).items()
           if name not in machine.locked and not (machine.sets(name) and machine.value(name) == value)}
    try:
        with replacing(path) as temporary:
            temporary.write_text(json.dumps(own, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise input_file_error(path, exc) from exc
    return path


def updated(config: SiteConfig, **changes: Any) -> SiteConfig:
    return replace(config, **changes)
