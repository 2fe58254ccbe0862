from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _data(shared_data: Path, feature_cache, image_encoder, per_class: int = 10):  # type: ignore[no-untyped-def]
    from zsmed.synth.data import default_base_sources, load_base_bank
    from zsmed.synth.train import MetaData

    sources = [s for s in default_base_sources(shared_data) if s.domain == "ham10000"]
    bank, domains = load_base_bank(sources, image_encoder, feature_cache, max_per_class=per_class)
    assert not {"akiec", "df", "vasc"} & set(bank.classes)
    return MetaData(bank, domains, {})


def test_tiny_meta_training_end_to_end_and_resume(tmp_path: Path, shared_data: Path, feature_cache,  # type: ignore[no-untyped-def]
                                                   image_encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from zsmed.fewshot.bank import lite_backbone
    from zsmed.synth.checkpoint import load_generator, new_generator
    from zsmed.synth.config import SGPSConfig
    from zsmed.synth.train import meta_train

    data = _data(shared_data, feature_cache, image_encoder)
    config = SGPSConfig(encoder_sha256=image_encoder.spec.weights_sha256, d_model=64, n_layers=1, ff_dim=64,
                        steps=6, batch_episodes=2, queries=3, shots=(1, 2), warmup_steps=2, val_every=3,
                        val_episodes=2)
    gen = new_generator(config, lite_backbone(image_encoder))
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    meta_train(gen, data, tmp_path / "run", val=data, device="cpu", log_every=1)
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert any("val_acc_2w1s" in r for r in log)
    assert any(not torch.equal(before[k], v) for k, v in gen.state_dict().items())
    loaded = load_generator(tmp_path / "run" / "generator.safetensors", encoder=image_encoder)
    assert loaded.config == config
    # Resume: a longer run with the same out dir continues from step 6 (needs the same config).
    from zsmed.errors import CheckpointError

    with pytest.raises(CheckpointError, match="another config"):
        meta_train(new_generator(config.with_changes(steps=8), lite_backbone(image_encoder)), data,
                   tmp_path / "run", device="cpu")
    # The state a caller already read (train_sgps.py checks it before writing its data list) is
    # used as is: state.pt is not read a second time, and the resumed weights are the saved ones.
    import zsmed.synth.checkpoint as checkpoint_module
    from zsmed.synth.train import check_resumable

    state = check_resumable(tmp_path / "run", config)
    assert state is not None and int(state["step"]) == 6
    reads: list[object] = []
    monkeypatch.setattr(checkpoint_module, "load_training_state", lambda *a, **k: reads.append(a))
    resumed = new_generator(config, lite_backbone(image_encoder))
    meta_train(resumed, data, tmp_path / "run", device="cpu", resume_state=state)
    assert not reads
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in gen.state_dict().items())
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5, 6]  # nothing left to train
    with pytest.raises(CheckpointError, match="another config"):
        meta_train(new_generator(config.with_changes(steps=8), lite_backbone(image_encoder)), data,
                   tmp_path / "run", device="cpu", resume_state=state)


@pytest.mark.slow
def test_ddp_two_gloo_processes(tmp_path: Path, shared_data: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(REPO / "scripts" / "train_sgps.py"), "--data-root", str(shared_data), "--sets", "ham10000",
           "--max-per-class", "10", "--out", str(tmp_path / "ddp"), "--steps", "3", "--batch-episodes", "2",
           "--val-fraction", "0", "--threads", "1", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "ddp" / "generator.safetensors").is_file()
    log = [json.loads(line) for line in (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3


def test_heldout_pair_validation_never_shows_a_training_class(shared_data: Path, feature_cache,  # type: ignore[no-untyped-def]
                                                              image_encoder) -> None:
    from zsmed.fewshot.bank import lite_backbone
    from zsmed.synth.checkpoint import new_generator
    from zsmed.synth.config import SGPSConfig
    from zsmed.synth.train import class_holdout_validator, held_out_class_episodes

    data = _data(shared_data, feature_cache, image_encoder)
    held = ["bkl", "bcc"]
    mixed = held_out_class_episodes(data, held, shots=1, queries=3, episodes=40, seed=0)
    assert any({"nv", "mel"} & set(ep.classes) for ep in mixed)  # the old protocol pairs with training classes
    pairs = held_out_class_episodes(data, held, shots=1, queries=3, episodes=40, seed=0, heldout_pairs=True)
    assert all(set(ep.classes) == set(held) for ep in pairs)
    config = SGPSConfig(encoder_sha256=image_encoder.spec.weights_sha256, d_model=64, n_layers=1, ff_dim=64)
    gen = new_generator(config, lite_backbone(image_encoder))
    record = class_holdout_validator(data, held, episodes=3, queries=3, heldout_pairs=True)(gen)
    margin = sum(record[f"val_acc_2w{k}s"] - record[f"val_proto_2w{k}s"] for k in (1, 5)) / 2
    assert abs(record["val_score"] - margin) < 1e-9


def test_a_run_folder_of_another_config_is_refused_before_anything_is_written(  # type: ignore[no-untyped-def]
        tmp_path: Path, shared_data: Path, shared_cache: Path) -> None:
    """Reusing a run folder with other settings stops with one line and leaves that run's data list
    (the record of what it was trained on) as it was."""
    env = dict(os.environ, OMP_NUM_THREADS="1", ZSMED_CACHE_DIR=str(shared_cache))
    base = [sys.executable, str(REPO / "scripts" / "train_sgps.py"), "--data-root", str(shared_data), "--sets",
            "ham10000", "--max-per-class", "30", "--out", str(tmp_path / "run"), "--steps", "2", "--batch-episodes",
            "2", "--val-fraction", "0.3", "--threads", "1", "--device", "cpu"]  # the split depends on the seed
    first = subprocess.run(base, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    data_list = (tmp_path / "run" / "data_list.csv").read_bytes()
    other = subprocess.run([*base, "--seed", "1"], env=env, capture_output=True, text=True, timeout=600)
    assert other.returncode == 1
    assert other.stderr.strip().splitlines() == [
        f"train_sgps: {tmp_path / 'run' / 'state.pt'}: the saved training state was made with another config; "
        "use a new out_dir"]
    assert (tmp_path / "run" / "data_list.csv").read_bytes() == data_list


def test_split_seed_keeps_one_validation_split_across_seeds(  # type: ignore[no-untyped-def]
        tmp_path: Path, shared_data: Path, shared_cache: Path) -> None:
    """Generators of several seeds meant to be compared (or ensembled) on one split's validation images: --split-seed
    fixes the split whatever --seed is; without it the split follows --seed."""
    env = dict(os.environ, OMP_NUM_THREADS="1", ZSMED_CACHE_DIR=str(shared_cache))

    def data_list(name: str, *extra: str) -> list[list[str]]:
        cmd = [sys.executable, str(REPO / "scripts" / "train_sgps.py"), "--data-root", str(shared_data), "--sets",
               "ham10000", "--max-per-class", "30", "--out", str(tmp_path / name), "--steps", "1", "--batch-episodes",
               "2", "--val-fraction", "0.3", "--val-every", "0", "--threads", "1", "--device", "cpu", *extra]
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        with (tmp_path / name / "data_list.csv").open(newline="") as handle:
            return sorted(csv.reader(handle))

    seed0 = data_list("seed0")
    assert any(row[0] == "val" for row in seed0)
    assert data_list("seed1_split0", "--seed", "1", "--split-seed", "0") == seed0
    assert data_list("seed1", "--seed", "1") != seed0
