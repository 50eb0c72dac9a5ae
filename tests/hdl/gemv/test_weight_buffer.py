# amaranth: UnusedElaboratable=no
"""The weight buffer and the line assembler in the Amaranth simulator: order, stalls, timing."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from stream_sim import run_simulation
from ternforge.hdl.common.words import WordSplitter
from ternforge.hdl.gemv.weight_buffer import LineAssembler, WeightBuffer


def pump(dut, source, words, sink, *, count, stall=0.0, seed=0, extra=None):
    """Drive ``words`` into ``source``, collect ``count`` payloads from ``sink``; return them
    with the cycle of each output and of each input."""
    rng = np.random.default_rng(seed)
    out, out_cycles, in_cycles = [], [], []

    async def bench(ctx):
        queue, cycle = list(words), 0
        while len(out) < count:
            offer = bool(queue) and rng.random() >= stall
            ctx.set(source.valid, offer)
            if offer:
                ctx.set(source.payload.as_value() if hasattr(source.payload, "as_value")
                        else source.payload, queue[0])
            ctx.set(sink.ready, rng.random() >= stall)
            if ctx.get(source.valid) and ctx.get(source.ready):
                queue.pop(0)
                in_cycles.append(cycle)
            if ctx.get(sink.valid) and ctx.get(sink.ready):
                out.append(ctx.get(sink.payload))
                out_cycles.append(cycle)
            if extra:
                extra(ctx)
            await ctx.tick()
            cycle += 1
            assert cycle < 50 * (len(words) + 20), "no progress"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    run_simulation(sim)
    return out, out_cycles, in_cycles


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.8])
@pytest.mark.parametrize("depth", [2, 5, 16])
def test_buffer_keeps_every_beat_in_order(stall, depth):
    dut = WeightBuffer(beat_bits=20, depth=depth)
    beats = np.random.default_rng(depth).integers(0, 1 << 20, 60).tolist()
    levels = []
    out, _, _ = pump(dut, dut.lines, beats, dut.beats, count=len(beats), stall=stall, seed=depth,
                     extra=lambda ctx: levels.append(ctx.get(dut.level)))
    assert out == beats
    assert max(levels) <= depth


def test_buffer_latency_and_full_rate():
    dut = WeightBuffer(beat_bits=8, depth=4)
    beats = list(range(20))
    out, out_cycles, in_cycles = pump(dut, dut.lines, beats, dut.beats, count=20)
    assert out == beats
    assert out_cycles[0] - in_cycles[0] == dut.latency
    assert out_cycles == list(range(out_cycles[0], out_cycles[0] + 20))


def words_of(beats, beat_bits, word_bits):
    """Dense little-endian packing of beats into words; the last word carries ``last``."""
    stream = sum(beat << (i * beat_bits) for i, beat in enumerate(beats))
    count = -(-len(beats) * beat_bits // word_bits)
    mask = (1 << word_bits) - 1
    return [(stream >> (i * word_bits) & mask) | (int(i == count - 1) << word_bits)
            for i in range(count)]


@pytest.mark.parametrize("word_bits,beat_bits", [(16, 40), (24, 32), (64, 64), (5, 8), (7, 9)])
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_assembler_regroups_loads_and_drops_padding(word_bits, beat_bits, stall):
    rng = np.random.default_rng(word_bits + beat_bits)
    loads = [rng.integers(0, 1 << beat_bits, n, dtype=np.uint64).tolist() for n in (3, 1, 7)]
    dut = LineAssembler(word_bits=word_bits, beat_bits=beat_bits)
    words = [w for load in loads for w in words_of(load, beat_bits, word_bits)]
    out, _, _ = pump(dut, dut.words, words, dut.beats, count=sum(map(len, loads)), stall=stall)
    assert out == [b for load in loads for b in load]


@pytest.mark.parametrize("word_bits,beat_bits", [(128, 64), (512, 64), (64, 64)])
def test_splitter_passes_every_beat_of_each_word(word_bits, beat_bits):
    """A word several beats wide: a load's padding comes out as zero beats, which the
    consumer (it knows each load's length) drops."""
    rng = np.random.default_rng(word_bits)
    loads = [rng.integers(1, 1 << beat_bits, n, dtype=np.uint64).tolist() for n in (3, 1, 5)]
    dut = WordSplitter(word_bits=word_bits, beat_bits=beat_bits)
    words = [w for load in loads for w in words_of(load, beat_bits, word_bits)]
    expected = [b for load in loads for b in
                load + [0] * ((-len(load) * beat_bits) % word_bits // beat_bits)]
    for stall in (0.4, 0.0):  # the timing check below is of the run without stalls
        out, out_cycles, _ = pump(dut, dut.words, words, dut.beats, count=len(expected),
                                  stall=stall)
        assert out == expected
    assert out_cycles == list(range(1, 1 + len(expected)))  # one beat per cycle


def test_assembler_runs_at_the_word_rate():
    dut = LineAssembler(word_bits=64, beat_bits=80)
    beats = list(range(1, 17))
    words = words_of(beats, 80, 64)
    out, out_cycles, in_cycles = pump(dut, dut.words, words, dut.beats, count=16)
    assert out == beats
    assert in_cycles == list(range(len(words)))  # never backpressures a ready engine


@pytest.mark.parametrize("cls,kwargs,message", [
    (WeightBuffer, {"beat_bits": 0}, "Beat bits must be an integer of at least 1, not 0"),
    (WeightBuffer, {"beat_bits": 8, "depth": 1}, "Depth must be an integer of at least 2, not 1"),
    (LineAssembler, {"word_bits": 0, "beat_bits": 8},
     "Word bits must be an integer from 1 to 8, not 0"),
    (LineAssembler, {"word_bits": 32, "beat_bits": 24},
     "Word bits must be an integer from 1 to 24, not 32"),
    (WordSplitter, {"word_bits": 96, "beat_bits": 64},
     "Word bits must be a multiple of the beat's 64, not 96"),
])
def test_parameter_errors(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.yosys
def test_buffer_maps_to_the_urams_the_planner_counts():
    from ternforge.boards import get_board
    from ternforge.gen.config import EngineConfig
    from ternforge.gen.synthesis import synthesize_component
    from ternforge.sim.models.weight_plan import plan_layer

    plan = plan_layer(n=4096, k=1536, engine=EngineConfig().parameters("tlmm-lutram"),
                      board=get_board("kv260"))
    buffer = WeightBuffer(beat_bits=plan.beat_bits, depth=plan.capacity_beats)
    assert plan.uram_count == 9
    assert synthesize_component(buffer, name="weight_buffer")["URAM"] == plan.uram_count
