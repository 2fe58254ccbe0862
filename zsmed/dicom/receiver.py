"""Receiving studies from the PACS: this workstation as a DICOM storage node (C-STORE SCP, pynetdicom, MIT).

A radiologist sends a study from the PACS viewer to "ZSMED" (a destination its administrator adds with this
PC's address, port and AE title) and it arrives in a folder of this PC, where the reading room lists it; the
PACS need not export a CD. What the receiver does, as PACS administrators expect of a workstation:

* it answers only to the AE title set for it, and, where a list is given, only to the callers on it (the
  PACS, a modality); a C-ECHO is answered;
* every object arrives as it was sent, byte for byte (its own encoding), in
  ``FOLDER/<patient ID>/<study UID>/<series UID>/<SOP instance UID>.dcm`` (names made safe), written to a
  temporary file and renamed, so a half-received file is never left where the reading room would read it;
  the same instance sent twice is kept once (success: the PACS need not resend);
* a full disk is answered "out of resources" (0xA700) and an object without its UIDs "does not match its SOP
  class" (0xA900), so the PACS says so and retries, rather than zsmed losing images silently;
* each association's end is reported (``Batch``: the files, their studies, the caller), which the CLI prints
  and the app turns into studies in its list.

Nothing here reaches out: the receiver only listens, on the port given, on the hospital's network.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsmed.dicom.network import TlsConfig, check_ae_title
from zsmed.errors import ConfigError, PacsError

DEFAULT_PORT = 11112  # DICOM's registered port besides 104 (which needs administrator rights)
MIN_FREE_BYTES = 500 << 20  # left free on the disk: the case log, the cache and the PC itself need room too
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ReceiverConfig:
    """Where and as whom this workstation receives: its AE title, the port (and address) it listens on, the
    folder studies arrive in, and the callers it accepts (empty: any that calls its AE title)."""

    folder: Path
    ae_title: str = "ZSMED"
    port: int = DEFAULT_PORT
    bind: str = "0.0.0.0"  # every interface of this PC; "127.0.0.1" for this PC alone
    allowed_callers: tuple[str, ...] = ()
    tls: TlsConfig | None = None  # DICOM over TLS: this workstation's certificate, callers' checked

    def __post_init__(self) -> None:
        check_ae_title(self.ae_title, "this workstation's AE title")
        for caller in self.allowed_callers:
            check_ae_title(caller, "an AE title allowed to send")
        if not 0 <= self.port <= 65535:  # 0: a free port the system chooses (``Receiver.port`` says which)
            raise ConfigError(f"the port to receive on must be 1 to 65535, not {self.port}")


@dataclass
class Batch:
    """What one association brought: the files stored (new), those already here, those refused, the caller."""

    caller: str
    address: str
    stored: list[Path] = field(default_factory=list)
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)
    studies: dict[str, str] = field(default_factory=dict)  # study UID -> "patient · date · modality"

    @property
    def folders(self) -> list[Path]:
        """The study folders that received files (what the reading room opens)."""
        return sorted({path.parent.parent for path in self.stored})

    def summary(self) -> str:
        """One line: "Received 120 files from PACS_MAIN (1 study: DOE^JANE · 20240301 · CT)"."""
        count = len(self.stored)
        head = f"Received {count} file{'s' if count != 1 else ''} from {self.caller}"
        if self.studies:
            studies = "; ".join(self.studies.values())
            head += f" ({len(self.studies)} stud{'y' if len(self.studies) == 1 else 'ies'}: {studies})"
        parts = [head]
        if self.duplicates:
            parts.append(f"{self.duplicates} already here")
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        return "; ".join(parts)


def safe_part(text: str, default: str) -> str:
    """A folder or file name from a UID or an ID: letters, digits, '.', '-', '_' only, at most 64 characters."""
    name = _UNSAFE.sub("_", text.strip()).strip("._")[:64]
    return name or default


def stored_path(folder: Path, patient_id: str, study_uid: str, series_uid: str, sop_uid: str) -> Path:
    """Where an instance is kept: ``folder/<patient>/<study>/<series>/<instance>.dcm``."""
    return (folder / safe_part(patient_id, "no-id") / safe_part(study_uid, "study") / safe_part(series_uid, "series")
            / f"{safe_part(sop_uid, 'instance')}.dcm")


def _free_bytes(folder: Path) -> int | None:
    """Free space on the disk that holds ``folder`` (or the nearest folder above it that exists)."""
    from zsmed.paths import nearest_existing

    try:
        return shutil.disk_usage(nearest_existing(folder)).free
    except OSError:
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".receiving-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _study_line(ds: Any) -> str:
    patient = str(ds.get("PatientName", "") or ds.get("PatientID", "") or "no name")
    return " · ".join(x for x in (patient, str(ds.get("StudyDate", "") or ""), str(ds.get("Modality", "") or "")) if x)


def keep_instance(event: Any, folder: Path, batch: Batch) -> int:
    """A C-STORE request (pynetdicom's event: sent to the receiver, or a C-GET's sub-operation) kept in
    ``folder`` as sent, noted in ``batch``; the status to answer (0: kept or already here)."""
    try:
        ds = event.dataset
    except Exception:  # a data set pynetdicom cannot decode: refused, the PACS says so
        batch.refused.append("a data set that could not be read")
        return 0xC210
    sop_uid = str(ds.get("SOPInstanceUID", "") or "")
    study_uid, series_uid = str(ds.get("StudyInstanceUID", "") or ""), str(ds.get("SeriesInstanceUID", "") or "")
    if not sop_uid or not study_uid or not series_uid:
        batch.refused.append("an object without its study, series or instance UID")
        return 0xA900
    path = stored_path(folder, str(ds.get("PatientID", "") or ""), study_uid, series_uid, sop_uid)
    if path.exists():
        batch.duplicates += 1  # kept once: the PACS sent it again
        return 0x0000
    data = event.encoded_dataset(include_meta=True)
    free = _free_bytes(folder)
    if free is not None and free - len(data) < MIN_FREE_BYTES:
        # the PC's disk is not filled by what a PACS sends: the PACS keeps the image and can send it later
        batch.refused.append(f"{path.name}: not kept: under {MIN_FREE_BYTES >> 20} MB would be left free on the "
                             f"disk of {folder}")
        return 0xA700
    try:
        _write_atomically(path, data)
    except OSError as exc:
        batch.refused.append(f"{path.name}: not written ({exc.strerror or exc})")
        return 0xA700  # out of resources: the PACS keeps it and can retry
    batch.stored.append(path)
    batch.studies.setdefault(study_uid, _study_line(ds))
    return 0x0000


class Receiver:
    """A DICOM storage node listening in the background (``start`` / ``stop``); ``on_batch`` is called, on
    pynetdicom's thread, with each association's ``Batch`` when it ends."""

    def __init__(self, config: ReceiverConfig, on_batch: Callable[[Batch], None] | None = None) -> None:
        self.config = config
        self.on_batch = on_batch
        self._server: Any = None
        self._batches: dict[int, Batch] = {}
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The port listened on (the one given, or the one the system chose for port 0)."""
        return int(self._server.server_address[1]) if self._server is not None else self.config.port

    def start(self) -> None:
        """Listen; ``PacsError`` saying why not (the port taken by another program, or needing rights)."""
        from pydicom.uid import ExplicitVRLittleEndian
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        from zsmed.dicom.commitment import on_event_report, report_contexts

        if self._server is not None:
            return
        ae = AE(ae_title=self.config.ae_title)
        ae.require_called_aet = True
        if self.config.allowed_callers:
            ae.require_calling_aet = list(self.config.allowed_callers)
        # explicit VR first: offered both, a sender keeps its explicit encoding (and private elements their VRs)
        syntaxes = [ExplicitVRLittleEndian, *(uid for uid in ALL_TRANSFER_SYNTAXES if uid != ExplicitVRLittleEndian)]
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax, syntaxes)
        ae.add_supported_context(Verification)
        report_contexts(ae)  # the PACS's answers to storage commitment requests come here too
        handlers: list[Any] = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_N_EVENT_REPORT, on_event_report),
                               (evt.EVT_RELEASED, self._on_end),
                               (evt.EVT_ABORTED, self._on_end), (evt.EVT_CONN_CLOSE, self._on_end)]
        ssl_context = self.config.tls.server_context() if self.config.tls is not None else None
        try:
            self._server = ae.start_server((self.config.bind, self.config.port), block=False, evt_handlers=handlers,
                                           ssl_context=ssl_context)
        except OSError as exc:
            raise PacsError(f"cannot receive on port {self.config.port}: {why_not_listening(exc)}") from None

    def stop(self) -> None:
        """Stop listening (associations under way are closed)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()

    def _batch(self, event: Any) -> Batch:
        key = id(event.assoc)
        with self._lock:
            batch = self._batches.get(key)
            if batch is None:
                requestor = event.assoc.requestor
                batch = self._batches[key] = Batch(str(requestor.ae_title).strip(), str(requestor.address))
            return batch

    def _on_store(self, event: Any) -> int:
        return keep_instance(event, self.config.folder, self._batch(event))

    def _on_end(self, event: Any) -> None:
        with self._lock:
            batch = self._batches.pop(id(event.assoc), None)
        if batch is not None and (batch.stored or batch.duplicates or batch.refused) and self.on_batch is not None:
            self.on_batch(batch)


def why_not_listening(exc: OSError) -> str:
    """Why a port cannot be listened on, in words (Linux, macOS and Windows error numbers)."""
    if exc.errno in (98, 48, 10048):
        return "another program listens on it"
    if exc.errno in (13, 10013):
        return "this user may not listen on it (ports under 1024 need administrator rights)"
    return exc.strerror or str(exc)


def parse_callers(text: str | Sequence[str]) -> tuple[str, ...]:
    """'PACS_MAIN, CT_SCANNER' (or a list) -> the AE titles, each checked."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(check_ae_title(item, "an AE title allowed to send") for item in items if item.strip())


__all__ = ["DEFAULT_PORT", "Batch", "Receiver", "ReceiverConfig", "keep_instance", "parse_callers", "safe_part",
           "stored_path", "why_not_listening"]
