"""The frame layer in Amaranth's simulator, against the ``cobs`` package and ``binascii``.

Every stream is driven with random gaps and taken under random back-pressure, and
after the expected beats the output must stay quiet: a component that emits an extra
beat fails as surely as one that emits a wrong one.
"""

from __future__ import annotations

import binascii
import random
from collections.abc import Callable

import pytest
from amaranth.lib import data
from amaranth.sim import Simulator
from cobs import cobs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hilt.firmware.framing import (
    BAD_CRC,
    BAD_FRAME,
    BODY_BEAT,
    CRC_ALGORITHM,
    OK,
    RECEIVED_BEAT,
    TOO_LONG,
    CobsDecoder,
    CobsEncoder,
    CrcAppender,
    FrameChecker,
    FrameReceiver,
    FrameSender,
    max_body,
    max_encoded,
)
from hilt.firmware.synthesis import synthesize
from hilt.host.protocol import codec, spec

QUIET_CYCLES = 40
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

Frame = tuple[bytes | None, int]
"""A received frame: its bytes (None for a bad frame, whose bytes mean nothing), status."""


def stream_through(dut, source, sink, beats: list[int], done: Callable[[list[int]], bool], *,
                   seed: int = 0, valid_prob: float = 0.7,
                   ready_prob: float = 0.7) -> list[int]:
    """Feed ``beats`` into ``source`` and take beats from ``sink`` until ``done(taken)``.

    Then checks that ``sink`` offers nothing more while the rest of ``beats`` goes in
    and for :data:`QUIET_CYCLES` cycles after.
    """
    rng = random.Random(seed)
    got: list[int] = []
    fed = []
    budget = 20 * len(beats) + 2000

    async def drive(ctx):
        for beat in beats:
            while rng.random() >= valid_prob:
                ctx.set(source.valid, 0)
                await ctx.tick()
            ctx.set(source.payload, beat)
            ctx.set(source.valid, 1)
            await ctx.tick().until(source.ready)
        ctx.set(source.valid, 0)
        fed.append(True)

    async def collect(ctx):
        cycles = 0
        while not done(got):
            ctx.set(sink.ready, int(rng.random() < ready_prob))
            _, _, valid, ready, payload = await ctx.tick().sample(
                sink.valid, sink.ready, sink.payload)
            if valid and ready:
                got.append(payload)
            cycles += 1
            assert cycles < budget, f"stuck after {len(got)} beats"
        ctx.set(sink.ready, 1)
        quiet = 0
        while quiet < QUIET_CYCLES:
            _, _, valid, payload = await ctx.tick().sample(sink.valid, sink.payload)
            assert not valid, f"extra beat {payload:#x} after {len(got)}"
            quiet = quiet + 1 if fed else 0
            cycles += 1
            assert cycles < budget, "the input stopped being taken"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(drive, background=True)
    sim.add_testbench(collect)
    sim.run()
    return got


def count(n: int) -> Callable[[list[int]], bool]:
    return lambda got: len(got) == n


def frame_ends(layout: data.StructLayout, n: int) -> Callable[[list[int]], bool]:
    """Done after ``n`` beats with ``last`` set (counted as they come, not recounted)."""
    seen = {"beats": 0, "ends": 0}

    def done(got: list[int]) -> bool:
        for bits in got[seen["beats"]:]:
            seen["ends"] += data.Const(layout, bits).last
        seen["beats"] = len(got)
        return seen["ends"] == n
    return done


def pack_body(body: bytes) -> list[int]:
    return [BODY_BEAT.const({"data": byte, "last": i == len(body) - 1}).as_bits()
            for i, byte in enumerate(body)]


def body_frames(beats: list[int]) -> list[bytes]:
    """:data:`BODY_BEAT` beats cut into frames at ``last``."""
    frames, current = [], bytearray()
    for bits in beats:
        beat = data.Const(BODY_BEAT, bits)
        current.append(beat.data)
        if beat.last:
            frames.append(bytes(current))
            current = bytearray()
    assert not current, "beats after the last frame's end"
    return frames


def received_frames(beats: list[int]) -> list[Frame]:
    """:data:`RECEIVED_BEAT` beats cut into frames at ``last``."""
    frames, current = [], bytearray()
    for bits in beats:
        beat = data.Const(RECEIVED_BEAT, bits)
        assert beat.status == OK or beat.last, f"status {beat.status} before a frame's end"
        current.append(beat.data)
        if beat.last:
            frames.append((bytes(current) if beat.status == OK else None, beat.status))
            current = bytearray()
    assert not current, "beats after the last frame's end"
    return frames


def wire(bodies: list[bytes]) -> bytes:
    return b"".join(cobs.encode(body) + b"\x00" for body in bodies)


def with_crc(body: bytes) -> bytes:
    return body + binascii.crc_hqx(body, 0).to_bytes(2, "big")


def expected_frames(line: bytes, max_payload: int) -> list[Frame]:
    """What the decoder must make of ``line`` (ending in a delimiter), by ``cobs``.

    The checks and their order are the host codec's (:class:`codec.FrameDecoder`) up to
    the decoded size; the CRC and the header are the checker's.
    """
    frames: list[Frame] = []
    for run in line.split(b"\x00")[:-1]:
        if not run:
            continue
        if len(run) > max_encoded(max_body(max_payload)):
            frames.append((None, TOO_LONG))
            continue
        try:
            body = cobs.decode(run)
        except cobs.DecodeError:
            frames.append((None, BAD_FRAME))
            continue
        if not body:
            frames.append((None, BAD_FRAME))
        elif len(body) > max_body(max_payload):
            frames.append((None, TOO_LONG))
        else:
            frames.append((body, OK))
    return frames


def runs(length: int) -> bytes:
    """``length`` nonzero bytes."""
    return bytes(1 + i % 255 for i in range(length))


# Where COBS has edges: zeros everywhere, nonzero runs at and around the 254-byte block,
# zeros at either end.
EDGE_BODIES = [
    b"\x00", b"\x00\x00", b"\x00" * 300, b"\x01", b"\xff",
    runs(253), runs(254), runs(255), runs(256), runs(508), runs(509),
    runs(254) + b"\x00", b"\x00" + runs(254), runs(253) + b"\x00" + runs(254),
    runs(254) + b"\x00" + runs(254) + b"\x00",
]

bodies = st.one_of(
    st.binary(min_size=1, max_size=40),
    st.lists(st.sampled_from([0, 0, 0, 1, 0xFF]), min_size=1, max_size=60).map(bytes),
    st.builds(lambda n, tail: runs(n) + tail, st.sampled_from([253, 254, 255, 508, 509]),
              st.sampled_from([b"", b"\x00", b"\x07\x00\x00"])),
)
LIMIT_PAYLOAD = 600  # so every body above fits


# --- COBS decoder ---------------------------------------------------------------------

def decode(line: bytes, max_payload: int = LIMIT_PAYLOAD, seed: int = 0,
           **probs) -> list[Frame]:
    """The frames the decoder makes of ``line``; as many as the model expects."""
    dut = CobsDecoder(max_payload)
    wanted = len(expected_frames(line, max_payload))
    beats = stream_through(dut, dut.encoded, dut.body, list(line),
                           frame_ends(RECEIVED_BEAT, wanted), seed=seed, **probs)
    return received_frames(beats)


@SETTINGS
@given(st.lists(bodies, min_size=1, max_size=4), st.integers(0, 2**16))
def test_decoder_matches_cobs(frames, seed):
    assert decode(wire(frames), seed=seed) == [(body, OK) for body in frames]


def test_decoder_edge_bodies_at_full_rate():
    assert decode(wire(EDGE_BODIES), valid_prob=1.0, ready_prob=1.0) == \
        [(body, OK) for body in EDGE_BODIES]


@SETTINGS
@given(st.lists(st.one_of(bodies.map(lambda body: cobs.encode(body) + b"\x00"),
                          st.binary(max_size=30)), max_size=6),
       st.lists(bodies, min_size=1, max_size=2), st.integers(0, 2**16))
def test_decoder_resyncs_after_garbage(pieces, good, seed):
    """Garbage (any bytes, delimiters included) between frames: each 0x00 resyncs."""
    line = b"".join(pieces) + b"\x00" + wire(good)
    frames = decode(line, seed=seed)
    assert frames == expected_frames(line, LIMIT_PAYLOAD)
    assert frames[-len(good):] == [(body, OK) for body in good]


def test_decoder_idle_delimiters_make_no_frames():
    line = b"\x00\x00" + cobs.encode(b"\x11\x00\x22") + b"\x00\x00\x00" + wire([b"\x33"])
    assert decode(line, 16) == [(b"\x11\x00\x22", OK), (b"\x33", OK)]


@pytest.mark.parametrize("bad", [
    b"\x05\x01",          # a block of 4 cut short by the delimiter
    b"\x01",              # decodes to an empty body
    b"\xff\x01\x02",      # cut short inside a full block
    b"\x41\x42\x43",      # line noise
])
def test_decoder_flags_malformed(bad):
    line = wire([b"\x01\x02\x00"]) + bad + b"\x00" + wire([b"\x00"])
    assert decode(line, 16) == [(b"\x01\x02\x00", OK), (None, BAD_FRAME), (b"\x00", OK)]


def test_decoder_flags_over_long_and_resyncs():
    limit = max_body(4)
    fits, over = runs(limit - 1) + b"\x00", runs(limit) + b"\x00"
    # Zeros encode one byte each, so the first decodes too long within the run limit;
    # the long run is cut off at the limit without waiting for its delimiter.
    line = wire([fits, over, b"\x00" * (limit + 1), runs(300), fits])
    assert decode(line, 4) == [(fits, OK), (None, TOO_LONG), (None, TOO_LONG),
                               (None, TOO_LONG), (fits, OK)]


def test_decoder_cuts_off_a_long_run_before_its_delimiter():
    dut = CobsDecoder(4)
    longest = max_encoded(max_body(4))
    beats = stream_through(dut, dut.encoded, dut.body, [0x41] * (longest + 1),
                           frame_ends(RECEIVED_BEAT, 1))
    assert received_frames(beats) == [(None, TOO_LONG)]


# With a 257-byte body limit, runs of up to 259 bytes pass the run-length check.
@pytest.mark.parametrize("line, status", [
    (b"\x01" * 259, TOO_LONG),              # 258 zeros: decodes too long
    (b"\x01" * 258 + b"\x02", BAD_FRAME),   # ... and cut short: COBS is checked first
    (b"\x01" * 260, TOO_LONG),              # past the run limit
    (cobs.encode(runs(300))[:259], BAD_FRAME),
    (cobs.encode(runs(258)), TOO_LONG),
])
def test_decoder_orders_its_checks_as_the_host(line, status):
    line += b"\x00" + wire([b"\x09"])
    assert host_verdicts(line, 250)[0] == expected_frames(line, 250)[0][1] == status
    assert decode(line, 250) == [(None, status), (b"\x09", OK)]


def test_max_encoded_is_cobs_worst_case():
    for size in [1, 2, 253, 254, 255, 507, 508, 509, max_body(spec.MAX_PAYLOAD_CEILING)]:
        assert max_encoded(size) == cobs.max_encoded_length(size) == len(
            cobs.encode(b"\x01" * size))


# --- COBS encoder ---------------------------------------------------------------------

def encode(frames: list[bytes], seed: int = 0, **probs) -> bytes:
    dut = CobsEncoder()
    line = wire(frames)
    beats = [beat for body in frames for beat in pack_body(body)]
    return bytes(stream_through(dut, dut.body, dut.encoded, beats, count(len(line)),
                                seed=seed, **probs))


@SETTINGS
@given(st.lists(bodies, min_size=1, max_size=4), st.integers(0, 2**16))
def test_encoder_matches_cobs(frames, seed):
    assert encode(frames, seed) == wire(frames)


def test_encoder_edge_bodies_at_full_rate():
    assert encode(EDGE_BODIES, valid_prob=1.0, ready_prob=1.0) == wire(EDGE_BODIES)


# --- CRC and frame checks -------------------------------------------------------------

def test_crc_algorithm_is_the_specs():
    algorithm = CRC_ALGORITHM
    assert (algorithm.crc_width, algorithm.polynomial, algorithm.initial_crc,
            algorithm.reflect_input, algorithm.reflect_output, algorithm.xor_output) == (
        spec.CRC_WIDTH, spec.CRC_POLYNOMIAL, spec.CRC_INITIAL, spec.CRC_REFLECT_INPUT,
        spec.CRC_REFLECT_OUTPUT, spec.CRC_XOR_OUTPUT)
    assert algorithm(data_width=8).compute(b"123456789") == spec.CRC_CHECK


@given(st.binary(max_size=64))
def test_crc_algorithm_is_binascii(body):
    assert CRC_ALGORITHM(data_width=8).compute(body) == binascii.crc_hqx(body, 0)


@SETTINGS
@given(st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=4),
       st.integers(0, 2**16))
def test_appender_appends_crc(frames, seed):
    dut = CrcAppender()
    beats = [beat for body in frames for beat in pack_body(body)]
    got = stream_through(dut, dut.body, dut.framed, beats, count(len(beats) + 2 * len(frames)),
                         seed=seed)
    assert body_frames(got) == [with_crc(body) for body in frames]


def check(frames: list[tuple[bytes, int]], seed: int = 0) -> list[int]:
    """Run (body, incoming status) frames through the checker; its statuses.

    Also checks that every byte passes unchanged and only the last beat has a status.
    """
    dut = FrameChecker()
    beats = [RECEIVED_BEAT.const({"data": byte, "last": i == len(body) - 1,
                                  "status": status if i == len(body) - 1 else OK}).as_bits()
             for body, status in frames for i, byte in enumerate(body)]
    got = stream_through(dut, dut.body, dut.checked, beats, count(len(beats)), seed=seed)
    statuses, index = [], 0
    for body, _ in frames:
        frame = [data.Const(RECEIVED_BEAT, bits) for bits in got[index:index + len(body)]]
        index += len(body)
        assert bytes(beat.data for beat in frame) == body
        assert [beat.last for beat in frame] == [0] * (len(body) - 1) + [1]
        assert all(beat.status == OK for beat in frame[:-1])
        statuses.append(frame[-1].status)
    return statuses


def host_status(body: bytes) -> int:
    """The host codec's verdict on a body."""
    try:
        codec.decode_body(body)
    except codec.FrameError as error:
        return int(error.status)
    return OK


def header(payload: bytes, length: int | None = None) -> bytes:
    return bytes([7, 2, 0]) + (len(payload) if length is None else length).to_bytes(2, "little")


def flipped(payload: bytes, bit: int | None) -> bytes:
    """The good body carrying ``payload``, with bit ``bit`` of it flipped unless None."""
    body = bytearray(with_crc(header(payload) + payload))
    if bit is not None:
        body[bit // 8 % len(body)] ^= 1 << bit % 8
    return bytes(body)


bodies_to_check = st.one_of(
    # Good frames, and frames with one bit flipped anywhere, CRC included.
    st.builds(flipped, st.binary(max_size=30), st.none() | st.integers(0, 8 * 40)),
    # A length field that disagrees with the payload, under a good CRC.
    st.builds(lambda payload, length: with_crc(header(payload, length) + payload),
              st.binary(max_size=30), st.integers(0, 0xFFFF)),
    # Anything, short ones included.
    st.binary(min_size=1, max_size=12),
)


@SETTINGS
@given(st.lists(bodies_to_check, min_size=1, max_size=6), st.integers(0, 2**16))
def test_checker_agrees_with_host_codec(bodies, seed):
    assert check([(body, OK) for body in bodies], seed) == [host_status(b) for b in bodies]


def test_checker_verdicts():
    good = with_crc(header(b"\x01\x02") + b"\x01\x02")
    frames = [
        (with_crc(b""), OK),                    # a CRC alone: too short for a header
        (with_crc(b"\x01\x02\x03\x04"), OK),    # one byte short of a header
        (b"\x01\x02\x03\x04\x05\x06", OK),        # short and a bad CRC: short comes first
        (b"\x00", OK),                          # one byte that happens to be a residue
        (with_crc(header(b"")), OK),            # the shortest good frame
        (good, OK),
        (good[:-1] + bytes([good[-1] ^ 0x80]), OK),
        (with_crc(header(b"\x01\x02", 3) + b"\x01\x02"), OK),
        (with_crc(header(b"\x01\x02", 0x102) + b"\x01\x02"), OK),  # only the low byte agrees
        (b"\x01\x02\x03", TOO_LONG),            # the decoder's verdict stands
        (good, BAD_FRAME),
        (good, OK),
    ]
    assert check(frames) == [BAD_FRAME, BAD_FRAME, BAD_FRAME, BAD_FRAME, OK, OK, BAD_CRC,
                             BAD_FRAME, BAD_FRAME, TOO_LONG, BAD_FRAME, OK]
    assert [host_status(body) for body, status in frames if status == OK] == [
        BAD_FRAME, BAD_FRAME, BAD_FRAME, BAD_FRAME, OK, OK, BAD_CRC, BAD_FRAME, BAD_FRAME, OK]


# --- both paths -----------------------------------------------------------------------

def random_request(rng: random.Random, max_payload: int) -> bytes:
    return codec.encode_frame(rng.randrange(256), rng.randrange(256), rng.randrange(256),
                              bytes(rng.choice([0, rng.randrange(256)])
                                    for _ in range(rng.randrange(max_payload + 1))))


def mangle(rng: random.Random, frame: bytes, max_payload: int) -> bytes:
    """One way a frame goes wrong on a line, or none."""
    kind = rng.randrange(6)
    if kind == 0:  # a flipped bit (a zero made or lost splits or merges runs)
        index = rng.randrange(len(frame) - 1)
        return frame[:index] + bytes([frame[index] ^ 1 << rng.randrange(8)]) + frame[index + 1:]
    if kind == 1:  # cut short
        return frame[:rng.randrange(len(frame) - 1)] + b"\x00"
    if kind == 2:  # noise
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    if kind == 3:  # a payload longer than the device takes
        payload = bytes(rng.randrange(1, 256) for _ in range(max_payload + rng.randrange(1, 9)))
        return codec.encode_frame(1, 2, 0, payload)
    return frame


def receiver_verdicts(frames: list[Frame], max_payload: int) -> list:
    """The receiver's frames as the host codec would report them."""
    return [codec.decode_body(body, max_payload) if status == OK else status
            for body, status in frames]


def host_verdicts(line: bytes, max_payload: int) -> list:
    return [item if isinstance(item, codec.Frame) else int(item.status)
            for item in codec.FrameDecoder(max_payload).feed(line)]


@SETTINGS
@given(st.integers(0, 2**32))
def test_receiver_agrees_with_host_codec(seed):
    """Frames good and bad (flipped bits, cut short, noise, over-long) on one line."""
    rng = random.Random(seed)
    max_payload = 16
    line = b"".join(mangle(rng, random_request(rng, max_payload), max_payload)
                    for _ in range(rng.randrange(1, 8))) + b"\x00"
    wanted = host_verdicts(line, max_payload)
    dut = FrameReceiver(max_payload)
    beats = stream_through(dut, dut.encoded, dut.body, list(line),
                           frame_ends(RECEIVED_BEAT, len(wanted)), seed=seed)
    assert receiver_verdicts(received_frames(beats), max_payload) == wanted


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
                          st.binary(max_size=80)), min_size=1, max_size=3),
       st.integers(0, 2**16))
def test_sender_then_receiver(frames, seed):
    """Response frames through the send path are the host codec's bytes; and back."""
    max_payload = 80
    sender, receiver = FrameSender(), FrameReceiver(max_payload)
    beats = [beat for seq, cmd, status, payload in frames
             for beat in pack_body(bytes([seq, cmd, status]) +
                                   len(payload).to_bytes(2, "little") + payload)]
    line = b"".join(codec.encode_frame(*frame) for frame in frames)
    assert bytes(stream_through(sender, sender.body, sender.encoded, beats, count(len(line)),
                                seed=seed)) == line
    got = stream_through(receiver, receiver.encoded, receiver.body, list(line),
                         frame_ends(RECEIVED_BEAT, len(frames)), seed=seed)
    assert receiver_verdicts(received_frames(got), max_payload) == \
        [codec.Frame(*frame) for frame in frames]


@pytest.mark.parametrize("cls", [CobsDecoder, FrameReceiver])
def test_max_payload_is_validated(cls):
    with pytest.raises(ValueError, match=r"max_payload must be 1..4096, got 4097"):
        cls(4097)
    with pytest.raises(ValueError, match=r"max_payload must be 1..4096, got 0"):
        cls(0)
    with pytest.raises(TypeError, match=r"max_payload must be an int, got '64'"):
        cls("64")


def test_frame_paths_synthesize_for_ice40():
    sender, receiver = synthesize(FrameSender(), "ice40"), synthesize(FrameReceiver(4096), "ice40")
    assert sender.brams == 1  # the COBS block buffer
    assert receiver.brams == 0
    assert sender.dsps == receiver.dsps == 0
    assert 0 < sender.luts < 300 and 0 < receiver.luts < 400
