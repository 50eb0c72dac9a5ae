"""Benchmark the MAC-array engines: every architecture x variant synthesised with Yosys for
kv260's fabric, LUT-only and with DSP48E2, at two sizes.

Run from the repository root::

    python benchmarks/mac_bench.py [--sizes 8 4] [--width 8] [--out benchmarks/results/mac.json]

(the README figures come from ``--sizes 8 --out benchmarks/results/mac_8.json`` and
``--sizes 4 --out benchmarks/results/mac_4.json``, run side by side)

Each point is ``ternforge report mac``'s report (cached per engine); the figures are the
README's side-by-side table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

from ternforge.gen.reports.mac import mac_report, mac_table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 4])
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mac.json"))
    args = parser.parse_args()
    console = Console(width=160)
    reports = []
    for size in args.sizes:
        for dsp in (False, True):
            started = time.perf_counter()
            report = mac_report(size=size, width=args.width, dsp=dsp,
                                advance=lambda name: console.log(f"synthesising {name}"))
            report["synthesis_s"] = round(time.perf_counter() - started, 1)
            reports.append(report)
            console.print(mac_table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(reports, indent=2) + "\n")


if __name__ == "__main__":
    main()
