"""How every Forward-Forward net is read out, whatever holds its layers (torch layers,
physical blocks, crossbars): by the goodness each candidate label gives, or by a softmax
head on the activities for the neutral label."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hilt.host.train.goodness import goodness, unit_rms


@dataclass(frozen=True)
class Readout:
    """A net as prediction sees it.

    Attributes
    ----------
    classes
        The candidate labels, ``0..classes-1``.
    embed
        ``embed(x, labels)``: the net's inputs for samples ``x`` (a tensor or an array)
        with ``labels`` (a tensor, one a sample), or the neutral label where None.
    activities
        The read-out layers' activities (N, width) for embedded inputs, input to output.
    mode
        The goodness mode (``sum`` or ``mean``).
    head
        The softmax head on :meth:`head_features`, or None to classify by goodness.
    """

    classes: int
    embed: Callable[[Any, torch.Tensor | None], Any]
    activities: Callable[[Any], list[torch.Tensor]]
    mode: str
    head: nn.Module | None = None

    @torch.no_grad()
    def label_goodness(self, x: Any) -> torch.Tensor:
        """Goodness summed over the read-out layers for every candidate label, (N, C):
        all ``C * N`` inputs in one pass through the net."""
        n, c = len(x), self.classes
        labels = torch.arange(c).repeat_interleave(n)
        tiled = np.tile(x, (c, 1)) if isinstance(x, np.ndarray) else x.repeat(c, 1)
        scores = sum(goodness(h, self.mode) for h in self.activities(self.embed(tiled, labels)))
        return scores.reshape(c, n).T

    @torch.no_grad()
    def head_features(self, x: Any) -> torch.Tensor:
        """What the head reads: the read-out layers' unit-RMS activities for the neutral
        label, concatenated, float32."""
        read = self.activities(self.embed(x, None))
        return torch.cat([unit_rms(h) for h in read], dim=1).float()

    @torch.no_grad()
    def predict(self, x: Any) -> torch.Tensor:
        """Predicted labels (N,): the head's most likely class where there is one, else the
        label of the highest goodness."""
        if self.head is not None:
            return self.head(self.head_features(x)).argmax(dim=1)
        return self.label_goodness(x).argmax(dim=1)
