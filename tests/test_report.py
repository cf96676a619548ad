"""`hilt report`: the pages of real training, sweep and bench folders, the bad folders it
refuses, the page it never leaves half-written, and the page in a headless browser."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import textwrap

import pytest

from hilt.host.bench import run_benchmarks
from hilt.host.cli import main
from hilt.host.report import ReportError, load_run, write_report
from hilt.host.report import plots as plots_module
from hilt.host.report.devices import synapse_response
from hilt.host.sweep import parse_config, run_sweep
from hilt.host.train.run import run_training

CROSSBAR = "golden:icebreaker?pe=synapse&rows=16&cols=74"
OPTICAL = "physical:optical?noise=0.01"
# One number format (one training, one epoch) synthesised as two tiny arrays: the
# one-PE point is on the front, the two-PE point costs more LUTs for the same accuracy.
SWEEP = {"element": "shift", "seed": 1, "epochs": 1,
         "grid": {"exp_bits": [2], "act_width": [4], "hidden": [16], "lanes": [2],
                  "pes": [1, 2]}}
SECTIONS = ("learning-curves", "device-response", "resources", "pareto", "bit-exactness")

# Two benchmarks for `hilt bench`: one writes resource rows (a list of flat records),
# the other regression results, one of them with mismatches, and text that is markup.
BENCHMARKS = {
    "cost": """
        rows = [{"array": "shift", "lanes": 4, "luts": 594, "flip_flops": 193, "dsps": 0,
                 "brams": 2, "fmax_mhz": 31.5, "gops": 0.126},
                {"array": "multiplier", "lanes": 4, "luts": 375, "flip_flops": 257,
                 "dsps": 8, "brams": 4, "fmax_mhz": 27.25, "gops": 0.109},
                {"array": "shift", "lanes": 64, "luts": 9000, "flip_flops": 900, "dsps": 0,
                 "brams": 30, "fmax_mhz": None}]
        print("array <shift> & multiplier: 594 / 375 LUTs")
        """,
    "regression": """
        rows = {"simulators": {"icarus": {"vectors": 248, "values": 1984, "mismatches": 0},
                               "verilator": {"vectors": 248, "values": 1984,
                                             "mismatches": 2}}}
        print("icarus 0 mismatches, verilator 2 mismatches")
        """,
}
SCRIPT = """
import json, sys
{body}
json.dump(rows, open(sys.argv[sys.argv.index("--json") + 1], "w"))
"""


@pytest.fixture(scope="module")
def mfff_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mfff")
    run_training("mfff", out, backends=[OPTICAL], epochs=2, progress=False,
                 overrides={"hidden": "32"})
    return out


@pytest.fixture(scope="module")
def pulse_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pulse")
    run_training("ff-pulse", out, backends=[CROSSBAR], epochs=1, progress=False)
    return out


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    run_sweep(parse_config(SWEEP), out, workers=2, progress=False)
    return out


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    scripts = tmp_path_factory.mktemp("benchmarks")
    for name, body in BENCHMARKS.items():
        (scripts / f"{name}.py").write_text(SCRIPT.format(body=textwrap.dedent(body)))
    out = tmp_path_factory.mktemp("bench")
    run_benchmarks(sorted(BENCHMARKS), out, folder=scripts)
    return out


def _report(run_dir, out, capsys):
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    return out.read_text()


def _self_contained(page):
    """Every image inline, every link an anchor in the page, no script or style sheet."""
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    links = re.findall(r'\bhref="([^"]*)"', page)
    assert all(s.startswith("data:image/png;base64,") for s in sources), sources
    assert all(link.startswith("#") for link in links), links
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", page)
    assert "<script" not in page and "<link" not in page
    return sources


def _row(*cells):
    """The cells of a table row as the page writes them (class attributes ignored)."""
    return r"\s*".join(rf"<td(?: class=\"text\")?>{re.escape(html.escape(str(c)))}</td>"
                       for c in cells)


def test_a_training_run_reports_its_curves_its_physical_layers_and_no_claimed_exactness(
        mfff_run, capsys):
    assert main(["report", str(mfff_run)]) == 0
    page_path = mfff_run / "report" / "index.html"
    assert f"wrote {page_path}" in capsys.readouterr().out
    page = page_path.read_text()
    results = json.loads((mfff_run / "results.json").read_text())
    sources = _self_contained(page)
    assert len(sources) == 3  # learning curves, and the two blocks' optical layers
    for name in ("report-learning-curves.png", "report-device-0.png", "report-device-1.png"):
        png = (mfff_run / "report" / name).read_bytes()
        assert png.startswith(b"\x89PNG")
        assert "data:image/png;base64," + base64.b64encode(png).decode() in sources
    for anchor in ("configuration", *SECTIONS):
        assert f'id="{anchor}"' in page
    assert f"{100 * results['test_accuracy']:.2f}%" in page
    curves = results["curves"]
    for epoch in range(2):
        assert re.search(_row(epoch + 1, f"{curves['train_accuracy'][epoch]:.4f}",
                              f"{curves['test_accuracy'][epoch]:.4f}"), page)
    for backend in results["backends"]:
        assert html.escape(backend["url"]) in page
        assert backend["url"] not in page  # its & is escaped
    assert "--set hidden=32" in page and "--epochs 2" in page
    assert re.search(_row("queries", results["queries"]), page)
    assert "optical system rebuilt as recorded" in page
    assert "records no bit-exactness comparison" in page
    assert "records no resource counts" in page and "records no Pareto front" in page


def test_a_pulse_trained_run_draws_its_cells_from_the_recorded_step_tables(
        pulse_run, tmp_path, capsys):
    page = _report(pulse_run, tmp_path / "index.html", capsys)
    params = json.loads((pulse_run / "results.json").read_text())["backends"][0]["target"][
        "params"]
    assert re.search(_row("up step", *params["up"]), page)
    assert re.search(_row("down step", *params["down"]), page)
    assert len(_self_contained(page)) == 2 and (tmp_path / "report-device-0.png").exists()

    response = synapse_response("cell", params)
    top, split = 2 ** params["state_bits"] - 1, response.potentiation
    assert response.levels[0] == 0
    for before, after in zip(response.levels[:split], response.levels[1:split + 1],
                             strict=True):
        assert after == min(before + params["up"][before], top)
    for before, after in zip(response.levels[split:-1], response.levels[split + 1:],
                             strict=True):
        assert after == max(before - params["down"][before], 0)


def test_a_sweep_report_tables_every_point_and_highlights_the_front(sweep_run, tmp_path,
                                                                    capsys):
    page = _report(sweep_run, tmp_path / "page.html", capsys)
    results = json.loads((sweep_run / "results.json").read_text())
    assert len(_self_contained(page)) == 1 and (tmp_path / "report-pareto.png").exists()
    assert results["pareto_front"] == [0]
    for point in results["points"]:
        assert re.search(_row(point["params"]["pes"], f"{100 * point['accuracy']:.2f}%",
                              point["luts"], point["flip_flops"], point["dsps"],
                              point["brams"], "yes" if point["on_front"] else ""), page)
    highlighted = re.findall(r'<tr class="highlight">(.*?)</tr>', page)
    assert len(highlighted) == 1 and re.search(_row(results["points"][0]["luts"]),
                                               highlighted[0])
    assert "records no bit-exactness comparison" in page
    assert "records no learning curves" in page


def test_a_bench_report_shows_each_table_and_every_recorded_comparison(bench_run, tmp_path,
                                                                       capsys):
    page = _report(bench_run, tmp_path / "index.html", capsys)
    assert "array &lt;shift&gt; &amp; multiplier: 594 / 375 LUTs" in page
    assert "<shift>" not in page
    assert re.search(_row("shift", 4, 594, 193, 0, 2, 31.5), page)
    assert re.search(_row("multiplier", 4, 375, 257, 8, 4, 27.25), page)
    assert "Fmax (MHz)" in page
    assert "cost: throughput at Fmax against LUTs, 2 designs that fit" in page
    assert "2 comparisons recorded, 2 mismatches in all: 1 found differences." in page
    assert re.search(_row("regression.simulators.icarus", "248 vectors, 1984 values", 0,
                          "exact"), page)
    assert re.search(_row("regression.simulators.verilator", "248 vectors, 1984 values", 2,
                          "DIFFERENT"), page)
    assert len(_self_contained(page)) == 1


def _missing(tmp, runs):
    return tmp / "nowhere"


def _file(tmp, runs):
    (tmp / "file.json").write_text("{}")
    return tmp / "file.json"


def _empty(tmp, runs):
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _unfinished(run):
    def make(tmp, runs):
        shutil.copytree(runs[run], tmp / "half", ignore=shutil.ignore_patterns("report"))
        (tmp / "half" / "results.json").unlink()
        return tmp / "half"
    return make


def _results(text):
    def make(tmp, runs):
        (tmp / "run").mkdir()
        (tmp / "run" / "results.json").write_text(text)
        return tmp / "run"
    return make


@pytest.mark.parametrize(("make", "message"), [
    (_missing, r"run folder {path} does not exist; expected a folder with results\.json"),
    (_file, r"{path} is a file, not a run folder; expected a folder with results\.json"),
    (_empty, r"no results in {path}: expected results\.json .* or NAME\.json with "
             r"NAME\.txt \(`hilt bench`\); it is empty"),
    (_unfinished(0),
     r"no results in {path}: .*a training run that has not finished \(no results\.json\)"),
    (_unfinished(1), r"no results in {path}: .*a sweep that has not finished"),
    (_results('{"algorithm": "ff", "curves"'), r"{path}/results\.json is not valid JSON"),
    (_results('{"algorithm": "ff", "config": {}}'),
     r"{path}/results\.json looks like a training run's results but lacks test_accuracy, "
     r"curves"),
    (_results('{"points": []}'), r"{path}/results\.json is neither a training run's"),
    (_results('{"config": {}, "points": [{"luts": 1}], "pareto_front": [0]}'),
     r"the results in {path} are not shaped as hilt writes them \(KeyError: 'params'\)"),
], ids=["missing", "file", "empty", "unfinished-training", "unfinished-sweep", "corrupt",
        "incomplete", "foreign", "malformed"])
def test_a_folder_without_results_is_named_with_what_was_expected(
        tmp_path, capsys, mfff_run, sweep_run, make, message):
    path = make(tmp_path, (mfff_run, sweep_run))
    out = tmp_path / "out" / "index.html"
    assert main(["report", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hilt: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message.format(path=re.escape(str(path))), err), err
    assert not out.exists()
    assert not (path / "report").exists()


def test_a_report_that_fails_leaves_the_earlier_page_as_it_was(mfff_run, tmp_path,
                                                               monkeypatch):
    out = tmp_path / "report" / "index.html"
    write_report(mfff_run, out)
    before = {path.name: path.read_bytes() for path in out.parent.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("the plot failed")

    monkeypatch.setattr(plots_module, "learning_curves", broken)
    with pytest.raises(RuntimeError, match="the plot failed"):
        write_report(mfff_run, out)
    assert {path.name: path.read_bytes() for path in out.parent.iterdir()} == before


@pytest.mark.parametrize("name", ["results.json", "model.pt", "notes.txt"])
def test_a_report_is_an_html_page_and_never_replaces_other_files(mfff_run, tmp_path, capsys,
                                                                 name):
    out = mfff_run / name
    if not out.exists():
        out.write_text("my notes")
    before = out.read_bytes()
    assert main(["report", str(mfff_run), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out}: the report is an HTML page; give a path ending in .html" in err
    assert out.read_bytes() == before


def test_a_report_never_replaces_a_page_it_did_not_write_unless_forced(mfff_run, tmp_path,
                                                                      capsys):
    mine = tmp_path / "mine.html"
    mine.write_text("<html>my own page</html>")
    assert main(["report", str(mfff_run), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert f"{mine} exists and is not a page or plot of hilt report" in err and "--force" in err
    assert mine.read_text() == "<html>my own page</html>"
    plot = tmp_path / "report-learning-curves.png"
    plot.write_bytes(b"my own plot")
    page = tmp_path / "page.html"
    assert main(["report", str(mfff_run), "--out", str(page)]) == 2
    assert f"{plot} exists and is not" in capsys.readouterr().err
    assert plot.read_bytes() == b"my own plot" and not page.exists()
    assert main(["report", str(mfff_run), "--out", str(page), "--force"]) == 0
    assert plot.read_bytes() != b"my own plot"
    assert main(["report", str(mfff_run), "--out", str(page)]) == 0


def test_a_page_that_cannot_be_written_is_an_error_naming_it(mfff_run, tmp_path, capsys):
    (tmp_path / "taken").write_text("a file where the report's folder would go")
    out = tmp_path / "taken" / "index.html"
    assert main(["report", str(mfff_run), "--out", str(out)]) == 2
    assert f"cannot write the report to {out}" in capsys.readouterr().err
    with pytest.raises(ReportError, match="cannot write the report"):
        write_report(mfff_run, out)


def test_folders_are_recognised_by_what_they_hold(mfff_run, sweep_run, bench_run):
    assert load_run(mfff_run).kind == "training"
    assert load_run(sweep_run).kind == "sweep"
    bench = load_run(bench_run)
    assert bench.kind == "bench" and [b.name for b in bench.benchmarks] == sorted(BENCHMARKS)


@pytest.mark.parametrize(("run", "images"), [("mfff_run", 3), ("sweep_run", 1),
                                             ("bench_run", 1)])
def test_the_page_loads_in_a_headless_browser(request, tmp_path, chromium, run, images):
    from playwright.sync_api import sync_playwright

    out = tmp_path / "index.html"
    write_report(request.getfixturevalue(run), out)
    requested = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: requested.append(r.url))
            page.goto(out.as_uri(), wait_until="load")
            loaded = page.evaluate("Array.from(document.images, i => [i.complete, "
                                   "i.naturalWidth, i.naturalHeight])")
            rows = page.evaluate("Array.from(document.querySelectorAll('table'), "
                                 "t => t.tBodies[0].rows.length)")
            sections = page.evaluate("Array.from(document.querySelectorAll('section h2'), "
                                     "h => h.textContent)")
            page.screenshot(path=str(tmp_path / f"{run}.png"), full_page=True)
        finally:
            browser.close()
    assert len(loaded) == images
    assert all(complete and width > 0 and height > 0 for complete, width, height in loaded)
    assert rows and all(count > 0 for count in rows)
    assert {"Learning curves", "Resources", "Pareto front", "Bit-exactness"} <= set(sections)
    assert all(url.startswith(("file:", "data:")) for url in requested), requested
    assert (tmp_path / f"{run}.png").read_bytes().startswith(b"\x89PNG")
