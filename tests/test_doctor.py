"""``zsmed doctor`` on real installations in temporary folders: a fresh one, a case log with
predictions and one tampered with, broken settings, real and damaged model files, folders that
cannot be written, trust settings; every check listed, exit 1 only on a FAIL, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.store.conftest import REFERENCE, ct_file, fake_results
from zsmed import doctor
from zsmed.cli.main import main

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REFERENCE / "ham4_protonet_lite0_v1.zsmb"
NAMES = ["version", "site settings", "data folder", "cache folder", "log folder", "case log", "models", "runtime",
         "building", "DICOM codecs", "display", "signing", "PACS", "OCR"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, dict[str, str]], str]:
    """``zsmed doctor --json``: the exit status, the checks by name, and stderr."""
    code = main(["doctor", "--json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    result = json.loads(out)
    assert [c["name"] for c in result["checks"]] == NAMES
    assert result["ok"] == (code == 0)
    return code, {c["name"]: c for c in result["checks"]}, err


@pytest.fixture()
def data(isolated_dirs: Path) -> Path:
    folder = isolated_dirs / "data"
    folder.mkdir()
    return folder


def write_site(data: Path, **settings: object) -> Path:
    path = data / "site.json"
    path.write_text(json.dumps({"site_name": "Test hospital", **settings}), encoding="utf-8")
    return path


def make_log(path: Path, n: int) -> Path:
    """A case log with ``n`` predictions made through the project's own API, on real files."""
    from PIL import Image

    from zsmed.runtime.bundle import read_bundle
    from zsmed.store import open_case_log

    images = []
    for i in range(n - 1):
        image = path.parent / f"photo{i}.png"
        Image.new("RGB", (32, 32), (10 * i, 80, 160)).save(image)
        images.append(image)
    with open_case_log(path) as log:
        log.record_predictions(read_bundle(BUNDLE), fake_results([*images, ct_file()]))
        assert log.count() == n
    return path


def tamper(path: Path, statement: str) -> None:
    """What someone with the sqlite3 shell could do: drop the guard triggers, then edit a row."""
    conn = sqlite3.connect(path, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute(statement)
    conn.close()


def tree(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every file's size and time, every folder's name; not SQLite's -wal and -shm beside the case log,
    which any reader of a WAL database makes (``zsmed log verify`` too)."""
    return {str(p.relative_to(root)): None if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if not p.name.endswith(("-wal", "-shm"))}


# --- a fresh install --------------------------------------------------------------------------------
def test_fresh_install_passes_with_the_case_log_warning(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, checks, _ = run(capsys)
    assert code == 0
    case_log = checks["case log"]
    assert case_log["status"] == "warning"
    assert case_log["detail"] == f"{data / 'caselog.sqlite'}: no case log yet (created at the first prediction)"
    assert checks["site settings"]["status"] == "warning"
    assert "reports will carry no site name" in checks["site settings"]["detail"]
    assert checks["data folder"]["status"] == "ok"
    assert checks["data folder"]["detail"].startswith(f"{data}: writable")
    assert checks["models"]["status"] == "warning"
    assert "no models folder yet" in checks["models"]["detail"]
    assert checks["version"]["detail"].startswith("zsmed ")


def test_text_output_is_one_aligned_line_per_check(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    lines = out.splitlines()
    assert len(lines) == len(NAMES)
    for line, name in zip(lines, NAMES, strict=True):
        status, rest = line[:9], line[9:]
        assert status.strip() in ("ok", "warning")
        assert rest.startswith(name) and rest[15:16] != " "  # names padded to one column
    assert f"warning  case log       {data / 'caselog.sqlite'}: no case log yet" in out


def test_the_checks_write_and_create_nothing(isolated_dirs: Path) -> None:
    (isolated_dirs / "data").mkdir()
    write_site(isolated_dirs / "data")
    (isolated_dirs / "data" / "models").mkdir()
    shutil.copy(BUNDLE, isolated_dirs / "data" / "models")
    make_log(isolated_dirs / "data" / "caselog.sqlite", 3)
    before = tree(isolated_dirs)
    checks = doctor.run_checks()
    assert not doctor.failed(checks), checks
    assert tree(isolated_dirs) == before  # the probe files are gone; no cache or log folder was made
    assert not (isolated_dirs / "cache").exists()


def test_paths_agree_with_the_site_settings(data: Path) -> None:
    from zsmed.site import SiteConfig

    ctx = doctor.find_context()
    assert ctx.data == data
    assert doctor.caselog_path(ctx) == SiteConfig().resolved_caselog_path()
    assert doctor.models_folder(ctx) == SiteConfig().resolved_models_folder()
    elsewhere = SiteConfig(caselog_path=str(data / "x" / "log.sqlite"), models_folder="~/models")
    ctx = doctor.Context(**{**ctx.__dict__, "site": elsewhere})
    assert doctor.caselog_path(ctx) == elsewhere.resolved_caselog_path()
    assert doctor.models_folder(ctx) == elsewhere.resolved_models_folder()


# --- the case log ----------------------------------------------------------------------------------
def test_a_case_log_with_predictions(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_log(data / "caselog.sqlite", 4)
    write_site(data)
    code, checks, _ = run(capsys)
    assert code == 0
    assert checks["case log"]["status"] == "ok"
    assert checks["case log"]["detail"].startswith(f"{data / 'caselog.sqlite'}: 4 predictions, audit chain intact")
    assert checks["site settings"]["status"] == "ok"
    assert "site 'Test hospital'" in checks["site settings"]["detail"]


def test_a_tampered_case_log_fails_naming_the_row(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_log(data / "caselog.sqlite", 4)
    tamper(path, "UPDATE predictions SET label = 'mel', probabilities = '{}' WHERE id = 3")
    code, checks, _ = run(capsys)
    assert code == 1
    assert checks["case log"]["status"] == "FAIL"
    assert "audit chain BROKEN: predictions row 3 was changed outside zsmed" in checks["case log"]["detail"]
    assert checks["runtime"]["status"] == "ok"  # the others still ran
    assert checks["data folder"]["status"] == "ok"


def test_a_case_log_where_no_folder_is_yet_is_a_warning(data: Path, isolated_dirs: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    where = isolated_dirs / "share" / "zsmed" / "caselog.sqlite"
    write_site(data, caselog_path=str(where))
    code, checks, _ = run(capsys)
    assert code == 0
    assert checks["case log"]["status"] == "warning"
    assert checks["case log"]["detail"].startswith(f"{where}: no case log yet (created at the first prediction); "
                                                   f"its folder does not exist yet")
    assert "network share" in checks["case log"]["detail"]
    assert not where.parent.exists()


def test_a_case_log_that_is_not_one_fails(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data / "caselog.sqlite").write_bytes(b"this is no database" * 100)
    code, checks, _ = run(capsys)
    assert code == 1
    assert checks["case log"]["status"] == "FAIL"
    assert checks["case log"]["detail"].startswith(f"{data / 'caselog.sqlite'}: the case log is damaged (file is not "
                                                   f"a database)")


# --- settings --------------------------------------------------------------------------------------
def test_broken_site_settings_fail_naming_the_file_and_the_rest_run(data: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    site = data / "site.json"
    site.write_text('{"site_name": "x",\n "backend": }', encoding="utf-8")
    code, checks, _ = run(capsys)
    assert code == 1
    detail = checks["site settings"]["detail"]
    assert checks["site settings"]["status"] == "FAIL"
    assert detail.startswith(f"{site}: settings file is not valid JSON (line 2)")
    assert [name for name, c in checks.items() if c["status"] == "FAIL"] == ["site settings"]
    assert "the site settings could not be read" in checks["case log"]["detail"]


def test_a_bad_setting_value_fails(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_site(data, backend="cuda")
    code, checks, _ = run(capsys)
    assert code == 1
    assert checks["site settings"]["status"] == "FAIL"
    assert "backend must be one of" in checks["site settings"]["detail"]
    assert str(data / "site.json") in checks["site settings"]["detail"]


# --- folders ---------------------------------------------------------------------------------------
def test_a_folder_path_that_is_a_file_fails(data: Path, isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    blocker = isolated_dirs / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("ZSMED_CACHE_DIR", str(blocker))
    code, checks, _ = run(capsys)
    assert code == 1
    assert checks["cache folder"] == {"name": "cache folder", "status": "FAIL",
                                      "detail": f"{blocker}: is a file, not a folder; set ZSMED_CACHE_DIR to a "
                                                f"writable folder"}
    assert checks["data folder"]["status"] == "ok"


def test_a_folder_that_cannot_be_created_fails(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = isolated_dirs / "file"
    blocker.write_text("x")
    monkeypatch.setenv("ZSMED_CACHE_DIR", str(blocker / "cache"))
    check = doctor.check_folder("cache folder", blocker / "cache", "ZSMED_CACHE_DIR")
    assert check.status == "FAIL"
    assert "does not exist and cannot be created" in check.detail and "is a file, not a folder" in check.detail


def test_an_unwritable_data_folder_fails(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes read-only folders")
    make_log(data / "caselog.sqlite", 2)
    data.chmod(0o555)
    try:
        code, checks, _ = run(capsys)
    finally:
        data.chmod(0o755)
    assert code == 1
    assert checks["data folder"]["status"] == "FAIL"
    assert checks["data folder"]["detail"].startswith(f"{data}: not writable")
    assert checks["case log"]["status"] == "FAIL"
    assert "read-only here" in checks["case log"]["detail"]


def test_a_read_only_case_log_fails(data: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """What a reader without write permission meets (simulated: root may write anything)."""
    path = make_log(data / "caselog.sqlite", 2)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == path and mode & os.W_OK else real(p, mode))
    code, checks, _ = run(capsys)
    assert code == 1
    assert checks["case log"]["status"] == "FAIL"
    assert checks["case log"]["detail"].startswith(f"{path}: 2 predictions, audit chain intact")
    assert "read-only here (file or folder not writable): predictions cannot be logged" in checks["case log"]["detail"]


def test_a_folder_refusing_files_fails(data: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """What a profile on a read-only share meets (simulated: root may write anything)."""
    real = doctor.tempfile.mkstemp

    def refuse(*args: object, dir: str | Path, **kwargs: object) -> tuple[int, str]:
        if Path(dir) == data:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(doctor.tempfile, "mkstemp", refuse)
    code, checks, _ = run(capsys)
    assert code == 1
    assert checks["data folder"] == {"name": "data folder", "status": "FAIL",
                                     "detail": f"{data}: not writable (Permission denied); set ZSMED_DATA_DIR to a "
                                               f"writable folder"}


# --- models ----------------------------------------------------------------------------------------
def test_a_real_model_is_ok(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data / "models").mkdir()
    shutil.copy(BUNDLE, data / "models")
    code, checks, _ = run(capsys)
    assert code == 0
    assert checks["models"]["status"] == "ok"
    assert checks["models"]["detail"].startswith(f"{data / 'models'}: 1 model, files intact (1 ")


def test_a_damaged_model_fails_naming_the_file(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = data / "models"
    models.mkdir()
    shutil.copy(BUNDLE, models / "good.zsmb")
    raw = bytearray(BUNDLE.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (models / "damaged.zsmb").write_bytes(bytes(raw))
    code, checks, _ = run(capsys)
    assert code == 1
    detail = checks["models"]["detail"]
    assert checks["models"]["status"] == "FAIL"
    assert detail.startswith(f"{models}: 1 of 2 models cannot be used: damaged.zsmb: ")
    assert "good.zsmb" not in detail and detail.endswith("; 1 intact (1 unsigned)")


def test_a_revoked_model_fails(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.runtime.bundle import read_bundle
    from zsmed.runtime.trust import revoke

    (data / "models").mkdir()
    shutil.copy(BUNDLE, data / "models")
    revoke(bundle_id=read_bundle(BUNDLE).bundle_id, path=data / "revoked.json")
    code, checks, _ = run(capsys)
    assert code == 1
    assert f"{BUNDLE.name}: bundle " in checks["models"]["detail"]
    assert "revocation list" in checks["models"]["detail"]
    assert "revoked: 0 keys, 1 models" in checks["signing"]["detail"]


# --- engines and trust -----------------------------------------------------------------------------
def test_the_configured_backend_must_be_installed(data: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    real = doctor._import
    monkeypatch.setattr(doctor, "_import", lambda m: (None, "not installed") if m == "openvino" else real(m))
    write_site(data, backend="openvino")
    code, checks, _ = run(capsys)
    assert code == 1
    assert checks["runtime"]["status"] == "FAIL"
    assert "OpenVINO not installed" in checks["runtime"]["detail"]
    assert "the site's backend setting is openvino, which cannot run here" in checks["runtime"]["detail"]
    write_site(data, backend="auto")
    code, checks, _ = run(capsys)
    assert checks["runtime"]["status"] == "ok"
    monkeypatch.setattr(doctor, "_import", lambda m: (None, "not installed"))
    code, checks, _ = run(capsys)
    assert checks["runtime"]["status"] == "FAIL"
    assert "no engine to run models here" in checks["runtime"]["detail"]


def test_signing_keys_are_read(data: Path, isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.runtime.format import generate_keypair

    private, public = generate_keypair(isolated_dirs / "site")
    write_site(data, signing_key=str(private))
    monkeypatch.setenv("ZSMED_TRUSTED_KEYS", str(public))
    code, checks, _ = run(capsys)
    assert code == 0
    assert checks["signing"]["status"] == "ok"
    assert f"signing key {private} (key id " in checks["signing"]["detail"]
    assert "1 trusted key(s) in ZSMED_TRUSTED_KEYS" in checks["signing"]["detail"]
    not_a_key = isolated_dirs / "not-a-key.pub"
    not_a_key.write_text("hello")
    monkeypatch.setenv("ZSMED_TRUSTED_KEYS", str(not_a_key))
    (data / "models").mkdir()
    shutil.copy(BUNDLE, data / "models")
    code, checks, _ = run(capsys)
    assert code == 1
    assert checks["signing"]["status"] == "FAIL"
    assert f"{not_a_key}: the trusted public key is not a PEM key file" in checks["signing"]["detail"]
    assert checks["models"]["status"] == "FAIL"
    assert "trust settings are broken" in checks["models"]["detail"]


def test_trusted_keys_refuse_an_unsigned_model(data: Path, isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.runtime.format import generate_keypair

    _, public = generate_keypair(isolated_dirs / "site")
    monkeypatch.setenv("ZSMED_TRUSTED_KEYS", str(public))
    (data / "models").mkdir()
    shutil.copy(BUNDLE, data / "models")
    code, checks, _ = run(capsys)
    assert code == 1
    assert f"{BUNDLE.name}: the bundle is not signed" in checks["models"]["detail"]


def test_an_engine_that_does_not_load_fails(data: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    real = doctor._import
    broken = (None, "installed but does not load (OSError: libopenvino.so: cannot open shared object file)")
    monkeypatch.setattr(doctor, "_import", lambda m: broken if m == "openvino" else real(m))
    code, checks, _ = run(capsys)
    assert code == 0  # backend auto: onnxruntime runs the models
    assert checks["runtime"]["status"] == "warning"
    assert "OpenVINO installed but does not load (OSError: libopenvino.so" in checks["runtime"]["detail"]
    assert "backend auto (uses onnxruntime)" in checks["runtime"]["detail"]
    assert "reinstall it" in checks["runtime"]["detail"]
    write_site(data, backend="openvino")
    code, checks, _ = run(capsys)
    assert code == 1
    assert checks["runtime"]["status"] == "FAIL"
    assert "the site's backend setting is openvino, which cannot run here (installed but does not load" \
        in checks["runtime"]["detail"]


# --- codecs and display -------------------------------------------------------------------------
def test_all_codecs_installed(data: Path) -> None:
    check = doctor.check_codecs()
    assert check.status == "ok", check.detail  # zsmed's core depends on every codec the check looks for
    assert "gdcm" in check.detail and "pylibjpeg" in check.detail and "pyjpegls" in check.detail


def test_a_missing_codec_is_named_with_its_transfer_syntaxes(monkeypatch: pytest.MonkeyPatch) -> None:
    """GDCM gone (simulated in pydicom's plugin registry): JPEG Lossless has no other codec here."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLossless, JPEGLosslessSV1

    for uid in (JPEGLossless, JPEGLosslessSV1):
        decoder = get_decoder(uid)
        monkeypatch.delitem(decoder._available, "gdcm")
        monkeypatch.setitem(decoder._unavailable, "gdcm", ("gdcm>=3.0.10",))
    check = doctor.check_codecs()
    assert check.status == "warning"
    assert "NO codec for JPEG Lossless, Non-Hierarchical (Process 14), JPEG Lossless, Non-Hierarchical, First-Order " \
           "Prediction (Process 14 [Selection Value 1]): such images cannot be shown or classified" in check.detail
    assert "the gdcm codec is missing (it needs gdcm>=3.0.10) for JPEG Lossless" in check.detail
    assert "pylibjpeg-libjpeg" not in check.detail  # deliberately absent (GPL): not reported


def test_the_pacs_setting_is_reported_without_contacting_it(data: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _, checks, _ = run(capsys)
    assert checks["PACS"]["status"] == "ok" and checks["PACS"]["detail"].startswith("none set")
    # a PACS nobody listens at: the doctor only reads the setting (a connection would fail the guard or hang)
    write_site(data, pacs="PACS_MAIN@pacs.hospital.invalid:104", pacs_calling_ae="CT3", pacs_send_saved=True)
    _, checks, _ = run(capsys)
    assert checks["PACS"] == {"name": "PACS", "status": "ok", "detail": (
        "PACS_MAIN at pacs.hospital.invalid:104 as CT3, what is saved for it is sent at once; check the connection "
        "with: zsmed echo")}
    write_site(data, pacs="PACS_MAIN@pacs.hospital.invalid:104", pacs_commit=True)
    _, checks, _ = run(capsys)
    assert ("sent on request, its storage commitment asked for (set a port to receive on: most PACS answer there)"
            in checks["PACS"]["detail"])
    write_site(data, pacs="PACS_MAIN@pacs.hospital.invalid:104", receive_port="11112", receive_from="PACS_MAIN",
               pacs_commit=True)
    _, checks, _ = run(capsys)
    assert "sent on request, its storage commitment asked for; check" in checks["PACS"]["detail"]
    assert checks["PACS"]["detail"].endswith(
        f"zsmed echo; receiving as ZSMED on port 11112 into {data / 'received'} from PACS_MAIN")
    write_site(data, pacs="PACS_MAIN@pacs.hospital.invalid:2762", pacs_tls_ca=str(data / "missing-ca.pem"))
    _, checks, _ = run(capsys)
    assert checks["PACS"]["status"] == "FAIL" and "missing-ca.pem is not there" in checks["PACS"]["detail"]
    real_find_spec = doctor._find_spec
    monkeypatch.setattr(doctor, "_find_spec", lambda name: name != "pynetdicom" and real_find_spec(name))
    _, checks, _ = run(capsys)
    assert checks["PACS"]["status"] == "FAIL" and "pip install pynetdicom" in checks["PACS"]["detail"]
    assert not (data / "received").exists()  # the doctor creates nothing


def test_ocr_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from zsmed.dicom import text_in_pixels

    monkeypatch.setattr(text_in_pixels, "ocr_program", lambda: "/usr/bin/tesseract")
    assert doctor.check_ocr() == doctor.Check("OCR", "ok", "Tesseract at /usr/bin/tesseract")
    monkeypatch.setattr(text_in_pixels, "ocr_program", lambda: None)
    missing = doctor.check_ocr()
    assert missing.status == "warning" and "apt-get install tesseract-ocr" in missing.detail


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is how Linux says there is a screen")
def test_display(monkeypatch: pytest.MonkeyPatch) -> None:
    if not doctor._find_spec("PySide6"):
        pytest.skip("the desktop extra is not installed")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    check = doctor.check_display()
    assert check.status == "ok" and "display DISPLAY=:0" in check.detail
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    check = doctor.check_display()
    assert check.status == "warning" and "no display (DISPLAY and WAYLAND_DISPLAY unset)" in check.detail
    monkeypatch.setattr(doctor, "_find_spec", lambda module: module != "PySide6")
    check = doctor.check_display()
    assert check.status == "warning" and "the desktop app is not installed" in check.detail


def test_building_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runtime-only PC (simulated): building needs the train extra, running works."""
    monkeypatch.setattr(doctor, "_find_spec", lambda module: module != "torch")
    check = doctor.check_building()
    assert check == doctor.Check("building", "warning", "torch is not installed: building classifiers needs the "
                                 "train extra (pip install 'zsmed[train]'); running bundles works")


# --- robustness ------------------------------------------------------------------------------------
def test_an_unexpected_error_is_that_checks_fail(data: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> doctor.Check:
        raise RuntimeError("codec registry exploded")

    monkeypatch.setattr(doctor, "check_codecs", broken)
    code, checks, _ = run(capsys)
    assert code == 1
    assert checks["DICOM codecs"] == {"name": "DICOM codecs", "status": "FAIL",
                                      "detail": "the check could not finish: RuntimeError: codec registry exploded"}
    assert checks["display"]["status"] in ("ok", "warning")


def test_json_lists_every_check(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["doctor", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"version", "platform", "checks"}
    from zsmed import __version__

    assert result["version"] == __version__
    assert [c["name"] for c in result["checks"]] == NAMES
    for check in result["checks"]:
        assert set(check) == {"name", "status", "detail"}
        assert check["status"] in ("ok", "warning", "FAIL") and check["detail"]


def test_the_command_in_a_process_of_its_own(isolated_dirs: Path) -> None:
    """The real entry point: exit 1 and a FAIL line for broken settings, nothing on stderr."""
    data = isolated_dirs / "data"
    data.mkdir()
    (data / "site.json").write_text("[1, 2", encoding="utf-8")
    env = {**os.environ, "ZSMED_DATA_DIR": str(data), "ZSMED_CACHE_DIR": str(isolated_dirs / "cache")}
    done = subprocess.run([sys.executable, "-m", "zsmed", "doctor"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"FAIL     site settings  {data / 'site.json'}: settings file is not valid JSON" in done.stdout
    assert len(done.stdout.splitlines()) == len(NAMES)


def test_importing_the_doctor_imports_no_torch_and_no_qt() -> None:
    code = ("import sys, zsmed.doctor; assert 'torch' not in sys.modules; "
            "zsmed.doctor.check_display(); assert 'PySide6' not in sys.modules, 'the display check imported Qt'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
