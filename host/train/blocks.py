"""The physical-block machinery model-free Forward-Forward and physics-aware training
share: a block is a physical layer (a backend, or none) followed by a small digital
layer on its standardised measurement; here are the block, the checks that its physical
layer fits, and how a measurement is taken and counted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hilt.host.backends.base import Backend, BackendError
from hilt.host.train.goodness import LabelLayout

STANDARDIZE_EPS = 1e-5
"""Added to the variance when standardising, so a constant feature maps to 0, not to inf."""

MAX_BLOCKS = 64
"""The most blocks a config takes."""

LABEL_PATHS = ("physical", "skip")
"""How block 0's label reaches its digital layer: through the physical layer with the
features, or around it, beside the measurement of the features alone (docs/training.md)."""

class Standardizer(nn.Module):
    """Per-feature standardisation with running statistics that backprop never touches.

    ``mean`` and ``var`` are buffers: the first :meth:`update` sets them to a batch's
    statistics, later ones move them by ``momentum`` towards each batch's.
    """

    def __init__(self, features: int, momentum: float) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("var", torch.ones(features))
        self.register_buffer("calibrated", torch.tensor(False))

    @torch.no_grad()
    def update(self, m: torch.Tensor) -> None:
        """Fold the measurements ``m`` (N, features) into the statistics."""
        mean, var = m.mean(dim=0), m.var(dim=0, unbiased=False)
        if not bool(self.calibrated):
            self.mean.copy_(mean)
            self.var.copy_(var)
            self.calibrated.fill_(True)
        else:
            self.mean.lerp_(mean, self.momentum)
            self.var.lerp_(var, self.momentum)

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        return (m - self.mean) / torch.sqrt(self.var + STANDARDIZE_EPS)


class Block(nn.Module):
    """The digital half of a block: standardise what it reads, then Linear + ReLU.

    It reads the measurement, and with ``skip`` (only meaningful with a physical layer)
    the block input beside it, both standardised alike, so that neither drowns the other.
    """

    def __init__(self, in_features: int, measured_features: int, hidden: int, *, skip: bool,
                 momentum: float) -> None:
        super().__init__()
        self.in_features = in_features
        self.skip = skip
        width = measured_features + (in_features if skip else 0)
        self.standardize = Standardizer(width, momentum)
        self.digital = nn.Linear(width, hidden)

    def reads(self, m: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """What the block standardises: the measurements ``m`` of the block inputs ``u``,
        and ``u`` beside them with ``skip``."""
        return torch.cat([m, u], dim=1) if self.skip else m

    def forward(self, m: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Activities (N, hidden) from measurements ``m`` of the block inputs ``u``."""
        return F.relu(self.digital(self.standardize(self.reads(m, u))))

    def macs(self) -> int:
        """Multiply-accumulates of one forward pass of one sample."""
        return self.digital.in_features * self.digital.out_features


def input_width(block: int, hidden: int, layout: LabelLayout) -> int:
    """Width of block ``block``'s input: the features and the label as ``layout`` places
    them for block 0, ``hidden`` after."""
    return layout.width if block == 0 else hidden


def features_alone(block: int, label_path: str) -> bool:
    """Whether block ``block``'s physical layer measures the features alone: block 0's
    does when the label goes around it (``label_path`` "skip")."""
    return block == 0 and label_path == "skip"


def physical_width(block: int, hidden: int, layout: LabelLayout,
                   label_path: str = "physical") -> int:
    """Width of what block ``block``'s physical layer measures: the block input, or the
    features alone (:func:`features_alone`)."""
    if features_alone(block, label_path):
        return layout.features
    return input_width(block, hidden, layout)


def measure_block(block: int, backend: Backend | None, u: torch.Tensor, layout: LabelLayout,
                  label_path: str = "physical") -> torch.Tensor:
    """Block ``block``'s measurements of its inputs ``u``: :func:`measure` of ``u``, or of
    its features alone (the label appended after them) as :func:`features_alone` says."""
    if backend is not None and features_alone(block, label_path):
        u = u[:, :layout.features]
    return measure(backend, u)


def _suggest(url: str, width: int) -> str:
    """A URL like ``url`` but ``width`` wide at its input, or a plain hint if it is not physical."""
    scheme, _, rest = url.partition(":")
    if scheme != "physical":
        return f"a backend whose input width is {width}"
    name, _, query = rest.partition("?")
    options = dict(parse_qsl(query))
    options["in"] = str(width)
    return f"open physical:{name}?{urlencode(options)}"


def check_physical(physical: Sequence[Backend | None], blocks: int, hidden: int,
                   layout: LabelLayout, label_path: str = "physical") -> None:
    """Refuse physical layers that do not fit ``blocks`` blocks of width ``hidden`` (block 0's
    as ``label_path`` says, :func:`physical_width`), naming the block and what would fit.

    Raises
    ------
    ValueError
        ``physical`` does not hold one entry (a backend or None) per block.
    BackendError
        A backend cannot run forward, or its input width is not its block's input width.
    """
    if len(physical) != blocks:
        raise ValueError(f"physical has {len(physical)} entries but the config has "
                         f"{blocks} blocks; give one backend (or None) per block")
    for i, backend in enumerate(physical):
        if backend is None:
            continue
        if not isinstance(backend, Backend):
            raise ValueError(f"physical[{i}] = {backend!r}: accepted a Backend or None")
        backend.require("forward", why=f"block {i} measures its inputs through it")
        width = physical_width(i, hidden, layout, label_path)
        if backend.in_features != width:
            if i > 0:
                what = f"the block's input has {width} (block {i - 1}'s {hidden} activities)"
            elif features_alone(i, label_path):
                what = (f"the block measures {width} (the features alone; with label_path "
                        f"'skip' the label goes around the physical layer)")
            else:
                what = f"the block's input has {width} ({layout.describe()})"
            raise BackendError(f"block {i}: its physical layer {backend.url} takes "
                               f"{backend.in_features} features but {what}; "
                               f"{_suggest(backend.url, width)}")


def build_blocks(config: Any, physical: Sequence[Backend | None], layout: LabelLayout,
                 label_path: str = "physical") -> nn.ModuleList:
    """One digital :class:`Block` per physical layer (checked first), each sized to its
    block's input and to what its layer measures; MF-FF and PAT share the architecture
    (``config`` is an :class:`MFFFConfig` or a :class:`~hilt.host.train.pat.PATConfig`)."""
    check_physical(physical, config.blocks, config.hidden, layout, label_path)
    blocks = nn.ModuleList()
    for i, backend in enumerate(physical):
        width = input_width(i, config.hidden, layout)
        measured = width if backend is None else backend.out_features
        blocks.append(Block(width, measured, config.hidden,
                            skip=config.skip and backend is not None,
                            momentum=config.stats_momentum))
    return blocks


def measure(backend: Backend | None, u: torch.Tensor) -> torch.Tensor:
    """The backend's measurements of the inputs ``u`` as a float32 tensor; ``u`` itself for None.

    The backend only ever receives a detached numpy array: no autograd graph can reach it.
    """
    if backend is None:
        return u
    readings = backend.forward(u.detach().cpu().numpy())
    return torch.as_tensor(np.asarray(readings), dtype=torch.float32)


def physical_queries(physical: Sequence[Backend | None]) -> int:
    """Input vectors measured so far by all the backends in ``physical``, each counted once
    where one serves several blocks."""
    distinct = {id(backend.stats): backend.stats for backend in physical if backend is not None}
    return sum(stats.queries for stats in distinct.values())
