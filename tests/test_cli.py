"""The command line: user errors are one line and exit 2; checks print what they compared."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hilt.host.cli import main


@pytest.mark.parametrize(("argv", "message"), [
    (["sim", "shift-array", "--lanes", "0"],
     "hilt: error: argument --lanes: 0 is out of range: accepted an integer from 1 to 256"),
    (["sim", "mul-array", "--exp-bits", "9"],
     "hilt: error: argument --exp-bits: 9 is out of range: accepted an integer from 1 to 6"),
    (["synth", "shift-array", "--act-width", "1"],
     "hilt: error: argument --act-width: 1 is out of range: accepted an integer from 2 to 32"),
    (["sim", "shift-array", "--vectors", "0"],
     "hilt: error: argument --vectors: 0 is out of range"),
    (["sim-binary", "--pe", "9"], "hilt: error: pe must be 1..7, got 9"),
    (["sim-binary", "--max-weight", "0"],
     "hilt: error: argument --max-weight: 0 is out of range: accepted an integer from 1"),
])
def test_bad_parameters_end_in_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_sim_reports_what_it_compared(capsys):
    argv = ["sim", "shift-array", "--sim", "verilator", "--lanes", "4", "--pes", "3",
            "--act-width", "5", "--exp-bits", "2", "--depth", "13", "--vectors", "8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "shift-array under verilator:" in out
    assert "0 mismatches" in out


def test_synth_prints_resource_counts(capsys):
    argv = ["synth", "mul-array", "--lanes", "2", "--pes", "1", "--depth", "8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "on iCE40 UP5K:" in out
    assert "2 DSPs" in out


def test_python_dash_m_runs_the_same_cli():
    done = subprocess.run([sys.executable, "-m", "hilt", "sim", "--help"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert "--vectors" in done.stdout


def test_sim_binary_reports_what_it_compared(capsys):
    argv = ["sim-binary", "--sim", "verilator", "--emit", "counts", "--vectors", "8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "binary-layer (counts) under verilator: 8 vectors, 56 values compared" in out
    assert "0 mismatches" in out
    assert "12 per vector at full rate" in out


def test_proof_writes_its_summary(tmp_path, capsys):
    assert main(["proof", "bnn", "--sim", "verilator", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "RTL logits equal the golden model's (0 mismatches in 26640 values)" in out
    assert (tmp_path / "summary.json").is_file()
