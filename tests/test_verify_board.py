"""`hilt verify-board`: every test image through a board's element and its golden twin,
compared bit for bit, with the first mismatch named by image index."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mnist_folder

from hilt.host import verify_board as verify_module
from hilt.host.backends import open_backend
from hilt.host.cli import main
from hilt.host.verify_board import golden_twin, verify_board
from hilt.quant.datasets import load_digits


@pytest.mark.parametrize("url", ["golden:icebreaker?pe=binary", "golden:icebreaker?pe=shift",
                                 "golden:icebreaker?pe=synapse&rows=16&cols=64"])
def test_a_golden_board_matches_its_twin_on_every_image(url):
    with open_backend(url) as board:
        report = verify_board(board, load_digits(0), progress=False)
    assert (report.images, report.mismatches, report.first) == (360, 0, None)
    assert report.images_per_second > 0


def test_the_co_simulated_board_matches_its_twin_on_every_digit(capsys):
    assert main(["-q", "verify-board", "cosim:icebreaker?pe=binary&sim=verilator"]) == 0
    out = capsys.readouterr().out
    assert "the 360 test images of digits through its binary_layer (64 -> 32" in out
    assert "images/s through the board" in out
    assert out.splitlines()[-1] == "0 mismatches in 360 images"


def test_a_wrong_answer_is_counted_and_the_first_named_by_image(monkeypatch, capsys):
    real_twin = golden_twin

    def twin_with_a_fault(board):
        twin = real_twin(board)
        forward, seen = twin.forward, [0]

        def faulty(x):
            answers = forward(x).copy()
            for row in range(len(x)):
                if seen[0] + row in (70, 200):
                    answers[row, 3] ^= 1
            seen[0] += len(x)
            return answers

        twin.forward = faulty
        return twin

    monkeypatch.setattr(verify_module, "golden_twin", twin_with_a_fault)
    assert main(["-q", "verify-board", "golden:icebreaker?pe=binary", "--batch", "50"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "2 mismatches in 360 images"
    assert "first mismatch: image 70: outputs [3] differ; board [" in captured.err


def test_the_twin_drives_the_same_target_as_the_board():
    with open_backend("golden:icebreaker?pe=synapse&rows=4&cols=8") as board:
        twin = golden_twin(board)
        try:
            assert twin.element.entry == board.element.entry
            x = np.arange(16).reshape(2, 8) % 7
            assert np.array_equal(twin.forward(x), board.forward(x))
        finally:
            twin.close()


@pytest.mark.parametrize(("argv", "message"), [
    (["physical:optical"], "physical:optical is not a board: verify-board compares"),
    (["golden:icebreaker?pe=synapse"], "its synapse_crossbar takes 8 inputs and digits has 64 "
                                       "features"),
    (["laser:x"], "scheme must be one of"),
    (["golden:icebreaker?pe=binary", "--dataset", "cifar"], "dataset must be one of"),
])
def test_what_cannot_be_verified_is_refused_in_one_line(capsys, argv, message):
    assert main(["-q", "verify-board", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_a_data_set_narrower_than_the_element_is_refused(tmp_path, capsys):
    folder = mnist_folder(tmp_path, side=7)
    assert main(["-q", "verify-board", "golden:icebreaker?pe=binary", "--dataset", "mnist",
                 "--data-dir", str(folder)]) == 2
    assert "takes 64 inputs and mnist has 49 features" in capsys.readouterr().err
