"""Run a batch of operations on a Verilator build of a floating-point unit (cocotb side).

:func:`run_float` is the job driver shared by ``tb/float_tb.py`` and ``ternforge run fp``.
The cocotb test :func:`float_job` reads the job named by ``TERNFORGE_JOB`` (a ``.npz`` with
``operands``, ``(n, arity)`` bit patterns, and ``width``) and writes ``result.npz``
(``result``, ``cycles``) beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from .streams import StreamSink, StreamSource, start

__all__ = ["run_float", "write_float_job", "float_job"]


def _words(operands, width: int) -> list[int]:
    words = []
    for row in np.asarray(operands, dtype=np.uint64).tolist():
        word = 0
        for index, value in enumerate(row):
            word |= int(value) << (index * width)
        words.append(word)
    return words


async def run_float(dut, operands, width: int, *, stall: float = 0.0,
                    seed: int = 0) -> tuple[np.ndarray, int]:
    """Drive one operation per row of ``operands`` (bit patterns ``width`` bits wide),
    stalling both streams with probability ``stall`` per cycle; return the results (in
    order) and the cycles from the first beat accepted to the last result, inclusive."""
    words = _words(operands, width)
    counter = await start(dut, idle=("operands__valid", "result__ready"))
    if stall:
        source = StreamSource(dut, "operands", counter, stall=stall, seed=seed)
        sink = StreamSink(dut, "result", counter, stall=stall, seed=seed + 1)
        cocotb.start_soon(source.send(words))
        results = await sink.receive(len(words))
        first, last = source.cycles[0], sink.cycles[-1]
    else:
        results, first, last = await _stream_at_full_rate(dut, words, counter)
    return np.array(results, dtype=np.uint64), last - first + 1


async def _stream_at_full_rate(dut, words, counter):
    """One coroutine that offers a beat and takes a result every cycle (faster than a source
    and a sink: a million operations are a benchmark, not a test)."""
    dut.result__ready.value = 1
    results, sent, first, last = [], 0, None, None
    while len(results) < len(words):
        dut.operands__valid.value = int(sent < len(words))
        if sent < len(words):
            dut.operands__payload.value = words[sent]
        await ReadOnly()
        if sent < len(words) and dut.operands__ready.value == 1:
            first = counter.cycle if first is None else first
            sent += 1
        if dut.result__valid.value == 1:
            results.append(dut.result__payload.value.to_unsigned())
            last = counter.cycle
        await RisingEdge(dut.clk)
    return results, first, last


def write_float_job(directory: Path, operands, width: int) -> dict:
    """Write a job for :func:`float_job`; return the environment that points at it."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "job.npz", operands=operands, width=width)
    return {"TERNFORGE_JOB": str(directory / "job.npz")}


@cocotb.test()
async def float_job(dut):
    """Run the job named by ``TERNFORGE_JOB`` and write ``result.npz`` beside it."""
    job = Path(os.environ["TERNFORGE_JOB"])
    arrays = np.load(job)
    result, cycles = await run_float(dut, arrays["operands"], int(arrays["width"]))
    np.savez(job.parent / "result.npz", result=result, cycles=cycles)
