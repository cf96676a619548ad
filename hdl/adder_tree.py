"""Balanced adder trees, so that the depth of a sum grows as log2 of its fan-in."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Const, Value, ValueCastable


def adder_tree(terms: Sequence[Value | ValueCastable]) -> Value:
    """Sum ``terms`` pairwise in a balanced tree; Amaranth widens each level by one bit."""
    level = [Value.cast(term) for term in terms]
    if not level:
        return Const(0)
    while len(level) > 1:
        pairs = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            pairs.append(level[-1])
        level = pairs
    return level[0]
