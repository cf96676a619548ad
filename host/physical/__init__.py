"""Simulated physical systems standing in for wave-based layers; no trainer differentiates them."""
