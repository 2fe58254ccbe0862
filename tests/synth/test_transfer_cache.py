"""The transfer baseline's cached last stage is keyed by the encoder it was fine-tuned from."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zsmed.fewshot.bank import FeatureBank, lite_backbone
from zsmed.fewshot.baselines import LastStage, TransferConfig, load_or_train_transfer, transfer_cache_path


def _backbones() -> list[torch.nn.Module]:
    from zsmed.encoders import create_image_encoder

    return [lite_backbone(create_image_encoder(name)) for name in ("efficientnet-lite0", "efficientnet-lite2")]


def _empty_bank() -> FeatureBank:
    return FeatureBank([], torch.zeros(0, 1), torch.zeros(0, 1), torch.zeros(0, 1), [])


def test_two_encoders_never_share_a_cached_stage(tmp_path: Path) -> None:
    lite0, lite2 = _backbones()
    bank, config = _empty_bank(), TransferConfig()
    first, second = (transfer_cache_path(tmp_path, bank, config, b) for b in (lite0, lite2))
    assert first != second
    assert transfer_cache_path(tmp_path, bank, config, lite0) == first  # stable for the same backbone


def test_a_foreign_cache_file_is_trained_again_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lite0, lite2 = _backbones()
    bank, config = _empty_bank(), TransferConfig()
    # A Lite0 stage written where the Lite2 one is looked for (as an older cache key allowed).
    torch.save(LastStage(lite0).state_dict(), transfer_cache_path(tmp_path, bank, config, lite2))
    trained: list[int] = []

    def fake_train(backbone: torch.nn.Module, base: FeatureBank, cfg: TransferConfig, log: bool = False) -> LastStage:
        trained.append(1)
        return LastStage(backbone).eval()

    monkeypatch.setattr("zsmed.fewshot.baselines.train_transfer", fake_train)
    stage = load_or_train_transfer(lite2, bank, config, tmp_path)
    assert trained == [1]
    assert stage.conv.weight.shape[1] == lite2.head_in  # Lite2's trunk width, not Lite0's
    assert torch.equal(torch.load(transfer_cache_path(tmp_path, bank, config, lite2))["conv.weight"],
                       stage.conv.weight)
