from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import SHARED_DATA, dicom_test_file

if TYPE_CHECKING:
    from zsmed.runtime.bundle import Bundle
    from zsmed.runtime.predict import Prediction

REFERENCE = Path(__file__).resolve().parents[2] / "export" / "reference"
CLASSES = ["nv", "mel", "bkl", "bcc"]


@pytest.fixture(scope="session")
def bundle_path() -> Path:
    return REFERENCE / "ham4_protonet_lite0_v1.zsmb"


@pytest.fixture(scope="session")
def bundle(bundle_path: Path) -> Bundle:
    from zsmed.runtime.bundle import read_bundle

    return read_bundle(bundle_path)


@pytest.fixture()
def log_env(isolated_dirs: Path) -> Path:
    """An isolated user data dir (site.json, the secret) and a folder for logs."""
    folder = isolated_dirs / "logs"
    folder.mkdir()
    return folder


def photos(n: int) -> list[Path]:
    base = SHARED_DATA / "ham10000_fs" / "base"
    if not base.is_dir():
        pytest.skip(f"shared photos not found at {base}")
    found = sorted((base / "nv").glob("*.jpg"))[:n]
    if len(found) < n:
        pytest.skip("not enough shared photos")
    return found


def fake_results(sources: Sequence[Path | str], seed: int = 0, abstain_every: int = 5) -> list[Prediction]:
    """Predictions as the runtime makes them (label None when abstaining), for real files."""
    from zsmed.runtime.predict import Prediction

    rng = random.Random(seed)
    out = []
    for i, source in enumerate(sources):
        weights = [rng.random() for _ in CLASSES]
        total = sum(weights)
        probs = {c: round(w / total, 6) for c, w in zip(CLASSES, weights, strict=True)}
        abstain = abstain_every > 0 and i % abstain_every == abstain_every - 1
        out.append(Prediction(source=str(source), label=None if abstain else max(probs, key=probs.__getitem__),
                              probabilities=probs, abstain=abstain, ood_score=round(rng.uniform(0.2, 2.0), 4)))
    return out


def ct_file() -> Path:
    return dicom_test_file("CT_small.dcm")
