import json
from pathlib import Path

import pytest

from zsmed.errors import ConfigError
from zsmed.site import SiteConfig, load_site_config, os_user, save_site_config, updated


def test_defaults_when_nothing_saved(tmp_path: Path) -> None:
    config = load_site_config(tmp_path / "site.json")
    assert config == SiteConfig()
    assert config.reader == os_user()


def test_round_trip_and_resolved_paths(tmp_path: Path) -> None:
    path = tmp_path / "site.json"
    config = updated(
        SiteConfig(), site_name="St Elsewhere", reader_name="Dr Who",
        caselog_path=str(tmp_path / "x.sqlite"), backend="openvino",
    )
    save_site_config(config, path)
    again = load_site_config(path)
    assert again == config
    assert again.reader == "Dr Who"
    assert again.resolved_caselog_path() == tmp_path / "x.sqlite"
    assert not path.with_name("site.json.tmp").exists()


def test_default_caselog_lives_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSMED_DATA_DIR", str(tmp_path / "data"))
    assert SiteConfig().resolved_caselog_path() == tmp_path / "data" / "caselog.sqlite"
    assert SiteConfig().resolved_models_folder() == tmp_path / "data" / "models"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"backend": "cuda"}), "backend must be one of"),
        (json.dumps({"store_patient_id": "yes"}), "true/false"),
        (json.dumps({"reader_name": 3}), "must be text"),
    ],
)
def test_broken_settings_are_named_errors(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "site.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=reason) as info:
        load_site_config(path)
    assert str(path) in str(info.value)
    assert path.read_text() == content  # never silently replaced


def test_settings_overwritten_with_binary_bytes_are_a_named_error(tmp_path: Path) -> None:
    from zsmed.errors import ZsmedError
    from zsmed.runtime.trust import load_revocations

    for name, load in (("site.json", load_site_config), ("revoked.json", load_revocations)):
        path = tmp_path / name
        path.write_bytes(b'{"site_name": "\xff\xfe"}')
        with pytest.raises(ZsmedError, match="not a text file") as info:
            load(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
        assert path.read_bytes() == b'{"site_name": "\xff\xfe"}'


# --- machine-wide settings (what IT deploys to every workstation) ------------------------------------
def machine_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: dict | str) -> Path:
    from zsmed.site import MACHINE_SITE_ENV

    path = tmp_path / "etc" / "site.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    monkeypatch.setenv(MACHINE_SITE_ENV, str(path))
    return path


def test_machine_wide_settings_are_defaults_and_locked_ones_win(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from zsmed.site import load_machine_settings, machine_site_file

    share = str(tmp_path / "share" / "caselog.sqlite")
    etc = machine_file(tmp_path, monkeypatch, {
        "site_name": "St Mary's Radiology", "caselog_path": share, "theme": "light", "locked": ["caselog_path"]})
    assert machine_site_file() == etc
    machine = load_machine_settings()
    assert machine.locked == {"caselog_path"} and machine.path == etc
    user = tmp_path / "user" / "site.json"
    user.parent.mkdir()
    # Nothing saved by the reader: the machine's settings.
    config = load_site_config(user)
    assert (config.site_name, config.caselog_path, config.theme) == ("St Mary's Radiology", share, "light")
    # The reader's own file: their theme and name win; the locked case log does not move.
    user.write_text(json.dumps({"theme": "dark", "site_name": "Ward 7", "caselog_path": "/tmp/mine.sqlite"}))
    config = load_site_config(user)
    assert (config.site_name, config.caselog_path, config.theme) == ("Ward 7", share, "dark")

    # Saving writes only the reader's own choices: never a locked one, nor one equal to the machine's,
    # so that IT's later change reaches this workstation.
    save_site_config(updated(config, site_name="St Mary's Radiology", reader_name="Dr B"), user)
    saved = json.loads(user.read_text())
    assert "caselog_path" not in saved and "site_name" not in saved
    assert saved["reader_name"] == "Dr B" and saved["theme"] == "dark"
    etc.write_text(json.dumps({"site_name": "St Mary's Hospital", "caselog_path": share, "locked": ["caselog_path"]}))
    assert load_site_config(user).site_name == "St Mary's Hospital"
    assert load_site_config(user).reader_name == "Dr B"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{oops", "machine-wide settings file is not valid JSON"),
        (json.dumps({"locked": "caselog_path"}), '"locked" must be a list'),
        (json.dumps({"locked": ["case_log"]}), "cannot lock unknown setting"),
        (json.dumps({"backend": "cuda"}), "backend must be one of"),
    ],
)
def test_a_broken_machine_wide_file_is_a_named_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      content: str, reason: str) -> None:
    etc = machine_file(tmp_path, monkeypatch, content)
    with pytest.raises(ConfigError, match=reason) as info:
        load_site_config(tmp_path / "site.json")
    assert str(etc) in str(info.value)


def test_without_a_machine_wide_file_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zsmed.site import load_machine_settings

    monkeypatch.setenv("ZSMED_SITE_DEFAULTS", str(tmp_path / "absent.json"))
    assert load_machine_settings().path is None
    path = tmp_path / "site.json"
    save_site_config(updated(SiteConfig(), reader_name="Dr C"), path)
    assert json.loads(path.read_text())["reader_name"] == "Dr C"
    assert load_site_config(path) == updated(SiteConfig(), reader_name="Dr C")
