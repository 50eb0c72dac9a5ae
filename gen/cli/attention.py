"""The ``ternforge run attention`` and ``ternforge report attention`` commands (registered by
:mod:`ternforge.gen.cli`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from ...hdl.fp.format import FLOAT_FORMATS
from ._common import console, check_out_file, read_npy, simulate

__all__ = ["run_attention", "report_attention"]


def _load(path: Path, what: str, fmt: str) -> np.ndarray:
    from ...sim.jobs.attention import float_bits

    array = read_npy(path, what)
    if array.dtype.kind != "f":
        raise ValueError(f"{what} must be a float array, not of dtype {str(array.dtype)!r}")
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{what} must be a non-empty (heads, tokens, head_dim) array, not of "
                         f"shape {array.shape!r}")
    return float_bits(array, fmt)


@click.command("attention")
@click.option("--phase", type=click.Choice(["prefill", "decode"]), required=True,
              help="Causal prefill of M tokens, or one query against a context of L keys.")
@click.option("--q", "q_file", required=True, type=click.Path(path_type=Path),
              help="Queries (H, M, D); decode: (H, 1, D).")
@click.option("--k", "k_file", required=True, type=click.Path(path_type=Path),
              help="Keys (Hkv, N, D), Hkv dividing H; prefill: N = M; decode: the context, "
                   "the newest key last (it is appended to the cache).")
@click.option("--v", "v_file", required=True, type=click.Path(path_type=Path),
              help="Values, shaped as K.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Where to write O (H, M, D) as float32.")
@click.option("--dtype", type=click.Choice(list(FLOAT_FORMATS)), default="float32",
              show_default=True, help="Arithmetic format (inputs are rounded to it once).")
@click.option("--rows", default=8, show_default=True,
              help="Query rows per prefill tile (decode: the query heads per KV head).")
@click.option("--cols", default=8, show_default=True, help="Keys per tile.")
@click.option("--lanes", type=int, default=None,
              help="Parallel fmas: a power of two, D / lanes above the fma latency (7) "
                   "[default: the most, to 8, that D and the AXI port allow].")
def run_attention(phase, q_file, k_file, v_file, out, dtype, rows, cols, lanes):
    """Attention of Q against K and V on the generated attention unit, simulated by
    Verilator (the KV cache in an AXI4 memory model); prints cycles and DDR bytes read."""
    from amaranth.back import verilog

    from ...hdl.attention.parameters import AttentionUnitParameters
    from ...sim import verilator
    from ...sim.cocotb.attention import write_attention_job
    from ...sim.jobs.attention import AttentionJob
    from ...sim.models import fp as fm

    check_out_file(out, (q_file, k_file, v_file))
    q, k, v = (_load(path, name, dtype) for path, name in ((q_file, "Q"), (k_file, "K"),
                                                           (v_file, "V")))
    group = q.shape[0] // k.shape[0] if k.shape[0] and q.shape[0] % k.shape[0] == 0 else 1
    job = AttentionJob(AttentionUnitParameters.for_problem(
        phase, q.shape[2], k.shape[1], group, dtype, rows=rows, cols=cols, lanes=lanes))
    job.check(q, k, v, phase)
    unit, name = job.component(), job.module_name
    with console.status("building with Verilator"):
        build = verilator.build(verilog.convert(unit, name=name), toplevel=name)
    result = simulate(build, toplevel=name, test_module="ternforge.sim.cocotb.attention",
                      write=lambda work: write_attention_job(work, job, q, k, v, phase),
                      shape=f"{phase} of {q.shape} against {k.shape}", out=out,
                      output=lambda r: fm.from_bits(r["o"], dtype).astype(np.float32))
    commands = job.commands(q, k, v, phase)[0]
    engine = job.unit.engine
    model = job.cycles(commands) if job.unit.modeled(commands) else "n/a: an empty cache"
    console.print(f"unit: {engine.lanes} lanes, tiles {engine.rows} x {engine.cols}; "
                  f"cycles: {int(result['cycles'])} (cycle model {model}); "
                  f"DDR bytes read: {int(result['bytes_read'])}; wrote {out}")


@click.command("attention")
@click.option("--head-dim", default=96, show_default=True, help="D (BitNet b1.58 0.7B: 96).")
@click.option("--heads", default=16, show_default=True, help="Query heads.")
@click.option("--kv-heads", default=16, show_default=True, help="KV heads.")
@click.option("--dtype", type=click.Choice(list(FLOAT_FORMATS)), default="float32",
              show_default=True, help="Arithmetic format.")
@click.option("--lanes", type=int, default=None,
              help="Parallel fmas [default: the most, to 8, that D allows].")
@click.option("--board", default="kv260", show_default=True, help="Board (clock).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("attention_report.json"),
              show_default=True, help="Where to write the report as JSON.")
def report_attention(head_dim, heads, kv_heads, dtype, lanes, board, out):
    """Synthesise the attention unit; cycles, milliseconds and DDR traffic of prefill (M = 64,
    128) and decode (L = 128, 1024) for a model's shape."""
    from ...boards import get_board
    from ..reports.attention import attention_report, attention_table

    check_out_file(out)
    with console.status("synthesising the attention unit"):
        report = attention_report(get_board(board), head_dim=head_dim, heads=heads,
                                  kv_heads=kv_heads, fmt=dtype, lanes=lanes)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(attention_table(report))
