"""The board's link, measured in one run: framing, host codec, co-simulated line, faults.

- efficiency: payload bytes / wire bytes for 16-, 64- and 256-byte payloads;
- codec: host encode + decode on one core as a multiple of a 3 Mbaud line;
- line: ``Device.forward`` of 64-byte vectors through a board's firmware co-simulated
  under Verilator, as payload bits over the bit times the batch took on the simulated
  line (the bridge's timeline), with the window at 1 and at its default;
- faults: a :class:`~hilt.host.link_trial.LinkTrial` on the board's memory target through
  a :class:`~hilt.host.faults.FaultProxy` that drops, flips and duplicates bytes and
  frames both ways, then one with the link cut mid-batch and one with the board reset
  mid-batch: frames sent, faults injected, commands applied twice, results lost;
- windows: the same trial against the reference device, with the window at 1, 8 and 64
  and frames dropped, flipped and duplicated at 5, 10 and 20 % each way: whether the batch
  completed within the retry budget, what it cost, the most resends of one frame (what a
  budget counted against every frame in the window would have spent) and the most
  charged to one frame (what the per-frame budget spends), and that no command was
  applied twice.

    python benchmarks/board_link.py [--board icebreaker] [--frames 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import Counter
from typing import Any

from protocol_codec import SIZES, codec_speed, efficiency

from hilt.firmware.board_firmware import firmware_top
from hilt.firmware.boards import BOARDS
from hilt.host.faults import FaultProxy, Faults
from hilt.host.link_trial import LinkTrial
from hilt.host.protocol import reference, spec
from hilt.host.transport import Device, LinkError
from hilt.sim.cosim import CosimBoard, start_cosim

DIVISOR = 4
"""Clock cycles a bit on the simulated line, as ``hilt cosim`` uses by default."""
CLOCK_NS = 10
MEMORY_BYTES = 1024
PAYLOAD = 64
TRIAL_STEPS = 64
FAULTS = Faults(drop_byte=0.02, flip_byte=0.02, drop_frame=0.02, duplicate=0.02)
LINK = {"timeout": 0.5, "retries": 10}
WINDOWS = (1, spec.WINDOW_DEFAULT, spec.WINDOW_MAX)
RATES = (0.05, 0.10, 0.20)
WINDOW_STEPS = 128
WINDOW_TIMEOUT_S = 0.1
"""The reference device answers within a millisecond; a tenth of a second is ample."""
WINDOW_RETRIES = 20
"""Enough that one frame alone gets through 20 % drops, flips and duplicates each way
(three round trips in five fail there) with a chance of about 1 in 60,000."""


def line_use(board: CosimBoard, frames: int) -> list[dict[str, Any]]:
    """Forward ``frames`` vectors with each window; the spans are read after the stop."""
    payloads = [os.urandom(PAYLOAD) for _ in range(frames)]
    sent = received = 0
    spans = []
    for window in (1, spec.WINDOW_DEFAULT):
        with Device(board.url, window=window, timeout=5.0) as device:
            device.forward(0, payloads[:8])
            start = sent + device.stats.bytes_sent
            started = time.perf_counter()
            device.forward(0, payloads)
            wall = time.perf_counter() - started
            end = received + device.stats.bytes_received
            sent += device.stats.bytes_sent
            received += device.stats.bytes_received
        spans.append({"window": window, "frames": frames, "payload": PAYLOAD,
                      "first_byte": start, "last_byte": end, "wall_s": round(wall, 2)})
    return spans


def fault_trial(board: CosimBoard, how: str, seed: int) -> dict[str, Any]:
    """One trial through faults (``"faults"``), a cut link (``"cut"``) or a reset board."""
    trial = LinkTrial(TRIAL_STEPS, memory_size=MEMORY_BYTES, seed=seed)
    faults = FAULTS if how == "faults" else Faults()
    proxy = FaultProxy(board.url, seed=seed, to_device=faults, to_host=faults,
                       close_after=len(trial.requests) // 2 if how == "cut" else None)
    results, error = None, ""
    with proxy, Device(proxy.url, window=spec.WINDOW_DEFAULT, **LINK) as link:
        presser = None
        if how == "reset":
            def press() -> None:
                while link.stats.frames_sent < len(trial.requests) // 2:
                    time.sleep(0.005)
                board.reset()
            presser = threading.Thread(target=press)
            presser.start()
        try:
            results = link.transact(trial.requests)
        except LinkError as failure:
            error = f"{type(failure).__name__}: {failure}"
        if presser is not None:
            presser.join()
        stats = link.stats
    with Device(board.url, timeout=5.0) as clean:
        tally = trial.tally(results, trial.read_back(clean))
    injected = Counter({"board_reset": 1} if how == "reset" else {})
    for counts in proxy.counts.values():
        injected.update({kind: n for kind, n in counts.items() if kind != "frames"})
    return {"how": how, "requests": tally.requests, "frames_sent": stats.frames_sent,
            "retransmissions": stats.retransmissions, "faults_injected": sum(injected.values()),
            "faults": dict(injected), "applied_twice": tally.applied_twice,
            "not_applied": tally.not_applied,
            # A failed call returns no results: it is reported, not counted as lost.
            "results_lost": tally.results_lost if results is not None else None,
            "error": error}


def window_trial(url: str, window: int, rate: float, seed: int,
                 timeout: float) -> dict[str, Any]:
    """A trial on the memory target of the device at ``url`` with frames dropped, flipped
    and duplicated at ``rate`` each way, ``window`` frames in flight and
    :data:`WINDOW_RETRIES` retries a frame."""
    trial = LinkTrial(WINDOW_STEPS, memory_size=MEMORY_BYTES, seed=seed)
    faults = Faults(flip_byte=rate, drop_frame=rate, duplicate=rate)
    results, error = None, ""
    proxy = FaultProxy(url, seed=seed, to_device=faults, to_host=faults)
    started = time.perf_counter()
    with proxy, Device(proxy.url, window=window, timeout=timeout,
                       retries=WINDOW_RETRIES) as link:
        try:
            results = link.transact(trial.requests)
        except LinkError as failure:
            error = type(failure).__name__
        stats = link.stats
    wall = time.perf_counter() - started
    with Device(url, timeout=5.0) as clean:
        tally = trial.tally(results, trial.read_back(clean))
    injected = sum(n for counts in proxy.counts.values()
                   for kind, n in counts.items() if kind != "frames")
    return {"window": window, "rate": rate, "requests": tally.requests,
            "completed": results is not None, "error": error,
            "frames_sent": stats.frames_sent, "retransmissions": stats.retransmissions,
            "timeouts": stats.timeouts, "faults_injected": injected,
            "most_resends": stats.most_resends, "most_retries": stats.most_retries,
            "applied_twice": tally.applied_twice,
            "results_lost": tally.results_lost if results is not None else None,
            "wall_s": round(wall, 2)}


def window_table(url: str, timeout: float) -> list[dict[str, Any]]:
    """:func:`window_trial` at every window and fault rate, each with its own seed."""
    return [window_trial(url, window, rate, seed, timeout) for seed, (rate, window) in
            enumerate((rate, window) for rate in RATES for window in WINDOWS)]


def print_windows(where: str, rows: list[dict[str, Any]]) -> None:
    print(f"windows, {where}: {WINDOW_STEPS * 4 + 1} requests, {WINDOW_RETRIES} retries a "
          f"frame")
    print("| faults | window | completed | frames sent | retransmissions | timeouts | "
          "faults injected | most resends of a frame | most retries charged to a frame | "
          "applied twice | results lost | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        done = "yes" if row["completed"] else f"no ({row['error']})"
        lost = "-" if row["results_lost"] is None else row["results_lost"]
        print(f"| {row['rate']:.0%} | {row['window']} | {done} | {row['frames_sent']} | "
              f"{row['retransmissions']} | {row['timeouts']} | {row['faults_injected']} | "
              f"{row['most_resends']} | {row['most_retries']} | {row['applied_twice']} | "
              f"{lost} | {row['wall_s']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="icebreaker", choices=sorted(BOARDS))
    parser.add_argument("--frames", type=int, default=200, help="vectors per line measurement")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    if args.frames < 10:
        parser.error(f"--frames must be at least 10, got {args.frames}")

    framing = [efficiency(size) for size in SIZES]
    for row in framing:
        print(f"payload {row['payload']:4d} B: {row['wire']:4d} B on the wire, "
              f"efficiency {row['efficiency']:.3f}")
    codec = [codec_speed(size, 20000) for size in SIZES]
    for row in codec:
        print(f"codec, payload {row['payload']:4d} B: {row['times_3Mbaud_line']}x a 3 Mbaud line")

    top = firmware_top(BOARDS[args.board], {"memory_bytes": MEMORY_BYTES}, divisor=DIVISOR,
                       clock_hz=1e9 / CLOCK_NS)
    with start_cosim(top, sim="verilator", divisor=DIVISOR, clock_ns=CLOCK_NS, pty=False,
                     timeline=True) as board:
        spans = line_use(board, args.frames)
        trials = [fault_trial(board, how, seed) for seed, how in
                  enumerate(("faults", "faults", "cut", "reset"))]
        windows = {f"the co-simulated {args.board}": window_table(board.url, LINK["timeout"])}
        board.stop()
    device = reference.ReferenceDevice([reference.MemoryTarget(MEMORY_BYTES)])
    with reference.serve_tcp(device) as server:
        windows["the reference device"] = window_table(server.url, WINDOW_TIMEOUT_S)
    for span in spans:
        bits = board.bit_times(span.pop("first_byte"), span.pop("last_byte"))
        span["bit_times"] = round(bits)
        span["line_fraction"] = round(10 * span["frames"] * span["payload"] / bits, 3)
        print(f"{args.board} firmware under Verilator, {PAYLOAD} B FORWARDs, window "
              f"{span['window']}: payload {span['line_fraction']:.3f} of the line rate "
              f"({span['wall_s']} s wall)")
    for row in trials:
        print(f"{row['how']:6s}: {row['requests']} requests, {row['frames_sent']} frames sent, "
              f"{row['faults_injected']} faults injected {row['faults']}, applied twice "
              f"{row['applied_twice']}, "
              + (f"results lost {row['results_lost']}" if not row["error"] else
                 f"not applied {row['not_applied']}, the call failed: {row['error']}"))
    for where, rows in windows.items():
        print_windows(where, rows)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"board": args.board, "divisor": DIVISOR, "efficiency": framing,
                       "codec": codec, "line": spans, "faults": trials, "windows": windows},
                      out, indent=2)


if __name__ == "__main__":
    main()
