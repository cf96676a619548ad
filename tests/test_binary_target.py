"""The binary layer target: its reference face against the golden model, its gateware against both.

The reference face (:class:`hilt.host.binary_target.BinaryLayerTarget`) is checked
against direct :mod:`hilt.quant.binary_golden` calls on random layers. The gateware
face (:class:`hilt.firmware.binary_target.BinaryLayerTarget`) runs inside
:class:`~hilt.firmware.top.FrameDevice` in Amaranth's simulator, fed random request
streams (weight and threshold writes, forwards, resets mid-stream and every refusal)
with random gaps and back-pressure; its response bytes must be those of a
:class:`~hilt.host.protocol.reference.ReferenceDevice` holding the reference face.
"""

from __future__ import annotations

import gc
import random
import struct
import warnings

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module, UnusedElaboratable

from hilt.firmware.binary_target import BinaryLayerTarget as GatewareTarget
from hilt.firmware.top import FrameDevice, capability_record
from hilt.host.binary_target import BinaryLayerTarget
from hilt.host.protocol import codec, reference, spec
from hilt.host.protocol.binary_layout import THRESHOLD_BASE, BinaryLayerLayout
from hilt.quant.binary_golden import popcount_matches, threshold_layer
from hilt.sim.frame_exchange import exchange
from hilt.sim.testbenches.firmware_fuzz import compare_responses

Command = spec.Command
Status = spec.Status
BOARD, BUILD = "sim-board", "binary0"

# Ragged folds and padding bits; counts; two-byte thresholds and counts, one lane.
CONFIGS = {
    "ragged": dict(in_features=13, out_features=5, pe=2, simd=4, emit="bits"),
    "counts": dict(in_features=16, out_features=8, pe=4, simd=8, emit="counts"),
    "wide": dict(in_features=260, out_features=3, pe=1, simd=64, emit="bits"),
    "wide counts": dict(in_features=260, out_features=2, pe=2, simd=100, emit="counts"),
}
MAX_PAYLOAD = {"ragged": 48, "counts": 48, "wide": 80, "wide counts": 80}


def write(address: int, data: bytes) -> tuple[Command, bytes]:
    return Command.WRITE, struct.pack(spec.WRITE_FORMAT, 0, address) + data


# --- random requests ------------------------------------------------------------------

FAULT_STATUS = {"none": Status.OK, "address": Status.BAD_ADDRESS,
                "beyond": Status.BAD_ADDRESS, "length": Status.BAD_PAYLOAD,
                "padding": Status.BAD_PAYLOAD, "value": Status.BAD_PAYLOAD,
                "empty": Status.BAD_PAYLOAD}
"""The status a request with each fault (and nothing else wrong) must end with."""
OTHER_STATUS = {"read": Status.BAD_ADDRESS, "pulse": Status.BAD_PAYLOAD,
                "reset": Status.OK, "load": Status.OK, "after reset": Status.OK}


def expected_status(label: str) -> Status:
    """The status of a request labelled ``kind:fault`` or by one word."""
    return FAULT_STATUS[label.partition(":")[2]] if ":" in label else OTHER_STATUS[label]


class Requests:
    """Random requests for target 0 of one configuration, each labelled with its fault."""

    def __init__(self, rng: random.Random, layout: BinaryLayerLayout, max_payload: int):
        self.rng, self.layout, self.max_payload = rng, layout, max_payload
        self.rows_fit = (max_payload - 3) // layout.row_bytes
        # A length is wrong only if units are wider than a byte; padding needs spare bits.
        padded = 8 * layout.row_bytes > layout.in_features
        cut_row = layout.row_bytes > 1
        self.faults = {
            "weights": ["address", "beyond"] + ["length"] * cut_row + ["padding"] * padded,
            "thresholds": ["address", "beyond", "value"]
                          + ["length"] * (layout.threshold_bytes > 1),
            "forward": ["empty"] + ["length"] * cut_row + ["padding"] * padded,
        }

    def bits(self, rows: int) -> np.ndarray:
        return np.array([[self.rng.getrandbits(1) for _ in range(self.layout.in_features)]
                         for _ in range(rows)], dtype=np.uint8)

    def set_padding(self, data: bytes) -> bytes:
        """``data`` with a padding bit of a random row set."""
        lay = self.layout
        spare = 8 * lay.row_bytes - lay.in_features
        end = lay.row_bytes * self.rng.randrange(len(data) // lay.row_bytes) + lay.row_bytes - 1
        flipped = data[end] | 1 << (7 - self.rng.randrange(spare))
        return data[:end] + bytes([flipped]) + data[end + 1:]

    def weights(self, fault: str) -> tuple[str, Command, bytes]:
        lay, rng, size = self.layout, self.rng, self.layout.out_features
        if fault == "beyond":
            first = rng.choice([n for n in range(size) if n + self.rows_fit > size])
            rows = rng.randint(size - first + 1, self.rows_fit)
        else:
            first = rng.randrange(size)
            rows = rng.randint(1, min(self.rows_fit, size - first))
        data = lay.pack_weights(self.bits(rows))
        if fault == "address":
            first = rng.choice([size, THRESHOLD_BASE - 1])
        elif fault == "length":
            longer = rng.random() < 0.5 and len(data) + 4 <= self.max_payload
            data = data + b"\x00" if longer else data[:-1]
        elif fault == "padding":
            data = self.set_padding(data)
        return f"weights:{fault}", *write(first, data)

    def thresholds(self, fault: str) -> tuple[str, Command, bytes]:
        lay, rng, size = self.layout, self.rng, self.layout.out_features
        first = rng.randrange(size)
        count = rng.randint(1, size - first)
        values = [rng.choice([0, lay.max_threshold, rng.randint(0, lay.max_threshold)])
                  for _ in range(count)]
        address = THRESHOLD_BASE + first
        if fault == "address":
            address = rng.choice([THRESHOLD_BASE + size, 0xFFFF])
        elif fault == "beyond":
            values += [0] * (size - first - count + rng.randint(1, 2))
        elif fault == "value":
            top = (1 << 8 * lay.threshold_bytes) - 1
            values[rng.randrange(count)] = rng.choice([lay.max_threshold + 1, top,
                                                       rng.randint(lay.max_threshold + 1, top)])
        data = lay.pack_thresholds(values)
        if fault == "length":
            data = data[:-1]
        return f"thresholds:{fault}", *write(address, data)

    def forward(self, fault: str) -> tuple[str, Command, bytes]:
        lay = self.layout
        fits = min((self.max_payload - 1) // lay.row_bytes, self.max_payload // lay.out_bytes)
        data = lay.pack_inputs(self.bits(self.rng.randint(1, min(3, fits))))
        if fault == "empty":
            data = b""
        elif fault == "length":
            data = data[:-1]
        elif fault == "padding":
            data = self.set_padding(data)
        return f"forward:{fault}", Command.FORWARD, b"\x00" + data

    def refused(self, kind: str) -> tuple[str, Command, bytes]:
        """A READ (any address, a count the device passes on) or a PULSE (0..3 bytes)."""
        rng = self.rng
        if kind == "read":
            return "read", Command.READ, struct.pack(spec.READ_FORMAT, 0, rng.randrange(0x10000),
                                                     rng.randint(1, self.max_payload))
        return "pulse", Command.PULSE, b"\x00" + bytes(rng.randint(0, 3))

    def any(self) -> tuple[str, Command, bytes]:
        """One request: mostly writes and forwards, about a third of them refused."""
        rng = self.rng
        kind = rng.choices(["weights", "thresholds", "forward", "read", "pulse", "reset"],
                           [4, 3, 4, 1, 1, 1])[0]
        if kind == "reset":
            return "reset", Command.RESET, b""
        if kind in ("read", "pulse"):
            return self.refused(kind)
        return getattr(self, kind)(rng.choice(["none"] * 4 + self.faults[kind]))

    def every_refusal(self) -> list[tuple[str, Command, bytes]]:
        """A READ, a PULSE, and each kind with each fault that this layout can have."""
        return [self.refused("read"), self.refused("pulse"),
                *(getattr(self, kind)(fault) for kind, faults in self.faults.items()
                  for fault in faults)]

    def load_forward_reset(self) -> list[tuple[str, Command, bytes]]:
        """Load the whole layer, forward, RESET, forward: a reset must undo the load."""
        lay, rng, rows = self.layout, self.rng, self.rows_fit
        requests = [("load", *write(first, lay.pack_weights(
                         self.bits(min(rows, lay.out_features - first)))))
                    for first in range(0, lay.out_features, rows)]
        thresholds = [rng.randint(0, lay.max_threshold) for _ in range(lay.out_features)]
        requests.append(("load", *write(THRESHOLD_BASE, lay.pack_thresholds(thresholds))))
        inputs = b"\x00" + lay.pack_inputs(self.bits(1))
        return [*requests, ("load", Command.FORWARD, inputs), ("reset", Command.RESET, b""),
                ("after reset", Command.FORWARD, inputs)]


def reference_device(name: str) -> reference.ReferenceDevice:
    return reference.ReferenceDevice([BinaryLayerTarget(**CONFIGS[name])],
                                     max_payload=MAX_PAYLOAD[name], board=BOARD, build=BUILD)


def request_stream(name: str, seed: int, frames: int) -> tuple[bytes, bytes, set]:
    """Wire bytes of SYNC and the requests, the reference's answers, and the
    (label, status) pairs they reached."""
    device = reference_device(name)
    requests = Requests(random.Random(seed), device.targets[0].layout, MAX_PAYLOAD[name])
    planned = [requests.any() for _ in range(frames)] + requests.every_refusal()
    random.Random(seed).shuffle(planned)
    middle = len(planned) // 2
    planned[middle:middle] = requests.load_forward_reset()
    line = [codec.encode_frame(0, Command.SYNC)]
    answers = [device.receive(line[0])]
    seq, seen = 1, set()
    for label, command, payload in planned:
        line.append(codec.encode_frame(seq, command, 0, payload))
        answers.append(device.receive(line[-1]))
        (response,) = codec.FrameDecoder().feed(answers[-1])
        seen.add((label, Status(response.status)))
        if response.status == Status.OK:
            seq = (seq + 1) % spec.SEQ_MODULUS
    return b"".join(line), b"".join(answers), seen


# --- the gateware in the simulator ----------------------------------------------------

def frame_device(name: str) -> FrameDevice:
    targets = [GatewareTarget(**CONFIGS[name])]
    record = capability_record(targets, board=BOARD, build=BUILD,
                               max_payload=MAX_PAYLOAD[name], baud=spec.DEFAULT_BAUD)
    return FrameDevice(targets, record, max_payload=MAX_PAYLOAD[name])


@pytest.mark.parametrize("name, seed, frames", [("ragged", 1, 70), ("ragged", 2, 70),
                                                 ("counts", 3, 70), ("wide", 4, 40),
                                                 ("wide counts", 5, 40)])
def test_gateware_matches_reference_device(name, seed, frames):
    line, expected, seen = request_stream(name, seed, frames)
    # Every request ended as its label says, and every label was reached.
    assert all(status == expected_status(label) for label, status in seen), sorted(seen)
    faults = Requests(random.Random(), BinaryLayerLayout(**CONFIGS[name]),
                      MAX_PAYLOAD[name]).faults
    labels = {f"{kind}:{fault}" for kind in faults for fault in ["none", *faults[kind]]}
    assert {label for label, _ in seen} == labels | set(OTHER_STATUS)
    got = exchange(frame_device(name), line, len(expected), seed=seed, valid_prob=0.85,
                   ready_prob=0.7, quiet_cycles=100, cycles_per_byte=400)
    assert (message := compare_responses(got, expected)) is None, message


def test_reset_restores_the_configured_layer():
    """After RESET every neuron of a bits layer fires (weights -1, thresholds 0), and a
    counts layer counts the -1 inputs; the reference face starts that way too."""
    for name in ("ragged", "counts"):
        device = reference_device(name)
        lay = device.targets[0].layout
        x = np.random.default_rng(0).integers(0, 2, (4, lay.in_features))
        fresh = device.targets[0].forward(lay.pack_inputs(x))
        device.targets[0].write(0, lay.pack_weights(np.ones((lay.out_features,
                                                             lay.in_features))))
        device.targets[0].write(THRESHOLD_BASE, lay.pack_thresholds([lay.max_threshold]
                                                                    * lay.out_features))
        assert device.targets[0].forward(lay.pack_inputs(x)) != fresh
        device.targets[0].reset()
        outputs = lay.unpack_outputs(device.targets[0].forward(lay.pack_inputs(x)))
        expected = (np.ones_like(outputs) if lay.emit == "bits"
                    else np.repeat((1 - x).sum(axis=1)[:, None], lay.out_features, axis=1))
        assert np.array_equal(outputs, expected)
        assert lay.pack_outputs(expected) == fresh


def test_capability_records_agree():
    for name, config in CONFIGS.items():
        gateware = [GatewareTarget(**config)]
        record = capability_record(gateware, board=BOARD, build=BUILD,
                                   max_payload=MAX_PAYLOAD[name], baud=spec.DEFAULT_BAUD)
        assert record == reference_device(name).capabilities.to_payload()
        entry = codec.Capabilities.from_payload(record).target(0)
        assert entry["kind"] == "binary_layer" and entry["read"] is None
        # The layout's widths are the array's: the two faces size values alike.
        folding, layout = gateware[0].array.folding, gateware[0].layout
        assert (folding.count_width, folding.threshold_width) == (layout.count_width,
                                                                  layout.threshold_width)
        gateware[0]._MustUse__silence = gateware[0].array._MustUse__silence = True


BAD_PARAMETERS = [
    (dict(max_weight=2), ValueError, "max_weight must be 1 .*got 2"),
    (dict(pe=6), ValueError, "pe must be 1..5, got 6"),
    (dict(simd=14), ValueError, "simd must be 1..13, got 14"),
    (dict(in_features=0), ValueError, "in_features must be at least 1, got 0"),
    (dict(out_features=THRESHOLD_BASE + 1, pe=1), ValueError,
     f"out_features must be 1..{THRESHOLD_BASE}, got {THRESHOLD_BASE + 1}"),
    (dict(emit="logits"), ValueError, "emit must be one of 'bits', 'counts', got 'logits'"),
    (dict(pe=2.0), TypeError, "pe must be an int, got 2.0"),
]


@pytest.mark.parametrize("face", [BinaryLayerTarget, GatewareTarget],
                         ids=["reference", "gateware"])
def test_bad_parameters_are_named(face):
    """Each refusal names the parameter; a refused gateware target leaves no warning
    about an unused elaboratable behind."""
    # Amaranth stays quiet about unused elaboratables until a process elaborates one.
    Fragment.get(Module(), None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for change, error, message in BAD_PARAMETERS:
            with pytest.raises(error, match=message):
                face(**{**CONFIGS["ragged"], **change})
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, UnusedElaboratable)]


# --- the reference face against the golden model ---------------------------------------

def test_layout_round_trips():
    lay = BinaryLayerLayout(13, 5, 2, 4)
    assert (lay.row_bytes, lay.threshold_bytes, lay.out_bytes) == (2, 1, 1)
    row = np.zeros((1, 13), dtype=np.uint8)
    row[0, [0, 9, 12]] = 1
    assert lay.pack_weights(row) == bytes([0b1, 0b10010])
    assert np.array_equal(lay.unpack_rows(lay.pack_inputs(row)), row)
    assert not lay.padding_set(b"\xff\x1f") and lay.padding_set(b"\xff\x3f")
    assert lay.unpack_thresholds(lay.pack_thresholds([0, 14, 3])).tolist() == [0, 14, 3]
    bits = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 1]])
    assert lay.pack_outputs(bits) == b"\x0d\x10"
    assert np.array_equal(lay.unpack_outputs(b"\x0d\x10"), bits)
    wide = BinaryLayerLayout(260, 3, 1, 64, emit="counts")
    assert (wide.row_bytes, wide.threshold_bytes, wide.count_bytes, wide.out_bytes) == (
        33, 2, 2, 6)
    counts = np.array([[260, 0, 131]])
    assert wide.pack_outputs(counts) == b"\x04\x01\x00\x00\x83\x00"
    assert np.array_equal(wide.unpack_outputs(wide.pack_outputs(counts)), counts)
    assert wide.pack_thresholds([261]) == b"\x05\x01"
    with pytest.raises(ValueError, match="x_bits must have shape"):
        lay.pack_inputs(np.zeros((1, 12)))
    with pytest.raises(ValueError, match="bits 0"):
        lay.pack_weights(np.full((1, 13), 2))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_reference_face_follows_the_golden_model(name):
    """Random requests on the reference face; a twin (weights, thresholds) kept by hand
    from the requests the face accepted; FORWARD must equal the golden model on it."""
    target = BinaryLayerTarget(**CONFIGS[name])
    lay = target.layout
    weights = np.zeros((lay.out_features, lay.in_features), dtype=np.uint8)
    thresholds = np.zeros(lay.out_features, dtype=np.int64)
    requests = Requests(random.Random(7), lay, MAX_PAYLOAD[name])
    forwards = 0
    for _ in range(300):
        label, command, payload = requests.any()
        before = (target.weights.copy(), target.thresholds.copy())
        try:
            if command is Command.WRITE:
                _, address = struct.unpack_from(spec.WRITE_FORMAT, payload)
                data = payload[struct.calcsize(spec.WRITE_FORMAT):]
                target.write(address, data)
                if address >= THRESHOLD_BASE:
                    values = [int.from_bytes(data[k:k + lay.threshold_bytes], "little")
                              for k in range(0, len(data), lay.threshold_bytes)]
                    first = address - THRESHOLD_BASE
                    thresholds[first:first + len(values)] = values
                else:
                    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, lay.row_bytes)
                    bits = np.unpackbits(rows, axis=1, bitorder="little")[:, :lay.in_features]
                    weights[address:address + len(bits)] = bits
            elif command is Command.FORWARD:
                out = target.forward(payload[1:])
                rows = np.frombuffer(payload[1:], dtype=np.uint8).reshape(-1, lay.row_bytes)
                x = np.unpackbits(rows, axis=1, bitorder="little")[:, :lay.in_features]
                if lay.emit == "bits":
                    expected = threshold_layer(x, weights, thresholds)
                else:
                    expected = popcount_matches(x, weights)
                assert np.array_equal(lay.unpack_outputs(out), expected)
                forwards += 1
            elif command is Command.READ:
                target.read(0, 1)
            elif command is Command.PULSE:
                target.pulse(payload[1:])
            else:
                target.reset()
                weights[:] = 0
                thresholds[:] = 0
            assert expected_status(label) == Status.OK, label
        except reference.TargetError as error:
            assert error.status == expected_status(label), label
            # A refusal applies nothing.
            assert np.array_equal(target.weights, before[0])
            assert np.array_equal(target.thresholds, before[1])
        assert np.array_equal(target.weights, weights)
        assert np.array_equal(target.thresholds, thresholds)
    assert forwards > 20


def test_reference_refusals_name_their_status():
    target = BinaryLayerTarget(**CONFIGS["ragged"])
    lay = target.layout
    row = bytes(lay.row_bytes)
    cases = [
        (lambda: target.write(5, row), Status.BAD_ADDRESS),
        (lambda: target.write(THRESHOLD_BASE - 1, row), Status.BAD_ADDRESS),
        (lambda: target.write(THRESHOLD_BASE + 5, b"\x00"), Status.BAD_ADDRESS),
        (lambda: target.write(4, row * 2), Status.BAD_ADDRESS),
        (lambda: target.write(4, row * 2 + b"\x00"), Status.BAD_PAYLOAD),
        (lambda: target.write(4, b"\x00\x20"), Status.BAD_PAYLOAD),
        (lambda: target.write(THRESHOLD_BASE + 4, bytes([0, 15])), Status.BAD_ADDRESS),
        (lambda: target.write(THRESHOLD_BASE, bytes([15])), Status.BAD_PAYLOAD),
        (lambda: target.read(0, 2), Status.BAD_ADDRESS),
        (lambda: target.forward(b""), Status.BAD_PAYLOAD),
        (lambda: target.forward(row + b"\x00"), Status.BAD_PAYLOAD),
        (lambda: target.forward(b"\x00\x80"), Status.BAD_PAYLOAD),
        (lambda: target.pulse(b"\x00"), Status.BAD_PAYLOAD),
    ]
    for call, status in cases:
        with pytest.raises(reference.TargetError) as error:
            call()
        assert error.value.status == status
    target.write(THRESHOLD_BASE + 3, bytes([14, 0]))
    assert target.thresholds.tolist() == [0, 0, 0, 14, 0]
