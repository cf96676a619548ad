"""End-to-end: a trained Brevitas BNN equals its threshold-neuron golden model exactly."""

import numpy as np
import pytest
import torch
from brevitas.nn import QuantIdentity, QuantReLU
from torch import nn

from hilt.quant.binary_export import BinaryLayerSpec
from hilt.quant.binary_mlp import (
    LOGIT_EXP,
    PIXEL_THRESHOLD,
    BinaryMLP,
    binarize_pixels,
    export_binary_mlp,
    fit,
    integer_activations,
    integer_forward,
    pixels_to_input,
)
from hilt.quant.datasets import DIGITS_PIXEL_MAX


@pytest.fixture(scope="module")
def trained(split):
    torch.manual_seed(0)
    model = BinaryMLP()
    fit(model, split.x_train, split.y_train, epochs=30, seed=0)
    return model.eval()


def _float_logits(model, pixels):
    with torch.no_grad():
        return model.eval()(pixels_to_input(pixels))


def test_integer_predictions_equal_brevitas_predictions(trained, split):
    spec = export_binary_mlp(trained)
    assert all(layer.float32_safe for layer in spec)
    logits = integer_forward(spec, split.x_test)
    assert logits.dtype == np.int64 and logits.shape == (360, 10)
    float_logits = _float_logits(trained, split.x_test)
    # Power-of-two scales throughout: the float logits are the integer ones, scaled.
    assert spec[-1].scale == 2**LOGIT_EXP
    assert np.array_equal(
        np.ldexp(logits.astype(np.float64), LOGIT_EXP), float_logits.double().numpy()
    )
    predictions = logits.argmax(axis=1)
    assert np.array_equal(predictions, float_logits.argmax(dim=1).numpy())
    accuracy = (predictions == split.y_test).mean()
    assert accuracy > 0.85, accuracy


def test_hidden_bits_are_the_signs_of_the_batchnorm_outputs(trained, split):
    spec = export_binary_mlp(trained)
    trace = integer_activations(spec, split.x_test)
    assert [t.shape[1] for t in trace] == [64, 64, 10]
    assert np.array_equal(trace[0], split.x_test >= PIXEL_THRESHOLD)
    with torch.no_grad():
        inputs = pixels_to_input(split.x_test)
        bn_out = trained.layers[:2](inputs).numpy()
        activations = trained.layers[:3](inputs).numpy()
    assert trace[1].dtype == np.uint8
    assert np.array_equal(trace[1], bn_out >= 0)  # sign(0) = +1, as Brevitas
    assert np.array_equal(2 * trace[1].astype(np.float32) - 1, activations)


def test_spec_describes_what_the_neuron_array_consumes(trained):
    hidden, last = export_binary_mlp(trained)
    assert isinstance(hidden, BinaryLayerSpec) and hidden.name == "layers.0"
    assert hidden.weight_bits.shape == (64, 64) and hidden.weight_bits.dtype == np.uint8
    assert hidden.thresholds.dtype == np.int64
    assert hidden.thresholds.min() >= 0 and hidden.thresholds.max() <= 65
    assert hidden.magnitudes is None and last.magnitudes is None
    assert last.weight_bits.shape == (10, 64) and last.thresholds is None
    # Weight bits are the signs of the quantized weights, flipped where gamma < 0.
    gamma = trained.layers[1].weight.detach().numpy()
    signs = (trained.layers[0].quant_weight().value.detach().numpy() > 0).astype(np.uint8)
    assert np.array_equal(hidden.weight_bits, np.where(gamma[:, None] < 0, 1 - signs, signs))
    last_weight = trained.layers[3].quant_weight().value.detach().numpy()
    assert np.array_equal(last.weight_bits, last_weight > 0)


@pytest.mark.parametrize("hidden", [(7,), (13, 5), ()])
def test_untrained_models_with_any_batchnorm_are_exact(hidden, split):
    torch.manual_seed(len(hidden))
    model = BinaryMLP(hidden=hidden)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.layers:
            if isinstance(module, nn.BatchNorm1d):
                module.weight.uniform_(-2, 2, generator=generator)  # some gammas negative
                module.bias.uniform_(-1, 1, generator=generator)
                module.running_mean.normal_(0, 4, generator=generator)
                module.running_var.uniform_(4, 30, generator=generator)
                module.weight[0] = 0.0  # a constant neuron
    model.eval()
    spec = export_binary_mlp(model)
    assert len(spec) == len(hidden) + 1 and all(layer.float32_safe for layer in spec)
    logits = integer_forward(spec, split.x_test)
    expected = _float_logits(model, split.x_test).double().numpy()
    assert np.array_equal(np.ldexp(logits.astype(np.float64), LOGIT_EXP), expected)


def test_a_reloaded_state_dict_exports_the_same_integers(trained):
    fresh = BinaryMLP()
    fresh.load_state_dict(trained.state_dict())
    for a, b in zip(export_binary_mlp(trained), export_binary_mlp(fresh), strict=True):
        assert np.array_equal(a.weight_bits, b.weight_bits)
        assert (a.thresholds is None) == (b.thresholds is None)
        assert a.thresholds is None or np.array_equal(a.thresholds, b.thresholds)
        assert a.scale == b.scale


def test_fit_is_deterministic_for_a_seed(split):
    def run(seed):
        torch.manual_seed(0)
        model = BinaryMLP(hidden=(8,))
        losses = fit(model, split.x_train[:256], split.y_train[:256], epochs=2, seed=seed)
        return losses, [p.detach().clone() for p in model.parameters()]

    losses, params = run(1)
    losses_again, params_again = run(1)
    assert losses == losses_again
    assert all(torch.equal(a, b) for a, b in zip(params, params_again, strict=True))
    assert run(2)[0] != losses


def test_pixels_binarise_at_half_range():
    pixels = np.arange(DIGITS_PIXEL_MAX + 1)
    bits = binarize_pixels(pixels)
    assert bits.dtype == np.uint8
    assert bits.tolist() == [0] * 8 + [1] * 9
    assert pixels_to_input(pixels).tolist() == [-1.0] * 8 + [1.0] * 9


@pytest.mark.parametrize(
    ("pixels", "match"),
    [
        (np.array([[DIGITS_PIXEL_MAX + 1] + [0] * 63]), r"pixels must lie in 0\.\.16, got 0\.\.17"),
        (np.array([[-1] * 64]), r"pixels must lie in 0\.\.16, got -1\.\.-1"),
        (np.zeros((1, 64)), r"pixels must be an integer array"),
    ],
)
def test_integer_forward_refuses_bad_pixels(trained, pixels, match):
    with pytest.raises(ValueError, match=match):
        integer_forward(export_binary_mlp(trained), pixels)


def test_export_refuses_what_the_neurons_cannot_run():
    model = BinaryMLP(hidden=(4,))
    model.layers[2] = QuantReLU(bit_width=4)
    with pytest.raises(ValueError, match=r"layers\.2 is a QuantReLU, not a QuantIdentity"):
        export_binary_mlp(model)
    model = BinaryMLP(hidden=(4,))
    model.layers[2] = QuantIdentity(bit_width=4)
    with pytest.raises(ValueError, match=r"layers\.2 quantizes to 4-bit signed values"):
        export_binary_mlp(model)
    model = BinaryMLP(hidden=(4,))
    model.layers[0].bias = nn.Parameter(torch.zeros(4))
    with pytest.raises(ValueError, match=r"layers\.0 has a bias; the threshold neuron has none"):
        export_binary_mlp(model)
    with pytest.raises(ValueError, match=r"3 images but 2 labels"):
        fit(model, np.zeros((3, 64), np.int64), np.zeros(2, np.int64), epochs=1)
