"""A board's processing element as a fixed, random physical layer: float vectors in and out.

Model-free training (:mod:`hilt.host.train.mfff`) treats each layer it does not train as
a black box that maps float vectors to float measurements. A board's element can be that
box: programmed once with a random configuration drawn from a seed, it is a fixed
nonlinear projection that the trainer only ever runs forward, exactly what a physical
system is to it, and its answers are the gateware's (or the golden twin's) to the bit.

:class:`BoardLayer` wraps a :class:`~hilt.host.backends.board.BoardBackend` and does the
two conversions a board needs:

- **inputs**: a binary layer takes bits, ``x > threshold``; a shift array or a synapse
  crossbar takes signed integers, ``round(x / full_scale * in_high)`` clipped to the
  element's input range (values beyond ``full_scale`` saturate, as an ADC would);
- **configuration** (:func:`random_configuration`): a binary layer gets random weight
  bits and thresholds near half its inputs, so that each neuron fires for about half
  of the inputs; a shift array random signed powers of two; a synapse crossbar random
  levels in both cells of every pair.

Its queries are the board's: both share one :class:`~hilt.host.backends.base.BackendStats`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hilt.host.backends.base import Backend, BackendError
from hilt.host.backends.board import BoardBackend

BIT_THRESHOLD = 0.5
"""Default input level above which a binary layer's input bit is 1 (pixels are in [0, 1])."""

FULL_SCALE = 1.0
"""Default input value that maps to an integer element's largest input."""


def random_configuration(backend: BoardBackend, seed: int) -> dict[str, np.ndarray]:
    """A random parameter set for ``backend``'s element, as its ``load`` takes it."""
    rng = np.random.default_rng(seed)
    element = backend.element
    layout = element.layout
    if backend.kind == "binary_layer":
        k = layout.in_features
        spread = math.ceil(math.sqrt(k) / 2)
        return {"weights": rng.integers(0, 2, (layout.out_features, k)),
                "thresholds": k // 2 + rng.integers(-spread, spread + 1, layout.out_features)}
    if backend.kind == "shift_array":
        shape = (layout.pes, layout.depth)
        exponents = rng.integers(0, layout.fmt.max_exp + 1, shape)
        return {"weights": np.where(rng.random(shape) < 0.5, -1, 1) << exponents}
    if backend.kind == "synapse_crossbar":
        shape = (layout.rows, layout.cols)
        return {"plus": rng.integers(0, layout.max_level + 1, shape),
                "minus": rng.integers(0, layout.max_level + 1, shape)}
    raise BackendError(f"{backend.url}: a {backend.kind} has no random configuration; a "
                       f"board layer needs a binary_layer, shift_array or synapse_crossbar")


class BoardLayer(Backend):
    """``board``'s element, programmed with :func:`random_configuration` of ``seed``, as a
    float-in, float-out layer (module docstring); it closes the board when closed.

    Parameters
    ----------
    board : BoardBackend
        An open board backend whose element can be loaded.
    seed : int
        Seed of the random configuration.
    threshold : float
        Input level above which a binary layer's input bit is 1.
    full_scale : float
        Input value that maps to an integer element's largest input, > 0.
    """

    operations = ("forward",)

    def __init__(self, board: BoardBackend, *, seed: int = 0, threshold: float = BIT_THRESHOLD,
                 full_scale: float = FULL_SCALE) -> None:
        super().__init__()
        if not (math.isfinite(full_scale) and full_scale > 0):
            raise ValueError(f"full_scale = {full_scale!r}: accepted a finite number > 0")
        if not math.isfinite(threshold):
            raise ValueError(f"threshold = {threshold!r}: accepted a finite number")
        board.require("forward", "load", why="a board layer programs a random configuration")
        self.board = board
        self.url = board.url
        self.kind = "physical"
        self.in_features = board.in_features
        self.out_features = board.out_features
        self.seed, self.threshold, self.full_scale = seed, threshold, full_scale
        self.stats = board.stats
        board.load(**random_configuration(board, seed))

    def describe(self) -> dict[str, Any]:
        encoding = ({"bits_above": self.threshold} if self.board.kind == "binary_layer"
                    else {"full_scale": self.full_scale})
        return {"url": self.url, "kind": self.kind, "in_features": self.in_features,
                "out_features": self.out_features, "operations": list(self.operations),
                "board_layer": {"element": self.board.kind, "seed": self.seed, **encoding},
                "board": self.board.describe()}

    def encode(self, x: np.ndarray) -> np.ndarray:
        """The element's inputs for float vectors ``x`` (N, in_features)."""
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise BackendError(f"{self.url}: layer inputs must be finite numbers")
        if self.board.kind == "binary_layer":
            return (x > self.threshold).astype(np.uint8)
        layout = self.board.element.layout
        scaled = np.rint(x / self.full_scale * layout.in_high)
        return np.clip(scaled, layout.in_low, layout.in_high).astype(np.int64)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.board.forward(self.encode(x)).astype(np.float64)

    def close(self) -> None:
        self.closed = True
        self.board.close()


def as_layer(backend: Backend, seed: int = 0) -> Backend:
    """``backend`` itself if it is a physical system, else its element as a
    :class:`BoardLayer` with the random configuration of ``seed``."""
    if backend.kind == "physical":
        return backend
    if not isinstance(backend, BoardBackend):
        raise BackendError(f"{backend.url}: a {backend.kind} that is not on a board cannot "
                           f"serve as a physical layer")
    return BoardLayer(backend, seed=seed)
