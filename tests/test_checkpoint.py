"""Checkpoints: a whole state comes back; a damaged, foreign or tampered file is refused by
name, and nothing in it is run."""

from __future__ import annotations

import hashlib
import io
import json
import random

import numpy as np
import pytest
import torch

from hilt.host.train import checkpoint as checkpoint_module
from hilt.host.train.checkpoint import (
    CheckpointError,
    check_tensors,
    checkpoint_step,
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
    (lambda data: b"PK\x03\x04" + data[4:], "is not a checkpoint"),
    (lambda data: data.replace(b"hilt-checkpoint v3", b"hilt-checkpoint v2", 1),
     "is a checkpoint of an older hilt"),
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


def test_numpy_arrays_and_generator_states_come_back_as_they_were(tmp_path):
    rng = np.random.default_rng(7)
    np.random.seed(3)
    state = {"levels": np.arange(12, dtype=np.uint8).reshape(3, 4),
             "weights": np.linspace(-1, 1, 5), "empty": np.zeros((0, 3)),
             "generator": rng.bit_generator.state, "legacy": np.random.get_state(),
             "scalar": np.int64(5), "nested": [(np.float32(0.5), None)]}
    path = save_checkpoint(tmp_path / "ckpt.pt", state, config=CONFIG, step=9)
    loaded = load_checkpoint(path, config=CONFIG)
    for name in ("levels", "weights", "empty"):
        assert loaded[name].dtype == state[name].dtype
        assert np.array_equal(loaded[name], state[name])
    assert loaded["generator"] == state["generator"] and loaded["scalar"] == 5
    np.random.set_state(loaded["legacy"])
    again = np.random.rand()
    np.random.set_state(state["legacy"])
    assert again == np.random.rand()
    assert loaded["nested"] == [(0.5, None)]
    assert checkpoint_step(path) == 9


class _Payload:
    """What a tampered checkpoint might hold: an object whose unpickling runs a command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _forge(path, config, state):
    """A checkpoint with a valid digest around whatever ``state`` pickles to."""
    header = json.dumps({"config": config, "step": 1}).encode()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    rest = checkpoint_module._LENGTH.pack(len(header)) + header + buffer.getvalue()
    path.write_bytes(checkpoint_module._MAGIC + hashlib.sha256(rest).digest() + rest)
    return path


def test_a_tampered_checkpoint_runs_nothing_and_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = _forge(tmp_path / "ckpt.pt", CONFIG, {"net": _Payload(marker)})
    with pytest.raises(CheckpointError, match="holds something other than tensors"):
        load_checkpoint(path, config=CONFIG)
    assert not marker.exists()


def test_the_configuration_is_checked_before_the_state_is_read(tmp_path, monkeypatch):
    path = _forge(tmp_path / "ckpt.pt", {**CONFIG, "seed": 99}, {"net": _Payload("x")})

    def never(*args, **kwargs):
        raise AssertionError("the state was read before the configuration was checked")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(CheckpointError, match=r"seed: 99 saved, 3 now"):
        load_checkpoint(path, config=CONFIG)


@pytest.mark.parametrize(("saved", "message"), [
    ({"weight": torch.zeros(2, 4)}, r"lacks \['bias'\]"),
    ({"weight": torch.zeros(3, 4), "bias": torch.zeros(2)}, r"weight is \(3, 4\)"),
    ({"weight": torch.zeros(2, 4), "bias": [0, 0]}, r"bias is <class 'list'>"),
    ([1, 2], "is a list, not a mapping"),
])
def test_a_state_of_other_tensors_is_named_by_its_first_difference(saved, message):
    expected = torch.nn.Linear(4, 2).state_dict()
    with pytest.raises(CheckpointError, match=message):
        check_tensors("ckpt.pt", "network", expected, saved)
