"""The DICOM tag listing (``zsmed.dicom.tags``) and ``zsmed tags``, read back against pydicom on
real files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.datadict import private_dictionary_description
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_fragments
from pydicom.errors import BytesLengthException
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from tests.conftest import dicom_test_file
from zsmed.cli.main import main
from zsmed.dicom.decode import open_dataset
from zsmed.dicom.tags import (
    DEFER_SIZE,
    ITEM,
    MORE,
    TagRow,
    element_count,
    filter_rows,
    read_tag_rows,
    row_matches,
    summary_text,
    tag_rows,
)
from zsmed.errors import NotDicomError


def by_tag(rows: list[TagRow], tag: str, depth: int = 0) -> TagRow:
    matches = [row for row in rows if row.tag == tag and row.depth == depth]
    assert len(matches) == 1, (tag, matches)
    return matches[0]


def reference(name: str) -> tuple[Path, Dataset]:
    path = dicom_test_file(name)
    return path, pydicom.dcmread(path)


def _sc_dataset() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.PatientName = "DOE^JANE"
    return ds


# --- values read back ---------------------------------------------------------------------------
def test_ct_rows_read_back_pydicoms_values() -> None:
    path, ds = reference("CT_small.dcm")
    rows, notes = read_tag_rows(path)
    assert notes == []
    # File meta first, then the data set in tag order.
    meta = [row for row in rows if row.tag.startswith("(0002,")]
    assert rows[: len(meta)] == meta and len(meta) == len(ds.file_meta)
    assert str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1"
    assert by_tag(rows, "(0002,0010)").value == "1.2.840.10008.1.2.1 (Explicit VR Little Endian)"
    assert by_tag(rows, "(0008,0016)").value == "1.2.840.10008.5.1.4.1.1.2 (CT Image Storage)"
    assert by_tag(rows, "(0008,0018)").value == str(ds.SOPInstanceUID)  # an instance UID has no name

    name = by_tag(rows, "(0010,0010)")
    assert (name.name, name.vr, name.value, name.private) == ("Patient's Name", "PN", str(ds.PatientName), False)
    assert name.value == "CompressedSamples^CT1"
    rows_row = by_tag(rows, "(0028,0010)")
    assert (rows_row.name, rows_row.vr, rows_row.value) == ("Rows", "US", str(ds.Rows))
    # Multi-values as stored, joined with a backslash.
    assert by_tag(rows, "(0008,0008)").value == "\\".join(ds.ImageType) == "ORIGINAL\\PRIMARY\\AXIAL"
    assert by_tag(rows, "(0020,0032)").value == "\\".join(str(v) for v in ds.ImagePositionPatient)
    # Bytes: a hex preview and the length, never the whole value.
    assert by_tag(rows, "(0002,0001)").value == "00 01 (2 bytes)"
    padding = bytes(ds[0xFFFCFFFC].value)
    head = " ".join(f"{b:02x}" for b in padding[:16])
    assert by_tag(rows, "(FFFC,FFFC)").value == f"{head} … ({len(padding)} bytes)"


def test_sequences_are_nested_items_then_their_elements() -> None:
    path, ds = reference("CT_small.dcm")
    rows, _ = read_tag_rows(path)
    seq = ds.OtherPatientIDsSequence
    at = rows.index(by_tag(rows, "(0010,1002)"))
    sq = rows[at]
    assert (sq.name, sq.vr, sq.children, sq.value) == ("Other Patient IDs Sequence", "SQ", len(seq), "2 items")
    item1, pid, kind, item2, pid2 = rows[at + 1 : at + 6]
    assert (item1.kind, item1.depth, item1.name, item1.tag, item1.children) == (ITEM, 1, "Item 1", "", len(seq[0]))
    assert (pid.depth, pid.tag, pid.value) == (2, "(0010,0020)", seq[0].PatientID) and pid.value == "ABCD1234"
    assert (kind.depth, kind.name, kind.value) == (2, "Type of Patient ID", seq[0].TypeOfPatientID)
    assert (item2.name, item2.depth) == ("Item 2", 1)
    assert pid2.value == seq[1].PatientID == "1234ABCD"
    assert rows[at + 6].depth == 2 and rows[at + 7].depth == 0  # then back at the top level


def test_every_element_is_listed_once() -> None:
    path, ds = reference("CT_small.dcm")
    rows, _ = read_tag_rows(path)
    expected = len(ds.file_meta) + sum(1 for _ in ds.iterall())
    assert element_count(rows) == expected == 270
    assert summary_text(rows) == f"{expected} elements · Explicit VR Little Endian"


def test_private_tags_are_marked_and_named_from_the_private_dictionary(tmp_path: Path) -> None:
    path, ds = reference("CT_small.dcm")
    rows, _ = read_tag_rows(path)
    creator = by_tag(rows, "(0009,0010)")
    assert (creator.name, creator.value, creator.private) == ("Private Creator", "GEMS_IDEN_01", True)
    known = by_tag(rows, "(0009,1001)")
    assert known.private and known.name == private_dictionary_description(0x00091001, "GEMS_IDEN_01")
    assert known.name == "Full fidelity" and known.value == ds[0x00091001].value == "GE_GENESIS_FF"
    assert not by_tag(rows, "(0010,0010)").private

    # A creator pydicom does not know: marked, called "Private tag".
    own = _sc_dataset()
    block = own.private_block(0x0029, "ZSMED TEST CREATOR", create=True)
    block.add_new(0x01, "LO", "site secret")
    own.save_as(tmp_path / "private.dcm", enforce_file_format=True)
    rows, _ = read_tag_rows(tmp_path / "private.dcm")
    row = by_tag(rows, "(0029,1001)")
    assert (row.name, row.value, row.private) == ("Private tag", "site secret", True)


def test_implicit_vr_pixel_data_gets_its_vr_resolved() -> None:
    path, ds = reference("MR_small_implicit.dcm")
    rows, _ = read_tag_rows(path)
    pixels = by_tag(rows, "(7FE0,0010)")
    assert pixels.vr == ds["PixelData"].VR == "OW"
    assert pixels.value == f"{len(ds.PixelData)} bytes"


# --- large values are not read -----------------------------------------------------------------
def test_pixel_data_is_described_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    path, reference_ds = reference("CT_small.dcm")
    assert len(reference_ds.PixelData) > DEFER_SIZE
    ds, _ = open_dataset(path, defer_size=DEFER_SIZE)

    def no_deferred_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a deferred value was read")

    monkeypatch.setattr(pydicom.filereader, "read_deferred_data_element", no_deferred_reads)
    rows = tag_rows(ds)
    pixels = by_tag(rows, "(7FE0,0010)")
    assert (pixels.name, pixels.vr, pixels.value) == ("Pixel Data", "OW", f"{len(reference_ds.PixelData)} bytes")
    raw = ds.get_item(0x7FE00010, keep_deferred=True)
    assert isinstance(raw, RawDataElement) and raw.value is None  # still unread after listing


def test_large_bulk_values_are_reported_by_length(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _sc_dataset()
    blob = bytes(range(256)) * 400  # 100 kB, over DEFER_SIZE
    ds.add_new(0x00420011, "OB", blob)  # Encapsulated Document
    ds.save_as(tmp_path / "blob.dcm", enforce_file_format=True)
    monkeypatch.setattr(pydicom.filereader, "read_deferred_data_element",
                        lambda *a, **k: pytest.fail("a deferred value was read"))
    rows, _ = read_tag_rows(tmp_path / "blob.dcm")
    row = by_tag(rows, "(0042,0011)")
    assert (row.name, row.vr, row.value) == ("Encapsulated Document", "OB", f"{len(blob)} bytes (not loaded)")


@pytest.mark.parametrize("name", ["emri_small_jpeg_2k_lossless.dcm", "SC_rgb_rle_2frame.dcm", "JPEG2000.dcm"])
def test_encapsulated_pixel_data_counts_fragments(name: str) -> None:
    path, ds = reference(name)
    rows, _ = read_tag_rows(path)
    items = list(generate_fragments(ds.PixelData))
    fragments = items[1:]  # the first item is the Basic Offset Table
    plural = "s" if len(fragments) != 1 else ""
    assert by_tag(rows, "(7FE0,0010)").value == (
        f"encapsulated, {len(fragments)} fragment{plural} ({sum(len(item) for item in items)} bytes)"
    )
    if name.startswith("emri"):
        assert len(fragments) == int(ds.NumberOfFrames) == 10


# --- limits and damage --------------------------------------------------------------------------
def test_long_listings_are_cut_with_a_count_of_what_is_left_out(tmp_path: Path) -> None:
    ds = _sc_dataset()
    items = []
    for i in range(50):
        item = Dataset()
        item.InstanceNumber = i
        item.ImageComments = f"frame {i}"
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    ds.save_as(tmp_path / "many.dcm", enforce_file_format=True)
    full, _ = read_tag_rows(tmp_path / "many.dcm")
    cut, _ = read_tag_rows(tmp_path / "many.dcm", max_rows=30)
    assert len(cut) == 31 and cut[:30] == full[:30]
    hidden = element_count(full) - element_count(cut[:30])
    assert cut[-1] == TagRow(0, "", f"… {hidden} more elements not shown", "", "", False, hidden, MORE)
    assert element_count(cut) == element_count(full)


def test_long_values_are_cut_and_text_is_one_line(tmp_path: Path) -> None:
    ds = _sc_dataset()
    ds.ImageComments = "line one\r\nline two " + "x" * 500
    ds.StudyDescription = "bad\x1b[31mred"
    ds.save_as(tmp_path / "long.dcm", enforce_file_format=True)
    rows, _ = read_tag_rows(tmp_path / "long.dcm", max_value_chars=50)
    comments = by_tag(rows, "(0020,4000)").value
    assert len(comments) == 50 and comments.endswith("…") and comments.startswith("line one line two xxx")
    description = by_tag(rows, "(0008,1030)").value
    assert "\x1b" not in description and description == "bad\\x1b[31mred"


def test_an_unreadable_value_is_shown_not_raised(tmp_path: Path) -> None:
    ds = _sc_dataset()
    ds.save_as(tmp_path / "bad.dcm", enforce_file_format=True)
    with open(tmp_path / "bad.dcm", "ab") as handle:  # Rows (US) with 3 bytes, then a sound Columns
        handle.write(struct.pack("<HH2sH", 0x0028, 0x0010, b"US", 3) + b"\x01\x02\x03")
        handle.write(struct.pack("<HH2sH", 0x0028, 0x0011, b"US", 2) + struct.pack("<H", 512))
    with pytest.raises(BytesLengthException):  # what pydicom itself does with it
        _ = pydicom.dcmread(tmp_path / "bad.dcm").Rows
    rows, _ = read_tag_rows(tmp_path / "bad.dcm")
    bad = by_tag(rows, "(0028,0010)")
    assert bad.name == "Rows" and bad.vr == "US"
    assert bad.value.startswith("unreadable: ") and "\n" not in bad.value
    assert by_tag(rows, "(0028,0011)").value == "512"
    assert by_tag(rows, "(0010,0010)").value == "DOE^JANE"


def test_a_bad_character_set_is_a_read_warning(tmp_path: Path) -> None:
    ds = _sc_dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.save_as(tmp_path / "charset.dcm", enforce_file_format=True)
    with open(tmp_path / "charset.dcm", "ab") as handle:  # not UTF-8
        handle.write(struct.pack("<HH2sH", 0x0010, 0x4000, b"LT", 4) + b"\xff\xfeab")
    rows, notes = read_tag_rows(tmp_path / "charset.dcm")
    assert by_tag(rows, "(0010,4000)").value == "\ufffd\ufffdab"
    assert any("decode" in note for note in notes)


def test_a_photo_is_not_dicom(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(photo)
    with pytest.raises(NotDicomError, match="not a DICOM file") as caught:
        read_tag_rows(photo)
    assert caught.value.path == str(photo)


def test_open_dataset_defers_only_when_asked() -> None:
    path = dicom_test_file("CT_small.dcm")
    eager, _ = open_dataset(path)
    assert eager.get_item(0x7FE00010, keep_deferred=True).value is not None  # read as before
    lazy, _ = open_dataset(path, defer_size=DEFER_SIZE)
    assert lazy.get_item(0x7FE00010, keep_deferred=True).value is None
    assert lazy.PatientName == eager.PatientName


# --- filter -------------------------------------------------------------------------------------
def test_filter_keeps_matches_and_the_sequences_above_them() -> None:
    rows, _ = read_tag_rows(dicom_test_file("CT_small.dcm"))
    kept = filter_rows(rows, "abcd1234")
    assert [(row.depth, row.tag or row.name) for row in kept] == [(0, "(0010,1002)"), (1, "Item 1"), (2, "(0010,0020)")]
    kept = filter_rows(rows, "PATIENT'S")
    assert {row.name for row in kept} == {"Patient's Name", "Patient's Birth Date", "Patient's Sex", "Patient's Age",
                                           "Patient's Weight"}
    assert [row.tag for row in filter_rows(rows, "0028,0010")] == ["(0028,0010)"]
    assert [row.tag for row in filter_rows(rows, "00280010")] == ["(0028,0010)"]
    assert filter_rows(rows, "  ") == rows
    assert not row_matches(by_tag(rows, "(0008,0060)"), "patient")


# --- command line -------------------------------------------------------------------------------
def test_cli_dump(capsys: pytest.CaptureFixture[str]) -> None:
    path, ds = reference("CT_small.dcm")
    assert main(["tags", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "(0010,0010) PN Patient's Name  CompressedSamples^CT1" in out
    assert "(0028,0010) US Rows  128" in out and ds.Rows == 128
    at = out.index("(0010,1002) SQ Other Patient IDs Sequence  2 items")
    assert out[at + 1 : at + 3] == ["  Item 1  (2 elements)", "    (0010,0020) LO Patient ID  ABCD1234"]
    assert len(out) == len(read_tag_rows(path)[0])


def test_cli_filter_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = dicom_test_file("CT_small.dcm")
    assert main(["tags", str(path), "--filter", "abcd1234", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["depth"], r["tag"], r["name"], r["value"], r["kind"]) for r in listed] == [
        (0, "(0010,1002)", "Other Patient IDs Sequence", "2 items", "element"),
        (1, "", "Item 1", "2 elements", "item"),
        (2, "(0010,0020)", "Patient ID", "ABCD1234", "element"),
    ]
    assert main(["tags", str(path), "--filter", "patient's name"]) == 0
    assert capsys.readouterr().out == "(0010,0010) PN Patient's Name  CompressedSamples^CT1\n"


def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(photo)
    assert main(["tags", str(photo)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"zsmed: error: {photo}: not a DICOM file (no 'DICM' marker at byte 128 "
                                         "and no recognisable data set)"]
    assert main(["tags", str(tmp_path / "missing.dcm")]) == 2
    assert capsys.readouterr().err.strip() == f"zsmed: error: {tmp_path / 'missing.dcm'}: file not found"


def test_a_damaged_uid_gives_no_python_warning_lines(tmp_path: Path) -> None:
    """A transfer syntax UID with a damaged byte ('1\\2.840…'): the command lists the file and says so in its
    own lines, never Python's two-line warning with the library's path (as a fresh process shows it)."""
    import subprocess
    import sys

    from zsmed.errors import warning_text

    data = dicom_test_file("CT_small.dcm").read_bytes()
    at = data.find(b"1.2.840.10008.1.2.1")
    damaged = tmp_path / "damaged_uid.dcm"
    damaged.write_bytes(data[:at] + b"1\\2" + data[at + 3:])
    run = subprocess.run([sys.executable, "-W", "default", "-m", "zsmed", "tags", str(damaged)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and "(0010,0010)" in run.stdout
    lines = run.stderr.splitlines()
    assert lines and all(line.startswith(("# ", "zsmed: ")) for line in lines), run.stderr
    assert "Warning" not in run.stderr and "Please see" not in run.stderr
    assert warning_text("Invalid value for VR UI: '1.2.'. Please see <https://dicom.nema.org/x> for allowed "
                        "values for each VR.\n") == "Invalid value for VR UI: '1.2.'."
