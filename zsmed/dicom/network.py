"""Sending results to the PACS over the hospital's network: DICOM C-ECHO and C-STORE (pynetdicom, MIT).

What zsmed writes for the PACS (a result as a structured report, measurements, a presentation state, key
images, reformatted series) is first saved as files; ``send_job`` then stores them on the PACS named in the
site's settings (``SiteConfig.pacs``: ``AE_TITLE@HOST:PORT``, as a PACS administrator gives a modality), in
one association, as a modality does. ``echo`` is the "DICOM ping" a PACS administrator asks for first.

Each file goes in its own transfer syntax where the PACS accepts it, else uncompressed (the PACS said it
takes only that); a file the PACS refuses is one line naming the file and the PACS's reason (its status in
words), and the others go on. Failures to reach the PACS at all (no route, refused, AE title unknown, no
answer) are one ``PacsError`` line naming the PACS. Nothing but the files named is sent, and only to the
address configured: this is the hospital's own network, not the internet.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsmed.errors import ConfigError, PacsError, ZsmedError
from zsmed.progress import Job, Progress

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

DEFAULT_CALLING_AE = "ZSMED"
DEFAULT_TIMEOUT_S = 15.0
MAX_CONTEXTS = 128  # what one association may propose (DICOM PS3.8: presentation context IDs 1-255, odd)
PLAIN_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")  # explicit and implicit VR little endian
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # default character repertoire, no backslash

# C-STORE statuses in words (DICOM PS3.4 B.2.3 and PS3.7 C), for the line naming a file the PACS refused
_STATUS_WORDS = {
    0x0122: "the PACS does not support this kind of object",
    0x0124: "the PACS refused it: not authorised",
    0x0210: "the PACS saw the same request twice",
    0x0211: "the PACS does not recognise this kind of object",
    0x0212: "the PACS reported a mistyped argument",
    0x0213: "the PACS does not recognise this kind of object",
    0xB000: "the PACS changed some of its values to store it",
    0xB006: "the PACS ignored some of its elements",
    0xB007: "the PACS says it does not match its kind of object, but stored it",
}


def status_words(status: int) -> str:
    """A C-STORE status as words (the PACS's own reason)."""
    if status in _STATUS_WORDS:
        return _STATUS_WORDS[status]
    if 0xA700 <= status <= 0xA7FF:
        return "the PACS is out of resources (disk full?)"
    if 0xA900 <= status <= 0xA9FF:
        return "the PACS says the file does not match its kind of object"
    if 0xC000 <= status <= 0xCFFF:
        return "the PACS cannot understand the file"
    return f"the PACS answered with status 0x{status:04X}"


def check_ae_title(text: str, what: str = "AE title") -> str:
    """An application entity title as DICOM allows it (1-16 printable ASCII characters, no backslash, not
    all spaces), stripped; ``ConfigError`` saying why not."""
    title = text.strip()
    if not _AE_TITLE.match(title):
        raise ConfigError(f"{what} must be 1 to 16 letters, digits or signs without a backslash, not {text!r}")
    return title


@dataclass(frozen=True)
class TlsConfig:
    """DICOM over TLS (DICOM PS3.15 B.1, the port PACS administrators give for it, often 2762): the certificate
    authorities trusted for the other side's certificate, and this workstation's own certificate and key (what
    a PACS asking for mutual TLS checks, and what the receiver shows to those who send to it)."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("TLS: give this workstation's certificate and its key together, or neither")

    def check_files(self) -> None:
        """``PacsError`` naming the first of the files that is not there."""
        for what, path in (("trusted certificates", self.ca_file), ("workstation certificate", self.cert_file),
                           ("workstation key", self.key_file)):
            if path is not None and not Path(path).is_file():
                raise PacsError(f"TLS: the {what} file {path} is not there")

    def client_context(self) -> ssl.SSLContext:
        """For calling a PACS: its certificate checked against ``ca_file`` and its host name."""
        self.check_files()
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
            if self.cert_file is not None and self.key_file is not None:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (ssl.SSLError, OSError) as exc:
            raise PacsError(f"TLS: the certificate files could not be read ({exc})") from None
        return context

    def server_context(self) -> ssl.SSLContext:
        """For receiving: this workstation's certificate shown, the callers' checked against ``ca_file``."""
        self.check_files()
        if self.cert_file is None or self.key_file is None:
            raise PacsError("TLS: receiving over TLS needs this workstation's certificate and key")
        try:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_file))
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (ssl.SSLError, OSError) as exc:
            raise PacsError(f"TLS: the certificate files could not be read ({exc})") from None
        context.verify_mode = ssl.CERT_REQUIRED  # only callers with a certificate the site trusts
        return context


@dataclass(frozen=True)
class PacsNode:
    """Where results are sent: the PACS's AE title, host and port, and the AE title zsmed calls as (which the
    PACS administrator registers for this workstation)."""

    ae_title: str
    host: str
    port: int
    calling_ae: str = DEFAULT_CALLING_AE
    tls: TlsConfig | None = None

    def __post_init__(self) -> None:
        check_ae_title(self.ae_title, "the PACS's AE title")
        check_ae_title(self.calling_ae, "this workstation's AE title")
        if not self.host.strip() or any(ch.isspace() for ch in self.host.strip()):
            raise ConfigError(f"the PACS's host must be a name or an address without spaces, not {self.host!r}")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"the PACS's port must be 1 to 65535, not {self.port}")

    @classmethod
    def parse(cls, text: str, calling_ae: str = "", tls: TlsConfig | None = None) -> PacsNode:
        """``"AE_TITLE@HOST:PORT"`` (an IPv6 address in brackets: ``PACS@[fd00::5]:104``)."""
        raw = text.strip()
        title, at, rest = raw.rpartition("@")
        host, colon, port = rest.rpartition(":")
        if not at or not colon or not title or not host:
            raise ConfigError(f"a PACS is given as AE_TITLE@HOST:PORT (e.g. PACS@pacs.hospital.local:104), "
                              f"not {text!r}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            number = int(port)
        except ValueError:
            raise ConfigError(f"the PACS's port must be a number, not {port!r} (in {text!r})") from None
        return cls(check_ae_title(title, "the PACS's AE title"), host, number,
                   check_ae_title(calling_ae or DEFAULT_CALLING_AE, "this workstation's AE title"), tls)

    def address(self) -> str:
        """``AE_TITLE@HOST:PORT``, as ``parse`` reads it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.ae_title} at {self.host}:{self.port}" + (" (TLS)" if self.tls is not None else "")


def _reach(node: PacsNode, timeout: float, tls: ssl.SSLContext | None) -> None:
    """Open and close a TCP connection to the PACS first (with the TLS handshake where ``tls``), so that
    'refused', 'unknown host', 'no answer' and 'not trusted' are said as such (the association below would only
    say it failed)."""
    try:
        with socket.create_connection((node.host, node.port), timeout=timeout) as connection:
            if tls is not None:
                _handshake(node, connection, tls, timeout)
    except PacsError:
        raise
    except socket.gaierror:
        raise PacsError(f"cannot reach the PACS {node}: the host name {node.host!r} is not known on this "
                        "network") from None
    except TimeoutError:
        raise PacsError(f"cannot reach the PACS {node}: no answer within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise PacsError(f"cannot reach the PACS {node}: the connection was refused (nothing listens on port "
                        f"{node.port} there)") from None
    except OSError as exc:
        raise PacsError(f"cannot reach the PACS {node}: {exc.strerror or exc}") from None


def _handshake(node: PacsNode, connection: socket.socket, context: ssl.SSLContext, timeout: float) -> None:
    """The TLS handshake alone, so that a certificate the site does not trust, or a port that speaks no TLS, is
    said as such (pynetdicom would only say the association failed)."""
    try:
        with context.wrap_socket(connection, server_hostname=node.host) as secured:
            secured.settimeout(timeout)
    except ssl.SSLCertVerificationError as exc:
        raise PacsError(f"the PACS {node} showed a certificate this PC does not trust ({exc.verify_message}): "
                        "check the trusted certificates in the settings") from None
    except (ssl.SSLError, ConnectionResetError, TimeoutError) as exc:
        raise PacsError(f"no TLS with the PACS {node}: the handshake failed ({exc.__class__.__name__}: {exc}); is "
                        "that port the PACS's TLS port?") from None


_REJECT_REASONS = {
    (1, 2): "it does not support the DICOM application context",
    (1, 3): "it does not know this workstation's AE title (ask its administrator to add it)",
    (1, 7): "the AE title called is not its own (check the PACS's AE title in the settings)",
    (3, 1): "it is busy (temporary congestion); try again",
    (3, 2): "it has reached its limit of connections; try again",
}


def associate(node: PacsNode, contexts: Sequence[tuple[str, Sequence[str]]], timeout: float, *,
              roles: Sequence[Any] = (), handlers: Sequence[Any] = (), offering: str = "") -> Any:
    """An established association with the PACS proposing ``contexts`` (abstract syntax, transfer syntaxes),
    with the SCP/SCU ``roles`` and event ``handlers`` a C-GET needs; ``PacsError`` saying why there is none
    (``offering`` names what the contexts are for, where the PACS takes none of them)."""
    from pynetdicom import AE

    tls = node.tls.client_context() if node.tls is not None else None  # the certificate files read once
    _reach(node, timeout, tls)
    ae = AE(ae_title=node.calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, list(syntaxes))
    tls_args = (tls, node.host) if tls is not None else None
    for attempt in range(2):
        assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, ext_neg=list(roles) or None,
                             evt_handlers=list(handlers) or None, tls_args=tls_args)
        if assoc.is_established:
            return assoc
        _let_go(assoc)
        # A PACS that rejects and hangs up at once (Orthanc, a wrong called AE title) races pynetdicom: about one
        # time in ten it sees the hang-up before the rejection and reports an abort with no answer. Asked again,
        # such a PACS says why; a port that is no DICOM node hangs up again.
        if not (assoc.is_aborted and assoc.acceptor.primitive is None) or attempt:
            break
        time.sleep(0.05)
    if assoc.is_rejected:
        primitive = assoc.acceptor.primitive
        key = (int(primitive.result_source or 0), int(primitive.diagnostic or 0)) if primitive is not None else (0, 0)
        reason = _REJECT_REASONS.get(key, "it refused the association")
        raise PacsError(f"the PACS {node} refused zsmed: {reason}")
    accepted = assoc.acceptor.primitive is not None and assoc.acceptor.primitive.result == 0
    if assoc.is_aborted and accepted and assoc.rejected_contexts:  # pynetdicom hangs up where none was accepted
        raise PacsError(f"the PACS {node} does not take {offering or 'any of the kinds of object offered'}")
    if assoc.is_aborted:
        raise PacsError(f"the PACS {node} broke off the connection ({_port_hint(node)})")
    raise PacsError(f"the PACS {node} did not answer as a DICOM node within {timeout:g} s ({_port_hint(node)})")


def _let_go(assoc: Any) -> None:
    """Close a failed association's socket: pynetdicom skips the close where the shutdown before it fails (a PACS
    that hung up first), and an AI node or a receiver retrying all day would run out of file descriptors."""
    holder = getattr(getattr(assoc, "dul", None), "socket", None)  # pynetdicom's AssociationSocket
    connection = getattr(holder, "socket", None)
    if connection is not None:
        with contextlib.suppress(OSError):
            connection.close()


def _port_hint(node: PacsNode) -> str:
    """What to check where the PACS hangs up before speaking DICOM."""
    if node.tls is None:
        return "is it a DICOM port, or one that wants TLS?"
    if node.tls.cert_file is None:
        return "does it want this workstation's certificate (mutual TLS)?"
    return "does it trust this workstation's certificate?"


def echo(node: PacsNode, timeout: float = DEFAULT_TIMEOUT_S) -> float:
    """A C-ECHO (the "DICOM ping"): the seconds it took; ``PacsError`` saying what failed."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    start = time.perf_counter()
    assoc = associate(node, [(Verification, [ImplicitVRLittleEndian, ExplicitVRLittleEndian])], timeout)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if status is None or "Status" not in status:
        raise PacsError(f"the PACS {node} did not answer the echo within {timeout:g} s")
    if int(status.Status) != 0:
        raise PacsError(f"the PACS {node} answered the echo with status 0x{int(status.Status):04X}")
    return time.perf_counter() - start


def echo_job(node: PacsNode, timeout: float = DEFAULT_TIMEOUT_S) -> Job[float]:
    """``echo`` as a job, for the app's worker (the wait for a PACS that does not answer stays off the window)."""
    yield Progress(0, 1, f"asking {node}")
    return echo(node, timeout)


@dataclass
class SendResult:
    """What a send did: the files stored, those stored with a warning from the PACS and those not sent (one
    line each, naming the file and the reason)."""

    node: PacsNode
    sent: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: int = 0  # DICOMDIRs
    # each file stored: its (SOP Class UID, SOP Instance UID), as a storage commitment request names it
    stored: dict[Path, tuple[str, str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: "3 files sent to PACS at pacs.local:104; 1 not sent"."""
        count = len(self.sent)
        parts = [f"{count} file{'s' if count != 1 else ''} sent to {self.node}" if count
                 else f"Nothing sent to {self.node}"]
        if self.warnings:
            parts.append(f"{len(self.warnings)} stored with a warning from the PACS")
        if self.problems:
            parts.append(f"{len(self.problems)} not sent")
        if self.skipped:
            parts.append(f"{self.skipped} DICOMDIR{'s' if self.skipped != 1 else ''} skipped (the images it lists are "
                         "sent when given)")
        return "; ".join(parts)


def _read(path: Path, *, header_only: bool = False) -> Dataset:
    """The file's data set (only its header: what the association's contexts need, not a study's pixels in
    memory at once); ``ZsmedError`` naming the file where it is no object a PACS stores."""
    from zsmed.dicom.decode import is_dicomdir, open_dataset

    ds, _notes = open_dataset(path, stop_before_pixels=header_only)
    if is_dicomdir(ds):
        return ds
    if not ds.get("SOPClassUID") or not ds.get("SOPInstanceUID"):
        raise ZsmedError("no SOP Class or SOP Instance UID: not a DICOM object a PACS stores", path=path)
    from pydicom.uid import UID

    # a damaged UID (a byte flipped) would break the whole association, not only this file: refused here
    for what, value in (("SOP Class UID", ds.get("SOPClassUID")), ("SOP Instance UID", ds.get("SOPInstanceUID")),
                        ("transfer syntax", _syntax(ds))):
        if not UID(str(value)).is_valid:
            raise ZsmedError(f"its {what} is damaged ({str(value)[:64]!r}): not sent", path=path)
    return ds


def _syntax(ds: Dataset) -> str:
    """The file's transfer syntax: its file meta's, else the encoding it was read in (a file without a meta)."""
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID"):
        return str(meta.TransferSyntaxUID)
    implicit, little = ds.original_encoding
    if implicit is False:
        return ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian
    return ImplicitVRLittleEndian


def _contexts(wanted: Sequence[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """The presentation contexts proposed for the files' (SOP class, transfer syntax) pairs: per kind of object,
    each encoding other than uncompressed little endian on its own, and uncompressed little endian (explicit or
    implicit VR) once, which every PACS takes and which a compressed file falls back to."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    plain = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    contexts = [(sop_class, [syntax]) for sop_class, syntax in wanted if syntax not in plain]
    contexts += [(sop_class, list(plain)) for sop_class in dict.fromkeys(sop_class for sop_class, _ in wanted)]
    if len(contexts) > MAX_CONTEXTS:
        raise PacsError(f"{len(contexts)} kinds of object and encodings are more than one association can carry "
                        f"({MAX_CONTEXTS}); send them in smaller groups")
    return contexts


def _as_little_endian(ds: Dataset, syntax: str) -> None:
    """``ds`` re-encoded, in place, as explicit VR little endian: decompressed, or its big-endian pixel values
    (the retired Explicit VR Big Endian) set again as native numbers."""
    from pydicom.uid import UID, ExplicitVRLittleEndian

    if UID(syntax).is_compressed:
        ds.decompress(generate_instance_uid=False)  # the same object, only its encoding changed
        return
    if "PixelData" in ds:
        pixels = ds.pixel_array
        pixels = pixels.astype(pixels.dtype.newbyteorder("<"))  # the numbers kept, their bytes turned
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.set_pixel_data(pixels, str(ds.PhotometricInterpretation), int(ds.BitsStored),
                          generate_instance_uid=False)
    else:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    # pynetdicom encodes by the encoding the file was read in where it has one: the one it has now
    ds.set_original_encoding(False, True, ds.original_character_set)


def _store(assoc: Any, ds: Dataset, path: Path) -> str | None:
    """C-STORE one data set in an accepted context (decompressed where the PACS takes only uncompressed);
    None when stored cleanly, a warning line when stored with one; ``ZsmedError`` when not stored."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID

    syntax = _syntax(ds)
    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)  # a file without a meta: the encoding it was read in
    accepted = [c for c in assoc.accepted_contexts if c.abstract_syntax == str(ds.SOPClassUID)]
    if not accepted:
        raise ZsmedError(f"the PACS does not take this kind of object ({UID(str(ds.SOPClassUID)).name})", path=path)
    if not any(c.transfer_syntax[0] == syntax for c in accepted) and syntax not in PLAIN_SYNTAXES:
        # the PACS takes it only uncompressed little endian (pynetdicom re-encodes between those two itself)
        try:
            _as_little_endian(ds, syntax)
        except Exception as exc:  # a codec failure on one file: said for that file, the others go on
            raise ZsmedError(f"the PACS takes it only uncompressed and it could not be decoded ({exc})",
                             path=path) from None
    from zsmed.dicom.decode import DAMAGED_VALUE_ERRORS, one_line

    try:
        status = assoc.send_c_store(ds)
    except DAMAGED_VALUE_ERRORS as exc:  # a damaged value pynetdicom cannot encode (a byte no text allows)
        raise ZsmedError(f"not sent: a value in the file could not be encoded ({one_line(exc)[:160]})",
                         path=path) from None
    if status is None or "Status" not in status:
        raise ZsmedError("the PACS did not answer (the connection was lost)", path=path)
    code = int(status.Status)
    if code == 0x0000:
        return None
    if code in (0xB000, 0xB006, 0xB007):
        return f"{path}: {status_words(code)}"
    raise ZsmedError(f"not stored: {status_words(code)}", path=path)


def send_job(paths: Sequence[str | Path], node: PacsNode, timeout: float = DEFAULT_TIMEOUT_S) -> Job[SendResult]:
    """Store ``paths`` (DICOM files) on the PACS in one association; yields ``Progress`` after each file, so a
    cancellation stops between files (the association is released either way). A file that cannot be read or
    that the PACS refuses is one problem line; not reaching the PACS at all is ``PacsError``."""
    from zsmed.dicom.decode import is_dicomdir

    result = SendResult(node)
    files = [Path(p) for p in paths]
    yield Progress(0, len(files), "reading")
    readable: list[Path] = []
    kinds: dict[tuple[str, str], None] = {}  # (SOP class, transfer syntax): what the association must carry
    for index, path in enumerate(files):
        if index % 50 == 49:
            yield Progress(0, len(files), "reading")  # a study of thousands: cancellable while its headers are read
        try:
            ds = _read(path, header_only=True)
        except ZsmedError as exc:
            result.problems.append(f"{path}: {exc.reason}")
            continue
        if is_dicomdir(ds):
            result.skipped += 1  # a CD's index: the PACS stores the images it lists, not it
        else:
            readable.append(path)
            kinds[(str(ds.SOPClassUID), _syntax(ds))] = None
    if not readable:
        return result
    assoc = associate(node, _contexts(list(kinds)), timeout)
    try:
        for index, path in enumerate(readable):
            if not assoc.is_established:
                result.problems.append(f"{path}: not sent: the PACS closed the connection")
                continue
            try:
                ds = _read(path)  # read whole only now: one image in memory at a time
                warning = _store(assoc, ds, path)
            except ZsmedError as exc:
                result.problems.append(f"{path}: {exc.reason}")
            else:
                result.sent.append(path)
                result.stored[path] = (str(ds.SOPClassUID), str(ds.SOPInstanceUID))
                if warning is not None:
                    result.warnings.append(warning)
            yield Progress(index + 1, len(readable), path.name)
    finally:
        if assoc.is_established:
            assoc.release()
    return result


__all__ = [
    "DEFAULT_CALLING_AE",
    "PacsNode",
    "SendResult",
    "TlsConfig",
    "associate",
    "check_ae_title",
    "echo",
    "echo_job",
    "send_job",
    "status_words",
]
