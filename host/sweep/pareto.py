"""The Pareto front of a sweep: the points no other point beats on both axes.

A point is on the front when no other point has at least its accuracy at no more LUTs
and is strictly better in one of the two; these are the only configurations a
co-designer should choose between, whatever the weight given to each axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def pareto_front(items: Sequence[T], *, gain: Callable[[T], float],
                 cost: Callable[[T], float]) -> list[int]:
    """Indices of the items not dominated (higher gain, lower cost), by rising cost.

    Items equal on both axes do not dominate one another, so ties on the front are all
    kept. Runs in O(n log n).
    """
    order = sorted(range(len(items)), key=lambda i: (cost(items[i]), -gain(items[i])))
    front: list[int] = []
    best_gain, best_cost = -math.inf, math.nan
    for index in order:
        g, c = gain(items[index]), cost(items[index])
        if g > best_gain:
            front.append(index)
            best_gain, best_cost = g, c
        elif g == best_gain and c == best_cost:
            front.append(index)
    return front
