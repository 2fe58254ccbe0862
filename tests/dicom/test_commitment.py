"""Storage commitment (zsmed.dicom.commitment, ``zsmed send --commit``): the PACS confirming that it keeps what was
sent — against a real Orthanc PACS, which answers on a new association to the workstation's receiver, and against
pynetdicom PACS on loopback that answer on the same association, refuse, or never answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.conftest import dicom_test_file
from tests.pacs_server import free_port, orthanc_pacs
from zsmed.cli.main import main
from zsmed.dicom.commitment import (
    FILES_STAY,
    STORAGE_COMMITMENT,
    CommitmentReport,
    CommittedSend,
    PendingCommitments,
    commit_job,
    no_answer_words,
    report_from_dataset,
    report_listener,
)
from zsmed.dicom.network import PacsNode, SendResult, send_job
from zsmed.errors import Cancelled, PacsError
from zsmed.progress import CancelToken, run_job

CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"


def _commitment_pacs(answer: Callable[[Any, Dataset], None], status: int = 0x0000) -> Iterator[PacsNode]:
    """A PACS offering storage commitment on loopback; ``answer(assoc, request)`` runs on a thread after each
    request (it may send the report on the same association, or not at all)."""
    from pynetdicom import AE, evt

    ae = AE(ae_title="COMMITPACS")
    ae.add_supported_context(STORAGE_COMMITMENT)

    def on_action(event: Any) -> tuple[int, None]:
        request = event.action_information
        if status == 0x0000:
            threading.Thread(target=answer, args=(event.assoc, request), daemon=True).start()
        return status, None

    scp = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_N_ACTION, on_action)])
    try:
        yield PacsNode("COMMITPACS", "127.0.0.1", scp.server_address[1])
    finally:
        scp.shutdown()


def _report_on_same_association(assoc: Any, request: Dataset) -> None:
    """All kept but the last, which this PACS says it does not have."""
    time.sleep(0.2)
    report = Dataset()
    report.TransactionUID = request.TransactionUID
    items = list(request.ReferencedSOPSequence)
    report.ReferencedSOPSequence = items[:-1]
    failed = Dataset()
    failed.ReferencedSOPClassUID = items[-1].ReferencedSOPClassUID
    failed.ReferencedSOPInstanceUID = items[-1].ReferencedSOPInstanceUID
    failed.FailureReason = 0x0112
    report.FailedSOPSequence = [failed]
    assoc.send_n_event_report(report, 2, STORAGE_COMMITMENT, "1.2.840.10008.1.20.1.1")


def test_a_report_on_the_same_association_answers_the_request() -> None:
    instances = [(CT_CLASS, "1.2.3.4.1"), (CT_CLASS, "1.2.3.4.2"), (CT_CLASS, "1.2.3.4.3")]
    for node in _commitment_pacs(_report_on_same_association):
        report = run_job(commit_job(instances, node, wait=10))
        assert report is not None
        assert report.committed == ("1.2.3.4.1", "1.2.3.4.2")
        assert report.failed == (("1.2.3.4.3", "the PACS does not have it"),)
        assert report.summary() == "the PACS confirmed it keeps 2 of 3; 1 not kept (storage commitment)"


def test_no_answer_in_time_is_none_and_a_cancel_stops_the_wait() -> None:
    for node in _commitment_pacs(lambda assoc, request: None):
        start = time.monotonic()
        assert run_job(commit_job([(CT_CLASS, "1.2.3.4.1")], node, wait=1.0)) is None
        assert time.monotonic() - start < 5
        token = CancelToken()
        timer = threading.Timer(0.6, token.cancel)
        timer.start()
        start = time.monotonic()
        with pytest.raises(Cancelled):
            run_job(commit_job([(CT_CLASS, "1.2.3.4.1")], node, wait=60), cancel=token)
        assert time.monotonic() - start < 5  # the wait honours the cancel, not the 60 s


def test_a_refused_request_and_a_pacs_without_commitment_are_said(tmp_path: Path) -> None:
    for node in _commitment_pacs(lambda assoc, request: None, status=0x0110):
        with pytest.raises(PacsError, match="refused the storage commitment request"):
            run_job(commit_job([(CT_CLASS, "1.2.3.4.1")], node, wait=1))
    from tests.pacs_server import storage_server

    for server in storage_server():  # stores, but offers no storage commitment
        with pytest.raises(PacsError, match="does not take storage commitment requests"):
            run_job(commit_job([(CT_CLASS, "1.2.3.4.1")], server.node, wait=1))
    with pytest.raises(PacsError, match="nothing to ask"):
        run_job(commit_job([], PacsNode("X", "127.0.0.1", 104)))


def test_a_send_says_the_files_stay_wherever_the_pacs_has_not_confirmed_keeping_them() -> None:
    """Once, and only where something was sent and the PACS has not confirmed it keeps all of it."""
    node = PacsNode("PACS", "127.0.0.1", 104)
    one = SendResult(node, sent=[Path("a.dcm")])
    confirmed = CommittedSend(one, CommitmentReport("1.2", ("1.2.3",)))
    assert confirmed.kept_all and not confirmed.unconfirmed and FILES_STAY not in confirmed.summary()
    cases = [CommittedSend(one, problem="not confirmed: the PACS refused the storage commitment request"),
             CommittedSend(one, problem=no_answer_words(node, 5, "zsmed listened on port 11113")),
             CommittedSend(one, CommitmentReport("1.2", (), (("1.2.3", "no such instance"),)))]
    for case in cases:
        assert case.unconfirmed and case.summary().count(FILES_STAY) == 1 and case.summary().endswith(FILES_STAY)
    nothing = CommittedSend(SendResult(node, problems=["a.dcm: not DICOM"]))
    assert not nothing.unconfirmed and FILES_STAY not in nothing.summary()  # nothing sent: nothing to keep


def test_a_report_for_another_transaction_is_not_taken() -> None:
    pending = PendingCommitments()
    pending.expect("1.2.9")
    report = report_from_dataset(Dataset())
    assert not pending.deliver(report)  # no transaction UID: nobody's
    ours = Dataset()
    ours.TransactionUID = "1.2.9"
    ours.ReferencedSOPSequence = []
    assert pending.deliver(report_from_dataset(ours))
    assert pending.wait("1.2.9", 0.1) is not None
    pending.expect("1.2.10")
    assert pending.wait("1.2.10", 0.1) is None


def test_a_send_names_what_it_stored_for_the_commitment_request(tmp_path: Path) -> None:
    """``SendResult.stored``: each file stored with its SOP class and instance, as the request names them."""
    from tests.pacs_server import storage_server

    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    ct = dicom_test_file("CT_small.dcm")
    for server in storage_server():
        result = run_job(send_job([ct, junk], server.node))
    assert result.stored == {ct: (CT_CLASS, str(pydicom.dcmread(ct).SOPInstanceUID))}


def test_a_port_taken_is_said(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (pytest.raises(PacsError, match=f"cannot listen for the PACS's answer on port {port}: another program"),
              report_listener("ZSMED", port)):
            pass


# --- a real PACS ------------------------------------------------------------------------------------------
@pytest.fixture()
def orthanc(tmp_path: Path) -> Iterator[tuple[PacsNode, str, int]]:
    yield from orthanc_pacs(tmp_path / "orthanc")


def test_a_real_pacs_commits_to_what_it_keeps_answering_the_receiver(
        tmp_path: Path, orthanc: tuple[PacsNode, str, int]) -> None:
    """Orthanc answers on a new association to the modality "ZSMED": the app's receiver takes the report."""
    from zsmed.dicom.receiver import Receiver, ReceiverConfig

    node, _rest, workstation = orthanc
    sent = [dicom_test_file("CT_small.dcm"), dicom_test_file("JPEG2000.dcm")]
    stored = run_job(send_job(sent, node)).stored
    assert len(stored) == 2
    never_sent = (CT_CLASS, "1.2.826.0.1.3680043.8.498.1")
    receiver = Receiver(ReceiverConfig(tmp_path / "received", "ZSMED", workstation, "127.0.0.1"))
    receiver.start()
    try:
        report = run_job(commit_job([*stored.values(), never_sent], node, wait=20))
    finally:
        receiver.stop()
    assert report is not None
    assert set(report.committed) == {str(pydicom.dcmread(p).SOPInstanceUID) for p in sent}
    assert [uid for uid, _why in report.failed] == [never_sent[1]]
    assert not list((tmp_path / "received").rglob("*.dcm"))  # a report is not a study: nothing kept as one


def test_zsmed_send_commit_listens_for_the_answer_and_says_it(
        tmp_path: Path, orthanc: tuple[PacsNode, str, int], capsys: pytest.CaptureFixture[str]) -> None:
    node, _rest, workstation = orthanc
    files = [str(dicom_test_file("CT_small.dcm")), str(dicom_test_file("MR_small.dcm"))]
    code = main(["send", *files, "--pacs", node.address(), "--calling-ae", "ZSMED", "--commit",
                 "--commit-port", str(workstation), "--commit-wait", "20"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 files sent to ORTHANC" in out
    assert "the PACS confirmed it keeps all 2 (storage commitment)" in out
    # the answer cannot arrive where nothing listens on the port the PACS calls: said, exit 1, files kept
    code = main(["send", files[0], "--pacs", node.address(), "--calling-ae", "ZSMED", "--commit",
                 "--commit-port", str(free_port()), "--commit-wait", "2"])
    captured = capsys.readouterr()
    assert code == 1
    assert "had not answered within 2 s" in captured.err and "files stay on this PC" in captured.err
