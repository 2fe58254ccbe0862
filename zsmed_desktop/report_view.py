"""A study's reports, read in the app: opening a series of structured reports (a radiology report,
another viewer's measurements, zsmed's results) shows them as text, and an encapsulated PDF opens in
the computer's PDF viewer, as a PACS viewer does.

``show_reports(parent, paths, report)`` is the window's entry: it reads the files (a file that cannot
be read is one line in the window, naming it), opens the PDFs and shows the structured reports in a
``ReportDialog`` (the text can be copied into the reader's own report). Nothing here raises.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from zsmed.errors import ZsmedError
from zsmed.report.read_report import Report, load_report

Reporter = Callable[..., object]  # report(text, warning=...): the window's show_message


def _report_html(report: Report) -> str:
    parts = [f"<h2>{html.escape(report.title)}</h2>"]
    parts.append("<p style='color:#9aa4ad'>" + "<br>".join(html.escape(f) for f in report.facts()) + "</p>")
    for line in report.lines:
        indent = 18 * line.depth
        name, value = html.escape(line.name), html.escape(line.value).replace("\n", "<br>")
        if line.heading:
            parts.append(f"<p style='margin-left:{indent}px; margin-top:8px; margin-bottom:3px'><b>{name}</b></p>")
        elif name and value:
            parts.append(f"<p style='margin-left:{indent}px; margin-top:0px; margin-bottom:3px'>"
                         f"<span style='color:#9aa4ad'>{name}:</span> {value}</p>")
        else:
            parts.append(f"<p style='margin-left:{indent}px; margin-top:0px; margin-bottom:3px'>{name or value}</p>")
    return "\n".join(parts)


class ReportDialog(QDialog):
    """The structured reports of a series, one after another, with Copy text and Close."""

    def __init__(self, title: str, reports: Sequence[Report], problems: Sequence[str] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.reports = list(reports)
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        body = "<hr>".join(_report_html(r) for r in self.reports)
        if problems:
            body += "<hr><p style='color:#e0a030'>" + "<br>".join(html.escape(p) for p in problems) + "</p>"
        self.browser.setHtml(body)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy text")
        self.copy_button.setToolTip("Copy the report as plain text, to paste into your own report or a letter")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_text)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        screen = (parent.screen() if parent is not None else None) or QGuiApplication.primaryScreen()
        available = screen.availableGeometry() if screen is not None else None
        width, height = 720, 640
        if available is not None:  # a laptop's screen: never taller than what it shows
            width, height = min(width, available.width() - 40), min(height, available.height() - 80)
        self.resize(width, height)

    def text(self) -> str:
        return "\n".join(r.text() for r in self.reports)

    def copy_text(self) -> None:
        QGuiApplication.clipboard().setText(self.text())


def _pdf_copy(path: Path, data: bytes) -> Path:
    """The PDF written into the cache, named after its file, for the PDF viewer to open (a DICOM file
    cannot be given to it)."""
    from zsmed.paths import replacing, user_cache_dir

    folder = user_cache_dir() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.stem}.pdf"
    with replacing(target) as temporary:
        temporary.write_bytes(data)
    return target


def show_reports(parent: QWidget | None, paths: Sequence[Path], report: Reporter, title: str = "Report"
                 ) -> ReportDialog | None:
    """Show the reports in ``paths``: PDFs in the PDF viewer, structured reports in a ``ReportDialog``
    (returned, shown without blocking); what could not be read in the window, one line each."""
    reports: list[Report] = []
    problems: list[str] = []
    opened: list[str] = []
    for path in paths:
        try:
            loaded = load_report(path)
            if isinstance(loaded, bytes):
                copy = _pdf_copy(path, loaded)
                if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(copy))):
                    problems.append(f"{path.name}: no PDF viewer on this computer opened it (its copy "
                                    f"{copy.name} is in zsmed's cache folder: Help ▸ Check this installation "
                                    "shows where)")
                else:
                    opened.append(path.name)
                continue
            reports.append(loaded)
        except ZsmedError as exc:
            problems.append(f"{path.name}: {exc.reason}")
        except OSError as exc:
            problems.append(f"{path.name}: cannot be read ({exc.strerror or exc})")
    if opened:
        report(f"{', '.join(opened)}: opened in the PDF viewer")
    if not reports:
        if problems:
            report("; ".join(problems), warning=True)
        elif not opened:
            report(f"{title}: no report to show", warning=True)
        return None
    dialog = ReportDialog(title, reports, problems, parent)
    dialog.show()
    return dialog
