"""Presentation states in the app: the view saved for the PACS, and a saved one shown again.

``save_view`` writes how the viewer shows its image — window, inversion, rotation and flip, and the
rulers, regions, angles and arrows with their figures and notes — as a Softcopy Presentation State
(``zsmed.report.presentation``), which PACS viewers show over the image as it was read. ``show_state``
puts a saved state back on the viewer: the marks it holds (measured again on the image), its window,
inversion and turn. ``SavedStates`` keeps track of the states a scan found and the app saved, read
once each, to say which images have one. No Qt widgets here beyond the viewer these act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from zsmed.errors import ZsmedError
from zsmed.report.measurements import PixelSpacing
from zsmed.report.presentation import (
    PRESENTATION_STATE_CLASSES,
    DisplaySettings,
    Graphic,
    PresentationState,
    read_presentation_state,
    write_presentation_state,
)
from zsmed_desktop.viewer import ImageViewer


def viewer_graphics(viewer: ImageViewer) -> list[Graphic]:
    """The viewer's marks on the image shown, with the text it draws beside each."""
    return ([Graphic("ruler", (m.start, m.end), m.text) for m in viewer.measurements()]
            + [Graphic("region", (r.start, r.end), r.text) for r in viewer.rois()]
            + [Graphic("angle", (a.first_end, a.vertex, a.second_end), a.text) for a in viewer.angles()]
            + [Graphic("arrow", (a.tail, a.head), a.note) for a in viewer.arrows()])


def viewer_display(viewer: ImageViewer) -> DisplaySettings:
    return DisplaySettings(window=viewer.window_level(), inverted=viewer.is_inverted(), turn=viewer.turn(),
                           area=viewer.shown_area())


def save_view(viewer: ImageViewer, reader: str, out_dir: Path | None) -> Path:
    """The view of the image shown as a presentation state next to its file (``out_dir`` None) or in
    ``out_dir``. Raises ``ZsmedError`` (one line naming the file) where none can be written."""
    path, frame = viewer.current_path(), viewer.current_frame_data()
    if path is None or frame is None:
        raise ZsmedError("no image is shown: nothing to save")
    spacing = PixelSpacing(frame.spacing[0], frame.spacing[1]) if frame.spacing is not None else None
    return write_presentation_state(
        path, frame=viewer.current_frame(), graphics=viewer_graphics(viewer), display=viewer_display(viewer),
        spacing=spacing, reader=reader, out_dir=out_dir if out_dir is not None else path.parent)


@dataclass(frozen=True)
class Shown:
    """What showing a state did: the marks put on the image, the marks it holds for this image that the
    viewer could not place (outside the image), and objects of other viewers it does not draw."""

    marks: int
    not_placed: int
    not_shown: int


def show_state(viewer: ImageViewer, state: PresentationState, sop_instance_uid: str) -> Shown:
    """Put ``state`` on the image shown (SOP Instance UID ``sop_instance_uid``): its window, inversion and
    turn, and its marks for the frame shown in place of the viewer's."""
    frame = viewer.current_frame_data()
    photometric = "MONOCHROME1" if frame is not None and frame.inverted else "MONOCHROME2"
    display = state.display_for(sop_instance_uid, photometric)
    viewer.clear_measurements()
    viewer.set_turn(display.turn)
    if display.window is not None and frame is not None and not frame.colour:
        viewer.set_window(*display.window)
    if viewer.is_inverted() != display.inverted:
        viewer.invert()
    if display.area is not None:
        viewer.show_area(*display.area)
    placed = not_placed = 0
    for graphic in state.graphics_on(sop_instance_uid, viewer.current_frame()):
        points = graphic.points
        if graphic.kind == "ruler":
            mark: object = viewer.measure(points[0], points[1])
        elif graphic.kind == "region":
            mark = viewer.roi(points[0], points[1])
        elif graphic.kind == "angle":
            mark = viewer.angle(points[0], points[1], points[2])
        else:
            mark = viewer.arrow(points[0], points[1], graphic.text)
        placed, not_placed = (placed + 1, not_placed) if mark is not None else (placed, not_placed + 1)
    return Shown(placed, not_placed, state.not_shown)


def describe(state: PresentationState) -> str:
    """'saved 2026-12-07 14:02 by Doe, Jane' (what the file says of itself)."""
    who = state.creator.replace("^", " ").strip()
    parts = [f"saved {state.created}" if state.created else "", f"by {who}" if who else ""]
    return " ".join(p for p in parts if p) or state.path.name


class SavedStates:
    """The presentation states the app knows of — found by a scan or saved here — each file read once
    (a damaged one is not offered: the scan's Problems tab names unreadable files)."""

    def __init__(self) -> None:
        self._states: dict[Path, PresentationState | None] = {}  # None: could not be read
        self._files: list[Path] = []

    def set_files(self, paths: Iterable[Path]) -> None:
        """The states of a new scan (its files with a presentation state's SOP class)."""
        self._files = [Path(p) for p in paths]

    def add(self, path: Path) -> None:
        """A state saved here (read again: a file of that name may have been replaced)."""
        self._states.pop(Path(path), None)
        if Path(path) not in self._files:
            self._files.append(Path(path))

    def for_image(self, sop_instance_uid: str) -> list[PresentationState]:
        """The states for that image, the newest first."""
        return self._newest_first(s for s in map(self._state, self._files)
                                  if s is not None and sop_instance_uid in s.referenced)

    def in_files(self, paths: Iterable[Path]) -> list[PresentationState]:
        """The readable states among ``paths`` (a presentation-state series' files), the newest first."""
        return self._newest_first(s for s in map(self._state, map(Path, paths)) if s is not None)

    @staticmethod
    def _newest_first(states: Iterable[PresentationState]) -> list[PresentationState]:
        return sorted(states, key=lambda s: (s.created, s.path.name), reverse=True)

    def _state(self, path: Path) -> PresentationState | None:
        if path not in self._states:
            try:
                self._states[path] = read_presentation_state(path)
            except (ZsmedError, OSError):
                self._states[path] = None
        return self._states[path]


__all__ = ["PRESENTATION_STATE_CLASSES", "SavedStates", "Shown", "describe", "save_view", "show_state",
           "viewer_display", "viewer_graphics"]
