"""The synapse crossbar target: its reference face against the model, its gateware against both.

The reference face (:class:`hilt.host.synapse_target.SynapseCrossbarTarget`) is checked
against direct :class:`~hilt.quant.synapse_golden.SynapseCrossbarModel` calls. The
gateware face (:class:`hilt.firmware.synapse_target.SynapseCrossbarTarget`) runs inside
:class:`~hilt.firmware.top.FrameDevice` in Amaranth's simulator, fed random request
streams (writes, reads, forwards, pulses of both rules with noise, resets and every
refusal) with random gaps and back-pressure; its response bytes must be those of a
:class:`~hilt.host.protocol.reference.ReferenceDevice` holding the reference face.
"""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from hilt.firmware.synapse_target import SynapseCrossbarTarget as GatewareTarget
from hilt.firmware.top import FrameDevice, capability_record
from hilt.host.protocol import codec, reference, spec
from hilt.host.protocol.synapse_layout import Slot, SynapseLayout
from hilt.host.synapse_target import SynapseCrossbarTarget
from hilt.quant.synapse_golden import StepTables, SynapseCrossbarModel
from hilt.sim.frame_exchange import exchange
from hilt.sim.testbenches.firmware_fuzz import compare_responses

Command = spec.Command
Status = spec.Status
MAX_PAYLOAD = 48
BOARD, BUILD = "sim-board", "synapse0"

TABLES4 = StepTables(4, tuple(max(1, 4 - s // 4) for s in range(16)),
                     tuple(1 + s // 5 for s in range(16)))
TABLES3 = StepTables(3, (2, 2, 1, 1, 1, 1, 0, 0), (0, 1, 1, 1, 2, 2, 2, 3))
# A noisy crossbar whose slot needs padding (18 bits), and a plain one with int8 inputs.
CONFIGS = {
    "noisy": dict(rows=3, cols=5, tables=TABLES4, in_bits=6, max_pulses=3, noise_bits=2,
                  lfsr_bits=8, seed=7),
    "plain": dict(rows=2, cols=3, tables=TABLES3, in_bits=8, max_pulses=2),
}


def model_of(config: dict) -> SynapseCrossbarModel:
    params = dict(config)
    return SynapseCrossbarModel(params.pop("rows"), params.pop("cols"), params.pop("tables"),
                                **params)


def gateware_of(config: dict) -> GatewareTarget:
    params = dict(config)
    return GatewareTarget(params.pop("rows"), params.pop("cols"), params.pop("tables"),
                          **params)


# --- random requests ------------------------------------------------------------------

def random_row(rng: random.Random, layout: SynapseLayout) -> bytes:
    return bytes(rng.randint(0, layout.max_level) for _ in range(layout.row_bytes))


def random_slot(rng: random.Random, layout: SynapseLayout, last: bool, uni: bool) -> Slot:
    return Slot(rng.getrandbits(layout.rows), rng.getrandbits(layout.rows),
                rng.getrandbits(layout.cols), rng.getrandbits(layout.cols), uni, last)


def random_pulse(rng: random.Random, layout: SynapseLayout, max_pulses: int) -> bytes:
    """One or two updates, mostly valid; else one of PULSE's refusals."""
    slots = []
    for _ in range(rng.randint(1, 2)):
        length = rng.randint(1, max_pulses)
        uni = rng.random() < 0.5
        slots += [random_slot(rng, layout, k == length - 1, uni) for k in range(length)]
    fault = rng.choice(["none"] * 6 + ["long", "unended", "padding", "cut"])
    if fault == "long":
        slots = [random_slot(rng, layout, k == max_pulses, False)
                 for k in range(max_pulses + 1)]
    elif fault == "unended":
        slots[-1] = slots[-1]._replace(last=False)
    data = b"".join(layout.pack_slot(slot) for slot in slots)
    if fault == "padding" and layout.slot_bits % 8:
        data = data[:-1] + bytes([data[-1] | 0x80])
    elif fault == "cut":
        data = data[:-1]
    return data


def random_inputs(rng: random.Random, layout: SynapseLayout) -> bytes:
    vectors = [[rng.randint(layout.in_low, layout.in_high) for _ in range(layout.cols)]
               for _ in range(rng.randint(1, 3))]
    data = layout.pack_inputs(vectors)
    fault = rng.choice(["none"] * 6 + ["range", "length"])
    if fault == "range" and layout.in_bits < 8:
        data = data[:-1] + bytes([rng.choice([layout.in_high + 1, 256 + layout.in_low - 1])])
    elif fault == "length":
        data = data[:-1]
    return data


def random_request(rng: random.Random, layout: SynapseLayout,
                   max_pulses: int) -> tuple[Command, bytes]:
    """A request for target 0 (WRITE, READ, FORWARD, PULSE, RESET), refusals included."""
    row = rng.choice([*range(layout.rows)] * 3 + [layout.rows, 0x1234])
    kind = rng.choices(["write", "read", "forward", "pulse", "reset"], [3, 3, 3, 4, 1])[0]
    if kind == "write":
        data = random_row(rng, layout)
        fault = rng.choice(["none"] * 5 + ["level", "length"])
        if fault == "level" and layout.state_bits < 8:
            data = data[:-1] + bytes([rng.randint(layout.max_level + 1, 255)])
        elif fault == "length":
            data = data + b"\x00" if rng.random() < 0.5 else data[:-1]
        return Command.WRITE, struct.pack(spec.WRITE_FORMAT, 0, row) + data
    if kind == "read":
        count = layout.row_bytes if rng.random() < 0.7 else rng.randint(1, MAX_PAYLOAD)
        return Command.READ, struct.pack(spec.READ_FORMAT, 0, row, count)
    if kind == "forward":
        return Command.FORWARD, b"\x00" + random_inputs(rng, layout)
    if kind == "pulse":
        return Command.PULSE, b"\x00" + random_pulse(rng, layout, max_pulses)
    return Command.RESET, b""


def request_stream(rng: random.Random, config: dict, frames: int) -> tuple[bytes, bytes, set]:
    """Wire bytes of SYNC and ``frames`` requests, the reference's answers, and the
    (command, status) pairs they reached."""
    device = reference.ReferenceDevice([SynapseCrossbarTarget(model_of(config))],
                                       max_payload=MAX_PAYLOAD, board=BOARD, build=BUILD)
    layout = SynapseLayout.of_model(device.targets[0].model)
    line = [codec.encode_frame(0, Command.SYNC)]
    answers = [device.receive(line[0])]
    seq, seen = 1, set()
    for _ in range(frames):
        command, payload = random_request(rng, layout, config["max_pulses"])
        line.append(codec.encode_frame(seq, command, 0, payload))
        answers.append(device.receive(line[-1]))
        (response,) = codec.FrameDecoder().feed(answers[-1])
        seen.add((command, Status(response.status)))
        if response.status == Status.OK:
            seq = (seq + 1) % spec.SEQ_MODULUS
    return b"".join(line), b"".join(answers), seen


# --- the gateware in the simulator ----------------------------------------------------

def frame_device(config: dict) -> FrameDevice:
    targets = [gateware_of(config)]
    record = capability_record(targets, board=BOARD, build=BUILD, max_payload=MAX_PAYLOAD,
                               baud=spec.DEFAULT_BAUD)
    return FrameDevice(targets, record, max_payload=MAX_PAYLOAD)


@pytest.mark.parametrize("name, seed", [("noisy", 1), ("noisy", 2), ("plain", 3)])
def test_gateware_matches_reference_device(name, seed):
    config = CONFIGS[name]
    line, expected, seen = request_stream(random.Random(seed), config, 60)
    wanted = {(Command.WRITE, Status.OK), (Command.WRITE, Status.BAD_ADDRESS),
              (Command.WRITE, Status.BAD_PAYLOAD), (Command.READ, Status.OK),
              (Command.READ, Status.BAD_ADDRESS), (Command.READ, Status.BAD_PAYLOAD),
              (Command.FORWARD, Status.OK), (Command.FORWARD, Status.BAD_PAYLOAD),
              (Command.PULSE, Status.OK), (Command.PULSE, Status.BAD_PAYLOAD),
              (Command.RESET, Status.OK)}
    assert wanted <= seen, sorted(wanted - seen)
    got = exchange(frame_device(config), line, len(expected), seed=seed, valid_prob=0.85,
                   ready_prob=0.7, quiet_cycles=100, cycles_per_byte=400)
    assert (message := compare_responses(got, expected)) is None, message


def test_capability_records_agree():
    for config in CONFIGS.values():
        gateware = [gateware_of(config)]
        record = capability_record(gateware, board=BOARD, build=BUILD,
                                   max_payload=MAX_PAYLOAD, baud=spec.DEFAULT_BAUD)
        device = reference.ReferenceDevice([SynapseCrossbarTarget(model_of(config))],
                                           max_payload=MAX_PAYLOAD, board=BOARD, build=BUILD)
        assert record == device.capabilities.to_payload()
        gateware[0]._MustUse__silence = gateware[0].crossbar._MustUse__silence = True


def test_wide_values_are_refused_at_construction():
    wide = StepTables(9, (1,) * 512, (1,) * 512)
    with pytest.raises(ValueError, match="state_bits must be at most 8, got 9"):
        SynapseCrossbarTarget(SynapseCrossbarModel(2, 2, wide, in_bits=4, max_pulses=1))
    with pytest.raises(ValueError, match="in_bits must be at most 8, got 9"):
        gateware_of({**CONFIGS["plain"], "in_bits": 9})


# --- the reference face against the model ----------------------------------------------

def bits(mask: int, width: int) -> list[bool]:
    return [bool(mask >> k & 1) for k in range(width)]


def test_layout_round_trips():
    layout = SynapseLayout.of_model(model_of(CONFIGS["noisy"]))
    assert (layout.row_bytes, layout.slot_bits, layout.slot_bytes) == (10, 18, 3)
    assert (layout.acc_width, layout.y_bytes, layout.out_bytes) == (13, 2, 6)
    slot = Slot(0b101, 0b011, 0b10011, 0b01000, True, True)
    packed = layout.pack_slot(slot)
    assert packed == (0b101 | 0b011 << 3 | 0b10011 << 6 | 0b01000 << 11 | 1 << 16
                      | 1 << 17).to_bytes(3, "little")
    assert layout.unpack_slot(packed) == (slot, 0)
    assert layout.unpack_slot(b"\x00\x00\x06") == (Slot(0, 0, 0, 0, False, True), 1)
    ys = np.array([[-1, 300, -2048]])
    assert layout.pack_outputs(ys) == b"\xff\xff\x2c\x01\x00\xf8"
    assert np.array_equal(layout.unpack_outputs(layout.pack_outputs(ys)), ys)
    assert layout.unpack_inputs(layout.pack_inputs([[-32, 31, 0, -1, 5]])).tolist() == [
        [-32, 31, 0, -1, 5]]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_reference_face_follows_the_model(name):
    config = CONFIGS[name]
    target = SynapseCrossbarTarget(model_of(config))
    twin = model_of(config)
    layout = target.layout
    rng = random.Random(5)
    for _ in range(300):
        command, payload = random_request(rng, layout, config["max_pulses"])
        before = (target.model.g_plus.copy(), target.model.g_minus.copy())
        try:
            if command is Command.WRITE:
                _, row = struct.unpack_from(spec.WRITE_FORMAT, payload)
                data = payload[struct.calcsize(spec.WRITE_FORMAT):]
                target.write(row, data)
                twin.program_row(row, list(data[:layout.cols]), list(data[layout.cols:]))
            elif command is Command.READ:
                _, row, count = struct.unpack(spec.READ_FORMAT, payload)
                answer = target.read(row, count)
                plus, minus = twin.row_state(row)
                assert answer == bytes([*plus, *minus])
            elif command is Command.FORWARD:
                out = target.forward(payload[1:])
                xs = np.frombuffer(payload[1:], dtype=np.int8).reshape(-1, layout.cols)
                expected = b"".join(int(y).to_bytes(layout.y_bytes, "little", signed=True)
                                    for x in xs for y in twin.read(x.astype(np.int64)))
                assert out == expected
            elif command is Command.PULSE:
                target.pulse(payload[1:])
                data = payload[1:]
                for k in range(0, len(data), layout.slot_bytes):
                    value = int.from_bytes(data[k:k + layout.slot_bytes], "little")
                    r, c = layout.rows, layout.cols
                    twin.slot(bits(value, r), bits(value >> r, r), bits(value >> 2 * r, c),
                              bits(value >> (2 * r + c), c),
                              unidirectional=bool(value >> (2 * r + 2 * c) & 1))
            else:
                target.reset()
                twin = model_of(config)
        except reference.TargetError:
            # A refusal applies nothing.
            assert np.array_equal(target.model.g_plus, before[0])
            assert np.array_equal(target.model.g_minus, before[1])
        assert np.array_equal(target.model.g_plus, twin.g_plus)
        assert np.array_equal(target.model.g_minus, twin.g_minus)
        if twin.lfsr is not None:
            assert np.array_equal(target.model.lfsr, twin.lfsr)


def test_reference_refusals_name_their_status():
    target = SynapseCrossbarTarget(model_of(CONFIGS["noisy"]))
    layout = target.layout
    ok_row = bytes(layout.row_bytes)
    slot = layout.pack_slot(Slot(1, 0, 1, 0, False, True))
    unended = layout.pack_slot(Slot(1, 0, 1, 0, False, False))
    cases = [
        (lambda: target.write(3, ok_row), Status.BAD_ADDRESS),
        (lambda: target.write(0, ok_row[:-1]), Status.BAD_PAYLOAD),
        (lambda: target.write(0, b"\x10" + ok_row[1:]), Status.BAD_PAYLOAD),
        (lambda: target.read(3, layout.row_bytes), Status.BAD_ADDRESS),
        (lambda: target.read(0, 1), Status.BAD_PAYLOAD),
        (lambda: target.forward(b""), Status.BAD_PAYLOAD),
        (lambda: target.forward(bytes(4)), Status.BAD_PAYLOAD),
        (lambda: target.forward(bytes([32, 0, 0, 0, 0])), Status.BAD_PAYLOAD),
        (lambda: target.pulse(b""), Status.BAD_PAYLOAD),
        (lambda: target.pulse(slot[:-1]), Status.BAD_PAYLOAD),
        (lambda: target.pulse(unended), Status.BAD_PAYLOAD),
        (lambda: target.pulse(unended * 3 + slot), Status.BAD_PAYLOAD),
        (lambda: target.pulse(slot[:-1] + b"\x06"), Status.BAD_PAYLOAD),
    ]
    for call, status in cases:
        with pytest.raises(reference.TargetError) as error:
            call()
        assert error.value.status == status
    target.pulse(unended * 2 + slot)
    assert target.model.potentiation_pulses[0, 0] == 3
