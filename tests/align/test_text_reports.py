"""Zero-shot through text with per-image reports as anchor targets (Derm7pt's annotated criteria)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import data_subset
from tests.zeroshot.test_zeroshot_cli import DERM_FILE
from zsmed.zeroshot.calibration import harmonic
from zsmed.zeroshot.classdefs import load_class_definitions


def test_report_written_from_annotations_or_taken_from_a_report_column() -> None:
    from zsmed.align.evaluate import image_report

    definitions = load_class_definitions(DERM_FILE)
    meta = {"pigment_network": "atypical", "streaks": "irregular", "pigmentation": "absent",
            "regression_structures": "absent", "dots_and_globules": "absent", "blue_whitish_veil": "present",
            "vascular_structures": "absent"}
    text = image_report(meta, definitions)
    assert text == "Dermoscopy shows pigment network atypical, streaks irregular, blue whitish veil."
    assert image_report({**meta, "report": "Irregular dark blotch."}, definitions) == "Irregular dark blotch."
    assert image_report({**meta, "streaks": ""}, definitions) is None  # not annotated


def test_text_zeroshot_uses_each_images_report(shared_data: Path, tmp_path: Path) -> None:
    from zsmed.align.evaluate import text_zeroshot
    from zsmed.progress import run_job
    from zsmed.zeroshot.evaluate import prepare_zeroshot

    root = data_subset(shared_data / "derm7pt", tmp_path / "derm7pt", 12)
    data = run_job(prepare_zeroshot([root], DERM_FILE, ["MEL", "BCC"], semantics="attributes",
                                    seen_test_fraction=0.3))
    classes = data.problem.classes
    with_reports = text_zeroshot(data.x_train, data.y_train, data.x_test, data.y_test, classes, DERM_FILE,
                                 ["MEL", "BCC"], ["lstsq", "procrustes"], data.train_meta)
    assert with_reports["anchor_targets"] == "per-image reports"
    assert with_reports["distinct_anchor_targets"] > 5 and with_reports["target_rank"] > 3
    without = text_zeroshot(data.x_train, data.y_train, data.x_test, data.y_test, classes, DERM_FILE,
                            ["MEL", "BCC"], ["lstsq"])
    assert without["anchor_targets"] == "class descriptions" and without["target_rank"] <= 3
    for result in with_reports["methods"].values():
        assert result["H"] == pytest.approx(harmonic(result["seen_acc"], result["unseen_acc"]))
        assert np.isfinite(result["zsl_acc"])
