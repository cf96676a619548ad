"""The co-simulated board's speed, native engine against cocotb's, on the same firmware, in one run.

Both engines run the same iCEBreaker firmware under Verilator; the native one is hilt's
C++ harness compiled with the design, the cocotb one the Python bridge under cocotb. For
each:

- builds: each image compiled into an empty cache (the cache of this whole run, so every
  later board starts from these builds): the board's own image (memory and the 8 x 8
  synapse crossbar, what ``hilt cosim --board icebreaker`` serves), the demo's (the binary
  layer) and the one with the 64 x 74 crossbar the pulse trainer uses;
- echo, on the board's own image: ``Device.forward`` of the memory target (target 0, each
  byte comes back changed) in payload bytes per second, one way. The payloads are 160
  bytes, so that three frames fit the firmware's 512-byte receive buffer (the most request
  bytes a host keeps in flight) and the line stays busy both ways; a 255-byte payload
  leaves room for one;
- forward, on the same image: ``BoardBackend.forward`` of the crossbar, in FORWARD frames
  per second;
- demo, on the demo's image: one epoch of ``hilt demo``'s training (model-free
  Forward-Forward against the binary layer), in training samples per second, next to the
  golden twin's; the three runs must reach the same test accuracy, or nothing was
  measured.

Machines here are shared and noisy: read the ratios, measured in one run.

    python benchmarks/cosim_speed.py [--board icebreaker] [--native-frames 600]
                                     [--cocotb-frames 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hilt.host.backends import open_backend
from hilt.host.train.demo import DEMO_SETTINGS, demo_url
from hilt.host.train.run import run_training
from hilt.sim.build_cache import build_seconds
from hilt.sim.cosim import ENGINES, build_board
from hilt.sim.cosim_board import cosim_top, start_board

ECHO_PAYLOAD = 160
FORWARD_VECTORS = 512
IMAGES = {"synapse-8x8": {}, "binary": {"pe": "binary"},
          "synapse-64x74": {"pe": "synapse", "pe_size": {"rows": 64, "cols": 74}}}
"""The firmware images whose builds are timed, by the name their build carries."""


def builds(board: str) -> dict[str, dict[str, float]]:
    """Each image built on each engine into the (empty) cache: seconds, and for the native
    engine how they split between Verilator and the C++ compiler."""
    timed = {}
    for engine in ENGINES:
        for image, params in IMAGES.items():
            name = f"{engine}-{board}-{image}"
            build_dir, cached = build_board(cosim_top(board, params), engine=engine)
            if cached:
                raise SystemExit(f"{name} was already in the cache: the builds are not cold")
            row = {"seconds": round(build_seconds(build_dir), 1)}
            steps = build_dir / "steps.json"
            if steps.is_file():
                row.update({k: round(v, 1) for k, v in json.loads(steps.read_text()).items()})
            timed[name] = row
            print(f"built {name} in {row['seconds']:.1f} s", flush=True)
    return timed


def link_speed(board: str, engine: str, frames: int) -> dict[str, float]:
    """Echo payload bytes/s through the memory target, and forward frames/s through the
    crossbar, of the board's own firmware on ``engine``."""
    rng = random.Random(0)
    payloads = [rng.randbytes(ECHO_PAYLOAD) for _ in range(frames)]
    with start_board(board, IMAGES["synapse-8x8"], engine=engine) as simulated, \
            open_backend(f"cosim:{simulated.url}") as backend:
        high = 1 << (backend.describe()["target"]["params"]["in_bits"] - 1)
        x = np.random.default_rng(0).integers(-high, high, (FORWARD_VECTORS,
                                                              backend.in_features))
        device = backend.device
        started = time.perf_counter()
        answers = device.forward(0, payloads)
        echo_s = time.perf_counter() - started
        if [len(answer) for answer in answers] != [ECHO_PAYLOAD] * frames:
            raise SystemExit(f"{engine}: the echo came back short")
        sent = device.stats.frames_sent
        started = time.perf_counter()
        backend.forward(x)
        forward_s = time.perf_counter() - started
        forward_frames = device.stats.frames_sent - sent
    return {"echo_bytes_per_s": round(frames * ECHO_PAYLOAD / echo_s),
            "echo_frames_per_s": round(frames / echo_s, 1),
            "forward_frames_per_s": round(forward_frames / forward_s, 1),
            "forward_vectors_per_s": round(FORWARD_VECTORS / forward_s, 1)}


def demo_epoch(url: str, work: Path) -> dict[str, Any]:
    """One epoch of the demo's training against ``url``."""
    record = run_training("mfff", work / url.replace(":", "-").replace("?", "-"),
                          backends=[url], epochs=1, seed=0, progress=False,
                          overrides=DEMO_SETTINGS)
    return {"samples_per_s": round(record["samples_per_second"], 1),
            "test_accuracy": record["test_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="icebreaker")
    parser.add_argument("--native-frames", type=int, default=600,
                        help="echo frames through the native engine")
    parser.add_argument("--cocotb-frames", type=int, default=30,
                        help="echo frames through the cocotb engine")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    if args.native_frames < 1 or args.cocotb_frames < 1:
        parser.error("--native-frames and --cocotb-frames must be at least 1")

    with tempfile.TemporaryDirectory(prefix="hilt-cosim-speed-") as scratch:
        # Every build of this run lands in an empty cache of its own: cold, and reused.
        os.environ["HILT_CACHE"] = str(Path(scratch) / "cache")
        built = builds(args.board)
        link = {engine: link_speed(args.board, engine, frames)
                for engine, frames in (("native", args.native_frames),
                                       ("cocotb", args.cocotb_frames))}
        for engine, row in link.items():
            print(f"{engine}: echo {row['echo_bytes_per_s']} B/s, forward "
                  f"{row['forward_frames_per_s']} frames/s", flush=True)
        urls = {"golden": f"golden:{args.board}?pe=binary",
                **{engine: demo_url(args.board, "binary", "verilator", engine)
                   for engine in ENGINES}}
        demo = {name: demo_epoch(url, Path(scratch)) for name, url in urls.items()}
    accuracies = {name: row["test_accuracy"] for name, row in demo.items()}
    if len(set(accuracies.values())) != 1:
        raise SystemExit(f"the demo's epoch ended differently: {accuracies}")

    numbers = {
        "native_echo_bytes_per_s": link["native"]["echo_bytes_per_s"],
        "cocotb_echo_bytes_per_s": link["cocotb"]["echo_bytes_per_s"],
        "native_forward_frames_per_s": link["native"]["forward_frames_per_s"],
        "cocotb_forward_frames_per_s": link["cocotb"]["forward_frames_per_s"],
        "native_demo_samples_per_s": demo["native"]["samples_per_s"],
        "cocotb_demo_samples_per_s": demo["cocotb"]["samples_per_s"],
        "golden_demo_samples_per_s": demo["golden"]["samples_per_s"],
        "demo_test_accuracy": accuracies["golden"],
        "build_seconds": {name: row["seconds"] for name, row in built.items()},
        "build_steps": {name: row for name, row in built.items() if len(row) > 1},
        "echo_payload_bytes": ECHO_PAYLOAD,
        "link": link,
    }
    numbers["echo_native_over_cocotb"] = round(
        numbers["native_echo_bytes_per_s"] / numbers["cocotb_echo_bytes_per_s"], 1)
    numbers["demo_native_over_golden"] = round(
        numbers["native_demo_samples_per_s"] / numbers["golden_demo_samples_per_s"], 3)

    print(f"\n{args.board} firmware under Verilator, native engine against cocotb's (echo "
          f"and forward: the board's own image; demo: the demo's)")
    print(f"{'':28s} {'native':>10s} {'cocotb':>10s} {'ratio':>7s}")
    for label, key in (("echo payload bytes/s", "echo_bytes_per_s"),
                       ("forward frames/s", "forward_frames_per_s")):
        native, cocotb = link["native"][key], link["cocotb"][key]
        print(f"{label:28s} {native:>10.0f} {cocotb:>10.0f} {native / cocotb:>7.1f}")
    native, cocotb = demo["native"]["samples_per_s"], demo["cocotb"]["samples_per_s"]
    print(f"{'demo epoch samples/s':28s} {native:>10.1f} {cocotb:>10.1f} "
          f"{native / cocotb:>7.1f}")
    print(f"golden twin: {demo['golden']['samples_per_s']:.1f} samples/s; native engine at "
          f"{numbers['demo_native_over_golden']:.2f} of it; test accuracy "
          f"{accuracies['golden']:.4f} on all three")
    print(f"\n{'build (cold cache)':40s} {'seconds':>8s}  native: verilate + compile")
    for name, row in built.items():
        split = (f"  {row['verilate']:.1f} + {row['compile']:.1f}"
                 if "verilate" in row else "")
        print(f"{name:40s} {row['seconds']:>8.1f}{split}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(numbers, out, indent=2)


if __name__ == "__main__":
    main()
