"""Build a deployable zero-shot classifier (FSIGenZ) from seen-class folders and a class file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.errors import ConfigError, DatasetError
from zsmed.progress import Job, Progress, relayed
from zsmed.zeroshot.classdefs import AUTO_SEMANTICS
from zsmed.zeroshot.estimators import FSIGenZ, FSIGenZEnsemble


def build_zeroshot(
    seen_roots: Sequence[str | Path],
    class_file: str | Path,
    unseen: Sequence[str] | None = None,
    *,
    semantics: str = AUTO_SEMANTICS,
    encoder: str = "efficientnet-lite0",
    seed: int = 0,
    text_encoder: Any | None = None,
) -> Job[Any]:
    """Fit FSIGenZ on every seen image (calibration from pseudo-unseen folds) and return a
    ``Classifier`` over seen + unseen classes. Unseen classes default to every top-level class of the
    file without images in ``seen_roots``."""
    from zsmed.classifier import make_classifier
    from zsmed.data.folders import load_class_folders
    from zsmed.encoders import create_image_encoder
    from zsmed.runtime.input_kinds import input_kinds_of
    from zsmed.zeroshot.classdefs import load_class_definitions
    from zsmed.zeroshot.evaluate import (
        FSIGENZ_ENSEMBLE,
        METHODS,
        _encode,
        image_attribute_source,
        select_setting_job,
        setting_steps,
        training_semantics,
    )
    from zsmed.zeroshot.heads import ZeroShotCosineHead

    definitions = load_class_definitions(class_file)
    folder = load_class_folders([Path(r) for r in seen_roots])
    seen = folder.classes
    if not seen:
        raise DatasetError(f"no images of seen classes in {', '.join(str(r) for r in seen_roots)}: expected one "
                           "subfolder of images per seen class")
    if unseen is None:
        taken = {definitions.get(s).key for s in seen if definitions.find(s) is not None}
        unseen = [d.key for d in definitions.classes if d.parent is None and d.key not in taken]
    unseen = list(unseen)
    if not unseen:
        raise ConfigError("no unseen class: the class file defines no class beyond the seen folders")
    semantics = definitions.resolve_semantics([*seen, *unseen], semantics)
    items = folder.items
    # One bar: the images, each setting tried on held-out seen classes (most of the time), the fit.
    n_images = len(items)
    features, kept = yield from relayed(_encode([i.path for i in items], encoder), 0, n_images + 2)
    items = [items[i] for i in kept]
    problem, basis, attributes, _ = training_semantics(definitions, seen, unseen, semantics, items, text_encoder,
                                                       features, encoder)
    y = np.array([problem.classes.index(item.label) for item in items])
    groups = np.array([f"{item.label}/{item.group}" for item in items])
    # the image count is all that is known before reading them; then the settings, then the fit
    total = n_images + setting_steps(METHODS["fsigenz"], attributes is not None, FSIGENZ_ENSEMBLE) + 1
    setting, make, calibration, _ = yield from relayed(
        select_setting_job(METHODS["fsigenz"], features, y, groups, problem, basis, seed, attributes,
                           FSIGENZ_ENSEMBLE), n_images, total)
    yield Progress(total - 1, total, "fitting FSIGenZ")
    model = make().fit(features, y, problem, basis, attributes)
    assert isinstance(model, FSIGenZ | FSIGenZEnsemble)
    model.calibration = calibration.gamma
    arrays = model.head_arrays()
    head = ZeroShotCosineHead.from_arrays(arrays["mean"], arrays["weight"], arrays["bias"], float(arrays["scale"]),
                                          centre=arrays.get("centre"), proj=arrays.get("proj"))
    spec = create_image_encoder(encoder).spec
    descriptions = {c: definitions.get(c).description for c in problem.classes if definitions.get(c).description}
    classifier = make_classifier(
        head,
        method="zeroshot-fsigenz",
        class_names=problem.classes,
        encoder=spec,
        descriptions=descriptions,
        support_counts={c: int(np.sum(y == i)) for i, c in enumerate(problem.classes)},
        metrics={"calibration": calibration.to_dict(), "setting": setting},
        extra={"seen": seen, "unseen": unseen, "semantics": semantics, "basis": problem.basis_names,
               "image_attribute_basis": None if attributes is None else len(attributes),
               "image_attribute_source": image_attribute_source(definitions, attributes),
               "class_file": str(class_file)},
        input_kinds=input_kinds_of(item.path for item in items),
    )
    yield Progress(total, total, "done")
    return classifier
