"""The command line as a hostile user drives it: every bad value, folder and interruption.

The bad values are generated from the parser itself, so an option added later is tried
too: each number just outside its range, a word, a fraction, an overflow, each choice
misspelt. Every one must end in one line on stderr, exit status 2, before anything runs.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time

import pytest

from hilt.host.arguments import Count, Real
from hilt.host.cli import build_parser, main
from hilt.host.output_folder import MARKER

PREFIX = {"sim": ["shift-array"], "synth": ["shift-array"], "build": ["--board", "icebreaker"],
          "cosim": ["--board", "icebreaker"], "flash": ["--board", "icebreaker"],
          "proof": ["bnn"], "sweep": ["sweep.toml"], "report": ["runs/nothing"]}
"""What each command needs besides the option tried, so that only the option is wrong."""


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _bad_values(action: argparse.Action) -> list[str]:
    kind = action.type
    if isinstance(kind, Count):
        return [str(kind.low - 1), str(kind.high + 1), "9" * 40, "many", "1.5", ""]
    if isinstance(kind, Real):
        below = kind.low if not kind.low_inclusive else kind.low - 1
        return [repr(below), repr(kind.high * 2 + 1), "nan", "inf", "-inf", "lots"]
    if action.choices is not None:
        return ["no-such-choice"]
    return []


CASES = [(command, action.option_strings[-1] if action.option_strings else action.dest,
          action, value)
         for command, sub in _commands().items() for action in sub._actions
         for value in _bad_values(action)]


def test_every_number_on_the_command_line_has_a_range():
    bare = [(command, action.dest) for command, sub in _commands().items()
            for action in sub._actions if action.type in (int, float)]
    assert bare == []
    assert len(CASES) > 150


@pytest.mark.parametrize(("command", "option", "action", "value"), CASES,
                         ids=[f"{c}-{o}-{v or 'empty'}"[:60] for c, o, _, v in CASES])
def test_every_bad_value_is_one_line_before_anything_runs(command, option, action, value,
                                                          tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if action.option_strings:
        argv = [command, *PREFIX.get(command, []), f"{option}={value}"]
    else:
        argv = [command, value, *PREFIX.get(command, [])[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hilt: error: argument "), err
    assert "Traceback" not in err and (repr(value) in err or value in err), err
    assert "accepted" in err or "invalid choice" in err, err
    assert not any(tmp_path.iterdir())


def _finished_run(out):
    """A finished `hilt train` run in ``out``; the bytes of its files."""
    assert main(["-q", "train", "--algo", "backprop", "--epochs", "1", "--set", "hidden=8",
                 "--out", str(out)]) == 0
    return {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}


def _unchanged(out, before):
    return {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "hiden=64"], "--set hiden: BackpropConfig has no such field"),
    (["--set", "hidden=100000000"], "hidden = (100000000,): accepted one or more layer widths, "
                                    "ints from 1 to 8192"),
    (["--set", "seed=5", "--seed", "3"], "--seed 3 and --set seed=5 disagree"),
    (["--set", "epochs=3", "--epochs", "2"], "--epochs 2 and --set epochs=3 disagree"),
    (["--set", "lr=0.1", "--set", "lr=0.2"], "--set lr is given more than once"),
    (["--resume"], "checkpoints are written by the mfff trainer only"),
    (["--epochs", "0"], "argument --epochs: 0 is out of range"),
])
def test_a_mistyped_rerun_keeps_the_finished_run(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    before = _finished_run(out)
    capsys.readouterr()
    assert main(["-q", "train", "--algo", "backprop", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert _unchanged(out, before)


def test_set_seed_and_set_epochs_are_used_when_the_options_are_not_given(tmp_path):
    out = tmp_path / "run"
    assert main(["-q", "train", "--algo", "backprop", "--set", "seed=5", "--set", "epochs=2",
                 "--set", "hidden=8", "--out", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["seed"] == record["config"]["seed"] == 5
    assert record["config"]["epochs"] == 2 and len(record["curves"]["test_accuracy"]) == 2
    assert main(["-q", "train", "--algo", "backprop", "--seed", "5", "--set", "seed=05",
                 "--epochs", "1", "--set", "hidden=8", "--out", str(out)]) == 0


def test_a_refused_resume_keeps_the_finished_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["-q", "train", "--epochs", "1", "--set", "hidden=16", "--out", str(out),
                 "--backend", "physical:optical"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "mfff.pt").write_bytes(b"not a checkpoint at all")
    assert main(["-q", "train", "--epochs", "1", "--set", "hidden=16", "--out", str(out),
                 "--backend", "physical:optical", "--resume"]) == 2
    assert "is not a checkpoint" in capsys.readouterr().err
    assert _unchanged(out, before)
    assert main(["-q", "train", "--epochs", "1", "--set", "hidden=16", "--out", str(out),
                 "--backend", "physical:optical"]) == 2
    assert "holds the checkpoint of an unfinished run" in capsys.readouterr().err
    assert _unchanged(out, before)


def test_a_foreign_state_of_the_right_configuration_is_refused_in_one_line(tmp_path, capsys):
    from hilt.host.train import checkpoint as checkpoint_module

    argv = ["-q", "train", "--epochs", "1", "--set", "hidden=16", "--backend",
            "physical:optical", "--checkpoint-every", "5"]
    out = tmp_path / "run"
    checkpoint = out / "checkpoints" / "mfff.pt"
    process = _run_until([sys.executable, "-m", "hilt", *argv, "--out", str(out)], checkpoint)
    process.kill()
    process.communicate(timeout=60)
    # The configuration in the header is this run's; the network inside is not.
    header, _ = checkpoint_module._read(checkpoint)
    state = checkpoint_module.load_checkpoint(checkpoint, config=header["config"])
    dropped = next(iter(state["net"]))
    del state["net"][dropped]
    checkpoint_module.save_checkpoint(checkpoint, state, config=header["config"],
                                      step=header["step"])
    assert main([*argv, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{checkpoint}: its network lacks ['{dropped}']" in err and "not from this run" in err


@pytest.mark.parametrize("command", [
    ["train", "--algo", "backprop"], ["demo"], ["bench", "protocol_codec"],
    ["build", "--board", "icebreaker"], ["synapse-sweep", "--quick"], ["proof", "bnn"],
])
def test_an_unwritable_output_folder_is_refused_before_any_work(command, tmp_path, capsys,
                                                                monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the command started working before checking its folder")

    for target in ("hilt.host.train.run.Staging", "hilt.host.bench.Staging",
                   "hilt.firmware.build.build_board", "hilt.host.synapse_sweep.run_sweep",
                   "hilt.sim.bnn_digits_proof.run_bnn_digits_proof"):
        monkeypatch.setattr(target, no_work)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "out"
    assert main([*command, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write into --out {out}" in err, err


@pytest.mark.parametrize(("kind_files", "command"), [
    ({"results.json": '{"algorithm": "mfff", "curves": {}}'},
     ["sweep", "benchmarks/sweeps/shift_ice40.toml"]),
    ({"config.json": '{"config_hash": "abc"}'}, ["train", "--algo", "backprop"]),
    ({"summary.json": '{"verdict": "equal"}'}, ["bench", "protocol_codec"]),
    ({"notes.txt": "my thesis"}, ["train", "--algo", "backprop"]),
    ({"notes.txt": "my thesis"}, ["synapse-sweep", "--quick"]),
    ({"photo.png": "raw"}, ["proof", "bnn"]),
    ({"data.csv": "1,2"}, ["build", "--board", "icebreaker"]),
])
def test_a_folder_of_another_kind_or_no_run_is_refused(kind_files, command, tmp_path, capsys):
    from hilt.host.bench import BENCHMARKS

    command = [str(BENCHMARKS.parent / part) if part.startswith("benchmarks/") else part
               for part in command]
    for name, text in kind_files.items():
        (tmp_path / name).write_text(text)
    assert main([*command, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {tmp_path}" in err and "--force" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kind_files)
    assert all((tmp_path / name).read_text() == text for name, text in kind_files.items())


def test_force_writes_into_a_foreign_folder_and_replaces_only_its_own_files(tmp_path):
    (tmp_path / "notes.txt").write_text("my thesis")
    assert main(["-q", "train", "--algo", "backprop", "--epochs", "1", "--set", "hidden=8",
                 "--out", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "my thesis"
    assert json.loads((tmp_path / MARKER).read_text()) == {"kind": "train"}
    assert (tmp_path / "results.json").is_file() and (tmp_path / "model.pt").is_file()


def _run_until(argv, path, deadline_s=300):
    """Start ``argv`` and return once ``path`` exists (or the process ended)."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + deadline_s
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return process


def _train_argv(out, *extra):
    return [sys.executable, "-m", "hilt", "-q", "train", "--epochs", "2", "--set", "hidden=64",
            "--backend", "physical:optical", "--out", str(out), *extra]


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_an_interrupted_rerun_leaves_the_earlier_results_as_they_were(tmp_path, how):
    out = tmp_path / "run"
    subprocess.run(_train_argv(out, "--epochs", "1"), check=True, timeout=600)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    checkpoint = out / "checkpoints" / "mfff.pt"
    process = _run_until(_train_argv(out, "--checkpoint-every", "3"), checkpoint)
    assert process.poll() is None, process.stderr.read()
    process.send_signal(getattr(signal, how))
    _, err = process.communicate(timeout=120)
    assert _unchanged(out, before)
    if how == "SIGINT":
        assert process.returncode == 130
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"hilt: interrupted; {out} keeps what it held before this run, "
                              f"and the checkpoint {checkpoint} (step "), err
        assert "run the same command with --resume" in err
    else:
        assert process.returncode == -signal.SIGKILL
    # The checkpoint resumes; the finished run then replaces the earlier one whole.
    subprocess.run(_train_argv(out, "--checkpoint-every", "3", "--resume"), check=True,
                   timeout=600)
    record = json.loads((out / "results.json").read_text())
    assert len(record["curves"]["test_accuracy"]) == 2
    assert not checkpoint.exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".hilt-partial-")]


def test_an_interrupted_benchmark_keeps_its_earlier_files(tmp_path):
    out = tmp_path / "bench"
    argv = [sys.executable, "-m", "hilt", "bench", "protocol_codec", "--out", str(out)]
    subprocess.run([*argv, "--args=--frames 100"], check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    process = _run_until([*argv, "--args=--frames 1000000"], out / "never", 5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err == f"hilt: interrupted; {out} keeps what it held before this run\n"
    assert _unchanged(out, before)
    assert not [p for p in out.iterdir() if p.name.startswith(".hilt-partial-")]


@pytest.mark.parametrize("command", [["cosim", "--board", "icebreaker"], ["demo"]])
def test_the_native_engine_under_icarus_is_one_line_before_anything_runs(command, tmp_path,
                                                                         capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--sim", "icarus", "--engine", "native"]) == 2
    err = capsys.readouterr().err
    assert err == ("hilt: error: engine native runs under Verilator only, not sim 'icarus'; "
                   "give sim verilator, or engine cocotb\n")
    assert not any(tmp_path.iterdir())
