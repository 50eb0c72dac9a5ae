"""Benchmark the TLMM slice: generation, Verilator build, simulation speed, resources.

Run from the repository root::

    python benchmarks/tlmm_bench.py [--out benchmarks/results/tlmm.json] [--quick]

It measures, in one run (absolute times on shared machines are noisy; compare ratios):

- Verilog generation time of each engine at the default configuration;
- Verilator build time of the default TLMM engine (a fresh build directory, no cache);
- simulated cycles per second of ``ternforge run tlmm``'s path (M=8, K=4096, N=256);
- LUT, FF, CARRY8 and LUT per ternary MAC per cycle of the TLMM engines and the plain-adder
  baseline at the same throughput, at several sizes, from Yosys ``synth_xilinx -family xcup``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ternforge.boards import get_board
from ternforge.gen.config import EngineConfig
from ternforge.gen.elaborate import MODULE_NAMES, to_verilog
from ternforge.gen.reports.design import engine_entry
from ternforge.sim import verilator
from ternforge.sim.cocotb.tlmm import write_job

KINDS = ("tlmm", "tlmm-lutram", "adder")
#: (group size, groups per cycle, rows): the sizes compared on the board; every engine keeps
#: its default token tile (8 weight-stationary tokens, 1 table-stationary token)
SIZES = [(3, 8, 16), (3, 8, 32), (2, 12, 32), (4, 6, 32)]
QUICK_SIZES = [(3, 4, 8), (3, 8, 16)]


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def generation_times(config: EngineConfig) -> dict:
    return {MODULE_NAMES[kind]: round(timed(to_verilog, config, kind)[1], 3) for kind in KINDS}


def simulation_speed(config: EngineConfig, kind: str, shape=(8, 4096, 256)) -> dict:
    m, k, n = shape
    rng = np.random.default_rng(0)
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    weights = rng.integers(-1, 2, (n, k)).astype(np.int8)
    with tempfile.TemporaryDirectory() as root:
        build, build_seconds = timed(verilator.build, to_verilog(config, kind),
                                     toplevel=MODULE_NAMES[kind], build_root=Path(root))
        work = Path(root) / "run"
        env = write_job(work, config.parameters(kind), acts, weights)
        _, run_seconds = timed(verilator.run, build, toplevel=MODULE_NAMES[kind],
                               test_module="ternforge.sim.cocotb.tlmm", work_dir=work, env=env)
        result = np.load(work / "result.npz")
    assert np.array_equal(result["y"], acts.astype(np.int64) @ weights.T.astype(np.int64))
    cycles = int(result["cycles"])
    return {"kind": kind, "shape": list(shape), "cycles": cycles,
            "cycle_model": config.parameters(kind).cycles(m, k, n),
            "verilator_build_s": round(build_seconds, 1), "simulation_s": round(run_seconds, 2),
            "simulated_cycles_per_s": round(cycles / run_seconds)}


def resources(sizes, board) -> list[dict]:
    rows = []
    for group_size, groups, rows_per_cycle in sizes:
        config = EngineConfig(group_size=group_size, groups_per_cycle=groups,
                              rows=rows_per_cycle, max_n=2048)
        for kind in KINDS:
            entry, seconds = timed(engine_entry, config, kind, board)
            rows.append({"kind": kind, "group_size": group_size, "groups_per_cycle": groups,
                         "rows": rows_per_cycle, "max_tokens": config.parameters(kind).max_tokens,
                         "max_n": 2048,
                         **entry["resources"], "macs_per_cycle": entry["macs_per_cycle"],
                         "lut_per_mac_per_cycle": entry["lut_per_mac_per_cycle"],
                         "synthesis_s": round(seconds, 1)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def table_of(rows) -> Table:
    table = Table(title="Ternary engines on kv260 (Yosys synth_xilinx -family xcup)")
    for column in ("engine", "G", "P", "R", "MAC/cycle", "LUT", "FF", "CARRY8", "BRAM36",
                   "LUT per MAC/cycle"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["kind"], str(row["group_size"]), str(row["groups_per_cycle"]),
                      str(row["rows"]), str(row["macs_per_cycle"]), f"{row['LUT']:,}",
                      f"{row['FF']:,}", f"{row['CARRY8']:,}", f"{row['BRAM36']}",
                      f"{row['lut_per_mac_per_cycle']:.2f}")
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tlmm.json"))
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args()
    board = get_board("kv260")
    default = EngineConfig()
    report = {
        "board": board.name,
        "generation_s": generation_times(default),
        "simulation": [simulation_speed(default, kind) for kind in ("tlmm", "tlmm-lutram")],
        "resources": resources(QUICK_SIZES if args.quick else SIZES, board),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    console = Console(width=160)
    console.print(report["generation_s"])
    console.print(report["simulation"])
    console.print(table_of(report["resources"]))


if __name__ == "__main__":
    main()
