"""The pieces every goodness-based local learning rule shares: goodness, the local losses,
label embedding (:class:`LabelLayout`) and negative labels, as plain torch functions on
batches that know no layer, optimizer or hardware (docs/training.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hilt.quant.datasets import Dataset

GOODNESS_MODES = ("sum", "mean")
"""How activities become a goodness: sum or mean of their squares over a sample."""

NORMALIZE_EPS = 1e-4
"""Added to the L2 norm in :func:`normalize` so that an all-zero vector stays zero."""


LABEL_PLACES = ("append", "blank")
"""Where an input carries its label: after the features, or written into the ``C``
features that vary least (docs/training.md)."""


@dataclass(frozen=True)
class LabelLayout:
    """How a data set's features and a label make one input: ``features`` of them, a
    one-hot over ``classes``, appended (``into`` None) or written into the columns ``into``."""

    features: int
    classes: int
    into: tuple[int, ...] | None = None

    @classmethod
    def of(cls, data: Dataset, place: str = "append") -> LabelLayout:
        """The layout of ``data`` with its label placed as ``place`` says."""
        if place not in LABEL_PLACES:
            raise ValueError(f"label = {place!r}: accepted {LABEL_PLACES}")
        into = data.blank_features(data.classes) if place == "blank" else None
        return cls(data.features, data.classes, into)

    @property
    def width(self) -> int:
        """Entries of one input: the features, and the label where it is appended."""
        return self.features + (self.classes if self.into is None else 0)

    def describe(self) -> str:
        """E.g. ``64 features + 10 label entries``."""
        if self.into is None:
            return f"{self.features} features + {self.classes} label entries"
        return f"{self.features} features with the label in {self.classes} of them"


def goodness(h: torch.Tensor, mode: str = "sum") -> torch.Tensor:
    """Per-sample goodness of activities ``h`` (N, D): the sum (or mean) of squares, shape (N,).

    "sum" is Hinton's choice, paired with a threshold equal to the layer width; "mean"
    makes the goodness independent of the width, so one threshold (about 1) fits all layers.
    """
    if mode not in GOODNESS_MODES:
        raise ValueError(f"goodness mode must be one of {GOODNESS_MODES}, got {mode!r}")
    squares = h.pow(2)
    return squares.sum(dim=1) if mode == "sum" else squares.mean(dim=1)


def ff_loss(g_pos: torch.Tensor, g_neg: torch.Tensor, threshold: float) -> torch.Tensor:
    """Hinton's Forward-Forward loss, mean over the batch.

    ``softplus(-(g_pos - threshold)) + softplus(g_neg - threshold)``: the negative log of
    the probability that a positive sample is judged positive (sigmoid of its goodness
    above the threshold) plus that a negative one is judged negative.
    """
    return (F.softplus(threshold - g_pos) + F.softplus(g_neg - threshold)).mean()


def symmetric_loss(g_pos: torch.Tensor, g_neg: torch.Tensor, alpha: float) -> torch.Tensor:
    """The symmetric loss on the goodness gap, ``softplus(-alpha (g_pos - g_neg))``, batch mean.

    As in SymBa (Lee and Song, 2023) and Momeni et al. (2023): with no threshold, positive
    and negative goodness are pushed apart by the same gradient, so neither side dominates
    the update as it can with :func:`ff_loss` when most samples sit on one side of it.
    ``alpha`` sets the sharpness of the sigmoid on the gap.
    """
    return F.softplus(-alpha * (g_pos - g_neg)).mean()


def _ff(
    g_pos: torch.Tensor, g_neg: torch.Tensor, *, threshold: float, alpha: float
) -> torch.Tensor:
    return ff_loss(g_pos, g_neg, threshold)


def _symmetric(
    g_pos: torch.Tensor, g_neg: torch.Tensor, *, threshold: float, alpha: float
) -> torch.Tensor:
    return symmetric_loss(g_pos, g_neg, alpha)


LOSSES: dict[str, Callable[..., torch.Tensor]] = {"ff": _ff, "symmetric": _symmetric}
"""Local losses by name, each called as ``loss(g_pos, g_neg, threshold=..., alpha=...)``."""


def check_loss_name(name: str) -> None:
    """Refuse a loss name that :data:`LOSSES` does not hold, naming the accepted ones."""
    if name not in LOSSES:
        raise ValueError(f"unknown local loss {name!r}; accepted: {sorted(LOSSES)}")


def local_loss(
    name: str, g_pos: torch.Tensor, g_neg: torch.Tensor, *, threshold: float, alpha: float
) -> torch.Tensor:
    """The local loss ``name`` ("ff" or "symmetric") of positive and negative goodness.

    Each loss takes only the parameter it needs; both are passed so that a trainer can
    switch losses by name without knowing which one uses what.
    """
    check_loss_name(name)
    return LOSSES[name](g_pos, g_neg, threshold=threshold, alpha=alpha)


def _place(x: torch.Tensor, label: torch.Tensor, into: Sequence[int] | None) -> torch.Tensor:
    """``label`` (N, C) appended to ``x`` (N, F), or written over its columns ``into``."""
    if into is None:
        return torch.cat([x, label], dim=1)
    columns = list(into)
    if len(columns) != label.shape[1] or len(set(columns)) != len(columns) \
            or not all(0 <= c < x.shape[1] for c in columns):
        raise ValueError(f"into must name {label.shape[1]} distinct feature columns of "
                         f"0..{x.shape[1] - 1}, got {columns}")
    placed = x.clone()
    placed[:, columns] = label
    return placed


def embed_label(
    x: torch.Tensor, labels: torch.Tensor, num_classes: int, value: float,
    into: Sequence[int] | None = None,
) -> torch.Tensor:
    """Inputs ``x`` (N, F) with labels as a one-hot of amplitude ``value``: appended,
    (N, F + C), or written over the ``C`` feature columns ``into``, (N, F).

    Concatenation, the default, loses no feature and shows the label equally for every
    image (docs/training.md).
    """
    if x.dim() != 2 or labels.shape != (x.shape[0],):
        raise ValueError(
            f"x must be (N, F) and labels (N,), got {tuple(x.shape)} and {tuple(labels.shape)}"
        )
    one_hot = F.one_hot(labels.long(), num_classes).to(x.dtype) * value
    return _place(x, one_hot, into)


def embed_neutral(
    x: torch.Tensor, num_classes: int, value: float, into: Sequence[int] | None = None
) -> torch.Tensor:
    """Inputs ``x`` (N, F) with the neutral label, every class at ``value / C``, placed as
    :func:`embed_label` places a label; it carries no preference for any class, and a
    softmax head reads the activities it produces.
    """
    neutral = torch.full((x.shape[0], num_classes), value / num_classes, dtype=x.dtype)
    return _place(x, neutral, into)


NEGATIVES = ("hard", "random")
"""How wrong labels are drawn: in proportion to the net's belief in them, or uniformly."""


def negative_labels(
    labels: torch.Tensor, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A wrong label for every sample, uniform over the ``num_classes - 1`` others.

    Adding an offset drawn from 1..C-1 modulo C never lands on the true label and reaches
    each other class with the same probability.
    """
    if num_classes < 2:
        raise ValueError(f"negative labels need at least 2 classes, got {num_classes}")
    offsets = torch.randint(1, num_classes, labels.shape, generator=generator)
    return (labels.long() + offsets) % num_classes


def hard_negative_labels(
    scores: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A wrong label for every sample, drawn in proportion to how much the net believes it.

    ``scores`` (N, C) are the net's goodness per candidate label (higher = more likely);
    each sample's wrong label is drawn from the softmax of its scores over the C - 1 wrong
    labels. Labels the net confuses with the true one are the negatives it learns most
    from (hard-negative mining); sampling, rather than always taking the most confused
    one, keeps every wrong label in play. The true label is never drawn.
    """
    if scores.dim() != 2 or labels.shape != (scores.shape[0],) or scores.shape[1] < 2:
        raise ValueError(
            f"scores must be (N, C) with C >= 2 and labels (N,), "
            f"got {tuple(scores.shape)} and {tuple(labels.shape)}"
        )
    logits = scores.detach().double().clone()
    logits[torch.arange(len(labels)), labels.long()] = -torch.inf
    probs = torch.softmax(logits, dim=1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def normalize(h: torch.Tensor, eps: float = NORMALIZE_EPS) -> torch.Tensor:
    """Each row of ``h`` divided by its L2 norm (plus ``eps``).

    Hinton's "layer normalisation" between Forward-Forward layers: the length of the
    activity vector *is* the previous layer's goodness, so removing it forces the next
    layer to judge the input by the direction of the activities, not by what the layer
    below already decided.
    """
    return h / (h.norm(dim=1, keepdim=True) + eps)


def unit_rms(h: torch.Tensor) -> torch.Tensor:
    """Rows of ``h`` :func:`normalize`-d to unit length, then scaled to unit root mean
    square per component: what a Forward-Forward layer hands the next one, O(1) entries
    whatever the width."""
    return normalize(h) * math.sqrt(h.shape[1])
