"""The buffered masters in the Amaranth simulator: a reader's loads arrive whole and in order
and, whatever its consumer does, it never holds up the read data (its room check: a burst is
requested only when the FIFO has room for all of it, counting the words on their way), with
its consumer and the memory stalling at random."""

import random

import pytest

from ternforge.hdl.common.dma import BufferedReader
from ternforge.hdl.common.timing import bursts

from stream_sim import run_testbench


@pytest.mark.parametrize("depth, max_burst", [(16, 16), (64, 16), (256, 256)])
@pytest.mark.parametrize("stall", [0.0, 0.3, 0.8])
def test_a_buffered_reader_never_holds_up_read_data(depth, max_burst, stall):
    word, latency = 8, 4
    rng = random.Random(depth + int(10 * stall))
    loads = [(word * rng.randrange(4096), rng.randint(1, 300)) for _ in range(8)]
    dut = BufferedReader(addr_bits=32, data_bits=64, depth=depth, max_burst=max_burst)
    total = sum(n for _, n in loads)
    out, requests = [], []

    async def bench(ctx):
        queue, beats, cycle, reserved = list(loads), [], 0, 0
        while len(out) < total:
            # the reader's room: the FIFO less the words requested and not yet consumed
            assert ctx.get(dut._reader.free) == depth - reserved
            ctx.set(dut.commands.valid, bool(queue))
            if queue:
                ctx.set(dut.commands.payload.address, queue[0][0])
                ctx.set(dut.commands.payload.words, queue[0][1])
            arready = rng.random() >= stall / 2
            ctx.set(dut.m_axi_arready, arready)
            offer = bool(beats) and beats[0][0] <= cycle and rng.random() >= stall / 2
            ctx.set(dut.m_axi_rvalid, offer)
            if offer:
                ctx.set(dut.m_axi_rdata, beats[0][1])
                ctx.set(dut.m_axi_rlast, beats[0][2])
                assert ctx.get(dut.m_axi_rready), "read data held up"
            ctx.set(dut.data.ready, rng.random() >= stall)
            if ctx.get(dut.commands.valid) and ctx.get(dut.commands.ready):
                queue.pop(0)
            if ctx.get(dut.m_axi_arvalid) and arready:
                address, length = ctx.get(dut.m_axi_araddr), ctx.get(dut.m_axi_arlen) + 1
                requests.append(length)
                reserved += length
                beats += [(cycle + latency, address + word * i, int(i == length - 1))
                          for i in range(length)]
            if offer:
                beats.pop(0)
            if ctx.get(dut.data.valid) and ctx.get(dut.data.ready):
                out.append((ctx.get(dut.data.payload.data), ctx.get(dut.data.payload.last)))
                reserved -= 1
            await ctx.tick()
            cycle += 1
            assert cycle < 200 * total, "no progress"

    run_testbench(dut, bench)
    assert requests == [n for a, w in loads
                        for n in bursts(a, w, word_bytes=word, max_burst=max_burst)]
    assert [a for a, _ in out] == [a + word * i for a, n in loads for i in range(n)]
    assert [i for i, (_, last) in enumerate(out) if last] == [
        sum(n for _, n in loads[:k + 1]) - 1 for k in range(len(loads))]
