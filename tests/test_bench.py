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


def test_a_failing_benchmark_keeps_the_earlier_results_as_they_were(tmp_path, capsys):
    scripts = tmp_path / "benchmarks"
    scripts.mkdir()
    script = scripts / "flaky.py"
    script.write_text("import sys, json\nprint('a whole table')\n"
                      "json.dump({'ok': 1}, open(sys.argv[sys.argv.index('--json') + 1], 'w'))\n")
    out = tmp_path / "out"
    run_benchmarks(["flaky"], out, folder=scripts)
    before = {name: (out / name).read_bytes() for name in ("flaky.json", "flaky.txt")}
    script.write_text("print('half a table')\nraise SystemExit(3)\n")
    with pytest.raises(BenchError, match=r"flaky failed with exit status 3 \(its output is "
                                         r"above\); .* keeps its earlier flaky.json"):
        run_benchmarks(["flaky"], out, folder=scripts)
    assert "half a table" in capsys.readouterr().out
    assert {name: (out / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in out.iterdir()) == [".hilt-run.json", "flaky.json",
                                                     "flaky.txt"]


def test_the_default_output_folder_is_relative_to_where_hilt_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "protocol_codec", "--args=--frames 100"]) == 0
    assert json.loads((tmp_path / "runs" / "bench" / "protocol_codec.json").read_text())
