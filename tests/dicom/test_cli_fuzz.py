"""``zsmed inspect`` / ``zsmed scan`` from the command line, crash containment, and fuzzing."""

from __future__ import annotations

import hashlib
import json
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.dicom.conftest import data
from zsmed.cli.main import main
from zsmed.dicom.safe import SafeDecoder
from zsmed.errors import DecoderCrashError, NoPixelDataError

FUZZ_SOURCES = [
    "CT_small.dcm",
    "MR_small_RLE.dcm",
    "emri_small_RLE.dcm",
    "SC_rgb_rle.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPGLosslessP14SV1_1s_1f_8b.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "JPGExtended.dcm",
    "OBXXXX1A_rle.dcm",
    "liver_1frame.dcm",
    "image_dfl.dcm",
    "MR_small_bigendian.dcm",
    "rtplan.dcm",
]


def _inspect_json(capsys: pytest.CaptureFixture[str], *files: str) -> list[dict]:
    assert main(["inspect", "--json", *files]) == 0
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_inspect_json_matches_pydicom(capsys: pytest.CaptureFixture[str]) -> None:
    names = ["CT_small.dcm", "emri_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm", "US1_J2KR.dcm", "rtplan.dcm"]
    records = _inspect_json(capsys, *[data(n) for n in names])
    assert len(records) == len(names)
    for name, rec in zip(names, records, strict=True):
        assert rec["file"] == data(name)
        ds = pydicom.dcmread(data(name))
        assert rec["sop_class"] == ds.SOPClassUID
        assert rec["transfer_syntax"] == ds.file_meta.TransferSyntaxUID
        if "PixelData" not in ds:
            assert "pixel_sha256" not in rec and rec["error"].startswith("NoPixelDataError")
            continue
        arr = ds.pixel_array
        assert rec["pixel_sha256"] == hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
        assert (rec["rows"], rec["cols"], rec["bits_allocated"]) == (ds.Rows, ds.Columns, ds.BitsAllocated)
        assert rec["photometric"] == ds.PhotometricInterpretation
        assert rec["modality"] == ds.Modality
        assert rec["frames"] == int(ds.get("NumberOfFrames", 1) or 1)


def test_inspect_bad_inputs_exit_zero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "zero.dcm").write_bytes(b"")
    (tmp_path / "rand.dcm").write_bytes(bytes(random.Random(1).randrange(256) for _ in range(3000)))
    records = _inspect_json(capsys, str(tmp_path / "zero.dcm"), str(tmp_path / "rand.dcm"), str(tmp_path / "nope"))
    assert [r["error"].split(":")[0] for r in records] == ["NotDicomError", "NotDicomError", "InputFileError"]
    assert all("\n" not in r["error"] and "Traceback" not in r["error"] for r in records)


def test_inspect_usage_error_is_nonzero() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["inspect"])
    assert exc.value.code != 0


def test_scan_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--json", data("DICOMDIR")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["instances"] == 31
    assert main(["scan", data("DICOMDIR")]) == 0
    assert "31 instances" in capsys.readouterr().out


def test_safe_decoder_contains_abort_and_hang() -> None:
    with SafeDecoder(timeout=3) as dec:
        with pytest.raises(DecoderCrashError, match="SIGABRT"):
            dec.call("abort")
        assert dec.call("ping") == "pong"  # restarted
        with pytest.raises(DecoderCrashError, match="longer than"):
            dec.call("sleep", 30, timeout=1)
        assert dec.call("ping") == "pong"
        with pytest.raises(NoPixelDataError):
            dec.model_image(data("rtplan.dcm"))
        img = dec.model_image(data("CT_small.dcm"))
        assert img.shape == (128, 128)
        assert dec.restarts == 2


def test_rust_panic_is_caught_in_process() -> None:
    """pylibjpeg-rle panics (BaseException) on some crafted segments; it must not escape as such."""
    from zsmed.dicom.decode import load_model_image

    ds = pydicom.dcmread(data("MR_small_RLE.dcm"))
    frame = bytearray(ds.PixelData)
    # header of the first fragment: bogus segment count and offsets beyond the data
    start = 8 + 8 + 8  # item tag+len (BOT empty) + item tag+len of frame 1
    struct.pack_into("<I", frame, start, 15)
    for k in range(15):
        struct.pack_into("<I", frame, start + 4 + 4 * k, 0xFFFFFF0 - k)
    ds.PixelData = bytes(frame)
    out = Path(data("MR_small_RLE.dcm")).parent  # read-only location is fine: we write to tmp
    del out
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "panic.dcm"
        ds.save_as(path, enforce_file_format=False)
        try:
            load_model_image(path)
        except Exception as exc:  # a zsmed error, not a PanicException
            assert type(exc).__module__ == "zsmed.errors"


def _mutate(raw: bytes, rng: random.Random) -> bytes:
    data_ = bytearray(raw)
    kind = rng.randrange(4)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 20)):
            pos = rng.randrange(len(data_))
            data_[pos] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        data_ = data_[: rng.randrange(1, len(data_))]
    elif kind == 2:  # bogus length field: overwrite a 4-byte (or 2-byte) field after a tag
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(132, max(133, len(data_) - 8))
            value = rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, len(data_) * 2, rng.randrange(1 << 32)])
            data_[pos : pos + 4] = struct.pack("<I", value)
    else:  # byte runs smashed
        pos = rng.randrange(len(data_))
        data_[pos : pos + rng.randint(1, 64)] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(data_)


def _fuzz(tmp_path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    sources = [Path(data(n)).read_bytes() for n in FUZZ_SOURCES]
    files = []
    for k in range(count):
        path = tmp_path / f"fuzz_{k:05d}.dcm"
        path.write_bytes(_mutate(sources[k % len(sources)], rng))
        files.append(str(path))
    proc = subprocess.run(
        [sys.executable, "-m", "zsmed", "inspect", "--json", "--timeout", "20", *files],
        capture_output=True,
        text=True,
        timeout=60 + count,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in records] == files  # every one answered, in order
    for rec in records:
        assert ("pixel_sha256" in rec) != ("error" in rec)
        if "error" in rec:
            assert rec["error"] and "\n" not in rec["error"] and "Traceback" not in rec["error"]
    assert "Traceback" not in proc.stderr


def test_fuzz_inspect_default(tmp_path: Path) -> None:
    _fuzz(tmp_path, 280, seed=1234)


@pytest.mark.slow
def test_fuzz_inspect_thousands(tmp_path: Path) -> None:
    _fuzz(tmp_path, 3000, seed=99)
