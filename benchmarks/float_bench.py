"""Benchmark the floating-point operators: bit-exactness of add and mul on a million random
operand pairs per format (plus every pair of special values) on Verilator, and every
floating-point unit's resources and latency from Yosys.

Run from the repository root::

    python benchmarks/float_bench.py [--pairs 1000000] [--out benchmarks/results/float.json]

(CI's Verilator tests run 100,000 random pairs per operator and format, this the million.)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from rich.console import Console

from ternforge.gen.reports.fp import float_report, float_table
from ternforge.hdl.fp.format import FLOAT_FORMATS
from ternforge.hdl.fp.parameters import OPERATIONS, FloatUnitParameters
from ternforge.hdl.fp.units import float_unit
from ternforge.sim.models import fp as fm
from ternforge.sim.models.fp_units import golden
from ternforge.sim import verilator
from ternforge.sim.cocotb.fp import write_float_job


def exactness(op: str, fmt: str, pairs: int) -> dict:
    """Run ``pairs`` random operand pairs and every special pair through the operator on
    Verilator; count results that differ from numpy's."""
    parameters = FloatUnitParameters(op, fmt)
    name = parameters.module_name
    operands = fm.stimulus(op, fmt, 2, pairs, seed=2026)
    build = verilator.build(verilog.convert(float_unit(parameters), name=name), toplevel=name)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        env = write_float_job(Path(work), operands, parameters.format.width)
        verilator.run(build, toplevel=name, test_module="ternforge.sim.cocotb.fp",
                      work_dir=Path(work), env=env)
        result = np.load(Path(work) / "result.npz")
        values, cycles = result["result"], int(result["cycles"])
    wrong = int((~fm.same(values, golden(op, operands, fmt), fmt)).sum())
    return {"op": op, "format": fmt, "operations": len(operands), "mismatches": wrong,
            "cycles": cycles, "cycle_model": parameters.cycles(len(operands)),
            "simulation_s": round(time.perf_counter() - started, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/float.json"))
    args = parser.parse_args()
    console = Console(width=140)
    runs = []
    for fmt in FLOAT_FORMATS:
        for op in ("add", "mul"):
            console.log(f"{op} {fmt}: {args.pairs:,} random pairs on Verilator")
            runs.append(exactness(op, fmt, args.pairs))
            console.log(runs[-1])
    report = float_report(list(OPERATIONS),
                          advance=lambda name: console.log(f"synthesising {name}"))
    console.print(float_table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"exactness": runs, **report}, indent=2) + "\n")


if __name__ == "__main__":
    main()
