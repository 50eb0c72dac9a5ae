"""Pipelined floating-point add, multiply and fused multiply-add.

Every operator takes one ``operands`` beat per cycle (``a``, ``b`` and, for the fused
multiply-add, ``c``, as bit patterns of its :class:`~ternforge.hdl.fp.format.FloatFormat`)
and returns ``result`` after :attr:`~ternforge.hdl.fp.parameters.FloatUnitParameters.latency`
cycles, rounded to nearest (ties to even) as IEEE 754 specifies, with subnormals (no flush to
zero), signed zeros, infinities, and the canonical quiet NaN for every NaN result. ``a + b`` and ``a * b`` equal numpy's;
``fma(a, b, c) = a * b + c`` is rounded once.

Datapaths (stage by stage; :func:`~ternforge.hdl.fp.datapath.normalise_round` adds three
stages to each):

``FloatAdd``
    swap so that ``|x| >= |y|``; align ``y`` right by the exponent difference into ``p + 3``
    bits, the bits shifted out ORed into the last (sticky) bit; add or subtract, counting the
    leading zeros of a difference of operands at most a binade apart on a path of its own.
``FloatMultiply``
    unpack; multiply the ``p``-bit significands (the exact ``2p``-bit product).
``FloatFma``
    unpack; exact product; normalise it (subnormal factors) and find where ``c`` goes; place
    ``c`` in a ``3p + 7``-bit window, ``p + 5`` bits above the product (or further right),
    sticky below; add or subtract, both differences at once, the positive one taken when
    ``|c| > |a * b|``.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Mux, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from .datapath import (PipelinedUnit, exponent_shape, exponent_stop, leading_zeros,
                       normalise_round, pipelined, shift_right_sticky, trailing_zeros, unpack)
from .parameters import FloatUnitParameters

__all__ = ["FloatOperator", "FloatAdd", "FloatMultiply", "FloatFma", "FLOAT_OPERATORS"]


class FloatOperator(PipelinedUnit):
    """The stream skeleton of a pipelined floating-point unit.

    Parameters
    ----------
    parameters : FloatUnitParameters
        Of this unit's :attr:`op`: its format, tag width, layouts and latency.

    Members
    -------
    operands : ``In(stream.Signature(parameters.operands_layout))``
        Fields ``a``, ``b`` (and ``c`` for fma), ``width`` bits each, and ``tag`` when
        ``tag_width``; one operation per beat.
    result : ``Out(stream.Signature(parameters.result_layout))``
        The rounded result's bit pattern (``width`` bits), in operand order,
        ``parameters.latency`` cycles later; with a tag, a struct of ``value`` and ``tag``.
    """

    def __init__(self, parameters: FloatUnitParameters):
        super().__init__(parameters, {
            "operands": In(stream.Signature(parameters.operands_layout)),
            "result": Out(stream.Signature(parameters.result_layout)),
        }, what="Operation")

    def elaborate(self, platform):
        # ``_datapath(m, pipe)``, a subclass's, adds the stages and returns the result
        tag = self.operands.payload.tag if self._parameters.tag_width else None
        return pipelined(self.operands, self.result, self._datapath, tag=tag,
                         latency=self._parameters.latency)


class FloatAdd(FloatOperator):
    """``a + b``; see :class:`FloatOperator` and the module documentation."""

    op = "add"

    def _datapath(self, m, pipe):
        fmt, p = self._parameters.format, self._parameters.format.precision
        a = unpack(m, fmt, self.operands.payload.a, "a")
        b = unpack(m, fmt, self.operands.payload.b, "b")
        swap = self.operands.payload.b[:-1] > self.operands.payload.a[:-1]
        x = {k: Mux(swap, getattr(b, k), getattr(a, k)) for k in ("sign", "exponent",
                                                                    "significand")}
        y = {k: Mux(swap, getattr(a, k), getattr(b, k)) for k in ("sign", "exponent",
                                                                    "significand")}
        nan = a.nan | b.nan | (a.inf & b.inf & (a.sign != b.sign))
        inf_sign = Mux(a.inf, a.sign, b.sign)
        # (y's alignment, clamped, is ready before the stage that shifts it)
        distance = Signal(exponent_shape(fmt, p + 3), name="distance")
        m.d.comb += distance.eq(x["exponent"] - y["exponent"])
        # The sum is zero exactly when the magnitudes are equal and the signs differ, or
        # both are zero (|x| >= |y|: y aligned below x cannot cancel it): known before the
        # addition, so that no test of the sum follows it.
        a_magnitude, b_magnitude = self.operands.payload.a[:-1], self.operands.payload.b[:-1]
        cancels = (a_magnitude == b_magnitude) & ((a.sign != b.sign) | a.zero)
        s1 = pipe.stage(
            cancels=cancels, x_sign=x["sign"], y_sign=y["sign"], exponent=x["exponent"],
            x_significand=x["significand"], y_significand=y["significand"],
            distance=Mux(distance > p + 3, p + 3, distance), special=nan | a.inf | b.inf,
            special_bits=Mux(nan, fmt.quiet_nan, Cat(Const(fmt.infinity, fmt.width - 1), inf_sign)))
        # Stage 2 (of normalise_round's first): the sum, and the shift that normalises it,
        # on two paths. Far (an addition, or x at least two binades above y): y aligned, its
        # sticky bit below (the bits under a mask of the distance, beside the shift), and at
        # most two leading zeros while x is normal (a subnormal x has exponent 1, which
        # allows one). Close (a subtraction of y at most a bit below x): nothing shifts out
        # past the three guard bits, so the same difference is x minus y or y / 2, whose
        # leading zeros are counted beside the far path's addition.
        x_term, y_term = Cat(Signal(3), s1.x_significand), Cat(Signal(3), s1.y_significand)
        aligned, sticky = shift_right_sticky(m, y_term, s1.distance, "aligned")
        y_aligned = aligned | sticky
        subtract = s1.x_sign != s1.y_sign
        total = Signal(p + 4, name="total")
        m.d.comb += total.eq(Mux(subtract, x_term - y_aligned, x_term + y_aligned))
        near = Signal(p + 4, name="near_difference")
        m.d.comb += near.eq(x_term - Mux(s1.distance[0], y_term >> 1, y_term))
        # (x's exponent e_x; the sum's is e_x + 1, which stops the count e_x bits down)
        stop = exponent_stop(m, s1.exponent, p + 3, "near_stop")
        left = Signal(range(p + 5), name="sum_left")
        m.d.comb += left.eq(Mux(
            subtract & (s1.distance <= 1), leading_zeros(m, near | stop, "near_left"),
            Mux(total[-1], 0, Mux(total[-2] | (s1.exponent == 1), 1, 2))))
        exponent = Signal(exponent_shape(fmt, p + 4), name="sum_exponent")
        m.d.comb += exponent.eq(s1.exponent + 1)
        zero = s1.cancels & ~s1.special
        # (the sum's exponent is x's and one more, never below 1: no shift right follows)
        return normalise_round(
            pipe, fmt, sign=s1.x_sign, exponent=exponent, significand=total, sticky=0,
            special=s1.special | zero,
            special_bits=Mux(s1.special, s1.special_bits,
                             (s1.x_sign & s1.y_sign) << (fmt.width - 1)), subnormal=False,
            left=left)


def _product_specials(fmt, a, b):
    """``(nan, inf, zero)`` of ``a * b`` from the unpacked operands (or their flags)."""
    nan = a.nan | b.nan | (a.inf & b.zero) | (a.zero & b.inf)
    return nan, a.inf | b.inf, a.zero | b.zero


_FLAGS = ("sign", "nan", "inf", "zero")


def _product(m, pipe, fmt, operands, late, **extra):
    """Two stages: unpack and the exact product ``significand`` (``2p`` bits) of the first
    two of ``operands`` (name to unpacked value) with its biased ``exponent`` (top bit at
    ``2p - 1``); ``extra`` values ride along from the first. The second stage also holds
    ``late(flags, s1)`` (name to value, ``special`` and ``special_bits`` among them), of the
    operands' registered flags (name to a namespace of ``sign``, ``nan``, ``inf``, ``zero``)
    and the first stage's registers: work done in the stage of the multiplier (classifying
    the operands, for one) is out of the unpacking's, which follows whatever feeds them."""
    a, b = (operands[name] for name in "ab")
    flags = {f"flag_{name}_{flag}": getattr(value, flag) for name, value in operands.items()
             for flag in _FLAGS}
    s1 = pipe.stage(sign=a.sign ^ b.sign, a_significand=a.significand,
                    b_significand=b.significand,
                    exponent=a.exponent + b.exponent - fmt.bias + 1, **flags, **extra)
    registered = vars(s1)
    values = late({name: SimpleNamespace(**{
        flag: registered[f"flag_{name}_{flag}"] for flag in _FLAGS}) for name in operands}, s1)
    return pipe.stage(significand=s1.a_significand * s1.b_significand, **values,
                      **{k: v for k, v in registered.items()
                         if k not in ("a_significand", "b_significand", *flags)})


class FloatMultiply(FloatOperator):
    """``a * b``; see :class:`FloatOperator` and the module documentation."""

    op = "mul"

    def _datapath(self, m, pipe):
        fmt = self._parameters.format
        operands = {k: unpack(m, fmt, getattr(self.operands.payload, k), k) for k in "ab"}

        def late(flags, s1):
            nan, inf, zero = _product_specials(fmt, flags["a"], flags["b"])
            sign = flags["a"].sign ^ flags["b"].sign
            return {"special": nan | inf | zero, "special_bits": Mux(nan, fmt.quiet_nan, Cat(
                Mux(inf, Const(fmt.infinity, fmt.width - 1), 0), sign))}
        s2 = _product(m, pipe, fmt, operands, late)
        exponent = Signal(exponent_shape(fmt, 2 * fmt.precision), name="product_exponent")
        m.d.comb += exponent.eq(s2.exponent)
        return normalise_round(pipe, fmt, sign=s2.sign, exponent=exponent,
                               significand=s2.significand, sticky=0, special=s2.special,
                               special_bits=s2.special_bits)


class FloatFma(FloatOperator):
    """``a * b + c`` rounded once; see :class:`FloatOperator` and the module documentation."""

    op = "fma"

    def _datapath(self, m, pipe):
        fmt, p = self._parameters.format, self._parameters.format.precision
        window = 3 * p + 7
        operands = {k: unpack(m, fmt, getattr(self.operands.payload, k), k) for k in "abc"}
        c = operands["c"]
        shape = exponent_shape(fmt, window + 1)

        def late(flags, s1):
            a, b, c = flags.values()
            nan, inf, zero = _product_specials(fmt, a, b)
            sign = a.sign ^ b.sign
            nan = nan | c.nan | (inf & c.inf & (sign != c.sign))
            # c's place relative to the product before the product's normalisation (stage 3
            # subtracts its leading zeros)
            c_base = Signal(shape, name="c_base")
            m.d.comb += c_base.eq(p + 5 + s1.exponent - s1.c_exponent)
            return {"special": nan | inf | c.inf | zero,
                    "special_bits": Mux(nan, fmt.quiet_nan, Mux(
                        inf, Cat(Const(fmt.infinity, fmt.width - 1), sign), Mux(
                            c.inf | ~c.zero, s1.c_bits, (sign & c.sign) << (fmt.width - 1)))),
                    "c_base": c_base,
                    "c_trailing": trailing_zeros(m, s1.c_significand, "c_trailing"),
                    # the product's leading zeros are the factors' together, or one more
                    "zeros": leading_zeros(m, s1.a_significand, "a_zeros") +
                    leading_zeros(m, s1.b_significand, "b_zeros")}
        s2 = _product(m, pipe, fmt, operands, late, c_bits=self.operands.payload.c,
                      c_sign=c.sign, c_exponent=c.exponent, c_significand=c.significand)
        # Stage 3: normalise the product (a subnormal factor leaves leading zeros): shift it
        # by the factors' ``zeros``, counted in the multiplier's stage; the product has those
        # or one more (``short``: the shifted product's top bit clear; stage 4 then shifts
        # it left one bit more). Where c goes: its last bit at index p + 2 + e_c - e_P of the window
        # (``distance``), at most 2p + 7 (above that, the product is all below c's guard
        # bits and only sticks); what follows from the count, for both counts, ``short``
        # choosing one before the register, so that stage 4 starts from its shift. (A zero
        # product is special: its count does not matter.)
        shifted = Signal(2 * p, name="product_shifted")
        short = Signal(name="product_short")
        m.d.comb += [shifted.eq(s2.significand << s2.zeros), short.eq(~shifted[-1])]
        window_exponent = (s2.exponent - s2.zeros + p + 6).shape()
        counted = {}
        for extra in (0, 1):
            distance = Signal(shape, name=f"c_distance{extra}")
            exponent = Signal(window_exponent, name=f"window_exponent{extra}")
            m.d.comb += [distance.eq(s2.c_base - s2.zeros - extra),
                         exponent.eq(s2.exponent - s2.zeros - extra + p + 6)]
            counted[extra] = {"exponent": exponent, "c_above": distance < 0,
                              "c_shift": Mux(distance < 0, 0, Mux(
                                  distance > window + 1, window + 1, distance))}
        s3 = pipe.stage(significand=shifted, short=short,
                        **{k: Mux(short, counted[1][k], counted[0][k]) for k in counted[0]},
                        **{k: v for k, v in vars(s2).items()
                           if k not in ("significand", "exponent", "c_base", "c_bits",
                                        "zeros")})
        # Stage 4: the product's last bit of normalisation, and align c.
        aligned, sticky = shift_right_sticky(
            m, Cat(Signal(2 * p + 7), s3.c_significand), s3.c_shift, "c_aligned",
            trailing=Mux(s3.c_trailing == p, window, s3.c_trailing + 2 * p + 7))
        # The window's exponent (as normalise_round counts it) follows the product, or c
        # when c is clamped to the top.
        # (and the one that stops normalise_round's count, decoded here from it)
        exponent = Signal(shape, name="window_exponent")
        m.d.comb += exponent.eq(Mux(s3.c_above, s3.c_exponent + 1, s3.exponent))
        significand = Mux(s3.short, s3.significand << 1, s3.significand)[:2 * p]
        s4 = pipe.stage(c_term=aligned | sticky, p_term=Cat(Signal(2), significand),
                        subtract=s3.sign != s3.c_sign, exponent=exponent,
                        stop=exponent_stop(m, exponent, window + 1, "window_stop"),
                        **{k: v for k, v in vars(s3).items() if k in (
                            "sign", "c_sign", "special", "special_bits")})
        # Stage 5 (of normalise_round's first): add, or subtract and take the magnitude.
        # (both differences at once: a negation after the subtraction would chain them)
        difference = Signal(window + 2, name="difference")
        reverse = Signal(window + 1, name="reverse_difference")
        m.d.comb += [difference.eq(s4.p_term - s4.c_term),
                     reverse.eq(s4.c_term - s4.p_term)]
        negative = s4.subtract & difference[-1]
        total = Signal(window + 1, name="total")
        m.d.comb += total.eq(Mux(s4.subtract, Mux(negative, reverse, difference),
                                 s4.p_term + s4.c_term))
        exponent = Signal(shape, name="sum_exponent")
        m.d.comb += exponent.eq(s4.exponent)
        # (the difference is zero exactly when its terms are equal: a sum's never is, a zero
        # product being special)
        cancelled = s4.subtract & (s4.p_term == s4.c_term) & ~s4.special
        return normalise_round(pipe, fmt, sign=Mux(negative, s4.c_sign, s4.sign),
                               exponent=exponent, significand=total, sticky=0,
                               special=s4.special | cancelled,
                               special_bits=Mux(s4.special, s4.special_bits, 0),
                               stop=s4.stop)


FLOAT_OPERATORS = {unit.op: unit for unit in (FloatAdd, FloatMultiply, FloatFma)}
