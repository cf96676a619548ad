"""The elements a sweep can evaluate, and the parameters each one takes.

A parameter either shapes the trained network and its number format, so that both the
accuracy and the hardware depend on it (exponent bits, activation width, hidden width),
or only the hardware (lanes, PEs). The split is what lets a sweep train once per number
format and synthesise once per point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DIGITS_INPUTS = 64
"""Inputs of the first layer of every swept network: the 8x8 digits."""

DIGITS_CLASSES = 10
"""Logits of the last layer: the ten digits."""


@dataclass(frozen=True)
class Parameter:
    """One grid parameter of an element.

    Attributes
    ----------
    name : str
        The key in the config's ``[grid]`` table.
    kind : type
        ``int`` or ``bool``; the values a config may list.
    default : int or bool
        The value of every point when the grid does not list the parameter.
    accuracy : bool
        Whether the accuracy depends on it (it always changes the hardware).
    help : str
        One line for the documentation and the error messages.
    low : int or None
        The smallest accepted value of an ``int`` parameter; the hardware's own checks
        bound it from above where it has to be.
    """

    name: str
    kind: type
    default: int | bool
    accuracy: bool
    help: str
    low: int | None = None


@dataclass(frozen=True)
class Element:
    """A processing element that a sweep trains a network for and synthesises."""

    name: str
    help: str
    parameters: tuple[Parameter, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in grid order."""
        return tuple(p.name for p in self.parameters)

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``; ``KeyError`` if the element has none."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)

    def accuracy_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The part of a point's parameters that its accuracy depends on."""
        return {p.name: params[p.name] for p in self.parameters if p.accuracy}


_POW2_FORMAT = (
    Parameter("exp_bits", int, 3, True, "exponent-code bits of a power-of-two weight", 1),
    Parameter("act_width", int, 8, True,
              "signed activation bits of the array; the network's activations are "
              "unsigned act_width - 1 bits", 2),
    Parameter("hidden", int, 32, True, "width of the MLP's hidden layer", 1),
    Parameter("lanes", int, 8, False, "activations per beat (L)", 1),
    Parameter("pes", int, 8, False, "processing elements (M)", 1),
)

ELEMENTS: dict[str, Element] = {
    "shift": Element(
        "shift", "shift-vector PE array running a power-of-two MLP", _POW2_FORMAT),
    "multiplier": Element(
        "multiplier", "the shift array's multiplier twin running the same MLP",
        (*_POW2_FORMAT,
         Parameter("use_dsp", bool, True, False,
                   "map multipliers to DSP blocks (false: build them from LUTs)"))),
    "binary": Element(
        "binary", "threshold-logic binary layer arrays running a binarized MLP",
        (Parameter("hidden", int, 64, True, "width of the binarized MLP's hidden layer", 1),
         Parameter("pe", int, 8, False, "neurons working at once (at most hidden)", 1),
         Parameter("simd", int, 16, False, "inputs per neuron per cycle (at most 64)", 1))),
}
"""The elements by the name a config's ``element`` gives."""
