"""The headless demo: the whole path on an embedded default, with no display and no network.

The default data are the DICOM files that ship inside pydicom and the pydicom-data package (CT,
MR, ultrasound, radiographs, in many transfer syntaxes). The demo scans them, decodes every image,
builds a few-shot classifier "CT vs MR" from two files of each, and predicts the others.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Two support images per class; every other CT or MR image of at least MIN_SIZE pixels is a
# query (the DICOMDIR test set holds 16x16 thumbnails, which are no images to judge).
SUPPORT = {
    "CT": ("CT_small.dcm", "693_J2KR.dcm"),
    "MR": ("MR_small.dcm", "MR2_UNCR.dcm"),
}
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
    steps: list[str] = field(default_factory=list)


def run_demo(out_dir: Path | None = None, say: Callable[[str], None] = print) -> DemoReport:
    from zsmed.dicom.scan import scan
    from zsmed.fewshot_demo import build_demo_classifier

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
    support_paths = {label: [by_name[name][0].path for name in names if name in by_name]
                     for label, names in SUPPORT.items()}
    report.support = support_paths
    say("2. Building a few-shot classifier CT vs MR from " +
        ", ".join(f"{len(v)} {k}" for k, v in support_paths.items()) + " support images")
    out = Path(out_dir or tempfile.mkdtemp(prefix="zsmed-demo-"))
    classifier, model_path = build_demo_classifier(support_paths, out)
    report.model_path = str(model_path)
    say(f"   saved {model_path}")
    chosen = {p for paths in support_paths.values() for p in paths}
    queries = [i for i in index.instances
               if i.is_image and min(i.rows or 0, i.cols or 0) >= MIN_SIZE
               and modality_of.get(i.path) in SUPPORT and i.path not in chosen]
    say(f"3. Predicting {len(queries)} other CT and MR images (all transfer syntaxes, decoded safely)")
    from zsmed.dicom.safe import safe_model_image
    from zsmed.errors import ZsmedError
    from zsmed.preprocess import batch_model_inputs

    decoded, images = [], []
    for instance in queries:
        try:
            images.append(safe_model_image(instance.path))
            decoded.append(instance)
        except ZsmedError as exc:
            say(f"   skipped {Path(instance.path).name}: {exc.reason}")
    probabilities: Any = classifier.predict_proba(batch_model_inputs(images, classifier.preprocess)) if images else []
    correct = total = 0
    for instance, probs in zip(decoded, probabilities, strict=True):
        label = classifier.class_names[int(probs.argmax())]
        truth = modality_of[instance.path]
        total += 1
        correct += int(label == truth)
        report.predictions.append({"file": Path(instance.path).name, "truth": truth, "predicted": label,
                                   "probability": round(float(probs.max()), 4)})
    report.accuracy = correct / total if total else 0.0
    say(f"   accuracy {correct}/{total} = {report.accuracy:.1%}")
    return report
