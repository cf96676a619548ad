"""Balanced adder trees, so that the depth of a sum grows as log2 of its fan-in."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Const, Module, Signal, Value, ValueCastable


def adder_tree(terms: Sequence[Value | ValueCastable], m: Module | None = None) -> Value:
    """Sum ``terms`` pairwise in a balanced tree; Amaranth widens each level by one bit.

    Given the module ``m``, every partial sum becomes a kept signal. Yosys otherwise
    merges the whole tree into one multi-operand sum and builds it from full adders in
    LUTs; kept, each adder maps onto the carry chain, which on iCE40 takes about half
    the LUTs.
    """
    level = [Value.cast(term) for term in terms]
    if not level:
        return Const(0)
    while len(level) > 1:
        pairs = []
        for i in range(0, len(level) - 1, 2):
            total = level[i] + level[i + 1]
            if m is not None:
                kept = Signal(total.shape(), name=f"sum{len(level)}_{i // 2}",
                              attrs={"keep": 1})
                m.d.comb += kept.eq(total)
                total = kept
            pairs.append(total)
        if len(level) % 2:
            pairs.append(level[-1])
        level = pairs
    return level[0]
