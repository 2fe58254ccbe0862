from __future__ import annotations

import pytest
import torch

from zsmed.errors import CheckpointError
from zsmed.synth.checkpoint import load_generator, save_generator
from zsmed.synth.config import SGPSConfig
from zsmed.synth.generator import (
    CompactParams,
    EpisodeBatch,
    HybridParams,
    SGPSGenerator,
    class_weights,
    compact_param_count,
    episode_logits,
)


def _batch(e: int = 2, n: int = 3, k: int = 2, m: int = 4, text: bool = True) -> EpisodeBatch:
    g = torch.Generator().manual_seed(0)
    return EpisodeBatch(
        support_pooled=torch.rand(e, n, k, 1280, generator=g),
        support_trunk=torch.randn(e, n, k, 320, 7, 7, generator=g),
        support_conv=torch.randn(e, n, k, 1280, 49, generator=g),
        text=torch.randn(e, n, 384, generator=g),
        text_mask=torch.full((e, n), text),
        image_mask=torch.ones(e, dtype=torch.bool),
        query_trunk=torch.randn(e, m, 320, 7, 7, generator=g),
        query_conv=torch.randn(e, m, 1280, 49, generator=g),
    )


def _generator(**changes: object) -> SGPSGenerator:
    config = SGPSConfig(d_model=64, n_layers=1, ff_dim=64, **changes)  # type: ignore[arg-type]
    return SGPSGenerator(config, torch.randn(1280, 320) * 0.05, torch.ones(1280), torch.zeros(1280)).eval()


def test_hybrid_output_shapes() -> None:
    gen = _generator()
    batch = _batch()
    params = gen(batch)
    assert isinstance(params, HybridParams)
    assert params.u.shape == (2, 8, 1280) and params.v.shape == (2, 8, 320)
    assert params.scale.shape == (2, 1280) and params.head_residual.shape == (2, 3, 1280)
    rows = class_weights(gen, params, batch)
    assert rows.shape == (2, 3, 1280)
    assert episode_logits(gen, params, rows, batch).shape == (2, 4, 3)


def test_compact_output_shapes_and_size() -> None:
    gen = _generator(target="compact")
    assert 100_000 < compact_param_count(gen.config) < 1_000_000
    batch = _batch()
    params = gen(batch)
    assert isinstance(params, CompactParams)
    assert params.w1.shape == (2, 384, 320) and params.w2.shape == (2, 384, 9) and params.w3.shape == (2, 384, 384)
    assert params.head_weight.shape == (2, 3, 384)
    assert episode_logits(gen, params, class_weights(gen, params, batch), batch).shape == (2, 4, 3)


def _logits(gen: SGPSGenerator, batch: EpisodeBatch, slots: torch.Tensor | None = None) -> torch.Tensor:
    params = gen(batch, slots)
    return episode_logits(gen, params, class_weights(gen, params, batch), batch)


def test_text_only_and_missing_text_run() -> None:
    gen = _generator()
    batch = _batch(text=False)
    batch.image_mask[:] = True
    assert torch.isfinite(_logits(gen, batch)).all()
    batch = _batch()
    batch.image_mask[:] = False
    assert torch.isfinite(_logits(gen, batch)).all()


def test_class_order_equivariance() -> None:
    gen = _generator()
    batch = _batch(e=1)
    logits = _logits(gen, batch)
    perm = torch.tensor([2, 0, 1])
    swapped = EpisodeBatch(batch.support_pooled[:, perm], batch.support_trunk[:, perm], batch.support_conv[:, perm],
                           batch.text[:, perm], batch.text_mask[:, perm], batch.image_mask, batch.query_trunk,
                           batch.query_conv)
    slots = torch.tensor([[2, 0, 1]])  # the same slot follows the same class
    logits2 = _logits(gen, swapped, slots)
    assert torch.allclose(logits[..., perm], logits2, atol=1e-4)


def test_checkpoint_roundtrip_and_refusals(tmp_path, image_encoder) -> None:  # type: ignore[no-untyped-def]
    import json

    gen = _generator(encoder="efficientnet-lite0", encoder_sha256=image_encoder.spec.weights_sha256)
    path = save_generator(gen, tmp_path / "g.safetensors", {"name": "t"})
    loaded = load_generator(path, encoder=image_encoder)
    for key, value in gen.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["config"]["encoder_sha256"] = "0" * 64
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="other efficientnet-lite0 weights"):
        load_generator(path, encoder=image_encoder)
    meta["config"]["encoder"] = "efficientnet-lite2"
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="not efficientnet-lite0"):
        load_generator(path, encoder=image_encoder)
    meta["config"]["format_version"] = 99
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="newer"):
        load_generator(path, encoder=image_encoder)
    with pytest.raises(CheckpointError):
        load_generator(tmp_path / "missing.safetensors")


def test_compact_proto_head_starts_as_protonet_on_generated_features() -> None:
    from zsmed.synth.generator import compact_features

    gen = _generator(target="compact", compact_proto=True)
    batch = _batch()
    params = gen(batch)
    assert isinstance(params, CompactParams)
    rows = class_weights(gen, params, batch)
    feats = compact_features(params, batch.support_trunk.reshape(2, 6, 320, 7, 7))
    protos = torch.nn.functional.normalize(
        torch.nn.functional.normalize(feats, dim=-1).reshape(2, 3, 2, -1).mean(dim=2), dim=-1)
    # Zero-initialised generated residual: the rows are exactly the prototypes.
    assert torch.allclose(rows, protos, atol=1e-6)


def test_compact_base_weights_get_their_own_learning_rate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from zsmed.fewshot.bank import FeatureBank
    from zsmed.synth.train import MetaData, meta_train

    gen = _generator(target="compact", compact_proto=True, compact_base_lr=0.0, steps=2, batch_episodes=1,
                     queries=2, shots=(1,), ways=(2,), warmup_steps=1, val_every=100).train()
    from pathlib import Path

    from zsmed.data.folders import LabeledItem

    items = [LabeledItem(Path(f"{i}.png"), "ab"[i // 4], f"g{i}") for i in range(8)]
    bank = FeatureBank(items, torch.randn(8, 320, 7, 7).half(), torch.rand(8, 1280), torch.zeros(8, 1280, 49).half())
    base = gen.chunk_base.detach().clone()
    meta_train(gen, MetaData(bank, {}, {}), tmp_path / "run", device="cpu", log_every=1)
    assert torch.equal(gen.chunk_base.detach(), base)  # lr multiplier 0: base weights frozen
    assert np.isfinite(float(gen.log_scale.detach()))


def _consistent_batch(gen: SGPSGenerator) -> EpisodeBatch:
    """A batch whose last-conv maps are the frozen stage applied to its trunk maps (as the feature
    bank computes them), so the exported head can be compared with the episode logits."""
    batch = _batch(e=1)
    batch.support_conv = torch.einsum("dc,enkchw->enkdhw", gen.w0, batch.support_trunk).flatten(-2)
    batch.query_conv = torch.einsum("dc,emchw->emdhw", gen.w0, batch.query_trunk).flatten(-2)
    return batch


def test_learned_stage_correction_starts_at_the_imagenet_stage_and_is_exported() -> None:
    from zsmed.synth.synthesize import head_from_params

    torch.manual_seed(0)
    frozen = _generator()
    torch.manual_seed(0)
    learned = _generator(stage_lr=0.3)
    batch = _consistent_batch(frozen)
    with torch.no_grad():
        before = episode_logits(frozen, p := frozen(batch), class_weights(frozen, p, batch), batch)
        start = episode_logits(learned, q := learned(batch), class_weights(learned, q, batch), batch)
        assert torch.allclose(before, start, atol=1e-5)  # a zero correction is the ImageNet stage
        learned.stage_delta.normal_(std=0.05)
        learned.stage_scale.uniform_(-0.3, 0.3)
        learned.stage_shift.normal_(std=0.1)
        params = learned(batch)
        assert params.delta is learned.stage_delta  # type: ignore[union-attr]
        rows = class_weights(learned, params, batch)
        logits = episode_logits(learned, params, rows, batch)[0]
        assert not torch.allclose(logits, before[0], atol=1e-3)
        # The saved classifier (1x1 conv + folded scale/shift + cosine head) holds the correction.
        exported = head_from_params(learned, params, rows)(batch.query_trunk[0])
    assert torch.allclose(exported, logits, atol=1e-4)


def test_learned_stage_correction_trains_and_round_trips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from zsmed.data.folders import LabeledItem
    from zsmed.fewshot.bank import FeatureBank
    from zsmed.synth.train import MetaData, meta_train

    gen = _generator(stage_lr=0.5, steps=3, batch_episodes=1, queries=2, shots=(1,), ways=(2,), warmup_steps=1,
                     val_every=100).train()
    items = [LabeledItem(Path(f"{i}.png"), "ab"[i // 4], f"g{i}") for i in range(8)]
    trunk = torch.randn(8, 320, 7, 7)
    conv = torch.einsum("dc,bchw->bdhw", gen.w0, trunk).flatten(2)
    bank = FeatureBank(items, trunk.half(), torch.rand(8, 1280), conv.half())
    meta_train(gen, MetaData(bank, {}, {}), tmp_path / "run", device="cpu", log_every=1, snapshot_every=2)
    assert float(gen.stage_delta.detach().abs().sum()) > 0  # the correction learned something
    assert (tmp_path / "run" / "generator_step2.safetensors").is_file()
    assert not (tmp_path / "run" / "generator_step1.safetensors").exists()
    again = load_generator(tmp_path / "run" / "generator.safetensors")
    assert again.config.stage_lr == 0.5
    assert torch.equal(again.stage_delta, gen.stage_delta.detach())


def test_text_prior_dual_ridge_equals_the_primal_solution() -> None:
    import numpy as np

    from zsmed.synth.text_prior import fit_dual_ridge

    rng = np.random.default_rng(0)
    texts, means, query = rng.normal(size=(6, 12)), rng.normal(size=(6, 5)), rng.normal(size=12)
    t_mean, keys, values = fit_dual_ridge(means, texts, lam=0.3)
    tc, pc = texts - texts.mean(0), means - means.mean(0)
    primal = np.linalg.solve(tc.T @ tc + 0.3 * np.eye(12), tc.T @ pc)
    assert np.allclose((query - t_mean) @ keys.T @ values, (query - texts.mean(0)) @ primal, atol=1e-8)
    with pytest.raises(Exception, match=">= 3 described classes"):
        fit_dual_ridge(means[:2], texts[:2], lam=0.1)


def test_text_prior_rows() -> None:
    """Image episodes: a described class's row moves by beta / K along its description's direction,
    an undescribed one does not move; text-only episodes: the rows are the directions."""
    import numpy as np

    from zsmed.synth.text_prior import with_text_prior

    torch.manual_seed(0)
    plain = _generator()
    rng = np.random.default_rng(1)
    pooled, labels = rng.random((12, 1280)), [c for c in "abcd" for _ in range(3)]
    text = {c: rng.normal(size=384).astype(np.float32) for c in "abcd"}
    prior = with_text_prior(plain, pooled, labels, text, beta=1.0)
    assert prior.config.text_prior_classes == 4 and prior.config.text_prior_beta == 1.0
    batch = _batch(e=1, n=3, k=2)
    batch.text_mask = torch.tensor([[True, False, True]])
    with torch.no_grad():
        before = class_weights(plain, plain(batch), batch)
        after = class_weights(prior, prior(batch), batch)
        directions = prior.text_directions(batch.text)
    assert torch.allclose(directions.norm(dim=-1), torch.ones(1, 3), atol=1e-5)
    assert torch.allclose(after[0, 1], before[0, 1], atol=1e-6)  # no description: unchanged
    assert torch.allclose(after[0, [0, 2]], before[0, [0, 2]] + directions[0, [0, 2]] / 2, atol=1e-5)  # beta / K
    batch.image_mask = torch.tensor([False])
    batch.text_mask = torch.tensor([[True, True, True]])
    with torch.no_grad():
        text_only = class_weights(prior, prior(batch), batch)
    assert torch.allclose(text_only, prior.text_directions(batch.text), atol=1e-6)
