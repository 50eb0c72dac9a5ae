"""Resources, latency and throughput of the element-wise stages and unit on a board.

Each stage and the whole :class:`~ternforge.hdl.eltwise.unit.ElementwiseUnit` is synthesised with
Yosys (``synth_xilinx -family xcup``, cached); cycles come from their parameters' cycle models
(:mod:`~ternforge.hdl.eltwise.parameters`), which the Verilator testbenches check exactly.
"""

from __future__ import annotations

from amaranth.back import rtlil
from rich.table import Table

from ...boards import RESOURCE_KEYS, Board
from ...hdl.common.checks import check_int
from ...sim.jobs.eltwise import OPS, EltwiseJob
from ..synthesis import SOURCE, synthesize

__all__ = ["eltwise_report", "eltwise_table"]


def eltwise_report(board: Board, *, format: str = "float32", hidden: int = 1536,
                   prefill_tokens: int = 64, ops=OPS, advance=lambda name: None) -> dict:
    """Every stage of ``ops`` (all, and the unit, by default) at ``hidden`` (the two-pass
    buffers' depth): resources, latency, and cycles and microseconds for one token (decode)
    and ``prefill_tokens``."""
    check_int("Hidden size", hidden, 2, 65536)
    jobs = [EltwiseJob(op=op, format=format, max_length=hidden) for op in ops]  # checked first
    entries = []
    for op, job in zip(ops, jobs):
        stage, name = job.parameters, job.module_name
        advance(name)
        synthesis = synthesize(rtlil.convert(job.component(), name=name, emit_src=False),
                               top=name)
        length = hidden // 2 if op == "rope" else hidden
        entry = {"op": op, "latency": stage.latency,
                 **{key: synthesis[key] for key in RESOURCE_KEYS},
                 "decode_cycles": stage.cycles(1, length),
                 "prefill_cycles": stage.cycles(prefill_tokens, length)}
        entry["decode_us"] = round(entry["decode_cycles"] / board.clock_hz * 1e6, 3)
        entry["prefill_us"] = round(entry["prefill_cycles"] / board.clock_hz * 1e6, 3)
        if hasattr(stage, "buffer_bits"):
            entry["buffer_bits"] = stage.buffer_bits
        entries.append(entry)
    return {"board": board.name, "clock_hz": board.clock_hz, "format": format,
            "hidden": hidden, "prefill_tokens": prefill_tokens, "source": SOURCE,
            "stages": entries}


def eltwise_table(report: dict) -> Table:
    table = Table(title=f"Element-wise stages, {report['format']}, hidden {report['hidden']}, "
                        f"on {report['board']} ({report['source']})")
    columns = ("op", "latency", *RESOURCE_KEYS, "buffer bits", "decode cycles", "decode us",
               f"{report['prefill_tokens']}-token cycles")
    for column in columns:
        table.add_column(column, justify="left" if column == "op" else "right")
    for entry in report["stages"]:
        table.add_row(entry["op"], str(entry["latency"]),
                      *(f"{entry[key]:,}" for key in RESOURCE_KEYS),
                      f"{entry['buffer_bits']:,}" if "buffer_bits" in entry else "",
                      f"{entry['decode_cycles']:,}", f"{entry['decode_us']:.2f}",
                      f"{entry['prefill_cycles']:,}")
    return table
