"""Which bundles this PC trusts: trusted keys, the signature requirement, and revocations.

Policy (``export/SPEC.md``, "Trust"): once a site configures trusted public keys, every bundle must
carry a valid signature by one of them; an unsigned bundle, or one signed by another key, is
refused. ``allow_unsigned`` is the explicit per-command override for testing (``--allow-unsigned``);
it never admits a bundle whose signature by a trusted key fails, nor a revoked one.
A revocation list (``revoked.json`` in the user data folder, edited by ``zsmed bundle revoke``)
names key ids and bundle ids (SHA-256 of ``manifest.json``) that are refused whatever else holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsmed.errors import BundleError, ConfigError, input_file_error
from zsmed.paths import replacing

REVOCATION_FILE = "revoked.json"
REQUIRE_ENV = "ZSMED_REQUIRE_SIGNATURE"
KEYS_ENV = "ZSMED_TRUSTED_KEYS"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def parse_bool(value: str, name: str) -> bool:
    """A boolean setting, strictly: 1/true/yes/on or 0/false/no/off (any case); anything else is an
    error (a typo in a security setting must not silently mean 'off')."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a yes/no value (use 1/true/yes/on or 0/false/no/off)")


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else parse_bool(raw, name)


def env_trusted_keys() -> list[str]:
    return [k for k in os.environ.get(KEYS_ENV, "").split(os.pathsep) if k.strip()]


@dataclass(frozen=True)
class Revocations:
    keys: frozenset[str] = field(default_factory=frozenset)
    bundles: frozenset[str] = field(default_factory=frozenset)


def revocation_file() -> Path:
    from zsmed.paths import user_data_dir

    return user_data_dir() / REVOCATION_FILE


def load_revocations(path: Path | None = None) -> Revocations:
    """The revocation list; none when the file does not exist. A broken file is an error (a
    revocation silently dropped would re-admit what the site refused)."""
    try:
        path = path or revocation_file()
    except OSError:  # no user data folder at all: nothing was ever revoked on this profile
        return Revocations()
    from zsmed.paths import read_text_if_present

    text = read_text_if_present(path)
    if text is None:
        return Revocations()
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise TypeError("not an object")
        keys = raw.get("keys", [])
        bundles = raw.get("bundles", [])
        if not all(isinstance(v, str) for v in [*keys, *bundles]):
            raise TypeError("entries must be text")
    except (ValueError, TypeError, AttributeError) as exc:
        raise BundleError(f"the revocation list is malformed ({exc}); fix or restore it", path=path) from exc
    return Revocations(frozenset(k.strip().lower() for k in keys), frozenset(b.strip().lower() for b in bundles))


def save_revocations(revocations: Revocations, path: Path | None = None) -> Path:
    path = path or revocation_file()
    data: dict[str, Any] = {"keys": sorted(revocations.keys), "bundles": sorted(revocations.bundles)}
    try:
        with replacing(path) as temporary:
            temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise input_file_error(path, exc) from exc
    return path


def revoke(*, key_id: str | None = None, bundle_id: str | None = None, path: Path | None = None) -> Revocations:
    current = load_revocations(path)
    keys, bundles = set(current.keys), set(current.bundles)
    for value, target, length in ((key_id, keys, 16), (bundle_id, bundles, 64)):
        if value is None:
            continue
        value = value.strip().lower()
        if len(value) != length or any(c not in "0123456789abcdef" for c in value):
            raise ConfigError(f"'{value}' is not a {length}-digit hexadecimal id")
        target.add(value)
    updated = Revocations(frozenset(keys), frozenset(bundles))
    save_revocations(updated, path)
    return updated
