"""The report's sections, each drawn from what the run folder recorded.

Every kind of folder gets the same core sections in the same order (learning curves,
device response, resources, Pareto front, bit-exactness), so that a reader always
finds the same headings; a section whose data the folder does not hold says so in one
line rather than disappearing. Plots come back as :class:`~.html.Image` objects, which
the caller both embeds and writes beside the page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from . import html, plots
from .devices import PhysicalResponse, SynapseResponse, device_responses
from .exactness import Comparison, find_comparisons
from .folder import Run
from .records import cell, record_tables, resource_table, with_resources

Images = list[html.Image]


def _nothing(run: Run, what: str) -> str:
    kinds = {"training": "a training run", "sweep": "a sweep", "bench": "a benchmark folder"}
    return html.para(f"This folder ({kinds[run.kind]}) records no {what}.", "note")


def configuration(run: Run, images: Images) -> str:
    """The config a training run or a sweep ran with, and a training run's backends."""
    results = run.results
    if run.kind == "sweep":
        grid = results["config"].get("grid", {})
        rest = {k: v for k, v in results["config"].items() if k != "grid"}
        return html.row(
            html.table(["parameter", "values"], [[k, cell(v)] for k, v in grid.items()],
                       caption="grid"),
            html.table(["setting", "value"], [[k, cell(v)] for k, v in rest.items()],
                       caption="settings"))
    tables = [html.table(["field", "value"],
                         [[k, cell(v)] for k, v in results["config"].items()],
                         caption=f"{results['algorithm']} config")]
    counters = [(k, results[k]) for k in (
        "queries", "queries_per_sample", "train_macs_per_sample", "inference_macs",
        "inference_queries", "samples_per_second", "pulses", "potentiation", "depression",
        "slots", "updates", "refresh_reads", "refresh_writes", "refreshes") if k in results]
    if counters:
        tables.append(html.table(["counter", "value"], [[k, cell(v)] for k, v in counters],
                                 caption="what the run asked of its backends"))
    body = html.row(*tables)
    backends = results.get("backends") or []
    if backends:
        rows = [[i, "none", "-", "-", "-"] if b is None else
                [i, b.get("url", "-"), b.get("kind", "-"), cell(b.get("in_features")),
                 cell(b.get("out_features"))] for i, b in enumerate(backends)]
        unit = "layer" if results["algorithm"] == "ff-pulse" else "block"
        body += html.table([unit, "URL", "kind", "inputs", "outputs"], rows,
                           caption="backends")
    return body


def _loss(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.4f}"


def learning_curves(run: Run, images: Images) -> str:
    """Train and test accuracy and the local losses per epoch (``results.json`` curves)."""
    if run.kind != "training":
        detail = (" (a sweep records each point's final accuracy only)"
                  if run.kind == "sweep" else "")
        return _nothing(run, "learning curves" + detail)
    curves, results = run.results["curves"], run.results
    image = html.Image("report-learning-curves.png",
                       plots.learning_curves(curves, f"{results['algorithm']} on "
                                                     f"{results.get('dataset', 'digits')}"))
    images.append(image)
    parts = len(curves["loss"][0]) if curves["loss"] else 0
    rows = [[epoch + 1, f"{train:.4f}", f"{test:.4f}",
             *(_loss(loss[part]) for part in range(parts))]
            for epoch, (train, test, loss) in enumerate(zip(
                curves["train_accuracy"], curves["test_accuracy"], curves["loss"],
                strict=True))]
    headers = ["epoch", "train accuracy", "test accuracy",
               *(f"loss, part {part}" for part in range(parts))]
    return (html.figure(image, "Accuracy and local losses per epoch, from results.json")
            + html.table(headers, rows, caption="per epoch")
            + html.para(f"Final test accuracy {results['test_accuracy']:.4f}."))


def _synapse(response: SynapseResponse, name: str, images: Images) -> str:
    image = html.Image(name, plots.synapse(response))
    images.append(image)
    noise = (f"; its {response.noise_bits}-bit cycle-to-cycle noise is not drawn"
             if response.noise_bits else "")
    caption = (f"{response.label}: level of one cell after each pulse, {response.potentiation} "
               f"potentiation pulses from level 0 then {response.potentiation} depression "
               f"pulses, stepped by the golden model through the recorded step tables{noise}")
    return (html.figure(image, caption)
            + html.table(["level", *range(len(response.up))],
                         [["up step", *response.up], ["down step", *response.down]],
                         caption=f"step tables of {response.label}"))


def _physical(response: PhysicalResponse, name: str, images: Images) -> str:
    image = html.Image(name, plots.physical(response))
    images.append(image)
    system = response.system
    settings = ", ".join(f"{k}={cell(v)}" for k, v in system.items()
                         if k not in ("system", "in_features", "out_features"))
    caption = (f"{response.label}: noiseless readings of outputs 0 to "
               f"{len(response.outputs) - 1} as input 0 sweeps {response.drive[0]:g} to "
               f"{response.drive[-1]:g} with every other input at 0, from the "
               f"{system['system']} system rebuilt as recorded ({settings}), as constructed"
               + (f"; band: the run's relative reading noise of {response.noise:g}"
                  if response.noise else ""))
    return html.figure(image, caption)


def device_response(run: Run, images: Images) -> str:
    """The response of each device or physical layer a training run trained against."""
    if run.kind != "training":
        return _nothing(run, "device or physical-layer backend")
    backends = run.results.get("backends") or []
    if not any(backends):
        return html.para(f"{run.results['algorithm']} trained digital layers in-process: no "
                         f"device or physical backend to draw.", "note")
    unit = "layer" if run.results["algorithm"] == "ff-pulse" else "block"
    responses, notes = device_responses(backends, unit)
    parts = []
    for index, response in enumerate(responses):
        name = f"report-device-{index}.png"
        if isinstance(response, SynapseResponse):
            parts.append(_synapse(response, name, images))
        else:
            parts.append(_physical(response, name, images))
    return "".join(parts) + "".join(html.para(note, "note") for note in notes)


def _varying(points: list[dict[str, Any]]) -> list[str]:
    names = list(points[0]["params"]) if points else []
    return [n for n in names if len({json.dumps(p["params"][n]) for p in points}) > 1]


def _sweep_rows(points: list[dict[str, Any]], indices: list[int]
                ) -> tuple[list[str], list[list[str]]]:
    names = _varying(points)
    records = [{**points[i]["params"], **{k: v for k, v in points[i].items() if k != "params"},
                "accuracy": f"{100 * points[i]['accuracy']:.2f}%"} for i in indices]
    return resource_table(records, [*names, "accuracy"], [*names, "accuracy"])


def resources(run: Run, images: Images) -> str:
    """LUTs, FFs, DSPs, BRAMs and Fmax: a sweep's points, a benchmark's resource rows."""
    if run.kind == "sweep":
        points = run.results["points"]
        headers, rows = _sweep_rows(points, list(range(len(points))))
        front = set(run.results["pareto_front"])
        on_front = [i in front for i in range(len(points))]
        rows = [[*row, "yes" if chosen else ""] for row, chosen in zip(rows, on_front,
                                                                        strict=True)]
        return (html.table([*headers, "on front"], rows,
                           caption="every point (Pareto front highlighted)",
                           highlight=on_front)
                + html.para("Resources: Yosys, out of context, per point; accuracy: the "
                            "integer golden model on the held-out digits.", "note"))
    parts = []
    for bench in run.benchmarks:
        for table in record_tables(bench.data):
            if table.records and with_resources(table.records):
                headers, rows = resource_table(table.records)
                title = f"{bench.name}: {table.title}" if table.title else bench.name
                parts.append(_throughput(table.records, title, images)
                             + html.table(headers, rows, caption=title))
    return "".join(parts) or _nothing(run, "resource counts (LUTs, FFs, DSPs, BRAMs, Fmax)")


THROUGHPUT_GROUPS = ("device", "element", "array", "width")
"""Fields of a benchmark row that, where present, name the series it belongs to."""


def _throughput(records: tuple[dict[str, Any], ...], title: str, images: Images) -> str:
    """A throughput-against-LUTs plot of the rows that were placed and timed, if any."""
    timed = [r for r in records if isinstance(r.get("gops"), int | float)
             and isinstance(r.get("luts"), int | float) and r["luts"] > 0]
    if not timed:
        return ""
    groups = [" ".join(f"{r[k]}" + ("-bit" if k == "width" else "")
                       for k in THROUGHPUT_GROUPS if k in r) for r in timed]
    name = "report-throughput-" + "".join(c if c.isalnum() else "-" for c in title) + ".png"
    image = html.Image(name, plots.throughput(timed, groups))
    images.append(image)
    return html.figure(image, f"{title}: throughput at Fmax against LUTs, {len(timed)} "
                              f"designs that fit, one line per {'/'.join(THROUGHPUT_GROUPS)}")


def pareto_front(run: Run, images: Images) -> str:
    """A sweep's accuracy against LUTs, the front highlighted, and the front's table."""
    if run.kind != "sweep":
        return _nothing(run, "Pareto front (only `hilt sweep` records one)")
    points, front = run.results["points"], list(run.results["pareto_front"])
    names = [n for n in _varying(points) if n != "family"]
    labels = [" ".join(f"{n}={cell(p['params'][n])}" for n in names) for p in points]
    groups = [str(p["params"].get("family", "")) for p in points]
    image = html.Image("report-pareto.png", plots.pareto(points, front, labels, groups))
    images.append(image)
    headers, rows = _sweep_rows(points, sorted(front, key=lambda i: points[i]["luts"]))
    return (html.figure(image, f"Accuracy against LUTs, {len(points)} points; the "
                               f"{len(front)} on the Pareto front circled and labelled")
            + html.table(headers, rows, caption="the Pareto front, by LUTs"))


def _comparisons(run: Run) -> list[Comparison]:
    if run.kind == "bench":
        return [c for b in run.benchmarks for c in find_comparisons(b.data, b.name)]
    return find_comparisons(run.results, "results.json")


def bit_exactness(run: Run, images: Images) -> str:
    """Every recorded comparison against the golden model, or a plain statement that
    there is none."""
    found = _comparisons(run)
    if not found:
        source = ("results.json" if run.kind != "bench"
                  else "the benchmarks' JSON (" + ", ".join(f"{b.name}.json"
                                                            for b in run.benchmarks) + ")")
        return html.para(f"This folder records no bit-exactness comparison: {source} holds "
                         f"no mismatch count and no golden-versus-RTL or co-simulation "
                         f"verdict. Nothing in this report claims that hardware matched its "
                         f"golden model.", "verdict")
    different = [c for c in found if not c.exact]
    mismatches = sum(c.mismatches or 0 for c in found)
    verdict = (f"{len(found)} comparison{'s' if len(found) != 1 else ''} recorded, "
               f"{mismatches} mismatches in all: "
               + (f"{len(different)} found differences." if different
                  else "every one exact."))
    rows = [[c.where, c.compared, "-" if c.mismatches is None else c.mismatches,
             "exact" if c.exact else "DIFFERENT"] for c in found]
    return (html.para(verdict, "verdict bad" if different else "verdict")
            + html.table(["where", "compared", "mismatches", "result"], rows,
                         highlight=[not c.exact for c in found]))


def benchmarks(run: Run, images: Images) -> str:
    """Each benchmark's printed table and the tables of its JSON."""
    parts = []
    for bench in run.benchmarks:
        parts.append(html.heading(bench.name))
        parts.append(html.para(f"finished {bench.finished:%Y-%m-%d %H:%M:%S %Z}; "
                               f"{bench.name}.txt:", "note"))
        parts.append(html.pre(bench.table))
        tables = record_tables(bench.data)
        for table in tables:
            caption = f"{bench.name}.json" + (f": {table.title}" if table.title else "")
            parts.append(html.table(table.headers, table.rows, caption=caption))
        if not tables:
            parts.append(html.para(f"{bench.name}.json holds no table of records.", "note"))
    return "".join(parts)


SECTIONS: tuple[tuple[str, str, Callable[[Run, Images], str], tuple[str, ...]], ...] = (
    ("configuration", "Configuration", configuration, ("training", "sweep")),
    ("learning-curves", "Learning curves", learning_curves, ("training", "sweep", "bench")),
    ("device-response", "Device response", device_response, ("training", "sweep", "bench")),
    ("resources", "Resources", resources, ("training", "sweep", "bench")),
    ("pareto", "Pareto front", pareto_front, ("training", "sweep", "bench")),
    ("bit-exactness", "Bit-exactness", bit_exactness, ("training", "sweep", "bench")),
    ("benchmarks", "Benchmarks", benchmarks, ("bench",)),
)
"""Anchor, title, builder and the kinds of folder that get it, in page order."""


def build_sections(run: Run) -> tuple[list[html.Section], Images]:
    """The sections of ``run``'s page, and the plots they embed."""
    images: Images = []
    sections = [html.Section(anchor, title, build(run, images))
                for anchor, title, build, kinds in SECTIONS if run.kind in kinds]
    return sections, images
