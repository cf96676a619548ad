"""Float device models of the synapse cell: response curves, variations, fits and refusals."""

import math

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
from hilt.quant.synapse_fit import ExponentialFit, fit_exponential, load_response_csv


def _t(values):
    return torch.tensor(values, dtype=torch.float64)


# -- the curves, value by value ------------------------------------------------------------


def test_linear_device_steps_by_dw_min_and_clips():
    device = LinearDevice(0.25, w_min=0.0, w_max=1.0)
    G = device.initial_state((5,))
    up = device.potentiate(G, torch.tensor([0, 1, 2, 4, 9]))
    assert up.tolist() == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert device.depress(up, 3).tolist() == [0.0, 0.0, 0.0, 0.25, 0.25]


def test_up_down_scales_the_two_directions():
    device = LinearDevice(0.125, up_down=0.5)
    assert device.potentiate(_t([0.0]), 2).tolist() == [0.375]  # 2 * 0.125 * 1.5
    assert device.depress(_t([0.5]), 2).tolist() == [0.375]  # 0.5 - 2 * 0.125 * 0.5


def test_soft_bounds_step_shrinks_with_the_distance_to_the_bound():
    device = SoftBoundsDevice(0.5, w_min=0.0, w_max=2.0)
    # Each up pulse closes a quarter of the gap to w_max = 2; each down pulse a quarter
    # of the gap to w_min = 0.
    assert device.potentiate(_t([0.0, 0.0, 1.0]), torch.tensor([1, 2, 1])).tolist() == [
        0.5,
        0.875,
        1.25,
    ]
    assert device.depress(_t([2.0, 1.0]), torch.tensor([1, 2])).tolist() == [1.5, 0.5625]


def test_exponential_device_follows_its_curves_from_either_bound():
    a_up, b_up, a_down, b_down = 4.0, 0.75, 9.0, 0.5
    device = ExponentialDevice(a_up, a_down, b_up=b_up, b_down=b_down, w_min=0.25, w_max=1.0)
    p = torch.arange(30)
    up = device.potentiate(torch.full((30,), 0.25, dtype=torch.float64), p)
    torch.testing.assert_close(up, 0.25 + b_up * (1 - torch.exp(-p / a_up)).double())
    down = device.depress(torch.full((30,), 1.0, dtype=torch.float64), p)
    torch.testing.assert_close(down, 1.0 - b_down * (1 - torch.exp(-p / a_down)).double())
    # State-dependent: m pulses then n pulses is m + n pulses along the curve.
    torch.testing.assert_close(device.potentiate(up[:10], 7), up[7:17])


def test_exponential_amplitude_past_the_range_clips_at_the_bound():
    device = ExponentialDevice(2.0, 2.0, b_up=4.0, w_min=0.0, w_max=1.0)
    assert device.potentiate(_t([0.0]), 100).tolist() == [1.0]
    # The default amplitude is the range: the curve tends to w_max without passing it.
    tending = ExponentialDevice(2.0, 2.0).potentiate(_t([0.0]), 10)
    assert 0.99 < tending.item() < 1.0


def test_table_device_interpolates_the_measured_curve():
    device = TableDevice([0, 1, 2, 4], [0.0, 0.5, 0.75, 1.0])
    assert (device.w_min, device.w_max) == (0.0, 1.0)
    G = device.initial_state((4,))
    assert device.potentiate(G, torch.tensor([1, 2, 3, 9])).tolist() == [0.5, 0.75, 0.875, 1.0]
    # From 0.625 (position 1.5) one pulse reaches position 2.5.
    assert device.potentiate(_t([0.625]), 1).tolist() == [0.8125]
    # Without a depression table, depression runs back down the same curve.
    assert device.depress(_t([0.875, 0.5]), 2).tolist() == [0.5, 0.0]


def test_table_device_with_its_own_depression_curve():
    device = TableDevice(
        [0, 2], [0.0, 1.0], down_pulses=[0, 1, 3], down_conductance=[1.0, 0.25, 0.0]
    )
    assert device.depress(_t([1.0, 0.25, 0.125]), 1).tolist() == [0.25, 0.125, 0.0]
    assert device.potentiate(_t([0.0]), 1).tolist() == [0.5]


# -- properties over every model -----------------------------------------------------------


@st.composite
def devices(draw, **variation):
    kind = draw(st.sampled_from(["linear", "soft", "exp", "table"]))
    w_min = draw(st.floats(0.0, 1.0))
    span = draw(st.floats(0.1, 10.0))
    w_max = w_min + span
    up_down = draw(st.floats(-0.9, 0.9))
    if kind == "linear":
        return LinearDevice(
            draw(st.floats(1e-3, span)), w_min=w_min, w_max=w_max, up_down=up_down, **variation
        )
    if kind == "soft":
        return SoftBoundsDevice(
            draw(st.floats(1e-3, 0.9)) * span,
            w_min=w_min,
            w_max=w_max,
            up_down=up_down,
            **variation,
        )
    if kind == "exp":
        return ExponentialDevice(
            draw(st.floats(0.5, 50.0)),
            draw(st.floats(0.5, 50.0)),
            b_up=draw(st.floats(0.2, 2.0)) * span,
            b_down=draw(st.floats(0.2, 2.0)) * span,
            w_min=w_min,
            w_max=w_max,
            up_down=up_down,
            **variation,
        )
    steps = draw(st.lists(st.floats(1e-3, 1.0), min_size=1, max_size=8))
    conductance = w_min + np.concatenate([[0.0], np.cumsum(steps)])
    gaps = draw(st.lists(st.integers(1, 5), min_size=len(steps), max_size=len(steps)))
    pulses = np.concatenate([[0], np.cumsum(gaps)])
    return TableDevice(pulses, conductance, up_down=up_down, **variation)


@st.composite
def states(draw, device, size=6):
    fractions = draw(st.lists(st.floats(0.0, 1.0), min_size=size, max_size=size))
    G = device.w_min + _t(fractions) * device.conductance_range
    return G.clamp(device.w_min, device.w_max)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), device=devices())
def test_states_stay_in_bounds_and_move_monotonically(data, device):
    g = data.draw(states(device))
    pulses = torch.tensor(data.draw(st.lists(st.integers(0, 200), min_size=6, max_size=6)))
    for move in (device.potentiate, device.depress):
        now, later = move(g, pulses), move(g, pulses + 1)
        assert ((now >= device.w_min) & (now <= device.w_max)).all()
        if move == device.potentiate:
            assert (g <= now).all() and (now <= later).all()
        else:
            assert (g >= now).all() and (now >= later).all()
    assert torch.equal(device.potentiate(g, 0), g) and torch.equal(device.depress(g, 0), g)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), device=devices())
def test_zero_variation_is_deterministic_and_draws_nothing(data, device):
    G = data.draw(states(device))
    generator = torch.Generator().manual_seed(1)
    before = generator.get_state()
    first = device.potentiate(G, 3, generator=generator)
    torch.manual_seed(99)  # the global generator plays no part
    assert torch.equal(device.potentiate(G, 3), first)
    assert torch.equal(device.sample_dtod((6,)), torch.ones(6, dtype=torch.float64))
    assert torch.equal(generator.get_state(), before)


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    device=devices(dw_min_dtod=0.3, write_noise_std=0.05),
    seed=st.integers(0, 2**32),
)
def test_variation_comes_only_from_the_given_generator(data, device, seed):
    G = data.draw(states(device))

    def run(seed, global_seed):
        torch.manual_seed(global_seed)
        generator = torch.Generator().manual_seed(seed)
        dtod = device.sample_dtod((6,), generator)
        return dtod, device.potentiate(G, 5, dtod=dtod, generator=generator)

    global_state = torch.get_rng_state()
    dtod, moved = run(seed, 0)
    again = run(seed, 1)
    assert torch.equal(dtod, again[0]) and torch.equal(moved, again[1])
    other = run(seed + 1, 0)
    assert not torch.equal(dtod, other[0])
    assert (dtod >= 0).all()
    assert ((moved >= device.w_min) & (moved <= device.w_max)).all()
    torch.set_rng_state(global_state)


def test_device_to_device_spread_scales_each_cells_step():
    device = LinearDevice(0.125, w_max=4.0, dw_min_dtod=0.5)
    dtod = device.sample_dtod((1000,), torch.Generator().manual_seed(3))
    moved = device.potentiate(device.initial_state((1000,)), 2, dtod=dtod)
    torch.testing.assert_close(moved, 0.25 * dtod)
    assert 0.4 < dtod.std().item() < 0.6


def test_write_noise_grows_with_the_square_root_of_the_pulse_count():
    device = LinearDevice(0.01, w_max=100.0, write_noise_std=0.5)
    G = torch.full((20000,), 50.0, dtype=torch.float64)
    moved = device.potentiate(G, 16, generator=torch.Generator().manual_seed(0))
    assert abs((moved - G).mean().item() - 0.16) < 0.05
    assert abs((moved - G).std().item() - 2.0) < 0.05  # 0.5 * sqrt(16)
    idle = device.potentiate(G, 0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(idle, G)


# -- fitting and reading measured curves ---------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    a=st.floats(1.0, 80.0),
    b=st.floats(0.05, 5.0),
    g0=st.floats(0.0, 2.0),
    depression=st.booleans(),
    n=st.integers(20, 120),
)
def test_exponential_fit_recovers_a_generated_curve(a, b, g0, depression, n):
    b = -b if depression else b
    pulses = np.arange(n, dtype=np.float64)
    fit = fit_exponential(pulses, g0 + b * (1 - np.exp(-pulses / a)))
    assert isinstance(fit, ExponentialFit)
    assert fit.a == pytest.approx(a, rel=1e-4)
    assert fit.b == pytest.approx(b, rel=1e-4)
    assert fit.g0 == pytest.approx(g0, rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(fit(pulses), g0 + b * (1 - np.exp(-pulses / a)), atol=1e-7)


def test_exponential_fit_feeds_the_device():
    pulses = np.arange(0, 64, 2, dtype=np.float64)
    fit = fit_exponential(pulses, 0.1 + 0.6 * -np.expm1(-pulses / 12.0))
    device = ExponentialDevice(fit.a, fit.a, b_up=fit.b, w_min=fit.g0, w_max=0.7)
    G = device.potentiate(device.initial_state((1,)), 24)
    assert G.item() == pytest.approx(fit(24.0), abs=1e-9)


def test_load_response_csv_reads_header_comments_and_rows(tmp_path):
    path = tmp_path / "curve.csv"
    path.write_text("pulse,conductance\n# measured at 25 C\n0,1e-6\n\n1, 2.5e-6\n2,3e-6\n")
    pulses, conductance = load_response_csv(path)
    assert pulses.tolist() == [0.0, 1.0, 2.0]
    assert conductance.tolist() == [1e-6, 2.5e-6, 3e-6]
    assert pulses.dtype == torch.float64
    device = TableDevice(pulses, conductance)
    assert device.potentiate(device.initial_state((1,)), 1).tolist() == [2.5e-6]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0,1\n1,2,3\n", r"curve\.csv:2: expected 2 columns \(pulse number, conductance\), got 3"),
        ("0,1\n1,high\n", r"curve\.csv:2: \['1', 'high'\] is not a pair of numbers"),
        ("pulse,G\nn,G\n", r"curve\.csv:2: \['n', 'G'\] is not a pair of numbers"),
        ("pulse,G\n# nothing\n", r"curve\.csv: no data rows \(pulse number, conductance\)"),
    ],
)
def test_load_response_csv_refuses_bad_files(tmp_path, text, match):
    path = tmp_path / "curve.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_response_csv(path)


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: LinearDevice(0.1, w_min=1.0, w_max=1.0),
            r"w_min must be below w_max \(Gmin < Gmax\), got w_min=1\.0, w_max=1\.0",
        ),
        (
            lambda: SoftBoundsDevice(0.1, w_min=2.0, w_max=1.0),
            r"w_min must be below w_max \(Gmin < Gmax\), got w_min=2\.0, w_max=1\.0",
        ),
        (lambda: LinearDevice(0.1, w_max=math.inf), r"w_max must be a finite number, got inf"),
        (lambda: LinearDevice(0.0), r"dw_min must be > 0, got 0\.0"),
        (lambda: LinearDevice(0.1, up_down=1.0), r"up_down must be in \(-1, 1\) .*got 1\.0"),
        (
            lambda: LinearDevice(0.1, dw_min_dtod=-0.1),
            r"dw_min_dtod must be >= 0 \(0 turns the variation off\), got -0\.1",
        ),
        (
            lambda: LinearDevice(0.1, write_noise_std=-1),
            r"write_noise_std must be >= 0 \(0 turns the variation off\), got -1\.0",
        ),
        (
            lambda: SoftBoundsDevice(1.0, w_max=1.0),
            r"dw_min must be in \(0, w_max - w_min\) = \(0, 1\.0\) .*got 1\.0",
        ),
        (lambda: ExponentialDevice(0.0, 1.0), r"a_up must be > 0, got 0\.0"),
        (lambda: ExponentialDevice(1.0, -2.0), r"a_down must be > 0, got -2\.0"),
        (lambda: ExponentialDevice(1.0, 1.0, b_up=0.0), r"b_up must be > 0, got 0\.0"),
        (lambda: ExponentialDevice(1.0, 1.0, b_down=-1), r"b_down must be > 0, got -1\.0"),
        (
            lambda: TableDevice([0, 1, 2], [0.0, 0.5, 0.4]),
            r"potentiation table conductance must be strictly increasing in the pulse number",
        ),
        (
            lambda: TableDevice([0, 1], [0.0, 1.0], down_pulses=[0, 1], down_conductance=[0, 1]),
            r"depression table conductance must be strictly decreasing in the pulse number",
        ),
        (
            lambda: TableDevice([0, 2, 1], [0.0, 0.5, 1.0]),
            r"potentiation table pulse numbers must be >= 0 and strictly increasing",
        ),
        (
            lambda: TableDevice([-1, 0], [0.0, 1.0]),
            r"potentiation table pulse numbers must be >= 0 and strictly increasing",
        ),
        (
            lambda: TableDevice([0, 1, 2], [0.0, 1.0]),
            r"potentiation table needs two 1-D sequences of equal length >= 2 .*"
            r"got shapes \(3,\) and \(2,\)",
        ),
        (
            lambda: TableDevice([0, 1], [0.0, math.nan]),
            r"potentiation table must hold only finite numbers",
        ),
        (
            lambda: TableDevice([0, 1], [0.0, 1.0], down_pulses=[0, 1]),
            r"down_pulses and down_conductance must be given together",
        ),
    ],
)
def test_constructors_refuse_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda d: d.potentiate(_t([0.5]), -2),
            ValueError,
            r"pulses must be >= 0 \(potentiate and depress are separate calls\), got minimum -2",
        ),
        (
            lambda d: d.depress(_t([0.5, 0.5]), torch.tensor([1, -3])),
            ValueError,
            r"pulses must be >= 0 .*got minimum -3",
        ),
        (lambda d: d.potentiate(_t([0.5]), 1.5), ValueError, r"pulses must be whole numbers"),
        (lambda d: d.potentiate(_t([0.5]), True), ValueError, r"pulses must be integers"),
        (
            lambda d: d.potentiate(_t([0.5, 0.5]), torch.tensor([1, 2, 3])),
            ValueError,
            r"pulses of shape \(3,\) do not broadcast to G of shape \(2,\)",
        ),
        (
            lambda d: d.potentiate(_t([0.5, 1.5]), 1),
            ValueError,
            r"G must lie within \[w_min, w_max\] = \[0\.0, 1\.0\], got values from 0\.5 to 1\.5",
        ),
        (
            lambda d: d.potentiate(torch.tensor([0, 1]), 1),
            TypeError,
            r"G must be a floating-point tensor of conductances",
        ),
        (
            lambda d: d.potentiate(_t([0.5]), 1, dtod=_t([-0.5])),
            ValueError,
            r"dtod must be >= 0 \(a factor on the step\), got minimum -0\.5",
        ),
        (
            lambda d: d.pulses_to_reach(_t([-0.25])),
            ValueError,
            r"delta must be >= 0 \(a rise above Gmin\), got minimum -0\.25",
        ),
        (
            lambda d: d.pulses_to_reach(_t([0.25]), max_pulses=0),
            ValueError,
            r"max_pulses must be at least 1, got 0",
        ),
        (
            lambda d: d.pulses_to_reach(torch.tensor([1])),
            TypeError,
            r"delta must be a floating-point tensor",
        ),
    ],
)
def test_calls_refuse_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(LinearDevice(0.125))


def test_variation_without_a_generator_is_refused():
    noisy = LinearDevice(0.1, write_noise_std=0.01)
    with pytest.raises(
        ValueError, match=r"generator is required when write_noise_std > 0 \(got 0\.01\)"
    ):
        noisy.potentiate(_t([0.0]), 1)
    spread = LinearDevice(0.1, dw_min_dtod=0.2)
    with pytest.raises(
        ValueError, match=r"generator is required when dw_min_dtod > 0 \(got 0\.2\)"
    ):
        spread.sample_dtod((3,))


@pytest.mark.parametrize(
    ("pulses", "conductance", "match"),
    [
        ([0, 1], [0.0, 1.0], r"equal length >= 3, got shapes \(2,\) and \(2,\)"),
        ([0, 1, 2], [0.0, 1.0], r"equal length >= 3, got shapes \(3,\) and \(2,\)"),
        ([0, 1, 2], [0.0, math.inf, 1.0], r"pulses and conductance must hold only finite numbers"),
        ([0, 2, 1], [0.0, 0.5, 1.0], r"pulses must be >= 0 and strictly increasing"),
        ([-1, 0, 1], [0.0, 0.5, 1.0], r"pulses must be >= 0 and strictly increasing"),
        ([0, 1, 2, 3], [0.0, 0.5, 0.4, 1.0], r"conductance must be monotone in the pulse number"),
        ([0, 1, 2], [0.5, 0.5, 0.5], r"conductance must be monotone .* and not constant"),
    ],
)
def test_fit_exponential_refuses_bad_curves(pulses, conductance, match):
    with pytest.raises(ValueError, match=match):
        fit_exponential(pulses, conductance)
