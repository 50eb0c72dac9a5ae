"""Golden models of the floating-point operators, on bit patterns.

Arrays of values travel as their bit patterns (``uint16`` for float16 and bfloat16,
``uint32`` for float32), as the hardware sees them. :func:`add` and :func:`multiply` are
numpy's own arithmetic (bfloat16 through ``ml_dtypes``); :func:`fma` is computed exactly with
Python integers and rounded once by :func:`~ternforge.hdl.fp.format.round_exact`, which implements IEEE 754 round to
nearest, ties to even, from the definition. :func:`same` compares results the way the
operators promise: equal bit patterns, or NaN and NaN.
"""

from fractions import Fraction

import ml_dtypes
import numpy as np

from ...hdl.fp.format import FloatFormat, float_format, round_exact

__all__ = ["numpy_dtype", "bits_dtype", "to_bits", "from_bits", "add", "multiply", "fma",
           "decode", "is_nan", "same", "special_values", "stimulus", "to_int", "from_int"]


def numpy_dtype(fmt) -> np.dtype:
    fmt = float_format(fmt)
    return np.dtype(ml_dtypes.bfloat16) if fmt.name == "bfloat16" else np.dtype(fmt.name)


def bits_dtype(fmt) -> np.dtype:
    return np.dtype(np.uint32 if float_format(fmt).width == 32 else np.uint16)


def to_bits(values, fmt) -> np.ndarray:
    """The bit patterns of ``values`` (anything numpy converts to float64 exactly) rounded
    to ``fmt``, ties to even, once: ml_dtypes' own float64 to bfloat16 conversion rounds
    twice, through float32."""
    fmt = float_format(fmt)
    x = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exponent = np.frexp(magnitude)[1] - 1  # floor(log2 |x|) for finite x > 0
        ulp = np.maximum(exponent, 1 - fmt.bias) - fmt.mantissa_bits
        units = np.rint(np.ldexp(magnitude, -ulp))
        bits = ((ulp + fmt.mantissa_bits + fmt.bias - 1).astype(np.int64) << fmt.mantissa_bits) \
            + np.nan_to_num(units).astype(np.int64)
    bits = np.where(magnitude == 0, 0, np.minimum(bits, fmt.infinity))
    bits = np.where(np.isinf(x), fmt.infinity, bits)
    bits = np.where(np.signbit(x), bits | fmt.sign_bit, bits)
    return np.where(np.isnan(x), fmt.quiet_nan, bits).astype(bits_dtype(fmt))


def from_bits(bits, fmt) -> np.ndarray:
    return np.asarray(bits).astype(bits_dtype(fmt)).view(numpy_dtype(fmt))


def _binary(operation, a, b, fmt):
    with np.errstate(all="ignore"):
        return operation(from_bits(a, fmt), from_bits(b, fmt)).view(bits_dtype(fmt))


def add(a, b, fmt) -> np.ndarray:
    """``a + b`` in numpy's arithmetic of ``fmt``, as bit patterns."""
    return _binary(np.add, a, b, fmt)


def multiply(a, b, fmt) -> np.ndarray:
    """``a * b`` in numpy's arithmetic of ``fmt``, as bit patterns."""
    return _binary(np.multiply, a, b, fmt)


def decode(bits: int, fmt: FloatFormat):
    """``(sign, value)`` of a finite bit pattern, ``value`` an exact :class:`Fraction`
    (``None`` for infinities and NaNs)."""
    sign = bits >> (fmt.width - 1)
    field = (bits >> fmt.mantissa_bits) & fmt.max_exponent
    mantissa = bits & ((1 << fmt.mantissa_bits) - 1)
    if field == fmt.max_exponent:
        return sign, None
    significand = mantissa | ((field != 0) << fmt.mantissa_bits)
    exponent = max(field, 1) - fmt.bias - fmt.mantissa_bits
    return sign, Fraction(significand) * Fraction(2) ** exponent


def _fma_one(a: int, b: int, c: int, fmt: FloatFormat) -> int:
    (sa, va), (sb, vb), (sc, vc) = (decode(x, fmt) for x in (a, b, c))
    if any(is_nan(x, fmt) for x in (a, b, c)):
        return fmt.quiet_nan
    sign = sa ^ sb
    if va is None or vb is None:  # an infinite factor
        if va == 0 or vb == 0 or (vc is None and sc != sign):
            return fmt.quiet_nan
        return (sign << (fmt.width - 1)) | fmt.infinity
    if vc is None:
        return c
    total = (-va * vb if sign else va * vb) + (-vc if sc else vc)
    if total == 0:
        zero_sign = sign & sc if va * vb == 0 and vc == 0 else 0
        return zero_sign << (fmt.width - 1)
    return round_exact(int(total < 0), abs(total), fmt)


def fma(a, b, c, fmt, *, fast: bool = True) -> np.ndarray:
    """``a * b + c`` rounded once, as bit patterns. In float64 the product is exact; where
    the sum is exact too (its TwoSum error is zero) one rounding of it is the answer
    (``fast``), and every other element is computed exactly with fractions."""
    fmt = float_format(fmt)
    a, b, c = np.broadcast_arrays(*(np.asarray(x, dtype=bits_dtype(fmt)) for x in (a, b, c)))
    with np.errstate(all="ignore"):
        x, y, z = (from_bits(v, fmt).astype(np.float64) for v in (a, b, c))
        product = x * y
        total = product + z
        part = total - product
        error = (product - (total - part)) + (z - part)
        out = to_bits(total, fmt)
    slow = ~(np.isfinite(total) & (error == 0) & fast)
    out[slow] = [_fma_one(int(p), int(q), int(r), fmt)
                 for p, q, r in zip(a[slow], b[slow], c[slow])]
    return out


def is_nan(bits, fmt) -> np.ndarray:
    fmt = float_format(fmt)
    bits = np.asarray(bits).astype(np.uint64)
    return (bits & ~np.uint64(fmt.sign_bit)) > fmt.infinity


def same(x, y, fmt) -> np.ndarray:
    """Element-wise: equal bit patterns, or both NaN."""
    x, y = np.asarray(x), np.asarray(y)
    return (x == y) | (is_nan(x, fmt) & is_nan(y, fmt))


def special_values(fmt) -> np.ndarray:
    """Bit patterns of the special and boundary values, both signs: zero, the smallest and
    largest subnormals, the smallest normal, one, the largest finite, infinity, a quiet and
    a signalling NaN, and values around one ulp and half an ulp of one."""
    fmt = float_format(fmt)
    one = fmt.bias << fmt.mantissa_bits
    magnitudes = [0, 1, 2, 3, (1 << fmt.mantissa_bits) - 1, 1 << fmt.mantissa_bits,
                  (1 << fmt.mantissa_bits) + 1, one - 1, one, one + 1, one + 2,
                  one - (fmt.mantissa_bits + 1 << fmt.mantissa_bits),  # half an ulp of one
                  one - (fmt.mantissa_bits + 2 << fmt.mantissa_bits),
                  (fmt.bias + fmt.mantissa_bits << fmt.mantissa_bits) | 1,
                  fmt.infinity - 1, fmt.infinity - (1 << fmt.mantissa_bits),
                  fmt.infinity, fmt.quiet_nan, fmt.infinity | 1]
    values = np.array(magnitudes, dtype=np.uint64)
    return np.concatenate([values, values | fmt.sign_bit]).astype(bits_dtype(fmt))


def stimulus(op: str, fmt, arity: int, count: int, seed: int = 0) -> np.ndarray:
    """Operands (``(n, arity)`` bit patterns) that test ``op``: every pair of
    :func:`special_values` (with a special ``c`` for a fused multiply-add), ``count`` random
    bit patterns and as many values built to round at a tie or to cancel."""
    fmt = float_format(fmt)
    rng = np.random.default_rng(seed)
    specials = special_values(fmt).astype(np.uint64)
    grid = np.stack(np.meshgrid(*[specials] * min(arity, 2)), -1).reshape(-1, min(arity, 2))
    if arity == 3:
        grid = np.concatenate([grid, rng.choice(specials, (len(grid), 1))], 1)
    parts = [grid, rng.integers(0, 1 << fmt.width, (count, arity), dtype=np.uint64)]
    if arity > 1:
        parts.append(_hard_cases(op, fmt, rng, count))
    return np.concatenate(parts).astype(bits_dtype(fmt))


def _hard_cases(op, fmt, rng, count):
    """Rounding ties and cancellations: for add, ``x`` and a ``y`` about half an ulp of ``x``;
    for mul, small values times powers of two and their odd multiples (exact halves in
    the subnormal range); for fma, ``c`` near ``-(a * b)``."""
    m, sign = fmt.mantissa_bits, np.uint64(fmt.sign_bit)
    x = rng.integers(0, fmt.infinity, count, dtype=np.uint64)
    signs = rng.integers(0, 2, count, dtype=np.uint64) * sign
    if op == "add":
        field = (x >> np.uint64(m)).astype(np.int64) - fmt.mantissa_bits - 1 \
            + rng.integers(-1, 2, count)
        low = rng.integers(0, 4, count, dtype=np.uint64)
        y = (np.clip(field, 0, fmt.max_exponent - 1).astype(np.uint64) << np.uint64(m)) | low
        return np.stack([x, y | signs], 1)
    small = rng.integers(0, (fmt.mantissa_bits + 3) << m, count, dtype=np.uint64)
    scale = ((fmt.bias - rng.integers(1, m + 3, count)).astype(np.uint64) << np.uint64(m)) \
        | (rng.integers(0, 2, count, dtype=np.uint64) << np.uint64(m - 1))
    pairs = np.stack([small | signs, scale], 1)
    if op == "mul":
        return pairs
    product = multiply(pairs[:, 0], pairs[:, 1], fmt).astype(np.uint64)
    nudge = rng.integers(-2, 3, count).astype(np.int64)
    c = (product.astype(np.int64) + nudge).astype(np.uint64) ^ sign
    return np.concatenate([pairs, c[:, None] & np.uint64((1 << fmt.width) - 1)], 1)


def from_int(values, fmt) -> np.ndarray:
    """Integers (|v| < 2**53) rounded to ``fmt``, ties to even, as bit patterns (through
    float64, which holds them exactly, so that one rounding happens)."""
    return to_bits(np.asarray(values, dtype=np.int64).astype(np.float64), fmt)


def to_int(bits, fmt, width: int) -> np.ndarray:
    """``fmt`` values rounded to the nearest integer, ties to even (``np.rint``), saturated
    to ``width``-bit two's complement; NaN to 0."""
    with np.errstate(invalid="ignore"):
        values = from_bits(bits, fmt).astype(np.float64)
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    with np.errstate(invalid="ignore"):
        rounded = np.clip(np.rint(values), low, high)
    return np.where(np.isnan(values), 0, rounded).astype(np.int64)
