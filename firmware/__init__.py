"""Board-level designs, synthesis and programming with the open toolchain."""
