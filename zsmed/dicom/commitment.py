"""Storage commitment: the PACS confirming that it keeps what zsmed sent (DICOM Storage Commitment Push
Model, PS3.4 Annex J; pynetdicom, MIT).

A C-STORE's success says the PACS received an object, not that it archived it. Where a hospital wants
the confirmation (an AI node's reports, a reading room's measurements), zsmed asks for it after sending:
one N-ACTION listing the objects by SOP class and instance UID under a transaction UID; the PACS answers
with an N-EVENT-REPORT naming those it keeps and those it does not (with its reason). PACS send that
answer either on the same association, while it is open, or, as most do (Orthanc among them), later on a
new association to this workstation's AE title, so the workstation must be listening then: the app's
receiver (``zsmed.dicom.receiver.Receiver``) takes it, or ``report_listener`` for the command line.
Either way the report is handed to the request waiting for it through ``PENDING``.

Nothing here deletes anything: zsmed keeps its files whatever the PACS answers; the answer is said.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsmed.dicom.network import (
    DEFAULT_TIMEOUT_S,
    PLAIN_SYNTAXES,
    PacsNode,
    SendResult,
    TlsConfig,
    associate,
    send_job,
    status_words,
)
from zsmed.errors import PacsError
from zsmed.progress import Job, Progress

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"  # Storage Commitment Push Model SOP Class
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"  # its well-known SOP Instance
DEFAULT_WAIT_S = 60.0  # how long a request waits for the PACS's answer before saying it has none yet

# Failure Reason (0008,1197) in words (PS3.4 J.3.2.1.1.1)
_FAILURE_WORDS = {
    0x0110: "the PACS failed to keep it (processing failure)",
    0x0112: "the PACS does not have it",
    0x0119: "the PACS has it under another kind of object",
    0x0122: "the PACS does not keep this kind of object",
    0x0124: "the PACS may not keep it (refused, not authorised)",
    0x0131: "the PACS does not support this transfer of responsibility",
    0xA770: "the PACS could not find the object (transfer failed)",
}

Instance = tuple[str, str]  # (SOP Class UID, SOP Instance UID)


def failure_words(reason: int) -> str:
    return _FAILURE_WORDS.get(reason, f"the PACS did not keep it (reason 0x{reason:04X})")


@dataclass(frozen=True)
class CommitmentReport:
    """The PACS's answer to one request: the instance UIDs it keeps and those it does not, with its reason."""

    transaction_uid: str
    committed: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        total = len(self.committed) + len(self.failed)
        if not self.failed:
            return f"the PACS confirmed it keeps {'it' if total == 1 else f'all {total}'} (storage commitment)"
        return (f"the PACS confirmed it keeps {len(self.committed)} of {total}; "
                f"{len(self.failed)} not kept (storage commitment)")


def report_from_dataset(ds: Any) -> CommitmentReport:
    """An N-EVENT-REPORT's event information as a ``CommitmentReport``."""
    committed = tuple(str(item.get("ReferencedSOPInstanceUID", "")) for item in ds.get("ReferencedSOPSequence", []))
    failed = tuple((str(item.get("ReferencedSOPInstanceUID", "")),
                    failure_words(int(item.get("FailureReason", 0x0110)))) for item in ds.get("FailedSOPSequence", []))
    return CommitmentReport(str(ds.get("TransactionUID", "")), committed, failed)


class PendingCommitments:
    """Requests waiting for their report, by transaction UID; a report may arrive on any thread (pynetdicom's)
    before or after its request starts waiting."""

    def __init__(self) -> None:
        self._reports: dict[str, CommitmentReport | None] = {}
        self._changed = threading.Condition()

    def expect(self, transaction_uid: str) -> None:
        with self._changed:
            self._reports.setdefault(transaction_uid, None)

    def deliver(self, report: CommitmentReport) -> bool:
        """Keep ``report`` for the request waiting for it; False where no request here expects it."""
        with self._changed:
            if report.transaction_uid not in self._reports:
                return False
            self._reports[report.transaction_uid] = report
            self._changed.notify_all()
            return True

    def wait(self, transaction_uid: str, timeout: float) -> CommitmentReport | None:
        """The report once it has arrived (taken out), else None after ``timeout`` seconds (still expected)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._reports.get(transaction_uid) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return self._reports.pop(transaction_uid)

    def forget(self, transaction_uid: str) -> None:
        with self._changed:
            self._reports.pop(transaction_uid, None)


PENDING = PendingCommitments()  # the process's requests: the receiver and the request's own association deliver here


def on_event_report(event: Any) -> tuple[int, None]:
    """pynetdicom's ``EVT_N_EVENT_REPORT`` handler: a storage commitment report handed to its request."""
    if str(event.request.AffectedSOPClassUID) != STORAGE_COMMITMENT:
        return 0x0112, None  # no such SOP instance: nothing else is reported to zsmed
    try:
        report = report_from_dataset(event.event_information)
    except Exception:  # a malformed report: the PACS hears it was not processed, the request keeps waiting
        return 0x0110, None
    PENDING.deliver(report)
    return 0x0000, None


def report_contexts(ae: Any) -> None:
    """Let ``ae`` (a listening AE) take storage commitment reports: the PACS calls in the SCP role."""
    ae.add_supported_context(STORAGE_COMMITMENT, list(PLAIN_SYNTAXES), scu_role=False, scp_role=True)


def _request(instances: Sequence[Instance], transaction_uid: str) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.TransactionUID = transaction_uid
    items = []
    for sop_class, sop_uid in instances:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_uid
        items.append(item)
    ds.ReferencedSOPSequence = items
    return ds


def commit_job(instances: Sequence[Instance], node: PacsNode, *, timeout: float = DEFAULT_TIMEOUT_S,
               wait: float = DEFAULT_WAIT_S, pending: PendingCommitments = PENDING) -> Job[CommitmentReport | None]:
    """Ask the PACS to commit to keeping ``instances`` and wait up to ``wait`` seconds for its answer, on this
    association or (through ``pending``) on a new one to this workstation; yields ``Progress`` every half second,
    so a cancellation stops the wait. None where no answer came in time; ``PacsError`` where the PACS refused
    the request or cannot be reached."""
    from pydicom.uid import generate_uid
    from pynetdicom import evt

    if not instances:
        raise PacsError("nothing to ask the PACS to keep: no DICOM object was sent")
    transaction_uid = generate_uid()
    pending.expect(transaction_uid)
    yield Progress(0, 1, f"asking {node} to confirm it keeps {len(instances)} object{'s' * (len(instances) != 1)}")
    try:
        assoc = associate(node, [(STORAGE_COMMITMENT, PLAIN_SYNTAXES)], timeout,
                          handlers=[(evt.EVT_N_EVENT_REPORT, on_event_report)], offering="storage commitment requests")
        try:
            status, _reply = assoc.send_n_action(_request(instances, transaction_uid), 1, STORAGE_COMMITMENT,
                                                 STORAGE_COMMITMENT_INSTANCE)
            if status is None or "Status" not in status:
                raise PacsError(f"the PACS {node} did not answer the storage commitment request within {timeout:g} s")
            code = int(status.Status)
            if code != 0x0000:
                raise PacsError(f"the PACS {node} refused the storage commitment request: {status_words(code)}")
            # the answer may come on this association while it is open: keep it open for the wait
            deadline = time.monotonic() + wait
            while True:
                report = pending.wait(transaction_uid, min(0.5, max(0.0, deadline - time.monotonic())))
                if report is not None or time.monotonic() >= deadline:
                    return report
                yield Progress(0, 1, f"waiting for {node} to confirm")
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        pending.forget(transaction_uid)


@contextmanager
def report_listener(ae_title: str, port: int, tls: TlsConfig | None = None) -> Iterator[Any]:
    """Listen as ``ae_title`` on ``port`` for storage commitment reports (and C-ECHO) while the block runs:
    the command line's stand-in for the app's receiver; ``PacsError`` saying why it cannot listen."""
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title=ae_title)
    ae.require_called_aet = True
    report_contexts(ae)
    ae.add_supported_context(Verification)
    try:
        server = ae.start_server(("0.0.0.0", port), block=False,
                                 evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_event_report)],
                                 ssl_context=tls.server_context() if tls is not None else None)
    except OSError as exc:
        from zsmed.dicom.receiver import why_not_listening

        raise PacsError(f"cannot listen for the PACS's answer on port {port}: {why_not_listening(exc)}") from None
    assert server is not None  # block=False returns the server
    try:
        yield server
    finally:
        server.shutdown()


FILES_STAY = "the files stay on this PC"  # said wherever the PACS has not confirmed it keeps what was sent


def no_answer_words(node: PacsNode, wait: float, listening: str) -> str:
    """What to say where the PACS accepted the request but its answer did not arrive within ``wait``."""
    return (f"the PACS {node} accepted the storage commitment request but had not answered within {wait:g} s "
            f"({listening})")


@dataclass
class CommittedSend:
    """A send followed by a storage commitment request: what was sent, the PACS's answer, or why there is none."""

    sent: SendResult
    report: CommitmentReport | None = None
    problem: str = ""  # the request refused, or no answer in time
    paths: dict[str, Path] = field(default_factory=dict)  # SOP instance UID -> the file sent

    @property
    def kept_all(self) -> bool:
        return self.report is not None and not self.report.failed and not self.problem

    @property
    def unconfirmed(self) -> bool:
        """Files were sent, but the PACS has not confirmed it keeps them all."""
        return bool(self.sent.sent) and not self.kept_all

    def summary(self) -> str:
        """One line: the send's, then the PACS's answer (or why there is none), and where the PACS has not
        confirmed it keeps everything, that the files stay on this PC."""
        line = self.sent.summary()
        if self.report is not None:
            line = f"{line}; {self.report.summary()}"
        elif self.problem:
            line = f"{line}; {self.problem}"
        return f"{line}; {FILES_STAY}" if self.unconfirmed else line

    def not_kept(self) -> list[str]:
        """One line per file the PACS says it does not keep: the file and the PACS's reason."""
        if self.report is None:
            return []
        return [f"{self.paths.get(uid, uid)}: {why}" for uid, why in self.report.failed]


def send_and_commit_job(paths: Sequence[str | Path], node: PacsNode, *, timeout: float = DEFAULT_TIMEOUT_S,
                        wait: float = DEFAULT_WAIT_S, listening: str = "") -> Job[CommittedSend]:
    """``send_job``, then ``commit_job`` for what was stored; the commitment's failures (refused, no answer in
    ``wait`` seconds: ``listening`` says where zsmed listened for it) are the result's ``problem``, not errors:
    the files were sent and stay on this PC."""
    result = yield from send_job(paths, node, timeout)
    done = CommittedSend(result)
    if not result.sent:
        return done
    done.paths = {uid: path for path, (_kind, uid) in result.stored.items()}  # as the send read them
    try:
        done.report = yield from commit_job(list(result.stored.values()), node, timeout=timeout, wait=wait)
    except PacsError as exc:
        done.problem = f"not confirmed: {exc.reason}"
        return done
    if done.report is None:
        done.problem = no_answer_words(node, wait, listening or "zsmed was not listening for it")
    return done


__all__ = [
    "DEFAULT_WAIT_S",
    "FILES_STAY",
    "PENDING",
    "STORAGE_COMMITMENT",
    "CommitmentReport",
    "CommittedSend",
    "PendingCommitments",
    "commit_job",
    "failure_words",
    "no_answer_words",
    "on_event_report",
    "report_contexts",
    "report_from_dataset",
    "report_listener",
    "send_and_commit_job",
]
