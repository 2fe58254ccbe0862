"""A training run folder's ``state.pt`` (resume) is loaded with ``weights_only=True``: a crafted one
runs no code; a genuine one (tensors, optimizer state, RNG states, config) round-trips."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


class _Payload:
    """What an attacker pickles: unpickling calls ``open(marker, "w")`` (any callable would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_a_crafted_state_runs_no_code(tmp_path: Path) -> None:
    from zsmed.errors import CheckpointError
    from zsmed.synth.checkpoint import load_training_state

    marker = tmp_path / "code_ran"
    state = tmp_path / "state.pt"
    torch.save({"generator": {}, "step": 3, "payload": _Payload(marker)}, state)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="holds more than tensors and plain data"):
        load_training_state(state)
    assert not marker.exists()


def test_a_genuine_state_round_trips(tmp_path: Path) -> None:
    from zsmed.synth.checkpoint import load_training_state, save_training_state
    from zsmed.synth.config import SGPSConfig

    model = torch.nn.Linear(4, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 4)).sum().backward()
    opt.step()
    random.seed(5)
    config = SGPSConfig()
    path = tmp_path / "state.pt"
    save_training_state(path, {"generator": model.state_dict(), "optimizer": opt.state_dict(), "step": 7,
                               "config": config.to_dict(), "py_rng": random.getstate(),
                               "torch_rng": torch.get_rng_state()})
    loaded = load_training_state(path)
    assert loaded["step"] == 7 and SGPSConfig.from_dict(loaded["config"]) == config
    fresh = torch.nn.Linear(4, 2)
    fresh.load_state_dict(loaded["generator"])
    assert torch.equal(fresh.weight, model.weight)
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    opt2.load_state_dict(loaded["optimizer"])
    expected = random.random()
    random.setstate(loaded["py_rng"])
    assert random.random() == expected
    torch.set_rng_state(loaded["torch_rng"])
