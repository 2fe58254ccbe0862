from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from tests.conftest import dicom_test_file
from zsmed_desktop.main_window import MainWindow, to_qimage


@pytest.fixture()
def study_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "cd"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm"):
        shutil.copy(dicom_test_file(name), folder / name)
    (folder / "notes.txt").write_text("not DICOM")
    (folder / "broken.dcm").write_bytes(b"\x00" * 50)
    return folder


def test_scan_fills_tree_problems_and_status(qtbot, study_folder: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_paths([str(study_folder)])
    qtbot.waitUntil(lambda: window.index is not None, timeout=60_000)
    assert window.index is not None
    counts = window.index.counts()
    assert counts["instances"] == 3  # CT, MR and the RT plan are DICOM; text and junk are not images
    assert window.tree.topLevelItemCount() == counts["patients"] >= 2
    problems = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert any("broken.dcm" in p for p in problems)
    assert "3 instances" in window.statusBar().currentMessage()


def test_selecting_a_series_decodes_its_image(qtbot, study_folder: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_paths([str(study_folder)])
    qtbot.waitUntil(lambda: window.index is not None, timeout=60_000)
    ct = next(i for i in window.index.instances if i.path.endswith("CT_small.dcm"))  # type: ignore[union-attr]
    window.show_instance(ct)
    qtbot.waitUntil(lambda: not window.viewer.pixmap().isNull(), timeout=60_000)
    pixmap = window.viewer.pixmap()
    assert pixmap is not None and not pixmap.isNull()
    image = pixmap.toImage()
    # A CT slice is not a flat picture: the rendered pixels must vary.
    values = {image.pixelColor(x, y).value() for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(values) > 20


def test_bad_file_shows_a_message_instead_of_crashing(qtbot, tmp_path: Path) -> None:
    from zsmed.dicom.scan import Instance

    junk = tmp_path / "junk.dcm"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    window = MainWindow()
    qtbot.addWidget(window)
    window.show_instance(Instance(path=str(junk), sop_instance_uid="1.2.3", rows=10, cols=10))
    qtbot.waitUntil(lambda: "junk.dcm" in window.viewer.text(), timeout=60_000)
    assert "junk.dcm" in window.statusBar().currentMessage()


def test_to_qimage_keeps_pixels() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    image = to_qimage(grey)
    assert (image.width(), image.height()) == (4, 3)
    assert image.pixelColor(3, 2).value() == int(grey[2, 3])
