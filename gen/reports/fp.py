"""Resources and latency of the floating-point units on the board's fabric.

Each unit is synthesised with Yosys (``synth_xilinx -family xcup``, DSP48E2 allowed; cached
per unit); the report gives LUT, FF, CARRY8, DSP and the unit's pipeline latency.
"""

from __future__ import annotations

from amaranth.back import rtlil
from rich.table import Table

from ...hdl.fp.format import FLOAT_FORMATS
from ...hdl.fp.parameters import FloatUnitParameters
from ...hdl.fp.units import float_unit
from ..synthesis import SOURCE, synthesize

__all__ = ["MEASURES", "float_report", "float_table"]

MEASURES = ("LUT", "FF", "CARRY8", "DSP")


def float_report(ops, formats=tuple(FLOAT_FORMATS), advance=lambda name: None) -> dict:
    """Synthesise every unit of ``ops`` in every one of ``formats``; ``advance(name)`` is
    called before each synthesis."""
    units = []
    for op in ops:
        for fmt in formats:
            parameters = FloatUnitParameters(op, fmt)
            name = parameters.module_name
            advance(name)
            synthesis = synthesize(rtlil.convert(float_unit(parameters), name=name,
                                                 emit_src=False), top=name)
            units.append({"op": op, "format": fmt, "latency": parameters.latency,
                          **{key: synthesis[key] for key in MEASURES}})
    return {"source": SOURCE, "units": units}


def float_table(report: dict) -> Table:
    table = Table(title="Floating-point units (Yosys synth_xilinx xcup, DSP48E2 allowed)")
    for column in ("unit", "format", "latency", *MEASURES):
        table.add_column(column, justify="left" if column in ("unit", "format") else "right")
    for unit in report["units"]:
        table.add_row(unit["op"], unit["format"], str(unit["latency"]),
                      *(f"{unit[key]:,}" for key in MEASURES))
    return table
