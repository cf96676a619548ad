"""The whole firmware through its UART pins, under Icarus and Verilator, and on iCE40.

cocotbext-uart sends random streams (requests good and bad, noise, over-long runs) in
bursts no longer than the receive FIFO, and the answers must be the reference
device's byte for byte; every stream ends with an IDENTIFY after a delimiter, which the
device must answer whatever came before it.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Fragment

from hilt.firmware.synthesis import synthesize
from hilt.firmware.targets import MemoryTarget
from hilt.firmware.top import RX_BUFFER_DEFAULT, FirmwareTop, capability_record
from hilt.host.protocol import codec, reference, spec
from hilt.sim.runner import simulate
from hilt.sim.testbenches.firmware_fuzz import compare_responses, fuzz_stream

TESTBENCH = "hilt.sim.testbenches.firmware_fuzz"
CLOCK_NS, DIVISOR = 10, 4
MAX_PAYLOAD = 24
RX_BUFFER = 64
SIZES = {0: 40, 3: 300}
BOARD, BUILD = "sim-board", "0123abcd"


def record(targets, max_payload: int = MAX_PAYLOAD, rx_buffer: int = RX_BUFFER) -> bytes:
    return capability_record(targets, board=BOARD, build=BUILD, max_payload=max_payload,
                             baud=1_000_000_000 // (CLOCK_NS * DIVISOR), rx_buffer=rx_buffer)


def reference_device() -> reference.ReferenceDevice:
    return reference.ReferenceDevice(
        {i: reference.MemoryTarget(size) for i, size in SIZES.items()},
        max_payload=MAX_PAYLOAD, board=BOARD, build=BUILD,
        baud=1_000_000_000 // (CLOCK_NS * DIVISOR), rx_buffer=RX_BUFFER)


def firmware_top() -> FirmwareTop:
    targets = {i: MemoryTarget(size) for i, size in SIZES.items()}
    return FirmwareTop(targets, record(targets), divisor=DIVISOR, max_payload=MAX_PAYLOAD,
                       rx_buffer=RX_BUFFER)


def noise(rng: random.Random, size: int) -> bytes:
    """Line noise with few delimiters, so that runs grow too long for any frame."""
    return bytes(rng.randrange(256) if rng.random() < 0.05 else rng.randrange(1, 256)
                 for _ in range(size))


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_firmware_over_uart_matches_reference(sim):
    rng = random.Random(7)
    line, _ = fuzz_stream(rng, 30, reference_device())
    line = noise(rng, 150) + line
    bursts = [line[i:i + RX_BUFFER] for i in range(0, len(line), RX_BUFFER)]
    device = reference_device()
    expected = [device.receive(burst) for burst in bursts]
    result = simulate(firmware_top(), TESTBENCH, sim=sim, params={
        "clock_ns": CLOCK_NS, "divisor": DIVISOR,
        "bursts": [list(burst) for burst in bursts],
        "expected": [list(answer) for answer in expected],
    })
    got = b"".join(bytes(answer) for answer in result["received"])
    message = compare_responses(got, b"".join(expected))
    assert result["timed_out"] is None, f"burst {result['timed_out']}: {message}"
    assert message is None, message
    assert (result["framing_errors"], result["overruns"]) == (0, 0)
    last = codec.decode_frame(got.split(spec.DELIMITER)[-2])
    assert (last.command, last.status, last.payload) == (
        spec.Command.IDENTIFY, spec.Status.OK, device.capabilities.to_payload())


def test_top_parameters_are_validated():
    targets = [MemoryTarget(8)]
    good = record(targets)
    with pytest.raises(ValueError, match=r"announces rx_buffer 64, the receive FIFO holds 32"):
        FirmwareTop(targets, good, divisor=DIVISOR, max_payload=MAX_PAYLOAD, rx_buffer=32)
    with pytest.raises(ValueError, match=r"announces rx_buffer None, the receive FIFO holds"):
        FirmwareTop(targets, capability_record(targets, board=BOARD, build=BUILD,
                                               max_payload=MAX_PAYLOAD, baud=1),
                    divisor=DIVISOR, max_payload=MAX_PAYLOAD)
    with pytest.raises(ValueError, match=r"divisor must be at least 4, got 3"):
        FirmwareTop(targets, good, divisor=3, max_payload=MAX_PAYLOAD, rx_buffer=RX_BUFFER)
    with pytest.raises(ValueError, match=r"rx_buffer must be at least 1, got 0"):
        FirmwareTop(targets, good, divisor=DIVISOR, max_payload=MAX_PAYLOAD, rx_buffer=0)
    with pytest.raises(ValueError, match=r"announces max_payload 24, the dispatcher has 16"):
        FirmwareTop(targets, good, divisor=DIVISOR, max_payload=16, rx_buffer=RX_BUFFER)
    with pytest.raises(TypeError, match=r"capability must be bytes, got str"):
        FirmwareTop(targets, good.decode(), divisor=DIVISOR, max_payload=MAX_PAYLOAD,
                    rx_buffer=RX_BUFFER)
    assert RX_BUFFER_DEFAULT == 512
    top = FirmwareTop(targets, good, divisor=DIVISOR, max_payload=MAX_PAYLOAD,
                      rx_buffer=RX_BUFFER)
    assert list(top.signature.members) == ["rx", "tx", "framing_errors", "overruns"]
    Fragment.get(top, platform=None)


def test_firmware_synthesizes_for_ice40():
    """max_payload 256 and a 1 KiB memory target, as on a small board."""
    targets = [MemoryTarget(1024)]
    capability = capability_record(targets, board="icebreaker", build=BUILD, max_payload=256,
                                   baud=3_000_000, rx_buffer=RX_BUFFER_DEFAULT)
    report = synthesize(FirmwareTop(targets, capability, divisor=4, max_payload=256), "ice40")
    # Receive FIFO, request and result buffers, capability ROM, COBS block buffer, and the
    # memory target's two.
    assert report.brams == 7
    assert report.dsps == 0
    assert 0 < report.luts < 1600 and 0 < report.flip_flops < 800
