"""The builder's core (``zsmed.synth.builder``): the support-set checks and the build-and-export job,
on real HAM10000 photographs and pydicom's CT."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import dicom_test_file
from tests.synth.helpers import every_image_wrong
from zsmed.errors import Cancelled, DatasetError
from zsmed.progress import CancelToken, Progress, run_job
from zsmed.synth.builder import ERROR, NOTE, WARNING, build_job, check_support, model_file_name

NOVEL = ("akiec", "vasc")


@pytest.fixture()
def photos(shared_data: Path) -> dict[str, list[Path]]:
    found = {c: sorted((shared_data / "ham10000_fs" / "novel_dev" / c).glob("*.jpg"))[:9] for c in NOVEL}
    assert all(len(v) == 9 for v in found.values())
    return found


def support(photos: dict[str, list[Path]], k: int) -> dict[str, list[Path]]:
    return {c: files[:k] for c, files in photos.items()}


def messages(findings: list, severity: str | None = None) -> list[str]:
    return [f.message for f in findings if severity is None or f.severity == severity]


def test_a_clean_support_set_has_nothing_to_report(photos: dict[str, list[Path]]) -> None:
    assert check_support(support(photos, 4)) == []


def test_the_same_image_under_two_classes_is_an_error_naming_both(photos: dict[str, list[Path]],
                                                                   tmp_path: Path) -> None:
    classes = support(photos, 4)
    copy = tmp_path / "renamed.jpg"
    shutil.copy(classes["akiec"][0], copy)  # the same picture under another name
    classes["vasc"].append(copy)
    findings = check_support(classes)
    assert findings[0].severity == ERROR and "filed under 'akiec' and 'vasc'" in findings[0].message
    assert set(findings[0].images) == {classes["akiec"][0], copy}


def test_a_copy_within_a_class_is_a_warning(photos: dict[str, list[Path]], tmp_path: Path) -> None:
    classes = support(photos, 4)
    copy = tmp_path / "again.jpg"
    shutil.copy(classes["vasc"][1], copy)
    classes["vasc"].append(copy)
    findings = check_support(classes)
    assert messages(findings, ERROR) == []
    assert any("in 'vasc' 2 times" in m for m in messages(findings, WARNING))


def test_names_missing_files_and_sizes(photos: dict[str, list[Path]], tmp_path: Path) -> None:
    assert messages(check_support({"akiec": photos["akiec"][:8]}), ERROR) == ["a classifier needs at least two classes"]
    errors = messages(check_support({"Melanoma": photos["akiec"][:4], "melanoma ": photos["vasc"][:4]}), ERROR)
    assert errors == ["two classes are named 'melanoma': give each class its own name"]
    # Given as (name, files) pairs, two classes with the very same name stay two.
    errors = messages(check_support([("vasc", photos["akiec"][:4]), ("vasc", photos["vasc"][:4])]), ERROR)
    assert errors == ["two classes are named 'vasc': give each class its own name"]
    errors = messages(check_support({"": photos["akiec"][:4], "vasc": photos["vasc"][:4]}), ERROR)
    assert "every class needs a name" in errors
    errors = messages(check_support({"bad\x1b[31m": photos["akiec"][:4], "vasc": photos["vasc"][:4]}), ERROR)
    assert any("control or non-printing character" in e for e in errors)
    errors = messages(check_support({"akiec": photos["akiec"][:8], "vasc": []}), ERROR)
    assert errors == ["class 'vasc' has no images: add a few examples"]
    gone = tmp_path / "moved.jpg"
    findings = check_support({"akiec": photos["akiec"][:4], "vasc": [*photos["vasc"][:4], gone]})
    assert findings[0].severity == ERROR and "cannot be found" in findings[0].message and findings[0].images == (gone,)
    errors = messages(check_support(support(photos, 3)), ERROR)
    assert errors == ["6 images in all: at least 8 are needed to check the exported model and to set its "
                      "'not like these images' gate"]


def test_kinds_balance_and_single_images(photos: dict[str, list[Path]], tmp_path: Path) -> None:
    ct = dicom_test_file("CT_small.dcm")
    mixed = support(photos, 4)
    mixed["vasc"].append(ct)
    findings = check_support(mixed)
    kind = [f for f in findings if "kind of image" in f.message]
    assert len(kind) == 1 and kind[0].severity == WARNING and kind[0].images == (ct,)
    assert "1 image(s) are CT, the rest photographs" in kind[0].message
    # Each class one kind, and they differ: the model would learn the kind, not the disease.
    scans = []
    for i in range(4):
        scans.append(tmp_path / f"ct{i}.dcm")
        data = bytearray(ct.read_bytes())
        data[-1] = i  # a different last pixel: distinct files, not copies
        scans[-1].write_bytes(bytes(data))
    findings = check_support({"akiec": photos["akiec"][:4], "scan": scans})
    assert any("the classes differ by the kind of image (akiec: photographs; scan: CT)" in m
               for m in messages(findings, WARNING))
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    findings = check_support({"akiec": [*photos["akiec"][:4], notes], "vasc": photos["vasc"][:4]})
    unreadable = [f for f in findings if "not images zsmed can read" in f.message]
    assert unreadable and unreadable[0].images == (notes,)
    findings = check_support({"akiec": photos["akiec"][:9], "vasc": photos["vasc"][:3]})
    assert "'akiec' has 9 images and 'vasc' 3: results lean towards 'akiec'; add images to 'vasc'" in messages(
        findings, WARNING)
    findings = check_support({"akiec": photos["akiec"][:8], "vasc": photos["vasc"][:1]})
    assert [f.severity for f in findings] == [WARNING, NOTE]  # imbalance, then the single image
    assert "one image in 'vasc'" in findings[1].message


def test_model_file_names_are_safe() -> None:
    assert model_file_name("Melanoma vs naevus") == "Melanoma vs naevus"
    assert "/" not in model_file_name("../../etc/passwd") and model_file_name("../../etc/passwd") == "etc-passwd"
    assert model_file_name("chest: pneumonia?") == "chest- pneumonia"
    for bad in ("", "  ", "...", "/"):
        with pytest.raises(DatasetError, match="cannot name a model file"):
            model_file_name(bad)


def test_build_writes_a_bundle_that_runs_without_torch_and_agrees(photos: dict[str, list[Path]],
                                                                  isolated_dirs: Path) -> None:
    from zsmed.runtime.predict import load_predictor

    classes = support(photos, 5)
    models = isolated_dirs / "models"
    steps: list[Progress] = []
    outcome = run_job(build_job(classes, {"akiec": "Actinic keratosis: a rough scaly pink patch", "vasc": ""},
                                models, "skin: a/b test", site="Ward 3"), steps.append)
    assert outcome.bundle_path == models / "skin- a-b test.zsmb" and outcome.bundle_path.is_file()
    assert outcome.model_path.is_file() and outcome.model_path.parent == isolated_dirs / "data" / "built"
    assert [s.done for s in steps] == sorted(s.done for s in steps) and steps[-1].done == steps[-1].total
    card = outcome.classifier.card
    assert card.descriptions == {"akiec": "Actinic keratosis: a rough scaly pink patch"}
    assert card.input_kinds == ("photo",)
    assert "no description for vasc: image-only for those classes" in messages(outcome.findings, NOTE)
    # Every support image was held out once; the estimate on the card is the one from these predictions.
    assert set(outcome.loo) == {p for files in classes.values() for p in files}
    right = sum(outcome.loo[p] == c for c, files in classes.items() for p in files)
    assert card.metrics["loo_accuracy"] == pytest.approx(right / 10)
    assert len(outcome.loo_wrong) == 10 - right
    # The bundle (what another PC gets) answers as the classifier did, without torch.
    predictor = load_predictor(outcome.bundle_path)
    assert predictor.bundle.card["site"] == "Ward 3"
    query = sorted((photos["vasc"][0].parent).glob("*.jpg"))[20]
    expected = outcome.classifier.predict_files([query])[0]
    result = predictor.predict_files([query])[0]
    assert np.allclose([result.probabilities[c] for c in outcome.classifier.class_names], expected, atol=1e-4)
    with pytest.raises(DatasetError, match="already in the models folder"):
        run_job(build_job(classes, {}, models, "skin- a-b test"))
    replaced = run_job(build_job(classes, {}, models, "skin- a-b test", replace=True))
    assert replaced.bundle_path == outcome.bundle_path and replaced.classifier.card.descriptions == {}


def test_build_reports_the_fallbacks_estimate_and_refuses_errors(photos: dict[str, list[Path]], isolated_dirs: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from zsmed.synth import synthesize as synthesize_module

    monkeypatch.setattr(synthesize_module, "leave_one_out_predictions", every_image_wrong)
    classes = support(photos, 4)
    outcome = run_job(build_job(classes, {}, isolated_dirs / "models", "fallback"))
    assert outcome.classifier.card.method == "protonet-finetuned-stage"
    assert outcome.method_text.startswith("nearest class mean (it did better than the generator")
    assert any(m.startswith("the generator was not used: ") for m in messages(outcome.findings, NOTE))
    # The per-image estimate is the fallback's (ProtoNet on its stage), not the turned-down generator's.
    assert outcome.classifier.card.metrics["loo_accuracy"] == pytest.approx(1 - len(outcome.loo_wrong) / 8)
    with pytest.raises(DatasetError, match="class 'vasc' has no images"):
        run_job(build_job({"akiec": photos["akiec"][:8], "vasc": []}, {}, isolated_dirs / "models", "x"))


def test_a_cancelled_build_leaves_no_model(photos: dict[str, list[Path]], isolated_dirs: Path) -> None:
    token = CancelToken()

    def cancel_at_export(step: Progress) -> None:
        if step.message == "ONNX export":
            token.cancel()

    with pytest.raises(Cancelled):
        run_job(build_job(support(photos, 4), {}, isolated_dirs / "models", "half"), cancel_at_export, token)
    assert list((isolated_dirs / "models").glob("*")) == []


def test_unreadable_images_are_left_out_and_named(photos: dict[str, list[Path]], isolated_dirs: Path) -> None:
    broken = isolated_dirs / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    classes = support(photos, 4)
    classes["vasc"].append(broken)
    outcome = run_job(build_job(classes, {}, isolated_dirs / "models", "with a broken file"))
    assert outcome.classifier.card.support_counts == {"akiec": 4, "vasc": 4}
    left_out = [f for f in outcome.findings if f.message.startswith("left out broken.jpg: ")]
    assert left_out and left_out[0].images == (broken,) and left_out[0].severity == WARNING


def test_the_cli_build_prints_the_same_checks(photos: dict[str, list[Path]], tmp_path: Path, capsys,
                                              feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.cli.main import main

    for name, files in support(photos, 4).items():
        (tmp_path / "support" / name).mkdir(parents=True)
        for f in files:
            shutil.copy(f, tmp_path / "support" / name / f.name)
    shutil.copy(photos["akiec"][0], tmp_path / "support" / "akiec" / "again.jpg")
    shutil.copy(dicom_test_file("CT_small.dcm"), tmp_path / "support" / "vasc" / "scan.dcm")
    assert main(["build", "fewshot", "--support", str(tmp_path / "support"), "--out", str(tmp_path / "m.zsm")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert f"warning: the same image is in 'akiec' 2 times: it counts once per copy ({photos['akiec'][0].name}, " \
           "again.jpg)" in err
    assert "warning: 1 image(s) are CT, the rest photographs: build a model on one kind of image (scan.dcm)" in err


def test_saved_examples_come_back_and_build_from_the_cli(photos: dict[str, list[Path]], tmp_path: Path, capsys,
                                                         feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.classifier import load_classifier
    from zsmed.cli.main import main
    from zsmed.synth.builder import DESCRIPTIONS_FILE, folder_descriptions, save_support_folder

    classes = support(photos, 4)
    elsewhere = tmp_path / "other" / photos["vasc"][0].name  # one file name twice in a class
    elsewhere.parent.mkdir()
    shutil.copy(photos["vasc"][5], elsewhere)
    classes["vasc"].append(elsewhere)
    saved = save_support_folder(classes, {"akiec": "Rough scaly pink patch", "vasc": " "}, tmp_path / "saved")
    assert sorted(p.name for p in (saved / "vasc").iterdir()) == sorted(
        [p.name for p in photos["vasc"][:4]] + [f"{photos['vasc'][0].stem} (2).jpg"])
    assert (saved / "akiec" / photos["akiec"][0].name).read_bytes() == photos["akiec"][0].read_bytes()
    assert folder_descriptions(saved, ["akiec", "vasc"]) == {"akiec": "Rough scaly pink patch"}
    with pytest.raises(DatasetError, match="not empty"):
        save_support_folder(classes, {}, saved)
    # The same folder builds from the command line, with its descriptions.
    out = tmp_path / "m.zsm"
    assert main(["build", "fewshot", "--support", str(saved), "--descriptions", str(saved / DESCRIPTIONS_FILE),
                 "--out", str(out)]) == 0
    card = load_classifier(out).card
    assert card.support_counts == {"akiec": 4, "vasc": 5}
    assert card.descriptions["akiec"] == "Rough scaly pink patch"


def test_a_runtime_only_install_is_told_what_building_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from zsmed.synth.builder import build_tools_missing

    assert build_tools_missing() is None
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    assert build_tools_missing().startswith("building a model needs zsmed's build tools (PyTorch and ONNX)")


def test_checks_read_each_file_once_until_it_changes(photos: dict[str, list[Path]], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder checks again at every edit; an X-ray is tens of MB: unchanged files are not read
    again, a file replaced on disk is."""
    import os

    import zsmed.digest
    from zsmed.synth import builder as core

    core._facts.cache_clear()
    reads: list[Path] = []
    real = zsmed.digest.file_sha256
    monkeypatch.setattr(zsmed.digest, "file_sha256", lambda p: reads.append(Path(p)) or real(p))
    changing = tmp_path / "changing.jpg"
    shutil.copy(photos["vasc"][8], changing)
    classes = {"akiec": photos["akiec"][:4], "vasc": [*photos["vasc"][:4], changing]}
    assert check_support(classes) == []
    assert len(reads) == 9
    assert check_support(classes) == [] and len(reads) == 9  # nothing read again
    shutil.copy(photos["akiec"][0], changing)  # replaced on disk by a picture of the other class
    os.utime(changing, ns=(1, 1))  # a different time, whatever the file system's resolution
    findings = check_support(classes)
    assert len(reads) == 10 and reads[-1] == changing
    assert findings[0].severity == ERROR and set(findings[0].images) == {photos["akiec"][0], changing}


def test_a_site_key_signs_the_built_model(photos: dict[str, list[Path]], isolated_dirs: Path) -> None:
    from zsmed.errors import ZsmedError
    from zsmed.runtime.bundle import read_bundle
    from zsmed.runtime.format import generate_keypair

    private, public = generate_keypair(isolated_dirs / "site")
    outcome = run_job(build_job(support(photos, 4), {}, isolated_dirs / "models", "signed", sign_key=private))
    assert outcome.signed
    assert read_bundle(outcome.bundle_path, trusted_keys=[public]).signed_by is not None
    # A key file that cannot sign is refused before any image is read.
    bad = isolated_dirs / "bad.key"
    bad.write_text("not a key")
    steps: list[Progress] = []
    with pytest.raises(ZsmedError, match="signing key"):
        run_job(build_job(support(photos, 4), {}, isolated_dirs / "models", "unsigned", sign_key=bad), steps.append)
    assert steps == [] and not (isolated_dirs / "models" / "unsigned.zsmb").exists()
