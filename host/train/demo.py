"""The main job, ``hilt demo``: model-free Forward-Forward against a co-simulated board.

The demo starts a board's firmware in RTL simulation behind its UART (the iCEBreaker
image with the binary threshold layer, 64 -> 32, by default), programs the layer with a
fixed random configuration, and trains a small digital network around it with
model-free Forward-Forward (:mod:`hilt.host.train.mfff`): every measurement of the
layer is a FORWARD frame over the simulated serial line, answered by the gateware.
No gradient ever passes through the board. It writes the learning curves and a JSON
summary, the same files as ``hilt train``, and returns the summary.

The network is two blocks of 64 digital units that share the one board, each block
seeing the board's threshold bits of its input next to the input itself (skip). The
board takes exactly 64 inputs, so the label is written into the ten pixels that vary
least over the training images. The settings were chosen on the board's golden twin;
the demo trains for a few epochs (on the twin, test accuracy goes on rising slowly after
them, from 0.914 after 4 to 0.944 after 20, seed 0; ``--epochs`` asks for more).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hilt.host.train.run import run_training

DEMO_SETTINGS = {"blocks": "2", "hidden": "64", "skip": "true", "label": "blank",
                 "lr": "0.02", "batch_size": "16"}
"""The MF-FF config fields the demo sets (as ``hilt train --set`` would)."""

DEMO_EPOCHS = 4
"""Epochs of the demo: about ten seconds against the co-simulated board (native engine)."""


def demo_url(board: str = "icebreaker", pe: str = "binary", sim: str = "verilator",
             engine: str | None = None) -> str:
    """The backend URL of the demo's co-simulated board; ``engine`` None leaves the
    simulator's default engine (native under Verilator)."""
    return f"cosim:{board}?pe={pe}&sim={sim}" + (f"&engine={engine}" if engine else "")


def run_demo(out: str | Path, *, board: str = "icebreaker", pe: str = "binary",
             sim: str = "verilator", engine: str | None = None, epochs: int = DEMO_EPOCHS,
             seed: int = 0, progress: bool = True, force: bool = False) -> dict[str, Any]:
    """Train the demo network against the co-simulated board; its results (as
    :func:`~hilt.host.train.run.run_training` writes them into ``out``, which it claims
    first, ``force`` as there)."""
    return run_training("mfff", out, backends=[demo_url(board, pe, sim, engine)],
                        epochs=epochs, seed=seed, progress=progress, overrides=DEMO_SETTINGS,
                        force=force)
