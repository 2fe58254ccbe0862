"""Models and their cards (Models > Models and their cards…): the list, the card in plain words,
the file and signature check, import from elsewhere, remove into 'removed', use."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox

from tests.conftest import REPO
from tests.desktop.reading_room import make_window
from zsmed.runtime import format as fmt
from zsmed.site import SiteConfig
from zsmed_desktop.models_view import REMOVED_FOLDER, ModelsDialog, card_html, method_words

REFERENCE = REPO / "export" / "reference"
SGPS = REFERENCE / "sgps_ham4_lite0_v1.zsmb"
PROTONET = REFERENCE / "ham4_protonet_lite0_v1.zsmb"
TIMEOUT = 60_000


def card_of(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(fmt.CARD))


@pytest.fixture()
def site(isolated_dirs: Path) -> SiteConfig:
    models = isolated_dirs / "models"
    models.mkdir()
    shutil.copy(SGPS, models / SGPS.name)
    return SiteConfig(reader_name="Dr Models", models_folder=str(models),
                      caselog_path=str(isolated_dirs / "caselog.sqlite"))


def checked(qtbot, dialog: ModelsDialog) -> str:  # type: ignore[no-untyped-def]
    path = dialog.current_path()
    assert path is not None
    qtbot.waitUntil(lambda: dialog.checked(path) is not None, timeout=TIMEOUT)
    return dialog.checked(path) or ""


def test_the_card_in_plain_words() -> None:
    card = card_of(SGPS)
    page = card_html(card, "skin model", "✔ Files intact; not signed.")
    for expected in ("<h2>skin model</h2>", "Basal cell carcinoma", "made by the few-shot generator",
                     "✔ Files intact; not signed.", "Intended use"):
        assert expected in page
    for name, count in card["support_counts"].items():
        assert f"<td align='right'>{count}</td>" in page, name
    metrics = card["metrics"]
    right = round(metrics["loo_accuracy"] * metrics["loo_images"])
    assert f"it named {right} of {metrics['loo_images']} correctly" in page
    # A class name that a description turns into a title keeps its short name beside it.
    assert "<b>Melanoma</b> <small>(mel)</small>" in page
    assert method_words({"method": "protonet-cosine", "extra": {"guard": {"fired": "domain"}}}).endswith(
        "(the examples are unlike the images the few-shot generator learned from)")
    assert method_words({"method": "sgps-hybrid+stitched"}).endswith("then moved onto another image encoder (stitched)")
    assert method_words({"method": "zeroshot-fsigenz"}).startswith("the classes without examples from the "
                                                                   "description alone (zero-shot")
    described = {"method": "zeroshot-fsigenz", "class_names": ["NEV", "MEL"],
                 "extra": {"unseen": ["MEL"], "semantics": "attributes"}}
    assert method_words(described) == ("MEL from their listed features alone (zero-shot, no example images), the "
                                       "other classes from their example images")
    # Text on a card is shown as text, never as markup.
    page = card_html({**card, "site": "<script>x</script>"}, "m")
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_list_check_import_remove_and_use(qtbot, tmp_path: Path, site: SiteConfig,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window(qtbot, tmp_path)
    window.apply_site(site)
    dialog = window.open_models()
    assert dialog.titles() == ["sgps_ham4_lite0_v1  (4 classes)"]
    assert checked(qtbot, dialog) == "✔ Files intact; not signed."
    assert "Files intact" in dialog.card_text() and "Basal cell carcinoma" in dialog.card_text()
    # Import: a model file from elsewhere (a USB stick) is verified, then copied in.
    stick = tmp_path / "stick"
    stick.mkdir()
    shutil.copy(PROTONET, stick / PROTONET.name)
    dialog.import_file(stick / PROTONET.name)
    qtbot.waitUntil(lambda: not dialog.busy(), timeout=TIMEOUT)
    assert dialog.status.text() == "Imported ham4_protonet_lite0_v1."
    assert (Path(site.models_folder) / PROTONET.name).read_bytes() == PROTONET.read_bytes()
    assert dialog.current_path() == Path(site.models_folder) / PROTONET.name
    assert "nearest class mean" in dialog.card_text()
    assert window.classify.model_combo.findData(str(Path(site.models_folder) / PROTONET.name)) >= 0
    # A damaged model file is refused with its reason, and nothing is copied.
    damaged = stick / "damaged.zsmb"
    data = bytearray(SGPS.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    dialog.import_file(damaged)
    qtbot.waitUntil(lambda: not dialog.busy(), timeout=TIMEOUT)
    assert dialog.status.text().startswith("Not imported: damaged.zsmb: ")
    assert not (Path(site.models_folder) / "damaged.zsmb").exists()
    # Remove moves the model aside, after asking.
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dialog.ask_remove()
    assert not (Path(site.models_folder) / PROTONET.name).exists()
    assert (Path(site.models_folder) / REMOVED_FOLDER / PROTONET.name).is_file()
    assert dialog.titles() == ["sgps_ham4_lite0_v1  (4 classes)"]
    assert window.classify.model_combo.findData(str(Path(site.models_folder) / PROTONET.name)) < 0
    # Use this model: chosen and loaded in the classifier panel.
    dialog.use_button.click()
    qtbot.waitUntil(lambda: window.classify.model_ready, timeout=TIMEOUT)
    assert window.classify.model_combo.currentData() == str(Path(site.models_folder) / SGPS.name)


def test_a_damaged_model_in_the_folder_says_so(qtbot, site: SiteConfig) -> None:
    target = Path(site.models_folder) / SGPS.name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    dialog = ModelsDialog(site)
    qtbot.addWidget(dialog)
    line = checked(qtbot, dialog)
    assert line.startswith("✖ This model cannot be used: ")
    assert not dialog.use_button.isEnabled()
    assert "This model cannot be used" in dialog.card_text()
