"""Measure the ulp errors of the non-linear floating-point functions (reciprocal, rsqrt, exp,
sigmoid, SiLU) for float16, bfloat16 and float32.

Run from the repository root::

    python benchmarks/float_functions_bench.py [--out benchmarks/results/float_functions.json]
                                               [--float32-inputs 4194304]

Each point is :func:`ternforge.sim.models.fp_functions.ulp_error` of the bit-exact golden
model of the hardware against float64: every finite input of float16 and bfloat16, and
``--float32-inputs`` random float32 inputs (half uniform bit patterns, half magnitudes in
``[2**-26, 2**E)`` where exp, sigmoid and SiLU do not saturate) plus the boundary inputs
(every exponent's first and last significands, the saturation, overflow and underflow
thresholds). The
components' latencies are listed beside the errors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ternforge.hdl.fp.parameters import FloatUnitParameters
from ternforge.sim.models.fp_functions import FUNCTIONS, sample_inputs, ulp_error

FORMATS = ("float16", "bfloat16", "float32")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/results/float_functions.json"))
    parser.add_argument("--float32-inputs", type=int, default=1 << 22)
    args = parser.parse_args()

    results = []
    for fmt in FORMATS:
        for name in FUNCTIONS:
            bits = (sample_inputs(name, fmt, args.float32_inputs, seed=2024)
                    if fmt == "float32" else None)
            report = ulp_error(name, fmt, bits)
            report["latency"] = FloatUnitParameters(name, fmt).latency
            results.append(report)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    table = Table(title="Non-linear float functions: model (== hardware) vs float64, in ulps")
    for column in ("function", "format", "latency", "inputs", "max ulp", "worst input",
                   "mean ulp"):
        table.add_column(column, justify="left" if column in ("function", "format")
                         else "right")
    for r in results:
        width = 8 if r["format"] == "float32" else 4
        table.add_row(r["function"], r["format"], str(r["latency"]), f"{r['inputs']:,}",
                      f"{r['max_ulp']:.3f}", f"0x{r['worst_input']:0{width}x}",
                      f"{r['mean_ulp']:.4f}")
    Console(width=120).print(table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
