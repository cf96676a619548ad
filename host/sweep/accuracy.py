"""The accuracy of a grid point: its network trained on the digits and run in integers.

Accuracy is that of the integer golden model (the arithmetic the RTL matches bit for
bit), on the held-out digits, so no RTL runs in a sweep.

- ``shift`` and ``multiplier`` run the same power-of-two MLP (a multiplier by
  +-2^-e computes what a shift does): :class:`~hilt.quant.pow2_mlp.Pow2MLP` with
  ``exp_bits`` exponent bits and hidden activations of ``act_width - 1`` unsigned bits,
  which fit the array's signed ``act_width``-bit activations. The pixels (0..16, five
  bits) are the first layer's activations, so they must fit too: with fewer than five
  unsigned bits ``a``, a pixel becomes ``min(pixel >> max(0, 4 - a), 2^a - 1)`` (one
  bit: ink at half the range, as the binarized MLP reads it).
- ``binary`` runs :class:`~hilt.quant.binary_mlp.BinaryMLP`, 64-hidden-10.

Every training of a sweep starts from the config's seed (split, initial weights, data
order), so two points differ by their parameters only, on any machine and in any order.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

PIXEL_BITS = 5
"""Unsigned bits of a digits pixel (0..16)."""


def quantize_pixels(pixels: ArrayLike, act_bits: int) -> np.ndarray:
    """Digits pixels (0..16) as unsigned ``act_bits``-bit activations.

    Unchanged from five bits on; below, shifted right by ``max(0, 4 - act_bits)`` and
    saturated at ``2^act_bits - 1`` (so four bits lose only 16 -> 15, and one bit is
    ``pixel >= 8``).
    """
    pixels = np.asarray(pixels, dtype=np.int64)
    if act_bits >= PIXEL_BITS:
        return pixels
    return np.minimum(pixels >> max(0, PIXEL_BITS - 1 - act_bits), (1 << act_bits) - 1)


def evaluate_accuracy(element: str, params: Mapping[str, Any], *, seed: int,
                      epochs: int) -> dict[str, float]:
    """Train the point's network and measure its integer model's test accuracy.

    ``params`` needs only the element's accuracy parameters. Returns ``accuracy`` (a
    fraction of the test split) and ``train_s``.
    """
    import torch

    from hilt.quant import binary_mlp, pow2_mlp
    from hilt.quant.datasets import load_digits

    started = time.perf_counter()
    split = load_digits(seed=seed)
    x_train, x_test = split.x_train, split.x_test
    mlp = binary_mlp if element == "binary" else pow2_mlp
    # fork_rng: the initial weights come from the seed, and the caller's RNG is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if element == "binary":
            model = mlp.BinaryMLP(hidden=(params["hidden"],))
        else:
            act_bits = params["act_width"] - 1
            x_train = quantize_pixels(x_train, act_bits)
            x_test = quantize_pixels(x_test, act_bits)
            model = mlp.Pow2MLP(hidden=(params["hidden"],), exp_bits=params["exp_bits"],
                                act_bits=act_bits)
    mlp.fit(model, x_train, split.y_train, epochs=epochs, seed=seed)
    spec = mlp.export_binary_mlp(model) if element == "binary" else mlp.export_pow2_mlp(model)
    logits = mlp.integer_forward(spec, x_test)
    accuracy = float(np.mean(logits.argmax(axis=1) == np.asarray(split.y_test)))
    return {"accuracy": accuracy, "train_s": time.perf_counter() - started}
