"""Episodic meta-training of the SGPS generator on cached frozen features.

Every backbone output is computed once (``zsmed.fewshot.bank``); an episode is then a few
milliseconds of transformer + last-stage work, so a CPU run is practical and a GPU run is fast.
CUDA runs use autocast (bf16 where supported, else fp16 with a grad scaler). Several GPUs (or CPU
processes) through ``torchrun``: DistributedDataParallel, NCCL on GPUs, gloo on CPUs; each rank
draws its own episodes (seed + rank), rank 0 logs, validates and saves.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zsmed.errors import CheckpointError, DatasetError
from zsmed.fewshot.bank import FeatureBank
from zsmed.fewshot.sampler import Episode, EpisodeSampler
from zsmed.synth.config import SGPSConfig
from zsmed.synth.generator import EpisodeBatch, HybridParams, SGPSGenerator, class_weights, episode_logits


@dataclass
class MetaData:
    """Base-class features, each label's domain and description embedding."""

    bank: FeatureBank
    domains: dict[str, str]
    text: dict[str, np.ndarray]  # label -> (T,) description embedding; absent = no description


def split_by_group(bank: FeatureBank, fraction: float, seed: int, labels: Sequence[str] | None = None
                   ) -> tuple[list[int], list[int]]:
    """Hold out ``fraction`` of the groups of the given labels (all labels by default) for validation."""
    rng = np.random.default_rng(seed)
    chosen = set(labels) if labels is not None else set(bank.labels)
    groups = sorted({(it.label, it.group) for it in bank.items if it.label in chosen})
    held = {g for g in groups if rng.random() < fraction}
    train = [i for i, it in enumerate(bank.items) if (it.label, it.group) not in held]
    val = [i for i, it in enumerate(bank.items) if (it.label, it.group) in held]
    return train, val


def make_batch(data: MetaData, episodes: Sequence[Episode], device: torch.device, *, text_dropout: float = 0.0,
               image_dropout: float = 0.0, use_text: bool = True, use_images: bool = True,
               rng: random.Random | None = None, need_conv: bool = True) -> tuple[EpisodeBatch, torch.Tensor]:
    """Tensors for E same-shape episodes: the batch and the query labels (E, M)."""
    rng = rng or random.Random(0)
    bank = data.bank
    sup = torch.as_tensor(np.stack([ep.support for ep in episodes]))  # (E, N, K)
    qry = torch.as_tensor(np.stack([ep.query for ep in episodes]))  # (E, M)
    labels = torch.as_tensor(np.stack([ep.query_labels for ep in episodes]))
    text_dim = next(iter(data.text.values())).shape[0] if data.text else 384
    text = torch.zeros(len(episodes), episodes[0].ways, text_dim)
    text_mask = torch.zeros(len(episodes), episodes[0].ways, dtype=torch.bool)
    image_mask = torch.ones(len(episodes), dtype=torch.bool)
    for e, ep in enumerate(episodes):
        for n, label in enumerate(ep.classes):
            if use_text and label in data.text and rng.random() >= text_dropout:
                text[e, n] = torch.as_tensor(data.text[label])
                text_mask[e, n] = True
        # A text-only episode only makes sense when every class has its description.
        image_mask[e] = use_images and not (bool(text_mask[e].all()) and rng.random() < image_dropout)
    batch = EpisodeBatch(
        support_pooled=bank.pooled[sup].to(device),
        support_trunk=bank.trunk[sup].to(device).float(),
        support_conv=bank.conv[sup].to(device).float() if need_conv else torch.zeros(0),
        text=text.to(device),
        text_mask=text_mask.to(device),
        image_mask=image_mask.to(device),
        query_trunk=bank.trunk[qry].to(device).float(),
        query_conv=bank.conv[qry].to(device).float() if need_conv else torch.zeros(0),
    )
    return batch, labels.to(device)


def episodes_logits(generator: SGPSGenerator, batch: EpisodeBatch, slots: torch.Tensor | None = None
                    ) -> torch.Tensor:
    params = generator(batch, slots)
    rows = class_weights(generator, params, batch)
    return episode_logits(generator, params, rows, batch)


class _EpisodeStep(torch.nn.Module):
    """Generator + generated classifier + penalty in one ``forward``: DDP must see every use of
    the parameters (the logit scale, the frozen stage buffers) inside the wrapped forward."""

    def __init__(self, generator: SGPSGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, batch: EpisodeBatch, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        generator = self.generator
        config = generator.config
        params = generator(batch, slots)
        rows = class_weights(generator, params, batch)
        logits = episode_logits(generator, params, rows, batch)
        penalty = logits.new_zeros(())
        if config.adapt_l2 > 0 and isinstance(params, HybridParams):
            base_scale, base_shift = generator.base_affine(params.scale.shape[0])
            penalty = ((params.scale - base_scale) / base_scale.abs().clamp_min(1e-3)).pow(2).mean()
            penalty = penalty + (params.shift - base_shift).pow(2).mean()
            penalty = penalty + params.u.float().pow(2).sum(dim=(1, 2)).mean()
            penalty = penalty + params.head_residual.pow(2).sum(-1).mean()
        return logits, penalty


class _Sampling:
    """Episode samplers per (ways, shots), built lazily; query lists padded to a fixed length."""

    def __init__(self, data: MetaData, config: SGPSConfig, seed: int) -> None:
        self.data, self.config = data, config
        self.seed = seed
        self.samplers: dict[tuple[int, int], EpisodeSampler] = {}
        self.np_rng = np.random.default_rng(seed + 7919)
        counts: dict[str, int] = {}
        for label in data.bank.labels:
            counts[label] = counts.get(label, 0) + 1
        self.counts = counts
        self.classes = sorted(label for label, c in counts.items() if c >= min(config.shots) + 2)

    def sampler(self, ways: int, shots: int) -> EpisodeSampler:
        key = (ways, shots)
        if key not in self.samplers:
            self.samplers[key] = EpisodeSampler(
                self.data.bank.labels, [it.group for it in self.data.bank.items], ways=ways, shots=shots,
                queries=self.config.queries, seed=self.seed * 1000 + ways * 10 + shots,
                classes=[c for c in self.classes if self.counts[c] >= shots + 2],
                domains=self.data.domains, uniform_domains=self.config.uniform_domains,
            )
        return self.samplers[key]

    def feasible(self, ways: int, shots: int) -> bool:
        """Whether some domain has ``ways`` classes with enough images for ``shots``."""
        try:
            self.sampler(ways, shots)
        except DatasetError:
            return False
        return True

    def draw(self, ways: int, shots: int, n: int) -> list[Episode]:
        out = []
        q = self.config.queries
        for ep in self.sampler(ways, shots).episodes(n):
            # Fixed query count per class (with replacement where a small class runs short).
            query, labels = [], []
            support = ep.support
            if self.config.imbalance > 0 and self.np_rng.random() < self.config.imbalance:
                # Imbalanced support: class n keeps k_n of its K images, cycled back to K.
                support = np.stack([np.resize(row[: int(self.np_rng.integers(1, shots + 1))], shots)
                                    for row in support])
            for c in range(ways):
                idx = ep.query[ep.query_labels == c]
                if len(idx) < q:
                    idx = self.np_rng.choice(idx, size=q, replace=True)
                query.append(idx[:q])
                labels.append(np.full(q, c))
            out.append(Episode(ep.classes, support, np.concatenate(query), np.concatenate(labels)))
        return out


def evaluate_generator(generator: SGPSGenerator, data: MetaData, *, ways: int, shots: int, episodes: int,
                       queries: int, seed: int, device: torch.device, use_text: bool = True,
                       use_images: bool = True) -> float:
    """Mean query accuracy on fresh episodes (validation during training)."""
    sampler = EpisodeSampler(data.bank.labels, [it.group for it in data.bank.items], ways=ways, shots=shots,
                             queries=queries, seed=seed, domains=data.domains,
                             classes=[c for c in data.bank.classes if len(data.bank.indices_of(c)) > shots + 1])
    generator.eval()
    accs = []
    with torch.no_grad():
        for ep in sampler.episodes(episodes):
            batch, y = make_batch(data, [ep], device, use_text=use_text, use_images=use_images,
                                  need_conv=generator.config.target == "hybrid")
            logits = episodes_logits(generator, batch)
            accs.append(float((logits.argmax(-1) == y).float().mean()))
    return float(np.mean(accs))


def held_out_class_episodes(data: MetaData, held: Sequence[str], *, shots: int, queries: int, episodes: int,
                            seed: int, heldout_pairs: bool = False) -> list[Episode]:
    """2-way validation episodes that each pit a held-out base class (never meta-trained on)
    against another class of its domain (held out too, or held-out groups of a training class).
    With ``heldout_pairs`` both classes of every episode are held out (no class the generator
    was meta-trained on ever appears)."""
    bank = data.bank
    groups = [it.group for it in bank.items]
    rng = np.random.default_rng(seed)
    usable = [c for c in bank.classes if len(bank.indices_of(c)) >= shots + 2
              and len({groups[i] for i in bank.indices_of(c)}) >= 2]
    others = [c for c in usable if c in held] if heldout_pairs else usable
    pairs = [(h, o) for h in held if h in usable for o in others
             if o != h and data.domains.get(o) == data.domains.get(h)]
    if heldout_pairs:
        pairs = [(h, o) for h, o in pairs if h < o]
    if not pairs:
        raise DatasetError("no validation pair: each held-out class needs another class of its domain")
    samplers: dict[tuple[str, str], EpisodeSampler] = {}
    out = []
    for _ in range(episodes):
        pair = pairs[int(rng.integers(len(pairs)))]
        if pair not in samplers:
            samplers[pair] = EpisodeSampler(bank.labels, groups, ways=2, shots=shots, queries=queries,
                                            seed=seed * 7 + len(samplers), classes=list(pair))
        out.append(samplers[pair].sample())
    return out


def class_holdout_validator(data: MetaData, held: Sequence[str], *, episodes: int, queries: int = 10,
                            seed: int = 12345, shots: Sequence[int] = (1, 5), heldout_pairs: bool = False
                            ) -> Callable[[SGPSGenerator], dict[str, float]]:
    """A validation function for ``meta_train``: accuracy of the generator (as it synthesises, i.e.
    with its inference ablations) and of ProtoNet on the same fixed held-out-class episodes.
    ``val_score`` is the mean generator accuracy, or with ``heldout_pairs`` (episodes among held-out
    classes only) the mean margin over ProtoNet (generator minus ProtoNet accuracy)."""
    fixed = {k: held_out_class_episodes(data, held, shots=k, queries=queries, episodes=episodes, seed=seed + k,
                                        heldout_pairs=heldout_pairs)
             for k in shots}

    def validate(generator: SGPSGenerator) -> dict[str, float]:
        was_training = generator.training
        generator.eval()
        record: dict[str, float] = {}
        device = next(generator.parameters()).device
        feats = F.normalize(data.bank.pooled.float(), dim=-1)
        with torch.no_grad():
            for k, eps in fixed.items():
                acc, proto = [], []
                for ep in eps:
                    batch, y = make_batch(data, [ep], device, need_conv=generator.config.target == "hybrid")
                    acc.append(float((episodes_logits(generator, batch).argmax(-1) == y).float().mean()))
                    protos = F.normalize(feats[torch.as_tensor(ep.support)].mean(dim=1), dim=-1)
                    pred = (feats[torch.as_tensor(ep.query)] @ protos.t()).argmax(-1).numpy()
                    proto.append(float((pred == ep.query_labels).mean()))
                record[f"val_acc_2w{k}s"] = float(np.mean(acc))
                record[f"val_proto_2w{k}s"] = float(np.mean(proto))
        if heldout_pairs:
            record["val_score"] = float(np.mean([record[f"val_acc_2w{k}s"] - record[f"val_proto_2w{k}s"]
                                                 for k in fixed]))
        else:
            record["val_score"] = float(np.mean([record[f"val_acc_2w{k}s"] for k in fixed]))
        generator.train(was_training)
        return record

    return validate


def check_resumable(out_dir: str | Path, config: SGPSConfig, device: torch.device | str = "cpu"
                    ) -> dict[str, Any] | None:
    """The training state saved in ``out_dir`` (None when there is none), refused when it was made
    with another config: a run folder is resumed, never mixed with another run. Call it before
    writing anything into a run folder."""
    from zsmed.synth.checkpoint import load_training_state

    state_path = Path(out_dir) / "state.pt"
    if not state_path.is_file():
        return None
    state = load_training_state(state_path, torch.device(device))  # weights_only: a crafted state.pt runs no code
    _check_same_config(state, config, state_path)
    return state


def _check_same_config(state: Mapping[str, Any], config: SGPSConfig, state_path: Path) -> None:
    """Refuse a training state saved with another config than ``config``."""
    if SGPSConfig.from_dict(state.get("config") or {}) != config:
        raise CheckpointError("the saved training state was made with another config; use a new out_dir",
                              path=state_path)


def _lr_at(step: int, config: SGPSConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def meta_train(
    generator: SGPSGenerator,
    train: MetaData,
    out_dir: str | Path,
    *,
    val: MetaData | None = None,
    resume: bool = True,
    device: str | None = None,
    log_every: int = 10,
    info: Mapping[str, Any] | None = None,
    validate: Callable[[SGPSGenerator], dict[str, float]] | None = None,
    snapshot_every: int = 0,
    resume_state: Mapping[str, Any] | None = None,
) -> SGPSGenerator:
    """Meta-train in place. Writes ``state.pt`` (resumable), ``train_log.jsonl`` and the final
    generator (``generator.safetensors`` + ``.json``) under ``out_dir``. With ``validate`` (e.g.
    ``class_holdout_validator``), it replaces the base-lesion validation, and the generator with the
    best ``val_score`` so far is also saved as ``generator_best``. ``snapshot_every`` > 0 also saves
    ``generator_step<N>`` every that many steps: a step count chosen on held-out classes in one run
    is then taken at the same point of the same schedule in the run on every class. ``resume_state``
    is what ``check_resumable`` already returned for ``out_dir`` (state.pt is then not read again)."""
    from zsmed.synth.checkpoint import save_generator, save_training_state

    config = generator.config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world, rank, local = _dist_info()
    use_cuda = torch.cuda.is_available() and device != "cpu"
    dev = torch.device(f"cuda:{local}" if use_cuda else (device or "cpu"))
    distributed = world > 1
    if distributed and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(dev)
    torch.manual_seed(config.seed + rank)
    random.seed(config.seed + rank)
    generator.to(dev)
    model: torch.nn.Module = _EpisodeStep(generator)
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        # find_unused_parameters: ablations switch generated parts off, leaving parameters idle.
        model = DistributedDataParallel(model, device_ids=[local] if use_cuda else None,
                                        find_unused_parameters=True)
    stage_names = ("stage_delta", "stage_scale", "stage_shift")
    base_params = [p for n, p in generator.named_parameters() if p.requires_grad and n == "chunk_base"]
    stage_params = [p for n, p in generator.named_parameters() if p.requires_grad and n in stage_names]
    other_params = [p for n, p in generator.named_parameters()
                    if p.requires_grad and n != "chunk_base" and n not in stage_names]
    groups: list[dict[str, Any]] = [{"params": other_params, "lr_mult": 1.0}]
    if base_params:
        groups.append({"params": base_params, "lr_mult": config.compact_base_lr})
    if stage_params:
        groups.append({"params": stage_params, "lr_mult": config.stage_lr})
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    amp_dtype = torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_cuda and amp_dtype == torch.float16)
    state_path = out / "state.pt"
    log_path = out / "train_log.jsonl"
    step = 0
    state: Mapping[str, Any] | None = None
    if resume:
        # Loaded on the CPU: torch.set_rng_state below takes a CPU tensor even when training on a GPU.
        if resume_state is None:
            state = check_resumable(out, config)
        else:
            _check_same_config(resume_state, config, state_path)
            state = resume_state
    if state is not None:
        generator.load_state_dict(state["generator"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        random.setstate(state["py_rng"])
        torch.set_rng_state(state["torch_rng"])
    sampling = _Sampling(train, config, seed=config.seed + rank + 104729 * step)
    py_rng = random.Random(config.seed * 31 + rank + step)
    if not sampling.classes:
        raise DatasetError("no base class has enough images for meta-training")
    t0 = time.time()
    window: list[float] = []
    while step < config.steps:
        model.train()
        ways = py_rng.choice([w for w in config.ways if w <= config.max_ways])
        shots = py_rng.choice(config.shots)
        while not sampling.feasible(ways, shots):  # e.g. 5 ways where no domain has 5 such classes
            ways, shots = max(2, ways - 1), shots if ways > 2 else max(1, shots // 2)
        episodes = sampling.draw(ways, shots, config.batch_episodes)
        batch, y = make_batch(train, episodes, dev, text_dropout=config.text_dropout,
                              image_dropout=config.image_dropout, rng=py_rng, need_conv=config.target == "hybrid")
        slots = torch.stack([torch.randperm(config.max_ways)[:ways] for _ in episodes]).to(dev)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, config) * float(group.get("lr_mult", 1.0))
        with torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=use_cuda):
            logits, penalty = model(batch, slots)
        loss = F.cross_entropy(logits.float().reshape(-1, ways), y.reshape(-1),
                               label_smoothing=config.label_smoothing) + config.adapt_l2 * penalty.float()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(generator.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        step += 1
        window.append(float(loss.detach()))
        record: dict[str, Any] | None = None
        if rank == 0 and (step % log_every == 0 or step == config.steps):
            acc = float((logits.argmax(-1) == y).float().mean())
            record = {"step": step, "loss": float(np.mean(window)), "train_acc": acc, "lr": _lr_at(step - 1, config),
                      "ways": ways, "shots": shots, "elapsed_s": round(time.time() - t0, 1)}
            window = []
        # every val_every steps and at the end (val_every 0: only at the end), where the state is saved too
        checkpoint_step = step == config.steps or (config.val_every > 0 and step % config.val_every == 0)
        if rank == 0 and validate is not None and checkpoint_step:
            record = record or {"step": step}
            record.update(validate(generator))
            best_path = out / "generator_best.safetensors"
            best_so_far = json.loads(best_path.with_suffix(".json").read_text())["info"].get("val_score", -1.0) \
                if best_path.with_suffix(".json").is_file() else -1.0
            if record["val_score"] > best_so_far:
                save_generator(generator, best_path, {**dict(info or {}), "steps_completed": step,
                                                      **{k: v for k, v in record.items() if k.startswith("val_")}})
        elif rank == 0 and val is not None and checkpoint_step:
            record = record or {"step": step}
            for k in (1, 5):
                record[f"val_acc_2w{k}s"] = evaluate_generator(
                    generator, val, ways=2, shots=k, episodes=config.val_episodes, queries=10, seed=12345 + k,
                    device=dev)
        if rank == 0 and snapshot_every > 0 and step % snapshot_every == 0:
            save_generator(generator, out / f"generator_step{step}.safetensors",
                           {**dict(info or {}), "steps_completed": step})
        if record is not None:
            with log_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        if rank == 0 and checkpoint_step:
            save_training_state(state_path, {"generator": generator.state_dict(), "optimizer": opt.state_dict(),
                                             "step": step, "config": config.to_dict(), "py_rng": random.getstate(),
                                             "torch_rng": torch.get_rng_state()})
    if rank == 0:
        generator.to("cpu")
        save_generator(generator.eval(), out / "generator.safetensors", dict(info or {}))
    if distributed:
        torch.distributed.barrier()
    return generator.eval()
