"""Export of a trained Brevitas binarized layer stack to threshold-neuron specs.

A hidden layer of a BNN is ``QuantLinear`` (binary weights, no bias), ``BatchNorm1d`` and
a ``QuantIdentity`` with a signed binary act quant. For a neuron with fan-in weight S
(its fan-in, or its sum of magnitudes) and count p of matching bits, the ``QuantLinear``
computes z = c * (2p - S), where c > 0 is the weight scale times the input scale. The
BatchNorm (running statistics, as in eval mode) and the sign then give

    bit = [ gamma * (z - mean) / sqrt(var + eps) + beta >= 0 ]

(Brevitas' binary quantizers send 0 to +1, hence ``>=``). That is one comparison of p
with a constant, so the pair folds into ONE integer count threshold T in 0 .. S + 1,
the cell the RTL implements (:func:`.binary_golden.threshold_layer`):

* gamma > 0: the output grows with p; weight bits are kept and bit = [p >= T].
* gamma < 0: the output falls as p grows; the neuron's weight bits are flipped, which
  turns its count into p' = S - p, and bit = [p' >= T] (that is, [p <= S - T]).
* gamma = 0: the output is the constant beta; T = 0 (always +1) if beta >= 0, including
  beta = 0 (sign(0) = +1), else T = S + 1 (never).

In every case T is the smallest count t in 0..S (S + 1 if none) at which the
BatchNorm's output, evaluated exactly, is >= 0; in closed form, with
tau = mean - beta * sqrt(var + eps) / gamma,

    gamma > 0:  T = clamp(ceil((S + tau / c) / 2), 0, S + 1)
    gamma < 0:  T = clamp(ceil((S - tau / c) / 2), 0, S + 1)

A count exactly on the boundary (the BatchNorm output exactly 0, a tie) fires.

Nothing is rounded: every parameter is read as the exact rational value of the float it
is stored as (``fractions.Fraction``), and the square root is never taken; the sign of
gamma * (z - mean) + beta * sqrt(var + eps) is decided by comparing squares, with the
signs of the two terms handled first. So T is right for the real-number BatchNorm of the
stored parameters. Brevitas evaluates it in float32, whose rounding can tip a neuron
whose output at some count lies within a few float32 ulps of 0 (ties included) the
other way; :attr:`BinaryLayerSpec.float32_margin` measures how close each neuron comes,
and :attr:`BinaryLayerSpec.float32_safe` says whether the float model must agree.

The last layer, a ``QuantLinear`` with nothing after it, keeps its weight bits and has no
threshold: its integer logits are 2p - S, and the float logits are c times those, c > 0
per tensor, so the argmax is the same.

The export knows nothing about how the RTL folds a layer onto its lanes: any fan-in is
exported as it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch
from brevitas.core.quant import BinaryQuant, ClampedBinaryQuant
from brevitas.nn import QuantIdentity, QuantLinear
from numpy.typing import ArrayLike
from torch import nn

from .binary_golden import (
    as_bits,
    as_magnitudes,
    check_thresholds,
    magnitude_sums,
    signed_sums,
    threshold_layer,
)

FLOAT32_MARGIN = 2.0**-20
"""Relative distance from 0 beyond which float32 rounding cannot flip a neuron's sign.

torch evaluates an eval-mode BatchNorm as ``z * alpha + (beta - mean * alpha)`` with
``alpha = gamma / sqrt(var + eps)``, about six float32 roundings, each at most 2^-24 of
the terms involved; 2^-20 (16 ulps) of |gamma| (|z| + |mean|) / sqrt(var + eps) + |beta|
bounds their sum with room to spare."""

FLOAT32_EXACT_LIMIT = 1 << 24
"""Every integer of magnitude up to 2^24 is exact in float32, so a sum of +-2^k terms whose
count stays within it is exact in any order."""

_BINARY_TENSOR_QUANTS = (BinaryQuant, ClampedBinaryQuant)
_STACK_SHAPE = (
    "QuantLinear, BatchNorm1d, QuantIdentity, ..., QuantLinear (binary weights, no bias; "
    "signed binary activations)"
)


class FoldedNeuron(NamedTuple):
    """One neuron's BatchNorm and sign as the threshold cell runs them.

    ``flip``: invert the neuron's weight bits (gamma < 0); ``threshold``: fire when the
    count of the (possibly flipped) weights is >= threshold, in 0 .. S + 1.
    """

    flip: bool
    threshold: int


def _exact(value: float | int | Fraction | torch.Tensor, what: str) -> Fraction:
    number = value.item() if isinstance(value, torch.Tensor) else value
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"{what} = {number!r} is not finite")
    return Fraction(number)


@dataclass(frozen=True)
class BatchNormSign:
    """The exact decision of one neuron's BatchNorm followed by a binary sign.

    Parameters
    ----------
    scale
        c > 0: the pre-activation is z = c * (signed sum), the signed sum being 2p - S.
    gamma, beta, mean, var, eps
        The BatchNorm's weight, bias, running mean, running variance and epsilon, as
        exact rationals (:meth:`from_floats` reads them from floats as stored).

    The decision is fires(s) = [gamma * (c * s - mean) / sqrt(var + eps) + beta >= 0].
    """

    scale: Fraction
    gamma: Fraction
    beta: Fraction
    mean: Fraction
    var: Fraction
    eps: Fraction

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if self.var + self.eps <= 0:
            raise ValueError(
                f"var + eps = {self.var + self.eps} is not positive; the BatchNorm divides "
                f"by its square root"
            )

    @classmethod
    def from_floats(
        cls,
        scale: float | Fraction,
        gamma: float,
        beta: float,
        mean: float,
        var: float,
        eps: float,
        name: str = "neuron",
    ) -> BatchNormSign:
        """Read every parameter as the exact value of the float it is (no rounding)."""
        values = {"scale": scale, "gamma": gamma, "beta": beta, "mean": mean, "var": var}
        exact = {key: _exact(value, f"{name} {key}") for key, value in values.items()}
        return cls(eps=_exact(eps, f"{name} eps"), **exact)

    def fires(self, signed_sum: int) -> bool:
        """Whether the BatchNorm output at this signed sum is >= 0, in exact arithmetic.

        With A = gamma * (c * s - mean) and B = beta, the output times sqrt(var + eps) > 0
        is A + B * sqrt(V); its sign follows from the signs of A and B and, where they
        differ, from comparing A^2 with B^2 * V, both exact rationals.
        """
        a = self.gamma * (self.scale * signed_sum - self.mean)
        b = self.beta
        v = self.var + self.eps
        if b == 0:
            return a >= 0
        if b > 0:
            return a >= 0 or b * b * v >= a * a
        return a >= 0 and a * a >= b * b * v

    def fold(self, total: int) -> FoldedNeuron:
        """The flip and count threshold for a neuron whose magnitudes sum to ``total`` (S).

        With the weights flipped when gamma < 0, firing is nondecreasing in the count t,
        so T is found by bisection over 0..S + 1 with :meth:`fires` as the oracle; no
        closed form with a rounded square root is involved.
        """
        if isinstance(total, bool) or not isinstance(total, int | np.integer) or total < 0:
            raise ValueError(f"total must be an int >= 0, got {total!r}")
        total = int(total)
        flip = self.gamma < 0

        def fires_at(count: int) -> bool:
            signed_sum = 2 * count - total
            return self.fires(-signed_sum if flip else signed_sum)

        low, high = 0, total + 1  # the answer lies in low..high
        while low < high:
            middle = (low + high) // 2
            if fires_at(middle):
                high = middle
            else:
                low = middle + 1
        return FoldedNeuron(flip, low)

    def float32_margin(self, total: int) -> float:
        """How close the output comes to 0 over every count, relative to its terms.

        min over s in {-S, -S + 2, .., S} of |y(s)| / (|gamma| (|c s| + |mean|) / sqrt(V)
        + |beta|), in float64 (accurate to ~2^-52, far finer than :data:`FLOAT32_MARGIN`).
        ``inf`` when float32 evaluates the output exactly: gamma = 0 (the output is beta)
        or every term 0. A tie gives 0.
        """
        if self.gamma == 0:
            return math.inf
        sums = np.arange(-total, total + 1, 2, dtype=np.float64)
        root = math.sqrt(float(self.var + self.eps))
        gamma, beta, mean = float(self.gamma), float(self.beta), float(self.mean)
        z = float(self.scale) * sums
        output = gamma * (z - mean) + beta * root  # y * sqrt(V)
        size = abs(gamma) * (np.abs(z) + abs(mean)) + abs(beta) * root
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where(size > 0, np.abs(output) / size, math.inf)
        return float(relative.min())


def fold_batchnorm_sign(
    total: int,
    scale: float | Fraction,
    gamma: float,
    beta: float,
    mean: float,
    var: float,
    eps: float,
) -> FoldedNeuron:
    """Flip and count threshold of one neuron (see the module docstring for the rule).

    Parameters
    ----------
    total
        S, the neuron's fan-in (or sum of magnitudes).
    scale
        c > 0, with z = c * (2p - S) the float pre-activation.
    gamma, beta, mean, var, eps
        The BatchNorm's parameters as stored (floats, read exactly).
    """
    return BatchNormSign.from_floats(scale, gamma, beta, mean, var, eps).fold(total)


def _is_power_of_two(value: Fraction) -> bool:
    numerator, denominator = value.numerator, value.denominator
    return value > 0 and numerator & (numerator - 1) == 0 and denominator & (denominator - 1) == 0


def _read_only(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class BinaryLayerSpec:
    """One binarized layer as the threshold-neuron array runs it.

    Parameters
    ----------
    weight_bits
        uint8 (out, in), 1 for +1, 0 for -1; already flipped where the BatchNorm's gamma
        is negative.
    thresholds
        int64 (out,), the count threshold of each neuron in 0 .. S + 1; ``None`` for the
        last layer, which hands on its signed sums 2p - S as integer logits.
    scale
        c > 0: the float pre-activation (or logit) of the Brevitas layer is c * (2p - S)
        for the unflipped weights.
    magnitudes
        int64 (out, in) per-weight magnitudes, or ``None`` for all 1 (Brevitas layers).
    float32_margin
        float64 (out,), :meth:`BatchNormSign.float32_margin` of each neuron; ``None`` when
        unknown (the last layer, or a hand-written spec).
    name
        The module path of the ``QuantLinear``, for messages.

    The arrays are stored read-only.
    """

    weight_bits: np.ndarray
    thresholds: np.ndarray | None
    scale: Fraction
    magnitudes: np.ndarray | None = None
    float32_margin: np.ndarray | None = None
    name: str = "layer"

    def __post_init__(self) -> None:
        bits = as_bits(self.weight_bits, f"{self.name} weight_bits")
        if bits.ndim != 2:
            raise ValueError(f"{self.name} weight_bits must have shape (out, in), got {bits.shape}")
        object.__setattr__(self, "weight_bits", _read_only(bits))
        if self.magnitudes is not None:
            magnitudes = as_magnitudes(self.magnitudes, bits.shape)
            object.__setattr__(self, "magnitudes", _read_only(magnitudes))
        if self.thresholds is not None:
            thresholds = check_thresholds(self.thresholds, self.sums, f"{self.name} thresholds")
            object.__setattr__(self, "thresholds", _read_only(thresholds))
        scale = self.scale
        if not isinstance(scale, Fraction | int | float) or isinstance(scale, bool):
            raise TypeError(f"{self.name} scale must be a Fraction, got {scale!r}")
        scale = _exact(scale, f"{self.name} scale")
        if scale <= 0:
            raise ValueError(f"{self.name} scale must be positive, got {scale}")
        object.__setattr__(self, "scale", scale)
        if self.float32_margin is not None:
            margin = np.asarray(self.float32_margin, dtype=np.float64)
            if margin.shape != (bits.shape[0],):
                raise ValueError(
                    f"{self.name} float32_margin must have shape ({bits.shape[0]},), "
                    f"got {margin.shape}"
                )
            object.__setattr__(self, "float32_margin", _read_only(margin))

    @property
    def shape(self) -> tuple[int, int]:
        """(out, in): neurons and fan-in."""
        return self.weight_bits.shape

    @property
    def sums(self) -> np.ndarray:
        """S per neuron, int64 (out,): the largest count, and 2p - S is the signed sum."""
        return magnitude_sums(self.weight_bits, self.magnitudes)

    @property
    def float32_exact(self) -> bool:
        """Whether Brevitas' float32 pre-activations are exact: c = 2^k and S <= 2^24.

        Each float product is then +-c and each partial sum an integer multiple of c
        within 2^24 of them, so no sum rounds, in any order.
        """
        return _is_power_of_two(self.scale) and int(self.sums.max(initial=0)) <= (
            FLOAT32_EXACT_LIMIT
        )

    @property
    def float32_safe(self) -> bool:
        """Whether Brevitas' float32 model must give exactly this layer's bits or logits.

        True when the pre-activations are exact (:attr:`float32_exact`) and, for a layer
        with thresholds, every neuron's margin is above :data:`FLOAT32_MARGIN` (False
        when the margins are unknown).
        """
        if not self.float32_exact:
            return False
        if self.thresholds is None:
            return True
        return self.float32_margin is not None and bool(
            (self.float32_margin > FLOAT32_MARGIN).all()
        )

    def forward(self, x_bits: ArrayLike) -> np.ndarray:
        """Output bits (uint8 (N, out)), or integer logits 2p - S (int64) if no thresholds."""
        if self.thresholds is None:
            return signed_sums(x_bits, self.weight_bits, self.magnitudes)
        return threshold_layer(
            x_bits,
            self.weight_bits,
            self.thresholds,
            self.magnitudes,
            name=f"{self.name} thresholds",
        )


def _positive_scale(scale: torch.Tensor, what: str) -> Fraction:
    values = scale.detach().cpu().reshape(-1)
    if values.numel() != 1:
        raise ValueError(
            f"{what} must be one positive per-tensor value, got shape {tuple(scale.shape)}"
        )
    number = values.item()
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{what} must be positive and finite, got {number!r}")
    return Fraction(number)


def _binary_linear(path: str, module: nn.Module) -> tuple[np.ndarray, Fraction]:
    """Weight bits (out, in) and the weight scale of a binary QuantLinear, or a ValueError."""
    if not isinstance(module, QuantLinear):
        raise ValueError(
            f"{path} is a {type(module).__name__} where a QuantLinear with binary weights "
            f"must be; expected {_STACK_SHAPE}"
        )
    if module.bias is not None:
        raise ValueError(
            f"{path} has a bias; the threshold neuron has none (build it with bias=False)"
        )
    for role in ("input", "output"):
        if getattr(module, f"{role}_quant").is_quant_enabled:
            raise ValueError(
                f"{path} quantizes its {role}; a binary layer takes the previous layer's "
                f"bits and hands on its sums as they are ({role}_quant must be None)"
            )
    proxy = module.weight_quant
    tensor_quant = getattr(proxy, "tensor_quant", None)
    if not proxy.is_quant_enabled or not isinstance(tensor_quant, _BINARY_TENSOR_QUANTS):
        found = (
            f"{type(tensor_quant).__name__}, {int(proxy.bit_width())} bits"
            if proxy.is_quant_enabled
            else "disabled"
        )
        raise ValueError(
            f"{path} does not quantize its weight to signed binary (its weight quantizer is "
            f"{found}); build it with weight_quant=SignedBinaryWeightPerTensorConst or a "
            f"subclass"
        )
    with torch.no_grad():
        quant_weight = module.quant_weight()
    scale = _positive_scale(quant_weight.scale, f"{path} weight scale")
    value = quant_weight.value.detach().cpu().double().numpy()
    # ClampedBinaryQuant returns sign * scale in float32: exactly +-scale.
    if not np.array_equal(np.abs(value), np.full_like(value, float(scale))):
        raise ValueError(f"{path} quantized weight is not +-{float(scale)!r} everywhere")
    return (value > 0).astype(np.uint8), scale


def _binary_activation_scale(path: str, module: nn.Module) -> Fraction:
    """The scale of a signed binary QuantIdentity, or a ValueError saying what it is."""
    if not isinstance(module, QuantIdentity):
        raise ValueError(
            f"{path} is a {type(module).__name__}, not a QuantIdentity with a signed binary "
            f"act quant; expected {_STACK_SHAPE}"
        )
    proxy = module.act_quant
    fused = getattr(proxy, "fused_activation_quant_proxy", None)
    tensor_quant = getattr(fused, "tensor_quant", None)
    if not proxy.is_quant_enabled:
        raise ValueError(f"{path} does not quantize (act_quant=None); it must be signed binary")
    if not isinstance(tensor_quant, _BINARY_TENSOR_QUANTS) or not proxy.is_signed:
        kind = "signed" if proxy.is_signed else "unsigned"
        raise ValueError(
            f"{path} quantizes to {int(proxy.bit_width())}-bit {kind} values "
            f"({type(tensor_quant).__name__}), not signed binary; build it with "
            f"act_quant=SignedBinaryActPerTensorConst"
        )
    return _positive_scale(proxy.scale(), f"{path} scale")


def _batchnorm_signs(path: str, bn: nn.BatchNorm1d, scale: Fraction) -> list[BatchNormSign]:
    """One exact decision per neuron from a BatchNorm1d's parameters as stored."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            f"{path} has no running statistics (track_running_stats=False): its output "
            f"depends on the batch and cannot be folded into a threshold"
        )
    size = bn.num_features
    parameters = {
        "weight": bn.weight if bn.affine else torch.ones(size),
        "bias": bn.bias if bn.affine else torch.zeros(size),
        "running_mean": bn.running_mean,
        "running_var": bn.running_var,
    }
    arrays = {key: value.detach().cpu().numpy() for key, value in parameters.items()}
    for key, array in arrays.items():
        bad = ~np.isfinite(array)
        if bad.any():
            neuron = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{path}.{key}[{neuron}] = {array[neuron].item()!r} is not finite")
    signs = []
    for neuron in range(size):
        try:
            signs.append(
                BatchNormSign.from_floats(
                    scale,
                    arrays["weight"][neuron].item(),
                    arrays["bias"][neuron].item(),
                    arrays["running_mean"][neuron].item(),
                    arrays["running_var"][neuron].item(),
                    bn.eps,
                )
            )
        except ValueError as error:
            raise ValueError(f"{path} neuron {neuron}: {error}") from None
    return signs


def _sign_only(scale: Fraction, size: int) -> list[BatchNormSign]:
    """A sign straight after the linear layer: the identity BatchNorm."""
    one, zero = Fraction(1), Fraction(0)
    return [BatchNormSign(scale, one, zero, zero, one, zero) for _ in range(size)]


def _folded_spec(
    path: str, bits: np.ndarray, scale: Fraction, signs: list[BatchNormSign]
) -> BinaryLayerSpec:
    total = bits.shape[1]
    folded = [sign.fold(total) for sign in signs]
    flip = np.array([neuron.flip for neuron in folded], dtype=bool)
    return BinaryLayerSpec(
        weight_bits=np.where(flip[:, None], 1 - bits, bits).astype(np.uint8),
        thresholds=np.array([neuron.threshold for neuron in folded], dtype=np.int64),
        scale=scale,
        float32_margin=np.array([sign.float32_margin(total) for sign in signs]),
        name=path,
    )


def export_binary_layers(
    layers: nn.Sequential, name: str = "layers", input_scale: float | Fraction = 1
) -> list[BinaryLayerSpec]:
    """Fold a binarized ``nn.Sequential`` into threshold-neuron specs (eval-mode behaviour).

    Parameters
    ----------
    layers
        ``QuantLinear`` (signed binary weight quantizer, ``bias=False``), then either
        ``BatchNorm1d`` and a signed binary ``QuantIdentity``, or the ``QuantIdentity``
        alone, and so on; a final ``QuantLinear`` with nothing after it gives the logits.
    name
        The stack's module path, for messages (``"layers"`` names ``layers.0``, ...).
    input_scale
        The float value of an input bit 1 (the first layer sees +-input_scale).

    Returns
    -------
    list of BinaryLayerSpec
        One per ``QuantLinear``; hidden layers with thresholds (and flipped weight bits
        where gamma < 0), the last one without if the stack ends in a ``QuantLinear``.

    Raises
    ------
    ValueError
        Naming the module path and the reason, for any module that cannot be folded: a
        bias, a weight or activation quantizer that is not signed binary, a module out
        of place, a BatchNorm without running statistics or with var + eps <= 0, a
        parameter that is not finite.
    """
    items: Iterator[tuple[str, nn.Module]] = (
        (f"{name}.{key}", module) for key, module in layers.named_children()
    )
    in_scale = _exact(input_scale, "input_scale")
    if in_scale <= 0:
        raise ValueError(f"input_scale must be positive, got {input_scale!r}")
    specs: list[BinaryLayerSpec] = []
    pending = next(items, None)
    if pending is None:
        raise ValueError(f"{name} is empty; expected {_STACK_SHAPE}")
    while pending is not None:
        linear_path, linear = pending
        bits, weight_scale = _binary_linear(linear_path, linear)
        scale = weight_scale * in_scale
        pending = next(items, None)
        if pending is None:
            specs.append(BinaryLayerSpec(bits, None, scale, name=linear_path))
            break
        path, module = pending
        if isinstance(module, nn.BatchNorm1d):
            if module.num_features != bits.shape[0]:
                raise ValueError(
                    f"{path} normalises {module.num_features} features but {linear_path} "
                    f"has {bits.shape[0]} outputs"
                )
            signs = _batchnorm_signs(path, module, scale)
            bn_path = path
            pending = next(items, None)
            if pending is None:
                raise ValueError(
                    f"{bn_path} (BatchNorm1d) ends the stack with no binary activation after "
                    f"it; the last QuantLinear's logits must be its plain sums"
                )
            path, module = pending
        elif isinstance(module, QuantIdentity):
            signs = _sign_only(scale, bits.shape[0])
        else:
            raise ValueError(
                f"{path} is a {type(module).__name__} after {linear_path}; expected a "
                f"BatchNorm1d, a signed binary QuantIdentity, or the end of the stack"
            )
        in_scale = _binary_activation_scale(path, module)
        specs.append(_folded_spec(linear_path, bits, scale, signs))
        pending = next(items, None)
    return specs
