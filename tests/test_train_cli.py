"""`hilt train`: a finished run writes its results and plot; a bad choice is named."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import mnist_folder

from hilt.host.cli import main
from hilt.host.train import ALGORITHMS, TRAINERS
from hilt.host.train.goodness import LabelLayout
from hilt.host.train.run import block_urls, default_config, trainer_module


def test_a_model_free_run_writes_results_and_curves(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["-q", "train", "--algo", "mfff", "--epochs", "1", "--out", str(out),
                 "--backend", "physical:optical?noise=0.01"]) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["algorithm"] == "mfff" and record["test_accuracy"] > 0.8
    # Block 0's layer measures each image once, its label going around it.
    assert record["queries_per_sample"] == 1.0 + 3.0
    assert [b["system"]["in_features"] for b in record["backends"]] == [64, 128]
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
    (["--algo", "sgd"], r"argument --algo: invalid choice: 'sgd' \(choose from 'ff', 'backprop'"),
    (["--dataset", "cifar"], r"dataset must be one of digits, mnist, fashion-mnist, .*, got "
                             r"'cifar'"),
    (["--dataset", "mnist", "--data-dir", "/nonexistent"],
     r"mnist: there is no folder /nonexistent; its folder holds train-images-idx3-ubyte"),
    (["--dataset", "digits", "--data-dir", "/tmp"], r"'digits' takes none"),
    (["--dataset", "npz:/nonexistent.npz"], r"no such file /nonexistent\.npz"),
    (["--algo", "ff", "--backend", "physical:optical"], "--backend is for mfff, pat, ff-pulse"),
    (["--backend", "laser:x"], "scheme must be one of golden, cosim, serial, physical"),
    (["--backend", "golden:icebreaker?pe=shift"],
     r"block 1: .* takes 64 features but the block's input has 128"),
    (["--backend", "golden:icebreaker?pe=shift", "--set", "label_path=physical"],
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
    assert "is a checkpoint of an older hilt" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_block_urls_fill_in_the_widths():
    assert block_urls(["physical:acoustic?gain=3", "none"], 2, 128, LabelLayout(64, 10)) == [
        "physical:acoustic?gain=3&in=74&out=256", None]
    assert block_urls(["physical:optical"], 2, 32, LabelLayout(784, 10, tuple(range(10)))) == [
        "physical:optical?in=784&out=256", "physical:optical?in=32&out=256"]
    # With the label going around block 0's layer, that layer measures the features alone.
    assert block_urls(["physical:optical"], 2, 32, LabelLayout(64, 10), "skip") == [
        "physical:optical?in=64&out=256", "physical:optical?in=32&out=256"]


def test_config_fields_are_set_by_name(tmp_path):
    assert main(["-q", "train", "--algo", "ff", "--epochs", "1", "--out", str(tmp_path),
                 "--set", "hidden=32,16", "--set", "classifier=softmax"]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["config"]["hidden"] == [32, 16]
    assert record["config"]["classifier"] == "softmax"
    weights = torch.load(tmp_path / "model.pt")
    assert [tuple(w.shape) for name, w in weights.items() if name.endswith("weight")][:2] \
        == [(32, 74), (16, 32)]


@pytest.mark.parametrize(("setting", "message"), [
    ("hiden=3", "MFFFConfig has no such field; accepted: blocks, hidden"),
    ("hidden=many", "--set hidden='many': accepted a value of type int"),
    ("skip=yes", "--set skip='yes': accepted a value of type bool"),
    ("label=top", r"label = 'top': accepted \('append', 'blank'\)"),
    ("hidden", "--set takes NAME=VALUE, got 'hidden'"),
])
def test_a_bad_setting_is_named(tmp_path, capsys, setting, message):
    assert main(["-q", "train", "--epochs", "1", "--out", str(tmp_path), "--set", setting]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "results.json").exists()


def _train(out, *extra):
    return [sys.executable, "-m", "hilt", "-q", "train", "--algo", "mfff", "--epochs", "3",
            "--backend", "physical:optical?noise=0.01&drift=0.001", "--set", "hidden=128",
            "--out", str(out), "--checkpoint-every", "4", *extra]


def test_a_killed_run_resumed_from_the_command_line_ends_as_an_uninterrupted_one(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_train(whole), check=True, timeout=600)
    process = subprocess.Popen(_train(killed))
    checkpoint = killed / "checkpoints" / "mfff.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "results.json").exists()
    subprocess.run(_train(killed, "--resume"), check=True, timeout=600)

    first = json.loads((whole / "results.json").read_text())
    second = json.loads((killed / "results.json").read_text())
    for key in ("test_accuracy", "curves", "queries", "config"):
        assert first[key] == second[key], key
    a, b = torch.load(whole / "model.pt"), torch.load(killed / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_forward_forward_in_a_crossbar_spends_pulses_and_keeps_its_levels(tmp_path, capsys):
    url = "golden:icebreaker?pe=synapse&rows=16&cols=74"
    assert main(["-q", "train", "--algo", "ff-pulse", "--epochs", "1", "--out", str(tmp_path),
                 "--backend", url, "--set", "rule=bidirectional"]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["config"]["rule"] == "bidirectional"
    assert record["pulses"] == record["potentiation"] + record["depression"] > 0
    assert record["depression"] > 0 and record["refreshes"] == 0
    levels = torch.load(tmp_path / "model.pt")
    assert levels["layers.0.plus"].shape == (16, 74)
    assert "cell pulses" in capsys.readouterr().out


def test_forward_forward_in_a_crossbar_needs_one(tmp_path, capsys):
    assert main(["-q", "train", "--algo", "ff-pulse", "--epochs", "1", "--out", str(tmp_path),
                 "--backend", "golden:icebreaker?pe=binary"]) == 2
    assert "cannot pulse, read_state" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("algo", ["ff", "backprop", "mfff", "pat", "ff-pulse"])
def test_every_algorithm_trains_on_an_mnist_format_folder(tmp_path, capsys, algo):
    folder = mnist_folder(tmp_path / "mnist", train=200, test=50, side=7)
    out = tmp_path / "run"
    epochs = {"ff": 10, "backprop": 10, "ff-pulse": 10}.get(algo, 3)
    assert main(["-q", "train", "--algo", algo, "--dataset", "mnist", "--data-dir", str(folder),
                 "--epochs", str(epochs), "--out", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["dataset"] == "mnist"
    assert {key: record["data"][key] for key in ("features", "classes", "train", "test",
                                                  "range", "range_from")} == {
        "features": 49, "classes": 10, "train": 200, "test": 50, "range": [0.0, 255.0],
        "range_from": "stated"}
    assert record["test_accuracy"] > 0.5, record["curves"]["test_accuracy"]
    if algo in ("mfff", "pat"):
        # MF-FF's label goes around block 0's layer, PAT's through it.
        assert record["backends"][0]["system"]["in_features"] == (49 if algo == "mfff" else 59)
    if algo == "ff-pulse":
        assert record["backends"][0]["in_features"] == 59
    assert "49 features, 10 classes" in capsys.readouterr().out
    if algo in ("ff", "backprop"):
        # The learning rate and size for MNIST, chosen on its training part.
        chosen = {"lr": 0.001, "hidden": [500, 500]} if algo == "ff" else {"hidden": [500, 500]}
        assert record["dataset_defaults"] == chosen
        assert {key: record["config"][key] for key in chosen} == chosen
    else:
        assert record["dataset_defaults"] == {}


def test_a_value_the_user_gives_beats_a_data_set_default(tmp_path):
    folder = mnist_folder(tmp_path / "mnist", train=40, test=20, side=7)
    assert main(["-q", "train", "--algo", "ff", "--dataset", "mnist", "--data-dir",
                 str(folder), "--epochs", "1", "--set", "lr=0.002", "--out",
                 str(tmp_path / "run")]) == 0
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["config"]["lr"] == 0.002 and record["dataset_defaults"] == {"hidden": [500, 500]}
    assert default_config("ff", "mnist-t10k").lr == 0.001
    assert default_config("ff", "digits").lr == default_config("ff").lr == 0.003


def test_an_npz_data_set_with_its_own_classes_trains(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 5)) * 3
    y_train, y_test = np.arange(150) % 3, np.arange(30) % 3
    np.savez(tmp_path / "own.npz", x_train=centres[y_train] + rng.normal(size=(150, 5)),
             y_train=y_train, x_test=centres[y_test] + rng.normal(size=(30, 5)), y_test=y_test)
    assert main(["-q", "train", "--algo", "mfff", "--dataset", f"npz:{tmp_path / 'own.npz'}",
                 "--epochs", "20", "--set", "hidden=16", "--out", str(tmp_path / "run")]) == 0
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (record["data"]["features"], record["data"]["classes"]) == (5, 3)
    assert record["data"]["range_from"] == "inferred"
    assert record["backends"][0]["system"]["in_features"] == 5
    assert record["test_accuracy"] > 0.8


def test_a_data_set_too_narrow_for_the_board_is_refused_with_both_widths(tmp_path, capsys):
    folder = mnist_folder(tmp_path / "mnist", side=7)
    assert main(["-q", "train", "--dataset", "mnist", "--data-dir", str(folder), "--set",
                 "label=blank", "--backend", "golden:icebreaker?pe=binary", "--out",
                 str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "block 0: its physical layer golden:icebreaker?pe=binary takes 64 features but " \
           "the block's input has 49 (49 features with the label in 10 of them)" in err, err
    assert not (tmp_path / "run" / "results.json").exists()


def test_every_row_of_the_algorithm_table_resolves():
    for name, row in TRAINERS.items():
        assert callable(getattr(trainer_module(name), row.train)), name
        config = default_config(name)
        assert type(config).__name__ == row.config and dataclasses.is_dataclass(config)
        assert row.backends in ("none", "blocks", "layers")
    assert tuple(TRAINERS) == ALGORITHMS


def test_a_crossbar_for_mnist_sized_images_gets_frames_its_rows_fit(tmp_path):
    folder = mnist_folder(tmp_path / "mnist", train=40, test=20, side=28)
    out = tmp_path / "run"
    # Stochastic trains pulse from the first batch (read-back waits for whole steps).
    assert main(["-q", "train", "--algo", "ff-pulse", "--dataset", "mnist", "--data-dir",
                 str(folder), "--epochs", "1", "--set", "update=stochastic", "--set", "lr=0.1",
                 "--out", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    layer = record["backends"][0]
    assert (layer["in_features"], layer["url"]) == (
        794, "golden:icebreaker?pe=synapse&rows=64&cols=794&max_payload=2048")
    assert record["pulses"] > 0
