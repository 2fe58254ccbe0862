"""Settings: what a site sets once (site.json, shared with the CLI).

Every value is checked here before it is saved; a value that cannot serve is named in the dialog
next to the Save button and nothing is written. The dialog never raises.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from zsmed.errors import ZsmedError
from zsmed.paths import user_data_dir
from zsmed.site import BACKENDS, THEMES, MachineSettings, SiteConfig, load_machine_settings, os_user, save_site_config

BACKEND_LABELS = {"auto": "Automatic (fastest available)", "openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}
THEME_LABELS = {"dark": "Dark", "light": "Light"}
MAX_NAME = 120
ERROR_STYLE = "color: #e53935;"
OK_STYLE = "color: #43a047;"


def _check_name(value: str, what: str) -> str | None:
    if len(value) > MAX_NAME:
        return f"{what} is too long ({len(value)} characters; at most {MAX_NAME})"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return f"{what} holds a control character (a tab or a line break); type it on one line"
    return None


def _check_caselog(value: str) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        return f"Case log: {path} is a folder; give a file name inside it (for example caselog.sqlite)"
    parent = path.parent
    if not parent.is_dir():
        return f"Case log: the folder {parent} does not exist"
    if not os.access(parent, os.W_OK) and not (path.exists() and os.access(path, os.W_OK)):
        return f"Case log: the folder {parent} cannot be written to (permission denied)"
    return None


def _check_pacs(address: str, calling_ae: str) -> str | None:
    """The PACS as typed (empty: none), and this workstation's AE title."""
    from zsmed.dicom.network import PacsNode, check_ae_title

    try:
        if calling_ae.strip():
            check_ae_title(calling_ae, "This workstation's AE title")
        if address.strip():
            PacsNode.parse(address, calling_ae)
    except ZsmedError as exc:
        return f"PACS: {exc.reason}"
    return None


def _check_tls(ca: str, cert: str, key: str) -> str | None:
    """The TLS files as typed: the trusted certificates with this workstation's own, each there."""
    try:
        tls = SiteConfig(pacs_tls_ca=ca.strip(), pacs_tls_cert=cert.strip(), pacs_tls_key=key.strip()).tls_config()
        if tls is not None:
            tls.check_files()
    except ZsmedError as exc:
        return exc.reason
    return None


def _check_receiving(port: str, callers: str, folder: str) -> str | None:
    """Receiving from the PACS as typed: the port (empty: off), the callers, the folder."""
    try:
        SiteConfig(receive_port=port.strip(), receive_from=callers.strip()).receiver_config()
    except ZsmedError as exc:
        return f"Receiving: {exc.reason}"
    path = Path(folder).expanduser() if folder.strip() else None
    if path is not None and path.exists() and not path.is_dir():
        return f"Received studies: {path} is a file, not a folder"
    return None


def _check_models_folder(value: str) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        return f"Models folder: {path} is a file, not a folder"
    if not path.exists():
        return f"Models folder: {path} does not exist"
    return None


def _check_signing_key(value: str) -> str | None:
    if not value:
        return None
    from zsmed.runtime.format import load_private_key

    try:
        load_private_key(Path(value).expanduser())
    except ZsmedError as exc:
        return f"Signing key: {exc.reason} ({Path(value).name})"
    return None


def readable_path(path: str | Path) -> str:
    """A path as a reader would write it: the home folder as ``~`` (``~/.local/share/zsmed``)."""
    text = str(path)
    try:
        home = str(Path.home())
    except (RuntimeError, KeyError):  # no home folder known
        return text
    if home and home != os.sep and (text == home or text.startswith(home.rstrip(os.sep) + os.sep)):
        return "~" + text[len(home.rstrip(os.sep)):]
    return text


class _PathField(QWidget):
    """A line edit with a Browse… button (a folder or a file to save)."""

    def __init__(self, value: str, default: str, *, folder: bool, caption: str, open_file: str = "") -> None:
        super().__init__()
        self.edit = QLineEdit(value)
        self.default = default
        self.edit.setPlaceholderText(f"Default: {readable_path(default)}" if default else "")
        self.edit.setToolTip(f"Left empty: {default}" if default else "")
        self._folder = folder
        self._caption = caption
        self._open_file = open_file  # a file filter: choose an existing file instead of a file to save
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)

    def _browse(self) -> None:
        start = self.edit.text().strip() or self.default
        if self._folder:
            chosen = QFileDialog.getExistingDirectory(self, self._caption, start)
        elif self._open_file:
            chosen, _ = QFileDialog.getOpenFileName(self, self._caption, start, self._open_file)
        else:
            chosen, _ = QFileDialog.getSaveFileName(self, self._caption, start, "Case log (*.sqlite);;All files (*)")
        if chosen:
            self.edit.setText(chosen)

    def text(self) -> str:
        return self.edit.text().strip()


class SettingsDialog(QDialog):
    settings_changed = Signal(object)  # SiteConfig, after it was saved

    def __init__(self, site: SiteConfig, parent: QWidget | None = None, *, site_path: Path | None = None,
                 machine: MachineSettings | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(620)
        self._site = site
        self._site_path = site_path
        self.saved_path: Path | None = None
        if machine is None:
            try:
                machine = load_machine_settings()
            except ZsmedError:  # the window has said so at start; nothing here is locked then
                machine = MachineSettings()
        self._machine = machine

        try:
            data_dir = str(user_data_dir())
        except ZsmedError as exc:  # a data dir that cannot be created: say so, keep the dialog usable
            data_dir = f"(unavailable: {exc.reason})"
        self.site_name = QLineEdit(site.site_name)
        self.site_name.setPlaceholderText("for example: St Mary's Radiology")
        self.reader_name = QLineEdit(site.reader_name)
        self.reader_name.setPlaceholderText(f"{os_user()} (your computer login)")
        self.reader_name.setToolTip("Recorded with every result and review in the case log")
        self.store_patient_id = QCheckBox("Keep patient IDs readable in the case log (off: a keyed code only)")
        self.store_patient_id.setChecked(site.store_patient_id)
        self.store_patient_id.setToolTip(
            "Off: the case log keeps only a keyed code for each patient ID (pseudonymised). "
            "On: the patient ID itself is kept."
        )
        self.caselog = _PathField(site.caselog_path, str(Path(data_dir) / "caselog.sqlite"), folder=False,
                                  caption="Case log file")
        self.models_folder = _PathField(site.models_folder, str(Path(data_dir) / "models"), folder=True,
                                        caption="Folder of model files")
        self.signing_key = _PathField(site.signing_key, "", folder=False, caption="The site's signing key",
                                      open_file="Signing key (*.key *.pem);;All files (*)")
        self.signing_key.edit.setPlaceholderText("none: models built here are not signed")
        self.signing_key.edit.setToolTip("The private key made with 'zsmed bundle keygen': models built here are "
                                         "signed with it, so PCs that trust its public key accept them")
        self.backend = QComboBox()
        for key in BACKENDS:
            self.backend.addItem(BACKEND_LABELS.get(key, key), key)
        self.backend.setCurrentIndex(max(0, self.backend.findData(site.backend)))
        self.theme = QComboBox()
        for key in THEMES:
            self.theme.addItem(THEME_LABELS.get(key, key), key)
        self.theme.setCurrentIndex(max(0, self.theme.findData(site.theme)))

        self.pacs = QLineEdit(site.pacs)
        self.pacs.setPlaceholderText("none (files only) · e.g. PACS@pacs.hospital:104")
        self.pacs.setToolTip("The PACS results are sent to, as its administrator gives it: AE title, host and port")
        self.pacs_calling_ae = QLineEdit(site.pacs_calling_ae)
        self.pacs_calling_ae.setPlaceholderText("ZSMED")
        self.pacs_calling_ae.setToolTip("The name this workstation calls the PACS by; the PACS's administrator "
                                        "registers it with this PC's address")
        self.pacs_send_saved = QCheckBox("Send what is saved for the PACS to it at once")
        self.pacs_send_saved.setToolTip("Results as DICOM SR, measurements, views (presentation states), key image "
                                        "notes and reformatted series: saved on this PC as now, then sent")
        self.pacs_send_saved.setChecked(site.pacs_send_saved)
        self.pacs_commit = QCheckBox("Ask the PACS to confirm it keeps what is sent")
        self.pacs_commit.setToolTip("DICOM storage commitment: after each send the PACS is asked to confirm it "
                                    "archived the files; most PACS answer on the port set to receive on")
        self.pacs_commit.setChecked(site.pacs_commit)
        self.pacs_test = QPushButton("Test")
        self.pacs_test.setToolTip("Ask the PACS whether it answers zsmed (a DICOM echo)")
        self.pacs_test.clicked.connect(self.test_pacs)
        self.receive_port = QLineEdit(site.receive_port)
        self.receive_port.setPlaceholderText("off · e.g. 11112")
        self.receive_port.setToolTip("Receive studies sent from the PACS on this port, as this workstation's AE "
                                     "title; the PACS's administrator adds this PC as a destination")
        self.receive_folder = _PathField(site.receive_folder, str(Path(data_dir) / "received"), folder=True,
                                         caption="Folder for studies received from the PACS")
        self.receive_from = QLineEdit(site.receive_from)
        self.receive_from.setPlaceholderText("any caller · e.g. PACS_MAIN, CT_SCANNER")
        self.receive_from.setToolTip("The AE titles allowed to send studies here, separated by commas")
        pem = "Certificates (*.pem *.crt *.cer);;All files (*)"
        self.pacs_tls_ca = _PathField(site.pacs_tls_ca, "", folder=False, caption="Trusted certificate authorities",
                                      open_file=pem)
        self.pacs_tls_ca.edit.setPlaceholderText("none: plain DICOM · set: DICOM over TLS")
        self.pacs_tls_ca.edit.setToolTip("The certificate authorities (PEM) whose certificates this workstation "
                                         "trusts for the PACS and for those who send to it")
        self.pacs_tls_cert = _PathField(site.pacs_tls_cert, "", folder=False, caption="This workstation's "
                                        "certificate", open_file=pem)
        self.pacs_tls_cert.edit.setPlaceholderText("for mutual TLS and for receiving")
        self.pacs_tls_key = _PathField(site.pacs_tls_key, "", folder=False, caption="This workstation's key",
                                       open_file="Keys (*.key *.pem);;All files (*)")
        self.pacs_tls_key.edit.setPlaceholderText("the key of that certificate")
        self.pacs_result = QLabel()
        self.pacs_result.setWordWrap(True)
        self.pacs_result.setTextFormat(Qt.TextFormat.PlainText)
        self.pacs_result.hide()
        self._echo_worker: object | None = None
        pacs_row = QWidget()
        pacs_line = QHBoxLayout(pacs_row)
        pacs_line.setContentsMargins(0, 0, 0, 0)
        pacs_line.addWidget(self.pacs, 1)
        pacs_line.addWidget(self.pacs_test)

        self.locked_note = QLabel()
        self.locked_note.setWordWrap(True)
        self._lock_fields()

        form = QFormLayout()
        form.addRow(self.locked_note)
        form.addRow("Site name", self.site_name)
        form.addRow("Reader name", self.reader_name)
        form.addRow("Patient IDs", self.store_patient_id)
        form.addRow("Case log file", self.caselog)
        form.addRow("Models folder", self.models_folder)
        form.addRow("Signing key", self.signing_key)
        form.addRow("Runtime", self.backend)
        form.addRow("Theme", self.theme)
        general = QWidget()
        general.setLayout(form)
        # the PACS on a page of its own: what a PACS administrator sets up, apart from the reader's own settings
        pacs_form = QFormLayout()
        pacs_form.addRow("PACS", pacs_row)
        pacs_form.addRow("Workstation AE title", self.pacs_calling_ae)
        pacs_form.addRow("", self.pacs_send_saved)
        pacs_form.addRow("", self.pacs_commit)
        pacs_form.addRow("", self.pacs_result)
        pacs_form.addRow("Receive on port", self.receive_port)
        pacs_form.addRow("Received studies", self.receive_folder)
        pacs_form.addRow("Receive from", self.receive_from)
        pacs_form.addRow("TLS: trusted certificates", self.pacs_tls_ca)
        pacs_form.addRow("TLS: workstation certificate", self.pacs_tls_cert)
        pacs_form.addRow("TLS: workstation key", self.pacs_tls_key)
        pacs_page = QWidget()
        pacs_page.setLayout(pacs_form)
        self.tabs = QTabWidget()
        self.tabs.addTab(general, "General")
        self.tabs.addTab(pacs_page, "PACS")

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)  # typed paths are not markup
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.hide()

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def fields_by_setting(self) -> dict[str, QWidget]:
        return {"site_name": self.site_name, "reader_name": self.reader_name, "store_patient_id": self.store_patient_id,
                "caselog_path": self.caselog, "models_folder": self.models_folder, "signing_key": self.signing_key,
                "backend": self.backend, "theme": self.theme, "pacs": self.pacs,
                "pacs_calling_ae": self.pacs_calling_ae, "pacs_send_saved": self.pacs_send_saved,
                "pacs_commit": self.pacs_commit,
                "receive_port": self.receive_port, "receive_folder": self.receive_folder,
                "receive_from": self.receive_from, "pacs_tls_ca": self.pacs_tls_ca,
                "pacs_tls_cert": self.pacs_tls_cert, "pacs_tls_key": self.pacs_tls_key}

    def _lock_fields(self) -> None:
        """Settings the hospital's machine-wide file locks are shown greyed, saying who sets them and where."""
        locked = sorted(self._machine.locked)
        where = readable_path(self._machine.path) if self._machine.path is not None else ""
        for name, widget in self.fields_by_setting().items():
            if name in locked:
                widget.setEnabled(False)
                widget.setToolTip(f"Set for every workstation by your IT department ({where})")
        self.locked_note.setText(
            f"Greyed settings are set for every workstation by your IT department ({where})." if locked else "")
        self.locked_note.setVisible(bool(locked))

    # --- values ---------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Every value that cannot be saved, one line each (empty: all fine)."""
        checks = {
            "site_name": lambda: _check_name(self.site_name.text().strip(), "Site name"),
            "reader_name": lambda: _check_name(self.reader_name.text().strip(), "Reader name"),
            "caselog_path": lambda: _check_caselog(self.caselog.text()),
            "models_folder": lambda: _check_models_folder(self.models_folder.text()),
            "signing_key": lambda: _check_signing_key(self.signing_key.text()),
            "pacs": lambda: _check_pacs(self.pacs.text(), self.pacs_calling_ae.text()),
            "pacs_tls_ca": lambda: _check_tls(self.pacs_tls_ca.text(), self.pacs_tls_cert.text(),
                                              self.pacs_tls_key.text()),
            "receive_port": lambda: _check_receiving(self.receive_port.text(), self.receive_from.text(),
                                                     self.receive_folder.text()),
        }
        # a locked setting is IT's (a share this PC may not reach now): not the reader's to fix, not saved
        found = [check() for name, check in checks.items() if name not in self._machine.locked]
        return [p for p in found if p]

    def values(self) -> SiteConfig:
        """The settings as typed (raises ``ConfigError`` for a value SiteConfig refuses)."""
        return replace(
            self._site,
            site_name=self.site_name.text().strip(),
            reader_name=self.reader_name.text().strip(),
            store_patient_id=self.store_patient_id.isChecked(),
            caselog_path=self.caselog.text(),
            models_folder=self.models_folder.text(),
            signing_key=self.signing_key.text(),
            backend=str(self.backend.currentData()),
            theme=str(self.theme.currentData()),
            pacs=self.pacs.text().strip(),
            pacs_calling_ae=self.pacs_calling_ae.text().strip(),
            pacs_send_saved=self.pacs_send_saved.isChecked(),
            pacs_commit=self.pacs_commit.isChecked(),
            receive_port=self.receive_port.text().strip(),
            receive_folder=self.receive_folder.text(),
            receive_from=self.receive_from.text().strip(),
            pacs_tls_ca=self.pacs_tls_ca.text(),
            pacs_tls_cert=self.pacs_tls_cert.text(),
            pacs_tls_key=self.pacs_tls_key.text(),
        )

    # --- the PACS -------------------------------------------------------------------------------
    def test_pacs(self) -> None:
        """Test: a DICOM echo to the PACS as typed (saved or not), in the worker; its answer below the field."""
        from zsmed.dicom.network import PacsNode, echo_job
        from zsmed_desktop.workers import start_job

        problem = _check_pacs(self.pacs.text(), self.pacs_calling_ae.text())
        if problem is None and not self.pacs.text().strip():
            problem = "PACS: type its address first (AE_TITLE@HOST:PORT, from its administrator)"
        if problem is not None:
            self._pacs_said(problem, ok=False)
            return
        node = PacsNode.parse(self.pacs.text(), self.pacs_calling_ae.text())
        self.pacs_test.setEnabled(False)
        self._pacs_said(f"Asking {node}…", ok=None)

        def finished() -> None:
            self.pacs_test.setEnabled(True)
            self._echo_worker = None

        def answered(seconds: float) -> None:
            finished()
            self._pacs_said(f"{node} answered zsmed ({node.calling_ae}) in {seconds * 1000:.0f} ms", ok=True)

        def failed(message: str) -> None:
            finished()
            self._pacs_said(message, ok=False)

        self._echo_worker = start_job(lambda: echo_job(node), on_done=answered, on_error=failed,
                                      on_cancelled=finished, owner=self)

    def _pacs_said(self, text: str, *, ok: bool | None) -> None:
        self.pacs_result.setText(text)
        self.pacs_result.setStyleSheet(ERROR_STYLE if ok is False else (OK_STYLE if ok else ""))
        self.pacs_result.show()

    def is_testing(self) -> bool:
        return self._echo_worker is not None

    def show_problems(self, problems: list[str]) -> None:
        self.error_label.setText("\n".join(problems))
        self.error_label.setVisible(bool(problems))

    def save(self) -> bool:
        """Check, save to site.json, announce and close; on a problem say it here and stay open."""
        problems = self.problems()
        config: SiteConfig | None = None
        if not problems:
            try:
                config = self.values()
            except ZsmedError as exc:
                problems = [exc.reason]
        if config is None or problems:
            self.show_problems(problems)
            return False
        try:
            self.saved_path = save_site_config(config, self._site_path, machine=self._machine)
        except ZsmedError as exc:
            self.show_problems([f"The settings could not be saved: {exc}"])
            return False
        self.show_problems([])
        self._site = config
        self.settings_changed.emit(config)
        self.accept()
        return True

    @property
    def site(self) -> SiteConfig:
        return self._site
