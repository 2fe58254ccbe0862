"""``python -m zsmed_desktop.screenshots OUTDIR``: start the real app, walk it through a reading
session on real files and save a PNG of each main screen.

The session: a CD (pydicom's DICOMDIR test set) with a folder holding a damaged file is opened; a
CT series is shown with a window preset; the reference dermoscopy model (export/reference) is
chosen; the CT gives no result (the abstain banner); a dermoscopy photograph from
../shared/data/ham10000_fs gives one; it is reviewed; the case log and the settings are shown.

Without a display it re-runs itself under ``xvfb-run`` when that exists (real X11 rendering: fonts,
icons), else it renders offscreen. Everything it writes (settings, case log, models folder) lives in
a temporary folder; only the PNGs go to OUTDIR.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "export" / "reference" / "sgps_ham4_lite0_v1.zsmb"
SHARED_DATA = Path(os.environ.get("ZSMED_SHARED_DATA", REPO.parent / "shared" / "data"))
REEXEC_FLAG = "ZSMED_SCREENSHOTS_CHILD"
SIZE = (1600, 1000)
TIMEOUT = 180.0

SCREENS = (
    "01-browser.png",
    "02-viewer-window-preset.png",
    "03-abstain.png",
    "04-classify-result.png",
    "05-review.png",
    "06-case-log.png",
    "07-settings.png",
    "08-light-theme.png",
    "09-builder-checks.png",
    "10-builder-built.png",
    "11-models.png",
    "12-check.png",
    "13-dicom-tags.png",
    "14-presentation-state.png",
    "15-study-in-panes.png",
)


def needs_xvfb() -> bool:
    return (
        sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get(REEXEC_FLAG)
        and shutil.which("xvfb-run") is not None
    )


def reexec_under_xvfb(argv: Sequence[str]) -> int:
    env = dict(os.environ, **{REEXEC_FLAG: "1"})
    command = ["xvfb-run", "-a", "-s", f"-screen 0 {SIZE[0] + 80}x{SIZE[1] + 80}x24",
               sys.executable, "-m", "zsmed_desktop.screenshots", *argv]
    return subprocess.call(command, env=env)


# --- the session -------------------------------------------------------------------------------
def wait(app: Any, done: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(f"screenshots: gave up waiting for {what} after {timeout:.0f} s")
        app.processEvents()
        time.sleep(0.01)


def settle(app: Any, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def grab(widget: Any, out: Path, name: str, dialog: Any = None) -> Path:
    """The window as the reader sees it; a dialog drawn over it where it stands."""
    from PySide6.QtGui import QPainter

    pixmap = widget.grab()
    if dialog is not None:
        shot = dialog.grab()
        painter = QPainter(pixmap)
        top_left = widget.mapFromGlobal(dialog.mapToGlobal(dialog.rect().topLeft()))
        x = top_left.x() if 0 <= top_left.x() < pixmap.width() else (pixmap.width() - shot.width()) // 2
        y = top_left.y() if 0 <= top_left.y() < pixmap.height() else (pixmap.height() - shot.height()) // 3
        painter.drawPixmap(x, y, shot)
        painter.setPen(widget.palette().mid().color())  # the frame a window manager would draw
        painter.drawRect(x - 1, y - 1, shot.width() + 1, shot.height() + 1)
        painter.end()
    path = out / name
    if not pixmap.save(str(path)):
        raise OSError(f"screenshots: could not write {path}")
    print(f"screenshots: {path}")
    return path


# Full-size images from pydicom's test files and pydicom-data: a head CT (CQ500), a shoulder MR, a
# chest radiograph, an abdominal MR, a pancreas CT.
TRANSFER_FILES = ("693_UNCI.dcm", "MR2_UNCI.dcm", "RG1_UNCI.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm",
                  "explicit_VR-UN.dcm")


def _test_file(name: str) -> Path | None:
    from zsmed.demo import embedded_dicom_folders

    for root in embedded_dicom_folders():
        found = next(iter(Path(root).rglob(name)), None)
        if found is not None:
            return found
    return None


def prepare_cd(tmp: Path) -> tuple[Path, Path]:
    """pydicom's DICOMDIR test set copied as a CD, and a folder of full-size images in which one
    file was only half copied."""
    import pydicom.data

    source = Path(str(pydicom.data.get_testdata_file("DICOMDIR"))).parent
    cd = tmp / "CD"
    shutil.copytree(source, cd, ignore=shutil.ignore_patterns("DICOMDIR-*", "*.py*"))
    extra = tmp / "Transfer"
    extra.mkdir()
    for number, name in enumerate(TRANSFER_FILES, 1):
        found = _test_file(name)
        if found is not None:
            shutil.copy(found, extra / f"IM{number:06d}.dcm")
    ct = Path(str(pydicom.data.get_testdata_file("CT_small.dcm")))
    (extra / "IM000099.dcm").write_bytes(ct.read_bytes()[:300])  # half-copied
    return cd / "DICOMDIR", extra


def dermoscopy_photo() -> Path | None:
    folder = SHARED_DATA / "ham10000_fs" / "base" / "mel"
    photos = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    return photos[0] if photos else None


def earlier_cases(photo: Path) -> list[tuple[Path, str]]:
    """Dermoscopy photographs other than ``photo`` with their diagnosis (the folder): a few of each class."""
    base = SHARED_DATA / "ham10000_fs" / "base"
    picked = []
    for name, count in (("mel", 3), ("nv", 2), ("bkl", 1), ("bcc", 1)):
        files = [f for f in sorted((base / name).glob("*.jpg")) if f != photo] if (base / name).is_dir() else []
        picked += [(f, name) for f in files[1 : 1 + count]]
    return picked


def select_series(window: Any, text: str) -> None:
    item = next((i for i in window.browser.series_items() if text in i.text(0)), None)
    if item is None:
        raise LookupError(f"screenshots: no series labelled '{text}'")
    window.tree.setCurrentItem(item)
    window.tree.scrollToItem(item)


def run_session(out: Path) -> list[Path]:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from zsmed.site import SiteConfig, save_site_config
    from zsmed_desktop.app import create_application
    from zsmed_desktop.main_window import MainWindow
    from zsmed_desktop.settings_dialog import SettingsDialog

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="zsmed-screens-") as tmp_text:
        tmp = Path(tmp_text)
        # A home folder of its own, the data folder where it is by default: the settings screen shows
        # the defaults as a reader sees them (~/.local/share/zsmed/...), never a temporary path.
        home = tmp / "home"
        data = home / ".local" / "share" / "zsmed"
        data.mkdir(parents=True)
        os.environ["HOME"] = str(home)
        os.environ["ZSMED_DATA_DIR"] = str(data)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "qsettings"))
        models = data / "models"
        models.mkdir()
        if BUNDLE.is_file():
            shutil.copy(BUNDLE, models / BUNDLE.name)
        # Case log and models folder where a site leaves them: the defaults (here under the temporary
        # data folder), so the settings screen shows no temporary paths.
        site = SiteConfig(site_name="Dermatology clinic", reader_name="Dr A. Reader")
        save_site_config(site)
        app = create_application([])
        assert isinstance(app, QApplication)
        window = MainWindow(settings=QSettings(str(tmp / "app.ini"), QSettings.Format.IniFormat), site=site)
        window.resize(*SIZE)
        window.h_splitter.setSizes([400, 820, 380])
        window.v_splitter.setSizes([760, 200])
        window.show()
        settle(app, 0.5)

        # 1. The browser: a CD and a folder with a damaged file; thumbnails; the problems count.
        dicomdir, extra = prepare_cd(tmp)
        window.open_paths([str(dicomdir), str(extra)])
        wait(app, lambda: window.index is not None and not window.browser.scanning, "the scan")
        wait(app, window.browser.thumbnails_done, "the thumbnails")
        select_series(window, "CT  ·  Pancreas")  # an abdominal CT
        wait(app, lambda: window.viewer.current_path() is not None and not window.viewer.is_loading(), "the image")
        window.show_tab("Problems")
        settle(app)
        written.append(grab(window, out, SCREENS[0]))

        # 2. The viewer with a window preset (the soft-tissue window on the abdominal CT, key 5) and a
        # ruler across the abdomen from skin to skin (M, then a left drag), found in the image itself.
        window.apply_preset_number(window.preset_names().index("soft tissue") + 1)
        level = int(0.55 * window.viewer.stored_size()[1])  # an image row through the kidneys
        body = np.flatnonzero(window.viewer.rendered_image()[level] > 20)  # fat and denser; air is black
        if body.size:
            window.viewer.measure((float(body[0]), level), (float(body[-1]) + 1.0, level))
        window.viewer.setFocus()
        settle(app)
        written.append(grab(window, out, SCREENS[1]))

        # 13. That CT's DICOM tags (View > DICOM tags…, Ctrl+I) over the window.
        tags = window.show_dicom_tags()
        if tags is not None:
            wait(app, lambda: not tags.is_loading(), "the DICOM tags")
            settle(app)
            written.append(grab(window, out, SCREENS[12], dialog=tags))
            tags.close()

        # 14. Back to the PACS: a region and an arrow on the CT, the view saved as a presentation state
        # and the image flagged as a key image (K; View > Save key images for the PACS); the view reset,
        # the CD opened again: the state's series (in the tree beside the key image note's) opens the CT
        # as it was saved, marks measured again, and the key image says so.
        viewer = window.viewer
        width, height = viewer.stored_size()
        viewer.roi((0.45 * width, 0.50 * height), (0.55 * width, 0.60 * height))
        viewer.arrow((0.80 * width, 0.22 * height), (0.60 * width, 0.42 * height), "compare with the prior study")
        window.toggle_key_image()
        window.save_presentation_state()
        window.save_key_images(note="for the tumour board")
        viewer.reset()
        viewer.clear_measurements()
        window.open_paths([str(dicomdir), str(extra)])
        wait(app, lambda: window.index is not None and not window.browser.scanning, "the scan")
        select_series(window, "zsmed presentation state")
        wait(app, lambda: len(window.viewer.arrows()) == 1, "the presentation state")
        wait(app, window.browser.thumbnails_done, "the thumbnails")
        current = window.tree.currentItem()
        if current is not None:
            window.tree.scrollToItem(current)  # the thumbnails have made the rows taller
        settle(app)
        written.append(grab(window, out, SCREENS[13]))

        # 15. The study in panes (G): the CD's MR angiography study, its projections first, the localizer last.
        select_series(window, "ANGIO Projected")
        wait(app, lambda: window.viewer.current_frame_data() is not None and not window.viewer.is_loading(),
             "the MR angiography")
        grid = window.open_study_grid()
        if grid is not None:
            grid.resize(*SIZE)
            wait(app, lambda: all(not p.viewer.is_loading() and p.viewer.current_frame_data() is not None
                                  for p in grid.panes), "the panes")
            settle(app, 0.5)
            written.append(grab(grid, out, SCREENS[14]))
            grid.close()

        if not BUNDLE.is_file():
            print(f"screenshots: {BUNDLE} not found; the classifier screens are left out")
            return written
        panel = window.classify
        panel.refresh_models()
        panel.load_bundle(models / BUNDLE.name)
        wait(app, lambda: not panel.is_busy() and panel.model_ready, "the model to load")

        # 3. A CT slice is not like the dermoscopy photographs the model was built on: no result.
        wait(app, lambda: panel._current is not None, "the classifier's context")
        panel.classify("image")
        wait(app, lambda: not panel.is_busy(), "the prediction")
        settle(app)
        written.append(grab(window, out, SCREENS[2]))

        # 4. A dermoscopy photograph gives a result.
        photo = dermoscopy_photo()
        if photo is None:
            print(f"screenshots: no dermoscopy photographs under {SHARED_DATA}; the result screens are left out")
            return written
        # cases a reader reviewed here before (their histology as the reader's class): the result's similar cases
        for earlier, truth in earlier_cases(photo):
            window.open_paths([str(earlier)])

            def shown(case: Path = earlier) -> bool:
                return panel._current == case and not window.viewer.is_loading()

            wait(app, shown, "an earlier case")
            panel.classify("image")
            wait(app, lambda: not panel.is_busy(), "its prediction")
            panel.correct(truth, "histology")
            wait(app, lambda: not panel.is_busy() and not panel.pending_count(), "its review")
        window.open_paths([str(photo)])
        wait(app, lambda: panel._current == photo and not window.viewer.is_loading(), "the photograph")
        panel.classify("image")
        wait(app, lambda: not panel.is_busy(), "the prediction")
        settle(app)
        written.append(grab(window, out, SCREENS[3]))

        # 5. Review: the reader corrects the result (the dialog over the window), then confirms it.
        from zsmed_desktop.classify_panel import CorrectDialog

        row = panel._selected()
        names = panel._class_names_of(row) if row is not None else []
        dialog = CorrectDialog(names, panel._titles, row.prediction.label if row else None,
                               "pigment network", window)
        dialog.show()
        settle(app)
        written.append(grab(window, out, SCREENS[4], dialog))
        dialog.close()
        panel.comment.setText("agree")
        panel.confirm()
        wait(app, lambda: not panel.is_busy(), "the review")

        # 6. The case log: the result and its review.
        window.caselog.refresh()
        window.show_tab("Case log")
        window.v_splitter.setSizes([560, 400])
        settle(app, 1.0)
        written.append(grab(window, out, SCREENS[5]))

        # 7. The settings.
        settings = SettingsDialog(window.site, window)
        settings.show()
        settle(app)
        written.append(grab(window, out, SCREENS[6], settings))
        settings.close()

        # 8. The light theme (View > Theme), on the result and the case log.
        window.set_theme("light")
        settle(app, 0.5)
        written.append(grab(window, out, SCREENS[7]))
        window.set_theme("dark")

        # 9. The builder (Models > Build a classifier): two classes of dermoscopy photographs and a
        # third still empty; the checks say what to fix.
        novel = SHARED_DATA / "ham10000_fs" / "novel_dev"
        examples = {name: sorted((novel / name).glob("*.jpg"))[:5] for name in ("akiec", "df")}
        if all(examples.values()):
            builder = window.open_builder()
            builder.resize(*SIZE)
            first, second = builder.columns[:2]
            for column, (name, files) in zip((first, second), examples.items(), strict=True):
                column.name_edit.setText(name)
                column.fill_known_description()
                column.add_paths(files)
            builder.add_class("vasc")
            wait(app, lambda: builder.thumbnails_done() and not builder.checking(), "the builder's checks")
            settle(app, 0.5)
            written.append(grab(builder, out, SCREENS[8]))

            # 10. Built: the empty class removed, the model made and exported to the models folder; the
            # examples it gets wrong when left out are outlined.
            builder.remove_class(builder.columns[2])
            wait(app, lambda: not builder.checking(), "the builder's checks")
            builder.build()
            wait(app, lambda: not builder.is_building(), "the build")
            settle(app, 0.5)
            written.append(grab(builder, out, SCREENS[9]))
            built = builder.outcome.bundle_path if builder.outcome is not None else None
            builder.close()

            # 11. Models and their cards: the model just built, its card and its files checked.
            models_dialog = window.open_models()
            models_dialog.resize(*SIZE)
            models_dialog.refresh(select=built)
            wait(app, lambda: built is not None and models_dialog.checked(built) is not None, "the model check")
            settle(app, 0.3)
            written.append(grab(models_dialog, out, SCREENS[10]))

            # 12. The model checked on other labelled cases (images it was not built from).
            cases = data / "labelled cases"
            for name in examples:
                (cases / name).mkdir(parents=True)
                for image in sorted((novel / name).glob("*.jpg"))[5:25]:
                    shutil.copy(image, cases / name / image.name)
            check = models_dialog.open_check()
            check.resize(*SIZE)
            check.start(cases)
            wait(app, lambda: check.report is not None or not check.is_running(), "the check on labelled cases")
            settle(app, 0.5)
            written.append(grab(check, out, SCREENS[11]))
            check.close()
            models_dialog.close()
        window.close()
        settle(app, 0.2)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m zsmed_desktop.screenshots OUTDIR", file=sys.stderr)
        return 2
    try:  # the session's abdominal CT and other full-size images come from pydicom-data
        import data_store  # noqa: F401  (the module pydicom-data installs)
    except ImportError:
        print("screenshots: needs the DICOM files of pydicom-data: pip install 'zsmed[demo]'", file=sys.stderr)
        return 2
    if needs_xvfb():
        return reexec_under_xvfb(args)
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        written = run_session(Path(args[0]))
    except (TimeoutError, LookupError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"screenshots: {len(written)} of {len(SCREENS)} screens written")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
