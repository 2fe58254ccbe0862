from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The developer's feature cache when set (real images are then encoded once), else a temp one."""
    existing = os.environ.get("ZSMED_CACHE_DIR")
    return Path(existing) if existing else tmp_path_factory.mktemp("zsmed-cache")


@pytest.fixture()
def feature_cache(shared_cache: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from zsmed.features import FeatureCache

    monkeypatch.setenv("ZSMED_CACHE_DIR", str(shared_cache))
    cache = FeatureCache(shared_cache / "features.sqlite")
    yield cache
    cache.close()


@pytest.fixture(scope="session")
def image_encoder():  # type: ignore[no-untyped-def]
    import torch

    from zsmed.encoders import create_image_encoder

    torch.set_num_threads(2)
    return create_image_encoder()
