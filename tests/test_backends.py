"""Backends by URL: the golden twin, a co-simulated board, a serial link, and bad URLs."""

from __future__ import annotations

import numpy as np
import pytest

from hilt.host.backends import BackendError, open_backend
from hilt.host.protocol.codec import Capabilities
from hilt.host.protocol.reference import MemoryTarget, ReferenceDevice, serve_tcp
from hilt.host.protocol.synapse_layout import Slot
from hilt.host.reference_board import reference_board
from hilt.quant.binary_golden import threshold_layer
from hilt.quant.synapse_device import SoftBoundsDevice
from hilt.quant.synapse_golden import SynapseCrossbarModel, step_tables_from_device
from hilt.quant.synapse_tables import StepTables
from hilt.sim.cosim_board import board_record, start_board

RNG = np.random.default_rng(0)


def shift_weights(backend) -> np.ndarray:
    return RNG.choice([0, 1, -1, 2, -8, 64, -32], size=(backend.out_features,
                                                         backend.in_features))


def model_of(entry: dict) -> SynapseCrossbarModel:
    p = entry["params"]
    return SynapseCrossbarModel(p["rows"], p["cols"],
                                StepTables(p["state_bits"], tuple(p["up"]), tuple(p["down"])),
                                in_bits=p["in_bits"], max_pulses=p["max_pulses"],
                                noise_bits=p["noise_bits"], lfsr_bits=p["lfsr_bits"],
                                seed=p["seed"])


def random_slots(rng: np.random.Generator, rows: int, cols: int, count: int) -> list[Slot]:
    """One-slot updates, alternately bidirectional and unidirectional."""
    def mask(width: int) -> int:
        return int.from_bytes(rng.bytes((width + 7) // 8), "little") & ((1 << width) - 1)

    return [Slot(mask(rows), mask(rows), mask(cols), mask(cols), bool(k % 2), True)
            for k in range(count)]


def synapse_session(backend) -> dict[str, np.ndarray]:
    """Program, forward, pulse, read back: what a pulse-training loop does."""
    rng = np.random.default_rng(1)
    rows, cols = backend.out_features, backend.in_features
    plus, minus = rng.integers(0, 16, (rows, cols)), rng.integers(0, 16, (rows, cols))
    backend.load(plus=plus, minus=minus)
    x = rng.integers(-8, 8, (40, cols))
    y = backend.forward(x)
    backend.pulse(random_slots(rng, rows, cols, 12))
    return {"y": y, **backend.read_state(), "y_after": backend.forward(x)}


def test_golden_shift_array_computes_the_integer_dot_products():
    with open_backend("golden:icebreaker?pe=shift") as backend:
        assert (backend.kind, backend.in_features, backend.out_features) == ("shift_array", 64, 4)
        weights = shift_weights(backend)
        backend.load(weights=weights)
        x = RNG.integers(-128, 128, (300, 64))
        assert np.array_equal(backend.forward(x), x @ weights.T)
        assert backend.stats.queries == 300 and backend.stats.loads == 1
        assert backend.describe()["board"] == "icebreaker"


def test_golden_binary_layer_thresholds_the_matches():
    with open_backend("golden:icebreaker?pe=binary") as backend:
        weights = RNG.integers(0, 2, (backend.out_features, backend.in_features))
        thresholds = RNG.integers(0, backend.in_features + 2, backend.out_features)
        backend.load(weights=weights, thresholds=thresholds)
        x = RNG.integers(0, 2, (50, backend.in_features))
        assert np.array_equal(backend.forward(x), threshold_layer(x, weights, thresholds))


def test_golden_synapse_crossbar_follows_its_model():
    with open_backend("golden:icebreaker") as backend:
        assert backend.operations == ("forward", "load", "pulse", "read_state")
        model = model_of(backend.describe()["target"])
        got = synapse_session(backend)
    rng = np.random.default_rng(1)
    plus, minus = rng.integers(0, 16, (8, 8)), rng.integers(0, 16, (8, 8))
    for row in range(8):
        model.program_row(row, plus[row], minus[row])
    x = rng.integers(-8, 8, (40, 8))
    assert np.array_equal(got["y"], np.stack([model.read(v) for v in x]))
    assert not np.array_equal(got["plus"], plus) or not np.array_equal(got["minus"], minus)


@pytest.mark.parametrize("query", ["sim=verilator", "engine=cocotb", "sim=icarus"])
def test_the_cosimulated_board_answers_as_the_golden_twin(query):
    with open_backend("golden:icebreaker") as golden:
        expected = synapse_session(golden)
    with open_backend(f"cosim:icebreaker?{query}") as cosim:
        assert cosim.describe()["build"] == golden.describe()["build"]
        got = synapse_session(cosim)
    for name, value in expected.items():
        assert np.array_equal(got[name], value), name


def test_a_board_url_overrides_the_size_of_its_element():
    url = "golden:icebreaker?pe=synapse&rows=32&cols=74&state_bits=6"
    with open_backend(url) as backend, open_backend("golden:icebreaker") as board_size:
        assert (backend.in_features, backend.out_features) == (74, 32)
        entry = backend.describe()["target"]
        assert entry["params"]["state_bits"] == 6 and len(entry["params"]["up"]) == 64
        assert entry["params"]["in_bits"] == board_size.describe()["target"]["params"]["in_bits"]
        assert backend.describe()["build"] != board_size.describe()["build"]
        model = model_of(entry)
        plus, minus = RNG.integers(0, 64, (32, 74)), RNG.integers(0, 64, (32, 74))
        backend.load(plus=plus, minus=minus)
        for row in range(32):
            model.program_row(row, plus[row], minus[row])
        x = RNG.integers(-8, 8, (5, 74))
        assert np.array_equal(backend.forward(x), np.stack([model.read(v) for v in x]))
    with open_backend("golden:icebreaker?pe=binary&in_features=32&out_features=16&pes=4"
                      "&simd=8") as binary:
        assert binary.describe()["target"]["params"]["pe"] == 4


def test_the_cosimulated_board_at_the_pulse_trainers_size_answers_as_its_golden_twin():
    with open_backend("golden:icebreaker?rows=64&cols=74") as golden:
        expected = synapse_session(golden)
    with open_backend("cosim:icebreaker?rows=64&cols=74") as cosim:
        assert cosim.describe() == {**golden.describe(), "url": cosim.url}
        got = synapse_session(cosim)
    for name, value in expected.items():
        assert np.array_equal(got[name], value), name


def test_a_board_url_sets_the_cells_step_and_the_record_keeps_it():
    with open_backend("golden:icebreaker?pe=synapse&state_bits=6&dw_min=0.05") as fine, \
            open_backend("golden:icebreaker?pe=synapse") as board_cells:
        params = fine.describe()["target"]["params"]
        tables = step_tables_from_device(SoftBoundsDevice(dw_min=0.05), 6)
        assert (params["dw_min"], params["up"], params["down"]) == (
            0.05, list(tables.up), list(tables.down))
        assert board_cells.describe()["target"]["params"]["dw_min"] == 0.2
        assert fine.describe()["build"] != board_cells.describe()["build"]


def test_a_cosimulated_board_with_finer_cells_and_larger_frames_answers_as_its_twin():
    url = "icebreaker?rows=4&cols=8&state_bits=6&dw_min=0.05&max_payload=512"
    with open_backend(f"golden:{url}") as golden:
        expected = synapse_session(golden)
    with open_backend(f"cosim:{url}") as cosim:
        assert cosim.describe() == {**golden.describe(), "url": cosim.url}
        assert cosim.capabilities.max_payload == 512
        got = synapse_session(cosim)
    for name, value in expected.items():
        assert np.array_equal(got[name], value), name


def test_a_crossbar_as_wide_as_an_mnist_image_needs_and_gets_larger_frames():
    with pytest.raises(BackendError, match=r"does not fit the board's 256-byte frames: one "
                       r"vector is 794 bytes in .* \(max_payload, at most 4096\)"):
        open_backend("golden:icebreaker?pe=synapse&rows=16&cols=794")
    with open_backend("golden:icebreaker?pe=synapse&rows=16&cols=794&max_payload=2048") as wide:
        assert wide.capabilities.max_payload == 2048 and wide.in_features == 794
        plus, minus = RNG.integers(0, 16, (16, 794)), RNG.integers(0, 16, (16, 794))
        wide.load(plus=plus, minus=minus)
        state = wide.read_state()
        assert np.array_equal(state["plus"], plus) and np.array_equal(state["minus"], minus)
        model = model_of(wide.describe()["target"])
        for row in range(16):
            model.program_row(row, plus[row], minus[row])
        x = RNG.integers(-8, 8, (3, 794))
        assert np.array_equal(wide.forward(x), np.stack([model.read(v) for v in x]))


@pytest.mark.parametrize(("sizes", "message"), [
    ({"dw_min": 0}, r"pe_size dw_min must be a number in \(0, 1\], a step in units of the "
                    r"cell's range, got 0"),
    ({"dw_min": True}, r"pe_size dw_min must be a number in \(0, 1\]"),
    ({"dw_min": 1.5}, r"pe_size dw_min must be a number in \(0, 1\]"),
    ({"rows": 2.5}, r"pe_size rows must be an int, got 2\.5"),
])
def test_a_bad_cell_step_is_refused_before_anything_is_built(sizes, message):
    with pytest.raises(ValueError, match=message):
        board_record("icebreaker", {"pe_size": sizes})


def test_an_unknown_size_is_refused_naming_the_elements_sizes():
    with pytest.raises(ValueError, match=r"size 'lanes' is not one of the synapse element's; "
                                         r"accepted: rows, cols, state_bits, in_bits"):
        board_record("icebreaker", {"pe_size": {"lanes": 4}})


def test_an_existing_board_by_socket_and_a_serial_url():
    with start_board("icebreaker", {"pe": "shift"}) as board, \
            open_backend(f"cosim:{board.url}") as backend:
        weights = shift_weights(backend)
        backend.load(weights=weights)
        x = RNG.integers(-128, 128, (10, 64))
        assert np.array_equal(backend.forward(x), x @ weights.T)
    twin = reference_board(Capabilities.from_payload(board_record("icebreaker", {"pe": "binary"})))
    with serve_tcp(twin) as server, open_backend(f"serial:{server.url}?timeout=2") as backend:
        assert backend.kind == "binary_layer"


def test_a_serial_url_sets_the_line_rate_the_firmware_was_built_for():
    twin = reference_board(Capabilities.from_payload(board_record("icebreaker", {"pe": "binary"})))
    with serve_tcp(twin) as server:
        with open_backend(f"serial:{server.url}?baudrate=115200") as backend:
            assert backend.device.baudrate == 115200
        with open_backend(f"serial:{server.url}") as backend:
            assert backend.device.baudrate == 3_000_000
        with pytest.raises(BackendError, match=r"option baudrate: 'fast' is not a whole "
                                               r"number: accepted an integer from 300"):
            open_backend(f"serial:{server.url}?baudrate=fast")
        with pytest.raises(BackendError, match=r"option baudrate: 0 is out of range: accepted "
                                               r"an integer from 300 to 100000000"):
            open_backend(f"serial:{server.url}?baudrate=0")


@pytest.mark.parametrize(("url", "message"), [
    ("icebreaker", r"must look like SCHEME:WHERE"),
    ("fpga:icebreaker", r"scheme must be one of golden, cosim, serial, physical, got 'fpga'"),
    ("golden:nosuch", r"board must be one of icebreaker, ulx3s, got 'nosuch'"),
    ("golden:icebreaker?pe=conv", r"pe must be one of synapse, shift, binary, got 'conv'"),
    ("golden:icebreaker?speed=9", r"unknown option 'speed'; accepted: timeout, window"),
    ("golden:icebreaker?baudrate=115200", r"unknown option 'baudrate'"),
    ("golden:icebreaker?window=many",
     r"option window: 'many' is not a whole number: accepted an integer from 1 to 64"),
    ("golden:icebreaker?pe=shift&rows=4",
     r"unknown option 'rows'; accepted: .*, pe, max_payload, lanes, pes, act_width, exp_bits, "
     r"depth$"),
    ("cosim:icebreaker?pe=synapse&lanes=4", r"unknown option 'lanes'; accepted: .*, pe, "
                                            r"max_payload, sim, engine, rows, cols, "
                                            r"state_bits, in_bits"),
    ("cosim:icebreaker?engine=fast", r"option engine: 'fast' is not an engine: accepted "
                                     r"native, cocotb"),
    ("cosim:icebreaker?sim=icarus&engine=native",
     r"cosim:icebreaker\?sim=icarus&engine=native: engine native runs under Verilator only, "
     r"not sim 'icarus'; give sim verilator, or engine cocotb"),
    ("golden:icebreaker?engine=native", r"unknown option 'engine'"),
    ("golden:icebreaker?rows=0", r"golden:icebreaker\?rows=0: rows must be at least 1, got 0"),
    ("golden:icebreaker?state_bits=9", r"state_bits must be at most 8, got 9"),
    ("golden:icebreaker?dw_min=0", r"option dw_min: 0 is out of range: accepted a finite "
                                   r"number above 0 to 1"),
    ("golden:icebreaker?dw_min=fine", r"option dw_min: 'fine' is not a number"),
    ("golden:icebreaker?pe=shift&dw_min=0.1", r"unknown option 'dw_min'"),
    ("golden:icebreaker?max_payload=5000", r"option max_payload: 5000 is out of range: "
                                           r"accepted an integer from 1 to 4096"),
    ("golden:icebreaker?cols=wide",
     r"option cols: 'wide' is not a whole number: accepted an integer from 0 to 65536"),
    ("serial:", r"give a port after serial:"),
    ("serial:socket://127.0.0.1:1", r"could not reach a board"),
    ("serial:///dev/hilt-no-such-tty", r"could not reach a board: could not open"),
])
def test_bad_urls_say_what_is_wrong(url, message):
    with pytest.raises(BackendError, match=message):
        open_backend(url)


def test_a_board_without_an_element_is_refused():
    with serve_tcp(ReferenceDevice([MemoryTarget(16)])) as server, \
            pytest.raises(BackendError, match=r"target 0 \(memory\), none of them a processing"):
        open_backend(f"serial:{server.url}")


def test_what_does_not_fit_is_refused_with_both_sides_named():
    with open_backend("golden:icebreaker?pe=shift") as backend:
        with pytest.raises(BackendError, match=r"cannot pulse \(pulse training\); it offers "
                                               r"forward, load; use a board whose firmware "
                                               r"carries a synapse_crossbar"):
            backend.require("pulse", why="pulse training")
        with pytest.raises(BackendError, match=r"cannot read_state; .*\?pe=synapse"):
            backend.read_state()
        with pytest.raises(BackendError, match=r"has 784 features per sample but its "
                                               r"shift_array takes 64"):
            backend.check_width(784)
        with pytest.raises(BackendError, match=r"inputs must have shape \(N >= 1, 64\)"):
            backend.forward(np.zeros((3, 63), dtype=int))
        with pytest.raises(BackendError, match=r"inputs must lie in -128\.\.127"):
            backend.forward(np.full((1, 64), 200))
        with pytest.raises(BackendError, match=r"weights must have shape \(4, 64\)"):
            backend.load(weights=np.zeros((64, 4), dtype=int))
        with pytest.raises(BackendError, match=r"weights do not fit .*"):
            backend.load(weights=np.full((4, 64), 3))
        assert backend.stats.queries == 0 and backend.stats.loads == 0


def test_a_simulated_physical_layer_is_measured_in_process():
    from hilt.host.physical.optical import OpticalLayer

    x = RNG.random((20, 64))
    with open_backend("physical:optical?out=32&seed=5&noise=0.01") as backend:
        assert (backend.kind, backend.operations) == ("physical", ("forward",))
        got = backend.forward(x)
        assert backend.stats.queries == 20
        backend.require("forward")
        with pytest.raises(BackendError, match="cannot load"):
            backend.load(weights=np.zeros(3))
    twin = OpticalLayer(64, 32, seed=5, noise=0.01)
    assert np.array_equal(got, twin.measure(x))
    with open_backend("physical:acoustic?in=8&out=4&gain=3&modes=2") as backend:
        assert backend.describe()["system"]["modes"] == 2
        assert np.all(np.abs(backend.forward(RNG.random((5, 8)))) <= 1.0)


def test_an_instrument_behind_the_protocol_is_a_physical_backend():
    from hilt.host.physical.optical import OpticalLayer
    from hilt.host.physical.target import PhysicalTarget

    device = ReferenceDevice([MemoryTarget(16), PhysicalTarget(OpticalLayer(10, 6, seed=2))],
                             max_payload=1024)
    x = RNG.random((300, 10))
    with serve_tcp(device) as server, open_backend(f"serial:{server.url}") as backend:
        assert (backend.kind, backend.in_features, backend.out_features) == ("physical", 10, 6)
        got = backend.forward(x)
    twin = OpticalLayer(10, 6, seed=2)
    expected = twin.measure(x.astype(np.float32)).astype(np.float32)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize(("url", "message"), [
    ("physical:laser", r"physical system must be one of optical, acoustic, got 'laser'"),
    ("physical:optical?gain=2", r"unknown option 'gain'; accepted: in, out, seed, noise"),
    ("physical:optical?noise=-1", r"noise"),
    ("physical:acoustic?in=0", r"option in: 0 is out of range: accepted an integer from 1 to "
                               r"4096"),
])
def test_bad_physical_urls_say_what_is_wrong(url, message):
    with pytest.raises(BackendError, match=message):
        open_backend(url)
