"""End-to-end proof: a trained binarized MLP run through the threshold-neuron RTL, bit for bit.

Train :class:`~hilt.quant.binary_mlp.BinaryMLP` on the digits, export it to weight bits
and count thresholds, and stream the whole test split through
:class:`~hilt.hdl.threshold_array.BinaryLayerArray` in simulation layer by layer: each
hidden layer on an array that emits bits, the last on one that emits counts p, from
which the host forms the integer logits 2p - S, as a board's host would. Each layer
consumes what the RTL produced for the one before. The RTL logits must equal the
integer golden model's, and the accuracy the Brevitas model's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hilt.hdl.threshold_array import LayerFolding
from hilt.quant.binary_export import BinaryLayerSpec
from hilt.quant.binary_mlp import (
    BinaryMLP,
    binarize_pixels,
    export_binary_mlp,
    fit,
    integer_activations,
    pixels_to_input,
)
from hilt.quant.datasets import load_digits
from hilt.sim.binary_regression import BinaryRegressionReport, run_layer_jobs, spec_job
from hilt.sim.proof_summary import ProofSummary

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BnnDigitsProofSummary(ProofSummary):
    """A :class:`ProofSummary` that also says whether Brevitas' float32 model is exact.

    ``float32_safe``: every layer's float32 pre-activations are exact and no neuron's
    BatchNorm output comes within float32 rounding of zero, so the Brevitas model must
    give exactly the golden model's bits and logits.
    """

    float32_safe: bool


def layer_folding(layer: BinaryLayerSpec, *, pe: int, simd: int) -> LayerFolding:
    """The folding of one exported layer: bits if it has thresholds, else counts.

    ``pe`` and ``simd`` are capped at the layer's own sizes.
    """
    out_features, in_features = layer.shape
    max_weight = 1 if layer.magnitudes is None else max(1, int(layer.magnitudes.max()))
    return LayerFolding(in_features=in_features, out_features=out_features,
                        pe=min(pe, out_features), simd=min(simd, in_features),
                        max_weight=max_weight,
                        emit="bits" if layer.thresholds is not None else "counts")


def _layer_summary(index: int, layer: BinaryLayerSpec, report: BinaryRegressionReport,
                   matches_golden: bool) -> dict:
    folding = report.folding
    return {
        "layer": index, "name": layer.name, "in_features": folding.in_features,
        "out_features": folding.out_features, "pe": folding.pe, "simd": folding.simd,
        "emit": folding.emit, "cycles_per_vector": folding.cycles_per_vector,
        "vectors": report.vectors, "values": report.values, "mismatches": report.mismatches,
        "first_mismatch": report.first_mismatch, "matches_golden": matches_golden,
        "cycles": report.cycles, "wall_s": round(report.wall_s, 3),
    }


def run_bnn_digits_proof(*, sim: str, out_dir: Path, seed: int = 0, epochs: int = 30,
                         hidden: Sequence[int] = (64,), pe: int = 8, simd: int = 16,
                         last_pe: int = 5, last_simd: int = 16) -> BnnDigitsProofSummary:
    """Train, export, simulate every layer and compare; writes ``out_dir/summary.json``.

    Hidden layers fold onto ``pe`` x ``simd`` neurons (64 x 64 at the defaults: 8 neuron
    folds of 4 slices, 32 cycles per image), the last layer onto ``last_pe`` x
    ``last_simd`` (64 -> 10: 2 neuron folds of 4 slices, 8 cycles per image).
    """
    split = load_digits(seed)
    started = time.perf_counter()
    torch.manual_seed(seed)
    model = BinaryMLP(hidden=tuple(hidden))
    fit(model, split.x_train, split.y_train, epochs=epochs, seed=seed)
    with torch.no_grad():
        brevitas_logits = model(pixels_to_input(split.x_test)).numpy()
    train_s = time.perf_counter() - started

    spec = export_binary_mlp(model)
    golden = integer_activations(spec, split.x_test)
    golden_real = golden[-1].astype(np.float64) * float(spec[-1].scale)
    golden_equals_brevitas = bool(np.array_equal(golden_real, brevitas_logits.astype(np.float64)))

    started = time.perf_counter()
    x = binarize_pixels(split.x_test)
    layers, exact = [], True
    for index, layer in enumerate(spec):
        last = index == len(spec) - 1
        folding = layer_folding(layer, pe=last_pe if last else pe,
                                simd=last_simd if last else simd)
        logger.info("bnn digits: %s (%d x %d, %s) through the RTL under %s", layer.name,
                    folding.out_features, folding.in_features, folding.emit, sim)
        report, (outputs,) = run_layer_jobs(folding, [spec_job(layer, x)], sim=sim,
                                            seed=seed + index)
        # The next layer consumes what the RTL produced, not what the golden model did.
        x = outputs if folding.thresholded else 2 * outputs - layer.sums[None, :]
        matches_golden = bool(np.array_equal(x, golden[index + 1]))
        exact &= matches_golden
        layers.append(_layer_summary(index, layer, report, matches_golden))
    rtl_s = time.perf_counter() - started

    labels = np.asarray(split.y_test)
    mismatches = sum(layer["mismatches"] for layer in layers)
    summary = BnnDigitsProofSummary(
        sim=sim, seed=seed, test_images=len(labels),
        values_compared=sum(layer["values"] for layer in layers), mismatches=mismatches,
        golden_equals_brevitas=golden_equals_brevitas,
        float32_safe=all(layer.float32_safe for layer in spec),
        bit_exact=mismatches == 0 and exact,
        accuracy_rtl=float(np.mean(x.argmax(axis=1) == labels)),
        accuracy_golden=float(np.mean(golden[-1].argmax(axis=1) == labels)),
        accuracy_brevitas=float(np.mean(brevitas_logits.argmax(axis=1) == labels)),
        layers=layers, train_s=round(train_s, 3), rtl_s=round(rtl_s, 3),
    )
    logger.info("bnn digits: %s", summary.verdict)
    summary.write(out_dir)
    return summary
