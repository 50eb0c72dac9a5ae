"""Run an element-wise job on a Verilator build of a stage (cocotb side).

:func:`run_eltwise` is the job driver shared by ``tb/eltwise_tb.py`` and ``ternforge run
eltwise``. The cocotb test :func:`eltwise_job` reads the job named by ``TERNFORGE_JOB`` (a
``.npz`` of the input arrays and a ``.json`` :class:`~ternforge.sim.jobs.eltwise.EltwiseJob`
beside it) and writes ``result.npz`` (the output arrays and ``cycles``) beside it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np

from .streams import StreamSink, StreamSource, start
from ..jobs.eltwise import EltwiseJob

__all__ = ["run_eltwise", "write_eltwise_job", "eltwise_job"]


async def run_eltwise(dut, job: EltwiseJob, arrays: dict, *, stall: float = 0.0,
                      seed: int = 0) -> tuple[dict, int]:
    """Drive every input stream of ``job`` from ``arrays`` and collect every output stream,
    each stalling with probability ``stall`` per cycle; return the output arrays (with
    ``lasts``) and the cycles from the main input's first beat to the main output's last."""
    inputs, signals, outputs = job.streams(arrays)
    counter = await start(dut, idle=[f"{name}__valid" for name in inputs]
                          + [f"{name}__ready" for name in outputs])
    for name, value in signals.items():
        getattr(dut, name).value = value
    sources = {name: StreamSource(dut, name, counter, stall=stall, seed=seed + i)
               for i, name in enumerate(inputs)}
    sinks = {name: StreamSink(dut, name, counter, stall=stall, seed=seed + 100 + i)
             for i, name in enumerate(outputs)}
    for name, words in inputs.items():
        cocotb.start_soon(sources[name].send(words))
    receiving = {name: cocotb.start_soon(sinks[name].receive(count))
                 for name, count in outputs.items()}
    words = {name: await task for name, task in receiving.items()}
    first, last = job.main_ports()
    cycles = sinks[last].cycles[-1] - sources[first].cycles[0] + 1
    return job.arrays(words, job.shape(arrays)), cycles


def write_eltwise_job(directory: Path, job: EltwiseJob, arrays: dict) -> dict:
    """Write a job for :func:`eltwise_job`; return the environment that points at it."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "job.npz", **arrays)
    (directory / "job.json").write_text(json.dumps(job.__dict__))
    return {"TERNFORGE_JOB": str(directory / "job.npz")}


@cocotb.test()
async def eltwise_job(dut):
    """Run the job named by ``TERNFORGE_JOB`` and write ``result.npz`` beside it."""
    path = Path(os.environ["TERNFORGE_JOB"])
    job = EltwiseJob(**json.loads(path.with_suffix(".json").read_text()))
    outputs, cycles = await run_eltwise(dut, job, dict(np.load(path)))
    outputs.pop("lasts")
    np.savez(path.parent / "result.npz", **outputs, cycles=cycles)
