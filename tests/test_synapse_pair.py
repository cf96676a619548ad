"""The differential synapse pair: signed weights, unidirectional updates, refresh, pulse counts."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hilt.quant.synapse_device import (
    ExponentialDevice,
    LinearDevice,
    SoftBoundsDevice,
    TableDevice,
)
from hilt.quant.synapse_pair import SynapsePair


def test_weight_is_the_scaled_difference_and_updates_are_unidirectional():
    pair = SynapsePair(LinearDevice(0.125, w_min=0.5, w_max=2.5), (2, 2))
    assert pair.scale == 2.0  # w_max - w_min by default
    assert torch.equal(pair.weight, torch.zeros(2, 2, dtype=torch.float64))
    pair.update(torch.tensor([[3, -2], [0, 16]]))
    assert pair.g_plus.tolist() == [[0.875, 0.5], [0.5, 2.5]]
    assert pair.g_minus.tolist() == [[0.5, 0.75], [0.5, 0.5]]
    assert pair.weight.tolist() == [[0.1875, -0.125], [0.0, 1.0]]
    assert pair.potentiation_pulses.tolist() == [[3, 2], [0, 16]]
    assert pair.pulses_spent() == (21, 0)


def test_pulse_moves_each_cell_both_ways_and_counts_depression():
    pair = SynapsePair(LinearDevice(0.25), (3,), scale=0.5)
    pair.pulse(plus=torch.tensor([4, 2, 0]), minus=torch.tensor([1, 0, 3]))
    pair.pulse(plus=torch.tensor([-1, 0, 0]), minus=torch.tensor([0, 0, -2]))
    assert pair.g_plus.tolist() == [0.75, 0.5, 0.0]
    assert pair.g_minus.tolist() == [0.25, 0.0, 0.25]
    assert pair.weight.tolist() == [1.0, 1.0, -0.5]
    assert pair.potentiation_pulses.tolist() == [5, 2, 3]
    assert pair.depression_pulses.tolist() == [1, 0, 2]
    assert pair.pulses_spent() == (10, 3)


def test_refresh_resets_both_cells_and_reprograms_one():
    pair = SynapsePair(LinearDevice(0.25), (3,))
    pair.update(torch.tensor([3, -1, 0]))
    pair.update(torch.tensor([-1, 2, 0]))
    pair.refresh()
    assert pair.g_plus.tolist() == [0.5, 0.25, 0.0]
    assert pair.g_minus.tolist() == [0.0, 0.0, 0.0]
    assert pair.resets.tolist() == [2, 2, 2]
    assert pair.potentiation_pulses.tolist() == [4 + 2, 3 + 1, 0]


def test_refresh_only_where_masked():
    pair = SynapsePair(LinearDevice(0.25), (2,))
    pair.update(torch.tensor([2, 3]))
    pair.update(torch.tensor([-1, -1]))
    pair.refresh(torch.tensor([True, False]))
    assert pair.g_plus.tolist() == [0.25, 0.75]
    assert pair.g_minus.tolist() == [0.0, 0.25]
    assert pair.resets.tolist() == [2, 0]


@st.composite
def devices(draw):
    kind = draw(st.sampled_from(["linear", "soft", "exp", "table"]))
    span = draw(st.floats(0.5, 4.0))
    w_min = draw(st.floats(0.0, 1.0))
    up_down = draw(st.floats(-0.5, 0.5))
    if kind == "linear":
        return LinearDevice(draw(st.floats(0.01, 0.5)) * span, w_min=w_min, w_max=w_min + span)
    if kind == "soft":
        return SoftBoundsDevice(
            draw(st.floats(0.01, 0.5)) * span, w_min=w_min, w_max=w_min + span, up_down=up_down
        )
    if kind == "exp":
        return ExponentialDevice(
            draw(st.floats(1.0, 30.0)),
            draw(st.floats(1.0, 30.0)),
            b_up=draw(st.floats(0.5, 2.0)) * span,
            w_min=w_min,
            w_max=w_min + span,
            up_down=up_down,
        )
    steps = draw(st.lists(st.floats(0.01, 1.0), min_size=1, max_size=6))
    conductance = w_min + np.concatenate([[0.0], np.cumsum(steps)])
    return TableDevice(np.arange(len(conductance)) * draw(st.integers(1, 4)), conductance)


def _largest_step(device):
    """The largest change one nominal potentiation pulse can make, along the curve from Gmin."""
    start = device.initial_state((4097,))
    curve = device.nominal_potentiate(start, torch.arange(4097))
    return curve.diff().max().item()


updates = st.lists(st.lists(st.integers(-12, 12), min_size=5, max_size=5), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(device=devices(), rounds=updates)
def test_refresh_keeps_the_weight_within_one_step(device, rounds):
    pair = SynapsePair(device, (5,), scale=2.0)
    for pulses in rounds:
        pair.update(torch.tensor(pulses))
        for g in (pair.g_plus, pair.g_minus):
            assert ((g >= device.w_min) & (g <= device.w_max)).all()
    before, spent = pair.weight.clone(), pair.pulses_spent()
    pair.refresh()
    assert ((pair.g_plus == device.w_min) | (pair.g_minus == device.w_min)).all()
    error = (pair.weight - before).abs().max().item() * pair.scale
    assert error <= _largest_step(device) + 1e-12
    assert pair.pulses_spent()[0] >= spent[0] and pair.pulses_spent()[1] == 0
    assert (pair.resets == 2).all()


@settings(max_examples=150, deadline=None)
@given(
    rounds=updates,
    exponent=st.integers(2, 6),
    levels=st.integers(8, 64),
    w_min=st.sampled_from([0.0, 0.25, 1.5]),
)
def test_refresh_of_a_linear_device_keeps_the_weight_exactly(rounds, exponent, levels, w_min):
    # A dyadic step and bounds on its grid make every state exact in float64.
    dw = 2.0**-exponent
    device = LinearDevice(dw, w_min=w_min, w_max=w_min + levels * dw)
    pair = SynapsePair(device, (5,))
    for pulses in rounds:
        pair.update(torch.tensor(pulses))
    before = pair.weight.clone()
    pair.refresh()
    assert torch.equal(pair.weight, before)


def test_refresh_draws_the_reprogramming_noise_from_the_generator():
    device = LinearDevice(0.125, w_max=4.0, dw_min_dtod=0.1, write_noise_std=0.01)

    def run(seed):
        pair = SynapsePair(device, (8,), generator=torch.Generator().manual_seed(seed))
        pair.update(torch.arange(-4, 4))
        pair.refresh()
        return pair.dtod_plus, pair.weight

    torch.manual_seed(0)
    first = run(5)
    torch.manual_seed(1)
    again = run(5)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], run(6)[1])


def test_a_pair_with_variation_needs_a_generator():
    with pytest.raises(ValueError, match=r"generator is required when dw_min_dtod > 0"):
        SynapsePair(LinearDevice(0.1, dw_min_dtod=0.1), (2,))
    pair = SynapsePair(LinearDevice(0.1, write_noise_std=0.1), (2,))
    pair.update(0)  # no pulse, no draw
    with pytest.raises(ValueError, match=r"generator is required when write_noise_std > 0"):
        pair.update(torch.tensor([1, 0]))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: SynapsePair("linear", (2,)), TypeError, r"device must be a SynapseDevice"),
        (
            lambda: SynapsePair(LinearDevice(0.1), (2,), scale=0.0),
            ValueError,
            r"scale must be a finite number > 0 \(conductance per unit weight\), got 0\.0",
        ),
        (
            lambda: SynapsePair(LinearDevice(0.1), (2,), scale=float("nan")),
            ValueError,
            r"scale must be a finite number > 0 .*got nan",
        ),
        (
            lambda: SynapsePair(LinearDevice(0.1), (2,)).update(torch.tensor([0.5, 1.0])),
            ValueError,
            r"pulses must be an integer tensor of pulse counts, got dtype torch\.float32",
        ),
        (
            lambda: SynapsePair(LinearDevice(0.1), (2,)).update(torch.tensor([1, 2, 3])),
            ValueError,
            r"pulses of shape \(3,\) do not broadcast to the weights' shape \(2,\)",
        ),
        (
            lambda: SynapsePair(LinearDevice(0.1), (2,)).pulse(minus=torch.tensor([True, False])),
            ValueError,
            r"minus must be an integer tensor of pulse counts, got dtype torch\.bool",
        ),
        (
            lambda: SynapsePair(LinearDevice(0.1), (2,)).refresh(torch.tensor([1, 0])),
            ValueError,
            r"mask must be a bool tensor, got dtype torch\.int64",
        ),
        (
            lambda: SynapsePair(LinearDevice(0.1), (2,)).refresh(torch.tensor([True] * 3)),
            ValueError,
            r"mask of shape \(3,\) does not broadcast to the weights' shape \(2,\)",
        ),
    ],
)
def test_pair_refuses_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
