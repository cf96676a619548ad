# amaranth: UnusedElaboratable=no
# (the error cases fail before the adder is converted, which is the point)

"""The simulation harness, on a registered adder and the small testbench in adder_tb.py."""

import logging
import threading
from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hilt.sim.runner import (
    SimulationFailed,
    SimulatorNotFound,
    available_simulators,
    simulate,
)

SIMS = ["icarus", "verilator"]
PAIRS = [[1, 2], [255, 255], [100, 27], [0, 0]]


class RegisteredAdder(wiring.Component):
    """``s`` takes ``a + b`` on each clock edge."""

    def __init__(self, width: int = 8):
        super().__init__({"a": In(width), "b": In(width), "s": Out(width + 1)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.s.eq(self.a + self.b)
        return m


@pytest.fixture(autouse=True)
def adder_testbench_importable(monkeypatch):
    # The simulator's Python gets this process's sys.path, so adder_tb.py is importable there.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


def run_adder(sim, pairs=PAIRS, expected=None, **kwargs):
    expected = [a + b for a, b in pairs] if expected is None else expected
    return simulate(RegisteredAdder(), "adder_tb", sim=sim,
                    params={"pairs": pairs, "expected": expected}, **kwargs)


def test_both_simulators_give_the_same_sums():
    sums = {sim: run_adder(sim)["sums"] for sim in SIMS}
    assert sums["icarus"] == sums["verilator"] == [3, 510, 127, 0]


@pytest.mark.parametrize("sim", SIMS)
def test_second_call_reuses_the_build(sim, caplog):
    caplog.set_level(logging.INFO, logger="hilt.sim.build_cache")
    first = run_adder(sim)
    build_dir = Path(first["harness"]["build_dir"])
    before = {path: path.stat().st_mtime_ns for path in build_dir.iterdir()}
    caplog.clear()

    second = run_adder(sim, pairs=[[7, 8]])
    assert second["sums"] == [15]
    assert second["harness"]["cached"] is True
    assert second["harness"]["build_dir"] == str(build_dir)
    assert {path: path.stat().st_mtime_ns for path in build_dir.iterdir()} == before
    assert any("cache hit" in record.getMessage() for record in caplog.records)
    assert not any("building" in record.getMessage() for record in caplog.records)


def test_a_different_design_is_a_different_build():
    narrow = simulate(RegisteredAdder(8), "adder_tb", params={"pairs": [[1, 1]], "expected": [2]})
    wide = simulate(RegisteredAdder(9), "adder_tb", params={"pairs": [[1, 1]], "expected": [2]})
    assert narrow["harness"]["build_dir"] != wide["harness"]["build_dir"]


def test_concurrent_callers_build_once(tmp_path):
    start = threading.Barrier(2)
    results = []

    def call():
        start.wait()
        results.append(run_adder("icarus", cache_dir=tmp_path))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [result["sums"] for result in results] == [[3, 510, 127, 0]] * 2
    assert sorted(result["harness"]["cached"] for result in results) == [False, True]
    assert len(list((tmp_path / "builds").iterdir())) == 1


@pytest.mark.parametrize("sim", SIMS)
def test_waves_are_written_on_request(sim, tmp_path):
    result = run_adder(sim, waves=True, run_dir=tmp_path)
    waves = Path(result["harness"]["waves"])
    assert waves.is_relative_to(tmp_path)
    assert waves.suffix in {".fst", ".vcd"}
    assert waves.stat().st_size > 0
    if waves.suffix == ".vcd":
        assert "$var" in waves.read_text()
    assert run_adder(sim)["harness"]["waves"] is None


@pytest.mark.parametrize("sim", SIMS)
def test_failing_testbench_raises_with_its_message(sim, tmp_path):
    with pytest.raises(SimulationFailed) as failure:
        run_adder(sim, expected=[3, 511, 127, 0], run_dir=tmp_path)
    assert "pair 1: 255+255 gave 510, expected 511" in str(failure.value)
    # What the testbench wrote before its assertion comes with the error.
    assert failure.value.results == {"sums": [3, 510, 127, 0]}


def test_unknown_simulator_is_a_value_error():
    with pytest.raises(ValueError, match=r"'modelsim'.*icarus, verilator"):
        run_adder("modelsim")


@pytest.mark.parametrize(("sim", "tool"), [("icarus", "iverilog"), ("verilator", "make")])
def test_missing_simulator_says_what_to_install(sim, tool, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    missing = rf"{sim}: cannot simulate, missing .*{tool}"
    with pytest.raises(SimulatorNotFound, match=missing) as error:
        run_adder(sim, cache_dir=tmp_path)
    assert "apt install" in str(error.value)
    assert sim not in available_simulators()


def test_both_simulators_are_available():
    assert available_simulators() == SIMS
