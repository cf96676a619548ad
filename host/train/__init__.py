"""Training loops that need no backpropagation through the hardware: Forward-Forward and its kin."""

ALGORITHMS = ("ff", "backprop", "mfff", "pat", "ff-pulse")
"""What ``hilt train`` runs: Forward-Forward and its backprop baseline (digital,
in-process); model-free Forward-Forward and physics-aware training (through physical
backends); Forward-Forward with its weights in synapse crossbars, trained by pulses (one
crossbar backend a layer)."""
