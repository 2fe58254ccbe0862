"""The display pipeline: values, not only shapes."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.conftest import dicom_test_file
from tests.dicom.conftest import data
from zsmed.dicom import load_model_image
from zsmed.dicom.decode import load_dataset_and_pixels
from zsmed.dicom.display import (
    ModalityFrame,
    apply_rescale,
    apply_voi,
    apply_window,
    ellipse_mask,
    frame_view,
    invert_monochrome1,
    mask_stored_bits,
    modality_frame,
    pixel_value_text,
    render,
    render_display,
    roi_statistics,
    to_display_uint8,
    to_rgb,
    voi_options,
    window_option,
)


def test_rescale_ct_known_pixel() -> None:
    ds, arr = load_dataset_and_pixels(data("CT_small.dcm"))
    hu = apply_rescale(arr, ds)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    assert hu[64, 64] == pytest.approx(arr[64, 64] * slope + intercept)
    assert hu.dtype == np.float32


def test_window_functions_follow_the_standard() -> None:
    x = np.array([0.0, 39.5, 40.0, 40.5, 100.0, -100.0])
    lin = apply_window(x, 40, 80, "LINEAR")
    assert lin[-1] == 0.0 and lin[-2] == 1.0
    assert lin[2] == pytest.approx((40 - 39.5) / 79 + 0.5)
    exact = apply_window(x, 40, 80, "LINEAR_EXACT")
    assert exact[2] == pytest.approx(0.5) and exact[0] == pytest.approx(0.0)
    sig = apply_window(x, 40, 80, "SIGMOID")
    assert sig[2] == pytest.approx(0.5)
    assert 0 < sig[-1] < sig[0] < sig[2] < sig[-2] < 1


def test_all_windows_listed_and_selectable() -> None:
    ds = Dataset()
    ds.WindowCenter = [40, 400]
    ds.WindowWidth = [80, 2000]
    ds.WindowCenterWidthExplanation = ["SOFT", "BONE"]
    opts = voi_options(ds)
    assert [o.label for o in opts] == ["SOFT", "BONE"]
    x = np.array([[100.0]])
    assert apply_voi(x, ds, 0)[0, 0] == 1.0
    assert apply_voi(x, ds, 1)[0, 0] == pytest.approx((100 - 399.5) / 1999 + 0.5, abs=1e-6)


def test_voi_lut_sequence_applied() -> None:
    ds, arr = load_dataset_and_pixels(data("vlut_04.dcm"))
    opts = voi_options(ds)
    assert opts and opts[0].lut_index is not None
    item = ds.VOILUTSequence[0]
    nr, first, bits = item.LUTDescriptor
    lut = np.asarray(item.LUTData)
    out = apply_voi(apply_rescale(arr, ds), ds, 0)
    idx = np.clip(arr.astype(int) - first, 0, (nr or 65536) - 1)
    expect = lut[idx] / max(2**bits - 1, lut.max())
    np.testing.assert_allclose(out, expect, atol=1e-6)


def test_modality_lut_sequence() -> None:
    ds, arr = load_dataset_and_pixels(data("mlut_18.dcm"))
    from pydicom.pixels import apply_modality_lut

    np.testing.assert_allclose(apply_rescale(arr, ds), apply_modality_lut(arr, ds))


def test_monochrome1_is_inverted() -> None:
    path = data("RG3_UNCR.dcm")
    ds, arr = load_dataset_and_pixels(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    img = load_model_image(path)
    ds2 = pydicom.dcmread(path)
    ds2.PhotometricInterpretation = "MONOCHROME2"
    plain = render(arr, ds2)
    np.testing.assert_allclose(img, 1.0 - plain, atol=1e-6)
    # the brightest stored value is the darkest pixel
    hi = np.unravel_index(np.argmax(arr), arr.shape)
    lo = np.unravel_index(np.argmin(arr), arr.shape)
    assert img[hi] <= img[lo]
    assert invert_monochrome1(np.array([0.25], np.float32), ds)[0] == pytest.approx(0.75)


def test_signed_ct_with_window() -> None:
    path = data("693_UNCI.dcm")
    ds, arr = load_dataset_and_pixels(path)
    assert arr.dtype == np.int16 and arr.min() < 0
    img = load_model_image(path)
    wc, ww = float(np.atleast_1d(ds.WindowCenter)[0]), float(np.atleast_1d(ds.WindowWidth)[0])
    hu = arr.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    expect = np.clip((hu - (wc - 0.5)) / (ww - 1) + 0.5, 0, 1)
    np.testing.assert_allclose(img, expect, atol=1e-5)


def test_odd_bit_depth_masks_high_bits() -> None:
    ds = Dataset()
    ds.BitsStored = 12
    ds.PixelRepresentation = 0
    arr = np.array([0xF123, 0x0FFF], dtype=np.uint16)
    np.testing.assert_array_equal(mask_stored_bits(arr, ds), [0x123, 0xFFF])
    ds.PixelRepresentation = 1
    signed = np.array([0x0FFF, 0x0800, 0x07FF], dtype=np.uint16).view(np.int16)
    np.testing.assert_array_equal(mask_stored_bits(signed, ds), [-1, -2048, 2047])


def test_palette_colour_known_pixel() -> None:
    path = data("OBXXXX1A.dcm")
    ds, arr = load_dataset_and_pixels(path)
    img = load_model_image(path)
    assert img.shape == (600, 800, 3)
    y, x = 300, 400
    index = int(arr[y, x])
    desc = ds.RedPaletteColorLookupTableDescriptor
    from pydicom.pixels import apply_color_lut

    rgb = apply_color_lut(arr, ds)
    top = 255.0 if rgb.max() <= 255 else 65535.0
    np.testing.assert_allclose(img[y, x], rgb[y, x] / top, atol=1e-6)
    assert desc[2] in (8, 16) and index >= 0


def test_segmented_palette() -> None:
    path = data("gdcm-US-ALOKA-16.dcm")
    ds, arr = load_dataset_and_pixels(path)
    assert "SegmentedRedPaletteColorLookupTableData" in ds
    img = load_model_image(path)
    from pydicom.pixels import apply_color_lut

    rgb = apply_color_lut(arr, ds)
    np.testing.assert_allclose(img, rgb / (255.0 if rgb.max() <= 255 else 65535.0), atol=1e-6)
    assert img.shape == (480, 640, 3) and img.max() > 0.5


def test_ybr_to_rgb_matches_rgb_original() -> None:
    ref = load_model_image(data("SC_rgb.dcm"))
    # known pixels of the SC_rgb test pattern: red band at the top, white at the bottom
    np.testing.assert_allclose(ref[5, 50], [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(ref[95, 50], [1.0, 1.0, 1.0], atol=1e-6)
    for name in ("SC_ybr_full_uncompressed.dcm", "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        img = load_model_image(data(name))
        assert np.abs(img - ref).max() < 0.05, name
    # the pure function on raw YBR values
    ds = pydicom.dcmread(data("SC_ybr_full_uncompressed.dcm"))
    raw = ds.pixel_array_options(as_rgb=False) or ds.pixel_array
    rgb = to_rgb(raw, ds, "YBR_FULL")
    assert np.abs(rgb - ref).max() < 0.05


def test_multiframe_enhanced_uses_per_frame_groups() -> None:
    path = data("emri_small.dcm")
    ds, arr = load_dataset_and_pixels(path)
    img3 = load_model_image(path, frame=3)
    np.testing.assert_allclose(img3, render(arr[3], ds, frame=3))
    assert not np.allclose(load_model_image(path, frame=0), img3)


def test_display_uint8() -> None:
    assert to_display_uint8(np.array([0.0, 0.5, 1.0, 1.5, -1])).tolist() == [0, 128, 255, 255, 0]
    ds, arr = load_dataset_and_pixels(data("CT_small.dcm"))
    out = render_display(arr, ds, window=(40.0, 400.0))
    assert out.dtype == np.uint8 and out.shape == (128, 128)
    hu = apply_rescale(arr, ds)
    assert (out[hu > 240] == 255).all() and (out[hu < -160] == 0).all()


def test_rgb_16bit_and_32bit_scaled_by_bits_stored() -> None:
    for name in ("SC_rgb_16bit.dcm", "SC_rgb_32bit.dcm"):
        img = load_model_image(data(name))
        np.testing.assert_allclose(img[5, 50], [1.0, 0.0, 0.0], atol=1e-6)


def test_frame_view_lifts_functional_groups() -> None:
    from pydicom.sequence import Sequence

    def group(center: float, width: float, slope: float) -> Dataset:
        item = Dataset()
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = center, width
        item.FrameVOILUTSequence = Sequence([voi])
        pvt = Dataset()
        pvt.RescaleSlope, pvt.RescaleIntercept = slope, -10
        item.PixelValueTransformationSequence = Sequence([pvt])
        return item

    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.SamplesPerPixel = 1
    ds.BitsStored = 16
    ds.SharedFunctionalGroupsSequence = Sequence([group(100, 200, 1.0)])
    ds.PerFrameFunctionalGroupsSequence = Sequence([group(0, 10, 1.0), group(500, 100, 2.0)])
    view = frame_view(ds, 1)
    assert float(view.WindowCenter) == 500 and float(view.RescaleSlope) == 2.0
    arr = np.array([[255, 280]], dtype=np.uint16)  # -> 500, 550 after rescale
    img = render(arr, ds, frame=1)
    np.testing.assert_allclose(img, apply_window(np.array([[500.0, 550.0]]), 500, 100), atol=1e-6)
    assert "WindowCenter" not in ds  # the original is untouched


def test_a_damaged_label_element_leaves_the_image_shown(tmp_path: Path) -> None:
    """Pixel Spacing's VR overwritten (two bytes of a scratched disc): pydicom cannot decode that
    element, but it only labels the image, which is shown with square pixels and no scale."""
    from zsmed.dicom.safe import _task_modality_frame

    data_bytes = bytearray(Path(data("CT_small.dcm")).read_bytes())
    at = data_bytes.find(b"\x28\x00\x30\x00DS")  # (0028,0030) Pixel Spacing, explicit VR
    assert at > 0
    intact = _task_modality_frame(data("CT_small.dcm"), 0)
    data_bytes[at + 4:at + 6] = b"\x44\x00"
    damaged = tmp_path / "ct.dcm"
    damaged.write_bytes(bytes(data_bytes))
    frame = _task_modality_frame(str(damaged), 0)
    assert frame.spacing is None and frame.pixel_aspect == 1.0
    assert intact.spacing is not None  # the intact file has a scale: the damage is what removed it
    assert np.array_equal(frame.values, intact.values)  # the image itself is untouched


def test_spacing_says_where_it_was_measured(tmp_path: Path) -> None:
    """Pixel Spacing is in the patient; Imager Pixel Spacing only at the detector (a radiograph's
    lengths from it are magnified), so the viewer labels the one from the other."""
    from zsmed.dicom.display import modality_frame, pixel_spacing_with_source

    ds, arr = load_dataset_and_pixels(data("CT_small.dcm"))
    frame = modality_frame(arr, ds)
    assert frame.spacing == pytest.approx((0.661468, 0.661468)) and frame.spacing_source == "PixelSpacing"
    del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.2, 0.4]
    frame = modality_frame(arr, ds)
    assert frame.spacing == (0.2, 0.4) and frame.spacing_source == "ImagerPixelSpacing"
    del ds.ImagerPixelSpacing
    frame = modality_frame(arr, ds)
    assert frame.spacing is None and frame.spacing_source == ""
    assert pixel_spacing_with_source(Dataset()) is None


def test_cine_frame_rate_from_cine_rate_display_rate_or_frame_time() -> None:
    from zsmed.dicom.display import cine_frame_rate, modality_frame

    ds, arr = load_dataset_and_pixels(data("examples_ybr_color.dcm"), 0)  # ultrasound, Frame Time 33.333 ms
    assert modality_frame(arr, ds).frame_rate == pytest.approx(1000 / 33.333)
    ds, arr = load_dataset_and_pixels(data("emri_small.dcm"), 0)
    assert modality_frame(arr, ds, 0).frame_rate is None  # the file says none: the viewer plays at 10
    header = Dataset()
    header.FrameTime = 40  # ms
    assert cine_frame_rate(header) == pytest.approx(25.0)
    header.RecommendedDisplayFrameRate = 12
    assert cine_frame_rate(header) == 12.0
    header.CineRate = 30
    assert cine_frame_rate(header) == 30.0  # Cine Rate first
    nonsense = Dataset()
    nonsense.CineRate, nonsense.FrameTime = 0, 0
    assert cine_frame_rate(nonsense) is None


def _raw_frame_time_vector(text: bytes) -> Dataset:
    """A header whose Frame Time Vector is stored as in a file, so that entries pydicom would refuse
    to set (not numbers) can be there."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    header = Dataset()
    tag = Tag("FrameTimeVector")
    header[tag] = RawDataElement(tag, "DS", len(text), text, 0, False, True)
    return header


def test_cine_frame_rate_from_frame_time_vector() -> None:
    from zsmed.dicom.display import cine_frame_rate

    header = Dataset()
    header.FrameTimeVector = [0, 40, 40, 40]  # ms since the previous frame, the first 0
    assert cine_frame_rate(header) == pytest.approx(25.0)
    header.FrameTimeVector = [0, 20, 60, 40]  # irregular: the mean interval
    assert cine_frame_rate(header) == pytest.approx(25.0)
    # entries that are no number, zero or negative are left out
    assert cine_frame_rate(_raw_frame_time_vector(b"0\\40\\x \\0 \\-5\\40")) == pytest.approx(25.0)
    header.FrameTimeVector = ["0", "40", "nan", "40"]
    assert cine_frame_rate(header) == pytest.approx(25.0)
    for useless in ([0], [0, 0, 0], [0, -40, -40], [0, 0.5, 0.5]):  # one value; no interval; > 1000 fps
        header.FrameTimeVector = useless
        assert cine_frame_rate(header) is None, useless
    assert cine_frame_rate(_raw_frame_time_vector(b"x \\40")) is None  # fewer than 2 numbers
    header.FrameTimeVector = [0, 40, 40]
    header.FrameTime = 100
    assert cine_frame_rate(header) == pytest.approx(10.0)  # Frame Time first


_FIRST_FRAME = datetime(2024, 3, 1, 10, 10, 10)


def _dicom_datetimes(milliseconds: list[float], suffix: str = "") -> list[str]:
    """DT values ``milliseconds`` after a fixed moment, e.g. '20240301101010.033333'."""
    return [(_FIRST_FRAME + timedelta(milliseconds=ms)).strftime("%Y%m%d%H%M%S.%f") + suffix for ms in milliseconds]


def _enhanced_header(**per_frame: list[Any]) -> Dataset:
    """An enhanced multi-frame header: frame i's Frame Content item holds each keyword's i-th value
    (None: the frame has no such element)."""
    frames = []
    for values in zip(*per_frame.values(), strict=True):
        content = Dataset()
        for keyword, value in zip(per_frame, values, strict=True):
            if value is not None:
                setattr(content, keyword, value)
        frame = Dataset()
        frame.FrameContentSequence = [content]
        frames.append(frame)
    header = Dataset()
    header.PerFrameFunctionalGroupsSequence = frames
    return header


def test_cine_frame_rate_from_per_frame_date_times() -> None:
    from zsmed.dicom.display import cine_frame_rate

    every_33_ms = _dicom_datetimes([i * 100 / 3 for i in range(6)])
    assert cine_frame_rate(_enhanced_header(FrameReferenceDateTime=every_33_ms)) == pytest.approx(30.0, rel=1e-4)
    # the median gap: a long pause, frames out of time order and slices at one moment do not set the rate
    paused = _dicom_datetimes([0, 40, 80, 1080, 1120, 1160])
    assert cine_frame_rate(_enhanced_header(FrameReferenceDateTime=paused)) == pytest.approx(25.0)
    unsorted = _dicom_datetimes([0, 40, 80, 160, 120, 200, 240, 280])
    assert cine_frame_rate(_enhanced_header(FrameReferenceDateTime=unsorted)) == pytest.approx(25.0)
    two_slices = _dicom_datetimes([0, 0, 40, 40, 80, 80])
    assert cine_frame_rate(_enhanced_header(FrameReferenceDateTime=two_slices)) == pytest.approx(25.0)
    with_offset = _dicom_datetimes([0, 50, 100], suffix="+0100")
    assert cine_frame_rate(_enhanced_header(FrameReferenceDateTime=with_offset)) == pytest.approx(20.0)
    one_frame_without = [*_dicom_datetimes([0, 50, 100]), None, *_dicom_datetimes([200, 250])]
    assert cine_frame_rate(_enhanced_header(FrameReferenceDateTime=one_frame_without)) == pytest.approx(20.0)
    # Frame Acquisition DateTime when there is no Frame Reference DateTime, or one that does not parse
    every_50_ms = _dicom_datetimes([0, 50, 100, 150])
    assert cine_frame_rate(_enhanced_header(FrameAcquisitionDateTime=every_50_ms)) == pytest.approx(20.0)
    broken_reference = [*_dicom_datetimes([0, 10, 20]), "garbage"]
    header = _enhanced_header(FrameReferenceDateTime=broken_reference, FrameAcquisitionDateTime=every_50_ms)
    assert cine_frame_rate(header) == pytest.approx(20.0)
    header = _enhanced_header(FrameReferenceDateTime=every_33_ms[:4], FrameAcquisitionDateTime=every_50_ms)
    assert cine_frame_rate(header) == pytest.approx(30.0, rel=1e-4)  # Frame Reference DateTime first


def test_cine_frame_rate_from_frame_acquisition_duration_and_nonsense() -> None:
    from zsmed.dicom.display import cine_frame_rate

    durations = [40.0, 40.0, 45.0, 1000.0]  # ms: the median
    assert cine_frame_rate(_enhanced_header(FrameAcquisitionDuration=durations)) == pytest.approx(1000 / 42.5)
    garbage = ["garbage", "20240230101010", "20240301101010.1", "x"]
    header = _enhanced_header(FrameReferenceDateTime=garbage, FrameAcquisitionDuration=[50.0] * 4)
    assert cine_frame_rate(header) == pytest.approx(20.0)  # no date-time to use: the durations
    assert cine_frame_rate(_enhanced_header(FrameReferenceDateTime=garbage)) is None
    assert cine_frame_rate(_enhanced_header(FrameAcquisitionDateTime=_dicom_datetimes([0, 0, 0]))) is None
    assert cine_frame_rate(_enhanced_header(FrameAcquisitionDateTime=_dicom_datetimes([0, 0.1, 0.2]))) is None
    assert cine_frame_rate(_enhanced_header(FrameReferenceDateTime=_dicom_datetimes([0]))) is None
    assert cine_frame_rate(_enhanced_header(FrameAcquisitionDuration=[0.0, 0.0, 0.0])) is None
    assert cine_frame_rate(_enhanced_header(FrameAcquisitionDuration=[float("nan")] * 3)) is None
    no_content = Dataset()
    no_content.PerFrameFunctionalGroupsSequence = [Dataset(), Dataset()]
    assert cine_frame_rate(no_content) is None
    # each earlier source wins over the later ones
    every_50_ms = _dicom_datetimes([0, 50, 100])
    header = _enhanced_header(FrameReferenceDateTime=every_50_ms, FrameAcquisitionDuration=[40.0] * 3)
    assert cine_frame_rate(header) == pytest.approx(20.0)
    header.FrameTimeVector = [0, 100, 100]
    assert cine_frame_rate(header) == pytest.approx(10.0)
    header.CineRate = 30
    assert cine_frame_rate(header) == 30.0


def test_frames_timed_seconds_apart_are_not_played_at_that_pace() -> None:
    """An enhanced MR's slices acquired 5 s apart are a volume, not a loop: no rate (the default)."""
    from zsmed.dicom.display import cine_frame_rate

    slow = _enhanced_header(FrameReferenceDateTime=["20240301101000", "20240301101005", "20240301101010"])
    assert cine_frame_rate(slow) is None
    lasting = _enhanced_header(FrameAcquisitionDuration=[4000.0, 4000.0])
    assert cine_frame_rate(lasting) is None
    brisk = _enhanced_header(FrameReferenceDateTime=["20240301101000.00", "20240301101000.50"])
    assert cine_frame_rate(brisk) == pytest.approx(2.0)
    vector = Dataset()
    vector.FrameTimeVector = [0, 2000, 2000]
    assert cine_frame_rate(vector) is None


def test_cine_frame_rate_of_a_real_enhanced_file_with_per_frame_times() -> None:
    from zsmed.dicom.display import cine_frame_rate

    ds = pydicom.dcmread(dicom_test_file("emri_small.dcm"), stop_before_pixels=True)  # enhanced MR, 10 frames
    frames = int(ds.NumberOfFrames)
    assert frames == 10
    assert cine_frame_rate(ds) is None  # it gives no timing of its own
    if "PerFrameFunctionalGroupsSequence" not in ds:  # this copy keeps no functional groups
        ds.PerFrameFunctionalGroupsSequence = [Dataset() for _ in range(frames)]
    for frame, moment in zip(ds.PerFrameFunctionalGroupsSequence, _dicom_datetimes([50 * i for i in range(frames)]),
                             strict=True):
        if not frame.get("FrameContentSequence"):
            frame.FrameContentSequence = [Dataset()]
        frame.FrameContentSequence[0].FrameReferenceDateTime = moment
    for keyword in ("CineRate", "FrameTime", "RecommendedDisplayFrameRate"):
        if keyword in ds:
            delattr(ds, keyword)
    assert cine_frame_rate(ds) == pytest.approx(20.0)


# --- regions of interest ---------------------------------------------------------------------------
def _synthetic_frame(values: np.ndarray, *, spacing: tuple[float, float] | None = None,
                     hounsfield: bool = False) -> ModalityFrame:
    return ModalityFrame(values=values.astype(np.float32), colour=values.ndim == 3, inverted=False, windows=(),
                         luts=(), auto=window_option(0.0, 1.0), spacing=spacing, hounsfield=hounsfield)


# A circle of radius 10 pixels about the pixel corner (20, 20): in each quarter, the row of centres
# at y = j + 0.5 from the centre holds the centres x = i + 0.5 <= sqrt(100 - y²), that is, counted
# by hand for j = 0 .. 9: 10, 10, 10, 9, 9, 8, 8, 7, 5, 3 (79), so 4 x 79 = 316 pixels in all (π r² = 314.2).
CIRCLE_ROWS = (10, 10, 10, 9, 9, 8, 8, 7, 5, 3)
CIRCLE_COUNT = 4 * sum(CIRCLE_ROWS)


def test_ellipse_mask_holds_the_pixels_whose_centres_are_inside() -> None:
    mask = ellipse_mask((40, 40), (10, 10), (30, 30))
    assert mask.shape == (40, 40) and int(mask.sum()) == CIRCLE_COUNT == 316
    assert abs(CIRCLE_COUNT - np.pi * 100) < 2 * np.pi * 10 * 0.1  # π r², within a tenth of a pixel per unit of edge
    # the top row of the circle, row 10 (centres 9.5 above the middle): columns 17 to 22 (sqrt(9.75) = 3.1)
    assert [int(c) for c in np.flatnonzero(mask[10])] == [17, 18, 19, 20, 21, 22]
    assert [int(mask[r].sum()) for r in range(20, 30)] == [2 * n for n in CIRCLE_ROWS]
    assert not mask[9].any() and not mask[30].any() and not mask[:, 9].any() and not mask[:, 30].any()
    np.testing.assert_array_equal(ellipse_mask((40, 40), (30, 30), (10, 10)), mask)  # either corner first
    np.testing.assert_array_equal(ellipse_mask((40, 40), (10, 30), (30, 10)), mask)
    # partly off the image: the part on it; flat or empty: nothing
    assert int(ellipse_mask((20, 20), (10, 10), (30, 30)).sum()) == sum(CIRCLE_ROWS)
    assert not ellipse_mask((40, 40), (10, 10), (10, 30)).any()
    assert not ellipse_mask((40, 40), (10, 10), (float("nan"), 30)).any()


def test_roi_statistics_of_a_circle_by_hand() -> None:
    rows, cols = np.indices((40, 40))
    # a checkerboard of -1000 and -900 HU: the circle is symmetric left to right, which swaps the
    # two colours (columns c and 39 - c), so it holds 158 of each
    checker = _synthetic_frame(-1000.0 + 100.0 * ((rows + cols) % 2), spacing=(0.5, 0.5), hounsfield=True)
    stats = roi_statistics(checker, (10, 10), (30, 30))
    assert stats.centre == (20.0, 20.0) and stats.radii == (10.0, 10.0)
    assert stats.count == 316 and stats.value_unit == "HU" and stats.rgb_mean is None
    assert stats.mean == pytest.approx(-950.0, abs=1e-9)
    assert stats.sd == pytest.approx(50.0 * np.sqrt(316 / 315), abs=1e-9)  # the sample SD (n - 1)
    assert (stats.minimum, stats.maximum) == (-1000.0, -900.0)
    # the ellipse's own area, π r² (0.25 mm² a pixel), which the pixels inside approach within a pixel's edge
    assert stats.area_unit == "mm²" and stats.area == pytest.approx(np.pi * 100 * 0.25, rel=1e-12)
    assert abs(stats.count * 0.25 - stats.area) < 2 * np.pi * 10 * 0.25 * 0.1

    across = roi_statistics(_synthetic_frame(cols.astype(float)), (10, 10), (30, 30))  # value = its column
    assert across.mean == pytest.approx(19.5, abs=1e-9)  # symmetric about x = 20, between columns 19 and 20
    assert (across.minimum, across.maximum) == (10.0, 29.0) and across.value_unit == ""
    assert across.area_unit == "px²" and across.area == pytest.approx(np.pi * 100)

    # 10 columns by 5 rows, the rows 2 mm apart and the columns 1 mm: a circle of 10 mm radius
    wide = roi_statistics(_synthetic_frame(np.zeros((40, 40)), spacing=(2.0, 1.0)), (10, 15), (30, 25))
    assert wide.radii == (10.0, 5.0) and wide.area == pytest.approx(np.pi * 10 * 10)
    assert wide.mean == 0.0 and wide.sd == 0.0

    one = roi_statistics(checker, (20.2, 20.2), (20.8, 20.8))  # only the centre of pixel (20, 20) inside
    assert one.count == 1 and one.mean == -1000.0 and one.sd == 0.0
    none = roi_statistics(checker, (20.6, 20.6), (20.9, 20.9))  # between centres
    assert none.count == 0 and none.mean is None and none.sd is None and none.minimum is None
    assert none.area == pytest.approx(np.pi * 0.15 * 0.15 * 0.25)

    # Float pixel data may hold NaN or inf: the figures are of the finite values; none finite, none given.
    holes = cols.astype(float)
    holes[20, 10:30] = np.nan
    holes[21, 15] = np.inf
    finite = roi_statistics(_synthetic_frame(holes), (10, 10), (30, 30))
    inside = holes[ellipse_mask((40, 40), (10, 10), (30, 30))]
    kept = inside[np.isfinite(inside)]
    assert finite.count == 316 and kept.size == 316 - 21  # the NaN row's 20 pixels and the inf
    assert finite.mean == pytest.approx(float(kept.mean())) and finite.sd == pytest.approx(float(kept.std(ddof=1)))
    assert (finite.minimum, finite.maximum) == (10.0, 29.0)
    blank = roi_statistics(_synthetic_frame(np.full((40, 40), np.nan)), (10, 10), (30, 30))
    assert blank.count == 316 and blank.mean is None and blank.minimum is None


def test_roi_statistics_of_a_colour_image_are_the_means_of_r_g_b() -> None:
    rows, cols = np.indices((40, 40))
    rgb = np.stack([cols, np.full((40, 40), 100), 2 * rows], axis=-1).astype(float)
    stats = roi_statistics(_synthetic_frame(rgb), (10, 10), (30, 30))
    assert stats.count == 316 and stats.mean is None and stats.minimum is None
    assert stats.rgb_mean == pytest.approx((19.5, 100.0, 39.0), abs=1e-9)
    inside = rgb[ellipse_mask((40, 40), (10, 10), (30, 30))]
    assert stats.rgb_sd is not None
    assert stats.rgb_sd == pytest.approx(tuple(inside.std(axis=0, ddof=1)), abs=1e-9)  # the sample SD, per channel
    assert stats.rgb_sd[1] == 0.0 and stats.rgb_sd[2] == pytest.approx(2 * stats.rgb_sd[0])  # rows: like columns
    assert stats.area_unit == "px²"
    one = roi_statistics(_synthetic_frame(rgb), (20.2, 20.2), (20.8, 20.8))  # only pixel (20, 20) inside
    assert one.count == 1 and one.rgb_mean == (20.0, 100.0, 40.0) and one.rgb_sd == (0.0, 0.0, 0.0)
    none = roi_statistics(_synthetic_frame(rgb), (20.6, 20.6), (20.9, 20.9))
    assert none.count == 0 and none.rgb_mean is None and none.rgb_sd is None


# --- the value under the mouse ---------------------------------------------------------------------
def test_pixel_value_text_is_the_stored_pixel_in_modality_units() -> None:
    """CT_small's pixel (x 70, y 40) read back as stored value x slope + intercept in HU; the pixel is
    the one whose square holds the point; off the image, nothing."""
    ds, stored = load_dataset_and_pixels(data("CT_small.dcm"))
    frame = modality_frame(stored, ds)
    hu = pydicom.dcmread(data("CT_small.dcm")).pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept)
    assert frame.hounsfield and hu[40, 70] != hu[40, 71]
    assert pixel_value_text(frame, (70.0, 40.0)) == f"x 70 y 40: {hu[40, 70]:.0f} HU"
    assert pixel_value_text(frame, (70.99, 40.99)) == pixel_value_text(frame, (70.0, 40.0))
    assert pixel_value_text(frame, (71.0, 40.5)) == f"x 71 y 40: {hu[40, 71]:.0f} HU"
    for off in ((-0.01, 5.0), (5.0, -0.5), (128.0, 5.0), (5.0, 128.0)):
        assert pixel_value_text(frame, off) == ""
    plain = _synthetic_frame(np.array([[0.25, 3.0], [float("nan"), -1200.0]]))
    assert pixel_value_text(plain, (0.5, 0.5)) == "x 0 y 0: 0.25"  # no unit known: none said
    assert pixel_value_text(plain, (1.5, 0.5)) == "x 1 y 0: 3"
    assert pixel_value_text(plain, (0.5, 1.5)) == "x 0 y 1: nan"
    colour = _synthetic_frame(np.array([[[200.0, 150.0, 120.0]]]))
    assert pixel_value_text(colour, (0.2, 0.7)) == "x 0 y 0: R 200 G 150 B 120"
