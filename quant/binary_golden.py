"""Integer-exact golden model of the threshold-logic binary neuron: XNOR, popcount, compare.

A binary value is a bit: 1 stands for +1, 0 for -1 (Brevitas' binary quantizers send 0 to
+1, so sign(0) is bit 1). A neuron with weight bits w and, optionally, integer magnitudes
m (default all 1) counts the weighted positions where input and weight agree,

    p = sum_i m_i * XNOR(x_i, w_i),

which is the signed sum in disguise: sum_i m_i (+-1)(+-1) = 2p - S with S = sum_i m_i.
The hardware fires when the count reaches an integer threshold, y = [p >= T], T in
0 .. S + 1: T = 0 always fires, T = S + 1 never does. The same cell is AND (all weights 1,
T = S), OR (T = 1), majority (T = ceil(S / 2)) or a BNN neuron with BatchNorm folded
into T (see :mod:`.binary_export`).

Everything here is done as the RTL does it, XNOR gates and a count, in integers; nothing
multiplies signs with ``np.matmul`` or touches a float, so a mistake in the bit
conventions cannot hide behind a correct dot product.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

_INT64_MAX = np.iinfo(np.int64).max
# Rows of x handled at once: bounds the (rows, M, K) int64 temporary to ~32 MiB.
_TERMS_PER_CHUNK = 1 << 22


def _format_index(flat_index: int, shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat_index, shape)) + "]"


def as_bits(bits: ArrayLike, name: str = "bits") -> np.ndarray:
    """``bits`` as uint8, refusing anything that is not an integer or bool array of 0 and 1.

    Raises
    ------
    ValueError
        Naming ``name``, for a float (or other non-integer) dtype, or the first value that
        is not 0 or 1, with its index.
    """
    array = np.asarray(bits)
    if array.dtype.kind not in "iub":
        raise ValueError(
            f"{name} must be an integer or bool array of bits (1 = +1, 0 = -1), "
            f"got dtype {array.dtype}"
        )
    not_bit = (array != 0) & (array != 1)
    if not_bit.any():
        flat = int(np.flatnonzero(not_bit)[0])
        raise ValueError(
            f"{name}{_format_index(flat, array.shape)} = {array.reshape(-1)[flat].item()!r} "
            f"is not a bit: expected 0 (-1) or 1 (+1)"
        )
    return array.astype(np.uint8)


def as_magnitudes(magnitudes: ArrayLike | None, shape: tuple[int, int]) -> np.ndarray:
    """Per-weight magnitudes as int64 of ``shape`` (M, K); ``None`` means all 1.

    Raises
    ------
    ValueError
        For a non-integer dtype, another shape, a negative value (naming its index), or
        magnitudes whose row sums could overflow int64.
    """
    if magnitudes is None:
        return np.ones(shape, dtype=np.int64)
    array = np.asarray(magnitudes)
    if array.dtype.kind not in "iu":
        raise ValueError(f"magnitudes must be an integer array, got dtype {array.dtype}")
    if array.shape != shape:
        raise ValueError(
            f"magnitudes must have the shape of w_bits {shape} (one per weight), got {array.shape}"
        )
    if array.dtype.kind == "i" and array.size and int(array.min()) < 0:
        flat = int(np.argmax(array.reshape(-1) < 0))
        raise ValueError(
            f"magnitudes{_format_index(flat, shape)} = {int(array.reshape(-1)[flat])} is "
            f"negative; a magnitude is 0..max_weight (its sign lives in the weight bit)"
        )
    # A count never exceeds the row sum, so a row sum within int64 bounds every count.
    largest = int(array.max()) if array.size else 0
    if largest * shape[1] > _INT64_MAX:
        raise ValueError(
            f"magnitudes up to {largest} over a fan-in of {shape[1]} could overflow int64"
        )
    return array.astype(np.int64)


def magnitude_sums(w_bits: ArrayLike, magnitudes: ArrayLike | None = None) -> np.ndarray:
    """S per neuron, the sum of its magnitudes (its fan-in when all are 1), int64 (M,).

    S is the largest count a neuron can reach; its signed sum is 2p - S and its threshold
    lies in 0 .. S + 1.
    """
    w = as_bits(w_bits, "w_bits")
    if w.ndim != 2:
        raise ValueError(f"w_bits must have shape (M, K), got {w.shape}")
    return as_magnitudes(magnitudes, w.shape).sum(axis=1)


def _bits_and_weights(
    x_bits: ArrayLike, w_bits: ArrayLike, magnitudes: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = as_bits(x_bits, "x_bits")
    w = as_bits(w_bits, "w_bits")
    if x.ndim != 2:
        raise ValueError(f"x_bits must have shape (N, K), got {x.shape}")
    if w.ndim != 2 or w.shape[1] != x.shape[1]:
        raise ValueError(
            f"w_bits must have shape (M, {x.shape[1]}) to match x_bits {x.shape}, got {w.shape}"
        )
    return x, w, as_magnitudes(magnitudes, w.shape)


def popcount_matches(
    x_bits: ArrayLike, w_bits: ArrayLike, magnitudes: ArrayLike | None = None
) -> np.ndarray:
    """p[n, m] = sum_k magnitudes[m, k] * XNOR(x_bits[n, k], w_bits[m, k]), in int64.

    Parameters
    ----------
    x_bits
        Input bits, shape (N, K), 0 or 1 (integer or bool dtype).
    w_bits
        Weight bits, shape (M, K), one row per neuron.
    magnitudes
        Non-negative integer magnitude of each weight, shape (M, K); ``None`` means all 1,
        which makes p a plain popcount of matching positions.

    Returns
    -------
    np.ndarray
        int64, shape (N, M), each count in 0 .. S_m (:func:`magnitude_sums`).

    Raises
    ------
    ValueError
        If a value is not a bit, a shape does not match, or a magnitude is negative.
    """
    x, w, m = _bits_and_weights(x_bits, w_bits, magnitudes)
    rows = w.shape[0]
    counts = np.empty((x.shape[0], rows), dtype=np.int64)
    chunk = max(1, _TERMS_PER_CHUNK // max(1, rows * x.shape[1]))
    for start in range(0, x.shape[0], chunk):
        block = x[start : start + chunk, None, :]
        matches = 1 - (block ^ w[None])  # XNOR of bits
        counts[start : start + chunk] = (matches * m[None]).sum(axis=2)
    return counts


def signed_sums(
    x_bits: ArrayLike, w_bits: ArrayLike, magnitudes: ArrayLike | None = None
) -> np.ndarray:
    """sum_k m[m, k] * (+-1)(+-1) = 2p - S, int64 (N, M): a layer's output before any threshold.

    This is what a binarized layer without a sign after it (the last one) hands on: its
    integer logits.
    """
    counts = popcount_matches(x_bits, w_bits, magnitudes)
    return 2 * counts - magnitude_sums(w_bits, magnitudes)[None, :]


def check_thresholds(
    thresholds: ArrayLike, sums: ArrayLike, name: str = "thresholds"
) -> np.ndarray:
    """``thresholds`` as int64 (M,), each within 0 .. S_m + 1 of its neuron.

    Parameters
    ----------
    thresholds
        One integer count threshold per neuron.
    sums
        S per neuron (:func:`magnitude_sums`).
    name
        What to call the thresholds in error messages (e.g. ``"layers.0 thresholds"``).

    Raises
    ------
    ValueError
        For a non-integer dtype, a shape other than (M,), or the first threshold out of
        range, naming the neuron, the value and the range it accepts.
    """
    array = np.asarray(thresholds)
    sums = np.asarray(sums, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array, got dtype {array.dtype}")
    if array.shape != sums.shape:
        raise ValueError(f"{name} must have shape {sums.shape} (one per neuron), got {array.shape}")
    # Compared as Python ints: a uint64 threshold must not wrap around in int64.
    for neuron, (value, total) in enumerate(zip(array.tolist(), sums.tolist(), strict=True)):
        if not 0 <= value <= total + 1:
            raise ValueError(
                f"{name}[{neuron}] = {value} is out of range for neuron {neuron}: expected "
                f"0..{total + 1} (0 always fires, {total + 1} = sum of magnitudes + 1 never fires)"
            )
    return array.astype(np.int64)


def threshold_layer(
    x_bits: ArrayLike,
    w_bits: ArrayLike,
    thresholds: ArrayLike,
    magnitudes: ArrayLike | None = None,
    *,
    name: str = "thresholds",
) -> np.ndarray:
    """y[n, m] = [popcount_matches(x, w, magnitudes)[n, m] >= thresholds[m]], as uint8 bits.

    Parameters
    ----------
    x_bits
        Input bits, shape (N, K).
    w_bits
        Weight bits, shape (M, K).
    thresholds
        Integer count threshold per neuron, shape (M,), each in 0 .. S_m + 1.
    magnitudes
        As for :func:`popcount_matches`.
    name
        What to call the thresholds in error messages.

    Returns
    -------
    np.ndarray
        uint8, shape (N, M): 1 (+1) where the count reaches the threshold, 0 (-1) elsewhere.

    Raises
    ------
    ValueError
        As :func:`popcount_matches` and :func:`check_thresholds`.
    """
    counts = popcount_matches(x_bits, w_bits, magnitudes)
    limits = check_thresholds(thresholds, magnitude_sums(w_bits, magnitudes), name)
    return (counts >= limits[None, :]).astype(np.uint8)
