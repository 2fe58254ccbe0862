"""The app sending to the PACS: the PACS in Settings (and its Test), what is saved for the PACS sent at once
where the settings say so, File > Send the study to the PACS…, and a PACS that cannot be reached said in the
window with the files kept; against pynetdicom's storage server on this machine."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from PySide6.QtWidgets import QMessageBox

from tests.conftest import dicom_test_file
from tests.desktop.reading_room import SCAN_TIMEOUT, make_window, open_and_wait
from tests.pacs_server import StorageServer, free_port, storage_server
from zsmed.dicom.network import PacsNode, SendResult
from zsmed.site import SiteConfig, load_site_config
from zsmed_desktop.main_window import MainWindow
from zsmed_desktop.settings_dialog import SettingsDialog

SEND_TIMEOUT = 30_000


@pytest.fixture()
def pacs() -> Iterator[StorageServer]:
    yield from storage_server()


def _jobs(window: MainWindow) -> list[str]:
    return [window.jobs.item(k).text() for k in range(window.jobs.count())]


def _window_sending_to(qtbot, tmp_path: Path, address: str, *, at_once: bool = True) -> MainWindow:
    window = make_window(qtbot, tmp_path)
    window.apply_site(replace(window.site, pacs=address, pacs_send_saved=at_once))
    return window


def _ct_study(tmp_path: Path) -> Path:
    study = tmp_path / "study"
    study.mkdir()
    for name in ("CT_small.dcm",):
        shutil.copy(dicom_test_file(name), study / "ct.dcm")
    return study


def test_the_pacs_is_set_and_tested_in_settings(qtbot, tmp_path: Path, pacs: StorageServer) -> None:
    dialog = SettingsDialog(SiteConfig(), site_path=tmp_path / "site.json")
    qtbot.addWidget(dialog)
    assert dialog.pacs.text() == "" and not dialog.pacs_send_saved.isChecked() and not dialog.pacs_commit.isChecked()
    dialog.test_pacs()  # nothing typed: said, nothing asked
    assert "type its address first" in dialog.pacs_result.text()

    dialog.pacs.setText("not an address")
    assert dialog.problems() == ["PACS: a PACS is given as AE_TITLE@HOST:PORT (e.g. PACS@pacs.hospital.local:104), "
                                 "not 'not an address'"]
    dialog.pacs.setText(pacs.node.address())
    dialog.pacs_calling_ae.setText("READING3")
    dialog.test_pacs()
    qtbot.waitUntil(lambda: not dialog.is_testing(), timeout=SEND_TIMEOUT)
    assert dialog.pacs_result.text().startswith(f"{pacs.node} answered zsmed (READING3) in ")
    assert dialog.pacs_test.isEnabled()

    dialog.pacs.setText(f"TESTPACS@127.0.0.1:{free_port()}")
    dialog.test_pacs()
    qtbot.waitUntil(lambda: not dialog.is_testing(), timeout=SEND_TIMEOUT)
    assert "connection was refused" in dialog.pacs_result.text()

    dialog.pacs.setText(pacs.node.address())
    dialog.pacs_send_saved.setChecked(True)
    dialog.pacs_commit.setChecked(True)
    assert dialog.save()
    saved = load_site_config(tmp_path / "site.json")
    assert (saved.pacs, saved.pacs_calling_ae, saved.pacs_send_saved, saved.pacs_commit) == (
        pacs.node.address(), "READING3", True, True)
    assert saved.pacs_node() == replace(pacs.node, calling_ae="READING3")


def test_measurements_saved_go_to_the_pacs_at_once(qtbot, tmp_path: Path, pacs: StorageServer) -> None:
    window = _window_sending_to(qtbot, tmp_path, pacs.node.address())
    open_and_wait(qtbot, window, [_ct_study(tmp_path)])
    qtbot.waitUntil(lambda: window.viewer.current_frame_data() is not None, timeout=SCAN_TIMEOUT)
    assert window.viewer.measure((10.5, 20.5), (60.5, 20.5)) is not None
    with qtbot.waitSignal(window.pacs.sent, timeout=SEND_TIMEOUT) as signal:
        written = window.save_measurements_sr()
    result: SendResult = signal.args[0]
    assert written is not None and result.sent == [written] and not result.problems
    assert [str(ds.SOPInstanceUID) for ds in pacs.received] == [str(pydicom.dcmread(written).SOPInstanceUID)]
    assert f"{written.name}: 1 file sent to {pacs.node}" in _jobs(window)
    assert window.statusBar().currentMessage() == f"{written.name}: 1 file sent to {pacs.node}"


def test_saving_without_sending_keeps_the_file_here_only(qtbot, tmp_path: Path, pacs: StorageServer) -> None:
    window = _window_sending_to(qtbot, tmp_path, pacs.node.address(), at_once=False)
    open_and_wait(qtbot, window, [_ct_study(tmp_path)])
    qtbot.waitUntil(lambda: window.viewer.current_frame_data() is not None, timeout=SCAN_TIMEOUT)
    window.viewer.measure((10.5, 20.5), (60.5, 20.5))
    assert window.save_measurements_sr() is not None
    qtbot.wait(300)
    assert pacs.received == [] and not window.pacs.sending


def test_a_reformat_series_and_its_report_are_sent_together(qtbot, tmp_path: Path, pacs: StorageServer) -> None:
    window = _window_sending_to(qtbot, tmp_path, pacs.node.address())
    files = [dicom_test_file("CT_small.dcm"), dicom_test_file("test-SR.dcm")]
    with qtbot.waitSignal(window.pacs.sent, timeout=SEND_TIMEOUT) as signal:
        window._on_reformat_saved("2 coronal images saved as a new series", files[0].parent, False, files)
    assert signal.args[0].sent == files and len(pacs.received) == 2


def test_the_study_goes_to_the_pacs_when_the_reader_confirms(qtbot, tmp_path: Path, pacs: StorageServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window(qtbot, tmp_path)
    study = tmp_path / "cd"
    study.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(dicom_test_file(name), study / name)
    open_and_wait(qtbot, window, [study])
    qtbot.waitUntil(lambda: window.current_series is not None, timeout=SCAN_TIMEOUT)
    assert not window.action("send_study").isEnabled()  # no PACS set yet
    window.apply_site(replace(window.site, pacs=pacs.node.address()))
    assert window.action("send_study").isEnabled()

    asked: list[str] = []

    def answer(reply: QMessageBox.StandardButton):  # type: ignore[no-untyped-def]
        def question(parent, title, text, *args):  # type: ignore[no-untyped-def]
            asked.append(text)
            return reply
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    assert window.send_study_to_pacs() is None and pacs.received == []
    assert f"to {pacs.node}?" in asked[0] and "1 image of" in asked[0]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    ref = window.current_series
    assert ref is not None
    with qtbot.waitSignal(window.pacs.sent, timeout=SEND_TIMEOUT):
        window.send_study_to_pacs()
    sent = {str(ds.SOPInstanceUID) for ds in pacs.received}
    assert sent == {str(pydicom.dcmread(p).SOPInstanceUID) for p in window.browser.study_paths(ref)}
    assert any(line.endswith(f"1 file sent to {pacs.node}") and "study of" in line for line in _jobs(window))


def test_a_pacs_out_of_reach_is_said_and_the_file_kept(qtbot, tmp_path: Path) -> None:
    window = _window_sending_to(qtbot, tmp_path, f"TESTPACS@127.0.0.1:{free_port()}")
    source = tmp_path / "sr.dcm"
    shutil.copy(dicom_test_file("test-SR.dcm"), source)
    worker = window.send_to_pacs([source])
    assert worker is not None
    qtbot.waitUntil(lambda: not window.pacs.sending, timeout=SEND_TIMEOUT)
    (line,) = _jobs(window)
    assert line.startswith("sr.dcm not sent to the PACS (kept on this PC): cannot reach the PACS TESTPACS at ")
    assert "refused" in line and source.is_file()
    assert window.statusBar().currentMessage() == f"⚠ {line}"


def test_no_pacs_set_says_where_to_set_one(qtbot, tmp_path: Path) -> None:
    window = make_window(qtbot, tmp_path)
    assert window.send_to_pacs([dicom_test_file("CT_small.dcm")]) is None
    assert "no PACS is set" in window.statusBar().currentMessage()


def test_studies_sent_from_the_pacs_join_the_study_list(qtbot, tmp_path: Path) -> None:
    import socket

    from zsmed.dicom.network import PacsNode, send_job
    from zsmed.progress import run_job

    port = free_port()
    window = make_window(qtbot, tmp_path)
    window.apply_site(replace(window.site, receive_port=str(port), receive_folder=str(tmp_path / "received"),
                              pacs_calling_ae="CT3"))
    assert window.pacs.receiver is not None and window.pacs.receiver.port == port, _jobs(window)
    assert window.receiving_label.text() == f"Receiving as CT3 on port {port}"
    assert not window.receiving_label.isHidden()
    # a study sent from the PACS before anything is open: it is what the window reads
    sent = run_job(send_job([dicom_test_file("CT_small.dcm")], PacsNode("CT3", "127.0.0.1", port, "PACS_MAIN")))
    assert len(sent.sent) == 1
    qtbot.waitUntil(lambda: window.browser.index is not None and not window.browser.scanning, timeout=SCAN_TIMEOUT)
    qtbot.waitUntil(lambda: window.current_series is not None, timeout=SCAN_TIMEOUT)
    assert window.current_series.patient.name == "CompressedSamples^CT1"
    assert "Received 1 file from PACS_MAIN (1 study: CompressedSamples^CT1 · 20040119 · CT)" in _jobs(window)
    # a second study joins the list beside the first
    run_job(send_job([dicom_test_file("MR_small.dcm")], PacsNode("CT3", "127.0.0.1", port, "PACS_MAIN")))
    qtbot.waitUntil(lambda: window.browser.index is not None and len(window.browser.index.patients) == 2,
                    timeout=SCAN_TIMEOUT)
    # receiving off: the port is let go
    window.apply_site(replace(window.site, receive_port=""))
    assert window.pacs.receiver is None and window.receiving_label.isHidden()
    with pytest.raises(ConnectionRefusedError):  # nothing listens there any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_port_that_cannot_be_listened_on_is_said(qtbot, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        window = make_window(qtbot, tmp_path)
        window.apply_site(replace(window.site, receive_port=str(port)))
        assert window.pacs.receiver is None
        assert window.statusBar().currentMessage() == (f"⚠ Not receiving from the PACS: cannot receive on port {port}: "
                                                       "another program listens on it")


def test_receiving_is_set_in_settings(qtbot, tmp_path: Path) -> None:
    dialog = SettingsDialog(SiteConfig(), site_path=tmp_path / "site.json")
    qtbot.addWidget(dialog)
    dialog.receive_port.setText("eleven")
    assert dialog.problems() == ["Receiving: the port to receive on must be a number, not 'eleven'"]
    dialog.receive_port.setText("11112")
    dialog.receive_from.setText("PACS_MAIN, CT_SCANNER")
    dialog.receive_folder.edit.setText(str(tmp_path))
    assert dialog.problems() == [] and dialog.save()
    config = load_site_config(tmp_path / "site.json").receiver_config()
    assert config is not None
    assert (config.port, config.allowed_callers, config.folder) == (11112, ("PACS_MAIN", "CT_SCANNER"), tmp_path)


@pytest.fixture()
def orthanc_and_port(tmp_path: Path) -> Iterator[tuple[PacsNode, int]]:
    """Orthanc, and the port it calls this workstation ("ZSMED") on."""
    from tests.pacs_server import orthanc_pacs

    for node, _rest, port in orthanc_pacs(tmp_path / "orthanc"):
        yield node, port


@pytest.fixture()
def orthanc(orthanc_and_port: tuple[PacsNode, int]) -> PacsNode:
    return orthanc_and_port[0]


def test_the_pacs_confirms_it_keeps_what_was_sent(qtbot, tmp_path: Path,
                                                  orthanc_and_port: tuple[PacsNode, int]) -> None:
    """Settings ▸ PACS ▸ Ask the PACS to confirm: Orthanc answers on a new connection to the app's receiver."""
    node, port = orthanc_and_port
    window = make_window(qtbot, tmp_path)
    window.apply_site(replace(window.site, pacs=node.address(), pacs_calling_ae="ZSMED", pacs_commit=True,
                              receive_port=str(port), receive_folder=str(tmp_path / "received")))
    assert window.pacs.receiver is not None
    ct = dicom_test_file("CT_small.dcm")
    with qtbot.waitSignal(window.pacs.sent, timeout=SEND_TIMEOUT):
        window.send_to_pacs([ct])
    line = f"{ct.name}: 1 file sent to {node}; the PACS confirmed it keeps it (storage commitment)"
    assert line in _jobs(window)
    assert not list((tmp_path / "received").rglob("*.dcm"))  # the answer is no study
    # not receiving: the PACS cannot answer; said, with where to set a port, the file kept
    window.apply_site(replace(window.site, receive_port=""))
    window.pacs._commit_wait = 1.0
    with qtbot.waitSignal(window.pacs.sent, timeout=SEND_TIMEOUT):
        window.send_to_pacs([ct])
    unanswered = [line for line in _jobs(window) if "accepted the storage commitment request" in line]
    assert len(unanswered) == 1, _jobs(window)
    assert "had not answered within 1 s" in unanswered[0] and "the files stay on this PC" in unanswered[0]
    assert "set a port to receive on in Settings ▸ PACS" in unanswered[0]


def test_studies_are_found_and_fetched_from_the_pacs(qtbot, tmp_path: Path, orthanc: PacsNode) -> None:
    from zsmed.dicom.network import send_job
    from zsmed.progress import run_job

    node = orthanc
    run_job(send_job([dicom_test_file(name) for name in ("CT_small.dcm", "MR_small.dcm")], node))
    window = make_window(qtbot, tmp_path)
    assert not window.action("get_studies").isEnabled()  # no PACS set
    window.apply_site(replace(window.site, pacs=node.address(), receive_folder=str(tmp_path / "received")))
    assert window.action("get_studies").isEnabled()
    # the MR is on this PC already, and shown: the dialog looks for its patient at once
    local = tmp_path / "local"
    local.mkdir()
    shutil.copy(dicom_test_file("MR_small.dcm"), local / "mr.dcm")
    open_and_wait(qtbot, window, [local])
    qtbot.waitUntil(lambda: window.current_series is not None, timeout=SCAN_TIMEOUT)
    dialog = window.get_studies_from_pacs()
    assert dialog.patient_id.text() == "4MR1"
    qtbot.waitUntil(lambda: not dialog.is_busy() and dialog.table.rowCount() == 1, timeout=SEND_TIMEOUT)
    assert dialog.table.item(0, 2).text().endswith("(on this PC)") and dialog.table.item(0, 1).text() == "MR"
    # another patient by name; the newest study selected; Get fetches it into the study list
    dialog.patient_id.clear()
    dialog.name.setText("CompressedSamples^C*")
    dialog.search()
    qtbot.waitUntil(lambda: not dialog.is_busy() and dialog.table.rowCount() == 1, timeout=SEND_TIMEOUT)
    assert dialog.table.item(0, 0).text() == "2004-01-19" and dialog.get_button.isEnabled()
    with qtbot.waitSignal(dialog.fetched, timeout=SEND_TIMEOUT):
        dialog.get_selected()
    assert dialog.message.text() == f"1 image fetched from {node}"
    qtbot.waitUntil(lambda: window.browser.index is not None and len(window.browser.index.patients) == 2,
                    timeout=SCAN_TIMEOUT)
    assert f"1 image fetched from {node}" in _jobs(window)
    assert len(list((tmp_path / "received").rglob("*.dcm"))) == 1
    dialog.name.setText("NOBODY")
    dialog.search()
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=SEND_TIMEOUT)
    assert dialog.message.text() == "No study on the PACS matches." and not dialog.get_button.isEnabled()
    dialog.close()


def test_tls_is_set_on_the_pacs_page(qtbot, tmp_path: Path) -> None:
    from tests.pacs_server import tls_files

    pki = tls_files(tmp_path / "pki")
    dialog = SettingsDialog(SiteConfig(), site_path=tmp_path / "site.json")
    qtbot.addWidget(dialog)
    assert [dialog.tabs.tabText(k) for k in range(dialog.tabs.count())] == ["General", "PACS"]
    dialog.pacs.setText("PACS@127.0.0.1:2762")
    dialog.pacs_tls_cert.edit.setText(str(pki.cert))
    dialog.pacs_tls_key.edit.setText(str(pki.key))
    assert dialog.problems() == ["TLS: set the trusted certificates (pacs_tls_ca) with this workstation's own"]
    dialog.pacs_tls_ca.edit.setText(str(tmp_path / "missing.pem"))
    assert dialog.problems() == [f"TLS: the trusted certificates file {tmp_path / 'missing.pem'} is not there"]
    dialog.pacs_tls_ca.edit.setText(str(pki.ca))
    assert dialog.problems() == [] and dialog.save()
    node = load_site_config(tmp_path / "site.json").pacs_node()
    assert node is not None and node.tls is not None and node.tls.ca_file == pki.ca and str(node).endswith("(TLS)")
