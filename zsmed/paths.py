"""Per-user folders (platformdirs), overridable for tests and shared workstations.

``ZSMED_DATA_DIR`` (settings, logs, built models) and ``ZSMED_CACHE_DIR`` (feature cache; safe to
delete) replace the platform defaults; ``~`` is expanded. Folders are created on first use, and
one that cannot be created is a clear error naming the variable that moves it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import platformdirs

from zsmed.errors import InputFileError, input_file_error

APP_NAME = "zsmed"
DATA_DIR_ENV = "ZSMED_DATA_DIR"
CACHE_DIR_ENV = "ZSMED_CACHE_DIR"


def _ensure(path: Path, env: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(
            f"cannot create the zsmed folder ({exc.strerror or exc}); set {env} to a writable folder", path=path
        ) from exc
    return path


def _configured(env: str, default: str) -> Path:
    raw = os.environ.get(env, "").strip()
    return Path(raw).expanduser() if raw else Path(default)


def user_data_dir(*, create: bool = True) -> Path:
    """``create`` False: only where it is (``zsmed doctor`` reports a folder it does not make)."""
    path = _configured(DATA_DIR_ENV, platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return _ensure(path, DATA_DIR_ENV) if create else path


def user_cache_dir(*, create: bool = True) -> Path:
    path = _configured(CACHE_DIR_ENV, platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    return _ensure(path, CACHE_DIR_ENV) if create else path


def user_log_dir(*, create: bool = True) -> Path:
    """Logs live in the data dir (not platformdirs' log dir) so one variable relocates everything."""
    path = user_data_dir(create=create) / "logs"
    return _ensure(path, DATA_DIR_ENV) if create else path


def read_or_create_secret(path: Path) -> bytes:
    """A per-profile 32-byte key kept in ``path`` as 64 hex digits, created on first use (0600,
    atomically: a second process racing to create it adopts the first one's key).

    Raises OSError when the file cannot be read or created, ValueError when it is damaged."""
    for _ in range(50):
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            _create_secret(path)
            continue
        except UnicodeDecodeError as exc:
            raise ValueError("not 64 hex digits") from exc
        if len(text) == 64:
            try:
                return bytes.fromhex(text)
            except ValueError as exc:
                raise ValueError("not 64 hex digits") from exc
        raise ValueError("not 64 hex digits")
    raise OSError(f"cannot create {path}")


def _create_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process made one first: theirs wins
            os.link(tmp, path)  # atomic
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def replacing(target: Path, *, durable: bool = False) -> Iterator[Path]:
    """A new, empty temporary file beside ``target`` for the block to write; when the block ends without
    an error it takes ``target``'s place in one rename, else it is removed. A reader sees the old file
    or the new one, never half of one, and a crash leaves at most a hidden ``.NAME.*.part`` beside an
    intact ``target``. ``durable``: flushed to the disk before the rename (a power cut after this
    returns keeps the new file). Created as ``open`` creates files (the umask applies; mkstemp's 0600
    would hide a shared settings file from the other accounts that read it). OSError as it comes."""
    target = Path(target)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield temporary
        if durable:
            with open(temporary, "rb+") as written:
                os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def nearest_existing(path: Path) -> Path:
    """``path``, or the nearest folder above it that exists (where a folder still to be made would go: its
    drive's free space, whether it can be written)."""
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path(path.anchor or ".")


def read_text_if_present(path: Path) -> str | None:
    """A small settings file's text, or None when it does not exist (the defaults then apply); any
    other read failure is the one-line ``InputFileError`` naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise input_file_error(path, exc) from exc
    except UnicodeDecodeError as exc:  # overwritten on disk, or another program's binary file
        raise InputFileError(f"not a text file (byte {exc.start} is not UTF-8); fix or delete it", path=path) from exc
