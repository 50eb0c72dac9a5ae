"""Benchmark the GEMV path on kv260: planner predictions against Verilator simulation.

Run from the repository root::

    python benchmarks/gemv_bench.py [--out benchmarks/results/gemv.json]

For decode GEMVs (one token) of BitNet-sized projections it simulates the generated top
(``ternforge run gemv``'s path) against the deterministic AXI4 memory model and puts the
measured cycles, stall cycles and bandwidth use beside the planner's, and does the same for a
64-token prefill whose layer stays resident in URAM and is replayed for every token, and for
an 8-token prefill that streams the layer from DDR once per token instead.
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
from rich.table import Table

from ternforge.boards import get_board
from ternforge.gen.config import EngineConfig
from ternforge.gen.elaborate import GEMV_TOP, gemv_top
from ternforge.sim.models.weight_plan import MemoryModel, plan_layer
from ternforge.sim import verilator
from ternforge.sim.cocotb.tlmm import write_job

LATENCY, BYTES_PER_CYCLE, DATA_BITS = 20, 64.0, 512
#: (N, K): BitNet b1.58 0.7B projections (q/k/v/o: 1536 x 1536, up/gate: 4096 x 1536)
DECODE_SHAPES = [(1536, 1536), (4096, 1536)]


def simulate(config, plan) -> dict:
    n, k, m = plan.n, plan.k, plan.tokens
    top = gemv_top(config, data_bits=DATA_BITS, buffer_depth=plan.capacity_beats)
    build = verilator.build(verilog.convert(top, name=GEMV_TOP), toplevel=GEMV_TOP)
    rng = np.random.default_rng(n + k)
    weights = rng.integers(-1, 2, (n, k)).astype(np.int8)
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    with tempfile.TemporaryDirectory() as work_name:
        work = Path(work_name)
        env = write_job(work, config.parameters("tlmm-lutram"), acts, weights, memory={
            "data_bits": DATA_BITS, "latency": LATENCY, "bytes_per_cycle": BYTES_PER_CYCLE,
            "resident": plan.resident})
        started = time.perf_counter()
        verilator.run(build, toplevel=GEMV_TOP, test_module="ternforge.sim.cocotb.gemv",
                      work_dir=work, env=env)
        seconds = time.perf_counter() - started
        result = np.load(work / "result.npz")
    assert np.array_equal(result["y"], acts.astype(np.int64) @ weights.T.astype(np.int64))
    cycles, stalls, read = (int(result[key]) for key in ("cycles", "stalls", "bytes"))
    return {"cycles": cycles, "stalls": stalls, "bytes": read,
            "bandwidth_utilization": round(read / cycles / BYTES_PER_CYCLE, 4),
            "simulation_s": round(seconds, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gemv.json"))
    args = parser.parse_args()
    board, config = get_board("kv260"), EngineConfig()
    memory = MemoryModel(bytes_per_cycle=BYTES_PER_CYCLE, latency=LATENCY,
                         axi_data_bits=DATA_BITS)
    rows = []
    runs = [("decode", n, k, 1, None) for n, k in DECODE_SHAPES] + [
        ("prefill", 4096, 1536, 64, None), ("prefill, streamed", 4096, 1536, 8, False)]
    for phase, n, k, m, resident in runs:
        plan = plan_layer(n=n, k=k, engine=config.parameters("tlmm-lutram"), board=board,
                          memory=memory, tokens=m, resident=resident)
        rows.append({"phase": phase, "n": n, "k": k, "tokens": m, "resident": plan.resident,
                     "uram": plan.uram_count, "predicted_cycles": plan.cycles,
                     "predicted_stalls": plan.stall_cycles,
                     "predicted_bandwidth_utilization": plan.bandwidth_utilization,
                     "simulated": simulate(config, plan)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"board": board.name, "memory": {
        "latency": LATENCY, "bytes_per_cycle": BYTES_PER_CYCLE, "data_bits": DATA_BITS},
        "rows": rows}, indent=2) + "\n")
    table = Table(title="GEMV path on kv260: planner vs Verilator")
    for column in ("phase", "N x K", "M", "URAM", "predicted cycles", "simulated cycles",
                   "predicted stalls", "simulated stalls", "bandwidth used"):
        table.add_column(column, justify="right")
    for row in rows:
        simulated = row["simulated"] or {}
        table.add_row(row["phase"], f"{row['n']} x {row['k']}", str(row["tokens"]),
                      str(row["uram"]), f"{row['predicted_cycles']:,}",
                      f"{simulated['cycles']:,}" if simulated else "-",
                      f"{row['predicted_stalls']:,}",
                      f"{simulated['stalls']:,}" if simulated else "-",
                      f"{simulated.get('bandwidth_utilization', row['predicted_bandwidth_utilization']):.1%}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
