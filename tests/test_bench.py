"""`hilt bench`: benchmarks by name, each table and its numbers kept on disk."""

from __future__ import annotations

import json

import pytest

from hilt.host.bench import BenchError, available, run_benchmarks
from hilt.host.cli import main


def test_a_benchmark_runs_by_name_and_leaves_its_table_and_numbers(tmp_path, capsys):
    assert main(["bench", "protocol_codec", "--out", str(tmp_path),
                 "--args=--frames 100"]) == 0
    numbers = json.loads((tmp_path / "protocol_codec.json").read_text())
    table = (tmp_path / "protocol_codec.txt").read_text()
    assert numbers and "3 Mbaud line" in table
    out = capsys.readouterr().out
    assert table in out and "numbers in" in out


def test_every_script_in_benchmarks_is_listed():
    names = available()
    assert {"training", "board_link", "protocol_codec", "sim_speed"} <= set(names)


@pytest.mark.parametrize(("argv", "message"), [
    (["nope"], "unknown benchmark 'nope'; accepted: board_link"),
    (["sim_speed", "training", "--args=--epochs 1"], "are for one benchmark; name exactly one"),
])
def test_bad_requests_are_named_before_anything_runs(tmp_path, capsys, argv, message):
    assert main(["bench", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_failing_benchmark_stops_the_run_and_says_where_its_output_is(tmp_path):
    scripts = tmp_path / "benchmarks"
    scripts.mkdir()
    (scripts / "broken.py").write_text("print('half a table')\nraise SystemExit(3)\n")
    with pytest.raises(BenchError, match=r"broken failed with exit status 3; its output is in"):
        run_benchmarks(["broken"], tmp_path / "out", folder=scripts)
    assert (tmp_path / "out" / "broken.txt").read_text() == "half a table\n"
    assert not (tmp_path / "out" / "broken.json").exists()
