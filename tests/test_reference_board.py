"""A board's golden twin from its capability record: same identity, same answers."""

from __future__ import annotations

import pytest

from hilt.firmware.board_firmware import FIRMWARE_PES
from hilt.firmware.boards import BOARDS
from hilt.host.protocol.codec import Capabilities
from hilt.host.reference_board import BUILDERS, reference_board, reference_target
from hilt.sim.cosim_board import board_record


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_the_twin_identifies_itself_as_the_board_does(name):
    kinds = set()
    for pe in FIRMWARE_PES:
        record = board_record(name, {"pe": pe})
        twin = reference_board(Capabilities.from_payload(record))
        assert twin.capabilities.to_payload() == record
        kinds |= {entry["kind"] for entry in Capabilities.from_payload(record).targets}
    assert kinds == set(BUILDERS)


def test_an_unknown_kind_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"target 3 \('laser'\): kind must be one of memory"):
        reference_target({"id": 3, "kind": "laser", "params": {}})


def test_missing_or_bad_parameters_are_named():
    with pytest.raises(ValueError, match=r"target 0 \('memory'\): params lack 'size'"):
        reference_target({"id": 0, "kind": "memory", "params": {}})
    with pytest.raises(ValueError, match=r"target 0 \('memory'\): size must be an int"):
        reference_target({"id": 0, "kind": "memory", "params": {"size": 0}})
    with pytest.raises(ValueError, match="params must be an object"):
        reference_target({"id": 0, "kind": "memory", "params": 5})


def test_an_entry_its_face_would_not_give_is_refused():
    entry = {"id": 0, "kind": "memory", "params": {"size": 8},
             "write": {"unit": "byte", "size": 9}, "forward": {"in_bytes": None,
                                                                "out_bytes": None}}
    with pytest.raises(ValueError, match="describes itself as"):
        reference_target(entry)
