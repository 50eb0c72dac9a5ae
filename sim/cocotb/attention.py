"""Run multi-head attention on a Verilator build of the attention unit (cocotb side).

:func:`run_attention` is the job driver shared by ``tb/attention_tb.py`` and ``ternforge run
attention``: it fills the KV cache image of an AXI4 memory model, streams the commands (the
loop order of :class:`~ternforge.sim.jobs.attention.AttentionJob`), the queries and the
appended rows, and collects the outputs. The cocotb test :func:`attention_job` reads the job
named by ``TERNFORGE_JOB`` (a ``.npz`` of ``q``, ``k``, ``v`` bit patterns and ``phase``, and a
``.json`` job beside it) and writes ``result.npz`` (``o``, ``cycles``, ``bytes_read``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np

from ...hdl.attention.parameters import Phase
from ..jobs.attention import AttentionJob
from ..models.tlmm_stream import pack_words
from .axi import AxiReadMemory, AxiWriteMemory
from .streams import StreamSink, StreamSource, start

__all__ = ["run_attention", "write_attention_job", "attention_job"]


async def run_attention(dut, job: AttentionJob, q, k, v, phase: str, *, stall: float = 0.0,
                        seed: int = 0) -> dict:
    """Run attention over ``q (H, M, D)``, ``k``, ``v (Hkv, N, D)`` (bit patterns); return
    ``o (H, M, D)``, ``cycles`` (first command accepted to last output), ``bytes_read`` and
    the memory ``image`` after the run."""
    job.check(q, k, v, phase)
    commands, queries, appended, order = job.commands(q, k, v, phase)
    keys = k.shape[1]
    image = job.image(k, v, keys if Phase.of(phase) is Phase.PREFILL else keys - 1)
    control = "start" if job.sequenced else "command"
    counter = await start(dut, idle=(f"{control}__valid", "query__valid", "new_kv__valid",
                                     "output__ready", "m_axi_arready", "m_axi_rvalid",
                                     "m_axi_awready", "m_axi_wready", "m_axi_bvalid"))
    unit, engine = job.unit, job.unit.engine
    reads = AxiReadMemory(dut, image, data_bits=unit.data_bits, latency=job.read_latency,
                          stall=stall, seed=seed + 7)
    writes = AxiWriteMemory(dut, image, data_bits=unit.data_bits, latency=job.write_latency)
    cocotb.start_soon(reads.run())
    cocotb.start_soon(writes.run())
    layout = unit.start_layout if job.sequenced else unit.command_layout
    words = [layout.const(c).as_value().value
             for c in ([job.start(q, k, phase)] if job.sequenced else commands)]
    sources = [StreamSource(dut, name, counter, stall=stall, seed=seed + i)
               for i, name in enumerate((control, "query", "new_kv"))]
    width = np.dtype(q.dtype).itemsize * 8
    for source, beats in zip(sources, (words, *(
            pack_words(np.asarray(elements).reshape(-1, engine.lanes), width)
            for elements in (queries, appended)))):
        cocotb.start_soon(source.send(beats))
    sink = StreamSink(dut, "output", counter, stall=stall, seed=seed + 9)
    beats = await sink.receive(sum(rows for _, _, rows in order) * engine.head_dim // engine.lanes)
    values = np.array([b >> (lane * width) & ((1 << width) - 1) for b in beats
                       for lane in range(engine.lanes)], dtype=q.dtype)
    lasts = [b >> (engine.lanes * width) for b in beats]
    o = np.zeros(q.shape, dtype=q.dtype)
    position = 0
    for head, start_token, rows in order:
        count = rows * engine.head_dim
        o[head, start_token:start_token + rows] = values[position:position + count].reshape(
            rows, engine.head_dim)
        position += count
    tiles = len(commands)
    ends = np.cumsum([r * engine.head_dim // engine.lanes for _, _, r in order]) - 1
    assert sum(lasts) == tiles and (Phase.of(phase) is Phase.DECODE
                                    or all(lasts[i] for i in ends)), lasts
    return {"o": o, "cycles": sink.cycles[-1] - sources[0].cycles[0] + 1,
            "bytes_read": reads.bytes_read, "image": bytes(image)}


def write_attention_job(directory: Path, job: AttentionJob, q, k, v, phase: str) -> dict:
    """Write a job for :func:`attention_job`; return the environment that points at it."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "job.npz", q=q, k=k, v=v, phase=phase)
    (directory / "job.json").write_text(json.dumps(job.to_dict()))
    return {"TERNFORGE_JOB": str(directory / "job.npz")}


@cocotb.test()
async def attention_job(dut):
    """Run the job named by ``TERNFORGE_JOB`` and write ``result.npz`` beside it."""
    path = Path(os.environ["TERNFORGE_JOB"])
    job = AttentionJob.from_dict(json.loads(path.with_suffix(".json").read_text()))
    arrays = np.load(path)
    result = await run_attention(dut, job, arrays["q"], arrays["k"], arrays["v"],
                                 str(arrays["phase"]))
    np.savez(path.parent / "result.npz", o=result["o"], cycles=result["cycles"],
             bytes_read=result["bytes_read"])
