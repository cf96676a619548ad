"""Integer-exact golden model of the shift-vector PE array: products by shifts, then sums.

Each weight is a sign, an exponent code e and a zero flag; its product with an integer
activation is ``x << (max_exp - e)``, negated for a negative sign, dropped for zero. This
is the arithmetic the RTL performs lane by lane, done here in int64 over whole tensors,
so that ``shift_matmul(w, x) * 2^(w.scale_exp + x_exp)`` equals the Brevitas layer's
float output bit for bit (as long as the float accumulation itself is exact).

Nothing here multiplies: the reference must not hide a mistake in the shift encoding
behind a correct ``np.matmul``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .pow2_export import PowerOfTwoWeights

_INT64_MAX = np.iinfo(np.int64).max
# Rows of x handled at once: bounds the (rows, M, K) int64 temporary to ~32 MiB.
_TERMS_PER_CHUNK = 1 << 22


def as_int_activations(x: ArrayLike, name: str = "x") -> np.ndarray:
    """``x`` as int64, refusing anything that is not already an integer array."""
    array = np.asarray(x)
    if array.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be an integer array (the PE's activations are integers), "
            f"got dtype {array.dtype}; scale and round it first"
        )
    if array.dtype == np.uint64 and array.size and int(array.max()) > _INT64_MAX:
        flat = int(np.argmax(array.reshape(-1) > _INT64_MAX))
        raise ValueError(f"{name} has a value above int64: {int(array.reshape(-1)[flat])}")
    return array.astype(np.int64)


def worst_case_magnitude(weights: PowerOfTwoWeights, max_abs_x: int) -> int:
    """Largest |y| any output can reach for activations with |x| <= ``max_abs_x``.

    Exact (Python ints): the largest row sum of |integer weight| times ``max_abs_x``.
    Every partial sum of the shift-and-add is bounded by it too.
    """
    matrix = weights.matrix()
    fmt = matrix.fmt
    shifts = fmt.max_exp - matrix.exp.astype(np.int64)
    largest_row = 0
    for row_shift, row_zero in zip(shifts, matrix.zero, strict=True):
        counts = np.bincount(row_shift[~row_zero], minlength=fmt.max_exp + 1)
        largest_row = max(largest_row, sum(int(c) << s for s, c in enumerate(counts)))
    return largest_row * int(max_abs_x)


def shift_matmul(weights: PowerOfTwoWeights, x: ArrayLike) -> np.ndarray:
    """y[n, m] = sum_k w_int[m, k] * x[n, k], with shifts and adds only, in int64.

    Parameters
    ----------
    weights
        Power-of-two weights, read as a matrix (M, K) (a conv weight is flattened to
        (out, in * kh * kw), see :func:`im2col`).
    x
        Integer activations, shape (N, K).

    Returns
    -------
    np.ndarray
        int64, shape (N, M): the accumulator in units of 2^(weights.scale_exp + x_exp).

    Raises
    ------
    ValueError
        If ``x`` is not an integer array of shape (N, K), or if the sum could overflow
        int64 for activations as large as ``x``'s.
    """
    matrix = weights.matrix()
    rows, depth = matrix.shape
    x = as_int_activations(x)
    if x.ndim != 2 or x.shape[1] != depth:
        raise ValueError(
            f"x must have shape (N, {depth}) for weights {weights.shape}, got {x.shape}"
        )
    max_abs_x = max(int(x.max()), -int(x.min())) if x.size else 0
    bound = worst_case_magnitude(matrix, max_abs_x)
    if bound > _INT64_MAX:
        raise ValueError(
            f"shift_matmul could overflow int64: |y| can reach {bound} (~2^{bound.bit_length()}) "
            f"with max |x| = {max_abs_x} and weights {weights.shape}; use narrower activations"
        )

    # Zero weights get a harmless shift of 0 and are masked out after shifting.
    shift = np.where(matrix.zero, 0, matrix.fmt.max_exp - matrix.exp.astype(np.int64))
    negative = matrix.sign == 1
    keep = ~matrix.zero
    y = np.empty((x.shape[0], rows), dtype=np.int64)
    chunk = max(1, _TERMS_PER_CHUNK // max(1, rows * depth))
    for start in range(0, x.shape[0], chunk):
        block = x[start : start + chunk, None, :]
        terms = np.left_shift(block, shift[None])
        terms = np.where(negative, -terms, terms)
        terms = np.where(keep, terms, 0)
        y[start : start + chunk] = terms.sum(axis=2)
    return y


def _pair(value: int | tuple[int, int], name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair


def im2col(
    x: ArrayLike,
    kernel_size: tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> np.ndarray:
    """Patches of ``x`` (N, C, H, W) as rows (N, Ho, Wo, C * kh * kw), zero padded.

    The column order (channel, then kernel row, then kernel column) is that of a conv
    weight (out, C, kh, kw) flattened by :meth:`PowerOfTwoWeights.matrix`, i.e. the
    activation stream a weight-stationary PE array sees for a convolution.
    """
    x = as_int_activations(x)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {x.shape}")
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    sh, sw = _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    if padded.shape[2] < kh or padded.shape[3] < kw:
        raise ValueError(
            f"kernel {kh}x{kw} is larger than the padded input {padded.shape[2]}x{padded.shape[3]}"
        )
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw]  # (N, C, Ho, Wo, kh, kw)
    n, c, ho, wo = windows.shape[:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho, wo, c * kh * kw)


def shift_conv2d(
    weights: PowerOfTwoWeights,
    x: ArrayLike,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> np.ndarray:
    """2-D convolution (groups=1, dilation=1, zero padding) by :func:`im2col` and shifts.

    Parameters
    ----------
    weights
        Power-of-two weights of shape (M, C, kh, kw), as exported from a QuantConv2d.
    x
        Integer activations, shape (N, C, H, W).

    Returns
    -------
    np.ndarray
        int64, shape (N, M, Ho, Wo), in units of 2^(weights.scale_exp + x_exp).
    """
    if len(weights.shape) != 4:
        raise ValueError(f"conv weights must have shape (M, C, kh, kw), got {weights.shape}")
    out_channels, in_channels, kh, kw = weights.shape
    x = as_int_activations(x)
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"x must have shape (N, {in_channels}, H, W) for weights {weights.shape}, got {x.shape}"
        )
    patches = im2col(x, (kh, kw), stride, padding)
    n, ho, wo, depth = patches.shape
    y = shift_matmul(weights, patches.reshape(n * ho * wo, depth))
    return y.reshape(n, ho, wo, out_channels).transpose(0, 3, 1, 2)
