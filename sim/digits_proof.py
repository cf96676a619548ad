"""End-to-end proof: a trained power-of-two MLP run through the shift-vector RTL, bit for bit.

Train :class:`~hilt.quant.pow2_mlp.Pow2MLP` on the digits, export every layer to
codes, stream the test split through :class:`~hilt.hdl.shift_array.ShiftVectorArray`
in simulation layer by layer (the host requantises between layers, as a board's host
would), and check that the RTL logits equal the integer golden model's and that the
accuracy equals the Brevitas fake-quant model's.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from hilt.quant.datasets import load_digits
from hilt.quant.pow2_mlp import (
    Pow2MLP,
    export_pow2_mlp,
    fit,
    integer_activations,
    pixels_to_input,
)
from hilt.sim.proof_summary import ProofSummary
from hilt.sim.shift_regression import ArrayConfig, RegressionReport, layer_jobs, run_jobs

logger = logging.getLogger(__name__)


def _layer_summary(index: int, report: RegressionReport) -> dict:
    config = report.config
    return {
        "layer": index, "lanes": config.lanes, "pes": config.pes, "depth": config.depth,
        "act_width": config.act_width, "exp_bits": config.exp_bits, "jobs": report.jobs,
        "values": report.values, "mismatches": report.mismatches,
        "first_mismatch": report.first_mismatch, "cycles": report.cycles,
        "wall_s": round(report.wall_s, 3),
    }


def run_digits_proof(*, sim: str, out_dir: Path, seed: int = 0, epochs: int = 30,
                     hidden: int = 32, exp_bits: int = 3, lanes: int = 8,
                     pes: int = 8) -> ProofSummary:
    """Train, export, simulate and compare; writes ``out_dir/summary.json``."""
    split = load_digits(seed)
    started = time.perf_counter()
    torch.manual_seed(seed)
    model = Pow2MLP(hidden=(hidden,), exp_bits=exp_bits)
    fit(model, split.x_train, split.y_train, epochs=epochs, seed=seed)
    with torch.no_grad():
        brevitas_logits = model(pixels_to_input(split.x_test)).numpy()
    train_s = time.perf_counter() - started

    spec = export_pow2_mlp(model)
    golden = integer_activations(spec, split.x_test)
    golden_real = np.ldexp(golden[-1].astype(np.float64), spec[-1].output_exp)
    golden_equals_brevitas = bool(np.array_equal(golden_real, brevitas_logits.astype(np.float64)))

    started = time.perf_counter()
    x = np.asarray(split.x_test, dtype=np.int64)
    layers = []
    for index, layer in enumerate(spec):
        outputs, inputs = layer.weights.shape
        config = ArrayConfig(kind="shift", lanes=lanes, pes=pes, act_width=layer.input_width,
                             exp_bits=exp_bits, depth=inputs)
        logger.info("digits: layer %d (%d x %d) through the RTL under %s", index, outputs,
                    inputs, sim)
        report, tiles = run_jobs(config, layer_jobs(config, f"layer {index}", layer.weights, x),
                                 sim=sim, seed=seed + index)
        layers.append(_layer_summary(index, report))
        # The next layer consumes what the RTL produced, not what the golden model did.
        acc = np.concatenate(tiles, axis=1)[:, :outputs]
        x = layer.requant(acc) if layer.requant is not None else acc
    rtl_s = time.perf_counter() - started

    labels = np.asarray(split.y_test)
    mismatches = sum(layer["mismatches"] for layer in layers)
    summary = ProofSummary(
        sim=sim, seed=seed, test_images=len(labels),
        values_compared=sum(layer["values"] for layer in layers), mismatches=mismatches,
        golden_equals_brevitas=golden_equals_brevitas,
        bit_exact=mismatches == 0 and bool(np.array_equal(x, golden[-1])),
        accuracy_rtl=float(np.mean(x.argmax(axis=1) == labels)),
        accuracy_golden=float(np.mean(golden[-1].argmax(axis=1) == labels)),
        accuracy_brevitas=float(np.mean(brevitas_logits.argmax(axis=1) == labels)),
        layers=layers, train_s=round(train_s, 3), rtl_s=round(rtl_s, 3),
    )
    summary.write(out_dir)
    return summary
