"""The units' cycle models against the accelerator on Verilator: each instruction run alone
on a deterministic memory takes exactly the cycles its unit's model says (the controller's
busy counter of that unit), at random sizes and addresses (4 KiB boundaries crossed anywhere)
and at two memory timings."""

import random

import pytest

import tb.controller_tb as machine
from ternforge.hdl.accelerator.parameters import VectorOp
from ternforge.hdl.common.timing import MemoryTiming

TIMINGS = [MemoryTiming(latency=20, write_latency=10), MemoryTiming(latency=6, write_latency=3)]
#: operand regions, each 128 KiB (the machine tests' memory is 2 MiB; programs above 1 MiB)
REGION = 0x20000


@pytest.fixture(scope="module")
def build():
    return machine.build()


def _address(rng, region):
    return 0x10000 + region * REGION + machine.WORD * rng.randrange(4096)


def vector_instructions(seed, count):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        op = rng.choice(list(VectorOp))
        tokens = rng.randint(1, 4)
        length = 4 * rng.randint(1, machine.ACCELERATOR.vector.max_length // 4)  # whole words
        a, b, y, z = (_address(rng, k) for k in range(4))
        out.append(("vector", {"op": op, "tokens": tokens, "length": length, "a": a, "b": b,
                               "y": y, "z": z, "scalar": 0x3F800000,
                               "inv_length": 0x3B800000}))
    return out


@pytest.mark.verilator
@pytest.mark.parametrize("memory", TIMINGS, ids=lambda m: f"latency{m.latency}")
def test_vector_unit_cycles_are_its_model(build, tmp_path, memory):
    instructions = vector_instructions(memory.latency, 40)
    measured = machine.measure_alone(build, tmp_path, instructions, memory=memory)
    vector = machine.ACCELERATOR.vector
    got = [run["units"]["vector"] for run in measured]
    predicted = [vector.cycles(f["op"], f["tokens"], f["length"], a=f["a"], b=f["b"],
                               y=f["y"], z=f["z"], memory=memory)
                 for _, f in instructions]
    assert got == predicted
