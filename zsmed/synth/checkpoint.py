"""SGPS checkpoints: ``<name>.safetensors`` (generator tensors) + ``<name>.json`` (config and provenance).

Loading checks the format version (a newer one is refused with a clear error) and that the image
encoder on this machine is the one the generator was meta-trained on (same weights hash).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from zsmed.errors import CheckpointError
from zsmed.resources import resources_dir
from zsmed.synth.config import SGPSConfig
from zsmed.synth.generator import SGPSGenerator

# One generator per domain the product serves (dermoscopy, chest X-ray): synthesis takes the one
# whose meta-training domain the support set lies in (``zsmed.synth.guard.route``); the first is
# the default where none has domain statistics. All must share one image encoder.
DEFAULT_CHECKPOINTS = ("sgps_efficientnet-lite0", "sgps-cxr_efficientnet-lite0")
DEFAULT_CHECKPOINT = DEFAULT_CHECKPOINTS[0]


def default_checkpoint_path() -> Path:
    return resources_dir() / "checkpoints" / f"{DEFAULT_CHECKPOINT}.safetensors"


def default_checkpoint_paths() -> list[Path]:
    """The shipped generators that are installed, the default first."""
    folder = resources_dir() / "checkpoints"
    found = [folder / f"{name}.safetensors" for name in DEFAULT_CHECKPOINTS]
    return [p for p in found if p.is_file()] or [default_checkpoint_path()]


def new_generator(config: SGPSConfig, backbone: torch.nn.Module) -> SGPSGenerator:
    """A fresh generator around the backbone's frozen last stage (BN folded, eval statistics)."""
    stage: Any = backbone  # EfficientNetLite: its last stage is _conv_head + _bn1
    conv = stage._conv_head.weight.detach()
    bn = stage._bn1
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    shift = (bn.bias - bn.running_mean * scale).detach()
    return SGPSGenerator(config, conv, scale, shift)


def save_generator(generator: SGPSGenerator, path: str | Path, info: dict[str, Any] | None = None) -> Path:
    from safetensors.torch import save_file

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu().float() for k, v in generator.state_dict().items()}
    meta = {"config": generator.config.to_dict(), "info": info or {}}
    save_file(state, str(path), metadata={"format_version": str(generator.config.format_version)})
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return path


def read_checkpoint_config(path: str | Path) -> tuple[SGPSConfig, dict[str, Any]]:
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.with_suffix(".safetensors").is_file() or not meta_path.is_file():
        raise CheckpointError("SGPS checkpoint needs both .safetensors and .json files", path=path)
    try:
        meta = json.loads(meta_path.read_text())
        config = SGPSConfig.from_dict(meta["config"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"unreadable SGPS checkpoint config ({exc})", path=meta_path) from exc
    except CheckpointError as exc:
        raise CheckpointError(exc.reason, path=meta_path) from exc
    return config, dict(meta.get("info") or {})


def load_generator(path: str | Path | None = None, *, encoder: object | None = None) -> SGPSGenerator:
    """Load a generator; ``encoder`` (an ImageEncoder) is checked against the checkpoint's."""
    from safetensors.torch import load_file

    path = Path(path) if path is not None else default_checkpoint_path()
    config, _ = read_checkpoint_config(path)
    if encoder is not None:
        spec = encoder.spec  # type: ignore[attr-defined]
        if spec.name != config.encoder:
            raise CheckpointError(
                f"this SGPS checkpoint was meta-trained on {config.encoder}, not {spec.name}", path=path
            )
        if config.encoder_sha256 and spec.weights_sha256 and spec.weights_sha256 != config.encoder_sha256:
            raise CheckpointError(
                f"this SGPS checkpoint was meta-trained on other {config.encoder} weights "
                f"({config.encoder_sha256[:12]}…, here {spec.weights_sha256[:12]}…)",
                path=path,
            )
    try:
        state = load_file(str(path.with_suffix(".safetensors")))
    except Exception as exc:  # safetensors raises its own error types on corrupt data
        raise CheckpointError(f"corrupt SGPS weights ({exc})", path=path) from exc
    dim, cin = config.image_dim, config.trunk_channels
    generator = SGPSGenerator(config, torch.zeros(dim, cin), torch.ones(dim), torch.zeros(dim))
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"SGPS weights do not match its config ({str(exc).splitlines()[0]})", path=path) from exc
    return generator.eval()


def save_training_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a resumable training state (tensors and plain data only: dicts, lists, tuples,
    numbers, strings), atomically."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_training_state(path: str | Path, device: Any = "cpu") -> dict[str, Any]:
    """Read a training state with ``weights_only=True``: a ``state.pt`` that asks the unpickler for
    anything but tensors and plain data (a crafted file in a run folder that would run code) is
    refused, never executed."""
    import pickle

    path = Path(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        raise CheckpointError(f"the saved training state holds more than tensors and plain data, or is damaged "
                              f"({first}); refusing to load it", path=path) from exc
    if not isinstance(state, dict):
        raise CheckpointError("the saved training state is not a mapping", path=path)
    return state
