"""Logging set-up: one logger tree under 'zsmed', a rotating file in the user data dir."""

from __future__ import annotations

import logging
import logging.handlers

from zsmed.paths import user_data_dir

LOGGER_NAME = "zsmed"


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")


def configure_logging(verbose: bool = False, to_file: bool = True) -> None:
    root = logging.getLogger(LOGGER_NAME)
    if root.handlers:
        return
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    if to_file:
        try:
            handler = logging.handlers.RotatingFileHandler(
                user_data_dir() / "zsmed.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
            )
        except OSError:
            return  # a read-only profile must not stop the app; console logging still works
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
