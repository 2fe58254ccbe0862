from __future__ import annotations

import json
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
    assert model.card.method.startswith("sgps")
    assert "headless demo" in capsys.readouterr().out


def test_with_offscreen_platform_the_window_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("PySide6")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("ZSMED_DESKTOP_SMOKE", "1")
    assert app.has_display()
    assert app.main([]) == 0
