"""The bundle format: file names, versions, manifest and Ed25519 signatures (no torch).

A bundle (``.zsmb``) is a zip holding ``manifest.json`` (SHA-256 and size of every other file, the
format version, the ONNX opset), ``model_card.json``, ``model.onnx`` (graph only: its weights are
external data pointing into ``model.bin``), the OpenVINO IR ``model.xml`` + ``model.bin``, an
optional INT8 IR ``model_int8.xml`` + ``model_int8.bin``, ``ood.npz`` (support-set statistics of
the out-of-distribution gate) and optionally ``signature.json`` (Ed25519 over the exact bytes of
``manifest.json``, so the signature covers every file through its hash). See ``export/SPEC.md``.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsmed.digest import sha256_hex
from zsmed.errors import BundleError, input_file_error

FORMAT_NAME = "zsmed-bundle"
FORMAT_VERSION = 1  # bump on any change an older reader would misread
BUNDLE_SUFFIX = ".zsmb"

MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
CARD = "model_card.json"
ONNX = "model.onnx"
IR_XML = "model.xml"
IR_BIN = "model.bin"
INT8_XML = "model_int8.xml"
INT8_BIN = "model_int8.bin"
OOD = "ood.npz"
REQUIRED_FILES = (CARD, ONNX, IR_XML, IR_BIN, OOD)
OPTIONAL_FILES = (INT8_XML, INT8_BIN)

# ONNX opsets this runtime is tested with; onnxruntime >= 1.17 implements all of them.
MIN_OPSET = 13
MAX_OPSET = 21
INPUT_NAME = "pixels"
OUTPUT_LOGITS = "logits"
OUTPUT_EMBEDDING = "embedding"

# Limits checked before anything is inflated (zip bombs, wrong files): one member, all members
# together, and the small members read first. A Lite0 bundle is ~14 MB, Lite2 ~25 MB.
MAX_MEMBER_BYTES = 256 << 20
MAX_TOTAL_BYTES = 384 << 20
MAX_MANIFEST_BYTES = 1 << 20
MAX_SIGNATURE_BYTES = 64 << 10
MAX_OOD_BYTES = 80 << 20


def key_fingerprint(public_raw: bytes) -> str:
    """Short, stable id of an Ed25519 public key: first 16 hex digits of SHA-256 of its raw bytes."""
    return sha256_hex(public_raw)[:16]


def make_manifest(files: dict[str, bytes], *, opset: int, created: str, producer: str) -> bytes:
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": created,
        "producer": producer,
        "onnx_opset": int(opset),
        "files": {name: {"sha256": sha256_hex(data), "size": len(data)} for name, data in sorted(files.items())},
    }
    return json.dumps(manifest, indent=2, sort_keys=True).encode()


def parse_manifest(data: bytes, path: str | Path | None = None) -> dict[str, Any]:
    """Parse and check the manifest's own structure and versions (not the file hashes)."""
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleError(f"the bundle manifest is not valid JSON ({exc})", path=path) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise BundleError("not a zsmed bundle (manifest names another format)", path=path)
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BundleError(f"bundle format version {version!r} is not valid", path=path)
    if version > FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {version} is newer than this zsmed reads ({FORMAT_VERSION}); "
            "update zsmed on this PC",
            path=path,
        )
    opset = manifest.get("onnx_opset")
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise BundleError(
            f"the model uses ONNX opset {opset!r}; this runtime supports opsets {MIN_OPSET}-{MAX_OPSET}",
            path=path,
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) and len(v["sha256"]) == 64
        and isinstance(v.get("size"), int) and not isinstance(v["size"], bool) and v["size"] >= 0
        for v in files.values()
    ):
        raise BundleError("the bundle manifest has no valid file list", path=path)
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise BundleError(f"the bundle manifest lacks {', '.join(missing)}", path=path)
    return manifest


# --- signatures --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignatureInfo:
    algorithm: str
    key_id: str
    signature: bytes


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # the runtime extra carries it; say so instead of a bare traceback
        raise BundleError("checking signatures needs the 'cryptography' package (zsmed[runtime])") from exc
    return ed25519


def generate_keypair(out_stem: str | Path, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``<stem>.key`` (private, PEM PKCS#8, mode 0600) and ``<stem>.pub`` (public, PEM)."""
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    stem = Path(out_stem)
    private_path, public_path = stem.with_suffix(".key"), stem.with_suffix(".pub")
    for target in (private_path, public_path):
        if target.exists() and not overwrite:
            raise BundleError("refusing to overwrite an existing key file", path=target)
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    stem.parent.mkdir(parents=True, exist_ok=True)
    # The private key is created 0600 from the start, never world-readable even briefly.
    import os

    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def _load_pem_key(path: str | Path, what: str, loader: Callable[[bytes], Any], wanted: type) -> Any:
    """A PEM key file of the ``wanted`` Ed25519 type; ``what`` names it in the one-line error."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read the {what} ({input_file_error(path, exc).reason})", path=path) from exc
    from cryptography.exceptions import UnsupportedAlgorithm

    if b"ENCRYPTED" in data:
        raise BundleError(f"the {what} is protected by a passphrase; zsmed signs with an unencrypted key "
                          "(keep it on a drive only the signing account can read)", path=path)
    try:
        key = loader(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BundleError(f"the {what} is not a PEM key file (make one with `zsmed bundle keygen`)",
                          path=path) from exc
    if not isinstance(key, wanted):
        raise BundleError(f"the {what} is not an Ed25519 key", path=path)
    return key


def load_private_key(path: str | Path) -> Any:
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    return _load_pem_key(path, "signing key", lambda data: serialization.load_pem_private_key(data, password=None),
                         ed25519.Ed25519PrivateKey)


def load_public_key(path: str | Path) -> Any:
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    return _load_pem_key(path, "trusted public key", serialization.load_pem_public_key, ed25519.Ed25519PublicKey)


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def sign_manifest(manifest: bytes, private_key: Any) -> bytes:
    signature = private_key.sign(manifest)
    record = {
        "algorithm": "ed25519",
        "key_id": key_fingerprint(_raw_public(private_key.public_key())),
        "signature": base64.b64encode(signature).decode(),
    }
    return json.dumps(record, indent=2, sort_keys=True).encode()


def parse_signature(data: bytes, path: str | Path | None = None) -> SignatureInfo:
    try:
        record = json.loads(data)
        info = SignatureInfo(str(record["algorithm"]), str(record["key_id"]), base64.b64decode(record["signature"]))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, RecursionError) as exc:
        raise BundleError(f"the bundle signature record is malformed ({exc})", path=path) from exc
    if info.algorithm != "ed25519":
        raise BundleError(f"unsupported signature algorithm '{info.algorithm}'", path=path)
    return info


def verify_signature(manifest: bytes, info: SignatureInfo, trusted: list[Any], path: str | Path | None = None) -> str:
    """Check the signature against the trusted keys; returns the key id that verified it."""
    from cryptography.exceptions import InvalidSignature

    by_id = {key_fingerprint(_raw_public(key)): key for key in trusted}
    key = by_id.get(info.key_id)
    if key is None:
        raise BundleError(
            f"the bundle is signed by key {info.key_id}, which is not among this site's trusted keys", path=path
        )
    try:
        key.verify(info.signature, manifest)
    except InvalidSignature:
        raise BundleError("the bundle signature is invalid: the bundle was altered after signing", path=path) from None
    return info.key_id


def write_bundle(
    target: str | Path,
    files: dict[str, bytes],
    *,
    opset: int,
    sign_key: str | Path | None = None,
    created: str = "",
    producer: str = "",
) -> Path:
    """Write ``files`` as a bundle with a fresh manifest (and signature); atomic replace."""
    if not producer:
        from zsmed import __version__

        producer = f"zsmed {__version__}"
    manifest = make_manifest(files, opset=opset, created=created, producer=producer)
    signature = sign_manifest(manifest, load_private_key(sign_key)) if sign_key else None
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        archive.writestr(MANIFEST, manifest, compress_type=zipfile.ZIP_DEFLATED)
        if signature is not None:
            archive.writestr(SIGNATURE, signature, compress_type=zipfile.ZIP_DEFLATED)
        for name, data in sorted(files.items()):
            # Weights are stored, not deflated: fp32 weights shrink by only ~7 % and inflating
            # them would cost cold-start time at every load.
            method = zipfile.ZIP_STORED if name.endswith(".bin") else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=method)
    tmp.replace(target)
    return target
