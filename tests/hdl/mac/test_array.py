# amaranth: UnusedElaboratable=no
"""The MAC-array engines against the golden model, values exact, cycles equal to each
engine's cycle model, nothing lost under stalls: in the Amaranth simulator, and as generated
Verilog on Verilator through the cocotb testbench (``tb/mac_tb.py``: every architecture and
variant at two sizes and operand widths); the bit-matrix sums."""

import json
from dataclasses import asdict

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from stream_sim import run_simulation
from ternforge.hdl.mac.array import MAC_ARCHITECTURES, mac_array
from ternforge.hdl.mac.carry_save import CarrySaveSum
from ternforge.hdl.mac.parameters import ARCHITECTURES, VARIANTS, MacArrayParameters, \
    accumulator_width
from ternforge.sim import verilator
from ternforge.sim.models.mac import (MacGeometry, gemm, operand_beats, operand_range,
                                     results_from_beats)


def simulate(engine, a, b, *, stall=0.0, seed=0):
    """Run ``a @ b``; return (C, cycles from the first beat accepted to the last row)."""
    geom = MacGeometry.of(engine.parameters)
    beats = operand_beats(a, b, geom)
    tiles = -(-len(a) // geom.rows) * -(-b.shape[1] // geom.cols)
    rng = np.random.default_rng(seed)
    words, trace = [], {}

    async def bench(ctx):
        queue, cycle = list(beats), 0
        while len(words) < tiles * geom.rows:
            offer = bool(queue) and rng.random() >= stall
            ctx.set(engine.operands.valid, offer)
            if offer:
                ctx.set(engine.operands.payload.as_value(), queue[0])
            ctx.set(engine.results.ready, rng.random() >= stall)
            if ctx.get(engine.operands.valid) and ctx.get(engine.operands.ready):
                queue.pop(0)
                trace.setdefault("first", cycle)
            if ctx.get(engine.results.valid) and ctx.get(engine.results.ready):
                words.append(ctx.get(engine.results.payload.as_value()))
                trace["last"] = cycle
            await ctx.tick()
            cycle += 1
            assert cycle < 50 * (len(beats) + 20 * tiles), "no progress"

    sim = Simulator(engine)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    run_simulation(sim)
    return results_from_beats(words, len(a), b.shape[1], geom), trace["last"] - trace["first"] + 1


def random_operands(rng, m, k, n, width, is_signed):
    low, high = operand_range(width, is_signed)
    return (rng.integers(low, high + 1, (m, k)), rng.integers(low, high + 1, (k, n)))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("size,width,is_signed", [(2, 8, True), (4, 4, False)])
def test_values_and_cycles_exact(arch, variant, size, width, is_signed):
    parameters = MacArrayParameters(arch=arch, size=size, width=width, signed=is_signed,
                                    variant=variant, max_k=64)
    engine = mac_array(parameters)
    rng = np.random.default_rng(size * width)
    for m, k, n in [(5, 7, 3), (size, 1, size)]:
        a, b = random_operands(rng, m, k, n, width, is_signed)
        c, cycles = simulate(engine, a, b)
        np.testing.assert_array_equal(c, gemm(a, b))
        assert cycles == parameters.cycles(m, n, k)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("variant", VARIANTS)
def test_extremes_and_stalls(arch, variant):
    engine = mac_array(MacArrayParameters(arch=arch, size=2, width=8, signed=True,
                                          variant=variant, max_k=20))
    low, high = operand_range(8, True)
    for a_value, b_value in [(low, low), (low, high), (high, high)]:
        a, b = np.full((3, 20), a_value), np.full((20, 3), b_value)
        c, _ = simulate(engine, a, b, stall=0.5, seed=a_value & 0xff)
        np.testing.assert_array_equal(c, gemm(a, b))


@pytest.mark.parametrize("is_signed", [True, False])
def test_carry_save_sum_of_products_is_exact(is_signed):
    width, count = 5, 3
    acc = accumulator_width(width=width, signed_operands=is_signed, max_k=count)
    shape = (signed if is_signed else unsigned)(width)
    xs, ys = [Signal(shape) for _ in range(count)], [Signal(shape) for _ in range(count)]
    matrix = CarrySaveSum(acc)
    for x, y in zip(xs, ys):
        matrix.add_product(x, y, signed=is_signed)
    m = Module()
    total, carry = matrix.compress(m)
    out = Signal((signed if is_signed else unsigned)(acc))
    m.d.comb += out.eq((total + carry)[:acc])
    rng = np.random.default_rng(acc)
    low, high = operand_range(width, is_signed)

    async def bench(ctx):
        for _ in range(300):
            values = rng.integers(low, high + 1, 2 * count)
            for signal, value in zip(xs + ys, values):
                ctx.set(signal, int(value))
            expected = sum(int(p) * int(q) for p, q in zip(values[:count], values[count:]))
            assert ctx.get(out) == expected

    sim = Simulator(m)
    sim.add_testbench(bench)
    run_simulation(sim)


def test_an_engine_refuses_parameters_of_another_architecture():
    with pytest.raises(ValueError, match=r"^Parameters must be MacArrayParameters of "
                                         r"architecture cube3d, not MacArrayParameters\("
                                         r"arch='systolic'"):
        MAC_ARCHITECTURES["cube3d"](MacArrayParameters(arch="systolic"))


@pytest.mark.parametrize("is_signed,width", [(True, 8), (False, 8), (True, 5), (False, 3)])
def test_booth_products_are_exact(is_signed, width):
    from ternforge.hdl.mac.carry_save import booth_encode

    count = 2
    acc = accumulator_width(width=width, signed_operands=is_signed, max_k=count)
    shape = (signed if is_signed else unsigned)(width)
    xs, ys = [Signal(shape) for _ in range(count)], [Signal(shape) for _ in range(count)]
    m = Module()
    matrix = CarrySaveSum(acc)
    for index, (x, y) in enumerate(zip(xs, ys)):
        matrix.add_booth_product(x, booth_encode(m, y, signed=is_signed, name=f"y{index}"),
                                 signed=is_signed)
    total, carry = matrix.compress(m)
    out = Signal((signed if is_signed else unsigned)(acc))
    m.d.comb += out.eq((total + carry)[:acc])
    low, high = operand_range(width, is_signed)
    pairs = [(p, q) for p in (low, high, 0, 1, -1 if is_signed else 2) for q in (low, high, 0)]
    rng = np.random.default_rng(width)

    async def bench(ctx):
        cases = [pairs[i:i + count] for i in range(0, len(pairs) - 1, count)]
        cases += [list(zip(*rng.integers(low, high + 1, (2, count)))) for _ in range(200)]
        for case in cases:
            for (x, y), (p, q) in zip(zip(xs, ys), case):
                ctx.set(x, int(p))
                ctx.set(y, int(q))
            assert ctx.get(out) == sum(int(p) * int(q) for p, q in case)

    sim = Simulator(m)
    sim.add_testbench(bench)
    run_simulation(sim)


# -- the generated Verilog on Verilator

POINTS = [dict(size=4, width=8, signed=True, max_k=300),
          dict(size=2, width=16, signed=False, max_k=1024)]
ENGINES = [MacArrayParameters(arch=arch, variant=variant, **point) for point in POINTS
           for arch in ARCHITECTURES for variant in VARIANTS]


def engine_id(parameters):
    kind = "int" if parameters.signed else "uint"
    return f"{parameters.arch}-{parameters.variant}-{parameters.size}x{kind}{parameters.width}"


def _default(parameters):
    """Each architecture at both points, a different variant at each (every variant at each
    point, the variants in turn) by default, the rest with ``-m extended``: the Amaranth
    simulator above runs every architecture and variant, so the Verilator builds check the
    generated Verilog, eight builds rather than all twenty-four."""
    arch = sorted(ARCHITECTURES).index(parameters.arch)
    point = next(i for i, point in enumerate(POINTS) if parameters == MacArrayParameters(
        arch=parameters.arch, variant=parameters.variant, **point))
    return parameters.variant == VARIANTS[(arch + point) % len(VARIANTS)]


@pytest.mark.verilator
@pytest.mark.parametrize("parameters", [
    pytest.param(p, id=engine_id(p), marks=() if _default(p) else pytest.mark.extended)
    for p in ENGINES])
def test_mac_array_on_verilator(parameters, tmp_path):
    name = parameters.module_name
    build = verilator.build(verilog.convert(mac_array(parameters), name=name), toplevel=name)
    verilator.run(build, toplevel=name, test_module="ternforge.tb.mac_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps(asdict(parameters))})
