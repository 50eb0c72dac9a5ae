"""Pipelined non-linear floating-point functions: reciprocal, reciprocal square root,
exponential, sigmoid and SiLU.

Every function is a :class:`~ternforge.hdl.fp.ops.FloatOperator` of arity one (stream
``operands`` with payload ``{"a": width}``, stream ``result``), for float16, bfloat16 and
float32. The method is the classic hardware one: range reduction to a fixed-point argument
in a unit interval, then a piecewise polynomial indexed by the argument's top ``k`` bits,
coefficients read from a ROM (``lib.memory`` with a combinational read port) and evaluated
in fixed point by Horner's rule with truncating (floor) shifts; the fixed-point
approximation is then rounded once, to nearest (ties to even) with gradual underflow and
overflow to infinity, by :func:`~ternforge.hdl.fp.datapath.normalise_round`. The result is
thus *the correctly rounded value of the fixed-point approximation*, which
:mod:`ternforge.sim.models.fp_functions` reproduces bit for bit. The widths and table
shapes of each format are its :class:`~ternforge.hdl.fp.parameters.FunctionParameters`.

Notation: ``p`` is the precision (11, 8, 24 for float16, bfloat16, float32), ``F = p + 6``
the fraction bits of every polynomial output (and of the sigmoid's ``1 + e^-|x|``),
``Fz = p + 4`` the fraction bits of the exponential's reduced argument. A segment's
polynomial is in ``t``, the argument bits below the index read as a fraction in ``[0, 1)``
(``T`` bits): degree 1 ``y = c0 + ((c1 * t) >> T)``, degree 2 ``u = c1 + ((c2 * t) >> T)``,
``y = c0 + ((u * t) >> T)``; the integer coefficients are ``round(2**F * c)`` of a least
squares fit over the segment (over its ``2**T`` points when ``T <= 10``) with ``c0`` moved to
centre the error (:func:`coefficient_table`).

Tables (``index bits k / degree``; entries; ``T``):

=========================  ====================  ====================  =====================
table                      float16               bfloat16              float32
=========================  ====================  ====================  =====================
``1/m``, ``m`` in [1, 2)   6 / 1; 64; T = 4      5 / 1; 32; T = 2      8 / 2; 256; T = 15
``1/sqrt(m)``, [1, 4)      6 / 1; 128; T = 4     5 / 1; 64; T = 2      8 / 2; 512; T = 15
``2**f``, ``f`` in [0, 1)  6 / 1; 64; T = 9      5 / 1; 32; T = 7      7 / 2; 128; T = 21
``1/d`` (sigmoid), [1, 2)  6 / 1; 64; T = 11     5 / 1; 32; T = 9      8 / 2; 256; T = 22
=========================  ====================  ====================  =====================

``FloatReciprocal``
    unpack, normalise a subnormal significand with :func:`leading_zeros` to ``m`` in
    ``[1, 2)`` (exponent ``e``); ``1/m`` from the table indexed by the top ``k`` fraction
    bits of ``m``, ``t`` its other ``p - 1 - k`` bits (exact); result ``(1/m) * 2**-e``.
    Specials: NaN gives the quiet NaN, ``+-0`` gives ``+-inf``, ``+-inf`` gives ``+-0``.
``FloatRsqrt``
    as the reciprocal; an odd exponent doubles ``m`` (to ``[2, 4)``): the index is the
    exponent's parity above the top ``k`` fraction bits; result ``m**-1/2 * 2**-floor(e/2)``.
    ``+0 -> +inf``, ``-0 -> -inf``, negative (``-inf`` too) gives NaN, ``+inf -> +0``.
``FloatExp``
    ``e**x = 2**z``, ``z = x * log2(e)``: the exact product of the significand and
    ``L = round(log2(e) * 2**FL)`` (``FL = Fz + E + 2`` fraction bits, a ``p + FL + 1``-bit
    product: 34, 30 and 62 bits), shifted right (truncating) to ``Fz`` fraction bits and
    negated for a negative ``x``; ``n = floor(z)``, ``f = z - n``; ``2**f`` from the table;
    result ``2**f * 2**n`` (normalise_round underflows to subnormals and zero, overflows to
    infinity). ``|x| >= 2**E`` (``E = 5`` for float16, 7 for bfloat16 and float32: the
    smallest with ``2**E * log2(e) > bias + p + 1``) saturates: ``+inf`` or ``+0``;
    ``exp(+inf) = +inf``, ``exp(-inf) = +0``.
``FloatSigmoid``
    ``q = e**-|x|`` as in ``FloatExp`` (``y * 2**n``, ``n <= 0``); ``d = 1 + q`` truncated to
    ``F`` fraction bits (at most ``2 - 2**-F``); ``r = 1/d`` from the sigmoid's reciprocal
    table (index: top ``k`` fraction bits of ``d``); ``sigmoid(x) = r`` for ``x >= 0``, and
    ``q * r = ((y * r) >> F) * 2**n`` for ``x < 0`` (no cancellation). ``x >= 2**E`` and
    ``+inf`` give 1, ``x <= -2**E`` and ``-inf`` give ``+0``.
``FloatSilu``
    the sigmoid's fixed-point value ``s`` (before rounding) times the significand of ``x``
    (a ``p + F + 2``-bit exact product), rounded once. ``+-0 -> +-0``, ``x >= 2**E`` and
    ``+inf`` give ``x``, ``x <= -2**E`` and ``-inf`` give ``-0`` (the limit from below;
    IEEE ``-inf * sigmoid(-inf)`` would be NaN).

Maximum errors, in ulps of the format at the exact (float64) value, over every finite input
of float16 and bfloat16 and over 2**22 float32 inputs (``benchmarks/float_functions_bench.py``,
``benchmarks/results/float_functions.json``): under 0.6 ulp for every function and format
(reciprocal 0.54 / 0.51 / 0.56, rsqrt 0.52 / 0.50 / 0.54, exp 0.55 / 0.54 / 0.56, sigmoid
0.59 / 0.52 / 0.58, silu 0.57 / 0.53 / 0.58 for float16 / bfloat16 / float32); the
documented bound, which the tests check, is 1 ulp. Results are not always correctly rounded:
the fixed-point approximation's error (below 0.1 ulp) adds to the final rounding's 0.5.

Latencies (cycles, float16 / bfloat16 / float32; each polynomial takes ``1 + degree`` stages,
normalise_round 3): reciprocal and rsqrt 6 / 6 / 7 (unpack and normalise 1, polynomial,
round), exp 8 / 8 / 9 (unpack 1, ``x * log2 e`` 1, shift 1, polynomial, round), sigmoid 12 /
12 / 14 (the exponential's first three and polynomial, ``1 + q`` 1, reciprocal polynomial,
select or multiply 1, round), silu 13 / 13 / 15 (the sigmoid and a product stage).
"""

from functools import lru_cache

import numpy as np
from amaranth.hdl import Cat, Const, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from .datapath import exponent_shape, exponent_stop, leading_zeros, normalise_round, unpack
from .ops import FloatOperator
from .parameters import FunctionParameters, function_parameters

__all__ = ["coefficient_table",
           "FloatReciprocal", "FloatRsqrt", "FloatExp", "FloatSigmoid", "FloatSilu",
           "FLOAT_FUNCTIONS"]


# --- Coefficient tables (pure Python, shared with the golden model) --------------------

def _segment_function(kind, index_bits):
    """``g(i, t)``: the function on segment ``i`` at fraction ``t`` of the segment."""
    h = 2.0 ** -index_bits
    if kind == "reciprocal":
        return lambda i, t: 1 / (1 + (i + t) * h)
    if kind == "rsqrt":  # i = parity << index_bits | top bits
        return lambda i, t: 1 / np.sqrt((1 + ((i % (1 << index_bits)) + t) * h)
                                        * 2.0 ** (i >> index_bits))
    if kind == "exp2":
        return lambda i, t: 2.0 ** ((i + t) * h)
    raise ValueError(f"Table must be reciprocal, rsqrt or exp2, not {kind!r}")


@lru_cache(maxsize=None)
def coefficient_table(kind: str, index_bits: int, degree: int, argument_bits: int,
                      fraction: int) -> tuple:
    """Integer coefficients ``((c0, c1[, c2]), ...)`` per segment of ``kind``
    (``"reciprocal"``, ``"rsqrt"`` or ``"exp2"``), scaled by ``2**fraction``, for a
    polynomial in ``t`` of ``argument_bits`` bits."""
    g = _segment_function(kind, index_bits)
    segments = (2 if kind == "rsqrt" else 1) << index_bits
    if argument_bits <= 10:
        t = np.arange(1 << argument_bits) / 2.0 ** argument_bits
    else:
        t = np.linspace(0, 1, 4097)
    table = []
    for i in range(segments):
        y = g(i, t)
        c = np.polynomial.polynomial.polyfit(t, y, degree)
        residual = y - np.polynomial.polynomial.polyval(t, c)
        c[0] += (residual.max() + residual.min()) / 2
        table.append(tuple(int(round(float(x) * 2 ** fraction)) for x in c))
    return tuple(table)


# --- Hardware helpers -------------------------------------------------------------------

def _rom(m, name, table, index):
    """A combinational ROM of ``table`` read at ``index``; returns the coefficients
    (``c0`` unsigned, the others signed)."""
    widths = [max(c[0] for c in table).bit_length()]
    for j in range(1, len(table[0])):
        widths.append(max(abs(c[j]) for c in table).bit_length() + 1)
    words = []
    for c in table:
        word, offset = 0, 0
        for value, width in zip(c, widths):
            word |= (value & ((1 << width) - 1)) << offset
            offset += width
        words.append(word)
    memory = Memory(shape=unsigned(sum(widths)), depth=len(table), init=words)
    m.submodules[f"{name}_rom"] = memory
    port = memory.read_port(domain="comb")
    m.d.comb += port.addr.eq(index)
    coefficients, offset = [], 0
    for j, width in enumerate(widths):
        field = port.data[offset:offset + width]
        coefficients.append(field if j == 0 else field.as_signed())
        offset += width
    return coefficients


def _polynomial(m, pipe, name, table, index, t, fraction, **extra):
    """``1 + degree`` stages: read the coefficients of segment ``index``, then Horner steps
    in ``t`` (``len(t)`` bits, a fraction). Returns the last stage, with ``y``
    (``fraction + 2`` bits, unsigned) and ``extra`` carried along."""
    bits = len(t)
    coefficients = _rom(m, name, table, index)
    degree = len(coefficients) - 1
    s = pipe.stage(t=t, **{f"c{j}": c for j, c in enumerate(coefficients)}, **extra)
    acc = getattr(s, f"c{degree}")
    for j in range(degree - 1, -1, -1):
        step = getattr(s, f"c{j}") + (acc * s.t).shift_right(bits)
        carried = {k: getattr(s, k) for k in extra}
        if j == 0:
            y = Signal(fraction + 2, name=f"{name}_y")
            m.d.comb += y.eq(step)
            return pipe.stage(y=y, **carried)
        s = pipe.stage(acc=step, t=s.t, **{f"c{i}": getattr(s, f"c{i}") for i in range(j)},
                       **carried)
        acc = s.acc


def _special_bits(fmt, sign, magnitude):
    return Cat(Const(magnitude, fmt.width - 1), sign)


class _FloatFunction(FloatOperator):
    """A unary function (one operand, ``a``); see :class:`FloatOperator` and the module
    documentation."""

    @property
    def _fixed(self) -> FunctionParameters:
        return function_parameters(self._parameters.format)

    def _argument(self, m):
        """``(a, big)``: the unpacked argument, and whether ``|a| >= 2**E`` (infinities
        included), where the exponential, the sigmoid and SiLU saturate."""
        fmt = self._parameters.format
        a = unpack(m, fmt, self.operands.payload.a, "a")
        return a, a.exponent >= fmt.bias + self._fixed.saturation

    def _positive(self, m, pipe, front, limit):
        """``front`` (the exponential's or the sigmoid's ``(m, pipe, a, **extra)``), rounded:
        NaN for NaN, ``limit`` for a large positive ``a``, +0 for a large negative one."""
        fmt = self._parameters.format
        a, big = self._argument(m)
        special_bits = Mux(a.nan, fmt.quiet_nan, Mux(a.sign, 0, limit))
        s = front(m, pipe, a, sign=a.sign, special=a.nan | big, special_bits=special_bits)
        return self._round(pipe, s, sign=0, exponent=s.n + fmt.bias + 1, significand=s.y,
                           stop=getattr(s, "stop", None))

    def _exponent(self, m, value, width: int, name: str) -> Signal:
        """``value`` as the exponent of a ``width``-bit significand's rounding."""
        exponent = Signal(exponent_shape(self._parameters.format, width), name=name)
        m.d.comb += exponent.eq(value)
        return exponent

    def _stop(self, m, exponent, width: int) -> Signal:
        """:func:`~ternforge.hdl.fp.datapath.exponent_stop` of the rounding's ``exponent``
        for a ``width``-bit significand: decoded a stage before the significand is there, and
        carried to it, so that neither the exponent's sum nor its decoding comes before the
        rounding's count of leading zeros."""
        return exponent_stop(m, self._exponent(m, exponent, width, "early_exponent"), width,
                             "early_stop")

    def _round(self, pipe, stage, *, sign, exponent, significand, stop=None):
        """normalise_round of ``significand * 2**(exponent - bias - (W - 1))`` with the
        specials of ``stage`` (``stop``: :meth:`_stop` of ``exponent``, registered, if a
        stage before knew it)."""
        rounded_exponent = self._exponent(pipe.m, exponent, len(significand), "result_exponent")
        return normalise_round(pipe, self._parameters.format, sign=sign, exponent=rounded_exponent,
                               significand=significand, sticky=0, special=stage.special,
                               special_bits=stage.special_bits, stop=stop)

    def _normalised(self, m):
        """The unpacked argument ``a`` with the leading zeros of a subnormal significand
        shifted out: ``(a, significand in [1, 2) with p bits, biased exponent)``."""
        fmt = self._parameters.format
        p = fmt.precision
        a = unpack(m, fmt, self.operands.payload.a, "a")
        zeros = leading_zeros(m, a.significand, "a_zeros")
        normal = Signal(p, name="a_normal")
        m.d.comb += normal.eq(a.significand << zeros)
        return a, normal, a.exponent - zeros

    def _significand_polynomial(self, m, pipe, kind, s1, parity=None, **extra):
        """The polynomial of table ``kind`` (``"reciprocal"`` or ``"rsqrt"``) at
        ``s1.significand`` in ``[1, 2)``: indexed by its top ``k`` fraction bits (above
        ``parity``, for the rsqrt), in its other bits; ``extra`` carried along."""
        p, f = self._parameters.format.precision, self._fixed.fraction
        k, degree = getattr(self._fixed, kind)
        bits = p - 1 - k
        table = coefficient_table(kind, k, degree, bits, f)
        index = s1.significand[bits:p - 1]
        return _polynomial(m, pipe, kind, table, index if parity is None else Cat(index, parity),
                           s1.significand[:bits], f, **extra)

    def _exp_front(self, m, pipe, a, *, negate=False, **extra):
        """``2**z``, ``z = x * log2(e)`` (``-|x| * log2(e)`` when ``negate``): returns the
        stage with ``y`` (``F + 2`` bits, ``F`` fraction bits) and ``n`` (signed), the value
        being ``y * 2**(n - F)``."""
        fmt, prm = self._parameters.format, self._fixed
        p, fz, e_sat = fmt.precision, prm.z_fraction, prm.saturation
        s1 = pipe.stage(significand=a.significand, exponent=a.exponent, **extra)
        width = p + prm.log2e.bit_length()
        # shift = FL + p - 1 - Fz - (exponent - bias): the product's value to Fz fraction bits
        shift_c = prm.log2e_fraction + p - 1 - fz + fmt.bias
        distance = Signal(signed(len(s1.exponent) + 2 + shift_c.bit_length()), name="z_distance")
        m.d.comb += distance.eq(shift_c - s1.exponent)
        shift = Signal(range(width + 1), name="z_shift")
        m.d.comb += shift.eq(Mux(distance < 0, 0, Mux(distance > width, width, distance)))
        s2 = pipe.stage(product=s1.significand * prm.log2e, shift=shift,
                        **{k: getattr(s1, k) for k in extra})
        magnitude = Signal(e_sat + 1 + fz, name="z_magnitude")
        m.d.comb += magnitude.eq(s2.product >> s2.shift)
        z = Signal(signed(e_sat + 2 + fz), name="z")
        if negate:
            m.d.comb += z.eq(-magnitude)
        else:
            m.d.comb += z.eq(Mux(s2.sign, -magnitude, magnitude))
        s3 = pipe.stage(z=z, **{k: getattr(s2, k) for k in extra})
        k, degree = prm.exp2
        table = coefficient_table("exp2", k, degree, fz - k, prm.fraction)
        n = s3.z.shift_right(fz)
        # the exponential's rounding stop, known with n (the sigmoid rounds otherwise)
        early = {} if negate else {
            "stop": self._stop(m, n + fmt.bias + 1, prm.fraction + 2)}
        return _polynomial(m, pipe, "exp2", table, s3.z[fz - k:fz], s3.z[:fz - k],
                           prm.fraction, n=n, **early, **{k: getattr(s3, k) for k in extra})

    def _sigmoid(self, m, pipe, a, **extra):
        """The sigmoid's fixed-point value: the stage with ``y`` (``F + 2`` bits) and ``n``,
        the value being ``y * 2**(n - F)``; ``extra`` (with ``sign``) carried along."""
        prm = self._fixed
        f = prm.fraction
        s = self._exp_front(m, pipe, a, negate=True, **extra)
        # d = 1 + y * 2**(n - F), truncated to F fraction bits, at most 2 - 2**-F.
        neg = Signal(signed(len(s.n) + 1), name="q_shift_raw")
        m.d.comb += neg.eq(-s.n)
        q_shift = Signal(range(f + 3), name="q_shift")
        m.d.comb += q_shift.eq(Mux(neg < 0, 0, Mux(neg > f + 2, f + 2, neg)))
        total = Signal(f + 3, name="d_total")
        m.d.comb += total.eq((1 << f) + (s.y >> q_shift))
        d_fraction = Signal(f, name="d_fraction")
        m.d.comb += d_fraction.eq(Mux(total[f + 1:] != 0, (1 << f) - 1, total[:f]))
        sd = pipe.stage(d_fraction=d_fraction, q=s.y, n=s.n, **{k: getattr(s, k) for k in extra})
        k, degree = prm.sigmoid_reciprocal
        table = coefficient_table("reciprocal", k, degree, f - k, f)
        sr = _polynomial(m, pipe, "sigmoid_reciprocal", table, sd.d_fraction[f - k:],
                         sd.d_fraction[:f - k], f, q=sd.q, n=sd.n,
                         **{k: getattr(sd, k) for k in extra})
        value = Signal(f + 2, name="sigmoid_value")
        m.d.comb += value.eq(Mux(sr.sign, (sr.q * sr.y) >> f, sr.y))
        return pipe.stage(y=value, n=Mux(sr.sign, sr.n, 0), **{k: getattr(sr, k) for k in extra})


class FloatReciprocal(_FloatFunction):
    """``1 / a``; see the module documentation."""

    op = "reciprocal"

    def _datapath(self, m, pipe):
        fmt = self._parameters.format
        a, normal, exponent = self._normalised(m)
        special_bits = Mux(a.nan, fmt.quiet_nan,
                           Mux(a.zero, _special_bits(fmt, a.sign, fmt.infinity),
                               _special_bits(fmt, a.sign, 0)))
        s1 = pipe.stage(sign=a.sign, significand=normal, exponent=exponent,
                        special=a.nan | a.inf | a.zero, special_bits=special_bits)
        s = self._significand_polynomial(m, pipe, "reciprocal", s1, sign=s1.sign,
                                         exponent=2 * fmt.bias + 1 - s1.exponent,
                                         special=s1.special, special_bits=s1.special_bits)
        return self._round(pipe, s, sign=s.sign, exponent=s.exponent, significand=s.y)


class FloatRsqrt(_FloatFunction):
    """``1 / sqrt(a)``; see :class:`~ternforge.hdl.fp.ops.FloatOperator` and the module
    documentation."""

    op = "rsqrt"

    def _datapath(self, m, pipe):
        fmt = self._parameters.format
        a, normal, exponent = self._normalised(m)
        nan = a.nan | (a.sign & ~a.zero)
        special_bits = Mux(nan, fmt.quiet_nan,
                           Mux(a.zero, _special_bits(fmt, a.sign, fmt.infinity), 0))
        s1 = pipe.stage(significand=normal, exponent=exponent - fmt.bias,
                        special=nan | a.inf | a.zero, special_bits=special_bits)
        s = self._significand_polynomial(m, pipe, "rsqrt", s1, parity=s1.exponent[0],
                                         exponent=fmt.bias + 1 - s1.exponent.shift_right(1),
                                         special=s1.special, special_bits=s1.special_bits)
        return self._round(pipe, s, sign=0, exponent=s.exponent, significand=s.y)


class FloatExp(_FloatFunction):
    """``e ** a``; see :class:`~ternforge.hdl.fp.ops.FloatOperator` and the module
    documentation."""

    op = "exp"

    def _datapath(self, m, pipe):
        return self._positive(m, pipe, self._exp_front, self._parameters.format.infinity)


class FloatSigmoid(_FloatFunction):
    """``1 / (1 + e ** -a)``; see :class:`~ternforge.hdl.fp.ops.FloatOperator` and the
    module documentation."""

    op = "sigmoid"

    def _datapath(self, m, pipe):
        fmt = self._parameters.format
        return self._positive(m, pipe, self._sigmoid, fmt.bias << fmt.mantissa_bits)  # 1


class FloatSilu(_FloatFunction):
    """``a / (1 + e ** -a)``; see :class:`~ternforge.hdl.fp.ops.FloatOperator` and the
    module documentation."""

    op = "silu"

    def _datapath(self, m, pipe):
        fmt = self._parameters.format
        a, big = self._argument(m)
        special_bits = Mux(a.nan, fmt.quiet_nan,
                           Mux(a.zero | ~a.sign, self.operands.payload.a, fmt.sign_bit))
        s = self._sigmoid(m, pipe, a, sign=a.sign, special=a.nan | a.zero | big,
                          special_bits=special_bits, x_significand=a.significand,
                          x_exponent=a.exponent)
        product = s.x_significand * s.y
        exponent = s.x_exponent + s.n + 2
        s = pipe.stage(product=product, exponent=exponent,
                       stop=self._stop(m, exponent, len(product)), sign=s.sign,
                       special=s.special, special_bits=s.special_bits)
        return self._round(pipe, s, sign=s.sign, exponent=s.exponent, significand=s.product,
                           stop=s.stop)


FLOAT_FUNCTIONS = {unit.op: unit for unit in (FloatReciprocal, FloatRsqrt, FloatExp,
                                               FloatSigmoid, FloatSilu)}
