"""The integer synapse model: LFSR, step tables, one pulse, and the crossbar's read and update."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hilt.quant.lfsr import LFSR_TAPS, lfsr_advance, lfsr_seed
from hilt.quant.synapse_device import LinearDevice, SoftBoundsDevice
from hilt.quant.synapse_golden import (
    StepTables,
    SynapseCrossbarModel,
    next_state,
    noise_from_lfsr,
    step_tables_from_device,
)


@pytest.mark.parametrize("width", [8, 12])
def test_lfsr_has_maximal_period(width):
    start = lfsr_seed(3, 0, width)
    state, seen = start, set()
    for _ in range((1 << width) - 1):
        seen.add(state)
        state = lfsr_advance(state, width, 1)
    assert state == start
    assert len(seen) == (1 << width) - 1


@pytest.mark.parametrize("width", sorted(LFSR_TAPS))
def test_lfsr_advance_composes_and_seeds_differ(width):
    state = lfsr_seed(0, 5, width)
    assert lfsr_advance(lfsr_advance(state, width, 3), width, 4) == lfsr_advance(state, width, 7)
    seeds = [lfsr_seed(7, index, width) for index in range(64)]
    assert all(0 < seed < (1 << width) for seed in seeds)
    assert len(set(seeds)) > 48


def test_lfsr_bad_input():
    with pytest.raises(ValueError, match="lfsr_bits must be one of"):
        lfsr_advance(1, 10, 1)
    with pytest.raises(ValueError, match="never holds 0"):
        lfsr_advance(0, 8, 1)
    with pytest.raises(ValueError, match="seed and index must be >= 0"):
        lfsr_seed(-1, 0, 8)


def test_step_tables_refuse_entries_beyond_the_state_width():
    with pytest.raises(ValueError, match=r"up\[2\] = 8 does not fit state_bits=3"):
        StepTables(3, (1, 1, 8, 1, 1, 1, 1, 0), (0,) + (1,) * 7)
    with pytest.raises(ValueError, match="down table must have one entry per level, 2\\*\\*state"):
        StepTables(2, (1, 1, 1, 0), (0, 1, 1))
    with pytest.raises(ValueError, match=r"down\[0\] = -1 does not fit"):
        StepTables(2, (1, 1, 1, 0), (-1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"state_bits must be 2\.\.12"):
        StepTables(13, (), ())


def test_linear_device_quantises_to_unit_steps():
    tables = step_tables_from_device(LinearDevice(dw_min=1 / 15), 4)
    assert tables.up == (1,) * 15 + (0,)
    assert tables.down == (0,) + (1,) * 15


def test_soft_bounds_steps_shrink_towards_the_bound_ahead():
    tables = step_tables_from_device(SoftBoundsDevice(dw_min=0.2, write_noise_std=0.01), 5)
    assert list(tables.up) == sorted(tables.up, reverse=True)
    assert list(tables.down) == sorted(tables.down)
    assert tables.up[0] == round(0.2 * 31)
    assert tables.down[31] == round(0.2 * 31)


def test_asymmetric_device_keeps_its_up_down_ratio():
    tables = step_tables_from_device(LinearDevice(dw_min=2 / 63, up_down=0.5), 6)
    assert tables.up[10] == 3 and tables.down[10] == 1


def test_next_state_saturates_and_adds_noise():
    tables = StepTables(2, (2, 2, 1, 0), (0, 1, 2, 3))
    got = next_state([0, 2, 3, 1, 1], [False, False, True, True, False], [0, 0, 0, -1, 1], tables)
    assert got.tolist() == [2, 3, 0, 0, 3]
    with pytest.raises(ValueError, match=r"states must be levels in 0\.\.3"):
        next_state([4], [False], [0], tables)


def test_noise_is_the_difference_of_two_fields():
    assert noise_from_lfsr(0b1101, 2).tolist() == 1 - 3
    draws = noise_from_lfsr(np.arange(1, 256), 2)
    assert draws.min() == -3 and draws.max() == 3
    assert abs(draws.mean()) < 0.05


def _model(rows=3, cols=4, *, noise_bits=0, seed=1, max_pulses=7):
    tables = step_tables_from_device(SoftBoundsDevice(dw_min=0.25), 4)
    return SynapseCrossbarModel(rows, cols, tables, in_bits=5, max_pulses=max_pulses,
                                noise_bits=noise_bits, seed=seed)


def test_read_is_the_differential_matrix_product():
    model = _model()
    rng = np.random.default_rng(0)
    for row in range(3):
        model.program_row(row, rng.integers(0, 16, 4), rng.integers(0, 16, 4))
    x = np.array([-16, 15, 3, -1])
    expected = [sum((model.g_plus[i, j] - model.g_minus[i, j]) * x[j] for j in range(4))
                for i in range(3)]
    assert model.read(x).tolist() == expected
    assert model.acc_width == (15 * 16 * 4).bit_length() + 1


def test_update_is_an_outer_product_of_the_trains():
    model = _model()
    model.update([[1, 0, -1]], [[1, -1, 0, 1]], unidirectional=False)
    up0 = model.tables.up[0]
    assert model.g_plus.tolist() == [[up0, 0, 0, up0], [0] * 4, [0, up0, 0, 0]]
    assert model.potentiation_pulses.tolist() == [[1, 0, 0, 1], [0] * 4, [0, 1, 0, 0]]
    assert model.depression_pulses.tolist() == [[0, 1, 0, 0], [0] * 4, [1, 0, 0, 1]]


def test_unidirectional_only_potentiates():
    model = _model(rows=2, cols=2)
    model.update([[1, -1]] * 3, [[1, 1]] * 3, unidirectional=True)
    assert (model.g_plus[0] > 0).all() and (model.g_minus[0] == 0).all()
    assert (model.g_minus[1] > 0).all() and (model.g_plus[1] == 0).all()
    assert model.depression_pulses.sum() == 0
    assert model.potentiation_pulses.tolist() == [[3, 3], [3, 3]]


def test_noise_lfsr_advances_only_for_pulsed_pairs():
    model = _model(rows=2, cols=2, noise_bits=1, seed=9)
    before = model.lfsr.copy()
    model.update([[1, 0]], [[0, 1]], unidirectional=True)
    assert model.lfsr[0, 1] == lfsr_advance(int(before[0, 1]), 16, 2)
    others = [(0, 0), (1, 0), (1, 1)]
    assert all(model.lfsr[index] == before[index] for index in others)
    noise = int(noise_from_lfsr(model.lfsr[0, 1], 1))
    assert model.g_plus[0, 1] == max(0, model.tables.up[0] + noise)


def test_update_refuses_more_slots_than_max_pulses():
    model = _model(max_pulses=2)
    with pytest.raises(ValueError, match="3 slots exceeds max_pulses=2"):
        model.update(np.ones((3, 3), int), np.ones((3, 4), int), unidirectional=True)
    with pytest.raises(ValueError, match="row_trains must hold -1, 0 or \\+1"):
        model.update([[2, 0, 0]], [[1, 1, 1, 1]], unidirectional=True)
    assert model.g_plus.sum() == 0


def test_crossbar_bad_parameters():
    tables = StepTables(2, (1, 1, 1, 0), (0, 1, 1, 1))
    with pytest.raises(ValueError, match=r"noise_bits must be 0\.\.2"):
        SynapseCrossbarModel(2, 2, tables, in_bits=4, max_pulses=3, noise_bits=3)
    with pytest.raises(ValueError, match="lfsr_bits must be one of"):
        SynapseCrossbarModel(2, 2, tables, in_bits=4, max_pulses=3, lfsr_bits=10)
    with pytest.raises(ValueError, match="max_pulses must be at least 1"):
        SynapseCrossbarModel(2, 2, tables, in_bits=4, max_pulses=0)
    model = SynapseCrossbarModel(2, 2, tables, in_bits=4, max_pulses=3)
    with pytest.raises(ValueError, match=r"x must hold signed in_bits=4 values in -8\.\.7"):
        model.read([8, 0])
    with pytest.raises(ValueError, match=r"plus must hold levels in 0\.\.3"):
        model.program_row(0, [4, 0], [0, 0])
    with pytest.raises(ValueError, match=r"row must be 0\.\.1"):
        model.row_state(2)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans(), st.integers(0, 2))
def test_states_stay_levels_under_any_pulse_train(seed, unidirectional, noise_bits):
    model = _model(rows=2, cols=3, noise_bits=noise_bits, seed=seed % 1000)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        slots = rng.integers(1, 8)
        model.update(rng.integers(-1, 2, (slots, 2)), rng.integers(-1, 2, (slots, 3)),
                     unidirectional=unidirectional)
    for states in (model.g_plus, model.g_minus):
        assert states.min() >= 0 and states.max() <= 15


def test_integer_linear_cell_tracks_the_float_device_on_its_grid():
    device = LinearDevice(dw_min=1 / 15)
    model = SynapseCrossbarModel(1, 1, step_tables_from_device(device, 4), in_bits=2,
                                 max_pulses=5)
    G = device.initial_state((1, 1))
    for pulses in (3, 5, 4):
        model.update(np.ones((pulses, 1), int), np.ones((pulses, 1), int), unidirectional=False)
        G = device.potentiate(G, pulses)
        assert model.g_plus[0, 0] == int(torch.round(G[0, 0] * 15))
