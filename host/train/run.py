"""One training run from the command line's choices, with its results written to a folder.

``hilt train`` picks an algorithm, the backends it trains against (one per block for
the model-free algorithms), the epochs, the seed and any field of the algorithm's config
(``--set NAME=VALUE``), and :func:`run_training` writes
``curves.png`` (learning curves) and ``results.json`` (accuracy, physical queries,
digital multiply-accumulates, seconds, the curves, what each backend is) into the output
folder, with the trained digital parameters in ``model.pt`` (a torch state dict).
They are written beside the folder's files and moved into place only when the run has
finished, ``results.json`` last, so a folder that has one holds a finished run and a run
that fails or is interrupted leaves an earlier run's files as they were. Checkpoints go
to ``checkpoints/`` under it and are removed once the run has finished.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints
from urllib.parse import parse_qsl

import torch

from hilt.host.backends import Backend, BackendError, check_backend, open_backend
from hilt.host.backends.board_layer import as_layer
from hilt.host.output_folder import OutputError, Staging, claim
from hilt.host.protocol import spec
from hilt.host.train import TRAINERS
from hilt.host.train.curves import plot_curves
from hilt.host.train.goodness import LabelLayout
from hilt.quant.datasets import Dataset, load_dataset

PULSE_BACKEND = "golden:icebreaker?pe=synapse&rows=64&cols={cols}"
"""The crossbar ``ff-pulse`` trains without ``--backend``: one layer of 64 rows of the
iCEBreaker's 4-bit cells, in its golden twin, as wide as the data set's features and
classes (:func:`pulse_backend`)."""
FRAME_PAYLOAD = 256
"""The firmware's default largest payload; a wider crossbar's board is built with more."""
PHYSICAL_OUT = 256
"""Outputs of a ``physical:`` layer whose URL does not say ``out=``."""


def pulse_backend(cols: int) -> str:
    """The default crossbar URL of ``ff-pulse`` for ``cols`` inputs: frames large enough
    for a WRITE of a row of levels (two bytes a column after the WRITE header) where 256
    bytes are not."""
    url = PULSE_BACKEND.format(cols=cols)
    row = 2 * cols + struct.calcsize(spec.WRITE_FORMAT)
    if row <= FRAME_PAYLOAD:
        return url
    payload = min(spec.MAX_PAYLOAD_CEILING, 1 << math.ceil(math.log2(row)))
    return f"{url}&max_payload={payload}"


def block_urls(urls: Sequence[str], blocks: int, hidden: int, layout: LabelLayout,
               label_path: str = "physical") -> list[str | None]:
    """One backend URL per block: one given URL serves every block; ``none`` is a block
    without a physical layer; a ``physical:`` URL gets the width its block measures
    (``in=``, from ``layout`` and ``label_path`` for block 0) and ``out=256`` unless it
    says otherwise. Blocks with the same board URL share that one board (see
    :func:`open_layers`)."""
    from hilt.host.train.blocks import physical_width

    if len(urls) not in (1, blocks):
        raise BackendError(f"give one --backend for every block or one for all {blocks}, "
                           f"got {len(urls)}")
    chosen = list(urls) * blocks if len(urls) == 1 else list(urls)
    result: list[str | None] = []
    for block, url in enumerate(chosen):
        if url == "none":
            result.append(None)
            continue
        if url.startswith("physical:"):
            # Only appended to: a malformed or repeated option is left for open_backend
            # to refuse, naming it.
            base, _, query = url.partition("?")
            given = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
            added = [f"{name}={value}" for name, value in (
                ("in", physical_width(block, hidden, layout, label_path)), ("out", PHYSICAL_OUT))
                if name not in given]
            url = base + "?" + "&".join([part for part in (query, *added) if part])
        result.append(url)
    return result


def open_layers(urls: Sequence[str | None], seed: int = 0) -> list[Backend | None]:
    """The physical layer of every block: each distinct URL opened once, a board's element
    as a :class:`~hilt.host.backends.board_layer.BoardLayer` with the random configuration
    of ``seed``; None stays None. What was opened is closed again if one fails."""
    opened: dict[str, Backend] = {}
    try:
        for url in urls:
            if url is not None and url not in opened:
                backend = open_backend(url)
                opened[url] = backend  # closed below if the wrapping fails
                opened[url] = as_layer(backend, seed)
    except BaseException:
        close_layers(opened.values())
        raise
    return [None if url is None else opened[url] for url in urls]


def close_layers(layers: Sequence[Backend | None]) -> None:
    """Close every distinct backend in ``layers`` once."""
    for backend in {id(b): b for b in layers if b is not None}.values():
        backend.close()


def _convert(text: str, hint: Any) -> Any:
    """``text`` as a value of the type ``hint`` (bool, int, float, str, a tuple of ints,
    or one of them or None); ValueError if it is not one."""
    options = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    if type(None) in options and text.lower() == "none":
        return None
    kind = next(option for option in options if option is not type(None))
    if get_origin(kind) is tuple:
        return tuple(int(part) for part in text.split(","))
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    return kind(text)


def configure(config: Any, overrides: Mapping[str, str]) -> Any:
    """``config`` (a dataclass) with fields replaced by the texts in ``overrides``, each
    converted to the field's type (a tuple as ``256,256``, None as ``none``); an unknown
    name or a text that does not convert is a ValueError naming it and what is accepted."""
    hints = get_type_hints(type(config))
    names = [field.name for field in fields(config)]
    changes: dict[str, Any] = {}
    for name, text in overrides.items():
        if name not in names:
            raise ValueError(f"--set {name}: {type(config).__name__} has no such field; "
                             f"accepted: {', '.join(names)}")
        try:
            changes[name] = _convert(text, hints[name])
        except ValueError:
            hint = hints[name]
            raise ValueError(f"--set {name}={text!r}: accepted a value of type "
                             f"{getattr(hint, '__name__', hint)}") from None
    try:
        return replace(config, **changes)
    except ValueError as error:
        raise ValueError(f"--set: {error}") from None


def _setting(name: str, option: int | None, overrides: dict[str, str]) -> None:
    """Put ``--NAME`` into ``overrides``, refusing a ``--set NAME=...`` that says otherwise."""
    if option is None:
        return
    given = overrides.get(name)
    if given is not None and not _equals(given, option):
        raise ValueError(f"--{name} {option} and --set {name}={given} disagree; give one of "
                         f"them")
    overrides[name] = str(option)


def _equals(text: str, value: int) -> bool:
    try:
        return int(text) == value
    except ValueError:
        return False


def trainer_module(algorithm: str) -> Any:
    """The module that holds ``algorithm``'s trainer (:data:`~hilt.host.train.TRAINERS`)."""
    return importlib.import_module(TRAINERS[algorithm].module)


def dataset_defaults(algorithm: str, dataset: str | None) -> dict[str, Any]:
    """The fields whose default ``algorithm`` sets apart for ``dataset`` (its module's
    ``DATASET_DEFAULTS``, chosen by validation on that data set's training part)."""
    return dict(getattr(trainer_module(algorithm), "DATASET_DEFAULTS", {}).get(dataset, {}))


def default_config(algorithm: str, dataset: str | None = None) -> Any:
    """The tuned default config of ``algorithm``, for ``dataset`` where its defaults differ."""
    config_class = getattr(trainer_module(algorithm), TRAINERS[algorithm].config)
    return config_class(**dataset_defaults(algorithm, dataset))


def checkpoint_path(out: str | Path) -> Path:
    """Where a run in ``out`` keeps its checkpoint."""
    from hilt.host.train.mfff import CHECKPOINT_NAME

    return Path(out) / "checkpoints" / CHECKPOINT_NAME


def _pulse_ff(train: Callable[..., Any], split: Dataset, urls: Sequence[str], config: Any,
              progress: bool, record: dict[str, Any]) -> tuple[Any, dict[str, torch.Tensor]]:
    """A pulse-trained run on the crossbars ``urls`` (one a layer); its result and the
    levels read back from the crossbars at the end."""
    layers: list[Backend] = []
    try:
        for url in urls:
            layers.append(open_backend(url))
        result = train(split, layers, config, progress=progress)
        state = {f"layers.{i}.{name}": torch.as_tensor(levels)
                 for i, layer in enumerate(layers)
                 for name, levels in layer.read_state().items()}
        record["backends"] = [layer.describe() for layer in layers]
    finally:
        close_layers(layers)
    cost = result.cost
    record.update({"pulses": cost.pulses, "potentiation": cost.potentiation,
                   "depression": cost.depression, "slots": cost.slots,
                   "updates": cost.updates, "refresh_reads": cost.reads,
                   "refresh_writes": cost.writes, "refreshes": cost.refreshes,
                   "samples_per_second": round(result.samples_per_second, 2)})
    return result, state


def _physical(train: Callable[..., Any], split: Dataset, urls: Sequence[str | None],
              config: Any, progress: bool, record: dict[str, Any],
              **checkpointing: Any) -> Any:
    """A run through the physical layers ``urls`` (one a block, from :func:`block_urls`);
    ``checkpointing`` goes to a trainer that writes checkpoints."""
    physical = open_layers(urls, config.seed)
    try:
        record["backends"] = [None if b is None else b.describe() for b in physical]
        result = train(split, physical, config, progress=progress, **checkpointing)
    finally:
        close_layers(physical)
    record.update({name: getattr(result, name) for name in (
        "queries", "queries_per_sample", "train_macs_per_sample", "inference_macs",
        "inference_queries")})
    if hasattr(result, "samples_per_second"):
        record["samples_per_second"] = round(result.samples_per_second, 2)
    return result


def run_training(algorithm: str, out: str | Path, *, backends: Sequence[str] = (),
                 dataset: str = "digits", data_dir: str | Path | None = None,
                 epochs: int | None = None, seed: int | None = None,
                 checkpoint_every: int | None = None, resume: bool = False,
                 progress: bool = True, overrides: Mapping[str, str] | None = None,
                 force: bool = False,
                 extra: Callable[[Any, Dataset], Mapping[str, Any]] | None = None
                 ) -> dict[str, Any]:
    """Train ``algorithm`` and write its results into ``out``; the results.

    ``dataset`` names the data set (:func:`~hilt.quant.datasets.load_dataset`, with
    ``data_dir`` the folder of a folder data set). ``overrides`` set fields of the
    algorithm's config by name, from text (see :func:`configure`); ``epochs`` and ``seed``
    set the same fields and must agree with them where both are given. Everything is
    checked, the data set loaded, and ``out`` claimed
    (:func:`~hilt.host.output_folder.claim`), before training starts; the results replace
    an earlier run's only once this one has finished, and its checkpoint is then removed.
    ``extra``, called with the config and the data set once training has finished,
    gives more entries for the results (a baseline run beside this one, say).

    Raises
    ------
    ValueError
        An unknown algorithm or config field, a value a field does not take,
        ``epochs`` or ``seed`` against ``overrides``, or backends given to a digital
        algorithm.
    DatasetError
        A data set that cannot be loaded (an unknown name, a missing or malformed file).
    OutputError
        ``out`` holds another kind of run, cannot be written, or holds the checkpoint of
        an unfinished run while neither ``resume`` nor ``force`` is given.
    BackendError
        A backend URL that does not open, or a backend that does not fit the network.
    CheckpointError
        ``resume`` found a damaged checkpoint or one from another run.
    """
    if algorithm not in TRAINERS:
        raise ValueError(f"algorithm must be one of {', '.join(TRAINERS)}, got {algorithm!r}")
    trainer = TRAINERS[algorithm]
    if backends and trainer.backends == "none":
        through = [name for name, row in TRAINERS.items() if row.backends != "none"]
        raise ValueError(f"{algorithm} trains digital layers in-process; --backend is for "
                         f"{', '.join(through)}")
    if (checkpoint_every is not None or resume) and not trainer.checkpoints:
        writers = [name for name, row in TRAINERS.items() if row.checkpoints]
        raise ValueError(f"checkpoints are written by the {', '.join(writers)} trainer only")
    settings = dict(overrides or {})
    _setting("epochs", epochs, settings)
    _setting("seed", seed, settings)
    config = configure(default_config(algorithm, dataset), settings)
    split = load_dataset(dataset, data_dir, config.seed)
    if trainer.backends == "blocks":
        urls: list[str | None] = block_urls(backends or ["physical:optical"], config.blocks,
                                            config.hidden, LabelLayout.of(split, config.label),
                                            config.label_route())
    elif trainer.backends == "layers":
        urls = list(backends or [pulse_backend(split.features + split.classes)])
    else:
        urls = []
    for url in dict.fromkeys(url for url in urls if url is not None):
        check_backend(url)
    out = claim(out, "train", force=force)
    checkpoint = checkpoint_path(out)
    if checkpoint.exists() and not resume and not force:
        raise OutputError(f"{out} holds the checkpoint of an unfinished run ({checkpoint}); "
                          f"add --resume to continue it, or --force to start afresh and "
                          f"replace it")
    record: dict[str, Any] = {"algorithm": algorithm, "dataset": dataset,
                              "data": split.describe(), "seed": config.seed,
                              "dataset_defaults": {
                                  name: value for name, value
                                  in dataset_defaults(algorithm, dataset).items()
                                  if name not in settings}}
    train = getattr(trainer_module(algorithm), trainer.train)
    with Staging(out) as stage:
        state = None
        if trainer.backends == "none":
            result = train(split, config, progress=progress)
        elif trainer.backends == "layers":
            result, state = _pulse_ff(train, split, urls, config, progress, record)
        else:
            checkpointing = {"checkpoint_dir": checkpoint.parent,
                             "checkpoint_every": checkpoint_every,
                             "resume": resume} if trainer.checkpoints else {}
            result = _physical(train, split, urls, config, progress, record, **checkpointing)
        record.update({"config": asdict(config), "test_accuracy": result.test_accuracy,
                       "seconds": round(result.seconds, 2), "curves": asdict(result.curves)})
        if extra is not None:
            record.update(extra(config, split))
        plot_curves(result.curves, f"{algorithm} on {dataset}", stage.path / "curves.png")
        record["plot"] = str(stage.final("curves.png"))
        record["model"] = str(stage.final("model.pt"))
        if state is None:
            state = result.net.state_dict()
        torch.save(state, stage.path / "model.pt")
        (stage.path / "results.json").write_text(json.dumps(record, indent=2, default=str))
    if trainer.checkpoints:
        # The run it belonged to has finished.
        checkpoint.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            checkpoint.parent.rmdir()
    return record
