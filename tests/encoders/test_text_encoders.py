"""Text encoders: MiniLM from its weight package, and any local BERT-like folder (hf-local:)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from zsmed.encoders import TextEncoder, create_encoder, create_text_encoder
from zsmed.errors import EncoderUnavailableError

CXR_VIRAL = "chest x-ray showing viral pneumonia"
CXR_INFILTRATES = "bilateral interstitial infiltrates in the lungs"
CXR_BACTERIAL = "bacterial pneumonia with lobar consolidation"
SKIN_NEVUS = "a melanocytic nevus on the skin"
SKIN_MOLE = "a benign mole on the back"
SKIN_MELANOMA = "malignant melanoma with irregular border"


def _unit_rows(vectors: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5))


def test_minilm_gives_normalised_384d_vectors_with_sensible_similarities(shared_minilm: TextEncoder) -> None:
    texts = [CXR_VIRAL, CXR_INFILTRATES, CXR_BACTERIAL, SKIN_NEVUS, SKIN_MOLE, SKIN_MELANOMA]
    vectors = shared_minilm.encode(texts)
    assert vectors.shape == (6, 384) and vectors.dtype == np.float32 and _unit_rows(vectors)
    sim = vectors @ vectors.T
    viral, infiltrates, bacterial, nevus, mole, melanoma = range(6)
    # Margins measured at ~0.3; asserted at 0.15 so only a broken model or pooling fails them.
    assert sim[viral, infiltrates] > sim[viral, nevus] + 0.15
    assert sim[viral, bacterial] > sim[viral, mole] + 0.15
    assert sim[nevus, melanoma] > sim[nevus, bacterial] + 0.15
    assert sim[nevus, mole] > sim[nevus, viral] + 0.15
    # Same text, same vector, in any batch.
    np.testing.assert_allclose(shared_minilm.encode([SKIN_NEVUS])[0], vectors[nevus], atol=1e-5)


def test_minilm_spec(shared_minilm: TextEncoder) -> None:
    spec = shared_minilm.spec
    assert spec.name == "all-MiniLM-L6-v2" and spec.kind == "text" and spec.dim == 384
    assert len(spec.weights_sha256) == 64 and spec.extra["pooling"] == "mean"
    assert spec.extra["max_length"] == 256


def test_minilm_handles_empty_and_very_long_input(shared_minilm: TextEncoder) -> None:
    assert shared_minilm.encode([]).shape == (0, 384)
    long_text = "pneumonia " * 2000  # far beyond 512 tokens: truncated, not an error
    out = shared_minilm.encode(["", long_text])
    assert out.shape == (2, 384) and np.isfinite(out).all()


def test_hf_local_tiny_bert(tiny_bert: Path) -> None:
    encoder = create_text_encoder(f"hf-local:{tiny_bert}")
    assert encoder.spec.name == f"hf-local:{tiny_bert.resolve()}" and encoder.dim == 32
    texts = ["viral pneumonia with interstitial infiltrates", "melanocytic nevus on skin", "normal chest x ray"]
    first = encoder.encode(texts)
    assert first.shape == (3, 32) and first.dtype == np.float32 and _unit_rows(first)
    np.testing.assert_array_equal(first, encoder.encode(texts))
    again = create_encoder(f"hf-local:{tiny_bert}")
    assert isinstance(again, TextEncoder)
    np.testing.assert_allclose(first, again.encode(texts), atol=1e-6)
    # Different texts, different vectors (no pooling collapse).
    sim = first @ first.T
    assert sim[0, 1] < 0.999 and sim[0, 2] < 0.999 and sim[1, 2] < 0.999
    # The model has 64 positions: longer input is cut to fit instead of crashing.
    assert encoder.encode(["pneumonia " * 500]).shape == (1, 32)
    assert encoder.spec.extra["max_length"] == 64


def test_hf_local_honours_cls_pooling_config(tiny_bert: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bert-cls"
    shutil.copytree(tiny_bert, folder)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    cls_encoder = create_text_encoder(f"hf-local:{folder}")
    mean_encoder = create_text_encoder(f"hf-local:{tiny_bert}")
    assert cls_encoder.spec.extra["pooling"] == "cls"
    assert cls_encoder.spec.cache_id != mean_encoder.spec.cache_id
    texts = ["viral pneumonia", "melanocytic nevus"]
    assert not np.allclose(cls_encoder.encode(texts), mean_encoder.encode(texts))


def test_loading_prints_no_progress_bar_or_warnings(tiny_bert: Path, capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    create_text_encoder(f"hf-local:{tiny_bert}").encode(["normal chest x ray"])
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
    assert captured.err == "" and captured.out == ""


@pytest.mark.parametrize("damage", ["missing", "file", "no-config", "no-weights", "no-tokenizer", "bad-weights",
                                    "incomplete"])
def test_hf_local_bad_folders_are_clear_errors(tiny_bert: Path, tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "model"
    if damage == "missing":
        expected = "not found"
    elif damage == "file":
        folder.write_text("not a folder")
        expected = "got a file"
    else:
        shutil.copytree(tiny_bert, folder)
        if damage == "no-config":
            (folder / "config.json").unlink()
            expected = "no config.json"
        elif damage == "no-weights":
            (folder / "model.safetensors").unlink()
            expected = "holds no weights"
        elif damage == "no-tokenizer":
            for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
                (folder / name).unlink(missing_ok=True)
            expected = "no tokenizer"
        elif damage == "bad-weights":
            (folder / "model.safetensors").write_bytes(b"\x00" * 100)
            expected = "cannot load the text model"
        else:
            from safetensors.torch import load_file, save_file

            state = load_file(str(folder / "model.safetensors"))
            kept = {k: v for k, v in state.items() if "layer.1." not in k}
            save_file(kept, str(folder / "model.safetensors"), metadata={"format": "pt"})
            expected = "lacks .* weight tensors"
    with pytest.raises(EncoderUnavailableError, match=expected) as info:
        create_encoder(f"hf-local:{folder}")
    assert info.value.path is not None and Path(info.value.path).name == "model"
    assert "\n" not in str(info.value)
