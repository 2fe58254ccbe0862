"""No network at run time: with every internet socket call made to fail, zsmed still creates and
runs every available encoder, reads DICOM, and answers ``zsmed encoders list`` — and tries nothing.

The guard replaces ``socket.socket.connect``/``connect_ex``, ``socket.create_connection`` and
``socket.getaddrinfo`` and also listens to the interpreter's socket audit events, which catch code
that bypasses the socket module. Unix-domain sockets (multiprocessing) stay allowed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.encoders.helpers import GUARD_PRELUDE, NetworkAttempt, make_tiny_bert, no_network

REPO = Path(__file__).resolve().parents[1]


def test_the_guard_really_blocks_and_records(monkeypatch: pytest.MonkeyPatch) -> None:
    with no_network(monkeypatch) as attempts:
        with pytest.raises(NetworkAttempt):
            socket.create_connection(("example.org", 443), timeout=1)
        with pytest.raises((NetworkAttempt, OSError)):
            urllib.request.urlopen("http://192.0.2.1/", timeout=1)  # TEST-NET-1: never routable
        with pytest.raises(NetworkAttempt):
            socket.getaddrinfo("huggingface.co", 443)
        unix_a, unix_b = socket.socketpair()  # local IPC is not network
        unix_a.close()
        unix_b.close()
    assert len(attempts) >= 3


def test_everything_runs_with_the_network_blocked(
    monkeypatch: pytest.MonkeyPatch, isolated_dirs: Path, tmp_path: Path, shared_data: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pydicom.data import get_testdata_file

    from zsmed.cli.main import main
    from zsmed.encoders import ImageEncoder, TextEncoder, create_encoder, describe_encoders
    from zsmed.encoders import _lookup as lookup_factory
    from zsmed.imageio import read_image
    from zsmed.log import reset_logging

    tiny_bert = make_tiny_bert(tmp_path / "clinical-bert")
    ct_small = Path(str(get_testdata_file("CT_small.dcm")))
    photo_dir = tmp_path / "photos"
    photo_dir.mkdir()
    first_photo = sorted((shared_data / "ham10000_fs" / "novel_dev").rglob("*.jpg"))[0]
    shutil.copy(first_photo, photo_dir / first_photo.name)

    created: list[str] = []
    with no_network(monkeypatch) as attempts:
        names: list[str] = []
        seen_factories: set[int] = set()
        for info in describe_encoders():
            if not info.available:
                continue
            if info.is_prefix:
                if info.name == "hf-local:":
                    names.append(f"hf-local:{tiny_bert}")
                continue  # timm-local: timm is not installed here (its own test covers it when it is)
            entry = lookup_factory(info.name)
            assert entry is not None
            if id(entry[1]) in seen_factories:
                continue  # an alias of one already loaded ('minilm')
            seen_factories.add(id(entry[1]))
            names.append(info.name)
        for name in names:
            encoder = create_encoder(name)  # a fresh load, not a shared instance: loading is what we test
            if isinstance(encoder, ImageEncoder):
                size = encoder.preprocess.size
                out = encoder.encode(np.zeros((1, 3, size, size), dtype=np.float32))
            else:
                assert isinstance(encoder, TextEncoder)
                out = encoder.encode(["viral pneumonia with interstitial infiltrates"])
            assert out.shape == (1, encoder.dim) and np.isfinite(out).all()
            created.append(name)

        image = read_image(ct_small)
        assert image.shape == (128, 128) and 0.0 <= float(image.min()) <= float(image.max()) <= 1.0

        assert main(["encoders", "list"]) == 0
        assert "efficientnet-lite0" in capsys.readouterr().out
        assert main(["encode", str(photo_dir), "--out", str(tmp_path / "f.npz")]) == 0
        reset_logging()
    assert {"efficientnet-lite0", "efficientnet-lite2", "all-MiniLM-L6-v2"} <= set(created)
    assert any(name.startswith("hf-local:") for name in created)
    assert attempts == [], f"network access attempted: {attempts}"


def test_a_fresh_process_goes_offline_by_itself(tmp_path: Path) -> None:
    """Without HF_HUB_OFFLINE in the environment, zsmed must switch the hub off on its own."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), ZSMED_DATA_DIR=str(tmp_path / "data"),
               ZSMED_CACHE_DIR=str(tmp_path / "cache"))
    body = """
import os
assert "HF_HUB_OFFLINE" not in os.environ
from zsmed.encoders import create_text_encoder
encoder = create_text_encoder("minilm")
vectors = encoder.encode(["viral pneumonia", "melanocytic nevus"])
import huggingface_hub.constants as constants
assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True
# A hub download attempt must fail locally (offline mode), not reach for the network.
from huggingface_hub import hf_hub_download
try:
    hf_hub_download("sentence-transformers/all-MiniLM-L6-v2", "config.json")
    print("DOWNLOADED")
except Exception as exc:
    print("REFUSED", type(exc).__name__)
print("SHAPE", vectors.shape)
"""
    done = subprocess.run([sys.executable, "-c", GUARD_PRELUDE + body], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "NETWORK ATTEMPTS" not in done.stderr
    assert "SHAPE (2, 384)" in done.stdout and "REFUSED" in done.stdout
    assert "Loading weights" not in done.stderr


def test_the_subprocess_guard_is_not_vacuous() -> None:
    body = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 80), timeout=1)\n"
        "except OSError:\n"
        "    pass\n"
    )
    done = subprocess.run([sys.executable, "-c", GUARD_PRELUDE + body], capture_output=True, text=True, timeout=60)
    assert done.returncode == 97 and "NETWORK ATTEMPTS" in done.stderr
