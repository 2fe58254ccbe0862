"""The demo's classifier building and export (kept apart so ``zsmed.demo`` itself stays torch-free)."""

from __future__ import annotations

from pathlib import Path

from zsmed.bundle.export import ExportReport
from zsmed.classifier import Classifier, save_classifier


def build_demo_classifier(support: dict[str, list[str]], out_dir: Path) -> tuple[Classifier, Path]:
    """Synthesise a classifier with the shipped SGPS generator from the support files (image-only:
    the demo's classes CT and MR have no shipped description)."""
    from zsmed.synth.synthesize import synthesize

    classifier = synthesize({label: [Path(p) for p in paths] for label, paths in support.items()})
    return classifier, save_classifier(classifier, out_dir / "demo_ct_vs_mr.zsm")


def export_demo_bundle(classifier: Classifier, support: dict[str, list[str]], out_dir: Path) -> ExportReport:
    """Export with the support images as the calibration set (parity check and OOD gate)."""
    from zsmed.bundle.export import export_classifier

    calibration = out_dir / "calibration"
    for label, paths in support.items():
        (calibration / label).mkdir(parents=True, exist_ok=True)
        for path in paths:
            link = calibration / label / (Path(path).name + ("" if Path(path).suffix else ".dcm"))
            if not link.exists():
                link.symlink_to(Path(path).resolve())
    return export_classifier(classifier, out_dir / "demo_ct_vs_mr.zsmb", calibration)
