"""The frozen configuration of an SGPS generator and its meta-training, saved in the checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from zsmed.errors import CheckpointError

# Bump when the checkpoint layout or the meaning of a field changes; older zsmed refuses newer files.
SGPS_FORMAT_VERSION = 1
TARGETS = ("hybrid", "compact")


@dataclass(frozen=True)
class SGPSConfig:
    # --- encoders the generator was meta-trained on (checked on load) ---
    encoder: str = "efficientnet-lite0"
    encoder_sha256: str = ""
    text_encoder: str = "all-MiniLM-L6-v2"
    image_dim: int = 1280
    text_dim: int = 384
    trunk_channels: int = 320
    # --- generator ---
    target: str = "hybrid"  # "hybrid": frozen trunk + generated last-stage adaptation + head
    d_model: int = 256
    n_layers: int = 3
    n_heads: int = 4
    ff_dim: int = 512
    dropout: float = 0.1
    max_ways: int = 10
    # hybrid target parts (ablations switch them off)
    film: bool = True  # generated per-channel scale/shift after the last BN
    rank: int = 8  # generated low-rank update of the last 1x1 conv (0 = off)
    gen_head: bool = True  # generated class-weight residual and bias
    proto_head: bool = True  # class weights start from support prototypes (image modality)
    # compact target (the paper's literal variant): every parameter of a small CNN on the trunk map
    compact_mid: int = 384
    compact_out: int = 384
    compact_chunk: int = 4096
    # Learning-rate multiplier of the compact network's directly learned base weights. Adam moves
    # every element by ~lr per step whatever its gradient, so at 1.0 (5e-4 against an init scale
    # of ~0.08) the base weights double within ~150 steps and the ReLU6 layers saturate (all
    # outputs 0 or 6: constant features, zero gradient, constant predictions).
    compact_base_lr: float = 1.0
    # Compact head rows start from support prototypes of the generated network's features (as
    # in the hybrid) instead of being generated from scratch.
    compact_proto: bool = False
    # Generated parts replaced by their identity when synthesising (not during meta-training):
    # "film", "lowrank", "head" (see ``zsmed.synth.synthesize.ablate``). The dev-split ablation
    # of the shipped hybrid showed the generated low-rank update hurting novel classes.
    inference_ablations: tuple[str, ...] = ()
    # Learning-rate multiplier of a correction to the backbone's last stage (1x1 conv + folded BN)
    # that meta-training learns and every synthesised classifier shares; 0 keeps the ImageNet
    # stage frozen. The transfer baseline (that stage fine-tuned on base classes) beat ProtoNet on
    # both domains where the frozen-stage generator did not: this lets the generator learn the same.
    stage_lr: float = 0.0
    # Text prior (zsmed.synth.text_prior): a ridge map from description embeddings to class-mean
    # directions of the frozen pooled features, fitted in closed form on the described base classes
    # (dual form: ``text_prior_classes`` rows). Each described class's row gets ``text_prior_beta``
    # / K times its predicted direction (K images per class); a text-only episode's rows are those
    # directions. 0 = off.
    text_prior_beta: float = 0.0
    text_prior_classes: int = 0
    # --- meta-training ---
    ways: tuple[int, ...] = (2, 3)
    shots: tuple[int, ...] = (1, 2, 3, 5)
    queries: int = 10
    batch_episodes: int = 8
    steps: int = 1500
    lr: float = 5e-4
    weight_decay: float = 1e-2
    warmup_steps: int = 100
    text_dropout: float = 0.3  # per class: teaches the generator to work without a description
    image_dropout: float = 0.15  # per episode: text-only episodes, for zero-shot (SGPS-T)
    label_smoothing: float = 0.1
    # L2 pull of the generated adaptation (FiLM, low-rank U, head residual) towards zero, i.e.
    # towards plain prototypes on frozen features: with few base classes, large adaptations
    # fit the base classes and hurt novel ones.
    adapt_l2: float = 0.0
    # Task augmentation: share of episodes whose support is imbalanced (each class keeps 1..K
    # distinct images, cycled to K), and domains drawn uniformly instead of by their class count.
    imbalance: float = 0.0
    uniform_domains: bool = False
    # Cached augmented views of the base images (``zsmed.fewshot.views``) added to meta-training,
    # and whether the quarter-turned ones are new classes rather than more images of their class.
    train_views: tuple[str, ...] = ()
    rotated_classes: bool = False
    seed: int = 0
    val_every: int = 100
    val_episodes: int = 100
    format_version: int = SGPS_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ways"] = list(self.ways)
        data["shots"] = list(self.shots)
        data["inference_ablations"] = list(self.inference_ablations)
        data["train_views"] = list(self.train_views)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SGPSConfig:
        version = int(data.get("format_version", 0))
        if version > SGPS_FORMAT_VERSION:
            raise CheckpointError(
                f"SGPS checkpoint format {version} is newer than this zsmed reads ({SGPS_FORMAT_VERSION}); update zsmed"
            )
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise CheckpointError(f"SGPS checkpoint config has unknown fields {sorted(unknown)}")
        values = dict(data)
        for key in ("ways", "shots"):
            if key in values:
                values[key] = tuple(int(v) for v in values[key])
        for key in ("inference_ablations", "train_views"):
            if key in values:
                values[key] = tuple(str(v) for v in values[key])
        try:
            config = cls(**values)
        except TypeError as exc:
            raise CheckpointError(f"bad SGPS checkpoint config ({exc})") from exc
        if config.target not in TARGETS:
            raise CheckpointError(f"unknown SGPS target '{config.target}'")
        return config

    def with_changes(self, **changes: Any) -> SGPSConfig:
        return replace(self, **changes)
