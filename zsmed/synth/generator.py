"""The SGPS generator: a transformer that reads a support set and emits a classifier's parameters.

Tokens (one sequence per episode):
  - one per support image: projection of its frozen pooled embedding,
  - one per class description: projection of its MiniLM embedding,
  - one weight-query token per class (emits that class's head row),
  - learned global weight-query tokens (emit the last-stage adaptation, or chunks of the compact
    target network).
A class "slot" embedding tells which class each token belongs to; slots are shuffled during
meta-training so the generator is equivariant to class order.

Targets (``config.target``):
  - ``hybrid``: frozen trunk -> last 1x1 conv with a generated low-rank update (W0 + U V^T) ->
    frozen BN -> generated FiLM (per-channel scale/shift) -> ReLU6 -> pool -> cosine head whose
    class rows are the support prototypes (in the adapted space) plus a generated residual.
  - ``compact``: the paper's literal variant; every parameter of a small CNN (1x1 conv 320->M,
    depthwise 3x3, 1x1 conv M->O, cosine head; ~275k parameters) that reads the frozen trunk map,
    reshaped from the generator's output chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zsmed.synth.config import SGPSConfig


@dataclass
class EpisodeBatch:
    """E episodes of the same shape. Masks are True where the input is present."""

    support_pooled: torch.Tensor  # (E, N, K, D) frozen pooled embeddings
    support_trunk: torch.Tensor  # (E, N, K, C, h, w) trunk maps (for prototypes in the adapted space)
    support_conv: torch.Tensor  # (E, N, K, D, h*w) frozen last-conv output W0 * trunk (hybrid target)
    text: torch.Tensor  # (E, N, T) description embeddings (zeros where missing)
    text_mask: torch.Tensor  # (E, N) bool
    image_mask: torch.Tensor  # (E,) bool: False = text-only episode (zero-shot)
    query_trunk: torch.Tensor  # (E, M, C, h, w)
    query_conv: torch.Tensor  # (E, M, D, h*w)


@dataclass
class HybridParams:
    u: torch.Tensor  # (E, r, D) low-rank update of the last 1x1 conv: W = W0 + U^T V / sqrt(r C)
    v: torch.Tensor  # (E, r, C)
    scale: torch.Tensor  # (E, D) BN folded with FiLM
    shift: torch.Tensor  # (E, D)
    head_residual: torch.Tensor  # (E, N, D)
    head_bias: torch.Tensor  # (E, N)
    delta: torch.Tensor | None = None  # (D, C) learned correction of the last 1x1 conv (config.stage_lr)


@dataclass
class CompactParams:
    w1: torch.Tensor  # (E, M, C)
    b1: torch.Tensor  # (E, M)
    w2: torch.Tensor  # (E, M, 9) depthwise 3x3
    b2: torch.Tensor  # (E, M)
    w3: torch.Tensor  # (E, O, M)
    b3: torch.Tensor  # (E, O)
    head_weight: torch.Tensor  # (E, N, O)
    head_bias: torch.Tensor  # (E, N)


def compact_shapes(config: SGPSConfig) -> list[tuple[str, tuple[int, ...]]]:
    m, o, c = config.compact_mid, config.compact_out, config.trunk_channels
    return [("w1", (m, c)), ("b1", (m,)), ("w2", (m, 9)), ("b2", (m,)), ("w3", (o, m)), ("b3", (o,))]


def compact_param_count(config: SGPSConfig) -> int:
    return sum(math.prod(shape) for _, shape in compact_shapes(config))


class SGPSGenerator(nn.Module):
    w0: torch.Tensor
    a0: torch.Tensor
    b0: torch.Tensor
    text_prior_mean: torch.Tensor  # present when config.text_prior_classes > 0
    text_prior_keys: torch.Tensor
    text_prior_values: torch.Tensor

    def __init__(self, config: SGPSConfig, head_conv_weight: torch.Tensor, bn_scale: torch.Tensor,
                 bn_shift: torch.Tensor) -> None:
        super().__init__()
        self.config = config
        d, dim, cin = config.d_model, config.image_dim, config.trunk_channels
        # The frozen last stage of the backbone, BN folded (eval mode): part of the checkpoint so a
        # generator is self-contained; the encoder hash check guarantees they match the backbone.
        self.register_buffer("w0", head_conv_weight.reshape(dim, cin).float().clone())
        self.register_buffer("a0", bn_scale.float().clone())
        self.register_buffer("b0", bn_shift.float().clone())
        self.img_norm = nn.LayerNorm(dim)
        self.img_proj = nn.Linear(dim, d)
        self.txt_proj = nn.Linear(config.text_dim, d)
        self.slot = nn.Parameter(torch.randn(config.max_ways, d) * 0.02)
        self.kind = nn.Parameter(torch.randn(3, d) * 0.02)  # image / text / class-query token types
        self.class_query = nn.Parameter(torch.randn(d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, config.n_heads, config.ff_dim, config.dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(d)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        if config.target == "hybrid":
            self.n_global = (1 if config.film else 0) + config.rank
            self.head_out = nn.Linear(d, dim + 1)
            nn.init.zeros_(self.head_out.weight)
            nn.init.zeros_(self.head_out.bias)
            if config.film:
                self.film_out = nn.Linear(d, 2 * dim)
                nn.init.zeros_(self.film_out.weight)
                nn.init.zeros_(self.film_out.bias)
            if config.rank:
                self.lowrank_out = nn.Linear(d, dim + cin)
                # U starts at zero (no change to the backbone), V random: the product's gradient
                # then reaches U from the first step.
                with torch.no_grad():
                    self.lowrank_out.weight[:dim].zero_()
                    self.lowrank_out.bias[:dim].zero_()
        else:
            total = compact_param_count(config)
            self.n_global = math.ceil(total / config.compact_chunk)
            self.chunk_out = nn.Linear(d, config.compact_chunk)
            nn.init.zeros_(self.chunk_out.weight)
            nn.init.zeros_(self.chunk_out.bias)
            # The per-chunk base values: a standard (Kaiming) initialisation of the target network.
            base = []
            for name, shape in compact_shapes(config):
                if name.startswith("w"):
                    fan_in = shape[1]
                    base.append(torch.randn(shape).flatten() * math.sqrt(2.0 / fan_in))
                else:
                    base.append(torch.zeros(shape).flatten())
            flat = torch.cat(base)
            padded = torch.zeros(self.n_global * config.compact_chunk)
            padded[: len(flat)] = flat
            self.chunk_base = nn.Parameter(padded.reshape(self.n_global, config.compact_chunk))
            self.head_out = nn.Linear(d, config.compact_out + 1)
            if config.compact_proto:
                # Rows = prototypes + generated residual: zero residual at start (ProtoNet on the
                # base network's features), as in the hybrid.
                nn.init.zeros_(self.head_out.weight)
            else:
                nn.init.normal_(self.head_out.weight, std=0.02)
            nn.init.zeros_(self.head_out.bias)
        self.global_query = nn.Parameter(torch.randn(max(self.n_global, 1), d) * 0.02)
        if config.text_prior_classes > 0:
            n_text = config.text_prior_classes
            # Filled by zsmed.synth.text_prior.fit_text_prior; part of the checkpoint.
            self.register_buffer("text_prior_mean", torch.zeros(config.text_dim))
            self.register_buffer("text_prior_keys", torch.zeros(n_text, config.text_dim))
            self.register_buffer("text_prior_values", torch.zeros(n_text, dim))
        if config.target == "hybrid" and config.stage_lr > 0:
            # The learned last-stage correction starts at zero: the ImageNet stage.
            self.stage_delta = nn.Parameter(torch.zeros(dim, cin))
            self.stage_scale = nn.Parameter(torch.zeros(dim))
            self.stage_shift = nn.Parameter(torch.zeros(dim))

    def base_affine(self, episodes: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(E, D) scale and shift of the last stage before any generated FiLM: the frozen BN,
        with the learned correction where the checkpoint has one."""
        scale, shift = self.a0, self.b0
        if hasattr(self, "stage_scale"):
            scale = scale * (1 + self.stage_scale)
            shift = shift + self.stage_shift
        return scale.expand(episodes, -1), shift.expand(episodes, -1)

    def text_directions(self, text: torch.Tensor) -> torch.Tensor:
        """(..., D) unit class directions predicted from description embeddings (..., T)."""
        weights = (text.float() - self.text_prior_mean) @ self.text_prior_keys.t()
        return F.normalize(weights @ self.text_prior_values, dim=-1, eps=1e-6)

    def stage_delta_or_none(self) -> torch.Tensor | None:
        return self.stage_delta if hasattr(self, "stage_delta") else None

    # ----------------------------------------------------------------------------------------
    def tokens(self, batch: EpisodeBatch, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The token sequence (E, L, d), its padding mask (True = ignore), and where class queries start."""
        e, n, k, _ = batch.support_pooled.shape
        slot = self.slot[slots]  # (E, N, d)
        img = self.img_proj(self.img_norm(batch.support_pooled.float())) + self.kind[0]
        img = img + slot[:, :, None, :]
        img = img.reshape(e, n * k, -1)
        txt = self.txt_proj(batch.text.float()) + self.kind[1] + slot
        cls = self.class_query + self.kind[2] + slot
        glob = self.global_query[: self.n_global].expand(e, -1, -1)
        seq = torch.cat([img, txt, cls, glob], dim=1)
        device = seq.device
        pad_img = (~batch.image_mask.to(device))[:, None].expand(e, n * k)
        pad_txt = ~batch.text_mask.to(device)
        pad_rest = torch.zeros(e, n + self.n_global, dtype=torch.bool, device=device)
        return seq, torch.cat([pad_img, pad_txt, pad_rest], dim=1), n * k + n

    def forward(self, batch: EpisodeBatch, slots: torch.Tensor | None = None) -> HybridParams | CompactParams:
        e, n = batch.support_pooled.shape[:2]
        if slots is None:
            slots = torch.arange(n, device=batch.support_pooled.device).expand(e, n)
        seq, pad, cls_start = self.tokens(batch, slots)
        out = self.out_norm(self.encoder(seq, src_key_padding_mask=pad))
        cls = out[:, cls_start : cls_start + n]
        glob = out[:, cls_start + n :]
        head = self.head_out(cls)
        if self.config.target == "hybrid":
            return self._hybrid(head, glob)
        return self._compact(head, glob)

    def _hybrid(self, head: torch.Tensor, glob: torch.Tensor) -> HybridParams:
        cfg = self.config
        e = head.shape[0]
        dim = cfg.image_dim
        scale, shift = self.base_affine(e)
        g = 0
        if cfg.film:
            gamma, beta = self.film_out(glob[:, 0]).chunk(2, dim=-1)
            # BN then FiLM: (a0 z + b0)(1 + gamma) + beta, folded into one affine.
            scale = scale * (1 + gamma)
            shift = shift * (1 + gamma) + beta
            g = 1
        if cfg.rank:
            uv = self.lowrank_out(glob[:, g : g + cfg.rank])  # (E, r, D + C)
            u, v = uv[..., :dim] / math.sqrt(cfg.rank * cfg.trunk_channels), uv[..., dim:]
        else:
            u = head.new_zeros(e, 1, dim)
            v = head.new_zeros(e, 1, cfg.trunk_channels)
        if not self.training:
            # Parts the checkpoint switches off for synthesis (chosen by ablation).
            if "film" in cfg.inference_ablations:
                scale, shift = self.base_affine(e)
            if "lowrank" in cfg.inference_ablations:
                u = torch.zeros_like(u)
        keep_head = cfg.gen_head and (self.training or "head" not in cfg.inference_ablations)
        residual = head[..., :dim] if keep_head else torch.zeros_like(head[..., :dim])
        bias = head[..., dim] if keep_head else torch.zeros_like(head[..., dim])
        return HybridParams(u, v, scale, shift, residual, bias, self.stage_delta_or_none())

    def _compact(self, head: torch.Tensor, glob: torch.Tensor) -> CompactParams:
        e = head.shape[0]
        flat = (self.chunk_base + self.chunk_out(glob)).reshape(e, -1)
        parts: dict[str, torch.Tensor] = {}
        offset = 0
        for name, shape in compact_shapes(self.config):
            size = math.prod(shape)
            parts[name] = flat[:, offset : offset + size].reshape(e, *shape)
            offset += size
        o = self.config.compact_out
        return CompactParams(head_weight=head[..., :o], head_bias=head[..., o], **parts)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp()


# --------------------------------------------------------------------------------------------
# Running generated targets on batches of episodes (training and evaluation)
# --------------------------------------------------------------------------------------------
def merged_weight(generator: SGPSGenerator, params: HybridParams) -> torch.Tensor:
    """(E, D, C) the adapted last 1x1 conv, W0 + U^T V (what the exported head holds)."""
    w = generator.w0 if params.delta is None else generator.w0 + params.delta
    return w + torch.einsum("erd,erc->edc", params.u, params.v)


def hybrid_features(params: HybridParams, trunk: torch.Tensor, conv0: torch.Tensor) -> torch.Tensor:
    """Adapted pooled features (E, B, D) from trunk maps (E, B, C, P) and their frozen last-conv
    output ``conv0`` = W0 * trunk (E, B, D, P), precomputed once per image: the low-rank update
    then costs r * (C + D) per position instead of a full C x D conv per episode."""
    z = conv0 + torch.einsum("erd,erbp->ebdp", params.u, torch.einsum("erc,ebcp->erbp", params.v, trunk))
    if params.delta is not None:
        # The learned stage correction: a full 1x1 conv per image (only with config.stage_lr > 0).
        z = z + torch.einsum("dc,ebcp->ebdp", params.delta, trunk)
    z = z * params.scale[:, None, :, None] + params.shift[:, None, :, None]
    return F.relu6(z).mean(dim=3)


def compact_features(params: CompactParams, trunk: torch.Tensor) -> torch.Tensor:
    """(E, B, C, h, w) trunk maps -> (E, B, O) features of the generated compact CNN."""
    e, b, _, h, w = trunk.shape
    m = params.w1.shape[1]
    x = F.relu6(torch.einsum("emc,ebchw->ebmhw", params.w1, trunk) + params.b1[:, None, :, None, None])
    # Depthwise 3x3 with per-episode weights: one grouped conv over (episode, channel) groups.
    x = x.permute(1, 0, 2, 3, 4).reshape(b, e * m, h, w)
    x = F.conv2d(x, params.w2.reshape(e * m, 1, 3, 3), params.b2.reshape(e * m), padding=1, groups=e * m)
    x = F.relu6(x).reshape(b, e, m, h, w).permute(1, 0, 2, 3, 4)
    x = F.relu6(torch.einsum("eom,ebmhw->ebohw", params.w3, x) + params.b3[:, None, :, None, None])
    return x.mean(dim=(3, 4))


def class_weights(generator: SGPSGenerator, params: HybridParams | CompactParams, batch: EpisodeBatch) -> torch.Tensor:
    """(E, N, D') class rows of the cosine head: prototypes (hybrid, images present) + generated part."""
    cfg = generator.config
    if isinstance(params, CompactParams):
        if not cfg.compact_proto:
            return params.head_weight
        e, n, k = batch.support_trunk.shape[:3]
        feats = compact_features(params, batch.support_trunk.reshape(e, n * k, *batch.support_trunk.shape[3:]))
        protos = F.normalize(F.normalize(feats, dim=-1).reshape(e, n, k, -1).mean(dim=2), dim=-1)
        return params.head_weight + protos * batch.image_mask.to(protos.dtype)[:, None, None]
    rows = params.head_residual
    if cfg.proto_head:
        e, n, k = batch.support_trunk.shape[:3]
        trunk = batch.support_trunk.reshape(e, n * k, *batch.support_trunk.shape[3:]).flatten(3)
        feats = hybrid_features(params, trunk, batch.support_conv.reshape(e, n * k, *batch.support_conv.shape[3:]))
        protos = F.normalize(F.normalize(feats, dim=-1).reshape(e, n, k, -1).mean(dim=2), dim=-1)
        rows = rows + protos * batch.image_mask.to(protos.dtype)[:, None, None]
    if cfg.text_prior_beta > 0 and cfg.text_prior_classes > 0:
        described = batch.text_mask.to(rows.dtype)[..., None]
        directions = generator.text_directions(batch.text) * described
        with_images = batch.image_mask.to(rows.dtype)[:, None, None]
        # Image episodes: the prototype leans towards the description's direction, by beta / K (a
        # prior counts less the more images a class has: chosen on held-out Derm7pt classes, where
        # beta 1 helped at 1-shot and anything above 0.2 hurt at 5-shot); text-only episodes: the
        # description's direction is the class row.
        weight = cfg.text_prior_beta / batch.support_trunk.shape[2]
        rows = with_images * (rows + weight * directions) + (1 - with_images) * directions
    return rows


def episode_logits(generator: SGPSGenerator, params: HybridParams | CompactParams, rows: torch.Tensor,
                   batch: EpisodeBatch) -> torch.Tensor:
    """(E, M, N) query logits of generated classifiers."""
    if isinstance(params, HybridParams):
        feats = hybrid_features(params, batch.query_trunk.flatten(3), batch.query_conv)
    else:
        feats = compact_features(params, batch.query_trunk)
    cos = torch.einsum("ebd,end->ebn", F.normalize(feats, dim=-1), F.normalize(rows, dim=-1, eps=1e-6))
    return generator.logit_scale * cos + params.head_bias[:, None, :]
