"""Modeled tokens per second and time to the first token of BitNet b1.58 0.7B and 2B4T on the
kv260 and the zcu104, with each board's default design (``ternforge perf`` of each: on the
zcu104 16 attention lanes and 4 vector lanes, which only its LUTs hold), and on the zcu104
with the kv260's design, beside TeLLMe's published figures.

Every figure comes from the accelerator's cycle model (:mod:`ternforge.gen.perf`), which the
tests check on Verilator to the cycle (the tiny model's prefill and decode steps, a
0.7B-shaped layer); the memory is assumed deterministic, :data:`~ternforge.gen.perf.LATENCY_NS`
nanoseconds to a read's first word, in whole cycles of the board's clock. Modeled, not measured on a board.

Run: ``python benchmarks/perf_bench.py [--json FILE] [--plot FILE]``; results in
``benchmarks/results/perf.json`` and the 0.7B-on-kv260 plot in
``benchmarks/results/perf_bitnet-0.7b_kv260.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ternforge.boards import get_board  # noqa: E402
from ternforge.gen.accelerator import accelerator_parameters  # noqa: E402
from ternforge.gen.config import DesignConfig  # noqa: E402
from ternforge.gen.perf import performance, plot_performance  # noqa: E402
from ternforge.hdl.accelerator.model import preset  # noqa: E402

#: the kv260's default design, made on the zcu104 (8 attention lanes on tiles of 64 keys, the
#: kv260's vector lanes), beside the zcu104's own
KV260_DESIGN = {model: {"accelerator.attention_lanes": 8, "accelerator.attention_cols": 64,
                        "accelerator.vector_lanes": lanes}
                for model, lanes in (("bitnet-0.7b", 2), ("bitnet-2b4t", 1))}
POINTS = [(model, board, {}) for model in ("bitnet-0.7b", "bitnet-2b4t")
          for board in ("kv260", "zcu104")] + [
    (model, "zcu104", changes) for model, changes in KV260_DESIGN.items()]
#: TeLLMe v2 (arXiv 2510.15926) on the kv260: decode tokens/s, time to the first token
TELLME = {"decode_tokens_per_s": 25, "ttft_s": "0.45-0.96 s (64-128-token prompts)"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    results = Path(__file__).parent / "results"
    parser.add_argument("--json", type=Path, default=results / "perf.json")
    parser.add_argument("--plot", type=Path, default=results / "perf_bitnet-0.7b_kv260.png")
    args = parser.parse_args(argv)
    runs = []
    for model, board, changes in POINTS:
        target = get_board(board)
        config = DesignConfig().replace("board", board)
        for name, value in changes.items():
            config = config.replace(name, value)
        parameters = accelerator_parameters(config, preset(model))
        result = performance(parameters, target, lm_head=config.accelerator.lm_head)
        result["changes"] = changes
        runs.append(result)
        speeds = ", ".join(f"{c}: {s:.2f}" for c, s in result["decode_tokens_per_s"].items())
        ttft = ", ".join(f"{p}: {s:.2f} s" for p, s in result["ttft_s"].items())
        print(f"{model} on {board} {changes or ''}: decode tokens/s by context {speeds}; "
              f"first token {ttft}")
        if (model, board, changes) == ("bitnet-0.7b", "kv260", {}):
            args.plot.parent.mkdir(parents=True, exist_ok=True)
            plot_performance(result, args.plot)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"tellme_v2": TELLME, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
