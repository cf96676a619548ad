"""The command dispatcher in gateware: the device's half of the wire protocol.

:class:`Dispatcher` takes checked request bodies from the receive path, decides each
one exactly as :mod:`hilt.host.protocol.spec` orders the device's decisions (and as
:class:`hilt.host.protocol.reference.ReferenceDevice` does, byte for byte), drives the
targets (:mod:`hilt.firmware.targets`) and emits each response body for
:class:`~hilt.firmware.framing.FrameSender`. :class:`RequestReceiver` is the receive
path it reads from: :class:`~hilt.firmware.framing.FrameReceiver` and one flag more.

Why the receive path carries a flag
    An undecodable run is answered with an ERROR frame whose seq is the run's first body
    byte, but the reference answers seq 0 when the run's COBS is broken (a block cut
    short) or decodes to no byte at all, and FrameReceiver reports those as BAD_FRAME
    like any short body. :class:`RequestReceiver` follows the COBS runs on its input as
    the decoder does and marks the last beat of such a frame with ``no_seq``.

Buffering
    A request's payload is written to a memory of ``max_payload`` bytes as it arrives
    (the header and the first payload bytes also go to registers); nothing is decided
    until the frame's last beat says OK. A response's header comes first on the wire
    but its status and length are known only once the target has answered, so a target's
    result is buffered in a second memory of ``max_payload`` bytes and the response is
    sent after it. The capability record is a ROM. While the dispatcher executes and
    sends it takes no request bytes: a top level buffers the line in front of it (see
    :class:`hilt.firmware.top.FirmwareTop`).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hilt.firmware.framing import (
    BODY_BEAT,
    DELIMITER,
    RECEIVED_BEAT,
    FrameReceiver,
    max_body,
    max_encoded,
)
from hilt.firmware.targets import TARGET_REQUEST, Op, TargetSignature
from hilt.hdl.params import check_int
from hilt.host.protocol import spec

OK = int(spec.Status.OK)
Command = spec.Command
Status = spec.Status
HEADER_SIZE = spec.HEADER_SIZE
ERROR_CMD = int(Command.ERROR) | spec.RESPONSE_FLAG

REQUEST_BEAT = data.StructLayout({"data": 8, "last": 1, "status": 8, "no_seq": 1})
"""A :data:`~hilt.firmware.framing.RECEIVED_BEAT` and ``no_seq``: set on the last beat of
a bad frame that is answered with seq 0 instead of its first byte."""


def _fields(fmt: str) -> list[tuple[int, int]]:
    """(offset, size) of each field of a little-endian :mod:`struct` format."""
    if fmt[:1] != "<":
        raise ValueError(f"the dispatcher reads little-endian formats only, got {fmt!r}")
    return [(struct.calcsize(fmt[:k]), struct.calcsize("<" + fmt[k]))
            for k in range(1, len(fmt))]


HEADER = dict(zip(spec.HEADER_FIELDS, _fields(spec.HEADER_FORMAT), strict=True))
# The target id leads every target command's payload; WRITE and READ go on with an address
# and READ with a count.
TARGET_ID, = _fields(spec.TARGET_FORMAT)
_, WRITE_ADDRESS = _fields(spec.WRITE_FORMAT)
_, READ_ADDRESS, READ_COUNT = _fields(spec.READ_FORMAT)
WRITE_SIZE = struct.calcsize(spec.WRITE_FORMAT)
READ_SIZE = struct.calcsize(spec.READ_FORMAT)
TARGET_SIZE = struct.calcsize(spec.TARGET_FORMAT)
OUT_OF_SEQUENCE_SIZE = struct.calcsize(spec.OUT_OF_SEQUENCE_FORMAT)
CAPTURED = HEADER_SIZE + max(WRITE_SIZE, READ_SIZE, TARGET_SIZE)
"""Body bytes the dispatcher keeps in registers: the header and the command's arguments."""


class RequestReceiver(wiring.Component):
    """The receive path: :class:`~hilt.firmware.framing.FrameReceiver` plus ``no_seq``.

    Beside the receiver it follows each run of bytes as the COBS decoder does (its
    length, the block being decoded, a run cut off as too long) and queues one flag per
    frame the decoder ends: whether the run's last block was cut short or the run
    decoded to nothing. At most two frame ends are inside the receiver at once, so a
    two-entry queue always has room.

    Parameters
    ----------
    max_payload : int
        The device's MAX_PAYLOAD (see :class:`~hilt.firmware.framing.CobsDecoder`).

    Attributes
    ----------
    encoded : In(stream.Signature(8))
        Bytes from the line.
    body : Out(stream.Signature(REQUEST_BEAT.size))
        Checked body bytes as :data:`REQUEST_BEAT`, CRC bytes included.
    """

    def __init__(self, max_payload: int):
        try:
            self.max_payload = check_int("max_payload", max_payload, 1,
                                         spec.MAX_PAYLOAD_CEILING)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        self.max_run = max_encoded(max_body(max_payload))
        super().__init__({
            "encoded": In(stream.Signature(8)),
            "body": Out(stream.Signature(REQUEST_BEAT.size)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.receiver = receiver = FrameReceiver(self.max_payload)
        m.submodules.flags = flags = SyncFIFO(width=1, depth=2)
        wiring.connect(m, wiring.flipped(self.encoded), receiver.encoded)

        byte = self.encoded.payload
        run = Signal(range(self.max_run + 1))   # bytes since the delimiter
        remaining = Signal(8)                   # data bytes left in the current block
        discarding = Signal()                   # the run was cut off as too long
        take = self.encoded.valid & self.encoded.ready
        with m.If(take & (byte == DELIMITER)):
            m.d.comb += [flags.w_en.eq(~discarding & (run != 0)),
                         flags.w_data.eq((remaining != 0) | (run == 1))]
            m.d.sync += [run.eq(0), remaining.eq(0), discarding.eq(0)]
        with m.Elif(take & ~discarding & (run == self.max_run)):
            m.d.comb += flags.w_en.eq(1)
            m.d.sync += discarding.eq(1)
        with m.Elif(take & ~discarding):
            m.d.sync += [run.eq(run + 1),
                         remaining.eq(Mux(remaining == 0, byte, remaining) - 1)]

        beat = data.View(RECEIVED_BEAT, receiver.body.payload)
        out = data.View(REQUEST_BEAT, self.body.payload)
        m.d.comb += [
            self.body.valid.eq(receiver.body.valid),
            receiver.body.ready.eq(self.body.ready),
            out.data.eq(beat.data), out.last.eq(beat.last), out.status.eq(beat.status),
            out.no_seq.eq(beat.last & flags.r_rdy & flags.r_data),
            flags.r_en.eq(self.body.valid & self.body.ready & beat.last),
        ]
        return m


def _check_targets(targets: object) -> dict[int, wiring.Component]:
    if isinstance(targets, Mapping):
        numbered = dict(targets)
    elif isinstance(targets, Sequence):
        numbered = dict(enumerate(targets))
    else:
        raise TypeError(f"targets must be a mapping of ids to targets or a sequence, "
                        f"got {targets!r}")
    if not numbered:
        raise ValueError("targets must hold at least one target")
    bad_ids = [i for i in numbered if isinstance(i, bool) or not isinstance(i, int)
               or not 0 <= i <= 0xFF]
    if bad_ids:
        raise ValueError(f"target ids must be ints in 0..255, got {bad_ids!r}")
    for i, target in numbered.items():
        if not isinstance(target, wiring.Component) or target.signature != TargetSignature():
            raise TypeError(f"target {i} must be a component with a TargetSignature, "
                            f"got {target!r}")
    return dict(sorted(numbered.items()))


def _check_capability(capability: object, ids: list[int], max_payload: int) -> bytes:
    """The record's bytes, if they are a JSON object that describes this dispatcher."""
    if not isinstance(capability, bytes | bytearray):
        raise TypeError(f"capability must be bytes, got {type(capability).__name__}")
    if len(capability) > spec.MAX_PAYLOAD_CEILING:
        raise ValueError(f"capability must be at most {spec.MAX_PAYLOAD_CEILING} bytes, "
                         f"got {len(capability)}")
    record = capability_fields(capability)
    claimed = sorted(t.get("id") for t in record.get("targets") or [] if isinstance(t, dict))
    for name, announced, actual in (("max_payload", record.get("max_payload"), max_payload),
                                    ("target ids", claimed, ids)):
        if announced != actual:
            raise ValueError(f"the capability record announces {name} {announced!r}, "
                             f"the dispatcher has {actual!r}")
    return bytes(capability)


def capability_fields(capability: bytes) -> dict:
    """The JSON object a capability record holds; ValueError if it holds none."""
    try:
        record = json.loads(bytes(capability).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"capability must be UTF-8 JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError(f"capability must hold a JSON object, got {record!r:.60}")
    return record


class Dispatcher(wiring.Component):
    """Decides and executes requests; emits one response body per request frame.

    For each frame on ``request`` it emits exactly one response on ``response``, in
    order, as the protocol's device does (spec's order of decisions):

    1. A bad frame: ``ERROR | RESPONSE_FLAG`` with the frame's status and seq = its first
       body byte (0 when ``no_seq``), empty.
    2. UNKNOWN_COMMAND for a code outside the host commands, BAD_FRAME for a nonzero
       request status.
    3. IDENTIFY: the capability record from a ROM; SYNC: a session, expected = seq + 1.
       Either is BAD_PAYLOAD with a payload.
    4. NOT_SYNCED before the first SYNC.
    5. seq == expected executes, OK advances expected; a seq in the duplicate window
       behind it re-executes READ and FORWARD and answers WRITE, PULSE and RESET OK,
       empty, unapplied; any other seq is OUT_OF_SEQUENCE carrying expected.
    6. Executing: BAD_PAYLOAD for a payload of the wrong shape (READ count outside
       1..max_payload included), BAD_TARGET for an unknown id, then the target's check
       and commit (see :mod:`hilt.firmware.targets`); RESET checks then resets every
       target in id order. A READ or FORWARD result longer than ``max_payload`` is
       BAD_PAYLOAD. Any status but OK leaves expected where it was.

    Parameters
    ----------
    targets : mapping of int to component, or sequence of components
        Components whose signature is :class:`~hilt.firmware.targets.TargetSignature`,
        by target id (0..255), or numbered from 0. They become submodules.
    capability : bytes
        The IDENTIFY payload: a capability record (UTF-8 JSON, at most
        MAX_PAYLOAD_CEILING bytes) whose ``max_payload`` and target ids are these.
    max_payload : int
        The largest request payload and READ count, 1..MAX_PAYLOAD_CEILING; it sizes the
        request and result memories.

    Attributes
    ----------
    request : In(stream.Signature(REQUEST_BEAT.size))
        Request beats from :class:`RequestReceiver`.
    response : Out(stream.Signature(BODY_BEAT.size))
        Response bodies (header and payload, ``last`` on the final byte) as
        :data:`~hilt.firmware.framing.BODY_BEAT`, for FrameSender.
    """

    def __init__(self, targets: Mapping[int, wiring.Component] | Sequence[wiring.Component],
                 capability: bytes, max_payload: int):
        try:
            self.targets = _check_targets(targets)
            self.max_payload = check_int("max_payload", max_payload, 1,
                                         spec.MAX_PAYLOAD_CEILING)
            self.capability = _check_capability(capability, list(self.targets), max_payload)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        super().__init__({
            "request": In(stream.Signature(REQUEST_BEAT.size)),
            "response": Out(stream.Signature(BODY_BEAT.size)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        max_payload = self.max_payload
        ids = list(self.targets)

        m.submodules.payload = payload_memory = Memory(shape=8, depth=max_payload, init=[])
        m.submodules.result = result_memory = Memory(shape=8, depth=max_payload, init=[])
        m.submodules.identity = identity = Memory(shape=8, depth=len(self.capability),
                                                  init=list(self.capability))
        payload_write, payload_read = payload_memory.write_port(), payload_memory.read_port()
        result_write, result_read = result_memory.write_port(), result_memory.read_port()
        identity_read = identity.read_port()

        ports = []
        for target_id, target in self.targets.items():
            m.submodules[f"target_{target_id}"] = target
            port = TargetSignature().flip().create(path=("target", str(target_id)))
            wiring.connect(m, port, target)
            ports.append(port)

        # --- the request, as it arrives -----------------------------------------------
        beat = data.View(REQUEST_BEAT, self.request.payload)
        index_limit = max_body(max_payload) + 1
        index = Signal(range(index_limit + 1))     # body offset, saturating
        captured = Signal(8 * CAPTURED)
        frame_status = Signal(8)
        no_seq = Signal()

        def field(offset: int, size: int, base: int = 0):
            return captured[8 * (base + offset):8 * (base + offset + size)]

        seq, cmd, header_status, length = (field(*HEADER[name])
                                           for name in ("seq", "cmd", "status", "length"))
        target_id = field(*TARGET_ID, base=HEADER_SIZE)
        write_address = field(*WRITE_ADDRESS, base=HEADER_SIZE)
        read_address = field(*READ_ADDRESS, base=HEADER_SIZE)
        read_count = field(*READ_COUNT, base=HEADER_SIZE)

        # --- session state ------------------------------------------------------------
        synced = Signal()
        expected = Signal(8)
        expected_word = Signal(8 * OUT_OF_SEQUENCE_SIZE)   # the OUT_OF_SEQUENCE payload
        behind = Signal(8)
        m.d.comb += [behind.eq(expected - seq), expected_word.eq(expected)]

        # --- the command being executed -----------------------------------------------
        op = Signal(Op, init=Op.RESET)     # any op: it is set before a target sees it
        address = Signal(16)
        count = Signal(range(max_payload + 1))     # no valid request asks for more
        offset = Signal(range(CAPTURED))    # where the target's payload starts in memory
        has_payload = Signal()
        has_result = Signal()
        first = Signal(range(len(ids)))
        last_target = Signal(range(len(ids)))
        selected = Signal(range(len(ids)))
        checking = Signal()
        advance = Signal()
        sent_bytes = Signal(range(max_payload + 1))    # payload bytes sent to the target
        result_count = Signal(range(max_payload + 2))  # saturates one past max_payload

        found = Signal()
        found_index = Signal(range(len(ids)))
        with m.Switch(target_id):
            for k, i in enumerate(ids):
                with m.Case(i):
                    m.d.comb += [found.eq(1), found_index.eq(k)]

        # The selected target's ports.
        request_ready, payload_ready = Signal(), Signal()
        result_valid, result_data = Signal(), Signal(8)
        done_valid, done_status = Signal(), Signal(8)
        offer_request, offer_payload, take_result, take_done = (Signal() for _ in range(4))
        target_request = Signal(TARGET_REQUEST)
        payload_beat = Signal(BODY_BEAT)
        m.d.comb += [target_request.op.eq(op), target_request.check.eq(checking),
                     target_request.address.eq(address), target_request.count.eq(count),
                     payload_beat.data.eq(payload_read.data),
                     payload_beat.last.eq(sent_bytes == count - 1)]
        for k, port in enumerate(ports):
            active = selected == k
            m.d.comb += [
                port.request.payload.eq(target_request),
                port.request.valid.eq(active & offer_request),
                port.payload.payload.eq(payload_beat),
                port.payload.valid.eq(active & offer_payload),
                port.result.ready.eq(active & take_result),
                port.done.ready.eq(active & take_done),
            ]
            with m.If(active):
                m.d.comb += [request_ready.eq(port.request.ready),
                             payload_ready.eq(port.payload.ready),
                             result_valid.eq(port.result.valid),
                             result_data.eq(port.result.payload),
                             done_valid.eq(port.done.valid),
                             done_status.eq(port.done.payload)]
        payload_taken = offer_payload & payload_ready
        result_taken = take_result & result_valid
        done_taken = take_done & done_valid

        # --- the response -------------------------------------------------------------
        out_seq, out_cmd, out_status = Signal(8), Signal(8), Signal(8)
        out_length = Signal(16)
        sources = ("result", "identity", "expected")
        source = Signal(range(len(sources)))
        position = Signal(range(HEADER_SIZE + max(max_payload, len(self.capability)) + 1))
        header_fields = {"seq": out_seq, "cmd": out_cmd, "status": out_status,
                         "length": out_length}
        header = Cat(header_fields[name] for name in spec.HEADER_FIELDS)
        response = data.View(BODY_BEAT, self.response.payload)
        sent = self.response.valid & self.response.ready

        def respond(status, length=0, from_source: str = "result") -> None:
            m.d.sync += [out_status.eq(status), out_length.eq(length),
                         source.eq(sources.index(from_source))]
            m.next = "respond"

        def one_of(commands) -> object:
            return Cat(cmd == int(command) for command in commands).any()

        # What a target command would ask, and whether its payload and target id pass
        # (spec step 6, up to the target's own checks).
        has_target = one_of((Command.WRITE, Command.READ, Command.FORWARD, Command.PULSE))
        refusal = Signal(8)
        command_address, command_count = Signal(16), Signal.like(count)
        command_offset = Signal.like(offset)
        with m.Switch(cmd):
            with m.Case(Command.RESET):
                m.d.comb += refusal.eq(Mux(length != 0, Status.BAD_PAYLOAD, OK))
            with m.Case(Command.WRITE):
                m.d.comb += [refusal.eq(Mux(length <= WRITE_SIZE, Status.BAD_PAYLOAD, OK)),
                             command_address.eq(write_address),
                             command_count.eq(length - WRITE_SIZE),
                             command_offset.eq(WRITE_SIZE)]
            with m.Case(Command.READ):
                m.d.comb += [refusal.eq(Mux((length != READ_SIZE) | (read_count == 0)
                                            | (read_count > max_payload),
                                            Status.BAD_PAYLOAD, OK)),
                             command_address.eq(read_address), command_count.eq(read_count)]
            with m.Case(Command.FORWARD, Command.PULSE):
                m.d.comb += [refusal.eq(Mux(length < TARGET_SIZE, Status.BAD_PAYLOAD, OK)),
                             command_count.eq(length - TARGET_SIZE),
                             command_offset.eq(TARGET_SIZE)]
        verdict = Signal(8)         # the status, unless the command goes to the targets
        execute, identify, sync, out_of_sequence = (Signal() for _ in range(4))
        in_window = (behind != 0) & (behind <= spec.DUPLICATE_WINDOW)
        with m.If(frame_status != OK):
            m.d.comb += verdict.eq(frame_status)
        with m.Elif(~one_of(spec.HOST_COMMANDS)):
            m.d.comb += verdict.eq(Status.UNKNOWN_COMMAND)
        with m.Elif(header_status != OK):
            m.d.comb += verdict.eq(Status.BAD_FRAME)
        with m.Elif(one_of(spec.SEQUENCE_EXEMPT)):
            m.d.comb += [verdict.eq(Mux(length != 0, Status.BAD_PAYLOAD, OK)),
                         identify.eq((length == 0) & (cmd == Command.IDENTIFY)),
                         sync.eq((length == 0) & (cmd == Command.SYNC))]
        with m.Elif(~synced):
            m.d.comb += verdict.eq(Status.NOT_SYNCED)
        with m.Elif(in_window & one_of(spec.STATE_CHANGING)):
            m.d.comb += verdict.eq(OK)
        with m.Elif((behind == 0) | in_window):
            with m.If(refusal != OK):
                m.d.comb += verdict.eq(refusal)
            with m.Elif(has_target & ~found):
                m.d.comb += verdict.eq(Status.BAD_TARGET)
            with m.Else():
                m.d.comb += execute.eq(1)
        with m.Else():
            m.d.comb += [verdict.eq(Status.OUT_OF_SEQUENCE), out_of_sequence.eq(1)]

        # The request memory's read port runs one byte ahead of the target's payload, and
        # the response's read ports one byte ahead of the response.
        m.d.comb += payload_read.addr.eq(offset + sent_bytes + payload_taken)
        ahead = position + sent - HEADER_SIZE
        m.d.comb += [result_read.addr.eq(ahead), identity_read.addr.eq(ahead)]

        with m.FSM():
            with m.State("receive"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    with m.If(index < CAPTURED):
                        m.d.sync += captured.word_select(index, 8).eq(beat.data)
                    with m.If((index >= HEADER_SIZE) & (index < HEADER_SIZE + max_payload)):
                        m.d.comb += [payload_write.addr.eq(index - HEADER_SIZE),
                                     payload_write.data.eq(beat.data),
                                     payload_write.en.eq(1)]
                    with m.If(beat.last):
                        m.d.sync += [index.eq(0), frame_status.eq(beat.status),
                                     no_seq.eq(beat.no_seq)]
                        m.next = "decide"
                    with m.Elif(index != index_limit):
                        m.d.sync += index.eq(index + 1)

            with m.State("decide"):
                error = frame_status != OK
                m.d.sync += [out_seq.eq(Mux(error & no_seq, 0, seq)),
                             out_cmd.eq(Mux(error, ERROR_CMD, cmd | spec.RESPONSE_FLAG)),
                             advance.eq(behind == 0)]
                with m.If(execute):
                    reset = cmd == Command.RESET
                    m.d.sync += [
                        op.as_value().eq(cmd),      # an Op is its command's code
                        address.eq(command_address),
                        count.eq(command_count), offset.eq(command_offset),
                        first.eq(Mux(reset, 0, found_index)),
                        last_target.eq(Mux(reset, len(ids) - 1, found_index)),
                        selected.eq(Mux(reset, 0, found_index)),
                        checking.eq(1), result_count.eq(0),
                        has_payload.eq(one_of((Command.WRITE, Command.FORWARD, Command.PULSE))),
                        has_result.eq(one_of((Command.READ, Command.FORWARD))),
                    ]
                    m.next = "target request"
                with m.Elif(identify):
                    respond(verdict, len(self.capability), "identity")
                with m.Elif(out_of_sequence):
                    respond(verdict, OUT_OF_SEQUENCE_SIZE, "expected")
                with m.Else():
                    with m.If(sync):
                        m.d.sync += [synced.eq(1), expected.eq(seq + 1)]
                    respond(verdict)

            with m.State("target request"):
                m.d.comb += offer_request.eq(1)
                with m.If(request_ready):
                    m.next = "target run"

            with m.State("target run"):
                # A result beat offered with `done` is taken first, so none is lost.
                m.d.comb += [offer_payload.eq(has_payload & (sent_bytes != count)),
                             take_result.eq(1), take_done.eq(~result_valid)]
                with m.If(payload_taken):
                    m.d.sync += sent_bytes.eq(sent_bytes + 1)
                with m.If(result_taken & ~checking):
                    with m.If(result_count < max_payload):
                        m.d.comb += [result_write.addr.eq(result_count),
                                     result_write.data.eq(result_data),
                                     result_write.en.eq(1)]
                    with m.If(result_count <= max_payload):
                        m.d.sync += result_count.eq(result_count + 1)
                with m.If(done_taken):
                    m.d.sync += sent_bytes.eq(0)
                    with m.If(done_status != OK):
                        respond(done_status)
                    with m.Elif(selected != last_target):
                        m.d.sync += selected.eq(selected + 1)
                        m.next = "target request"
                    with m.Elif(checking):
                        m.d.sync += [checking.eq(0), selected.eq(first)]
                        m.next = "target request"
                    with m.Elif(has_result & (result_count > max_payload)):
                        respond(Status.BAD_PAYLOAD)
                    with m.Else():
                        with m.If(advance):
                            m.d.sync += expected.eq(expected + 1)
                        respond(Status.OK, Mux(has_result, result_count, 0))

            with m.State("respond"):
                payload_byte = Array([
                    result_read.data, identity_read.data,
                    expected_word.word_select((position - HEADER_SIZE).as_unsigned(), 8),
                ])[source]
                m.d.comb += [
                    self.response.valid.eq(1),
                    response.data.eq(Mux(position < HEADER_SIZE,
                                         Array(header.word_select(k, 8)
                                               for k in range(HEADER_SIZE))[position],
                                         payload_byte)),
                    response.last.eq(position == HEADER_SIZE - 1 + out_length),
                ]
                with m.If(sent):
                    m.d.sync += position.eq(position + 1)
                    with m.If(response.last):
                        m.d.sync += position.eq(0)
                        m.next = "receive"
        return m
