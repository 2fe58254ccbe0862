"""Checking a model on a site's own labelled images: the folder, the figures, the kept summary, the CLI."""

from __future__ import annotations

import html
import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.runtime.labelled import CLASSES, labelled_photos
from zsmed.cli.main import main
from zsmed.errors import DatasetError, InputFileError
from zsmed.progress import run_job
from zsmed.runtime.check import (
    NO_RESULT,
    UNREADABLE,
    CaseResult,
    CheckReport,
    check_job,
    checks_path,
    describe_record,
    labelled_cases,
    proportion_text,
    read_checks,
    record_check,
    report_html,
    roc_auc,
    wilson_interval,
)
from zsmed.runtime.predict import load_predictor


@pytest.fixture()
def labelled_folder(shared_data: Path, tmp_path: Path) -> Path:
    return labelled_photos(shared_data, tmp_path / "local cases")


def test_folders_are_matched_to_classes_and_the_rest_is_said(tmp_path: Path) -> None:
    for sub in ("Actinic_Keratosis", "dermato-fibroma", "Other", "empty"):
        (tmp_path / sub).mkdir()
    for sub in ("Actinic_Keratosis", "dermato-fibroma", "Other"):
        (tmp_path / sub / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    found = labelled_cases(tmp_path, ["actinic keratosis", "dermato fibroma", "vascular lesion"])
    assert sorted(c.truth for c in found.cases) == ["actinic keratosis", "dermato fibroma"]
    assert "folder 'Other' is not a class of the model: its 1 image(s) not used" in found.notes
    assert "no images of class 'vascular lesion' (a subfolder named 'vascular lesion')" in found.notes
    with pytest.raises(DatasetError, match="named after the model's classes"):
        labelled_cases(tmp_path, ["nv", "mel"])
    with pytest.raises(InputFileError, match="not a folder"):
        labelled_cases(tmp_path / "Other" / "a.png", ["nv"])


def test_wilson_interval_and_auc_against_known_values() -> None:
    low, high = wilson_interval(9, 10)
    assert (round(low, 3), round(high, 3)) == (0.596, 0.982)  # the textbook value; normal approx. gives > 1
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    assert proportion_text(9, 10) == "90 % (60–98 %), 9 of 10" and proportion_text(0, 0) == "—"
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)  # many ties
    positive = rng.random(40) < 0.4
    pairs = [(s, t) for s, t in itertools.product(scores[positive], scores[~positive])]
    brute = sum(1.0 if s > t else 0.5 if s == t else 0.0 for s, t in pairs) / len(pairs)
    assert roc_auc(scores, positive) == pytest.approx(brute)
    assert math.isnan(roc_auc(scores, np.zeros(40, dtype=bool)))


def _case(truth: str, outcome: str, confidence: float = 0.9) -> CaseResult:
    if outcome == UNREADABLE:
        return CaseResult(Path(f"{truth}.png"), truth, None, None, True, "cannot decode")
    if outcome == NO_RESULT:
        return CaseResult(Path(f"{truth}.png"), truth, None, None, True, None, {"a": 0.5, "b": 0.5})
    probs = {outcome: confidence, ("b" if outcome == "a" else "a"): 1 - confidence}
    return CaseResult(Path(f"{truth}.png"), truth, outcome, confidence, False, None, probs)


def test_report_figures_from_known_outcomes() -> None:
    cases = [_case("a", "a"), _case("a", "a"), _case("a", "b", 0.8), _case("a", NO_RESULT),
             _case("b", "b"), _case("b", "a", 0.6), _case("b", UNREADABLE)]
    report = CheckReport("m", "id", ["a", "b"], cases)
    assert (len(report.answered), report.correct, report.abstained, report.unreadable) == (5, 3, 1, 1)
    assert report.confusion() == {"a": {"a": 2, "b": 1, NO_RESULT: 1, UNREADABLE: 0},
                                  "b": {"a": 1, "b": 1, NO_RESULT: 0, UNREADABLE: 1}}
    a, b = report.per_class()
    assert (a.cases, a.answered, a.correct, a.predicted) == (4, 3, 2, 3)
    assert a.sensitivity == pytest.approx(2 / 3) and a.ppv == pytest.approx(2 / 3)
    assert (b.sensitivity, b.ppv) == (0.5, 0.5)
    assert report.balanced_accuracy == pytest.approx((2 / 3 + 0.5) / 2)
    # the most confident mistake first, then no result, then unreadable
    assert [c.outcome for c in report.wrong_cases()] == ["b", "a", NO_RESULT, UNREADABLE]
    assert report.summary_line().startswith("3 of 5 answered case(s) correct (60 %, 95 % CI 23 %–88 %)")
    assert "1 with no result" in report.summary_line() and "1 unreadable" in report.summary_line()


def test_the_printable_page_has_the_figures_and_escapes_text() -> None:
    cases = [_case("a", "a"), _case("a", "b", 0.8), _case("b", "b"), _case("b", NO_RESULT)]
    report = CheckReport("<b>skin</b> model", "f" * 64, ["a", "b"], cases, notes=["folder '<x>' not used"])
    page = report_html(report, site="St <Mary>")
    assert "<b>skin</b>" not in page and "&lt;b&gt;skin&lt;/b&gt; model" in page
    assert "St &lt;Mary&gt;" in page and "folder &#x27;&lt;x&gt;&#x27; not used" in page
    assert html.escape(report.summary_line()) in page  # the sentence, as the app and the CLI give it
    assert "<tr><th>a</th>" + "".join(f"<td class='n'>{n}</td>" for n in (1, 1, 0, 0)) + "</tr>" in page
    assert "<td>a.png</td><td>a</td><td>b</td><td class='n'>80 %</td>" in page  # a misread image, by name
    assert "model id ffffffffffffffff;" in page


def test_check_on_real_photographs(reference_bundle: Path, labelled_folder: Path, isolated_dirs: Path) -> None:
    predictor = load_predictor(reference_bundle, backend="onnxruntime")
    check_set = labelled_cases(labelled_folder, predictor.class_names)
    assert len(check_set.cases) == 17  # 4 x 4 photographs and the file that is no image; not the stray folder
    assert any("'to sort'" in note for note in check_set.notes)
    gen = check_job(predictor, check_set, batch_size=4)
    progress = []
    try:
        while True:
            progress.append(next(gen))
    except StopIteration as stop:
        report: CheckReport = stop.value
    assert progress[-1].done == progress[-1].total == 17
    assert report.unreadable == 1 and report.wrong_cases()[-1].path.name == "Doe_Jane_scan.jpg"
    # each answer is what `predict` gives the same file
    direct = {Path(p.source).name: p for p in predictor.predict_files([c.path for c in check_set.cases])}
    for case in report.cases:
        assert case.predicted == direct[case.path.name].label
    confusion = report.confusion()
    assert sum(confusion["mel"].values()) == 5 and confusion["mel"][UNREADABLE] == 1
    assert report.correct == sum(confusion[c][c] for c in CLASSES)
    assert report.correct == sum(r.correct for r in report.per_class())
    assert 0.0 <= report.auc <= 1.0
    # The kept summary names no file or folder (names can be patients') and reads back for this model only.
    kept = record_check(isolated_dirs / "copy.zsmb", report)  # never beside the reference bundles
    text = kept.read_text()
    assert "Doe_Jane" not in text and "local cases" not in text and "ISIC_" not in text
    edited = [{**report.record(), "correct": "x"}, {**report.record(), "correct": len(report.answered) + 1},
              {**report.record(), "accuracy_ci": [0.5]}, {**report.record(), "cases": True},
              {**report.record(), "checked_at": None}, {**report.record(), "accuracy": 7}]
    with kept.open("a") as handle:
        handle.write("not json\n" + json.dumps({**report.record(), "bundle_id": "another model"}) + "\n")
        handle.writelines(json.dumps(record) + "\n" for record in edited)  # edited by hand: skipped
    records = read_checks(isolated_dirs / "copy.zsmb", report.bundle_id)
    assert len(records) == 1 and records[0]["correct"] == report.correct
    assert describe_record(records[0]).startswith(f"{report.checked_at[:10]}: 17 case(s), {report.correct} of 16")
    kept.unlink()


def test_dicom_files_are_cases_and_a_multiframe_file_counts_once(reference_bundle: Path, tmp_path: Path,
                                                                   isolated_dirs: Path) -> None:
    from pydicom.data import get_testdata_file

    (tmp_path / "nv").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "nv" / "IM0001")  # no extension, as on a CD
    shutil.copy(get_testdata_file("emri_small.dcm"), tmp_path / "nv" / "IM0002")  # 10 frames
    predictor = load_predictor(reference_bundle, backend="onnxruntime")
    report = run_job(check_job(predictor, labelled_cases(tmp_path, predictor.class_names)))
    assert [c.path.name for c in report.cases] == ["IM0001", "IM0002"]
    assert report.unreadable == 0  # both decoded; a skin model gives a CT or an MR no result or a class
    # A CT is nothing like the dermoscopy photographs the model was built on: its gate says so.
    assert report.cases[0].outcome == NO_RESULT


def _series(source: str, folder: Path, count: int, stem: str) -> None:
    """``count`` copies of a pydicom test file as one series: one SeriesInstanceUID, new SOP UIDs."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    series = generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        ds = pydicom.dcmread(get_testdata_file(source))
        ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.InstanceNumber = series, generate_uid(), k + 1
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"{stem}{k + 1:03d}")


def test_a_dicom_series_is_one_case(reference_bundle: Path, tmp_path: Path, isolated_dirs: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    _series("CT_small.dcm", tmp_path / "cases" / "nv", 3, "CT")
    _series("MR_small.dcm", tmp_path / "cases" / "mel", 2, "MR")
    _series("MR_small.dcm", tmp_path / "cases" / "mel", 1, "MRB")  # another series of the same class
    predictor = load_predictor(reference_bundle, backend="onnxruntime")
    check_set = labelled_cases(tmp_path / "cases", predictor.class_names)
    report = run_job(check_job(predictor, check_set))
    names = sorted(c.name for c in report.cases)
    assert names == ["CT001 (series of 3 images)", "MR001 (series of 2 images)", "MRB001"]
    assert (len(report.cases), report.images) == (3, 6)
    assert {r.name: r.cases for r in report.per_class()} == {"nv": 1, "mel": 2, "bkl": 0, "bcc": 0}
    assert not any("without an image" in note for note in report.notes)
    per_image = run_job(check_job(predictor, check_set, per_series=False))
    assert (len(per_image.cases), per_image.images) == (6, 6)
    # A structured report exported with the images is no case, and is said.
    from pydicom.data import get_testdata_file

    shutil.copy(get_testdata_file("test-SR.dcm"), tmp_path / "cases" / "mel" / "SR0001")
    out = tmp_path / "report.json"
    assert main(["check", str(reference_bundle), str(tmp_path / "cases"), "--backend", "onnxruntime",
                 "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "3 labelled case(s) (6 images)" in captured.out
    assert json.loads(out.read_text())["unreadable"] == 0
    assert "note: 1 DICOM object(s) without an image (reports, presentation states) not counted" in captured.err


def test_a_series_answer_combines_its_images() -> None:
    from zsmed.runtime.check import LabelledCase, _combined
    from zsmed.runtime.predict import Prediction

    case = LabelledCase(Path("IM1"), "a")
    answered = [Prediction("1", "a", {"a": 0.9, "b": 0.1}, False), Prediction("2", "b", {"a": 0.4, "b": 0.6}, False)]
    gated = Prediction("3", None, {"a": 0.1, "b": 0.9}, True, 1.5)  # the gate's: not counted
    broken = Prediction("4", error="cannot decode")
    result = _combined([(case, p) for p in [*answered, gated, broken]], ["a", "b"])
    assert (result.predicted, result.images) == ("a", 4) and result.confidence == pytest.approx(0.65)
    assert _combined([(case, gated), (case, broken)], ["a", "b"]).outcome == NO_RESULT
    assert _combined([(case, broken), (case, broken)], ["a", "b"]).outcome == UNREADABLE


@pytest.fixture()
def bundle_copy(reference_bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models" / "skin four.zsmb"
    copy.parent.mkdir()
    shutil.copy(reference_bundle, copy)
    return copy


def test_cli_check_prints_the_figures_and_keeps_the_summary(bundle_copy: Path, labelled_folder: Path,
                                                            tmp_path: Path, isolated_dirs: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    page = tmp_path / "report.html"
    code = main(["check", str(bundle_copy), str(labelled_folder), "--json", str(out), "--record",
                 "--backend", "onnxruntime", "--html", str(page), "--site", "Skin clinic"])
    captured = capsys.readouterr()
    assert code == 0
    assert "model     skin four (4 classes), 17 labelled case(s)\n" in captured.out  # photographs: one image each
    assert "answered case(s) correct" in captured.out and "1 unreadable" in captured.out
    assert "confusion (rows: true class; columns: the model's answer)" in captured.out
    assert "Doe_Jane_scan.jpg\tmel\terror:" in captured.out
    assert "note: folder 'to sort' is not a class of the model" in captured.err
    report = json.loads(out.read_text())
    assert report["cases"] == report["images"] == 17 and len(report["per_case"]) == 17 and report["unreadable"] == 1
    assert sum(sum(row.values()) for row in report["confusion"].values()) == 17
    assert len(read_checks(bundle_copy)) == 1 and checks_path(bundle_copy).name == "skin four.zsmb.checks.jsonl"
    text = page.read_text()
    assert "<h1>Check of 'skin four' on labelled cases</h1>" in text and "at Skin clinic" in text
    assert "Doe_Jane_scan.jpg" in text and str(labelled_folder) not in text  # names, never paths


def test_cli_check_bad_folder_is_one_line(bundle_copy: Path, tmp_path: Path, isolated_dirs: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cases" / "pneumonia").mkdir(parents=True)
    code = main(["check", str(bundle_copy), str(tmp_path / "cases"), "--backend", "onnxruntime"])
    err = capsys.readouterr().err
    assert code != 0
    assert "holds no subfolder of images named after the model's classes ('nv', 'mel', 'bkl', 'bcc')" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not checks_path(bundle_copy).exists()
