"""The ``ternforge run fp`` and ``ternforge report fp`` commands (registered by
:mod:`ternforge.gen.cli`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from ...hdl.fp.format import FLOAT_FORMATS
from ...hdl.fp.parameters import OPERATIONS
from ._common import console, check_out_file, float_array, load_float_array, simulate

__all__ = ["run_fp", "report_fp"]


@click.command("fp")
@click.option("--op", type=click.Choice(["add", "mul", "fma"]), required=True,
              help="a + b, a * b, or a * b + c rounded once.")
@click.option("--dtype", type=click.Choice(list(FLOAT_FORMATS)), required=True,
              help="Number format (bfloat16 arrays hold uint16 bit patterns).")
@click.option("--a", "a_file", required=True, type=click.Path(path_type=Path), help="A.")
@click.option("--b", "b_file", required=True, type=click.Path(path_type=Path),
              help="B, the shape of A.")
@click.option("--c", "c_file", type=click.Path(path_type=Path),
              help="C, the shape of A (fma only).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Where to write the results (the shape and dtype of A).")
def run_fp(op, dtype, a_file, b_file, c_file, out):
    """Element-wise a + b, a * b or fma(a, b, c) on a generated pipelined unit, simulated by
    Verilator; bit-exact to numpy's own add and multiply."""
    from amaranth.back import verilog

    from ...sim import verilator
    from ...sim.cocotb.fp import write_float_job
    from ...hdl.fp.parameters import FloatUnitParameters
    from ...hdl.fp.units import float_unit

    check_out_file(out, (a_file, b_file, c_file))
    if (op == "fma") != (c_file is not None):
        raise ValueError(f"--c must be given for fma and only for fma, not for {op!r}")
    a = load_float_array(a_file, "A", dtype)
    inputs = [a] + [load_float_array(path, name, dtype, a.shape)
                    for path, name in ((b_file, "B"), (c_file, "C")) if path is not None]
    operands = np.stack([x.reshape(-1) for x in inputs], 1)
    parameters = FloatUnitParameters(op, dtype)
    name = parameters.module_name
    with console.status("building with Verilator"):
        build = verilator.build(verilog.convert(float_unit(parameters), name=name),
                                toplevel=name)
    result = simulate(build, toplevel=name, test_module="ternforge.sim.cocotb.fp",
                       write=lambda work: write_float_job(work, operands,
                                                          parameters.format.width),
                       shape=f"{len(operands)} operations", out=out,
                       output=lambda r: float_array(r["result"], dtype).reshape(a.shape))
    console.print(f"cycles: {int(result['cycles'])} (cycle model "
                  f"{parameters.cycles(len(operands))}, latency {parameters.latency}); "
                  f"wrote {out}")


@click.command("fp")
@click.option("--dtype", "formats", type=click.Choice(list(FLOAT_FORMATS)), multiple=True,
              help="Formats to report (default: all).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("fp_report.json"),
              show_default=True, help="Where to write the report as JSON.")
def report_fp(formats, out):
    """Synthesise every floating-point operator and function: LUT, FF, CARRY8, DSP, latency."""
    from ..reports.fp import float_report, float_table

    check_out_file(out)
    with console.status("synthesising") as status:
        report = float_report(list(OPERATIONS), formats or tuple(FLOAT_FORMATS),
                              advance=lambda name: status.update(f"synthesising {name}"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(float_table(report))
