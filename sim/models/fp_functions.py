"""Golden models of the non-linear floating-point functions, on bit patterns.

:func:`evaluate` reproduces :mod:`ternforge.hdl.fp.functions` bit for bit: the same range
reduction, the same coefficient tables (:func:`~ternforge.hdl.fp.functions.coefficient_table`
and :func:`~ternforge.hdl.fp.parameters.function_parameters`, pure Python), the same
fixed-point truncations, and round to nearest (ties to even) of the fixed-point value,
written here from the definition with numpy ``int64`` arithmetic (every intermediate fits in
63 bits). :func:`reference` is the exact function in float64 and :func:`ulp_error` measures
the model against it in ulps of the target format.

Ulps: the spacing of the format at the float64 reference value (``2**(floor(log2|r|) - p +
1)``, and the subnormal spacing below the smallest normal). A result that overflows to
infinity costs nothing when the reference itself rounds to infinity; a special result
(NaN, infinity) that differs from the reference's counts as an infinite error.
"""

import numpy as np

from ...hdl.fp.format import float_format
from ...hdl.fp.functions import coefficient_table
from ...hdl.fp.parameters import function_parameters
from .fp import bits_dtype, from_bits, is_nan, to_bits

__all__ = ["FUNCTIONS", "evaluate", "reference", "ulp_error", "sample_inputs",
           "boundary_inputs"]

FUNCTIONS = ("reciprocal", "rsqrt", "exp", "sigmoid", "silu")


def _bit_length(x):
    """Bit lengths of non-negative int64 ``x``."""
    x = np.asarray(x, dtype=np.int64)
    n = np.zeros_like(x)
    for step in (32, 16, 8, 4, 2, 1):
        n += step * ((x >> (n + step)) != 0)
    return n + (x != 0)


def _mask(bits):
    return np.int64((1 << bits) - 1)


def _unpack(bits, fmt):
    bits = np.asarray(bits).astype(np.int64)
    mantissa = bits & _mask(fmt.mantissa_bits)
    field = (bits >> fmt.mantissa_bits) & fmt.max_exponent
    sign = (bits >> (fmt.width - 1)) & 1
    return dict(bits=bits, sign=sign, exponent=np.maximum(field, 1),
                significand=mantissa | ((field != 0).astype(np.int64) << fmt.mantissa_bits),
                nan=(field == fmt.max_exponent) & (mantissa != 0),
                inf=(field == fmt.max_exponent) & (mantissa == 0),
                zero=(field == 0) & (mantissa == 0))


def _polynomial(kind, index_bits, degree, index, t, argument_bits, fraction):
    """Horner's rule with floor shifts, the result kept to ``fraction + 2`` bits."""
    table = np.array(coefficient_table(kind, index_bits, degree, argument_bits, fraction),
                     dtype=np.int64)
    acc = table[index, degree]
    for j in range(degree - 1, -1, -1):
        acc = table[index, j] + ((acc * t) >> argument_bits)
    return acc & _mask(fraction + 2)


def _round(sign, exponent, significand, width, fmt):
    """Nearest (ties to even) bit pattern to ``(-1)**sign * significand * 2**(exponent -
    bias - (width - 1))``, ``significand > 0``; subnormals, overflow to infinity."""
    p, m = fmt.precision, fmt.mantissa_bits
    length = _bit_length(significand)
    top = exponent - (width - length)  # biased exponent of the leading bit
    kept = np.maximum(top, 1)
    drop = kept - (p - 1) - exponent + (width - 1)  # bits below the last kept
    left = np.clip(-drop, 0, 62)
    right = np.clip(drop, 0, 62)
    units = (significand << left) >> right
    remainder = significand & ((np.int64(1) << right) - 1)
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)
    up = (right > 0) & ((remainder > half) | ((remainder == half) & ((units & 1) == 1)))
    units = units + up
    magnitude = ((kept - 1) << m) + units
    magnitude = np.minimum(magnitude, fmt.infinity)
    return (sign << (fmt.width - 1)) | magnitude


def _exp2_reduced(x, fmt, prm, negate):
    """``(y, n)``: ``2**(x * log2 e) ~ y * 2**(n - F)`` (``-|x|`` when ``negate``)."""
    p, fz = fmt.precision, prm.z_fraction
    width = p + prm.log2e.bit_length()
    product = x["significand"] * np.int64(prm.log2e)
    distance = prm.log2e_fraction + p - 1 - fz + fmt.bias - x["exponent"]
    shift = np.clip(distance, 0, width)
    magnitude = (product >> np.minimum(shift, 62)) & _mask(prm.saturation + 1 + fz)
    magnitude = np.where(shift >= 63, 0, magnitude)
    negative = np.ones_like(x["sign"], dtype=bool) if negate else x["sign"] == 1
    z = np.where(negative, -magnitude, magnitude)
    k, degree = prm.exp2
    y = _polynomial("exp2", k, degree, (z >> (fz - k)) & _mask(k), z & _mask(fz - k), fz - k,
                    prm.fraction)
    return y, z >> fz


def _sigmoid_fixed(x, fmt, prm):
    """``(s, n)``: ``sigmoid(x) ~ s * 2**(n - F)``."""
    f = prm.fraction
    q, n = _exp2_reduced(x, fmt, prm, True)
    shift = np.clip(-n, 0, f + 2)
    total = (np.int64(1) << f) + (q >> shift)
    d_fraction = np.where(total >> (f + 1) != 0, _mask(f), total & _mask(f))
    k, degree = prm.sigmoid_reciprocal
    r = _polynomial("reciprocal", k, degree, d_fraction >> (f - k), d_fraction & _mask(f - k),
                    f - k, f)
    negative = x["sign"] == 1
    s = np.where(negative, ((q * r) >> f) & _mask(f + 2), r)
    return s, np.where(negative, n, 0)


def evaluate(name, bits, fmt) -> np.ndarray:
    """The hardware's ``name`` (``"reciprocal"``, ``"rsqrt"``, ``"exp"``, ``"sigmoid"``,
    ``"silu"``) of bit patterns ``bits`` in format ``fmt``, as bit patterns."""
    fmt = float_format(fmt)
    if name not in FUNCTIONS:
        raise ValueError(f"Function must be one of {', '.join(FUNCTIONS)}, not {name!r}")
    prm = function_parameters(fmt)
    p, f, bias = fmt.precision, prm.fraction, fmt.bias
    shape = np.shape(bits)
    x = _unpack(np.ravel(bits), fmt)
    sign, nan, inf, zero = x["sign"], x["nan"], x["inf"], x["zero"]
    infinity, qnan = np.int64(fmt.infinity), np.int64(fmt.quiet_nan)
    sign_bit = np.int64(fmt.sign_bit)
    ones = np.ones_like(sign)
    with np.errstate(all="ignore"):
        if name in ("reciprocal", "rsqrt"):
            zeros = p - _bit_length(x["significand"])
            normal = (x["significand"] << np.minimum(zeros, p)) & _mask(p)
            exponent = x["exponent"] - zeros
            k, degree = prm.reciprocal if name == "reciprocal" else prm.rsqrt
            bits_t = p - 1 - k
            index = (normal >> bits_t) & _mask(k)
            t = normal & _mask(bits_t)
            if name == "reciprocal":
                y = _polynomial("reciprocal", k, degree, index, t, bits_t, f)
                result = _round(sign, 2 * bias + 1 - exponent, np.maximum(y, 1), f + 2, fmt)
                special = np.where(zero, (sign << (fmt.width - 1)) | infinity,
                                   sign << (fmt.width - 1))
                special = np.where(nan, qnan, special)
                special_case = nan | inf | zero
            else:
                unbiased = exponent - bias
                index = index | ((unbiased & 1) << k)
                y = _polynomial("rsqrt", k, degree, index, t, bits_t, f)
                result = _round(0 * sign, bias + 1 - (unbiased >> 1), np.maximum(y, 1), f + 2,
                                fmt)
                invalid = nan | ((sign == 1) & ~zero)
                special = np.where(invalid, qnan,
                                   np.where(zero, (sign << (fmt.width - 1)) | infinity, 0))
                special_case = invalid | inf | zero
        else:
            big = x["exponent"] >= bias + prm.saturation
            if name == "exp":
                y, n = _exp2_reduced(x, fmt, prm, False)
                result = _round(0 * sign, n + bias + 1, np.maximum(y, 1), f + 2, fmt)
                special = np.where(nan, qnan, np.where(sign == 1, 0, infinity))
                special_case = nan | big
            else:
                s, n = _sigmoid_fixed(x, fmt, prm)
                if name == "sigmoid":
                    result = _round(0 * sign, n + bias + 1, np.maximum(s, 1), f + 2, fmt)
                    one = np.int64(bias << fmt.mantissa_bits)
                    special = np.where(nan, qnan, np.where(sign == 1, 0, one))
                    special_case = nan | big
                else:
                    product = x["significand"] * s
                    result = _round(sign, x["exponent"] + n + 2, np.maximum(product, 1),
                                    p + f + 2, fmt)
                    special = np.where(nan, qnan,
                                       np.where(zero | (sign == 0), x["bits"], sign_bit))
                    special_case = nan | zero | big
        out = np.where(special_case, special, result) * ones
    return out.astype(bits_dtype(fmt)).reshape(shape)


def reference(name, bits, fmt) -> np.ndarray:
    """The exact function of ``bits`` (format ``fmt``) in float64."""
    fmt = float_format(fmt)
    with np.errstate(all="ignore"):
        x = from_bits(bits, fmt).astype(np.float64)
        if name == "reciprocal":
            return 1 / x
        if name == "rsqrt":
            return 1 / np.sqrt(x)
        if name == "exp":
            return np.exp(x)
        e = np.exp(-np.abs(x))  # in (0, 1]: no overflow, no cancellation
        sigmoid = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        if name == "sigmoid":
            return np.where(np.isnan(x), np.nan, sigmoid)
        if name == "silu":
            return np.where(np.isnan(x), np.nan, np.where(np.isinf(x) & (x < 0), -0.0,
                                                          x * sigmoid))
    raise ValueError(f"Function must be one of {', '.join(FUNCTIONS)}, not {name!r}")


def _errors(result_bits, ref, fmt):
    """Errors in ulps of the format at ``ref`` (float64)."""
    fmt = float_format(fmt)
    with np.errstate(all="ignore"):
        got = from_bits(result_bits, fmt).astype(np.float64)
    p = fmt.precision
    min_exponent = 1 - fmt.bias
    largest = float(from_bits(np.array([fmt.infinity - 1]), fmt).astype(np.float64)[0])
    overflow = largest + 2.0 ** (fmt.bias - p)  # rounds to infinity from here on
    with np.errstate(all="ignore"):
        magnitude = np.abs(ref)
        exponent = np.floor(np.log2(np.where(magnitude > 0, magnitude, 1.0)))
        ulp = 2.0 ** (np.maximum(exponent, min_exponent) - (p - 1))
        error = np.abs(got - ref) / ulp
        ref_inf = np.isinf(ref) | (magnitude >= overflow)
        ref_signed_inf = np.where(np.isinf(ref), ref, np.sign(ref) * np.inf)
        error = np.where(np.isinf(got) | ref_inf,
                         np.where(got == ref_signed_inf, 0.0, np.inf), error)
        error = np.where(np.isnan(got) | np.isnan(ref),
                         np.where(np.isnan(got) & np.isnan(ref), 0.0, np.inf), error)
    return error


def ulp_error(name, fmt, bits=None) -> dict:
    """The model's errors in ulps against :func:`reference` over the finite inputs of
    ``bits`` (default: every bit pattern of a 16-bit format, for float32
    :func:`sample_inputs` of ``2**20``): ``{"function", "format", "inputs", "max_ulp",
    "worst_input", "mean_ulp"}``."""
    fmt = float_format(fmt)
    if bits is None:
        bits = sample_inputs(name, fmt, 1 << 20)
    bits = np.asarray(bits).astype(bits_dtype(fmt))
    bits = bits[~is_nan(bits, fmt)]
    bits = bits[(bits.astype(np.int64) & ~np.int64(fmt.sign_bit)) != fmt.infinity]
    errors = _errors(evaluate(name, bits, fmt), reference(name, bits, fmt), fmt)
    worst = int(np.argmax(errors))
    return {"function": name, "format": fmt.name, "inputs": int(len(bits)),
            "max_ulp": float(errors[worst]), "worst_input": int(bits[worst]),
            "mean_ulp": float(np.mean(errors))}


def boundary_inputs(name, fmt) -> np.ndarray:
    """Bit patterns around the function's thresholds (saturation, overflow, underflow to
    subnormals and zero), powers of two, and every exponent's first and last values."""
    fmt = float_format(fmt)
    prm = function_parameters(fmt)
    m = fmt.mantissa_bits
    fields = np.arange(fmt.max_exponent, dtype=np.int64)
    around = np.array([0, 1, 2, 3, (1 << m) - 2, (1 << m) - 1, 1 << (m - 1)], dtype=np.int64)
    magnitudes = (fields[:, None] << m) | around[None, :]
    values = [magnitudes.ravel()]
    with np.errstate(all="ignore"):
        targets = np.array([2.0 ** prm.saturation, np.log(2.0 ** (fmt.bias + 1)),
                            -np.log(2.0 ** (fmt.bias + m)), np.log(2.0 ** (1 - fmt.bias)),
                            (fmt.bias + m + 1) * np.log(2.0), (m + 1) * np.log(2.0)])
    for target in targets:
        c = int(to_bits(np.array([abs(target)]), fmt)[0])
        values.append(np.arange(max(c - 64, 0), min(c + 64, fmt.infinity), dtype=np.int64))
    values = np.concatenate(values)
    values = values[values < fmt.infinity]
    return np.concatenate([values, values | fmt.sign_bit]).astype(bits_dtype(fmt))


def sample_inputs(name, fmt, count, seed=0) -> np.ndarray:
    """Every finite pattern of a 16-bit format; for float32, ``count`` random patterns (half
    uniform over all bit patterns, half with magnitudes in ``[2**-26, 2**E)``, where the
    exponential, sigmoid and SiLU neither saturate nor round to 1 or ``x``) plus
    :func:`boundary_inputs`."""
    fmt = float_format(fmt)
    if fmt.width <= 16:
        return np.arange(1 << fmt.width, dtype=np.uint64).astype(bits_dtype(fmt))
    prm = function_parameters(fmt)
    rng = np.random.default_rng(seed)
    uniform = rng.integers(0, 1 << fmt.width, count - count // 2, dtype=np.uint64)
    fields = rng.integers(fmt.bias - 26, fmt.bias + prm.saturation, count // 2, dtype=np.uint64)
    mantissas = rng.integers(0, 1 << fmt.mantissa_bits, count // 2, dtype=np.uint64)
    signs = rng.integers(0, 2, count // 2, dtype=np.uint64)
    focused = (signs << np.uint64(fmt.width - 1)) | (fields << np.uint64(fmt.mantissa_bits)) \
        | mantissas
    return np.concatenate([uniform, focused, boundary_inputs(name, fmt).astype(np.uint64)]
                          ).astype(bits_dtype(fmt))
