"""Forward-Forward with its weights in synapse crossbars, trained by pulses.

What a user relies on: that an update becomes the coincidences and signs the encoding
promises, counted as the crossbar counts them; that the bidirectional rule never moves
G- and the unidirectional refresh keeps every weight; that layers which are not
crossbars, or do not chain, are refused naming what would fit; that a short run on the
golden twin learns; and that the same run against the co-simulated board gives the same
levels and predictions bit for bit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hilt.host.backends import BackendError, open_backend
from hilt.host.protocol.synapse_layout import Slot
from hilt.host.train.crossbar_layer import CrossbarLayer, PulseCost
from hilt.host.train.pulse_ff import RULES, UPDATES, PulseFFConfig, embed, train_pulse_ff
from hilt.host.train.pulse_trains import (
    count_pulses,
    pair_updates,
    pulse_trains,
    remove_common,
    trains_to_slots,
)
from hilt.quant.datasets import Dataset
from hilt.quant.synapse_golden import SynapseCrossbarModel
from hilt.quant.synapse_tables import StepTables

SMALL = "golden:icebreaker?rows=16&cols=74"


def subset(split: Dataset, train: int, test: int) -> Dataset:
    return split.subset(train, test)


def crossbar_model(rows: int, cols: int) -> SynapseCrossbarModel:
    levels = 16
    tables = StepTables(4, (1,) * levels, (1,) * levels)
    return SynapseCrossbarModel(rows, cols, tables, in_bits=4, max_pulses=7)


def apply(model: SynapseCrossbarModel, slots: list[Slot]) -> None:
    def bits(mask: int, width: int) -> list[bool]:
        return [bool(mask >> k & 1) for k in range(width)]

    for slot in slots:
        model.slot(bits(slot.row_fire, model.rows), bits(slot.row_neg, model.rows),
                   bits(slot.col_fire, model.cols), bits(slot.col_neg, model.cols),
                   unidirectional=slot.unidirectional)


def test_saturated_trains_fire_the_largest_rows_and_columns_with_their_signs():
    delta, x = np.array([2.0, -2.0, 0.0, 0.5]), np.array([1.0, 0.0, -1.0])
    trains = pulse_trains(delta, x, expected=1e6, slots=5, generator=np.random.default_rng(0))
    assert trains.row_fire.shape == (5, 4) and trains.col_fire.shape == (5, 3)
    assert trains.row_fire[:, :2].all() and trains.row_fire[:, 3].all()
    assert not trains.row_fire[:, 2].any() and not trains.col_fire[:, 1].any()
    assert trains.col_fire[:, [0, 2]].all()
    assert trains.row_neg.tolist() == [True, False, False, True]
    assert trains.col_neg.tolist() == [False, False, True]


def test_coincidences_follow_the_outer_product_on_average():
    generator = np.random.default_rng(1)
    delta, x = np.array([0.3, -0.1, 0.0, 0.2]), np.array([0.5, 1.0, 0.25])
    expected, slots, draws = 4.0, 7, 4000
    total = np.zeros((4, 3))
    for _ in range(draws):
        trains = pulse_trains(delta, x, expected=expected, slots=slots, generator=generator)
        total += trains.row_fire.T.astype(float) @ trains.col_fire.astype(float)
    want = expected * np.outer(np.abs(delta), np.abs(x))
    assert np.allclose(total / draws, want, rtol=0.05, atol=0.01)


@pytest.mark.parametrize("unidirectional", [False, True])
def test_slots_pulse_what_the_count_says_in_the_direction_asked(unidirectional):
    rows, cols = 6, 5
    generator = np.random.default_rng(2)
    model = crossbar_model(rows, cols)
    middle = np.full(cols, 8)
    for row in range(rows):
        model.program_row(row, middle, middle)
    delta = np.array([0.9, -0.8, 0.7, 0.0, -0.6, 0.5])
    x = np.array([1.0, -0.5, 0.8, 0.0, -1.0])
    trains = pulse_trains(delta, x, expected=20.0, slots=7, generator=generator)
    slots = trains_to_slots(trains, unidirectional=unidirectional)
    assert [slot.last for slot in slots] == [False] * (len(slots) - 1) + [True]
    assert all(bin(slot.row_fire).count("1") and bin(slot.col_fire).count("1")
               for slot in slots)
    apply(model, slots)
    potentiation, depression = count_pulses(trains, unidirectional=unidirectional)
    assert potentiation == model.potentiation_pulses.sum() > 0
    assert depression == model.depression_pulses.sum()
    assert (depression > 0) != unidirectional
    change = model.g_plus - model.g_minus
    wanted = -np.sign(np.outer(delta, x))
    assert np.all(np.sign(change)[change != 0] == wanted[change != 0])
    assert np.all(change[wanted == 0] == 0)


def test_a_pair_is_sent_as_its_sum_and_difference():
    generator = np.random.default_rng(3)
    d_pos, d_neg = generator.normal(size=(3, 4)), generator.normal(size=(3, 4))
    x_pos, x_neg = generator.random((3, 5)), generator.random((3, 5))
    deltas, inputs = pair_updates(d_pos, d_neg, x_pos, x_neg)
    want = np.einsum("ni,nj->ij", d_pos, x_pos) + np.einsum("ni,nj->ij", d_neg, x_neg)
    assert np.allclose(np.einsum("ni,nj->ij", deltas, inputs), want)
    _, inputs = pair_updates(d_pos, d_neg, x_pos, x_pos)
    assert np.array_equal(inputs[:3], x_pos) and not inputs[3:].any()


def test_the_refresh_keeps_every_weight_and_removes_the_common_part():
    plus = np.array([[5, 0, 9], [3, 3, 15]])
    minus = np.array([[2, 4, 9], [0, 7, 1]])
    new_plus, new_minus = remove_common(plus, minus)
    assert np.array_equal(new_plus - new_minus, plus - minus)
    assert not np.minimum(new_plus, new_minus).any()
    with open_backend("golden:icebreaker?rows=4&cols=74") as backend:
        layer = CrossbarLayer(backend, unidirectional=True, gain=8.0, refresh_pulses=3)
        rng = np.random.default_rng(4)
        plus, minus = rng.integers(0, 16, (4, 74)), rng.integers(0, 16, (4, 74))
        backend.load(plus=plus, minus=minus)
        cost = PulseCost()
        layer.since_refresh[1, 2, 3] = 2
        layer.refresh_if_due(cost)
        assert cost == PulseCost()
        layer.since_refresh[0, 0, 0] = 3
        layer.refresh_if_due(cost)
        state = backend.read_state()
    assert np.array_equal(state["plus"] - state["minus"], plus - minus)
    assert not np.minimum(state["plus"], state["minus"]).any()
    assert (cost.refreshes, cost.reads, cost.writes) == (1, 4, 4)
    assert not layer.since_refresh.any()


def test_mixed_precision_sends_whole_steps_and_keeps_the_rest():
    with open_backend("golden:icebreaker?rows=4&cols=8") as backend:
        layer = CrossbarLayer(backend, unidirectional=False, gain=8.0, update="mixed")
        layer.program(np.zeros((4, 8)))
        before = backend.read_state()
        dw = layer.dw
        layer.pending[[0, 2, 3], [1, 5, 0]] = np.array([2.5, -1.2, 0.9]) * dw
        cost = PulseCost()
        layer.send_pending(cost)
        after = backend.read_state()
        params = backend.describe()["target"]["params"]
    up, down, ref = params["up"], params["down"], layer.reference
    moved = after["plus"] - before["plus"]
    assert moved[0, 1] == up[ref] + up[ref + up[ref]] and moved[2, 5] == -down[ref]
    assert np.count_nonzero(moved) == 2 and np.array_equal(after["minus"], before["minus"])
    assert np.allclose(layer.pending[[0, 2, 3], [1, 5, 0]], [0.5 * dw, -0.2 * dw, 0.9 * dw])
    assert (cost.potentiation, cost.depression, cost.slots, cost.updates) == (2, 1, 3, 1)


def test_mixed_precision_splits_long_updates_into_the_crossbars_slots():
    with open_backend("golden:icebreaker?rows=4&cols=8") as backend:
        layer = CrossbarLayer(backend, unidirectional=True, gain=8.0, update="mixed")
        layer.program(np.zeros((4, 8)))
        layer.pending[:] = 100 * layer.dw
        sent = []
        backend.pulse = sent.extend
        cost = PulseCost()
        layer.send_pending(cost)
    assert len(sent) == 4 * layer.slots and all(slot.unidirectional for slot in sent)
    assert [i for i, slot in enumerate(sent) if slot.last] == list(range(6, 28, 7))
    assert np.allclose(layer.pending, (100 - layer.slots) * layer.dw)
    assert cost.potentiation == 4 * 8 * layer.slots and layer.since_refresh[0].min() == 7


def test_read_back_sends_what_each_cells_table_gives_from_its_level():
    with open_backend("golden:icebreaker?rows=4&cols=8") as backend:
        layer = CrossbarLayer(backend, unidirectional=True, gain=8.0, update="readback")
        plus = np.zeros((4, 8), dtype=np.int64)
        plus[1, 2] = 12
        backend.load(plus=plus, minus=np.zeros((4, 8), dtype=np.int64))
        half, up = layer.half, layer.after_up
        layer.pending[0, 1] = 7 / half
        layer.pending[1, 2] = 7 / half
        layer.pending[3, 4] = -0.4 / half
        cost = PulseCost()
        layer.send_pending(cost)
        state = backend.read_state()
    raised_from_0 = up[0] - 0
    k = int(np.argmin(np.abs(raised_from_0 - 7)))
    assert state["plus"][0, 1] == up[0, k] and k > 0
    k12 = int(np.argmin(np.abs(up[12] - 12 - 7)))
    assert state["plus"][1, 2] == up[12, k12] and up[12, k12] - 12 < up[0, k12]
    assert state["minus"][3, 4] == 0 and layer.pending[3, 4] == pytest.approx(-0.4 / half)
    assert layer.pending[0, 1] == pytest.approx((7 - up[0, k]) / half)
    assert cost.reads == 4 and cost.potentiation == k + k12


def test_inputs_are_quantised_pixels_and_the_label_at_the_top():
    features = np.array([[0, 8, 16, 3]]) / 16
    assert embed(features, np.array([2]), 7, 10).tolist() == [[0, 4, 7, 1] + [0, 0, 7] + [0] * 7]
    assert embed(features, None, 7, 10)[0, 4:].tolist() == [1] * 10
    assert embed(features, np.array([0]), 7, 10, label_value=0.5)[0, 4] == 4
    assert embed(features, None, 7, 3)[0, 4:].tolist() == [2] * 3


@pytest.mark.parametrize(("urls", "message"), [
    (["golden:icebreaker?pe=shift"], r"cannot pulse, read_state \(layer 0 of pulse-trained "
                                     r"Forward-Forward keeps its weights in it\).*pe=synapse"),
    (["golden:icebreaker"], r"layer 0: golden:icebreaker takes 8 inputs but its input has 74 "
                            r"\(64 features \+ 10 label entries\); open it with cols=74, e\.g\. "
                            r"golden:icebreaker\?cols=74"),
    ([SMALL, "golden:icebreaker?rows=4&cols=8"],
     r"layer 1: golden:icebreaker\?rows=4&cols=8 takes 8 inputs but its input has 16 "
     r"\(layer 0's 16 rows\); open it with cols=16, e\.g\. golden:icebreaker\?rows=4&cols=16"),
])
def test_layers_that_are_not_chained_crossbars_are_refused(split, urls, message):
    layers = [open_backend(url) for url in urls]
    try:
        with pytest.raises(BackendError, match=message):
            train_pulse_ff(split, layers, progress=False)
    finally:
        for layer in layers:
            layer.close()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("rule", "both", r"rule = 'both': accepted \('bidirectional', 'unidirectional'\)"),
    ("epochs", 0, r"epochs = 0: accepted an int from 1 to 1000000"),
    ("lr", -1.0, r"lr = -1\.0: accepted a finite number > 0"),
    ("classifier", "vote", r"classifier = 'vote': accepted \('goodness', 'softmax'\)"),
    ("predict_layers", (0, 0), r"predict_layers = \(0, 0\): accepted distinct layer"),
    ("label_value", 2.0, r"label_value = 2\.0: accepted a finite number > 0 and <= 1"),
    ("negatives", "easy", r"negatives = 'easy': accepted \('hard', 'random'\)"),
])
def test_bad_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        PulseFFConfig(**{field: value})


def test_more_slots_than_the_crossbar_takes_are_refused(split):
    with open_backend(SMALL) as layer, \
            pytest.raises(BackendError, match=r"slots = 9 is more than its max_pulses = 7"):
        train_pulse_ff(subset(split, 8, 8), [layer], PulseFFConfig(slots=9), progress=False)


@pytest.mark.parametrize("rule", RULES)
def test_a_short_golden_run_learns_and_counts_what_it_spent(split, rule):
    config = PulseFFConfig(rule=rule, update="stochastic", epochs=3, lr=0.1, lr_end=0.01)
    with open_backend("golden:icebreaker?rows=32&cols=74") as layer:
        result = train_pulse_ff(subset(split, 600, 200), [layer], config, progress=False)
        state = layer.read_state()
    assert result.test_accuracy > 0.35
    assert len(result.curves.test_accuracy) == 3 and len(result.curves.loss[0]) == 1
    cost = result.cost
    assert cost.pulses == cost.potentiation + cost.depression > 0
    assert cost.slots >= cost.updates > 0
    if rule == "bidirectional":
        assert cost.depression > 0 and (cost.reads, cost.writes, cost.refreshes) == (0, 0, 0)
        assert np.all(state["minus"] == state["minus"][0, 0])
    else:
        assert cost.depression == 0 and cost.refreshes > 0
        assert cost.reads == cost.writes == 32 * cost.refreshes
    assert result.samples_per_second > 0 and result.seconds > 0


def test_mixed_precision_and_read_back_learn_with_fewer_pulses(split):
    config = PulseFFConfig(rule="unidirectional", epochs=3, lr=0.1, lr_end=0.01)
    results = {}
    for update in UPDATES:
        with open_backend("golden:icebreaker?rows=32&cols=74") as layer:
            results[update] = train_pulse_ff(subset(split, 600, 200), [layer],
                                             replace(config, update=update), progress=False)
    stochastic = results["stochastic"]
    for update in ("mixed", "readback"):
        assert results[update].test_accuracy > 0.5, update
        assert 0 < results[update].cost.pulses < stochastic.cost.pulses / 2, update
    assert results["readback"].cost.reads >= 32 * 19


def test_hard_negatives_from_the_crossbars_goodness_learn_faster(split):
    config = PulseFFConfig(rule="unidirectional", update="readback", epochs=3, lr=0.3,
                           lr_end=0.03)
    results = {}
    for negatives in ("random", "hard"):
        with open_backend("golden:icebreaker?rows=32&cols=74") as layer:
            results[negatives] = train_pulse_ff(subset(split, 600, 200), [layer],
                                                replace(config, negatives=negatives),
                                                progress=False)
    uniform, hard = results["random"], results["hard"]
    assert hard.curves.train_accuracy[-1] > uniform.curves.train_accuracy[-1] + 0.05
    assert hard.test_accuracy > uniform.test_accuracy


def test_the_softmax_head_reads_the_neutral_label(split):
    config = PulseFFConfig(rule="unidirectional", epochs=1, classifier="softmax")
    with open_backend(SMALL) as layer:
        result = train_pulse_ff(subset(split, 200, 100), [layer], config, progress=False)
    assert result.head is not None and result.head.in_features == 16
    assert len(result.curves.loss[0]) == 2


def test_progress_shows_the_running_loss_and_accuracy(split, capsys):
    with open_backend(SMALL) as layer:
        train_pulse_ff(subset(split, 64, 32), [layer], PulseFFConfig(epochs=1), progress=True)
    err = capsys.readouterr().err
    assert "pulse-ff" in err and "loss=" in err and "test=" in err


@pytest.mark.parametrize(("rule", "update"), [*((rule, "stochastic") for rule in RULES),
                                              ("unidirectional", "mixed"),
                                              ("bidirectional", "readback")])
def test_golden_and_cosim_give_the_same_levels_and_predictions(split, rule, update):
    """On the crossbar the trainer uses by default, 64 x 74, co-simulated on the native
    engine: a few seconds a rule once its build (about 25 s on two cores, shared with
    tests/test_backends.py) is cached."""
    small = subset(split, 16, 4)
    config = PulseFFConfig(rule=rule, update=update, epochs=1, batch_size=8, lr=0.5,
                           refresh_pulses=1)
    runs = {}
    for scheme in ("golden", "cosim"):
        with open_backend(f"{scheme}:icebreaker?rows=64&cols=74") as layer:
            result = train_pulse_ff(small, [layer], config, progress=False)
            runs[scheme] = result, layer.read_state()
    (golden, golden_state), (cosim, cosim_state) = runs["golden"], runs["cosim"]
    assert golden.cost == cosim.cost and golden.cost.pulses > 0
    assert (golden.cost.refreshes > 0) == (rule == "unidirectional")
    assert np.array_equal(golden.test_predictions, cosim.test_predictions)
    for name in ("plus", "minus"):
        assert np.array_equal(golden_state[name], cosim_state[name]), name
