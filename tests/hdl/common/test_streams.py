"""The FIFOs whose flags (and head) are registers, against Amaranth's ``SyncFIFO`` cycle by
cycle: the same ``w_rdy``, ``r_rdy``, ``level`` and head under random writes and reads."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib.fifo import SyncFIFO
from amaranth.sim import Simulator

from ternforge.hdl.common.streams import FlagFIFO, HeadFIFO


@pytest.mark.parametrize("kind", [FlagFIFO, HeadFIFO])
@pytest.mark.parametrize("depth", [1, 2, 3, 5, 16])
def test_a_fifo_is_a_sync_fifo_cycle_for_cycle(kind, depth):
    m = Module()
    m.submodules.reference = reference = SyncFIFO(width=8, depth=depth)
    m.submodules.fifo = fifo = kind(width=8, depth=depth)
    rng = random.Random(depth)

    async def bench(ctx):
        for _ in range(2000):
            write, read, value = rng.random() < 0.5, rng.random() < 0.5, rng.randrange(256)
            for f in (reference, fifo):
                ctx.set(f.w_en, write)
                ctx.set(f.r_en, read)
                ctx.set(f.w_data, value)
            flags = [[ctx.get(s) for s in (f.w_rdy, f.r_rdy, f.level)]
                     for f in (reference, fifo)]
            assert flags[0] == flags[1]
            if flags[0][1]:
                assert ctx.get(fifo.r_data) == ctx.get(reference.r_data)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("kind", [FlagFIFO, HeadFIFO])
def test_a_bad_depth_is_refused(kind):
    with pytest.raises(ValueError, match=rf"^{kind.__name__} depth must be an integer from 1 "
                                         r"to 4096, not 0$"):
        kind(width=8, depth=0)
