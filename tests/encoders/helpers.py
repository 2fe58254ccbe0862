"""Test helpers shared by the encoder, cache and offline tests (importable as tests.encoders.helpers)."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.encoders.base import EncoderSpec, ImageEncoder
from zsmed.preprocess import PreprocessConfig

TINY_WORDS: tuple[str, ...] = (
    "the", "a", "of", "with", "and", "no", "on", "in", "chest", "x", "ray", "film", "shows", "viral",
    "bacterial", "pneumonia", "interstitial", "infiltrates", "consolidation", "effusion", "normal", "heart",
    "lungs", "clear", "melanocytic", "nevus", "melanoma", "skin", "lesion", "pigmented", "benign",
    "malignant", "border", "irregular",
)


def make_tiny_bert(folder: Path, *, seed: int = 0, max_positions: int = 64, hidden: int = 32) -> Path:
    """A small random BERT checkpoint with a word-level vocab, saved like a real one."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=max_positions,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(folder))
    return folder


class FakeImageEncoder(ImageEncoder):
    """A cheap deterministic image encoder: per-channel means and stds of the model input."""

    def __init__(self, size: int = 32, tag: str = "v1") -> None:
        self.spec = EncoderSpec(
            name="fake-stats", kind="image", dim=6, weights_sha256=f"fake-{tag}", preprocess=PreprocessConfig(size=size)
        )

    def encode(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        return np.concatenate([batch.mean(axis=(2, 3)), batch.std(axis=(2, 3))], axis=1).astype(np.float32)

    def torch_module(self) -> Any:
        raise NotImplementedError


class CountingEncoder(ImageEncoder):
    """Wraps an image encoder and counts images it is asked to encode; ``forbid`` makes any call fail."""

    def __init__(self, inner: ImageEncoder, forbid: bool = False) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.calls = 0
        self.images = 0
        self.forbid = forbid

    def encode(self, batch: np.ndarray) -> np.ndarray:
        if self.forbid:
            raise AssertionError("the encoder was called although every vector should come from the cache")
        self.calls += 1
        self.images += len(batch)
        return self.inner.encode(batch)

    def torch_module(self) -> Any:
        return self.inner.torch_module()


class NetworkAttempt(AssertionError):
    pass


@contextmanager
def no_network(monkeypatch: Any) -> Iterator[list[str]]:
    """Make every internet connection attempt raise, and record it; Unix sockets stay allowed
    (multiprocessing and worker pools use them)."""
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def is_inet(sock: socket.socket) -> bool:
        return sock.family in (socket.AF_INET, socket.AF_INET6)

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if is_inet(self):
            attempts.append(f"connect {address!r}")
            raise NetworkAttempt(f"network connection attempted: {address!r}")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if is_inet(self):
            attempts.append(f"connect_ex {address!r}")
            raise NetworkAttempt(f"network connection attempted: {address!r}")
        return real_connect_ex(self, address)

    def guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(f"create_connection {address!r}")
        raise NetworkAttempt(f"network connection attempted: {address!r}")

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(f"getaddrinfo {host!r}")
        raise NetworkAttempt(f"name lookup attempted: {host!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "create_connection", guarded_create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    # Audit events also catch code that goes around the socket module (e.g. via _socket).
    _AUDIT.armed.append(attempts)
    try:
        yield attempts
    finally:
        _AUDIT.armed.remove(attempts)


class _AuditState:
    def __init__(self) -> None:
        self.armed: list[list[str]] = []
        self.lock = threading.Lock()
        self.installed = False

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.armed or event not in ("socket.connect", "socket.getaddrinfo"):
            return
        if event == "socket.connect":
            sock = args[0]
            if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
                return
        for attempts in self.armed:
            attempts.append(f"audit {event} {args[1:]!r}")


_AUDIT = _AuditState()
if not _AUDIT.installed:
    sys.addaudithook(_AUDIT.hook)  # audit hooks cannot be removed; it is inert unless armed
    _AUDIT.installed = True

# A prelude for ``python -c``: the same guard in a fresh interpreter, before anything is imported.
GUARD_PRELUDE = """
import socket, sys
_attempts = []
def _inet(s):
    return s.family in (socket.AF_INET, socket.AF_INET6)
_real_connect = socket.socket.connect
def _connect(self, address):
    if _inet(self):
        _attempts.append(repr(address)); raise OSError("network connection attempted: %r" % (address,))
    return _real_connect(self, address)
def _refuse(*args, **kwargs):
    _attempts.append(repr(args[:1])); raise OSError("network access attempted: %r" % (args[:1],))
socket.socket.connect = _connect
socket.socket.connect_ex = _connect
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
def _audit(event, args):
    if event == "socket.getaddrinfo" or (event == "socket.connect" and _inet(args[0])):
        _attempts.append(event + repr(args[1:]))
sys.addaudithook(_audit)
import atexit
def _report():
    if _attempts:
        sys.stderr.write("NETWORK ATTEMPTS: %r\\n" % (_attempts,)); sys.stderr.flush()
        import os; os._exit(97)
atexit.register(_report)
"""
