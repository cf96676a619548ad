"""The shift-vector array target: its reference face against the golden model, its gateware
against both.

The reference face (:class:`hilt.host.shift_target.ShiftArrayTarget`) is checked against
:func:`~hilt.quant.shift_golden.shift_matmul` and a plain integer matmul. The gateware
face (:class:`hilt.firmware.shift_target.ShiftArrayTarget`) runs inside
:class:`~hilt.firmware.top.FrameDevice` in Amaranth's simulator, fed random request
streams (writes of one or more beats, forwards, resets and every refusal) with random
gaps and back-pressure; its response bytes must be those of a
:class:`~hilt.host.protocol.reference.ReferenceDevice` holding the reference face.
"""

from __future__ import annotations

import itertools
import random
import struct

import numpy as np
import pytest

from hilt.firmware.shift_target import ShiftArrayTarget as GatewareTarget
from hilt.firmware.top import FrameDevice, capability_record
from hilt.host.protocol import codec, reference, spec
from hilt.host.protocol.shift_layout import ShiftArrayLayout
from hilt.host.shift_target import ShiftArrayTarget
from hilt.quant.pow2_export import PowerOfTwoWeights
from hilt.quant.shift_golden import shift_matmul
from hilt.sim.frame_exchange import exchange
from hilt.sim.testbenches.firmware_fuzz import compare_responses

Command = spec.Command
Status = spec.Status
MAX_PAYLOAD = 48
BOARD, BUILD = "sim-board", "shift0"

# A ragged last beat (7 = 3 + 3 + 1) with narrow activations; whole beats with int8
# activations; one beat wider than depth with one-bit exponents (weights 0 and +-1),
# whose results are longer than its inputs, so that some FORWARDs overflow max_payload.
CONFIGS = {
    "ragged": dict(lanes=3, pes=2, act_width=5, exp_bits=2, depth=7),
    "whole": dict(lanes=4, pes=3, act_width=8, exp_bits=3, depth=8),
    "single": dict(lanes=5, pes=4, act_width=2, exp_bits=1, depth=3),
}


def layout_of(config: dict) -> ShiftArrayLayout:
    return ShiftArrayLayout.of(**config)


def random_codes(rng: random.Random, layout: ShiftArrayLayout, columns: int) -> bytes:
    """WRITE data of random codes for ``columns`` inputs, the zero code included."""
    zero = layout.fmt.zero_code
    exp = [[rng.choice([zero, *range(zero + 1)]) for _ in range(columns)]
           for _ in range(layout.pes)]
    sign = [[rng.getrandbits(1) for _ in range(columns)] for _ in range(layout.pes)]
    return layout.pack_codes(sign, exp)


def random_inputs(rng: random.Random, layout: ShiftArrayLayout, vectors: int) -> bytes:
    return layout.pack_inputs([[rng.randint(layout.in_low, layout.in_high)
                                for _ in range(layout.depth)] for _ in range(vectors)])


# --- random requests ------------------------------------------------------------------

def random_write(rng: random.Random, layout: ShiftArrayLayout) -> tuple[int, bytes]:
    """A WRITE's address and data: mostly in range, else one of WRITE's refusals."""
    beats = layout.beats
    address = rng.choice([*range(beats)] * 4 + [beats, 0x1234])
    count = rng.randint(1, max(1, beats - address)) if address < beats else 1
    fault = rng.choice(["none"] * 5 + ["over", "padding", "short", "long"])
    if fault == "over":
        count = beats - min(address, beats) + 1
    data = random_codes(rng, layout, count * layout.lanes)
    if fault == "padding":
        k = rng.randrange(len(data))
        data = data[:k] + bytes([data[k] | 1 << rng.randint(layout.code_bits, 7)]) + data[k + 1:]
    elif fault == "short":
        data = data[:-1]
    elif fault == "long":
        data = data + bytes([layout.fmt.zero_code])
    return address, data


def random_forward(rng: random.Random, layout: ShiftArrayLayout) -> bytes:
    """FORWARD inputs: mostly valid, else no inputs, a cut vector or an input out of range."""
    counts = [1, 1, 2, 3]
    overflow = MAX_PAYLOAD // layout.out_bytes + 1      # vectors whose result cannot fit
    if overflow * layout.depth < MAX_PAYLOAD:           # while the request can
        counts.append(overflow)
    data = random_inputs(rng, layout, rng.choice(counts))
    fault = rng.choice(["none"] * 6 + ["range", "length", "empty"])
    if fault == "range" and layout.act_width < 8:
        k = rng.randrange(len(data))
        wrong = rng.choice([layout.in_high + 1, 256 + layout.in_low - 1, 0x7F, 0x80])
        data = data[:k] + bytes([wrong]) + data[k + 1:]
    elif fault == "length":
        data = data[:-1] if rng.random() < 0.5 else data + b"\x00"
    elif fault == "empty":
        data = b""
    return data


def random_request(rng: random.Random, layout: ShiftArrayLayout) -> tuple[Command, bytes]:
    """A request for target 0 (WRITE, READ, FORWARD, PULSE, RESET), refusals included."""
    kind = rng.choices(["write", "read", "forward", "pulse", "reset"], [5, 1, 5, 1, 1])[0]
    if kind == "write":
        address, data = random_write(rng, layout)
        return Command.WRITE, struct.pack(spec.WRITE_FORMAT, 0, address) + data
    if kind == "read":
        address = rng.choice([0, layout.beats - 1, 0x1234])
        count = rng.choice([layout.beat_bytes, rng.randint(1, MAX_PAYLOAD)])
        return Command.READ, struct.pack(spec.READ_FORMAT, 0, address, count)
    if kind == "forward":
        return Command.FORWARD, b"\x00" + random_forward(rng, layout)
    if kind == "pulse":
        return Command.PULSE, b"\x00" + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 3)))
    return Command.RESET, b""


def request_stream(rng: random.Random, config: dict, frames: int) -> tuple[bytes, bytes, set]:
    """Wire bytes of SYNC and ``frames`` requests, the reference's answers, and the
    (command, status) pairs they reached.

    The first request is a FORWARD before any WRITE, which sees the weights the array
    holds after configuration.
    """
    device = reference.ReferenceDevice([ShiftArrayTarget(**config)], max_payload=MAX_PAYLOAD,
                                       board=BOARD, build=BUILD)
    layout = device.targets[0].layout
    line = [codec.encode_frame(0, Command.SYNC)]
    answers = [device.receive(line[0])]
    seq, seen = 1, set()
    for k in range(frames):
        if k == 0:
            command, payload = Command.FORWARD, b"\x00" + random_inputs(rng, layout, 2)
        else:
            command, payload = random_request(rng, layout)
        line.append(codec.encode_frame(seq, command, 0, payload))
        answers.append(device.receive(line[-1]))
        (response,) = codec.FrameDecoder().feed(answers[-1])
        seen.add((command, Status(response.status)))
        if response.status == Status.OK:
            seq = (seq + 1) % spec.SEQ_MODULUS
    return b"".join(line), b"".join(answers), seen


# --- the gateware in the simulator ----------------------------------------------------

def frame_device(config: dict) -> FrameDevice:
    targets = [GatewareTarget(**config)]
    record = capability_record(targets, board=BOARD, build=BUILD, max_payload=MAX_PAYLOAD,
                               baud=spec.DEFAULT_BAUD)
    return FrameDevice(targets, record, max_payload=MAX_PAYLOAD)


@pytest.mark.parametrize("name, seed", [("ragged", 1), ("ragged", 2), ("whole", 3),
                                        ("single", 4)])
def test_gateware_matches_reference_device(name, seed):
    config = CONFIGS[name]
    line, expected, seen = request_stream(random.Random(seed), config, 70)
    wanted = {(Command.WRITE, Status.OK), (Command.WRITE, Status.BAD_ADDRESS),
              (Command.WRITE, Status.BAD_PAYLOAD), (Command.READ, Status.BAD_ADDRESS),
              (Command.FORWARD, Status.OK), (Command.FORWARD, Status.BAD_PAYLOAD),
              (Command.PULSE, Status.BAD_PAYLOAD), (Command.RESET, Status.OK)}
    assert wanted <= seen, sorted(wanted - seen)
    got = exchange(frame_device(config), line, len(expected), seed=seed, valid_prob=0.85,
                   ready_prob=0.7, quiet_cycles=100, cycles_per_byte=400)
    assert (message := compare_responses(got, expected)) is None, message


def test_capability_records_agree():
    for config in CONFIGS.values():
        gateware = [GatewareTarget(**config)]
        record = capability_record(gateware, board=BOARD, build=BUILD,
                                   max_payload=MAX_PAYLOAD, baud=spec.DEFAULT_BAUD)
        device = reference.ReferenceDevice([ShiftArrayTarget(**config)],
                                           max_payload=MAX_PAYLOAD, board=BOARD, build=BUILD)
        assert record == device.capabilities.to_payload()
        entry = device.capabilities.targets[0]
        assert entry["read"] is None and "pulse" not in entry
        gateware[0]._MustUse__silence = gateware[0].array._MustUse__silence = True


@pytest.mark.parametrize("params, message", [
    ({"act_width": 9}, "act_width must be 2..8, got 9"),
    ({"lanes": 0}, "lanes must be at least 1, got 0"),
    ({"pes": "2"}, "pes must be an int, got '2'"),
    ({"exp_bits": 7}, "exp_bits must be in 1..6"),
    ({"depth": 0}, "depth must be at least 1, got 0"),
    ({"acc_width": 9}, "acc_width=9 is too small"),
])
def test_bad_parameters_are_named(params, message):
    config = {**CONFIGS["ragged"], **params}
    for face in (GatewareTarget, ShiftArrayTarget):
        with pytest.raises((TypeError, ValueError), match=message):
            face(**config)


# --- the layout and the reference face against the golden model -----------------------

def test_layout_round_trips():
    layout = layout_of(CONFIGS["ragged"])
    assert (layout.beats, layout.tail, layout.beat_bytes, layout.code_bits) == (3, 1, 6, 3)
    assert (layout.acc_width, layout.y_bytes, layout.out_bytes) == (10, 2, 4)
    # PE 1's weight for input 6 (beat 2, lane 0) is -1 (sign, e = 2); the rest zero.
    weights = np.zeros((2, 7), dtype=np.int64)
    weights[1, 6] = -1
    weights[0, 0] = 4
    data = layout.pack_int_weights(weights)
    assert data == bytes([0, 3, 3, 3, 3, 3]) + bytes([3] * 6) + bytes([3, 3, 3, 6, 3, 3])
    sign, exp = layout.unpack_codes(data)
    codes = PowerOfTwoWeights.from_codes(layout.fmt, sign[:, :7], exp[:, :7])
    assert np.array_equal(codes.int_weights(), weights)
    assert layout.pack_codes(sign, exp) == data
    assert not layout.padding_set(data) and layout.padding_set(b"\x00\x08")
    with pytest.raises(ValueError, match="weight 8 is not 0 or"):
        layout.pack_int_weights(weights * 2)
    ys = np.array([[-1, 300], [-512, 511]])
    assert layout.pack_outputs(ys) == b"\xff\xff\x2c\x01\x00\xfe\xff\x01"
    assert np.array_equal(layout.unpack_outputs(layout.pack_outputs(ys)), ys)
    inputs = [[-16, 15, 0, -1, 5, 7, -8]]
    assert layout.unpack_inputs(layout.pack_inputs(inputs)).tolist() == inputs


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_reference_face_follows_the_golden_model(name):
    config = CONFIGS[name]
    target = ShiftArrayTarget(**config)
    layout = target.layout
    rng = np.random.default_rng(7)
    fmt = layout.fmt
    # Fresh from configuration every weight is zero.
    assert target.forward(layout.pack_inputs([[layout.in_low] * layout.depth])) == bytes(
        layout.out_bytes)
    for _ in range(20):
        codes = PowerOfTwoWeights.from_codes(
            fmt, rng.integers(0, 2, (layout.pes, layout.depth)),
            rng.integers(0, fmt.zero_code + 1, (layout.pes, layout.depth)))
        data = layout.pack_int_weights(codes.int_weights())
        # Written in random runs of beats, in a random order.
        cuts = sorted({0, layout.beats, *rng.integers(0, layout.beats, 2).tolist()})
        runs = list(itertools.pairwise(cuts))
        for first, end in rng.permutation(runs):
            size = layout.beat_bytes
            target.write(int(first), data[first * size:end * size])
        x = rng.integers(layout.in_low, layout.in_high + 1, (5, layout.depth))
        out = layout.unpack_outputs(target.forward(layout.pack_inputs(x)))
        assert np.array_equal(out, shift_matmul(codes, x))
        assert np.array_equal(out, x @ codes.int_weights().T)
    target.reset()
    assert target.forward(layout.pack_inputs(x)) == bytes(len(x) * layout.out_bytes)


def test_reference_refusals_name_their_status():
    target = ShiftArrayTarget(**CONFIGS["ragged"])
    layout = target.layout
    beat = layout.pack_int_weights(np.ones((2, 3), dtype=np.int64))
    target.write(0, beat * 3)
    stored = (target.sign.copy(), target.exp.copy())
    x = bytes(7)
    cases = [
        (lambda: target.write(0, beat[:-1]), Status.BAD_PAYLOAD),
        (lambda: target.write(3, beat[:-1]), Status.BAD_PAYLOAD),
        (lambda: target.write(3, beat), Status.BAD_ADDRESS),
        (lambda: target.write(1, beat * 3), Status.BAD_ADDRESS),
        (lambda: target.write(0, beat[:-1] + b"\x08"), Status.BAD_PAYLOAD),
        (lambda: target.read(0, layout.beat_bytes), Status.BAD_ADDRESS),
        (lambda: target.forward(b""), Status.BAD_PAYLOAD),
        (lambda: target.forward(x[:-1]), Status.BAD_PAYLOAD),
        (lambda: target.forward(x[:-1] + b"\x10"), Status.BAD_PAYLOAD),
        (lambda: target.forward(x + x[:-1] + b"\xef"), Status.BAD_PAYLOAD),
        (lambda: target.pulse(b"\x00"), Status.BAD_PAYLOAD),
    ]
    for call, status in cases:
        with pytest.raises(reference.TargetError) as error:
            call()
        assert error.value.status == status
    # No refusal applied anything.
    assert np.array_equal(target.sign, stored[0]) and np.array_equal(target.exp, stored[1])
    assert layout.unpack_outputs(target.forward(bytes([1] * 7))).tolist() == [[7, 7]]
