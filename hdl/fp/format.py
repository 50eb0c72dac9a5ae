"""Binary floating-point formats (IEEE 754 binary16 and binary32, and bfloat16).

A format is ``sign | exponent | mantissa``; :class:`FloatFormat` holds its field widths and
derived facts, :data:`FLOAT_FORMATS` the three the units support. Values travel as their bit
patterns (``unsigned(width)``). The one NaN the units produce is the canonical quiet NaN
(:attr:`FloatFormat.quiet_nan`: sign 0, exponent all ones, mantissa ``100...0``); numpy
propagates an input NaN's payload instead, so tests compare NaNs by being NaN.
"""

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["FloatFormat", "FLOAT_FORMATS", "float_format", "round_exact", "float_constant"]


@dataclass(frozen=True)
class FloatFormat:
    """One binary floating-point format.

    Members
    -------
    name : str
        ``"float16"``, ``"bfloat16"`` or ``"float32"`` (numpy's and ml_dtypes' names).
    exponent_bits : int
    mantissa_bits : int
        Stored fraction bits (the hidden bit excluded).
    """

    name: str
    exponent_bits: int
    mantissa_bits: int

    @property
    def width(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def precision(self) -> int:
        """Significand bits with the hidden bit (p)."""
        return self.mantissa_bits + 1

    @property
    def bias(self) -> int:
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def max_exponent(self) -> int:
        """The biased exponent of infinities and NaNs (all ones)."""
        return (1 << self.exponent_bits) - 1

    @property
    def infinity(self) -> int:
        """The bit pattern of +inf (or it with the sign bit, -inf)."""
        return self.max_exponent << self.mantissa_bits

    @property
    def quiet_nan(self) -> int:
        """The canonical quiet NaN every unit returns for a NaN result."""
        return self.infinity | (1 << (self.mantissa_bits - 1))

    @property
    def sign_bit(self) -> int:
        return 1 << (self.width - 1)


FLOAT_FORMATS = {f.name: f for f in (FloatFormat("float16", 5, 10),
                                     FloatFormat("bfloat16", 8, 7),
                                     FloatFormat("float32", 8, 23))}


def float_format(name) -> FloatFormat:
    """The format called ``name`` (a :class:`FloatFormat` passes through)."""
    if isinstance(name, FloatFormat):
        return name
    if name not in FLOAT_FORMATS:
        raise ValueError(f"Float format must be one of {', '.join(FLOAT_FORMATS)}, "
                         f"not {name!r}")
    return FLOAT_FORMATS[name]


def round_exact(sign: int, value: Fraction, fmt: FloatFormat) -> int:
    """The bit pattern nearest to ``(-1)**sign * value`` (``value >= 0``), ties to even,
    subnormals kept, overflow to infinity."""
    if value == 0:
        return sign << (fmt.width - 1)
    exponent = value.numerator.bit_length() - value.denominator.bit_length()
    while value >= Fraction(2) ** (exponent + 1):
        exponent += 1
    while value < Fraction(2) ** exponent:
        exponent -= 1
    ulp_exponent = max(exponent, 1 - fmt.bias) - fmt.mantissa_bits
    scaled = value / Fraction(2) ** ulp_exponent
    units = scaled.numerator // scaled.denominator
    remainder = scaled - units
    if remainder > Fraction(1, 2) or (remainder == Fraction(1, 2) and units & 1):
        units += 1
    # units = significand with the hidden bit; the exponent field follows from adding
    # (biased exponent - 1) << mantissa_bits, which also carries a rounding overflow.
    magnitude = ((ulp_exponent + fmt.mantissa_bits + fmt.bias - 1) << fmt.mantissa_bits) + units
    magnitude = min(magnitude, fmt.infinity)
    return (sign << (fmt.width - 1)) | magnitude


def float_constant(value: float, fmt) -> int:
    """The bit pattern of ``value`` rounded once to ``fmt`` (a datapath constant), by
    :func:`round_exact`."""
    return round_exact(int(value < 0), abs(Fraction(value)), float_format(fmt))
