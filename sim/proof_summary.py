"""The outcome of an end-to-end proof: a trained network through RTL against its golden model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProofSummary:
    """What one proof run compared and measured; :meth:`write` saves it as ``summary.json``.

    ``values_compared`` and ``mismatches`` count what the testbenches compared with the
    golden model, layer by layer; ``bit_exact`` also requires the RTL logits to equal
    the golden model's run from the pixels; ``golden_equals_brevitas``: the integer
    logits times their scale equal the Brevitas model's float logits exactly.
    """

    sim: str
    seed: int
    test_images: int
    values_compared: int
    mismatches: int
    golden_equals_brevitas: bool
    bit_exact: bool
    accuracy_rtl: float
    accuracy_golden: float
    accuracy_brevitas: float
    layers: list[dict]
    train_s: float
    rtl_s: float

    @property
    def accuracy_matches(self) -> bool:
        return self.accuracy_rtl == self.accuracy_brevitas

    @property
    def verdict(self) -> str:
        return (f"RTL logits {'equal' if self.bit_exact else 'DIFFER FROM'} the golden model's "
                f"({self.mismatches} mismatches in {self.values_compared} values); accuracy "
                f"RTL {self.accuracy_rtl:.4f}, Brevitas {self.accuracy_brevitas:.4f}")

    def write(self, out_dir: Path) -> Path:
        """Write ``out_dir/summary.json`` (the fields, the match and the verdict)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "summary.json"
        path.write_text(json.dumps({**asdict(self), "accuracy_matches": self.accuracy_matches,
                                    "verdict": self.verdict}, indent=2) + "\n")
        return path
