"""Desktop entry point. A first window over the DICOM index; the full app has its own issue."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        platform = os.environ.get("QT_QPA_PLATFORM", "")
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or platform == "offscreen")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not has_display():
        print("zsmed-desktop: no display found; running the headless demo instead (zsmed demo)")
        from zsmed.cli.main import main as cli_main

        return cli_main(["demo"])
    from PySide6.QtWidgets import QApplication

    from zsmed_desktop.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    window = MainWindow()
    window.show()
    if os.environ.get("ZSMED_DESKTOP_SMOKE"):
        return 0
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
