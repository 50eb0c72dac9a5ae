"""The ``ternforge run fp`` and ``ternforge report fp`` commands (registered by
:mod:`ternforge.gen.cli`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from ...hdl.fp.format import FLOAT_FORMATS, float_format
from ...hdl.fp.units import FLOAT_UNITS

__all__ = ["run_fp", "report_fp", "load_float_array", "float_array"]


def load_float_array(path: Path, what: str, fmt, shape=None) -> np.ndarray:
    """The bit patterns of the ``fmt`` array in ``path``: float16 or float32 arrays of that
    dtype, bfloat16 as uint16 bit patterns (or ml_dtypes' bfloat16); ``shape`` if given."""
    from ...sim.models.fp import bits_dtype, numpy_dtype
    from . import _read_npy

    fmt = float_format(fmt)
    array = _read_npy(path, what)
    accepted = {numpy_dtype(fmt)} | ({np.dtype(np.uint16)} if fmt.name == "bfloat16" else set())
    if array.dtype not in accepted:
        rule = " (uint16 bit patterns)" if fmt.name == "bfloat16" else ""
        raise ValueError(f"{what} must be an array of {fmt.name}{rule}, "
                         f"not of dtype {str(array.dtype)!r}")
    if array.size == 0 or (shape is not None and array.shape != tuple(shape)):
        rule = f"of shape {tuple(shape)!r}" if shape is not None else "non-empty"
        raise ValueError(f"{what} must be {rule}, not of shape {array.shape!r}")
    return array.view(bits_dtype(fmt))


def float_array(bits, fmt) -> np.ndarray:
    """The array to write for bit patterns ``bits``: bfloat16 stays uint16 bit patterns."""
    from ...sim.models.fp import bits_dtype, from_bits

    fmt = float_format(fmt)
    bits = np.asarray(bits).astype(bits_dtype(fmt))
    return bits if fmt.name == "bfloat16" else from_bits(bits, fmt)


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
    from . import _check_out_file, _simulate, console
    from ...hdl.fp.units import float_unit, module_name

    _check_out_file(out)
    if (op == "fma") != (c_file is not None):
        raise ValueError(f"--c must be given for fma and only for fma, not for {op!r}")
    a = load_float_array(a_file, "A", dtype)
    inputs = [a] + [load_float_array(path, name, dtype, a.shape)
                    for path, name in ((b_file, "B"), (c_file, "C")) if path is not None]
    operands = np.stack([x.reshape(-1) for x in inputs], 1)
    unit, name = float_unit(op, dtype), module_name(op, dtype)
    with console.status("building with Verilator"):
        build = verilator.build(verilog.convert(unit, name=name), toplevel=name)
    result = _simulate(build, toplevel=name, test_module="ternforge.sim.cocotb.fp",
                       write=lambda work: write_float_job(work, operands, unit.format.width),
                       shape=f"{len(operands)} operations", out=out,
                       output=lambda r: float_array(r["result"], dtype).reshape(a.shape))
    console.print(f"cycles: {int(result['cycles'])} (cycle model {unit.cycles(len(operands))},"
                  f" latency {unit.latency}); wrote {out}")


@click.command("fp")
@click.option("--dtype", "formats", type=click.Choice(list(FLOAT_FORMATS)), multiple=True,
              help="Formats to report (default: all).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("fp_report.json"),
              show_default=True, help="Where to write the report as JSON.")
def report_fp(formats, out):
    """Synthesise every floating-point operator and function: LUT, FF, CARRY8, DSP, latency."""
    from . import _check_out_file, console
    from ..reports.fp import float_report, float_table

    _check_out_file(out)
    with console.status("synthesising") as status:
        report = float_report(list(FLOAT_UNITS), formats or tuple(FLOAT_FORMATS),
                              advance=lambda name: status.update(f"synthesising {name}"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(float_table(report))
