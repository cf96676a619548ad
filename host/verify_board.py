"""``hilt verify-board``: every test image of a data set through a board's element and
through its golden twin, compared bit for bit.

The twin is built from the board's own IDENTIFY record (:func:`golden_twin`), so it is the
golden model of exactly the image the board runs, whatever the link: a co-simulated
board, a real one over serial, or a ``golden:`` board (a check of the check). Both
elements are programmed with the same random configuration (as a model-free trainer
programs a board layer) and take the same integer inputs, the images encoded as
:class:`~hilt.host.backends.board_layer.BoardLayer` encodes them; their integer answers
must be equal, image for image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from hilt.host.backends.base import BackendError
from hilt.host.backends.board import BoardBackend
from hilt.host.backends.board_layer import BoardLayer, random_configuration
from hilt.host.protocol import reference
from hilt.host.reference_board import reference_board
from hilt.host.transport import Device
from hilt.quant.datasets import Dataset

BATCH = 64
"""Images a FORWARD call carries by default."""


@dataclass
class Mismatch:
    """The first image whose answers differ: its index in the test part and both answers."""

    image: int
    board: list[int]
    twin: list[int]

    def __str__(self) -> str:
        differ = [i for i, (a, b) in enumerate(zip(self.board, self.twin, strict=True)) if a != b]
        return (f"image {self.image}: outputs {differ[:8]} differ; board {self.board}, "
                f"golden twin {self.twin}")


@dataclass
class VerifyReport:
    """What a verification compared and found."""

    url: str
    element: str
    dataset: str
    images: int
    mismatches: int
    seconds: float
    """Wall time of the board's FORWARD calls alone."""
    widths: tuple[int, int]
    """The element's inputs and outputs."""
    first: Mismatch | None = None

    @property
    def images_per_second(self) -> float:
        """Images through the board per second of its FORWARD calls."""
        return self.images / self.seconds if self.seconds else float("inf")


def golden_twin(board: BoardBackend) -> BoardBackend:
    """The golden twin of ``board``: built from its capability record, driving the same
    target, in-process."""
    device = Device(reference.InProcessPort(reference_board(board.capabilities)))
    return BoardBackend(device, f"golden twin of {board.url}",
                        target=board.element.entry["id"])


def verify_board(board: BoardBackend, data: Dataset, *, seed: int = 0, batch: int = BATCH,
                 progress: bool = True) -> VerifyReport:
    """Stream every test image of ``data`` through ``board``'s element and its golden twin,
    both programmed with the random configuration of ``seed``, ``batch`` images a call.

    Raises
    ------
    BackendError
        The element cannot be loaded, or its input width is not the data set's features.
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch = {batch!r}: accepted an int >= 1")
    if board.in_features != data.features:
        raise BackendError(f"{board.url}: its {board.kind} takes {board.in_features} inputs "
                           f"and {data.name} has {data.features} features; verify a data set "
                           f"as wide as the element, or a board built {data.features} wide")
    twin = golden_twin(board)
    try:
        layer = BoardLayer(board, seed=seed)
        twin.load(**random_configuration(twin, seed))
        x = data.scaled("test")
        mismatches, first, seconds = 0, None, 0.0
        for start in tqdm(range(0, len(x), batch), desc="verify-board", disable=not progress):
            inputs = layer.encode(x[start:start + batch])
            began = time.perf_counter()
            answers = board.forward(inputs)
            seconds += time.perf_counter() - began
            expected = twin.forward(inputs)
            wrong = np.flatnonzero(np.any(answers != expected, axis=1))
            mismatches += len(wrong)
            if len(wrong) and first is None:
                i = int(wrong[0])
                first = Mismatch(start + i, answers[i].tolist(), expected[i].tolist())
    finally:
        twin.close()
    return VerifyReport(board.url, board.kind, data.name, len(x), mismatches, seconds,
                        (board.in_features, board.out_features), first)
