"""The FIFOs whose flags (and head) are registers, against Amaranth's ``SyncFIFO`` cycle by
cycle: the same ``w_rdy``, ``r_rdy``, ``level`` and head under random writes and reads; the
skid against a plain connection; the register against the same connection a cycle later."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib.fifo import SyncFIFO

from ternforge.hdl.common.streams import FlagFIFO, HeadFIFO, Register, Skid

from stream_sim import run_testbench


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

    run_testbench(m, bench)


@pytest.mark.parametrize("kind", [FlagFIFO, HeadFIFO])
def test_a_bad_depth_is_refused(kind):
    with pytest.raises(ValueError, match=rf"^{kind.__name__} depth must be an integer from 1 "
                                         r"to 4096, not 0$"):
        kind(width=8, depth=0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("stalls", [False, True])
def test_a_skid_delivers_every_beat_no_later_than_a_plain_connection(seed, stalls):
    """The same random source (a new beat offered at random once the last is taken) and
    sink, once through a skid and once joined directly (in Python): the sink takes the same
    beats in order, each no later than directly, and exactly as directly when it never
    stalls; the skid's ``ready`` does not follow the sink's within a cycle."""
    skid = Skid(8)
    rng = random.Random(seed)
    offered = [rng.random() < 0.7 for _ in range(3000)]  # a new beat may be offered
    takes = [not stalls or rng.random() < 0.6 for _ in range(3000)]  # the sink's ready

    def plain():
        taken, value, ready = [], 0, False
        for cycle, (offer, take) in enumerate(zip(offered, takes)):
            ready = ready or offer
            if ready and take:
                taken.append((cycle, value))
                value, ready = value + 1, False
        return taken

    async def bench(ctx):
        taken, value, ready = [], 0, False
        for cycle, (offer, take) in enumerate(zip(offered, takes)):
            ready = ready or offer
            ctx.set(skid.input.valid, ready)
            ctx.set(skid.input.payload, value % 256)
            ctx.set(skid.output.ready, not take)
            before = ctx.get(skid.input.ready)
            ctx.set(skid.output.ready, take)
            assert ctx.get(skid.input.ready) == before
            if ctx.get(skid.output.valid) and take:
                taken.append((cycle, ctx.get(skid.output.payload)))
            if ready and before:
                value, ready = value + 1, False
            await ctx.tick()
        reference = plain()
        assert len(taken) >= len(reference)
        assert [v for _, v in taken[:len(reference)]] == [v % 256 for _, v in reference]
        assert all(mine <= theirs for (mine, _), (theirs, _) in zip(taken, reference))
        if not stalls:
            assert taken == [(cycle, value % 256) for cycle, value in reference]

    run_testbench(skid, bench)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("stalls", [False, True])
def test_a_register_delivers_every_beat_in_order_a_cycle_later(seed, stalls):
    """A random source (a new beat offered at random once the last is taken) into a
    register, a random sink behind it: the sink takes every beat offered, once and in order,
    no beat before the cycle after it was offered; with a sink that never stalls each beat
    arrives exactly a cycle after it was taken, and the source is never refused."""
    register = Register(8)
    rng = random.Random(seed)
    offered = [rng.random() < 0.7 for _ in range(3000)]
    takes = [not stalls or rng.random() < 0.6 for _ in range(3000)]

    async def bench(ctx):
        sent, taken, value, ready = [], [], 0, False
        for cycle, (offer, take) in enumerate(zip(offered, takes)):
            ready = ready or offer
            ctx.set(register.input.valid, ready)
            ctx.set(register.input.payload, value % 256)
            ctx.set(register.output.ready, take)
            if ctx.get(register.output.valid) and take:
                taken.append((cycle, ctx.get(register.output.payload)))
            if ready:
                assert stalls or ctx.get(register.input.ready)
                if ctx.get(register.input.ready):
                    sent.append((cycle, value % 256))
                    value, ready = value + 1, False
            await ctx.tick()
        assert [v for _, v in taken] == [v for _, v in sent[:len(taken)]]
        assert len(sent) - len(taken) <= 1
        assert all(out > into for (out, _), (into, _) in zip(taken, sent))
        if not stalls:
            assert [out for out, _ in taken] == [into + 1 for into, _ in sent[:len(taken)]]

    run_testbench(register, bench)
