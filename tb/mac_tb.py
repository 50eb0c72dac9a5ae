"""cocotb testbench of the MAC-array engines (every architecture and variant).

Driver: :class:`~ternforge.sim.cocotb.streams.StreamSource` on ``operands``.
Monitor: :class:`~ternforge.sim.cocotb.streams.StreamSink` on ``results``.
Model: :func:`ternforge.sim.models.mac.gemm` (exact integers) and the engine's own cycle model
``cycles(M, N, K)``.
Checker: values exact always; cycles exact without stalls.

The engine under test is described by ``TERNFORGE_TB`` (JSON: the fields of its
:class:`~ternforge.hdl.mac.parameters.MacArrayParameters`).
"""

import json
import os

import cocotb
import numpy as np

from ternforge.hdl.mac.parameters import MacArrayParameters
from ternforge.sim.cocotb.mac import run_mac
from ternforge.sim.models.mac import gemm, operand_range

PARAMETERS = MacArrayParameters(**json.loads(os.environ.get("TERNFORGE_TB", "{}")))
LOW, HIGH = operand_range(PARAMETERS.width, PARAMETERS.signed)


def random_operands(seed, m, k, n):
    rng = np.random.default_rng(seed)
    return rng.integers(LOW, HIGH + 1, (m, k)), rng.integers(LOW, HIGH + 1, (k, n))


async def check(dut, a, b, *, stall=0.0, seed=0):
    c, cycles = await run_mac(dut, PARAMETERS, a, b, stall=stall, seed=seed)
    np.testing.assert_array_equal(c, gemm(a, b))
    if not stall:
        assert cycles == PARAMETERS.cycles(len(a), b.shape[1], a.shape[1]), cycles


@cocotb.test()
@cocotb.parametrize(shape=[(1, 1, 1), (5, 9, 7), (8, 33, 3), (3, 64, 9)])
async def mac_random_values_and_cycles_exact(dut, shape):
    await check(dut, *random_operands(sum(shape), *shape))


@cocotb.test()
@cocotb.parametrize(values=[(LOW, LOW), (LOW, HIGH), (HIGH, HIGH), (0, HIGH)])
async def mac_extreme_operands(dut, values):
    """Every product at an extreme of the operand range, over the longest K the
    accumulators are sized for in this test (the width bound is checked in the model)."""
    k = min(PARAMETERS.max_k, 300)
    await check(dut, np.full((3, k), values[0]), np.full((k, 5), values[1]))


@cocotb.test()
@cocotb.parametrize(stall=[0.3, 0.7])
async def mac_nothing_lost_under_stalls(dut, stall):
    await check(dut, *random_operands(7, 6, 21, 5), stall=stall, seed=int(stall * 10))
