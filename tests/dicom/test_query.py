"""Getting studies from the PACS (zsmed.dicom.query, ``zsmed query`` / ``zsmed retrieve``) against a real
Orthanc on this machine, holding pydicom's real files in several encodings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.conftest import dicom_test_file
from tests.pacs_server import free_port, orthanc_pacs
from zsmed.cli.main import main
from zsmed.dicom.network import PacsNode, send_job
from zsmed.dicom.query import find_studies, retrieve_job
from zsmed.errors import PacsError
from zsmed.progress import Progress, run_job

# CT uncompressed, NM secondary capture in JPEG 2000, US in JPEG 2000 lossless, MR uncompressed
FILES = ("CT_small.dcm", "JPEG2000.dcm", "US1_J2KR.dcm", "MR_small.dcm")


@pytest.fixture()
def pacs(tmp_path: Path) -> Iterator[PacsNode]:
    for node, _rest, _port in orthanc_pacs(tmp_path / "orthanc"):
        assert len(run_job(send_job([dicom_test_file(name) for name in FILES], node)).sent) == len(FILES)
        yield node


def test_a_patients_studies_are_found(pacs: PacsNode) -> None:
    everyone = find_studies(pacs, patient_name="*")
    assert len(everyone) == 4
    assert [m.date for m in everyone] == sorted((m.date for m in everyone), reverse=True)  # newest first
    (ct,) = find_studies(pacs, patient_id="1CT1")
    original = pydicom.dcmread(dicom_test_file("CT_small.dcm"))
    assert (ct.study_uid, ct.patient_name, ct.modalities, ct.images) == (
        original.StudyInstanceUID, str(original.PatientName), "CT", 1)
    assert ct.line() == f"20040119 · CT · {original.StudyDescription} · 1 image · CompressedSamples^CT1 (ID 1CT1)"
    assert find_studies(pacs, patient_name="CompressedSamples^M*")[0].patient_id == "4MR1"
    assert find_studies(pacs, patient_id="NOBODY") == []
    with pytest.raises(PacsError, match="a patient ID or a name"):
        find_studies(pacs)


def test_studies_are_fetched_as_the_pacs_keeps_them(tmp_path: Path, pacs: PacsNode) -> None:
    studies = [m.study_uid for m in find_studies(pacs, patient_name="*")]
    seen: list[Progress] = []
    result = run_job(retrieve_job(pacs, studies, tmp_path / "in"), on_progress=seen.append)
    assert len(result.stored) == 4 and not result.problems and seen
    assert result.summary() == f"4 images fetched from {pacs}"
    by_uid = {str(pydicom.dcmread(path).SOPInstanceUID): path for path in result.stored}
    for name in FILES:
        original = pydicom.dcmread(dicom_test_file(name))
        kept = pydicom.dcmread(by_uid[str(original.SOPInstanceUID)])
        # no transcoding: each image in the encoding the PACS keeps it in (as it was sent), its pixels the same
        assert kept.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID, name
        assert kept.PixelData == original.PixelData
    assert all(folder.parent.parent == tmp_path / "in" for folder in result.folders)
    # fetched again: kept once
    again = run_job(retrieve_job(pacs, studies[:1], tmp_path / "in"))
    assert again.stored == [] and again.summary().endswith("1 already here")


def test_an_unknown_study_is_one_line(tmp_path: Path, pacs: PacsNode) -> None:
    result = run_job(retrieve_job(pacs, ["1.2.3.4.5.6.7.8.9"], tmp_path / "in"))
    assert result.problems == ["study 1.2.3.4.5.6.7.8.9: the PACS lists no images in it"]


def test_cli_query_then_retrieve(tmp_path: Path, pacs: PacsNode, isolated_dirs: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    address = pacs.address()
    assert main(["query", "--name", "CompressedSamples^C*", "--pacs", address]) == 0
    captured = capsys.readouterr()
    (line,) = captured.out.strip().splitlines()
    study_uid, text = line.split("\t")
    assert text.endswith("CompressedSamples^CT1 (ID 1CT1)") and captured.err.strip() == "1 study found"
    assert main(["query", "--patient-id", "4MR1", "--json", "--pacs", address]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["modalities"] == "MR" and record["images"] == 1

    assert main(["retrieve", study_uid, "--into", str(tmp_path / "in"), "--pacs", address]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == f"1 image fetched from {pacs}" and Path(out[1]).is_dir()
    assert main(["retrieve", "1.2.3.999", "--into", str(tmp_path / "in"), "--pacs", address]) == 1
    assert capsys.readouterr().err.strip() == "zsmed: not fetched: study 1.2.3.999: the PACS lists no images in it"
    assert main(["query", "--name", "*", "--pacs", f"ORTHANC@127.0.0.1:{free_port()}"]) == 2
    assert "cannot reach the PACS" in capsys.readouterr().err
