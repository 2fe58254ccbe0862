#!/usr/bin/env python
"""Make the Derm7pt 7-point attribute predictor and the HAM10000 class file that uses it.

    python scripts/make_attribute_predictor.py [--data ../shared/data]

Writes, in resources/attributes/:
- derm7pt_7point_predictor.npz: a ridge map from EfficientNet-Lite0 features to the 18 7-point
  attributes of derm7pt.yaml, fitted on the Derm7pt dev cases *except* the diagnoses that are
  unseen classes of the HAM10000 protocol (dermatofibroma, vascular lesion; Derm7pt has no
  actinic keratosis), so no image of an unseen class is used. Ridge lambda 1 (not tuned).
- ham10000_7point.yaml: the HAM10000 classes with their usual descriptions and 7-point attribute
  rows: class means of Derm7pt's annotations (nv <- NEV cases, mel <- MEL, bcc <- BCC, bkl <-
  seborrheic keratosis + lentigo, df <- dermatofibroma, vasc <- vascular lesion: class-level
  semantics, as derm7pt.yaml), akiec written by hand from dermoscopy knowledge (Derm7pt has no
  such case), and `image_attribute_predictor:` naming the predictor, so FSIGenZ's ridge synthesis
  runs over a per-image basis of HAM10000's own seen images.
No image and no per-image value is written: the predictor holds a 1280 x 18 weight matrix.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import yaml

from zsmed.data.folders import load_class_folders
from zsmed.encoders import create_image_encoder
from zsmed.features import FeatureCache, encode_files
from zsmed.progress import run_job
from zsmed.zeroshot.attribute_predictor import fit_attribute_predictor
from zsmed.zeroshot.classdefs import load_class_definitions

REPO = Path(__file__).resolve().parents[1]
ATTRIBUTES = REPO / "resources" / "attributes"
ENCODER = "efficientnet-lite0"
LEFT_OUT = ("dermatofibroma", "vascular lesion")  # HAM10000's unseen df and vasc
HAM_ROWS = {  # HAM10000 class -> Derm7pt cases whose annotation mean is its row
    "nv": ("diagnosis_group", ("NEV",)),
    "mel": ("diagnosis_group", ("MEL",)),
    "bcc": ("diagnosis_group", ("BCC",)),
    "bkl": ("diagnosis", ("seborrheic keratosis", "lentigo")),
    "df": ("diagnosis", ("dermatofibroma",)),
    "vasc": ("diagnosis", ("vascular lesion",)),
}
# Actinic keratosis / Bowen's disease in 7-point terms (no Derm7pt case to average): dotted and
# glomerular vessels (Bowen's), linear-wavy vessels of the strawberry pattern, grey-brown dots in
# pigmented forms, white scale read as white structureless areas, irregular pigmentation when
# pigmented; no pigment network, streaks or blue-white veil.
AKIEC_ROW = {"vessels_dotted": 0.4, "vessels_linear_irregular": 0.3, "dots_globules_irregular": 0.3,
             "regression_white_areas": 0.3, "pigmentation_irregular": 0.2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()
    derm = load_class_definitions(ATTRIBUTES / "derm7pt.yaml")
    items = load_class_folders([Path(args.data) / "derm7pt"]).items
    encoded = run_job(encode_files([item.path for item in items], create_image_encoder(ENCODER), FeatureCache()))
    row_of = {Path(p): i for i, p in enumerate(encoded.paths)}
    items = [item for item in items if item.path in row_of]
    features = np.asarray(encoded.features, dtype=np.float64)[[row_of[item.path] for item in items]]
    annotations, annotated = derm.image_attribute_matrix([item.meta for item in items])
    diagnosis = np.array([item.meta["diagnosis"] for item in items])
    train = annotated & ~np.isin(diagnosis, LEFT_OUT)
    names_hash = hashlib.sha256("\n".join(sorted(items[i].path.name for i in np.flatnonzero(train))).encode())
    predictor = fit_attribute_predictor(
        features[train], annotations[train], diagnosis[train], derm.attribute_names, ENCODER, lam=1.0,
        info={"trained_on": "Derm7pt dev cases (dermoscopy images)", "left_out_diagnoses": list(LEFT_OUT),
              "cases": int(train.sum()), "case_list_sha256": names_hash.hexdigest(),
              "made_by": "scripts/make_attribute_predictor.py"})
    predictor.save(ATTRIBUTES / "derm7pt_7point_predictor.npz")

    ham = yaml.safe_load((ATTRIBUTES / "ham10000.yaml").read_text())
    metas = [item.meta for item in items]
    classes = {}
    for key, entry in ham["classes"].items():
        if key == "akiec":
            row = {n: AKIEC_ROW.get(n, 0.0) for n in derm.attribute_names}
        else:
            column, values = HAM_ROWS[key]
            rows = annotations[[i for i, meta in enumerate(metas) if meta[column] in values and annotated[i]]]
            row = dict(zip(derm.attribute_names, rows.mean(axis=0).round(3).tolist(), strict=True))
        classes[key] = {k: v for k, v in entry.items() if k != "attributes"}
        classes[key]["attributes"] = {n: float(v) for n, v in row.items() if v > 0}
    header = (
        "# HAM10000 classes in Derm7pt's 7-point vocabulary, made by scripts/make_attribute_predictor.py.\n"
        "# Descriptions as in ham10000.yaml. Attribute rows: class means of Derm7pt's 7-point annotations\n"
        "# (nv <- NEV cases, mel <- MEL, bcc <- BCC, bkl <- seborrheic keratosis + lentigo, df <-\n"
        "# dermatofibroma, vasc <- vascular lesion); akiec written by hand (no Derm7pt case). Each seen\n"
        "# training image gets predicted 7-point attributes from the predictor below (trained on Derm7pt\n"
        "# without dermatofibroma and vascular-lesion cases), the per-image basis of FSIGenZ's synthesis.\n"
    )
    body = {"dataset": "HAM10000 dermoscopy", "modality": "dermoscopy", "attribute_names": derm.attribute_names,
            "image_attribute_predictor": "derm7pt_7point_predictor.npz", "classes": classes}
    (ATTRIBUTES / "ham10000_7point.yaml").write_text(header + yaml.safe_dump(body, sort_keys=False, width=100))
    print(f"predictor on {int(train.sum())} Derm7pt cases -> {ATTRIBUTES / 'derm7pt_7point_predictor.npz'}")


if __name__ == "__main__":
    main()
