"""``hilt verify-board URL``: the command-line face of :mod:`hilt.host.verify_board`.

:func:`add_arguments` declares its options and imports nothing heavy, so building the
command line stays fast; :func:`verify_board_command` opens the board, runs the check
and prints what it found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hilt.host.arguments import SEED, Count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to ``parser`` (the ``verify-board`` subparser)."""
    parser.add_argument("url", metavar="URL",
                        help="the board: golden:icebreaker?pe=binary, "
                             "cosim:icebreaker?pe=binary, serial:///dev/ttyUSB1?pe=binary")
    parser.add_argument("--dataset", default="digits", metavar="NAME",
                        help="the data set whose test images go through (as hilt train "
                             "takes it); default digits")
    parser.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                        help="folder of an MNIST-format data set")
    parser.add_argument("--seed", type=SEED, default=0,
                        help="seed of the element's random configuration (and of the digits "
                             "split)")
    parser.add_argument("--batch", type=Count(1, 4096), default=64,
                        help="images a FORWARD call carries (default 64)")


def verify_board_command(args: argparse.Namespace) -> int:
    """Run the check ``args`` describe; the exit status, 1 on any mismatch."""
    from hilt.host.backends import BackendError, check_backend, open_backend
    from hilt.host.backends.board import BoardBackend
    from hilt.host.verify_board import verify_board
    from hilt.quant.datasets import load_dataset

    check_backend(args.url)
    data = load_dataset(args.dataset, args.data_dir, args.seed)
    board = open_backend(args.url)
    try:
        if not isinstance(board, BoardBackend):
            raise BackendError(f"{args.url} is not a board: verify-board compares a board's "
                               f"element with its golden twin; give a golden:, cosim: or "
                               f"serial: board URL")
        report = verify_board(board, data, seed=args.seed, batch=args.batch,
                              progress=not args.quiet)
    finally:
        board.close()
    inputs, outputs = report.widths
    print(f"hilt: verify-board {report.url}: the {report.images} test images of "
          f"{report.dataset} through its {report.element} ({inputs} -> {outputs}, random "
          f"configuration of seed {args.seed}) and through its golden twin")
    print(f"  {report.images_per_second:.1f} images/s through the board")
    print(f"{report.mismatches} mismatches in {report.images} images")
    if report.first is not None:
        print(f"hilt: check failed: first mismatch: {report.first}", file=sys.stderr)
        return 1
    return 0
