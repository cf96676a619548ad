"""A power-of-two MLP for the digits, trained in Brevitas and run again in integers.

This is the end-to-end proof of the shift-vector PE's golden model: ``Pow2MLP`` is an
ordinary Brevitas model (QuantLinear with :class:`PowerOfTwoWeightQuant`, bias-free,
QuantReLU on a power-of-two scale between layers); :func:`export_pow2_mlp` turns it into
per-layer integer specs; :func:`integer_forward` runs those with :func:`shift_matmul` and
:func:`requantize_relu` only. Every scale is a power of two, so as long as every float
sum stays within 2^24 units (:attr:`Pow2LayerSpec.float32_exact`, true for the defaults)
the integer logits times 2^spec[-1].output_exp equal the float model's eval-mode logits
exactly, not approximately.

The input is the digits' integer pixels times 2^-4 (0..16 becomes 0..1), exactly
representable, so no input quantizer is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from brevitas.nn import QuantLinear, QuantReLU
from brevitas.quant import Uint8ActPerTensorFixedPointMaxInit
from numpy.typing import ArrayLike
from torch import nn

from .datasets import DIGITS_PIXEL_MAX
from .pow2_export import PowerOfTwoWeights, export_pow2_weights, scale_exponent
from .pow2_quant import PowerOfTwoWeightQuant
from .requant import ReluRequant
from .shift_golden import as_int_activations, shift_matmul, worst_case_magnitude
from .training import fit_classifier

INPUT_EXP = -4
"""Model input = integer pixels * 2^INPUT_EXP."""

FLOAT32_EXACT_LIMIT = 1 << 24
"""Every integer of magnitude up to 2^24 is exact in float32, so a sum of exact terms whose
partial sums stay within it is exact in any order."""


class Pow2ActQuant(Uint8ActPerTensorFixedPointMaxInit):
    """Unsigned activations on a learned power-of-two scale, initialised from ``max_val``.

    Brevitas' ``Uint8ActPerTensorFixedPoint`` would learn the scale from runtime statistics,
    but its scale is not a power of two while those statistics are collected; this one is
    a power of two from the first step.
    """

    max_val = 4.0


def pixels_to_input(pixels: ArrayLike) -> torch.Tensor:
    """Integer pixels as the model's float32 input, pixels * 2^INPUT_EXP (exact)."""
    pixels = as_int_activations(pixels, "pixels")
    return torch.from_numpy(np.ldexp(pixels.astype(np.float32), INPUT_EXP))


class Pow2MLP(nn.Module):
    """MLP with power-of-two weights and power-of-two-scaled ReLU activations.

    Parameters
    ----------
    in_features
        Pixels per image (64 for the 8x8 digits).
    hidden
        Widths of the hidden layers; ``()`` gives a single linear layer.
    classes
        Number of logits.
    exp_bits
        Exponent bits of every weight (see :class:`PowerOfTwoFormat`).
    act_bits
        Unsigned bits of every hidden activation.

    Notes
    -----
    ``forward`` takes ``pixels_to_input(pixels)`` and returns float logits.
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] = (32,),
        classes: int = 10,
        exp_bits: int = 3,
        act_bits: int = 7,
    ) -> None:
        super().__init__()
        self.exp_bits = exp_bits
        self.act_bits = act_bits
        widths = [in_features, *hidden, classes]
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(pairwise(widths)):
            layers.append(
                QuantLinear(
                    fan_in,
                    fan_out,
                    bias=False,
                    weight_quant=PowerOfTwoWeightQuant,
                    weight_exp_bits=exp_bits,
                )
            )
            if i < len(widths) - 2:
                layers.append(QuantReLU(act_quant=Pow2ActQuant, bit_width=act_bits))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def fit(
    model: Pow2MLP,
    pixels: ArrayLike,
    labels: ArrayLike,
    epochs: int = 30,
    seed: int = 0,
    lr: float = 0.01,
    batch_size: int = 64,
) -> list[float]:
    """Train ``model`` in place with Adam and cross-entropy on integer pixels.

    Deterministic for a given seed and initial model (construct the model under
    ``torch.manual_seed`` too): the seed drives the shuffle, through its own generator,
    so the global torch RNG is left alone. Runs on one thread. Leaves the model in eval
    mode and returns the mean loss of each epoch.
    """
    return fit_classifier(model, pixels_to_input(pixels), labels, epochs, seed, lr, batch_size)


@dataclass(frozen=True)
class Pow2LayerSpec:
    """One layer of an exported :class:`Pow2MLP`, in integers.

    Parameters
    ----------
    weights
        Sign, exponent codes and zero flags, shape (out, in), and the weight scale.
    input_exp
        Real input = integer input * 2^input_exp.
    input_max
        Integer inputs lie in 0 .. input_max (pixels: 16; hidden: 2^act_bits - 1).
    requant
        Requantisation of this layer's accumulator into the next layer's input; ``None``
        for the last layer, whose accumulator is the logits.
    """

    weights: PowerOfTwoWeights
    input_exp: int
    input_max: int
    requant: ReluRequant | None

    @property
    def acc_exp(self) -> int:
        """Real accumulator = integer accumulator * 2^acc_exp."""
        return self.weights.scale_exp + self.input_exp

    @property
    def output_exp(self) -> int:
        """Scale exponent of what the layer hands on (activations, or logits if last)."""
        return self.requant.out_exp if self.requant is not None else self.acc_exp

    @property
    def input_width(self) -> int:
        """Signed bits that hold every input (unsigned n bits need n + 1 signed)."""
        return self.input_max.bit_length() + 1

    @property
    def accumulator_width(self) -> int:
        """Signed bits that hold any accumulator the PE array can produce here."""
        return self.weights.fmt.accumulator_width(self.input_width, self.weights.shape[1])

    @property
    def float32_exact(self) -> bool:
        """Whether every float32 sum of the Brevitas layer is exact (|acc| <= 2^24 units)."""
        return worst_case_magnitude(self.weights, self.input_max) <= FLOAT32_EXACT_LIMIT


def export_pow2_mlp(model: Pow2MLP) -> list[Pow2LayerSpec]:
    """Per-layer integer specs of a trained :class:`Pow2MLP` (its eval-mode behaviour)."""
    modules = list(model.layers)
    linears = [(i, m) for i, m in enumerate(modules) if isinstance(m, QuantLinear)]
    specs = []
    input_exp, input_max = INPUT_EXP, DIGITS_PIXEL_MAX
    for i, linear in linears:
        if linear.bias is not None:
            raise ValueError(f"layers.{i} has a bias; the shift-vector PE has none")
        weights = export_pow2_weights(linear, name=f"layers.{i}")
        acc_exp = weights.scale_exp + input_exp
        after = modules[i + 1] if i + 1 < len(modules) else None
        requant = None
        if isinstance(after, QuantReLU):
            proxy = after.act_quant
            if proxy.is_signed or not proxy.is_quant_enabled:
                raise ValueError(f"layers.{i + 1} must quantize to unsigned integers")
            act_bits = int(proxy.bit_width())
            out_exp = scale_exponent(proxy.scale(), f"scale of layers.{i + 1}")
            requant = ReluRequant(acc_exp=acc_exp, out_exp=out_exp, act_bits=act_bits)
        elif after is not None:
            raise ValueError(f"layers.{i + 1} is a {type(after).__name__}, not a QuantReLU")
        specs.append(Pow2LayerSpec(weights, input_exp, input_max, requant))
        if requant is not None:
            input_exp, input_max = requant.out_exp, requant.max_value
    return specs


def integer_activations(spec: Sequence[Pow2LayerSpec], pixels: ArrayLike) -> list[np.ndarray]:
    """Every layer's integer input, then the integer logits, for integer ``pixels`` (N, 64).

    Entry i is what layer i's PE array consumes (N, in_i); the last entry is the logits.
    Uses only :func:`shift_matmul` and the requantisation.
    """
    x = as_int_activations(pixels, "pixels")
    first = spec[0]
    if x.size and (int(x.min()) < 0 or int(x.max()) > first.input_max):
        raise ValueError(f"pixels must lie in 0..{first.input_max}, got {x.min()}..{x.max()}")
    trace = [x]
    for layer in spec:
        acc = shift_matmul(layer.weights, x)
        x = layer.requant(acc) if layer.requant is not None else acc
        trace.append(x)
    return trace


def integer_forward(spec: Sequence[Pow2LayerSpec], pixels: ArrayLike) -> np.ndarray:
    """Integer logits (N, classes), int64; real logits = logits * 2^spec[-1].output_exp."""
    return integer_activations(spec, pixels)[-1]
