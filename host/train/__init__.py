"""Training loops that need no backpropagation through the hardware: Forward-Forward and its kin."""
