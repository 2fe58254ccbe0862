"""Desktop entry point (``zsmed-desktop``): the reading room when there is a display, the headless
demo when there is none.

Before Qt starts, two things that would otherwise end in an abort or a traceback are checked and
said in one line: the system libraries Qt's X11 (xcb) platform plugin loads, and, for the headless
demo, torch (the 'train' extra; a runtime-only install has none).
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
from collections.abc import Callable, Sequence

# soname -> Debian/Ubuntu package, for every library Qt 6's xcb platform plugin links.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        platform = os.environ.get("QT_QPA_PLATFORM", "")
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or platform == "offscreen")
    return True


def uses_xcb() -> bool:
    """Qt will load its xcb plugin: Linux, an X display, and no other platform asked for."""
    if not sys.platform.startswith("linux"):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "").strip().lower()
    if platform:
        return platform.split(";")[0].split(":")[0] == "xcb"
    return bool(os.environ.get("DISPLAY")) and not os.environ.get("WAYLAND_DISPLAY")


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_xcb_packages(loads: Callable[[str], bool] | None = None) -> list[str]:
    """The packages whose libraries the xcb plugin needs and this machine cannot load."""
    load = loads or _loads
    return [package for soname, package in XCB_LIBRARIES.items() if not load(soname)]


def missing_libraries_message(packages: Sequence[str]) -> str:
    return (
        "zsmed-desktop: Qt cannot open a window: missing system libraries "
        f"({', '.join(packages)}); install them with: sudo apt-get install {' '.join(packages)}"
    )


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_headless() -> int:
    if not torch_available():
        print(
            "zsmed-desktop: no display found, and the headless demo needs the 'train' extra (torch): "
            "pip install 'zsmed[train]'; to classify without a display use: zsmed predict BUNDLE FILES"
        )
        return 2
    print("zsmed-desktop: no display found; running the headless demo instead (zsmed demo)")
    from zsmed.cli.main import main as cli_main

    return cli_main(["demo"])


def create_application(argv: Sequence[str]) -> object:
    """The QApplication with the app's names (QSettings), High-DPI rounding and the saved theme."""
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from zsmed_desktop import theme
    from zsmed_desktop.main_window import APPLICATION, ORGANISATION

    existing = QApplication.instance()
    if existing is None:
        # Fractional scale factors (150 %) as they are, not rounded to 2x: text and images stay sharp.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    QCoreApplication.setOrganizationName(ORGANISATION)
    QCoreApplication.setApplicationName(APPLICATION)
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0], *argv])
    app.setApplicationDisplayName("zsmed")
    site_theme = "dark"
    try:
        from zsmed.site import load_site_config

        site_theme = load_site_config().theme
    except Exception:  # a broken site.json is reported by the window; the theme falls back
        site_theme = "dark"
    theme.apply_theme(app, site_theme)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not has_display():
        return run_headless()
    if uses_xcb():
        missing = missing_xcb_packages()
        if missing:
            print(missing_libraries_message(missing), file=sys.stderr)
            return 2
    from PySide6.QtWidgets import QApplication

    from zsmed_desktop.main_window import MainWindow

    app = create_application(argv)
    assert isinstance(app, QApplication)
    window = MainWindow()
    window.show()
    # Everything imported so far lives as long as the app: keep it out of the garbage collector's
    # full passes, which would otherwise walk it while a scan allocates (pauses of 100-200 ms).
    gc.freeze()
    paths = [a for a in argv if not a.startswith("-")]
    if paths:
        window.open_paths(paths)
    if os.environ.get("ZSMED_DESKTOP_SMOKE"):
        window.close()
        return 0
    code = int(app.exec())
    from PySide6.QtCore import QThreadPool

    QThreadPool.globalInstance().waitForDone(3000)
    return code


if __name__ == "__main__":
    sys.exit(main())
