"""The design-space sweep: its config, its Pareto front, resuming, and a real sweep run
locally and on a local Ray instance with equal results."""

import argparse
import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from hilt.host.sweep import (
    PointFailed,
    RayUnavailable,
    RunFolderError,
    SweepConfigError,
    SweepError,
    add_arguments,
    load_config,
    pareto_front,
    parse_config,
    run_sweep,
    sweep_command,
)
from hilt.host.sweep import accuracy as accuracy_module
from hilt.host.sweep import cost as cost_module
from hilt.host.sweep.accuracy import quantize_pixels
from hilt.host.sweep.run_folder import POINTS_FILE

BASE = {"element": "shift", "epochs": 2, "grid": {"exp_bits": [2, 3], "pes": [1, 2]}}

# A real sweep small enough for the default run: two number formats (two trainings of a
# 64-16-10 MLP, three epochs), each synthesised as a one-PE array of two lanes.
REAL = {"element": "shift", "seed": 1, "epochs": 3,
        "grid": {"exp_bits": [2, 3], "act_width": [4], "hidden": [16], "lanes": [2],
                 "pes": [1]}}

RAY_EXTRA = "ray is the optional [ray] extra; the quickstart and CI install it"


def config(**changes):
    return parse_config({**BASE, **changes})


# --- config -----------------------------------------------------------------------------


def test_defaults_fill_the_grid_and_writing_a_default_out_changes_nothing():
    c = config()
    assert c.families == ("ice40",) and c.seed == 0 and c.epochs == 2
    assert c.grid == {"exp_bits": (2, 3), "act_width": (8,), "hidden": (32,), "lanes": (8,),
                      "pes": (1, 2)}
    assert len(c.points()) == 4
    assert c.points()[0] == {"family": "ice40", "exp_bits": 2, "act_width": 8, "hidden": 32,
                             "lanes": 8, "pes": 1}
    spelled_out = config(grid={**BASE["grid"], "lanes": 8}, family="ice40", seed=0)
    assert spelled_out.hash == c.hash
    assert config(seed=1).hash != c.hash
    assert parse_config(c.as_json()) == c


@pytest.mark.parametrize(("changes", "message"), [
    ({"element": "adder"}, r"element must be one of shift, multiplier, binary; got 'adder'"),
    ({"grid": {"lanes": [4], "width": [8]}},
     r"unknown parameter 'width' for element 'shift'; accepted: exp_bits, act_width, "
     r"hidden, lanes, pes"),
    ({"grid": {"use_dsp": [True]}}, r"unknown parameter 'use_dsp'.*accepted: exp_bits"),
    ({"grid": {}}, r"\[grid\] table is empty; element 'shift' accepts: exp_bits"),
    ({"grid": {"pes": []}}, r"grid.pes is an empty list"),
    ({"grid": {"pes": [2.5]}}, r"grid.pes must list integers >= 1; got 2.5 \(float\)"),
    ({"grid": {"pes": ["4"]}}, r"grid.pes must list integers >= 1; got '4' \(str\)"),
    ({"grid": {"pes": [True]}}, r"grid.pes must list integers >= 1; got True \(bool\)"),
    ({"grid": {"pes": [0]}}, r"grid.pes must list integers >= 1 \(processing elements"),
    ({"grid": {"pes": [2, 2]}}, r"grid.pes lists a value twice: \[2, 2\]"),
    ({"grid": [4]}, r"grid must be a table of parameter = \[values\]; got list"),
    ({"grid": {"act_width": [40]}}, r"grid point exp_bits=3, act_width=40.*act_width must "
                                    r"be 2..32, got 40"),
    ({"family": "ecp9"}, r"family must be one of ice40, ecp5 \(or a list of them\); got 'ecp9'"),
    ({"seed": -1}, r"seed must be an integer >= 0; got -1"),
    ({"epochs": "10"}, r"epochs must be an integer >= 1; got '10' \(str\)"),
    ({"epoch": 3}, r"unknown key 'epoch'; accepted: element, family, seed, epochs, grid"),
])
def test_bad_configs_are_refused_naming_the_key_and_what_is_accepted(changes, message):
    with pytest.raises(SweepConfigError, match=message):
        config(**changes)


def test_element_specific_checks():
    with pytest.raises(SweepConfigError, match=r"grid.use_dsp must list true or false; "
                                               r"got 1 \(int\)"):
        parse_config({"element": "multiplier", "grid": {"use_dsp": [1]}})
    with pytest.raises(SweepConfigError, match=r"grid point hidden=8, pe=16, simd=16: "
                                               r"pe must be 1..8, got 16"):
        parse_config({"element": "binary", "grid": {"hidden": [8], "pe": [16]}})
    with pytest.raises(SweepConfigError, match=r"'element' is missing"):
        parse_config({"grid": {"pes": [1]}})
    with pytest.raises(SweepConfigError, match=r"\[grid\] table is missing"):
        parse_config({"element": "binary"})


def test_config_files_toml_and_json(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('element = "shift"\nepochs = 2\n[grid]\nexp_bits = [2, 3]\npes = [1, 2]\n')
    as_json = tmp_path / "s.json"
    as_json.write_text(json.dumps(BASE))
    assert load_config(toml) == load_config(as_json) == config()
    broken = tmp_path / "b.toml"
    broken.write_text('element = "shift"\n[grid\n')
    with pytest.raises(SweepConfigError, match=r"b.toml' is not valid TOML: .*line 2"):
        load_config(broken)
    with pytest.raises(SweepConfigError, match=r"must end in .toml or .json, got '.yaml'"):
        load_config(tmp_path / "s.yaml")
    with pytest.raises(SweepConfigError, match=r"missing.toml' cannot be read"):
        load_config(tmp_path / "missing.toml")


def test_pixels_fit_the_activation_width():
    pixels = np.arange(17)
    for bits in range(1, 8):
        q = quantize_pixels(pixels, bits)
        assert q.min() == 0 and q.max() == min(16, (1 << bits) - 1)
        assert np.all(np.diff(q) >= 0)
    assert np.array_equal(quantize_pixels(pixels, 1), pixels >= 8)
    assert np.array_equal(quantize_pixels(pixels, 5), pixels)


# --- Pareto front -----------------------------------------------------------------------


def test_pareto_front_keeps_the_points_nothing_beats_on_both_axes():
    points = [  # (accuracy, LUTs)
        (0.90, 300),   # 0 front: cheapest
        (0.95, 500),   # 1 front
        (0.93, 600),   # 2 dominated by 1
        (0.95, 700),   # 3 dominated by 1 (same accuracy, more LUTs)
        (0.97, 900),   # 4 front
        (0.89, 300),   # 5 dominated by 0 (same LUTs, less accurate)
        (0.95, 500),   # 6 a tie with 1: kept
        (0.97, 1000),  # 7 dominated by 4
    ]
    front = pareto_front(points, gain=lambda p: p[0], cost=lambda p: p[1])
    assert front == [0, 1, 6, 4]
    assert pareto_front([], gain=lambda p: p, cost=lambda p: p) == []


# --- resume, with evaluators that count their calls ---------------------------------------


class FakeEvaluators:
    """Stand-ins for training and synthesis: instant, counted, optionally failing."""

    def __init__(self, fail_at_cost=None):
        self.trainings, self.syntheses, self.fail_at_cost = [], [], fail_at_cost

    def accuracy(self, element, params, *, seed, epochs):
        self.trainings.append(dict(params))
        return {"accuracy": 0.9 + params["exp_bits"] / 100, "train_s": 0.5}

    def cost(self, element, params):
        self.syntheses.append(dict(params))
        if len(self.syntheses) == self.fail_at_cost:
            raise RuntimeError("Yosys failed (made up)")
        luts = 100 * params["pes"] * params["exp_bits"]
        return {"luts": luts, "flip_flops": 10, "dsps": 0, "brams": 1, "carries": 2,
                "synth_s": 0.25}

    def install(self, monkeypatch):
        monkeypatch.setattr(accuracy_module, "evaluate_accuracy", self.accuracy)
        monkeypatch.setattr(cost_module, "evaluate_cost", self.cost)
        return self


def test_one_training_per_number_format(tmp_path, monkeypatch):
    fake = FakeEvaluators().install(monkeypatch)
    result = run_sweep(config(), tmp_path, workers=1)
    assert len(fake.trainings) == 2 and len(fake.syntheses) == 4
    assert [p["accuracy"] for p in result.points] == [0.92, 0.92, 0.93, 0.93]
    assert result.points[0]["seconds"] == 0.75
    # LUTs 200, 400, 300, 600: the front is the cheapest point and the best accuracy's.
    assert result.front == [0, 2]
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["pareto_front"] == [0, 2] and written["config_hash"] == config().hash
    assert [p["on_front"] for p in written["points"]] == [True, False, True, False]
    assert (tmp_path / "pareto.png").stat().st_size > 0
    assert "| exp_bits | pes | accuracy | LUTs |" in (tmp_path / "results.md").read_text()


def test_a_rerun_evaluates_only_the_points_not_finished(tmp_path, monkeypatch):
    failing = FakeEvaluators(fail_at_cost=3).install(monkeypatch)
    with pytest.raises(PointFailed, match=r"synthesis for ice40 of shift point exp_bits=3, "
                                          r"act_width=8, hidden=32, lanes=8, pes=1 failed: "
                                          r"RuntimeError: Yosys failed \(made up\)"):
        run_sweep(config(), tmp_path, workers=1)
    assert len((tmp_path / POINTS_FILE).read_text().splitlines()) == 2
    assert not (tmp_path / "results.json").exists()

    fake = FakeEvaluators().install(monkeypatch)
    result = run_sweep(config(), tmp_path, workers=1)
    assert (result.resumed, result.evaluated) == (2, 2)
    # The exp_bits=2 format's accuracy came from the finished points: one training only.
    assert fake.trainings == [{"exp_bits": 3, "act_width": 8, "hidden": 32}]
    assert [p["exp_bits"] for p in fake.syntheses] == [3, 3]
    assert len(failing.trainings) == 2

    again = FakeEvaluators().install(monkeypatch)
    rerun = run_sweep(config(), tmp_path, workers=1)
    assert (again.trainings, again.syntheses) == ([], [])
    assert (rerun.resumed, rerun.evaluated, rerun.executor) == (4, 0, "nothing to run")
    assert rerun.points == result.points


def test_a_torn_last_line_is_cut_off_and_its_point_run_again(tmp_path, monkeypatch):
    FakeEvaluators().install(monkeypatch)
    first = run_sweep(config(), tmp_path, workers=1)
    points = tmp_path / POINTS_FILE
    lines = points.read_bytes().splitlines(keepends=True)
    points.write_bytes(b"".join(lines[:3]) + lines[3][:40])  # killed while writing line 4
    fake = FakeEvaluators().install(monkeypatch)
    second = run_sweep(config(), tmp_path, workers=1)
    assert len(fake.syntheses) == 1 and fake.trainings == []
    assert second.points == first.points
    assert len(points.read_text().splitlines()) == 4

    # A line that got its newline but not all of its text is cut off the same way.
    points.write_bytes(points.read_bytes() + b'{"config_hash": "\n')
    fake = FakeEvaluators().install(monkeypatch)
    assert run_sweep(config(), tmp_path, workers=1).points == first.points
    assert fake.syntheses == [] and len(points.read_text().splitlines()) == 4


def test_a_folder_of_another_config_is_refused(tmp_path, monkeypatch):
    FakeEvaluators().install(monkeypatch)
    run_sweep(config(), tmp_path, workers=1)
    with pytest.raises(RunFolderError, match=r"holds the sweep of another config .*Give a "
                                             r"fresh output folder \(--out\)"):
        run_sweep(config(seed=5), tmp_path, workers=1)
    (tmp_path / "config.json").unlink()
    with pytest.raises(RunFolderError, match=r"has a point of another config .*line 1"):
        run_sweep(config(seed=5), tmp_path, workers=1)


def test_sweep_command_prints_the_front(tmp_path, monkeypatch, capsys):
    FakeEvaluators().install(monkeypatch)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(BASE))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([str(path), "--out", str(tmp_path / "run"), "--workers", "1"])
    assert sweep_command(args.config, out=args.out, workers=args.workers,
                         ray_address=args.ray, progress=False) == 0
    out = capsys.readouterr().out
    assert "4 points evaluated (2 trainings), 0 found done, on this process" in out
    assert "Pareto front, accuracy against LUTs (2 of 4 points)" in out
    assert "exp_bits  pes  accuracy  LUTs" in out
    assert str(tmp_path / "run" / "results.json") in out


def test_workers_must_be_positive(tmp_path):
    with pytest.raises(SweepError, match=r"workers must be an integer >= 1; got 0"):
        run_sweep(config(), tmp_path, workers=0)
    with pytest.raises(SweepError, match=r"workers=2 applies to local runs and to --ray local"):
        run_sweep(config(), tmp_path, workers=2, ray_address="10.0.0.1:6379")


def test_ctrl_c_keeps_the_finished_points_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    fake = FakeEvaluators().install(monkeypatch)
    synthesize = fake.cost

    def interrupted(element, params):
        if len(fake.syntheses) == 2:
            raise KeyboardInterrupt
        return synthesize(element, params)

    monkeypatch.setattr(cost_module, "evaluate_cost", interrupted)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(BASE))
    out = tmp_path / "run"
    assert sweep_command(path, out=out, workers=1, progress=False) == 130
    assert capsys.readouterr().err.startswith(
        f"hilt sweep: interrupted; 2 of 4 points are in {out / POINTS_FILE}: run the same "
        "command again to resume")


# --- Ray ----------------------------------------------------------------------------------


def test_without_ray_installed_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(RayUnavailable, match=r'pip install -e "\.\[ray\]"'):
        run_sweep(config(), tmp_path, ray_address="auto")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_that_does_not_answer_fails_at_once(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason=RAY_EXTRA)
    port = _closed_port()
    with pytest.raises(RayUnavailable, match=rf"no Ray cluster answers at 127.0.0.1:{port} "
                                             r"\(Connection refused"):
        run_sweep(config(), tmp_path, ray_address=f"127.0.0.1:{port}")
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(RayUnavailable, match=rf"at auto = 127.0.0.1:{port}"):
        run_sweep(config(), tmp_path, ray_address="auto")
    # The cluster `ray start` last recorded, stopped since: found and refused at once too.
    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}\n")
    with pytest.raises(RayUnavailable, match=rf"at auto = 127.0.0.1:{port}"):
        run_sweep(config(), tmp_path, ray_address="auto")
    with pytest.raises(RayUnavailable, match=r"--ray must be auto, local, HOST:PORT or "
                                             r"ray://HOST:PORT; got 'nowhere'"):
        run_sweep(config(), tmp_path, ray_address="nowhere")


def _measured(result):
    keys = ("params", "accuracy", "luts", "flip_flops", "dsps", "brams", "carries")
    return [{k: p[k] for k in keys} for p in result.points]


def test_a_real_sweep_gives_the_same_results_locally_and_on_ray(tmp_path):
    ray = pytest.importorskip("ray", reason=RAY_EXTRA)
    real = parse_config(REAL)
    local = run_sweep(real, tmp_path / "local", workers=2)
    assert local.trainings == 2 and local.evaluated == 2
    assert all(0.6 < p["accuracy"] <= 1 and p["luts"] > 0 for p in local.points)
    on_ray = run_sweep(real, tmp_path / "ray", workers=2, ray_address="local")
    assert not ray.is_initialized()  # the instance the sweep started is shut down
    assert on_ray.executor == "Ray (local)"
    assert _measured(on_ray) == _measured(local)
    assert on_ray.front == local.front


def test_a_local_sweep_never_imports_ray():
    code = ("import sys\n"
            "from hilt.host.sweep import accuracy, cost, executors, ray_cluster, report, run\n"
            "from hilt.host.sweep import tasks\n"
            "assert 'ray' not in sys.modules, 'ray imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr

