"""`hilt train`: a finished run writes its results and plot; a bad choice is named."""

from __future__ import annotations

import json
import re

import pytest

from hilt.host.cli import main
from hilt.host.train.run import block_urls


def test_a_model_free_run_writes_results_and_curves(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["-q", "train", "--algo", "mfff", "--epochs", "1", "--out", str(out),
                 "--backend", "physical:optical?noise=0.01"]) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["algorithm"] == "mfff" and record["test_accuracy"] > 0.8
    assert record["queries_per_sample"] == 6.0
    assert [b["system"]["in_features"] for b in record["backends"]] == [74, 256]
    assert len(record["curves"]["test_accuracy"]) == 1
    assert (out / "curves.png").stat().st_size > 10_000
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(("algo", "epochs"), [("ff", 5), ("backprop", 1)])
def test_digital_algorithms_run_in_process(tmp_path, algo, epochs):
    assert main(["-q", "train", "--algo", algo, "--epochs", str(epochs),
                 "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["test_accuracy"] > 0.5 and len(record["curves"]["test_accuracy"]) == epochs


@pytest.mark.parametrize(("argv", "message"), [
    (["--algo", "sgd"], "algorithm must be one of ff, backprop, mfff, pat, got 'sgd'"),
    (["--dataset", "mnist"], "dataset must be one of digits"),
    (["--algo", "ff", "--backend", "physical:optical"], "--backend is for mfff and pat"),
    (["--backend", "laser:x"], "scheme must be one of golden, cosim, serial, physical"),
    (["--backend", "golden:icebreaker?pe=shift"],
     r"block 0: .* takes 64 features but the block's input has 74"),
    (["--backend", "a", "--backend", "b", "--backend", "c"],
     "give one --backend for every block or one for all 2, got 3"),
])
def test_bad_choices_are_named_and_leave_no_results(tmp_path, capsys, argv, message):
    assert main(["-q", "train", "--epochs", "1", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hilt: error:") and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "results.json").exists()


def test_a_corrupt_checkpoint_stops_the_resume(tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "mfff.pt").write_bytes(b"hilt-checkpoint v1\n" + bytes(40))
    assert main(["-q", "train", "--epochs", "1", "--out", str(tmp_path), "--resume"]) == 2
    assert "truncated or corrupted" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_block_urls_fill_in_the_widths():
    assert block_urls(["physical:acoustic?gain=3", "none"], 2, 128) == [
        "physical:acoustic?gain=3&in=74&out=256", None]
