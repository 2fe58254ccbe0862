"""Open a bundle: read the zip into memory, verify every file against the manifest (and the
signature where required), and refuse anything malformed, tampered, unsigned or too new.

Everything is verified in memory and the backends load from those same bytes, so a file cannot be
swapped between the check and its use (nothing is extracted to disk).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.errors import BundleError, ConfigError, InputFileError
from zsmed.preprocess import PreprocessConfig
from zsmed.runtime import format as fmt


@dataclass
class Bundle:
    path: Path
    manifest: dict[str, Any]
    card: dict[str, Any]
    files: dict[str, bytes]
    bundle_id: str  # SHA-256 of manifest.json: covers every file through its hash
    signed_by: str | None = None  # key id that verified the signature, if checked
    signature_present: bool = False
    extra_members: list[str] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return list(self.card["class_names"])

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig.from_dict(self.card["preprocess"])

    @property
    def has_int8(self) -> bool:
        return fmt.INT8_XML in self.files and fmt.INT8_BIN in self.files

    @property
    def ood(self) -> dict[str, Any]:
        return dict(self.card.get("ood_gate") or {})

    def ood_arrays(self) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(self.files[fmt.OOD]), allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in data.files}


def read_bundle(
    path: str | Path,
    *,
    require_signature: bool = False,
    trusted_keys: Sequence[str | Path] = (),
) -> Bundle:
    """Open and verify a bundle. ``trusted_keys``: PEM public keys; a signature present in the
    bundle is always checked when keys are given, and must exist when ``require_signature``."""
    path = Path(path)
    if not path.exists():
        raise InputFileError("bundle file not found", path=path)
    if path.is_dir():
        raise InputFileError("is a directory, not a bundle file", path=path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise BundleError(
            f"not a zsmed bundle: the file is not a zip archive or is truncated ({exc})", path=path
        ) from exc
    except OSError as exc:
        raise InputFileError(f"cannot read the bundle ({exc})", path=path) from exc
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        if fmt.MANIFEST not in infos:
            raise BundleError("not a zsmed bundle: it has no manifest.json", path=path)
        raw: dict[str, bytes] = {}
        for name, info in infos.items():
            if info.file_size > fmt.MAX_MEMBER_BYTES:
                raise BundleError(f"bundle member {name} is implausibly large ({info.file_size} bytes)", path=path)
            try:
                raw[name] = archive.read(name)
            except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
                # zipfile reports a truncated or corrupted member (bad CRC) here.
                raise BundleError(f"bundle member {name} is damaged ({exc})", path=path) from exc
    manifest_bytes = raw.pop(fmt.MANIFEST)
    manifest = fmt.parse_manifest(manifest_bytes, path)
    signature_bytes = raw.pop(fmt.SIGNATURE, None)

    listed: dict[str, dict[str, Any]] = manifest["files"]
    missing = [name for name in listed if name not in raw]
    if missing:
        raise BundleError(f"the bundle is incomplete: {', '.join(sorted(missing))} missing", path=path)
    unlisted = sorted(name for name in raw if name not in listed)
    if unlisted:
        raise BundleError(f"the bundle holds files its manifest does not list: {', '.join(unlisted)}", path=path)
    for name, entry in listed.items():
        data = raw[name]
        if len(data) != entry["size"] or fmt.sha256_hex(data) != entry["sha256"]:
            raise BundleError(f"checksum mismatch for {name}: the bundle was altered or damaged", path=path)

    signed_by: str | None = None
    # Read the site's trusted keys whatever the bundle: a broken key file is a misconfiguration to
    # hear about now, not on the day the first signed bundle arrives.
    keys = [fmt.load_public_key(key) for key in trusted_keys]
    if signature_bytes is not None and (trusted_keys or require_signature):
        if not trusted_keys:
            raise BundleError("signatures are required but no trusted public key is configured", path=path)
        record = fmt.parse_signature(signature_bytes, path)
        signed_by = fmt.verify_signature(manifest_bytes, record, keys, path)
    elif require_signature:
        raise BundleError("the bundle is not signed, and this site requires signed bundles", path=path)

    try:
        card = json.loads(raw[fmt.CARD])
        if not isinstance(card, dict):
            raise TypeError("not an object")
        PreprocessConfig.from_dict(card["preprocess"])
        names = card["class_names"]
        if not isinstance(names, list) or len(names) < 2:
            raise ValueError("fewer than two classes")
    except ConfigError as exc:  # well formed, but asks for preprocessing this version does not apply
        raise BundleError(exc.reason, path=path) from exc
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"the model card is malformed ({exc})", path=path) from exc
    return Bundle(
        path=path,
        manifest=manifest,
        card=card,
        files=raw,
        bundle_id=fmt.sha256_hex(manifest_bytes),
        signed_by=signed_by,
        signature_present=signature_bytes is not None,
    )
