"""The two-pass stages in the Amaranth simulator, under long stalls of their output: a token's
last beat held behind a stalled sink is still scaled by its own token's statistic, not by the
next token's, whose pass 1 and scalar phase could otherwise run meanwhile."""

import random

import numpy as np

from ternforge.hdl.eltwise.parameters import QuantiseParameters
from ternforge.hdl.eltwise.two_pass import Quantise
from ternforge.sim.models import eltwise as model

from stream_sim import run_testbench

LENGTH, TOKENS = 8, 12


def test_quantise_keeps_each_tokens_scale_through_long_output_stalls():
    rng = np.random.default_rng(5)
    # tokens of very different magnitudes, so that a code scaled by a neighbour's 1/scale
    # is wrong
    x = rng.standard_normal((TOKENS, LENGTH)) * 10.0 ** rng.integers(-2, 3, (TOKENS, 1))
    x = x.astype(np.float32).view(np.uint32)
    codes, scales = model.quantise(x)
    dut = Quantise(QuantiseParameters(format="float32", max_length=2 * LENGTH))
    stalls, got, got_scales = random.Random(9), [], []

    async def source(ctx):
        for i, value in enumerate(x.flat):
            ctx.set(dut.input.valid, 1)
            ctx.set(dut.input.payload, {"value": int(value), "last": i % LENGTH == LENGTH - 1})
            await ctx.tick().until(dut.input.ready)
        ctx.set(dut.input.valid, 0)

    async def scales_sink(ctx):
        ctx.set(dut.scale.ready, 1)
        while len(got_scales) < TOKENS:
            _, _, valid, scale = await ctx.tick().sample(dut.scale.valid, dut.scale.payload)
            if valid:
                got_scales.append(scale)

    async def codes_sink(ctx):
        # take a beat, and now and then refuse the next for longer than a token's pass 1
        # and scalar phase take
        cycle = 0
        while len(got) < TOKENS * LENGTH:
            ctx.set(dut.codes.ready, 1)
            _, _, valid, payload = await ctx.tick().sample(dut.codes.valid, dut.codes.payload)
            if valid:
                got.append(int(payload.value))
                if stalls.random() < 0.3:
                    ctx.set(dut.codes.ready, 0)
                    await ctx.tick().repeat(stalls.randrange(40, 120))
            cycle += 1
            assert cycle < 100_000, f"{len(got)} of {TOKENS * LENGTH} codes"

    run_testbench(dut, source, scales_sink, codes_sink)
    assert got_scales == [int(s) for s in scales.view(np.uint32)]
    assert got == [int(c) for c in codes.flat]
