"""Fine-tune the last blocks of an EfficientNet-Lite backbone on a domain's base classes.

The result is an encoder of its own (``zsmed.encoders.TUNED_ENCODERS``): the base network with
these blocks replaced. A generator meta-trained on it sees features of that domain instead of
ImageNet's (on chest X-rays, ProtoNet on NORMAL vs viral pneumonia of validation patients goes from
70 / 85 % to 87 / 93 % at 1 / 5 shots after tuning blocks 11-15 on NORMAL vs bacterial pneumonia).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsmed.encoders.efficientnet_lite import EfficientNetLite
from zsmed.preprocess import PreprocessConfig


@dataclass(frozen=True)
class TailConfig:
    start_block: int = 11  # blocks from this index on, the head conv and its BN are tuned
    epochs: int = 3
    lr: float = 1e-4
    head_lr: float = 1e-2  # the throw-away linear classifier over the base classes
    weight_decay: float = 1e-4
    batch_size: int = 32
    logit_scale: float = 10.0  # cosine classifier on unit pooled features, as ProtoNet scores
    seed: int = 0


def block_inputs(backbone: EfficientNetLite, pixels: np.ndarray, start: int, batch_size: int = 32) -> torch.Tensor:
    """The frozen network up to block ``start`` (its input map), float16, for model inputs (N, 3, S, S)."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(pixels), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(pixels[i : i + batch_size], dtype=np.float32))
            out.append(backbone.forward_trunk(x, until=start).to(torch.float16))
    return torch.cat(out)


def file_block_inputs(backbone: EfficientNetLite, paths: Sequence[Path], preprocess: PreprocessConfig, start: int,
                      views: Sequence[str] = (), batch_size: int = 32) -> torch.Tensor:
    """``block_inputs`` of every image file, then of every file under each view in turn (the order
    ``train_tail`` gets its labels in: ``labels * (1 + len(views))``). Reads ``batch_size`` files at a
    time, so only the (float16) block inputs are ever held, not every image's pixels."""
    from zsmed.fewshot.views import apply_view
    from zsmed.imageio import read_model_input

    per_view: list[list[torch.Tensor]] = [[] for _ in range(1 + len(views))]
    for i in range(0, len(paths), batch_size):
        pixels = np.stack([read_model_input(p, preprocess) for p in paths[i : i + batch_size]])
        for slot, view in enumerate((None, *views)):
            batch = pixels if view is None else apply_view(pixels, view)
            per_view[slot].append(block_inputs(backbone, batch, start, batch_size))
    return torch.cat([chunk for chunks in per_view for chunk in chunks])


class Tail(nn.Module):
    """Blocks ``start``.., head conv, BN, ReLU6, global average pool of a Lite backbone (a copy)."""

    def __init__(self, backbone: EfficientNetLite, start: int) -> None:
        super().__init__()
        self.start = start
        self.blocks = copy.deepcopy(backbone._blocks[start:])
        self.conv = copy.deepcopy(backbone._conv_head)
        self.bn = copy.deepcopy(backbone._bn1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return F.relu6(self.bn(self.conv(x))).mean(dim=(2, 3))

    def backbone_state(self) -> dict[str, torch.Tensor]:
        """The tuned entries under the backbone's own state-dict names (what the encoder loads)."""
        out = {f"_blocks.{self.start + int(k.split('.', 1)[0])}.{k.split('.', 1)[1]}": v
               for k, v in self.blocks.state_dict().items()}
        out.update({f"_conv_head.{k}": v for k, v in self.conv.state_dict().items()})
        out.update({f"_bn1.{k}": v for k, v in self.bn.state_dict().items()})
        return {k: v.detach().contiguous().float() for k, v in out.items() if not k.endswith("num_batches_tracked")}


def _frozen_statistics(module: nn.Module) -> None:
    # A few hundred images of two classes would drag ImageNet's BN statistics; only the affine
    # parameters learn.
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def pooled_features(tail: Tail, inputs: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    tail.eval()
    with torch.inference_mode():
        return torch.cat([tail(inputs[i : i + batch_size].float()) for i in range(0, len(inputs), batch_size)])


def train_tail(backbone: EfficientNetLite, inputs: torch.Tensor, labels: Sequence[str], config: TailConfig
               ) -> Iterator[str | Tail]:
    """Cross-entropy over the base classes (cosine classifier on unit pooled features). A generator:
    one log line per epoch, then the tuned ``Tail``."""
    torch.manual_seed(config.seed)
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(label) for label in labels])
    tail = Tail(backbone, config.start_block)
    classifier = nn.Linear(tail.conv.out_channels, len(classes))
    optimizer = torch.optim.AdamW([{"params": list(tail.parameters()), "lr": config.lr},
                                   {"params": list(classifier.parameters()), "lr": config.head_lr}],
                                  weight_decay=config.weight_decay)
    for epoch in range(config.epochs):
        tail.train()
        _frozen_statistics(tail)
        order = torch.randperm(len(y))
        total, correct = 0.0, 0
        for i in range(0, len(y), config.batch_size):
            idx = order[i : i + config.batch_size]
            logits = classifier(F.normalize(tail(inputs[idx].float()), dim=-1) * config.logit_scale)
            loss = F.cross_entropy(logits, y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(-1) == y[idx]).sum())
        yield f"epoch {epoch + 1}: loss {total / len(y):.4f}, train accuracy {correct / len(y):.4f}"
    yield tail.eval()
