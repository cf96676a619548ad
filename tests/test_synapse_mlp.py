"""The digits perceptron on synapse pairs: float baseline, device runs, determinism, refusals."""

import numpy as np
import pytest
import torch

from hilt.quant.synapse_device import LinearDevice
from hilt.quant.synapse_mlp import MLPConfig, digits_inputs, train_mlp
from hilt.quant.synapse_rules import ReadBackRule, StochasticPulseSGD, UnidirectionalRule

SMALL = MLPConfig(hidden=16, epochs=3, batch_size=16, lr=0.2)


@pytest.fixture(scope="module")
def float_run(split):
    return train_mlp(split, config=SMALL, seed=0)


def test_float_baseline_learns_the_digits(float_run):
    assert float_run.accuracy > 0.9
    assert len(float_run.curve) == len(float_run.losses) == SMALL.epochs
    assert float_run.losses[-1] < float_run.losses[0]
    assert float_run.stats.pulses == 0
    assert float_run.curve[-1] == float_run.accuracy


@pytest.mark.parametrize("rule", [StochasticPulseSGD(), UnidirectionalRule(), ReadBackRule()])
def test_a_linear_many_level_device_trains_close_to_float(split, float_run, rule):
    result = train_mlp(split, device=LinearDevice(1 / 256), rule=rule, config=SMALL, seed=0)
    assert result.accuracy > float_run.accuracy - 0.03
    assert result.stats.pulses > 0
    if not isinstance(rule, StochasticPulseSGD):
        assert result.stats.depression == 0


def test_the_forward_pass_sees_the_devices(split, float_run):
    # Two levels per device: the weights can only be 0 or ±1/2, far from what float learns.
    coarse = train_mlp(split, device=LinearDevice(1 / 2), rule=UnidirectionalRule(),
                       config=SMALL, seed=0)
    assert coarse.accuracy < float_run.accuracy - 0.1


def test_runs_are_deterministic_given_the_seed(split):
    config = MLPConfig(hidden=8, epochs=1, batch_size=32, lr=0.1)
    device = LinearDevice(1 / 64, dw_min_dtod=0.2)
    first, again, other = (
        train_mlp(split, device=device, rule=ReadBackRule(), config=config, seed=seed)
        for seed in (3, 3, 4)
    )
    assert first.curve == again.curve and first.losses == again.losses
    assert first.stats == again.stats
    assert first.losses != other.losses


def test_training_leaves_the_thread_count_and_global_rng_alone(split):
    threads = torch.get_num_threads()
    state = torch.get_rng_state()
    train_mlp(split, config=MLPConfig(hidden=4, epochs=1, batch_size=64), seed=0)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), state)


def test_inputs_are_scaled_to_the_unit_interval():
    pixels = np.array([[0] * 63 + [16], [8] * 64])
    x = digits_inputs(pixels)
    assert x.dtype == torch.float64
    assert x[0, -1] == 1.0 and x[0, 0] == 0.0 and x[1, 0] == 0.5
    with pytest.raises(ValueError, match=r"pixels must have shape \(N, 64\), got \(2, 3\)"):
        digits_inputs(np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"device": LinearDevice(1 / 64)}, ValueError, "device and rule must be given together"),
        ({"rule": ReadBackRule()}, ValueError, "device and rule must be given together"),
        ({"device": "linear", "rule": ReadBackRule()}, TypeError, "device must be a SynapseDevice"),
        ({"device": LinearDevice(1 / 64), "rule": "sgd"}, TypeError, "rule must be a SynapseRule"),
        ({"seed": -1}, ValueError, "seed must be an integer >= 0, got -1"),
        ({"config": {"epochs": 1}}, TypeError, "config must be an MLPConfig"),
    ],
)
def test_bad_training_arguments(split, kwargs, error, message):
    with pytest.raises(error, match=message):
        train_mlp(split, **kwargs)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hidden", 0, "hidden must be an integer >= 1, got 0"),
        ("epochs", 2.0, "epochs must be an integer >= 1, got 2.0"),
        ("lr", -0.1, "lr must be a finite number > 0, got -0.1"),
        ("weight_range", float("inf"), "weight_range must be a finite number > 0, got inf"),
    ],
)
def test_bad_config(field, value, message):
    with pytest.raises(ValueError, match=message):
        MLPConfig(**{field: value})
