"""Every bad input gives a clear error or an abstention, never a confident wrong answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.runtime.conftest import read_members, with_zip_version, write_members
from zsmed.errors import BundleError, InputFileError
from zsmed.runtime import format as fmt
from zsmed.runtime.bundle import read_bundle
from zsmed.runtime.predict import load_predictor


def _rebuild(source: Path, target: Path, *, sign_key: Path | None = None, manifest_changes: dict | None = None,
             drop: str | None = None, replace: dict[str, bytes] | None = None) -> Path:
    """A consistent bundle (fresh manifest) from ``source`` with changes applied."""
    members = read_members(source)
    manifest = json.loads(members[fmt.MANIFEST])
    files = {k: v for k, v in members.items() if k not in (fmt.MANIFEST, fmt.SIGNATURE)}
    files.update(replace or {})
    fmt.write_bundle(target, files, opset=manifest["onnx_opset"], sign_key=sign_key, created=manifest["created"])
    if manifest_changes or drop:
        members = read_members(target)
        new_manifest = json.loads(members[fmt.MANIFEST])
        new_manifest.update(manifest_changes or {})
        members[fmt.MANIFEST] = json.dumps(new_manifest).encode()
        if drop:
            members.pop(drop)
        write_members(target, members)
    return target


def test_truncated_bundle(reference_bundle: Path, tmp_path: Path) -> None:
    data = reference_bundle.read_bytes()
    for cut in (len(data) // 2, len(data) - 100):
        bad = tmp_path / f"cut{cut}.zsmb"
        bad.write_bytes(data[:cut])
        with pytest.raises(BundleError, match=r"not a zip archive or is truncated|damaged"):
            read_bundle(bad)


def test_renamed_files_are_refused(tmp_path: Path) -> None:
    image = tmp_path / "photo.zsmb"
    Image.new("RGB", (8, 8)).save(image, format="PNG")
    with pytest.raises(BundleError, match="not a zip archive"):
        read_bundle(image)
    other_zip = write_members(tmp_path / "other.zsmb", {"readme.txt": b"hello"})
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        read_bundle(other_zip)
    with pytest.raises(InputFileError, match="not found"):
        read_bundle(tmp_path / "absent.zsmb")


def test_missing_file(reference_bundle: Path, tmp_path: Path) -> None:
    bad = _rebuild(reference_bundle, tmp_path / "b.zsmb", drop=fmt.IR_BIN)
    with pytest.raises(BundleError, match=r"incomplete: model\.bin missing"):
        read_bundle(bad)


def test_checksum_mismatch(reference_bundle: Path, tmp_path: Path) -> None:
    members = read_members(reference_bundle)
    card = json.loads(members[fmt.CARD])
    card["class_names"] = list(reversed(card["class_names"]))  # a quiet, dangerous edit
    members[fmt.CARD] = json.dumps(card).encode()
    bad = write_members(tmp_path / "b.zsmb", members)
    with pytest.raises(BundleError, match=r"checksum mismatch for model_card\.json"):
        read_bundle(bad)
    members = read_members(reference_bundle)
    weights = bytearray(members[fmt.IR_BIN])
    weights[len(weights) // 2] ^= 0xFF
    members[fmt.IR_BIN] = bytes(weights)
    with pytest.raises(BundleError, match=r"checksum mismatch for model\.bin"):
        read_bundle(write_members(tmp_path / "c.zsmb", members))


def test_unlisted_extra_file(reference_bundle: Path, tmp_path: Path) -> None:
    members = read_members(reference_bundle)
    members["evil.onnx"] = b"x"
    with pytest.raises(BundleError, match=r"does not list: evil\.onnx"):
        read_bundle(write_members(tmp_path / "b.zsmb", members))


def test_future_format_version_and_opset(reference_bundle: Path, tmp_path: Path) -> None:
    newer = {"format_version": fmt.FORMAT_VERSION + 1}
    future = _rebuild(reference_bundle, tmp_path / "f.zsmb", manifest_changes=newer)
    with pytest.raises(BundleError, match="newer than this zsmed reads"):
        read_bundle(future)
    opset = _rebuild(reference_bundle, tmp_path / "o.zsmb", manifest_changes={"onnx_opset": 99})
    with pytest.raises(BundleError, match="opset 99"):
        read_bundle(opset)


def test_window_policy_is_recorded_and_an_unknown_one_refused(reference_bundle: Path, tmp_path: Path) -> None:
    from zsmed.preprocess import DEFAULT_WINDOW

    old = read_bundle(reference_bundle)  # written before the card recorded its window policy
    assert "window" not in old.card["preprocess"] and old.preprocess.window == DEFAULT_WINDOW
    card = json.loads(read_members(reference_bundle)[fmt.CARD])
    card["preprocess"]["window"] = DEFAULT_WINDOW
    same = _rebuild(reference_bundle, tmp_path / "w.zsmb", replace={fmt.CARD: json.dumps(card).encode()})
    assert read_bundle(same).preprocess == old.preprocess
    card["preprocess"]["window"] = "display-v9"  # a policy a later zsmed might add
    future = _rebuild(reference_bundle, tmp_path / "w9.zsmb", replace={fmt.CARD: json.dumps(card).encode()})
    with pytest.raises(BundleError, match=r"unknown window policy 'display-v9' .*update zsmed") as caught:
        read_bundle(future)
    assert str(caught.value).startswith(str(future))


def test_colour_policy_is_read_and_an_unknown_one_refused(reference_bundle: Path, tmp_path: Path) -> None:
    old = read_bundle(reference_bundle)  # written before the card recorded a colour policy
    assert "colour" not in old.card["preprocess"] and old.preprocess.colour == "none"
    card = json.loads(read_members(reference_bundle)[fmt.CARD])
    card["preprocess"]["colour"] = "shades-of-gray"
    balanced = _rebuild(reference_bundle, tmp_path / "c.zsmb", replace={fmt.CARD: json.dumps(card).encode()})
    assert read_bundle(balanced).preprocess.colour == "shades-of-gray"
    card["preprocess"]["colour"] = "retinex-v2"  # a policy a later zsmed might add
    future = _rebuild(reference_bundle, tmp_path / "c2.zsmb", replace={fmt.CARD: json.dumps(card).encode()})
    with pytest.raises(BundleError, match=r"unknown colour policy 'retinex-v2' .*update zsmed") as caught:
        read_bundle(future)
    assert str(caught.value).startswith(str(future))


def test_signatures(reference_bundle: Path, tmp_path: Path) -> None:
    private, public = fmt.generate_keypair(tmp_path / "site")
    assert private.stat().st_mode & 0o077 == 0
    _, other_public = fmt.generate_keypair(tmp_path / "other")
    signed = _rebuild(reference_bundle, tmp_path / "s.zsmb", sign_key=private)
    bundle = read_bundle(signed, require_signature=True, trusted_keys=[public])
    assert bundle.signed_by == fmt.key_fingerprint(
        fmt._raw_public(fmt.load_public_key(public))
    )
    with pytest.raises(BundleError, match="not among this site's trusted keys"):
        read_bundle(signed, require_signature=True, trusted_keys=[other_public])
    # unsigned where required
    with pytest.raises(BundleError, match="not signed, and this site requires signed bundles"):
        read_bundle(reference_bundle, require_signature=True, trusted_keys=[public])
    # a signed bundle altered and re-hashed (consistent manifest) fails the signature
    members = read_members(signed)
    manifest = json.loads(members[fmt.MANIFEST])
    card = json.loads(members[fmt.CARD])
    card["site"] = "tampered"
    members[fmt.CARD] = json.dumps(card).encode()
    manifest["files"][fmt.CARD] = {"sha256": fmt.sha256_hex(members[fmt.CARD]), "size": len(members[fmt.CARD])}
    members[fmt.MANIFEST] = json.dumps(manifest).encode()
    with pytest.raises(BundleError, match="signature is invalid"):
        read_bundle(write_members(tmp_path / "t.zsmb", members), trusted_keys=[public])
    # a broken trusted-key file is reported even for an unsigned bundle (the site's misconfiguration)
    not_a_key = tmp_path / "not_a_key.pub"
    not_a_key.write_text("hello")
    with pytest.raises(BundleError, match=r"not_a_key\.pub: the trusted public key is not a PEM key file"):
        read_bundle(reference_bundle, trusted_keys=[not_a_key])
    # trusted keys configured: an unsigned bundle is refused unless explicitly allowed (testing)
    with pytest.raises(BundleError, match="not signed, and this PC has trusted keys configured"):
        read_bundle(reference_bundle, trusted_keys=[public])
    assert read_bundle(reference_bundle, trusted_keys=[public], allow_unsigned=True).signed_by is None
    # a garbled signature record
    members = read_members(signed)
    members[fmt.SIGNATURE] = b"{not json"
    with pytest.raises(BundleError, match="signature record is malformed"):
        read_bundle(write_members(tmp_path / "g.zsmb", members), trusted_keys=[public])


def test_unloadable_model_is_a_clear_error(reference_bundle: Path, tmp_path: Path) -> None:
    bad = _rebuild(reference_bundle, tmp_path / "m.zsmb", replace={fmt.ONNX: b"\x08\x07garbage"})
    with pytest.raises(BundleError, match="the ONNX model is not a valid ONNX file"):
        load_predictor(bad, backend="onnxruntime")


def test_bad_images_give_errors_or_abstain(reference_bundle: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), (200, 120, 100)).save(tiny)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    text = tmp_path / "notes.dcm"
    text.write_text("not dicom")
    blank = tmp_path / "blank.png"
    Image.new("L", (300, 200), 0).save(blank)
    noise = tmp_path / "noise.png"
    Image.fromarray((np.random.default_rng(0).random((224, 224, 3)) * 255).astype(np.uint8)).save(noise)
    bomb = tmp_path / "bomb.png"  # 48 kB on disk, 400 megapixels once decoded
    Image.new("1", (20000, 20000)).save(bomb, optimize=True)
    predictor = load_predictor(reference_bundle, backend="onnxruntime")
    results = {Path(r.source).name: r for r in predictor.predict_files([tiny, corrupt, text, bomb, blank, noise])}
    for name in ("tiny.png", "corrupt.jpg", "notes.dcm", "bomb.png"):
        assert results[name].error and results[name].label is None and results[name].abstain, name
    assert "too small" in (results["tiny.png"].error or "")
    assert "too large to read safely" in (results["bomb.png"].error or "")
    for name in ("blank.png", "noise.png"):
        assert results[name].abstain and results[name].label is None and results[name].ood_score > 1.0, name


def test_non_finite_output_abstains(reference_bundle: Path) -> None:
    predictor = load_predictor(reference_bundle, backend="onnxruntime")
    size = predictor.preprocess.size
    pixels = np.full((1, 3, size, size), np.nan, dtype=np.float32)
    [result] = predictor._results(["nan"], pixels)
    assert result.abstain and result.label is None


def test_unknown_zip_version_is_a_damaged_bundle(reference_bundle: Path, tmp_path: Path) -> None:
    from zsmed.runtime.check import peek_bundle_id
    from zsmed.runtime.safezip import ZIP_READ_ERRORS

    bad = with_zip_version(reference_bundle, tmp_path / "b.zsmb", 65)
    with pytest.raises(BundleError, match="zip directory is malformed"):
        read_bundle(bad)
    assert peek_bundle_id(bad) is None
    assert NotImplementedError in ZIP_READ_ERRORS  # the models list's peek at a card catches these too
    assert peek_bundle_id(with_zip_version(reference_bundle, tmp_path / "ok.zsmb", 20)) is not None
