"""DICOM over TLS with the PACS (``TlsConfig``): zsmed's receiver as the TLS node and its sender as the caller,
on loopback, with a test certificate authority made here; what is not trusted, or speaks no TLS, is said."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import dicom_test_file
from tests.pacs_server import TlsFiles, tls_files
from zsmed.cli.main import main
from zsmed.dicom.network import PacsNode, TlsConfig, echo, send_job
from zsmed.dicom.receiver import Batch, Receiver, ReceiverConfig
from zsmed.errors import ConfigError, PacsError
from zsmed.progress import run_job
from zsmed.site import SiteConfig


@pytest.fixture()
def pki(tmp_path: Path) -> TlsFiles:
    return tls_files(tmp_path / "pki")


def _listening(folder: Path, tls: TlsConfig | None, batches: list[Batch]) -> Receiver:
    receiver = Receiver(ReceiverConfig(folder, "ZSMED", 0, "127.0.0.1", tls=tls), batches.append)
    receiver.start()
    return receiver


@pytest.fixture()
def secure(tmp_path: Path, pki: TlsFiles) -> Iterator[tuple[Receiver, list[Batch]]]:
    batches: list[Batch] = []
    receiver = _listening(tmp_path / "in", TlsConfig(pki.ca, pki.cert, pki.key), batches)
    try:
        yield receiver, batches
    finally:
        receiver.stop()


def test_studies_go_over_tls_with_both_sides_checked(tmp_path: Path, pki: TlsFiles,
                                                     secure: tuple[Receiver, list[Batch]]) -> None:
    receiver, batches = secure
    node = PacsNode("ZSMED", "127.0.0.1", receiver.port, "PACS_MAIN", TlsConfig(pki.ca, pki.cert, pki.key))
    assert str(node).endswith(" (TLS)")
    assert echo(node) > 0
    source = dicom_test_file("CT_small.dcm")
    assert run_job(send_job([source], node)).sent == [source]
    deadline = time.monotonic() + 10
    while not any(batch.stored for batch in batches) and time.monotonic() < deadline:
        time.sleep(0.05)
    stored = [path for batch in batches for path in batch.stored]
    assert len(stored) == 1 and stored[0].read_bytes().endswith(source.read_bytes()[-2000:])


def test_what_is_not_trusted_or_not_tls_is_said(tmp_path: Path, pki: TlsFiles,
                                                secure: tuple[Receiver, list[Batch]]) -> None:
    receiver, _ = secure
    untrusting = PacsNode("ZSMED", "127.0.0.1", receiver.port, "PACS_MAIN", TlsConfig(pki.other_ca, pki.cert, pki.key))
    with pytest.raises(PacsError, match="showed a certificate this PC does not trust"):
        echo(untrusting, timeout=5)
    # a caller without a certificate of its own: the receiver asks for one and refuses the handshake
    anonymous = PacsNode("ZSMED", "127.0.0.1", receiver.port, "PACS_MAIN", TlsConfig(pki.ca))
    with pytest.raises(PacsError, match=r"mutual TLS|handshake failed"):
        echo(anonymous, timeout=5)
    # plain DICOM to the TLS port, and TLS to a plain port
    with pytest.raises(PacsError, match="one that wants TLS"):
        echo(PacsNode("ZSMED", "127.0.0.1", receiver.port, "PACS_MAIN"), timeout=3)
    plain = _listening(tmp_path / "plain", None, [])
    try:
        with pytest.raises(PacsError, match=r"no TLS with the PACS .* the handshake failed"):
            echo(PacsNode("ZSMED", "127.0.0.1", plain.port, "PACS_MAIN", TlsConfig(pki.ca, pki.cert, pki.key)),
                 timeout=3)
    finally:
        plain.stop()
    with pytest.raises(PacsError, match=r"the trusted certificates file .* is not there"):
        echo(PacsNode("ZSMED", "127.0.0.1", receiver.port, "X", TlsConfig(tmp_path / "nowhere.pem")), timeout=3)


def test_tls_in_the_settings_and_on_the_command_line(tmp_path: Path, pki: TlsFiles, isolated_dirs: Path,
                                                     secure: tuple[Receiver, list[Batch]],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    receiver, _ = secure
    with pytest.raises(ConfigError, match="certificate and its key together"):
        TlsConfig(pki.ca, pki.cert)
    with pytest.raises(ConfigError, match="trusted certificates"):
        SiteConfig(pacs_tls_cert=str(pki.cert), pacs_tls_key=str(pki.key))
    site = SiteConfig(pacs=f"ZSMED@127.0.0.1:{receiver.port}", pacs_tls_ca=str(pki.ca), pacs_tls_cert=str(pki.cert),
                      pacs_tls_key=str(pki.key), receive_port="11112")
    node = site.pacs_node()
    assert node is not None and node.tls == TlsConfig(pki.ca, pki.cert, pki.key)
    config = site.receiver_config()
    assert config is not None and config.tls == node.tls

    address = f"ZSMED@127.0.0.1:{receiver.port}"
    assert main(["echo", "--pacs", address, "--tls-ca", str(pki.ca), "--tls-cert", str(pki.cert),
                 "--tls-key", str(pki.key)]) == 0
    assert "(TLS) answered the echo" in capsys.readouterr().out
    assert main(["echo", "--pacs", address, "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]) == 2
    assert "--tls-cert and --tls-key go with --tls-ca" in capsys.readouterr().err
    # the settings' TLS, when the command line names none
    (isolated_dirs / "data").mkdir(exist_ok=True)
    (isolated_dirs / "data" / "site.json").write_text(json.dumps(
        {"pacs": address, "pacs_tls_ca": str(pki.ca), "pacs_tls_cert": str(pki.cert), "pacs_tls_key": str(pki.key)}))
    assert main(["echo"]) == 0
    assert "(TLS) answered the echo" in capsys.readouterr().out


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed while listed (the listing's own descriptor among them)
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts this process's sockets in /proc")
def test_a_failed_association_leaves_no_socket_open(secure: tuple[Receiver, list[Batch]]) -> None:
    """Plain DICOM to the TLS port: the PACS hangs up first, pynetdicom's shutdown of the socket fails and it skips
    the close; zsmed closes it, so a node that keeps retrying does not run out of file descriptors."""
    receiver, _ = secure
    plain = PacsNode("ZSMED", "127.0.0.1", receiver.port, "PACS_MAIN")
    with pytest.raises(PacsError, match="one that wants TLS"):  # the first: anything opened once for all
        echo(plain, timeout=3)
    time.sleep(0.5)
    before = _open_sockets()
    for _attempt in range(5):
        with pytest.raises(PacsError, match="one that wants TLS"):
            echo(plain, timeout=3)
    time.sleep(0.5)  # the receiver's side of each closes in its own thread
    assert _open_sockets() - before <= 1
