"""The out-of-distribution gate of a chest X-ray bundle on real images: its own modality passes,
another modality, a radiograph of another body part and lateral / oblique views abstain."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.conftest import dicom_test_file
from zsmed.runtime.bundle import read_bundle
from zsmed.runtime.predict import Predictor, load_predictor

CXR_CLASSES = ("NORMAL", "BACTERIA", "VIRUS")


@pytest.fixture(scope="module")
def chest_bundle(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    from zsmed.bundle.export import export_classifier
    from zsmed.bundle.protonet import build_protonet

    work = tmp_path_factory.mktemp("ood")
    support, held_out = {}, []
    for name in CXR_CLASSES:
        files = sorted((shared_data / "cxr_kermany" / name).iterdir())
        files = [f for f in files if f.suffix.lower() in (".jpeg", ".jpg", ".png")]
        support[name], held_out = files[:10], [*held_out, *files[10:30]]
        (work / "support" / name).mkdir(parents=True)
        for path in support[name]:
            os.symlink(path, work / "support" / name / path.name)
    report = export_classifier(build_protonet(support), work / "cxr.zsmb", work / "support")
    return report.path, held_out


def test_chest_xray_gate_passes_chest_films_and_holds_back_skin_other_body_parts_and_lateral_views(
        chest_bundle: tuple[Path, list[Path]], shared_data: Path) -> None:
    bundle_path, held_out = chest_bundle
    predictor: Predictor = load_predictor(bundle_path, backend="onnxruntime")
    in_domain = predictor.predict_files(held_out, 16)
    skin = predictor.predict_files(sorted((shared_data / "ham10000_fs" / "base" / "bkl").iterdir())[:20], 16)
    # a computed radiograph of the same modality but another body part (AP extremity, 1760 px,
    # 12-bit, pydicom's test data): the nearest thing here to "a view the model was not built for"
    extremity = predictor.predict_files([dicom_test_file("RG3_UNCI.dcm")], 1)[0]
    adult_chest = predictor.predict_files([dicom_test_file("RG1_UNCI.dcm")], 1)[0]
    # lateral and oblique views (a cervical-spine CR series from pydicom's DICOMDIR tests, the only
    # lateral radiographs here; ViewPosition LL for 6154): views the model was not built for
    other_views = predictor.predict_files([dicom_test_file(name) for name in ("6154", "6247", "6278")], 1)

    assert np.mean([p.abstain for p in in_domain]) <= 0.1
    assert all(p.abstain and p.label is None for p in skin)
    assert extremity.abstain and extremity.label is None and extremity.error is None
    assert extremity.ood_score is not None and extremity.ood_score > 2.0
    for view in other_views:
        assert view.abstain and view.label is None and view.error is None, view
        assert view.ood_score is not None and view.ood_score > 2.0
    # an adult PA chest film lies between: nearer the paediatric chest films than the extremity is
    assert adult_chest.ood_score is not None and adult_chest.ood_score < extremity.ood_score / 2
    outside = [*skin, extremity, *other_views]
    scores = [p.ood_score for p in in_domain] + [p.ood_score for p in outside]
    is_out = [0] * len(in_domain) + [1] * len(outside)
    assert roc_auc_score(is_out, scores) >= 0.95
    assert read_bundle(bundle_path).card["ood_gate"]["threshold"] > 0
