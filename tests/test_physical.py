"""Simulated physical layers (optical, acoustic) and their protocol target.

The systems are black boxes a model-free trainer can only query, so the tests check what
a trainer relies on: determinism for a seed, measurement noise of the requested relative
spread, drift and perturbations of the requested size, exact resumption from a state
dict, honest query counting, clear refusals, the shape of each layer's nonlinearity, the
protocol target answering exactly what the system measures, and that an optical layer
keeps enough information for a linear readout to classify digits.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from hilt.host.physical.acoustic import AcousticLayer
from hilt.host.physical.optical import OpticalLayer
from hilt.host.physical.system import PhysicalSystem
from hilt.host.physical.target import PhysicalTarget
from hilt.host.protocol import codec, spec
from hilt.host.protocol.physical_layout import PhysicalLayout, describe_physical
from hilt.host.protocol.reference import ReferenceDevice
from hilt.quant.datasets import Dataset

Command = spec.Command
Status = spec.Status

SYSTEMS = {
    "optical": lambda **kw: OpticalLayer(12, 20, **kw),
    "optical-phase": lambda **kw: OpticalLayer(12, 20, encoding="phase", **kw),
    "acoustic": lambda **kw: AcousticLayer(12, 20, gain=2.0, **kw),
}


@pytest.fixture(params=sorted(SYSTEMS))
def make(request):
    """A constructor of one of the systems, taking seed / noise / drift."""
    return SYSTEMS[request.param]


def inputs(n: int, width: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, (n, width))


def relative_change(after: np.ndarray, before: np.ndarray) -> float:
    return float(np.linalg.norm(after - before) / np.linalg.norm(before))


def only_parameter(system: PhysicalSystem) -> np.ndarray:
    (value,) = system.parameters.values()
    return value


# --- determinism, noise, drift, perturbation ---------------------------------------------

def test_same_seed_same_measurements(make):
    x = inputs(6)
    first, second = (make(seed=3, noise=0.05, drift=0.01) for _ in range(2))
    for _ in range(3):
        np.testing.assert_array_equal(first.measure(x), second.measure(x))
    assert not np.array_equal(make(seed=4).measure(x), make(seed=3).measure(x))


def test_noise_free_measurements_repeat(make):
    system = make(seed=1)
    x = inputs(5)
    y = system.measure(x)
    assert y.dtype == np.float64 and y.shape == (5, 20)
    np.testing.assert_array_equal(system.measure(x), y)
    np.testing.assert_array_equal(system.response(x), y)


def test_noise_has_the_requested_relative_spread(make):
    system = make(seed=2, noise=0.05)
    x = np.repeat(inputs(1), 2000, axis=0)
    ratio = system.measure(x) / system.response(x) - 1.0
    # 40 000 readings: the std of the std estimate is ~0.4% of 0.05.
    assert ratio.std() == pytest.approx(0.05, rel=0.05)
    assert abs(ratio.mean()) < 0.002
    assert system.queries == 2000


def test_noise_and_drift_streams_leave_the_rest_alone(make):
    """Noise draws from its own stream: turning it on changes neither the system nor its drift."""
    x = inputs(4)
    quiet, noisy = make(seed=5, drift=0.01), make(seed=5, drift=0.01, noise=0.1)
    np.testing.assert_array_equal(only_parameter(quiet), only_parameter(noisy))
    for _ in range(3):
        quiet.measure(x)
        noisy.measure(x)
    np.testing.assert_array_equal(only_parameter(quiet), only_parameter(noisy))


def test_drift_is_a_slow_random_walk(make):
    system = make(seed=6, drift=1e-3)
    x = inputs(50)
    p0, r0 = only_parameter(system), system.response(x)
    system.measure(x[:2])
    step, response_step = (relative_change(only_parameter(system), p0),
                           relative_change(system.response(x), r0))
    for _ in range(99):
        system.measure(x[:2])
    walk = relative_change(only_parameter(system), p0)
    assert step == pytest.approx(1e-3, rel=0.25)
    assert walk == pytest.approx(1e-3 * np.sqrt(100), rel=0.3)
    assert response_step < 5e-3
    assert relative_change(system.response(x), r0) > 3 * response_step


def test_no_drift_no_change(make):
    system = make(seed=6)
    p0 = only_parameter(system)
    for _ in range(5):
        system.measure(inputs(3))
    np.testing.assert_array_equal(only_parameter(system), p0)


def test_perturb_jumps_by_the_requested_strength(make):
    system = make(seed=7)
    x = inputs(50)
    p0, r0 = only_parameter(system), system.response(x)
    system.perturb(0.1)
    assert relative_change(only_parameter(system), p0) == pytest.approx(0.1, rel=0.25)
    assert 0.03 < relative_change(system.response(x), r0) < 0.3
    assert system.queries == 0
    twin_a, twin_b = make(seed=7), make(seed=7)
    twin_a.perturb(0.1, seed=11)
    twin_b.perturb(0.1, seed=11)
    np.testing.assert_array_equal(only_parameter(twin_a), only_parameter(twin_b))
    assert not np.array_equal(only_parameter(twin_a), only_parameter(system))


# --- state dict and query counting ----------------------------------------------------

def test_state_dict_resumes_bit_identically(make):
    x = inputs(7)

    def session(system: PhysicalSystem, start: int, stop: int) -> list[np.ndarray]:
        readings = []
        for step in range(start, stop):
            readings.append(system.measure(x[: 1 + step % 7]))
            if step % 3 == 2:
                system.perturb(0.05)
        return readings

    uninterrupted = make(seed=8, noise=0.02, drift=0.01)
    expected = session(uninterrupted, 0, 10)

    first = make(seed=8, noise=0.02, drift=0.01)
    head = session(first, 0, 4)
    checkpoint = pickle.loads(pickle.dumps(first.state_dict()))
    session(first, 4, 6)  # what the interrupted run did after the checkpoint is lost
    resumed = make(seed=8, noise=0.02, drift=0.01)
    resumed.load_state_dict(checkpoint)
    assert resumed.queries == first.queries - sum(1 + s % 7 for s in range(4, 6))
    tail = session(resumed, 4, 10)
    for got, want in zip(head + tail, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(only_parameter(resumed), only_parameter(uninterrupted))
    assert resumed.queries == uninterrupted.queries


def test_state_dict_refuses_another_system(make):
    state = make(seed=8, noise=0.02).state_dict()
    with pytest.raises(ValueError, match=r"\['noise'\] differ"):
        make(seed=8).load_state_dict(state)
    with pytest.raises(ValueError, match="lacks"):
        make(seed=8, noise=0.02).load_state_dict({"config": state["config"]})
    bad = pickle.loads(pickle.dumps(state))
    (key,) = bad["parameters"]
    bad["parameters"][key] = bad["parameters"][key][:3]
    target = make(seed=8, noise=0.02)
    before = target.state_dict()
    with pytest.raises(ValueError, match=f"parameter '{key}'"):
        target.load_state_dict(bad)
    np.testing.assert_array_equal(only_parameter(target), before["parameters"][key])


def test_queries_count_measured_vectors(make):
    system = make(seed=9, drift=0.01)
    system.measure(inputs(3))
    system.measure(inputs(5))
    system.response(inputs(4))
    assert system.queries == 8
    p = only_parameter(system)
    assert system.measure(np.empty((0, 12))).shape == (0, 20)
    assert system.queries == 8
    np.testing.assert_array_equal(only_parameter(system), p)


def test_torch_inputs_are_detached_to_numpy():
    system = OpticalLayer(12, 20, seed=1)
    x = torch.tensor(inputs(3), requires_grad=True)
    y = system.measure(x)
    assert isinstance(y, np.ndarray)
    np.testing.assert_array_equal(y, system.measure(inputs(3)))


# --- refusals -------------------------------------------------------------------------

@pytest.mark.parametrize(("build", "match"), [
    (lambda: OpticalLayer(0, 4), r"in_features must be an int >= 1, got 0"),
    (lambda: AcousticLayer(4, -2), r"out_features must be an int >= 1, got -2"),
    (lambda: OpticalLayer(4.0, 4), r"in_features must be an int >= 1, got 4.0"),
    (lambda: OpticalLayer(4, 4, noise=-0.1), r"noise must be a finite number >= 0 .*got -0.1"),
    (lambda: AcousticLayer(4, 4, drift=float("nan")), r"drift must be a finite number >= 0"),
    (lambda: OpticalLayer(4, 4, seed=-1), r"seed must be an int >= 0, got -1"),
    (lambda: OpticalLayer(4, 4, encoding="polar"),
     r"encoding must be one of \('amplitude', 'phase'\), got 'polar'"),
    (lambda: OpticalLayer(4, 4, saturation=0), r"saturation must be > 0"),
    (lambda: OpticalLayer(4, 4, offset=-1.0), r"offset must be a finite number >= 0"),
    (lambda: AcousticLayer(4, 4, gain=0.0), r"gain must be > 0, got 0"),
    (lambda: AcousticLayer(4, 4, modes=0), r"modes must be an int >= 1, got 0"),
])
def test_bad_parameters_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(("x", "match"), [
    (np.zeros(12), r"shape \(N, in_features=12\), got \(12,\)"),
    (np.zeros((3, 11)), r"shape \(N, in_features=12\), got \(3, 11\)"),
    (np.where(np.eye(3, 12) > 0, np.nan, 0.0), r"finite, got NaN or inf in row 0"),
    (np.full((2, 12), np.inf), r"finite"),
    (np.zeros((2, 12), dtype=complex), r"real numbers, got dtype complex128"),
])
def test_bad_inputs_are_refused(make, x, match):
    system = make(seed=1, drift=0.01)
    p = only_parameter(system)
    with pytest.raises(ValueError, match=match):
        system.measure(x)
    assert system.queries == 0
    np.testing.assert_array_equal(only_parameter(system), p)


def test_bad_perturbation_is_refused(make):
    with pytest.raises(ValueError, match=r"strength must be a finite number >= 0"):
        make().perturb(-0.1)
    with pytest.raises(ValueError, match=r"seed must be None or an int >= 0"):
        make().perturb(0.1, seed=-3)


# --- the layers' physics --------------------------------------------------------------

def test_optical_reads_a_nonlinear_non_negative_intensity():
    x = inputs(20) - 0.3
    amplitude = OpticalLayer(12, 20, seed=1)
    y = amplitude.measure(x)
    assert (y >= 0).all()
    np.testing.assert_allclose(amplitude.measure(2 * x), 4 * y, rtol=1e-12)
    assert not np.allclose(amplitude.measure(2 * x), 2 * y)
    phase = OpticalLayer(12, 20, encoding="phase", seed=1)
    assert (phase.measure(x) >= 0).all()
    np.testing.assert_allclose(phase.measure(x + 2.0), phase.measure(x), atol=1e-12)
    assert phase.measure(inputs(500)).mean() == pytest.approx(1.0, rel=0.1)


def test_optical_detector_saturates_and_has_an_offset():
    plain = OpticalLayer(12, 20, seed=1)
    detector = OpticalLayer(12, 20, seed=1, saturation=0.5, offset=0.1)
    x = 3 * inputs(50)
    y = detector.measure(x)
    assert y.min() >= 0.1 and y.max() <= 0.6
    np.testing.assert_allclose(y, 0.5 * np.tanh(plain.measure(x) / 0.5) + 0.1)


def test_acoustic_is_bounded_by_its_saturation():
    system = AcousticLayer(12, 20, gain=2.0, saturation=0.7, seed=1)
    y = system.measure(50 * (inputs(50) - 0.5))
    assert np.abs(y).max() <= 0.7
    assert np.abs(y).max() > 0.69
    small = 1e-4 * (inputs(5) - 0.5)
    linear = AcousticLayer(12, 20, gain=2.0, saturation=1e6, seed=1).measure(small)
    np.testing.assert_allclose(system.measure(small), linear, rtol=1e-6)
    np.testing.assert_allclose(system.measure(-small), -system.measure(small))


def test_acoustic_modes_set_the_rank():
    system = AcousticLayer(12, 20, modes=4, seed=1)
    assert np.linalg.matrix_rank(only_parameter(system)) == 4
    assert np.linalg.matrix_rank(only_parameter(AcousticLayer(12, 20, seed=1))) == 12


def test_optical_layer_keeps_the_digits_information(split: Dataset):
    """A ridge readout of 256 intensities classifies digits well: the layer loses little."""

    def readout_accuracy(train: np.ndarray, test: np.ndarray) -> float:
        mean, std = train.mean(axis=0), train.std(axis=0) + 1e-9
        a = np.hstack([(train - mean) / std, np.ones((len(train), 1))])
        b = np.hstack([(test - mean) / std, np.ones((len(test), 1))])
        targets = np.eye(10)[split.y_train]
        weights = np.linalg.solve(a.T @ a + 1e-3 * len(a) * np.eye(a.shape[1]), a.T @ targets)
        return float(np.mean(np.argmax(b @ weights, axis=1) == split.y_test))

    layer = OpticalLayer(64, 256, seed=0)
    accuracy = readout_accuracy(layer.measure(split.x_train / 16.0),
                                layer.measure(split.x_test / 16.0))
    assert accuracy > 0.85


# --- the protocol target ----------------------------------------------------------------

class Session:
    """A synced host talking to a reference device frame by frame, over the wire bytes."""

    def __init__(self, device: ReferenceDevice) -> None:
        self.device = device
        self.seq = 0
        assert self.send(Command.SYNC).status == Status.OK

    def send(self, command: Command, payload: bytes = b"") -> codec.Frame:
        wire = self.device.receive(codec.encode_frame(self.seq, command, Status.OK, payload))
        answer = codec.decode_frame(wire)
        assert answer.seq == self.seq and answer.command == command
        if answer.status == Status.OK:
            self.seq = (self.seq + 1) % spec.SEQ_MODULUS
        return answer


TARGET_ID = 3


def served(system: PhysicalSystem) -> tuple[PhysicalTarget, Session]:
    target = PhysicalTarget(system)
    return target, Session(ReferenceDevice({TARGET_ID: target}, max_payload=1024))


@pytest.mark.parametrize("build", [lambda: OpticalLayer(12, 20, seed=4),
                                   lambda: AcousticLayer(12, 20, gain=2.0, seed=4)])
def test_target_forward_answers_what_the_system_measures(build):
    target, session = served(build())
    twin = build()
    layout = target.layout
    x = (inputs(4) - 0.4).astype(np.float32)
    answer = session.send(Command.FORWARD, bytes([TARGET_ID]) + layout.pack_inputs(x))
    assert answer.status == Status.OK
    assert answer.payload == twin.measure(x).astype("<f4").tobytes()
    np.testing.assert_array_equal(layout.unpack_outputs(answer.payload),
                                  twin.measure(x).astype(np.float32))
    assert target.system.queries == 4


def test_target_describes_itself_in_the_capability_record():
    _, session = served(OpticalLayer(12, 20, seed=4))
    record = codec.Capabilities.from_payload(session.send(Command.IDENTIFY).payload)
    assert record.targets == ({
        "id": TARGET_ID, "kind": "physical",
        "params": {"system": "optical", "in_features": 12, "out_features": 20},
        "forward": {"in_bytes": 48, "out_bytes": 80, "value_bytes": 4, "dtype": "float32"},
        "read": None},)
    assert describe_physical(PhysicalLayout(2, 3), "acoustic")["params"]["system"] == "acoustic"


def test_target_refuses_what_a_physical_system_cannot_do():
    system = OpticalLayer(12, 20, seed=4, drift=0.01)
    _, session = served(system)
    vector = PhysicalLayout(12, 20).pack_inputs(inputs(1))
    nan = PhysicalLayout(12, 20).pack_inputs(np.where(np.eye(1, 12) > 0, np.nan, 0.5))
    inf = PhysicalLayout(12, 20).pack_inputs(np.full((1, 12), -np.inf))
    tid = bytes([TARGET_ID])
    p = only_parameter(system)
    refusals = [
        (Command.FORWARD, tid, Status.BAD_PAYLOAD),
        (Command.FORWARD, tid + vector[:-1], Status.BAD_PAYLOAD),
        (Command.FORWARD, tid + vector + vector[:4], Status.BAD_PAYLOAD),
        (Command.FORWARD, tid + nan, Status.BAD_PAYLOAD),
        (Command.FORWARD, tid + vector + inf, Status.BAD_PAYLOAD),
        (Command.WRITE, tid + b"\x00\x00" + b"\x01", Status.BAD_ADDRESS),
        (Command.READ, tid + b"\x00\x00" + b"\x04\x00", Status.BAD_ADDRESS),
        (Command.PULSE, tid + b"\x00\x00", Status.BAD_PAYLOAD),
        (Command.PULSE, tid, Status.BAD_PAYLOAD),
    ]
    for command, payload, status in refusals:
        answer = session.send(command, payload)
        assert (command, answer.status, answer.payload) == (command, status, b"")
    assert system.queries == 0
    np.testing.assert_array_equal(only_parameter(system), p)


def test_target_reset_changes_nothing():
    system = OpticalLayer(12, 20, seed=4, drift=0.01)
    target, session = served(system)
    x = inputs(2)
    session.send(Command.FORWARD, bytes([TARGET_ID]) + target.layout.pack_inputs(x))
    state = system.state_dict()
    assert session.send(Command.RESET).status == Status.OK
    session.device.board_reset()
    assert target.resets == 2
    assert system.queries == 2
    np.testing.assert_array_equal(only_parameter(system), state["parameters"]["transmission"])
    assert system.state_dict()["rng"] == state["rng"]


def test_layout_round_trips_and_refuses_bad_widths():
    layout = PhysicalLayout(3, 2)
    assert (layout.in_bytes, layout.out_bytes) == (12, 8)
    x = np.array([[0.5, -1.25, 3.0], [1e-3, 2.0, -0.0]])
    data = layout.pack_inputs(x)
    assert data[:4] == np.float32(0.5).tobytes() and len(data) == 24
    np.testing.assert_array_equal(layout.unpack_inputs(data), x.astype(np.float32))
    assert layout.unpack_outputs(layout.pack_outputs([1.0, 2.0])).shape == (1, 2)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        layout.pack_inputs(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="whole number of 12-byte"):
        layout.unpack_inputs(bytes(13))
    with pytest.raises(ValueError, match=r"in_features must be an int in 1..1023"):
        PhysicalLayout(0, 2)
    with pytest.raises(ValueError, match=r"out_features must be an int in 1..1024"):
        PhysicalLayout(3, 1025)
    with pytest.raises(TypeError, match="PhysicalSystem"):
        PhysicalTarget(object())
