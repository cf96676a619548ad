"""Wire protocol cost: framing efficiency, host codec speed and pipelining gain, in one run.

- efficiency: payload bytes / wire bytes of one frame (header, CRC, COBS, delimiter),
  for 16-, 64- and 256-byte payloads with no zero byte (COBS's worst case);
- codec: encode + streaming decode of such frames on one core, in wire bytes per second
  and as a multiple of a 3 Mbaud 8N1 line (3e6 / 10 bytes per second), which the host
  must beat by a wide margin to keep the line full;
- link: ``Device.forward`` against the reference device served on socket:// from
  another process, with window 1 and with the default window; the ratio is what
  pipelining buys over a link whose round trip is longer than one frame's time.

Machines here are shared and noisy: read the ratios.

    python benchmarks/protocol_codec.py [--frames 5000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time

from hilt.host.protocol import spec
from hilt.host.protocol.codec import FrameDecoder, encode_frame
from hilt.host.protocol.reference import MemoryTarget, ReferenceDevice, serve_tcp
from hilt.host.transport import Device

SIZES = (16, 64, 256)
LINE_BYTES_PER_S = 3e6 / 10
READ_CHUNK = 4096


def efficiency(size: int) -> dict[str, float]:
    # No zero bytes in the payload: COBS's worst case.
    wire = len(encode_frame(0, spec.Command.FORWARD, spec.Status.OK, b"\x55" * size))
    return {"payload": size, "wire": wire, "efficiency": round(size / wire, 4),
            "payload_bytes_per_s_at_3Mbaud": round(LINE_BYTES_PER_S * size / wire)}


def codec_speed(size: int, frames: int) -> dict[str, float]:
    payloads = [os.urandom(size) for _ in range(frames)]
    started = time.perf_counter()
    stream = b"".join(encode_frame(i % 256, spec.Command.FORWARD, spec.Status.OK, payload)
                      for i, payload in enumerate(payloads))
    decoder = FrameDecoder()
    decoded = 0
    for start in range(0, len(stream), READ_CHUNK):
        decoded += len(decoder.feed(stream[start:start + READ_CHUNK]))
    elapsed = time.perf_counter() - started
    assert decoded == frames
    rate = len(stream) / elapsed
    return {"payload": size, "frames": frames, "wire_bytes_per_s": round(rate),
            "frames_per_s": round(frames / elapsed),
            "times_3Mbaud_line": round(rate / LINE_BYTES_PER_S, 1)}


def _serve(ready: multiprocessing.connection.Connection) -> None:
    board = ReferenceDevice([MemoryTarget(4096)], max_payload=spec.MAX_PAYLOAD_CEILING)
    with serve_tcp(board) as server:
        ready.send(server.url)
        ready.recv()


def link_speed(size: int, frames: int) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    process = context.Process(target=_serve, args=(there,), daemon=True)
    process.start()
    url = here.recv()
    payloads = [os.urandom(size) for _ in range(frames)]
    rows = {}
    try:
        for window in (1, spec.WINDOW_DEFAULT):
            with Device(url, window=window) as device:
                device.forward(0, payloads[:50])
                started = time.perf_counter()
                device.forward(0, payloads)
                elapsed = time.perf_counter() - started
            rows[f"window_{window}"] = {"frames_per_s": round(frames / elapsed),
                                        "payload_bytes_per_s": round(frames * size / elapsed)}
    finally:
        here.send("stop")
        process.join()
    rows["ratio"] = round(rows[f"window_{spec.WINDOW_DEFAULT}"]["frames_per_s"]
                          / rows["window_1"]["frames_per_s"], 2)
    rows["payload"] = size
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000, help="frames per link measurement")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    if args.frames < 100:
        parser.error(f"--frames must be at least 100, got {args.frames}")

    frames = {size: efficiency(size) for size in SIZES}
    for row in frames.values():
        print(f"payload {row['payload']:4d} B: {row['wire']:4d} B on the wire, efficiency "
              f"{row['efficiency']:.3f} ({row['payload_bytes_per_s_at_3Mbaud']} payload B/s "
              f"at 3 Mbaud)")
    codec = {size: codec_speed(size, args.frames * 4) for size in SIZES}
    for row in codec.values():
        print(f"codec, payload {row['payload']:4d} B: {row['frames_per_s']} frames/s, "
              f"{row['wire_bytes_per_s'] / 1e6:.1f} MB/s = {row['times_3Mbaud_line']}x a "
              f"3 Mbaud line")
    link = link_speed(64, args.frames)
    print(f"Device.forward, 64 B payloads over socket://: window 1 "
          f"{link['window_1']['frames_per_s']} frames/s, window {spec.WINDOW_DEFAULT} "
          f"{link[f'window_{spec.WINDOW_DEFAULT}']['frames_per_s']} frames/s, "
          f"ratio {link['ratio']}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"line_bytes_per_s": LINE_BYTES_PER_S, "efficiency": list(frames.values()),
                       "codec": list(codec.values()), "link": link}, out, indent=2)


if __name__ == "__main__":
    main()
