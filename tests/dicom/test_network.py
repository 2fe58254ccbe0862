"""Sending to the PACS (zsmed.dicom.network, ``zsmed send`` / ``zsmed echo``): against pynetdicom's own storage
server on this machine (loopback only: the tests' network guard refuses anything else) and, where the Debian
package is installed, a real Orthanc PACS; pydicom's real files in every encoding."""

from __future__ import annotations

import json
import shutil
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tests.conftest import dicom_test_file
from tests.pacs_server import StorageServer, free_port, orthanc_pacs, storage_server
from zsmed.cli.main import main
from zsmed.dicom.network import PacsNode, echo, send_job, status_words
from zsmed.errors import ConfigError, PacsError
from zsmed.progress import CancelToken, Progress, run_job

FILES = ("CT_small.dcm", "MR_small_bigendian.dcm", "JPEG2000.dcm", "test-SR.dcm")


@pytest.fixture()
def pacs() -> Iterator[StorageServer]:
    yield from storage_server()


def test_a_pacs_address_is_read_and_checked() -> None:
    node = PacsNode.parse(" PACS_MAIN@pacs.hospital.local:104 ", "CT-READING-3")
    assert (node.ae_title, node.host, node.port, node.calling_ae) == ("PACS_MAIN", "pacs.hospital.local", 104,
                                                                      "CT-READING-3")
    assert node.address() == "PACS_MAIN@pacs.hospital.local:104" and str(node) == "PACS_MAIN at pacs.hospital.local:104"
    assert PacsNode.parse("PACS@[fd00::5]:11112").host == "fd00::5"
    assert PacsNode.parse("PACS@[fd00::5]:11112").address() == "PACS@[fd00::5]:11112"
    assert PacsNode.parse("PACS@host:104").calling_ae == "ZSMED"
    for bad, said in (("pacs.local:104", "AE_TITLE@HOST:PORT"), ("PACS@host", "AE_TITLE@HOST:PORT"),
                      ("PACS@host:http", "must be a number"), ("PACS@host:0", "1 to 65535"),
                      ("A_TITLE_OF_17_CHR@host:104", "1 to 16"), ("BACK\\SLASH@host:104", "1 to 16")):
        with pytest.raises(ConfigError, match=said):
            PacsNode.parse(bad)
    with pytest.raises(ConfigError, match="this workstation's AE title"):
        PacsNode.parse("PACS@host:104", "X" * 17)


def test_statuses_in_words() -> None:
    assert "out of resources" in status_words(0xA701)
    assert "does not match" in status_words(0xA900)
    assert "cannot understand" in status_words(0xC123)
    assert status_words(0x0122) == "the PACS does not support this kind of object"
    assert status_words(0xFE00).endswith("0xFE00")


def test_echo_answers_and_each_failure_is_said(pacs: StorageServer) -> None:
    assert 0.0 < echo(pacs.node) < 10.0
    closed = PacsNode("TESTPACS", "127.0.0.1", free_port())
    with pytest.raises(PacsError, match="connection was refused"):
        echo(closed, timeout=5)
    with pytest.raises(PacsError, match="AE title called is not its own"):
        echo(PacsNode("OTHERPACS", "127.0.0.1", pacs.node.port), timeout=5)
    # a port that takes the connection but never speaks DICOM
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with pytest.raises(PacsError, match=r"did not answer as a DICOM node|broke off"):
            echo(PacsNode("TESTPACS", "127.0.0.1", silent.getsockname()[1]), timeout=1.5)


def test_a_pacs_that_does_not_know_this_workstation_says_so() -> None:
    for server in storage_server(calling=["REGISTERED"]):
        with pytest.raises(PacsError, match="does not know this workstation's AE title"):
            echo(server.node, timeout=5)
        assert echo(PacsNode(server.node.ae_title, "127.0.0.1", server.node.port, "REGISTERED")) > 0


def test_every_encoding_arrives_as_the_same_object(tmp_path: Path, pacs: StorageServer) -> None:
    files = [dicom_test_file(name) for name in FILES]
    (tmp_path / "notes.txt").write_text("not DICOM")
    result = run_job(send_job([*files, tmp_path / "notes.txt"], pacs.node))
    assert result.sent == files and not result.warnings
    assert result.problems == [f"{tmp_path / 'notes.txt'}: not a DICOM file (no 'DICM' marker at byte 128 and no "
                               "recognisable data set)"]
    assert result.summary() == f"4 files sent to TESTPACS at 127.0.0.1:{pacs.node.port}; 1 not sent"
    by_uid = {str(ds.SOPInstanceUID): ds for ds in pacs.received}
    for path in files:
        original = pydicom.dcmread(path)
        arrived = by_uid[str(original.SOPInstanceUID)]
        assert arrived.SOPClassUID == original.SOPClassUID
        assert arrived.PatientName == original.PatientName
        # this server takes only uncompressed: JPEG 2000 decompressed, big endian turned, the values the same
        assert arrived.file_meta.TransferSyntaxUID in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
        if "PixelData" in original:
            assert np.array_equal(arrived.pixel_array, original.pixel_array)
        else:
            assert arrived.ContentSequence == original.ContentSequence
    assert pacs.releases == 1  # one association for all, released


def test_a_pacs_that_takes_the_compressed_encoding_gets_the_files_bytes() -> None:
    for server in storage_server(compressed=True):
        source = dicom_test_file("JPEG2000.dcm")
        result = run_job(send_job([source], server.node))
        assert result.sent == [source]
        arrived = server.received[0]
        assert arrived.file_meta.TransferSyntaxUID == JPEG2000 == pydicom.dcmread(source).file_meta.TransferSyntaxUID
        assert arrived.PixelData == pydicom.dcmread(source).PixelData


def test_a_refused_file_is_one_line_and_the_others_go_on(pacs: StorageServer) -> None:
    pacs.status = lambda ds: 0xA700 if ds.Modality == "MR" else (0xB000 if ds.Modality == "SR" else 0x0000)
    files = [dicom_test_file(name) for name in FILES]
    result = run_job(send_job(files, pacs.node))
    assert len(result.sent) == 3 and dicom_test_file("MR_small_bigendian.dcm") not in result.sent
    assert result.problems == [f"{dicom_test_file('MR_small_bigendian.dcm')}: not stored: the PACS is out of "
                               "resources (disk full?)"]
    assert result.warnings == [f"{dicom_test_file('test-SR.dcm')}: the PACS changed some of its values to store it"]


def test_a_dicomdir_is_skipped_and_cancelling_stops_between_files(tmp_path: Path, pacs: StorageServer) -> None:
    dicomdir = next(p for p in dicom_test_file("DICOMDIR").parent.rglob("DICOMDIR"))
    result = run_job(send_job([dicomdir, dicom_test_file("CT_small.dcm")], pacs.node))
    assert result.skipped == 1 and len(result.sent) == 1 and not result.problems
    assert "1 DICOMDIR skipped" in result.summary()

    token = CancelToken()
    seen: list[Progress] = []

    def cancel_after_the_first(progress: Progress) -> None:
        seen.append(progress)
        if progress.done == 1 and progress.message != "reading":
            token.cancel()

    from zsmed.errors import Cancelled

    with pytest.raises(Cancelled):
        run_job(send_job([dicom_test_file(name) for name in FILES], pacs.node), on_progress=cancel_after_the_first,
                cancel=token)
    assert len(pacs.received) == 2  # the CT above and the first of these
    time.sleep(0.2)
    assert pacs.releases == 2  # released, not left hanging


def test_cli_send_and_echo(tmp_path: Path, pacs: StorageServer, isolated_dirs: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    for name in ("CT_small.dcm", "test-SR.dcm"):
        shutil.copy(dicom_test_file(name), folder / name)
    address = pacs.node.address()
    assert main(["echo", "--pacs", address]) == 0
    assert capsys.readouterr().out.startswith(f"{pacs.node} answered the echo in ")
    assert main(["send", str(folder), "--pacs", address]) == 0
    assert capsys.readouterr().out.strip() == f"2 files sent to {pacs.node}"
    assert len(pacs.received) == 2

    # no PACS set anywhere: one line saying where to set it
    assert main(["echo"]) == 2
    assert capsys.readouterr().err.strip() == ("zsmed: error: no PACS is set: give --pacs AE_TITLE@HOST:PORT, or set "
                                               "it in the app's Settings")
    # the PACS of this PC's settings, and the workstation's AE title from them
    (isolated_dirs / "data").mkdir(exist_ok=True)
    (isolated_dirs / "data" / "site.json").write_text(json.dumps({"pacs": address, "pacs_calling_ae": "READING3"}))
    assert main(["echo"]) == 0
    assert capsys.readouterr().out.strip().endswith("(as READING3)")
    closed = f"TESTPACS@127.0.0.1:{free_port()}"
    assert main(["send", str(folder), "--pacs", closed]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zsmed: error: cannot reach the PACS") and "refused" in err[0]
    assert main(["echo", "--pacs", "nonsense"]) == 2
    assert "AE_TITLE@HOST:PORT" in capsys.readouterr().err
    (isolated_dirs / "data" / "site.json").write_text(json.dumps({"pacs": "PACS@host:99999"}))
    assert main(["echo"]) == 2
    err_line = capsys.readouterr().err.strip()
    assert "site.json" in err_line and "1 to 65535" in err_line


# --- a real PACS ------------------------------------------------------------------------------------------
@pytest.fixture()
def orthanc(tmp_path: Path) -> Iterator[tuple[PacsNode, str, int]]:
    yield from orthanc_pacs(tmp_path)


def test_a_real_pacs_stores_what_zsmed_saved(tmp_path: Path, orthanc: tuple[PacsNode, str, int]) -> None:
    node, rest, _ = orthanc
    assert echo(node) > 0
    for _ in range(12):  # Orthanc rejects and hangs up at once; pynetdicom sees the hang-up first one time in ten
        with pytest.raises(PacsError, match="AE title called is not its own"):
            echo(PacsNode("NOTORTHANC", node.host, node.port))
    # a key image note zsmed writes for the PACS, with the image it points at
    image = dicom_test_file("CT_small.dcm")
    assert main(["key-images", str(image), "--note", "nodule", "--out", str(tmp_path / "ko"),
                 "--reader", "Dr Test"]) == 0
    note = next((tmp_path / "ko").glob("*.dcm"))
    result = run_job(send_job([image, note, dicom_test_file("JPEG2000.dcm")], node))
    assert len(result.sent) == 3 and not result.problems
    stored = set()
    for instance in json.load(urllib.request.urlopen(f"{rest}/instances", timeout=5)):
        tags = json.load(urllib.request.urlopen(f"{rest}/instances/{instance}/simplified-tags", timeout=5))
        stored.add(tags["SOPInstanceUID"])
    expected = {str(pydicom.dcmread(p).SOPInstanceUID) for p in (image, note, dicom_test_file("JPEG2000.dcm"))}
    assert stored == expected


def test_a_real_pacs_sends_a_study_to_zsmed(tmp_path: Path, orthanc: tuple[PacsNode, str, int]) -> None:
    """The radiologist's "send to ZSMED" in the PACS: Orthanc stores the study on zsmed's receiver (C-STORE)."""
    from zsmed.dicom.receiver import Batch, Receiver, ReceiverConfig

    node, rest, workstation = orthanc
    sources = [dicom_test_file("CT_small.dcm"), dicom_test_file("JPEG2000.dcm")]
    assert len(run_job(send_job(sources, node)).sent) == 2
    batches: list[Batch] = []
    receiver = Receiver(ReceiverConfig(tmp_path / "received", "ZSMED", workstation, "127.0.0.1", ("ORTHANC",)),
                        batches.append)
    receiver.start()
    try:
        instances = json.load(urllib.request.urlopen(f"{rest}/instances", timeout=5))
        request = urllib.request.Request(f"{rest}/modalities/zsmed/store", data=json.dumps(instances).encode(),
                                         method="POST")
        json.load(urllib.request.urlopen(request, timeout=30))
        deadline = time.monotonic() + 10
        while sum(len(batch.stored) for batch in batches) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        receiver.stop()
    # Orthanc opens an association per study
    assert {batch.caller for batch in batches} == {"ORTHANC"} and not any(batch.refused for batch in batches)
    received = {str(pydicom.dcmread(path).SOPInstanceUID): path for batch in batches for path in batch.stored}
    assert len(received) == 2
    for source in sources:
        original = pydicom.dcmread(source)
        assert pydicom.dcmread(received[str(original.SOPInstanceUID)]).PixelData == original.PixelData
