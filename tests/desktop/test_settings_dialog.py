from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from zsmed.site import MachineSettings, SiteConfig, load_site_config, os_user, site_file
from zsmed_desktop.settings_dialog import SettingsDialog


def test_settings_round_trip_to_site_json(qtbot, isolated_dirs: Path) -> None:
    models = isolated_dirs / "models here"
    models.mkdir()
    dialog = SettingsDialog(load_site_config())
    qtbot.addWidget(dialog)
    assert dialog.reader_name.placeholderText().startswith(os_user())
    dialog.site_name.setText("St Elsewhere radiology")
    dialog.reader_name.setText("Dr Quincy")
    dialog.store_patient_id.setChecked(True)
    dialog.caselog.edit.setText(str(isolated_dirs / "log.sqlite"))
    dialog.models_folder.edit.setText(str(models))
    dialog.backend.setCurrentIndex(dialog.backend.findData("onnxruntime"))
    dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    with qtbot.waitSignal(dialog.settings_changed, timeout=5000) as blocker:
        assert dialog.save()
    saved = json.loads(site_file().read_text())
    assert site_file().parent == isolated_dirs / "data"
    assert saved["site_name"] == "St Elsewhere radiology" and saved["reader_name"] == "Dr Quincy"
    assert saved["store_patient_id"] is True and saved["backend"] == "onnxruntime" and saved["theme"] == "light"
    again = load_site_config()
    assert again == blocker.args[0]
    assert again.reader == "Dr Quincy"
    assert again.resolved_caselog_path() == isolated_dirs / "log.sqlite"
    assert again.resolved_models_folder() == models

    # Reopened, the dialog shows what was saved.
    reopened = SettingsDialog(again)
    qtbot.addWidget(reopened)
    assert reopened.values() == again
    assert reopened.theme.currentText() == "Light"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("caselog", "{tmp}", "is a folder"),
        ("caselog", "{tmp}/no/such/folder/log.sqlite", "does not exist"),
        ("models_folder", "{tmp}/missing", "does not exist"),
        ("models_folder", "{tmp}/a file", "is a file"),
        ("reader_name", "Dr\tTab", "control character"),
        ("site_name", "x" * 500, "too long"),
    ],
)
def test_invalid_values_are_shown_and_nothing_is_saved(qtbot, isolated_dirs: Path, field: str, value: str,
                                                      expected: str) -> None:
    (isolated_dirs / "a file").write_text("not a folder")
    dialog = SettingsDialog(SiteConfig())
    qtbot.addWidget(dialog)
    widget = getattr(dialog, field)
    edit = getattr(widget, "edit", widget)
    edit.setText(value.replace("{tmp}", str(isolated_dirs)))
    emitted: list[object] = []
    dialog.settings_changed.connect(emitted.append)
    assert dialog.save() is False
    assert not dialog.error_label.isHidden()
    assert expected in dialog.error_label.text()
    assert not site_file().exists()
    assert emitted == []


def test_an_unwritable_settings_file_is_a_message_not_a_crash(qtbot, isolated_dirs: Path) -> None:
    blocker_dir = isolated_dirs / "ro"
    blocker_dir.mkdir()
    target = blocker_dir / "site.json"
    target.mkdir()  # a folder where the file should go: os.replace fails
    dialog = SettingsDialog(SiteConfig(), site_path=target)
    qtbot.addWidget(dialog)
    dialog.reader_name.setText("Dr Who")
    assert dialog.save() is False
    assert "could not be saved" in dialog.error_label.text()
    assert str(target) in dialog.error_label.text()


def test_defaults_are_readable_hints_with_the_home_folder_as_tilde(qtbot, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home" / "reader"
    data = home / ".local" / "share" / "zsmed"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ZSMED_DATA_DIR", str(data))
    dialog = SettingsDialog(SiteConfig())
    qtbot.addWidget(dialog)
    assert dialog.caselog.edit.placeholderText() == "Default: ~/.local/share/zsmed/caselog.sqlite"
    assert dialog.models_folder.edit.placeholderText() == "Default: ~/.local/share/zsmed/models"
    assert str(home) not in dialog.caselog.edit.placeholderText()
    assert dialog.caselog.edit.toolTip() == f"Left empty: {data / 'caselog.sqlite'}"  # the full path on hover
    assert dialog.caselog.text() == "" and dialog.values().caselog_path == ""  # a hint, not a value
    # A data folder outside the home folder is shown as it is.
    monkeypatch.setenv("ZSMED_DATA_DIR", str(tmp_path / "srv"))
    other = SettingsDialog(SiteConfig())
    qtbot.addWidget(other)
    assert other.caselog.edit.placeholderText() == f"Default: {tmp_path / 'srv' / 'caselog.sqlite'}"


def test_the_signing_key_is_checked_and_kept(qtbot, isolated_dirs: Path) -> None:
    from zsmed.runtime.format import generate_keypair

    dialog = SettingsDialog(load_site_config())
    qtbot.addWidget(dialog)
    assert dialog.signing_key.edit.placeholderText() == "none: models built here are not signed"
    bad = isolated_dirs / "wrong.key"
    bad.write_text("not a key")
    dialog.signing_key.edit.setText(str(bad))
    assert not dialog.save()
    assert dialog.error_label.text().startswith("Signing key: ") and "(wrong.key)" in dialog.error_label.text()
    private, _ = generate_keypair(isolated_dirs / "site")
    dialog.signing_key.edit.setText(str(private))
    assert dialog.save()
    assert load_site_config().signing_key == str(private)


def test_settings_the_hospital_locks_are_greyed_and_kept(qtbot, isolated_dirs: Path, monkeypatch) -> None:
    """A machine-wide file from IT locks the case log on the department's share: the field is greyed
    with who sets it and where, saving leaves it out of the reader's file, and what the reader may change
    (their name) is saved as usual."""
    share = isolated_dirs / "share"
    share.mkdir()
    etc = isolated_dirs / "etc" / "site.json"
    etc.parent.mkdir()
    etc.write_text(json.dumps({"site_name": "St Mary's Radiology", "caselog_path": str(share / "caselog.sqlite"),
                               "locked": ["caselog_path", "site_name"]}))
    monkeypatch.setenv("ZSMED_SITE_DEFAULTS", str(etc))
    dialog = SettingsDialog(load_site_config())
    qtbot.addWidget(dialog)
    assert not dialog.caselog.isEnabled() and not dialog.site_name.isEnabled()
    assert dialog.reader_name.isEnabled() and dialog.models_folder.isEnabled() and dialog.theme.isEnabled()
    assert dialog.caselog.text() == str(share / "caselog.sqlite")
    assert "IT department" in dialog.caselog.toolTip() and str(etc.name) in dialog.caselog.toolTip()
    assert not dialog.locked_note.isHidden() and "IT department" in dialog.locked_note.text()
    dialog.reader_name.setText("Dr Quincy")
    share.rmdir()  # the share out of reach now: not the reader's to fix, and nothing of it is saved
    assert dialog.problems() == [] and dialog.save()
    share.mkdir()
    saved = json.loads(site_file().read_text())
    assert saved["reader_name"] == "Dr Quincy" and "caselog_path" not in saved and "site_name" not in saved
    again = load_site_config()
    assert again.resolved_caselog_path() == share / "caselog.sqlite" and again.site_name == "St Mary's Radiology"
    unlocked = SettingsDialog(SiteConfig(), machine=MachineSettings())
    qtbot.addWidget(unlocked)
    assert unlocked.caselog.isEnabled() and unlocked.locked_note.isHidden()
