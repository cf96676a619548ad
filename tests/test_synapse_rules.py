"""Learning rules on synapse pairs: directions, expected changes, read-back, refresh, refusals."""

import math

import pytest
import torch

from hilt.quant.synapse_device import ExponentialDevice, LinearDevice, SoftBoundsDevice
from hilt.quant.synapse_pair import SynapsePair
from hilt.quant.synapse_rules import (
    NominalCurve,
    ReadBackRule,
    StochasticPulseSGD,
    UnidirectionalRule,
    UpdateStats,
    program_and_verify,
)

NO_REFRESH = {"refresh_threshold": 0.99}


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _full(shape, value):
    return torch.full(shape, value, dtype=torch.float64)


# -- the nominal curve -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "device",
    [LinearDevice(1 / 64), SoftBoundsDevice(1 / 32, up_down=0.3),
     ExponentialDevice(20.0, 20.0, b_up=1.2, b_down=1.2)],
)
def test_positions_on_the_nominal_curve_count_whole_pulses(device):
    curve = NominalCurve(device)
    counts = torch.arange(0, 35)  # the exponential device reaches Gmax after 35.8 pulses
    G = device.nominal_potentiate(_full((35,), device.w_min), counts)
    torch.testing.assert_close(curve.position(G), counts.to(torch.float64))
    # From any state, the pulses to a state k pulses further on are k.
    start = G[5:15]
    end = device.nominal_potentiate(start, 7)
    torch.testing.assert_close(curve.pulses(start, end - start), _full((10,), 7.0))
    assert curve.pulses(start, -torch.ones(10, dtype=torch.float64)).eq(0).all()


def test_nominal_depress_is_depress_without_spread_or_noise():
    device = SoftBoundsDevice(1 / 16, up_down=0.2, dw_min_dtod=0.3, write_noise_std=0.01)
    G = torch.linspace(0, 1, 9, dtype=torch.float64)
    clean = SoftBoundsDevice(1 / 16, up_down=0.2)
    torch.testing.assert_close(device.nominal_depress(G, 3), clean.depress(G, 3))


def test_pair_reset_empties_both_cells_where_masked():
    pair = SynapsePair(LinearDevice(1 / 8), (3,))
    pair.update(torch.tensor([2, -3, 1]))
    pair.reset(torch.tensor([True, True, False]))
    assert pair.g_plus.tolist() == [0.0, 0.0, 0.125]
    assert pair.g_minus.tolist() == [0.0, 0.0, 0.0]
    assert pair.resets.tolist() == [2, 2, 0]


# -- plain stochastic-pulse SGD --------------------------------------------------------------


def test_plain_sgd_holds_the_reference_at_mid_range_and_starts_at_zero():
    rule = StochasticPulseSGD()
    pair = rule.new_pair(LinearDevice(1 / 64), (3, 4), generator=_gen())
    assert pair.scale == 0.5  # half the range carries weights in ±1
    assert torch.equal(pair.g_minus, _full((3, 4), 0.5))
    assert torch.equal(pair.weight, _full((3, 4), 0.0))
    reference = pair.g_minus.clone()
    for _ in range(5):
        rule.apply(pair, torch.randn(3, 4, generator=_gen(1), dtype=torch.float64) * 0.1)
    assert torch.equal(pair.g_minus, reference)
    assert pair.depression_pulses.sum() > 0  # it moves the one device both ways


@pytest.mark.parametrize("steps", [0.3, 2.6, -1.45])
def test_plain_sgd_expected_change_matches_the_request_on_a_linear_device(steps):
    device = LinearDevice(1 / 64)
    rule = StochasticPulseSGD()
    pair = rule.new_pair(device, (20000,), generator=_gen(3))
    weight_step = device.dw_min / pair.scale
    rule.apply(pair, _full((20000,), steps * weight_step))
    mean = float(pair.weight.mean()) / weight_step
    frac = abs(steps) - math.floor(abs(steps))
    sigma = math.sqrt(frac * (1 - frac) / 20000)
    assert abs(mean - steps) < 4 * sigma + 1e-12
    # Stochastic rounding: every cell moved by the floor or the ceiling of the request.
    moved = set((pair.weight / weight_step).round().unique().tolist())
    assert moved == {float(math.floor(steps)), float(math.ceil(steps))}


def test_plain_sgd_calibrates_its_step_at_the_reference():
    # A soft-bounds step at mid-range is half of dw_min; the rule must know it.
    device = SoftBoundsDevice(1 / 64)
    assert StochasticPulseSGD().step(device) == pytest.approx(0.5 / 64)
    asym = LinearDevice(1 / 64, up_down=0.4)
    assert StochasticPulseSGD().step(asym) == pytest.approx(1 / 64)  # mean of 1.4 and 0.6


# -- unidirectional rules --------------------------------------------------------------------


@pytest.mark.parametrize("rule", [UnidirectionalRule(), ReadBackRule(),
                                  UnidirectionalRule(refresh_threshold=0.0)])
def test_unidirectional_rules_never_depress(rule):
    pair = rule.new_pair(SoftBoundsDevice(1 / 32), (8, 8), generator=_gen())
    noise = _gen(5)
    for _ in range(40):
        rule.apply(pair, 0.2 * torch.randn(8, 8, generator=noise, dtype=torch.float64))
    assert pair.depression_pulses.sum() == 0
    assert pair.potentiation_pulses.sum() > 0


def test_unidirectional_sign_picks_the_cell():
    rule = UnidirectionalRule(**NO_REFRESH)
    pair = rule.new_pair(LinearDevice(1 / 64), (2,), generator=_gen())
    rule.apply(pair, torch.tensor([3 / 64, -5 / 64], dtype=torch.float64))
    assert pair.g_plus.tolist() == [3 / 64, 0.0]
    assert pair.g_minus.tolist() == [0.0, 5 / 64]


@pytest.mark.parametrize("dtod", [0.0, 0.3])
def test_read_back_reaches_a_target_closer_than_the_blind_rule_on_soft_bounds(dtod):
    device = SoftBoundsDevice(1 / 32, dw_min_dtod=dtod)
    errors = {}
    for rule in (UnidirectionalRule(**NO_REFRESH), ReadBackRule(**NO_REFRESH)):
        pair = rule.new_pair(device, (400,), generator=_gen(2))
        for _ in range(30):
            rule.apply(pair, _full((400,), 0.02))
        # Stochastic rounding scatters the cells; the rule's aim shows in their mean.
        errors[type(rule)] = abs(float(pair.weight.mean()) - 0.6)
    assert errors[UnidirectionalRule] > 0.1  # the blind rule trusts the step at Gmin
    assert errors[ReadBackRule] < 0.01


def test_read_back_learns_each_cells_step_factor():
    device = LinearDevice(1 / 256, dw_min_dtod=0.3)
    rule = ReadBackRule(**NO_REFRESH)
    pair = rule.new_pair(device, (50,), generator=_gen(4))
    for sign in (1, -1, 1, -1):
        rule.apply(pair, _full((50,), sign * 0.05))
    gain_plus, gain_minus = rule.gains(pair)
    torch.testing.assert_close(gain_plus, pair.dtod_plus)
    torch.testing.assert_close(gain_minus, pair.dtod_minus)


def test_program_and_verify_cancels_device_to_device_variation():
    device = LinearDevice(1 / 64, dw_min_dtod=0.3)
    pair = SynapsePair(device, (500,), generator=_gen(6))
    target = torch.rand(500, generator=_gen(7), dtype=torch.float64) * 0.8
    reads = program_and_verify(pair, target, _full((500,), 0.0))
    step = device.dw_min * pair.dtod_plus
    assert bool(((pair.g_plus - target).abs() <= step + 1e-12).all())
    assert torch.equal(pair.g_minus, _full((500,), 0.0))
    assert 2 <= reads <= 12


@pytest.mark.parametrize("rule", [StochasticPulseSGD(), UnidirectionalRule(), ReadBackRule()])
def test_every_rule_starts_from_verified_initial_weights(rule):
    device = SoftBoundsDevice(1 / 64, dw_min_dtod=0.2)
    start = torch.rand(6, 7, generator=_gen(13), dtype=torch.float64) * 1.6 - 0.8
    pair = rule.new_pair(device, (6, 7), generator=_gen(14), weights=start)
    worst_step = device.dw_min * max(pair.dtod_plus.max(), pair.dtod_minus.max()) / pair.scale
    assert float((pair.weight - start).abs().max()) <= 2 * worst_step
    assert pair.depression_pulses.sum() == 0 and pair.resets.sum() == 0


def test_refresh_preserves_weights():
    # On-grid states of a linear device survive an open-loop refresh exactly.
    rule = UnidirectionalRule(refresh_threshold=0.0)
    pair = rule.new_pair(LinearDevice(1 / 64), (6,), generator=_gen())
    rule.send(pair, torch.tensor([3, -2, 5, 0, -7, 1]))
    rule.send(pair, torch.tensor([-1, 4, -2, 0, 2, -1]))
    before = pair.weight.clone()
    stats = rule.apply(pair, _full((6,), 0.0))
    assert stats.resets == 12
    assert torch.equal(pair.weight, before)
    assert torch.equal(torch.minimum(pair.g_plus, pair.g_minus), _full((6,), 0.0))


def test_verified_refresh_keeps_weights_where_the_open_loop_one_drifts():
    device = LinearDevice(1 / 64, dw_min_dtod=0.3)
    drift = {}
    for rule in (UnidirectionalRule(**NO_REFRESH), ReadBackRule(**NO_REFRESH)):
        start = torch.rand(300, generator=_gen(9), dtype=torch.float64) - 0.5
        pair = rule.new_pair(device, (300,), generator=_gen(8), weights=start)
        before = pair.weight.clone()
        rule.refresh_threshold = 0.0
        rule.apply(pair, _full((300,), 0.0))
        drift[type(rule)] = (pair.weight - before).abs()
    assert float(drift[ReadBackRule].max()) <= 1.3 * 1.5 / 64
    assert float(drift[ReadBackRule].mean()) < 0.5 * float(drift[UnidirectionalRule].mean())


def test_threshold_refresh_only_touches_weights_whose_lower_cell_passed_it():
    rule = UnidirectionalRule(refresh_threshold=0.25)
    pair = rule.new_pair(LinearDevice(1 / 16), (2,), generator=_gen())
    rule.send(pair, torch.tensor([5, 2]))
    rule.send(pair, torch.tensor([-5, -3]))  # lower cells at 5/16 and 2/16
    assert pair.resets.tolist() == [0, 0]  # a fresh pair needed no reset to start at 0
    stats = rule.apply(pair, _full((2,), 0.0))
    assert pair.resets.tolist() == [2, 0]
    assert stats == UpdateStats(potentiation=0, depression=0, resets=2, reads=1)
    assert pair.weight.tolist() == [0.0, -1 / 16]


def test_check_every_spaces_the_refresh_checks():
    rule = UnidirectionalRule(refresh_threshold=0.0, check_every=3)
    pair = rule.new_pair(LinearDevice(1 / 16), (2,), generator=_gen())
    resets = [rule.apply(pair, _full((2,), 0.0)).resets for _ in range(6)]
    assert resets == [0, 0, 4, 0, 0, 4]


# -- pulse budgets and accounting ------------------------------------------------------------


def test_rules_clip_to_max_pulses_and_report_what_they_spent():
    for rule in (StochasticPulseSGD(max_pulses=4), UnidirectionalRule(max_pulses=4, **NO_REFRESH),
                 ReadBackRule(max_pulses=4, **NO_REFRESH)):
        pair = rule.new_pair(LinearDevice(1 / 256), (3, 3), generator=_gen())
        before = pair.pulses_spent()
        stats = rule.apply(pair, _full((3, 3), 0.9))
        assert stats.pulses == 4 * 9
        assert stats.pulses == sum(pair.pulses_spent()) - sum(before)
        assert stats.reads == (2 if isinstance(rule, ReadBackRule) else 0) + (
            0 if isinstance(rule, StochasticPulseSGD | ReadBackRule) else 1)


def test_update_stats_add_up():
    total = UpdateStats(1, 2, 3, 4) + UpdateStats(10, 20, 30, 40)
    assert total == UpdateStats(11, 22, 33, 44)
    assert total.pulses == 33


def test_same_seed_same_pulses():
    weights = []
    for _ in range(2):
        rule = ReadBackRule()
        pair = rule.new_pair(SoftBoundsDevice(1 / 64, dw_min_dtod=0.2), (5, 5), generator=_gen(11))
        noise = _gen(12)
        for _ in range(10):
            rule.apply(pair, 0.05 * torch.randn(5, 5, generator=noise, dtype=torch.float64))
        weights.append(pair.weight)
    assert torch.equal(*weights)


# -- refusals -----------------------------------------------------------------------------


def test_explicit_counts_beyond_max_pulses_are_an_error():
    rule = UnidirectionalRule(max_pulses=8)
    pair = rule.new_pair(LinearDevice(1 / 64), (2,), generator=_gen())
    with pytest.raises(ValueError, match=r"within ±max_pulses = ±8, got a count of 9"):
        rule.send(pair, torch.tensor([1, -9]))
    with pytest.raises(TypeError, match="pulses must be an integer tensor"):
        rule.send(pair, torch.tensor([1.0, 2.0]))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: UnidirectionalRule(max_pulses=0), "max_pulses must be an integer >= 1, got 0"),
        (lambda: StochasticPulseSGD(max_pulses=2.5), "max_pulses must be an integer"),
        (lambda: UnidirectionalRule(refresh_threshold=1.5), r"refresh_threshold .* got 1.5"),
        (lambda: ReadBackRule(check_every=0), "check_every must be an integer >= 1, got 0"),
        (lambda: StochasticPulseSGD(reference=1.0), r"reference .* \(0, 1\), got 1.0"),
    ],
)
def test_bad_rule_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_updates_are_refused_by_name():
    rule = ReadBackRule()
    pair = rule.new_pair(LinearDevice(1 / 64), (2, 3), generator=_gen())
    with pytest.raises(ValueError, match=r"delta_w must have the pair's shape \(2, 3\), got \(3,"):
        rule.apply(pair, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="delta_w must be a floating-point tensor"):
        rule.apply(pair, torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="delta_w must be finite"):
        rule.apply(pair, _full((2, 3), math.nan))
    with pytest.raises(TypeError, match="pair must be a SynapsePair"):
        rule.apply("pair", _full((2, 3), 0.0))
    with pytest.raises(ValueError, match="weight_range must be a finite number > 0, got -1"):
        rule.new_pair(LinearDevice(1 / 64), (2,), weight_range=-1)


def test_parameters_of_the_wrong_type_are_named():
    with pytest.raises(TypeError, match=r"refresh_threshold must be a real number, got '0\.2'"):
        UnidirectionalRule(refresh_threshold="0.2")
    with pytest.raises(TypeError, match="reference must be a real number, got None"):
        StochasticPulseSGD(reference=None)


def test_stochastic_rounding_needs_the_pairs_generator():
    rule = StochasticPulseSGD()
    pair = rule.new_pair(LinearDevice(1 / 64), (2,))
    with pytest.raises(ValueError, match=r"pair\.generator is required by StochasticPulseSGD"):
        rule.apply(pair, _full((2,), 0.1))
