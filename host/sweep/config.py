"""A sweep's config: which element, which FPGA family, and the grid of parameters.

The config is a TOML (read with the standard library's ``tomllib``) or JSON file::

    element = "shift"          # shift | multiplier | binary
    family = "ice40"           # or a list of families
    seed = 0
    epochs = 10
    [grid]
    exp_bits = [2, 3]
    act_width = [4, 8]
    pes = [2, 4]

:func:`parse_config` validates all of it before any work starts, each grid point
included (the hardware's own parameter checks run on every point, without synthesis),
so a typo costs a line of error and not half a sweep. Parameters the grid leaves out take
their defaults, and the normalised config (defaults filled in) is what the run folder
records and what :attr:`SweepConfig.hash` hashes, so writing a default out changes
nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .elements import ELEMENTS, Element
from .errors import SweepConfigError

DEFAULT_FAMILY = "ice40"
DEFAULT_SEED = 0
DEFAULT_EPOCHS = 10

_TOP_LEVEL = ("element", "family", "seed", "epochs", "grid")

_Fail = Callable[[str], SweepConfigError]


@dataclass(frozen=True)
class SweepConfig:
    """A validated, normalised sweep config.

    Attributes
    ----------
    element : str
        A key of :data:`~hilt.host.sweep.elements.ELEMENTS`.
    families : tuple of str
        FPGA families to synthesise every point for.
    seed : int
        Seed of the data split, the initial weights and the data order of every
        training; the same for every point, so that two points differ by their
        parameters and not by their draw.
    epochs : int
        Training epochs of every accuracy evaluation.
    grid : dict of str to tuple
        Every parameter of the element, in the element's order, with the values to
        sweep (defaults filled in).
    """

    element: str
    families: tuple[str, ...]
    seed: int
    epochs: int
    grid: Mapping[str, tuple]

    @property
    def spec(self) -> Element:
        """The element's definition."""
        return ELEMENTS[self.element]

    def as_json(self) -> dict[str, Any]:
        """The config as plain JSON data; :func:`parse_config` reads it back unchanged."""
        return {"element": self.element, "family": list(self.families), "seed": self.seed,
                "epochs": self.epochs, "grid": {k: list(v) for k, v in self.grid.items()}}

    @property
    def hash(self) -> str:
        """A short hash of the normalised config: equal configs, equal hashes."""
        text = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def points(self) -> list[dict[str, Any]]:
        """Every grid point as ``{"family": ..., parameter: value, ...}``, in grid order."""
        names = list(self.grid)
        return [{"family": family, **dict(zip(names, values, strict=True))}
                for family in self.families
                for values in itertools.product(*self.grid.values())]


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep config from a ``.toml`` or ``.json`` file."""
    path = Path(path)
    if path.suffix not in (".toml", ".json"):
        raise SweepConfigError(f"config {str(path)!r}: the file name must end in .toml or "
                               f".json, got {path.suffix or 'no suffix'!r}")
    try:
        raw = path.read_bytes()
    except OSError as error:
        message = f"config {str(path)!r} cannot be read: {error.strerror}"
        raise SweepConfigError(message) from None
    try:
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise SweepConfigError(f"config {str(path)!r} is not valid "
                               f"{path.suffix[1:].upper()}: {error}") from None
    except RecursionError:
        raise SweepConfigError(f"config {str(path)!r} nests too deep to be read") from None
    return parse_config(data, source=str(path))


def parse_config(data: object, source: str = "config") -> SweepConfig:
    """Validate config data (as a TOML or JSON file holds it) and fill in the defaults.

    Raises
    ------
    SweepConfigError
        Naming the key, the value and what would be accepted, for an unknown key or
        element or family, a value of the wrong type or out of range, an empty grid or
        value list, a repeated value, or a grid point the hardware refuses.
    """
    def fail(message: str) -> SweepConfigError:
        return SweepConfigError(f"{source}: {message}")

    if not isinstance(data, Mapping):
        raise fail(f"must be a table of keys, got {type(data).__name__}")
    unknown = [key for key in data if key not in _TOP_LEVEL]
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}; accepted: {', '.join(_TOP_LEVEL)}")
    if "element" not in data:
        raise fail(f"'element' is missing; accepted: {', '.join(ELEMENTS)}")
    element = data["element"]
    if not isinstance(element, str) or element not in ELEMENTS:
        raise fail(f"element must be one of {', '.join(ELEMENTS)}; got {element!r}")
    families = _families(data.get("family", DEFAULT_FAMILY), fail)
    seed = _integer("seed", data.get("seed", DEFAULT_SEED), 0, fail)
    epochs = _integer("epochs", data.get("epochs", DEFAULT_EPOCHS), 1, fail)
    grid = _grid(ELEMENTS[element], data.get("grid"), fail)
    config = SweepConfig(element, families, seed, epochs, grid)
    _check_points(config, fail)
    return config


def _integer(key: str, value: object, low: int, fail: _Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"{key} must be an integer >= {low}; got {value!r} "
                   f"({type(value).__name__})")
    if value < low:
        raise fail(f"{key} must be an integer >= {low}; got {value}")
    return value


def _families(value: object, fail: _Fail) -> tuple[str, ...]:
    from hilt.firmware.synthesis import families as known

    accepted = known()
    values = value if isinstance(value, list) else [value]
    if not values:
        raise fail(f"family lists no family; accepted: {', '.join(accepted)}")
    for family in values:
        if family not in accepted:
            raise fail(f"family must be one of {', '.join(accepted)} (or a list of them); "
                       f"got {family!r}")
    if len(set(values)) != len(values):
        raise fail(f"family lists a family twice: {values!r}")
    return tuple(values)


def _grid(element: Element, grid: object, fail: _Fail) -> dict[str, tuple]:
    accepted = ", ".join(element.names)
    if grid is None:
        raise fail(f"the [grid] table is missing; element {element.name!r} accepts: "
                   f"{accepted}")
    if not isinstance(grid, Mapping):
        raise fail(f"grid must be a table of parameter = [values]; got "
                   f"{type(grid).__name__}")
    if not grid:
        raise fail(f"the [grid] table is empty; element {element.name!r} accepts: {accepted}")
    for name in grid:
        if name not in element.names:
            raise fail(f"grid: unknown parameter {name!r} for element {element.name!r}; "
                       f"accepted: {accepted}")
    normalised = {}
    for parameter in element.parameters:
        values = grid.get(parameter.name, [parameter.default])
        if not isinstance(values, list):
            values = [values]
        key = f"grid.{parameter.name}"
        if not values:
            raise fail(f"{key} is an empty list; give at least one value")
        for value in values:
            if parameter.kind is bool:
                if not isinstance(value, bool):
                    raise fail(f"{key} must list true or false; got {value!r} "
                               f"({type(value).__name__})")
            elif isinstance(value, bool) or not isinstance(value, int):
                raise fail(f"{key} must list integers >= {parameter.low}; got {value!r} "
                           f"({type(value).__name__})")
            elif value < parameter.low:
                raise fail(f"{key} must list integers >= {parameter.low} "
                           f"({parameter.help}); got {value}")
        if len(set(values)) != len(values):
            raise fail(f"{key} lists a value twice: {values!r}")
        normalised[parameter.name] = tuple(values)
    return normalised


def _check_points(config: SweepConfig, fail: _Fail) -> None:
    from .cost import check_point

    for point in config.points():
        try:
            check_point(config.element, point)
        except (TypeError, ValueError) as error:
            shown = ", ".join(f"{k}={v}" for k, v in point.items() if k != "family")
            raise fail(f"grid point {shown}: {error}") from None
