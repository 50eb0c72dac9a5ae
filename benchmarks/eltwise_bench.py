"""Benchmark the element-wise stages and unit: resources (Yosys, kv260's fabric), latency and
cycles per token at BitNet b1.58's hidden sizes, in float32.

Run from the repository root::

    python benchmarks/eltwise_bench.py [--hidden 1536 2560] [--out benchmarks/results/eltwise.json]

Each point is ``ternforge report eltwise``'s report (cached per stage). 1536 is BitNet b1.58
0.7B's hidden size (TeLLMe's model), 2560 the 2B4T's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from ternforge.boards import get_board
from ternforge.gen.reports.eltwise import eltwise_report, eltwise_table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[1536, 2560])
    parser.add_argument("--format", default="float32")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/eltwise.json"))
    args = parser.parse_args()
    console = Console(width=160)
    reports = []
    for hidden in args.hidden:
        report = eltwise_report(get_board("kv260"), format=args.format, hidden=hidden,
                                advance=lambda name: console.log(f"synthesising {name}"))
        reports.append(report)
        console.print(eltwise_table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(reports, indent=2) + "\n")


if __name__ == "__main__":
    main()
