"""Few-shot baselines on the same frozen encoder and the same episodes as SGPS.

- ``protonet``: cosine similarity to the class means of the pooled embeddings.
- ``linear``: logistic-regression probe on L2-normalised pooled embeddings, fitted per episode.
- ``transfer``: the backbone's last stage and a linear head fine-tuned on the base classes (on
  cached trunk maps), then ProtoNet on the fine-tuned pooled features.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsmed.fewshot.bank import FeatureBank
from zsmed.fewshot.sampler import Episode

PROTO_SCALE = 10.0  # temperature of cosine logits: only matters for probabilities / AUC, not accuracy


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def proto_probs(features: torch.Tensor, episode: Episode) -> np.ndarray:
    """ProtoNet on any per-item features: (M, N) query probabilities."""
    support = F.normalize(features[torch.as_tensor(episode.support)].float(), dim=-1)  # (N, K, D)
    protos = F.normalize(support.mean(dim=1), dim=-1)
    query = F.normalize(features[torch.as_tensor(episode.query)].float(), dim=-1)
    return _softmax((PROTO_SCALE * query @ protos.t()).numpy())


class ProtoNet:
    name = "protonet"

    def __init__(self, bank: FeatureBank) -> None:
        self.features = bank.pooled

    def predict(self, episode: Episode) -> np.ndarray:
        return proto_probs(self.features, episode)


class LinearProbe:
    """Multinomial logistic regression; C chosen once (not per data set) for L2-normalised inputs."""

    name = "linear"

    def __init__(self, bank: FeatureBank, C: float = 10.0) -> None:
        self.features = F.normalize(bank.pooled.float(), dim=-1).numpy()
        self.C = C

    def predict(self, episode: Episode) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression

        x = self.features[episode.support.reshape(-1)]
        y = np.repeat(np.arange(episode.ways), episode.shots)
        model = LogisticRegression(C=self.C, max_iter=500)
        model.fit(x, y)
        return np.asarray(model.predict_proba(self.features[episode.query]))


# --------------------------------------------------------------------------------------------
# Transfer baseline
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransferConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 1e-4
    seed: int = 0
    version: int = 1


class LastStage(nn.Module):
    """A trainable copy of the backbone's last stage (1x1 conv + BN + ReLU6) with average pooling."""

    conv: nn.Conv2d
    bn: nn.BatchNorm2d

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        stage: Any = backbone  # EfficientNetLite: its last stage is _conv_head + _bn1
        self.conv = copy.deepcopy(stage._conv_head)
        self.bn = copy.deepcopy(stage._bn1)

    def forward(self, trunk: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.bn(self.conv(trunk))).mean(dim=(2, 3))


def train_transfer(backbone: nn.Module, base: FeatureBank, config: TransferConfig, log: bool = False) -> LastStage:
    """Fine-tune the last stage + a linear head on the base classes (cross-entropy, cached maps)."""
    torch.manual_seed(config.seed)
    stage = LastStage(backbone)
    classes = base.classes
    y_all = torch.as_tensor([classes.index(label) for label in base.labels])
    head = nn.Linear(1280, len(classes))
    params = list(stage.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    for epoch in range(config.epochs):
        stage.train()
        stage.bn.eval()  # running statistics stay those of ImageNet: the batches are small and skewed
        order = torch.randperm(len(y_all), generator=gen)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            logits = head(stage(base.trunk[idx].float()))
            loss = F.cross_entropy(logits, y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if log:
            print(f"transfer epoch {epoch + 1}/{config.epochs} loss {total / len(order):.4f}")
    return stage.eval()


def transfer_cache_path(cache_dir: Path, base: FeatureBank, config: TransferConfig, backbone: nn.Module) -> Path:
    """Where the fine-tuned stage is cached: keyed by the config, the base images and the
    backbone's own last stage (the starting weights), so two encoders never share a file."""
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for item in base.items:
        digest.update(f"{item.path.name}|{item.label}\n".encode())
    for name, tensor in sorted(LastStage(backbone).state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return cache_dir / f"transfer-{digest.hexdigest()[:16]}.pt"


def load_or_train_transfer(
    backbone: nn.Module, base: FeatureBank, config: TransferConfig, cache_dir: Path | None
) -> LastStage:
    path = transfer_cache_path(cache_dir, base, config, backbone) if cache_dir else None
    stage = LastStage(backbone)
    if path is not None and path.is_file():
        try:
            stage.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return stage.eval()
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError):
            pass  # an unreadable or foreign cache file: trained again below and overwritten
    stage = train_transfer(backbone, base, config)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(stage.state_dict(), path)
    return stage


class Transfer:
    name = "transfer"

    def __init__(self, bank: FeatureBank, stage: LastStage) -> None:
        with torch.inference_mode():
            self.features = torch.cat([stage(bank.trunk[i : i + 256].float()) for i in range(0, len(bank.trunk), 256)])

    def predict(self, episode: Episode) -> np.ndarray:
        return proto_probs(self.features, episode)
