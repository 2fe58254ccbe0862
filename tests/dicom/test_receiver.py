"""Receiving studies from the PACS (zsmed.dicom.receiver, ``zsmed receive``): zsmed's own sender and pynetdicom
as the PACS, on loopback; pydicom's real files in several encodings."""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.conftest import dicom_test_file
from tests.pacs_server import free_port
from zsmed.cli.main import main
from zsmed.dicom import receiver as receiver_module
from zsmed.dicom.network import PacsNode, send_job
from zsmed.dicom.receiver import Batch, Receiver, ReceiverConfig, parse_callers, safe_part, stored_path
from zsmed.errors import ConfigError, PacsError
from zsmed.progress import run_job
from zsmed.site import SiteConfig

FILES = ("CT_small.dcm", "JPEG2000.dcm", "MR_small_bigendian.dcm", "test-SR.dcm")


class Listening:
    """A receiver on a free loopback port and the batches it reported."""

    def __init__(self, folder: Path, callers: tuple[str, ...] = ()) -> None:
        self.batches: list[Batch] = []
        self.receiver = Receiver(ReceiverConfig(folder, "ZSMED", 0, "127.0.0.1", callers), self.batches.append)
        self.receiver.start()

    def node(self, caller: str = "PACS_MAIN", called: str = "ZSMED") -> PacsNode:
        return PacsNode(called, "127.0.0.1", self.receiver.port, caller)

    def wait(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.batches) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.batches) >= count


@pytest.fixture()
def listening(tmp_path: Path) -> Iterator[Listening]:
    here = Listening(tmp_path / "received")
    try:
        yield here
    finally:
        here.receiver.stop()


def test_names_are_made_safe() -> None:
    assert safe_part("1.2.840.113619.2.55", "x") == "1.2.840.113619.2.55"
    assert safe_part("../../etc/passwd", "x") == "etc_passwd"
    assert safe_part("  ", "no-id") == "no-id"
    assert safe_part("A" * 100, "x") == "A" * 64
    path = stored_path(Path("/r"), "ID 42/..", "1.2", "1.3", "1.4")
    assert path == Path("/r/ID_42/1.2/1.3/1.4.dcm")
    assert parse_callers("PACS_MAIN, CT_SCANNER ,") == ("PACS_MAIN", "CT_SCANNER")
    with pytest.raises(ConfigError):
        parse_callers("A_TITLE_MUCH_TOO_LONG_FOR_DICOM")


def test_each_object_arrives_as_it_was_sent_and_is_reported(tmp_path: Path, listening: Listening) -> None:
    files = [dicom_test_file(name) for name in FILES]
    result = run_job(send_job(files, listening.node()))
    assert len(result.sent) == 4 and not result.problems
    listening.wait(1)
    batch = listening.batches[0]
    assert batch.caller == "PACS_MAIN" and len(batch.stored) == 4 and not batch.refused
    for source in files:
        original = pydicom.dcmread(source)
        kept = stored_path(tmp_path / "received", str(original.get("PatientID", "")), original.StudyInstanceUID,
                           original.SeriesInstanceUID, original.SOPInstanceUID)
        assert kept in batch.stored
        arrived = pydicom.dcmread(kept)
        # the receiver takes every encoding: what arrives is the sender's own, values and pixel bytes unchanged
        assert arrived.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert arrived.SOPInstanceUID == original.SOPInstanceUID and arrived.PatientName == original.PatientName
        if "PixelData" in original:
            assert arrived.PixelData == original.PixelData
    assert not list((tmp_path / "received").rglob("*.part"))  # nothing half-written left behind
    assert batch.summary().startswith("Received 4 files from PACS_MAIN (4 studies: "
                                      "CompressedSamples^CT1 · 20040119 · CT")
    assert len(batch.folders) == 4 and all(folder.parent.parent == tmp_path / "received" for folder in batch.folders)

    # the same study again: kept once, the PACS told all is well
    again = run_job(send_job(files[:1], listening.node()))
    assert again.sent == files[:1]
    listening.wait(2)
    assert listening.batches[1].duplicates == 1 and listening.batches[1].stored == []
    assert listening.batches[1].summary() == "Received 0 files from PACS_MAIN; 1 already here"


def test_a_full_disk_is_answered_so_the_pacs_keeps_the_image(tmp_path: Path, listening: Listening,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(receiver_module, "_write_atomically", full)
    source = dicom_test_file("CT_small.dcm")
    result = run_job(send_job([source], listening.node()))
    assert result.problems == [f"{source}: not stored: the PACS is out of resources (disk full?)"]
    listening.wait(1)
    assert listening.batches[0].refused and "No space left on device" in listening.batches[0].refused[0]
    assert "1 refused" in listening.batches[0].summary()


def test_a_nearly_full_disk_is_not_filled(tmp_path: Path, listening: Listening,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(receiver_module.shutil, "disk_usage", lambda place: usage(10 << 30, 10 << 30, 300 << 20))
    source = dicom_test_file("CT_small.dcm")
    result = run_job(send_job([source], listening.node()))
    assert result.problems == [f"{source}: not stored: the PACS is out of resources (disk full?)"]
    listening.wait(1)
    (reason,) = listening.batches[0].refused
    assert reason.endswith(f"not kept: under 500 MB would be left free on the disk of {tmp_path / 'received'}")
    assert not list((tmp_path / "received").rglob("*.dcm"))


def test_only_the_callers_allowed_and_only_its_own_ae_title(tmp_path: Path) -> None:
    here = Listening(tmp_path / "received", callers=("PACS_MAIN",))
    try:
        source = dicom_test_file("CT_small.dcm")
        with pytest.raises(PacsError, match="does not know this workstation's AE title"):
            run_job(send_job([source], here.node(caller="LAPTOP")))
        with pytest.raises(PacsError, match="AE title called is not its own"):
            run_job(send_job([source], here.node(called="OTHER")))
        assert run_job(send_job([source], here.node())).sent == [source]
    finally:
        here.receiver.stop()


def test_a_port_taken_is_said(tmp_path: Path, listening: Listening) -> None:
    other = Receiver(ReceiverConfig(tmp_path / "x", "ZSMED", listening.receiver.port, "127.0.0.1"))
    with pytest.raises(PacsError, match=f"cannot receive on port {listening.receiver.port}: another program listens"):
        other.start()
    assert not other.running


def test_the_settings_say_how_to_receive(isolated_dirs: Path) -> None:
    assert SiteConfig().receiver_config() is None
    config = SiteConfig(receive_port="11112", pacs_calling_ae="CT3", receive_from="PACS_MAIN").receiver_config()
    assert config is not None
    assert (config.ae_title, config.port, config.allowed_callers) == ("CT3", 11112, ("PACS_MAIN",))
    assert config.folder == isolated_dirs / "data" / "received"
    assert not config.folder.exists()  # made when a study arrives, not when the settings are read
    for port, said in (("abc", "must be a number"), ("70000", "1 to 65535")):
        with pytest.raises(ConfigError, match=said):
            SiteConfig(receive_port=port)


def test_cli_receive_then_send(tmp_path: Path, capsys: pytest.CaptureFixture[str], isolated_dirs: Path) -> None:
    port = free_port()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(main(
        ["receive", "--into", str(tmp_path / "in"), "--port", str(port), "--bind", "127.0.0.1", "--seconds", "3"])))
    thread.start()
    time.sleep(0.8)
    source = dicom_test_file("CT_small.dcm")
    result = run_job(send_job([source], PacsNode("ZSMED", "127.0.0.1", port, "PACS_MAIN")))
    thread.join(timeout=20)
    assert result.sent == [source] and codes == [0]
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == (f"Receiving as ZSMED on port {port} from any caller into {tmp_path / 'in'} (Ctrl+C stops)")
    assert out[1] == "Received 1 file from PACS_MAIN (1 study: CompressedSamples^CT1 · 20040119 · CT)"
    assert len(list((tmp_path / "in").rglob("*.dcm"))) == 1
