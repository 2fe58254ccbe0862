"""Pixel decoding against pydicom's reference pixels, per transfer syntax, with values checked."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files

from tests.dicom.conftest import data
from zsmed.dicom import load_model_image, open_dataset, stored_pixels
from zsmed.dicom.decode import load_dataset_and_pixels
from zsmed.errors import NoPixelDataError, NotDicomError, PixelDecodeError, UnsupportedTransferSyntaxError

# (compressed file, uncompressed twin, 99th percentile of |difference| allowed, mean |difference| allowed)
TWINS = [
    ("MR_small_RLE.dcm", "MR_small.dcm", 0, 0),  # RLE
    ("MR_small_jp2klossless.dcm", "MR_small.dcm", 0, 0),  # J2K lossless
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm", 0, 0),  # JPEG-LS lossless
    ("MR_small_bigendian.dcm", "MR_small.dcm", 0, 0),  # explicit big endian
    ("MR_small_implicit.dcm", "MR_small.dcm", 0, 0),  # implicit VR
    ("emri_small_RLE.dcm", "emri_small.dcm", 0, 0),  # RLE multi-frame
    ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm", 0, 0),
    ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm", 0, 0),
    ("emri_small_big_endian.dcm", "emri_small.dcm", 0, 0),
    ("SC_rgb_rle.dcm", "SC_rgb.dcm", 0, 0),
    ("SC_rgb_rle_16bit.dcm", "SC_rgb_16bit.dcm", 0, 0),
    ("SC_rgb_rle_32bit.dcm", "SC_rgb_32bit.dcm", 0, 0),
    ("SC_rgb_rle_2frame.dcm", "SC_rgb_2frame.dcm", 0, 0),
    ("SC_rgb_expb.dcm", "SC_rgb.dcm", 0, 0),
    ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb.dcm", 0, 0),  # JPEG lossless SV1
    ("SC_rgb_gdcm_KY.dcm", "SC_rgb.dcm", 2, 0.5),  # JPEG 2000 (lossy)
    ("SC_rgb_jpeg_dcmtk.dcm", "SC_rgb.dcm", 12, 1.0),  # JPEG baseline YBR_FULL_422
    ("SC_rgb_dcmtk_+eb+cr.dcm", "SC_rgb.dcm", 12, 1.0),  # JPEG baseline RGB
    ("SC_rgb_dcmtk_+eb+cy+s4.dcm", "SC_rgb.dcm", 12, 1.0),
    ("SC_rgb_jls_lossy_line.dcm", "SC_rgb.dcm", 3, 1.5),  # JPEG-LS near lossless
    ("SC_ybr_full_uncompressed.dcm", "SC_rgb.dcm", 8, 1.0),  # native YBR_FULL -> RGB
    ("SC_ybr_full_422_uncompressed.dcm", "SC_rgb.dcm", 8, 1.0),  # native YBR_FULL_422
    ("US1_J2KR.dcm", "US1_UNCR.dcm", 0, 0),  # J2K lossless YBR_RCT
    ("US1_J2KI.dcm", "US1_UNCR.dcm", 40, 2.0),  # J2K lossy YBR_ICT
    ("RG3_J2KR.dcm", "RG3_UNCR.dcm", 0, 0),  # MONOCHROME1 10-bit
    ("RG1_J2KI.dcm", "RG1_UNCR.dcm", 400, 80.0),  # lossy 15-bit (range 0..32767)
    ("MR2_J2KR.dcm", "MR2_UNCR.dcm", 0, 0),  # 12-bit in 16
    ("693_J2KR.dcm", "693_UNCR.dcm", 0, 0),  # signed CT
    ("JPEG2000.dcm", "JPEG2000_UNC.dcm", 40, 2.0),
    ("OBXXXX1A_rle.dcm", "OBXXXX1A.dcm", 0, 0),  # palette RLE
    ("OBXXXX1A_expb_2frame.dcm", "OBXXXX1A_2frame.dcm", 0, 0),
    ("image_dfl.dcm", None, 0, 0),  # deflate: pydicom reference only
]


@pytest.mark.parametrize(("name", "twin", "max_diff", "mean_diff"), TWINS)
def test_decodes_like_uncompressed_twin(name: str, twin: str | None, max_diff: int, mean_diff: float) -> None:
    path = data(name)
    _ds, arr = load_dataset_and_pixels(path)
    # exactly pydicom's own pixel_array
    np.testing.assert_array_equal(arr, pydicom.dcmread(path).pixel_array)
    if twin is not None:
        ref = pydicom.dcmread(data(twin)).pixel_array
        assert arr.shape == ref.shape
        diff = np.abs(arr.astype(np.int64) - ref.astype(np.int64))
        assert np.percentile(diff, 99) <= max_diff, (name, np.percentile(diff, 99))  # lossy: edges ring
        assert diff.mean() <= mean_diff + 1e-9, (name, diff.mean())


def _transfer_syntaxes() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in get_testdata_files("*.dcm"):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            ts = str(ds.file_meta.TransferSyntaxUID)
        except Exception:
            continue
        if "PixelData" in pydicom.dcmread(path, specific_tags=["PixelData"]) and ts not in found:
            try:
                _ = pydicom.dcmread(path).pixel_array
            except Exception:
                continue
            found[ts] = path
    return found


def test_every_transfer_syntax_in_the_test_files_decodes_exactly() -> None:
    found = _transfer_syntaxes()
    assert len(found) >= 10, found  # native LE/BE/implicit, deflate, RLE, JPEG x3, JPEG-LS x2, J2K x2
    for ts, path in found.items():
        arr = stored_pixels(*open_dataset(path)[:1], path=path)
        ref = pydicom.dcmread(path).pixel_array
        assert (
            hashlib.sha256(np.ascontiguousarray(arr)).hexdigest()
            == hashlib.sha256(np.ascontiguousarray(ref)).hexdigest()
        ), ts


def test_12bit_jpeg_extended_falls_back_to_gdcm_image_reader() -> None:
    path = data("JPGExtended.dcm")
    with pytest.raises(RuntimeError):  # the trap: pydicom's GDCM plugin refuses it
        _ = pydicom.dcmread(path).pixel_array
    _ds, arr = load_dataset_and_pixels(path)
    assert arr.shape == (1024, 256) and arr.dtype == np.uint16
    # pydicom's pixels_reference values for this file
    assert arr[420, 140] == 244
    assert arr[230, 120] == 95
    assert arr.max() < 4096


def test_multiframe_frame_selection() -> None:
    path = data("emri_small.dcm")
    ds, allframes = load_dataset_and_pixels(path)
    assert allframes.shape == (10, 64, 64)
    for k in (0, 3, 9):
        np.testing.assert_array_equal(stored_pixels(ds, frame=k, path=path), allframes[k])
    with pytest.raises(PixelDecodeError, match="frame 10 does not exist"):
        stored_pixels(ds, frame=10, path=path)
    # encapsulated: one frame decoded on its own
    rle = data("emri_small_RLE.dcm")
    ds2, _ = open_dataset(rle)
    np.testing.assert_array_equal(stored_pixels(ds2, frame=7, path=rle), allframes[7])


def test_truncated_encapsulated_pixel_data_is_an_error_not_a_warning() -> None:
    with pytest.raises(PixelDecodeError, match="truncated"):
        load_model_image(data("emri_small_jpeg_2k_lossless_too_short.dcm"))


def test_truncated_native_pixel_data() -> None:
    with pytest.raises(PixelDecodeError, match="8130 bytes"):
        load_model_image(data("MR_truncated.dcm"))


def test_image_object_cut_before_its_pixels_is_called_truncated(tmp_path) -> None:
    for cut in (500, 6288):  # inside the header, then just before the Pixel Data element
        short = tmp_path / f"CT_cut_{cut}.dcm"
        short.write_bytes(Path(data("CT_small.dcm")).read_bytes()[:cut])
        expected = f"CT Image Storage without its pixel data: the file ends after {cut} bytes"
        with pytest.raises(PixelDecodeError, match=expected):
            load_model_image(str(short))


def test_what_codecs_print_is_collected_not_shown(capfd: pytest.CaptureFixture[str]) -> None:
    from zsmed.dicom.decode import codec_output

    with codec_output() as lines:
        os.write(2, b"Unsupported JPEG data precision 12\n\n")  # as libjpeg does, below Python
    assert lines == ["Unsupported JPEG data precision 12"]
    assert capfd.readouterr().err == ""
    os.write(2, b"after\n")  # the real stderr is back
    assert capfd.readouterr().err == "after\n"


def test_non_image_objects_say_so() -> None:
    for name in ("rtplan.dcm", "test-SR.dcm", "reportsi.dcm", "rtstruct.dcm", "waveform_ecg.dcm"):
        with pytest.raises(NoPixelDataError, match="no image"):
            load_model_image(data(name))


def test_missing_preamble_is_read_when_it_is_a_data_set(tmp_path) -> None:
    src = Path(data("CT_small.dcm")).read_bytes()
    ds = pydicom.dcmread(data("CT_small.dcm"))
    bare = tmp_path / "bare.dcm"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(bare, enforce_file_format=True)
    raw = bare.read_bytes()
    assert raw[128:132] == b"DICM"
    # strip preamble + file meta: an old ACR-NEMA style bare data set
    meta_end = 132 + 12 + int.from_bytes(raw[140:144], "little")
    (tmp_path / "nometa.dcm").write_bytes(raw[meta_end:])
    img = load_model_image(tmp_path / "nometa.dcm")
    assert img.shape == (128, 128)
    np.testing.assert_allclose(img, load_model_image(data("CT_small.dcm")), atol=1e-6)
    assert len(src) > 0
    (tmp_path / "junk.dcm").write_bytes(b"\x20" * 4 + raw[meta_end:])
    with pytest.raises(NotDicomError):
        load_model_image(tmp_path / "junk.dcm")


def test_unknown_transfer_syntax(tmp_path) -> None:
    ds = pydicom.dcmread(data("MR_small_RLE.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6.7"
    out = tmp_path / "unknown_ts.dcm"
    ds.save_as(out, enforce_file_format=False)
    with pytest.raises(UnsupportedTransferSyntaxError, match=r"unknown transfer syntax 1\.2\.3\.4\.5\.6\.7"):
        load_model_image(out)


def test_known_transfer_syntax_without_codec_names_it(tmp_path) -> None:
    ds = pydicom.dcmread(data("MR_small_jp2klossless.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2
    out = tmp_path / "mpeg2.dcm"
    ds.save_as(out, enforce_file_format=False)
    with pytest.raises(UnsupportedTransferSyntaxError, match="MPEG2"):
        load_model_image(out)


def test_wrong_bits_allocated(tmp_path) -> None:
    ds = pydicom.dcmread(data("MR_small.dcm"))
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.save_as(tmp_path / "ba32.dcm", enforce_file_format=False)
    with pytest.raises(PixelDecodeError, match="BitsAllocated"):
        load_model_image(tmp_path / "ba32.dcm")
    ds = pydicom.dcmread(data("CT_small.dcm"))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.save_as(tmp_path / "ba8.dcm", enforce_file_format=False)
    with pytest.raises(PixelDecodeError, match="twice"):
        load_model_image(tmp_path / "ba8.dcm")


def test_pydicom_data_found_offline() -> None:
    files = get_testdata_files()
    assert len(files) > 100
    assert all(os.path.exists(f) for f in files)


def test_a_damaged_palette_is_named_as_damage_not_a_codec_crash(tmp_path: Path) -> None:
    """pydicom's own error for a palette table it cannot expand comes back from the contained
    decoder as the file's damage, with pydicom's words kept for the IT person."""
    from zsmed.dicom.safe import shared_decoder

    ds = pydicom.dcmread(data("gdcm-US-ALOKA-16.dcm"))
    table = bytearray(ds.SegmentedRedPaletteColorLookupTableData)
    table[0:2] = b"\xff\xff"  # a segment type the standard does not define
    ds.SegmentedRedPaletteColorLookupTableData = bytes(table)
    ds.save_as(tmp_path / "us.dcm")
    damaged = r"cannot be decoded: the file is damaged .*unknown segment type"
    with pytest.raises(PixelDecodeError, match=damaged) as info:
        shared_decoder().modality_frame(str(tmp_path / "us.dcm"), 0)
    assert str(tmp_path / "us.dcm") in str(info.value) and "\n" not in str(info.value)
