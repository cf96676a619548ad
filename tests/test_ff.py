"""Forward-Forward and its backprop baseline on the digits.

The goodness pieces on tiny tensors (values, gradient signs, label embedding, negative
labels), the configs' refusals, determinism, locality and prediction of the FF net, short
digits runs of both trainers, and the acceptance claim: at the full configuration
Forward-Forward matches or beats backprop of the same architecture, same seed.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hilt.host.train.backprop import BackpropConfig, mlp, train_backprop
from hilt.host.train.ff import FFConfig, FFNet, predict, train_ff
from hilt.host.train.goodness import (
    LOSSES,
    embed_label,
    embed_neutral,
    ff_loss,
    goodness,
    hard_negative_labels,
    local_loss,
    negative_labels,
    normalize,
    symmetric_loss,
)
from hilt.host.train.seeding import data_tensors
from hilt.quant.datasets import Dataset, load_digits

C = 10


@pytest.fixture(scope="module")
def small(split: Dataset) -> Dataset:
    """A few hundred images: enough to exercise training, fast enough for many tests."""
    return split.subset(300, 100)


# --- goodness and losses -------------------------------------------------------------


def test_goodness_is_the_sum_or_mean_of_squares_per_sample():
    h = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert goodness(h).tolist() == [5.0, 9.0]
    assert goodness(h, "sum").tolist() == [5.0, 9.0]
    assert goodness(h, "mean").tolist() == [2.5, 4.5]
    with pytest.raises(ValueError, match="'max'"):
        goodness(h, "max")


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_ff_loss_values_and_gradient_signs():
    g_pos = torch.tensor([3.0, 1.0], requires_grad=True)
    g_neg = torch.tensor([1.0, 3.0], requires_grad=True)
    loss = ff_loss(g_pos, g_neg, threshold=2.0)
    expected = ((_softplus(-1) + _softplus(-1)) + (_softplus(1) + _softplus(1))) / 2
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    # More positive goodness and less negative goodness both lower the loss.
    assert (g_pos.grad < 0).all()
    assert (g_neg.grad > 0).all()


def test_symmetric_loss_values_and_gradient_signs():
    g_pos = torch.tensor([1.0, 2.0], requires_grad=True)
    g_neg = torch.tensor([1.0, 0.0], requires_grad=True)
    loss = symmetric_loss(g_pos, g_neg, alpha=2.0)
    assert loss.item() == pytest.approx((math.log(2) + _softplus(-4)) / 2)
    loss.backward()
    assert (g_pos.grad < 0).all()
    assert (g_neg.grad > 0).all()
    # Only the gap counts: both sides are pushed equally hard.
    assert torch.equal(g_pos.grad, -g_neg.grad)


def test_local_loss_selects_by_name_and_refuses_unknown_names():
    g_pos, g_neg = torch.tensor([3.0, 0.5]), torch.tensor([1.0, 2.0])
    assert set(LOSSES) == {"ff", "symmetric"}
    assert local_loss("ff", g_pos, g_neg, threshold=2.0, alpha=1.0) == ff_loss(g_pos, g_neg, 2.0)
    assert local_loss("symmetric", g_pos, g_neg, threshold=2.0, alpha=3.0) == \
        symmetric_loss(g_pos, g_neg, 3.0)
    with pytest.raises(ValueError, match=r"'hinge'.*\['ff', 'symmetric'\]"):
        local_loss("hinge", g_pos, g_neg, threshold=2.0, alpha=1.0)


# --- label embedding, negative labels, normalisation ---------------------------------


def test_embed_label_appends_a_one_hot_of_the_given_amplitude_after_the_features():
    x = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    embedded = embed_label(x, torch.tensor([2, 0]), num_classes=4, value=0.5)
    assert embedded.shape == (2, 7)
    assert torch.equal(embedded[:, :3], x)
    assert embedded[:, 3:].tolist() == [[0, 0, 0.5, 0], [0.5, 0, 0, 0]]
    neutral = embed_neutral(x, num_classes=4, value=0.5)
    assert torch.equal(neutral[:, :3], x)
    assert torch.allclose(neutral[:, 3:], torch.full((2, 4), 0.125))
    with pytest.raises(ValueError, match="labels"):
        embed_label(x, torch.tensor([1]), num_classes=4, value=1.0)


def test_a_label_written_into_chosen_features_keeps_the_width():
    x = torch.arange(12, dtype=torch.float32).view(2, 6)
    embedded = embed_label(x, torch.tensor([1, 0]), num_classes=2, value=0.5, into=(4, 0))
    assert embedded.tolist() == [[0.5, 1, 2, 3, 0, 5], [0, 7, 8, 9, 0.5, 11]]
    neutral = embed_neutral(x, num_classes=2, value=0.5, into=(4, 0))
    assert neutral[:, [4, 0]].tolist() == [[0.25, 0.25]] * 2 and torch.equal(x[:, 1:4],
                                                                            neutral[:, 1:4])
    for into in ((0,), (0, 0), (0, 6)):
        with pytest.raises(ValueError, match="into must name 2 distinct feature columns"):
            embed_label(x, torch.tensor([1, 0]), num_classes=2, value=0.5, into=into)


def test_the_blank_digits_pixels_carry_almost_no_ink():
    digits = load_digits(0)
    blank = digits.blank_features(10)
    images = np.concatenate([digits.x_train, digits.x_test])
    assert images[:, list(blank)].var(axis=0).max() <= 0.05
    assert len(set(blank)) == 10 and list(blank) == sorted(blank)
    assert set(blank) == {0, 8, 16, 24, 32, 40, 48, 56, 31, 39}


@settings(max_examples=100, deadline=None)
@given(labels=st.lists(st.integers(0, 11), min_size=1, max_size=50),
       extra=st.integers(0, 8), seed=st.integers(0, 2**31 - 1))
def test_negative_labels_are_never_the_true_label(labels, extra, seed):
    num_classes = max(2, max(labels) + 1 + extra)
    true = torch.tensor(labels)
    wrong = negative_labels(true, num_classes, torch.Generator().manual_seed(seed))
    assert wrong.shape == true.shape
    assert (wrong != true).all()
    assert ((wrong >= 0) & (wrong < num_classes)).all()


def test_negative_labels_are_uniform_over_the_other_classes():
    true = torch.full((18_000,), 4)
    wrong = negative_labels(true, C, torch.Generator().manual_seed(0))
    counts = torch.bincount(wrong, minlength=C)
    assert counts[4] == 0
    expected = 18_000 / 9  # 2000 each; the binomial sd is about 42
    assert all(abs(int(n) - expected) < 200 for i, n in enumerate(counts) if i != 4)
    with pytest.raises(ValueError, match="2 classes"):
        negative_labels(torch.tensor([0]), 1)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(1, 20), num_classes=st.integers(2, 12))
def test_hard_negative_labels_are_never_the_true_label(data, n, num_classes):
    scores = torch.tensor(data.draw(st.lists(
        st.lists(st.floats(-1e4, 1e4), min_size=num_classes, max_size=num_classes),
        min_size=n, max_size=n)))
    true = torch.tensor(data.draw(st.lists(st.integers(0, num_classes - 1),
                                           min_size=n, max_size=n)))
    wrong = hard_negative_labels(scores, true, torch.Generator().manual_seed(n))
    assert (wrong != true).all()
    assert ((wrong >= 0) & (wrong < num_classes)).all()


def test_hard_negative_labels_follow_the_nets_belief():
    # The true label scores highest; label 7 is far ahead of the other wrong ones.
    scores = torch.zeros(500, C)
    scores[:, 3] = 100.0
    scores[:, 7] = 50.0
    wrong = hard_negative_labels(scores, torch.full((500,), 3), torch.Generator().manual_seed(1))
    assert (wrong == 7).all()
    # Equal beliefs: every wrong label is drawn.
    flat = hard_negative_labels(torch.zeros(500, C), torch.zeros(500, dtype=torch.long),
                                torch.Generator().manual_seed(1))
    assert set(flat.tolist()) == set(range(1, C))


def test_normalize_gives_unit_length_and_removes_the_length():
    h = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]])
    out = normalize(h)
    assert out[0].tolist() == pytest.approx([0.6, 0.8], rel=1e-3)
    assert out[1].tolist() == [0.0, 0.0]  # eps keeps a silent layer silent
    assert torch.allclose(out[[0, 2]].norm(dim=1), torch.ones(2), atol=1e-3)
    assert torch.allclose(normalize(10 * h), out, atol=1e-4)


# --- configs -------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "accepted"), [
    ("hidden", (), "one or more layer widths"),
    ("hidden", (256, 0), "ints from 1 to 8192"),
    ("hidden", (256, 100_000_000), "ints from 1 to 8192"),
    ("goodness", "max", "'sum', 'mean'"),
    ("threshold", -1.0, "> 0 or None"),
    ("loss", "hinge", "'ff', 'symmetric'"),
    ("alpha", 0.0, "> 0 or None"),
    ("lr", 0, "finite number > 0"),
    ("lr", float("nan"), "finite number > 0"),
    ("epochs", 0, "int from 1 to 1000000"),
    ("batch_size", 2.5, "int from 1 to 1000000"),
    ("seed", "0", "an int from 0 to 4294967295"),
    ("seed", 2**64, "an int from 0 to 4294967295"),
    ("predict_layers", (2,), r"indices in 0\.\.1"),
    ("predict_layers", (), r"indices in 0\.\.1"),
    ("predict_layers", (1, 1), "distinct"),
    ("classifier", "knn", "'goodness', 'softmax'"),
    ("label_value", 0.0, "finite number > 0"),
    ("negatives", "all", "'hard', 'random'"),
    ("ema_decay", 1.0, ">= 0 and < 1"),
])
def test_ff_config_refuses_bad_values_naming_field_value_and_what_is_accepted(
        field, value, accepted):
    with pytest.raises(ValueError) as error:
        FFConfig(**{field: value})
    message = str(error.value)
    assert message.startswith(f"{field} = {value!r}")
    assert re.search(accepted, message), message


@pytest.mark.parametrize(("field", "value", "accepted"), [
    ("hidden", (0,), "ints from 1 to 8192"),
    ("lr", -1e-3, "finite number > 0"),
    ("weight_decay", -1.0, "finite number >= 0"),
    ("epochs", 0, "int from 1 to 1000000"),
    ("batch_size", True, "int from 1 to 1000000"),
])
def test_backprop_config_refuses_bad_values(field, value, accepted):
    with pytest.raises(ValueError, match=f"^{re.escape(f'{field} = {value!r}')}.*{accepted}"):
        BackpropConfig(**{field: value})


def test_ff_config_defaults_follow_hinton():
    config = FFConfig(hidden=(256, 128))
    assert [config.layer_threshold(i) for i in (0, 1)] == [256.0, 128.0]
    assert FFConfig(goodness="mean").layer_threshold(1) == 1.0
    assert FFConfig(threshold=3.0).layer_threshold(0) == 3.0
    assert FFConfig().readout_layers() == (0, 1)
    assert FFConfig(hidden=(8, 8, 8)).readout_layers() == (0, 1, 2)
    assert FFConfig(hidden=(8,)).readout_layers() == (0,)
    assert FFConfig(predict_layers=[0, 1]).predict_layers == (0, 1)
    # The symmetric loss is the same in both modes: alpha scales with the width for "sum".
    assert FFConfig().layer_alpha(0) * 256 == FFConfig(goodness="mean").layer_alpha(0)


# --- the net -------------------------------------------------------------------------


def test_no_gradient_crosses_a_layer():
    net = FFNet(FFConfig(hidden=(16, 16)), in_features=64, num_classes=C)
    x = embed_label(torch.rand(5, 64), torch.arange(5), C, 0.5)
    goodness(net.activities(x)[1]).sum().backward()
    assert net.layers[0].weight.grad is None
    assert net.layers[1].weight.grad is not None


def _label_reader(features: int, value: float) -> FFNet:
    """One layer whose unit c fires on feature c plus label c: goodness(label c) grows
    with feature c, so the best label is the largest feature."""
    net = FFNet(FFConfig(hidden=(C,), predict_layers=(0,), label_value=value), features, C)
    with torch.no_grad():
        net.layers[0].weight.zero_()
        net.layers[0].bias.zero_()
        for c in range(C):
            net.layers[0].weight[c, c] = 1.0
            net.layers[0].weight[c, features + c] = 1.0
    return net


def test_prediction_picks_the_label_with_the_highest_goodness():
    net = _label_reader(C, value=0.5)
    x = torch.rand(200, C, generator=torch.Generator().manual_seed(0))
    scores = net.label_goodness(x)
    for label in range(C):
        labels = torch.full((200,), label)
        acts = net.activities(embed_label(x, labels, C, 0.5))
        assert torch.allclose(scores[:, label], goodness(acts[0]), rtol=1e-5)
    assert torch.equal(predict(net, x), scores.argmax(dim=1))
    assert torch.equal(predict(net, x), x.argmax(dim=1))


def test_prediction_sums_goodness_over_the_read_out_layers_only():
    x = torch.rand(30, 64, generator=torch.Generator().manual_seed(2))
    for layers in [(1,), (0, 2), (0, 1, 2)]:
        torch.manual_seed(0)
        net = FFNet(FFConfig(hidden=(16, 16, 16), predict_layers=layers), 64, C)
        scores = net.label_goodness(x)
        for label in (0, 9):
            acts = net.activities(embed_label(x, torch.full((30,), label), C, 0.5))
            manual = sum(goodness(acts[i]) for i in layers)
            assert torch.allclose(scores[:, label], manual, rtol=1e-5)


# --- training ------------------------------------------------------------------------


def _parameters(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in net.state_dict().items()}


def test_training_is_deterministic_for_a_seed_and_leaves_global_state_alone(small):
    threads, rng = torch.get_num_threads(), torch.random.get_rng_state()
    config = FFConfig(hidden=(32, 32), epochs=2, seed=3)
    first, second = train_ff(small, config, progress=False), train_ff(small, config,
                                                                         progress=False)
    other = train_ff(small, FFConfig(hidden=(32, 32), epochs=2, seed=4), progress=False)
    a, b, c = map(_parameters, (first.net, second.net, other.net))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert first.curves == second.curves
    bp = [train_backprop(small, BackpropConfig(hidden=(32, 32), epochs=2, seed=3),
                         progress=False) for _ in range(2)]
    assert all(torch.equal(x, y) for x, y in zip(bp[0].net.state_dict().values(),
                                                  bp[1].net.state_dict().values(), strict=True))
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_a_short_forward_forward_run_learns_the_digits(split):
    result = train_ff(split, FFConfig(epochs=15), progress=False)
    curves = result.curves
    assert len(curves.loss) == len(curves.train_accuracy) == len(curves.test_accuracy) == 15
    assert all(len(losses) == 2 for losses in curves.loss)  # one per layer
    assert curves.loss[-1][0] < curves.loss[0][0]
    assert result.test_accuracy == curves.test_accuracy[-1] > 0.85
    assert result.seconds > 0
    _, _, x_test, y_test = data_tensors(split)
    assert (predict(result.net, x_test) == y_test).float().mean().item() == \
        pytest.approx(result.test_accuracy)


def test_the_softmax_read_out_and_the_other_options_train(split):
    softmax = train_ff(split, FFConfig(epochs=8, classifier="softmax"), progress=False)
    assert softmax.net.head is not None
    assert all(len(losses) == 3 for losses in softmax.curves.loss)  # two layers and the head
    assert softmax.test_accuracy > 0.85
    variant = FFConfig(epochs=8, goodness="mean", loss="symmetric", negatives="random",
                       ema_decay=0.0, predict_layers=(0, 1))
    assert train_ff(split, variant, progress=False).test_accuracy > 0.85


def test_a_short_backprop_run_learns_the_digits(split):
    result = train_backprop(split, BackpropConfig(epochs=10), progress=False)
    assert len(result.curves.loss) == 10 and all(len(v) == 1 for v in result.curves.loss)
    assert result.test_accuracy == result.curves.test_accuracy[-1] > 0.9
    layers = [m for m in result.net if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in layers] == [256, 256, C]
    assert mlp(64, (8,), C)(torch.zeros(1, 64)).shape == (1, C)


def test_progress_bars_name_the_trainer(small, capsys):
    train_ff(small, FFConfig(hidden=(8,), epochs=1), progress=True)
    train_backprop(small, BackpropConfig(hidden=(8,), epochs=1), progress=True)
    err = capsys.readouterr().err
    assert "forward-forward" in err and "backprop" in err and "test=" in err


@pytest.mark.slow
def test_forward_forward_matches_or_beats_backprop_at_the_full_configuration(split):
    """The acceptance claim, on the test split, same architecture and seed (about 30 s)."""
    ff_config, bp_config = FFConfig(seed=0), BackpropConfig(seed=0)
    assert ff_config.hidden == bp_config.hidden == (256, 256)
    assert ff_config.goodness == "sum" and ff_config.loss == "ff"
    assert [ff_config.layer_threshold(i) for i in (0, 1)] == [256.0, 256.0]
    ff = train_ff(split, ff_config, progress=False)
    bp = train_backprop(split, bp_config, progress=False)
    assert bp.test_accuracy > 0.96  # an honest baseline, not a crippled one
    assert ff.test_accuracy >= bp.test_accuracy - 0.005, (ff.test_accuracy, bp.test_accuracy)
