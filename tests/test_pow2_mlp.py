"""End-to-end: a trained Brevitas power-of-two MLP equals its integer golden model exactly."""

import numpy as np
import pytest
import torch
from brevitas.nn import QuantReLU
from torch import nn

from hilt.quant.datasets import DIGITS_PIXEL_MAX
from hilt.quant.pow2_mlp import (
    INPUT_EXP,
    Pow2MLP,
    export_pow2_mlp,
    fit,
    integer_activations,
    integer_forward,
    pixels_to_input,
)


@pytest.fixture(scope="module")
def trained(split):
    torch.manual_seed(0)
    model = Pow2MLP()
    fit(model, split.x_train, split.y_train, epochs=30, seed=0)
    return model.eval()


def _float_logits(model, pixels):
    with torch.no_grad():
        return model.eval()(pixels_to_input(pixels))


def test_integer_logits_equal_brevitas_logits_exactly(trained, split):
    spec = export_pow2_mlp(trained)
    assert all(layer.float32_exact for layer in spec)
    logits = integer_forward(spec, split.x_test)
    assert logits.dtype == np.int64
    scaled = torch.from_numpy(np.ldexp(logits.astype(np.float64), spec[-1].output_exp))
    float_logits = _float_logits(trained, split.x_test)
    assert torch.equal(scaled.float(), float_logits)
    assert torch.equal(scaled, float_logits.double())
    integer_accuracy = (logits.argmax(axis=1) == split.y_test).mean()
    float_accuracy = (float_logits.argmax(dim=1).numpy() == split.y_test).mean()
    assert integer_accuracy == float_accuracy > 0.9


def test_hidden_activations_equal_quant_relu_outputs(trained, split):
    spec = export_pow2_mlp(trained)
    trace = integer_activations(spec, split.x_test)
    assert [t.shape[1] for t in trace] == [64, 32, 10]
    assert np.array_equal(trace[0], split.x_test)
    with torch.no_grad():
        hidden = trained.layers[:2](pixels_to_input(split.x_test)).double().numpy()
    assert np.array_equal(np.ldexp(trace[1].astype(np.float64), spec[0].output_exp), hidden)
    assert trace[1].min() >= 0 and trace[1].max() <= spec[0].requant.max_value


def test_spec_describes_what_the_pe_array_consumes(trained, split):
    first, last = export_pow2_mlp(trained)
    assert (first.input_exp, first.input_max, first.input_width) == (INPUT_EXP, 16, 6)
    assert first.requant.act_bits == 7 and first.requant.acc_exp == first.acc_exp
    assert (last.input_exp, last.input_max, last.input_width) == (first.output_exp, 127, 8)
    assert last.requant is None and last.output_exp == last.acc_exp
    assert first.weights.shape == (32, 64) and last.weights.shape == (10, 32)
    trace = integer_activations([first, last], split.x_test)
    for layer, layer_input in zip((first, last), trace, strict=False):
        acc = np.abs(layer_input @ layer.weights.int_weights().T).max()
        assert acc < 1 << (layer.accumulator_width - 1)
        assert layer_input.max() < 1 << (layer.input_width - 1)


@pytest.mark.parametrize("exp_bits", [1, 2, 3, 4])
def test_untrained_models_are_exact_for_every_exp_bits(exp_bits, split):
    torch.manual_seed(exp_bits)
    model = Pow2MLP(hidden=(8, 8), exp_bits=exp_bits, act_bits=5).eval()
    spec = export_pow2_mlp(model)
    assert len(spec) == 3 and all(layer.float32_exact for layer in spec)
    logits = integer_forward(spec, split.x_test)
    scaled = np.ldexp(logits.astype(np.float64), spec[-1].output_exp)
    assert np.array_equal(scaled, _float_logits(model, split.x_test).double().numpy())


def test_a_single_layer_model_exports_without_requant(split):
    model = Pow2MLP(hidden=())
    (only,) = export_pow2_mlp(model)
    assert only.requant is None and only.weights.shape == (10, 64)
    scaled = np.ldexp(integer_forward([only], split.x_test).astype(np.float64), only.output_exp)
    assert np.array_equal(scaled, _float_logits(model, split.x_test).double().numpy())


def test_a_reloaded_state_dict_exports_the_same_integers(trained, split):
    fresh = Pow2MLP()
    fresh.load_state_dict(trained.state_dict())
    original, reloaded = export_pow2_mlp(trained), export_pow2_mlp(fresh)
    for a, b in zip(original, reloaded, strict=True):
        assert (a.input_exp, a.input_max, a.requant) == (b.input_exp, b.input_max, b.requant)
        assert np.array_equal(a.weights.exp, b.weights.exp)
        assert np.array_equal(a.weights.sign, b.weights.sign)
        assert a.weights.scale_exp == b.weights.scale_exp


def test_fit_is_deterministic_for_a_seed(split):
    def run(seed):
        torch.manual_seed(0)
        model = Pow2MLP(hidden=(8,))
        losses = fit(model, split.x_train[:256], split.y_train[:256], epochs=2, seed=seed)
        return losses, [p.detach().clone() for p in model.parameters()]

    losses, params = run(1)
    losses_again, params_again = run(1)
    assert losses == losses_again
    assert all(torch.equal(a, b) for a, b in zip(params, params_again, strict=True))
    assert run(2)[0] != losses


def test_integer_forward_refuses_pixels_out_of_range(trained):
    spec = export_pow2_mlp(trained)
    with pytest.raises(ValueError, match=r"pixels must lie in 0\.\.16, got 0\.\.17"):
        integer_forward(spec, np.array([[DIGITS_PIXEL_MAX + 1] + [0] * 63]))
    with pytest.raises(ValueError, match=r"pixels must be an integer array"):
        integer_forward(spec, np.zeros((1, 64)))


def test_export_refuses_what_the_pe_cannot_run():
    model = Pow2MLP(hidden=(4,))
    model.layers[1] = nn.ReLU()
    with pytest.raises(ValueError, match=r"layers\.1 is a ReLU, not a QuantReLU"):
        export_pow2_mlp(model)
    model = Pow2MLP(hidden=(4,))
    model.layers[1] = QuantReLU(bit_width=4)  # Brevitas' default: a float scale
    with pytest.raises(ValueError, match=r"scale of layers\.1 = .* is not a power of two"):
        export_pow2_mlp(model)
    model = Pow2MLP(hidden=(4,))
    model.layers[0].bias = nn.Parameter(torch.zeros(4))
    with pytest.raises(ValueError, match=r"layers\.0 has a bias; the shift-vector PE has none"):
        export_pow2_mlp(model)
    with pytest.raises(ValueError, match=r"3 images but 2 labels"):
        fit(model, np.zeros((3, 64), np.int64), np.zeros(2, np.int64), epochs=1)
