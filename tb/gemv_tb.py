"""cocotb testbench of the GEMV/GEMM top: DDR model -> weight buffer -> TLMM -> results.

Driver: the AXI4 memory model, the AXI4-Lite master and an AXI4-Stream source of activations.
Monitor: an AXI4-Stream sink of results, and the top's cycle and stall counters.
Model: the integer matmul (the TL golden model is checked against it in the engine tests).
Checker: values exact; nothing lost under random memory, activation and result stalls.

The design under test is described by ``TERNFORGE_TB`` (JSON: ``engine``, the fields of the
engine's :class:`~ternforge.hdl.matmul.parameters.TlmmParameters`, and ``data_bits`` and
``buffer_depth`` of its :class:`~ternforge.hdl.gemv.parameters.GemvParameters`, and the run's
``seed``: :func:`~ternforge.sim.cocotb.check.case_seed`). With
``in_simulator`` the top is inside :class:`~ternforge.sim.memory.WithMemory` (the Verilog
memory, timed by plusargs) and only the tests of that memory run (``testcase``).
"""

import json
import math
import os

import cocotb
import numpy as np

from ternforge.boards import get_board
from ternforge.hdl.gemv.parameters import GemvParameters
from ternforge.hdl.matmul.parameters import TlmmParameters
from ternforge.sim.models.weight_plan import MemoryModel, plan_layer
from ternforge.sim.cocotb.check import assert_cycles, assert_same, case_seed
from ternforge.sim.cocotb.gemv import run_gemv

DESCRIPTION = json.loads(os.environ["TERNFORGE_TB"])
PARAMETERS = GemvParameters(engine=TlmmParameters(**DESCRIPTION["engine"]),
                            data_bits=DESCRIPTION["data_bits"],
                            buffer_depth=DESCRIPTION["buffer_depth"])
ENGINE, DATA_BITS, BUFFER_DEPTH = PARAMETERS.engine, PARAMETERS.data_bits, PARAMETERS.buffer_depth
IN_SIMULATOR = DESCRIPTION.get("in_simulator", False)
SEED = DESCRIPTION.get("seed", 0)


def random_job(case, m, k, n):
    rng = np.random.default_rng(case_seed(SEED, case))
    return (rng.integers(-128, 128, (m, k)).astype(np.int8),
            rng.integers(-1, 2, (n, k)).astype(np.int8))


def keeps_up(n):
    """Whether the engine computes ``n`` rows in no fewer cycles than it takes to write its
    tables; where it does not, the planner averages the table writes (an upper bound)."""
    return ENGINE.row_blocks(n) >= ENGINE.table_entries - 1


def check(result, acts, weights):
    assert_same("results", result.y, acts.astype(np.int64) @ weights.T.astype(np.int64))


@cocotb.test()
async def gemv_values_exact(dut):
    for seed, shape in enumerate([(1, 50, 30), (2, 24, 9), (3, 7, 70)]):
        acts, weights = random_job(seed, *shape)
        result = await run_gemv(dut, PARAMETERS, acts, weights)
        check(result, acts, weights)
        assert result.cycles > 0 and result.bytes > 0


@cocotb.test()
@cocotb.parametrize(stall=[0.3, 0.7])
async def gemv_nothing_lost_under_stalls(dut, stall):
    acts, weights = random_job(11, 2, 40, 21)
    result = await run_gemv(dut, PARAMETERS, acts, weights, stall=stall,
                            latency=7, seed=case_seed(SEED, 3))
    check(result, acts, weights)


@cocotb.test()
async def gemv_slow_memory_stalls_the_engine(dut):
    acts, weights = random_job(5, 1, 96, 64)
    fast = await run_gemv(dut, PARAMETERS, acts, weights, bytes_per_cycle=64)
    slow = await run_gemv(dut, PARAMETERS, acts, weights, bytes_per_cycle=2)
    check(fast, acts, weights)
    check(slow, acts, weights)
    assert slow.stalls > fast.stalls and slow.cycles > fast.cycles


@cocotb.test()
@cocotb.parametrize(shape=[(50, 24), (64, 96), (120, 48), (20, 30)])
async def gemv_decode_cycles_match_the_planner(dut, shape):
    """With a deterministic memory delivering one word per cycle, a decode GEMV takes exactly
    the planner's predicted cycles and stall cycles whenever a chunk has at least as many row
    blocks as its tables take cycles to write."""
    n, k = shape
    acts, weights = random_job(n + k, 1, k, n)
    latency, word_bytes = 9, DATA_BITS // 8
    result = await run_gemv(dut, PARAMETERS, acts, weights, latency=latency,
                            bytes_per_cycle=word_bytes)
    check(result, acts, weights)
    plan = plan_layer(n=n, k=k, engine=ENGINE, board=get_board("kv260"), memory=MemoryModel(
        bytes_per_cycle=word_bytes, latency=latency, axi_data_bits=DATA_BITS))
    if keeps_up(n):
        assert_cycles(f"a {n} x {k} decode", result.cycles, plan.cycles)
        assert_cycles(f"a {n} x {k} decode's stalls", result.stalls, plan.stall_cycles)
    else:  # table-bound: the planner averages the table writes, an upper bound
        assert plan.compute_cycles <= result.cycles <= plan.cycles, (result.cycles, plan.cycles)


@cocotb.test()
@cocotb.parametrize(stall=[0.0, 0.5])
async def gemv_executes_a_descriptor_table_of_many_loads(dut, stall):
    """The weights come in about 13 loads described by a table in memory (on the pytest
    suite's engine, 13 loads of 20 of its 256 beats): the loads follow each other without a
    bubble the planner does not predict."""
    n, k = 64, 96
    acts, weights = random_job(7, 1, k, n)
    memory = MemoryModel(bytes_per_cycle=DATA_BITS // 8, latency=9, axi_data_bits=DATA_BITS)
    board = get_board("kv260")
    beats = plan_layer(n=n, k=k, engine=ENGINE, board=board, memory=memory).layer_beats
    whole = DATA_BITS // math.gcd(DATA_BITS, PARAMETERS.beat_bits)  # loads of whole words
    load_beats = -(-beats // 13 // whole) * whole or whole
    result = await run_gemv(dut, PARAMETERS, acts, weights, stall=stall,
                            latency=memory.latency, bytes_per_cycle=memory.bytes_per_cycle,
                            load_beats=load_beats, seed=case_seed(SEED, 4))
    check(result, acts, weights)
    plan = plan_layer(n=n, k=k, engine=ENGINE, board=board, memory=memory,
                      load_beats=load_beats)
    assert len(plan.descriptors) == -(-beats // load_beats) > 1, len(plan.descriptors)
    if not stall and keeps_up(n):
        assert_cycles(f"{len(plan.descriptors)} loads", result.cycles, plan.cycles)


@cocotb.test()
@cocotb.parametrize(stall=[0.0, 0.5])
async def gemv_prefill_streams_the_layer_once_per_tile(dut, stall):
    """A layer not kept resident is read from memory once per token tile, the passes back to
    back in one start; the buffer fills (the engine is slower than memory) and backpressures
    the reads, as the planner predicts."""
    n, k, m = 64, 96, 5  # (on the pytest suite's engine: 256 beats a pass, 3 tiles of 2)
    acts, weights = random_job(13, m, k, n)
    memory = MemoryModel(bytes_per_cycle=DATA_BITS // 8, latency=6, axi_data_bits=DATA_BITS)
    result = await run_gemv(dut, PARAMETERS, acts, weights, stall=stall,
                            latency=memory.latency, bytes_per_cycle=memory.bytes_per_cycle,
                            seed=case_seed(SEED, 0))
    check(result, acts, weights)
    once = await run_gemv(dut, PARAMETERS, acts[:1], weights, latency=6)
    plan = plan_layer(n=n, k=k, tokens=m, engine=ENGINE, board=get_board("kv260"),
                      memory=memory, resident=False, buffer_beats=BUFFER_DEPTH)
    tiles = -(-m // ENGINE.max_tokens)
    assert plan.passes == tiles and result.bytes > (tiles - 1) * once.bytes
    if not stall and keeps_up(n):
        assert_cycles("the passes", result.cycles, plan.cycles)
        assert_cycles("the passes' stalls", result.stalls, plan.stall_cycles)


@cocotb.test()
@cocotb.parametrize(stall=[0.0, 0.5])
async def gemv_prefill_replays_a_resident_layer(dut, stall):
    """Several token tiles in one start: the weights come from memory once and are replayed
    from the buffer for every tile."""
    acts, weights = random_job(21, 5, 24, 64)  # (3 tiles of 2 on the pytest suite's engine)
    memory = MemoryModel(bytes_per_cycle=DATA_BITS // 8, latency=5, axi_data_bits=DATA_BITS)
    result = await run_gemv(dut, PARAMETERS, acts, weights, stall=stall,
                            resident=True, latency=memory.latency,
                            bytes_per_cycle=memory.bytes_per_cycle, seed=case_seed(SEED, 0))
    check(result, acts, weights)
    once = await run_gemv(dut, PARAMETERS, acts[:1], weights, latency=5)
    assert result.bytes == once.bytes  # one load, however many tiles
    if not stall:
        plan = plan_layer(n=64, k=24, tokens=5, engine=ENGINE, board=get_board("kv260"),
                          memory=memory)
        assert plan.resident
        if keeps_up(64):
            assert_cycles("the replays", result.cycles, plan.cycles)
            assert_cycles("the replays' stalls", result.stalls, plan.stall_cycles)
        else:
            assert plan.compute_cycles <= result.cycles <= plan.cycles, (result.cycles,
                                                                          plan.cycles)


@cocotb.test(skip=not IN_SIMULATOR)
async def gemv_on_the_memory_in_the_simulator(dut):
    """The Verilog memory times reads as the Python model does: with a word a cycle and the
    latency pytest passes as plusargs (``memory_latency``), the cycles and stalls are the
    planner's, as above; with random stalls on its channels the values stay exact."""
    stalled = DESCRIPTION["memory_stall"] > 0
    word_bytes = DATA_BITS // 8
    for n, k in [(64, 96), (120, 48)]:
        acts, weights = random_job(n + k, 1, k, n)
        result = await run_gemv(dut, PARAMETERS, acts, weights, in_simulator=True,
                                stall=0.3 if stalled else 0.0, seed=case_seed(SEED, n))
        check(result, acts, weights)
        if not stalled:
            plan = plan_layer(n=n, k=k, engine=ENGINE, board=get_board("kv260"),
                              memory=MemoryModel(bytes_per_cycle=word_bytes,
                                                 latency=DESCRIPTION["memory_latency"],
                                                 axi_data_bits=DATA_BITS))
            assert (result.cycles, result.stalls) == (plan.cycles, plan.stall_cycles)
            assert result.bytes == plan.ddr_bytes
