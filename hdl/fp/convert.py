"""Pipelined conversions between two's complement integers and floating point.

:class:`IntToFloat` rounds a signed integer to the nearest value of the format (ties to even;
exact while the integer fits the significand, as int32 accumulators of a ternary matmul do in
float32 up to 2**24). :class:`FloatToInt` rounds to the nearest integer, ties to even (numpy's
``rint``), and saturates to the integer's range; NaN becomes 0.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .datapath import Pipeline, exponent_shape, normalise_round, shift_right_sticky, unpack
from .format import float_format
from ..common.checks import check_int

__all__ = ["IntToFloat", "FloatToInt"]


class _Conversion(wiring.Component):
    """The stream skeleton of a conversion from ``source`` to ``target`` shapes.

    Parameters
    ----------
    format : str or FloatFormat
        The floating-point side's format.
    int_width : int
        Bits of the two's complement integer side (2 to 64).
    tag_width : int
        Bits of a tag that travels with each value; 0 for none.

    Members
    -------
    source : ``In(stream.Signature(...))``
        ``value`` (and ``tag``): one value per beat.
    result : ``Out(stream.Signature(...))``
        ``value`` (and ``tag``), in order, :attr:`latency` cycles later.
    """

    def __init__(self, *, format="float32", int_width=32, tag_width=0):
        self._format = float_format(format)
        check_int("Integer width", int_width, 2, 64)
        check_int("Tag width", tag_width, 0, 256)
        self._int_width, self._tag_width = int_width, tag_width
        widths = self._widths()
        super().__init__({
            "source": In(stream.Signature(self._layout(widths[0]))),
            "result": Out(stream.Signature(self._layout(widths[1]))),
        })

    format = property(lambda self: self._format)
    int_width = property(lambda self: self._int_width)

    def _layout(self, shape):
        return data.StructLayout({"value": shape, "tag": self._tag_width})

    def _widths(self):
        raise NotImplementedError

    @property
    def latency(self) -> int:
        """Cycles from accepting a value to its result being valid."""
        m = Module()
        m._MustUse__silence = True  # built only to count the stages
        pipe = Pipeline(m, self.source, self.result, tag=self.source.payload.tag)
        self._datapath(m, pipe)
        return pipe.depth

    def cycles(self, count: int) -> int:
        """Cycles of ``count`` conversions without stalls, first beat in to last out."""
        return count + self.latency

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, self.source, self.result, tag=self.source.payload.tag)
        pipe.finish(self._datapath(m, pipe))
        return m


class IntToFloat(_Conversion):
    """A signed ``int_width``-bit integer to the nearest ``format`` value; see
    :class:`_Conversion` for the members."""

    def _widths(self):
        return signed(self._int_width), self._format.width

    def _datapath(self, m, pipe):
        fmt, width = self._format, self._int_width
        value = self.source.payload.value
        magnitude = Signal(width + 1, name="magnitude")
        m.d.comb += magnitude.eq(Mux(value < 0, -value, value))
        # the magnitude has its top bit at index ``width``: exponent bias + width
        exponent = Signal(exponent_shape(fmt, width + 1), name="exponent")
        m.d.comb += exponent.eq(fmt.bias + width)
        significand = Cat(Const(0, max(fmt.precision + 2 - (width + 1), 0)), magnitude)
        return normalise_round(pipe, fmt, sign=value < 0, exponent=exponent,
                               significand=significand, sticky=0, special=value == 0,
                               special_bits=0)


class FloatToInt(_Conversion):
    """A ``format`` value to the nearest ``int_width``-bit integer, ties to even, saturating;
    NaN to 0; see :class:`_Conversion` for the members."""

    def _widths(self):
        return self._format.width, signed(self._int_width)

    def _datapath(self, m, pipe):
        fmt, width = self._format, self._int_width
        x = unpack(m, fmt, self.source.payload.value, "x")
        # |x| >= 2**width saturates whatever the rounding; below, shift the significand
        # right by bias + mantissa_bits - exponent, two more bits kept for guard and round.
        large = x.inf | (x.exponent >= fmt.bias + width)
        shift = Signal(exponent_shape(fmt, fmt.precision), name="shift")
        m.d.comb += shift.eq(fmt.bias + fmt.mantissa_bits - x.exponent)
        s1 = pipe.stage(sign=x.sign, nan=x.nan, large=large, significand=x.significand,
                        right=Mux(shift < 0, 0, shift),
                        left=Mux(shift < 0, -shift, 0)[:max(width - fmt.mantissa_bits, 2).bit_length()])
        shifted, sticky = shift_right_sticky(m, Cat(Const(0, 2), s1.significand), s1.right,
                                             "shifted")
        whole = Signal(max(fmt.precision, width) + 1, name="whole")
        m.d.comb += whole.eq(Mux(s1.left != 0, s1.significand << s1.left, shifted[2:]))
        up = shifted[1] & (shifted[0] | sticky | shifted[2]) & (s1.left == 0)
        magnitude = Signal(len(whole) + 1, name="rounded")
        m.d.comb += magnitude.eq(whole + up)
        low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
        saturated = Mux(s1.sign, low, high)
        too_big = s1.large | Mux(s1.sign, magnitude > -low, magnitude > high)
        value = Mux(s1.nan, 0, Mux(too_big, saturated,
                                   Mux(s1.sign, -magnitude, magnitude)))
        return pipe.stage(value=value[:width]).value
