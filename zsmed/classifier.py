"""The one classifier type every method produces, and its model file.

A ``Classifier`` is a frozen image backbone (named by its ``EncoderSpec``, weights from the weight
package, optionally overridden by adapted weights saved in the model file) followed by a ``Head``.
Few-shot synthesis, zero-shot DPSR, stitched models and baselines differ only in their head, so
they all save, load and export the same way.

A head declares which backbone output it reads (``input_kind``):
  - ``"pooled"``: global-average-pooled features (B, D)
  - ``"features"``: the last feature map (B, D, h, w), before pooling
  - ``"trunk"``: the map before the backbone's final 1x1 conv (B, C, h, w), for heads that
    generate or modulate that last stage themselves

Model file (``.zsm``): a zip holding ``model.json`` (the card: format version, method, classes,
descriptions, encoder spec, preprocessing, head type and config, metrics, OOD calibration) and
``weights.safetensors`` (head tensors under ``head.``, adapted backbone tensors under
``backbone.``). No pixels and no patient data are ever stored.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import math
import platform
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from zsmed import __version__
from zsmed.encoders.base import EncoderSpec
from zsmed.errors import CheckpointError, ConfigError, InputFileError
from zsmed.preprocess import PreprocessConfig

MODEL_FORMAT_VERSION = 1
INPUT_KINDS = ("pooled", "features", "trunk")


# --------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------
class Head(nn.Module):
    """Maps a backbone output to class logits. Subclasses register with ``@register_head``."""

    head_type: ClassVar[str] = ""
    input_kind: ClassVar[str] = "pooled"

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (tensors go to the state dict)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Head:
        return cls(**config)


_HEADS: dict[str, type[Head]] = {}


def register_head(cls: type[Head]) -> type[Head]:
    if not cls.head_type:
        raise TypeError(f"{cls.__name__} needs a head_type")
    if cls.input_kind not in INPUT_KINDS:
        raise TypeError(f"{cls.__name__}.input_kind must be one of {INPUT_KINDS}")
    _HEADS[cls.head_type] = cls
    return cls


# The only modules a model file may name for its head (importing any other zsmed module could run
# it: ``zsmed.__main__`` is the CLI).
HEAD_MODULES = frozenset({"zsmed.classifier", "zsmed.synth.heads", "zsmed.zeroshot.heads", "zsmed.align.stitch"})
# A head larger than this is not a head (the largest, SGPS hybrid on Lite0, has ~2 M parameters).
MAX_HEAD_PARAMETERS = 50_000_000
MAX_CARD_BYTES = 4 << 20
MAX_WEIGHTS_BYTES = 512 << 20
MODEL_MEMBERS = ("model.json", "weights.safetensors")


def head_class(head_type: str, module: str | None = None) -> type[Head]:
    if module and module not in HEAD_MODULES:
        raise CheckpointError(f"head module '{str(module)[:80]}' is not one of zsmed's head modules "
                              f"({', '.join(sorted(HEAD_MODULES))})")
    if head_type not in _HEADS and module:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise CheckpointError(f"head type '{head_type}' needs module '{module}': {exc}") from exc
    try:
        return _HEADS[head_type]
    except KeyError:
        raise CheckpointError(f"unknown head type '{head_type}' (made by a newer zsmed?)") from None


@register_head
class LinearHead(Head):
    """Linear classifier on pooled features; optionally cosine (both sides L2-normalised, scaled)."""

    head_type = "linear"
    input_kind = "pooled"

    def __init__(self, in_dim: int, n_classes: int, cosine: bool = False, scale: float = 1.0) -> None:
        super().__init__()
        self.in_dim, self.n_classes, self.cosine, self.scale = in_dim, n_classes, cosine, float(scale)
        self.weight = nn.Parameter(torch.zeros(n_classes, in_dim))
        self.bias = nn.Parameter(torch.zeros(n_classes))

    def config(self) -> dict[str, Any]:
        return {"in_dim": self.in_dim, "n_classes": self.n_classes, "cosine": self.cosine, "scale": self.scale}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight: torch.Tensor = self.weight
        if self.cosine:
            x = nn.functional.normalize(x, dim=-1)
            weight = nn.functional.normalize(weight, dim=-1)
        return self.scale * (x @ weight.t()) + self.bias

    @classmethod
    def from_arrays(cls, weight: np.ndarray, bias: np.ndarray | None = None, cosine: bool = False,
                    scale: float = 1.0) -> LinearHead:
        head = cls(weight.shape[1], weight.shape[0], cosine=cosine, scale=scale)
        with torch.no_grad():
            head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            if bias is not None:
                head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        return head


# --------------------------------------------------------------------------------------------
# Backbones
# --------------------------------------------------------------------------------------------
class BackboneView(nn.Module):
    """A backbone exposing one of its outputs (pooled / features / trunk) as ``forward``."""

    def __init__(self, backbone: nn.Module, input_kind: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.input_kind = input_kind

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.input_kind == "pooled":
            return self.backbone.forward_pooled(pixels)  # type: ignore[operator]
        if self.input_kind == "features":
            return self.backbone.forward_features(pixels)  # type: ignore[operator]
        return self.backbone.forward_trunk(pixels)  # type: ignore[operator]


def build_backbone(spec: EncoderSpec, input_kind: str) -> nn.Module:
    """The backbone module of an image encoder, viewed at ``input_kind``."""
    from zsmed.encoders import create_image_encoder

    encoder = create_image_encoder(spec.name)
    if spec.weights_sha256 and encoder.spec.weights_sha256 and encoder.spec.weights_sha256 != spec.weights_sha256:
        raise CheckpointError(
            f"the model was built on {spec.name} weights {spec.weights_sha256[:12]}…, "
            f"but this machine has {encoder.spec.weights_sha256[:12]}…"
        )
    module = encoder.torch_module()
    inner = getattr(module, "backbone", None)
    if inner is not None and hasattr(inner, "forward_trunk"):
        return BackboneView(inner, input_kind)
    if input_kind != "pooled":
        raise CheckpointError(f"encoder {spec.name} only offers pooled features, the head needs '{input_kind}'")
    return module


# --------------------------------------------------------------------------------------------
# Classifier and its card
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassifierCard:
    method: str
    class_names: tuple[str, ...]
    encoder: EncoderSpec
    preprocess: PreprocessConfig
    head_type: str
    head_module: str
    head_config: dict[str, Any]
    descriptions: dict[str, str] = field(default_factory=dict)
    support_counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    ood: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    software: dict[str, str] = field(default_factory=dict)
    format_version: int = MODEL_FORMAT_VERSION
    input_kinds: tuple[str, ...] = ()  # "photo" / DICOM Modality codes of the images it was built on


    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["class_names"] = list(self.class_names)
        data["encoder"] = self.encoder.to_dict()
        data["preprocess"] = self.preprocess.to_dict()
        if self.input_kinds:
            data["input_kinds"] = list(self.input_kinds)
        else:  # unknown: not written (a card lists 1 to 16 kinds or none)
            data.pop("input_kinds")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassifierCard:
        try:
            version = int(data.get("format_version", 0))
        except (TypeError, ValueError, OverflowError) as exc:
            raise CheckpointError(f"model card is missing or has a bad field: format_version ({exc})") from exc
        if version > MODEL_FORMAT_VERSION:
            raise CheckpointError(
                f"model format version {version} is newer than this zsmed reads ({MODEL_FORMAT_VERSION}); "
                "update zsmed"
            )
        try:
            return cls(
                method=str(data["method"]),
                class_names=tuple(data["class_names"]),
                encoder=EncoderSpec.from_dict(data["encoder"]),
                preprocess=PreprocessConfig.from_dict(data["preprocess"]),
                head_type=str(data["head_type"]),
                head_module=str(data.get("head_module", "zsmed.classifier")),
                head_config=dict(data["head_config"]),
                descriptions=dict(data.get("descriptions") or {}),
                support_counts={k: int(v) for k, v in (data.get("support_counts") or {}).items()},
                metrics=dict(data.get("metrics") or {}),
                ood=data.get("ood"),
                extra=dict(data.get("extra") or {}),
                created=str(data.get("created", "")),
                software=dict(data.get("software") or {}),
                format_version=version,
                input_kinds=tuple(str(k) for k in data.get("input_kinds") or ()),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise CheckpointError(f"model card is missing or has a bad field: {exc}") from exc


def software_versions() -> dict[str, str]:
    versions = {"zsmed": __version__, "python": platform.python_version(), "torch": torch.__version__}
    try:
        import pydicom

        versions["pydicom"] = pydicom.__version__
    except ImportError:
        pass
    return versions


class Classifier(nn.Module):
    """pixels (B, 3, S, S), preprocessed per ``card.preprocess`` -> logits (B, n_classes). Eval mode.
    ``colour``: a module adding scores computed from the pixels themselves (``zsmed.synth.colour``'s
    colour branch of a dermoscopy classifier), or None."""

    def __init__(self, backbone: nn.Module, head: Head, card: ClassifierCard, colour: nn.Module | None = None) -> None:
        super().__init__()
        if len(card.class_names) < 2:
            raise ConfigError("a classifier needs at least two classes")
        self.backbone = backbone
        self.head = head
        self.colour = colour
        self.card = card
        self.eval()

    @property
    def class_names(self) -> list[str]:
        return list(self.card.class_names)

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.card.preprocess

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.backbone(pixels))
        return logits + self.colour(pixels) if self.colour is not None else logits

    def predict_proba(self, pixels: np.ndarray | torch.Tensor) -> np.ndarray:
        tensor = torch.as_tensor(pixels, dtype=torch.float32)
        with torch.inference_mode():
            return torch.softmax(self(tensor), dim=-1).numpy()

    def predict_files(self, paths: Sequence[str | Path]) -> np.ndarray:
        from zsmed.imageio import read_image
        from zsmed.preprocess import batch_model_inputs

        images = [read_image(p) for p in paths]
        return self.predict_proba(batch_model_inputs(images, self.preprocess))

    def with_card(self, **changes: Any) -> Classifier:
        self.card = replace(self.card, **changes)
        return self


def make_classifier(
    head: Head,
    *,
    method: str,
    class_names: Sequence[str],
    encoder: EncoderSpec,
    backbone: nn.Module | None = None,
    descriptions: Mapping[str, str] | None = None,
    support_counts: Mapping[str, int] | None = None,
    metrics: Mapping[str, Any] | None = None,
    ood: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    input_kinds: Sequence[str] | None = None,
) -> Classifier:
    """Assemble a classifier; the backbone defaults to the encoder's shipped weights. ``input_kinds``:
    the kinds of images it was built on ("photo", DICOM Modality codes; see zsmed.runtime.input_kinds)."""
    from zsmed.runtime.validate import CardError, check_class_names, check_input_kinds

    try:  # the names a reader will see: short printable text, as every reader checks at load
        check_class_names(list(class_names))
        if input_kinds:
            check_input_kinds(list(input_kinds))
    except CardError as exc:
        raise ConfigError(f"cannot build a classifier: {exc}") from exc
    if encoder.preprocess is None:
        raise ConfigError(f"encoder {encoder.name} has no preprocessing config")
    card = ClassifierCard(
        method=method,
        class_names=tuple(class_names),
        encoder=encoder,
        preprocess=encoder.preprocess,
        head_type=head.head_type,
        head_module=type(head).__module__,
        head_config=head.config(),
        descriptions=dict(descriptions or {}),
        support_counts=dict(support_counts or {}),
        metrics=dict(metrics or {}),
        ood=dict(ood) if ood is not None else None,
        extra=dict(extra or {}),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        software=software_versions(),
        input_kinds=tuple(input_kinds or ()),
    )
    return Classifier(backbone if backbone is not None else build_backbone(encoder, head.input_kind), head, card)


def save_classifier(classifier: Classifier, path: str | Path, *, include_backbone: bool = False) -> Path:
    """Write a ``.zsm`` model file. Backbone weights are stored only when adapted (``include_backbone``)."""
    from safetensors.torch import save

    path = Path(path)
    card = replace(classifier.card, head_config=classifier.head.config())
    tensors = {f"head.{k}": v.detach().contiguous().cpu() for k, v in classifier.head.state_dict().items()}
    if include_backbone:
        tensors.update(
            {f"backbone.{k}": v.detach().contiguous().cpu() for k, v in classifier.backbone.state_dict().items()}
        )
    if classifier.colour is not None:
        colour_state = classifier.colour.state_dict()
        tensors.update({f"colour.{k}": v.detach().contiguous().cpu() for k, v in colour_state.items()})
    card_dict = card.to_dict()
    card_dict["backbone_in_file"] = include_backbone
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.json", json.dumps(card_dict, indent=2, sort_keys=True))
        archive.writestr("weights.safetensors", save(tensors))
    tmp.replace(path)
    return path


def _read_model_members(path: Path, *, weights: bool = True) -> tuple[dict[str, Any], bytes]:
    """(card dict, safetensors bytes) of a model file, read within limits: exactly the two members,
    the card at most 4 MB, the weights at most 512 MB, each inflated only up to its declared size."""
    from zsmed.runtime.safezip import SafeZip

    with SafeZip(path, CheckpointError, "model file", max_entries=8) as archive:
        if set(archive.names) != set(MODEL_MEMBERS):
            raise CheckpointError(f"not a zsmed model file: it holds {', '.join(map(repr, archive.names))[:200]} "
                                  f"instead of {' and '.join(MODEL_MEMBERS)}", path=path)
        card_bytes = archive.read("model.json", MAX_CARD_BYTES)
        tensors = archive.read("weights.safetensors", MAX_WEIGHTS_BYTES) if weights else b""
    try:
        card_dict = json.loads(card_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"not a zsmed model file (model.json: {exc})", path=path) from exc
    if not isinstance(card_dict, dict):
        raise CheckpointError("not a zsmed model file (model.json is not an object)", path=path)
    return card_dict, tensors


def _safetensors_shapes(data: bytes, path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from a safetensors header (8-byte length, then JSON), without loading any."""
    if len(data) < 8:
        raise CheckpointError("model weights are corrupt (no safetensors header)", path=path)
    length = int.from_bytes(data[:8], "little")
    if length > min(len(data) - 8, 16 << 20):
        raise CheckpointError("model weights are corrupt (safetensors header length)", path=path)
    try:
        header = json.loads(data[8 : 8 + length])
        return {name: tuple(int(d) for d in entry["shape"]) for name, entry in header.items()
                if name != "__metadata__"}
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"model weights are corrupt (safetensors header: {exc})", path=path) from exc


def _checked_head(cls: type[Head], config: dict[str, Any], shapes: dict[str, tuple[int, ...]], path: Path) -> Head:
    """The head, built only after its shapes (on the meta device: nothing allocated) are checked
    against the file's tensors and a size ceiling: a config asking for 10^12 parameters is refused."""
    try:
        with torch.device("meta"):
            probe = cls.from_config(config)
    except (TypeError, ValueError, RuntimeError, KeyError, CheckpointError) as exc:
        raise CheckpointError(f"the head config does not fit head type '{cls.head_type}' ({exc})", path=path) from exc
    expected = {f"head.{k}": tuple(v.shape) for k, v in probe.state_dict().items()}
    count = sum(int(np.prod(shape, dtype=np.int64)) for shape in expected.values())
    if count > MAX_HEAD_PARAMETERS:
        raise CheckpointError(f"the head config asks for {count} parameters (at most {MAX_HEAD_PARAMETERS})",
                              path=path)
    stored = {k: v for k, v in shapes.items() if k.startswith("head.")}
    if stored != expected:
        wrong = sorted(set(stored) ^ set(expected)) or sorted(k for k in stored if stored[k] != expected[k])
        raise CheckpointError(f"head weights do not match its config ({', '.join(wrong[:5])[:200]})", path=path)
    return cls.from_config(config)


def check_model_card(card_dict: dict[str, Any], path: Path, *, allow_local_encoder: bool = False) -> None:
    """What a model file says about itself, checked like a bundle's card: class names as short
    plain text (2-1000), a sane image size, a registered encoder (never a local path)."""
    from zsmed.runtime.validate import CardError, check_class_names, check_input_kinds, check_preprocess

    try:
        check_class_names(card_dict.get("class_names"))
        if "input_kinds" in card_dict:
            check_input_kinds(card_dict["input_kinds"])
        check_preprocess(card_dict.get("preprocess"))
    except CardError as exc:
        raise CheckpointError(f"the model card is refused: {exc}", path=path) from exc
    encoder = card_dict.get("encoder")
    name = encoder.get("name") if isinstance(encoder, dict) else None
    if not isinstance(name, str):
        raise CheckpointError("the model card names no encoder", path=path)
    assert isinstance(encoder, dict)
    if not isinstance(encoder.get("kind"), str) or not isinstance(encoder.get("weights_sha256", ""), str):
        raise CheckpointError("the model card's encoder kind and weights checksum must be text", path=path)
    if ":" in name and not allow_local_encoder:
        raise CheckpointError(f"the model names a local encoder ('{name[:80]}'); a model file may only name "
                              "zsmed's registered encoders", path=path)


def load_classifier(path: str | Path, *, allow_local_encoder: bool = False) -> Classifier:
    """Read a ``.zsm`` model file, within limits and with its card checked (see ``check_model_card``).
    ``allow_local_encoder``: accept an encoder given as a local path (a model built on this
    workstation with ``timm-local:``); never from a file that came from elsewhere."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise InputFileError("model file not found", path=path)
    card_dict, weights = _read_model_members(path)
    check_model_card(card_dict, path, allow_local_encoder=allow_local_encoder)
    shapes = _safetensors_shapes(weights, path)
    try:
        card = ClassifierCard.from_dict(card_dict)
    except CheckpointError as exc:
        raise CheckpointError(exc.reason, path=path) from exc
    try:
        cls = head_class(card.head_type, card.head_module)
    except CheckpointError as exc:
        raise CheckpointError(exc.reason, path=path) from exc
    head = _checked_head(cls, card.head_config, shapes, path)
    try:
        tensors = load(weights)
    except Exception as exc:  # safetensors raises its own error types on corrupt data
        raise CheckpointError(f"model weights are corrupt ({exc})", path=path) from exc
    head_state = {k[5:]: v for k, v in tensors.items() if k.startswith("head.")}
    try:
        head.load_state_dict(head_state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"head weights do not match its config ({exc})", path=path) from exc
    colour = _checked_colour(card, shapes, tensors, path)
    backbone = build_backbone(card.encoder, cls.input_kind)
    if card_dict.get("backbone_in_file"):
        state = {k[9:]: v for k, v in tensors.items() if k.startswith("backbone.")}
        try:
            backbone.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"backbone weights do not match the encoder ({str(exc)[:200]})", path=path) from exc
    return Classifier(backbone, head, card, colour)


def _checked_colour(card: ClassifierCard, shapes: dict[str, tuple[int, ...]], tensors: Mapping[str, torch.Tensor],
                    path: Path) -> nn.Module | None:
    """The colour branch a card says the model uses (``extra['colour']['used']``), its tensors' shapes
    checked: none where the card says none, and no stray colour tensors either."""
    stored = {k: v for k, v in shapes.items() if k.startswith("colour.")}
    described = card.extra.get("colour")
    if not (isinstance(described, Mapping) and described.get("used")):
        if stored:
            raise CheckpointError("the model file holds colour weights its card does not describe", path=path)
        return None
    from zsmed.synth.colour import N_COLOUR, ColourBranch

    expected = {"colour.mean": (N_COLOUR,), "colour.sd": (N_COLOUR,),
                "colour.prototypes": (len(card.class_names), N_COLOUR)}
    try:
        weight = float(described["weight"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"the card's colour branch has no weight ({exc})", path=path) from exc
    if stored != expected or not math.isfinite(weight):
        raise CheckpointError("the colour branch's weights do not match the card", path=path)
    return ColourBranch(tensors["colour.mean"], tensors["colour.sd"], tensors["colour.prototypes"],
                                     weight, card.preprocess)


def read_card(path: str | Path) -> ClassifierCard:
    """The card of a model file, without loading any weights."""
    path = Path(path)
    card_dict, _ = _read_model_members(path, weights=False)
    check_model_card(card_dict, path, allow_local_encoder=True)
    try:
        return ClassifierCard.from_dict(card_dict)
    except CheckpointError as exc:
        raise CheckpointError(exc.reason, path=path) from exc


__all__ = [
    "MODEL_FORMAT_VERSION",
    "Classifier",
    "ClassifierCard",
    "Head",
    "LinearHead",
    "build_backbone",
    "head_class",
    "load_classifier",
    "make_classifier",
    "read_card",
    "register_head",
    "save_classifier",
]

