"""``python -m zsmed_desktop.screenshots OUTDIR`` walks the real app through a session and saves
a PNG of each main screen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from tests.conftest import REPO
from zsmed_desktop import screenshots


def test_without_a_display_it_reruns_itself_under_xvfb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screenshots.sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", screenshots.REEXEC_FLAG):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(screenshots.shutil, "which", lambda name: "/usr/bin/xvfb-run")
    assert screenshots.needs_xvfb()
    monkeypatch.setenv(screenshots.REEXEC_FLAG, "1")  # the re-run itself does not loop
    assert not screenshots.needs_xvfb()
    monkeypatch.delenv(screenshots.REEXEC_FLAG)
    monkeypatch.setattr(screenshots.shutil, "which", lambda name: None)  # no xvfb-run: offscreen
    assert not screenshots.needs_xvfb()
    assert screenshots.main([]) == 2  # OUTDIR is required


def test_every_main_screen_is_saved(tmp_path: Path, shared_data: Path) -> None:
    from PySide6.QtGui import QImage

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ZSMED_DATA_DIR=str(tmp_path / "home"))
    env.pop("DISPLAY", None)
    result = subprocess.run([sys.executable, "-m", "zsmed_desktop.screenshots", str(tmp_path / "shots")],
                            capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{len(screenshots.SCREENS)} of {len(screenshots.SCREENS)} screens written" in result.stdout
    for name in screenshots.SCREENS:
        image = QImage(str(tmp_path / "shots" / name))
        assert (image.width(), image.height()) == screenshots.SIZE, name
        image = image.convertToFormat(QImage.Format.Format_RGB888)
        pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
        assert pixels.std() > 20, f"{name} is nearly flat"
    # The temporary home was used, not this user's settings or case log.
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())
