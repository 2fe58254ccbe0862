"""Small real-data runs (20 HAM10000 images per seen class, 8 per unseen class)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import data_subset
from zsmed.cli.main import main
from zsmed.zeroshot.calibration import harmonic

REPO = Path(__file__).resolve().parents[2]
HAM_FILE = REPO / "resources" / "attributes" / "ham10000.yaml"


@pytest.fixture(scope="module")
def ham_small(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ham")
    base = data_subset(shared_data / "ham10000_fs" / "base", root / "base", 20)
    novel = data_subset(shared_data / "ham10000_fs" / "novel_dev", root / "novel", 8)
    return base, novel


@pytest.mark.slow
def test_eval_zeroshot_cli(ham_small: tuple[Path, Path], tmp_path: Path) -> None:
    base, novel = ham_small
    out = tmp_path / "zs.json"
    code = main(["eval", "zeroshot", str(base), str(novel), "--classes", str(HAM_FILE), "--unseen", "akiec,df,vasc",
                 "--semantics", "both", "--seen-test-fraction", "0.3", "--methods", "fsigenz,eszsl",
                 "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["seen"] == ["bcc", "bkl", "mel", "nv"] and report["n_test_unseen"] == 24
    for name in ("fsigenz", "eszsl"):
        cal = report["methods"][name]["calibrated"]
        assert cal["H"] == pytest.approx(harmonic(cal["seen_acc"], cal["unseen_acc"])) and cal["zsl_acc"] is not None
    # seen classes are learned: well above the 1/7 chance of the 7-way problem
    assert report["methods"]["fsigenz"]["uncalibrated"]["seen_acc"] > 0.3


def test_eval_zeroshot_repeats_reports_mean_and_spread_over_splits(
        ham_small: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, novel = ham_small
    out = tmp_path / "zs.json"
    assert main(["eval", "zeroshot", str(base), str(novel), "--classes", str(HAM_FILE), "--unseen", "akiec,df,vasc",
                 "--seen-test-fraction", "0.3", "--methods", "eszsl", "--seed", "3", "--repeats", "2",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["seeds"] == [3, 4] and [run["seed"] for run in report["runs"]] == [3, 4]
    held_out = [run["methods"]["eszsl"]["calibrated"]["seen_acc"] for run in report["runs"]]
    each = [run["methods"]["eszsl"]["calibrated"]["H"] for run in report["runs"]]
    summary = report["summary"]["eszsl"]
    assert summary["runs"] == 2 and summary["H_each"] == each
    assert summary["H_mean"] == pytest.approx(np.mean(each))
    assert summary["H_sd"] == pytest.approx(np.std(each, ddof=1))
    assert summary["seen_acc_mean"] == pytest.approx(np.mean(held_out))
    assert sum(summary["settings_chosen"].values()) == 2
    err = capsys.readouterr().err
    assert "over 2 seen-class splits" in err and "±" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "zeroshot", str(base), str(novel), "--classes", str(HAM_FILE), "--unseen", "akiec",
              "--repeats", "0"])
    assert exit_info.value.code == 2 and "must be at least 1, not 0" in capsys.readouterr().err


def test_eval_zeroshot_rejects_overlap_and_unknown(ham_small: tuple[Path, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    base, novel = ham_small
    assert main(["eval", "zeroshot", str(base), "--classes", str(HAM_FILE), "--unseen", "akiec"]) == 2
    assert "no images for unseen" in capsys.readouterr().err
    empty = tmp_path / "empty"  # a class subfolder, but nothing in it is an image
    (empty / "nv").mkdir(parents=True)
    (empty / "nv" / "notes.txt").write_text("to do")
    assert main(["build", "zeroshot", "--seen", str(empty), "--classes", str(HAM_FILE), "--out",
                 str(tmp_path / "m.zsm")]) == 2
    err = capsys.readouterr().err
    assert f"no images of seen classes in {empty}" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes:\n  nv: {name: Nevus}\n")
    assert main(["eval", "zeroshot", str(base), str(novel), "--classes", str(bad), "--unseen", "df"]) == 2
    assert "neither a description nor attributes" in capsys.readouterr().err


@pytest.mark.slow
def test_build_zeroshot_save_load_same_predictions(ham_small: tuple[Path, Path], tmp_path: Path) -> None:
    from zsmed.classifier import load_classifier

    base, novel = ham_small
    model = tmp_path / "zs.zsm"
    assert main(["build", "zeroshot", "--seen", str(base), "--classes", str(HAM_FILE), "--unseen", "akiec,df,vasc",
                 "--semantics", "text", "--out", str(model)]) == 0
    loaded = load_classifier(model)
    assert loaded.class_names == ["bcc", "bkl", "mel", "nv", "akiec", "df", "vasc"]
    assert loaded.card.head_type == "zeroshot_cosine"
    files = sorted((novel / "df").iterdir())[:2] + sorted((base / "nv").iterdir())[:2]
    first = loaded.predict_files(files)
    again = load_classifier(model).predict_files(files)
    np.testing.assert_allclose(first, again, atol=1e-6)
    assert first.shape == (4, 7) and np.allclose(first.sum(1), 1, atol=1e-5)


def test_build_zeroshot_reports_each_setting_tried_and_stops_between_them(ham_small: tuple[Path, Path]) -> None:
    """Trying the settings on held-out seen classes is most of a build: each is a step of the bar, and a
    cancel stops the build at the next one rather than after all of them."""
    from zsmed.errors import Cancelled
    from zsmed.progress import CancelToken, Progress, run_job
    from zsmed.zeroshot.build import build_zeroshot
    from zsmed.zeroshot.evaluate import FSIGENZ_ENSEMBLE, METHODS, usable_candidates

    base, _ = ham_small
    steps: list[Progress] = []
    run_job(build_zeroshot([base], HAM_FILE, ["akiec", "df", "vasc"], semantics="text"), steps.append)
    trying = [s for s in steps if s.message == "trying settings on classes held out in turn"]
    assert len(trying) == len(usable_candidates(METHODS["fsigenz"], False)) >= 2
    assert [s.done for s in steps] == sorted(s.done for s in steps)
    assert steps[-1].done == steps[-1].total == 80 + len(trying) + int(FSIGENZ_ENSEMBLE > 1) + 1
    token, seen = CancelToken(), []

    def cancel_at_the_second_setting(step: Progress) -> None:
        seen.append(step)
        if step.message.startswith("trying settings") and step.done > 80:
            token.cancel()

    with pytest.raises(Cancelled):
        run_job(build_zeroshot([base], HAM_FILE, ["akiec", "df", "vasc"], semantics="text"),
                cancel_at_the_second_setting, token)
    assert seen[-1].done == 81  # stopped after one setting, not after all of them


DERM_FILE = REPO / "resources" / "attributes" / "derm7pt.yaml"


def test_derm7pt_per_image_attributes_give_the_finest_basis(shared_data: Path, tmp_path: Path) -> None:
    """Derm7pt annotates the 7-point criteria of every case: the evaluation reads them off
    metadata.csv, FSIGenZ synthesises unseen prototypes over the annotated seen images, and the
    attribute-prediction baseline runs beside it."""
    root = data_subset(shared_data / "derm7pt", tmp_path / "derm7pt", 12)
    out = tmp_path / "zs.json"
    code = main(["eval", "zeroshot", str(root), "--classes", str(DERM_FILE), "--unseen", "MEL,BCC",
                 "--semantics", "attributes", "--seen-test-fraction", "0.3",
                 "--methods", "prototypes,devise_image_attributes", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["image_attribute_basis"] == report["n_train"] > 0
    assert report["image_attribute_source"] == "annotated in metadata.csv"
    for name in ("prototypes", "devise_image_attributes"):
        result = report["methods"][name]
        cal = result["calibrated"]
        assert "skipped" not in result and cal["H"] == pytest.approx(harmonic(cal["seen_acc"], cal["unseen_acc"]))
    # unseen MEL / BCC prototypes come from the seen images' own annotations: above the 1/2 chance
    # of telling the two unseen classes apart
    assert report["methods"]["prototypes"]["calibrated"]["zsl_acc"] > 0.5
    # an ablation changes exactly one component of the setting FSIGenZ chose
    code = main(["eval", "zeroshot", str(root), "--classes", str(DERM_FILE), "--unseen", "MEL,BCC",
                 "--semantics", "attributes", "--seen-test-fraction", "0.3",
                 "--methods", "fsigenz,fsigenz_no_dpsr_reg", "--json", str(out)])
    assert code == 0
    methods = json.loads(out.read_text())["methods"]
    # FSIGenZ averages the settings the folds rank highest; the ablation changes each of them
    full, ablated = methods["fsigenz"]["config"]["members"], methods["fsigenz_no_dpsr_reg"]["config"]["members"]
    assert len(full) == len(ablated) == 4
    assert methods["fsigenz"]["setting"].startswith("mean of the 4 of 8 settings ranked highest")
    for before, after in zip(full, ablated, strict=True):
        assert before["dpsr"]["reg_weight"] > 0 and after["dpsr"]["reg_weight"] == 0
        assert {**after, "dpsr": None} == {**before, "dpsr": None}
        assert {**after["dpsr"], "reg_weight": None} == {**before["dpsr"], "reg_weight": None}
    # building a classifier uses the same per-image basis (seen folders only: NEV, SK, MISC)
    seen_only = tmp_path / "seen"
    seen_only.mkdir()
    for name in ("NEV", "SK", "MISC"):
        os.symlink(root / name, seen_only / name)
    (seen_only / "metadata.csv").write_bytes((root / "metadata.csv").read_bytes())
    model = tmp_path / "derm.zsm"
    # (no --semantics: the file's descriptions and attributes both, as every class has them)
    assert main(["build", "zeroshot", "--seen", str(seen_only), "--classes", str(DERM_FILE), "--unseen", "MEL,BCC",
                 "--out", str(model)]) == 0
    from zsmed.classifier import load_classifier

    card = load_classifier(model).card
    assert card.extra["image_attribute_basis"] == 36 and list(card.class_names[-2:]) == ["MEL", "BCC"]
    assert card.extra["semantics"] == "both"
    # without the per-image annotations (text semantics) the attribute baseline is skipped, not faked
    code = main(["eval", "zeroshot", str(root), "--classes", str(DERM_FILE), "--unseen", "MEL,BCC",
                 "--semantics", "text", "--seen-test-fraction", "0.3", "--methods", "devise_image_attributes",
                 "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["image_attribute_basis"] is None
    assert "skipped" in report["methods"]["devise_image_attributes"]


def test_semantics_default_to_all_the_class_file_gives(shared_data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Derm7pt's class file gives descriptions and 7-point attributes for every class: with no
    --semantics both are used (and the per-image annotations with them), and the report says so."""
    root = data_subset(shared_data / "derm7pt", tmp_path / "derm7pt", 12)
    out = tmp_path / "zs.json"
    assert main(["eval", "zeroshot", str(root), "--classes", str(DERM_FILE), "--unseen", "MEL,BCC",
                 "--seen-test-fraction", "0.3", "--methods", "prototypes", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["semantics"] == "both" and report["semantics_requested"] == "auto"
    assert report["image_attribute_basis"] == report["n_train"] > 0
    assert "semantics: both" in capsys.readouterr().err
    # chest X-ray classes are described but have no attributes: auto is text there
    cxr = data_subset(shared_data / "cxr_kermany", tmp_path / "cxr", 8)
    assert main(["eval", "zeroshot", str(cxr), "--classes", str(REPO / "resources" / "attributes" / "chest_xray.yaml"),
                 "--unseen", "VIRUS", "--seen-test-fraction", "0.3", "--methods", "eszsl", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["semantics"] == "text"
