"""Crafted DICOM files, photos, file names and CD indexes through ``zsmed predict``: each gives its
own error line (or is never read), the rest of the folder is still predicted, output lines cannot be
forged, and the whole run stays within 30 s and 1 GB."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.security.conftest import assert_within_limits, run_guarded

# crafting invalid UIDs and file IDs on purpose: pydicom says so while writing them
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom.valuerep")


def _dicom(path: Path, **fields: object) -> Path:
    """A small but well-formed DICOM image file with the given header fields."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = UID(str(fields.pop("TransferSyntaxUID", ExplicitVRLittleEndian)))
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.Rows, ds.Columns = 64, 64
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.PixelData = (np.arange(64 * 64) % 251).astype(np.uint8).tobytes()
    for key, value in fields.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def _crafted_folder(root: Path) -> dict[str, Path]:
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    folder = root / "stick"
    folder.mkdir()
    files = {
        "good": _photo(folder / "good.png"),
        "frames": _dicom(folder / "frames.dcm", NumberOfFrames=30_000_000),
        "rle": _dicom(folder / "rle.dcm", TransferSyntaxUID=RLELossless, Rows=40000, Columns=40000,
                      SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=1,
                      BitsAllocated=16, BitsStored=16, HighBit=15, PixelData=encapsulate([bytes(64)])),
        "forged": _dicom(folder / "evil\nFORGED.jpg\tmelanoma\t0.999.dcm"),
        "ansi": _dicom(folder / "ansi.dcm", SeriesInstanceUID="1.2.3\x1b[2J\x1b[31mFORGED"),
    }
    big = folder / "huge.png"  # 64 megapixels in a few kB
    Image.new("1", (8000, 8000)).save(big, optimize=True)
    files["huge"] = big
    outside = _photo(root / "private.png")
    os.symlink(outside, folder / "link_out.png")
    files["outside"] = outside
    return files


def _photo(path: Path) -> Path:
    Image.fromarray((np.random.default_rng(1).random((96, 96, 3)) * 255).astype(np.uint8)).save(path)
    return path


def test_file_sizes_are_what_the_issue_describes(tmp_path: Path) -> None:
    files = _crafted_folder(tmp_path)
    assert files["frames"].stat().st_size < 5000 and files["rle"].stat().st_size < 2000
    assert files["huge"].stat().st_size < 20_000


def test_crafted_folder_through_predict(genuine_bundle: Path, tmp_path: Path, user_dirs: dict[str, str]) -> None:
    files = _crafted_folder(tmp_path)
    folder = files["good"].parent
    command = f"""
        import sys
        from zsmed.cli.main import main
        sys.exit(main(["predict", {str(genuine_bundle)!r}, {str(folder)!r}, "--backend", "onnxruntime",
                       "--series"] + sys.argv[1:]))
    """
    result = run_guarded(command, env=user_dirs)
    assert_within_limits(result)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    per_file = [line for line in lines if line.startswith(str(folder))]
    # one line per file (link_out.png leads outside the folder and is not read); the file name that
    # holds a new line and tabs is one escaped line, not a forged 'melanoma 0.999' result
    assert len(per_file) == 6, result.stdout
    assert not any(line.startswith("FORGED") for line in lines)
    forged = next(line for line in per_file if "FORGED" in line)
    assert "evil\\nFORGED.jpg\\tmelanoma\\t0.999.dcm" in forged
    assert "link_out" not in result.stdout and "private.png" not in result.stdout
    by_name = {Path(line.split("\t")[0]).name: line for line in per_file}
    assert "the header claims 30000000 frames; zsmed reads at most 10000" in by_name["frames.dcm"]
    assert "the header claims a 40000 x 40000 image with 3 sample(s) of 16 bits" in by_name["rle.dcm"]
    assert "image of 8000 x 8000 pixels is too large to read safely" in by_name["huge.png"]
    good = by_name["good.png"].split("\t")
    assert good[1] in ("nv", "mel", "bkl", "bcc") or good[1].startswith("abstain")
    # the UID with terminal escapes is printed escaped in the series lines
    assert "\x1b" not in result.stdout
    assert "1.2.3\\x1b[2J\\x1b[31mFORGED" in result.stdout
    assert "3 of 6 inputs could not be read" in result.stderr


def test_dicomdir_references_off_the_disc_are_never_read(genuine_bundle: Path, tmp_path: Path,
                                                         user_dirs: dict[str, str]) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian

    disc = tmp_path / "disc"
    (disc / "IMAGES").mkdir(parents=True)
    _dicom(disc / "IMAGES" / "IM1")
    secret = _dicom(tmp_path / "SECRET")  # beside the disc: reachable by ../SECRET
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.1.3.10")
    meta.MediaStorageSOPInstanceUID = UID("1.2.3.4")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    index = Dataset()
    index.file_meta = meta
    records = []
    for file_id in (["IMAGES", "IM1"], ["..", "SECRET"], [str(secret)], ["IMAGES", "..", "..", "SECRET"]):
        record = Dataset()
        record.DirectoryRecordType = "IMAGE"
        record.ReferencedFileID = file_id
        records.append(record)
    index.DirectoryRecordSequence = records
    index.save_as(disc / "DICOMDIR", enforce_file_format=True)
    result = run_guarded(f"""
        import sys
        from zsmed.cli.main import main
        sys.exit(main(["predict", {str(genuine_bundle)!r}, {str(disc / "DICOMDIR")!r}, "--backend", "onnxruntime",
                       "--json"]))
    """, env=user_dirs)
    assert_within_limits(result)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    read = [r for r in lines if "error" not in r]
    assert [Path(r["source"]).name for r in read] == ["IM1"]
    refused = [r for r in lines if "error" in r]
    assert len(refused) == 3
    assert all("outside the DICOMDIR's folder: refused" in r["error"] for r in refused)
    assert not any(r["source"] == str(secret) for r in lines)


def test_a_link_out_of_the_input_folder_is_not_followed_but_a_training_folder_keeps_its_links(tmp_path: Path) -> None:
    from zsmed.imageio import candidate_images
    from zsmed.runtime.predict import expand_inputs

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    _photo(folder / "a.png")
    archive = tmp_path / "archive"
    archive.mkdir()
    _photo(archive / "b.png")
    os.symlink(archive, folder / "linked_dir")
    os.symlink(archive / "b.png", folder / "sub" / "c.png")
    os.symlink(folder / "a.png", folder / "sub" / "inside.png")  # a link that stays inside is fine
    assert [p.name for p in expand_inputs([folder], confined=True)] == ["a.png", "inside.png"]
    assert sorted(p.name for p in candidate_images(folder)) == ["a.png", "b.png", "c.png", "inside.png"]


def test_photo_pixel_cap_is_checked_before_decoding(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("1", (10000, 6000)).save(big, optimize=True)
    result = run_guarded(f"""
        from zsmed.imageio import read_photo
        from zsmed.errors import ImageFormatError
        try:
            read_photo({str(big)!r})
        except ImageFormatError as exc:
            print(exc)
    """)
    assert_within_limits(result)
    assert "image of 10000 x 6000 pixels is too large to read safely (at most 50 megapixels)" in result.stdout
    assert result.peak_rss_mb < 200


def test_header_ceilings_hold_in_process_too(tmp_path: Path) -> None:
    """The trusted in-process path (training folders) refuses the same headers before allocating."""
    from zsmed.dicom import load_model_image
    from zsmed.errors import PixelDecodeError

    files = _crafted_folder(tmp_path)
    with pytest.raises(PixelDecodeError, match="claims 30000000 frames"):
        load_model_image(files["frames"])
    with pytest.raises(PixelDecodeError, match="zsmed decodes at most 50 megapixels"):
        load_model_image(files["rle"])
    shutil.rmtree(tmp_path / "stick")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_the_decoder_worker_itself_stays_under_1_gb_on_crafted_headers(tmp_path: Path) -> None:
    """predict's peak is measured in its own process above; the contained decoder is another process
    (its address-space cap is 3 GB), so its own high-water mark is read here, after every crafted
    file was refused and a real image decoded in the same worker."""
    from zsmed.dicom.safe import SafeDecoder
    from zsmed.errors import PixelDecodeError

    files = _crafted_folder(tmp_path)
    good = _dicom(tmp_path / "fine.dcm")
    with SafeDecoder(timeout=30) as decoder:
        for name in ("frames", "rle"):
            with pytest.raises(PixelDecodeError, match="header claims"):
                decoder.model_image(files[name])
        assert decoder.model_image(good).shape[:2] == (64, 64)
        pid = decoder._process.pid
        assert _peak_rss_mb(pid) <= 1024, f"decoder worker peaked at {_peak_rss_mb(pid):.0f} MB"
        assert decoder.restarts == 0  # refused from the header: the worker never died trying
