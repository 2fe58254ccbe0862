"""The guard's in-domain fallback: ProtoNet on a last stage fine-tuned on the generator's base classes.

When the leave-one-out comparison turns a generator down inside its own domain, the classifier
built instead is ProtoNet (cosine to the class means) on the features of a copy of the backbone's
last stage (1x1 conv + BN) fine-tuned on that domain's base classes — the ``transfer`` baseline of
``zsmed eval fewshot`` — where the generator's checkpoint names one (``domain_check.fallback_stage``
in its ``.json``; the file sits beside it). It was at or above ProtoNet on frozen features on every
split measured, held-out Derm7pt diagnoses included (docs/bench/fewshot.md). Outside every domain
the frozen features stay the fallback: a stage tuned on one domain is no reference for another.

The stage is exported as an ``sgps-hybrid`` head (its BN folded into scale / shift, the class means
as cosine rows), so bundles need nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zsmed.errors import CheckpointError
from zsmed.fewshot.baselines import PROTO_SCALE, LastStage
from zsmed.synth.heads import SGPSHybridHead

FALLBACK_KEY = "fallback_stage"


def fallback_stage_path(checkpoint: str | Path) -> Path | None:
    """The fine-tuned stage a generator's guard falls back to, or None (frozen ProtoNet)."""
    try:
        meta = json.loads(Path(checkpoint).with_suffix(".json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    name = (meta.get("domain_check") or {}).get(FALLBACK_KEY)
    return Path(checkpoint).parent / f"{name}.safetensors" if name else None


def save_stage(stage: LastStage, path: str | Path, info: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().float() for k, v in stage.state_dict().items()
               if not k.endswith("num_batches_tracked")}, str(path))
    path.with_suffix(".json").write_text(json.dumps(info, indent=2, sort_keys=True))
    return path


def load_stage(path: str | Path, backbone: torch.nn.Module) -> LastStage:
    """A fine-tuned last stage for ``backbone`` (its shapes must match: same encoder)."""
    from safetensors.torch import load_file

    path = Path(path)
    stage = LastStage(backbone)
    try:
        state = load_file(str(path))
        stage.load_state_dict(state, strict=False)
    except Exception as exc:  # missing, corrupt or for another encoder: safetensors / torch raise many types
        raise CheckpointError(f"unusable fallback stage ({str(exc).splitlines()[0]})", path=path) from exc
    missing = {k for k in stage.state_dict() if not k.endswith("num_batches_tracked")} - set(state)
    if missing:
        raise CheckpointError(f"fallback stage lacks {', '.join(sorted(missing))}", path=path)
    return stage.eval()


def stage_features(stage: LastStage, trunk: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Pooled features of the fine-tuned stage for trunk maps (N, C, h, w)."""
    with torch.inference_mode():
        return torch.cat([stage(trunk[i : i + batch_size].float()) for i in range(0, len(trunk), batch_size)]) \
            if len(trunk) else torch.zeros(0, stage.conv.out_channels)


def fallback_head(stage: LastStage, features: torch.Tensor, labels: Sequence[str], classes: Sequence[str]
                  ) -> SGPSHybridHead:
    """ProtoNet on the stage's features as a trunk-input head: cosine to the unit class means."""
    conv, bn = stage.conv, stage.bn
    assert bn.running_var is not None and bn.running_mean is not None  # a Lite stage tracks its statistics
    head = SGPSHybridHead(conv.in_channels, conv.out_channels, len(classes))
    unit = F.normalize(features.float(), dim=-1)
    labels_arr = np.asarray(labels)
    means = torch.stack([unit[torch.as_tensor(np.flatnonzero(labels_arr == c))].mean(dim=0) for c in classes])
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # BN folded, eval statistics
        head.conv.weight.copy_(conv.weight)
        head.scale.copy_(scale)
        head.shift.copy_(bn.bias - bn.running_mean * scale)
        head.weight.copy_(F.normalize(means, dim=-1))
        head.bias.zero_()
        head.logit_scale.fill_(PROTO_SCALE)
    return head.eval()
