"""What a testbench needs to run Yosys-written Verilog correctly under Icarus."""

from __future__ import annotations

from cocotb.handle import HierarchyObject

# Yosys's Verilog back end names the register that starts its `always @*` blocks so.
YOSYS_COMB_TRIGGER = "$auto$verilog_backend"


def wake_comb_processes(handle: HierarchyObject) -> int:
    """Run every ``always @*`` block under ``handle`` once; returns how many were woken.

    Yosys makes each such block run at time zero by reading a register initialised in
    its declaration, but under ``iverilog -g2012`` (as cocotb builds) the initialiser is
    no event, so a block whose inputs never change (a ready that depends only on a state
    register still in its reset state) keeps its outputs X for ever. Writing the register
    is the event the blocks wait for.
    """
    woken = 0
    for child in handle:
        if isinstance(child, HierarchyObject):
            woken += wake_comb_processes(child)
        elif child._name.startswith(YOSYS_COMB_TRIGGER):
            child.value = 1
            woken += 1
    return woken
