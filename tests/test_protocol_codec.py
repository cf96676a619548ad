"""The wire protocol's definition, frame codec and reference device (the executable spec)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest
from amaranth.lib.crc import catalog
from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from hilt.host.protocol import spec
from hilt.host.protocol.codec import (
    Capabilities,
    Frame,
    FrameDecoder,
    FrameError,
    crc16,
    decode_body,
    decode_frame,
    encode_frame,
    max_wire_size,
)
from hilt.host.protocol.reference import MemoryTarget, ReferenceDevice

C = spec.Command
S = spec.Status
R = spec.RESPONSE_FLAG

payloads = st.binary(max_size=300)
small_bytes = st.integers(0, 255)


def body_of(seq: int, cmd: int, status: int, payload: bytes) -> bytes:
    """A body built by hand from the spec's layout, with Amaranth's own CRC."""
    content = bytes([seq, cmd, status]) + len(payload).to_bytes(2, "little") + payload
    crc = catalog.CRC16_XMODEM().compute(content)
    return content + crc.to_bytes(2, "big")


# -- the definition ----------------------------------------------------------------------


def test_crc_parameters_are_amaranths_crc16_xmodem():
    algorithm = getattr(catalog, spec.CRC_CATALOG_NAME)
    assert (algorithm.crc_width, algorithm.polynomial, algorithm.initial_crc,
            algorithm.reflect_input, algorithm.reflect_output, algorithm.xor_output) == (
        spec.CRC_WIDTH, spec.CRC_POLYNOMIAL, spec.CRC_INITIAL, spec.CRC_REFLECT_INPUT,
        spec.CRC_REFLECT_OUTPUT, spec.CRC_XOR_OUTPUT)
    assert crc16(b"123456789") == spec.CRC_CHECK == algorithm().compute(b"123456789")


def test_layout_and_limits():
    assert spec.HEADER_SIZE == 5 and spec.CRC_SIZE == 2
    assert spec.MIN_BODY == 7 and spec.MAX_BODY == 4103
    assert spec.WINDOW_MAX < spec.DUPLICATE_WINDOW <= spec.SEQ_MODULUS // 2
    assert all(code < spec.RESPONSE_FLAG for code in C)
    assert len({s.message for s in S}) == len(S) and all(s.message for s in S)


def test_command_classes_partition_the_host_commands():
    assert not spec.STATE_CHANGING & spec.SIDE_EFFECT_FREE
    assert spec.STATE_CHANGING | spec.SIDE_EFFECT_FREE | {C.SYNC} == spec.HOST_COMMANDS
    assert {C.IDENTIFY, C.SYNC} == spec.SEQUENCE_EXEMPT


def test_spec_imports_nothing_heavy():
    code = ("import sys, hilt.host.protocol.spec; "
            "print(sorted(m for m in ('torch', 'numpy', 'serial', 'amaranth') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


# -- encoding and decoding ---------------------------------------------------------------


def test_encoding_matches_the_layout_byte_for_byte():
    payload = b"\x00\x10\x00\xab\x00"
    wire = encode_frame(7, C.WRITE, S.OK, payload)
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    assert cobs.decode(wire[:-1]) == body_of(7, C.WRITE, 0, payload)


@given(small_bytes, small_bytes, small_bytes, payloads)
def test_round_trip(seq, cmd, status, payload):
    wire = encode_frame(seq, cmd, status, payload)
    assert spec.DELIMITER not in wire[:-1]
    assert len(wire) <= max_wire_size(max(len(payload), 1))
    assert decode_frame(wire) == Frame(seq, cmd, status, payload)


@given(payloads, st.data())
def test_any_single_byte_change_of_a_body_is_a_bad_crc(payload, data):
    body = bytearray(body_of(1, C.FORWARD, 0, payload))
    where = data.draw(st.integers(0, len(body) - 1))
    body[where] ^= data.draw(st.integers(1, 255))
    with pytest.raises(FrameError) as caught:
        decode_body(bytes(body))
    assert caught.value.status == S.BAD_CRC


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"", S.BAD_FRAME, "0 bytes"),
    (b"\x01\x02\x00\x00\x00\x00", S.BAD_FRAME, "6 bytes"),
    (body_of(1, 2, 0, bytes(257)), S.TOO_LONG, "264 bytes"),
    (body_of(1, 2, 0, b"abc")[:-1] + b"\x00", S.BAD_CRC, "CRC is"),
])
def test_decode_body_names_what_failed(body, status, words):
    with pytest.raises(FrameError, match=words) as caught:
        decode_body(body, max_payload=256)
    assert caught.value.status == status


def test_a_length_field_that_disagrees_is_bad_framing():
    content = bytes([1, C.WRITE, 0]) + (5).to_bytes(2, "little") + b"abc"
    body = content + crc16(content).to_bytes(2, "big")
    with pytest.raises(FrameError, match="length field says 5 payload bytes, the body holds 3"):
        decode_body(body)


def test_decode_frame_wraps_cobs_errors():
    with pytest.raises(FrameError, match="COBS decoding failed") as caught:
        decode_frame(b"\x05ab\x00")
    assert caught.value.status == S.BAD_FRAME


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"seq": 256}, "seq must be an int in 0..255, got 256"),
    ({"cmd": -1}, "cmd must be an int in 0..255, got -1"),
    ({"status": True}, "status must be an int in 0..255, got True"),
    ({"payload": "text"}, "payload must be bytes, got str"),
    ({"payload": bytes(4097)}, "payload is 4097 bytes; the protocol's ceiling is 4096"),
])
def test_encode_frame_refuses_bad_arguments(kwargs, words):
    arguments = {"seq": 0, "cmd": 1, "status": 0, "payload": b""} | kwargs
    with pytest.raises(ValueError, match=words):
        encode_frame(**arguments)


# -- the streaming decoder ---------------------------------------------------------------


def test_decoder_takes_frames_in_any_chunks_and_skips_idle_delimiters():
    frames = [Frame(i, C.READ, 0, bytes(range(i))) for i in range(20)]
    stream = b"\x00\x00" + b"".join(encode_frame(f.seq, f.cmd, f.status, f.payload)
                                    for f in frames)
    decoder = FrameDecoder()
    out = []
    for start in range(0, len(stream), 7):
        out += decoder.feed(stream[start:start + 7])
    assert out == frames and decoder.buffered == 0


def test_decoder_reports_an_overlong_run_once_and_recovers():
    decoder = FrameDecoder(max_payload=16)
    assert decoder.limit == max_wire_size(16) - 1
    out = decoder.feed(b"\x01" * 30)
    assert [e.status for e in out] == [S.TOO_LONG] and decoder.buffered == 0
    assert decoder.feed(b"\x01" * 1000) == []
    good = encode_frame(3, C.SYNC, 0, b"")
    assert decoder.feed(b"\x01\x00" + good) == [Frame(3, C.SYNC, 0, b"")]


def test_decoder_refuses_a_complete_run_longer_than_a_frame():
    out = FrameDecoder(max_payload=16).feed(b"\x01" * 40 + b"\x00")
    assert [e.status for e in out] == [S.TOO_LONG]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=12), st.sampled_from([16, 256, 4096]))
def test_decoder_survives_any_stream_with_bounded_memory(chunks, max_payload):
    decoder = FrameDecoder(max_payload=max_payload)
    for chunk in chunks:
        for item in decoder.feed(chunk):
            assert isinstance(item, Frame | FrameError)
        assert decoder.buffered <= decoder.limit
    good = Frame(9, C.FORWARD | R, 0, b"after the noise")
    out = decoder.feed(b"\x00" + encode_frame(good.seq, good.cmd, good.status, good.payload))
    assert out[-1] == good
    assert all(isinstance(item, FrameError) for item in out[:-1])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_valid_frame_after_garbage_is_recovered_whatever_the_chunking(garbage, cuts):
    frame = Frame(200, C.READ | R, 0, b"\x00data\x00")
    stream = garbage + b"\x00" + encode_frame(frame.seq, frame.cmd, frame.status, frame.payload)
    decoder = FrameDecoder()
    out, position = [], 0
    for cut in cuts * (len(stream) // len(cuts) + 1):
        out += decoder.feed(stream[position:position + cut])
        position += cut
    assert out[-1] == frame and decoder.buffered == 0


# -- the capability record ---------------------------------------------------------------


def test_capabilities_round_trip_and_keep_unknown_fields():
    record = {"protocol": 1, "build": "abc", "board": "icebreaker", "max_payload": 512,
              "baud": 3_000_000, "targets": [{"id": 0, "kind": "shift_array"}],
              "rx_buffer": 1024, "future_field": [1, 2]}
    capabilities = Capabilities.from_payload(json.dumps(record).encode())
    assert capabilities.max_payload == 512 and capabilities.rx_buffer == 1024
    assert capabilities.record["future_field"] == [1, 2]
    assert capabilities.target(0)["kind"] == "shift_array"
    assert json.loads(capabilities.to_payload()) == record
    with pytest.raises(ValueError, match=r"target must be one of \[0\], got 3"):
        capabilities.target(3)


RECORD = Capabilities(protocol=1, build="b", board="x", max_payload=64, baud=115200,
                      targets=({"id": 0},)).to_payload()


@pytest.mark.parametrize(("payload", "words"), [
    (b"\xff", "not UTF-8 JSON"),
    (b"[1]", "must be a JSON object"),
    (b'{"protocol": 1, "targets": []}', r"lacks \['build', 'board', 'max_payload', 'baud'\]"),
    (RECORD.replace(b'"max_payload":64', b'"max_payload":4097'),
     "max_payload must be an int in 1..4096"),
    (RECORD.replace(b'"id":0', b'"kind":0'), "every target must be an object with an int 'id'"),
    (RECORD.replace(b'"protocol":1', b'"protocol":"1"'), "'protocol' must be int, got '1'"),
])
def test_capabilities_name_what_is_wrong(payload, words):
    with pytest.raises(ValueError, match=words):
        Capabilities.from_payload(payload)


# -- the reference device: the contract, executed ----------------------------------------


@pytest.fixture
def memory() -> MemoryTarget:
    return MemoryTarget(size=512)


@pytest.fixture
def device(memory) -> ReferenceDevice:
    return ReferenceDevice([memory], max_payload=64)


def ask(device: ReferenceDevice, seq: int, cmd: int, payload: bytes = b"",
        status: int = 0) -> Frame:
    """Send one request as wire bytes; the one frame the device answers."""
    out = FrameDecoder().feed(device.receive(encode_frame(seq, cmd, status, payload)))
    assert len(out) == 1 and isinstance(out[0], Frame)
    return out[0]


def write(address: int, data: bytes) -> bytes:
    return struct.pack(spec.WRITE_FORMAT, 0, address) + data


def read(address: int, count: int) -> bytes:
    return struct.pack(spec.READ_FORMAT, 0, address, count)


def test_every_device_frame_is_flagged_as_a_response(device):
    assert ask(device, 5, C.IDENTIFY).cmd == C.IDENTIFY | R
    out = FrameDecoder().feed(device.receive(b"garbage\x00"))
    assert [(f.cmd, f.status) for f in out] == [(C.ERROR | R, S.BAD_FRAME)]


def test_identify_runs_unsynced_and_leaves_the_sequence_alone(device, memory):
    response = ask(device, 77, C.IDENTIFY)
    assert (response.seq, response.status) == (77, S.OK)
    record = Capabilities.from_payload(response.payload)
    assert record.max_payload == 64 and record.targets[0] == {"id": 0, **memory.describe()}
    assert not device.synced
    assert ask(device, 0, C.WRITE, write(0, b"x")).status == S.NOT_SYNCED
    assert memory.writes == {}


def test_sync_sets_the_expected_seq_and_retrying_it_is_harmless(device):
    assert ask(device, 0, C.SYNC).status == S.OK
    assert ask(device, 0, C.SYNC).status == S.OK
    assert (device.synced, device.expected) == (True, 1)
    assert ask(device, 200, C.SYNC).status == S.OK and device.expected == 201


def test_in_sequence_frames_execute_and_advance(device, memory):
    ask(device, 254, C.SYNC)
    assert ask(device, 255, C.WRITE, write(10, b"ab")).status == S.OK
    response = ask(device, 0, C.READ, read(9, 4))
    assert (response.status, response.payload) == (S.OK, b"\x00ab\x00")
    assert device.expected == 1 and memory.writes == {(10, b"ab"): 1}


def test_a_retried_state_changing_frame_is_answered_but_not_applied(device, memory):
    ask(device, 0, C.SYNC)
    ask(device, 1, C.WRITE, write(0, b"\x05"))
    ask(device, 2, C.PULSE, b"\x00" + struct.pack("<H", 0))
    for seq, cmd, payload in [(1, C.WRITE, write(0, b"\x05")),
                              (2, C.PULSE, b"\x00\x00\x00"), (2, C.RESET, b"")]:
        response = ask(device, seq, cmd, payload)
        assert (response.status, response.payload) == (S.OK, b"")
    assert memory.writes == {(0, b"\x05"): 1} and memory.pulses == {0: 1}
    assert memory.memory[0] == 6 and memory.resets == 0 and device.expected == 3


def test_a_retried_read_runs_again(device):
    ask(device, 0, C.SYNC)
    ask(device, 1, C.WRITE, write(4, b"\x09"))
    ask(device, 2, C.READ, read(4, 1))
    again = ask(device, 2, C.READ, read(4, 1))
    assert (again.status, again.payload, device.expected) == (S.OK, b"\x09", 3)


def test_the_duplicate_window_is_the_128_seqs_before_expected(device, memory):
    ask(device, 199, C.SYNC)
    assert device.expected == 200
    assert ask(device, 200 - 128, C.WRITE, write(0, b"x")).status == S.OK
    ahead = ask(device, 200 - 129, C.WRITE, write(0, b"x"))
    assert (ahead.status, ahead.payload) == (S.OUT_OF_SEQUENCE, bytes([200]))
    assert ask(device, 201, C.READ, read(0, 1)).status == S.OUT_OF_SEQUENCE
    assert memory.writes == {} and device.expected == 200


def test_a_refused_command_does_not_advance_so_its_retry_fails_again(device, memory):
    ask(device, 0, C.SYNC)
    assert ask(device, 1, C.WRITE, write(511, b"ab")).status == S.BAD_ADDRESS
    assert ask(device, 2, C.WRITE, write(0, b"a")).status == S.OUT_OF_SEQUENCE
    assert ask(device, 1, C.WRITE, write(511, b"ab")).status == S.BAD_ADDRESS
    assert ask(device, 1, C.WRITE, write(0, b"a")).status == S.OK
    assert memory.writes == {(0, b"a"): 1} and device.expected == 2


@pytest.mark.parametrize(("cmd", "payload", "status"), [
    (C.WRITE, b"\x00\x00\x00", S.BAD_PAYLOAD),
    (C.WRITE, b"\x01\x00\x00x", S.BAD_TARGET),
    (C.READ, read(0, 0), S.BAD_PAYLOAD),
    (C.READ, read(0, 65), S.BAD_PAYLOAD),
    (C.READ, read(0, 2)[:-1], S.BAD_PAYLOAD),
    (C.READ, read(600, 1), S.BAD_ADDRESS),
    (C.FORWARD, b"", S.BAD_PAYLOAD),
    (C.FORWARD, b"\x00", S.BAD_PAYLOAD),
    (C.PULSE, b"\x00\x01", S.BAD_PAYLOAD),
    (C.PULSE, b"\x00" + struct.pack("<H", 512), S.BAD_ADDRESS),
    (C.RESET, b"\x00", S.BAD_PAYLOAD),
    (C.SYNC, b"\x00", S.BAD_PAYLOAD),
    (C.IDENTIFY, b"\x00", S.BAD_PAYLOAD),
    (0x42, b"", S.UNKNOWN_COMMAND),
    (C.ERROR, b"", S.UNKNOWN_COMMAND),
    (C.WRITE | R, write(0, b"x"), S.UNKNOWN_COMMAND),
])
def test_refusals(device, memory, cmd, payload, status):
    ask(device, 0, C.SYNC)
    response = ask(device, 1, cmd, payload)
    assert (response.seq, response.cmd, response.status) == (1, cmd | R, status)
    assert device.expected == 1 and memory.writes == {} and memory.pulses == {}


def test_a_request_with_a_status_is_bad_framing(device):
    ask(device, 0, C.SYNC)
    assert ask(device, 1, C.WRITE, write(0, b"x"), status=S.BAD_CRC).status == S.BAD_FRAME


def test_damaged_and_oversized_frames_get_error_frames(device):
    ask(device, 0, C.SYNC)
    wire = bytearray(encode_frame(1, C.WRITE, 0, write(0, b"abc")))
    wire[4] ^= 0x40
    oversized = encode_frame(2, C.FORWARD, 0, bytes(65))
    out = FrameDecoder().feed(device.receive(bytes(wire) + oversized))
    assert [(f.seq, f.cmd, f.status, f.payload) for f in out] == [
        (1, C.ERROR | R, S.BAD_CRC, b""), (2, C.ERROR | R, S.TOO_LONG, b"")]
    assert device.expected == 1


def test_forward_is_a_function_of_input_and_memory(device, memory):
    ask(device, 0, C.SYNC)
    assert ask(device, 1, C.FORWARD, b"\x00\x00\x01\xff").payload == b"\x01\x02\x00"
    ask(device, 2, C.WRITE, write(1, b"\x10"))
    assert ask(device, 3, C.FORWARD, b"\x00\x00\x01").payload == b"\x01\x12"
    ask(device, 4, C.RESET)
    assert ask(device, 5, C.FORWARD, b"\x00\x01").payload == b"\x02"
    assert memory.resets == 1


def test_board_reset_loses_the_session_and_the_state(device, memory):
    ask(device, 0, C.SYNC)
    ask(device, 1, C.WRITE, write(0, b"\x07"))
    device.schedule_board_reset(after_frames=2)
    assert ask(device, 2, C.READ, read(0, 1)).payload == b"\x07"
    assert ask(device, 3, C.READ, read(0, 1)).status == S.OK
    assert ask(device, 4, C.READ, read(0, 1)).status == S.NOT_SYNCED
    assert memory.memory[0] == 0 and not device.synced


def test_reference_device_refuses_bad_construction():
    with pytest.raises(ValueError, match=r"ids must be ints in 0..255, got \[300\]"):
        ReferenceDevice({300: MemoryTarget()})
    with pytest.raises(ValueError, match=r"max_payload must be an int in 1\.\.4096, got 0"):
        ReferenceDevice([MemoryTarget()], max_payload=0)
    with pytest.raises(ValueError, match=r"size must be an int in 1\.\.65536, got 0"):
        MemoryTarget(0)
