"""Model-free Forward-Forward, physics-aware training and the robustness study.

What a user of a physical layer relies on: clear refusals of bad settings and of layers
that do not fit their block; that no gradient, only numpy, ever reaches a backend; that
a short run learns the digits; that physical queries and digital MACs are counted by
the documented formulas; that a run killed mid-epoch and resumed reaches exactly the
parameters of an uninterrupted one; that a damaged checkpoint is refused; and that
physics-aware training and the robustness study run and count what they cost.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from hilt.host.backends import Backend, BackendError, open_backend
from hilt.host.train.checkpoint import CheckpointError
from hilt.host.train.goodness import LabelLayout
from hilt.host.train.mfff import (
    CHECKPOINT_NAME,
    MFFFConfig,
    MFFFNet,
    evaluate,
    train_mfff,
)
from hilt.host.train.pat import PATConfig, train_pat
from hilt.host.train.robustness import robustness_study
from hilt.quant.datasets import Dataset

C = 10
OPTICAL = "physical:optical?in={}&out={}&seed={}&noise=0.01"


def subset(split: Dataset, train: int, test: int) -> Dataset:
    """The first ``train`` training and ``test`` test samples, for runs of a second or two."""
    return split.subset(train, test)


def optical(hidden: int, blocks: int = 2, out: int = 64, extra: str = "",
            first: int = 64) -> list[Backend]:
    """One optical layer per block, each as wide as what it measures: ``first`` for
    block 0 (the features alone, or 74 with the label through it), ``hidden`` after."""
    widths = [first] + [hidden] * (blocks - 1)
    return [open_backend(OPTICAL.format(width, out, i) + extra) for i, width in enumerate(widths)]


class FakeBackend(Backend):
    """A fixed random tanh layer that records what it was sent."""

    kind = "physical"
    operations = ("forward",)

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.url = f"fake:{in_features}x{out_features}"
        self.in_features, self.out_features = in_features, out_features
        self.weights = np.random.default_rng(0).normal(size=(in_features, out_features))
        self.received: list[type] = []

    def describe(self) -> dict[str, Any]:
        return {"url": self.url}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.received.append(type(x))
        assert type(x) is np.ndarray, f"a backend got {type(x).__name__}, not a numpy array"
        self.stats.queries += len(x)
        return np.tanh(x @ self.weights / np.sqrt(self.in_features))

    def close(self) -> None:
        """Nothing to release."""


# --- refusals ----------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value", "accepted"), [
    ("blocks", 0, "an int from 1 to 64"),
    ("hidden", 2.5, "an int from 1 to 8192"),
    ("skip", 1, "True or False"),
    ("loss", "hinge", "('ff', 'symmetric')"),
    ("goodness", "max", "('sum', 'mean')"),
    ("threshold", -1.0, "a finite number > 0 or None"),
    ("alpha", math.inf, "a finite number > 0 or None"),
    ("schedule", "random", "('joint', 'greedy')"),
    ("lr", 0, "a finite number > 0"),
    ("epochs", True, "an int from 1 to 1000000"),
    ("batch_size", 0, "an int from 1 to 1000000"),
    ("seed", -1, "an int from 0 to 4294967295"),
    ("label_value", "1", "a finite number > 0"),
    ("classifier", "knn", "('softmax', 'goodness')"),
    ("label_path", "around", "('physical', 'skip')"),
    ("stats_momentum", 1.5, "a finite number > 0 and <= 1"),
])
def test_a_bad_setting_is_refused_by_name(field, value, accepted):
    with pytest.raises(ValueError) as info:
        MFFFConfig(**{field: value})
    assert str(info.value) == f"{field} = {value!r}: accepted {accepted}"


@pytest.mark.parametrize("setting", [{"skip": False}, {"label": "blank"}])
def test_the_label_goes_around_the_physical_layer_only_to_a_block_that_reads_it(setting):
    with pytest.raises(ValueError, match=r"^label_path = 'skip' takes the label around block "
                       r"0's physical layer to its digital layer, so it needs skip = true and "
                       r"label = 'append' \(got skip = "):
        MFFFConfig(label_path="skip", **setting)


@pytest.mark.parametrize(("field", "value"), [("twin_hidden", 0), ("twin_random", -1),
                                              ("twin_lr", -0.1), ("skip", "no")])
def test_a_bad_pat_setting_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"^{field} = "):
        PATConfig(**{field: value})


def test_a_physical_layer_of_the_wrong_width_is_refused_with_what_fits():
    config = MFFFConfig(hidden=32, label_path="physical")
    first = open_backend("physical:optical?in=64&out=32&noise=0.01")
    with pytest.raises(BackendError, match=r"block 0: its physical layer physical:optical\?in=64"
                       r"&out=32&noise=0.01 takes 64 features but the block's input has 74 "
                       r"\(64 features \+ 10 label entries\); open physical:optical\?in=74&out=32"
                       r"&noise=0.01"):
        MFFFNet(config, [first, None], LabelLayout(64, C))
    second = open_backend("physical:acoustic?in=74&out=32")
    with pytest.raises(BackendError, match=r"block 1: .* takes 74 features but the block's "
                       r"input has 32 \(block 0's 32 activities\); open physical:acoustic\?"
                       r"in=32&out=32"):
        MFFFNet(config, [None, second], LabelLayout(64, C))
    with pytest.raises(ValueError, match="physical has 1 entries but the config has 2 blocks"):
        MFFFNet(config, [None], LabelLayout(64, C))


def test_a_layer_that_measures_the_label_is_refused_where_the_label_goes_around_it():
    config = MFFFConfig(hidden=16, skip=True, label_path="skip")
    with pytest.raises(BackendError, match=r"block 0: its physical layer fake:74x24 takes 74 "
                       r"features but the block measures 64 \(the features alone; with "
                       r"label_path 'skip' the label goes around the physical layer\)"):
        MFFFNet(config, [FakeBackend(74, 24), None], LabelLayout(64, C))


def test_checkpoint_options_need_a_folder(split):
    with pytest.raises(ValueError, match="need a checkpoint_dir"):
        train_mfff(split, [None, None], MFFFConfig(), checkpoint_every=5, progress=False)


# --- learning, and what it costs ---------------------------------------------------------

def test_a_short_optical_run_learns_the_digits_and_counts_its_queries_exactly(split):
    config = MFFFConfig(hidden=64, epochs=3, skip=False)
    physical = optical(64, out=256, first=74)
    result = train_mfff(split, physical, config, progress=False)
    n, n_test = len(split.x_train), len(split.x_test)
    assert result.test_accuracy > 0.8
    assert len(result.curves.loss) == 3 and len(result.curves.loss[0]) == 3
    # Per sample and epoch: positive, negative and neutral input through each of 2 blocks.
    assert result.queries == 3 * n * 3 * 2 and result.queries_per_sample == 6
    # Each epoch measures the train and test sets once (neutral label) through both blocks.
    assert result.eval_queries == 3 * (n + n_test) * 2
    assert sum(b.stats.queries for b in physical) == result.queries + result.eval_queries
    block = [256 * 64, 256 * 64]
    head = 2 * 64 * C
    # Positive + negative: forward and weight gradient; neutral: forward; head: both.
    assert result.train_macs == 3 * n * (sum(5 * m for m in block) + 2 * head)
    assert result.inference_macs == sum(block) + head and result.inference_queries == 2


def test_greedy_and_goodness_runs_count_by_their_formulas(split):
    small = subset(split, 96, 40)
    n, n_test = 96, 40
    for classifier, per_epoch in (("goodness", (2, 4)), ("softmax", (2 + 2, 4 + 2))):
        config = MFFFConfig(hidden=16, epochs=2, schedule="greedy", classifier=classifier,
                            batch_size=32, skip=False)
        result = train_mfff(small, optical(16, out=32, first=74), config, progress=False)
        assert result.queries == 2 * n * sum(per_epoch)
        assert result.queries_per_sample == sum(per_epoch) / 2
        reads = C if classifier == "goodness" else 1
        assert result.eval_queries == 4 * (n + n_test) * 2 * reads
        # Block 1 takes no step while block 0 trains, and the other way round.
        assert math.isnan(result.curves.loss[0][1]) and math.isnan(result.curves.loss[-1][0])
        assert result.inference_queries == 2 * reads


def test_a_label_that_goes_around_the_layer_costs_one_query_a_sample(split):
    small = subset(split, 96, 40)
    n, n_test = 96, 40
    config = MFFFConfig(hidden=16, epochs=2, batch_size=32, skip=True, label_path="skip")
    fakes = [FakeBackend(64, 24), FakeBackend(16, 24)]
    seen = []
    forward = fakes[0].forward
    fakes[0].forward = lambda x: seen.append(x.copy()) or forward(x)
    result = train_mfff(small, fakes, config, progress=False)
    # Block 0 measures each image once, whatever its label; block 1 positive, negative
    # and neutral activities.
    assert fakes[0].stats.queries == 2 * n + 2 * (n + n_test)
    assert result.queries_per_sample == 1 + 3
    assert result.inference_queries == 2
    measured = np.concatenate(seen)
    images = small.scaled("train")
    assert measured.shape[1] == 64
    assert all(np.any(np.all(np.isclose(images, row), axis=1)) for row in measured[:n])


def test_no_gradient_ever_reaches_a_backend(split):
    small = subset(split, 64, 32)
    config = MFFFConfig(hidden=16, epochs=1, batch_size=32)
    fakes = [FakeBackend(64, 24), FakeBackend(16, 24)]
    result = train_mfff(small, fakes, config, progress=False)
    evaluate(result.net, fakes, torch.rand(5, 64), torch.zeros(5, dtype=torch.long))
    pat = [FakeBackend(74, 24), FakeBackend(16, 24)]
    train_pat(small, pat, PATConfig(hidden=16, epochs=1, batch_size=32, twin_hidden=8,
                                    twin_epochs=1, twin_random=16), progress=False)
    for fake in fakes + pat:
        assert fake.received and set(fake.received) == {np.ndarray}


def test_the_digital_only_network_learns_without_a_query(split):
    result = train_mfff(split, [None, None], MFFFConfig(hidden=64, epochs=3), progress=False)
    assert result.test_accuracy > 0.8
    assert result.queries == result.eval_queries == result.inference_queries == 0
    assert result.inference_macs == 74 * 64 + 64 * 64 + 2 * 64 * C


def test_physics_aware_training_learns_and_counts_its_twin(split):
    config = PATConfig(hidden=64, epochs=2, twin_hidden=64, twin_epochs=3, twin_random=300)
    result = train_pat(split, optical(64, out=128, first=74), config, progress=False)
    n = len(split.x_train)
    assert result.test_accuracy > 0.8
    # The twin of block 1: the training set through block 0, then it and random inputs
    # through block 1; block 0 sits on the data and needs none.
    assert result.twin_queries == n + (n + 300)
    assert result.queries == result.twin_queries + 2 * n * 2
    assert set(result.twin_errors) == {1} and 0 < result.twin_errors[1] < 1.5
    assert result.inference_macs == 128 * 64 + 128 * 64 + 64 * C
    assert result.twin_macs > 0 and result.train_macs > result.twin_macs


# --- checkpoints -------------------------------------------------------------------------

class Killed(Exception):
    """Stands for the process dying."""


def kill_at(step: int):
    def hook(current: int) -> None:
        if current == step:
            raise Killed
    return hook


RESUMED = MFFFConfig(hidden=16, epochs=2, batch_size=32)
DRIFTING = "&drift=0.001"


@pytest.mark.parametrize(("every", "kill"), [(3, 11), (4, 8)], ids=["mid-epoch", "epoch-end"])
def test_a_killed_run_resumes_to_the_same_parameters(split, tmp_path, every, kill):
    small = subset(split, 256, 64)
    reference = train_mfff(small, optical(16, out=32, extra=DRIFTING), RESUMED, progress=False)
    assert reference.steps == 16
    with pytest.raises(Killed):
        train_mfff(small, optical(16, out=32, extra=DRIFTING), RESUMED, progress=False,
                   checkpoint_dir=tmp_path, checkpoint_every=every, on_step=kill_at(kill))
    physical = optical(16, out=32, extra=DRIFTING)
    resumed = train_mfff(small, physical, RESUMED, progress=False, checkpoint_dir=tmp_path,
                         checkpoint_every=every, resume=True)
    expected, got = reference.net.state_dict(), resumed.net.state_dict()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    assert resumed.curves == reference.curves
    assert (resumed.queries, resumed.eval_queries, resumed.train_macs, resumed.steps) == \
        (reference.queries, reference.eval_queries, reference.train_macs, reference.steps)
    again = optical(16, out=32, extra=DRIFTING)
    train_mfff(small, again, RESUMED, progress=False)
    assert all(np.array_equal(a.system.parameters["transmission"],
                              b.system.parameters["transmission"])
               for a, b in zip(physical, again, strict=True))


def test_a_damaged_or_foreign_checkpoint_is_refused(split, tmp_path):
    small = subset(split, 64, 32)
    with pytest.raises(Killed):
        train_mfff(small, optical(16, out=32), RESUMED, progress=False, checkpoint_dir=tmp_path,
                   checkpoint_every=1, on_step=kill_at(2))
    path = tmp_path / CHECKPOINT_NAME
    with pytest.raises(CheckpointError, match=r"another configuration \(lr: 0.003 saved"):
        train_mfff(small, optical(16, out=32), replace(RESUMED, lr=0.01), progress=False,
                   checkpoint_dir=tmp_path, resume=True)
    data = path.read_bytes()
    path.write_bytes(data[:-20] + bytes(20))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        train_mfff(small, optical(16, out=32), RESUMED, progress=False, checkpoint_dir=tmp_path,
                   resume=True)


# --- robustness --------------------------------------------------------------------------

def test_the_robustness_study_reports_drift_bump_and_recovery(split):
    small = subset(split, len(split.x_train), 128)
    n = len(split.x_train)
    config = MFFFConfig(hidden=32, epochs=2, lr=0.01)
    physical = optical(32, out=64, extra="&drift=0.001")
    result = robustness_study(small, physical, config, strength=0.3, retrain_epochs=1,
                              progress=False)
    assert result.drift == [0.001, 0.001] and result.strength == 0.3
    assert all(0 < change < 0.2 for change in result.drift_change)
    for accuracy in (result.trained_accuracy, result.perturbed_accuracy,
                     result.retrained_accuracy):
        assert 0 <= accuracy <= 1
    assert result.trained_accuracy > 0.6
    # Block 0 measures each image once, block 1 positive, negative and neutral activities.
    assert result.retrain_queries == n * (1 + 3) and result.queries == 2 * n * (1 + 3)
    with pytest.raises(ValueError, match="must be a PhysicalBackend"):
        robustness_study(small, [FakeBackend(74, 8), None], config, progress=False)
