"""Checkpoints: a whole state comes back; a damaged or foreign file is refused by name."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from hilt.host.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

CONFIG = {"algorithm": "ff", "seed": 3, "epochs": 2}


def test_a_state_comes_back_whole(tmp_path):
    net = torch.nn.Linear(4, 2)
    state = {"net": net.state_dict(), "step": 17, "array": np.arange(5)}
    path = save_checkpoint(tmp_path / "run" / "ckpt.pt", state, config=CONFIG)
    loaded = load_checkpoint(path, config=dict(CONFIG))
    assert loaded["step"] == 17 and np.array_equal(loaded["array"], np.arange(5))
    assert all(torch.equal(loaded["net"][k], v) for k, v in net.state_dict().items())
    assert not path.with_name("ckpt.pt.partial").exists()


def test_the_random_generators_resume_where_they_were():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    saved = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(saved)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda data: data[:len(data) // 2], "truncated or corrupted"),
    (lambda data: data[:-10] + bytes(10), "truncated or corrupted"),
    (lambda data: b"PK\x03\x04" + data[4:], "is not a hilt-checkpoint v1 file"),
])
def test_a_damaged_file_is_refused(tmp_path, damage, message):
    path = save_checkpoint(tmp_path / "ckpt.pt", {"step": 1}, config=CONFIG)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, config=CONFIG)


def test_a_foreign_or_missing_file_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pt", {"step": 1}, config=CONFIG)
    with pytest.raises(CheckpointError, match=r"another configuration \(seed: 3 saved, 4 now\)"):
        load_checkpoint(path, config={**CONFIG, "seed": 4})
    with pytest.raises(CheckpointError, match="cannot read the checkpoint"):
        load_checkpoint(tmp_path / "none.pt", config=CONFIG)


def test_a_crash_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "ckpt.pt", {"step": 1}, config=CONFIG)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2}, config=CONFIG)
    assert load_checkpoint(path, config=CONFIG)["step"] == 1
