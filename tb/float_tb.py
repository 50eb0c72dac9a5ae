"""cocotb testbench of the floating-point operators and functions.

Driver: one full-rate coroutine (:func:`~ternforge.sim.cocotb.fp.run_float`), or a
:class:`~ternforge.sim.cocotb.streams.StreamSource` under random stalls.
Monitor: the same coroutine, or a :class:`~ternforge.sim.cocotb.streams.StreamSink`.
Model: :func:`ternforge.sim.models.fp_units.golden` (numpy's arithmetic for add and mul, exact
rounding for fma, the functions' bit-exact model) and the unit's parameters' ``cycles(n)``.
Checker: every result bit-exact (NaN against NaN), cycles exact without stalls.

The unit is described by ``TERNFORGE_TB`` (JSON: ``op``, ``format`` and ``count``, the
random operations per run).
"""

import json
import os

import cocotb
import numpy as np

from ternforge.hdl.fp.parameters import FloatUnitParameters
from ternforge.sim.cocotb.fp import run_float
from ternforge.sim.models.fp import same, stimulus
from ternforge.sim.models.fp_units import golden

CONFIG = json.loads(os.environ.get("TERNFORGE_TB", '{"op": "add", "format": "float16"}'))
PARAMETERS = FloatUnitParameters(CONFIG["op"], CONFIG["format"])
FORMAT = PARAMETERS.format


async def check(dut, operands, *, stall=0.0, seed=0):
    result, cycles = await run_float(dut, operands, FORMAT.width, stall=stall, seed=seed)
    expected = golden(CONFIG["op"], operands, FORMAT)
    wrong = np.flatnonzero(~same(result, expected, FORMAT))
    assert not len(wrong), [(operands[i].tolist(), hex(result[i]), hex(expected[i]))
                            for i in wrong[:5]]
    if not stall:
        assert cycles == PARAMETERS.cycles(len(operands)), cycles


@cocotb.test()
async def float_special_random_and_tie_values_exact(dut):
    """Every special-value pair, random bit patterns, ties and cancellations; cycles exact."""
    await check(dut, stimulus(CONFIG["op"], FORMAT, PARAMETERS.arity,
                              CONFIG.get("count", 2000), seed=1))


@cocotb.test()
@cocotb.parametrize(stall=[0.3, 0.7])
async def float_nothing_lost_under_stalls(dut, stall):
    operands = stimulus(CONFIG["op"], FORMAT, PARAMETERS.arity, 150,
                        seed=int(stall * 10))[-300:]
    await check(dut, operands, stall=stall, seed=int(stall * 10))
