"""Training loops that need no backpropagation through the hardware: Forward-Forward and its kin."""

from __future__ import annotations

from typing import NamedTuple


class Trainer(NamedTuple):
    """One row of the algorithm table ``hilt train`` picks from: where the trainer lives
    (imported only when it runs), its config class, its training function, and what it
    trains through (``none``: in-process; ``blocks``: one physical layer a block;
    ``layers``: one synapse crossbar a layer)."""

    module: str
    config: str
    train: str
    backends: str
    checkpoints: bool = False


TRAINERS = {
    "ff": Trainer("hilt.host.train.ff", "FFConfig", "train_ff", "none"),
    "backprop": Trainer("hilt.host.train.backprop", "BackpropConfig", "train_backprop", "none"),
    "mfff": Trainer("hilt.host.train.mfff", "MFFFConfig", "train_mfff", "blocks", True),
    "pat": Trainer("hilt.host.train.pat", "PATConfig", "train_pat", "blocks"),
    "ff-pulse": Trainer("hilt.host.train.pulse_ff", "PulseFFConfig", "train_pulse_ff", "layers"),
}
"""What ``hilt train`` runs: Forward-Forward and its backprop baseline (digital,
in-process); model-free Forward-Forward and physics-aware training (through physical
backends); Forward-Forward with its weights in synapse crossbars, trained by pulses."""

ALGORITHMS = tuple(TRAINERS)
"""The algorithm names, in the table's order."""
