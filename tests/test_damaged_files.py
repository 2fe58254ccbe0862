"""Every command that reads DICOM files, swept over damaged copies of pydicom's real test files (cut short,
bytes flipped, zeroed: ``tests.damaged_files``): each answers in its own lines, never with a traceback or
Python's warning lines. Found this way: a report cut short mid-sequence and a header byte naming no VR used to
escape ``read-report`` and ``key-images`` as tracebacks."""

from __future__ import annotations

import contextlib
import io
import shutil
import traceback
from pathlib import Path

from tests.damaged_files import damaged_copies
from tests.pacs_server import storage_server
from zsmed.cli.main import main

REFERENCE_BUNDLE = Path(__file__).resolve().parents[1] / "export" / "reference" / "ham4_protonet_lite0_v1.zsmb"


def run(argv: list[str]) -> tuple[int | str | None, str]:
    """``zsmed ARGV`` in this process: its exit status and what it wrote on stderr; an exception that escapes
    the command is returned as its traceback (status "traceback")."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status: int | str | None = main(argv)
    except SystemExit as exc:
        status = exc.code
    except Exception:
        return "traceback", traceback.format_exc()
    return status, err.getvalue()


def test_every_reading_command_answers_a_damaged_file_in_its_own_lines(tmp_path: Path) -> None:
    files = damaged_copies(tmp_path / "damaged", seed=1, files=14)
    runs = []
    for path in files:
        runs += [["inspect", str(path)], ["tags", str(path)], ["read-report", str(path)],
                 ["deidentify", str(path), "--out", str(tmp_path / "deidentified")],
                 ["key-images", str(path), "--out", str(tmp_path / "key")]]
    runs += [["scan", str(tmp_path / "damaged")], ["reformat", str(tmp_path / "damaged")],
             ["media", str(tmp_path / "damaged"), "--out", str(tmp_path / "cd")]]
    if shutil.which("tesseract") is not None:
        runs.append(["find-text", str(tmp_path / "damaged")])
    pacs = storage_server()  # a PACS taking anything: what zsmed send makes of damaged files is zsmed's
    runs.append(["send", str(tmp_path / "damaged"), "--pacs", next(pacs).node.address()])
    if REFERENCE_BUNDLE.is_file():
        runs.append(["predict", str(REFERENCE_BUNDLE), str(tmp_path / "damaged")])
    refused = 0
    try:
        for argv in runs:
            status, err = run(argv)
            assert status != "traceback", (argv, err)
            assert "Traceback" not in err and "Warning:" not in err, (argv, err)
            refused += status not in (0, None)
    finally:
        pacs.close()  # the storage server shut down
    assert refused > len(files)  # most damaged files are refused (each in a line), not read as if whole
