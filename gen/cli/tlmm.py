"""The matmul commands: ``run tlmm`` (an engine alone) and ``run gemv`` (the GEMV path
from a DDR model)."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
from amaranth.back import verilog

from ...hdl.gemv.parameters import GemvParameters
from ...hdl.matmul.parameters import TlmmParameters
from ..config import ENGINES, EngineConfig
from ..elaborate import GEMV_TOP, MODULE_NAMES, gemv_top, to_verilog
from ._common import check_out_file, console, design, load_array, simulate

__all__ = ["run_tlmm", "run_gemv"]


def _check_job(weights: np.ndarray, acts: np.ndarray, parameters: TlmmParameters) -> None:
    bad = weights[(weights < -1) | (weights > 1)]
    if bad.size:
        raise ValueError(f"Weights must be in {{-1, 0, 1}}, not {int(bad.flat[0])!r}")
    bad = acts[(acts < -128) | (acts > 127)]
    if bad.size:
        raise ValueError(f"Activations must be int8 (-128..127), not {int(bad.flat[0])!r}")
    if acts.shape[1] != weights.shape[1]:
        raise ValueError(f"Activations must have K = {weights.shape[1]} columns like the "
                         f"weights, not {acts.shape[1]!r}")
    parameters.check_job(len(acts), weights.shape[1], len(weights))
    if parameters.acc_width > 32:
        raise ValueError(f"Maximum K must keep results within int32, not {parameters.max_k!r}")


def _job_options(command):
    """The --weights, --acts and --out options every ``run`` of a matmul takes."""
    for option in reversed([
        click.option("--weights", required=True, type=click.Path(path_type=Path),
                     help="Ternary weights W (N, K), integers in {-1, 0, 1}."),
        click.option("--acts", required=True, type=click.Path(path_type=Path),
                     help="Activations X (M, K), int8 values, M >= 1."),
        click.option("--out", required=True, type=click.Path(path_type=Path),
                     help="Where to write Y = X @ W.T (M, N) as int32.")]):
        command = option(command)
    return command


@click.command("tlmm")
@_job_options
@click.option("--group-size", default=3, show_default=True, help="Weights per table group (G).")
@click.option("--rows", default=16, show_default=True, help="Output rows per cycle (R).")
@click.option("--groups-per-cycle", default=8, show_default=True, help="Groups per cycle (P).")
@click.option("--max-tokens", default=8, show_default=True, help="Token tile (accumulators).")
@click.option("--max-k", default=8192, show_default=True, help="Longest K the accumulators hold.")
@click.option("--max-n", default=8192, show_default=True,
              help="Most rows N (tlmm-lutram accumulator depth).")
@click.option("--table-tokens", default=1, show_default=True,
              help="Token tile of tlmm-lutram (tables per bank).")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="tlmm-lutram",
              show_default=True,
              help="tlmm-lutram (tables in LUT-RAM), tlmm (tables in registers) or adder "
                   "(the plain-adder baseline).")
def run_tlmm(weights, acts, out, group_size, rows, groups_per_cycle, max_tokens, max_k, max_n,
             table_tokens, engine):
    """Compute Y = X @ W.T on the generated engine, simulated by Verilator."""
    from ...sim import verilator
    from ...sim.cocotb.tlmm import write_job

    config = EngineConfig(group_size=group_size, groups_per_cycle=groups_per_cycle, rows=rows,
                          max_tokens=max_tokens, max_k=max_k, max_n=max_n,
                          table_tokens=table_tokens)
    parameters = config.parameters(engine)
    check_out_file(out, (weights, acts))
    w, x = load_array(weights, "Weights"), load_array(acts, "Activations")
    _check_job(w, x, parameters)
    started = time.perf_counter()
    with console.status("building with Verilator"):
        build = verilator.build(to_verilog(config, engine), toplevel=MODULE_NAMES[engine])
    built = time.perf_counter()
    result = simulate(build, toplevel=MODULE_NAMES[engine],
                       test_module="ternforge.sim.cocotb.tlmm",
                       write=lambda work: write_job(work, parameters, x, w),
                       shape=f"{len(x)}x{w.shape[1]}x{len(w)}", out=out,
                       output=lambda result: result["y"].astype(np.int32))
    finished = time.perf_counter()
    cycles = int(result["cycles"])
    model = parameters.cycles(len(x), w.shape[1], len(w))
    console.print(f"cycles: {cycles} (cycle model {model}); build {built - started:.1f} s, "
                  f"simulation {finished - built:.1f} s; wrote {out}")


@click.command("gemv")
@_job_options
@click.option("--board", default=None, help="Target board (default kv260).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Design configuration, TOML or JSON.")
@click.option("--mem-latency", default=20, show_default=True,
              help="Memory model latency in cycles.")
@click.option("--mem-bytes-per-cycle", type=float, default=64.0, show_default=True,
              help="Memory model bandwidth limit in bytes per cycle.")
@click.option("--data-bits", type=int, default=None,
              help="AXI4 read data width (default 512, or narrower than a small weight beat).")
def run_gemv(weights, acts, out, board, config_file, mem_latency, mem_bytes_per_cycle,
             data_bits):
    """Compute Y = X @ W.T through DDR model, weight buffer and TLMM engine on Verilator."""
    from ...sim import verilator
    from ...sim.cocotb.tlmm import write_job

    from ...sim.models.weight_plan import MemoryModel, plan_layer

    config, target = design(board, config_file)
    config = config.tlmm
    engine = config.parameters("tlmm-lutram")
    check_out_file(out, (weights, acts))
    w, x = load_array(weights, "Weights"), load_array(acts, "Activations")
    _check_job(w, x, engine)
    data_bits = GemvParameters.default_data_bits(engine) if data_bits is None else data_bits
    plan = plan_layer(n=len(w), k=w.shape[1], tokens=len(x), engine=engine, board=target,
                      memory=MemoryModel(bytes_per_cycle=mem_bytes_per_cycle,
                                         latency=mem_latency, axi_data_bits=data_bits))
    top = gemv_top(config, data_bits=data_bits, buffer_depth=plan.capacity_beats)
    with console.status("building the GEMV top with Verilator"):
        build = verilator.build(verilog.convert(top, name=GEMV_TOP), toplevel=GEMV_TOP)
    memory = {"data_bits": data_bits, "latency": mem_latency,
              "bytes_per_cycle": mem_bytes_per_cycle, "resident": plan.resident}
    result = simulate(build, toplevel=GEMV_TOP, test_module="ternforge.sim.cocotb.gemv",
                       write=lambda work: write_job(work, engine, x, w, memory=memory),
                       shape=f"{len(x)}x{w.shape[1]}x{len(w)}", out=out,
                       output=lambda result: result["y"].astype(np.int32))
    cycles, stalls, read = (int(result[key]) for key in ("cycles", "stalls", "bytes"))
    console.print(f"cycles: {cycles} (planned {plan.cycles}), stall cycles: {stalls} (planned "
                  f"{plan.stall_cycles}), DDR bytes: {read:,}, achieved "
                  f"{read / cycles:.2f} bytes/cycle of {mem_bytes_per_cycle:g}; wrote {out}")
