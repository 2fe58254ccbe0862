"""A CT or MR series as one volume, and its multiplanar reformats (axial, coronal, sagittal, thick-slab
MIP / mean / MinIP), as pure functions over arrays: no Qt, no torch.

``load_volume_job`` reads a series into a ``Volume``: float32 voxels in modality units (the viewer's own
rescale), slices sorted along the slice normal, the spacing between them taken from their positions. A
slice is a single-frame image or a frame of an enhanced multi-frame file (a modern CT or MR series in one
file: each frame's position, orientation, spacing and rescale in its functional groups). It refuses, with
one line naming the file (and the frame), whatever would make a reformat lie about the anatomy: too few
slices, slices of another size or orientation, no geometry, colour, a missing slice or irregular gaps,
several volumes in one (echoes, phases), slices not stacked straight (a tilted gantry), a multi-frame file
whose frames have no positions (a cine), or a volume too big for memory.

``reformat`` cuts a plane of the volume as the patient lies, not as the scanner stored it: the plane
"axial" of a sagittal MR is a true axial. Images are oriented as PACS viewers show them (radiological
convention: axial and coronal from the patient's feet / front, the patient's right on the image's left;
sagittal from the patient's left, anterior on the image's left; head up), and slice numbers grow towards
the patient's left (sagittal), back (coronal) and head (axial): the DICOM patient axes.

``oblique_through`` makes a plane at any angle from a line drawn on a reformat (along a vessel, a disc, a
bone's axis): the plane through the line square to the image drawn on, with parallel slices across the
whole volume at its finest spacing, square pixels, trilinear between voxel centres, shown turned as the
standard plane it is nearest; ``reformat``, ``reformat_plane``, ``plane_count`` and ``plane_spacing`` take
it where they take a plane's name, so the reference lines, the 3D cursor and the saved series follow.
``tilted`` turns a slice about its own axes (an oblique plane); ``curved_through`` unrolls the surface through
a path drawn on a slice (a curved reformat: one image, its columns mm along the path, on no one plane).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from zsmed.dicom.display import (
    apply_rescale,
    apply_window,
    direction_letters,
    frame_group_value,
    frame_pixel_spacing,
    frame_view,
    is_inverted,
    mask_stored_bits,
    pixel_spacing,
    to_display_uint8,
    voi_options,
)
from zsmed.dicom.geometry import ImagePlane, slice_positions
from zsmed.errors import ZsmedError
from zsmed.progress import Job, Progress

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

Plane = Literal["axial", "coronal", "sagittal"]
SlabMode = Literal["mip", "mean", "minip"]
PLANES: tuple[Plane, ...] = ("axial", "coronal", "sagittal")
SLAB_MODES: tuple[SlabMode, ...] = ("mip", "mean", "minip")

# an oblique plane's slab is sampled at most this many planes deep (evenly): a 50 mm MIP stays interactive
MAX_OBLIQUE_SLAB_PLANES = 32
# the standard planes' (right, down) directions in the patient (LPS), as ``_PLANE_AXES`` lays them out: an
# oblique plane is shown turned as the standard plane it is nearest (an oblique axial as an axial)
_STANDARD_VIEW: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}

MIN_SLICES = 3  # fewer is not a volume: a coronal of 2 slices is 2 lines of pixels
# 1.5 GB of float32: a 1400-slice 512 x 512 CT. More would crowd out the app (and its decoder) on a reading
# station; the reader can open half the range.
MAX_VOLUME_BYTES = 1_500_000_000
# a gap this many times the usual one (or that many times shorter) is a missing slice, a series in parts or
# several volumes interleaved: a reformat across it would misplace the anatomy
GAP_TOLERANCE = 1.5
_SAME_ORIENTATION = 1e-3  # direction cosines closer than this are the same orientation (rounding in headers)


class ReformatError(ZsmedError, ValueError):
    """A series that cannot be reformatted: too few slices, mixed sizes or orientations, missing
    geometry, colour, irregular gaps, too big."""


@dataclass(frozen=True)
class Volume:
    """A series as one volume. ``voxels[k, i, j]``: slice k (sorted along ``normal``), row i, column j.

    The centre of voxel (k, i, j) is, in the patient (DICOM LPS, mm),
    ``origin + k * spacing[0] * normal + i * spacing[1] * column_cosines + j * spacing[2] * row_cosines``.
    """

    voxels: np.ndarray  # float32 (slices, rows, columns) in modality units (HU for CT); read-only
    spacing: tuple[float, float, float]  # (between slices, between rows, between columns), mm
    orientation: tuple[float, ...]  # Image Orientation (Patient): row direction then column direction cosines
    normal: tuple[float, float, float]  # row cosines x column cosines: the direction the slices are stacked in
    origin: tuple[float, float, float]  # Image Position (Patient) of the first slice: its first voxel's centre
    paths: tuple[Path, ...]  # the file of each slice, in slice order (a multi-frame file once per frame)
    modality: str = ""
    hounsfield: bool = False  # values are HU: the CT window presets apply
    inverted: bool = False  # MONOCHROME1: low values are shown white
    windows: tuple[tuple[float, float], ...] = ()  # the first slice's own windows (centre, width)
    frame_of_reference: str = ""  # the first slice's Frame of Reference UID: what its positions are in
    frames: tuple[int, ...] = ()  # the frame of each slice in its file (0 for a single-frame image)

    @cached_property
    def lowest(self) -> float:
        """The lowest value in the volume (air on a CT): what an oblique plane shows outside it, black."""
        return float(self.voxels.min()) if self.voxels.size else 0.0

    @property
    def images(self) -> tuple[tuple[Path, int], ...]:
        """(file, frame) of each slice, in slice order: where the viewer shows it."""
        frames = self.frames or (0,) * len(self.paths)
        return tuple(zip(self.paths, frames, strict=True))

    @property
    def row_cosines(self) -> tuple[float, float, float]:
        """The patient direction along a row: of increasing column index."""
        x, y, z = self.orientation[:3]
        return x, y, z

    @property
    def column_cosines(self) -> tuple[float, float, float]:
        """The patient direction down a column: of increasing row index."""
        x, y, z = self.orientation[3:]
        return x, y, z


@dataclass(frozen=True)
class Oblique:
    """A plane at any angle through a volume, and its parallel slices (``oblique_through``). Its pixels are
    square, ``pixel_mm`` apart; slice k's pixel (row i, column j) is, in the patient (LPS, mm),
    ``first + k * step_mm * normal + i * pixel_mm * down + j * pixel_mm * right``, where ``normal`` is
    ``right`` x ``down``. The slices cover the whole volume; ``through`` is the one through the line drawn."""

    first: tuple[float, float, float]
    right: tuple[float, float, float]  # unit: the direction of increasing column
    down: tuple[float, float, float]  # unit, square to ``right``: of increasing row
    pixel_mm: float
    step_mm: float
    rows: int
    columns: int
    count: int
    through: int
    nearest: Plane  # the standard plane it is turned as: "an oblique coronal"

    @property
    def normal(self) -> tuple[float, float, float]:
        n = np.cross(np.asarray(self.right), np.asarray(self.down))
        return float(n[0]), float(n[1]), float(n[2])


@dataclass(frozen=True)
class Curved:
    """A curved reformat (``curved_through``): the surface swept by a path drawn on a reformat (along a vessel,
    the mandible, the spine) in the direction the reader looked at it, unrolled into one image. Column j is
    the point ``j * pixel_mm`` along the path (so a distance across the columns is a length along the path),
    row i is that point moved ``top_mm + i * pixel_mm`` along ``across``. One image: no slices, no slab."""

    path: tuple[tuple[float, float, float], ...]  # the path's points (patient mm), as drawn
    across: tuple[float, float, float]  # unit: the direction the rows go down
    pixel_mm: float
    rows: int
    columns: int
    top_mm: float
    length_mm: float  # the path's length

    count = 1


AnyPlane = Plane | Oblique | Curved  # a standard plane by name, an oblique one, or a curved surface


def plane_word(plane: AnyPlane) -> str:
    """The plane in words for a description or a file name: "coronal", "oblique", "curved"."""
    if isinstance(plane, Curved):
        return "curved"
    return "oblique" if isinstance(plane, Oblique) else plane


@dataclass(frozen=True)
class Reformat:
    """One image of a plane of a volume: a slice, or a slab through several."""

    image: np.ndarray  # float32 (rows, columns) in modality units
    spacing: tuple[float, float]  # (row, column) spacing in mm: the image's true aspect
    count: int  # slices in this plane
    index: int  # the one shown (the slab's centre)
    edges: tuple[str, str, str, str]  # patient directions at the (left, right, top, bottom) edges: "R", "H" …
    plane: AnyPlane
    slab_slices: int = 1  # slices the slab's MIP / mean / MinIP is taken over
    slab_mm: float = 0.0  # their extent along the plane's normal (0: one slice)
    mode: SlabMode = "mip"
    # where the slice is along the plane's patient axis (DICOM x, y or z); an oblique's: from the line drawn
    location_mm: float = 0.0
    location_letters: tuple[str, str] = ("", "")  # that axis's (negative, positive) ends: ("R", "L") …


# --- reading a series -----------------------------------------------------------------------------
SliceDecoder = Callable[[Path], np.ndarray]  # a file's stored values: (rows, columns) or (frames, rows, columns)


def decode_in_process(path: Path) -> np.ndarray:
    """A file's stored values (every frame), decoded here (the desktop app passes its contained decoder)."""
    from zsmed.dicom.decode import load_dataset_and_pixels

    return load_dataset_and_pixels(path)[1]


@dataclass(frozen=True)
class _Slice:
    path: Path
    header: Dataset
    position: tuple[float, float, float]
    orientation: tuple[float, ...]
    size: tuple[int, int]  # (rows, columns)
    spacing: tuple[float, float]  # (row, column) mm
    frame: int = 0  # the frame of a multi-frame file
    frames_in_file: int = 1

    @property
    def name(self) -> str:
        """The slice as a reader finds it: the file's name, with the frame in a multi-frame file."""
        return self.path.name if self.frames_in_file == 1 else f"frame {self.frame + 1} of {self.path.name}"


def load_volume_job(paths: Sequence[str | Path], *, decode: SliceDecoder | None = None) -> Job[Volume]:
    """Read a series (single-frame images, or enhanced multi-frame files: every frame a slice) into a
    ``Volume``, yielding ``Progress`` as each file is checked and each slice read (the job stops at the
    next one when cancelled). Every header is checked before any pixel is decoded, so a series that
    cannot be reformatted is refused at once. ``decode``: a file's stored values (default: decoded in
    this process); a multi-frame file is decoded once for all its frames."""
    files = [Path(p) for p in paths]
    if not files:
        raise ReformatError(f"an empty series cannot be reformatted (at least {MIN_SLICES} slices are needed)")
    slices: list[_Slice] = []
    for done, path in enumerate(files, 1):
        slices.extend(_read_slices(path))
        # the whole job's steps: each file checked, then each slice read (counted from the files so far)
        expected = len(files) + round(len(slices) * len(files) / done)
        yield Progress(done, expected, f"checking file {done} of {len(files)}")
    if len(slices) < MIN_SLICES:
        what = "image" if len(files) > 1 or slices[0].frames_in_file == 1 else "frame"
        raise ReformatError(f"a series of {len(slices)} {what}{'s' if len(slices) != 1 else ''} cannot be "
                            f"reformatted (at least {MIN_SLICES} slices are needed)", path=files[0])
    slices, slice_gap = _stacked(slices)
    first = slices[0]
    rows, columns = first.size
    _check_memory(len(slices), rows, columns, first.path)
    voxels = np.empty((len(slices), rows, columns), dtype=np.float32)
    read = decode or decode_in_process
    multi_frame: dict[Path, np.ndarray] = {}  # decoded once, kept while their frames are read
    for k, item in enumerate(slices):
        if item.frames_in_file == 1:
            stored = read(item.path)
        elif item.path not in multi_frame:
            stored = multi_frame[item.path] = read(item.path)
        else:
            stored = multi_frame[item.path]
        voxels[k] = _modality_values(_frame_of(stored, item), item)
        yield Progress(len(files) + k + 1, len(files) + len(slices), f"reading slice {k + 1} of {len(slices)}")
    multi_frame.clear()
    voxels.flags.writeable = False  # shared by every reformat and the GUI thread: nobody may change it
    r, c = first.orientation[:3], first.orientation[3:]
    normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    header = first.header
    return Volume(
        voxels=voxels, spacing=(slice_gap, *first.spacing), orientation=first.orientation, normal=normal,
        origin=first.position, paths=tuple(s.path for s in slices), frames=tuple(s.frame for s in slices),
        modality=str(header.get("Modality", "") or "").strip().upper(), hounsfield=_is_hounsfield(header),
        inverted=is_inverted(header), windows=_windows(header),
        frame_of_reference=str(header.get("FrameOfReferenceUID", "") or "").strip())


def _read_slices(path: Path) -> list[_Slice]:
    """A file's slices (one, or each frame of an enhanced multi-frame file) with the geometry a reformat
    needs; ``ReformatError`` naming the file (and frame) without it."""
    from zsmed.dicom.decode import number_of_frames, open_dataset

    header, _notes = open_dataset(path, stop_before_pixels=True)
    photometric = str(header.get("PhotometricInterpretation", "") or "").strip().upper()
    if int(header.get("SamplesPerPixel", 1) or 1) != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2", ""):
        raise ReformatError(f"a colour image ({photometric or 'several samples per pixel'}): only grey CT, MR "
                            "or PET series can be reformatted", path=path)
    rows, columns = int(header.get("Rows") or 0), int(header.get("Columns") or 0)
    if rows <= 0 or columns <= 0:
        raise ReformatError("no image size (Rows, Columns)", path=path)
    frames = number_of_frames(header)
    enhanced = bool(header.get("PerFrameFunctionalGroupsSequence") or header.get("SharedFunctionalGroupsSequence"))
    if frames > 1 and not enhanced:
        # a cine, a multi-frame ultrasound or an old nuclear-medicine file: one position for all its frames
        raise ReformatError(f"a multi-frame file of {frames} frames without a position for each: its frames "
                            "cannot be placed in a volume", path=path)
    per_frame = header.get("PerFrameFunctionalGroupsSequence")
    if frames > 1 and (not per_frame or len(per_frame) != frames):
        # a damaged or hostile header: Number of Frames is not checked against anything else before this
        described = len(per_frame) if per_frame else 0
        raise ReformatError(f"Number of Frames says {frames} where the file describes {described}: its frames "
                            "cannot be placed in a volume", path=path)
    return [_frame_slice(path, header, frame, frames, (rows, columns)) for frame in range(frames)]


def _frame_slice(path: Path, header: Dataset, frame: int, frames: int, size: tuple[int, int]) -> _Slice:
    """Frame ``frame`` of a file as a slice: its position and orientation from the file's top level, else
    (an enhanced object) from its functional groups."""
    where = f"frame {frame + 1}: " if frames > 1 else ""
    position = _numbers(header.get("ImagePositionPatient")
                        or frame_group_value(header, frame, "PlanePositionSequence", "ImagePositionPatient"), 3)
    orientation = _numbers(header.get("ImageOrientationPatient")
                           or frame_group_value(header, frame, "PlaneOrientationSequence", "ImageOrientationPatient"),
                           6)
    if position is None or orientation is None:
        named = (("Image Position", position), ("Image Orientation", orientation))
        missing = " and ".join(name for name, value in named if value is None)
        raise ReformatError(f"{where}no {missing} (Patient): the slice cannot be placed in a volume", path=path)
    spacing = frame_pixel_spacing(header, frame) or pixel_spacing(header)
    if spacing is None:
        raise ReformatError(f"{where}no Pixel Spacing: a reformat's distances would be unknown", path=path)
    x, y, z = position
    return _Slice(path, header, (x, y, z), orientation, size, spacing, frame, frames)


def _frame_of(stored: np.ndarray, item: _Slice) -> np.ndarray:
    """A slice's stored values out of its file's decoded array (every frame of a multi-frame file)."""
    if item.frames_in_file == 1 and stored.ndim == 2:
        return stored
    if stored.ndim != 3 or stored.shape[0] != item.frames_in_file:
        raise ReformatError(f"decoded as {stored.shape} where the header says {item.frames_in_file} frames of "
                            f"{item.size[0]} x {item.size[1]}", path=item.path)
    return stored[item.frame]


def _numbers(value: Any, count: int) -> tuple[float, ...] | None:
    """``count`` finite numbers from a multi-valued element, else None."""
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and all(math.isfinite(n) for n in numbers) else None


def _stacked(slices: list[_Slice]) -> tuple[list[_Slice], float]:
    """The slices in order along their normal and the distance between them (the median gap), or
    ``ReformatError`` naming the first slice that does not fit the others."""
    first = slices[0]
    for item in slices[1:]:
        if item.size != first.size:
            raise ReformatError(f"{item.size[1]} x {item.size[0]} pixels where the first slice ({first.name}) "
                                f"has {first.size[1]} x {first.size[0]}: not one volume", path=item.path)
        if max(abs(a - b) for a, b in zip(item.orientation, first.orientation, strict=True)) > _SAME_ORIENTATION:
            raise ReformatError(f"{_frame_words(item)}oriented otherwise than the first slice ({first.name}): "
                                "slices of several planes (a localizer?) are not one volume", path=item.path)
        if max(abs(a - b) / b for a, b in zip(item.spacing, first.spacing, strict=True)) > 0.01:
            raise ReformatError(f"{_frame_words(item)}pixel spacing {item.spacing[0]:g} x {item.spacing[1]:g} mm where "
                                f"the first slice ({first.name}) has {first.spacing[0]:g} x {first.spacing[1]:g} mm",
                                path=item.path)
    positions = slice_positions([s.position for s in slices], first.orientation)
    assert positions is not None  # every slice has a position and the orientation is known
    order = sorted(range(len(slices)), key=lambda k: positions[k])
    ordered = [slices[k] for k in order]
    along = [positions[k] for k in order]
    gaps = [later - earlier for earlier, later in itertools.pairwise(along)]
    for k, gap in enumerate(gaps):  # first: a repeated position explains the odd gaps it leaves elsewhere
        if gap < 0.01:
            here, before = ordered[k + 1], ordered[k]
            raise ReformatError(f"{_frame_words(here)}at the same position as {before.name}: the series holds "
                                "more than one volume (echoes, phases or a repeat)", path=here.path)
    usual = statistics.median(gaps)
    for k, gap in enumerate(gaps):
        here, before = ordered[k + 1], ordered[k]
        if gap > GAP_TOLERANCE * usual:
            raise ReformatError(f"{_frame_words(here)}{gap:.3g} mm from the slice before ({before.name}) where the "
                                f"slices are {usual:.3g} mm apart: a slice is missing or the series is in parts, "
                                "and a reformat across the gap would misplace the anatomy", path=here.path)
        if gap * GAP_TOLERANCE < usual:
            raise ReformatError(f"{_frame_words(here)}{gap:.3g} mm from the slice before ({before.name}) where the "
                                f"slices are {usual:.3g} mm apart: irregular spacing, and a reformat would "
                                "misplace the anatomy", path=here.path)
    _check_straight(ordered, along)
    return ordered, float(usual)


def _frame_words(item: _Slice) -> str:
    """The start of a message about one frame of a multi-frame file (the file itself is named apart)."""
    return f"frame {item.frame + 1}: " if item.frames_in_file > 1 else ""


def _check_straight(ordered: list[_Slice], along: list[float]) -> None:
    """Refuse slices that drift sideways as they go (a tilted gantry): the volume is then sheared, and
    a reformat stacked straight would bend the anatomy. Drift of up to one pixel over the whole stack is
    rounding in the headers."""
    first, last = ordered[0], ordered[-1]
    r, c = np.asarray(first.orientation[:3]), np.asarray(first.orientation[3:])
    step = np.asarray(last.position) - np.asarray(first.position)
    sideways = math.hypot(float(step @ r), float(step @ c))
    if sideways > max(first.spacing):
        tilt = math.degrees(math.atan2(sideways, abs(along[-1] - along[0])))
        raise ReformatError(f"{_frame_words(last)}the slices drift {sideways:.3g} mm sideways from the first "
                            f"({first.name}): "
                            f"a gantry tilted by {tilt:.1f}°, and a reformat would shear the anatomy", path=last.path)


def _check_memory(slices: int, rows: int, columns: int, path: Path) -> None:
    size = slices * rows * columns * np.dtype(np.float32).itemsize
    if size > MAX_VOLUME_BYTES:
        raise ReformatError(f"{slices} slices of {columns} x {rows} take {size / 1e9:.1f} GB of memory; zsmed "
                            f"reformats at most {MAX_VOLUME_BYTES / 1e9:.1f} GB (open part of the series)", path=path)


def _modality_values(stored: np.ndarray, item: _Slice) -> np.ndarray:
    """A slice's stored values in modality units, exactly as the viewer computes them (masked stored
    bits, then the modality LUT or rescale slope / intercept of this slice's own header)."""
    if stored.shape != item.size:
        raise ReformatError(f"{_frame_words(item)}decoded as {stored.shape} where the header says "
                            f"{item.size[0]} x {item.size[1]}",
                            path=item.path)
    view = frame_view(item.header, item.frame)
    values = apply_rescale(mask_stored_bits(stored, view), view)
    return np.asarray(values, dtype=np.float32)


def _is_hounsfield(header: Dataset) -> bool:
    """As the viewer decides it (``modality_frame``): CT rescaled to HU, or a Rescale Type of HU."""
    rescale_type = str(header.get("RescaleType", "") or "").strip().upper()
    modality = str(header.get("Modality", "") or "").strip().upper()
    return rescale_type == "HU" or (modality == "CT" and rescale_type in ("", "HU"))


def _windows(header: Dataset) -> tuple[tuple[float, float], ...]:
    """The file's windows (centre, width); its VOI LUTs are left out (they are per-slice tables)."""
    try:
        options = voi_options(header)
    except Exception:  # a damaged window element: the presets and the automatic window remain
        return ()
    return tuple((float(o.center), float(o.width)) for o in options if o.center is not None and o.width is not None)


# --- planes -----------------------------------------------------------------------------------------
# Each plane: the patient axis (DICOM LPS: 0 x to the left, 1 y to the back, 2 z to the head) its slices go
# along, and the patient directions of the image's columns (to the right) and rows (down), as PACS show them.
_PLANE_AXES: dict[Plane, tuple[int, tuple[int, int], tuple[int, int]]] = {
    "axial": (2, (0, +1), (1, +1)),  # right: towards the patient's left; down: towards the back
    "coronal": (1, (0, +1), (2, -1)),  # right: the patient's left; down: towards the feet
    "sagittal": (0, (1, +1), (2, -1)),  # right: towards the back; down: towards the feet
}
_AXIS_LETTERS = (("R", "L"), ("A", "P"), ("F", "H"))


def volume_directions(volume: Volume) -> np.ndarray:
    """(3, 3): row a is the patient direction of increasing index along volume axis a."""
    return np.asarray([volume.normal, volume.column_cosines, volume.row_cosines], dtype=np.float64)


def _patient_axes(directions: np.ndarray) -> tuple[int, int, int]:
    """The patient axis (0 x, 1 y, 2 z) each volume axis runs most along: the assignment of the three
    that best fits (an oblique acquisition still has one nearest plane for each)."""
    best = max(itertools.permutations(range(3)), key=lambda p: sum(abs(directions[a, p[a]]) for a in range(3)))
    return best[0], best[1], best[2]


@dataclass(frozen=True)
class PlaneAxes:
    """How a plane is cut from a volume: the volume axis its slices go along and the volume axes of the
    image's rows (down) and columns (right), each read backwards where ``flip_*`` says."""

    sweep: int
    down: int
    right: int
    flip_sweep: bool
    flip_down: bool
    flip_right: bool
    patient_axis: int  # the patient axis the slices go along (0 x, 1 y, 2 z)


def plane_axes(volume: Volume, plane: Plane) -> PlaneAxes:
    if plane not in _PLANE_AXES:
        raise ValueError(f"unknown plane {plane!r} (one of {', '.join(PLANES)})")
    directions = volume_directions(volume)
    patient_of = _patient_axes(directions)
    volume_of = {patient: axis for axis, patient in enumerate(patient_of)}
    sweep_patient, (right_patient, right_sign), (down_patient, down_sign) = _PLANE_AXES[plane]
    sweep, right, down = volume_of[sweep_patient], volume_of[right_patient], volume_of[down_patient]
    return PlaneAxes(
        sweep=sweep, down=down, right=right,
        flip_sweep=directions[sweep, sweep_patient] < 0,
        flip_down=directions[down, down_patient] * down_sign < 0,
        flip_right=directions[right, right_patient] * right_sign < 0,
        patient_axis=sweep_patient,
    )


def oriented_voxels(volume: Volume, axes: PlaneAxes) -> np.ndarray:
    """The voxels as (slices of the plane, rows, columns) in the plane's display order: a view, no copy."""
    view = np.transpose(volume.voxels, (axes.sweep, axes.down, axes.right))
    flips = (slice(None, None, -1 if axes.flip_sweep else 1), slice(None, None, -1 if axes.flip_down else 1),
             slice(None, None, -1 if axes.flip_right else 1))
    return view[flips]


def plane_count(volume: Volume, plane: AnyPlane) -> int:
    """The number of slices of ``plane``."""
    if isinstance(plane, Oblique | Curved):
        return plane.count
    return int(volume.voxels.shape[plane_axes(volume, plane).sweep])


def plane_spacing(volume: Volume, plane: AnyPlane) -> float:
    """The distance (mm) between consecutive slices of ``plane`` (a curved reformat's pixel: it has one)."""
    if isinstance(plane, Curved):
        return plane.pixel_mm
    if isinstance(plane, Oblique):
        return plane.step_mm
    return volume.spacing[plane_axes(volume, plane).sweep]


def slab_range(index: int, count: int, spacing_mm: float, slab_mm: float) -> tuple[int, int]:
    """The slices [first, last) within ±``slab_mm``/2 of slice ``index`` (always that slice itself)."""
    reach = math.floor(max(slab_mm, 0.0) / 2.0 / spacing_mm + 1e-6) if spacing_mm > 0 else 0
    return max(index - reach, 0), min(index + reach + 1, count)


def reformat(volume: Volume, plane: AnyPlane, index: int, slab_mm: float = 0.0, mode: SlabMode = "mip") -> Reformat:
    """Slice ``index`` of ``plane`` ("axial", "coronal" or "sagittal", as the patient lies, or an ``Oblique``),
    or with ``slab_mm`` > 0 the maximum ("mip"), mean or minimum ("minip") over the slices within ±slab_mm/2
    of it. ``index`` is kept within the plane's slices."""
    if mode not in SLAB_MODES:
        raise ValueError(f"unknown slab mode {mode!r} (one of {', '.join(SLAB_MODES)})")
    if isinstance(plane, Oblique):
        return _reformat_oblique(volume, plane, index, slab_mm, mode)
    if isinstance(plane, Curved):
        return _reformat_curved(volume, plane)
    axes = plane_axes(volume, plane)
    oriented = oriented_voxels(volume, axes)
    count = int(oriented.shape[0])
    index = min(max(int(index), 0), count - 1)
    step = volume.spacing[axes.sweep]
    first, last = slab_range(index, count, step, slab_mm)
    image = _combined(oriented[first:last], mode)
    directions = volume_directions(volume)
    right = directions[axes.right] * (-1.0 if axes.flip_right else 1.0)
    down = directions[axes.down] * (-1.0 if axes.flip_down else 1.0)
    edges = (direction_letters(-right), direction_letters(right), direction_letters(-down), direction_letters(down))
    return Reformat(
        image=np.ascontiguousarray(image, dtype=np.float32),
        spacing=(volume.spacing[axes.down], volume.spacing[axes.right]),
        count=count, index=index, edges=edges, plane=plane, slab_slices=last - first,
        slab_mm=(last - first - 1) * step if last - first > 1 else 0.0, mode=mode,
        location_mm=_location(volume, axes, index), location_letters=_AXIS_LETTERS[axes.patient_axis])


def windowed(shown: Reformat, window: tuple[float, float], inverted: bool) -> np.ndarray:
    """A reformat's 8-bit pixels in ``window`` (centre, width), as the app shows it and saves it as a picture;
    MONOCHROME1 (``inverted``): low values white."""
    image = to_display_uint8(apply_window(shown.image, window[0], window[1]))
    return 255 - image if inverted else image


def _combined(slab: np.ndarray, mode: SlabMode) -> np.ndarray:
    """A slab's slices (slices, rows, columns) as one image: the one slice, or their max, mean or min."""
    if len(slab) == 1:
        return np.asarray(slab[0])
    if mode == "mip":
        return np.asarray(slab.max(axis=0))
    if mode == "minip":
        return np.asarray(slab.min(axis=0))
    return np.asarray(slab.mean(axis=0, dtype=np.float64))


def reformat_plane(volume: Volume, plane: AnyPlane, index: int) -> ImagePlane:
    """Where slice ``index`` of ``plane`` lies in the patient, as an image (its first pixel's centre, the
    directions of its rows and columns, spacing, size): for the reference lines between it and the
    viewer's slices. A curved reformat lies on no one plane: ``ReformatError``."""
    if isinstance(plane, Curved):
        raise ReformatError("a curved reformat lies on no one plane")
    if isinstance(plane, Oblique):
        index = min(max(int(index), 0), plane.count - 1)
        corner = np.asarray(plane.first) + index * plane.step_mm * np.asarray(plane.normal)
        return ImagePlane((float(corner[0]), float(corner[1]), float(corner[2])), plane.right, plane.down,
                          (plane.pixel_mm, plane.pixel_mm), (plane.rows, plane.columns), volume.frame_of_reference)
    axes = plane_axes(volume, plane)
    shape = volume.voxels.shape
    count = int(shape[axes.sweep])
    index = min(max(int(index), 0), count - 1)
    directions = volume_directions(volume)
    first = [0, 0, 0]  # the volume index of the reformat's first pixel
    first[axes.sweep] = count - 1 - index if axes.flip_sweep else index
    first[axes.down] = shape[axes.down] - 1 if axes.flip_down else 0
    first[axes.right] = shape[axes.right] - 1 if axes.flip_right else 0
    position = np.asarray(volume.origin, dtype=np.float64)
    for axis in range(3):
        position = position + first[axis] * volume.spacing[axis] * directions[axis]
    right = directions[axes.right] * (-1.0 if axes.flip_right else 1.0)
    down = directions[axes.down] * (-1.0 if axes.flip_down else 1.0)
    return ImagePlane((float(position[0]), float(position[1]), float(position[2])),
                      (float(right[0]), float(right[1]), float(right[2])),
                      (float(down[0]), float(down[1]), float(down[2])),
                      (volume.spacing[axes.down], volume.spacing[axes.right]),
                      (int(shape[axes.down]), int(shape[axes.right])), volume.frame_of_reference)


# --- oblique planes ---------------------------------------------------------------------------------
def oblique_through(volume: Volume, start: Sequence[float] | np.ndarray, end: Sequence[float] | np.ndarray,
                    view_normal: Sequence[float] | np.ndarray) -> Oblique:
    """The plane through the line from ``start`` to ``end`` (patient points, mm) square to the image it was
    drawn on (``view_normal``: that image's normal), as PACS make an oblique reformat from a line drawn along a
    structure (a vessel, a disc, the hippocampus); its slices are parallel to it, across the whole volume, at
    the volume's finest spacing. Shown turned as the standard plane it is nearest. Raises ReformatError for a
    line of no length."""
    a, b = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    along, across = b - a, np.asarray(view_normal, dtype=np.float64)
    across = across / (np.linalg.norm(across) or 1.0)
    along = along - along.dot(across) * across  # in the image drawn on
    if np.linalg.norm(along) < 1e-6:
        raise ReformatError("an oblique plane needs a line: its two ends are at one point")
    normal = np.cross(along / np.linalg.norm(along), across)
    nearest: Plane = ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(normal)))]
    right, down = (_in_plane(np.asarray(v), normal) for v in _STANDARD_VIEW[nearest])
    right = right / np.linalg.norm(right)
    down = np.cross(normal, right)
    if down.dot(np.asarray(_STANDARD_VIEW[nearest][1])) < 0:
        down = -down
    return _oblique_grid(volume, (a + b) / 2.0, right, down)


def tilted(volume: Volume, plane: AnyPlane, index: int, about: Literal["right", "down"], degrees: float,
           around: tuple[float, float] | None = None) -> Oblique:
    """Slice ``index`` of ``plane`` turned by ``degrees`` about its own horizontal axis (``about`` "right") or
    vertical axis ("down") through the point ``around`` (column, row of the slice; default its centre), the
    right-hand way round the axis (about "right", positive degrees take its bottom edge along its normal, away
    from a reader who looks along it; about "down", they bring its right edge towards the reader): an oblique
    plane with its parallel slices, shown from the slice through that point, as PACS tilt a reformat's plane.
    A standard plane tilted becomes an oblique one; tilted back about the same point of the patient, the
    plane and its orientation are the ones it was."""
    if about not in ("right", "down"):
        raise ValueError(f"tilt about 'right' or 'down', not {about!r}")
    where = reformat_plane(volume, plane, index)
    rows, columns = where.size
    centre = np.asarray(where.patient_point(around if around is not None else (columns / 2.0, rows / 2.0)))
    right, down = np.asarray(where.row_direction, dtype=np.float64), np.asarray(where.column_direction)
    axis = right if about == "right" else down
    turn = math.radians(degrees)

    def rotated(vector: np.ndarray) -> np.ndarray:  # Rodrigues: about the unit axis, right-handed
        return (vector * math.cos(turn) + np.cross(axis, vector) * math.sin(turn)
                + axis * axis.dot(vector) * (1.0 - math.cos(turn)))

    if about == "right":
        down = rotated(down)
    else:
        right = rotated(right)
    return _oblique_grid(volume, centre, right / np.linalg.norm(right), down / np.linalg.norm(down))


def _oblique_grid(volume: Volume, centre: np.ndarray, right: np.ndarray, down: np.ndarray) -> Oblique:
    """The oblique plane through ``centre`` with rows along ``right`` and columns along ``down`` (unit, square
    to each other) and its parallel slices, at the volume's finest spacing, covering the whole volume; named
    after the standard plane its normal is nearest."""
    _check_samplable(volume, "an oblique plane")
    normal = np.cross(right, down)
    nearest: Plane = ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(normal)))]
    pixel = step = float(min(volume.spacing))
    corners = _volume_corners(volume) - centre
    spans = [corners @ axis for axis in (right, down, normal)]
    # the grid's first and last pixels and slices at or past the volume's corners: none of it is left out
    low = [math.floor(span.min() / pixel + 1e-6) for span in spans[:2]]
    columns, rows = (math.ceil(span.max() / pixel - 1e-6) - lo + 1 for span, lo in zip(spans[:2], low, strict=True))
    before = math.ceil(-spans[2].min() / step - 1e-6)  # slices before the one through the centre
    count = before + math.ceil(spans[2].max() / step - 1e-6) + 1
    first = centre + low[0] * pixel * right + low[1] * pixel * down - before * step * normal

    def unit(v: np.ndarray) -> tuple[float, float, float]:
        return float(v[0]), float(v[1]), float(v[2])

    return Oblique(first=unit(first), right=unit(right), down=unit(down), pixel_mm=pixel, step_mm=step,
                   rows=int(rows), columns=int(columns), count=int(count), through=int(before), nearest=nearest)


def curved_through(volume: Volume, path: Sequence[Sequence[float] | np.ndarray] | np.ndarray,
                   view_normal: Sequence[float] | np.ndarray) -> Curved:
    """The curved reformat along ``path`` (patient points, mm, at least two apart; as clicked on a reformat)
    swept along ``view_normal`` (the normal of the image it was drawn on) across the whole volume, at the
    volume's finest spacing: a vessel's or the mandible's course unrolled into one image, its length measured
    along the columns. Rows go down towards the patient's feet, else the back, else the left, as the standard
    planes do. ReformatError for a path of no length or images too small."""
    _check_samplable(volume, "a curved reformat")
    across = np.asarray(view_normal, dtype=np.float64)
    across = across / (np.linalg.norm(across) or 1.0)
    points = [np.asarray(p, dtype=np.float64) for p in path]
    points = [p - (p - points[0]).dot(across) * across for p in points]  # on the image drawn on
    kept = [points[0]] + [p for previous, p in itertools.pairwise(points)
                          if np.linalg.norm(p - previous) > 1e-6]
    length = float(sum(np.linalg.norm(b - a) for a, b in itertools.pairwise(kept)))
    if len(kept) < 2 or length < 1e-6:
        raise ReformatError("a curved reformat needs a path: at least two points apart")
    for axis, sign in ((2, -1.0), (1, 1.0), (0, 1.0)):  # the feet down, else the back, else the left
        if abs(across[axis]) >= 0.5 or axis == 0:
            if across[axis] * sign < 0:
                across = -across
            break
    pixel = float(min(volume.spacing))
    offsets = (_volume_corners(volume) - kept[0]) @ across
    top = math.floor(offsets.min() / pixel + 1e-6) * pixel
    rows = math.ceil(offsets.max() / pixel - 1e-6) - round(top / pixel) + 1

    def unit(v: np.ndarray) -> tuple[float, float, float]:
        return float(v[0]), float(v[1]), float(v[2])

    return Curved(path=tuple(unit(p) for p in kept), across=unit(across), pixel_mm=pixel, rows=int(rows),
                  columns=math.floor(length / pixel + 1e-6) + 1, top_mm=float(top), length_mm=length)


def curve_points(plane: Curved) -> np.ndarray:
    """(columns, 3): the patient point on the path at each column of the curved reformat, ``pixel_mm`` apart
    along it."""
    path = np.asarray(plane.path)
    segments = np.linalg.norm(np.diff(path, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(segments)])
    at = np.minimum(np.arange(plane.columns) * plane.pixel_mm, along[-1])
    return np.stack([np.interp(at, along, path[:, axis]) for axis in range(3)], axis=1)


def _reformat_curved(volume: Volume, plane: Curved) -> Reformat:
    to_index = volume_directions(volume) / np.asarray(volume.spacing)[:, None]
    columns = curve_points(plane) + plane.top_mm * np.asarray(plane.across)
    start = (columns - np.asarray(volume.origin)) @ to_index.T  # (columns, 3)
    step = to_index @ (np.asarray(plane.across) * plane.pixel_mm)
    rows = np.arange(plane.rows, dtype=np.float32)
    index = [np.add.outer(rows * np.float32(step[a]), start[:, a].astype(np.float32)) for a in range(3)]
    image = _trilinear(volume, index)
    path, across = np.asarray(plane.path), np.asarray(plane.across)
    edges = (direction_letters(path[0] - path[1]), direction_letters(path[-1] - path[-2]),
             direction_letters(-across), direction_letters(across))
    return Reformat(image=image, spacing=(plane.pixel_mm, plane.pixel_mm), count=1, index=0, edges=edges,
                    plane=plane, location_mm=plane.length_mm)


def _check_samplable(volume: Volume, what: str) -> None:
    """ReformatError where a slice is one pixel wide or tall: nothing to interpolate across (``_trilinear``
    reads the voxel after each one)."""
    if min(volume.voxels.shape) < 2:
        raise ReformatError(f"images of {volume.voxels.shape[1]} x {volume.voxels.shape[2]} pixels are too small "
                            f"for {what}", path=str(volume.paths[0]) if volume.paths else None)


def _in_plane(vector: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """``vector`` projected onto the plane of ``normal`` (unit); where it is (nearly) the normal itself,
    another standard direction's projection, so that the result has a length."""
    projected = vector - vector.dot(normal) * normal
    if np.linalg.norm(projected) > 0.1:
        return projected
    other = np.roll(vector, 1)
    return other - other.dot(normal) * normal


def _volume_corners(volume: Volume) -> np.ndarray:
    """(8, 3) the patient points of the volume's corner voxels' centres."""
    directions = volume_directions(volume)
    sizes = [(n - 1) * d for n, d in zip(volume.voxels.shape, volume.spacing, strict=True)]
    return np.asarray([np.asarray(volume.origin) + sum(f * size * direction for f, size, direction
                                                       in zip(factors, sizes, directions, strict=True))
                       for factors in itertools.product((0.0, 1.0), repeat=3)])


def _sample(volume: Volume, first: np.ndarray, down: np.ndarray, right: np.ndarray, size: tuple[int, int]
            ) -> np.ndarray:
    """The volume's values on a grid of ``size`` (rows, columns) of patient points, ``first`` + row ``down`` +
    column ``right`` (mm vectors), trilinear between voxel centres, the volume's lowest value where a point is
    not within it. The grid is laid out in voxel indices directly (the map is affine), only the points inside
    are sampled, each from the eight voxels around it through one flat index."""
    to_index = volume_directions(volume) / np.asarray(volume.spacing)[:, None]  # patient mm -> voxel index
    start = to_index @ (first - np.asarray(volume.origin))
    steps_down, steps_right = to_index @ down, to_index @ right
    rows, columns = np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32)
    index = [np.add.outer(rows * np.float32(steps_down[a]), columns * np.float32(steps_right[a]))
             + np.float32(start[a]) for a in range(3)]
    return _trilinear(volume, index)


def _trilinear(volume: Volume, index: list[np.ndarray]) -> np.ndarray:
    """The volume's values at the voxel indices ``index`` (one array per volume axis, all of one shape),
    trilinear between voxel centres, its lowest value outside it."""
    shape = volume.voxels.shape
    size = index[0].shape
    inside = np.ones(size, dtype=bool)
    for axis in range(3):
        inside &= (index[axis] >= -1e-3) & (index[axis] <= shape[axis] - 1 + 1e-3)
    values = np.full(size, np.float32(volume.lowest), dtype=np.float32)
    flat = np.ascontiguousarray(volume.voxels).reshape(-1)  # the volume is read C-ordered: no copy
    across, down_one = shape[2], shape[1] * shape[2]  # steps of one column and of one slice
    base = np.zeros(int(inside.sum()), dtype=np.intp)
    fraction = []
    for axis, step in enumerate((down_one, across, 1)):
        at = np.clip(index[axis][inside], 0.0, shape[axis] - 1)
        low = np.minimum(at.astype(np.intp), shape[axis] - 2)  # at >= 0: truncation is the floor
        fraction.append((at - low).astype(np.float32))
        base += low * step

    def along_columns(offset: np.ndarray) -> np.ndarray:
        left = flat[offset]
        return left + (flat[offset + 1] - left) * fraction[2]

    def along_rows(offset: np.ndarray) -> np.ndarray:
        top = along_columns(offset)
        return top + (along_columns(offset + across) - top) * fraction[1]

    near = along_rows(base)
    values[inside] = near + (along_rows(base + down_one) - near) * fraction[0]
    return values


def _reformat_oblique(volume: Volume, plane: Oblique, index: int, slab_mm: float, mode: SlabMode) -> Reformat:
    count = plane.count
    index = min(max(int(index), 0), count - 1)
    first, last = slab_range(index, count, plane.step_mm, slab_mm)
    depths = np.arange(first, last)
    if depths.size > MAX_OBLIQUE_SLAB_PLANES:  # evenly through the slab, both ends included
        depths = np.unique(np.round(np.linspace(first, last - 1, MAX_OBLIQUE_SLAB_PLANES)).astype(int))
    right, down, normal = (np.asarray(v, dtype=np.float64) for v in (plane.right, plane.down, plane.normal))
    first_point, size = np.asarray(plane.first), (plane.rows, plane.columns)
    image = _combined(np.stack([_sample(volume, first_point + depth * plane.step_mm * normal, down * plane.pixel_mm,
                                        right * plane.pixel_mm, size) for depth in depths]), mode)
    edges = (direction_letters(-right), direction_letters(right), direction_letters(-down), direction_letters(down))
    return Reformat(
        image=np.ascontiguousarray(image, dtype=np.float32), spacing=(plane.pixel_mm, plane.pixel_mm),
        count=count, index=index, edges=edges, plane=plane, slab_slices=last - first,
        slab_mm=(last - first - 1) * plane.step_mm if last - first > 1 else 0.0, mode=mode,
        location_mm=(index - plane.through) * plane.step_mm,
        location_letters=(direction_letters(-normal), direction_letters(normal)))


def _location(volume: Volume, axes: PlaneAxes, index: int) -> float:
    """The patient coordinate (mm, along the plane's patient axis) of slice ``index`` at the volume's
    centre: its table position for an axial, its depth for a coronal, its side for a sagittal."""
    shape = volume.voxels.shape
    stored = shape[axes.sweep] - 1 - index if axes.flip_sweep else index
    where = np.asarray(volume.origin, dtype=np.float64)
    for axis, direction in enumerate(volume_directions(volume)):
        k = stored if axis == axes.sweep else (shape[axis] - 1) / 2.0
        where = where + k * volume.spacing[axis] * direction
    return float(where[axes.patient_axis])


__all__ = [
    "GAP_TOLERANCE",
    "MAX_OBLIQUE_SLAB_PLANES",
    "MAX_VOLUME_BYTES",
    "MIN_SLICES",
    "PLANES",
    "SLAB_MODES",
    "AnyPlane",
    "Curved",
    "Oblique",
    "PlaneAxes",
    "Reformat",
    "ReformatError",
    "Volume",
    "curve_points",
    "curved_through",
    "decode_in_process",
    "load_volume_job",
    "oblique_through",
    "oriented_voxels",
    "plane_axes",
    "plane_count",
    "plane_spacing",
    "plane_word",
    "reformat",
    "reformat_plane",
    "slab_range",
    "tilted",
    "volume_directions",
    "windowed",
]
