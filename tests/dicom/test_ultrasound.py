"""Ultrasound regions on pydicom's real ultrasound files: the scan area's calibration as the image's
pixel size (rulers and areas in mm), trusted only where the regions fit the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import dicom_test_file
from zsmed.dicom.burned_in import outside_ultrasound_regions
from zsmed.dicom.deidentify import Blanking, deidentify_job
from zsmed.dicom.display import ULTRASOUND_CALIBRATION, pixel_spacing_with_source, true_aspect
from zsmed.dicom.ultrasound import calibrated_spacing, region_bounds, regions_fit
from zsmed.progress import run_job


def _header(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(dicom_test_file(name), stop_before_pixels=True)


def test_a_scan_area_calibrated_in_cm_gives_the_pixel_size_in_mm() -> None:
    ob = _header("OBXXXX1A.dcm")  # a 2-D region (0.0262 cm a pixel) and a waveform strip
    assert regions_fit(ob) is True  # its MaxX1 of 800 on 800 columns: the machines' off-by-one
    assert region_bounds(ob) == (120, 60, 799, 576)
    assert calibrated_spacing(ob) == pytest.approx((0.2622878766, 0.2622878766))
    spacing, source = pixel_spacing_with_source(ob)  # type: ignore[misc]
    assert source == ULTRASOUND_CALIBRATION and spacing == pytest.approx((0.2622878766, 0.2622878766))
    assert true_aspect(ob) == pytest.approx(1.0)
    assert calibrated_spacing(_header("JPGLosslessP14SV1_1s_1f_8b.dcm")) == pytest.approx((0.25476697, 0.25476697))


def test_two_scan_areas_with_one_calibration_and_a_region_without_units() -> None:
    aloka = _header("gdcm-US-ALOKA-16.dcm")  # dual view: two 2-D regions, and one with no physical units
    assert calibrated_spacing(aloka) == pytest.approx((0.3826530650, 0.3826530650))


def test_two_scan_areas_calibrated_differently_give_no_single_scale() -> None:
    aloka = _header("gdcm-US-ALOKA-16.dcm")
    aloka.SequenceOfUltrasoundRegions[1].PhysicalDeltaX = 0.05
    assert calibrated_spacing(aloka) is None
    assert pixel_spacing_with_source(aloka) is None  # rulers in px rather than a scale that depends on where


def test_regions_written_for_another_size_of_the_image_are_not_trusted() -> None:
    scaled = _header("examples_ybr_color.dcm")  # 320 x 240, regions up to (595, 414): set for 640 x 480
    assert regions_fit(scaled) is False
    assert calibrated_spacing(scaled) is None and pixel_spacing_with_source(scaled) is None
    assert calibrated_spacing(_header("color3d_jpeg_baseline.dcm")) == pytest.approx((0.5104970559, 0.5104970559))
    assert regions_fit(_header("examples_rgb_color.dcm")) is None  # none at all


def test_an_ultrasound_is_blanked_around_its_real_regions(tmp_path: Path) -> None:
    source = dicom_test_file("OBXXXX1A.dcm")
    assert outside_ultrasound_regions(_header("OBXXXX1A.dcm"))
    result = run_job(deidentify_job([source], tmp_path / "out", seed="x", blanking=Blanking(outside_ultrasound=True)))
    written = pydicom.dcmread(result.files[0])
    before = pydicom.dcmread(source).pixel_array
    outside = np.ones(before.shape, dtype=bool)
    outside[60:577, 120:800] = False
    assert written.PatientIdentityRemoved == "YES" and written.BurnedInAnnotation == "NO"
    assert len(np.unique(written.pixel_array[outside])) == 1  # one fill value, the darkest palette entry
    assert (written.pixel_array[~outside] == before[~outside]).all()


def test_the_measurements_sr_says_where_an_ultrasound_scale_comes_from(tmp_path: Path) -> None:
    from zsmed.report.measurements import PixelSpacing, RulerMark, write_measurements_sr

    source = dicom_test_file("JPGLosslessP14SV1_1s_1f_8b.dcm")
    (row, column), element = pixel_spacing_with_source(pydicom.dcmread(source))  # type: ignore[misc]
    written = write_measurements_sr(source, frame=None, spacing=PixelSpacing(row, column, element), reader="",
                                    rulers=[RulerMark((100.0, 100.0), (500.0, 400.0), 500 * row)], regions=[],
                                    angles=[], out_dir=tmp_path)
    texts = [str(e.value) for e in pydicom.dcmread(written).iterall() if e.keyword == "TextValue"]
    assert any("ultrasound scan area's calibration" in t for t in texts)
