"""Values a user types, with their accepted ranges, and a parser whose errors are one line.

Every number the command line and the backend URLs take is parsed by a :class:`Count`
or a :class:`Real`, which knows the range it accepts and names it when it refuses a
value, so that a size beyond what the format, the memory or the part can hold is refused
while the command line is parsed, before anything runs. The hostile-input tests read
these ranges back from the parser to generate the values just outside them.
"""

from __future__ import annotations

import argparse
import math
from abc import ABC, abstractmethod
from typing import NoReturn

INTERRUPTED = 130
"""Exit status after Ctrl-C, as a shell reports a process ended by SIGINT."""
SEED_MAX = 2**32 - 1
"""The largest seed: every generator hilt seeds (Python, NumPy, torch) takes it."""


class _Range(ABC):
    """A typed value with a range: :meth:`parse` for URL options, a call for argparse."""

    @abstractmethod
    def accepted(self) -> str:
        """The accepted values, as the error messages say them."""

    @abstractmethod
    def parse(self, text: str) -> float:
        """``text`` as a value in range; ValueError naming the value and the range."""

    def __call__(self, text: str) -> float:
        try:
            return self.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None


class Count(_Range):
    """An integer argument in ``low..high``; ``why`` says what the upper limit is."""

    def __init__(self, low: int, high: int, why: str = "") -> None:
        self.low, self.high, self.why = low, high, why
        self.__name__ = "integer"

    def accepted(self) -> str:
        """The accepted values, as the error messages say them."""
        limit = f" ({self.why})" if self.why else ""
        return f"an integer from {self.low} to {self.high}{limit}"

    def parse(self, text: str) -> int:
        """``text`` as an integer in range; ValueError naming the value and the range."""
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number: accepted {self.accepted()}") \
                from None
        if not self.low <= value <= self.high:
            raise ValueError(f"{text} is out of range: accepted {self.accepted()}")
        return value


class Real(_Range):
    """A finite number argument, above ``low`` (or at it, if ``low_inclusive``) and at most
    ``high``."""

    def __init__(self, low: float, high: float, *, low_inclusive: bool = True) -> None:
        self.low, self.high, self.low_inclusive = low, high, low_inclusive
        self.__name__ = "number"

    def accepted(self) -> str:
        """The accepted values, as the error messages say them."""
        above = "from" if self.low_inclusive else "above"
        return f"a finite number {above} {self.low:g} to {self.high:g}"

    def parse(self, text: str) -> float:
        """``text`` as a number in range; ValueError naming the value and the range."""
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number: accepted {self.accepted()}") from None
        inside = (self.low <= value if self.low_inclusive else self.low < value) \
            and value <= self.high
        if not math.isfinite(value) or not inside:
            raise ValueError(f"{text} is out of range: accepted {self.accepted()}")
        return value


SEED = Count(0, SEED_MAX, "what every random generator takes")
EPOCHS = Count(1, 10_000)
WORKERS = Count(1, 256)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports a bad command line in one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hilt: error: {message} (see {self.prog} --help)\n")
