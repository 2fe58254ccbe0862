"""Presentation states (GSPS / colour / pseudo-colour) written from the viewer's marks and view, read
back, on real files: what is written is checked element by element and with dicom3tools' dciodvfy,
and reading it back gives the marks, window, inversion and turn that were written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import dicom_test_file
from tests.report.sr_items import dciodvfy_errors
from zsmed.dicom.geometry import (
    ALL_TURNS,
    CLOCKWISE,
    MIRROR_LEFT_RIGHT,
    MIRROR_UP_DOWN,
    UPRIGHT,
    compose_turns,
    turned_image,
)
from zsmed.errors import DicomReadError, NotDicomError, ZsmedError
from zsmed.report.measurements import PixelSpacing
from zsmed.report.presentation import (
    ARROWS_LAYER,
    MEASURES_LAYER,
    DisplaySettings,
    Graphic,
    arrowhead,
    displayed_area,
    is_inverted,
    palette_table,
    read_presentation_state,
    spatial_to_turn,
    turn_to_spatial,
    write_presentation_state,
)

MARKS = [
    Graphic("ruler", ((10.0, 12.0), (60.0, 70.0)), "52.3 mm"),
    Graphic("angle", ((10.0, 100.0), (40.0, 90.0), (80.0, 110.0)), "33.7°"),
    Graphic("region", ((60.0, 20.0), (100.0, 50.0)), "Area 8.9 cm²\nMean 41.2 ± 3.1 HU"),
    Graphic("arrow", ((100.0, 100.0), (70.0, 80.0)), "nodule, compare with 2023"),
    Graphic("arrow", ((5.0, 120.0), (30.0, 110.0)), ""),
]


def _same(a: tuple[tuple[float, float], ...], b: tuple[tuple[float, float], ...]) -> bool:
    return len(a) == len(b) and all(math.dist(p, q) < 1e-4 for p, q in zip(a, b, strict=True))


def test_turns_become_rotation_then_horizontal_flip_as_ps33_c106_orders_them() -> None:
    """Image Rotation turns clockwise first, Image Horizontal Flip mirrors the rotated image: checked on
    pixels against numpy's rot90 / fliplr, for every one of the viewer's eight turns."""
    assert turn_to_spatial(UPRIGHT) == (0, False)
    assert turn_to_spatial(CLOCKWISE) == (90, False)
    assert turn_to_spatial(MIRROR_LEFT_RIGHT) == (0, True)
    assert turn_to_spatial(MIRROR_UP_DOWN) == (180, True)  # half a turn, then left-right: upside down
    image = np.arange(3 * 5).reshape(3, 5)
    for turn in ALL_TURNS:
        rotation, flip = turn_to_spatial(turn)
        expected = np.rot90(image, k=-(rotation // 90))  # rot90 turns anticlockwise for positive k
        expected = np.fliplr(expected) if flip else expected
        assert np.array_equal(turned_image(image, turn), expected), turn
        assert spatial_to_turn(rotation, flip) == turn
    with pytest.raises(ValueError):
        spatial_to_turn(45, False)


def test_inversion_is_relative_to_the_photometric_interpretation() -> None:
    assert not is_inverted("IDENTITY", "MONOCHROME2") and is_inverted("INVERSE", "MONOCHROME2")
    assert not is_inverted("INVERSE", "MONOCHROME1") and is_inverted("IDENTITY", "MONOCHROME1")


def test_arrowhead_is_two_equal_wings_at_25_degrees_a_quarter_of_the_arrow_long() -> None:
    wing_a, head, wing_b = arrowhead((0.0, 0.0), (40.0, 0.0))
    assert head == (40.0, 0.0)
    assert math.dist(wing_a, head) == pytest.approx(10.0) and math.dist(wing_b, head) == pytest.approx(10.0)
    assert math.degrees(math.atan2(abs(wing_a[1]), 40.0 - wing_a[0])) == pytest.approx(25.0)
    assert wing_a[1] == pytest.approx(-wing_b[1]) and wing_a[0] < 40.0


def test_ct_view_and_marks_written_as_gsps_and_read_back(tmp_path: Path) -> None:
    source = dicom_test_file("CT_small.dcm")
    src = pydicom.dcmread(source, stop_before_pixels=True)
    turn = compose_turns(CLOCKWISE, MIRROR_LEFT_RIGHT)
    path = write_presentation_state(source, frame=0, graphics=MARKS,
                                    display=DisplaySettings(window=(40.0, 400.0), inverted=True, turn=turn,
                                                            area=((10.0, 20.0), (60.0, 70.0))),
                                    spacing=PixelSpacing(0.66, 0.66), reader="Doe, Jane", out_dir=tmp_path)
    assert path.parent == tmp_path and path.name.startswith("PR_")
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.1" and ds.Modality == "PR"
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientID == src.PatientID
    assert ds.SeriesNumber == 993 and ds.SeriesDescription == "zsmed presentation state"
    assert ds.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    # the window is in HU: the image's rescale goes with it
    assert float(ds.RescaleIntercept) == float(src.RescaleIntercept) and float(ds.RescaleSlope) == 1.0
    voi = ds.SoftcopyVOILUTSequence[0]
    assert (float(voi.WindowCenter), float(voi.WindowWidth)) == (40.0, 400.0)
    assert ds.PresentationLUTShape == "INVERSE"  # a MONOCHROME2 image shown inverted
    assert (ds.ImageRotation, ds.ImageHorizontalFlip) == (90, "Y")
    area = ds.DisplayedAreaSelectionSequence[0]  # the zoomed-in part, 1-based first and last pixels
    assert (list(area.DisplayedAreaTopLeftHandCorner), list(area.DisplayedAreaBottomRightHandCorner)) == (
        [11, 21], [60, 70])
    assert area.PresentationSizeMode == "SCALE TO FIT"
    assert str(ds.ContentCreatorName) == "Doe, Jane^"
    layers = {a.GraphicLayer: a for a in ds.GraphicAnnotationSequence}
    assert set(layers) == {MEASURES_LAYER, ARROWS_LAYER}
    measures = layers[MEASURES_LAYER]
    kinds = [(o.GraphicType, int(o.NumberOfGraphicPoints)) for o in measures.GraphicObjectSequence]
    assert kinds == [("POLYLINE", 2), ("POLYLINE", 3), ("ELLIPSE", 4)]
    ellipse = np.array(measures.GraphicObjectSequence[2].GraphicData).reshape(4, 2)
    assert ellipse.tolist() == [[60.0, 35.0], [100.0, 35.0], [80.0, 20.0], [80.0, 50.0]]  # major axis first
    texts = [t.UnformattedTextValue for t in measures.TextObjectSequence]
    assert texts == ["52.3 mm", "33.7°", "Area 8.9 cm²\r\nMean 41.2 ± 3.1 HU"]
    arrows = layers[ARROWS_LAYER]
    assert [int(o.NumberOfGraphicPoints) for o in arrows.GraphicObjectSequence] == [2, 3, 2, 3]  # shaft, head
    note = arrows.TextObjectSequence[0]
    assert note.UnformattedTextValue == "nodule, compare with 2023" and list(note.AnchorPoint) == [100.0, 100.0]
    assert len(arrows.TextObjectSequence) == 1  # the arrow without a note has no text object

    state = read_presentation_state(path)
    marks = state.graphics_on(str(src.SOPInstanceUID))
    assert [m.kind for m in marks] == ["ruler", "angle", "region", "arrow", "arrow"]
    for read, written in zip(marks, MARKS, strict=True):
        assert _same(read.points, written.points), (read, written)
    assert [m.text for m in marks if m.kind == "arrow"] == ["nodule, compare with 2023", ""]
    display = state.display_for(str(src.SOPInstanceUID), "MONOCHROME2")
    assert display == DisplaySettings(window=(40.0, 400.0), inverted=True, turn=turn,
                                      area=((10.0, 20.0), (60.0, 70.0)))
    assert state.not_shown == 0 and state.creator == "Doe, Jane^" and state.created[:2] == "20"
    assert state.graphics_on("1.2.3.4") == []


def test_monochrome1_shown_as_its_file_asks_is_inverse(tmp_path: Path) -> None:
    source = dicom_test_file("RG1_UNCI.dcm")  # a computed radiograph stored white-on-black
    src = pydicom.dcmread(source, stop_before_pixels=True)
    assert src.PhotometricInterpretation == "MONOCHROME1"
    as_file = write_presentation_state(source, frame=0, graphics=[], display=DisplaySettings(), spacing=None,
                                       reader="", out_dir=tmp_path)
    assert pydicom.dcmread(as_file).PresentationLUTShape == "INVERSE"
    inverted = write_presentation_state(source, frame=0, graphics=[], display=DisplaySettings(inverted=True),
                                        spacing=None, reader="", out_dir=tmp_path)
    assert pydicom.dcmread(inverted).PresentationLUTShape == "IDENTITY"
    state = read_presentation_state(inverted)
    assert state.display_for(str(src.SOPInstanceUID), "MONOCHROME1").inverted
    assert not read_presentation_state(as_file).display_for(str(src.SOPInstanceUID), "MONOCHROME1").inverted
    assert dciodvfy_errors(as_file) == []


def test_colour_image_gets_a_colour_state_with_an_srgb_colour_space_profile(tmp_path: Path) -> None:
    from io import BytesIO

    from PIL import ImageCms

    source = dicom_test_file("SC_rgb.dcm")
    path = write_presentation_state(source, frame=0, graphics=MARKS[3:4], display=DisplaySettings(window=(128, 256)),
                                    spacing=None, reader="", out_dir=tmp_path)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.2"
    assert "SoftcopyVOILUTSequence" not in ds and "PresentationLUTShape" not in ds  # grey-only modules
    profile = ImageCms.ImageCmsProfile(BytesIO(ds.ICCProfile)).profile
    assert profile.device_class.strip() == "spac" and profile.xcolor_space.strip() == "RGB"
    assert dciodvfy_errors(path) == []
    state = read_presentation_state(path)
    uid = str(ds.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID)
    assert state.lut_shape == "" and [m.text for m in state.graphics_on(uid)] == ["nodule, compare with 2023"]


def test_marks_on_a_multi_frame_image_are_on_their_frame(tmp_path: Path) -> None:
    source = dicom_test_file("SC_rgb_2frame.dcm")
    uid = str(pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID)
    path = write_presentation_state(source, frame=1, graphics=MARKS[:1], display=DisplaySettings(), spacing=None,
                                    reader="", out_dir=tmp_path)
    annotation = pydicom.dcmread(path).GraphicAnnotationSequence[0]
    assert int(annotation.ReferencedImageSequence[0].ReferencedFrameNumber) == 2
    state = read_presentation_state(path)
    assert state.graphics_on(uid, 0) == [] and [m.kind for m in state.graphics_on(uid, 1)] == ["ruler"]


def test_an_enhanced_multi_frame_window_uses_the_frames_rescale(tmp_path: Path) -> None:
    source = dicom_test_file("emri_small.dcm")
    path = write_presentation_state(source, frame=0, graphics=MARKS[:1], display=DisplaySettings(window=(100, 50)),
                                    spacing=None, reader="", out_dir=tmp_path)
    ds = pydicom.dcmread(path)
    assert float(ds.RescaleSlope) == 1.0 and float(ds.RescaleIntercept) == 0.0
    assert float(ds.SoftcopyVOILUTSequence[0].WindowWidth) == 50.0


def test_marks_are_kept_on_the_image_a_wing_at_the_edge_moves_onto_it(tmp_path: Path) -> None:
    source = dicom_test_file("CT_small.dcm")  # 128 x 128
    edge = [Graphic("arrow", ((120.0, 64.0), (128.0, 64.0)), "")]
    path = write_presentation_state(source, frame=0, graphics=edge, display=DisplaySettings(), spacing=None,
                                    reader="", out_dir=tmp_path)
    data = [float(v) for o in pydicom.dcmread(path).GraphicAnnotationSequence[0].GraphicObjectSequence
            for v in o.GraphicData]
    assert max(data) <= 128.0 and min(data) >= 0.0


def _without_palette_data(tmp_path: Path) -> Path:
    """OBXXXX1A.dcm with its palette's descriptors but without its data: a damaged palette colour image."""
    ds = pydicom.dcmread(dicom_test_file("OBXXXX1A.dcm"))
    for colour in ("Red", "Green", "Blue"):
        delattr(ds, f"{colour}PaletteColorLookupTableData")
    path = tmp_path / "source" / "no_palette.dcm"
    path.parent.mkdir()
    ds.save_as(path)
    return path


@pytest.mark.parametrize(("name", "reason"), [
    ("no palette data", "a PALETTE COLOR image whose palette cannot be used (it has no red, green and blue "
                        "Palette Color Lookup Table Data)"),
    ("color-pl.dcm", "retired or unknown"),
])
def test_images_a_state_cannot_be_for_are_refused_in_one_line(tmp_path: Path, name: str, reason: str) -> None:
    source = _without_palette_data(tmp_path) if name == "no palette data" else dicom_test_file(name)
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    with pytest.raises(DicomReadError) as caught:
        write_presentation_state(source, frame=0, graphics=MARKS, display=DisplaySettings(), spacing=None,
                                 reader="", out_dir=tmp_path)
    assert reason in str(caught.value) and source.name in str(caught.value) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_photo_or_a_bad_mark_is_refused(tmp_path: Path) -> None:
    photo = tmp_path / "lesion.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(photo)
    with pytest.raises(NotDicomError):
        write_presentation_state(photo, frame=0, graphics=[], display=DisplaySettings(), spacing=None, reader="",
                                 out_dir=tmp_path)
    with pytest.raises(ValueError, match="needs 3 points"):
        write_presentation_state(dicom_test_file("CT_small.dcm"), frame=0,
                                 graphics=[Graphic("angle", ((0, 0), (1, 1)))], display=DisplaySettings(),
                                 spacing=None, reader="", out_dir=tmp_path)


def test_reading_something_that_is_not_a_state_names_the_file() -> None:
    source = dicom_test_file("CT_small.dcm")
    with pytest.raises(ZsmedError, match="not a grayscale or colour presentation state") as caught:
        read_presentation_state(source)
    assert str(source) in str(caught.value)


def test_another_viewers_drawings_map_onto_the_viewers_marks_or_are_counted(tmp_path: Path) -> None:
    """A GSPS as another viewer writes it: a circle is a region, a note with a visible line to its anchor
    an arrow; a tilted ellipse, a point and a note without an anchor are counted, never guessed."""
    from highdicom import UID
    from highdicom.pr import (
        GraphicAnnotation,
        GraphicLayer,
        GraphicObject,
        GrayscaleSoftcopyPresentationState,
        TextObject,
    )

    src = pydicom.dcmread(dicom_test_file("CT_small.dcm"), stop_before_pixels=True)
    layer = GraphicLayer("LAYER0", 1)
    objects = [
        GraphicObject("CIRCLE", np.array([[50.0, 50.0], [60.0, 50.0]]), "PIXEL"),
        GraphicObject("ELLIPSE", np.array([[40.0, 40.0], [60.0, 60.0], [45.0, 55.0], [55.0, 45.0]]), "PIXEL"),
        GraphicObject("POINT", np.array([[5.0, 5.0]]), "PIXEL"),
        GraphicObject("POLYLINE", np.array([[1.0, 1.0], [2.0, 30.0]]), "PIXEL"),
    ]
    texts = [
        TextObject("fracture", "PIXEL", bounding_box=(10.0, 10.0, 30.0, 20.0), anchor_point=(64.0, 64.0),
                   anchor_point_visible=True),
        TextObject("see report", "PIXEL", bounding_box=(80.0, 80.0, 120.0, 90.0)),
    ]
    ps = GrayscaleSoftcopyPresentationState(
        [src], UID(), 1, UID(), 1, "Other", "Other viewer", "1", "0", "OTHER",
        graphic_annotations=[GraphicAnnotation([src], layer, graphic_objects=objects, text_objects=texts)],
        graphic_layers=[layer])
    path = tmp_path / "other.dcm"
    ps.save_as(path, enforce_file_format=True)
    state = read_presentation_state(path)
    marks = state.graphics_on(str(src.SOPInstanceUID))
    assert [m.kind for m in marks] == ["region", "ruler", "arrow"]
    assert _same(marks[0].points, ((40.0, 40.0), (60.0, 60.0)))
    assert marks[2] == Graphic("arrow", ((20.0, 15.0), (64.0, 64.0)), "fracture")
    assert state.not_shown == 3  # the tilted ellipse, the point, the note without an anchor
    assert state.turn == UPRIGHT and state.windows == ()


def test_the_part_in_view_is_the_displayed_areas_first_and_last_pixel_kept_on_the_image() -> None:
    assert displayed_area(((10.5, 20.2), (60.0, 70.9)), (128, 128)) == ([11, 21], [60, 71])
    assert displayed_area(((0.0, 0.0), (128.0, 128.0)), (128, 128)) == ([1, 1], [128, 128])  # the whole image
    assert displayed_area(((-30.0, 100.0), (300.0, 90.0)), (128, 96)) == ([1, 91], [128, 96])  # off the edges
    assert displayed_area(((5.2, 5.2), (5.4, 5.4)), (128, 128)) == ([6, 6], [6, 6])  # at least one pixel


def test_the_displayed_areas_corners_are_the_pixels_shown_top_left_and_bottom_right_after_the_turn() -> None:
    """PS3.3 C.10.4 (Figure C.10.4-1): the corners are given after the rotation and flip. Checked on
    pixels: the image turned as the state says (numpy's rot90 / fliplr) shows the corner pixels at its
    top left and bottom right, for each of the eight turns; PS3.3's own two examples first."""
    whole = ((0.0, 0.0), (640.0, 480.0))
    assert displayed_area(whole, (640, 480), rotation=90, flip=False) == ([1, 480], [640, 1])  # Figure C.10.4-1 b
    assert displayed_area(whole, (640, 480), rotation=90, flip=True) == ([1, 1], [640, 480])  # Figure C.10.4-1 c
    columns, rows = 9, 7
    image = np.arange(rows * columns).reshape(rows, columns)
    part = ((2.0, 1.0), (6.0, 5.0))  # columns 3 to 6, rows 2 to 5 (1-based)
    for turn in ALL_TURNS:
        rotation, flip = turn_to_spatial(turn)
        (tl_column, tl_row), (br_column, br_row) = displayed_area(part, (columns, rows), rotation=rotation, flip=flip)
        inside = image[1:5, 2:6]
        shown = np.rot90(inside, k=-(rotation // 90))
        shown = np.fliplr(shown) if flip else shown
        assert shown[0, 0] == image[tl_row - 1, tl_column - 1], turn
        assert shown[-1, -1] == image[br_row - 1, br_column - 1], turn


def _palette_of(ds: pydicom.Dataset) -> tuple[list[list[int]], np.ndarray]:
    """A data set's (descriptors, (entries, 3) table) as pydicom reads its Palette Color Lookup Table."""
    from pydicom.pixels import apply_color_lut

    descriptors = [list(ds[f"{c}PaletteColorLookupTableDescriptor"].value) for c in ("Red", "Green", "Blue")]
    entries, first = descriptors[0][0] or 65536, descriptors[0][1]
    return descriptors, apply_color_lut(np.arange(first, first + entries), ds)


def test_a_palette_colour_image_gets_a_pseudo_colour_state_with_its_own_palette(tmp_path: Path) -> None:
    source = dicom_test_file("OBXXXX1A.dcm")  # ultrasound, PALETTE COLOR, 256 entries of 16 bits
    src = pydicom.dcmread(source)
    assert src.PhotometricInterpretation == "PALETTE COLOR"
    turn = compose_turns(CLOCKWISE, CLOCKWISE)
    path = write_presentation_state(source, frame=0, graphics=MARKS,
                                    display=DisplaySettings(window=(127.5, 255.0), turn=turn,
                                                            area=((100.0, 50.0), (700.0, 500.0))),
                                    spacing=None, reader="Doe, Jane", out_dir=tmp_path)
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.3" and ds.Modality == "PR"  # Pseudo-Color Softcopy PS
    assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.11.3"
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientID == src.PatientID
    series = ds.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == src.SeriesInstanceUID
    assert series.ReferencedImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    # the image's own palette, entry for entry and byte for byte
    for colour in ("Red", "Green", "Blue"):
        assert list(ds[f"{colour}PaletteColorLookupTableDescriptor"].value) == list(
            src[f"{colour}PaletteColorLookupTableDescriptor"].value)
        assert bytes(ds[f"{colour}PaletteColorLookupTableData"].value) == bytes(
            src[f"{colour}PaletteColorLookupTableData"].value)
    assert np.array_equal(_palette_of(ds)[1], _palette_of(src)[1])
    # no rescale, no window, no presentation LUT: the palette indexes the stored values, as in the image
    for keyword in ("RescaleSlope", "RescaleIntercept", "ModalityLUTSequence", "SoftcopyVOILUTSequence",
                    "PresentationLUTShape", "SegmentedRedPaletteColorLookupTableData"):
        assert keyword not in ds, keyword
    from io import BytesIO

    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(BytesIO(ds.ICCProfile)).profile
    assert profile.device_class.strip() == "spac" and profile.xcolor_space.strip() == "RGB"
    assert (ds.ImageRotation, ds.ImageHorizontalFlip) == (180, "N")
    area = ds.DisplayedAreaSelectionSequence[0]  # turned half a turn: the bottom-right pixel is shown top left
    assert (list(area.DisplayedAreaTopLeftHandCorner), list(area.DisplayedAreaBottomRightHandCorner)) == (
        [700, 500], [101, 51])
    assert {a.GraphicLayer for a in ds.GraphicAnnotationSequence} == {MEASURES_LAYER, ARROWS_LAYER}

    state = read_presentation_state(path)
    uid = str(src.SOPInstanceUID)
    assert state.referenced == frozenset({uid}) and state.study_uid == src.StudyInstanceUID
    marks = state.graphics_on(uid)
    assert [m.kind for m in marks] == ["ruler", "angle", "region", "arrow", "arrow"]
    for read, written in zip(marks, MARKS, strict=True):
        assert _same(read.points, written.points), (read, written)
    assert [m.text for m in marks if m.kind == "arrow"] == ["nodule, compare with 2023", ""]
    assert state.lut_shape == "" and state.windows == () and state.not_shown == 0
    assert state.display_for(uid, "PALETTE COLOR") == DisplaySettings(turn=turn, area=((100.0, 50.0), (700.0, 500.0)))


@pytest.mark.parametrize("name", ["gdcm-US-ALOKA-16.dcm", "gdcm-US-ALOKA-16_big.dcm"])
def test_a_segmented_palette_is_written_expanded(tmp_path: Path, name: str) -> None:
    """A presentation state may not carry a segmented palette (PS3.3 C.7.9): the image's is written out
    entry by entry, the same 65536 colours pydicom expands from it (little- and big-endian files)."""
    source = dicom_test_file(name)
    src = pydicom.dcmread(source)
    assert "SegmentedRedPaletteColorLookupTableData" in src and "RedPaletteColorLookupTableData" not in src
    path = write_presentation_state(source, frame=0, graphics=MARKS[:1], display=DisplaySettings(), spacing=None,
                                    reader="", out_dir=tmp_path)
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.3"
    assert not any(keyword.startswith("Segmented") for keyword in ds.dir("Palette"))
    descriptors, table = _palette_of(ds)
    assert descriptors == [[0, 0, 16]] * 3  # 2^16 entries from 0, 16 bits each: as the image's
    assert descriptors == _palette_of(src)[0]
    assert table.shape == (65536, 3) and np.array_equal(table, _palette_of(src)[1])
    assert [m.kind for m in read_presentation_state(path).graphics_on(str(src.SOPInstanceUID))] == ["ruler"]


def test_a_big_endian_palette_is_written_with_its_values(tmp_path: Path) -> None:
    """The palette's words are in the file's byte order: OBXXXX1A_expb.dcm (the same image, big-endian)
    gets the same palette as OBXXXX1A.dcm."""
    little = write_presentation_state(dicom_test_file("OBXXXX1A.dcm"), frame=0, graphics=[], display=DisplaySettings(),
                                      spacing=None, reader="", out_dir=tmp_path / "little")
    big = write_presentation_state(dicom_test_file("OBXXXX1A_expb.dcm"), frame=0, graphics=[],
                                   display=DisplaySettings(), spacing=None, reader="", out_dir=tmp_path / "big")
    from_little, from_big = _palette_of(pydicom.dcmread(little))[1], _palette_of(pydicom.dcmread(big))[1]
    assert np.array_equal(from_little, from_big) and int(from_big.max()) == 0xFF00
    assert dciodvfy_errors(big) == []


def test_marks_on_a_frame_of_a_multi_frame_palette_image(tmp_path: Path) -> None:
    source = dicom_test_file("OBXXXX1A_rle_2frame.dcm")  # Ultrasound Multi-frame, without functional groups
    uid = str(pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID)
    path = write_presentation_state(source, frame=1, graphics=MARKS[:2], display=DisplaySettings(turn=CLOCKWISE),
                                    spacing=None, reader="", out_dir=tmp_path)
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.3" and "SharedFunctionalGroupsSequence" not in ds
    assert int(ds.GraphicAnnotationSequence[0].ReferencedImageSequence[0].ReferencedFrameNumber) == 2
    state = read_presentation_state(path)
    assert state.graphics_on(uid, 0) == [] and [m.kind for m in state.graphics_on(uid, 1)] == ["ruler", "angle"]
    assert state.turn == CLOCKWISE


def test_palette_tables_are_read_in_the_files_byte_order_and_8_bits_become_16() -> None:
    words = np.array([0x0000, 0x0102, 0xFF00], dtype=np.uint16)
    assert palette_table(words.astype("<u2").tobytes(), 3, 16, little_endian=True).tolist() == [0, 0x0102, 0xFF00]
    assert palette_table(words.astype(">u2").tobytes(), 3, 16, little_endian=False).tolist() == [0, 0x0102, 0xFF00]
    # 8-bit entries, one to a word (as some writers do) or packed two to a word: 255 becomes 65535
    assert palette_table(np.array([0, 128, 255], "<u2").tobytes(), 3, 8, little_endian=True).tolist() == [
        0, 128 * 257, 65535]
    assert palette_table(bytes([0, 128, 255, 7]), 4, 8, little_endian=True).tolist() == [0, 128 * 257, 65535, 7 * 257]
    assert palette_table(bytes([128, 0, 7, 255]), 4, 8, little_endian=False).tolist() == [0, 128 * 257, 65535, 7 * 257]
    with pytest.raises(ValueError, match="3 bytes of palette data for 4 entries"):
        palette_table(bytes(3), 4, 16, little_endian=True)
    with pytest.raises(ValueError):
        palette_table(bytes(8), 4, 12, little_endian=True)
