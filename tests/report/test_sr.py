"""Results back to the PACS: SR (and Secondary Capture) on real DICOM files predicted with the
reference bundle, read back with pydicom and checked with dicom3tools' dciodvfy."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.conftest import dicom_test_file
from tests.report.sr_items import content_items, dciodvfy_errors, text_values
from tests.runtime.conftest import REFERENCE
from zsmed.cli.main import main
from zsmed.errors import DicomReadError, NotDicomError
from zsmed.report import (
    NOT_A_DIAGNOSIS,
    ReaderReview,
    model_identity,
    write_result_secondary_capture,
    write_result_sr,
)
from zsmed.runtime.predict import Prediction, Predictor, load_predictor

BUNDLE = REFERENCE / "sgps_ham4_lite0_v1.zsmb"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
DERM_PHOTO = Path("ham10000_fs/base/bcc/ISIC_0024332.jpg")


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    if not BUNDLE.is_file():
        pytest.skip(f"reference bundle {BUNDLE.name} not in export/reference")
    return load_predictor(BUNDLE, backend="onnxruntime")


def named(items: list[Any], meaning: str) -> list[Any]:
    return [i for i in items if i.ConceptNameCodeSequence[0].CodeMeaning == meaning]


def probabilities_of(items: list[Any]) -> dict[str, float]:
    return {i.ConceptNameCodeSequence[0].CodeMeaning.removeprefix("Probability of "):
            float(i.MeasuredValueSequence[0].NumericValue)
            for i in items if i.ValueType == "NUM" and i.ConceptNameCodeSequence[0].CodeMeaning.startswith("Prob")}


def write_sr(result: Prediction, out: Path) -> Path:
    return write_result_sr(result.source, probabilities=result.probabilities, label=result.label,
                           abstain=result.abstain, ood_score=result.ood_score, model=model_identity_of_bundle(),
                           out_dir=out, frame=result.frame)


def model_identity_of_bundle() -> Any:
    from zsmed.runtime.bundle import read_bundle

    return model_identity(read_bundle(BUNDLE))


def check_sr(path: Path, source: Path, result: Prediction, frame: int | None = None) -> Any:
    """The SR read back: in the source's study, the patient copied, the source referenced, the result
    as written, the model identified, the not-a-diagnosis statement, and dciodvfy finds no error."""
    sr = pydicom.dcmread(path)
    src = pydicom.dcmread(source, stop_before_pixels=True)
    assert sr.SOPClassUID == COMPREHENSIVE_SR and sr.Modality == "SR"
    assert sr.StudyInstanceUID == src.StudyInstanceUID
    assert sr.SeriesInstanceUID != src.SeriesInstanceUID and sr.SOPInstanceUID != src.SOPInstanceUID
    assert str(sr.PatientName) == str(src.get("PatientName", "")) and sr.PatientID == src.get("PatientID", "")
    assert sr.get("PatientBirthDate", "") == src.get("PatientBirthDate", "")
    assert sr.Manufacturer == "zsmed" and sr.SeriesDescription == "zsmed result"
    assert sr.PreliminaryFlag == "PRELIMINARY" and sr.VerificationFlag == "UNVERIFIED"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == src.StudyInstanceUID
    assert evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    items = content_items(sr)
    (image,) = named(items, "Source of Measurement")
    ref = image.ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == src.SOPInstanceUID and ref.ReferencedSOPClassUID == src.SOPClassUID
    if frame is None:
        assert "ReferencedFrameNumber" not in ref
    else:
        assert int(ref.ReferencedFrameNumber) == frame + 1
    assert probabilities_of(items) == pytest.approx(result.probabilities, abs=1e-6)
    assert set(probabilities_of(items)) == set(result.probabilities)
    (finding,) = named(items, "Finding")
    value = finding.ConceptCodeSequence[0]
    if result.abstain:
        assert value.CodeValue == "abstain" and "not like the images" in value.CodeMeaning
    else:
        assert value.CodeMeaning == result.label and value.CodingSchemeDesignator == "99ZSMED"
    (ood,) = [i for i in items if i.ValueType == "NUM" and "threshold" in i.ConceptNameCodeSequence[0].CodeMeaning]
    assert float(ood.MeasuredValueSequence[0].NumericValue) == pytest.approx(result.ood_score)
    texts = [str(i.TextValue) for i in items if i.ValueType == "TEXT"]
    assert NOT_A_DIAGNOSIS in texts
    sha = hashlib.sha256(BUNDLE.read_bytes()).hexdigest()
    assert f"bundle SHA-256 {sha}" in [str(i.TextValue) for i in named(items, "Algorithm Parameters")]
    assert [str(i.TextValue) for i in named(items, "Algorithm Name")] == [BUNDLE.stem]
    assert dciodvfy_errors(path) == []
    return sr


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "RG1_UNCI.dcm"])
def test_sr_for_real_images_the_model_abstains_on(name: str, predictor: Predictor, tmp_path: Path) -> None:
    source = dicom_test_file(name)  # CT, MR, and a MONOCHROME1 CR: unlike dermoscopy, so the gate abstains
    (result,) = predictor.predict_files([source])
    assert result.error is None and result.abstain and result.label is None
    before = sorted(source.parent.iterdir())
    path = write_sr(result, tmp_path / "out")
    assert path.parent == tmp_path / "out" and path.name.startswith("SR_")
    check_sr(path, source, result)
    assert sorted(source.parent.iterdir()) == before  # nothing written next to the source


def test_sr_for_one_frame_of_a_multi_frame_image(predictor: Predictor, tmp_path: Path) -> None:
    source = dicom_test_file("emri_small.dcm")  # enhanced MR, 10 frames
    results = predictor.predict_files([source], frames="all")
    assert [r.frame for r in results] == list(range(10))
    path = write_sr(results[3], tmp_path)
    check_sr(path, source, results[3], frame=3)
    with pytest.raises(DicomReadError, match="frame 11 does not exist"):
        write_result_sr(source, probabilities=results[3].probabilities, label=None, abstain=True, ood_score=1.5,
                        model=model_identity_of_bundle(), out_dir=tmp_path, frame=10)


@pytest.fixture(scope="module")
def derm_dicom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HAM10000 dermoscopy photo wrapped into a DICOM Secondary Capture, as a dermatoscope would send it."""
    from tests.conftest import SHARED_DATA

    photo = SHARED_DATA / DERM_PHOTO
    if not photo.is_file():
        pytest.skip(f"shared data photo {photo} not found")
    import highdicom as hd

    pixels = np.asarray(Image.open(photo).convert("RGB"))
    ds = hd.sc.SCImage(
        pixel_array=pixels, photometric_interpretation="RGB", bits_allocated=8, coordinate_system="PATIENT",
        study_instance_uid=hd.UID(), series_instance_uid=hd.UID(), series_number=1, sop_instance_uid=hd.UID(),
        instance_number=7, manufacturer="Derm Scope Co", patient_id="DERM-0042", patient_name="Test^Dermo",
        patient_birth_date="19700101", patient_sex="F", accession_number="ACC42", study_id="S1",
        study_date="20260101", study_time="101500", referring_physician_name="Ref^Doctor",
        patient_orientation=("L", "F"),
    )
    path = tmp_path_factory.mktemp("derm") / "derm.dcm"
    ds.save_as(path)
    return path


def test_sr_and_secondary_capture_with_a_label(derm_dicom: Path, predictor: Predictor, tmp_path: Path) -> None:
    (result,) = predictor.predict_files([derm_dicom])
    assert result.error is None and not result.abstain and result.label in predictor.class_names
    path = write_sr(result, tmp_path)
    sr = check_sr(path, derm_dicom, result)
    assert sr.PatientID == "DERM-0042" and str(sr.PatientName) == "Test^Dermo" and sr.AccessionNumber == "ACC42"
    texts = text_values(sr)
    assert f"Top class {result.label} (probability {result.probabilities[result.label]:.3f})" in texts

    capture_path = write_result_secondary_capture(
        derm_dicom, probabilities=result.probabilities, label=result.label, abstain=False,
        ood_score=result.ood_score, model=model_identity_of_bundle(), out_dir=tmp_path)
    capture = pydicom.dcmread(capture_path)
    assert capture.SOPClassUID == SECONDARY_CAPTURE and capture.StudyInstanceUID == sr.StudyInstanceUID
    assert capture.PatientID == "DERM-0042" and capture.SeriesInstanceUID not in (sr.SeriesInstanceUID, "")
    assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID == pydicom.dcmread(derm_dicom).SOPInstanceUID
    assert capture.BurnedInAnnotation == "YES" and NOT_A_DIAGNOSIS in capture.ImageComments
    source = Image.fromarray(pydicom.dcmread(derm_dicom).pixel_array)  # 224 px: enlarged to 512 for the text
    enlarged = np.asarray(source.resize((512, round(source.height * 512 / source.width)), Image.Resampling.BILINEAR))
    shown = capture.pixel_array
    banner = shown.shape[0] - enlarged.shape[0]
    assert shown.shape[1:] == enlarged.shape[1:] and banner > 0  # the banner is added above the image
    assert np.array_equal(shown[banner:], enlarged)  # the image itself is not covered
    assert (shown[:banner] > 128).any(axis=-1).mean() > 0.01  # text burned into the banner
    assert dciodvfy_errors(capture_path) == []


def test_the_readers_review_is_written_beside_the_result(derm_dicom: Path, predictor: Predictor,
                                                         tmp_path: Path) -> None:
    """A report sent to PACS after the reader disagreed must say so: the model's class alone would
    contradict the reader. Free text from the reader (non-Latin, a backslash, control characters, a
    long comment) stays one valid UT value."""
    (result,) = predictor.predict_files([derm_dicom])
    other = next(c for c in predictor.class_names if c != result.label)
    comment = "ulcéré \\ 溃疡\tbord\r" + "x" * 3000
    review = ReaderReview(verdict="corrected", label=other, reader="Dr Ünal", time="2026-12-07T09:30:12+00:00",
                          comment=comment)
    path = write_result_sr(derm_dicom, probabilities=result.probabilities, label=result.label, abstain=False,
                           ood_score=result.ood_score, model=model_identity_of_bundle(), out_dir=tmp_path,
                           review=review)
    sr = check_sr(path, derm_dicom, result)  # dciodvfy included
    texts = text_values(sr)
    (line,) = [text for text in texts if text.startswith("Reviewed by")]
    assert line.startswith(f"Reviewed by Dr Ünal on 2026-12-07 09:30: corrected the result to {other}. "
                           "Comment: ulcéré \\ 溃疡 bord x")
    assert f"Top class {result.label} (probability" in " ".join(texts)  # the model's result stays as it was
    confirmed = write_result_sr(derm_dicom, probabilities=result.probabilities, label=result.label, abstain=False,
                                ood_score=result.ood_score, model=model_identity_of_bundle(), out_dir=tmp_path,
                                review=ReaderReview("confirmed", str(result.label), "Dr A", "2026-12-07T10:00:00"))
    texts = text_values(pydicom.dcmread(confirmed))
    assert f"Reviewed by Dr A on 2026-12-07 10:00: confirmed the result ({result.label})" in texts


def test_secondary_capture_of_an_abstention(predictor: Predictor, tmp_path: Path) -> None:
    source = dicom_test_file("CT_small.dcm")  # 128 px: enlarged so the banner is legible
    (result,) = predictor.predict_files([source])
    path = write_result_secondary_capture(source, probabilities=result.probabilities, label=None, abstain=True,
                                          ood_score=result.ood_score, model=model_identity_of_bundle(),
                                          out_dir=tmp_path)
    capture = pydicom.dcmread(path)
    assert capture.Columns == 512 and capture.Rows > 512 and capture.PhotometricInterpretation == "RGB"
    assert "No result: not like the images this model was built on" in capture.ImageComments
    assert dciodvfy_errors(path) == []


def test_photos_and_headers_without_a_study_are_refused(tmp_path: Path) -> None:
    model = model_identity_of_bundle()
    photo = tmp_path / "lesion.jpg"
    Image.new("RGB", (32, 32)).save(photo)
    fields: dict[str, Any] = dict(probabilities={"a": 0.4, "b": 0.6}, label="b", abstain=False, ood_score=0.5,
                                  model=model, out_dir=tmp_path / "out")
    with pytest.raises(NotDicomError) as caught:
        write_result_sr(photo, **fields)
    assert str(caught.value).startswith(str(photo)) and "no DICOM study" in str(caught.value)
    assert "\n" not in str(caught.value)
    ds = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
    del ds.StudyInstanceUID
    orphan = tmp_path / "orphan.dcm"
    ds.save_as(orphan)
    with pytest.raises(DicomReadError, match="no Study Instance UID"):
        write_result_sr(orphan, **fields)
    with pytest.raises(ValueError, match="abstained result carries no label"):
        write_result_sr(orphan, **{**fields, "abstain": True})
    assert not (tmp_path / "out").exists()


def test_model_identity_is_the_bundle_file_sha256() -> None:
    model = model_identity_of_bundle()
    assert model.bundle_sha256 == hashlib.sha256(BUNDLE.read_bytes()).hexdigest()
    assert model.name == BUNDLE.stem and model.version


def test_cli_predict_sr(derm_dicom: Path, tmp_path: Path, isolated_dirs: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    if not BUNDLE.is_file():
        pytest.skip("reference bundle missing")
    ct = dicom_test_file("CT_small.dcm")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), (180, 120, 100)).save(photo)
    ds = pydicom.dcmread(ct)
    del ds.StudyInstanceUID  # predictable, but no study to file a report in
    orphan = tmp_path / "orphan.dcm"
    ds.save_as(orphan)
    out = tmp_path / "reports"
    code = main(["predict", str(BUNDLE), str(ct), str(derm_dicom), str(photo), str(orphan), "--backend",
                 "onnxruntime", "--sr", str(out), "--secondary-capture"])
    assert code == 0
    err = capsys.readouterr().err
    assert f"wrote 2 reports and 2 secondary captures to {out}; 1 photos have no DICOM study" in err
    assert f"zsmed: no report: {orphan}: the file has no Study Instance UID" in err
    reports = [pydicom.dcmread(p) for p in sorted(out.glob("SR_*.dcm"))]
    captures = sorted(out.glob("SC_*.dcm"))
    assert len(reports) == 2 and len(captures) == 2 and len(list(out.iterdir())) == 4
    referenced = {
        named(content_items(r), "Source of Measurement")[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for r in reports}
    assert referenced == {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in (ct, derm_dicom)}
    findings = sorted(named(content_items(r), "Finding")[0].ConceptCodeSequence[0].CodeValue for r in reports)
    assert findings[0] == "abstain" and findings[1] != "abstain"
    assert main(["predict", str(BUNDLE), str(ct), "--secondary-capture"]) == 2
    assert "--secondary-capture goes with --sr" in capsys.readouterr().err
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert main(["predict", str(BUNDLE), str(ct), str(derm_dicom), "--sr", str(not_a_folder)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith(f"zsmed: error: {not_a_folder}: cannot write the report") and len(lines) == 1


def test_reports_job_cancels_between_reports(derm_dicom: Path, predictor: Predictor, tmp_path: Path) -> None:
    from zsmed.errors import Cancelled
    from zsmed.progress import CancelToken, run_job
    from zsmed.report import write_reports_job

    results = predictor.predict_files([dicom_test_file("CT_small.dcm"), derm_dicom, dicom_test_file("MR_small.dcm")])
    token = CancelToken()
    seen: list[int] = []

    def stop_after_first(progress: Any) -> None:
        seen.append(progress.done)
        if progress.done == 1:
            token.cancel()

    with pytest.raises(Cancelled):
        run_job(write_reports_job(results, model_identity_of_bundle(), tmp_path), stop_after_first, token)
    assert seen == [0, 1] and len(list(tmp_path.glob("SR_*.dcm"))) == 1
    written = run_job(write_reports_job(results, model_identity_of_bundle(), tmp_path / "all"))
    assert len(written.reports) == 3 and not written.refused and not written.photos


def test_predict_without_sr_does_not_import_highdicom(tmp_path: Path) -> None:
    if not BUNDLE.is_file():
        pytest.skip("reference bundle missing")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), (180, 120, 100)).save(photo)
    code = ("import sys; from zsmed.cli.main import main; "
            f"rc = main(['predict', {str(BUNDLE)!r}, {str(photo)!r}, '--backend', 'onnxruntime']); "
            "print(rc, 'highdicom' in sys.modules, 'zsmed.report' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.stdout.strip().splitlines()[-1] == "0 False False", run.stderr
