"""cocotb testbench of the element-wise stages and the element-wise unit.

Driver: a :class:`~ternforge.sim.cocotb.streams.StreamSource` per input stream.
Monitor: a :class:`~ternforge.sim.cocotb.streams.StreamSink` per output stream.
Model: :meth:`ternforge.sim.jobs.eltwise.EltwiseJob.golden` (the golden model of
:mod:`ternforge.sim.models.eltwise`) and the stage's parameters' ``cycles(tokens, length)``.
Checker: every output bit-exact (NaN against NaN), ``last`` on every token's end, cycles
exact without stalls.

The stage is described by ``TERNFORGE_TB`` (JSON: an
:class:`~ternforge.sim.jobs.eltwise.EltwiseJob`, and the run's ``seed``:
:func:`~ternforge.sim.cocotb.check.case_seed`).
"""

import json
import os

import cocotb
import numpy as np

from ternforge.sim.models import eltwise as em
from ternforge.sim.models import fp as fm
from ternforge.sim.cocotb.check import assert_cycles, assert_same, case_seed
from ternforge.sim.cocotb.eltwise import run_eltwise
from ternforge.sim.jobs.eltwise import EltwiseJob

DESCRIPTION = json.loads(os.environ.get("TERNFORGE_TB", '{"op": "residual"}'))
SEED = DESCRIPTION.pop("seed", 0)
JOB = EltwiseJob(**DESCRIPTION)
PARAMETERS = JOB.parameters
FMT = JOB.format


def floats(rng, shape, scale=3.0, specials=False):
    bits = fm.to_bits(rng.standard_normal(shape) * scale, FMT)
    if specials:  # about one element in four a special or boundary value
        chosen = rng.choice(fm.special_values(FMT), shape)
        bits = np.where(rng.random(shape) < 0.25, chosen, bits).astype(bits.dtype)
    return bits


def job_arrays(case, tokens, n, specials=False):
    """Inputs of realistic scale (a ternary matmul's accumulators, unit-scale activations);
    ``specials`` mixes in zeros, subnormals, infinities and NaNs."""
    rng = np.random.default_rng(case_seed(SEED, case))
    arrays = {}
    if JOB.op in ("dequant", "unit"):
        acc = rng.integers(-(1 << 20), 1 << 20, (tokens, n))
        acc[0, 0], acc[-1, -1] = -(1 << 31), (1 << 31) - 1
        arrays.update(acc=acc, act_scale=fm.to_bits(rng.uniform(1e-3, 0.1, tokens), FMT),
                      weight_scale=fm.to_bits(np.float64(0.61), FMT))
    if JOB.op in ("residual", "unit"):
        arrays["residual"] = floats(rng, (tokens, n), specials=specials)
    if JOB.op in ("residual", "rmsnorm", "quant"):
        arrays["x"] = floats(rng, (tokens, n), specials=specials)
    if JOB.op in ("silu", "relu2"):
        arrays.update(gate=floats(rng, (tokens, n), specials=specials),
                      up=floats(rng, (tokens, n), specials=specials))
    if JOB.op in ("rmsnorm", "unit"):
        arrays.update(gain=fm.to_bits(rng.uniform(0.5, 2.0, n), FMT),
                      eps=fm.to_bits(np.float64(1e-5), FMT))
    if JOB.op == "rope":
        cos, sin = em.rope_tables(rng.integers(0, 4096, tokens), 2 * n, fmt=FMT)
        arrays.update(x=floats(rng, (tokens, 2 * n), specials=specials), cos=cos, sin=sin)
    return arrays


async def check(dut, arrays, *, stall=0.0, seed=0):
    outputs, cycles = await run_eltwise(dut, JOB, arrays, stall=stall,
                                        seed=case_seed(SEED, seed))
    expected = JOB.golden(arrays)
    for name, want in expected.items():
        assert_same(name, outputs[name], want, fmt=None if name == "codes" else FMT)
    for name, lasts in outputs["lasts"].items():
        assert (lasts[:, -1] == 1).all() and not lasts[:, :-1].any(), name
    if not stall:
        tokens, beats = JOB.shape(arrays)
        assert_cycles(f"{tokens} token(s) of {beats} beats", cycles,
                      PARAMETERS.cycles(tokens, beats))


@cocotb.test()
@cocotb.parametrize(shape=[(1, 1), (3, 7), (2, 33), (2, JOB.max_length)])
async def eltwise_random_values_and_cycles_exact(dut, shape):
    await check(dut, job_arrays(sum(shape), *shape))


@cocotb.test()
async def eltwise_special_values(dut):
    await check(dut, job_arrays(5, 4, 19, specials=True))


@cocotb.test()
@cocotb.parametrize(stall=[0.3, 0.7])
async def eltwise_nothing_lost_under_stalls(dut, stall):
    await check(dut, job_arrays(9, 3, 13), stall=stall, seed=int(stall * 10))
