"""cocotb testbench of the ternary matmul engines (TLMM and the plain-adder baseline).

Driver: :class:`~ternforge.sim.cocotb.streams.StreamSource` on ``acts`` and ``weights``.
Monitor: :class:`~ternforge.sim.cocotb.streams.StreamSink` on ``results``.
Model: :func:`ternforge.sim.models.tl_code.tlmm` (TL-code engines) or the integer matmul (baseline), and the
engine's own cycle model ``cycles(M, K, N)``.
Checker: :func:`check` compares values exactly and, without stalls, cycles exactly.

The engine under test is described by ``TERNFORGE_TB`` (JSON: the fields of its
:class:`~ternforge.hdl.matmul.parameters.TlmmParameters`, and the run's ``seed``:
:func:`~ternforge.sim.cocotb.check.case_seed`).
"""

import json
import os

import cocotb
import numpy as np

from ternforge.hdl.matmul.parameters import TlmmParameters, WeightFormat
from ternforge.sim.models import tl_code
from ternforge.sim.cocotb.check import assert_cycles, assert_same, case_seed
from ternforge.sim.cocotb.tlmm import run_job

DESCRIPTION = json.loads(os.environ.get("TERNFORGE_TB", "{}"))
SEED = DESCRIPTION.pop("seed", 0)
PARAMETERS = TlmmParameters(**DESCRIPTION)


def model(acts, weights):
    group_size = PARAMETERS.group_size
    if PARAMETERS.kind.weight_format is WeightFormat.TL:
        return tl_code.tlmm(acts, tl_code.pack(weights, group_size), group_size)
    return acts.astype(np.int64) @ weights.astype(np.int64).T


def random_job(case, m, k, n):
    rng = np.random.default_rng(case_seed(SEED, case))
    return (rng.integers(-128, 128, (m, k)).astype(np.int8),
            rng.integers(-1, 2, (n, k)).astype(np.int8))


def check(result, acts, weights, *, cycles=True):
    expected = model(acts, weights)
    assert_same("results", result.y, expected)
    assert_same("the TL model", expected, acts.astype(np.int64) @ weights.astype(np.int64).T)
    if cycles:
        assert_cycles(f"a {len(acts)} x {acts.shape[1]} x {len(weights)} job", result.cycles,
                      PARAMETERS.cycles(len(acts), acts.shape[1], len(weights)))


def shapes():
    """Shapes around this configuration's boundaries: K off the group and beat grid, M = 1,
    M across token tiles, N off the row grid."""
    p = PARAMETERS
    per_beat, rows, tokens = p.acts_per_beat, p.rows, p.max_tokens
    return [(1, per_beat, rows), (tokens, 3 * per_beat + 1, 2 * rows - 1),
            (tokens + 1, per_beat + p.group_size - 1, rows + 1), (2, 1, 1)]


@cocotb.test()
async def values_and_cycles_match_models(dut):
    for seed, shape in enumerate(shapes()):
        acts, weights = random_job(seed, *shape)
        check(await run_job(dut, PARAMETERS, acts, weights), acts, weights)


@cocotb.test()
async def nothing_lost_under_random_stalls(dut):
    for seed, stall in enumerate([0.3, 0.7]):
        shape = shapes()[1 + seed]
        acts, weights = random_job(100 + seed, *shape)
        result = await run_job(dut, PARAMETERS, acts, weights, stall=stall,
                               seed=case_seed(SEED, seed))
        check(result, acts, weights, cycles=False)
        # (stalls never make a job faster than the model; where the engine has slack, a
        # seed's stalls may cost it nothing)
        assert result.cycles >= PARAMETERS.cycles(*shape), (result.cycles,
                                                            PARAMETERS.cycles(*shape))


@cocotb.test()
@cocotb.parametrize(act=[-128, 127], weight=[1, -1])
async def extreme_values(dut, act, weight):
    k = min(PARAMETERS.max_k, 4 * PARAMETERS.acts_per_beat + 1)
    acts = np.full((2, k), act, np.int8)
    weights = np.full((PARAMETERS.rows, k), weight, np.int8)
    result = await run_job(dut, PARAMETERS, acts, weights)
    check(result, acts, weights)
    assert np.all(result.y == act * weight * k)


@cocotb.test()
async def longest_reduction_does_not_overflow(dut):
    k = PARAMETERS.max_k
    acts = np.full((1, k), -128, np.int8)
    weights = np.stack([np.ones(k, np.int8), -np.ones(k, np.int8)])
    result = await run_job(dut, PARAMETERS, acts, weights)
    check(result, acts, weights)
