"""Build a few-shot classifier and its bundle in one job: the app's builder.

``check_support`` reads the support set as the reader arranged it (class -> image files) and lists
what a reader should know before building, each finding with the images it concerns: errors stop
the build (a class with no images, the same image filed under two classes, too few images to check
the exported model), warnings do not (images of different kinds, one class much larger than the
others, an image filed twice). ``build_job`` encodes the images (progress per image, cancellable),
synthesises the classifier (``zsmed.synth.synthesize``: the shipped generator behind its guard),
saves the model file, and exports the bundle into the models folder with the support images as its
calibration set; its ``BuildOutcome`` keeps what the card does not: which support image the
classifier gets wrong when that image is left out of the build (file names stay on this PC).
"""

from __future__ import annotations

import functools
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsmed.errors import DatasetError
from zsmed.progress import Job, Progress, relayed

ERROR, WARNING, NOTE = "error", "warning", "note"
MAX_CLASSES = 10  # what the shipped generators handle
# The exported model is checked on its own support images (torch vs ONNX Runtime and OpenVINO) and
# its "not like these images" gate is set from them: zsmed.bundle.export.MIN_CALIBRATION.
MIN_IMAGES = 8
IMBALANCE_RATIO = 3
_UNSAFE = re.compile(r"[^\w\- .()]+")


@dataclass(frozen=True)
class Finding:
    """One thing the reader should know about the support set, with the images it concerns."""

    severity: str  # ERROR (stops the build), WARNING or NOTE
    message: str
    images: tuple[Path, ...] = ()


@dataclass
class BuildOutcome:
    classifier: Any  # zsmed.classifier.Classifier
    bundle_path: Path
    model_path: Path
    support: list[tuple[Path, str]]  # every image used, with its class
    loo: dict[Path, str]  # image -> class predicted with that image left out of the build
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    signed: bool = False

    @property
    def loo_wrong(self) -> list[tuple[Path, str, str]]:
        """(image, its class, the class predicted without it) where the two differ."""
        label = dict(self.support)
        return [(path, label[path], said) for path, said in self.loo.items() if said != label.get(path)]

    @property
    def method_text(self) -> str:
        guard = self.classifier.card.extra.get("guard") or {}
        if self.classifier.card.method.startswith("sgps"):
            colour = self.classifier.card.extra.get("colour") or {}
            return "made by the few-shot generator" + (", with the images' colours" if colour.get("used") else "")
        if guard.get("fired") == "domain":
            return "nearest class mean (the images are unlike those the generator learned from)"
        return "nearest class mean (it did better than the generator on these images)"


def model_file_name(name: str) -> str:
    """A file name (without suffix) for a model the reader named: path separators, control and
    other unsafe characters become '-'; empty or dot-only names are refused."""
    cleaned = _UNSAFE.sub("-", name.strip()).strip(" .-")[:80].strip(" .-")
    if not cleaned:
        raise DatasetError(f"'{name.strip()}' cannot name a model file: use letters or digits")
    return cleaned


@functools.lru_cache(maxsize=8192)
def _facts(path: Path, size: int, mtime_ns: int) -> tuple[str | None, str | None]:
    """(SHA-256, kind) of a file as it is now: remembered while its size and time stay the same,
    since the checks run again at every edit of the support set and X-ray files are tens of MB."""
    from zsmed.digest import file_sha256
    from zsmed.runtime.input_kinds import image_kind

    try:
        digest: str | None = file_sha256(path)
    except OSError:
        digest = None
    return digest, image_kind(path)


def _file_facts(path: Path) -> tuple[str | None, str | None]:
    try:
        stat = path.stat()
    except OSError:
        return None, None
    return _facts(path, stat.st_size, stat.st_mtime_ns)


def _kind_name(kind: str) -> str:
    return "photographs" if kind == "photo" else kind


def check_support(classes: Mapping[str, Sequence[str | Path]] | Sequence[tuple[str, Sequence[str | Path]]]
                  ) -> list[Finding]:
    """What a reader should know before building from ``classes`` (name -> image files, or
    (name, files) pairs, so that two classes given one name can be told apart), errors first.
    Reads each file's bytes (for copies) and DICOM header (for its kind), never pixels."""
    from zsmed.runtime.validate import CardError, plain_text

    findings: list[Finding] = []
    pairs = list(classes.items()) if isinstance(classes, Mapping) else list(classes)
    named = [(str(name).strip(), [Path(p) for p in paths]) for name, paths in pairs]
    stripped = [name for name, _ in named]
    if len(named) < 2:
        findings.append(Finding(ERROR, "a classifier needs at least two classes"))
    if len(named) > MAX_CLASSES:
        findings.append(Finding(ERROR, f"at most {MAX_CLASSES} classes ({len(named)} now)"))
    if any(not name for name in stripped):
        findings.append(Finding(ERROR, "every class needs a name"))
    for name in sorted({n.lower() for n in stripped if n and [m.lower() for m in stripped].count(n.lower()) > 1}):
        findings.append(Finding(ERROR, f"two classes are named '{name}': give each class its own name"))
    for name in stripped:
        if name:
            try:
                plain_text(name, "class name")
            except CardError as exc:
                findings.append(Finding(ERROR, str(exc)))
    for name, paths in named:
        if not paths:
            # A description alone is not enough: a class described but never shown was recognised no
            # better than chance at this scale (docs/bench/zeroshot.md, "Classes from a description alone").
            findings.append(Finding(ERROR, f"class '{name or '(no name)'}' has no images: add a few examples"))
    every = [p for _, paths in named for p in paths]
    missing = [p for p in every if not p.is_file()]
    if missing:
        findings.append(Finding(ERROR, f"{len(missing)} image file(s) cannot be found (moved or deleted?)",
                                tuple(missing)))
    facts = {p: _file_facts(p) for p in every if p.is_file()}
    hashes = {p: digest for p, (digest, _) in facts.items()}
    where: dict[str, list[tuple[str, Path]]] = {}
    for name, paths in named:
        for path in paths:
            digest = hashes.get(path)
            if digest is not None:
                where.setdefault(digest, []).append((name, path))
    for places in where.values():
        names = sorted({name for name, _ in places})
        if len(names) > 1:
            findings.append(Finding(ERROR, f"the same image is filed under {' and '.join(repr(n) for n in names)}: "
                                           "keep it in one class", tuple(p for _, p in places)))
        elif len(places) > 1:
            findings.append(Finding(WARNING, f"the same image is in '{names[0]}' {len(places)} times: it counts "
                                             "once per copy", tuple(p for _, p in places)))
    total = len(every)
    if 0 < total < MIN_IMAGES:
        findings.append(Finding(ERROR, f"{total} images in all: at least {MIN_IMAGES} are needed to check the "
                                       "exported model and to set its 'not like these images' gate"))
    kinds = {p: kind for p, (_, kind) in facts.items()}
    unreadable = [p for p, kind in kinds.items() if kind is None]
    if unreadable:
        findings.append(Finding(WARNING, f"{len(unreadable)} file(s) are not images zsmed can read: they will "
                                         "be left out", tuple(unreadable)))
    counted = Counter(kind for kind in kinds.values() if kind is not None)
    if len(counted) > 1:
        per_class = [(name, sorted({k for k in (kinds.get(p) for p in paths) if k is not None}))
                     for name, paths in named]
        if all(len(k) == 1 for _, k in per_class):
            # Each class is one kind of image, and they differ: the kind alone would tell them apart.
            detail = "; ".join(f"{name}: {_kind_name(k[0])}" for name, k in per_class)
            findings.append(Finding(WARNING, f"the classes differ by the kind of image ({detail}): the model "
                                             "would learn the kind of image, not the disease"))
        else:
            main_kind = counted.most_common(1)[0][0]
            others = tuple(p for p, kind in kinds.items() if kind not in (None, main_kind))
            rest = ", ".join(_kind_name(k) for k in sorted(counted) if k != main_kind)
            findings.append(Finding(WARNING, f"{len(others)} image(s) are {rest}, the rest "
                                             f"{_kind_name(main_kind)}: build a model on one kind of image", others))
    sizes = {name: len(paths) for name, paths in named if paths}
    if len(sizes) >= 2 and max(sizes.values()) >= IMBALANCE_RATIO * min(sizes.values()):
        big, small = max(sizes, key=sizes.__getitem__), min(sizes, key=sizes.__getitem__)
        findings.append(Finding(WARNING, f"'{big}' has {sizes[big]} images and '{small}' {sizes[small]}: results "
                                         f"lean towards '{big}'; add images to '{small}'"))
    single = [name for name, n in sizes.items() if n == 1]
    if single:
        findings.append(Finding(NOTE, f"one image in {', '.join(repr(n) for n in single)}: with two or more per "
                                      "class the build also tells how often the model gets its own images right "
                                      "(leave-one-out)"))
    order = {ERROR: 0, WARNING: 1, NOTE: 2}
    return sorted(findings, key=lambda f: order[f.severity])


DESCRIPTIONS_FILE = "descriptions.yaml"


def build_tools_missing() -> str | None:
    """Why this PC cannot build a model (a runtime-only install has no PyTorch), or None."""
    import importlib.util

    missing = [name for name in ("torch", "onnx") if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return ("building a model needs zsmed's build tools (PyTorch and ONNX), which are not installed on this PC: "
            "install zsmed[train], or build on a workstation that has them and import the model file here")


def save_support_folder(classes: Mapping[str, Sequence[str | Path]], descriptions: Mapping[str, str],
                        folder: str | Path) -> Path:
    """The examples as a folder a later session or ``zsmed build fewshot --support FOLDER
    --descriptions FOLDER/descriptions.yaml`` reads: one subfolder of copies per class, and the
    descriptions. Refuses a folder that already holds files; two examples with one file name in a
    class are both kept (the second renamed)."""
    import shutil

    import yaml

    root = Path(folder)
    if root.exists() and any(root.iterdir()):
        raise DatasetError("the folder is not empty: choose a new or empty folder", path=root)
    for name, paths in classes.items():
        target = root / model_file_name(name)
        target.mkdir(parents=True, exist_ok=True)
        for path in map(Path, paths):
            copy = target / path.name
            k = 1
            while copy.exists():
                k += 1
                copy = target / f"{path.stem} ({k}){path.suffix}"
            shutil.copy2(path, copy)
    texts = {model_file_name(c): {"description": t.strip()} for c, t in descriptions.items() if t.strip()}
    if texts:
        (root / DESCRIPTIONS_FILE).write_text(yaml.safe_dump({"classes": texts}, allow_unicode=True, sort_keys=False))
    return root


def folder_descriptions(folder: str | Path, names: Sequence[str]) -> dict[str, str]:
    """The descriptions a saved examples folder holds for ``names`` (its descriptions.yaml), if any."""
    from zsmed.descriptions import best_match, load_description_file

    path = Path(folder) / DESCRIPTIONS_FILE
    if not path.is_file():
        return {}
    entries = load_description_file(path)
    found = {name: best_match(name, entries) for name in names}
    return {name: entry.description for name, entry in found.items() if entry is not None and entry.description}


def build_job(
    classes: Mapping[str, Sequence[str | Path]],
    descriptions: Mapping[str, str],
    models_folder: str | Path,
    name: str,
    *,
    model_folder: str | Path | None = None,
    cache: Any | None = None,
    site: str = "",
    replace: bool = False,
    sign_key: str | Path | None = None,
) -> Job[BuildOutcome]:
    """Encode, synthesise, save and export; yields ``Progress``, returns a ``BuildOutcome``.

    ``classes``: class name -> image files; ``descriptions``: class name -> a short clinical
    description (classes without one are built from their images only). The bundle is written as
    ``models_folder/<name>.zsmb`` (refused if it exists, unless ``replace``) and the model file as
    ``model_folder/<name>.zsm`` (default: a ``built`` folder in the user data folder), signed with
    ``sign_key`` (a private key file) when given."""
    from zsmed.bundle.export import calibration_from_support, export_job
    from zsmed.classifier import save_classifier
    from zsmed.encoders import create_image_encoder
    from zsmed.features import FeatureCache
    from zsmed.fewshot.bank import build_bank
    from zsmed.paths import user_data_dir
    from zsmed.runtime.input_kinds import input_kinds_of
    from zsmed.synth.checkpoint import default_checkpoint_paths, read_checkpoint_config
    from zsmed.synth.synthesize import as_class_folder, synthesize

    start = time.perf_counter()
    support = {name_.strip(): [Path(p) for p in paths] for name_, paths in classes.items()}
    errors = [f for f in check_support(support) if f.severity == ERROR]
    if errors:
        raise DatasetError(errors[0].message)
    stem = model_file_name(name)
    bundle_path = Path(models_folder) / f"{stem}.zsmb"
    if bundle_path.exists() and not replace:
        raise DatasetError(f"a model named '{stem}' is already in the models folder: choose another name",
                           path=bundle_path)
    if sign_key is not None:  # a key that cannot sign is said before minutes of work, not after
        from zsmed.runtime.format import load_private_key

        load_private_key(sign_key)
    cache = cache if cache is not None else FeatureCache()
    encoders = sorted({read_checkpoint_config(p)[0].encoder for p in default_checkpoint_paths()})
    n_images = sum(len(paths) for paths in support.values())
    export_steps = 6  # what export_job reports without INT8
    total = n_images * len(encoders) + 1 + export_steps
    done = 0
    # Encoding is most of the time: done here, image by image, into the feature cache that
    # synthesis then reads (each shipped generator's encoder, as synthesis routes between them).
    folder = as_class_folder(support)
    for encoder_name in encoders:
        yield from relayed(build_bank(folder, create_image_encoder(encoder_name), cache), done, total,
                           "reading the images")
        done += n_images
    yield Progress(done, total, "making the classifier")
    details: dict[str, Any] = {}
    texts = {c: text.strip() for c, text in descriptions.items() if c in support and text.strip()}
    classifier = synthesize(support, texts, cache=cache, details=details)
    classifier = classifier.with_card(input_kinds=tuple(input_kinds_of(p for ps in support.values() for p in ps)))
    done += 1
    yield Progress(done, total, "saving the model")
    model_dir = Path(model_folder) if model_folder is not None else user_data_dir() / "built"
    model_dir.mkdir(parents=True, exist_ok=True)
    model_path = save_classifier(classifier, model_dir / f"{stem}.zsm")
    used = {Path(p) for p, _ in details.get("support", [])}
    calibration = calibration_from_support(
        {c: [p for p in paths if p in used] for c, paths in support.items()}, classifier)
    Path(models_folder).mkdir(parents=True, exist_ok=True)
    report = yield from relayed(export_job(classifier, bundle_path, calibration, site=site, sign_key=sign_key),
                                done, total)
    findings = [Finding(WARNING, f"left out {Path(p).name}: {why}", (Path(p),))
                for p, why in details.get("skipped", [])]
    guard = classifier.card.extra.get("guard") or {}
    if guard.get("fired"):
        findings.append(Finding(NOTE, f"the generator was not used: {guard.get('reason', '')}"))
    colour = classifier.card.extra.get("colour") or {}
    if colour and not colour.get("used"):  # said where it would have helped: the reader may wonder why not
        findings.append(Finding(NOTE, str(colour.get("reason", ""))))
    for message in classifier.card.extra.get("warnings", []):
        if "could not be read and were left out" not in message:  # named one by one above
            findings.append(Finding(NOTE, message))
    yield Progress(total, total, "done")
    return BuildOutcome(classifier, report.path, model_path, [(Path(p), c) for p, c in details.get("support", [])],
                        dict(details.get("loo", {})), findings, time.perf_counter() - start, report.signed)


__all__ = [
    "BuildOutcome",
    "Finding",
    "build_job",
    "build_tools_missing",
    "check_support",
    "folder_descriptions",
    "model_file_name",
    "save_support_folder",
]
