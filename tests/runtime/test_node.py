"""zsmed as an AI node beside the PACS (``zsmed serve``, zsmed.runtime.node): a CT sent from the "PACS" (zsmed's
sender) is received, classified with a reference bundle, logged, reported as DICOM SR and the report sent to
the PACS (pynetdicom's storage server), on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.conftest import dicom_test_file
from tests.pacs_server import StorageServer, free_port, storage_server
from zsmed.cli.main import main
from zsmed.dicom.network import PacsNode, send_job
from zsmed.progress import run_job
from zsmed.runtime.node import process_received_job
from zsmed.runtime.predict import load_predictor
from zsmed.store import open_case_log

BUNDLE = Path(__file__).resolve().parents[2] / "export" / "reference" / "ham4_protonet_lite0_v1.zsmb"


def test_process_received_classifies_logs_reports_and_sends(tmp_path: Path) -> None:
    predictor = load_predictor(BUNDLE, backend="onnxruntime")
    source = dicom_test_file("CT_small.dcm")
    for pacs in storage_server():
        with open_case_log(tmp_path / "log.sqlite") as log:
            outcome = run_job(process_received_job(predictor, [source], caselog=log, reports_dir=tmp_path / "sr",
                                                   pacs=pacs.node))
        assert len(outcome.results) == 1 and outcome.results[0].error is None
        assert len(outcome.logged) == 1
        assert outcome.reports is not None and len(outcome.reports.reports) == 1
        assert outcome.sent is not None and outcome.sent.sent == outcome.reports.reports
        (report,) = pacs.received
        evidence = report.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == pydicom.dcmread(source).SOPInstanceUID
        lines = outcome.lines()
        assert lines[0].startswith("CT_small.dcm: ") and lines[-1] == f"1 file sent to {pacs.node}"


@pytest.fixture()
def pacs() -> Iterator[StorageServer]:
    yield from storage_server()


def test_serve_answers_the_pacs_with_reports(tmp_path: Path, isolated_dirs: Path, pacs: StorageServer,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    codes: list[int] = []
    argv = ["serve", str(BUNDLE), "--into", str(tmp_path / "in"), "--port", str(port), "--bind", "127.0.0.1",
            "--seconds", "8", "--log", str(tmp_path / "log.sqlite"), "--send-results", "--pacs", pacs.node.address()]
    thread = threading.Thread(target=lambda: codes.append(main(argv)))
    thread.start()
    time.sleep(1.5)
    source = dicom_test_file("CT_small.dcm")
    assert run_job(send_job([source], PacsNode("ZSMED", "127.0.0.1", port, "PACS_MAIN"))).sent == [source]
    thread.join(timeout=40)
    assert codes == [0]
    assert len(pacs.received) == 1 and pacs.received[0].Modality == "SR"
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Serving ham4_protonet_lite0_v1") and out[1].startswith("Receiving as ZSMED")
    assert "Received 1 file from PACS_MAIN (1 study: CompressedSamples^CT1 · 20040119 · CT)" in out
    assert any(line.startswith("  1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322.dcm: ") for line in out)
    assert f"  1 file sent to {pacs.node}" in out
    with open_case_log(tmp_path / "log.sqlite", readonly=True) as log:
        assert log.count() == 1
    assert len(list((tmp_path / "in" / "results").glob("*.dcm"))) == 1


def test_serve_has_the_pacs_confirm_it_keeps_the_reports(tmp_path: Path, isolated_dirs: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A real PACS (Orthanc) sends a study to the node ("ZSMED"), gets the reports back and confirms, on a new
    connection to the node's port, that it keeps them (storage commitment)."""
    import json
    import urllib.request

    from tests.pacs_server import orthanc_pacs

    for node, rest, port in orthanc_pacs(tmp_path / "orthanc"):
        assert run_job(send_job([dicom_test_file("CT_small.dcm")], node)).sent
        codes: list[int] = []
        argv = ["serve", str(BUNDLE), "--into", str(tmp_path / "in"), "--port", str(port), "--bind", "127.0.0.1",
                "--seconds", "10", "--send-results", "--pacs", node.address(), "--commit"]
        thread = threading.Thread(target=lambda codes=codes, argv=argv: codes.append(main(argv)))
        thread.start()
        time.sleep(1.5)
        instances = json.load(urllib.request.urlopen(f"{rest}/instances", timeout=5))
        request = urllib.request.Request(f"{rest}/modalities/zsmed/store", data=json.dumps(instances).encode(),
                                         method="POST")
        json.load(urllib.request.urlopen(request, timeout=30))
        thread.join(timeout=60)
        assert codes == [0]
        out = capsys.readouterr().out.splitlines()
        assert f"  1 file sent to {node}; the PACS confirmed it keeps it (storage commitment)" in out, out
        assert len(json.load(urllib.request.urlopen(f"{rest}/instances", timeout=5))) == 2  # the CT and its SR
