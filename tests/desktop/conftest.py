"""Fixtures the desktop tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

VIEWER_TIMEOUT = 60_000  # ms: a decode on a busy 2-core machine


@pytest.fixture()
def viewer(qtbot: Any) -> Iterator[Any]:
    """A shown ImageViewer, 640 x 560."""
    from zsmed_desktop.viewer import ImageViewer

    widget = ImageViewer()
    widget.resize(640, 560)
    widget.show()
    yield widget
    # not qtbot.addWidget: it deletes the widget before fixtures end; let the neighbours' decodes finish first
    qtbot.waitUntil(lambda: not widget.is_busy(), timeout=VIEWER_TIMEOUT)
    widget.close()
    widget.deleteLater()
