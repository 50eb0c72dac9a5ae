"""Pipelined conversions between two's complement integers and floating point.

:class:`IntToFloat` rounds a signed integer to the nearest value of the format (ties to even;
exact while the integer fits the significand, as int32 accumulators of a ternary matmul do in
float32 up to 2**24). :class:`FloatToInt` rounds to the nearest integer, ties to even (numpy's
``rint``), and saturates to the integer's range; NaN becomes 0.
"""

from amaranth.hdl import Cat, Const, Mux, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from .datapath import (PipelinedUnit, exponent_shape, normalise_round, pipelined,
                       shift_right_sticky, trailing_zeros, unpack)

__all__ = ["IntToFloat", "FloatToInt"]


class _Conversion(PipelinedUnit):
    """The stream skeleton of a conversion.

    Parameters
    ----------
    parameters : ConversionParameters
        Of this conversion's :attr:`op`: its format, integer and tag widths, layouts and
        latency.

    Members
    -------
    source : ``In(stream.Signature(parameters.source_layout))``
        ``value`` and ``tag``: one value per beat.
    result : ``Out(stream.Signature(parameters.result_layout))``
        ``value`` and ``tag``, in order, ``parameters.latency`` cycles later.
    """

    def __init__(self, parameters):
        super().__init__(parameters, {
            "source": In(stream.Signature(parameters.source_layout)),
            "result": Out(stream.Signature(parameters.result_layout)),
        }, what="Conversion")

    def elaborate(self, platform):
        # ``_datapath(m, pipe)``, a subclass's, adds the stages and returns the result
        return pipelined(self.source, self.result, self._datapath,
                         tag=self.source.payload.tag, latency=self._parameters.latency)


class IntToFloat(_Conversion):
    """A signed ``int_width``-bit integer to the nearest ``format`` value (three stages:
    normalise_round's); see :class:`_Conversion` for the members."""

    op = "int_to_float"

    def _datapath(self, m, pipe):
        fmt, width = self._parameters.format, self._parameters.int_width
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
    NaN to 0 (two stages: align, round and saturate); see :class:`_Conversion` for the
    members."""

    op = "float_to_int"

    def _datapath(self, m, pipe):
        fmt, width = self._parameters.format, self._parameters.int_width
        x = unpack(m, fmt, self.source.payload.value, "x")
        # Stage 1 aligns: |x| >= 2**width saturates whatever the rounding; below, shift the
        # significand right by bias + mantissa_bits - exponent, two more bits kept for guard
        # and round (the sticky bit a comparison with its trailing zeros), or left.
        large = x.inf | (x.exponent >= fmt.bias + width)
        shift = Signal(exponent_shape(fmt, fmt.precision), name="shift")
        m.d.comb += shift.eq(fmt.bias + fmt.mantissa_bits - x.exponent)
        right = Mux(shift < 0, 0, shift)
        left = Mux(shift < 0, -shift, 0)[:max(width - fmt.mantissa_bits, 2).bit_length()]
        padded = Cat(Const(0, 2), x.significand)
        shifted, sticky = shift_right_sticky(m, padded, right, "shifted",
                                             trailing=trailing_zeros(m, padded, "trailing"))
        whole = Signal(max(fmt.precision, width) + 1, name="whole")
        m.d.comb += whole.eq(Mux(left != 0, x.significand << left, shifted[2:]))
        up = shifted[1] & (shifted[0] | sticky | shifted[2]) & (left == 0)
        s1 = pipe.stage(sign=x.sign, nan=x.nan, large=large, whole=whole, up=up)
        # Stage 2 rounds, saturates and gives the sign.
        magnitude = Signal(len(whole) + 1, name="rounded")
        m.d.comb += magnitude.eq(s1.whole + s1.up)
        low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
        saturated = Mux(s1.sign, low, high)
        too_big = s1.large | Mux(s1.sign, magnitude > -low, magnitude > high)
        value = Mux(s1.nan, 0, Mux(too_big, saturated,
                                   Mux(s1.sign, -magnitude, magnitude)))
        return pipe.stage(value=value[:width]).value
