"""The burst masters in the Amaranth simulator: every load cut into the bursts of
:func:`~ternforge.hdl.common.timing.bursts` (at most ``max_burst`` words, none across 4 KiB)
and its words delivered in order, under random stalls on every channel; without stalls a
command's first burst offered two cycles after the command is taken, its others back to
back."""

import random

import pytest

from ternforge.hdl.common.axi import BurstReader, BurstWriter
from ternforge.hdl.common.timing import bursts

from stream_sim import run_testbench

WORD = 8  # bytes of a 64-bit bus


def _loads(rng, count, max_words, word=WORD):
    return [(word * rng.randrange(4096), rng.randint(1, max_words)) for _ in range(count)]


def _read(reader, loads, *, stall, seed, latency=3, word=WORD):
    """Run ``loads`` through ``reader``; return the requests (cycle, address, words), the
    words delivered (address, last) and the cycle each command was taken."""
    rng = random.Random(seed)
    requests, words, taken = [], [], []
    total = sum(n for _, n in loads)

    async def bench(ctx):
        queue, pending, beats, cycle = list(loads), [], [], 0
        while len(words) < total:
            ctx.set(reader.commands.valid, bool(queue))
            if queue:
                ctx.set(reader.commands.payload.address, queue[0][0])
                ctx.set(reader.commands.payload.words, queue[0][1])
            ready = not (stall and rng.random() < stall)
            ctx.set(reader.m_axi_arready, ready)
            # read data: the oldest request's next word, ``latency`` cycles after its address
            offer = bool(beats) and beats[0][0] <= cycle and not (stall and rng.random() < stall)
            ctx.set(reader.m_axi_rvalid, offer)
            if offer:
                ctx.set(reader.m_axi_rdata, beats[0][1])
                ctx.set(reader.m_axi_rlast, beats[0][2])
            ctx.set(reader.data.ready, not (stall and rng.random() < stall))
            if ctx.get(reader.commands.valid) and ctx.get(reader.commands.ready):
                queue.pop(0)
                taken.append(cycle)
            if ctx.get(reader.m_axi_arvalid) and ready:
                address = ctx.get(reader.m_axi_araddr)
                length = ctx.get(reader.m_axi_arlen) + 1
                assert ctx.get(reader.burst) == length
                requests.append((cycle, address, length))
                beats += [(cycle + latency, address + word * i, int(i == length - 1))
                          for i in range(length)]
            if offer and ctx.get(reader.m_axi_rready):
                beats.pop(0)
            if ctx.get(reader.data.valid) and ctx.get(reader.data.ready):
                words.append((ctx.get(reader.data.payload.data),
                              ctx.get(reader.data.payload.last)))
            await ctx.tick()
            cycle += 1
            assert cycle < 100 * total + 1000, "no progress"

    run_testbench(reader, bench)
    return requests, words, taken


@pytest.mark.parametrize("data_bits, max_burst", [(64, 1), (64, 5), (64, 16), (64, 256),
                                                  (512, 48), (512, 256)])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_a_reader_cuts_its_loads_into_the_models_bursts(data_bits, max_burst, stall):
    rng, word = random.Random(max_burst), data_bits // 8
    # (without stalls, loads short enough that their bursts in flight never fill the
    # reader's 256: the requests' cycles are the reader's own)
    loads = _loads(rng, 12, 200 if not stall else 700, word) + [
        (4096 - word, 3), (0, 1), (4096 - 2 * word, 2)]
    reader = BurstReader(addr_bits=32, data_bits=data_bits,
                         outstanding=256 if not stall else 4, max_burst=max_burst)
    requests, words, taken = _read(reader, loads, stall=stall, seed=max_burst, word=word)
    expected = []
    for address, n in loads:
        for length in bursts(address, n, word_bytes=word, max_burst=max_burst):
            expected.append((address, length))
            address += word * length
    assert [(a, n) for _, a, n in requests] == expected
    lasts = [last for _, last in words]
    assert sum(lasts) == len(loads) and lasts[-1] == 1
    addresses = [a + word * i for a, n in loads for i in range(n)]
    assert [a for a, _ in words] == addresses
    if not stall:  # the first burst two cycles after the command, the others back to back
        cycles = iter(c for c, _, _ in requests)
        for (address, n), cycle in zip(loads, taken):
            count = len(bursts(address, n, word_bytes=word, max_burst=max_burst))
            assert [next(cycles) for _ in range(count)] == [cycle + 2 + i
                                                            for i in range(count)]


def _write(writer, loads, *, stall, seed):
    """Run ``loads`` through ``writer``, its data words numbered from 0; return the bursts
    (address, words) with their data, and the ``done`` count."""
    rng = random.Random(seed)
    total = sum(n for _, n in loads)
    out, done = [], []

    async def bench(ctx):
        queue, word, burst, left, answers, cycle = list(loads), 0, None, 0, [], 0
        while len(done) < len(loads):
            ctx.set(writer.commands.valid, bool(queue))
            if queue:
                ctx.set(writer.commands.payload.address, queue[0][0])
                ctx.set(writer.commands.payload.words, queue[0][1])
            ctx.set(writer.data.valid, word < total and not (stall and rng.random() < stall))
            ctx.set(writer.data.payload, word)
            awready = burst is None and not (stall and rng.random() < stall)
            ctx.set(writer.m_axi_awready, awready)
            wready = burst is not None and not (stall and rng.random() < stall)
            ctx.set(writer.m_axi_wready, wready)
            answer = bool(answers) and answers[0] <= cycle
            ctx.set(writer.m_axi_bvalid, answer)
            ctx.set(writer.done.ready, 1)
            if ctx.get(writer.commands.valid) and ctx.get(writer.commands.ready):
                queue.pop(0)
            if ctx.get(writer.done.valid):
                done.append(cycle)
            if answer:
                answers.pop(0)
            if ctx.get(writer.m_axi_awvalid) and awready:
                length = ctx.get(writer.m_axi_awlen) + 1
                assert ctx.get(writer.burst) == length
                burst, left = (ctx.get(writer.m_axi_awaddr), length, []), length
            if ctx.get(writer.m_axi_wvalid) and wready:
                burst[2].append(ctx.get(writer.m_axi_wdata))
                left -= 1
                assert ctx.get(writer.m_axi_wlast) == (left == 0)
                if left == 0:
                    out.append(burst)
                    burst = None
                    answers.append(cycle + 3)
            if ctx.get(writer.data.valid) and ctx.get(writer.data.ready):
                word += 1
            await ctx.tick()
            cycle += 1
            assert cycle < 100 * total + 1000, "no progress"

    run_testbench(writer, bench)
    return out, done


@pytest.mark.parametrize("max_burst", [1, 7, 256])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_a_writer_cuts_its_loads_into_the_models_bursts(max_burst, stall):
    rng = random.Random(max_burst + 1)
    loads = _loads(rng, 6, 300) + [(4096 - WORD, 3), (0, 1)]
    writer = BurstWriter(addr_bits=32, data_bits=64, max_burst=max_burst)
    out, done = _write(writer, loads, stall=stall, seed=max_burst)
    expected = []
    for address, n in loads:
        for length in bursts(address, n, word_bytes=WORD, max_burst=max_burst):
            expected.append((address, length))
            address += WORD * length
    assert [(a, n) for a, n, _ in out] == expected
    assert [w for _, _, words in out for w in words] == list(range(sum(n for _, n in loads)))
    assert len(done) == len(loads)
