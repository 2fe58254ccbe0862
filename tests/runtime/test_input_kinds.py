"""The kinds of images a model was built on (``input_kinds`` in its card): checked at load, named
by ``zsmed bundle info``, and an input of another kind named on stderr by ``zsmed predict``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import dicom_test_file
from tests.runtime.conftest import read_members, reference_bundles, with_card_fields
from zsmed.cli.main import main
from zsmed.errors import BundleError
from zsmed.runtime import format as fmt
from zsmed.runtime.bundle import read_bundle
from zsmed.runtime.input_kinds import describe_kinds, image_kind, input_kinds_of, kind_mismatch
from zsmed.runtime.validate import CardError, check_input_kinds


def test_kinds_come_from_the_header_or_the_photo_suffix(tmp_path: Path) -> None:
    ct, mr = dicom_test_file("CT_small.dcm"), dicom_test_file("emri_small.dcm")
    photo = tmp_path / "a.png"
    Image.new("RGB", (32, 32), (200, 120, 100)).save(photo)
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    assert image_kind(ct) == "CT" and image_kind(mr) == "MR" and image_kind(photo) == "photo"
    assert image_kind(tmp_path / "junk.dcm") is None
    assert input_kinds_of([photo, ct, photo, tmp_path / "junk.dcm"]) == ["photo", "CT"]  # most common first
    assert kind_mismatch(["photo"], "CT") == "This model was built on photographs; this image is a CT."
    assert kind_mismatch(["photo"], "photo") is None and kind_mismatch([], "CT") is None
    assert kind_mismatch(["CR", "DX"], None) is None
    assert describe_kinds(["CR", "DX"]) == "X-rays (CR) and X-rays (DX)"


@pytest.mark.parametrize("value, message", [
    ("photo", "must be a list"),
    ({"kind": "photo"}, "must be a list"),
    ([], "1 to 16"),
    ([f"K{i}" for i in range(17)], "1 to 16"),
    (["photo", "x" * 17], "at most 16"),
    (["CT\x1b[2J"], "control or non-printing"),
    (["CT\n"], "control or non-printing"),
    ([3], "must be text"),
    ([" "], "is empty"),
])
def test_a_bad_input_kinds_field_is_refused_at_load(value: object, message: str, tmp_path: Path) -> None:
    with pytest.raises(CardError, match=message):
        check_input_kinds(value)
    bundles = reference_bundles()
    if not bundles:
        pytest.skip("no reference bundle in export/reference")
    bad = with_card_fields(bundles[0], tmp_path / "bad.zsmb", input_kinds=value)
    with pytest.raises(BundleError, match=message):
        read_bundle(bad)


def test_reference_bundles_have_no_kinds_and_load_unchanged(reference_bundle: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert "input_kinds" not in json.loads(read_members(reference_bundle)[fmt.CARD])
    assert read_bundle(reference_bundle).card.get("input_kinds") is None
    assert main(["bundle", "info", str(reference_bundle)]) == 0
    assert "built on    not recorded" in capsys.readouterr().out


def test_predict_names_inputs_of_another_kind_once(reference_bundle: Path, tmp_path: Path, isolated_dirs: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (120, 90), (190, 130, 110)).save(folder / "a.jpg")
    ct = dicom_test_file("CT_small.dcm")
    (folder / "ct.dcm").write_bytes(ct.read_bytes())
    (folder / "ct2.dcm").write_bytes(ct.read_bytes())
    bundle = with_card_fields(reference_bundle, tmp_path / "photo.zsmb", input_kinds=["photo"])
    assert main(["bundle", "info", str(bundle)]) == 0
    assert "built on    photographs (photo)" in capsys.readouterr().out
    assert main(["predict", str(bundle), str(folder), "--backend", "onnxruntime"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "built on" in line]
    assert warnings == ["zsmed: warning: the model was built on photographs (photo); some inputs are of another "
                        "kind: CT"]
    assert len(captured.out.splitlines()) == 3  # not refused: every input has its line
    # the same run with the reference bundle (no kinds recorded) says nothing of kinds
    assert main(["predict", str(reference_bundle), str(folder), "--backend", "onnxruntime"]) == 0
    assert "built on" not in capsys.readouterr().err
    # photos only: nothing to say
    assert main(["predict", str(bundle), str(folder / "a.jpg"), "--backend", "onnxruntime"]) == 0
    assert "built on" not in capsys.readouterr().err
