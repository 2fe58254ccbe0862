"""The app's link to the PACS: sending what is saved for it (in the worker) and receiving studies sent from it
(a listener while the app runs), both as the settings say (``SiteConfig.pacs``, ``receive_port``...).

The main window owns one ``PacsLink`` and shows its lines (``said``: the status bar, and the Jobs tab) and
opens what arrives (``arrived``: study folders); the sending and receiving themselves are the core's
(``zsmed.dicom.network.send_job``, ``zsmed.dicom.receiver.Receiver``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from zsmed.dicom.commitment import DEFAULT_WAIT_S
from zsmed.errors import ZsmedError

if TYPE_CHECKING:
    from zsmed.dicom.network import PacsNode, SendResult
    from zsmed.dicom.receiver import Batch, Receiver
    from zsmed.site import SiteConfig

NO_PACS = "Send to the PACS: no PACS is set (File ▸ Settings)"


class PacsLink(QObject):
    said = Signal(str, bool, object)  # a line for the window, whether it is a warning, its tooltip (or None)
    sent = Signal(object)  # a SendResult: files sent to the PACS (or not, each said)
    arrived = Signal(object)  # the study folders that received files from the PACS
    listening = Signal(str)  # "" when not receiving, else what the window shows: "Receiving as ZSMED on port 11112"
    _batch = Signal(object)  # a receiver Batch, from pynetdicom's thread to the window's

    def __init__(self, site: Callable[[], SiteConfig], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._site = site
        self.sending: set[Any] = set()  # the workers sending now
        self.receiver: Receiver | None = None
        self._commit_wait = DEFAULT_WAIT_S  # how long a send waits for the PACS to confirm it keeps the files
        self._batch.connect(self._on_batch)

    # --- sending ------------------------------------------------------------------------------------------
    def node(self) -> PacsNode | None:
        """The PACS of the settings; None where none is set."""
        try:
            return self._site().pacs_node()
        except ZsmedError:  # the settings were checked when read: a PACS that does not parse is none
            return None

    def send_saved(self, files: Sequence[Path]) -> None:
        """What was just saved for the PACS, sent to it at once where the settings say so."""
        if files and self._site().pacs_send_saved and self.node() is not None:
            self.send(files)

    def send(self, files: Sequence[Path], what: str | None = None) -> Any:
        """Store ``files`` on the PACS in the worker; the outcome one line (the files stay on this PC whatever
        happens). None, said, where no PACS is set."""
        from zsmed.dicom.commitment import FILES_STAY, CommittedSend, send_and_commit_job
        from zsmed.dicom.network import send_job
        from zsmed_desktop.workers import start_job

        node = self.node()
        if node is None:
            self.said.emit(NO_PACS, True, None)
            return None
        label = what or (files[0].name if len(files) == 1 else f"{len(files)} files")
        paths = list(files)
        commit = self._site().pacs_commit
        listening = (f"its answer comes to this workstation on port {self.receiver.port}" if self.receiver is not None
                     else "this workstation receives nothing: set a port to receive on in Settings ▸ PACS")

        def done(outcome: SendResult | CommittedSend) -> None:
            self.sending.discard(worker)
            result = outcome.sent if isinstance(outcome, CommittedSend) else outcome
            not_kept = outcome.not_kept() if isinstance(outcome, CommittedSend) else []
            unconfirmed = isinstance(outcome, CommittedSend) and outcome.unconfirmed  # its summary says they stay
            details = "\n".join([*result.problems, *result.warnings, *not_kept]) or None
            line = f"{label}: {outcome.summary()}"
            if result.problems and not unconfirmed:
                line += f"; {FILES_STAY}"
            self.said.emit(line, bool(result.problems) or unconfirmed, details)
            self.sent.emit(result)

        def failed(message: str) -> None:
            self.sending.discard(worker)
            self.said.emit(f"{label} not sent to the PACS (kept on this PC): {message}", True, None)

        worker = start_job(lambda: send_and_commit_job(paths, node, wait=self._commit_wait, listening=listening)
                           if commit
                           else send_job(paths, node), on_done=done, on_error=failed,
                           on_cancelled=lambda: self.sending.discard(worker), owner=self)
        self.sending.add(worker)
        return worker

    # --- receiving ----------------------------------------------------------------------------------------
    def start_receiving(self) -> None:
        """Listen for studies sent from the PACS where the settings say so (restarted when they change); a port
        that cannot be listened on is said."""
        from zsmed.dicom.receiver import Receiver

        try:
            config = self._site().receiver_config()
        except ZsmedError:
            config = None
        if self.receiver is not None and config == self.receiver.config:
            return
        self.stop_receiving()
        if config is None:
            return
        receiver = Receiver(config, self._batch.emit)  # emitted on pynetdicom's thread, delivered on ours
        try:
            receiver.start()
        except ZsmedError as exc:
            self.said.emit(f"Not receiving from the PACS: {exc.reason}", True, None)
            return
        self.receiver = receiver
        secured = " over TLS" if config.tls is not None else ""
        self.listening.emit(f"Receiving as {config.ae_title} on port {receiver.port}{secured}")

    def stop_receiving(self) -> None:
        receiver, self.receiver = self.receiver, None
        if receiver is not None:
            receiver.stop()
            self.listening.emit("")

    def _on_batch(self, batch: Batch) -> None:
        if batch.folders:
            self.arrived.emit(batch.folders)
        self.said.emit(batch.summary(), bool(batch.refused), "\n".join(batch.refused) or None)


__all__ = ["NO_PACS", "PacsLink"]
