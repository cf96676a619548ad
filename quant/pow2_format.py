"""The power-of-two weight format shared by the golden model and the shift-vector RTL.

A weight is 0 or +-2^-e times a power-of-two scale. In hardware it is a sign bit and
an exponent code of ``exp_bits`` bits; the all-ones code is reserved for zero, so the
exponents 0 .. 2^exp_bits - 2 are usable. Hardware shifts an activation *left* by
``max_exp - e``, which makes every product an integer: the integer weight is
+-2^(max_exp - e) and the real weight is that integer times ``scale * 2^-max_exp``.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_EXP_BITS = 6


@dataclass(frozen=True)
class PowerOfTwoFormat:
    """Sign plus ``exp_bits``-bit exponent code, with one code reserved for zero."""

    exp_bits: int

    def __post_init__(self) -> None:
        if isinstance(self.exp_bits, bool) or not isinstance(self.exp_bits, int):
            raise TypeError(f"exp_bits must be an int, got {self.exp_bits!r}")
        if not 1 <= self.exp_bits <= MAX_EXP_BITS:
            raise ValueError(
                f"exp_bits must be in 1..{MAX_EXP_BITS} (2^exp_bits - 1 distinct magnitudes), "
                f"got {self.exp_bits}"
            )

    @property
    def zero_code(self) -> int:
        """The exponent code that stands for a zero weight."""
        return (1 << self.exp_bits) - 1

    @property
    def max_exp(self) -> int:
        """The largest usable exponent e (the smallest magnitude is 2^-max_exp)."""
        return (1 << self.exp_bits) - 2

    @property
    def int_weight_width(self) -> int:
        """Bits of a signed integer that holds every integer weight +-2^max_exp."""
        return self.max_exp + 2

    def int_weight(self, sign: int, exp_code: int) -> int:
        """The integer weight of one code: 0, or +-2^(max_exp - e)."""
        if exp_code == self.zero_code:
            return 0
        if not 0 <= exp_code <= self.max_exp:
            raise ValueError(f"exp_code must be in 0..{self.zero_code}, got {exp_code}")
        magnitude = 1 << (self.max_exp - exp_code)
        return -magnitude if sign else magnitude

    def term_bound(self, act_width: int) -> int:
        """Largest magnitude of one lane's term for signed ``act_width``-bit activations."""
        return (1 << (act_width - 1)) << self.max_exp

    def accumulator_width(self, act_width: int, depth: int) -> int:
        """Signed width that holds any sum of ``depth`` terms without overflow."""
        if act_width < 2:
            raise ValueError(f"act_width must be at least 2 (a signed value), got {act_width}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        # The extreme sum is +depth * 2^(act_width-1+max_exp) (most negative activation
        # times a negative weight), which needs one bit more than its magnitude.
        return (depth * self.term_bound(act_width)).bit_length() + 1
