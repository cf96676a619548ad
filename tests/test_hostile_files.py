"""Every kind of file hilt reads, and every URL it opens, as a hostile user hands them over.

Checkpoints, a sweep's points, results files and sweep configs are given damaged,
truncated, binary, of the wrong shape or nested too deep (link recordings are tried the
same way in ``test_recording.py``); backend URLs with sizes beyond the wire format,
repeated options, an endless timeout and a crawling line. Each gets a one-line error
that names the file or option and what is accepted.
"""

from __future__ import annotations

import json
import re
import socket

import numpy as np
import pytest

from hilt.host.backends import BackendError, check_backend, open_backend
from hilt.host.cli import main
from hilt.host.protocol import reference
from hilt.host.sweep import load_config
from hilt.host.sweep.errors import RunFolderError
from hilt.host.sweep.run_folder import RunFolder
from hilt.host.transport import Device

DEEP = "[" * 3000 + "]" * 3000
"""Nesting past what any recursive reader survives."""


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hilt: error: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    for needle in needles:
        assert needle in err, err


# --- checkpoints ---------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is not a checkpoint"),
    (b"\x00\xff" * 500, "is not a checkpoint"),
    (b"hilt-checkpoint v2\n" + bytes(64), "is a checkpoint of an older hilt"),
    (b"hilt-checkpoint v3\n" + bytes(10), "truncated or corrupted"),
])
def test_a_damaged_checkpoint_stops_the_resume_in_one_line(tmp_path, capsys, content, message):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "mfff.pt").write_bytes(content)
    assert main(["-q", "train", "--epochs", "1", "--out", str(tmp_path), "--resume"]) == 2
    _one_line_error(capsys, str(tmp_path / "checkpoints" / "mfff.pt"), message)


# --- a sweep's points, results and configs -------------------------------------------------


SWEEP = """element = "shift"
family = "ice40"
epochs = 1
[grid]
exp_bits = [2]
pes = [1]
"""


@pytest.mark.parametrize(("line", "message"), [
    ('{"params": {}}', "is not a point record"),
    ("{CONFIG_HASH, \"params\": {PARAMS}, \"train_s\": 1}", "lacks accuracy"),
    ("{CONFIG_HASH, \"params\": {PARAMS}, \"accuracy\": \"high\"}", "lacks accuracy"),
    ("{CONFIG_HASH, \"params\": [1]}", "params that are not an object"),
    (DEEP, "is not a point record"),
])
def test_a_damaged_point_is_named_by_its_line(tmp_path, capsys, line, message):
    config_path = tmp_path / "sweep.toml"
    config_path.write_text(SWEEP)
    config = load_config(config_path)
    out = tmp_path / "out"
    RunFolder(out, config)
    params = json.dumps(config.points()[0])[1:-1]
    line = line.replace("CONFIG_HASH", f'"config_hash": "{config.hash}"').replace(
        "PARAMS", params)
    (out / "points.jsonl").write_text(line + "\n" + '{"a": 1}\n')
    with pytest.raises(RunFolderError, match=message):
        RunFolder(out, config)
    assert main(["sweep", str(config_path), "--out", str(out)]) == 2
    _one_line_error(capsys, "points.jsonl, line 1")


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe\x00binary", "is not valid TOML"),
    (b"element = ", "is not valid TOML"),
    (f"element = {DEEP}".encode(), "nests too deep to be read"),
    (b'element = "shift"\nepochs = "many"\n[grid]\npes = [1]\n', "epochs"),
    (b'element = "shift"\n[grid]\npes = [0, 99999999999]\n', "pes"),
])
def test_a_damaged_sweep_config_is_refused_in_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "sweep.toml"
    path.write_bytes(content)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    _one_line_error(capsys, message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("results", "message"), [
    ('{"algorithm": "mfff", "config": [1, 2], "test_accuracy": 0.5, "curves": '
     '{"train_accuracy": [], "test_accuracy": [], "loss": []}}',
     "its config is list, not an object"),
    ('{"algorithm": "mfff", "config": {}, "test_accuracy": 0.5, "curves": []}',
     "lacks curves as a mapping"),
    ('{"config": {}, "points": {}, "pareto_front": [0]}', "its points is dict, not a list"),
    (DEEP, "nests too deep to be read"),
    ("\x00\x01", "is not valid JSON"),
])
def test_damaged_results_are_refused_by_the_report_in_one_line(tmp_path, capsys, results,
                                                               message):
    (tmp_path / "results.json").write_text(results)
    assert main(["report", str(tmp_path)]) == 2
    _one_line_error(capsys, message)
    assert not (tmp_path / "report").exists()


# --- backend URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), [
    ("golden:icebreaker?pe=synapse&rows=100000&cols=74",
     "option rows: 100000 is out of range: accepted an integer from 0 to 65536"),
    ("golden:icebreaker?pe=synapse&rows=4096&cols=74",
     "does not fit the board's 256-byte frames: one vector is 74 bytes in and 8192 out"),
    ("golden:icebreaker?pe=synapse&rows=64&cols=200",
     "a row is 400 bytes and a pulse slot 67, a frame carries 253"),
    ("golden:icebreaker?pe=binary&in_features=4000",
     "does not fit the board's 256-byte frames: one vector is 500 bytes in"),
    ("golden:icebreaker?pe=shift&depth=999999999", "option depth: 999999999 is out of range"),
    ("physical:optical?in=64&in=32", "option in is given more than once; give it once"),
    ("golden:icebreaker?pe=shift&pe=binary", "option pe is given more than once"),
    ("physical:optical?in=100000", "option in: 100000 is out of range: accepted an integer "
                                   "from 1 to 4096"),
    ("physical:optical?noise=nan", "option noise: nan is out of range"),
    ("serial:///dev/ttyUSB1?timeout=inf", "option timeout: inf is out of range: accepted a "
                                          "finite number above 0 to 3600"),
    ("serial:///dev/ttyUSB1?baudrate=1", "option baudrate: 1 is out of range: accepted an "
                                         "integer from 300 to 100000000"),
    ("serial:///dev/ttyUSB1?retries=99999999", "option retries: 99999999 is out of range"),
    ("golden:icebreaker?rows", "the options after '?' must read NAME=VALUE&NAME=VALUE"),
    ("cosim:icebreaker?sim=modelsim", "option sim: 'modelsim' is not a simulator"),
    ("golden:icebreaker?target=300", "option target: 300 is out of range"),
])
def test_hostile_urls_are_refused_before_anything_opens(url, message):
    with pytest.raises(BackendError, match="^" + re.escape(url)) as error:
        check_backend(url)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_hostile_url_on_the_command_line_is_one_line_and_writes_nothing(tmp_path, capsys):
    url = "golden:icebreaker?pe=synapse&rows=100000&cols=74"
    assert main(["-q", "train", "--algo", "ff-pulse", "--backend", url,
                 "--out", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, "option rows: 100000 is out of range")
    assert not (tmp_path / "run").exists()


def test_a_board_whose_identify_record_nests_too_deep_is_refused(monkeypatch):
    board = reference.ReferenceDevice([reference.MemoryTarget(64)], max_payload=4096)
    record = board._identity.decode()
    monkeypatch.setattr(board, "_identity", (record[:-1] + ',"deep":' + "[" * 1500 + "]" * 1500
                                             + "}").encode())
    with reference.serve_tcp(board) as server, \
            pytest.raises(BackendError, match="capability record nests too deep"):
        open_backend(f"serial:{server.url}")


def test_a_closed_backend_says_so():
    backend = open_backend("golden:icebreaker?pe=binary")
    backend.close()
    with pytest.raises(BackendError, match=r"golden:icebreaker\?pe=binary: this backend was "
                                           r"closed; open the URL again"):
        backend.forward(np.zeros((1, 64), dtype=np.uint8))
    physical = open_backend("physical:optical")
    physical.close()
    with pytest.raises(BackendError, match="this backend was closed"):
        physical.forward(np.zeros((1, 64)))


def test_a_busy_port_is_named_before_the_board_is_built(capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["cosim", "--board", "icebreaker", "--port", str(port)]) == 2
    _one_line_error(capsys, f"port {port} on 127.0.0.1 cannot be listened on",
                    "give another, or 0 for any free one")


def test_a_device_refuses_an_endless_timeout_and_a_crawling_line():
    for settings, message in (({"timeout": float("inf")}, "at most 3600"),
                              ({"baudrate": 1}, r"300\.\.100000000")):
        with pytest.raises(ValueError, match=message):
            Device("loop://", **settings)
