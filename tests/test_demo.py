"""`hilt demo`: model-free Forward-Forward against the co-simulated board, which trains
exactly as its golden twin does."""

from __future__ import annotations

import json

import torch

from hilt.host.cli import main
from hilt.host.train.demo import DEMO_SETTINGS
from hilt.host.train.run import run_training


def test_the_demo_trains_against_the_cosimulated_board_as_against_its_twin(tmp_path, capsys):
    board, twin = tmp_path / "demo", tmp_path / "twin"
    assert main(["demo", "--epochs", "1", "--out", str(board)]) == 0
    printed = capsys.readouterr()
    record = json.loads((board / "results.json").read_text())
    assert record["backends"][0]["url"] == "cosim:icebreaker?pe=binary&sim=verilator"
    assert f"test accuracy {record['test_accuracy']:.4f} with the board, " \
           f"{record['board_removed_test_accuracy']:.4f} with the board removed" in printed.out
    assert record["board_removed_test_accuracy"] > 0.5
    assert len(record["board_removed_curves"]["test_accuracy"]) == 1
    assert str(board / "results.json") in printed.out and str(board / "curves.png") in printed.out
    assert "mf-ff" in printed.err  # the progress bar
    assert (board / "curves.png").stat().st_size > 10_000

    run_training("mfff", twin, backends=["golden:icebreaker?pe=binary"], epochs=1,
                 overrides=DEMO_SETTINGS, progress=False)
    golden = json.loads((twin / "results.json").read_text())
    assert record["test_accuracy"] > 0.5
    for key in ("test_accuracy", "curves", "queries", "config"):
        assert record[key] == golden[key], key
    a, b = torch.load(board / "model.pt"), torch.load(twin / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
