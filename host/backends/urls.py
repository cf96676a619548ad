"""Backends by URL, as the command line and Python name them.

==================================  ===================================================
``golden:BOARD[?pe=KIND]``          the board's golden twin, in-process (fast, exact)
``cosim:BOARD[?pe=KIND&sim=SIM]``   the board's firmware co-simulated, started for you
``cosim:socket://HOST:PORT``        a co-simulated board already running (``hilt cosim``)
``serial:///dev/ttyUSB1[?baudrate=N]`` a real board (any pyserial URL after ``serial:``,
                                    e.g. ``serial:socket://host:port``, ``serial:COM3``),
                                    or an instrument with a ``physical`` target; ``baudrate``
                                    is the line rate the firmware was built for
                                    (``hilt build --baud``), 3,000,000 unless given
``physical:SYSTEM[?in=N&out=M&...]``  a simulated physical system (``optical`` or
                                    ``acoustic``) measured in-process; options ``seed``,
                                    ``noise``, ``drift`` and the system's own
                                    (``encoding``, ``saturation``, ``offset``; ``modes``,
                                    ``gain``, ``spectrum_decay``)
==================================  ===================================================

``BOARD`` is a board name (``icebreaker``, ``ulx3s``) and ``KIND`` the processing element
its firmware carries (``synapse``, ``shift``, ``binary``). A ``cosim:`` board runs under
Verilator (``sim=verilator``, the default) on the native engine, hilt's C++ harness,
unless ``engine=cocotb`` asks for the cocotb bridge; under Icarus (``sim=icarus``) it runs
on cocotb only. ``timeout``, ``window`` and
``retries`` set the link (see :class:`~hilt.host.transport.Device`); ``target`` picks a
target id where a board has several elements.

A ``golden:`` or ``cosim:`` board also takes its element's size keywords as options,
which override the board's size for it (a simulated board is not bound by the device's
LUTs): ``rows``, ``cols``, ``state_bits``, ``in_bits``, ``max_pulses``, ``noise_bits``,
``lfsr_bits`` and ``dw_min`` (the cells' step at the far bound, a fraction of their
range) for the synapse crossbar (``golden:icebreaker?rows=32&cols=74&state_bits=6&
dw_min=0.05``);
``lanes``, ``pes``, ``act_width``, ``exp_bits`` and ``depth`` for the shift array;
``in_features``, ``out_features``, ``pes``, ``simd`` and ``max_weight`` for the binary
layer, whose ``pe`` keyword is spelt ``pes`` in a URL, where ``pe`` names the element.
The capability record, and so the golden twin and the build id, describe the size asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from hilt.host.arguments import SEED, Count, Real
from hilt.host.backends.base import Backend, BackendError
from hilt.host.backends.board import BoardBackend, board_element
from hilt.host.protocol import reference, spec
from hilt.host.protocol.codec import Capabilities
from hilt.host.reference_board import reference_board
from hilt.host.transport import Device, LinkError

SCHEMES = ("golden", "cosim", "serial", "physical")
SIMULATORS = ("verilator", "icarus")
LINK_OPTIONS: dict[str, Callable[[str], Any]] = {
    "timeout": Real(0, spec.TIMEOUT_MAX_S, low_inclusive=False).parse,
    "window": Count(1, spec.WINDOW_MAX).parse,
    "retries": Count(0, spec.RETRIES_MAX).parse,
    "target": Count(0, 255, "a one-byte target id").parse,
}
SERIAL_OPTIONS = {"baudrate": Count(spec.MIN_BAUD, spec.MAX_BAUD).parse}
"""Options of a port the host opens itself: its line rate (a ``Device``'s ``baudrate``)."""
BOARD_OPTIONS: dict[str, Callable[[str], Any]] = {
    "pe": str,
    "max_payload": Count(1, spec.MAX_PAYLOAD_CEILING, "the protocol's largest frame").parse}
"""Options of a simulated board's build: its element, and the largest payload its frames
carry (the firmware's receive buffer), for elements whose vectors or rows are wider."""
SIZE = Count(0, 0x10000, "the protocol addresses at most 65536 rows or beats").parse
"""Any element size keyword; the element then checks that it fits the board's frames."""
SIZE_PARSERS: dict[str, Callable[[str], Any]] = {
    "dw_min": Real(0, 1, low_inclusive=False).parse}
"""Size keywords that take a number, not a count: a synapse cell's step at the far bound,
in units of its range."""
SIZE_ALIASES = {"pe": "pes"}
"""Size keywords spelt otherwise in a URL, where their own name is already an option."""
WIDTH = Count(1, 4096, "a mixing matrix of at most 4096 x 4096").parse
NUMBER = Real(-1e9, 1e9).parse
SYSTEM_OPTIONS: dict[str, dict[str, Callable[[str], Any]]] = {
    "optical": {"encoding": str, "saturation": NUMBER, "offset": NUMBER},
    "acoustic": {"modes": Count(1, 4096).parse, "gain": NUMBER, "spectrum_decay": NUMBER,
                 "saturation": NUMBER},
}
"""Each simulated system's own constructor options, as URL options."""
COSIM_TIMEOUT_S = 5.0
"""A co-simulated line is slow in wall time: its default timeout is this, not 0.5 s."""


def _physical(url: str, rest: str) -> Backend:
    from hilt.host.backends.physical import PhysicalBackend
    from hilt.host.physical.acoustic import AcousticLayer
    from hilt.host.physical.optical import OpticalLayer

    systems = {"optical": OpticalLayer, "acoustic": AcousticLayer}
    name, _, query = rest.partition("?")
    if name not in systems:
        raise BackendError(f"{url}: physical system must be one of {', '.join(systems)}, "
                           f"got {name!r}")
    accepted = {"in": WIDTH, "out": WIDTH, "seed": SEED.parse, "noise": Real(0, 1e3).parse,
                "drift": Real(0, 1).parse, **SYSTEM_OPTIONS[name]}
    options = _options(url, query, accepted)
    in_features, out_features = options.pop("in", 64), options.pop("out", 256)
    try:
        system = systems[name](in_features, out_features, **options)
    except (TypeError, ValueError) as error:
        raise BackendError(f"{url}: {error}") from None
    return PhysicalBackend(system, url)


def _simulator(text: str) -> str:
    if text not in SIMULATORS:
        raise ValueError(f"{text!r} is not a simulator: accepted {', '.join(SIMULATORS)}")
    return text


def _engine(text: str) -> str:
    from hilt.sim.cosim_board import ENGINES

    if text not in ENGINES:
        raise ValueError(f"{text!r} is not an engine: accepted {', '.join(ENGINES)}")
    return text


COSIM_OPTIONS: dict[str, Callable[[str], Any]] = {"sim": _simulator, "engine": _engine}


def _query(url: str, query: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise BackendError(f"{url}: the options after '?' must read NAME=VALUE&NAME=VALUE, "
                           f"got {query!r}") from None


def _options(url: str, query: str, accepted: Mapping[str, Callable[[str], Any]]) -> dict:
    options = {}
    for name, text in _query(url, query):
        if name not in accepted:
            raise BackendError(f"{url}: unknown option {name!r}; accepted: "
                               f"{', '.join(accepted)}")
        if name in options:
            raise BackendError(f"{url}: option {name} is given more than once; give it once")
        try:
            options[name] = accepted[name](text)
        except ValueError as error:
            raise BackendError(f"{url}: option {name}: {error}") from None
    return options


def _split_options(options: dict) -> tuple[dict, int | None, dict]:
    target = options.pop("target", None)
    link = {name: options.pop(name) for name in ("timeout", "window", "retries", "baudrate")
            if name in options}
    return link, target, options


def _device(url: str, port: Any, link: dict) -> Device:
    try:
        return Device(port, **link)
    except (LinkError, ValueError) as error:
        raise BackendError(f"{url}: could not reach a board: {error}") from None


def _size_options(url: str, name: str, query: str) -> dict[str, str]:
    """The element's size options the board ``name`` takes, by URL spelling -> keyword, for
    the ``pe`` the query names (or the firmware's default element)."""
    from hilt.sim.cosim_board import element_sizes

    pe = dict(_query(url, query)).get("pe")
    try:
        sizes = element_sizes(name, pe)
    except ValueError as error:
        raise BackendError(f"{url}: {error}") from None
    return {SIZE_ALIASES.get(keyword, keyword): keyword for keyword in sizes}


def _board_params(url: str, name: str, options: dict,
                  sizes: Mapping[str, str]) -> tuple[bytes, dict]:
    from hilt.sim.cosim_board import board_record

    params = {name: options[name] for name in ("pe", "max_payload") if name in options}
    overrides = {sizes[option]: options[option] for option in sizes if option in options}
    if overrides:
        params["pe_size"] = overrides
    try:
        record = board_record(name, params)
    except (TypeError, ValueError) as error:
        raise BackendError(f"{url}: {error}") from None
    return record, params


def check_backend(url: str) -> None:
    """Refuse ``url`` for anything :func:`open_backend` would refuse it for without
    reaching the backend: its form, scheme, board, element, options, and whether the
    element fits the board's frames. Opens no port and starts no simulator."""
    _opener(url)


def open_backend(url: str) -> Backend:
    """Open the backend ``url`` names (see the module docstring).

    A simulated physical system is 64 -> 256 unless ``in`` and ``out`` say otherwise.

    Raises
    ------
    BackendError
        The URL is malformed or names an unknown scheme, board, element or option; the
        board cannot be reached; or it carries no element a training loop can drive.
    """
    return _opener(url)()


def _opener(url: str) -> Callable[[], Backend]:
    """Check ``url`` as far as can be done without reaching the backend; what opens it."""
    if not isinstance(url, str) or ":" not in url:
        raise BackendError(f"backend URL must look like SCHEME:WHERE with SCHEME one of "
                           f"{', '.join(SCHEMES)} (e.g. golden:icebreaker), got {url!r}")
    scheme, rest = url.split(":", 1)
    if scheme not in SCHEMES:
        raise BackendError(f"backend URL scheme must be one of {', '.join(SCHEMES)}, got "
                           f"{scheme!r} in {url!r}")
    if scheme == "physical":
        backend = _physical(url, rest)
        return lambda: backend
    if scheme == "serial" or rest.startswith("socket://"):
        port, _, query = rest.partition("?")
        port = port[2:] if port.startswith("///") else port
        if not port:
            raise BackendError(f"{url}: give a port after {scheme}:, e.g. "
                               f"serial:///dev/ttyUSB1 or cosim:socket://127.0.0.1:5555")
        accepted = {**LINK_OPTIONS, **(SERIAL_OPTIONS if scheme == "serial" else {})}
        link, target, _ = _split_options(_options(url, query, accepted))
        if scheme == "cosim":
            link.setdefault("timeout", COSIM_TIMEOUT_S)
        return lambda: BoardBackend(_device(url, port, link), url, target=target)

    name, _, query = rest.partition("?")
    sizes = _size_options(url, name, query)
    accepted = {**LINK_OPTIONS, **BOARD_OPTIONS, **(COSIM_OPTIONS if scheme == "cosim" else {}),
                **{option: SIZE_PARSERS.get(keyword, SIZE) for option, keyword in sizes.items()}}
    link, target, options = _split_options(_options(url, query, accepted))
    sim = options.get("sim", "verilator")
    engine = _cosim_engine(url, options.get("engine"), sim) if scheme == "cosim" else None
    record, params = _board_params(url, name, options, sizes)
    capabilities = Capabilities.from_payload(record)
    board_element(capabilities, url, target)
    if scheme == "golden":
        return lambda: BoardBackend(
            _device(url, reference.InProcessPort(reference_board(capabilities)), link), url,
            target=target)
    link.setdefault("timeout", COSIM_TIMEOUT_S)
    return lambda: _cosim(url, name, params, sim, engine, link, target)


def _cosim_engine(url: str, engine: str | None, sim: str) -> str:
    """The engine a ``cosim:`` board runs on (:func:`hilt.sim.cosim.check_engine`)."""
    from hilt.sim.cosim_board import check_engine

    try:
        return check_engine(engine, sim)
    except ValueError as error:
        raise BackendError(f"{url}: {error}") from None


def _cosim(url: str, name: str, params: dict, sim: str, engine: str, link: dict,
           target: int | None) -> Backend:
    from hilt.sim.cosim_board import start_board
    from hilt.sim.errors import SimulationError

    try:
        board = start_board(name, params, sim=sim, engine=engine)
    except (SimulationError, ValueError) as error:
        raise BackendError(f"{url}: the co-simulated board did not start: {error}") from None
    try:
        device = _device(url, board.url, link)
    except BaseException:
        board.stop()
        raise
    return BoardBackend(device, url, target=target, on_close=board.stop)
