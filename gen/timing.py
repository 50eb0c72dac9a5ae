"""An estimate of the clock a synthesised module reaches: its slowest register-to-register
path (:func:`ternforge.gen.synthesis.logic_levels`, from the Yosys netlist) timed with a
documented delay model of UltraScale+ fabric.

This is an estimate, never sign-off: Yosys places and routes nothing, so the routed delay of
each level is an average. The path timed is the slowest by this model (a longest-path search
weighted by its delays at -2; every grade scales them alike, so the slowest path is the same
at every grade), which need not be the deepest in levels: a carry chain is many levels but
little delay. Vivado's timing report after routing is the figure to trust.

The delay model
---------------

A path takes::

    delay = start clock-to-out + sum over its levels (cell delay + the net into it)
            + end setup + clock uncertainty

and Fmax = 1 / delay. The figures below are for speed grade -2 at VCCINT = 0.85 V, in ns.

=====================  =====  =========================================================
term                   ns     basis
=====================  =====  =========================================================
FF clock-to-out        0.10   FDRE C to Q, as Vivado reports it on UltraScale+ -2
FF setup               0.05   FDRE D setup
clock uncertainty      0.15   jitter of an MMCM/PS clock plus skew on one BUFG tree
LUT                    0.10   LUT1..LUT6 (an average over input pins: I5 fastest)
net, per level         0.35   an average routed net of a moderately full device
CARRY8                 0.15   one CARRY8 entered at S or DI (from a LUT, or at its CI
                              from general routing): to CO/O, plus its net
CARRY8 by carry-in     0.05   one CARRY8 entered at CI from the CARRY8 below: CI to
                              CO/O (~0.03) plus the dedicated carry net (~0.02), no
                              routed net
MUXF7/F8               0.08   the mux beside the LUT that feeds it (no net)
LUT-RAM/SRL read       0.30   address to data of a distributed RAM, plus its net
DSP48E2, unregistered  1.80   A/B to P through the multiplier, plus its net
block RAM clk-to-out   0.90   RAMB36E2 DOUT without its output register
UltraRAM clk-to-out    1.30   URAM288 DOUT without its output register
DSP P clock-to-out     0.40   DSP48E2 with PREG
RAM/DSP input setup    0.40   address/data/write-enable setup of a RAM, DSP input setup
=====================  =====  =========================================================

Yosys maps carry chains to CARRY4 cells, two to a CARRY8: the upper CARRY4 of a CARRY8,
entered from the lower through its carry-in, is no level and adds no delay (the CARRY8's
carry-in row holds the whole CARRY8). So a chain of ``n`` CARRY8 entered at its foot from a
LUT costs 0.50 + 0.05 (n - 1) ns, not 0.50 n: a 77-bit adder's ten CARRY8 about 1 ns.

Basis and its limits: the Zynq UltraScale+ data sheet (DS925) tabulates block limits (a
global clock tree's Fmax: 891, 775 and 667 MHz for -3, -2 and -1 at 0.85/0.90 V, 725 MHz for
-2 at 0.72 V) but no longer the per-LUT, per-net figures that the 7-series data sheets had
(UG474's T_ILO, T_CKO, T_AS): Vivado keeps those in its speed files. The values above are
therefore **assumed** typical figures of Vivado post-route timing reports on UltraScale+ -2
parts, with the net delay, the largest and least certain term, taken for an average net
(UG949: on UltraScale devices routing is about half of a path's delay); the carry-in row is
likewise assumed from such reports (Prop_CARRY8_CI_CO[7] about 0.03 ns at -2, the dedicated
net from the CARRY8 below about 0.02 ns, where an S or DI input takes 0.1 to 0.2 ns to CO/O
besides its routed net). Other speed grades scale every cell and net delay by the ratio of
DS925's global-clock Fmax (-2 at 0.85 V: 775 MHz) to the grade's: -3 0.87x, -1 1.16x, -2LV
(the K26 SOM's, 0.72 V) 1.07x, -1LV 1.16x.

With these, a path of LUTs costs 0.45 ns a level at -2: 250 MHz (4 ns) allows 8 LUT levels at
-2 and 7 at -2LV (:meth:`DelayModel.max_levels`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping

__all__ = ["DelayModel", "SPEED_GRADES", "speed_grade", "delay_model", "path_timing",
           "design_timing"]

#: DS925's global clock tree Fmax (MHz) by speed grade (and VCCINT): the scale of every grade
SPEED_GRADES = {"-3": 891.0, "-2": 775.0, "-1": 667.0, "-2LV": 725.0, "-1LV": 667.0}
_REFERENCE_GRADE = "-2"

_LUTRAMS = ("RAM32", "RAM64", "RAM128", "RAM256", "RAM512", "SRL")


@dataclasses.dataclass(frozen=True)
class DelayModel:
    """Delays (ns) of UltraScale+ fabric for one speed grade; see the module's table for the
    basis of each. ``scale`` multiplies every cell and net delay (not the clock uncertainty)."""

    grade: str = _REFERENCE_GRADE
    scale: float = 1.0
    clock_to_out_ns: float = 0.10
    setup_ns: float = 0.05
    clock_uncertainty_ns: float = 0.15
    lut_ns: float = 0.10
    net_ns: float = 0.35
    carry_ns: float = 0.15
    carry_chain_ns: float = 0.05
    mux_ns: float = 0.08
    lutram_ns: float = 0.30
    dsp_ns: float = 1.80
    bram_clock_to_out_ns: float = 0.90
    uram_clock_to_out_ns: float = 1.30
    dsp_clock_to_out_ns: float = 0.40
    ram_setup_ns: float = 0.40

    def __post_init__(self):
        if not isinstance(self.scale, (int, float)) or not 0 < self.scale <= 10:
            raise ValueError(f"Delay scale must be a number above 0 and at most 10, "
                             f"not {self.scale!r}")

    def level_ns(self, cell_type: str, *, carry_in: bool = False) -> float:
        """The delay a level of ``cell_type`` adds to a path, with the net into it; with
        ``carry_in``, a carry cell entered through its carry-in from the carry cell below
        (dedicated carry routing, no net)."""
        if cell_type.startswith("MUXF"):
            return self.scale * self.mux_ns
        if cell_type.startswith("CARRY"):
            if carry_in:
                return self.scale * self.carry_chain_ns
            cell = self.carry_ns
        elif cell_type.startswith(_LUTRAMS):
            cell = self.lutram_ns
        elif cell_type.startswith("DSP"):
            cell = self.dsp_ns
        else:
            cell = self.lut_ns
        return self.scale * (cell + self.net_ns)

    def start_ns(self, cell_type: str) -> float:
        """Clock-to-out of a path's start (a port or a constant counts as a flip-flop's)."""
        if cell_type.startswith("RAMB") or cell_type.startswith("FIFO"):
            return self.scale * self.bram_clock_to_out_ns
        if cell_type.startswith("URAM"):
            return self.scale * self.uram_clock_to_out_ns
        if cell_type.startswith("DSP"):
            return self.scale * self.dsp_clock_to_out_ns
        return self.scale * self.clock_to_out_ns

    def end_ns(self, cell_type: str) -> float:
        """Setup of a path's end (a port counts as a flip-flop's)."""
        if cell_type.startswith(("RAMB", "FIFO", "URAM", "DSP", *_LUTRAMS)):
            return self.scale * self.ram_setup_ns
        return self.scale * self.setup_ns

    def path_ns(self, cells: Iterable[str | Mapping], *, start: str = "FDRE",
                end: str = "FDRE") -> float:
        """The delay of a path through ``cells`` from a ``start`` to an ``end`` cell (cell
        types, or ``port`` or ``constant``), clock uncertainty included.

        Each of ``cells`` is a cell type, one level entered through its data inputs, or a cell
        of a path as :func:`~ternforge.gen.synthesis.logic_levels` gives it: its ``type``,
        whether it was entered through its carry-in (``carry_in``, default false) and the
        levels it counts (``levels``, default 1; none for the upper CARRY4 of a CARRY8
        entered from the lower, which adds no delay either)."""
        def cell_ns(cell):
            if isinstance(cell, str):
                return self.level_ns(cell)
            return cell.get("levels", 1) * self.level_ns(
                cell["type"], carry_in=cell.get("carry_in", False))
        return (self.start_ns(start) + sum(cell_ns(cell) for cell in cells)
                + self.end_ns(end) + self.clock_uncertainty_ns)

    def max_levels(self, clock_hz: float) -> int:
        """The most LUT levels (each a LUT and its net) between two flip-flops that a clock
        of ``clock_hz`` allows."""
        if not isinstance(clock_hz, (int, float)) or clock_hz <= 0:
            raise ValueError(f"Clock must be a positive frequency in Hz, not {clock_hz!r}")
        budget = 1e9 / clock_hz - self.path_ns([])
        return max(0, math.floor(budget / self.level_ns("LUT6") + 1e-9))


def speed_grade(part: str) -> str:
    """The speed grade of a Xilinx part number: ``"xck26-sfvc784-2LV-c"`` -> ``"-2LV"``."""
    match = re.search(r"-(\d)(LV|L|E|I)?-[a-z]$", part) if isinstance(part, str) else None
    if match is None:
        raise ValueError(f"Part must be a Xilinx part number ending in a speed grade and "
                         f"temperature (e.g. 'xck26-sfvc784-2LV-c'), not {part!r}")
    grade = f"-{match[1]}" + ("LV" if match[2] == "LV" else "")
    if grade not in SPEED_GRADES:
        raise ValueError(f"Speed grade must be one of {', '.join(SPEED_GRADES)}, "
                         f"not {grade!r}")
    return grade


def delay_model(part: str) -> DelayModel:
    """The :class:`DelayModel` of a part's speed grade, scaled from -2 by DS925's global
    clock Fmax."""
    grade = speed_grade(part)
    return DelayModel(grade=grade,
                      scale=round(SPEED_GRADES[_REFERENCE_GRADE] / SPEED_GRADES[grade], 4))


def path_timing(synthesis: Mapping, model: DelayModel) -> dict:
    """A module's estimated timing from its synthesis
    (:func:`~ternforge.gen.synthesis.synthesize` with ``levels``): ``levels`` (its deepest
    path's), ``fmax_mhz`` and its slowest ``path``: ``from``, ``to``, ``cells`` (the cell
    types along it, in order), ``levels`` (its own) and ``delay_ns``."""
    path = synthesis["path"]
    delay = model.path_ns(path["cells"], start=path["from_type"], end=path["to_type"])
    return {"levels": synthesis["levels"], "fmax_mhz": round(1e3 / delay, 1),
            "path": {"from": path["from"], "to": path["to"],
                     "cells": [cell["type"] for cell in path["cells"]],
                     "levels": sum(cell.get("levels", 1) for cell in path["cells"]),
                     "delay_ns": round(delay, 3)}}


def design_timing(modules: Mapping[str, Mapping], *, part: str, clock_hz: float) -> dict:
    """The ``timing`` section of a report: the modules' :func:`path_timing` (each entry of
    ``modules`` holds its ``levels``, ``fmax_mhz`` and ``path``) judged against ``clock_hz`` on
    ``part``: the LUT levels the clock allows, the worst module and its path, the design's
    estimated Fmax (its slowest module's), whether it meets the clock and, by name, the paths
    slower than the clock allows (``too_deep``, slowest first). Each module named there has
    its ``levels`` (its deepest path's), and its slowest path's ``from``, ``to``,
    ``path_levels`` and ``delay_ns``."""
    model = delay_model(part)
    clock_mhz = clock_hz / 1e6

    def summary(name):
        entry = modules[name]
        path = entry["path"]
        return {"module": name, "levels": entry["levels"], "fmax_mhz": entry["fmax_mhz"],
                "from": path["from"], "to": path["to"], "path_levels": path["levels"],
                "delay_ns": path["delay_ns"]}
    worst = min(modules, key=lambda name: modules[name]["fmax_mhz"]) if modules else None
    too_deep = sorted((summary(name) for name in modules
                       if modules[name]["fmax_mhz"] < clock_mhz),
                      key=lambda entry: entry["fmax_mhz"])
    return {
        "estimate": True,
        "method": "each module's slowest register-to-register path (Yosys netlist, "
                  "flattened) by an UltraScale+ delay model (ternforge.gen.timing)",
        "speed_grade": model.grade,
        "delay_scale": model.scale,
        "clock_mhz": round(clock_mhz, 3),
        "max_levels": model.max_levels(clock_hz),
        "fmax_mhz": modules[worst]["fmax_mhz"] if worst else None,
        "meets_clock": not too_deep,
        "worst": summary(worst) if worst else None,
        "too_deep": too_deep,
    }
