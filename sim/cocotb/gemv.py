"""Run a GEMV/GEMM job on a Verilator build of :class:`~ternforge.hdl.gemv.top.GemvTop` (cocotb).

The weights are laid out in a byte image as the planner lays them out in DDR (weight beats of
the table-stationary order, packed densely), followed by the planner's descriptor table; the
job runs in one start: program the registers, start, stream the activation beats of every
token tile, collect the results, read the cycle and stall counters. The cocotb test
:func:`gemv_job` reads ``TERNFORGE_JOB`` like :mod:`ternforge.sim.cocotb.tlmm` and writes
``result.npz`` (``y``, ``cycles``, ``stalls``, ``bytes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from ...hdl.gemv.parameters import GemvParameters
from ...hdl.gemv.top import REGISTERS
from ..models.tlmm_stream import StreamGeometry, job_beats, results_from_words
from ...hdl.gemv.parameters import URAM_WORDS
from ..models.weight_plan import descriptor_table, pass_descriptors, weight_image
from ..memory import bytes_read, write_words
from .axi import AxiLiteMaster, AxiReadMemory
from .streams import StreamSink, StreamSource, start
from .tlmm import read_job

__all__ = ["GemvResult", "weight_image", "memory_image", "run_gemv", "gemv_job"]


def register(name: str) -> int:
    return 4 * REGISTERS.index(name)


def memory_image(beats: list[int], beat_bits: int, *, word_bytes: int,
                 load_beats: int = URAM_WORDS) -> tuple[bytes, int, int]:
    """The DDR image of one pass: the weights at address 0, the planner's descriptor table
    (loads of ``load_beats``) on the next 4 KiB boundary; also the table's address and its
    length."""
    weights = weight_image(beats, beat_bits)
    descriptors = pass_descriptors(len(beats), beat_bits=beat_bits, load_beats=load_beats,
                                   word_bytes=word_bytes)
    table_base = -(-len(weights) // 4096) * 4096
    table = descriptor_table(descriptors, base=0, word_bytes=word_bytes)
    return weights.ljust(table_base, b"\0") + table, table_base, len(descriptors)


@dataclass(frozen=True)
class GemvResult:
    """Results and counters of one job (counters summed over its token tiles).

    Members
    -------
    y : numpy.ndarray
    cycles, stalls, bytes : int
        Cycles from start to done, cycles the engine waited for weights, bytes read.
    """

    y: np.ndarray
    cycles: int
    stalls: int
    bytes: int


async def run_gemv(dut, parameters: GemvParameters, acts, weights, *, latency: int = 20,
                   bytes_per_cycle: float = 64.0, stall: float = 0.0, seed: int = 0,
                   resident: bool = False, load_beats: int = URAM_WORDS,
                   in_simulator: bool = False) -> GemvResult:
    """Compute ``acts @ weights.T`` through the whole path of ``parameters`` in one start;
    ``stall`` randomly withholds memory data, activations and result readiness. ``resident``:
    load the weights once and replay them from the buffer for every token tile; otherwise
    stream them from memory once per token tile. The weights are loaded by descriptors of
    ``load_beats``. ``in_simulator``: the design is the top inside
    :class:`~ternforge.sim.memory.WithMemory`, whose memory gets the image through VPI (its
    timing is set by plusargs, so ``latency``, ``bytes_per_cycle`` and the memory's share of
    ``stall`` are not used); otherwise the Python memory model serves ``m_axi``."""
    engine, data_bits, beat_bits = parameters.engine, parameters.data_bits, parameters.beat_bits
    engine.check_job(len(acts), acts.shape[1], len(weights))
    geom = StreamGeometry.of(engine)
    lite = AxiLiteMaster(dut)
    counter = await start(dut, idle=("s_axis_acts_tvalid", "m_axis_results_tready"))
    beats = job_beats(acts, weights, geom)
    passes = len(beats.token_tiles)
    pass_beats = beats.weights[:len(beats.weights) // passes]
    image, table_base, count = memory_image(pass_beats, beat_bits,
                                            word_bytes=parameters.word_bytes,
                                            load_beats=load_beats)
    if in_simulator:
        write_words(dut, 0, image, data_bits=data_bits)
    else:
        memory = AxiReadMemory(dut, image, data_bits=data_bits, latency=latency,
                               bytes_per_cycle=bytes_per_cycle, stall=stall, seed=seed)
        memory_task = cocotb.start_soon(memory.run())
    for name, value in (("descriptors", table_base), ("descriptor_count", count),
                        ("weight_beats", len(pass_beats)), ("passes", passes),
                        ("row_blocks", geom.row_blocks(len(weights)))):
        await lite.write(register(name), value)
    source = StreamSource.axis(dut, "s_axis_acts", counter, sidebands=("tlast", "tuser"),
                               stall=stall, seed=seed + 1)
    sink = StreamSink.axis(dut, "m_axis_results", counter, stall=stall, seed=seed + 2)
    await lite.write(register("control"), 1 | resident << 1)
    cocotb.start_soon(source.send(beats.acts))
    words = await sink.receive(len(acts) * geom.row_blocks(len(weights)))
    while not (await lite.read(register("status"))) & 2:
        await RisingEdge(dut.clk)
    cycles = await lite.read(register("cycles"))
    stalls = await lite.read(register("stalls"))
    if in_simulator:
        read = bytes_read(dut)
    else:
        memory_task.cancel()
        read = memory.bytes_read
    y = results_from_words(words, m=len(acts), n=len(weights), geom=geom,
                           acc_width=engine.acc_width)
    return GemvResult(y=y, cycles=cycles, stalls=stalls, bytes=read)


@cocotb.test()
async def gemv_job(dut):
    """Run the job named by ``TERNFORGE_JOB`` and write ``result.npz`` beside it."""
    description, engine, acts, weights, result_path = read_job()
    memory = dict(description["memory"])
    parameters = GemvParameters(engine=engine, data_bits=memory.pop("data_bits"))
    result = await run_gemv(dut, parameters, acts, weights, **memory)
    np.savez(result_path, y=result.y, cycles=result.cycles, stalls=result.stalls,
             bytes=result.bytes)
