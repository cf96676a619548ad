"""Golden models: Brevitas quantizers, integer-exact reference arithmetic and export."""
