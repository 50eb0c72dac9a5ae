"""Benchmark the attention unit at BitNet b1.58's attention shapes: resources (Yosys, kv260's
fabric), cycles and milliseconds of prefill (M = 64, 128) and decode (L = 128, 1024), DDR
bytes read by the tiled loop order against the naive one.

Run from the repository root::

    python benchmarks/attention_bench.py [--lanes 1 4 8] [--out benchmarks/results/attention.json]

0.7B: 16 heads (16 KV heads), D = 96 (TeLLMe's model); 2B4T: 20 heads over 5 KV heads,
D = 128. Each point (a model at a number of lanes) is ``ternforge report attention``'s
report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from ternforge.boards import get_board
from ternforge.gen.reports.attention import attention_report, attention_table

SHAPES = {"bitnet-0.7b": dict(head_dim=96, heads=16, kv_heads=16),
          "bitnet-2b4t": dict(head_dim=128, heads=20, kv_heads=5)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SHAPES))
    parser.add_argument("--lanes", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/attention.json"))
    args = parser.parse_args()
    console = Console(width=160)
    reports = {}
    for model in args.models:
        for lanes in args.lanes:
            console.log(f"synthesising the attention units for {model}, {lanes} lanes")
            point = reports[f"{model}/lanes{lanes}"] = attention_report(
                get_board("kv260"), **SHAPES[model], lanes=lanes)
            console.print(attention_table(point))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(reports, indent=2) + "\n")


if __name__ == "__main__":
    main()
