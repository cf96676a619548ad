"""The black-box physical system a model-free trainer queries: measure, never differentiate.

A wave-based layer (optical, acoustic, microwave) maps an input vector to a measured
output vector. A trainer may send ``x`` and read ``y`` (:meth:`PhysicalSystem.measure`),
but the system offers no gradient: everything here is numpy, inputs are converted to
float64 arrays (a torch tensor is detached first), so autograd cannot reach inside.

The imperfections of a real setup are constructor parameters, all 0 by default (an
ideal, static, noiseless system). Each parameter array ``P`` of the system (a
transmission matrix, a coupling matrix) has a nominal scale ``s = rms(P_0)``, the root
mean square of its entries at construction:

noise
    Measurement noise, multiplicative: every reading is ``y * (1 + noise * g)`` with
    ``g`` standard normal, independent per reading, so ``noise`` is the relative
    standard deviation of each reading around the noiseless value.
drift
    Slow drift, a random walk: after every :meth:`~PhysicalSystem.measure` call (one
    query batch) each parameter array takes the step ``P += drift * s * G``, with ``G``
    standard normal entries (complex normal with ``E|G|^2 = 1`` for complex arrays). One
    step changes ``P`` by about ``drift`` relative to its nominal size (Frobenius norm);
    ``k`` steps by about ``drift * sqrt(k)``. Drift is per batch, not per vector: the
    batch is one exposure of the setup.
perturbation
    :meth:`~PhysicalSystem.perturb` ``(strength)`` applies one jump
    ``P += strength * s * G``, as when the setup is bumped: the parameters change at once
    by about ``strength`` relative to their nominal size.

Randomness is deterministic for a ``seed``: one :class:`numpy.random.SeedSequence`
spawns four independent streams, for construction, noise, drift and perturbation, so
for instance turning noise on leaves the parameters and the drift path unchanged.
:meth:`~PhysicalSystem.state_dict` holds everything that changes after construction
(the current parameters, the three running generators' states, the query count), so a
checkpointed run resumed with :meth:`~PhysicalSystem.load_state_dict` measures exactly
what the uninterrupted run would have.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

_STREAMS = ("noise", "drift", "perturb")
"""The generators that run after construction, in :meth:`PhysicalSystem.state_dict`."""


def check_features(name: str, value: object) -> int:
    """``value`` if it is an int >= 1, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def check_level(name: str, value: object, meaning: str) -> float:
    """``value`` as a float if it is a finite real number >= 0, else a ValueError.

    ``meaning`` says what the parameter is, for the message.
    """
    if (isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating)
            or not math.isfinite(value) or value < 0):
        raise ValueError(f"{name} must be a finite number >= 0 ({meaning}), got {value!r}")
    return float(value)


def _standard_normal(rng: np.random.Generator, like: np.ndarray) -> np.ndarray:
    """Standard normal draws shaped like ``like``; complex with ``E|g|^2 = 1`` if it is."""
    if np.iscomplexobj(like):
        pair = rng.standard_normal((2, *like.shape))
        return (pair[0] + 1j * pair[1]) / math.sqrt(2.0)
    return rng.standard_normal(like.shape)


class PhysicalSystem(ABC):
    """A simulated black-box physical layer with noise, drift and perturbations.

    Parameters
    ----------
    in_features, out_features
        Width of an input vector and of a measured output vector (ints >= 1).
    seed
        Seed (int >= 0) of all the system's randomness.
    noise, drift
        Relative measurement noise and per-batch drift step (module docstring), >= 0.

    Attributes
    ----------
    queries : int
        Input vectors measured so far (a batch of N counts N).

    A subclass sets :attr:`name`, builds its parameter arrays in its constructor with
    :attr:`_construction` after calling this one, hands them to :meth:`_install`, and
    implements :meth:`_transfer` (the noiseless response) and :meth:`_settings` (its
    own constructor settings).
    """

    name: ClassVar[str]
    """The kind of system, as the protocol target announces it (``"optical"``, ...)."""

    def __init__(self, in_features: int, out_features: int, *, seed: int = 0,
                 noise: float = 0.0, drift: float = 0.0) -> None:
        self.in_features = check_features("in_features", in_features)
        self.out_features = check_features("out_features", out_features)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.seed = int(seed)
        self.noise = check_level("noise", noise, "the relative std of each reading")
        self.drift = check_level("drift", drift, "the relative random-walk step per batch")
        construction, *streams = np.random.SeedSequence(self.seed).spawn(1 + len(_STREAMS))
        self._construction = np.random.default_rng(construction)
        self._rngs = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, streams,
                                                                         strict=True)}
        self._params: dict[str, np.ndarray] = {}
        self._scales: dict[str, float] = {}
        self.queries = 0

    def _install(self, params: dict[str, np.ndarray]) -> None:
        """Take ``params`` as the system's parameter arrays and their nominal scales."""
        self._params = {key: np.array(value) for key, value in params.items()}
        self._scales = {key: float(np.sqrt(np.mean(np.abs(value) ** 2)))
                        for key, value in self._params.items()}

    @abstractmethod
    def _transfer(self, x: np.ndarray) -> np.ndarray:
        """The noiseless ``(N, out_features)`` response of the current parameters to ``x``."""

    @abstractmethod
    def _settings(self) -> dict[str, Any]:
        """The subclass's own constructor settings, for :meth:`config`."""

    def config(self) -> dict[str, Any]:
        """What the system was built with; a state dict only loads into an equal config."""
        return {"system": self.name, "in_features": self.in_features,
                "out_features": self.out_features, "seed": self.seed, "noise": self.noise,
                "drift": self.drift, **self._settings()}

    @property
    def parameters(self) -> dict[str, np.ndarray]:
        """Copies of the current parameter arrays (simulation ground truth, for diagnostics)."""
        return {key: value.copy() for key, value in self._params.items()}

    def _inputs(self, x: Any) -> np.ndarray:
        """``x`` as a float64 ``(N, in_features)`` array of finite values, else ValueError."""
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        array = np.asarray(x)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"x must hold real numbers, got dtype {array.dtype}")
        if array.ndim != 2 or array.shape[1] != self.in_features:
            raise ValueError(f"x must have shape (N, in_features={self.in_features}), "
                             f"got {array.shape}")
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            row = int(np.argwhere(~np.isfinite(array))[0, 0])
            raise ValueError(f"x must be finite, got NaN or inf in row {row}")
        return array

    def response(self, x: Any) -> np.ndarray:
        """The noiseless response of the system as it is now; no query, no drift step.

        Simulation ground truth for tests and diagnostics: a real instrument has no such
        method, so a trainer must use :meth:`measure`.
        """
        return self._transfer(self._inputs(x))

    def measure(self, x: Any) -> np.ndarray:
        """Send a batch of inputs and read the outputs, as an instrument would.

        Parameters
        ----------
        x
            ``(N, in_features)`` finite real inputs (array-like; a tensor is detached).

        Returns
        -------
        np.ndarray
            ``(N, out_features)`` float64 readings, with measurement noise. The batch
            counts ``N`` queries and then the parameters take one drift step. An empty
            batch (N = 0) measures nothing and changes nothing.
        """
        inputs = self._inputs(x)
        readings = self._transfer(inputs)
        if len(inputs) == 0:
            return readings
        if self.noise:
            readings = readings * (1.0 + self.noise * self._rngs["noise"].standard_normal(
                readings.shape))
        self.queries += len(inputs)
        if self.drift:
            self._step(self.drift, self._rngs["drift"])
        return readings

    def _step(self, size: float, rng: np.random.Generator) -> None:
        """Move every parameter array by ``size`` times its nominal scale, in a random direction."""
        for key in sorted(self._params):
            value = self._params[key]
            value += size * self._scales[key] * _standard_normal(rng, value)

    def perturb(self, strength: float, seed: int | None = None) -> None:
        """Bump the setup: every parameter array jumps once by relative ``strength``.

        Parameters
        ----------
        strength
            Size of the jump relative to each array's nominal scale (>= 0).
        seed
            None: the direction comes from the system's own perturbation stream (saved in
            the state dict). An int >= 0: from a generator seeded with it, the same
            direction for the same seed.
        """
        strength = check_level("strength", strength, "the relative size of the jump")
        if seed is None:
            rng = self._rngs["perturb"]
        elif isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
        else:
            rng = np.random.default_rng(int(seed))
        self._step(strength, rng)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: config, parameters, generator states, queries.

        Plain Python values and numpy arrays, all copies.
        """
        return {"config": self.config(), "queries": self.queries,
                "parameters": self.parameters,
                "rng": {name: copy.deepcopy(rng.bit_generator.state)
                        for name, rng in self._rngs.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`; the system must have been built with its config.

        Raises ValueError, changing nothing, for a state of another config or a malformed
        one.
        """
        missing = {"config", "queries", "parameters", "rng"} - set(state)
        if missing:
            raise ValueError(f"state dict lacks {sorted(missing)}")
        if not all(isinstance(state[key], dict) for key in ("config", "parameters", "rng")):
            raise ValueError("state dict config, parameters and rng must be dicts")
        config = self.config()
        if state["config"] != config:
            diff = sorted(k for k in config.keys() | state["config"].keys()
                          if config.get(k) != state["config"].get(k))
            raise ValueError(f"state dict is for another system: {diff} differ "
                             f"(this one has {config}, the state {state['config']})")
        queries = state["queries"]
        if isinstance(queries, bool) or not isinstance(queries, int | np.integer) or queries < 0:
            raise ValueError(f"state dict queries must be an int >= 0, got {queries!r}")
        params = {}
        for key, value in self._params.items():
            loaded = np.asarray(state["parameters"].get(key))
            if loaded.shape != value.shape or loaded.dtype != value.dtype \
                    or not np.isfinite(loaded).all():
                raise ValueError(f"state dict parameter {key!r} must be a finite "
                                 f"{value.dtype} array of shape {value.shape}")
            params[key] = loaded.copy()
        if set(state["parameters"]) != set(params):
            raise ValueError(f"state dict parameters must be {sorted(params)}, "
                             f"got {sorted(state['parameters'])}")
        rngs = {}
        for name in _STREAMS:
            rng = np.random.default_rng()
            try:
                rng.bit_generator.state = copy.deepcopy(state["rng"][name])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"state dict rng {name!r} is not a generator state: "
                                 f"{exc}") from None
            rngs[name] = rng
        self._params, self._rngs, self.queries = params, rngs, int(queries)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "system")
        return f"{type(self).__name__}({settings}, queries={self.queries})"
