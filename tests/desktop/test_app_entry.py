from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zsmed.classifier import load_classifier
from zsmed_desktop import app


def test_without_a_display_the_app_runs_the_headless_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(app.sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert not app.has_display()
    calls: list[list[str]] = []
    from zsmed.cli import main as cli

    real_main = cli.main

    def recording_main(argv: list[str]) -> int:
        calls.append(list(argv))
        return real_main([*argv, "--out", str(tmp_path), "--json", str(tmp_path / "demo.json")])

    monkeypatch.setattr(cli, "main", recording_main)
    assert app.main([]) == 0
    assert calls == [["demo"]]
    report = json.loads((tmp_path / "demo.json").read_text())
    # The demo classifies held-out CT and MR images of several transfer syntaxes from 4 examples each,
    # through an exported bundle, and refuses an ultrasound image.
    assert len(report["predictions"]) >= 5
    assert report["accuracy"] >= 0.8
    assert report["bundle_parity"] is not None and report["bundle_parity"] < 1e-4
    assert Path(report["bundle_path"]).is_file()
    assert report["out_of_domain"] and all(item["abstain"] for item in report["out_of_domain"])
    model = load_classifier(report["model_path"])
    assert model.class_names == ["CT", "MR"]
    # SGPS behind its synthesis guard: the generator's head, or (CT/MR lie outside its meta-training
    # domains) the guard's prototype fallback, with the reason in the card.
    guard = model.card.extra.get("guard", {})
    assert model.card.method.startswith("sgps") or (
        model.card.method == "protonet-cosine" and guard.get("enabled") and not guard.get("use_generator")
    ), (model.card.method, guard)
    assert "headless demo" in capsys.readouterr().out


def test_with_offscreen_platform_the_window_opens(monkeypatch: pytest.MonkeyPatch, isolated_dirs: Path) -> None:
    pytest.importorskip("PySide6")
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(isolated_dirs / "qsettings"))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("ZSMED_DESKTOP_SMOKE", "1")
    assert app.has_display()
    assert not app.uses_xcb()
    assert app.main([]) == 0
    # The window saved its geometry under the app's names, in the redirected settings folder.
    assert list((isolated_dirs / "qsettings").rglob("zsmed.ini"))


def test_a_missing_xcb_library_gives_one_line_naming_the_packages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert app.uses_xcb()
    # This machine has them all (installer/system-packages.sh): the real loader finds every one.
    real_missing = app.missing_xcb_packages()
    # Fake a bare box: libxcb-cursor0 and libxcb-icccm4 missing.
    gone = {"libxcb-cursor.so.0", "libxcb-icccm.so.4"}
    loaded: list[str] = []

    def fake_load(soname: str) -> bool:
        loaded.append(soname)
        return soname not in gone and real_load(soname)

    real_load = app._loads
    monkeypatch.setattr(app, "_loads", fake_load)
    created: list[object] = []
    monkeypatch.setattr(app, "create_application", lambda argv: created.append(argv))
    assert app.main([]) == 2
    assert created == []  # Qt was never started, so it could not abort
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "libxcb-cursor0" in err[0] and "libxcb-icccm4" in err[0] and "apt-get install" in err[0]
    assert sorted(set(real_missing) | {"libxcb-cursor0", "libxcb-icccm4"}) == sorted(
        p for p in app.XCB_LIBRARIES.values() if p in err[0])
    assert set(loaded) == set(app.XCB_LIBRARIES)


def test_xcb_check_only_when_qt_would_use_xcb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert not app.uses_xcb()
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert app.uses_xcb()
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert not app.uses_xcb()
    monkeypatch.setattr(app.sys, "platform", "win32")
    assert not app.uses_xcb()


NO_TORCH = "import sys; sys.modules['torch'] = None\n"


def run_without_torch(code: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", NO_TORCH + code], capture_output=True, text=True, env=env,
                          timeout=300, cwd=str(Path(__file__).resolve().parents[2]))


def test_headless_without_torch_says_which_extra_in_one_line() -> None:
    result = run_without_torch("from zsmed_desktop.app import main; sys.exit(main([]))")
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "'train' extra" in lines[0] and "pip install 'zsmed[train]'" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [["build", "fewshot", "--support", ".", "--out", "m.zsm"], ["demo"],
                                  ["encode", ".", "--out", "f.npz"]])
def test_cli_commands_that_need_torch_say_so_in_one_line(argv: list[str], tmp_path: Path) -> None:
    result = run_without_torch(f"from zsmed.cli.main import main; sys.exit(main({argv!r}))")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    command = " ".join(argv[:2] if argv[0] == "build" else argv[:1])
    assert lines[-1] == f"zsmed {command} needs the 'train' extra: pip install 'zsmed[train]' (torch is not installed)"


def test_cli_without_torch_still_scans(tmp_path: Path) -> None:
    from tests.conftest import dicom_test_file

    ct = str(dicom_test_file("CT_small.dcm"))
    result = run_without_torch(f"from zsmed.cli.main import main; sys.exit(main(['scan', {ct!r}]))")
    assert result.returncode == 0, result.stderr
    assert "1 instances" in result.stdout


RUNTIME_ONLY_SESSION = """
import sys, time
from pathlib import Path
for name in ("torch", "transformers", "sklearn", "safetensors"):
    sys.modules[name] = None
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from zsmed.site import SiteConfig
from zsmed_desktop.main_window import MainWindow
tmp, folder, photo, bundle = (Path(a) for a in sys.argv[1:5])
site = SiteConfig(reader_name="Dr Runtime", caselog_path=str(tmp / "caselog.sqlite"), models_folder=str(tmp))
window = MainWindow(QSettings(str(tmp / "app.ini"), QSettings.Format.IniFormat), site)

def wait(done, what):
    end = time.monotonic() + 240
    while not done():
        assert time.monotonic() < end, what
        app.processEvents()
        time.sleep(0.01)

window.open_paths([str(folder)])
wait(lambda: window.index is not None, "scan")
wait(lambda: window.viewer.current_path() is not None, "image shown")
window.classify.load_bundle(bundle)
wait(lambda: not window.classify.is_busy() and window.classify.model_ready, "model")
window.open_paths([str(photo)])
wait(lambda: window.classify._current == photo, "context")
window.classify.classify("image")
wait(lambda: not window.classify.is_busy(), "prediction")
label = window.classify.result_label()
window.classify.confirm()
wait(lambda: not window.classify.is_busy(), "review")
window.caselog.refresh()
assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None and m.split(".")[0] == "torch"]
print("RESULT", label, window.index.counts()["instances"])
window.close()
"""


def test_the_app_views_classifies_and_reviews_without_torch(tmp_path: Path, shared_data: Path) -> None:
    """A runtime-only install (".[runtime,desktop]", no torch): scan, view, classify with a bundle,
    confirm, case log."""
    import shutil

    from tests.conftest import REPO, dicom_test_file
    from zsmed.store import open_case_log

    folder = tmp_path / "cd"
    folder.mkdir()
    shutil.copy(dicom_test_file("CT_small.dcm"), folder / "CT_small.dcm")
    photo = sorted((shared_data / "ham10000_fs" / "base" / "mel").glob("*.jpg"))[0]
    bundle = REPO / "export" / "reference" / "sgps_ham4_lite0_v1.zsmb"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME_ONLY_SESSION, str(tmp_path), str(folder), str(photo), str(bundle)],
        capture_output=True, text=True, env=env, timeout=500, cwd=str(REPO),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT"))
    _, label, instances = line.split()
    assert label in {"bcc", "bkl", "mel", "nv"} and instances == "1"
    with open_case_log(tmp_path / "caselog.sqlite") as log:
        records = log.list_predictions()
    assert len(records) == 1 and records[0].review is not None and records[0].user == "Dr Runtime"
