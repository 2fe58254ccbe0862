"""The reading room over a folder of damaged copies of pydicom's real test files (``tests.damaged_files``):
every series is listed or named in the Problems tab, each shown (or its reason given in the viewer) image by
image, and the reformat opened where it is offered, without an exception escaping into Qt (pytest-qt fails a
test on one)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from tests.damaged_files import damaged_copies
from tests.desktop.reading_room import SCAN_TIMEOUT, make_window, open_and_wait


def test_the_reading_room_shows_or_names_every_damaged_file(qtbot, tmp_path: Path) -> None:
    files = damaged_copies(tmp_path / "damaged", seed=2, files=12)
    window = make_window(qtbot, tmp_path)
    window.show()
    qtbot.waitExposed(window)
    open_and_wait(qtbot, window, [tmp_path / "damaged"])
    items = window.browser.series_items()
    assert items and window.problems.count() > 0  # some copies are listed, the unreadable ones named
    assert all(line.split(":", 1)[0].endswith(".dcm") for line in window.problems.lines())  # each by its name
    shown = 0
    for item in items:
        window.tree.setCurrentItem(item)
        qtbot.waitUntil(lambda: not window.viewer.is_loading(), timeout=SCAN_TIMEOUT)
        for index in range(min(len(window.viewer.paths()), 3)):
            window.viewer.go_to(index)
            qtbot.waitUntil(lambda: not window.viewer.is_loading(), timeout=SCAN_TIMEOUT)
            shown += 1
        if window._can_reformat():
            reformat = window.open_reformat()
            assert reformat is not None
            qtbot.waitUntil(lambda r=reformat: not r.is_loading(), timeout=SCAN_TIMEOUT)
            assert reformat.shown() is not None or reformat.message()  # a reformat, or why not
    assert shown >= len(items) and len(files) > len(items)
