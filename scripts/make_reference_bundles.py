#!/usr/bin/env python
"""Regenerate the reference bundles in export/reference/ and their expected outputs.

    python scripts/make_reference_bundles.py [--data /work/shared/data] [--checkpoint MODEL.zsm ...]

Without --checkpoint it builds a ProtoNet-style (cosine to class means) few-shot classifier on
EfficientNet-Lite0 from the first 20 images of each HAM10000 base class (nv, mel, bkl, bcc), the
calibration set being those same support images (the .zsm goes to .cache/reference/, not
committed). Each --checkpoint NAME=MODEL.zsm:SUPPORT_DIR adds
a bundle exported from a shipped model file. Expected outputs (JSON next to each bundle) cover
deterministic synthetic inputs (zsmed.bundle.reference), a pydicom test DICOM, and held-out shared
data images named relative to the data folder (the test skips those when the data is absent).
Images are never copied into the repository or the bundles.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "export" / "reference"
HAM_CLASSES = ("nv", "mel", "bkl", "bcc")
N_SUPPORT = 20


def expected_outputs(bundle_path: Path, data: Path, held_out: list[str]) -> dict:
    from zsmed.bundle.reference import synthetic_inputs
    from zsmed.runtime.predict import load_predictor

    result: dict = {"bundle": bundle_path.name, "tolerance_probability": 1e-4, "ood_margin": 0.03}
    predictor = load_predictor(bundle_path, backend="onnxruntime")
    images = synthetic_inputs(predictor.preprocess.size)
    result["synthetic"] = {p.source: p.to_dict() for p in predictor.predict_images(list(images.values()), list(images))}
    try:
        from pydicom.data import get_testdata_file

        dicom = get_testdata_file("CT_small.dcm")
        if isinstance(dicom, str):
            [pred] = predictor.predict_files([dicom])
            result["dicom"] = {"CT_small.dcm": pred.to_dict()}
    except ImportError:
        pass
    files = [data / rel for rel in held_out]
    result["shared_data"] = {
        rel: {k: v for k, v in p.to_dict().items() if k != "source"}
        for rel, p in zip(held_out, predictor.predict_files(files), strict=True)
    }
    for section in ("synthetic", "dicom"):
        for entry in result.get(section, {}).values():
            entry.pop("source", None)
    return result


def make_ham_protonet(data: Path, work: Path) -> None:
    from zsmed.bundle.export import export_classifier
    from zsmed.bundle.protonet import build_protonet

    base = data / "ham10000_fs" / "base"
    support_dir = work / "support"
    support = {}
    held_out = []
    for name in HAM_CLASSES:
        files = sorted((base / name).glob("*.jpg"))
        support[name] = files[:N_SUPPORT]
        (support_dir / name).mkdir(parents=True)
        for path in support[name]:
            os.symlink(path, support_dir / name / path.name)
        held_out += [str(p.relative_to(data)) for p in files[N_SUPPORT : N_SUPPORT + 3]]
    cxr = sorted((data / "cxr_kermany" / "NORMAL").glob("*.jpeg"))[:2]
    held_out += [str(p.relative_to(data)) for p in cxr]
    descriptions = {
        "nv": "melanocytic nevus", "mel": "melanoma", "bkl": "benign keratosis-like lesion",
        "bcc": "basal cell carcinoma",
    }
    classifier = build_protonet(support, descriptions=descriptions)
    # The .zsm itself is kept out of the repository (.cache/ is ignored): `zsmed bench runtime
    # --model` uses it for the torch eager baseline.
    from zsmed.classifier import save_classifier

    save_classifier(classifier, REPO / ".cache" / "reference" / "ham4_protonet_lite0_v1.zsm")
    bundle = OUT / "ham4_protonet_lite0_v1.zsmb"
    export_classifier(classifier, bundle, support_dir, site="zsmed reference",
                      intended_use="Reference bundle for format-compatibility tests; not for clinical use.")
    expected = expected_outputs(bundle, data, held_out)
    (OUT / "ham4_protonet_lite0_v1.expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    print(f"wrote {bundle} ({bundle.stat().st_size / 1e6:.1f} MB)")


def make_from_checkpoint(spec: str, data: Path) -> None:
    from zsmed.bundle.export import export_classifier
    from zsmed.classifier import load_classifier

    name, _, rest = spec.partition("=")
    model, _, support_dir = rest.partition(":")
    bundle = OUT / f"{name}.zsmb"
    export_classifier(load_classifier(model), bundle, support_dir, site="zsmed reference")
    expected = expected_outputs(bundle, data, [])
    (OUT / f"{name}.expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    print(f"wrote {bundle} ({bundle.stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("ZSMED_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=MODEL.zsm:SUPPORT_DIR")
    parser.add_argument("--skip-protonet", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="zsmed-ref-"))
    try:
        if not args.skip_protonet:
            make_ham_protonet(args.data, work)
        for spec in args.checkpoint:
            make_from_checkpoint(spec, args.data)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
