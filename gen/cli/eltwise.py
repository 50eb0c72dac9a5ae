"""The ``ternforge run eltwise`` command (registered by :mod:`ternforge.gen.cli`)."""

from __future__ import annotations

import math
from pathlib import Path

import click
import numpy as np

from ...hdl.fp.format import FLOAT_FORMATS
from ...sim.jobs.eltwise import INPUTS, OPS
from ._common import console, check_out_file, float_array, load_array, load_float_array, simulate

__all__ = ["run_eltwise", "report_eltwise"]

#: input name -> (option, help)
_OPTIONS = {
    "acc": ("--acc", "Accumulators (tokens, n), integers within int32."),
    "act_scale": ("--act-scale", "Activation scales (tokens,)."),
    "weight_scale": ("--weight-scale", "The weight scale, one value (shape () or (1,))."),
    "x": ("--x", "Input vectors (tokens, n); for rope (tokens, d), d even."),
    "residual": ("--residual", "Residual (tokens, n)."),
    "gate": ("--gate", "Gate projection (tokens, n)."),
    "up": ("--up", "Up projection (tokens, n)."),
    "cos": ("--cos", "Cosines (tokens, d/2) of the angles of pairs (i, i + d/2)."),
    "sin": ("--sin", "Sines (tokens, d/2)."),
    "gain": ("--gain", "RMSNorm gains (n,)."),
}


def _options(command):
    for name, (option, text) in reversed(_OPTIONS.items()):
        command = click.option(option, name, type=click.Path(path_type=Path),
                               help=text)(command)
    return command


def _inputs(op: str, files: dict, dtype: str, eps: float) -> dict:
    """The job's arrays (bit patterns) from the files given, checked against ``op``."""
    from ...sim.models import fp as fm

    wanted = [n for n in INPUTS[op] if n != "eps"]
    for name, path in files.items():
        if path is not None and name not in wanted:
            takes = ", ".join(_OPTIONS[n][0] for n in wanted)
            raise ValueError(f"{_OPTIONS[name][0]} must not be given to {op} (it takes "
                             f"{takes})")
    for name in wanted:
        if files[name] is None:
            raise ValueError(f"{_OPTIONS[name][0]} must be given to {op}")
    arrays = {}
    if "acc" in wanted:
        acc = load_array(files["acc"], "Accumulators")
        if acc.min() < -(1 << 31) or acc.max() >= 1 << 31:
            raise ValueError(f"Accumulators must fit int32, not {int(abs(acc).max())!r}")
        arrays["acc"] = acc.astype(np.int64)
    main = "acc" if "acc" in wanted else wanted[0]
    first = arrays.get(main)
    if first is None:
        first = load_float_array(files[main], main.capitalize(), dtype)
        if first.ndim != 2 or (op == "rope" and first.shape[1] % 2):
            rule = "(tokens, d) with d even" if op == "rope" else "(tokens, n)"
            raise ValueError(f"{main.capitalize()} must be of shape {rule}, "
                             f"not {first.shape!r}")
        arrays[main] = first
    tokens, n = first.shape
    shapes = {"act_scale": (tokens,), "weight_scale": None, "residual": (tokens, n),
              "gate": (tokens, n), "up": (tokens, n), "cos": (tokens, n // 2),
              "sin": (tokens, n // 2), "gain": (n,), "x": (tokens, n)}
    for name in wanted:
        if name not in arrays:
            what = name.replace("_", " ").capitalize()
            array = load_float_array(files[name], what, dtype, shapes[name])
            if shapes[name] is None:
                if array.size != 1:
                    raise ValueError(f"{what} must be one value, not of shape {array.shape!r}")
                array = array.reshape(())
            arrays[name] = array
    if "eps" in INPUTS[op]:
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"RMSNorm epsilon (--eps) must be a finite number above 0, not "
                             f"{eps!r}")
        arrays["eps"] = fm.to_bits(np.float64(eps), dtype)
    return arrays


@click.command("eltwise", help="""Run one element-wise stage on a generated unit,
simulated by Verilator; the outputs equal the golden model (ternforge.sim.models.eltwise)
bit for bit. Float arrays are of --dtype (bfloat16 as uint16 bit patterns).

\b
op        inputs                                  writes (--out)
dequant   --acc --act-scale --weight-scale         y = (acc * act_scale) * weight_scale
residual  --x --residual                           y = x + residual
silu      --gate --up                              y = silu(gate) * up
relu2     --gate --up                              y = relu(gate)**2 * up
rope      --x --cos --sin                          y = x rotated, pairs (i, i + d/2)
rmsnorm   --x --gain [--eps]                       y = x / sqrt(mean(x**2) + eps) * gain
quant     --x                                      .npz: codes (int8), scale = absmax/127
unit      --acc --act-scale --weight-scale         .npz: hidden = dequant(acc) + residual,
          --residual --gain [--eps]                codes and scale of rmsnorm(hidden)
""")
@click.option("--op", type=click.Choice(OPS), required=True, help="The stage to run.")
@click.option("--dtype", type=click.Choice(list(FLOAT_FORMATS)), default="float32",
              show_default=True, help="Arithmetic format.")
@_options
@click.option("--eps", type=float, default=1e-5, show_default=True, help="RMSNorm epsilon.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Where to write y (.npy), or for quant and unit the outputs (.npz).")
def run_eltwise(op, dtype, eps, out, **files):
    from amaranth.back import verilog

    from ...sim import verilator
    from ...sim.cocotb.eltwise import write_eltwise_job
    from ...sim.jobs.eltwise import EltwiseJob

    check_out_file(out, files.values())
    arrays = _inputs(op, files, dtype, eps)
    tokens, beats = EltwiseJob(op=op, format=dtype).shape(arrays)
    # two-pass buffers: the next power of two, at least 64 (one build serves many lengths)
    job = EltwiseJob(op=op, format=dtype, max_length=max(64, 1 << (beats - 1).bit_length()))
    name = job.module_name
    with console.status("building with Verilator"):
        build = verilator.build(verilog.convert(job.component(), name=name), toplevel=name)

    def output(result):
        arrays = {key: float_array(result[key], dtype) if key != "codes" else result[key]
                  for key in job.outputs}
        return arrays["y"] if job.outputs == ("y",) else arrays
    result = simulate(build, toplevel=name, test_module="ternforge.sim.cocotb.eltwise",
                       write=lambda work: write_eltwise_job(work, job, arrays),
                       shape=f"{tokens} tokens of {beats}", out=out, output=output)
    console.print(f"cycles: {int(result['cycles'])} (cycle model "
                  f"{job.parameters.cycles(*job.shape(arrays))}); wrote {out}")


@click.command("eltwise")
@click.option("--dtype", type=click.Choice(list(FLOAT_FORMATS)), default="float32",
              show_default=True, help="Arithmetic format.")
@click.option("--hidden", default=1536, show_default=True,
              help="Hidden size: the two-pass stages' buffer depth and the vector length.")
@click.option("--board", default="kv260", show_default=True, help="Board (clock).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("eltwise_report.json"),
              show_default=True, help="Where to write the report as JSON.")
def report_eltwise(dtype, hidden, board, out):
    """Synthesise every element-wise stage and the unit: resources, latency, cycles."""
    import json

    from ...boards import get_board
    from ..reports.eltwise import eltwise_report, eltwise_table

    check_out_file(out)
    target = get_board(board)
    with console.status("synthesising") as status:
        report = eltwise_report(target, format=dtype, hidden=hidden,
                                advance=lambda name: status.update(f"synthesising {name}"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(eltwise_table(report))
