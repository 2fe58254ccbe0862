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
