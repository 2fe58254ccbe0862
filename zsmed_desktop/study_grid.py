"""The study's series side by side in one window (G), as a PACS hangs an MR's T1, T2, FLAIR and diffusion: up
to four panes, the series read first, then the study's others in series order (localizers, of one or two
images, only where nothing else is left). Each pane's menu hangs another series of the study in it; a
double-click on a pane opens its series in the main window. Panes cutting the same plane (within 1°) follow
the one the reader scrolls, slice for slice by position in mm (one study: one table, so no offset to line up);
panes in other planes or without positions stay where they are. L in the window unlinks them. As PACS draw
them, dashed reference lines on the other planes' panes show where the image last scrolled cuts them.

A hanging protocol, as PACS keep them: when the reader hangs a series in a pane by hand, or gives a pane a window
preset by its number key (0 = auto, R = the image's own), the arrangement is kept for that kind of study (its
modality and study description, say "CT · chest"), by the panes' series descriptions and windows; the next study
of that kind is hung the same way, each pane taking the series whose description matches (the same words, else most
of them) in the pane's window, the others by the default order. A series hung in two panes in different windows (a
chest CT in the lung and the mediastinal window side by side) is hung twice again.

Panes are arranged to show each image largest in the window's shape: side by side on a landscape monitor (two by two
for four), one above the other on a portrait one, four in a row across two monitors; moved to a monitor of another
shape, the panes re-arrange.

With the prior study (Shift+G), as PACS hang a follow-up: the study read on the top row (two of its series, three in
a window at least 1.5 times as wide as high), the patient's previous study below, each pane under the series
described alike, in the same window, at the same place in its stack. Another study's positions are another place in
the patient (another frame of reference), so a prior pane follows the pane above by the distance (mm along the slice
normal) between the images shown when they were hung or last linked: L off, line a prior pane up on the anatomy, L
on, and they scroll together from there.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QMouseEvent, QResizeEvent
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QVBoxLayout, QWidget

from zsmed.dicom.geometry import ImagePlane, link_slices, reference_line
from zsmed_desktop.viewer import ImageViewer

PlaneOf = Callable[[Path | None, int], ImagePlane | None]  # where an image (a frame of it) lies in the patient

MAX_PANES = 4
MAX_PRIOR_COLUMNS = 3  # with the prior study: up to three series of each, the current above the prior
DEFAULT_ASPECT = 1.5  # a window's width over its height where its size is not known yet
_PARALLEL = math.cos(math.radians(1.0))
_LOCALIZER_IMAGES = 2  # a series of this many images or fewer is hung last (scouts, localizers)


@dataclass(frozen=True)
class GridSeries:
    """A series as the grid hangs it: its key (to open it in the main window), its title, its images in slice
    order, their places along its slice normal (mm, or None) and that normal (or None)."""

    key: str
    title: str
    paths: tuple[Path, ...]
    positions: tuple[float, ...] | None
    normal: tuple[float, float, float] | None
    description: str = ""  # the Series Description, which a remembered hanging matches
    study: str = ""  # the Study Instance UID: panes of one study share positions, another study's do not


def hanging_order(series: Sequence[GridSeries], first_key: str | None) -> list[GridSeries]:
    """The series read first, then the others by the study's order, localizers (a few images) last."""
    first = [s for s in series if s.key == first_key]
    rest = [s for s in series if s.key != first_key]
    return first + sorted(rest, key=lambda s: len(s.paths) <= _LOCALIZER_IMAGES)  # stable: the study's order kept


def study_kind(modality: str | None, study_description: str | None) -> str:
    """What a remembered hanging is kept under: "MR · brain" (the description's words), or the modality alone."""
    words = " ".join(re.findall(r"[a-z0-9]+", (study_description or "").lower()))
    return " · ".join(x for x in ((modality or "").upper(), words) if x)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


@dataclass(frozen=True)
class PaneRule:
    """One pane of a remembered hanging: the description of the series it showed and its window preset ("lung",
    "file 1"; "" = the image's own window)."""

    description: str
    window: str = ""


def parse_rule(text: str) -> list[PaneRule]:
    """A hanging as kept in the settings (JSON: a list of {"series", "window"}, or of descriptions alone as kept
    before windows were); [] for anything else."""
    try:
        entries = json.loads(text or "[]")
    except ValueError:
        return []
    if not isinstance(entries, list):
        return []
    rule = []
    for entry in entries:
        if isinstance(entry, dict):
            rule.append(PaneRule(str(entry.get("series", "")), str(entry.get("window", "") or "")))
        else:
            rule.append(PaneRule(str(entry)))
    return rule


def hang_by_rule(ordered: Sequence[GridSeries], rule: Sequence[PaneRule | str]) -> list[GridSeries]:
    """``ordered`` (the default order) with pane k given the series whose description is ``rule[k]``'s (the same
    words, else the one sharing most of them, at least one), each series once — but a pane with a window of its
    own takes a series hung before it again where that is the one described (the same series in another
    window); a pane no series matches, and the panes after the rule's, take the rest in their order."""
    left = list(ordered)
    chosen: list[GridSeries | None] = []
    for entry in rule:
        pane = entry if isinstance(entry, PaneRule) else PaneRule(entry)
        words = _words(pane.description)
        match = next((s for s in left if words and _words(s.description) == words), None)
        if match is None and pane.window:
            again = next((s for s in chosen if s is not None and words and _words(s.description) == words), None)
            if again is not None:
                chosen.append(again)
                continue
        if match is None:
            best = max(left, key=lambda s: len(_words(s.description) & words), default=None)  # the first of ties
            match = best if best is not None and _words(best.description) & words else None
        if match is not None:
            left.remove(match)
        chosen.append(match)
    rest = iter(left)
    filled = [s if s is not None else next(rest, None) for s in chosen]
    return [s for s in filled if s is not None] + list(rest)


def grid_shape(count: int, aspect: float = DEFAULT_ASPECT) -> tuple[int, int]:
    """Rows and columns for ``count`` panes in a window ``aspect`` times as wide as high: the arrangement showing
    each (squarish) image largest, of equal ones the one leaving fewer panes empty. On a landscape monitor side by
    side up to three, then two by two; on a portrait one (a CR reading screen) one above the other; across two
    monitors four in a row."""
    count = max(count, 1)

    def image_size(shape: tuple[int, int]) -> float:
        rows, cols = shape
        return min(aspect / cols, 1.0 / rows)

    shapes = [(rows, math.ceil(count / rows)) for rows in range(1, count + 1)]
    return max(shapes, key=lambda s: (round(image_size(s), 9), -(s[0] * s[1] - count)))


def prior_columns(hung: Sequence[GridSeries], aspect: float) -> int:
    """How many of the study's series hang above the prior's (two rows): three where the window is wide enough
    that three show each image as large as two would (1.5 times as wide as high), else two; no more than the study
    has, localizers not counted while other series are left."""
    wanted = MAX_PRIOR_COLUMNS if aspect >= 1.5 else 2
    readable = sum(1 for s in hung if len(s.paths) > _LOCALIZER_IMAGES)
    return max(min(wanted, max(readable, 2), len(hung)), 1)


def parallel(a: GridSeries, b: GridSeries) -> bool:
    """Whether two series cut the same plane (their normals within 1°, either way) and both have positions."""
    if a.normal is None or b.normal is None or a.positions is None or b.positions is None:
        return False
    return abs(sum(x * y for x, y in zip(a.normal, b.normal, strict=True))) >= _PARALLEL


def along(series: GridSeries, normal: tuple[float, float, float]) -> tuple[float, ...] | None:
    """The series' positions counted along ``normal`` (its own normal may point the other way)."""
    if series.positions is None or series.normal is None:
        return None
    flip = 1.0 if sum(x * y for x, y in zip(series.normal, normal, strict=True)) > 0 else -1.0
    return tuple(p * flip for p in series.positions)


def follow_index(source: GridSeries, index: int, target: GridSeries) -> int:
    """The image of ``target`` nearest (in mm along the shared normal) to image ``index`` of ``source``."""
    assert source.positions is not None and source.normal is not None
    places = along(target, source.normal)  # normals pointing opposite ways count positions opposite ways
    assert places is not None
    place = source.positions[index]
    return min(range(len(places)), key=lambda k: abs(places[k] - place))


class _Pane(QWidget):
    """A series chooser over a viewer; a double-click on the image asks for the series in the main window."""

    open_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chooser = QComboBox()
        self.chooser.setToolTip("Hang another series of the study in this pane")
        self.viewer = ImageViewer()
        self.viewer.setMinimumSize(200, 200)
        self.series: GridSeries | None = None
        self.choices: list[GridSeries] = []  # what the pane's menu hangs: its study's series
        self.prior = False  # a pane of the prior study (the bottom row)
        self.anchor = 0  # the image shown when the panes were last lined up (hung, or linked with L)
        # the window preset the pane was hung in, or the reader chose in it ('': the image's own)
        self.window_preset = ""
        # the image zsmed put this pane at (hung, or following another): its display is no scroll of the reader's
        self.placed_at: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(1)
        layout.addWidget(self.chooser)
        layout.addWidget(self.viewer, 1)
        # where the mouse lands (the image's view), before the viewer's own double-click (fit) sees it
        self.viewer.view.viewport().installEventFilter(self)

    def eventFilter(self, watched: object, event: object) -> bool:
        if (watched is self.viewer.view.viewport() and isinstance(event, QMouseEvent)
                and event.type() == QMouseEvent.Type.MouseButtonDblClick
                and event.button() == Qt.MouseButton.LeftButton and self.series is not None):
            self.open_requested.emit(self.series.key)
            return True
        return False


class StudyGridWindow(QWidget):
    """Up to four series of one study in panes, parallel ones scrolling together (or up to three above the prior's)."""

    open_series = Signal(str)  # a pane double-clicked: the key of its series, for the main window
    closed = Signal()

    def __init__(self, parent: QWidget | None = None, plane_of: PlaneOf = lambda _path, _frame: None,
                 settings: QSettings | None = None) -> None:
        """``plane_of``: where an image lies in the patient (the main window's, which reads each header once);
        ``settings``: where the hangings the reader chose are kept (none: not kept)."""
        super().__init__(parent, Qt.WindowType.Window)
        self._plane_of = plane_of
        self._settings = settings
        self.kind = ""  # the kind of study shown ("MR · brain"), whose hanging the reader's choices set
        self.with_prior = False  # the prior study hung below (Shift+G)
        self._hanging_study = False  # True while show_study hangs the panes (not the reader's choice)
        self.active: _Pane | None = None  # the pane the reader scrolled last: its image cuts the others
        self.resize(1200, 800)
        self.setMinimumSize(640, 480)
        self.panes: list[_Pane] = []
        self.shape = (0, 0)  # the panes' rows and columns
        self.linked = True
        self.grid = QGridLayout()
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.setSpacing(3)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setContentsMargins(6, 2, 6, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.grid, 1)
        layout.addWidget(self.note)
        self.link_action = QAction("Link the panes' scrolling", self)
        self.link_action.setCheckable(True)
        self.link_action.setChecked(True)
        self.link_action.setShortcut(QKeySequence("L"))
        self.link_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.link_action.toggled.connect(self.set_linked)
        self.addAction(self.link_action)

    def show_study(self, series: Sequence[GridSeries], title: str, first_key: str | None = None,
                   kind: str = "", prior: Sequence[GridSeries] = (), prior_title: str = "") -> None:
        """Hang ``series`` (one study's image series, in the study's order), the one read (``first_key``) first,
        or as the reader last hung a study of this ``kind``; with ``prior`` (the previous study's image series),
        two or three of each (by the window's shape), the current above the prior."""
        self.kind = kind
        self.with_prior = bool(prior)
        rule = self.remembered(kind)
        hung = hanging_order(series, first_key)
        if rule:
            hung = hang_by_rule(hung, rule)
        current = list(dict.fromkeys(hung))  # the panes' menus: each series once, in the order hung
        windows = [rule[k].window if k < len(rule) else "" for k in range(len(hung))]  # each pane's, as kept
        for pane in self.panes:
            self.grid.removeWidget(pane)
            pane.hide()  # not drawn over the new panes until it is deleted
            pane.deleteLater()
        self.panes = []
        self.active = None
        aspect = self.width() / max(self.height(), 1)
        if prior:
            columns = prior_columns(hung, aspect)
            top = list(zip(hung[:columns], windows[:columns], strict=True))
            # below each pane, the prior's series described alike, in the same window
            below = hang_by_rule(hanging_order(prior, None), [PaneRule(s.description, w) for s, w in top])
            prior_choices = list(dict.fromkeys(below))
            layout = ([(s, current, False, w) for s, w in top]
                      + [(s, prior_choices, True, w) for s, (_above, w) in zip(below, top, strict=False)])
            rows, cols = 2, columns
        else:
            count = min(len(hung), MAX_PANES)
            layout = [(hung[k], current, False, windows[k]) for k in range(count)]
            rows, cols = grid_shape(count, aspect)
        self._hanging_study = True
        for chosen, choices, is_prior, window in layout:
            pane = _Pane(self)
            pane.choices, pane.prior, pane.window_preset = choices, is_prior, window
            pane.chooser.addItems([s.title for s in choices])
            pane.chooser.setToolTip("Hang another series of the prior study in this pane" if is_prior
                                    else "Hang another series of the study in this pane")
            pane.chooser.setCurrentIndex(choices.index(chosen))
            pane.chooser.currentIndexChanged.connect(lambda choice, pane=pane: self._hang(pane, choice))
            pane.viewer.current_changed.connect(lambda _path, pane=pane: self._scrolled(pane))
            pane.viewer.window_preset_chosen.connect(lambda name, pane=pane: self._windowed(pane, name))
            pane.open_requested.connect(self.open_series)
            self.panes.append(pane)
            self._hang(pane, choices.index(chosen))
        self._hanging_study = False
        self._arrange(rows, cols)
        self._line_up()
        self.active = self.panes[0] if self.panes else None
        shown = len({p.series for p in self.panes if not p.prior and p.series is not None})
        self.note.setText(
            (f"Hung as you hung the last {kind} study. " if rule else "")
            + (f"{shown} of {len(current)} series shown; each pane's menu hangs another. "
               if shown < len(current) else "")
            + ("Below, the prior study: each pane follows the one above by the distance they were lined up at "
               "(L off, line one up on the anatomy, L on). " if prior else "")
            + "Panes in the same plane scroll together (L unlinks them); a pane's number keys set its window, "
              "kept with the hanging; a double-click opens a series in the main window.")
        self.setWindowTitle(f"zsmed — the study in panes: {title}" + (f"  ·  below: {prior_title}" if prior else ""))

    def _arrange(self, rows: int, cols: int) -> None:
        """The panes placed row by row in ``rows`` x ``cols``."""
        for pane in self.panes:
            self.grid.removeWidget(pane)
        for k, pane in enumerate(self.panes):
            self.grid.addWidget(pane, k // cols, k % cols)
        # a grid of fewer rows or columns than before: those left empty take no room
        for r in range(max(rows, self.grid.rowCount())):
            self.grid.setRowStretch(r, 1 if r < rows else 0)
        for c in range(max(cols, self.grid.columnCount())):
            self.grid.setColumnStretch(c, 1 if c < cols else 0)
        self.shape = (rows, cols)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """The window moved to a monitor of another shape (or resized): the study's panes re-arranged to show the
        images largest (their series, places and windows kept; the prior's rows stay as hung, Shift+G re-hangs)."""
        super().resizeEvent(event)
        if self.panes and not self.with_prior:
            shape = grid_shape(len(self.panes), self.width() / max(self.height(), 1))
            if shape != self.shape:
                self._arrange(*shape)

    def remembered(self, kind: str) -> list[PaneRule]:
        """The panes (series descriptions and windows) the reader last hung a study of ``kind`` with (none: the
        default)."""
        if self._settings is None or not kind:
            return []
        return parse_rule(str(self._settings.value(f"hanging/{kind}", "") or ""))

    def _remember(self) -> None:
        """The reader hung a series or chose a window by hand: this arrangement for studies of this kind from now
        on (the study read's panes: the prior's follow them)."""
        if self._settings is not None and self.kind:
            rule = [{"series": p.series.description, "window": p.window_preset}
                    for p in self.panes if p.series is not None and not p.prior]
            self._settings.setValue(f"hanging/{self.kind}", json.dumps(rule))

    def _windowed(self, pane: _Pane, name: str) -> None:
        """The reader gave ``pane`` a window preset by key ('' = the image's own): kept with the hanging."""
        pane.window_preset = name
        self._remember()

    def _hang(self, pane: _Pane, choice: int) -> None:
        if not 0 <= choice < len(pane.choices):
            return
        chosen = pane.choices[choice]
        pane.series = chosen
        if not self._hanging_study:
            pane.window_preset = ""  # another series by hand: in its own window
            self._remember()
        start = len(chosen.paths) // 2
        others = [p for p in self.panes if p is not pane and p.series is not None and parallel(p.series, chosen)]
        same = next((p for p in others if p.series is not None and p.series.study == chosen.study), None)
        other = next((p for p in others if p.series is not None and p.series.study != chosen.study), None)
        if self.linked and same is not None and same.series is not None:
            start = follow_index(same.series, self._shown_index(same), chosen)
        elif other is not None and other.series is not None:  # another study: the same place in its stack
            count = len(other.series.paths)
            fraction = self._shown_index(other) / (count - 1) if count > 1 else 0.5
            start = round(fraction * (len(chosen.paths) - 1))
        pane.placed_at = start  # its display (now or once loaded) is not the reader scrolling it
        # its title is the pane's menu: none drawn over the image
        pane.viewer.set_images(list(chosen.paths), start, window=pane.window_preset)
        if not self._hanging_study:
            self._line_up()

    @staticmethod
    def _shown_index(pane: _Pane) -> int:
        """The image a pane shows, or will once loaded (where zsmed put it)."""
        return pane.placed_at if pane.placed_at is not None else pane.viewer.current_index()

    def _line_up(self) -> None:
        """The panes of different studies are lined up as they show now (what each follows the others by)."""
        for pane in self.panes:
            pane.anchor = self._shown_index(pane)

    def set_linked(self, on: bool) -> None:
        self.linked = on
        if on:
            self._line_up()  # as the reader lined them up while unlinked
        if self.link_action.isChecked() != on:
            self.link_action.setChecked(on)

    def _scrolled(self, pane: _Pane) -> None:
        """The reader moved ``pane``: the panes in its plane go to the slice nearest its own (in another study,
        by the distance they were lined up at)."""
        index = pane.viewer.current_index()
        placed, pane.placed_at = pane.placed_at, None
        if placed != index:
            self.active = pane
        self._update_reference_lines()
        source = pane.series
        if placed == index or not self.linked or source is None or source.positions is None or source.normal is None:
            return
        if not 0 <= index < len(source.positions):
            return
        for other in self.panes:
            target_series = other.series
            if other is pane or target_series is None or not parallel(source, target_series):
                continue
            if target_series.study == source.study:
                target = follow_index(source, index, target_series)
            else:
                mine, theirs = along(source, source.normal), along(target_series, source.normal)
                link = link_slices(pane.anchor, mine, other.anchor, theirs)
                target = link.follow(index, mine, theirs, len(target_series.paths))
            if target != other.viewer.current_index():
                other.placed_at = target
                other.viewer.go_to(target)

    def _update_reference_lines(self) -> None:
        """On every pane but the active one, where the active pane's image cuts it (nothing for parallel
        planes, images without geometry or another frame of reference)."""
        active = self.active
        cutting = (self._plane_of(active.viewer.current_path(), active.viewer.current_frame())
                   if active is not None else None)
        for pane in self.panes:
            shown = None if pane is active else self._plane_of(pane.viewer.current_path(), pane.viewer.current_frame())
            pane.viewer.set_reference_line(reference_line(cutting, shown) if cutting and shown else None)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closed.emit()
        super().closeEvent(event)


__all__ = ["MAX_PANES", "MAX_PRIOR_COLUMNS", "GridSeries", "PaneRule", "StudyGridWindow", "along", "follow_index",
           "grid_shape", "hang_by_rule", "hanging_order", "parallel", "parse_rule", "prior_columns", "study_kind"]
