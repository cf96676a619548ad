"""A binarized MLP for the digits, trained in Brevitas and run again as threshold neurons.

This is the end-to-end proof of the threshold-logic neuron's golden model, the sibling
of :mod:`.pow2_mlp`: ``BinaryMLP`` is an ordinary Brevitas BNN (bias-free QuantLinear with
binary weights, BatchNorm1d, a signed binary QuantIdentity; a last QuantLinear without
BatchNorm gives the logits); :func:`export_binary_mlp` folds each BatchNorm and sign into
integer count thresholds (:mod:`.binary_export`); :func:`integer_forward` runs the specs
with XNOR, popcount and compare only (:mod:`.binary_golden`).

The input is binary too: a pixel is bit 1 (+1) when it is at least
:data:`PIXEL_THRESHOLD` (half the digits' range), bit 0 (-1) otherwise. Every scale is a
power of two (weights +-1, activations +-1, the last layer's weights +-2^LOGIT_EXP), so
the float sums are exact and the integer logits times 2^LOGIT_EXP equal the float
model's eval-mode logits exactly; the hidden bits equal the signs of the float
BatchNorm outputs wherever no neuron's output comes within float32 rounding of 0
(:attr:`BinaryLayerSpec.float32_safe`, true for the trained defaults).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
from brevitas.nn import QuantIdentity, QuantLinear
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from numpy.typing import ArrayLike
from torch import nn

from .binary_export import BinaryLayerSpec, export_binary_layers
from .datasets import DIGITS_PIXEL_MAX
from .shift_golden import as_int_activations
from .training import fit_classifier

PIXEL_THRESHOLD = 8
"""A pixel (0..16) is bit 1 (+1) when >= PIXEL_THRESHOLD, else bit 0 (-1)."""

LOGIT_EXP = -3
"""The last layer's weights are +-2^LOGIT_EXP, so the logits are (2p - S) * 2^LOGIT_EXP.

Any positive scale gives the same argmax; this one keeps the logits of a 64-wide layer
in +-8, where cross-entropy trains well (with +-64 it saturates)."""


class BinaryWeightQuant(SignedBinaryWeightPerTensorConst):
    """Weights +-1: Brevitas' signed binary quantizer on a constant scale of 1.

    Brevitas' default scale, 0.1, is not a power of two, so its float sums round; with a
    power of two they are exact. The latent float weights are clipped in place to the
    scale, +-1, as in Brevitas' quantizer. Override the scale per layer with the layer
    keyword ``weight_scaling_const``.
    """

    scaling_const = 1.0


def binarize_pixels(pixels: ArrayLike) -> np.ndarray:
    """Bits (uint8, same shape) of integer digits pixels: 1 where pixel >= PIXEL_THRESHOLD.

    Raises
    ------
    ValueError
        If ``pixels`` is not an integer array with values in 0..16.
    """
    pixels = as_int_activations(pixels, "pixels")
    if pixels.size and (int(pixels.min()) < 0 or int(pixels.max()) > DIGITS_PIXEL_MAX):
        raise ValueError(
            f"pixels must lie in 0..{DIGITS_PIXEL_MAX}, got {pixels.min()}..{pixels.max()}"
        )
    return (pixels >= PIXEL_THRESHOLD).astype(np.uint8)


def pixels_to_input(pixels: ArrayLike) -> torch.Tensor:
    """Integer pixels as the model's float32 input: +1.0 for bit 1, -1.0 for bit 0."""
    bits = binarize_pixels(pixels)
    return torch.from_numpy(bits.astype(np.float32) * 2 - 1)


class BinaryMLP(nn.Module):
    """MLP with binary weights and binary activations: the threshold-neuron array's model.

    Parameters
    ----------
    in_features
        Pixels per image (64 for the 8x8 digits).
    hidden
        Widths of the hidden layers; ``()`` gives a single linear layer.
    classes
        Number of logits.

    Notes
    -----
    ``forward`` takes ``pixels_to_input(pixels)`` (+-1) and returns float logits.
    ``layers`` holds, per hidden layer, ``QuantLinear``, ``BatchNorm1d`` and
    ``QuantIdentity``; then the last ``QuantLinear``.
    """

    def __init__(
        self, in_features: int = 64, hidden: Sequence[int] = (64,), classes: int = 10
    ) -> None:
        super().__init__()
        widths = [in_features, *hidden, classes]
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(pairwise(widths)):
            last = i == len(widths) - 2
            layers.append(
                QuantLinear(
                    fan_in,
                    fan_out,
                    bias=False,
                    weight_quant=BinaryWeightQuant,
                    weight_scaling_const=2.0**LOGIT_EXP if last else 1.0,
                )
            )
            if not last:
                layers.append(nn.BatchNorm1d(fan_out))
                layers.append(QuantIdentity(act_quant=SignedBinaryActPerTensorConst))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def fit(
    model: BinaryMLP,
    pixels: ArrayLike,
    labels: ArrayLike,
    epochs: int = 30,
    seed: int = 0,
    lr: float = 0.01,
    batch_size: int = 64,
) -> list[float]:
    """Train ``model`` in place on integer pixels, binarised; see :func:`fit_classifier`.

    Construct the model under ``torch.manual_seed`` too for a reproducible run. The
    straight-through estimators of Brevitas' binary quantizers carry the gradients.
    """
    return fit_classifier(model, pixels_to_input(pixels), labels, epochs, seed, lr, batch_size)


def export_binary_mlp(model: BinaryMLP) -> list[BinaryLayerSpec]:
    """Per-layer threshold-neuron specs of a trained :class:`BinaryMLP` (eval mode).

    Hidden layers carry weight bits (out, in) and int64 count thresholds, the last one
    weight bits and ``thresholds=None``; ``magnitudes`` is ``None`` throughout.
    """
    return export_binary_layers(model.layers, "layers")


def integer_activations(spec: Sequence[BinaryLayerSpec], pixels: ArrayLike) -> list[np.ndarray]:
    """Every layer's input bits, then the integer logits, for integer ``pixels`` (N, 64).

    Entry i is what layer i's neuron array consumes, uint8 bits (N, in_i); the last entry
    is the int64 logits 2p - S (N, classes). Uses only XNOR, popcount and compare.
    """
    x = binarize_pixels(pixels)
    trace = [x]
    for layer in spec:
        x = layer.forward(x)
        trace.append(x)
    return trace


def integer_forward(spec: Sequence[BinaryLayerSpec], pixels: ArrayLike) -> np.ndarray:
    """Integer logits (N, classes), int64; real logits = logits * spec[-1].scale."""
    return integer_activations(spec, pixels)[-1]
