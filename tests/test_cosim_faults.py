"""Faults between the host and the co-simulated firmware: nothing applied twice, nothing lost.

A :class:`~hilt.host.faults.FaultProxy` sits between a :class:`~hilt.host.transport.Device`
and the firmware running under Verilator, on each engine; a :class:`~hilt.host.link_trial.LinkTrial`
marks every write and pulse, so the memory read back over a clean link afterwards shows
any command applied twice or lost. Batches through dropped, flipped and duplicated bytes
and frames must come back complete and correct; a link cut or a board reset mid-batch
must end the call with a clear error and apply nothing twice.
"""

from __future__ import annotations

import threading
import time

import pytest

from hilt.firmware.targets import MemoryTarget
from hilt.firmware.top import FirmwareTop, capability_record
from hilt.host.faults import TO_DEVICE, FaultProxy, Faults
from hilt.host.link_trial import STEP_STRIDE, LinkTrial
from hilt.host.transport import BoardResetError, Device, LinkClosedError, LinkError
from hilt.sim.cosim import ENGINES, start_cosim
from hilt.sim.errors import SimulationFailed

DIVISOR = 4
MEMORY = 256
MAX_PAYLOAD = 64
SLOW_LINK = {"timeout": 0.5, "retries": 10}
"""A simulated line is slow in wall time: a timeout must outlast a full window's trip."""


def memory_firmware() -> FirmwareTop:
    """The firmware with one memory target, on a fast simulated line."""
    memory = MemoryTarget(MEMORY)
    record = capability_record([memory], board="cosim", build="faults", max_payload=MAX_PAYLOAD,
                               baud=25_000_000, rx_buffer=256)
    return FirmwareTop([memory], record, divisor=DIVISOR, max_payload=MAX_PAYLOAD,
                       rx_buffer=256)


@pytest.fixture(scope="module", params=ENGINES)
def board(request):
    """The memory firmware under Verilator, on each engine in turn."""
    with start_cosim(memory_firmware(), sim="verilator", engine=request.param,
                     divisor=DIVISOR, pty=False) as board:
        yield board


def read_after(board, trial: LinkTrial) -> bytes:
    """The memory over a clean link, in a new session."""
    with Device(board.url, timeout=5.0) as clean:
        return trial.read_back(clean)


def injected(proxy: FaultProxy) -> int:
    return sum(n for counts in proxy.counts.values() for kind, n in counts.items()
               if kind != "frames")


@pytest.mark.parametrize(("seed", "to_device", "to_host"), [
    (1, Faults(drop_byte=0.05, flip_byte=0.05), Faults()),
    (2, Faults(), Faults(drop_byte=0.05, flip_byte=0.05)),
    (3, Faults(drop_frame=0.05, duplicate=0.05), Faults(drop_frame=0.05, duplicate=0.05)),
])
def test_a_batch_through_faults_is_applied_once_and_answered_in_full(board, seed, to_device,
                                                                     to_host):
    trial = LinkTrial(24, memory_size=MEMORY, seed=seed)
    with FaultProxy(board.url, seed=seed, to_device=to_device, to_host=to_host) as proxy, \
            Device(proxy.url, window=8, **SLOW_LINK) as link:
        results = link.transact(trial.requests)
        retransmissions = link.stats.retransmissions
    tally = trial.tally(results, read_after(board, trial))
    assert (tally.applied_twice, tally.not_applied, tally.results_lost) == (0, 0, 0)
    assert injected(proxy) > 0 and retransmissions > 0


def test_every_frame_duplicated_both_ways_is_applied_once(board):
    trial = LinkTrial(10, memory_size=MEMORY, seed=4)
    everything = Faults(duplicate=1.0)
    with FaultProxy(board.url, to_device=everything, to_host=everything) as proxy, \
            Device(proxy.url, window=8, **SLOW_LINK) as link:
        results = link.transact(trial.requests)
        assert link.stats.ignored_frames >= len(trial.requests)
    tally = trial.tally(results, read_after(board, trial))
    assert (tally.applied_twice, tally.not_applied, tally.results_lost) == (0, 0, 0)
    assert proxy.counts[TO_DEVICE]["duplicate"] == len(trial.requests) + 2


def test_a_link_cut_mid_batch_fails_clearly_and_applies_nothing_twice(board):
    trial = LinkTrial(24, memory_size=MEMORY, seed=5)
    with FaultProxy(board.url, close_after=40) as proxy, \
            Device(proxy.url, window=8, **SLOW_LINK) as link:
        with pytest.raises(LinkClosedError, match="the link failed while"):
            link.transact(trial.requests)
        with pytest.raises(LinkError, match="no session"):
            link.read(0, 0, 1)
    assert proxy.counts[TO_DEVICE]["cut"] == 1
    tally = trial.tally(None, read_after(board, trial))
    assert tally.applied_twice == 0
    assert 0 < tally.not_applied < len(trial.marks)


def test_a_board_reset_mid_batch_fails_clearly_and_applies_nothing_twice(board):
    # As many steps as the memory holds: the native engine answers them so fast that a
    # shorter batch could end before the reset lands.
    trial = LinkTrial(MEMORY // STEP_STRIDE, memory_size=MEMORY, seed=6)
    with Device(board.url, window=8, **SLOW_LINK) as link:
        def press_reset() -> None:
            while link.stats.frames_sent < 40:
                time.sleep(0.005)
            board.reset()

        presser = threading.Thread(target=press_reset)
        presser.start()
        with pytest.raises(BoardResetError, match=r"was reset .* Call sync\(\)"):
            link.transact(trial.requests)
        presser.join()
        with pytest.raises(LinkError, match=r"no session .*the board was reset"):
            link.read(0, 0, 1)
        link.sync()
        link.write(0, 3, b"\x03")
        assert link.read(0, 3, 1) == b"\x03"
    tally = trial.tally(None, read_after(board, trial))
    assert tally.applied_twice == 0
    assert tally.not_applied > 0


def test_resetting_a_stopped_board_is_refused():
    board = start_cosim(memory_firmware(), sim="verilator", divisor=DIVISOR, pty=False)
    assert board.stop()["resets"] == 0
    with pytest.raises(SimulationFailed, match="is not running, so it cannot be reset"):
        board.reset()
