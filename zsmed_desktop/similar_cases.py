"""The cases reviewed at this site whose images the model finds most alike the one just classified, each with
the reader's class: what the site's own confirmed cases say beside the model's bars (as dermatology viewers
show similar lesions). Read from the case log (``CaseLog.similar``) in the classifier's worker, with their
thumbnails; shown under the result in the classifier panel. A double-click opens a case's image in a window of its
own, beside the one being read (the reading itself stays where it is).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QAbstractItemView, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from zsmed.site import SiteConfig
from zsmed.store import SimilarCase
from zsmed_desktop.browser import thumbnail_job, thumbnail_pixmap

SIMILAR_COUNT = 5
SIMILAR_THUMB = 44  # screen pixels: five rows fit under the bars of a 1,000-pixel-high window


@dataclass
class SimilarFound:
    """The reviewed cases most alike, most alike first, and their thumbnails (by prediction id; None: the file
    is gone or cannot be decoded)."""

    cases: list[SimilarCase] = field(default_factory=list)
    thumbnails: dict[int, np.ndarray | None] = field(default_factory=dict)


def find_similar(site: SiteConfig, prediction_id: int, count: int = SIMILAR_COUNT) -> SimilarFound:
    """For the worker: the case log's most alike reviewed cases and their thumbnails. Nothing (not a failure
    of the classification) where the log cannot be read or keeps no embeddings yet."""
    from zsmed.store import open_case_log

    try:
        with open_case_log(site.resolved_caselog_path(), site=site, readonly=True) as log:
            cases = log.similar(prediction_id, count)
    except Exception:  # the result stands without them; the case log's own problems are said where it is written
        return SimilarFound()
    wanted = [(str(case.prediction_id), case.source) for case in cases if case.source and Path(case.source).is_file()]
    thumbnails: dict[int, np.ndarray | None] = {case.prediction_id: None for case in cases}
    for key, image in thumbnail_job(wanted, 2 * SIMILAR_THUMB):
        thumbnails[int(key)] = image
    return SimilarFound(cases, thumbnails)


def tally(cases: Sequence[SimilarCase], titles: Mapping[str, str]) -> str:
    """'4 of 5 Melanoma, 1 Benign keratosis': the readers' classes of ``cases``, the commonest first."""
    counts = Counter(case.label for case in cases).most_common()
    if not counts:
        return ""
    (first, n), rest = counts[0], counts[1:]
    return ", ".join([f"{n} of {len(cases)} {titles.get(first, first)}",
                      *(f"{m} {titles.get(label, label)}" for label, m in rest)])


def model_said(case: SimilarCase, titles: Mapping[str, str]) -> str:
    """What the model made of the case: "said Melanoma", or "gave no result"."""
    return "gave no result" if case.model_label is None else f"said {titles.get(case.model_label, case.model_label)}"


class SimilarCaseWindow(QWidget):
    """One reviewed case's image, in a window of its own, titled with the reader's class and verdict."""

    def __init__(self, parent: QWidget | None = None) -> None:
        from zsmed_desktop.viewer import ImageViewer

        super().__init__(parent, Qt.WindowType.Window)
        self.viewer = ImageViewer()
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setContentsMargins(6, 2, 6, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.viewer, 1)
        layout.addWidget(self.note)
        self.resize(640, 680)

    def show_case(self, case: SimilarCase, titles: Mapping[str, str]) -> None:
        title = titles.get(case.label, case.label)
        self.setWindowTitle(f"zsmed — a reviewed case: {title} ({case.verdict} by {case.reader}, {case.time[:10]})")
        self.note.setText(f"{title}: {case.verdict} by {case.reader} on a case classified {case.time[:10]}; the model "
                          f"{model_said(case, titles)}. Alike {case.similarity:.2f} to the image being read (1.00: the "
                          "same features).")
        self.viewer.set_images([Path(case.source)] if case.source else [])
        self.show()
        self.raise_()


class SimilarCasesView(QWidget):
    """A heading with the readers' classes counted, and a row per case: its thumbnail, the reader's class and
    verdict, the date and how alike (the file in the tooltip); a double-click opens the case's image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heading = QLabel()
        self.heading.setWordWrap(True)
        self.heading.setTextFormat(Qt.TextFormat.PlainText)  # class names are the model's, not markup
        self.heading.setToolTip("Cases a reader confirmed or corrected here whose images this model sees as "
                                "most alike this one (the closer its image features, the higher 'alike'). "
                                "They show what the site's own readers decided for images like it; they are "
                                "not a second opinion on this image.")
        self.list = QListWidget()
        self.list.setIconSize(QSize(SIMILAR_THUMB, SIMILAR_THUMB))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Enter and C stay the panel's confirm and correct
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.itemDoubleClicked.connect(lambda item: self.open_case(self.list.row(item)))
        self._cases: list[SimilarCase] = []
        self._titles: Mapping[str, str] = {}
        self.case_window: SimilarCaseWindow | None = None  # one, reused: a case at a time beside the reading
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.heading)
        layout.addWidget(self.list)
        self.hide()

    def show_found(self, found: SimilarFound, titles: Mapping[str, str]) -> None:
        self.list.clear()
        self._cases, self._titles = list(found.cases), dict(titles)
        if not found.cases:
            self.hide()
            return
        self.heading.setText(f"Most alike among the cases reviewed here: {tally(found.cases, titles)}")
        for case in found.cases:
            title = titles.get(case.label, case.label)
            item = QListWidgetItem(f"{title} ({case.verdict})\n{case.time[:10]}  ·  alike {case.similarity:.2f}")
            name = Path(case.source).name if case.source else "the file is not named in the log"
            item.setToolTip(f"{title}: {case.verdict} by {case.reader}; the model {model_said(case, titles)}\n{name}\n"
                            "Double-click to see the image")
            image = found.thumbnails.get(case.prediction_id)
            if image is not None:
                item.setIcon(QIcon(thumbnail_pixmap(image, SIMILAR_THUMB)))
            self.list.addItem(item)
        rows = self.list.sizeHintForRow(0) * self.list.count() + 2 * self.list.frameWidth() + 2
        self.list.setFixedHeight(rows)
        self.show()

    def open_case(self, row: int) -> SimilarCaseWindow | None:
        """The case in ``row`` in the case window (None where its file is not named in the log)."""
        if not 0 <= row < len(self._cases) or not self._cases[row].source:
            return None
        if self.case_window is None:
            self.case_window = SimilarCaseWindow(self)
        self.case_window.show_case(self._cases[row], self._titles)
        return self.case_window

    def clear(self) -> None:
        self.list.clear()
        self._cases = []
        self.hide()

    def labels(self) -> list[str]:
        """The rows' first lines (for tests)."""
        return [self.list.item(i).text().split("\n")[0] for i in range(self.list.count())]


__all__ = ["SIMILAR_COUNT", "SimilarCaseWindow", "SimilarCasesView", "SimilarFound", "find_similar", "model_said",
           "tally"]
