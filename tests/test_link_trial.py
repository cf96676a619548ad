"""The link trial's tally: it sees a command applied twice, one lost, and a wrong answer."""

from __future__ import annotations

import pytest

from hilt.host.link_trial import STEP_STRIDE, LinkTrial
from hilt.host.protocol.reference import MemoryTarget, ReferenceDevice, serve_tcp
from hilt.host.transport import Device


@pytest.fixture
def trial() -> LinkTrial:
    return LinkTrial(6, memory_size=64, seed=3)


def clean_run(trial: LinkTrial) -> tuple[list[bytes], bytes]:
    memory = MemoryTarget(64)
    with serve_tcp(ReferenceDevice([memory], max_payload=32)) as server, \
            Device(server.url, timeout=2.0) as device:
        results = device.transact(trial.requests)
        return results, trial.read_back(device)


def test_a_clean_link_tallies_nothing(trial):
    results, memory = clean_run(trial)
    assert results == trial.expected
    tally = trial.tally(results, memory)
    assert (tally.requests, tally.applied_twice, tally.not_applied, tally.results_lost) == \
        (len(trial.requests), 0, 0, 0)
    assert len(trial.requests) == 1 + 4 * 6 and len(memory) == 5 * STEP_STRIDE + 1


def test_each_kind_of_damage_is_counted(trial):
    results, memory = clean_run(trial)
    marks = list(trial.marks.items())
    damaged = bytearray(memory)
    (a0, v0), (a1, v1), (a2, _) = marks[:3]
    damaged[a0] = v0 + 2          # a pulse applied twice
    damaged[a1] = v1              # the write applied again after its pulse
    damaged[a2] = 1               # the write lost
    answers = list(results)
    answers[-1] = bytes(len(answers[-1]))
    tally = trial.tally(answers, bytes(damaged))
    assert (tally.applied_twice, tally.not_applied, tally.results_lost) == (2, 1, 1)


def test_a_failed_call_loses_every_answer(trial):
    _, memory = clean_run(trial)
    tally = trial.tally(None, memory)
    assert tally.results_lost == len(trial.requests)


@pytest.mark.parametrize("count", [0, 17, True, 2.0])
def test_a_count_that_does_not_fit_is_refused(count):
    with pytest.raises(ValueError, match=r"count must be an int in 1\.\.16 for a 64-byte memory"):
        LinkTrial(count, memory_size=64)
