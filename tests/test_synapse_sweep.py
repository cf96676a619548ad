"""The synapse sweep: its grid, its devices, and the three files a quick run writes."""

import json
import math

import pytest
import torch

from hilt.host.cli import main
from hilt.host.synapse_sweep import (
    ASYMMETRY_2_5X,
    RULES,
    DeviceSetting,
    run_sweep,
    sweep_grid,
)
from hilt.quant.synapse_device import ExponentialDevice, LinearDevice, SoftBoundsDevice


def test_the_full_grid_varies_one_factor_at_a_time_around_the_reference():
    grid = sweep_grid()
    reference = grid[0]
    assert (reference.response, reference.levels, reference.dtod, reference.up_down) == (
        "linear", 64, 0.0, 0.0)
    allowed = {"response": {"response", "up_down"}, "levels": {"levels"},
               "variation": {"dtod", "response"}}
    for setting in grid[1:]:
        changed = {name for name in ("response", "levels", "dtod", "up_down")
                   if getattr(setting, name) != getattr(reference, name)}
        assert changed and changed <= allowed[setting.factor], setting
    headline = {(s.response, s.up_down) for s in grid if s.headline}
    assert headline == {("soft-bounds", 0.0), ("linear", ASYMMETRY_2_5X)}
    assert {s.levels for s in grid} == {16, 64, 256}
    assert {s.dtod for s in grid} == {0.0, 0.1, 0.3}
    assert len(set(grid)) == len(grid)


def test_settings_build_the_devices_they_name():
    asym = DeviceSetting("response", "linear", up_down=ASYMMETRY_2_5X).build()
    assert isinstance(asym, LinearDevice) and asym.dw_min == 1 / 64
    up = float(asym.nominal_potentiate(torch.zeros(1, dtype=torch.float64), 1))
    down = 0.5 - float(asym.nominal_depress(torch.full((1,), 0.5, dtype=torch.float64), 1))
    assert up / down == pytest.approx(2.5)
    soft = DeviceSetting("levels", "soft-bounds", levels=16, dtod=0.3).build()
    assert isinstance(soft, SoftBoundsDevice) and soft.dw_min == 1 / 16
    assert soft.dw_min_dtod == 0.3
    exp = DeviceSetting("response", "exponential", levels=32).build()
    assert isinstance(exp, ExponentialDevice)
    start = torch.zeros(2, dtype=torch.float64)
    reached = exp.nominal_potentiate(start, torch.tensor([31, 32]))
    assert reached[0] < 1.0 and reached[1] == pytest.approx(1.0)
    assert DeviceSetting("response", "exponential").label.startswith("exponential nl 3")
    assert "up 2.5x" in DeviceSetting("response", "linear", up_down=ASYMMETRY_2_5X).label


def test_quick_sweep_writes_the_table_the_plot_and_the_json(tmp_path, capsys):
    assert main(["synapse-sweep", "--out", str(tmp_path), "--quick", "--seed", "1",
                 "--epochs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    grid = sweep_grid(quick=True)
    runs = 1 + len(grid) * len(RULES)
    assert [line.split("]")[0] for line in lines[:runs]] == [
        f"[{k}/{runs}" for k in range(1, runs + 1)]
    assert lines[0].startswith(f"[1/{runs}] float baseline: ")

    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["seed"] == 1 and data["config"]["epochs"] == 1
    rows = data["rows"]
    assert [(r["label"], r["rule"]) for r in rows] == [
        (s.label, rule) for s in grid for rule in RULES]
    for row in rows:
        assert row["float_accuracy"] == data["float"]["accuracy"]
        assert math.isclose(row["gap_points"], 100 * (row["float_accuracy"] - row["accuracy"]))
        assert 0.0 <= row["accuracy"] <= 1.0 and len(row["curve"]) == 1
        assert row["stats"]["potentiation"] + row["stats"]["depression"] > 0
    plain = [r for r in rows if r["rule"] == "plain SGD"]
    assert all(r["stats"]["depression"] > 0 for r in plain)
    assert all(r["stats"]["depression"] == 0 for r in rows if r["rule"] != "plain SGD")

    table = (tmp_path / "sweep.md").read_text()
    table_rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert table_rows[0].startswith("| device setting | factor | rule | accuracy | float | gap |")
    assert len(table_rows) == 1 + len(rows)
    for line, row in zip(table_rows[1:], rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0].strip("*") == row["label"] and cells[2] == row["rule"]
        assert cells[3] == f"{100 * row['accuracy']:.1f}%"
        assert cells[5] == f"{row['gap_points']:.1f}"
    assert "points of float" in table or "target" in table

    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_sweep_returns_what_it_wrote(tmp_path):
    seen = []
    result = run_sweep(tmp_path / "out", quick=True, epochs=1, progress=seen.append)
    assert sorted(result.files) == ["json", "markdown", "plot"]
    assert all(path.exists() for path in result.files.values())
    assert len(result.rows) == len(sweep_grid(quick=True)) * len(RULES)
    verdicts = result.verdicts()
    assert len(verdicts) == 1 and "soft-bounds" in verdicts[0]
    assert seen[-1] == verdicts[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -2}, "seed must be an integer >= 0, got -2"),
        ({"epochs": 0}, "epochs must be an integer >= 1 or None, got 0"),
        ({"workers": 0}, "workers must be an integer >= 1 or None, got 0"),
    ],
)
def test_bad_sweep_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_sweep(tmp_path, quick=True, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"response": "quadratic"}, "response must be one of"),
        ({"response": "linear", "levels": 1}, "levels must be an integer >= 2, got 1"),
    ],
)
def test_bad_device_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeviceSetting("levels", **kwargs)


def test_cli_refuses_zero_epochs(tmp_path, capsys):
    assert main(["synapse-sweep", "--out", str(tmp_path), "--quick", "--epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --epochs: 0 is out of range" in err
    assert not (tmp_path / "sweep.json").exists()
