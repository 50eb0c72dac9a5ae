"""The ``ternforge run mac`` and ``ternforge report mac`` commands (registered by
:mod:`ternforge.gen.cli`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from ...hdl.mac.parameters import ARCHITECTURES, VARIANTS, MacArrayParameters
from ._common import console, check_out_file, load_array, simulate

__all__ = ["run_mac", "report_mac"]

_SIGNED = click.option("--unsigned", "unsigned_operands", is_flag=True,
                       help="Unsigned operands (default: two's complement).")


@click.command("mac")
@click.option("--arch", type=click.Choice(ARCHITECTURES), required=True,
              help="MAC-array architecture.")
@click.option("--variant", type=click.Choice(VARIANTS), default="baseline", show_default=True)
@click.option("--a", "a_file", required=True, type=click.Path(path_type=Path),
              help="A (M, K), integers within the operand width.")
@click.option("--b", "b_file", required=True, type=click.Path(path_type=Path),
              help="B (K, N), integers within the operand width.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Where to write C = A @ B (M, N) as int64.")
@click.option("--width", default=8, show_default=True, help="Operand bits.")
@click.option("--size", default=4, show_default=True, help="Array size (size**2 multipliers).")
@_SIGNED
def run_mac(arch, variant, a_file, b_file, out, width, size, unsigned_operands):
    """Compute C = A @ B on a generated MAC array, simulated by Verilator."""
    from amaranth.back import verilog

    from ...hdl.mac.array import mac_array
    from ...sim import verilator
    from ...sim.cocotb.mac import write_mac_job
    from ...sim.jobs.mac import check_job

    check_out_file(out, (a_file, b_file))
    a, b = load_array(a_file, "A"), load_array(b_file, "B")
    max_k = 1 << max(a.shape[1] - 1, 0).bit_length()  # one build per power of two of K
    parameters = MacArrayParameters(arch=arch, variant=variant, size=size, width=width,
                                    signed=not unsigned_operands, max_k=max_k)
    check_job(parameters, a, b)
    if parameters.acc_width > 64:
        raise ValueError(f"Results must fit int64, but width {width} and K = {a.shape[1]} "
                         f"need {parameters.acc_width} bits")
    name = parameters.module_name
    with console.status("building with Verilator"):
        build = verilator.build(verilog.convert(mac_array(parameters), name=name),
                                toplevel=name)
    result = simulate(build, toplevel=name, test_module="ternforge.sim.cocotb.mac",
                       write=lambda work: write_mac_job(work, parameters, a, b),
                       shape=f"{len(a)}x{a.shape[1]}x{b.shape[1]}", out=out,
                       output=lambda result: result["c"].astype(np.int64))
    cycles = int(result["cycles"])
    console.print(f"cycles: {cycles} (cycle model "
                  f"{parameters.cycles(len(a), b.shape[1], a.shape[1])}); wrote {out}")


@click.command("mac")
@click.option("--size", default=8, show_default=True, help="Array size (size**2 multipliers).")
@click.option("--width", default=8, show_default=True, help="Operand bits.")
@_SIGNED
@click.option("--dsp/--no-dsp", default=True, show_default=True,
              help="Let Yosys map multipliers to DSP48E2, or force LUTs and carry chains.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("mac_report.json"),
              show_default=True, help="Where to write the report as JSON.")
def report_mac(size, width, unsigned_operands, dsp, out):
    """Synthesise every MAC-array architecture, baseline and transformed, side by side."""
    from rich.progress import Progress

    from ..reports.mac import mac_report, mac_table

    check_out_file(out)
    for arch in ARCHITECTURES:  # validate every engine before the long work
        MacArrayParameters(arch=arch, size=size, width=width, signed=not unsigned_operands)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("synthesising", total=len(VARIANTS) * len(ARCHITECTURES))

        def advance(name):
            progress.update(task, description=f"synthesising {name} (Yosys)")
            progress.advance(task)
        report = mac_report(size=size, width=width, signed=not unsigned_operands, dsp=dsp,
                            advance=advance)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    console.print(mac_table(report))
    console.print(f"wrote {out}")
