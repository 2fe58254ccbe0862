"""How the reader left an image — window, inversion, rotation and flip, rulers, regions, angles and
arrows — saved for the PACS as a Softcopy Presentation State (PS3.3 A.33), and read back.

A measurements SR (``zsmed.report.measurements``) carries the figures for a report; a presentation
state is what a PACS viewer *shows*: the marks drawn over the image as the reader drew them, with
their figures as text, in the window the reader chose. Grey images get a Grayscale Softcopy
Presentation State (GSPS); colour images a Color Softcopy Presentation State with an sRGB profile;
palette colour images a Pseudo-Color Softcopy Presentation State (PS3.3 A.33.3) that carries the
image's own palette (its Palette Color Lookup Table: a segmented one expanded, as PS3.3 C.7.9 allows
a presentation state no segmented table; 8-bit entries scaled to the 16 bits highdicom writes, the
same colours) and the image's colour profile or sRGB, with no rescale and no window, so that the
palette indexes the stored values as it does in the image itself.

Written:

- the window (Softcopy VOI LUT) where the viewer has one on a grey image, in the image's modality
  values (HU on CT: the image's Rescale Slope / Intercept are copied into the state, as PS3.3 C.11.1
  requires); on colour and palette colour images the viewer's window is over the RGB it shows, which
  no presentation state can carry, so none is written;
- the inversion as the Presentation LUT Shape (a MONOCHROME1 image shown as its file says is INVERSE);
- the rotation and flip as Image Rotation (clockwise, applied first) and Image Horizontal Flip
  (PS3.3 C.10.6: "before any Image Horizontal Flip is applied");
- the part of the image in view (zoomed and panned) as the Displayed Area, scaled to fit, its corners
  the pixels shown at the top left and bottom right after the rotation and flip (PS3.3 C.10.4);
- in the layer ``ZSMED MEASURES``: a ruler as a POLYLINE of its two ends, an angle as a POLYLINE of
  its first arm's end, vertex and second arm's end, a region as an ELLIPSE (ends of the major, then
  the minor axis), each with its figures as a text object anchored at it;
- in the layer ``ZSMED ARROWS``: an arrow as a POLYLINE shaft (tail to head), a three-point POLYLINE
  arrowhead at the head, and its note as a text object anchored at the tail.

Graphic data is in the image's PIXEL units (PS3.3 C.10.5.1.2: (column, row), (0, 0) the top-left
corner of the top-left pixel), the viewer's own convention, so points are written as they are. On a
multi-frame image the marks are on the frame they were drawn on (Referenced Frame Number).

Read back (:func:`read_presentation_state`): zsmed's own states exactly, and other viewers' where
their objects map onto the viewer's marks (a two-point POLYLINE is a ruler, three points an angle, an
axis-aligned ELLIPSE or a CIRCLE a region, a text object with a visible anchor an arrow to it);
anything else is counted, never guessed at. highdicom is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from zsmed.dicom.geometry import CLOCKWISE, MIRROR_LEFT_RIGHT, UPRIGHT, Turn, compose_turns
from zsmed.errors import DicomReadError, NotDicomError
from zsmed.report.measurements import PixelSpacing, ellipse_points, person_name
from zsmed.report.sr import (
    MANUFACTURER,
    _instance_number,
    _is_multi_frame,
    _quietly,
    _refusals,
    _save,
    _uid_from,
    date_time_text,
    read_source,
)

if TYPE_CHECKING:
    import numpy as np
    from pydicom.dataset import Dataset

PRESENTATION_SERIES_NUMBER = 993
PRESENTATION_SERIES_DESCRIPTION = "zsmed presentation state"
MEASURES_LAYER = "ZSMED MEASURES"
ARROWS_LAYER = "ZSMED ARROWS"
GRAYSCALE_PS = "1.2.840.10008.5.1.4.1.1.11.1"
COLOR_PS = "1.2.840.10008.5.1.4.1.1.11.2"
PSEUDO_COLOR_PS = "1.2.840.10008.5.1.4.1.1.11.3"
PRESENTATION_STATE_CLASSES = frozenset({GRAYSCALE_PS, COLOR_PS, PSEUDO_COLOR_PS})
# where an image keeps its rescale (Modality LUT) and windows (VOI LUT), directly or per frame in its
# functional groups: what a palette colour image's state is written without
_GREY_TRANSFORMS = frozenset({"RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence", "WindowCenter",
                              "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction", "VOILUTSequence",
                              "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"})
_PALETTE_COLOURS = ("Red", "Green", "Blue")
_TEXT_MAX = 1024  # Unformatted Text Value is ST
_ARROWHEAD_DEGREES = 25.0  # half-angle of the arrowhead, as the viewer draws it

Point = tuple[float, float]
GraphicKind = Literal["ruler", "angle", "region", "arrow"]


@dataclass(frozen=True)
class Graphic:
    """One mark as a presentation state holds it, in stored pixels (column, row): a ruler's two ends,
    an angle's first arm's end, vertex and second arm's end, the two opposite corners of the rectangle
    a region's ellipse is inscribed in, an arrow's tail and head. ``text``: what is written beside it
    (a measurement's figures, an arrow's note)."""

    kind: GraphicKind
    points: tuple[Point, ...]
    text: str = ""


@dataclass(frozen=True)
class DisplaySettings:
    """How the image is shown: the window (centre, width) in modality values, None where the viewer has
    none (a VOI LUT table, a colour image); inverted relative to how the file asks to be shown (a
    MONOCHROME1 image shown white-on-black is not inverted); the turn (``zsmed.dicom.geometry``)."""

    window: tuple[float, float] | None = None
    inverted: bool = False
    turn: Turn = UPRIGHT
    # the part of the image in view (zoomed, panned): top-left and bottom-right corners in stored pixels
    # (column, row); None for the whole image
    area: tuple[Point, Point] | None = None


@dataclass(frozen=True)
class PresentationState:
    """A presentation state file as read: which images (SOP Instance UIDs) it is for, how it shows
    them, and its marks per image and frame."""

    path: Path
    study_uid: str
    referenced: frozenset[str]
    created: str  # "YYYY-MM-DD HH:MM", or "" where the file does not say
    creator: str  # the Content Creator's Name as the file has it, or ""
    label: str
    turn: Turn = UPRIGHT
    lut_shape: str = "IDENTITY"  # Presentation LUT Shape ("" for a colour state)
    area: tuple[Point, Point] | None = None  # the displayed area (stored pixels), None where not given
    windows: tuple[tuple[str, float, float], ...] = ()  # (SOP Instance UID, centre, width)
    graphics: tuple[tuple[str, int | None, Graphic], ...] = ()  # (SOP Instance UID, 1-based frame or None, mark)
    not_shown: int = 0  # graphic or text objects that are not one of the viewer's marks

    def graphics_on(self, sop_instance_uid: str, frame: int = 0) -> list[Graphic]:
        """The marks on image ``sop_instance_uid`` at its 0-based ``frame`` (marks for the whole image
        included)."""
        return [g for uid, number, g in self.graphics if uid == sop_instance_uid and number in (None, frame + 1)]

    def display_for(self, sop_instance_uid: str, photometric: str) -> DisplaySettings:
        """How image ``sop_instance_uid`` (of ``photometric`` interpretation) is to be shown."""
        window = next(((c, w) for uid, c, w in self.windows if uid == sop_instance_uid), None)
        inverted = bool(self.lut_shape) and is_inverted(self.lut_shape, photometric)
        return DisplaySettings(window=window, inverted=inverted, turn=self.turn, area=self.area)


# --- pure geometry -----------------------------------------------------------------------------------
def turn_to_spatial(turn: Turn) -> tuple[int, bool]:
    """A viewer turn as Image Rotation (0, 90, 180, 270 degrees clockwise, applied first) and Image
    Horizontal Flip (applied after the rotation)."""
    for flip in (False, True):
        for quarter_turns in range(4):
            if spatial_to_turn(90 * quarter_turns, flip) == tuple(turn):
                return 90 * quarter_turns, flip
    raise ValueError(f"not a turn of the image: {turn!r}")


def spatial_to_turn(rotation: int, flip: bool) -> Turn:
    """Image Rotation (degrees clockwise, a multiple of 90) then Image Horizontal Flip as a viewer turn."""
    if rotation % 90:
        raise ValueError(f"Image Rotation {rotation} is not a multiple of 90 degrees")
    turn = UPRIGHT
    for _ in range((rotation // 90) % 4):
        turn = compose_turns(turn, CLOCKWISE)
    return compose_turns(turn, MIRROR_LEFT_RIGHT) if flip else turn


def is_inverted(presentation_lut_shape: str, photometric: str) -> bool:
    """Whether a Presentation LUT Shape shows an image inverted relative to its Photometric
    Interpretation (INVERSE is how a MONOCHROME1 image is shown as the file asks)."""
    inverse = presentation_lut_shape.strip().upper() == "INVERSE"
    return inverse != (photometric.strip().upper() == "MONOCHROME1")


def arrowhead(tail: Point, head: Point) -> tuple[Point, Point, Point]:
    """The three points of an arrowhead at ``head``: one wing, the head, the other wing (a quarter of the
    arrow's length, 2 to 24 pixels)."""
    dx, dy = head[0] - tail[0], head[1] - tail[1]
    length = math.hypot(dx, dy)
    if length == 0:
        return head, head, head
    wing = min(max(length / 4.0, 2.0), 24.0)
    back = math.atan2(-dy, -dx)
    spread = math.radians(_ARROWHEAD_DEGREES)
    ends = [(head[0] + wing * math.cos(back + s), head[1] + wing * math.sin(back + s)) for s in (spread, -spread)]
    return ends[0], head, ends[1]


def _corners_of_ellipse(points: Sequence[Point]) -> tuple[Point, Point] | None:
    """The rectangle (two opposite corners) an ELLIPSE's four points are inscribed in, where its axes
    are along the image's; None for a tilted ellipse (the viewer's regions are not)."""
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = points
    centre = ((ax + bx) / 2.0, (ay + by) / 2.0)
    half_major = (abs(bx - ax) / 2.0, abs(by - ay) / 2.0)
    half_minor = (abs(dx - cx) / 2.0, abs(dy - cy) / 2.0)
    tolerance = 1e-3 * max(1.0, *half_major, *half_minor)
    along_axes = (min(half_major) <= tolerance and min(half_minor) <= tolerance)
    if not along_axes:
        return None
    half_width = max(half_major[0], half_minor[0])
    half_height = max(half_major[1], half_minor[1])
    return ((centre[0] - half_width, centre[1] - half_height), (centre[0] + half_width, centre[1] + half_height))


def _text(value: str) -> str:
    """A mark's text as a DICOM ST value: one line per line of the viewer's label, at most 1024 characters."""
    text = "\r\n".join(line.strip() for line in str(value).replace("\\", "/").splitlines() if line.strip())
    return text[:_TEXT_MAX]


# --- writing -----------------------------------------------------------------------------------------
def _clamped(point: Point, size: tuple[int, int]) -> tuple[float, float]:
    return (min(max(float(point[0]), 0.0), float(size[0])), min(max(float(point[1]), 0.0), float(size[1])))


def _graphic_objects(graphic: Graphic, spacing: PixelSpacing, size: tuple[int, int]) -> list[Any]:
    """A mark as GSPS graphic objects. Points are kept on the image (PIXEL units may not leave it): the
    viewer keeps its marks there, so this only moves an arrowhead's wing drawn at the image's edge."""
    import numpy as np
    from highdicom.pr import GraphicObject

    def graphic_object(kind: str, points: Sequence[Point]) -> Any:
        return GraphicObject(kind, np.array([_clamped(p, size) for p in points], dtype=float), "PIXEL")

    if graphic.kind == "region":
        return [graphic_object("ELLIPSE", ellipse_points(graphic.points[0], graphic.points[1], spacing))]
    if graphic.kind == "arrow":
        return [graphic_object("POLYLINE", graphic.points),
                graphic_object("POLYLINE", arrowhead(graphic.points[0], graphic.points[1]))]
    return [graphic_object("POLYLINE", graphic.points)]


def _text_anchor(graphic: Graphic) -> Point:
    """Where a mark's text goes: by a ruler's end, an angle's vertex, a region's top-right corner, an
    arrow's tail (as the viewer draws them)."""
    points = graphic.points
    if graphic.kind == "ruler":
        return points[1]
    if graphic.kind == "angle":
        return points[1]
    if graphic.kind == "region":
        return (max(points[0][0], points[1][0]), min(points[0][1], points[1][1]))
    return points[0]


def displayed_area(area: tuple[Point, Point], size: tuple[int, int], *, rotation: int = 0,
                   flip: bool = False) -> tuple[list[int], list[int]]:
    """A part of the image (corners in stored pixels, (0, 0) the top-left corner of the first pixel) as
    the Displayed Area's top-left and bottom-right hand corner pixels (PS3.3 C.10.4: 1-based, the
    pixels it covers, kept on the image of ``size`` (columns, rows)). They are the image's pixels that
    are shown at the top left and the bottom right *after* the Image Rotation (``rotation`` degrees
    clockwise) and the Image Horizontal Flip (``flip``): turned a quarter clockwise, the part's
    bottom-left pixel is shown at the top left (PS3.3 Figure C.10.4-1)."""
    (x0, y0), (x1, y1) = area
    columns, rows = size
    left, top = min(max(math.floor(min(x0, x1)) + 1, 1), columns), min(max(math.floor(min(y0, y1)) + 1, 1), rows)
    right, bottom = min(max(math.ceil(max(x0, x1)), left), columns), min(max(math.ceil(max(y0, y1)), top), rows)
    corners = [[left, top], [right, top], [right, bottom], [left, bottom]]  # clockwise from the top left
    quarter_turns = (rotation // 90) % 4
    shown = corners[-quarter_turns:] + corners[:-quarter_turns] if quarter_turns else corners  # after the turn
    return (shown[1], shown[3]) if flip else (shown[0], shown[2])  # a flip swaps left and right


def _check_graphics(graphics: Sequence[Graphic]) -> None:
    wanted = {"ruler": 2, "angle": 3, "region": 2, "arrow": 2}
    for graphic in graphics:
        if graphic.kind not in wanted or len(graphic.points) != wanted[graphic.kind]:
            needed = wanted.get(graphic.kind, "?")
            raise ValueError(f"a {graphic.kind} needs {needed} points, not {len(graphic.points)}")
        if not all(math.isfinite(float(v)) for point in graphic.points for v in point):
            raise ValueError(f"a {graphic.kind} has a point that is not a number")


def _annotations(src: Dataset, frame: int | None, graphics: Sequence[Graphic], spacing: PixelSpacing
                 ) -> tuple[list[Any], list[Any]]:
    from highdicom.pr import GraphicAnnotation, GraphicLayer, TextObject

    size = (int(src.Columns), int(src.Rows))
    layers = {MEASURES_LAYER: GraphicLayer(MEASURES_LAYER, 1, "Rulers, regions and angles with their figures"),
              ARROWS_LAYER: GraphicLayer(ARROWS_LAYER, 2, "Arrows and their notes")}
    annotations = []
    for name, layer in layers.items():
        members = [g for g in graphics if (g.kind == "arrow") == (name == ARROWS_LAYER)]
        if not members:
            continue
        objects = [obj for g in members for obj in _graphic_objects(g, spacing, size)]
        texts = [TextObject(_text(g.text), "PIXEL", anchor_point=_clamped(_text_anchor(g), size),
                            anchor_point_visible=False, text_justification="LEFT")
                 for g in members if _text(g.text)]
        annotation = GraphicAnnotation([src], layer, graphic_objects=objects, text_objects=texts or None)
        if frame is not None and _is_multi_frame(src):
            # set here, not through highdicom, which takes only the enhanced multi-frame classes for
            # multi-frame (a two-frame Secondary Capture is one too, and its marks are on one frame)
            for reference in annotation.ReferencedImageSequence:
                reference.ReferencedFrameNumber = frame + 1
        annotations.append(annotation)
    used = {a.GraphicLayer for a in annotations}
    return annotations, [layer for name, layer in layers.items() if name in used]


def _icc_profile(src: Dataset) -> bytes:
    """The colour profile a colour state carries: the image's own where it has a usable one, else sRGB
    as a colour-space profile (PS3.3 C.11.15 takes an input or colour-space class; Pillow's sRGB is
    a display profile with the same colorants, so only its class changes; its profile ID is zero, so
    no checksum needs recomputing)."""
    from io import BytesIO

    from PIL import ImageCms

    own = src.get("ICCProfile")
    if own:
        try:
            profile = ImageCms.ImageCmsProfile(BytesIO(bytes(own))).profile
            if profile.device_class.strip() in ("scnr", "spac") and profile.xcolor_space.strip() == "RGB":
                return bytes(own)
        except (OSError, ValueError, TypeError):
            pass  # unreadable: sRGB instead, as for an image without one
    srgb = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    srgb[12:16] = b"spac"
    return bytes(srgb)


def palette_table(data: bytes, entries: int, bits: int, *, little_endian: bool) -> np.ndarray:
    """One channel of a Palette Color Lookup Table Data (OW) as ``entries`` 16-bit values: 16-bit entries
    as they are (read in the file's byte order: pydicom keeps OW bytes as the file has them); 8-bit
    ones (the descriptor's ``bits`` 8), packed two to a word or one to a word as some writers do,
    scaled by 257 so that 255 becomes 65535: the same colours. Raises ``ValueError`` where the data
    does not hold ``entries`` values."""
    import numpy as np

    if entries < 1 or bits not in (8, 16):
        raise ValueError(f"a palette of {entries} entries of {bits} bits")
    if len(data) >= 2 * entries:
        words = np.frombuffer(data[: 2 * entries], dtype="<u2" if little_endian else ">u2").astype(np.uint16)
        return words * np.uint16(257) if bits == 8 and int(words.max(initial=0)) <= 0xFF else words
    if bits == 8 and len(data) in (entries, entries + 1):
        packed = data if little_endian else bytes(np.frombuffer(data[: len(data) // 2 * 2], ">u2").astype("<u2"))
        return np.frombuffer(packed[:entries], dtype=np.uint8).astype(np.uint16) * np.uint16(257)
    raise ValueError(f"{len(data)} bytes of palette data for {entries} entries of {bits} bits")


def _image_palette(src: Dataset) -> tuple[np.ndarray, int]:
    """The image's palette as (entries, 3) 16-bit R, G, B values, and the stored value its first entry
    is for. Raises ``ValueError`` naming what is missing or inconsistent."""
    import numpy as np

    descriptors = [src.get(f"{colour}PaletteColorLookupTableDescriptor") for colour in _PALETTE_COLOURS]
    if any(d is None or len(d) != 3 for d in descriptors):
        raise ValueError("it has no red, green and blue Palette Color Lookup Table Descriptors")
    if len({tuple(int(v) for v in d) for d in descriptors}) != 1:
        raise ValueError("its red, green and blue Palette Color Lookup Table Descriptors differ")
    entries, first, bits = (int(v) for v in descriptors[0])
    entries = entries or 65536  # 0: 2^16 entries
    if all(f"{colour}PaletteColorLookupTableData" in src for colour in _PALETTE_COLOURS):
        little_endian = _is_little_endian(src)
        channels = [palette_table(bytes(src[f"{colour}PaletteColorLookupTableData"].value), entries, bits,
                                  little_endian=little_endian) for colour in _PALETTE_COLOURS]
        return np.stack(channels, axis=-1), first
    if all(f"Segmented{colour}PaletteColorLookupTableData" in src for colour in _PALETTE_COLOURS):
        from pydicom.pixels import apply_color_lut  # expands the segments, in the file's byte order

        rgb = apply_color_lut(np.arange(first, first + entries, dtype=np.int64), src)[..., :3]
        if rgb.shape[0] != entries:
            raise ValueError(f"its segmented palette holds {rgb.shape[0]} entries, not {entries}")
        return (rgb.astype(np.uint16) * np.uint16(257) if rgb.dtype == np.uint8 else rgb.astype(np.uint16)), first
    raise ValueError("it has no red, green and blue Palette Color Lookup Table Data")


def _is_little_endian(src: Dataset) -> bool:
    """The byte order the file's OW values were read in (pydicom keeps them as they are in the file)."""
    encoding = getattr(src, "original_encoding", (None, None))[1]
    if encoding is not None:
        return bool(encoding)
    syntax = getattr(getattr(src, "file_meta", None), "TransferSyntaxUID", None)
    return bool(getattr(syntax, "is_little_endian", True)) if syntax is not None else True


def _palette_transformation(src: Dataset, source: str | Path) -> Any:
    """The image's palette as highdicom's Palette Color LUT Transformation for a Pseudo-Color state;
    an unusable palette: a one-line ``DicomReadError`` naming the file."""
    from highdicom import PaletteColorLUTTransformation

    try:
        table, first = _image_palette(src)
        return PaletteColorLUTTransformation.from_combined_lut(table, first_mapped_value=first)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        from zsmed.dicom.decode import one_line

        raise DicomReadError(f"a PALETTE COLOR image whose palette cannot be used ({one_line(exc)[:200]})",
                             path=source) from exc


def _without_grey_transforms(src: Dataset) -> Dataset:
    """The image's header as highdicom is to read it for a palette colour image's state: without its
    rescale and windows, so that the state has neither and its Modality and VOI LUT stages are
    identities. A palette colour image's palette indexes its stored values (PS3.3 C.7.6.3.1.5); a
    rescale or window that highdicom would copy from the header into the state would move every colour
    away from the image's own. An image of a multi-frame IOD gets empty functional groups: highdicom
    looks for the rescale and windows there, and fails where there are none (Ultrasound Multi-frame).
    ``src`` is left as it is."""
    from pydicom.dataset import Dataset

    header = Dataset()
    for element in src:
        if element.keyword not in _GREY_TRANSFORMS:
            header.add(element)
    if _multi_frame_class(src):
        header.SharedFunctionalGroupsSequence = [Dataset()]
        header.PerFrameFunctionalGroupsSequence = []
    return header


@_quietly
def write_presentation_state(source: str | Path, *, frame: int | None, graphics: Sequence[Graphic],
                             display: DisplaySettings, spacing: PixelSpacing | None, reader: str,
                             out_dir: Path) -> Path:
    """Write how ``source`` is shown (``display``) and the reader's marks on it (``graphics``, drawn on
    the 0-based ``frame``) as one presentation state into ``out_dir``; returns its path
    (``PR_<SOP Instance UID>.dcm``). ``spacing``: the image's (row, column) spacing, which decides an
    ellipse's major axis (None: square pixels); ``reader``: the Content Creator's Name ('' for none).

    A grey image gets a Grayscale, an RGB (or YBR) one a Color, a palette colour one a Pseudo-Color
    Softcopy Presentation State. A photograph, a file that is not DICOM or lacks the UIDs a state refers
    to, an image without rows and columns, a palette colour image without a usable palette: a one-line
    ``ZsmedError`` naming the file, nothing written."""
    import zsmed

    _check_graphics(graphics)
    src = read_source(source, frame)
    if not src.get("Rows") or not src.get("Columns"):
        raise DicomReadError("the file is not an image: a presentation state needs one", path=source)
    from highdicom import UID
    from highdicom.pr import (
        ColorSoftcopyPresentationState,
        GrayscaleSoftcopyPresentationState,
        PseudoColorSoftcopyPresentationState,
    )

    photometric = str(src.get("PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    grey = photometric.startswith("MONOCHROME")
    palette = photometric == "PALETTE COLOR"
    samples = int(src.get("SamplesPerPixel") or 1)
    if not grey and not palette and samples != 3:
        raise DicomReadError(f"a {photometric} image with {samples} sample(s) per pixel: presentation states "
                             "are for grey, RGB or palette colour images", path=source)
    _conformant_times(src)
    from pydicom.uid import UID as PydicomUID

    sop_class = PydicomUID(str(src.SOPClassUID))
    if sop_class.is_retired or sop_class.name == str(sop_class):  # highdicom has no IOD table for either
        raise DicomReadError(f"its SOP class ({sop_class.name}) is retired or unknown: a presentation state "
                             "cannot refer to it", path=source)
    palette_lut = _palette_transformation(src, source) if palette else None  # its own one-line error
    with _refusals(source, "a presentation state"):
        annotations, layers = _annotations(src, frame, graphics, spacing or PixelSpacing(1.0, 1.0))
        common: dict[str, Any] = dict(
            referenced_images=[src], series_instance_uid=_uid_from("presentation", src.StudyInstanceUID),
            series_number=PRESENTATION_SERIES_NUMBER, sop_instance_uid=UID(), instance_number=_instance_number(src),
            manufacturer=MANUFACTURER, manufacturer_model_name="zsmed viewer", software_versions=zsmed.__version__,
            device_serial_number="0", content_label="ZSMED",
            content_description=f"As shown by {reader}"[:64] if reader.strip() else "As shown in zsmed",
            graphic_annotations=annotations or None, graphic_layers=layers or None,
            content_creator_name=person_name(reader) or None, specific_character_set="ISO_IR 192",
        )
        state: Any
        if grey:
            state = GrayscaleSoftcopyPresentationState(
                **common, voi_lut_transformations=_voi(display.window),
                modality_lut_transformation=_modality_lut(src, frame), presentation_lut_transformation=_lut_shape(
                    "INVERSE" if display.inverted != (photometric == "MONOCHROME1") else "IDENTITY"))
        elif palette_lut is not None:  # a palette colour image
            state = PseudoColorSoftcopyPresentationState(
                **(common | {"referenced_images": [_without_grey_transforms(src)]}),
                palette_color_lut_transformation=palette_lut, icc_profile=_icc_profile(src))
        else:
            state = ColorSoftcopyPresentationState(**common, icc_profile=_icc_profile(src))
        rotation, flip = turn_to_spatial(display.turn)
        size = (int(src.Columns), int(src.Rows))
        area = state.DisplayedAreaSelectionSequence[0]  # the whole image where none is given: turned too
        area.DisplayedAreaTopLeftHandCorner, area.DisplayedAreaBottomRightHandCorner = displayed_area(
            display.area or ((0.0, 0.0), (float(size[0]), float(size[1]))), size, rotation=rotation, flip=flip)
        state.ImageRotation = rotation
        state.ImageHorizontalFlip = "Y" if flip else "N"
        state.SeriesDescription = PRESENTATION_SERIES_DESCRIPTION
        laterality = str(src.get("Laterality") or "").strip().upper()
        state.Laterality = laterality if laterality in ("R", "L") else ""  # type 2C: present, empty when unknown
    return _save(state, Path(out_dir), "PR")


def _conformant_times(src: Dataset) -> None:
    """ACR-NEMA style times (``14:04:38``) in the header copied into the state as DICOM TM."""
    for keyword in ("StudyTime", "SeriesTime"):
        value = str(src.get(keyword) or "")
        if ":" in value and value.replace(":", "").replace(".", "").isdigit():
            setattr(src, keyword, value.replace(":", ""))


def _multi_frame_class(src: Dataset) -> bool:
    """Whether the image's IOD is a multi-frame one (RT Dose with one frame is), as highdicom decides it
    when it looks for the rescale in the functional groups."""
    try:
        from highdicom._standard_utils import is_multiframe_image  # not public; stable since 0.22
    except ImportError:
        return "NumberOfFrames" in src
    try:
        return bool(is_multiframe_image(src))
    except (AttributeError, KeyError):
        return "NumberOfFrames" in src


def _modality_lut(src: Dataset, frame: int | None) -> Any:
    """The Modality LUT the state carries: the frame's rescale (from its functional groups on an enhanced
    multi-frame image), so the window is in the values the viewer showed; None where highdicom copies
    the image's own (a Modality LUT table; an image without a rescale)."""
    from highdicom.content import ModalityLUTTransformation

    from zsmed.dicom.display import frame_view

    view = frame_view(src, frame or 0)
    if "ModalityLUTSequence" in view:
        return None
    has_rescale = "RescaleSlope" in view or "RescaleIntercept" in view
    without_groups = _multi_frame_class(src) and "SharedFunctionalGroupsSequence" not in src
    if not has_rescale and not without_groups:
        return None
    # (a multi-frame image without functional groups gets its own rescale or the identity, given here:
    # highdicom would look for it in the functional groups)
    slope, intercept = float(view.get("RescaleSlope") or 1.0), float(view.get("RescaleIntercept") or 0.0)
    kind = str(view.get("RescaleType") or ("HU" if str(src.get("Modality") or "") == "CT" else "US"))
    return ModalityLUTTransformation(rescale_intercept=intercept, rescale_slope=slope, rescale_type=kind)


def _voi(window: tuple[float, float] | None) -> list[Any] | None:
    if window is None:
        return None
    from highdicom.pr import SoftcopyVOILUTTransformation

    centre, width = float(window[0]), max(float(window[1]), 1.0)
    return [SoftcopyVOILUTTransformation(window_center=centre, window_width=width,
                                         window_explanation="As shown in zsmed")]


def _lut_shape(shape: str) -> Any:
    from highdicom.content import PresentationLUTTransformation

    return PresentationLUTTransformation(presentation_lut_shape=shape)


# --- reading -----------------------------------------------------------------------------------------
def _points(item: Any, key: str = "GraphicData") -> list[Point]:
    values = [float(v) for v in (item.get(key) or [])]
    return [(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]


def _references(item: Any, default: frozenset[str]) -> list[tuple[str, int | None]]:
    """(SOP Instance UID, 1-based frame or None) a graphic annotation or VOI item applies to; the
    state's images where it names none."""
    refs: list[tuple[str, int | None]] = []
    for ref in item.get("ReferencedImageSequence") or []:
        uid = str(ref.get("ReferencedSOPInstanceUID") or "")
        frames = ref.get("ReferencedFrameNumber")
        if frames is None or frames == "":
            refs.append((uid, None))
        else:
            numbers = [frames] if isinstance(frames, (int, str)) else list(frames)
            refs.extend((uid, int(n)) for n in numbers)
    return refs or [(uid, None) for uid in sorted(default)]


def _graphics_of(annotation: Any) -> tuple[list[Graphic], int]:
    """The viewer's marks in one Graphic Annotation item, and how many of its objects are not one."""
    layer = str(annotation.get("GraphicLayer") or "")
    marks: list[Graphic] = []
    skipped = 0
    for obj in annotation.get("GraphicObjectSequence") or []:
        kind, units = str(obj.get("GraphicType") or ""), str(obj.get("GraphicAnnotationUnits") or "")
        points = _points(obj)
        if units != "PIXEL" or not points:
            skipped += 1
        elif layer == ARROWS_LAYER and kind == "POLYLINE" and len(points) == 2:
            marks.append(Graphic("arrow", (points[0], points[1])))
        elif layer == ARROWS_LAYER and kind == "POLYLINE" and len(points) == 3:
            pass  # its arrowhead: the viewer draws one on every arrow
        elif kind == "POLYLINE" and len(points) == 2:
            marks.append(Graphic("ruler", (points[0], points[1])))
        elif kind == "POLYLINE" and len(points) == 3:
            marks.append(Graphic("angle", (points[0], points[1], points[2])))
        elif kind == "ELLIPSE" and len(points) == 4 and (corners := _corners_of_ellipse(points)) is not None:
            marks.append(Graphic("region", corners))
        elif kind == "CIRCLE" and len(points) == 2:
            (cx, cy), (px, py) = points
            radius = math.hypot(px - cx, py - cy)
            marks.append(Graphic("region", ((cx - radius, cy - radius), (cx + radius, cy + radius))))
        else:
            skipped += 1
    for text in annotation.get("TextObjectSequence") or []:
        value = str(text.get("UnformattedTextValue") or "").strip()
        anchor = _points(text, "AnchorPoint")
        anchored = bool(anchor) and str(text.get("AnchorPointAnnotationUnits") or "") == "PIXEL"
        if layer == MEASURES_LAYER:
            continue  # zsmed's figures beside its own marks: the viewer measures them again
        if layer == ARROWS_LAYER and anchored:
            arrows = [i for i, m in enumerate(marks) if m.kind == "arrow" and not m.text]
            at = min(arrows, key=lambda i: math.dist(marks[i].points[0], anchor[0]), default=None)
            if at is not None and math.dist(marks[at].points[0], anchor[0]) < 1.0:
                marks[at] = Graphic("arrow", marks[at].points, value)
                continue
        box = _points(text, "BoundingBoxTopLeftHandCorner") + _points(text, "BoundingBoxBottomRightHandCorner")
        box_pixels = str(text.get("BoundingBoxAnnotationUnits") or "") == "PIXEL"
        if anchored and str(text.get("AnchorPointVisibility") or "N") == "Y" and len(box) == 2 and box_pixels:
            # another viewer's note with a line to what it is about: an arrow from the note to it
            tail = ((box[0][0] + box[1][0]) / 2.0, (box[0][1] + box[1][1]) / 2.0)
            marks.append(Graphic("arrow", (tail, anchor[0]), value))
        else:
            skipped += 1
    return marks, skipped


@_quietly
def read_presentation_state(path: str | Path) -> PresentationState:
    """A Grayscale, Color or Pseudo-Color Softcopy Presentation State file as :class:`PresentationState`
    (a colour or pseudo-colour state has no Presentation LUT Shape: ``lut_shape`` ""). A file that is
    not one (or cannot be read): a one-line ``ZsmedError`` naming it."""
    from zsmed.dicom.decode import open_dataset

    path = Path(path)
    ds = open_dataset(path, stop_before_pixels=True)[0]
    sop_class = str(ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
    if sop_class not in PRESENTATION_STATE_CLASSES:
        raise NotDicomError("not a grayscale or colour presentation state", path=path)
    try:
        referenced = frozenset(
            str(image.ReferencedSOPInstanceUID)
            for series in ds.get("ReferencedSeriesSequence") or []
            for image in series.get("ReferencedImageSequence") or [])
        windows: list[tuple[str, float, float]] = []
        for item in ds.get("SoftcopyVOILUTSequence") or []:
            centre, width = item.get("WindowCenter"), item.get("WindowWidth")
            if centre is None or width is None:
                continue
            centre = float(centre[0] if isinstance(centre, Sequence) and not isinstance(centre, str) else centre)
            width = float(width[0] if isinstance(width, Sequence) and not isinstance(width, str) else width)
            windows.extend((uid, centre, width) for uid, _ in _references(item, referenced))
        graphics: list[tuple[str, int | None, Graphic]] = []
        not_shown = 0
        for annotation in ds.get("GraphicAnnotationSequence") or []:
            marks, skipped = _graphics_of(annotation)
            refs = _references(annotation, referenced)
            not_shown += skipped
            graphics.extend((uid, frame, mark) for uid, frame in refs for mark in marks)
        turn = spatial_to_turn(int(ds.get("ImageRotation") or 0), str(ds.get("ImageHorizontalFlip") or "N") == "Y")
        area_item = (ds.get("DisplayedAreaSelectionSequence") or [None])[0]
        area = None
        if area_item is not None and "DisplayedAreaTopLeftHandCorner" in area_item:
            # two opposite corners, which ones depends on the rotation and flip (see displayed_area)
            (x0, y0), (x1, y1) = (area_item.DisplayedAreaTopLeftHandCorner,
                                  area_item.DisplayedAreaBottomRightHandCorner)
            area = ((float(min(x0, x1)) - 1.0, float(min(y0, y1)) - 1.0), (float(max(x0, x1)), float(max(y0, y1))))
        grey = sop_class == GRAYSCALE_PS
        lut_shape = str(ds.get("PresentationLUTShape") or "IDENTITY").upper() if grey else ""
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        from zsmed.dicom.decode import one_line

        raise DicomReadError(f"the presentation state cannot be read ({one_line(exc)[:200]})", path=path) from exc
    return PresentationState(
        path=path, study_uid=str(ds.get("StudyInstanceUID") or ""), referenced=referenced,
        created=date_time_text(ds.get("PresentationCreationDate"), ds.get("PresentationCreationTime")),
        creator=str(ds.get("ContentCreatorName") or ""), label=str(ds.get("ContentLabel") or ""), turn=turn,
        lut_shape=lut_shape, area=area, windows=tuple(windows), graphics=tuple(graphics), not_shown=not_shown,
    )


__all__ = ["ARROWS_LAYER", "MEASURES_LAYER", "PRESENTATION_SERIES_DESCRIPTION", "PRESENTATION_SERIES_NUMBER",
           "PRESENTATION_STATE_CLASSES", "DisplaySettings", "Graphic", "PresentationState", "arrowhead",
           "is_inverted", "palette_table", "read_presentation_state", "spatial_to_turn", "turn_to_spatial",
           "write_presentation_state"]
