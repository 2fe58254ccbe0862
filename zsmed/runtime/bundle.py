"""Open a bundle: read the zip into memory within limits, verify the signature (where this PC has
trusted keys) and every file against the manifest, check what the card and arrays say, and refuse
anything malformed, tampered, unsigned where signatures are required, revoked, or too new.

Everything is verified in memory and the backends load from those same bytes, so a file cannot be
swapped between the check and its use (nothing is extracted to disk).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.errors import BundleError, ConfigError, InputFileError
from zsmed.preprocess import PreprocessConfig
from zsmed.runtime import format as fmt
from zsmed.runtime.onnxcheck import OnnxFormatError, check_external_data
from zsmed.runtime.ood import OOD_METHOD
from zsmed.runtime.safezip import SafeZip, read_zip_bytes_members
from zsmed.runtime.trust import Revocations, load_revocations
from zsmed.runtime.validate import (
    OOD_ARRAYS,
    CardError,
    check_card,
    check_ood_shapes,
    check_ood_values,
    escape_text,
    npy_header,
)


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
    _ood: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

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
        """The OOD gate statistics, checked when the bundle was read."""
        if self._ood is None:
            self._ood = _checked_ood(self.files[fmt.OOD], self.path)
        return {key: value.copy() for key, value in self._ood.items()}


def read_bundle(
    path: str | Path,
    *,
    require_signature: bool = False,
    trusted_keys: Sequence[str | Path] = (),
    allow_unsigned: bool = False,
    revocations: Revocations | None = None,
) -> Bundle:
    """Open and verify a bundle, reading no more than its manifest declares and checking the
    signature before any other member is read.

    Trust (``export/SPEC.md``, "Trust"): ``trusted_keys`` (PEM public keys) configured means a
    valid signature by one of them is required; ``require_signature`` requires it too (and keys to
    check it). ``allow_unsigned`` is the explicit override for testing: an unsigned bundle, or one
    signed by a key not trusted here, is then read with ``signed_by`` None; a signature by a
    trusted key that fails still refuses the bundle, and so does ``require_signature``.
    ``revocations``: key and bundle ids refused whatever else holds (default: the user's list)."""
    path = Path(path)
    if not path.exists():
        raise InputFileError("bundle file not found", path=path)
    if path.is_dir():
        raise InputFileError("is a directory, not a bundle file", path=path)
    # Read the site's trusted keys whatever the bundle: a broken key file is a misconfiguration to
    # hear about now, not on the day the first signed bundle arrives.
    keys = [fmt.load_public_key(key) for key in trusted_keys]
    revoked = revocations if revocations is not None else load_revocations()
    with SafeZip(path, BundleError, "bundle") as archive:
        if fmt.MANIFEST not in archive.infos:
            raise BundleError("not a zsmed bundle: it has no manifest.json", path=path)
        manifest_bytes = archive.read(fmt.MANIFEST, fmt.MAX_MANIFEST_BYTES)
        manifest = fmt.parse_manifest(manifest_bytes, path)
        listed: dict[str, dict[str, Any]] = manifest["files"]
        bundle_id = fmt.sha256_hex(manifest_bytes)
        # names and sizes first: nothing else is inflated before they are known to be right
        unknown = sorted(name for name in listed if name not in fmt.REQUIRED_FILES + fmt.OPTIONAL_FILES)
        if unknown:
            raise BundleError(f"the bundle manifest lists unknown members: {_names(unknown)}", path=path)
        present = set(archive.names) - {fmt.MANIFEST, fmt.SIGNATURE}
        missing = [name for name in listed if name not in present]
        if missing:
            raise BundleError(f"the bundle is incomplete: {_names(sorted(missing))} missing", path=path)
        unlisted = sorted(name for name in present if name not in listed)
        if unlisted:
            raise BundleError(f"the bundle holds files its manifest does not list: {_names(unlisted)}", path=path)
        for name, entry in listed.items():
            if not 0 <= entry["size"] <= fmt.MAX_MEMBER_BYTES:
                raise BundleError(f"bundle member {name} is implausibly large ({entry['size']} bytes)", path=path)
            if archive.declared_size(name) != entry["size"]:
                raise BundleError(f"checksum mismatch for {name}: the bundle was altered or damaged (the zip "
                                  f"says {archive.declared_size(name)} bytes, the manifest {entry['size']})",
                                  path=path)
        total = sum(entry["size"] for entry in listed.values())
        if total > fmt.MAX_TOTAL_BYTES:
            raise BundleError(f"the bundle's members add up to {total} bytes (at most {fmt.MAX_TOTAL_BYTES})",
                              path=path)
        signature_bytes = (archive.read(fmt.SIGNATURE, fmt.MAX_SIGNATURE_BYTES)
                           if fmt.SIGNATURE in archive.infos else None)
        signed_by = _check_trust(path, manifest_bytes, signature_bytes, keys, require_signature, allow_unsigned)
        if bundle_id in revoked.bundles:
            raise BundleError(f"bundle {bundle_id[:16]} is on this PC's revocation list", path=path)
        if signed_by is not None and signed_by in revoked.keys:
            raise BundleError(f"the bundle is signed by key {signed_by}, which this PC has revoked", path=path)
        raw: dict[str, bytes] = {}
        for name, entry in listed.items():
            data = archive.read(name, fmt.MAX_MEMBER_BYTES, expected_size=entry["size"])
            if fmt.sha256_hex(data) != entry["sha256"]:
                raise BundleError(f"checksum mismatch for {name}: the bundle was altered or damaged", path=path)
            raw[name] = data
    card = _checked_card(raw, path)
    ood_arrays = _checked_ood(raw[fmt.OOD], path)
    try:
        check_external_data(raw[fmt.ONNX], fmt.IR_BIN, len(raw[fmt.IR_BIN]))
    except OnnxFormatError as exc:
        what = "is not a valid ONNX file" if exc.malformed else "is refused:"
        raise BundleError(f"the ONNX model {what} ({exc})" if exc.malformed else f"the ONNX model {what} {exc}",
                          path=path) from exc
    bundle = Bundle(
        path=path,
        manifest=manifest,
        card=card,
        files=raw,
        bundle_id=bundle_id,
        signed_by=signed_by,
        signature_present=signature_bytes is not None,
    )
    bundle._ood = ood_arrays
    return bundle


def _names(names: Sequence[str]) -> str:
    return ", ".join(escape_text(name)[:80] for name in names[:10]) + (" ..." if len(names) > 10 else "")


def _check_trust(path: Path, manifest_bytes: bytes, signature_bytes: bytes | None, keys: list[Any],
                 require_signature: bool, allow_unsigned: bool) -> str | None:
    """The key id that verified the signature, None for an accepted unsigned bundle; else refuse."""
    if require_signature and not keys:
        raise BundleError("signatures are required but no trusted public key is configured", path=path)
    required = require_signature or (bool(keys) and not allow_unsigned)
    if signature_bytes is None:
        if required:
            why = "this site requires signed bundles" if require_signature else \
                "this PC has trusted keys configured, so bundles must be signed"
            raise BundleError(f"the bundle is not signed, and {why} (--allow-unsigned overrides for testing)",
                              path=path)
        return None
    if not keys:
        return None  # nothing to check it against: read as unsigned (``signature_present`` says so)
    record = fmt.parse_signature(signature_bytes, path)
    known = {fmt.key_fingerprint(fmt._raw_public(key)) for key in keys}
    if record.key_id not in known and not required:
        return None  # signed by a key this PC does not trust, explicitly allowed: treated as unsigned
    return fmt.verify_signature(manifest_bytes, record, keys, path)


def _checked_card(raw: dict[str, bytes], path: Path) -> dict[str, Any]:
    try:
        card = json.loads(raw[fmt.CARD])
        if not isinstance(card, dict):
            raise TypeError("not an object")
        PreprocessConfig.from_dict(card["preprocess"])
        check_card(card, ood_method=OOD_METHOD)
    except ConfigError as exc:  # well formed, but asks for preprocessing this version does not apply
        raise BundleError(exc.reason, path=path) from exc
    except CardError as exc:
        raise BundleError(f"the model card is refused: {exc}", path=path) from exc
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, RecursionError) as exc:
        raise BundleError(f"the model card is malformed ({exc})", path=path) from exc
    return card


def _checked_ood(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """ood.npz: its entries' .npy headers (dtype, shape, size) checked before any array is made."""
    members = read_zip_bytes_members(data, BundleError, "ood.npz", path,
                                     {f"{name}.npy" for name in OOD_ARRAYS}, fmt.MAX_OOD_BYTES)
    try:
        shapes = {name[:-4]: npy_header(blob, f"ood.npz {name}")[1] for name, blob in members.items()}
        check_ood_shapes(shapes)
        arrays = {name[:-4]: np.load(io.BytesIO(blob), allow_pickle=False) for name, blob in members.items()}
        check_ood_values(arrays)
    except CardError as exc:
        raise BundleError(f"the OOD gate is refused: {exc}", path=path) from exc
    except (ValueError, OSError, EOFError) as exc:
        raise BundleError(f"the OOD gate statistics are malformed ({exc})", path=path) from exc
    return arrays
