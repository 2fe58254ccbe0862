"""Logging set-up: one logger tree under 'zsmed', warnings on the console, a rotating file.

``configure_logging`` may be called more than once (CLI, desktop, tests): it adjusts the levels of
the handlers it installed before instead of stacking duplicates. Chatty third-party loggers are
held at WARNING so a user sees zsmed's messages, not transformers' internals.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

LOGGER_NAME = "zsmed"
LOG_FILE_NAME = "zsmed.log"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LIBRARIES = ("transformers", "huggingface_hub", "PIL", "filelock", "urllib3", "matplotlib", "onnx")

_ROLE = "_zsmed_role"  # attribute marking the handlers configure_logging owns


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (pytest and the desktop app swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


class _ConsoleFormatter(logging.Formatter):
    """Warnings and errors in the command line's own voice (``zsmed: warning: skipped x.jpg: …``), not the
    logger's module path, which a hospital's IT has no use for; debug and info lines (--verbose) keep it."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        level = record.levelname.lower()
        where = "" if record.levelno >= logging.WARNING else f" ({record.name})"
        return f"zsmed: {level}{where}: {text}"


class _RotatingFileHandler(logging.FileHandler):
    """A size-rotated log file (zsmed.log, .1, .2, ...), like ``logging.handlers.RotatingFileHandler``
    but without importing ``logging.handlers`` (and ``socket`` with it): 18 ms of every cold start
    of ``zsmed predict``."""

    def __init__(self, path: Path, max_bytes: int, backup_count: int) -> None:
        super().__init__(path, mode="a", encoding="utf-8")
        self.max_bytes, self.backup_count = max_bytes, backup_count

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.stream is not None and self.stream.tell() >= self.max_bytes:
                self._rollover()
        except OSError:
            pass  # a log that cannot rotate keeps growing rather than losing the record
        super().emit(record)

    def _rollover(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self.stream = None
        base = self.baseFilename
        for index in range(self.backup_count - 1, 0, -1):
            if os.path.exists(f"{base}.{index}"):
                os.replace(f"{base}.{index}", f"{base}.{index + 1}")
        if os.path.exists(base):
            os.replace(base, f"{base}.1")
        self.stream = self._open()


def _owned(logger: logging.Logger, role: str) -> logging.Handler | None:
    return next((h for h in logger.handlers if getattr(h, _ROLE, None) == role), None)


def log_file_path() -> Path:
    from zsmed.paths import user_log_dir

    return user_log_dir() / LOG_FILE_NAME


def configure_logging(verbose: bool = False, to_file: bool = True) -> Path | None:
    """Set up the 'zsmed' logger; returns the log file in use, or None (console only)."""
    root = logging.getLogger(LOGGER_NAME)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    console = _owned(root, "console")
    if console is None:
        console = _StderrHandler()
        setattr(console, _ROLE, "console")
        console.setFormatter(_ConsoleFormatter("%(message)s"))
        root.addHandler(console)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in QUIET_LIBRARIES:
        library = logging.getLogger(name)
        if library.level == logging.NOTSET or library.level < logging.WARNING:
            library.setLevel(logging.WARNING)
    file_handler = _owned(root, "file")
    if not to_file:
        if file_handler is not None:
            root.removeHandler(file_handler)
            file_handler.close()
        return None
    if isinstance(file_handler, logging.FileHandler):
        return Path(file_handler.baseFilename)
    try:
        path = log_file_path()
        handler: logging.FileHandler = _RotatingFileHandler(path, max_bytes=2_000_000, backup_count=3)
    except OSError:
        return None  # a read-only profile must not stop the app; console logging still works
    setattr(handler, _ROLE, "file")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    root.addHandler(handler)
    return path


def reset_logging() -> None:
    """Remove the handlers configure_logging installed (tests, or before re-pointing the data dir)."""
    root = logging.getLogger(LOGGER_NAME)
    for handler in list(root.handlers):
        if getattr(handler, _ROLE, None):
            root.removeHandler(handler)
            handler.close()
