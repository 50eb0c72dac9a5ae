"""Run one ternary matmul job on a Verilator build of an engine (cocotb side).

:func:`run_job` is the job driver shared by the testbenches in ``tb/`` and by
``ternforge run tlmm``. The cocotb test :func:`tlmm_job` in this module reads a job from the
files named by ``TERNFORGE_JOB`` (a ``.npz`` with ``acts`` and ``weights`` and a ``.json``
beside it with the engine's :class:`~ternforge.hdl.matmul.parameters.TlmmParameters`) and writes ``result.npz`` (``y``, ``cycles``) beside them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cocotb
import numpy as np

from ...hdl.matmul.parameters import TlmmParameters
from .streams import StreamSink, StreamSource, start
from ..models.tlmm_stream import StreamGeometry, job_beats, results_from_words

__all__ = ["JobResult", "run_job", "write_job", "read_job", "tlmm_job"]


@dataclass(frozen=True)
class JobResult:
    """What one job produced.

    Members
    -------
    y : numpy.ndarray
        The (M, N) results as int64.
    cycles : int
        Cycles from the first activation beat accepted to the last result accepted, inclusive.
    """

    y: np.ndarray
    cycles: int


async def run_job(dut, parameters: TlmmParameters, acts, weights, *, stall: float = 0.0,
                  seed: int = 0) -> JobResult:
    """Drive ``acts @ weights.T`` through the engine of ``parameters``; stall every stream
    with probability ``stall`` per cycle."""
    parameters.check_job(len(acts), acts.shape[1], len(weights))
    geom = StreamGeometry.of(parameters)
    beats = job_beats(acts, weights, geom)
    expected = sum(beats.token_tiles) * geom.row_blocks(len(weights))
    counter = await start(dut, idle=("acts__valid", "weights__valid", "results__ready"))
    act_source = StreamSource(dut, "acts", counter, stall=stall, seed=seed)
    weight_source = StreamSource(dut, "weights", counter, stall=stall, seed=seed + 1)
    sink = StreamSink(dut, "results", counter, stall=stall, seed=seed + 2)
    cocotb.start_soon(act_source.send(beats.acts))
    cocotb.start_soon(weight_source.send(beats.weights))
    words = await sink.receive(expected)
    y = results_from_words(words, m=len(acts), n=len(weights), geom=geom,
                           acc_width=parameters.acc_width)
    return JobResult(y=y, cycles=sink.cycles[-1] - act_source.cycles[0] + 1)


def write_job(directory: Path, parameters: TlmmParameters, acts, weights,
              memory: dict | None = None) -> dict:
    """Write a job for :func:`tlmm_job` (or the GEMV top's ``gemv_job``, with its memory
    model's settings); return the environment that points at it."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "job.npz", acts=acts, weights=weights)
    (directory / "job.json").write_text(json.dumps(
        {"engine": asdict(parameters), "memory": memory or {}}))
    return {"TERNFORGE_JOB": str(directory / "job.npz")}


def read_job() -> tuple[dict, TlmmParameters, np.ndarray, np.ndarray, Path]:
    """The job named by ``TERNFORGE_JOB``: description, engine, acts, weights, result path."""
    job = Path(os.environ["TERNFORGE_JOB"])
    description = json.loads(job.with_suffix(".json").read_text())
    arrays = np.load(job)
    return (description, TlmmParameters(**description["engine"]), arrays["acts"],
            arrays["weights"], job.parent / "result.npz")


@cocotb.test()
async def tlmm_job(dut):
    """Run the job named by ``TERNFORGE_JOB`` and write ``result.npz`` beside it."""
    _, parameters, acts, weights, result_path = read_job()
    result = await run_job(dut, parameters, acts, weights)
    np.savez(result_path, y=result.y, cycles=result.cycles)
