"""The floating-point operators: the golden model against numpy and against itself, the
operators in the Amaranth simulator."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from stream_sim import run_simulation
from ternforge.hdl.fp.format import FLOAT_FORMATS, float_format
from ternforge.hdl.fp.ops import FLOAT_OPERATORS
from ternforge.hdl.fp.parameters import FloatUnitParameters
from ternforge.hdl.fp.format import round_exact
from ternforge.sim.models import fp as fm
from ternforge.sim.models.fp_units import golden

FORMATS = list(FLOAT_FORMATS)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("op", ["add", "mul"])
def test_exact_rounding_equals_numpy(op, fmt):
    """fma with a neutral term (``a * 1 + b``, ``a * b + 0``), computed exactly with
    fractions, is the exact rounding of the sum or product: it must equal numpy's
    arithmetic, which is the specification."""
    fmt = float_format(fmt)
    operands = fm.stimulus(op, fmt, 2, 3000, seed=5)
    a, b = operands[:, 0], operands[:, 1]
    if op == "add":
        one = fm.to_bits(np.ones(len(a)), fmt)
        exact, expected = fm.fma(a, one, b, fmt, fast=False), fm.add(a, b, fmt)
    else:
        exact = fm.fma(a, b, np.zeros(len(a), np.uint16), fmt, fast=False)
        expected = fm.multiply(a, b, fmt)
        magnitude = ~np.uint64(fmt.sign_bit)
        zero_products = ((a & magnitude) == 0) | ((b & magnitude) == 0)
        exact = np.where(zero_products, expected, exact)  # -0 + +0 = +0 differs from -0
    assert fm.same(exact, expected, fmt).all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_fast_fma_equals_exact_fma(fmt):
    operands = fm.stimulus("fma", fmt, 3, 3000, seed=8)
    assert fm.same(fm.fma(*operands.T, fmt), fm.fma(*operands.T, fmt, fast=False), fmt).all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_to_bits_rounds_once(fmt):
    """Half-ulp neighbourhoods in float64, rounded to ``fmt``: exactly as from fractions."""
    fmt, rng = float_format(fmt), np.random.default_rng(4)
    base = fm.from_bits(rng.integers(0, fmt.infinity, 3000).astype(fm.bits_dtype(fmt)), fmt)
    x = base.astype(np.float64) + np.spacing(base).astype(np.float64) / 2 \
        + rng.integers(-2, 3, 3000) * np.spacing(base.astype(np.float64))
    from fractions import Fraction
    exact = [round_exact(int(v < 0), abs(Fraction(float(v))), fmt) for v in x]
    assert fm.to_bits(x, fmt).tolist() == exact


def test_round_exact_ties_to_even_and_overflow():
    fmt = float_format("float16")
    from fractions import Fraction
    assert round_exact(0, Fraction(1) + Fraction(1, 2048), fmt) == 0x3C00  # tie: even
    assert round_exact(0, Fraction(1) + Fraction(3, 2048), fmt) == 0x3C02
    assert round_exact(1, Fraction(65520), fmt) == 0xFC00  # half an ulp above the max
    assert round_exact(0, Fraction(1, 2 ** 25), fmt) == 0  # half the smallest subnormal
    assert round_exact(0, Fraction(3, 2 ** 26), fmt) == 1


def simulate(unit, operands):
    """Results of ``operands`` through ``unit`` in the Amaranth simulator, with the result
    stream stalled every third cycle; returns results and the cycle of the last one."""
    results = []

    async def testbench(ctx):
        sent, cycle = 0, 0
        while len(results) < len(operands):
            ctx.set(unit.result.ready, cycle % 3 != 2)
            ctx.set(unit.operands.valid, sent < len(operands))
            if sent < len(operands):
                for index, name in enumerate("abc"[:unit.parameters.arity]):
                    ctx.set(getattr(unit.operands.payload, name), int(operands[sent, index]))
            _, _, ready, valid, result_ready, payload = await ctx.tick().sample(
                unit.operands.ready, unit.result.valid, unit.result.ready, unit.result.payload)
            sent += int(ready and sent < len(operands))
            if valid and result_ready:
                results.append(payload)
            cycle += 1

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    run_simulation(sim)
    return np.array(results, dtype=np.uint64)


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
@pytest.mark.parametrize("op", list(FLOAT_OPERATORS))
def test_operator_in_amaranth_simulator(op, fmt):
    unit = FLOAT_OPERATORS[op](FloatUnitParameters(op, fmt))
    operands = fm.stimulus(op, fmt, unit.parameters.arity, 150, seed=3)[-400:]
    assert fm.same(simulate(unit, operands), golden(op, operands, fmt), fmt).all()


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_fma_with_a_subnormal_factor_in_amaranth_simulator(fmt):
    """A subnormal factor leaves the product leading zeros that the fma normalises away
    (the factors' count, or one more): against the golden model with ``c`` at random and
    near ``-(a * b)``, where the product's place in the sum decides every bit."""
    f, rng, count = float_format(fmt), np.random.default_rng(7), 1500
    dtype, sign = fm.bits_dtype(f), np.uint64(f.sign_bit)
    a = rng.integers(1, 1 << f.mantissa_bits, count, dtype=np.uint64) | \
        rng.integers(0, 2, count, dtype=np.uint64) * sign
    b = rng.integers(0, f.infinity, count, dtype=np.uint64)
    product = fm.multiply(a.astype(dtype), b.astype(dtype), f).astype(np.uint64)
    near = ((product ^ sign) + rng.integers(0, 3, count, dtype=np.uint64)) & \
        np.uint64((1 << f.width) - 1)
    c = np.where(rng.random(count) < 0.5, rng.integers(0, 1 << f.width, count,
                                                       dtype=np.uint64), near)
    operands = np.stack([a, b, c], 1)
    operands = np.concatenate([operands, operands[:, [1, 0, 2]]]).astype(dtype)
    unit = FLOAT_OPERATORS["fma"](FloatUnitParameters("fma", fmt))
    assert fm.same(simulate(unit, operands), golden("fma", operands, fmt), f).all()


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_add_of_opposites_and_neighbours_in_amaranth_simulator(fmt):
    """``x + -x`` is +0 (known from the operands, before the addition), ``x + x`` and
    ``x + -(x + 1 ulp)`` are not, and signed zeros add as IEEE 754 says."""
    f, rng, count = float_format(fmt), np.random.default_rng(3), 1000
    sign, mask = np.uint64(f.sign_bit), np.uint64((1 << f.width) - 1)
    a = rng.integers(0, 1 << f.width, count, dtype=np.uint64)
    b = np.where(rng.random(count) < 0.5, a ^ sign, a)
    b = np.where(rng.random(count) < 0.2, (a ^ sign) + np.uint64(1), b) & mask
    zeros = np.array([[0, 0], [0, sign], [sign, 0], [sign, sign]], dtype=np.uint64)
    operands = np.concatenate([np.stack([a, b], 1), zeros]).astype(fm.bits_dtype(f))
    unit = FLOAT_OPERATORS["add"](FloatUnitParameters("add", fmt))
    assert fm.same(simulate(unit, operands), golden("add", operands, fmt), f).all()


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_add_on_both_sides_of_its_close_path_in_amaranth_simulator(fmt):
    """The add counts a difference's leading zeros on a close path (y at most a binade below
    x, opposite signs) and reads at most two off a far one: differences of operands 0 to 3
    binades apart with random significands, either sign order, and sums and differences of
    subnormals and the smallest normals (where the exponent, not the count, stops the
    normalisation)."""
    f, rng, count = float_format(fmt), np.random.default_rng(11), 1200
    sign = np.uint64(f.sign_bit)
    field = np.uint64(1 << f.mantissa_bits)
    exponent = rng.integers(1, f.max_exponent - 3, count, dtype=np.uint64)
    a = exponent * field + rng.integers(0, field, count, dtype=np.uint64)
    b = (exponent + rng.integers(0, 4, count, dtype=np.uint64)) * field + \
        rng.integers(0, field, count, dtype=np.uint64)
    b = b ^ np.where(rng.random(count) < 0.8, sign, np.uint64(0))
    small = rng.integers(0, 3 * int(field), (count // 2, 2), dtype=np.uint64) ^ \
        np.where(rng.random((count // 2, 2)) < 0.5, sign, np.uint64(0))
    operands = np.concatenate([np.stack([a, b], 1), np.stack([b, a], 1), small])
    unit = FLOAT_OPERATORS["add"](FloatUnitParameters("add", fmt))
    operands = operands.astype(fm.bits_dtype(f))
    assert fm.same(simulate(unit, operands), golden("add", operands, fmt), f).all()
