"""Simulated physical systems that stand in for wave-based layers, never differentiated by a trainer."""
