"""The design sweep behind the accelerator's default HP ports, attention tile and lanes and
vector lanes: BitNet b1.58 0.7B on the kv260, its HP ports x attention engine's tile rows x
lanes x vector unit's lanes, on tiles of 64 keys (16 points, ``ternforge sweep`` against
decode tokens/s at contexts 128 and 1,024 and the time to the first token of a 64-token
prompt), then the Pareto front. (Eight lanes need a tile of 64 keys at one query row; two HP
ports take two vector lanes at most.) The front is speed only: which of its points fit is
``ternforge perf``'s synthesis (the README's table of what each lever costs).

Every figure is modeled (:mod:`ternforge.gen.perf`: the accelerator's cycle model, which the
tests check on Verilator to the cycle) at :data:`~ternforge.gen.perf.LATENCY_NS` ns of DDR
latency (whole cycles of the board's clock); the points are not synthesised here
(``ternforge perf`` synthesises the chosen default and says whether it fits). Points are
cached: a rerun costs seconds.

Run: ``python benchmarks/sweep_bench.py [--out FOLDER] [--jobs N]``; results in
``benchmarks/results/sweep/`` (``sweep.jsonl``, ``pareto.json``, ``pareto.png``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ternforge.gen.cli import main as ternforge  # noqa: E402

GRID = {"accelerator.hp_ports": "2,4", "accelerator.attention_rows": "1,4",
        "accelerator.attention_cols": "64", "accelerator.attention_lanes": "4,8",
        "accelerator.vector_lanes": "1,2"}
OBJECTIVES = ("tokens_per_s@1024", "tokens_per_s@128", "ttft@64")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "sweep")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    command = ["sweep", "--model", "bitnet-0.7b", "--board", "kv260", "--no-synthesis",
               "--jobs", str(args.jobs), "--out", str(args.out)]
    for name, values in GRID.items():
        command += ["--param", f"{name}={values}"]
    for objective in OBJECTIVES:
        command += ["--objective", objective]
    ternforge(command)


if __name__ == "__main__":
    main()
