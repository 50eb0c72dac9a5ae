"""Run a GEMM on a Verilator build of a MAC-array engine (cocotb side).

:func:`run_mac` is the job driver shared by ``tb/mac_tb.py`` and ``ternforge run mac``. The
cocotb test :func:`mac_job` reads the job named by ``TERNFORGE_JOB`` (a ``.npz`` with ``a``
and ``b``, and a ``.json`` beside it with the engine's
:class:`~ternforge.hdl.mac.parameters.MacArrayParameters`) and writes ``result.npz`` (``c``,
``cycles``) beside it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import cocotb
import numpy as np

from ...hdl.mac.parameters import MacArrayParameters
from ..jobs.mac import check_job
from ..models.mac import MacGeometry, operand_beats, results_from_beats
from .streams import StreamSink, StreamSource, start

__all__ = ["run_mac", "write_mac_job", "mac_job"]


async def run_mac(dut, parameters: MacArrayParameters, a, b, *, stall: float = 0.0,
                  seed: int = 0) -> tuple[np.ndarray, int]:
    """Drive ``a @ b`` through the engine of ``parameters``, stalling both streams with
    probability ``stall`` per cycle; return C and the cycles from the first beat accepted to
    the last row."""
    check_job(parameters, a, b)
    geom = MacGeometry.of(parameters)
    beats = operand_beats(a, b, geom)
    rows = -(-len(a) // geom.rows) * -(-b.shape[1] // geom.cols) * geom.rows
    counter = await start(dut, idle=("operands__valid", "results__ready"))
    source = StreamSource(dut, "operands", counter, stall=stall, seed=seed)
    sink = StreamSink(dut, "results", counter, stall=stall, seed=seed + 1)
    cocotb.start_soon(source.send(beats))
    words = await sink.receive(rows)
    c = results_from_beats(words, len(a), b.shape[1], geom)
    return c, sink.cycles[-1] - source.cycles[0] + 1


def write_mac_job(directory: Path, parameters: MacArrayParameters, a, b) -> dict:
    """Write a job for :func:`mac_job`; return the environment that points at it."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "job.npz", a=a, b=b)
    (directory / "job.json").write_text(json.dumps(asdict(parameters)))
    return {"TERNFORGE_JOB": str(directory / "job.npz")}


@cocotb.test()
async def mac_job(dut):
    """Run the job named by ``TERNFORGE_JOB`` and write ``result.npz`` beside it."""
    job = Path(os.environ["TERNFORGE_JOB"])
    parameters = MacArrayParameters(**json.loads(job.with_suffix(".json").read_text()))
    arrays = np.load(job)
    c, cycles = await run_mac(dut, parameters, arrays["a"], arrays["b"])
    np.savez(job.parent / "result.npz", c=np.array(c, dtype=object)
             if c.dtype == object else c, cycles=cycles)
