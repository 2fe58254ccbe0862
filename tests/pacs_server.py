"""A PACS for the tests on this machine: pynetdicom's storage server on a free loopback port (the tests' network
guard refuses anything but loopback), recording what it was sent."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import JPEG2000, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless

from zsmed.dicom.network import PacsNode


@dataclass
class StorageServer:
    """pynetdicom's storage SCP on a free loopback port: what it received, and a status to answer with."""

    node: PacsNode
    received: list[pydicom.Dataset] = field(default_factory=list)
    status: Callable[[pydicom.Dataset], int] = lambda ds: 0x0000
    releases: int = 0


def storage_server(ae_title: str = "TESTPACS", *, compressed: bool = False, calling: list[str] | None = None
                   ) -> Iterator[StorageServer]:
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title=ae_title)
    ae.require_called_aet = True
    if calling is not None:
        ae.require_calling_aet = calling
    syntaxes = [ExplicitVRLittleEndian, ImplicitVRLittleEndian] + ([JPEG2000Lossless, JPEG2000] if compressed else [])
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, syntaxes)
    ae.add_supported_context(Verification)
    server = StorageServer(PacsNode(ae_title, "127.0.0.1", 1))

    def on_store(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        code = server.status(ds)
        if code in (0x0000, 0xB000):
            server.received.append(ds)
        return code

    def on_release(event: Any) -> None:
        server.releases += 1

    scp = ae.start_server(("127.0.0.1", 0), block=False,
                          evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_RELEASED, on_release)])
    server.node = PacsNode(ae_title, "127.0.0.1", scp.server_address[1])
    try:
        yield server
    finally:
        scp.shutdown()



def free_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def orthanc_pacs(tmp_path: Path) -> Iterator[tuple[PacsNode, str, int]]:
    """A real PACS (Orthanc) on free loopback ports, storing in ``tmp_path``: its node, its REST address and the
    port of the modality 'ZSMED' it sends to; the test is skipped where Orthanc is not installed."""
    program = shutil.which("Orthanc")
    if program is None:
        pytest.skip("Orthanc not installed (Debian package orthanc; installer/system-packages.sh installs it)")
    dicom_port, http_port = free_port(), free_port()
    workstation = free_port()  # where this PACS sends to "ZSMED" (test_a_real_pacs_sends_a_study_to_zsmed)
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "orthanc.json"
    config.write_text(json.dumps({
        "Name": "zsmed-test", "StorageDirectory": str(tmp_path / "db"), "IndexDirectory": str(tmp_path / "db"),
        "DicomAet": "ORTHANC", "DicomPort": dicom_port, "HttpPort": http_port, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "DicomCheckCalledAet": True, "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True, "Plugins": [],
        "DicomModalities": {"zsmed": ["ZSMED", "127.0.0.1", workstation]}}))
    process = subprocess.Popen([program, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rest = f"http://127.0.0.1:{http_port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{rest}/system", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("Orthanc did not start")
        yield PacsNode("ORTHANC", "127.0.0.1", dicom_port), rest, workstation
    finally:
        process.terminate()
        process.wait(timeout=20)


@dataclass(frozen=True)
class TlsFiles:
    """A test PKI: a certificate authority, a certificate and key it signed for 127.0.0.1 (the PACS's and the
    workstation's alike), and another authority that signed nothing here."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path


def tls_files(folder: Path) -> TlsFiles:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def authority(name: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = authority("zsmed test CA")
    _other_key, other_cert = authority("someone else's CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(folder / "ca.pem", folder / "node.pem", folder / "node.key", folder / "other-ca.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.other_ca.write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files
