"""Burned-in text blanked in de-identified copies (zsmed.dicom.burned_in and the export's Blanking), on
pydicom's real ultrasound and secondary-capture files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut
from pydicom.uid import ExplicitVRLittleEndian

from tests.conftest import dicom_test_file
from zsmed.cli.main import main
from zsmed.dicom.burned_in import (
    Box,
    blank_boxes,
    blank_dataset,
    darkest_value,
    outside_ultrasound_regions,
    regions_fit,
)
from zsmed.dicom.deidentify import Blanking, deidentify_job
from zsmed.errors import ConfigError
from zsmed.progress import run_job


def _with_region(name: str, target: Path, corners: tuple[int, int, int, int]) -> Path:
    """A copy of a real ultrasound file whose regions are one region with these inclusive corners."""
    ds = pydicom.dcmread(dicom_test_file(name))
    region = ds.SequenceOfUltrasoundRegions[0]
    (region.RegionLocationMinX0, region.RegionLocationMinY0,
     region.RegionLocationMaxX1, region.RegionLocationMaxY1) = corners
    ds.SequenceOfUltrasoundRegions = [region]
    ds.save_as(target)
    return target


def _outside(shape: tuple[int, int], corners: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.ones(shape, dtype=bool)
    left, top, right, bottom = corners
    mask[top:bottom + 1, left:right + 1] = False
    return mask


def test_box_parse_and_clip() -> None:
    assert Box.parse("0, 0, 640, 40") == Box(0, 0, 640, 40)
    for bad in ("1,2", "a,b,c,d", "-1,0,5,5", "0,0,0,5", "0,0,5,5,5"):
        with pytest.raises(ConfigError, match="an area to blank"):
            Box.parse(bad)
    assert Box(300, 200, 100, 100).clipped(240, 320) == Box(300, 200, 20, 40)
    assert Box(400, 0, 10, 10).clipped(240, 320) is None


def test_blank_boxes_sets_every_frame_and_leaves_the_input() -> None:
    pixels = np.arange(2 * 4 * 5 * 3).reshape(2, 4, 5, 3)
    out = blank_boxes(pixels, [Box(1, 2, 10, 10)], 0, frames=True)
    assert (out[:, 2:, 1:] == 0).all()
    assert (out[:, :2] == pixels[:, :2]).all() and (out[:, :, :1] == pixels[:, :, :1]).all()
    assert pixels[0, 3, 4, 0] != 0  # a copy: the decoded image is not changed under the viewer


def test_the_area_outside_the_regions_is_exactly_their_complement(tmp_path: Path) -> None:
    corners = (40, 20, 279, 219)
    path = _with_region("examples_ybr_color.dcm", tmp_path / "us.dcm", corners)
    ds = pydicom.dcmread(path)
    assert regions_fit(ds) is True
    covered = np.zeros((int(ds.Rows), int(ds.Columns)), dtype=int)
    for box in outside_ultrasound_regions(ds):
        covered[box.top:box.top + box.height, box.left:box.left + box.width] += 1
    assert (covered.astype(bool) == _outside(covered.shape, corners)).all()
    assert covered.max() == 1  # no pixel blanked twice


def test_regions_set_for_another_size_of_image_are_not_used() -> None:
    shipped = pydicom.dcmread(dicom_test_file("examples_ybr_color.dcm"))  # regions up to x 595 on 320 columns
    assert regions_fit(shipped) is False
    assert outside_ultrasound_regions(shipped) == []
    assert regions_fit(pydicom.dcmread(dicom_test_file("examples_rgb_color.dcm"))) is None


def test_a_jpeg_multiframe_ultrasound_is_blanked_on_every_frame_and_written_uncompressed(tmp_path: Path) -> None:
    corners = (40, 20, 279, 219)
    path = _with_region("examples_ybr_color.dcm", tmp_path / "us.dcm", corners)
    ds = pydicom.dcmread(path)
    before = ds.pixel_array.copy()  # pydicom's RGB of the JPEG YBR frames
    uid = ds.SOPInstanceUID
    blanked = blank_dataset(ds, outside_ultrasound_regions(ds), path=path)
    assert blanked
    ds.save_as(tmp_path / "out.dcm")
    after = pydicom.dcmread(tmp_path / "out.dcm")
    assert after.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert after.PhotometricInterpretation == "RGB" and after.SOPInstanceUID == uid
    pixels = after.pixel_array
    assert pixels.shape == before.shape == (30, 240, 320, 3)
    outside = _outside((240, 320), corners)
    assert before[:, outside].any()  # there was something to blank
    assert (pixels[:, outside] == 0).all()
    assert (pixels[:, ~outside] == before[:, ~outside]).all()


def test_a_palette_image_is_filled_with_its_darkest_entry_and_keeps_its_palette(tmp_path: Path) -> None:
    corners = (120, 60, 799, 349)
    path = _with_region("examples_palette.dcm", tmp_path / "us.dcm", corners)
    ds = pydicom.dcmread(path)
    before = ds.pixel_array.copy()
    values = np.unique(before)
    darkest = int(values[np.argmin(apply_color_lut(values, ds).astype(float).sum(axis=1))])
    blank_dataset(ds, outside_ultrasound_regions(ds), path=path)
    ds.save_as(tmp_path / "out.dcm")
    after = pydicom.dcmread(tmp_path / "out.dcm")
    assert after.PhotometricInterpretation == "PALETTE COLOR"
    assert after.RedPaletteColorLookupTableData == ds.RedPaletteColorLookupTableData
    outside = _outside(before.shape, corners)
    assert (after.pixel_array[outside] == darkest).all()
    assert (after.pixel_array[~outside] == before[~outside]).all()


def test_the_darkest_value_follows_the_photometric_interpretation() -> None:
    pixels = np.array([[3, 9], [5, 7]])
    for photometric, expected in (("MONOCHROME1", 9), ("MONOCHROME2", 3), ("RGB", 0)):
        ds = Dataset()
        ds.PhotometricInterpretation = photometric
        assert darkest_value(ds, pixels) == expected


def _export(files: list[Path], out: Path, blanking: Blanking | None) -> object:
    return run_job(deidentify_job(files, out, seed="blank", blanking=blanking))


def test_an_export_blanks_the_ultrasound_and_leaves_the_ct_byte_for_byte(tmp_path: Path) -> None:
    corners = (40, 20, 279, 219)
    us = _with_region("examples_ybr_color.dcm", tmp_path / "us.dcm", corners)
    ct = dicom_test_file("CT_small.dcm")
    result = _export([us, ct], tmp_path / "out", Blanking(outside_ultrasound=True))
    written = {pydicom.dcmread(f).Modality: pydicom.dcmread(f) for f in result.files}  # type: ignore[attr-defined]
    us_out, ct_out = written["US"], written["CT"]
    assert us_out.BurnedInAnnotation == "NO" and us_out.PatientIdentityRemoved == "YES"
    assert "113101" in {c.CodeValue for c in us_out.DeidentificationMethodCodeSequence}
    assert "burned-in text blanked in areas the reader chose" in us_out.DeidentificationMethod
    assert (us_out.pixel_array[:, _outside((240, 320), corners)] == 0).all()
    assert ct_out.PixelData == pydicom.dcmread(ct).PixelData
    assert "113101" not in {c.CodeValue for c in ct_out.DeidentificationMethodCodeSequence}
    assert "pixel data unchanged: burned-in text not removed" in ct_out.DeidentificationMethod
    assert any("burned-in text blanked on 1 image" in n for n in result.notes)  # type: ignore[attr-defined]
    assert not any("may have names burned into" in n for n in result.notes)  # type: ignore[attr-defined]


def test_an_ultrasound_whose_regions_do_not_fit_is_not_claimed_clean(tmp_path: Path) -> None:
    result = _export([dicom_test_file("examples_ybr_color.dcm")], tmp_path / "out", Blanking(outside_ultrasound=True))
    out = pydicom.dcmread(result.files[0])  # type: ignore[attr-defined]
    assert out.PatientIdentityRemoved == "NO"
    assert out.PixelData == pydicom.dcmread(dicom_test_file("examples_ybr_color.dcm")).PixelData
    notes = " ".join(result.notes)  # type: ignore[attr-defined]
    assert "regions reaching past the image" in notes and "may have names burned into its pixels" in notes


def test_cli_blanks_a_header_band_and_refuses_a_bad_box(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = dicom_test_file("SC_rgb.dcm")  # a secondary capture: the kind that carries burned-in text
    assert main(["deidentify", str(source), "--out", str(tmp_path / "out"), "--blank", "0,0,100,10"]) == 0
    assert "burned-in text blanked on 1 image" in capsys.readouterr().out
    written = next((tmp_path / "out").rglob("*.dcm"))
    pixels, before = pydicom.dcmread(written).pixel_array, pydicom.dcmread(source).pixel_array
    assert (pixels[:10] == 0).all() and before[:10].any()
    assert (pixels[10:] == before[10:]).all()
    with pytest.raises(SystemExit) as exit_info:
        main(["deidentify", str(source), "--out", str(tmp_path / "o2"), "--blank", "0,0,10"])
    assert exit_info.value.code == 2
    assert "X,Y,WIDTH,HEIGHT" in capsys.readouterr().err


def test_a_big_endian_ultrasound_is_blanked_and_written_little_endian(tmp_path: Path) -> None:
    source = dicom_test_file("ExplVR_BigEnd.dcm")  # an RGB ultrasound in Explicit VR Big Endian
    result = _export([source], tmp_path / "out", Blanking(boxes=(Box(0, 0, 80, 5),)))
    written = pydicom.dcmread(result.files[0])  # type: ignore[attr-defined]
    before = pydicom.dcmread(source).pixel_array
    assert written.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert (written.pixel_array[:5] == 0).all() and before[:5].any()
    assert (written.pixel_array[5:] == before[5:]).all()


def test_an_image_whose_pixels_cannot_be_decoded_is_not_exported_unblanked(tmp_path: Path) -> None:
    source = dicom_test_file("SC_rgb.dcm")
    damaged = pydicom.dcmread(source)
    damaged.PixelData = damaged.PixelData[: len(damaged.PixelData) // 2]  # truncated
    damaged.save_as(tmp_path / "cut.dcm")
    result = _export([tmp_path / "cut.dcm"], tmp_path / "out", Blanking(boxes=(Box(0, 0, 10, 10),)))
    assert result.written == 0 and result.files == []  # type: ignore[attr-defined]
    [problem] = result.problems  # type: ignore[attr-defined]
    assert "cut.dcm: its pixels could not be decoded to blank the burned-in text" in problem
    assert problem.endswith("not exported")
