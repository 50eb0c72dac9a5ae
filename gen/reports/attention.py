"""Resources and performance of the attention units for a model's attention shape.

The units (:class:`~ternforge.hdl.attention.layer.LayerAttention`, the cached-attention unit
with its sequencer, configured for prefill and for decode) are synthesised with Yosys
(``synth_xilinx -family xcup``, cached); cycles come from its cycle model (which the
testbenches check exactly), DDR traffic from its loop order, beside the naive order's (every
query row reads every key, no tiles skipped).
"""

from __future__ import annotations

import numpy as np
from amaranth.back import rtlil
from rich.table import Table

from ...boards import RESOURCE_KEYS, Board
from ...hdl.attention.parameters import AttentionUnitParameters, Phase, check_heads
from ...sim.jobs.attention import AttentionJob
from ...sim.models.attention import kv_rows_read
from ..config import AttentionConfig
from ..elaborate import ATTENTION_UNITS
from ..synthesis import SOURCE, synthesize

__all__ = ["attention_report", "attention_entry", "attention_table"]


def _case(job, phase, heads, kv_heads, tokens, keys, board):
    engine = job.unit.engine
    dtype = np.uint16 if engine.format.width == 16 else np.uint32
    q = np.zeros((heads, tokens, engine.head_dim), dtype)
    k = np.zeros((kv_heads, keys, engine.head_dim), dtype)
    commands = job.commands(q, k, k, phase)[0]
    cycles = job.cycles(commands)
    entry = {"phase": phase, "tokens": tokens, "keys": keys, "commands": len(commands),
             "cycles": cycles, "ms": round(cycles / board.clock_hz * 1e3, 3),
             "ddr_bytes_read": job.unit.bytes_read(commands)}
    if Phase.of(phase) is Phase.PREFILL:
        entry["naive_ddr_bytes_read"] = heads * kv_rows_read(
            tokens, rows=engine.rows, cols=engine.cols, order="naive") * job.unit.row_bytes
    return entry


def _unit_entry(job, name):
    synthesis = synthesize(rtlil.convert(job.component(), name=name, emit_src=False), top=name)
    return {**job.to_dict(), "resources": {k: synthesis[k] for k in RESOURCE_KEYS},
            "buffer_elements": job.unit.engine.buffer_elements}


def _report(jobs, board, heads, kv_heads, prefill, decode):
    cases = [_case(jobs["prefill"], "prefill", heads, kv_heads, m, m, board) for m in prefill]
    cases += [_case(jobs["decode"], "decode", heads, kv_heads, 1, keys, board)
              for keys in decode]
    return {"board": board.name, "clock_hz": board.clock_hz, "source": SOURCE,
            "units": {phase: _unit_entry(job, ATTENTION_UNITS[phase])
                      for phase, job in jobs.items()},
            "heads": heads, "kv_heads": kv_heads, "cases": cases}


def attention_report(board: Board, *, head_dim=96, heads=16, kv_heads=16, fmt="float32",
                     rows=8, cols=8, lanes=None, prefill=(64, 128),
                     decode=(128, 1024)) -> dict:
    """Synthesise the prefill and decode units (with their sequencers; ``lanes`` as
    :meth:`~ternforge.hdl.attention.parameters.AttentionUnitParameters.for_problem` picks
    them) for ``head_dim`` and report prefill of each of ``prefill`` tokens and decode at
    each context of ``decode``, for ``heads`` over ``kv_heads``."""
    check_heads(heads, kv_heads)
    group = heads // kv_heads
    jobs = {phase.value: AttentionJob(AttentionUnitParameters.for_problem(
                phase, head_dim, max((*prefill, *decode)), group, fmt, rows=rows, cols=cols,
                lanes=lanes), sequenced=True)
            for phase in Phase}
    return _report(jobs, board, heads, kv_heads, prefill, decode)


def attention_entry(config: AttentionConfig, board: Board) -> tuple[dict, dict]:
    """The generated attention units' synthesised resources (by module name) and their
    facts: the units' parameters and buffers, prefill of 64 and 128 tokens and decode at
    contexts of 128 and the longest, for the configured shape."""
    report = _report(config.jobs(), board, config.heads, config.kv_heads, (64, 128),
                     (128, config.max_keys))
    modules = {ATTENTION_UNITS[phase]: unit["resources"]
               for phase, unit in report["units"].items()}
    return modules, {key: report[key] for key in ("units", "heads", "kv_heads", "cases")}


def attention_table(report: dict) -> Table:
    units = report["units"]
    title = "; ".join(
        f"{phase}: tiles {unit['rows']} x {unit['cols']}, {unit['lanes']} lanes, " + ", ".join(
            f"{key} {value:,}" for key, value in unit["resources"].items())
        for phase, unit in units.items())
    table = Table(title=f"Attention, D = {units['prefill']['head_dim']}, {report['heads']} heads "
                        f"over {report['kv_heads']}, {units['prefill']['format']}, on "
                        f"{report['board']} ({title})")
    for column in ("phase", "M or L", "commands", "cycles", "ms", "DDR bytes read",
                   "naive order"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for case in report["cases"]:
        size = case["tokens"] if case["phase"] == "prefill" else case["keys"]
        naive = case.get("naive_ddr_bytes_read")
        table.add_row(case["phase"], str(size), str(case["commands"]), f"{case['cycles']:,}",
                      f"{case['ms']:.2f}", f"{case['ddr_bytes_read']:,}",
                      f"{naive:,}" if naive else "")
    return table
