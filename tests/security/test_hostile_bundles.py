"""Crafted bundles, as an attacker with a USB stick would make them: each is refused with one clear
message, within 30 s and 1 GB, and on a PC with trusted keys nothing unsigned or mis-signed predicts."""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.runtime.conftest import read_members, reference_bundles, write_members
from tests.security.conftest import assert_within_limits, run_guarded
from zsmed.cli.main import main
from zsmed.errors import BundleError, ConfigError
from zsmed.runtime import format as fmt
from zsmed.runtime.bundle import read_bundle
from zsmed.runtime.trust import Revocations, load_revocations, parse_bool


def rebuild(source: Path, target: Path, *, sign_key: Path | None = None, card: dict[str, Any] | None = None,
            replace: dict[str, bytes] | None = None) -> Path:
    """A consistent bundle (fresh manifest) from ``source``, optionally signed, with changes."""
    members = read_members(source)
    manifest = json.loads(members[fmt.MANIFEST])
    files = {k: v for k, v in members.items() if k not in (fmt.MANIFEST, fmt.SIGNATURE)}
    if card is not None:
        files[fmt.CARD] = json.dumps(card).encode()
    files.update(replace or {})
    return fmt.write_bundle(target, files, opset=manifest["onnx_opset"], sign_key=sign_key,
                            created=manifest["created"])


def card_of(bundle: Path) -> dict[str, Any]:
    return json.loads(read_members(bundle)[fmt.CARD])


def noise_png(path: Path) -> Path:
    Image.fromarray((np.random.default_rng(0).random((224, 224, 3)) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, Path]:
    private, public = fmt.generate_keypair(tmp_path / "site")
    other_private, other_public = fmt.generate_keypair(tmp_path / "other")
    return {"private": private, "public": public, "other_private": other_private, "other_public": other_public}


# --- 1. trust policy ------------------------------------------------------------------------------
def test_stripped_signature_and_raised_threshold_is_refused_where_keys_are_trusted(
        genuine_bundle: Path, tmp_path: Path, keys: dict[str, Path], user_dirs: dict[str, str],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    signed = rebuild(genuine_bundle, tmp_path / "signed.zsmb", sign_key=keys["private"])
    card = card_of(signed)
    card["ood_gate"]["threshold"] = 1e300  # never abstain ...
    forged = rebuild(signed, tmp_path / "forged.zsmb", card=card)  # ... signature dropped, manifest rebuilt
    card["ood_gate"]["threshold"] = 1e5
    forged_sane = rebuild(signed, tmp_path / "forged2.zsmb", card=card)
    noise = noise_png(tmp_path / "noise.png")
    monkeypatch.setenv("ZSMED_TRUSTED_KEYS", str(keys["public"]))  # the site configured its key
    for bundle in (forged, forged_sane):
        assert main(["predict", str(bundle), str(noise), "--backend", "onnxruntime"]) == 2
        err = capsys.readouterr().err
        assert "the bundle is not signed, and this PC has trusted keys configured" in err
    # the genuine signed bundle predicts, and abstains on the noise
    assert main(["predict", str(signed), str(noise), "--backend", "onnxruntime", "--json"]) == 0
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["abstain"] is True and line["label"] is None
    # the absurd threshold is refused even where nothing is signed
    monkeypatch.delenv("ZSMED_TRUSTED_KEYS")
    with pytest.raises(BundleError, match=r"OOD threshold 1e\+300 is outside"):
        read_bundle(forged)


def test_signed_by_another_key_and_the_explicit_testing_override(
        genuine_bundle: Path, tmp_path: Path, keys: dict[str, Path], user_dirs: dict[str, str]) -> None:
    mis_signed = rebuild(genuine_bundle, tmp_path / "other.zsmb", sign_key=keys["other_private"])
    with pytest.raises(BundleError, match=r"signed by key \w+, which is not among this site's trusted keys"):
        read_bundle(mis_signed, trusted_keys=[keys["public"]])
    # --allow-unsigned: accepted as unsigned (signed_by None), never with a failing trusted signature
    assert read_bundle(mis_signed, trusted_keys=[keys["public"]], allow_unsigned=True).signed_by is None
    assert read_bundle(genuine_bundle, trusted_keys=[keys["public"]], allow_unsigned=True).signed_by is None
    signed = rebuild(genuine_bundle, tmp_path / "s.zsmb", sign_key=keys["private"])
    members = read_members(signed)
    manifest = json.loads(members[fmt.MANIFEST])
    manifest["created"] = "tampered"
    members[fmt.MANIFEST] = json.dumps(manifest).encode()
    tampered = write_members(tmp_path / "t.zsmb", members)
    with pytest.raises(BundleError, match="signature is invalid"):
        read_bundle(tampered, trusted_keys=[keys["public"]], allow_unsigned=True)
    # an explicit site requirement is not overridden
    with pytest.raises(BundleError, match="this site requires signed bundles"):
        read_bundle(genuine_bundle, trusted_keys=[keys["public"]], require_signature=True, allow_unsigned=True)
    # a verified bundle records its signer (what the case log stores)
    bundle = read_bundle(signed, trusted_keys=[keys["public"]])
    assert bundle.signed_by == fmt.key_fingerprint(fmt._raw_public(fmt.load_public_key(keys["public"])))


@pytest.mark.parametrize(("value", "expected"), [("TRUE", True), ("on", True), ("Yes", True), ("1", True),
                                                 ("off", False), ("No", False), ("0", False), ("", False)])
def test_boolean_settings_are_parsed_strictly(value: str, expected: bool) -> None:
    assert parse_bool(value, "ZSMED_REQUIRE_SIGNATURE") is expected


@pytest.mark.parametrize("value", ["TRUE", "on", "Yes"])
def test_require_signature_spelled_any_way_is_honoured(genuine_bundle: Path, tmp_path: Path, value: str,
                                                       user_dirs: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ZSMED_REQUIRE_SIGNATURE", value)
    assert main(["bundle", "verify", str(genuine_bundle)]) == 2
    assert "signatures are required but no trusted public key is configured" in capsys.readouterr().err


def test_unknown_boolean_value_is_an_error(genuine_bundle: Path, user_dirs: dict[str, str],
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="'maybe' is not a yes/no value"):
        parse_bool("maybe", "ZSMED_REQUIRE_SIGNATURE")
    monkeypatch.setenv("ZSMED_REQUIRE_SIGNATURE", "ture")
    assert main(["bundle", "verify", str(genuine_bundle)]) == 2
    assert "ZSMED_REQUIRE_SIGNATURE='ture' is not a yes/no value" in capsys.readouterr().err


def test_revoked_key_and_revoked_bundle_are_refused(genuine_bundle: Path, tmp_path: Path, keys: dict[str, Path],
                                                    user_dirs: dict[str, str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    signed = rebuild(genuine_bundle, tmp_path / "s.zsmb", sign_key=keys["private"])
    assert read_bundle(signed, trusted_keys=[keys["public"]]).signed_by
    assert main(["bundle", "revoke", "--key", str(keys["public"])]) == 0
    with pytest.raises(BundleError, match="which this PC has revoked"):
        read_bundle(signed, trusted_keys=[keys["public"]])
    # a bundle revoked by its id, signed or not
    bundle_id = read_bundle(genuine_bundle).bundle_id
    assert main(["bundle", "revoke", "--bundle", str(genuine_bundle)]) == 0
    assert load_revocations().bundles == {bundle_id}
    with pytest.raises(BundleError, match=f"bundle {bundle_id[:16]} is on this PC's revocation list"):
        read_bundle(genuine_bundle)
    assert main(["bundle", "revoke", "--list"]) == 0
    assert bundle_id in capsys.readouterr().out
    # explicit revocations override the file
    assert read_bundle(genuine_bundle, revocations=Revocations()).bundle_id == bundle_id
    # a damaged list is an error, never silently empty
    (Path(user_dirs["ZSMED_DATA_DIR"]) / "revoked.json").write_text("{broken")
    with pytest.raises(BundleError, match="revocation list is malformed"):
        read_bundle(genuine_bundle)


def test_planted_optimised_model_is_never_run_for_a_signed_bundle(
        genuine_bundle: Path, tmp_path: Path, keys: dict[str, Path], user_dirs: dict[str, str]) -> None:
    import hashlib

    import onnxruntime as ort

    from zsmed.runtime.backends import OnnxRuntimeBackend, _cpu_model, _optimized_cache_path, available_cpus

    signed = rebuild(genuine_bundle, tmp_path / "s.zsmb", sign_key=keys["private"])
    bundle = read_bundle(signed, trusted_keys=[keys["public"]])
    unsigned_view = read_bundle(signed)  # the same manifest read without keys: same id, no signer
    assert unsigned_view.bundle_id == bundle.bundle_id and unsigned_view.signed_by is None
    threads = available_cpus()
    assert _optimized_cache_path(bundle, threads, ort.__version__) is None
    planted_at = _optimized_cache_path(unsigned_view, threads, ort.__version__)
    assert planted_at is not None
    key = hashlib.sha256(f"{bundle.bundle_id}|{_cpu_model()}|{threads}|{ort.__version__}".encode()).hexdigest()[:32]
    assert planted_at.name == f"{key}.ort"
    planted_at.parent.mkdir(parents=True, exist_ok=True)
    planted = b"planted model bytes"
    planted_at.write_bytes(planted)
    planted_at.with_suffix(".sha256").write_text(hashlib.sha256(planted).hexdigest() + "\n")
    backend = OnnxRuntimeBackend(bundle, threads)
    logits, _ = backend.run(np.zeros((1, 3, 224, 224), dtype=np.float32))
    assert logits.shape == (1, 4)
    assert planted_at.read_bytes() == planted  # neither read (it would have been deleted as damaged) nor replaced
    assert not planted_at.with_suffix(".tmp.ort").exists()


def _optimised_entry(bundle_path: Path) -> tuple[Path, bytes]:
    """Where the cache keeps ``bundle_path``'s optimised graph, and the bytes written there."""
    import onnxruntime as ort

    from zsmed.runtime.backends import OnnxRuntimeBackend, _optimized_cache_path, available_cpus

    bundle = read_bundle(bundle_path)
    entry = _optimized_cache_path(bundle, available_cpus(), ort.__version__)
    assert entry is not None
    OnnxRuntimeBackend(bundle)
    return entry, entry.read_bytes()


def test_planted_optimised_model_for_an_unsigned_bundle_fails_the_mac_and_is_rebuilt(
        tmp_path: Path, user_dirs: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    import hashlib
    import hmac
    import logging

    from zsmed.runtime.backends import MAC_SUFFIX, OnnxRuntimeBackend

    bundles = reference_bundles()
    if len(bundles) < 2:
        pytest.skip("needs two reference bundles in export/reference")
    genuine_path, other_path = bundles[0], bundles[1]
    genuine = read_bundle(genuine_path)
    assert genuine.signed_by is None
    pixels = np.random.default_rng(1).standard_normal((2, 3, 224, 224)).astype(np.float32)
    expected = OnnxRuntimeBackend(genuine, use_cache=False).run(pixels)[0]
    # a real, valid onnxruntime-optimised model of another bundle, planted where the genuine one's goes
    _, planted = _optimised_entry(other_path)
    entry, _ = _optimised_entry(genuine_path)
    entry.write_bytes(planted)
    entry.with_suffix(".sha256").write_text(hashlib.sha256(planted).hexdigest() + "\n")  # the old sidecar
    forged = hmac.new(b"\0" * 32, planted, hashlib.sha256).hexdigest()  # a MAC under a guessed key
    entry.with_suffix(MAC_SUFFIX).write_text(forged + "\n")
    planted_logits = OnnxRuntimeBackend(read_bundle(other_path), use_cache=False).run(pixels)[0]
    assert not np.allclose(planted_logits, expected, atol=1e-3)  # the plant would change the predictions

    with caplog.at_level(logging.INFO, logger="zsmed"):
        backend = OnnxRuntimeBackend(genuine)
    assert not backend.from_cache
    np.testing.assert_allclose(backend.run(pixels)[0], expected, atol=1e-5)  # the genuine model ran
    assert any("ignoring the optimised-model cache" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    assert entry.read_bytes() != planted  # the plant is gone: rebuilt from the verified bundle
    assert not entry.with_suffix(".sha256").exists()
    # the rebuilt entry is genuine: the next start loads it from the cache and predicts the same
    again = OnnxRuntimeBackend(genuine)
    assert again.from_cache
    np.testing.assert_allclose(again.run(pixels)[0], expected, atol=1e-5)


def test_an_older_releases_entry_without_a_mac_is_rebuilt_quietly(
        genuine_bundle: Path, user_dirs: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """What an earlier zsmed left (an entry and its plain SHA-256 sidecar, no MAC) is never trusted,
    but it is rebuilt without a warning on every PC's first run after an upgrade."""
    import hashlib
    import logging

    from zsmed.runtime.backends import MAC_SUFFIX, OnnxRuntimeBackend

    entry, genuine_bytes = _optimised_entry(genuine_bundle)
    entry.with_suffix(MAC_SUFFIX).unlink()
    entry.with_suffix(".sha256").write_text(hashlib.sha256(genuine_bytes).hexdigest() + "\n")
    with caplog.at_level(logging.INFO, logger="zsmed"):
        backend = OnnxRuntimeBackend(read_bundle(genuine_bundle))
    assert not backend.from_cache  # a plain sidecar authenticates nothing
    ignored = [r for r in caplog.records if "ignoring the optimised-model cache" in r.getMessage()]
    assert ignored and all(r.levelno == logging.INFO for r in ignored)
    assert entry.with_suffix(MAC_SUFFIX).is_file() and not entry.with_suffix(".sha256").exists()


def test_genuine_cache_entry_is_used_and_its_key_lives_outside_the_cache_folder(
        genuine_bundle: Path, user_dirs: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import stat

    from zsmed.runtime.backends import CACHE_KEY_FILE, MAC_SUFFIX, OnnxRuntimeBackend

    bundle = read_bundle(genuine_bundle)
    first = OnnxRuntimeBackend(bundle)
    assert not first.from_cache
    entry, _ = next((p, None) for p in (Path(user_dirs["ZSMED_CACHE_DIR"]) / "ort-optimized").glob("*.ort"))
    assert entry.with_suffix(MAC_SUFFIX).is_file() and not entry.with_suffix(".sha256").exists()
    key_file = Path(user_dirs["ZSMED_DATA_DIR"]) / CACHE_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not list(Path(user_dirs["ZSMED_CACHE_DIR"]).rglob(CACHE_KEY_FILE))
    with caplog.at_level(logging.INFO, logger="zsmed"):
        second = OnnxRuntimeBackend(bundle)
    assert second.from_cache
    assert any("loaded the optimised model from the cache" in r.getMessage() for r in caplog.records)
    # a new profile key (the same cache folder): the old entry no longer authenticates and is rebuilt
    key_file.unlink()
    third = OnnxRuntimeBackend(bundle)
    assert not third.from_cache and entry.is_file()


# --- 2. limits --------------------------------------------------------------------------------
def _zip_with(path: Path, members: dict[str, bytes | int], method: int = zipfile.ZIP_DEFLATED) -> Path:
    """``members``: bytes, or a size in bytes of zeros written in chunks (never held in memory)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            if isinstance(data, int):
                info = zipfile.ZipInfo(name)
                info.compress_type = method
                with archive.open(info, "w", force_zip64=True) as out:
                    chunk = bytes(1 << 20)
                    for _ in range(data >> 20):
                        out.write(chunk)
            else:
                archive.writestr(name, data, compress_type=method)
    return path


def test_members_inflating_to_hundreds_of_megabytes_are_refused_before_inflating(
        genuine_bundle: Path, tmp_path: Path) -> None:
    members: dict[str, bytes | int] = dict(read_members(genuine_bundle))
    big = 300 << 20
    members[fmt.IR_BIN] = big
    manifest = json.loads(members[fmt.MANIFEST])  # type: ignore[arg-type]
    manifest["files"][fmt.IR_BIN]["size"] = big
    members[fmt.MANIFEST] = json.dumps(manifest).encode()
    bomb = _zip_with(tmp_path / "bomb.zsmb", members)
    assert bomb.stat().st_size < 20 << 20
    result = run_guarded(f"""
        from zsmed.runtime.bundle import read_bundle
        from zsmed.errors import BundleError
        try:
            read_bundle({str(bomb)!r})
        except BundleError as exc:
            print(exc)
    """)
    assert_within_limits(result)
    assert "bundle member model.bin is implausibly large (314572800 bytes)" in result.stdout
    assert result.peak_rss_mb < 200


def test_understated_member_size_stops_at_the_declared_size(genuine_bundle: Path, tmp_path: Path) -> None:
    """The zip's directory says 3456 bytes; the deflate stream holds 1 GB of zeros."""
    members: dict[str, bytes | int] = dict(read_members(genuine_bundle))
    members[fmt.OOD] = 1 << 30
    path = _zip_with(tmp_path / "liar.zsmb", members)
    data = bytearray(path.read_bytes())
    declared = 3456
    # rewrite the member's uncompressed size in its local header and its central directory entry
    name = fmt.OOD.encode()
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            name_len = struct.unpack_from("<H", data, start + (26 if signature == b"PK\x03\x04" else 28))[0]
            name_at = start + (30 if signature == b"PK\x03\x04" else 46)
            if bytes(data[name_at : name_at + name_len]) == name:
                struct.pack_into("<I", data, start + size_at, declared)
                _drop_zip64_extra(data, start, signature)
            start += 4
    path.write_bytes(bytes(data))
    manifest = json.loads(members[fmt.MANIFEST])  # type: ignore[arg-type]
    manifest["files"][fmt.OOD]["size"] = declared
    result = run_guarded(f"""
        import json, zipfile
        from zsmed.runtime.safezip import SafeZip
        from zsmed.errors import BundleError
        with SafeZip({str(path)!r}, BundleError, "bundle") as archive:
            print("declared", archive.declared_size("ood.npz"))
            try:
                archive.read("ood.npz", 1 << 28, expected_size={declared})
            except BundleError as exc:
                print(exc)
    """)
    assert_within_limits(result)
    assert f"declared {declared}" in result.stdout
    assert "bundle member ood.npz is damaged (Bad CRC-32" in result.stdout
    assert result.peak_rss_mb < 200


def _drop_zip64_extra(data: bytearray, start: int, signature: bytes) -> None:
    """Blank a zip64 extra field so the 32-bit sizes just written are the ones read."""
    local = signature == b"PK\x03\x04"
    name_len, extra_len = struct.unpack_from("<HH", data, start + (26 if local else 28))
    extra_at = start + (30 if local else 46) + name_len
    pos = extra_at
    while pos + 4 <= extra_at + extra_len:
        header_id, size = struct.unpack_from("<HH", data, pos)
        if header_id == 0x0001:
            struct.pack_into("<H", data, pos, 0xCAFE)  # an unknown extra id: ignored by readers
        pos += 4 + size


def test_signature_is_checked_before_the_other_members_are_read(genuine_bundle: Path, tmp_path: Path,
                                                                keys: dict[str, Path]) -> None:
    signed = rebuild(genuine_bundle, tmp_path / "s.zsmb", sign_key=keys["other_private"])
    members = read_members(signed)
    members[fmt.IR_BIN] = bytes(len(members[fmt.IR_BIN]))  # altered weights, same size
    altered = write_members(tmp_path / "a.zsmb", members)
    with pytest.raises(BundleError, match="not among this site's trusted keys"):
        read_bundle(altered, trusted_keys=[keys["public"]])
    with pytest.raises(BundleError, match=r"checksum mismatch for model\.bin"):
        read_bundle(altered)


@pytest.mark.parametrize("how", ["duplicate", "unlisted", "unknown", "bzip2"])
def test_crafted_zip_names_and_methods_are_refused(genuine_bundle: Path, tmp_path: Path, how: str) -> None:
    members = read_members(genuine_bundle)
    path = tmp_path / f"{how}.zsmb"
    if how == "duplicate":
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
            with pytest.warns(UserWarning, match="Duplicate name"):
                archive.writestr(fmt.ONNX, b"second model")
        message = "two entries named 'model.onnx'"
    elif how == "unlisted":
        write_members(path, {**members, "../../evil.py": b"print('x')"})
        message = r"files its manifest does not list: \.\./\.\./evil\.py"
    elif how == "unknown":
        files = {k: v for k, v in members.items() if k != fmt.MANIFEST}
        files["payload.so"] = b"\x7fELF"
        manifest = json.loads(fmt.make_manifest(files, opset=17, created="", producer=""))
        write_members(path, {**files, fmt.MANIFEST: json.dumps(manifest).encode()})
        message = "manifest lists unknown members: payload.so"
    else:
        _zip_with(path, dict(members), method=zipfile.ZIP_BZIP2)
        message = "uses zip compression method 12"
    with pytest.raises(BundleError, match=message):
        read_bundle(path)


# --- 3. what a bundle says ----------------------------------------------------------------------
def _npz(arrays: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in arrays.items():
            archive.writestr(f"{name}.npy", data)
    return buffer.getvalue()


def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def test_ood_npz_claiming_a_3_gb_array_is_refused_from_its_header(genuine_bundle: Path, tmp_path: Path) -> None:
    with np.load(io.BytesIO(read_members(genuine_bundle)[fmt.OOD])) as data:
        real = {k: data[k] for k in data.files}
    fake = {k: np.lib.format.header_data_from_array_1_0(v) for k, v in real.items()}
    assert fake
    arrays = {}
    for name, value in real.items():
        buffer = io.BytesIO()
        np.save(buffer, value)
        arrays[name] = buffer.getvalue()
    arrays["components"] = _npy_header("<f8", (400, 1_000_000)) + bytes(3 << 20)  # 3.2 GB claimed, 3 MB held
    bundle = rebuild(genuine_bundle, tmp_path / "npz.zsmb", replace={fmt.OOD: _npz(arrays)})
    result = run_guarded(f"""
        from zsmed.runtime.bundle import read_bundle
        from zsmed.errors import BundleError
        try:
            read_bundle({str(bundle)!r})
        except BundleError as exc:
            print(exc)
    """)
    assert_within_limits(result)
    assert "the OOD gate is refused: ood.npz components.npy: its header describes 3200000000 bytes" in result.stdout
    arrays["components"] = _npy_header("|O", (2,)) + b"\x80\x04N."  # a pickle
    with pytest.raises(BundleError, match=re.escape("holds '|O' values; float32 or float64 expected")):
        read_bundle(rebuild(genuine_bundle, tmp_path / "pickle.zsmb", replace={fmt.OOD: _npz(arrays)}))


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.pop("ood_gate"), "has no OOD gate"),
    (lambda c: c["ood_gate"].update(threshold=-1.0), r"OOD threshold -1.0 is outside \(0, 1e\+06\]"),
    (lambda c: c["ood_gate"].update(threshold="inf"), "OOD threshold 'inf' is not a finite number"),
    (lambda c: c.update(class_names=["nv", 7, "bkl", "bcc"]), "class name 2 must be text, not int"),
    (lambda c: c.update(class_names=["nv", "\x1b[31mmel", "bkl", "bcc"]), "holds a control or non-printing"),
    (lambda c: c.update(class_names=["nv", "mel\nFORGED", "bkl", "bcc"]), "holds a control or non-printing"),
    (lambda c: c.update(class_names=["x" * 500, "mel", "bkl", "bcc"]), "is 500 characters long"),
    (lambda c: c.update(class_names=[f"c{i}" for i in range(2_000_000)]), "2 to 1000 classes, this one has 2000000"),
    (lambda c: c["preprocess"].update(size=9000), "preprocess size 9000 is not an image size"),
    (lambda c: c["preprocess"].update(std=[0, 1, 1]), "preprocess std must be positive"),
])
def test_model_card_claims_are_checked(genuine_bundle: Path, tmp_path: Path, change: Any, message: str) -> None:
    card = card_of(genuine_bundle)
    change(card)
    bundle = rebuild(genuine_bundle, tmp_path / "card.zsmb", card=card)
    with pytest.raises(BundleError, match=message) as caught:
        read_bundle(bundle)
    assert str(caught.value).startswith(str(bundle) + ": the model card is refused")


def test_onnx_subgraph_reading_a_local_file_is_refused(genuine_bundle: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"the PC's own file")
    tensor = TensorProto(name="stolen", data_type=TensorProto.UINT8, dims=[17],
                         data_location=TensorProto.EXTERNAL)
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "secret.txt"
    const = helper.make_node("Constant", [], ["y"], value=tensor)
    branch = helper.make_graph([const], "then", [], [helper.make_tensor_value_info("y", TensorProto.UINT8, [17])])
    model = onnx.load_from_string(read_members(genuine_bundle)[fmt.ONNX])
    model.graph.node.append(helper.make_node("If", ["cond"], ["leak"], then_branch=branch, else_branch=branch))
    model.graph.input.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))
    crafted = rebuild(genuine_bundle, tmp_path / "leak.zsmb", replace={fmt.ONNX: model.SerializeToString()})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BundleError, match=re.escape("tensor 'stolen' takes its data from 'secret.txt', not the "
                                                    "bundle's model.bin")):
        read_bundle(crafted)


def test_load_predictor_holds_to_the_pcs_trust_settings_by_default(
        genuine_bundle: Path, tmp_path: Path, keys: dict[str, Path], user_dirs: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The app calls load_predictor(path) with no trust arguments: the PC's keys still apply."""
    from zsmed.runtime.predict import load_predictor

    signed = rebuild(genuine_bundle, tmp_path / "s.zsmb", sign_key=keys["private"])
    monkeypatch.setenv("ZSMED_TRUSTED_KEYS", str(keys["public"]))
    with pytest.raises(BundleError, match="this PC has trusted keys configured"):
        load_predictor(genuine_bundle, backend="onnxruntime")
    assert load_predictor(signed, backend="onnxruntime").bundle.signed_by is not None
    assert load_predictor(genuine_bundle, backend="onnxruntime", trusted_keys=()).bundle.signed_by is None
    monkeypatch.delenv("ZSMED_TRUSTED_KEYS")
    monkeypatch.setenv("ZSMED_REQUIRE_SIGNATURE", "on")
    with pytest.raises(BundleError, match="signatures are required but no trusted public key is configured"):
        load_predictor(genuine_bundle, backend="onnxruntime")
