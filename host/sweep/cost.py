"""The cost of a grid point: its hardware, synthesised out of context with Yosys.

This module is the sweep's one way into the hardware side (``hilt.hdl`` and
``hilt.firmware``), as ``hilt synth`` is the command line's: the rest of the sweep
knows points as plain parameters.

- ``shift`` and ``multiplier``: one vector array, which runs every layer of the MLP in
  turn, so its depth (inputs per vector) is the widest fan-in, ``max(64, hidden)``.
- ``binary``: one folded array per layer, as ``hilt proof bnn`` runs them: 64 inputs
  to ``hidden`` threshold neurons on ``pe`` x ``simd``, then ``hidden`` to 10 counts
  on ``min(pe, 10)`` x ``min(simd, hidden)``; the cost is their sum.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from .elements import DIGITS_CLASSES, DIGITS_INPUTS

RESOURCES = ("luts", "flip_flops", "dsps", "brams", "carries")
"""What :func:`evaluate_cost` counts, as :class:`~hilt.firmware.synthesis.ResourceReport`
names it."""


def _array_params(params: Mapping[str, Any]) -> dict[str, int]:
    return {"lanes": params["lanes"], "pes": params["pes"], "act_width": params["act_width"],
            "exp_bits": params["exp_bits"], "depth": max(DIGITS_INPUTS, params["hidden"])}


def _foldings(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    hidden, pe, simd = params["hidden"], params["pe"], params["simd"]
    return [
        {"in_features": DIGITS_INPUTS, "out_features": hidden, "pe": pe, "simd": simd},
        {"in_features": hidden, "out_features": DIGITS_CLASSES, "pe": min(pe, DIGITS_CLASSES),
         "simd": min(simd, hidden), "emit": "counts"},
    ]


def check_point(element: str, params: Mapping[str, Any]) -> None:
    """Run the hardware's parameter checks on one point, without building anything.

    Raises the hardware's own ``TypeError`` or ``ValueError``, which names the
    parameter, its value and what would be accepted.
    """
    if element == "binary":
        from hilt.hdl.threshold_array import LayerFolding

        for folding in _foldings(params):
            LayerFolding(**folding)
    else:
        from hilt.hdl.vector_array import check_array_params

        check_array_params(**_array_params(params))


def evaluate_cost(element: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Synthesise one point for ``params["family"]``; its resources and ``synth_s``.

    The resources are those of :data:`RESOURCES`, summed over the point's components.
    """
    from hilt.firmware.synthesis import synthesize
    from hilt.hdl import mul_array, shift_array, threshold_array  # noqa: F401  (import time)

    started = time.perf_counter()
    use_dsp = params.get("use_dsp", True)
    totals = dict.fromkeys(RESOURCES, 0)
    for component in _components(element, params):
        report = synthesize(component, params["family"], use_dsp=use_dsp)
        for name in RESOURCES:
            totals[name] += getattr(report, name)
    return {**totals, "synth_s": time.perf_counter() - started}


def _components(element: str, params: Mapping[str, Any]) -> Iterator:
    """The point's components, built one at a time so none is left unused on an error."""
    if element == "binary":
        from hilt.hdl.threshold_array import BinaryLayerArray

        for folding in _foldings(params):
            yield BinaryLayerArray(**folding)
        return
    from hilt.hdl.mul_array import MultiplierVectorArray
    from hilt.hdl.shift_array import ShiftVectorArray

    array = ShiftVectorArray if element == "shift" else MultiplierVectorArray
    yield array(**_array_params(params))
