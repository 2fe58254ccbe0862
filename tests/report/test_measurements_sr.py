"""The reader's rulers, regions of interest and angles as a DICOM SR (TID 1500, one TID 1410 group per mark) on
real files: read back with pydicom, the figures compared with what the viewer computes on the decoded
frame, and checked with dicom3tools' dciodvfy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.conftest import dicom_test_file
from tests.report.sr_items import content_items, dciodvfy_errors, text_values
from zsmed.dicom.decode import number_of_frames, open_dataset, stored_pixels
from zsmed.dicom.display import ModalityFrame, ellipse_mask, modality_frame, roi_statistics
from zsmed.dicom.geometry import angle_degrees, ruler_length
from zsmed.errors import NotDicomError, ZsmedError
from zsmed.report import NoPixelSpacingError, PixelSpacing, RegionMark, RulerMark, write_measurements_sr
from zsmed.report.measurements import SPACING_NOTES, AngleMark, ellipse_points, person_name

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
HU = "[hnsf'U]"
Point = tuple[float, float]


def decoded_frame(path: Path, frame: int = 0) -> ModalityFrame:
    """The frame as the viewer decodes it (stored pixels, then modality values and spacing)."""
    ds, notes = open_dataset(path)
    multi = number_of_frames(ds) > 1
    pixels = stored_pixels(ds, frame=frame if multi else None, path=str(path), notes=notes)
    return modality_frame(pixels, ds, frame if multi else 0)


def spacing_of(frame: ModalityFrame) -> PixelSpacing:
    assert frame.spacing is not None
    return PixelSpacing(frame.spacing[0], frame.spacing[1], frame.spacing_source)


def rulers_on(frame: ModalityFrame, *ends: tuple[Point, Point]) -> list[RulerMark]:
    return [RulerMark(start, end, ruler_length(start, end, frame.spacing)) for start, end in ends]


def regions_on(frame: ModalityFrame, *corners: tuple[Point, Point]) -> list[RegionMark]:
    return [RegionMark(a, b, roi_statistics(frame, a, b)) for a, b in corners]


@dataclass
class Group:
    """One measurement group read back: its identifier, its numbers (meaning -> (value, unit, code)),
    its image region and its TEXT items."""

    identifier: str
    numbers: dict[str, tuple[float, str, tuple[str, str]]] = field(default_factory=dict)
    region: Any = None
    texts: list[str] = field(default_factory=list)


def groups_of(sr: Any) -> list[Group]:
    found = []
    for item in content_items(sr):
        if item.ValueType != "CONTAINER" or item.ConceptNameCodeSequence[0].CodeMeaning != "Measurement Group":
            continue
        assert item.ContentTemplateSequence[0].TemplateIdentifier == "1410"
        group = Group(identifier="")
        for child in item.ContentSequence:
            name = child.ConceptNameCodeSequence[0]
            if child.ValueType == "TEXT" and name.CodeMeaning == "Tracking Identifier":
                group.identifier = str(child.TextValue)
            elif child.ValueType == "TEXT":
                group.texts.append(str(child.TextValue))
            elif child.ValueType == "NUM":
                value = child.MeasuredValueSequence[0]
                unit = value.MeasurementUnitsCodeSequence[0]
                assert unit.CodingSchemeDesignator == "UCUM"
                group.numbers[name.CodeMeaning] = (float(value.NumericValue), unit.CodeValue,
                                                   (name.CodeValue, name.CodingSchemeDesignator))
            elif child.ValueType == "SCOORD":
                group.region = child
        found.append(group)
    return found


def points_of(scoord: Any) -> list[Point]:
    data = [float(v) for v in scoord.GraphicData]
    return list(zip(data[0::2], data[1::2], strict=True))


def assert_points(scoord: Any, expected: list[Point]) -> None:
    got = points_of(scoord)  # Graphic Data is FL: float32
    assert len(got) == len(expected)
    for (x, y), (ex, ey) in zip(got, expected, strict=True):
        assert x == pytest.approx(ex, rel=1e-6, abs=1e-4) and y == pytest.approx(ey, rel=1e-6, abs=1e-4)


def source_reference(scoord: Any) -> Any:
    (image,) = scoord.ContentSequence
    assert image.ValueType == "IMAGE" and image.RelationshipType == "SELECTED FROM"
    return image.ReferencedSOPSequence[0]


def observer(sr: Any) -> tuple[str, str]:
    """(Observer Type meaning, the person's or the device's name)."""
    items = sr.ContentSequence
    kind = next(i for i in items if i.ConceptNameCodeSequence[0].CodeMeaning == "Observer Type")
    named = next(i for i in items if i.ConceptNameCodeSequence[0].CodeMeaning in ("Person Observer Name",
                                                                                 "Device Observer Name"))
    name = str(named.PersonName) if named.ValueType == "PNAME" else str(named.TextValue)
    return kind.ConceptCodeSequence[0].CodeMeaning, name


def check_document(path: Path, source: Path) -> Any:
    """In the source's study, a series of its own (992, 'zsmed measurements'), the patient copied,
    and dciodvfy finds no error."""
    sr = pydicom.dcmread(path)
    src = pydicom.dcmread(source, stop_before_pixels=True)
    assert sr.SOPClassUID == COMPREHENSIVE_SR and sr.Modality == "SR"
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert sr.StudyInstanceUID == src.StudyInstanceUID and sr.SeriesInstanceUID != src.SeriesInstanceUID
    assert sr.SeriesNumber == 992 and sr.SeriesDescription == "zsmed measurements" and sr.Manufacturer == "zsmed"
    assert sr.SpecificCharacterSet == "ISO_IR 192"
    assert sr.PatientID == src.get("PatientID", "") and str(sr.PatientName) == str(src.get("PatientName", ""))
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert evidence.ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert dciodvfy_errors(path) == []
    return sr


def check_figures(group: Group, statistics: Any, unit: str) -> None:
    """The region's figures as the viewer computed them, each under its SNOMED CT code."""
    assert group.numbers["Area"] == (pytest.approx(statistics.area), "mm2", ("42798000", "SCT"))
    expected = {"Mean": (statistics.mean, "373098007"), "Standard Deviation": (statistics.sd, "386136009"),
                "Minimum": (statistics.minimum, "255605001"), "Maximum": (statistics.maximum, "56851009")}
    for meaning, (value, code) in expected.items():
        assert group.numbers[meaning] == (pytest.approx(value), unit, (code, "SCT"))


def test_ct_rulers_and_a_region_read_back_as_the_viewer_measured_them(tmp_path: Path) -> None:
    source = dicom_test_file("CT_small.dcm")  # Pixel Spacing, values in HU
    frame = decoded_frame(source)
    assert frame.hounsfield and frame.spacing_source == "PixelSpacing"
    rulers = rulers_on(frame, ((10.5, 20.5), (60.25, 80.0)), ((0.0, 0.0), (128.0, 128.0)))
    regions = regions_on(frame, ((30.0, 40.0), (90.0, 70.0)))
    before = sorted(source.parent.iterdir())
    path = write_measurements_sr(source, frame=0, rulers=rulers, regions=regions, spacing=spacing_of(frame),
                                 reader="Dr Ünal", out_dir=tmp_path / "out")
    assert path.parent == tmp_path / "out" and path.name.startswith("SR_") and len(list(path.parent.iterdir())) == 1
    assert sorted(source.parent.iterdir()) == before
    sr = check_document(path, source)
    assert observer(sr) == ("Person", "Dr Ünal^")  # the reader, not the model
    src = pydicom.dcmread(source, stop_before_pixels=True)
    groups = groups_of(sr)
    assert [g.identifier for g in groups] == ["Ruler 1", "Ruler 2", "Region 1"]
    for group, ruler in zip(groups[:2], rulers, strict=True):
        assert group.region.GraphicType == "POLYLINE"
        assert_points(group.region, [ruler.start, ruler.end])
        assert group.numbers == {"Length": (pytest.approx(ruler_length(ruler.start, ruler.end, frame.spacing)), "mm",
                                            ("410668003", "SCT"))}
        reference = source_reference(group.region)
        assert reference.ReferencedSOPInstanceUID == src.SOPInstanceUID
        assert reference.ReferencedSOPClassUID == src.SOPClassUID and "ReferencedFrameNumber" not in reference
        assert "PixelOriginInterpretation" not in group.region
        assert group.texts == []  # Pixel Spacing is in the patient: nothing to warn of
    assert groups[1].numbers["Length"][0] == pytest.approx(math.hypot(128, 128) * 0.661468)
    region = groups[2]
    assert region.region.GraphicType == "ELLIPSE"
    assert_points(region.region, [(30.0, 55.0), (90.0, 55.0), (60.0, 40.0), (60.0, 70.0)])  # major, then minor axis
    statistics = regions[0].statistics
    assert statistics.count > 0 and statistics.value_unit == "HU"
    check_figures(region, statistics, HU)


def test_graphic_data_is_in_dicom_image_coordinates(tmp_path: Path) -> None:
    """DICOM's (column, row) with (0, 0) the top-left corner of the top-left pixel, as the viewer keeps
    its marks: a ruler between pixel centres is written at (c + 0.5, r + 0.5), and the written ellipse,
    read by DICOM's convention, holds exactly the pixels the viewer's statistics counted."""
    source = dicom_test_file("CT_small.dcm")
    frame = decoded_frame(source)
    rulers = rulers_on(frame, ((0.5, 0.5), (3.5, 0.5)))  # centre of pixel (0, 0) to that of pixel (3, 0)
    regions = regions_on(frame, ((20.0, 30.0), (27.0, 34.0)))
    path = write_measurements_sr(source, frame=0, rulers=rulers, regions=regions, spacing=spacing_of(frame),
                                 reader="Dr A", out_dir=tmp_path)
    ruler, region = groups_of(pydicom.dcmread(path))
    assert_points(ruler.region, [(0.5, 0.5), (3.5, 0.5)])
    assert ruler.numbers["Length"][0] == pytest.approx(3 * 0.661468)  # three pixels' width between the centres
    major_a, major_b, minor_a, minor_b = points_of(region.region)
    centre = ((major_a[0] + major_b[0]) / 2, (major_a[1] + major_b[1]) / 2)
    half_major, half_minor = math.dist(major_a, major_b) / 2, math.dist(minor_a, minor_b) / 2
    rows, columns = np.mgrid[0:frame.values.shape[0], 0:frame.values.shape[1]]
    inside = (((columns + 0.5 - centre[0]) / half_major) ** 2 + ((rows + 0.5 - centre[1]) / half_minor) ** 2) <= 1.0
    assert np.array_equal(inside, ellipse_mask(frame.values.shape, (20.0, 30.0), (27.0, 34.0)))
    assert int(inside.sum()) == regions[0].statistics.count


def test_one_frame_of_a_multi_frame_image_is_referenced(tmp_path: Path) -> None:
    source = dicom_test_file("eCT_Supplemental.dcm")  # enhanced CT, 2 frames, spacing in the functional groups
    frame = decoded_frame(source, 1)
    rulers = rulers_on(frame, ((100.0, 256.0), (400.0, 256.0)))
    regions = regions_on(frame, ((200.0, 220.0), (300.0, 300.0)))
    path = write_measurements_sr(source, frame=1, rulers=rulers, regions=regions, spacing=spacing_of(frame),
                                 reader="Dr B", out_dir=tmp_path)
    check_document(path, source)
    groups = groups_of(pydicom.dcmread(path))
    assert len(groups) == 2
    for group in groups:
        assert int(source_reference(group.region).ReferencedFrameNumber) == 2  # 1-based in DICOM
        assert group.region.PixelOriginInterpretation == "FRAME"
    assert groups[0].numbers["Length"][0] == pytest.approx(300 * spacing_of(frame).column)
    unit = HU if frame.hounsfield else "1"
    check_figures(groups[1], regions[0].statistics, unit)
    assert regions[0].statistics.mean != roi_statistics(decoded_frame(source, 0), (200.0, 220.0), (300.0, 300.0)).mean


def test_values_that_are_not_hounsfield_units_have_no_unit(tmp_path: Path) -> None:
    source = dicom_test_file("MR_small.dcm")
    frame = decoded_frame(source)
    assert not frame.hounsfield
    regions = regions_on(frame, ((10.0, 12.0), (40.0, 50.0)))  # taller than wide: the major axis is vertical
    path = write_measurements_sr(source, frame=0, rulers=[], regions=regions, spacing=spacing_of(frame),
                                 reader="", out_dir=tmp_path)
    sr = check_document(path, source)
    assert observer(sr) == ("Device", "zsmed")  # no reader name: zsmed as the device
    (group,) = groups_of(sr)
    assert_points(group.region, [(25.0, 12.0), (25.0, 50.0), (10.0, 31.0), (40.0, 31.0)])
    check_figures(group, regions[0].statistics, "1")


def test_lengths_at_the_detector_say_so(tmp_path: Path) -> None:
    source = dicom_test_file("6154")  # a CR of pydicom's DICOMDIR set: Imager Pixel Spacing only
    frame = decoded_frame(source)
    assert frame.spacing_source == "ImagerPixelSpacing"
    rulers = rulers_on(frame, ((1.5, 2.5), (12.5, 9.0)))
    regions = regions_on(frame, ((2.0, 2.0), (14.0, 10.0)))
    path = write_measurements_sr(source, frame=0, rulers=rulers, regions=regions, spacing=spacing_of(frame),
                                 reader="Dr C", out_dir=tmp_path)
    sr = check_document(path, source)
    groups = groups_of(sr)
    assert groups[0].numbers["Length"][0] == pytest.approx(rulers[0].length_mm)
    for group in groups:
        assert group.texts == [SPACING_NOTES["ImagerPixelSpacing"]]
    assert "at the detector" in SPACING_NOTES["ImagerPixelSpacing"] and "magnification" in text_values(sr)[-1]


def angles_on(frame: ModalityFrame, *points: tuple[Point, Point, Point]) -> list[AngleMark]:
    found = []
    for first, vertex, second in points:
        degrees = angle_degrees(first, vertex, second, frame.spacing)
        assert degrees is not None
        found.append(AngleMark(first, vertex, second, degrees))
    return found


def test_angles_are_polylines_of_their_three_points_with_the_angle_in_degrees(tmp_path: Path) -> None:
    """An angle as a TID 1410 group: a POLYLINE (first end, vertex, second end) and Angle (SCT 1483009,
    from pydicom's code tables) in UCUM deg; with the rulers and regions, after them, on the right frame."""
    source = dicom_test_file("CT_small.dcm")
    frame = decoded_frame(source)
    rulers = rulers_on(frame, ((10.5, 20.5), (60.25, 80.0)))
    regions = regions_on(frame, ((30.0, 40.0), (90.0, 70.0)))
    angles = angles_on(frame, ((90.0, 30.0), (50.0, 70.0), (100.0, 90.0)), ((5.5, 5.5), (20.5, 20.5), (35.5, 5.5)))
    path = write_measurements_sr(source, frame=0, rulers=rulers, regions=regions, angles=angles,
                                 spacing=spacing_of(frame), reader="Dr E", out_dir=tmp_path)
    sr = check_document(path, source)  # dciodvfy: no error
    groups = groups_of(sr)
    assert [g.identifier for g in groups] == ["Ruler 1", "Region 1", "Angle 1", "Angle 2"]
    # by hand: arms (40, -40) and (50, 20) px on square pixels: cos = (2000 - 800) / (56.57 * 53.85) -> 66.80°
    assert angles[0].degrees == pytest.approx(66.8014, abs=1e-4)
    assert angles[1].degrees == pytest.approx(90.0)  # arms (-15, -15) and (15, -15)
    src = pydicom.dcmread(source, stop_before_pixels=True)
    for group, angle in zip(groups[2:], angles, strict=True):
        assert group.region.GraphicType == "POLYLINE"
        assert_points(group.region, [angle.first_end, angle.vertex, angle.second_end])
        assert group.numbers == {"Angle": (pytest.approx(angle.degrees), "deg", ("1483009", "SCT"))}
        assert source_reference(group.region).ReferencedSOPInstanceUID == src.SOPInstanceUID
        assert group.texts == []
    angle_items = [item for item in content_items(sr) if item.ValueType == "NUM"
                   and item.ConceptNameCodeSequence[0].CodeValue == "1483009"]
    assert len(angle_items) == 2 and angle_items[0].ConceptNameCodeSequence[0].CodeMeaning == "Angle"
    assert angle_items[0].MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeMeaning == "Degree"

    # angles alone, at the detector: a uniform magnification leaves an angle as it is, so no note on it
    cr = dicom_test_file("6154")
    detector = decoded_frame(cr)
    path = write_measurements_sr(cr, frame=0, rulers=rulers_on(detector, ((1.5, 2.5), (12.5, 9.0))), regions=[],
                                 angles=angles_on(detector, ((2.0, 9.0), (6.0, 3.0), (12.0, 8.0))),
                                 spacing=spacing_of(detector), reader="Dr E", out_dir=tmp_path / "cr")
    ruler, angle = groups_of(check_document(path, cr))
    assert ruler.texts == [SPACING_NOTES["ImagerPixelSpacing"]] and angle.texts == []
    assert angle.numbers["Angle"][1] == "deg"
    with pytest.raises(ValueError, match="not 0 to 180 degrees"):
        write_measurements_sr(source, frame=0, rulers=[], regions=[], spacing=spacing_of(frame), reader="",
                              angles=[AngleMark((1.0, 1.0), (2.0, 2.0), (3.0, 1.0), 190.0)], out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_photos_files_without_pixel_spacing_and_non_dicom_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    photo = tmp_path / "lesion.jpg"
    Image.new("RGB", (32, 32)).save(photo)
    ruler = RulerMark((1.0, 1.0), (5.0, 5.0), 5.66)
    for source in (photo, dicom_test_file("RG1_UNCI.dcm")):  # a CR without any pixel spacing
        with pytest.raises(NoPixelSpacingError) as caught:
            write_measurements_sr(source, frame=0, rulers=[ruler], regions=[], spacing=None, reader="Dr D",
                                  out_dir=out)
        message = str(caught.value)
        assert message == f"{source}: the image has no pixel spacing: its measurements are in pixels and are not " \
                          "written" and "\n" not in message and isinstance(caught.value, ZsmedError)
    text = tmp_path / "notes.dcm"
    text.write_text("not DICOM")
    with pytest.raises(NotDicomError) as not_dicom:
        write_measurements_sr(text, frame=0, rulers=[ruler], regions=[], spacing=PixelSpacing(0.5, 0.5),
                              reader="Dr D", out_dir=out)
    assert str(not_dicom.value).startswith(str(text)) and "\n" not in str(not_dicom.value)
    with pytest.raises(NotDicomError, match="a photo has no DICOM study"):
        write_measurements_sr(photo, frame=0, rulers=[ruler], regions=[], spacing=PixelSpacing(0.5, 0.5),
                              reader="Dr D", out_dir=out)
    with pytest.raises(ValueError, match="no rulers or regions"):
        write_measurements_sr(dicom_test_file("CT_small.dcm"), frame=0, rulers=[], regions=[],
                              spacing=PixelSpacing(0.5, 0.5), reader="Dr D", out_dir=out)
    assert not out.exists()  # nothing written


def test_person_names_are_safe_pn_values() -> None:
    assert person_name("Dr Ünal") == "Dr Ünal^"
    assert person_name("Smith^John=Alias\\2\x00\n") == "Smith John Alias 2^"  # PN's delimiters are not the reader's
    assert person_name("  \t ") == "" and person_name("") == ""
    long = person_name("x" * 200)
    assert len(long) == 64 and long.endswith("^")


def test_the_major_axis_is_the_longer_in_mm() -> None:
    """Pixels need not be square: a region 20 px wide and 12 px tall, with rows 2 mm apart and
    columns 1 mm apart, is taller than wide in the patient."""
    corners = ((0.0, 0.0), (20.0, 12.0))
    assert ellipse_points(*corners, PixelSpacing(2.0, 1.0)) == [(10.0, 0.0), (10.0, 12.0), (0.0, 6.0), (20.0, 6.0)]
    assert ellipse_points(*corners, PixelSpacing(1.0, 1.0)) == [(0.0, 6.0), (20.0, 6.0), (10.0, 0.0), (10.0, 12.0)]
    assert ellipse_points((20.0, 12.0), (0.0, 0.0), PixelSpacing(1.0, 1.0)) == ellipse_points(*corners,
                                                                                             PixelSpacing(1.0, 1.0))


def channel_figures(sr: Any) -> dict[tuple[str, str], tuple[float, str]]:
    """The NUM items with a Derivation: (channel's code value, derivation's meaning) -> (value, unit)."""
    found = {}
    for item in content_items(sr):
        if item.ValueType != "NUM":
            continue
        derivations = [child.ConceptCodeSequence[0] for child in item.get("ContentSequence") or []
                       if child.ConceptNameCodeSequence[0].CodeValue == "121401"
                       and child.RelationshipType == "HAS CONCEPT MOD"]
        if not derivations:
            continue
        name, value = item.ConceptNameCodeSequence[0], item.MeasuredValueSequence[0]
        assert name.CodingSchemeDesignator == "DCM" and derivations[0].CodingSchemeDesignator == "SCT"
        found[(name.CodeValue, derivations[0].CodeMeaning)] = (float(value.NumericValue),
                                                               value.MeasurementUnitsCodeSequence[0].CodeValue)
    return found


def test_a_colour_regions_red_green_and_blue_are_written_channel_by_channel(tmp_path: Path) -> None:
    """On an RGB image a region's figures are the mean and SD of each channel, each a NUM named by the
    channel (DCM "RGB R/G/B Component") with a Derivation (Mean, Standard Deviation): equal to numpy's
    over the pixels whose centres lie in the ellipse, the image read and the ellipse drawn here."""
    source = dicom_test_file("SC_rgb.dcm")  # 100 x 100, 8-bit RGB in bands of colour, Pixel Spacing 1 mm
    frame = decoded_frame(source)
    assert frame.colour
    regions = regions_on(frame, ((10.0, 3.0), (90.0, 57.0)))  # across six bands: red, pink, green ... blue
    path = write_measurements_sr(source, frame=0, rulers=[], regions=regions, spacing=spacing_of(frame),
                                 reader="Dr F", out_dir=tmp_path)
    sr = check_document(path, source)  # dciodvfy: no error

    pixels = pydicom.dcmread(source).pixel_array.astype(np.float64)
    rows, columns = np.mgrid[0:100, 0:100]
    inside = ((columns + 0.5 - 50.0) / 40.0) ** 2 + ((rows + 0.5 - 30.0) / 27.0) ** 2 <= 1.0
    picked = pixels[inside]
    means, sds = picked.mean(axis=0), picked.std(axis=0, ddof=1)
    assert len(set(np.round(means, 3))) == 3  # the channels differ: a mix-up would show
    figures = channel_figures(sr)
    channels = ("110834", "110835", "110836")  # R, G, B
    assert set(figures) == {(code, derivation) for code in channels for derivation in ("Mean", "Standard Deviation")}
    for code, mean, sd in zip(channels, means, sds, strict=True):
        assert figures[(code, "Mean")] == (pytest.approx(mean, rel=1e-9), "1")
        assert figures[(code, "Standard Deviation")] == (pytest.approx(sd, rel=1e-9), "1")
    (group,) = groups_of(sr)
    assert group.numbers["Area"] == (pytest.approx(math.pi * 40.0 * 27.0), "mm2", ("42798000", "SCT"))
    assert "Mean" not in group.numbers and "Minimum" not in group.numbers  # no grey figures on a colour image
    meanings = {item.ConceptNameCodeSequence[0].CodeMeaning for item in content_items(sr) if item.ValueType == "NUM"}
    assert {"RGB R Component", "RGB G Component", "RGB B Component"} <= meanings


def test_a_grey_regions_figures_have_no_channels(tmp_path: Path) -> None:
    source = dicom_test_file("CT_small.dcm")
    frame = decoded_frame(source)
    regions = regions_on(frame, ((30.0, 40.0), (90.0, 70.0)))
    assert regions[0].statistics.rgb_mean is None and regions[0].statistics.rgb_sd is None
    path = write_measurements_sr(source, frame=0, rulers=[], regions=regions, spacing=spacing_of(frame),
                                 reader="", out_dir=tmp_path)
    assert channel_figures(pydicom.dcmread(path)) == {}
