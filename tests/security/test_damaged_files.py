"""Files damaged on disk or in transit (bytes flipped, cut short), seeded: a bundle, a model file's
card and a CD's DICOMDIR each end in a result or zsmed's one-line error, never another exception.
Each case here was once a traceback found this way."""

from __future__ import annotations

import copy
import json
import random
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import REPO
from zsmed.errors import ZsmedError

REFERENCE = REPO / "export" / "reference" / "ham4_protonet_lite0_v1.zsmb"


def _flipped(data: bytes, rng: random.Random, *, start: int = 0) -> bytes:
    out = bytearray(data)
    mode = rng.randrange(3)
    if mode == 0:
        return bytes(out[: rng.randrange(start + 1, len(out))])
    for _ in range(rng.choice((1, 5, 30)) if mode == 1 else 5):
        at = rng.randrange(max(start, len(out) - 3000) if mode == 2 else start, len(out))
        out[at] = rng.randrange(256)  # mode 2: the zip's central directory at the end
    return bytes(out)


def test_damaged_bundles_are_refused_in_one_line(tmp_path: Path) -> None:
    from zsmed.runtime.bundle import read_bundle
    from zsmed.runtime.check import peek_bundle_id

    rng = random.Random(3)
    source = REFERENCE.read_bytes()
    for n in range(50):
        damaged = tmp_path / f"b{n}.zsmb"
        damaged.write_bytes(_flipped(source, rng))
        try:
            read_bundle(damaged)
        except ZsmedError as exc:
            assert "\n" not in str(exc) and str(damaged) in str(exc)
        peek_bundle_id(damaged)  # the models list's look: None or an id, never an exception


def _mutated_card(card: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    values: list[Any] = [None, -1, 0, 1e300, float("nan"), "x", "", [], {}, [1, 2], True, [[0]], {"k": None}]
    out = copy.deepcopy(card)
    for _ in range(rng.randint(1, 2)):
        node: Any = out
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not keys:
                break
            key = rng.choice(keys)
            if rng.random() < 0.5 or not isinstance(node[key], dict | list) or not node[key]:
                node[key] = rng.choice(values)
                break
            node = node[key]
    return out


def test_model_files_with_damaged_cards_are_refused_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from tests.security.test_hostile_models import _card, _model_file
    from zsmed.classifier import read_card

    rng = random.Random(8)
    for n in range(150):
        model = _model_file(tmp_path / f"m{n}.zsm", _mutated_card(_card(), rng))
        try:
            read_card(model)
        except ZsmedError as exc:
            assert "\n" not in str(exc)


def test_damaged_dicomdirs_are_listed_or_refused_in_one_line(tmp_path: Path) -> None:
    from tests.dicom.conftest import data
    from zsmed.dicom.scan import scan

    source_folder = Path(data("DICOMDIR")).parent
    source = (source_folder / "DICOMDIR").read_bytes()
    rng = random.Random(2)
    disc = tmp_path / "disc"
    shutil.copytree(source_folder, disc)
    for _ in range(60):
        (disc / "DICOMDIR").write_bytes(_flipped(source, rng, start=132))
        index = scan(disc / "DICOMDIR")  # problems are listed, nothing raised
        assert all("\n" not in problem.reason for problem in index.problems)


def test_the_fuzzed_bundle_card_fields_stay_refused(tmp_path: Path) -> None:
    """A consistent bundle (fresh checksums) whose card fields were replaced: refused or read."""
    from tests.runtime.conftest import read_members, with_card_fields
    from zsmed.runtime import format as fmt
    from zsmed.runtime.bundle import read_bundle

    card = json.loads(read_members(REFERENCE)[fmt.CARD])
    rng = random.Random(4)
    for n in range(40):
        # every key of the card is given (mutation replaces values, never removes a key)
        target = with_card_fields(REFERENCE, tmp_path / f"c{n}.zsmb", **_mutated_card(card, rng))
        try:
            read_bundle(target)
        except ZsmedError as exc:
            assert "\n" not in str(exc)
    assert zipfile.is_zipfile(target)
