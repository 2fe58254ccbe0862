from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.encoders.helpers import make_tiny_bert


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert") / "bert")


@pytest.fixture(scope="session")
def novel_images(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "ham10000_fs" / "novel_dev").rglob("*.jpg"))
    if len(files) < 8:
        pytest.skip("too few HAM10000 images in the shared data")
    return files


@pytest.fixture(scope="session")
def shared_lite0() -> object:
    from zsmed.encoders import shared_encoder

    return shared_encoder("efficientnet-lite0")


@pytest.fixture(scope="session")
def shared_minilm() -> object:
    from zsmed.encoders import shared_encoder

    return shared_encoder("all-MiniLM-L6-v2")


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """``zsmed.cli.main`` installs log handlers; drop them so no test logs into another's tmp dir."""
    from zsmed.log import reset_logging

    yield
    reset_logging()
