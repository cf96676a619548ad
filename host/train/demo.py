"""The main job, ``hilt demo``: model-free Forward-Forward against a co-simulated board,
beside the same network with the board removed.

The demo starts a board's firmware in RTL simulation behind its UART (the iCEBreaker
image with the binary threshold layer, 64 -> 32, by default), programs the layer with a
fixed random configuration, and trains a small digital network around it with
model-free Forward-Forward (:mod:`hilt.host.train.mfff`): every measurement of the
layer is a FORWARD frame over the simulated serial line, answered by the gateware.
No gradient ever passes through the board. Then it trains the same digital network with
the board removed (each block reading its input directly), so that what the board adds
is shown beside it. It writes the learning curves and a JSON summary, the same files as
``hilt train``, with both accuracies, and returns the summary.

The network is two blocks of 64 digital units that share the one board. Block 0's board
measures the image alone, once a sample, and the label goes around it to the digital
layer (``label_path`` "skip"); block 1's board measures block 0's activities. The
settings were chosen on the board's golden twin (docs/training.md has the measurements).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from hilt.host.train.mfff import MFFFConfig, train_mfff
from hilt.host.train.run import run_training
from hilt.quant.datasets import Dataset

DEMO_SETTINGS = {"blocks": "2", "hidden": "64", "skip": "true", "label": "append",
                 "label_path": "skip", "goodness": "sum", "loss": "ff", "lr": "0.003",
                 "batch_size": "32"}
"""The MF-FF config fields the demo sets (as ``hilt train --set`` would)."""

DEMO_EPOCHS = 20
"""Epochs of the demo: about a minute against the co-simulated board (native engine)."""


def demo_url(board: str = "icebreaker", pe: str = "binary", sim: str = "verilator",
             engine: str | None = None) -> str:
    """The backend URL of the demo's co-simulated board; ``engine`` None leaves the
    simulator's default engine (native under Verilator)."""
    return f"cosim:{board}?pe={pe}&sim={sim}" + (f"&engine={engine}" if engine else "")


def board_removed(config: MFFFConfig, split: Dataset, progress: bool) -> dict[str, Any]:
    """The results entries of the network of ``config`` trained on ``split`` with no
    physical layer in any block: its test accuracy and learning curves."""
    result = train_mfff(split, [None] * config.blocks, config, progress=progress)
    return {"board_removed_test_accuracy": result.test_accuracy,
            "board_removed_curves": asdict(result.curves)}


def run_demo(out: str | Path, *, board: str = "icebreaker", pe: str = "binary",
             sim: str = "verilator", engine: str | None = None, epochs: int = DEMO_EPOCHS,
             seed: int = 0, progress: bool = True, force: bool = False) -> dict[str, Any]:
    """Train the demo network against the co-simulated board, then with the board
    removed; the results (as :func:`~hilt.host.train.run.run_training` writes them into
    ``out``, which it claims first, ``force`` as there), with ``board_removed_test_accuracy``."""
    return run_training("mfff", out, backends=[demo_url(board, pe, sim, engine)],
                        epochs=epochs, seed=seed, progress=progress, overrides=DEMO_SETTINGS,
                        force=force,
                        extra=lambda config, split: board_removed(config, split, progress))
