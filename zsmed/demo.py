"""The headless demo: the whole path on an embedded default, with no display and no network.

The default data are the DICOM files that ship inside pydicom and the pydicom-data package (CT,
MR, ultrasound, radiographs, in many transfer syntaxes). The demo scans them, synthesises a
few-shot classifier "CT vs MR" from four files of each with the shipped SGPS generator, exports it
to a portable bundle (parity-checked across torch, onnxruntime and OpenVINO), and predicts the
other CT and MR images, plus an ultrasound image the model should refuse, through the
torch-free runtime.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Four support images per class (the export's calibration needs eight); every other CT or MR
# image of at least MIN_SIZE pixels is a query (the DICOMDIR test set holds 16x16 thumbnails,
# which are no images to judge).
SUPPORT = {
    "CT": ("CT_small.dcm", "693_J2KR.dcm", "bad_sequence.dcm", "J2K_pixelrep_mismatch.dcm"),
    "MR": ("MR_small.dcm", "MR2_UNCR.dcm", "emri_small.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm"),
}
OUT_OF_DOMAIN = ("US1_UNCR.dcm", "color-px.dcm")
MIN_SIZE = 64


def embedded_dicom_folders() -> list[Path]:
    import pydicom

    folders = [Path(pydicom.__file__).parent / "data" / "test_files"]
    try:
        import data_store  # the import name of the pydicom-data package

        folders.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return [f for f in folders if f.is_dir()]


@dataclass
class DemoReport:
    counts: dict[str, int] = field(default_factory=dict)
    support: dict[str, list[str]] = field(default_factory=dict)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    accuracy: float = 0.0
    model_path: str = ""
    bundle_path: str = ""
    bundle_parity: float | None = None
    out_of_domain: list[dict[str, Any]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)


def run_demo(out_dir: Path | None = None, say: Callable[[str], None] = print) -> DemoReport:
    from zsmed.dicom.scan import scan
    from zsmed.errors import DatasetError
    from zsmed.fewshot_demo import build_demo_classifier, export_demo_bundle

    report = DemoReport()
    folders = embedded_dicom_folders()
    say(f"1. Scanning the DICOM files embedded with pydicom ({', '.join(str(f) for f in folders)})")
    index = scan(folders)
    report.counts = index.counts()
    say("   " + ", ".join(f"{k}: {v}" for k, v in report.counts.items()))
    by_name: dict[str, list[Any]] = {}
    for instance in index.instances:
        by_name.setdefault(Path(instance.path).name, []).append(instance)
    modality_of: dict[str, str] = {}
    for patient in index.patients:
        for study in patient.studies:
            for series in study.series:
                for instance in series.instances:
                    modality_of[instance.path] = series.modality or ""
    missing = [name for names in SUPPORT.values() for name in names if name not in by_name]
    if missing:
        raise DatasetError(
            f"the demo's embedded DICOM files {', '.join(missing)} were not found; they come with pydicom "
            "and the pydicom-data package: pip install 'zsmed[demo]'"
        )
    support_paths = {label: [by_name[name][0].path for name in names] for label, names in SUPPORT.items()}
    report.support = support_paths
    say("2. Synthesising a few-shot classifier CT vs MR (shipped SGPS generator) from " +
        ", ".join(f"{len(v)} {k}" for k, v in support_paths.items()) + " support images")
    out = Path(out_dir or tempfile.mkdtemp(prefix="zsmed-demo-"))
    classifier, model_path = build_demo_classifier(support_paths, out)
    report.model_path = str(model_path)
    say(f"   saved {model_path}")
    say("3. Exporting a portable bundle (ONNX + OpenVINO IR, checksums, OOD gate)")
    export = export_demo_bundle(classifier, support_paths, out)
    report.bundle_path = str(export.path)
    diffs = [v for k, v in export.parity.items() if k.endswith("_max_abs_prob_diff")]
    report.bundle_parity = max(diffs) if diffs else None
    say(f"   {export.path} ({export.size_bytes / 1e6:.1f} MB); torch / onnxruntime / OpenVINO agree within "
        f"{report.bundle_parity:.1e}" if report.bundle_parity is not None else f"   {export.path}")
    chosen = {p for paths in support_paths.values() for p in paths}
    queries = [i for i in index.instances
               if i.is_image and min(i.rows or 0, i.cols or 0) >= MIN_SIZE
               and modality_of.get(i.path) in SUPPORT and i.path not in chosen]
    say(f"4. Predicting {len(queries)} other CT and MR images with the bundle (no torch in this step)")
    from zsmed.runtime.predict import load_predictor

    predictor = load_predictor(export.path, backend="onnxruntime")
    correct = total = 0
    predictions = predictor.predict_files([i.path for i in queries], frames="first")
    for instance, prediction in zip(queries, predictions, strict=True):
        truth = modality_of[instance.path]
        if prediction.error:
            say(f"   skipped {Path(instance.path).name}: {prediction.error}")
            continue
        total += 1
        label = prediction.label or max(prediction.probabilities, key=prediction.probabilities.__getitem__)
        correct += int(label == truth)
        report.predictions.append({"file": Path(instance.path).name, "truth": truth, "predicted": label,
                                   "probability": prediction.probabilities.get(label),
                                   "abstain": prediction.abstain})
    report.accuracy = correct / total if total else 0.0
    say(f"   accuracy {correct}/{total} = {report.accuracy:.1%}")
    others = [by_name[name][0].path for name in OUT_OF_DOMAIN if name in by_name]
    for path, prediction in zip(others, predictor.predict_files(others, frames="first"), strict=True):
        report.out_of_domain.append({"file": Path(path).name, "abstain": prediction.abstain,
                                     "ood_score": prediction.ood_score, "error": prediction.error})
        verdict = "abstains" if prediction.abstain else f"answers {prediction.label}"
        say(f"   ultrasound {Path(path).name}: the model {verdict} (OOD score {prediction.ood_score})")
    return report
