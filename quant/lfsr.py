"""The linear-feedback shift register that gives the synapse cells their cycle-to-cycle noise.

Hardware draws its noise from an LFSR because it costs a few flip-flops and XOR gates
and, unlike a true random source, the golden model can replay it bit for bit. This is
the one definition both sides use: a Fibonacci register of ``width`` bits that shifts
left and feeds the XOR of its tap bits into bit 0, with maximal-length taps (period
``2**width - 1``; the all-zero state is excluded).
"""

from __future__ import annotations

__all__ = ["LFSR_TAPS", "lfsr_advance", "lfsr_seed"]

# Maximal-length feedback taps, 1-indexed from the least significant bit.
LFSR_TAPS: dict[int, tuple[int, ...]] = {
    8: (8, 6, 5, 4),
    12: (12, 6, 4, 1),
    16: (16, 15, 13, 4),
    20: (20, 17),
    24: (24, 23, 22, 17),
    32: (32, 22, 2, 1),
}

_MASK64 = (1 << 64) - 1


def _check_width(width: int) -> int:
    if width not in LFSR_TAPS:
        raise ValueError(
            f"lfsr_bits must be one of {sorted(LFSR_TAPS)} (widths with known maximal-length "
            f"taps), got {width!r}"
        )
    return width


def lfsr_advance(state: int, width: int, steps: int) -> int:
    """The register ``steps`` shifts after ``state``."""
    _check_width(width)
    mask = (1 << width) - 1
    if not 0 < state <= mask:
        raise ValueError(f"state must be in 1..{mask} (an LFSR never holds 0), got {state}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    taps = LFSR_TAPS[width]
    for _ in range(steps):
        feedback = 0
        for tap in taps:
            feedback ^= (state >> (tap - 1)) & 1
        state = ((state << 1) | feedback) & mask
    return state


def lfsr_seed(seed: int, index: int, width: int) -> int:
    """A non-zero start state for register ``index`` of a design seeded with ``seed``.

    A 64-bit integer mix spreads neighbouring indices over the whole state space, so the
    registers of adjacent cells do not start one shift apart.
    """
    _check_width(width)
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    x = (seed * 0x9E3779B97F4A7C15 + (index + 1) * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 31
    return (x & ((1 << width) - 1)) or 1
