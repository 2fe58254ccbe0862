"""Write resources/attributes/derm7pt.yaml and derm7pt_attributes.csv from Derm7pt's metadata.csv.

Each class's attribute vector is the mean over its cases of 0/1 indicators of the 7-point-checklist
criteria (e.g. ``streaks_irregular`` = fraction of the class's cases with irregular streaks). Only
the *labels* in metadata.csv are read, never an image: class-level attribute means from annotations
are the standard semantic side information of zero-shot learning (as for CUB or AwA2).

Rows: the five diagnosis groups (the predicted classes) and every fine diagnosis (``parent:`` its
group), which serve as the finer seen basis for prototype synthesis.

    python scripts/make_derm7pt_attributes.py /work/shared/data/derm7pt
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import yaml

# criterion column -> {attribute name: set of values meaning "present"}
ATTRIBUTES: dict[str, dict[str, set[str]]] = {
    "pigment_network": {"pigment_network_typical": {"typical"}, "pigment_network_atypical": {"atypical"}},
    "streaks": {"streaks_regular": {"regular"}, "streaks_irregular": {"irregular"}},
    "pigmentation": {
        "pigmentation_regular": {"diffuse regular", "localized regular"},
        "pigmentation_irregular": {"diffuse irregular", "localized irregular"},
    },
    "regression_structures": {
        "regression_blue_areas": {"blue areas", "combinations"},
        "regression_white_areas": {"white areas", "combinations"},
    },
    "dots_and_globules": {"dots_globules_regular": {"regular"}, "dots_globules_irregular": {"irregular"}},
    "blue_whitish_veil": {"blue_whitish_veil": {"present"}},
    "vascular_structures": {
        "vessels_arborizing": {"arborizing"},
        "vessels_dotted": {"dotted"},
        "vessels_linear_irregular": {"linear irregular"},
        "vessels_hairpin": {"hairpin"},
        "vessels_comma": {"comma"},
        "vessels_wreath": {"wreath"},
        "vessels_within_regression": {"within regression"},
    },
}
NAMES = [name for spec in ATTRIBUTES.values() for name in spec]

GROUPS = {
    "NEV": ("Nevus", ["nevus", "nv"],
            "Benign nevus: a symmetric brown lesion with a regular typical pigment network, regular dots and "
            "globules, uniform pigmentation, no blue-whitish veil, no regression structures, regular borders."),
    "MEL": ("Melanoma", ["melanoma", "mel"],
            "Melanoma: asymmetric lesion with an atypical pigment network, irregular streaks, irregular dots "
            "and globules, irregular blotches of pigmentation, blue-whitish veil, regression structures and "
            "atypical dotted or irregular vessels."),
    "SK": ("Seborrheic keratosis", ["seborrheic keratosis"],
           "Seborrheic keratosis: a sharply demarcated waxy stuck-on lesion with milia-like cysts, comedo-like "
           "openings, fissures and ridges, hairpin vessels, and no pigment network."),
    "BCC": ("Basal cell carcinoma", ["basal cell carcinoma", "bcc"],
            "Basal cell carcinoma: no pigment network, arborizing branching vessels, blue-grey ovoid nests, "
            "leaf-like areas and ulceration on a pink translucent background."),
    "MISC": ("Miscellaneous (lentigo, dermatofibroma, vascular lesion, melanosis)", ["miscellaneous", "other"],
             "Miscellaneous benign lesions such as lentigo, melanosis, dermatofibroma or vascular lesions: light "
             "brown reticular or homogeneous pigmentation, a central white patch, or red-purple lacunae."),
}

# Short dermoscopic descriptions of the fine diagnoses (textbook dermoscopy), for text semantics.
FINE = {
    "clark nevus": "Clark (dysplastic) nevus: flat brown lesion with a reticular pigment network, slightly "
                   "irregular, darker centre fading at the periphery, a few regular dots.",
    "reed or spitz nevus": "Reed or Spitz nevus: symmetric dark brown to black lesion with a starburst pattern of "
                           "regular streaks and pseudopods at the periphery, central blue-grey or black blotch.",
    "dermal nevus": "Dermal nevus: raised soft skin-coloured to light brown papule with comma vessels, "
                    "globules and no pigment network.",
    "blue nevus": "Blue nevus: homogeneous steel-blue to blue-grey pigmentation without network, dots or streaks.",
    "combined nevus": "Combined nevus: a brown nevus with a central homogeneous blue area, regular network "
                      "around it.",
    "congenital nevus": "Congenital nevus: large brown lesion with globular or reticular pattern, target "
                        "globules, hypertrichosis and regular pigmentation.",
    "recurrent nevus": "Recurrent nevus: a scar with irregular pigmentation, streaks and radial lines confined "
                       "to the scar after a previous excision.",
    "seborrheic keratosis": "Seborrheic keratosis: waxy stuck-on lesion with milia-like cysts, comedo-like "
                            "openings, fissures and ridges, hairpin vessels, no pigment network.",
    "lentigo": "Solar lentigo: flat light brown homogeneous lesion with a fine reticular or fingerprint pattern "
               "and moth-eaten sharp borders.",
    "melanosis": "Melanosis: flat evenly pigmented light brown macule, homogeneous or faint reticular pattern.",
    "dermatofibroma": "Dermatofibroma: central white scar-like patch surrounded by a delicate light brown "
                      "pigment network at the periphery.",
    "vascular lesion": "Vascular lesion: red, purple or blue-black lacunae separated by whitish septa, "
                       "no pigment network.",
    "miscellaneous": "Other benign skin lesion with homogeneous light pigmentation and no melanoma-specific "
                     "criteria.",
    "basal cell carcinoma": "Basal cell carcinoma: arborizing vessels, blue-grey ovoid nests, leaf-like areas, "
                            "ulceration, no pigment network.",
    "melanoma (in situ)": "Melanoma in situ: flat asymmetric lesion with atypical pigment network, irregular "
                          "dots and globules, regression and irregular pigmentation.",
    "melanoma (less than 0.76 mm)": "Thin invasive melanoma: atypical network, irregular streaks, irregular "
                                    "pigmentation, regression structures, blue-whitish veil.",
    "melanoma (0.76 to 1.5 mm)": "Invasive melanoma: blue-whitish veil, irregular blotches, irregular streaks, "
                                 "atypical vessels and regression.",
    "melanoma (more than 1.5 mm)": "Thick melanoma: blue-whitish veil, milky red areas, polymorphous "
                                   "atypical vessels, irregular blotches, few network remnants.",
    "melanoma metastasis": "Melanoma metastasis: blue to skin-coloured nodule with homogeneous blue pigmentation "
                           "and irregular vessels.",
}


def indicators(row: dict[str, str]) -> dict[str, float]:
    out = {}
    for column, spec in ATTRIBUTES.items():
        value = row[column].strip().lower()
        for name, present in spec.items():
            out[name] = 1.0 if value in present else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("derm7pt_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "resources" / "attributes")
    args = parser.parse_args()
    with (args.derm7pt_dir / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    sums: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(NAMES, 0.0))
    counts: dict[str, int] = defaultdict(int)
    parent: dict[str, str] = {}
    for row in rows:
        ind = indicators(row)
        for key in (row["diagnosis_group"], row["diagnosis"]):
            counts[key] += 1
            for name, value in ind.items():
                sums[key][name] += value
        parent[row["diagnosis"]] = row["diagnosis_group"]

    def means(key: str) -> dict[str, float]:
        return {name: round(sums[key][name] / counts[key], 3) for name in NAMES}

    classes: dict[str, dict[str, object]] = {}
    for group, (name, aliases, description) in GROUPS.items():
        classes[group] = {"name": name, "aliases": aliases, "description": description, "attributes": means(group),
                          "cases": counts[group]}
    for fine in sorted(parent, key=lambda f: (parent[f], f)):
        if fine in GROUPS:
            continue
        classes[fine] = {"name": fine, "parent": parent[fine], "description": FINE[fine],
                         "attributes": means(fine), "cases": counts[fine]}
    header = ("# Derm7pt classes: descriptions and 7-point-checklist attribute means per class.\n"
              "# Generated by scripts/make_derm7pt_attributes.py from the labels in Derm7pt's metadata.csv\n"
              "# (dev part; no image is read). Each attribute is the fraction of the class's cases showing it.\n"
              "# Rows with 'parent:' are fine diagnoses: the seen basis for prototype synthesis.\n"
              "# image_attributes: how each attribute is read off a seen training image's own metadata.csv row\n"
              "# (its 7-point annotation), for the per-image seen basis.\n")
    image_attributes = {name: {"column": column, "values": sorted(values)}
                        for column, spec in ATTRIBUTES.items() for name, values in spec.items()}
    data = {"dataset": "Derm7pt dermoscopy", "basis_column": "diagnosis", "attribute_names": NAMES,
            "image_attributes": image_attributes, "classes": classes}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "derm7pt.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False, width=110),
                                           encoding="utf-8")
    with (args.out / "derm7pt_attributes.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "parent", "cases", *NAMES])
        for key, entry in classes.items():
            attrs = entry["attributes"]
            assert isinstance(attrs, dict)
            writer.writerow([key, entry.get("parent", ""), entry["cases"], *(attrs[n] for n in NAMES)])
    print(f"wrote {len(classes)} classes to {args.out}")


if __name__ == "__main__":
    main()
