"""The viewer's non-Qt pieces: presets, true aspect, modality values before VOI, windowing to uint8,
and the contained decoder's ``modality_frame`` task. Values, not only shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.dicom.conftest import data
from zsmed.dicom.decode import load_dataset_and_pixels
from zsmed.dicom.display import (
    CT_PRESETS,
    apply_window,
    direction_letters,
    display_uint8,
    format_dicom_date,
    format_dicom_time,
    image_facts,
    modality_frame,
    orientation_labels,
    photo_frame,
    pixel_spacing,
    render,
    render_display,
    to_display_uint8,
    true_aspect,
    window_option,
)
from zsmed.dicom.safe import SafeDecoder
from zsmed.errors import NotDicomError, PixelDecodeError


def test_ct_presets_are_the_usual_pacs_windows() -> None:
    assert list(CT_PRESETS) == ["lung", "mediastinum", "bone", "brain", "soft tissue"]
    assert CT_PRESETS["lung"] == (-600.0, 1500.0)
    assert CT_PRESETS["mediastinum"] == (50.0, 350.0)
    assert CT_PRESETS["brain"] == (40.0, 80.0)
    for centre, width in CT_PRESETS.values():
        assert width > 0 and -1100 < centre < 1000


def test_true_aspect_from_pixel_spacing_and_aspect_ratio() -> None:
    ds = Dataset()
    assert true_aspect(ds) == 1.0 and pixel_spacing(ds) is None
    ds.PixelAspectRatio = [4, 3]
    assert true_aspect(ds) == pytest.approx(4 / 3)
    ds.PixelSpacing = [0.5, 1.0]  # row spacing (vertical) first: pixels half as tall as wide
    assert pixel_spacing(ds) == (0.5, 1.0)
    assert true_aspect(ds) == pytest.approx(0.5)
    ds.PixelSpacing = [0.0, 1.0]  # nonsense: falls back to the aspect ratio
    assert true_aspect(ds) == pytest.approx(4 / 3)
    ds.PixelAspectRatio = [1000, 1]
    assert true_aspect(ds) == 1.0  # absurd: shown square rather than as a line


def test_true_aspect_from_imager_spacing_and_functional_groups() -> None:
    ds = Dataset()
    ds.ImagerPixelSpacing = [0.2, 0.1]
    assert true_aspect(ds) == pytest.approx(2.0)
    enhanced = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [0.3, 0.6]
    group = Dataset()
    group.PixelMeasuresSequence = [measures]
    enhanced.SharedFunctionalGroupsSequence = [group]
    assert pixel_spacing(enhanced) == (0.3, 0.6)
    assert true_aspect(enhanced) == pytest.approx(0.5)


def test_ct_modality_values_are_hounsfield_units() -> None:
    ds, arr = load_dataset_and_pixels(data("CT_small.dcm"))
    frame = modality_frame(arr, ds)
    ref = pydicom.dcmread(data("CT_small.dcm"))
    hu = ref.pixel_array.astype(np.float64) * float(ref.RescaleSlope) + float(ref.RescaleIntercept)
    assert frame.values.dtype == np.float32 and frame.values.shape == (128, 128)
    np.testing.assert_allclose(frame.values, hu)
    assert frame.hounsfield and not frame.colour and not frame.inverted
    assert frame.windows == ()  # CT_small carries no window: auto applies
    assert frame.default_window is frame.auto and frame.auto.width is not None and frame.auto.width > 100
    assert frame.spacing == pytest.approx((0.661468, 0.661468)) and frame.pixel_aspect == pytest.approx(1.0)
    assert frame.fact("modality") == "CT" and frame.fact("study_date") == "2004-01-19"
    # the auto window gives what the one-shot display pipeline gives (same robust range)
    np.testing.assert_allclose(display_uint8(frame, frame.auto).astype(int), render_display(arr, ds).astype(int),
                               atol=1)


def test_window_to_uint8_follows_the_dicom_formula_and_inverts() -> None:
    ds, arr = load_dataset_and_pixels(data("CT_small.dcm"))
    frame = modality_frame(arr, ds)
    lung = display_uint8(frame, window_option(*CT_PRESETS["lung"]))
    mediastinum = display_uint8(frame, window_option(*CT_PRESETS["mediastinum"]))
    hu = frame.values
    c, w = CT_PRESETS["lung"]
    expected = np.clip(np.rint(np.clip((hu - (c - 0.5)) / (w - 1) + 0.5, 0, 1) * 255), 0, 255)
    np.testing.assert_array_equal(lung, expected.astype(np.uint8))
    np.testing.assert_array_equal(mediastinum, to_display_uint8(apply_window(hu, *CT_PRESETS["mediastinum"])))
    lung_tissue = hu < -700
    soft = (hu > 20) & (hu < 60)
    assert lung_tissue.sum() > 1000 and soft.sum() > 500
    # mediastinum window: lung black, soft tissue mid grey; lung window: lung grey, soft tissue near white
    assert mediastinum[lung_tissue].max() == 0 and 90 < mediastinum[soft].mean() < 160
    assert 20 < lung[lung_tissue].mean() < 130 and lung[soft].min() > 220
    inverted = display_uint8(frame, window_option(*CT_PRESETS["lung"]), invert=True)
    np.testing.assert_array_equal(inverted, 255 - lung)


def test_monochrome1_is_flipped_once_and_invert_flips_it_back() -> None:
    ds, arr = load_dataset_and_pixels(data("RG3_UNCR.dcm"))
    frame = modality_frame(arr, ds)
    assert frame.inverted
    shown = display_uint8(frame, frame.default_window)
    np.testing.assert_allclose(shown.astype(int), render_display(arr, ds).astype(int), atol=1)
    np.testing.assert_array_equal(display_uint8(frame, frame.default_window, invert=True), 255 - shown)


def test_file_windows_and_voi_luts_match_the_display_pipeline() -> None:
    ds, arr = load_dataset_and_pixels(data("MR_small.dcm"))
    frame = modality_frame(arr, ds)
    assert [(o.center, o.width) for o in frame.windows] == [(600.0, 1600.0)]
    assert not frame.hounsfield
    np.testing.assert_array_equal(display_uint8(frame, frame.default_window), render_display(arr, ds))
    ds, arr = load_dataset_and_pixels(data("vlut_04.dcm"))
    frame = modality_frame(arr, ds)
    assert frame.windows and frame.windows[0].lut_index == 0 and len(frame.luts) == 1
    np.testing.assert_allclose(display_uint8(frame, frame.windows[0]).astype(int),
                               render_display(arr, ds).astype(int), atol=1)


def test_colour_is_rgb_on_a_0_255_scale_with_an_identity_auto_window() -> None:
    ds, arr = load_dataset_and_pixels(data("US1_UNCR.dcm"))
    frame = modality_frame(arr, ds)
    assert frame.colour and frame.values.shape == (480, 640, 3)
    np.testing.assert_allclose(frame.values, render(arr, ds) * 255, atol=1e-3)
    np.testing.assert_array_equal(display_uint8(frame, frame.auto), render_display(arr, ds))


def test_multi_frame_frame_number_and_count() -> None:
    ds, arr = load_dataset_and_pixels(data("emri_small.dcm"), 3)
    frame = modality_frame(arr, ds, 3)
    assert (frame.frames, frame.frame) == (10, 3)
    with pytest.raises(PixelDecodeError):
        modality_frame(np.zeros((2, 4, 4), np.uint16), ds)


def test_facts_and_formats() -> None:
    ds = Dataset()
    ds.PatientName = "DOE^JANE"
    ds.StudyDate = "20240301"
    ds.StudyTime = "101530.25"
    ds.SeriesNumber = 2
    ds.Rows, ds.Columns = 10, 20
    facts = dict(image_facts(ds))
    assert facts == {"patient": "DOE JANE", "study_date": "2024-03-01", "study_time": "10:15:30",
                     "series_number": "2", "size": "20 x 10"}
    assert format_dicom_date("2024") == "2024" and format_dicom_time("1015") == "10:15"


def test_photo_frame(tmp_path: Path) -> None:
    from zsmed.imageio import read_photo

    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(rgb).save(path)
    frame = photo_frame(read_photo(path), str(path))
    assert frame.colour and frame.pixel_aspect == 1.0
    np.testing.assert_array_equal(display_uint8(frame, frame.auto), rgb)


def test_contained_decoder_returns_modality_frames(tmp_path: Path) -> None:
    from PIL import Image

    grey = (np.arange(24 * 16) % 256).astype(np.uint8).reshape(24, 16)
    photo = tmp_path / "grey.png"
    Image.fromarray(grey).save(photo)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(np.random.default_rng(1).bytes(2048))
    with SafeDecoder(timeout=60) as decoder:
        ct = decoder.modality_frame(data("CT_small.dcm"))
        ds, arr = load_dataset_and_pixels(data("CT_small.dcm"))
        np.testing.assert_array_equal(ct.values, modality_frame(arr, ds).values)
        assert ct.hounsfield
        frame = decoder.modality_frame(data("emri_small.dcm"), 9)
        assert (frame.frame, frame.frames) == (9, 10)
        shown = decoder.modality_frame(photo)
        assert not shown.colour
        np.testing.assert_array_equal(display_uint8(shown, shown.auto), grey)
        with pytest.raises(NotDicomError, match=r"junk\.dcm"):
            decoder.modality_frame(junk)
        with pytest.raises(PixelDecodeError, match="frame 3 does not exist"):
            decoder.modality_frame(data("CT_small.dcm"), 3)
        assert decoder.call("ping") == "pong"  # the worker is still there after the failures


def test_table_lookup_windowing_equals_windowing_each_value() -> None:
    import dataclasses

    ds, arr = load_dataset_and_pixels(data("CT_small.dcm"))
    frame = modality_frame(arr, ds)
    assert frame.index is not None and frame.index.dtype == np.uint16  # integer HU: the fast path
    np.testing.assert_array_equal(frame.index.astype(np.float32) + frame.index_base, frame.values)
    direct = dataclasses.replace(frame, index=None)
    options = [window_option(c, w) for c, w in CT_PRESETS.values()]
    options += [frame.auto, window_option(12.5, 1.0), window_option(-3000, 10, function="SIGMOID")]
    for option in options:
        for invert in (False, True):
            np.testing.assert_array_equal(display_uint8(frame, option, invert=invert),
                                          display_uint8(direct, option, invert=invert))
    # fractional values (a rescale slope of 0.5) keep the per-pixel path
    ds.RescaleSlope = 0.5
    assert modality_frame(arr, ds).index is None


def test_orientation_letters_at_the_edges() -> None:
    assert direction_letters([1, 0, 0]) == "L" and direction_letters([-1, 0, 0]) == "R"
    assert direction_letters([0, -1, 0]) == "A" and direction_letters([0, 0, 1]) == "H"
    assert direction_letters([0.6, 0.0, -0.8]) == "FL"  # oblique: the larger component first
    ds = pydicom.dcmread(data("CT_small.dcm"))
    assert orientation_labels(ds) == ("R", "L", "A", "P")  # axial, as radiologists read it
    sagittal = Dataset()
    sagittal.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    assert orientation_labels(sagittal) == ("A", "P", "H", "F")
    radiograph = Dataset()
    radiograph.PatientOrientation = ["L", "F"]  # projection images: Patient Orientation
    assert orientation_labels(radiograph) == ("R", "L", "H", "F")
    assert orientation_labels(Dataset()) is None
    broken = Dataset()
    broken.ImageOrientationPatient = [0, 0, 0, 0, 0, 0]
    assert orientation_labels(broken) is None
    facts = dict(image_facts(ds))
    assert (facts["edge_left"], facts["edge_top"]) == ("R", "A")
