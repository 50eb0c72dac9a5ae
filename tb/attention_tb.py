"""cocotb testbench of the attention unit (engine, AXI4 KV-cache reader and appender).

Driver: :func:`~ternforge.sim.cocotb.attention.run_attention` (stream sources for commands,
queries and appended rows; an AXI4 memory model holding the KV cache).
Monitor: a stream sink on ``output`` and the memory image after the run.
Model: :func:`ternforge.sim.models.attention.multi_head` (bit-exact) and
:meth:`~ternforge.hdl.attention.parameters.AttentionUnitParameters.cycles`; float64 attention
for the error.
Checker: outputs bit-exact, the appended rows in the cache, DDR bytes read as the loop order
says, cycles exact without stalls (wherever the cycle model applies: every job but a decode
against an empty cache).

The unit is described by ``TERNFORGE_TB`` (JSON: an
:class:`~ternforge.sim.jobs.attention.AttentionJob`'s :meth:`~ternforge.sim.jobs.attention
.AttentionJob.to_dict`, and the run's ``seed``: :func:`~ternforge.sim.cocotb.check.case_seed`).
"""

import json
import os

import cocotb
import numpy as np

from ternforge.sim.models import attention as am
from ternforge.sim.models import fp as fm
from ternforge.sim.jobs.attention import AttentionJob
from ternforge.sim.cocotb.attention import run_attention
from ternforge.sim.cocotb.check import assert_cycles, assert_same, case_seed

DESCRIPTION = json.loads(os.environ.get("TERNFORGE_TB", "{}"))
SEED = DESCRIPTION.pop("seed", 0)
JOB = AttentionJob.from_dict(DESCRIPTION)
ENGINE = JOB.unit.engine
FMT = ENGINE.format
#: query heads per KV head of the decode cases: two, or one on a unit of one-row tiles (a
#: decode job's rows are the group's heads)
GROUP = min(2, ENGINE.rows)


def inputs(case, heads, kv_heads, tokens, keys, scale=1.0):
    rng = np.random.default_rng(case_seed(SEED, case))
    d = ENGINE.head_dim
    channel = rng.uniform(0.3, 3.0, d)  # per-channel scales, as trained Q/K have
    q = fm.to_bits(rng.standard_normal((heads, tokens, d)) * channel * scale, FMT)
    k = fm.to_bits(rng.standard_normal((kv_heads, keys, d)) * channel * scale, FMT)
    v = fm.to_bits(rng.standard_normal((kv_heads, keys, d)), FMT)
    return q, k, v


async def check(dut, phase, q, k, v, *, stall=0.0, seed=0):
    result = await run_attention(dut, JOB, q, k, v, phase, stall=stall,
                                 seed=case_seed(SEED, seed))
    expected = am.multi_head(q, k, v, phase=phase, rows=ENGINE.rows, cols=ENGINE.cols, fmt=FMT)
    assert_same(f"{phase} output [head, token, element]", result["o"], expected, fmt=FMT)
    commands = JOB.commands(q, k, v, phase)[0]
    assert result["bytes_read"] == JOB.unit.bytes_read(commands)
    if phase == "decode":  # the newest token's key and value were appended to the cache
        cache = np.frombuffer(result["image"], dtype=q.dtype).reshape(
            k.shape[0], ENGINE.max_keys, 2 * ENGINE.head_dim)
        assert_same("the appended KV-cache row [KV head, element]", cache[:, k.shape[1] - 1],
                    np.concatenate([k[:, -1], v[:, -1]], 1))
    if not stall and JOB.unit.modeled(commands):  # (not a decode of an empty cache)
        assert_cycles(f"the {phase} job", result["cycles"], JOB.cycles(commands))
    error = np.abs(fm.from_bits(result["o"], FMT).astype(np.float64)
                   - am.reference(q, k, v, phase=phase, fmt=FMT)).max()
    dut._log.info(f"{phase}: {result['cycles']} cycles, {result['bytes_read']} bytes read, "
                  f"max abs error against float64 {error:.3g}")


@cocotb.test()
@cocotb.parametrize(tokens=[1, 5, 13])
async def prefill_exact(dut, tokens):
    """Causal prefill, tokens off the tile grid, two query heads over one KV head."""
    await check(dut, "prefill", *inputs(tokens, 2, 1, tokens, tokens))


@cocotb.test()
@cocotb.parametrize(context=[1, 11, 37])
async def decode_exact(dut, context):
    """Decode with grouped queries (:data:`GROUP` heads a KV head, two KV heads), appending
    the newest token."""
    await check(dut, "decode", *inputs(context, 2 * GROUP, 2, 1, context))


@cocotb.test()
async def extreme_logits(dut):
    """Logits in the hundreds: a naive exp overflows, the online softmax does not."""
    q, k, v = inputs(3, 2, 1, 9, 9, scale=12.0)
    await check(dut, "prefill", q, k, v)


@cocotb.test()
@cocotb.parametrize(stall=[0.3, 0.7])
async def nothing_lost_under_stalls(dut, stall):
    await check(dut, "prefill", *inputs(21, 1, 1, 7, 7), stall=stall, seed=int(stall * 10))
    await check(dut, "decode", *inputs(22, GROUP, 1, 1, 10), stall=stall, seed=int(stall * 10))


@cocotb.test()
async def long_context_decode(dut):
    """One KV head at a context of 1,024 keys."""
    await check(dut, "decode", *inputs(5, GROUP, 1, 1, 1024))
