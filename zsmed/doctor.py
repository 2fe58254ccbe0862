"""``zsmed doctor``: is this workstation's installation fit to run zsmed, and if not, why not.

Hospital IT asks "why does zsmed not work on PC 37?"; the answer is one of a few things: settings
that do not parse, a folder that cannot be written, a case log whose audit chain broke, a model file
damaged on its way over, a missing engine or codec. Each check here reads the real state of one of
them and says so in one ``Check`` (``ok``, ``warning`` or ``FAIL``) with the fix where there is one.

Rules the checks keep, because the doctor runs on the PC that is already in trouble:

- nothing is written, except a temporary file (deleted at once) that proves a folder writable; no
  folder is created (``zsmed.paths`` is asked where the folders are, not to make them), the case log
  is opened read-only, bundles are read into memory;
- no network, no model is loaded into an engine (``zsmed bundle verify`` does that for one file);
  the whole run takes a few seconds (importing torch is the slowest part);
- importing this module imports no torch and no Qt: torch is absent from runtime-only PCs, and
  whether the desktop app could start is asked of ``importlib.util.find_spec`` alone;
- one check's unexpected error becomes that check's FAIL with the reason, and the others still run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsmed import __version__
from zsmed.errors import ZsmedError

if TYPE_CHECKING:
    from zsmed.site import SiteConfig

OK = "ok"
WARNING = "warning"
FAIL = "FAIL"
STATUSES = (OK, WARNING, FAIL)

CASELOG_WAIT_S = 3.0  # a writer holding the case log: wait this long, not zsmed's usual 10 s
LOW_DISK_BYTES = 500 << 20  # a case log, a feature cache or a model import needs more than this to hand
CASELOG_FILE_NAME = "caselog.sqlite"  # SiteConfig.resolved_caselog_path's default (a test keeps them in step)
MODELS_FOLDER_NAME = "models"  # SiteConfig.resolved_models_folder's default
# GPL-3: deliberately not installed (pyproject.toml); pydicom still lists it as a missing plugin dependency
DELIBERATELY_ABSENT = ("pylibjpeg-libjpeg",)


@dataclass(frozen=True)
class Check:
    """One line of the report: a check's name, ``ok`` / ``warning`` / ``FAIL`` and what it found."""

    name: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    """What several checks need, found once: where the folders are and the settings in force.

    ``site`` holds the defaults when the settings could not be read (``site_error`` says why), so
    that the checks of the case log and the models still look where zsmed would by default."""

    data: Path
    cache: Path
    logs: Path
    site_file: Path
    machine_file: Path | None
    locked: tuple[str, ...]
    site: SiteConfig
    site_error: str | None = None


def find_context() -> Context:
    """The folders (from ``ZSMED_DATA_DIR`` / ``ZSMED_CACHE_DIR`` or the platform's places, none
    created) and the settings in force (machine-wide file, then the reader's own site.json)."""
    from zsmed.paths import user_cache_dir, user_data_dir, user_log_dir
    from zsmed.site import SITE_FILE_NAME, SiteConfig, load_machine_settings, load_site_config, machine_site_file

    data = user_data_dir(create=False)
    site_file = data / SITE_FILE_NAME
    machine_file: Path | None = None
    locked: tuple[str, ...] = ()
    site_error = None
    try:
        machine_file = machine_site_file()
        machine = load_machine_settings(machine_file)
        locked = tuple(sorted(machine.locked))
        site = load_site_config(site_file, machine=machine)
    except ZsmedError as exc:  # a broken settings file names itself and the reason
        site, site_error = SiteConfig(), str(exc)
    return Context(data=data, cache=user_cache_dir(create=False), logs=user_log_dir(create=False),
                   site_file=site_file, machine_file=machine_file, locked=locked, site=site, site_error=site_error)


def caselog_path(ctx: Context) -> Path:
    """``SiteConfig.resolved_caselog_path`` without creating the data folder on the way."""
    configured = ctx.site.caselog_path.strip()
    return Path(configured).expanduser() if configured else ctx.data / CASELOG_FILE_NAME


def models_folder(ctx: Context) -> Path:
    """``SiteConfig.resolved_models_folder`` without creating the data folder on the way."""
    configured = ctx.site.models_folder.strip()
    return Path(configured).expanduser() if configured else ctx.data / MODELS_FOLDER_NAME


# --- helpers --------------------------------------------------------------------------------------
def _reason(exc: BaseException) -> str:
    """One line: a zsmed error's own message, else the exception's class and message."""
    if isinstance(exc, ZsmedError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _quietly(function: Callable[[], Any]) -> Any:
    """Import-time warnings of third-party packages (OpenVINO's deprecations) are not the doctor's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function()


def _find_spec(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _dist_version(*names: str) -> str | None:
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _import(module: str) -> tuple[Any | None, str | None]:
    """(the module, None), or (None, why not): not installed, or installed but failing to load (a
    missing DLL, a wheel for another Python) -- the second is the one a traceback would hide."""
    if not _find_spec(module):
        return None, "not installed"
    try:
        return _quietly(lambda: importlib.import_module(module)), None
    except Exception as exc:  # a broken install raises anything: OSError, ImportError, RuntimeError
        return None, f"installed but does not load ({_reason(exc)})"


def _can_create(path: Path) -> str | None:
    """None when ``path`` (a folder not there yet) could be created here, else why not."""
    from zsmed.paths import nearest_existing

    base = nearest_existing(path)
    if not base.is_dir():
        return f"{base} is a file, not a folder"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"{base} is not writable"
    return None


def _write_probe(folder: Path) -> str | None:
    """None when a file can be created in ``folder`` (a temporary one, deleted at once), else why not."""
    try:
        fd, name = tempfile.mkstemp(prefix=".zsmed-doctor-", dir=folder)
    except OSError as exc:
        return f"not writable ({exc.strerror or exc})"
    try:
        os.write(fd, b"zsmed doctor\n")
    except OSError as exc:
        return f"not writable ({exc.strerror or exc})"
    finally:
        os.close(fd)
        Path(name).unlink(missing_ok=True)
    return None


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} TB"


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _names(items: Sequence[str], at_most: int = 4) -> str:
    shown = ", ".join(items[:at_most])
    return shown + (f" and {len(items) - at_most} more" if len(items) > at_most else "")


def _default_note(ctx: Context, configured: str) -> str:
    if ctx.site_error and not configured.strip():
        return " (the site settings could not be read: zsmed's default place)"
    return ""


# --- the checks -----------------------------------------------------------------------------------
def check_version() -> Check:
    """Which zsmed, on which Python and system: the first thing anyone helping needs to know."""
    package = Path(__file__).resolve().parent
    detail = (f"zsmed {__version__} ({package}); Python {platform.python_version()} ({sys.executable}); "
              f"{platform.platform()}")
    if sys.maxsize <= 2**32:
        return Check("version", FAIL, f"{detail}: a 32-bit Python; onnxruntime, OpenVINO and torch need "
                                      f"64-bit: install the 64-bit Python")
    return Check("version", OK, detail)


def check_site(ctx: Context) -> Check:
    """The settings file(s) parse, and what they say that shows in results (site, reader)."""
    if ctx.site_error:
        return Check("site settings", FAIL, f"{ctx.site_error} (zsmed cannot use its settings until this is "
                                            f"fixed; the checks below look at the defaults)")
    site = ctx.site
    where = str(ctx.site_file) if ctx.site_file.is_file() else f"{ctx.site_file} (none saved: the defaults)"
    parts = [where]
    if ctx.machine_file is not None and ctx.machine_file.is_file():
        locks = f", locks {', '.join(ctx.locked)}" if ctx.locked else ""
        parts.append(f"machine-wide {ctx.machine_file}{locks}")
    reader = f"reader {site.reader}" + ("" if site.reader_name.strip() else " (the OS user)")
    parts.append(reader)
    parts.append(f"backend {site.backend}")
    if not site.site_name.strip():
        return Check("site settings", WARNING, "; ".join([*parts, "no site name set: reports will carry no site "
                                                         "name (set it in Settings)"]))
    return Check("site settings", OK, "; ".join([*parts[:1], f"site {site.site_name!r}", *parts[1:]]))


def check_folder(name: str, folder: Path, env: str) -> Check:
    """A folder zsmed writes (settings, case log, models; feature cache; logs) exists and takes a
    file; one not there yet is fine while it can be created."""
    fix = f"set {env} to a writable folder"
    if not folder.exists():
        problem = _can_create(folder)
        if problem:
            return Check(name, FAIL, f"{folder}: does not exist and cannot be created ({problem}); {fix}")
        return Check(name, OK, f"{folder}: not created yet (zsmed makes it at first use; its parent is writable)")
    if not folder.is_dir():
        return Check(name, FAIL, f"{folder}: is a file, not a folder; {fix}")
    problem = _write_probe(folder)
    if problem:
        return Check(name, FAIL, f"{folder}: {problem}; {fix}")
    free = shutil.disk_usage(folder).free
    if free < LOW_DISK_BYTES:
        return Check(name, WARNING, f"{folder}: writable, but only {_size(free)} free on its drive")
    return Check(name, OK, f"{folder}: writable, {_size(free)} free")


def check_caselog(ctx: Context) -> Check:
    """The case log opens, its audit chain and rows verify (as ``zsmed log verify``), and zsmed can
    write to it; none yet is a warning (the first prediction creates it)."""
    from zsmed.store import SCHEMA_VERSION, open_case_log

    path = caselog_path(ctx)
    note = _default_note(ctx, ctx.site.caselog_path)
    share = ": if it should be on a network share, check that the share is connected" \
        if ctx.site.caselog_path.strip() else ""
    if not path.exists():
        folder = path.parent
        if folder.is_dir():
            problem = None if os.access(folder, os.W_OK | os.X_OK) else f"{folder} is not writable"
        else:
            problem = _can_create(folder)
        if problem:
            return Check("case log", FAIL, f"{path}{note}: no case log, and it cannot be created ({problem}): "
                                           f"predictions cannot be logged; set the case log's place in Settings")
        where = "" if folder.is_dir() else f"; its folder does not exist yet{share}"
        return Check("case log", WARNING, f"{path}{note}: no case log yet (created at the first prediction){where}")
    if path.is_dir():
        return Check("case log", FAIL, f"{path}{note}: is a folder, not a case-log file; set the case log's "
                                       f"file in Settings")
    try:
        with open_case_log(path, site=ctx.site, readonly=True, timeout=CASELOG_WAIT_S) as log:
            count = log.count()
            result = log.verify()
            version = log.schema_version
    except ZsmedError as exc:  # not a case log, damaged, newer than this zsmed, busy
        return Check("case log", FAIL, f"{exc}{note}")
    if not result.ok:
        return Check("case log", FAIL, f"{path}{note}: audit chain BROKEN: {result.message} "
                                       f"({_count(count, 'prediction')}; `zsmed log verify` lists the problems; "
                                       f"restore a backup)")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
    head = f", head {result.chain_head[:16]}" if result.chain_head else ""
    detail = f"{path}{note}: {_count(count, 'prediction')}, audit chain intact{head}"
    if version < SCHEMA_VERSION:
        detail += f" (case-log version {version}: upgraded at the next write, a copy kept)"
    if not writable:
        return Check("case log", FAIL, f"{detail}; but it is read-only here (file or folder not writable): "
                                       f"predictions cannot be logged")
    return Check("case log", OK, detail)


def _trust(ctx: Context) -> tuple[bool, list[str], Any]:
    """This PC's trust settings as ``zsmed predict`` and the app apply them: the signature
    requirement, the trusted keys (each checked to load), the revocation list (read, not created)."""
    from zsmed.runtime import format as fmt
    from zsmed.runtime.trust import REQUIRE_ENV, REVOCATION_FILE, env_bool, env_trusted_keys, load_revocations

    require = env_bool(REQUIRE_ENV)
    keys = env_trusted_keys()
    for key in keys:
        fmt.load_public_key(key)
    revocations = load_revocations(ctx.data / REVOCATION_FILE)
    return require, keys, revocations


def check_models(ctx: Context) -> Check:
    """Each model (.zsmb) in the models folder opens as the app opens it: every file against its
    checksum, the signature against this PC's trusted keys, the revocation list. (Loading it into an
    engine is ``zsmed bundle verify``'s job: seconds per model.)"""
    from zsmed.runtime.bundle import read_bundle
    from zsmed.runtime.format import BUNDLE_SUFFIX

    folder = models_folder(ctx)
    note = _default_note(ctx, ctx.site.models_folder)
    if not folder.exists():
        share = " (if it should be on a network share, check that the share is connected)" \
            if ctx.site.models_folder.strip() else ""
        return Check("models", WARNING, f"{folder}{note}: no models folder yet{share}: import a model (.zsmb) in "
                                        f"the app, or copy one there")
    if not folder.is_dir():
        return Check("models", FAIL, f"{folder}{note}: is a file, not a folder; set the models folder in Settings")
    if not os.access(folder, os.R_OK | os.X_OK):
        return Check("models", FAIL, f"{folder}{note}: not readable (permission denied)")
    try:
        files = sorted(p for p in folder.glob(f"*{BUNDLE_SUFFIX}") if p.is_file())
    except OSError as exc:
        return Check("models", FAIL, f"{folder}{note}: cannot be listed ({exc.strerror or exc})")
    if not files:
        return Check("models", WARNING, f"{folder}{note}: no models ({BUNDLE_SUFFIX}) in it; import one in the app")
    try:
        require, keys, revocations = _trust(ctx)
    except ZsmedError as exc:
        return Check("models", FAIL, f"{folder}{note}: {_count(len(files), 'model')} not checked: this PC's trust "
                                     f"settings are broken ({exc})")
    verified = unchecked = unsigned = 0
    failed: list[str] = []
    for path in files:
        try:
            bundle = read_bundle(path, require_signature=require, trusted_keys=keys, revocations=revocations)
        except Exception as exc:  # a damaged file may raise anything the zip and npy readers do
            failed.append(f"{path.name}: {exc.reason if isinstance(exc, ZsmedError) else _reason(exc)}")
            continue
        if bundle.signed_by:
            verified += 1
        elif bundle.signature_present:
            unchecked += 1
        else:
            unsigned += 1
    counts = [f"{n} {what}" for n, what in ((verified, "signed and verified"),
                                            (unchecked, "signed, not checked (no trusted key set here)"),
                                            (unsigned, "unsigned")) if n]
    intact = f"{len(files) - len(failed)} intact" + (f" ({', '.join(counts)})" if counts else "")
    if failed:
        return Check("models", FAIL, f"{folder}{note}: {len(failed)} of {_count(len(files), 'model')} cannot be used: "
                                     f"{'; '.join(failed[:5])}{' ...' if len(failed) > 5 else ''}; {intact}")
    return Check("models", OK, f"{folder}{note}: {_count(len(files), 'model')}, files intact ({', '.join(counts)})")


def check_runtime(ctx: Context) -> Check:
    """The engines that run models (onnxruntime, OpenVINO) load, and the one the settings name is
    among them; the case log's writer (sqlite-utils) and the DICOM report writer (highdicom)."""
    engines: dict[str, str | None] = {}  # module -> why it cannot run (None: it can)
    lines: list[str] = []
    broken = False
    for label, module in (("onnxruntime", "onnxruntime"), ("OpenVINO", "openvino")):
        loaded, problem = _import(module)
        engines[module] = problem
        if loaded is None:
            lines.append(f"{label} {problem}")
            broken = broken or problem != "not installed"
        else:
            version = _dist_version(module) or str(getattr(loaded, "__version__", "?")).split("-")[0]
            lines.append(f"{label} {version}")
    backend = ctx.site.backend
    usable = [m for m, problem in engines.items() if problem is None]
    extras = []
    failures = []
    if not _find_spec("sqlite_utils"):
        failures.append("sqlite-utils is not installed: predictions cannot be logged (pip install 'zsmed[runtime]')")
    if not _find_spec("highdicom"):
        extras.append("highdicom is not installed: no DICOM reports (SR) for PACS (pip install 'zsmed[runtime]')")
    detail = "; ".join(lines)
    if not usable:
        return Check("runtime", FAIL, f"{detail}: no engine to run models here; pip install 'zsmed[runtime]'")
    if backend != "auto" and backend not in usable:
        failures.insert(0, f"the site's backend setting is {backend}, which cannot run here ({engines[backend]}); "
                           f"set the backend to auto in Settings, or install it")
    if broken:  # auto passes over it to the other engine; the one named in the settings is a failure above
        extras.insert(0, "an engine is installed but does not load: reinstall it")
    detail += f"; backend {backend}" + (f" (uses {' or '.join(usable)})" if backend == "auto" else "")
    if failures:
        return Check("runtime", FAIL, "; ".join([detail, *failures, *extras]))
    if extras:
        return Check("runtime", WARNING, "; ".join([detail, *extras]))
    return Check("runtime", OK, detail)


def check_building() -> Check:
    """torch loads (a CPU build, as the project pins) and the default encoders' weights are installed:
    what building classifiers needs; running bundles needs none of it."""
    from zsmed.encoders import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER, LITE_BASES, describe_encoders
    from zsmed.encoders.packages import lite_weights_path, minilm_folder

    if not _find_spec("torch"):
        return Check("building", WARNING, "torch is not installed: building classifiers needs the train extra "
                                          "(pip install 'zsmed[train]'); running bundles works")
    torch, problem = _import("torch")
    if torch is None:
        return Check("building", FAIL, f"torch is {problem}: building classifiers fails; reinstall the CPU wheel "
                                       f"(installer/dev.sh); running bundles works")
    cuda = getattr(getattr(torch, "version", None), "cuda", None)
    parts = [f"torch {torch.__version__} ({'CUDA ' + str(cuda) + ' build' if cuda else 'CPU build'})"]
    infos = {info.name: info for info in describe_encoders() if not info.is_prefix}
    image, text = infos.get(DEFAULT_IMAGE_ENCODER), infos.get(DEFAULT_TEXT_ENCODER)
    failures, warnings_ = [], []
    if image is None or not image.available:
        failures.append(f"the default image encoder {DEFAULT_IMAGE_ENCODER} is unavailable "
                        f"({image.reason if image else 'not registered'}): nothing can be built")
    elif DEFAULT_IMAGE_ENCODER in LITE_BASES:
        parts.append(f"{DEFAULT_IMAGE_ENCODER} weights {lite_weights_path(DEFAULT_IMAGE_ENCODER)}")
    if text is None or not text.available:
        warnings_.append(f"the text encoder {DEFAULT_TEXT_ENCODER} is unavailable "
                         f"({text.reason if text else 'not registered'}): no classifiers from descriptions")
    else:
        parts.append(f"{DEFAULT_TEXT_ENCODER} {minilm_folder()}")
    available = sum(info.available for info in infos.values())
    parts.append(f"{available} of {len(infos)} encoders available (zsmed encoders list)")
    if cuda:
        warnings_.append("a CUDA build of torch: zsmed computes on the CPU and the project pins the CPU wheel "
                         "(installer/dev.sh); it works, at gigabytes more disk")
    if failures:
        return Check("building", FAIL, "; ".join([*parts, *failures, *warnings_]))
    return Check("building", WARNING if warnings_ else OK, "; ".join([*parts, *warnings_]))


def check_codecs() -> Check:
    """Which compressed DICOM transfer syntaxes decode here, from pydicom's own plugin registry:
    a missing codec shows as "no installed codec" on the files that need it, so name them now."""
    import pydicom
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID, AllTransferSyntaxes

    plugins: set[str] = set()
    decodable: list[str] = []
    undecodable: list[str] = []
    missing: dict[str, list[str]] = {}
    for value in AllTransferSyntaxes:
        uid = UID(value)
        if not uid.is_compressed:
            continue
        try:
            decoder = get_decoder(uid)
        except NotImplementedError:  # video and the like: no pydicom decoder anywhere, nothing to install
            continue
        plugins.update(decoder.available_plugins)
        (decodable if decoder.is_available else undecodable).append(uid.name)
        for line in decoder.missing_dependencies:
            if any(name in line for name in DELIBERATELY_ABSENT):
                continue
            missing.setdefault(line, []).append(uid.name)
    head = f"pydicom {pydicom.__version__}; plugins {', '.join(sorted(plugins)) or 'none'}"
    problems = []
    if undecodable:
        problems.append(f"NO codec for {_names(undecodable)}: such images cannot be shown or classified")
    for line, names in sorted(missing.items()):  # pydicom's "gdcm - requires gdcm>=3.0.10"
        plugin, _, needs = line.partition(" - requires ")
        what = f"the {plugin} codec is missing (it needs {needs})" if needs else f"the {line}"
        problems.append(f"{what} for {_names(names)}")
    if problems:
        return Check("DICOM codecs", WARNING, "; ".join([head, *problems, "reinstall zsmed's codecs: pip install "
                                                         "python-gdcm pylibjpeg pylibjpeg-openjpeg pylibjpeg-rle "
                                                         "pyjpegls"]))
    return Check("DICOM codecs", OK, f"{head}; all {len(decodable)} compressed transfer syntaxes decode")


def check_display() -> Check:
    """Could the desktop app open a window here: its Qt packages installed (asked of importlib, not
    imported) and, on Linux, a display to show it on."""
    desktop = {"PySide6": "PySide6", "superqt": "superqt", "pyqtgraph": "pyqtgraph", "qtawesome": "qtawesome"}
    absent = [name for name, module in desktop.items() if not _find_spec(module)]
    if "PySide6" in absent:
        return Check("display", WARNING, "the desktop app is not installed (pip install 'zsmed[desktop]'); the "
                                         "command line works")
    parts = [f"PySide6 {_dist_version('PySide6-Essentials', 'PySide6') or '?'}"]
    problems = []
    if absent:
        problems.append(f"{', '.join(absent)} missing: the desktop app will not start (pip install "
                        f"'zsmed[desktop]')")
    version = _dist_version("PySide6-Essentials", "PySide6")
    if version and tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) >= (6, 12):
        problems.append(f"PySide6 {version} aborts the app after a few thousand signals (bool_dealloc); "
                        f"install pyside6-essentials<6.12")
    qpa = os.environ.get("QT_QPA_PLATFORM", "").strip()
    if sys.platform.startswith("linux"):
        screens = [f"{v}={os.environ[v]}" for v in ("DISPLAY", "WAYLAND_DISPLAY") if os.environ.get(v, "").strip()]
        if screens:
            parts.append(f"display {', '.join(screens)}")
        elif qpa in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
            parts.append(f"no display, QT_QPA_PLATFORM={qpa}")
        else:
            problems.append("no display (DISPLAY and WAYLAND_DISPLAY unset): the desktop app cannot open a "
                            "window in this session; the command line works")
    else:
        parts.append("the desktop app opens in the signed-in user's session")
    if qpa and not sys.platform.startswith("linux"):
        parts.append(f"QT_QPA_PLATFORM={qpa}")
    return Check("display", WARNING if problems else OK, "; ".join([*parts, *problems]))


def check_signing(ctx: Context) -> Check:
    """The site's signing key (models built here are signed with it) loads; the trusted public keys
    and the signature requirement that decide which models this PC accepts; the revocation list."""
    from zsmed.runtime import format as fmt
    from zsmed.runtime.trust import (
        KEYS_ENV,
        REQUIRE_ENV,
        REVOCATION_FILE,
        env_bool,
        env_trusted_keys,
        load_revocations,
    )

    parts: list[str] = []
    failures: list[str] = []
    key = ctx.site.signing_key.strip()
    if not key:
        parts.append("no signing key: models built here are not signed")
    else:
        try:
            private = fmt.load_private_key(Path(key).expanduser())
            parts.append(f"signing key {Path(key).expanduser()} (key id "
                         f"{fmt.key_fingerprint(fmt._raw_public(private.public_key()))})")
        except ZsmedError as exc:
            failures.append(f"the site's signing key cannot be used: {exc}; building a model fails until it is "
                            f"fixed in Settings")
    keys = env_trusted_keys()
    ids = []
    for public in keys:
        try:
            ids.append(fmt.key_fingerprint(fmt._raw_public(fmt.load_public_key(public))))
        except ZsmedError as exc:
            failures.append(f"trusted key in {KEYS_ENV}: {exc}: every model is refused until it is fixed")
    if keys:
        parts.append(f"{len(keys)} trusted key(s) in {KEYS_ENV}" + (f" ({', '.join(ids)})" if ids else "") +
                     ": models must be signed by one of them")
    else:
        parts.append(f"no trusted keys ({KEYS_ENV} unset): signatures are not checked")
    try:
        require = env_bool(REQUIRE_ENV)
    except ZsmedError as exc:
        failures.append(str(exc))
    else:
        if require and not keys:
            failures.append(f"{REQUIRE_ENV} requires signatures but no trusted key is set: every model is refused")
        elif require:
            parts.append("signatures required")
    revoked_file = ctx.data / REVOCATION_FILE
    try:
        revoked = load_revocations(revoked_file)
        parts.append(f"revoked: {len(revoked.keys)} keys, {len(revoked.bundles)} models" +
                     (f" ({revoked_file})" if revoked_file.is_file() else ""))
    except ZsmedError as exc:
        failures.append(f"{exc}: every model is refused until it is fixed")
    if failures:
        return Check("signing", FAIL, "; ".join([*parts, *failures]))
    if not _find_spec("cryptography"):  # keys configured have failed to load above, saying why
        return Check("signing", WARNING, "; ".join([*parts, "the cryptography package is not installed: signed "
                                                    "models cannot be checked (pip install 'zsmed[runtime]')"]))
    return Check("signing", OK, "; ".join(parts))


# --- running them ---------------------------------------------------------------------------------
def check_pacs(ctx: Context) -> Check:
    """The PACS results are sent to, as set, and whether the DICOM network library is here. The doctor does
    not contact it (no network here): ``zsmed echo`` does, and says what fails."""
    node = ctx.site.pacs_node() if ctx.site_error is None else None
    receiving = ctx.site.receiver_config() if ctx.site_error is None else None
    heard = (f"; receiving as {receiving.ae_title} on port {receiving.port} into {receiving.folder}"
             + (f" from {', '.join(receiving.allowed_callers)}" if receiving.allowed_callers else " from any caller")
             if receiving is not None else "")
    if node is None and receiving is None:
        return Check("PACS", OK, "none set: results are saved as files for the PACS (set one in the app's Settings "
                                 "to send them)")
    if not _find_spec("pynetdicom"):
        return Check("PACS", FAIL, "a PACS is set but the DICOM network library is missing: nothing can be sent or "
                                   "received; reinstall zsmed's runtime: pip install pynetdicom")
    tls = node.tls if node is not None else (receiving.tls if receiving is not None else None)
    if tls is not None:
        from zsmed.errors import PacsError

        try:
            tls.client_context()  # reads the certificate files: a missing or unreadable one is said now
        except PacsError as exc:
            return Check("PACS", FAIL, f"{exc.reason}: nothing can be sent or received over TLS; fix the settings' "
                                       "pacs_tls_* paths")
    if node is None:
        return Check("PACS", OK, f"none to send to{heard}")
    sending = "what is saved for it is sent at once" if ctx.site.pacs_send_saved else "sent on request"
    if ctx.site.pacs_commit:
        sending += (", its storage commitment asked for" if ctx.site.receive_port.strip() else
                    ", its storage commitment asked for (set a port to receive on: most PACS answer there)")
    return Check("PACS", OK, f"{node} as {node.calling_ae}, {sending}; check the connection with: zsmed echo{heard}")


def check_ocr() -> Check:
    """Tesseract, which finds text burned into the pixels (de-identified exports, ``zsmed find-text``)."""
    from zsmed.dicom.text_in_pixels import ocr_program

    program = ocr_program()
    if program is None:
        return Check("OCR", WARNING, "Tesseract is not installed: text burned into images cannot be looked for or "
                                     "blanked by reading it (the areas around an ultrasound scan and fixed bands "
                                     "still can); Debian / Ubuntu: apt-get install tesseract-ocr")
    return Check("OCR", OK, f"Tesseract at {program}")


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check that raises (a case the doctor did not foresee) is that check's FAIL, with the reason."""
    try:
        result = check()
    except Exception as exc:
        return Check(name, FAIL, f"the check could not finish: {_reason(exc)}")
    if result.status not in STATUSES:  # pragma: no cover - a programming error, said plainly
        return Check(name, FAIL, f"the check answered {result.status!r}: {result.detail}")
    return result


def run_checks() -> list[Check]:
    """Every check, in the order a person would look: zsmed itself, its settings and folders, what it
    keeps (case log, models), then the software it stands on."""
    try:
        ctx: Context | None = find_context()
        where = ""
    except Exception as exc:  # no home folder, a data-dir variable that is no path
        ctx, where = None, f"cannot tell where zsmed keeps its files: {_reason(exc)}"

    def needing(name: str, check: Callable[[Context], Check]) -> Check:
        if ctx is None:
            return Check(name, FAIL, where)
        return _guarded(name, lambda: check(ctx))

    from zsmed.paths import CACHE_DIR_ENV, DATA_DIR_ENV

    return [
        _guarded("version", check_version),
        needing("site settings", check_site),
        needing("data folder", lambda c: check_folder("data folder", c.data, DATA_DIR_ENV)),
        needing("cache folder", lambda c: check_folder("cache folder", c.cache, CACHE_DIR_ENV)),
        needing("log folder", lambda c: check_folder("log folder", c.logs, DATA_DIR_ENV)),
        needing("case log", check_caselog),
        needing("models", check_models),
        needing("runtime", check_runtime),
        _guarded("building", check_building),
        _guarded("DICOM codecs", check_codecs),
        _guarded("display", check_display),
        needing("signing", check_signing),
        needing("PACS", check_pacs),
        _guarded("OCR", check_ocr),
    ]


def failed(checks: Sequence[Check]) -> bool:
    return any(check.status == FAIL for check in checks)


def report(checks: Sequence[Check]) -> dict[str, Any]:
    """The JSON form: what IT pastes into a ticket."""
    return {
        "version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "ok": not failed(checks),
        "checks": [check.to_dict() for check in checks],
    }


def format_lines(checks: Sequence[Check]) -> list[str]:
    """One aligned line per check: status, name, detail."""
    width = max((len(check.name) for check in checks), default=0) + 2
    return [f"{check.status:<9}{check.name:<{width}}{check.detail}" for check in checks]
