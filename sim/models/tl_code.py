"""The table-lookup (TL) ternary weight code and the table-lookup matmul, in numpy.

This module is the specification of what the TLMM engine computes. It is written from the
maths, independently of the hardware description.

The code
--------
``G`` consecutive ternary weights ``w_0 .. w_{G-1}`` (each in {-1, 0, +1}) form the
balanced-ternary number ``v = sum_j w_j * 3**j``, in ``-(3**G - 1)/2 .. (3**G - 1)/2``. Its
code is a sign bit and an index into the ``(3**G + 1) / 2`` canonical non-negative patterns::

    code = (v < 0) << index_bits(G) | abs(v)

so G=2 packs 2 weights in 4 bits, G=3 packs 3 weights in 5 bits (1.67 bits per weight, as the
TL2 kernels of bitnet.cpp and TeLLMe do) and G=4 packs 4 weights in 7 bits. The all-zero
pattern has code 0.

The table
---------
For a group of activations ``x_0 .. x_{G-1}`` the table holds, for every canonical index
``i``, ``T[i] = sum_j d_j(i) * x_j`` where ``d_j(i)`` are the balanced-ternary digits of
``i``. A weight group's contribution to a dot product is then ``T[index]`` or ``-T[index]``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "GROUP_SIZES",
    "table_entries",
    "index_bits",
    "code_bits",
    "balanced_ternary_digits",
    "pack",
    "unpack",
    "group_activations",
    "table",
    "tlmm",
    "accumulator_width",
    "accumulator_bound",
]

GROUP_SIZES = (2, 3, 4)


def _check_group_size(group_size):
    if not isinstance(group_size, int) or group_size not in GROUP_SIZES:
        raise ValueError(f"Group size must be an integer from 2 to 4, not {group_size!r}")


def table_entries(group_size: int) -> int:
    """Number of canonical non-negative patterns of ``group_size`` ternary weights."""
    _check_group_size(group_size)
    return (3**group_size + 1) // 2


def index_bits(group_size: int) -> int:
    """Bits of the index part of a code."""
    return (table_entries(group_size) - 1).bit_length()


def code_bits(group_size: int) -> int:
    """Bits of one code: the sign bit and the index."""
    return 1 + index_bits(group_size)


def balanced_ternary_digits(value: int, group_size: int) -> tuple[int, ...]:
    """Digits ``d_0 .. d_{G-1}`` (each -1, 0 or +1) with ``value = sum d_j 3**j``."""
    digits = []
    for _ in range(group_size):
        digit = (value + 1) % 3 - 1
        digits.append(digit)
        value = (value - digit) // 3
    if value != 0:
        raise ValueError(f"Value must fit {group_size} balanced-ternary digits, not {value!r}")
    return tuple(digits)


def _digit_matrix(group_size: int) -> np.ndarray:
    """(entries, G) matrix of the balanced-ternary digits of each canonical index."""
    return np.array([balanced_ternary_digits(i, group_size)
                     for i in range(table_entries(group_size))], dtype=np.int64)


def _check_ternary(weights: np.ndarray):
    if weights.ndim != 2:
        raise ValueError(f"Weights must be a 2-D (N, K) array, not of shape {weights.shape!r}")
    if not np.issubdtype(weights.dtype, np.integer):
        raise ValueError(f"Weights must be integers, not of dtype {str(weights.dtype)!r}")
    bad = weights[(weights < -1) | (weights > 1)]
    if bad.size:
        raise ValueError(f"Weights must be in {{-1, 0, 1}}, not {int(bad.flat[0])!r}")


def pack(weights: np.ndarray, group_size: int) -> np.ndarray:
    """Pack an (N, K) ternary matrix into (N, ceil(K / G)) codes; K is padded with zeros."""
    _check_group_size(group_size)
    weights = np.asarray(weights)
    _check_ternary(weights)
    n, k = weights.shape
    groups = -(-k // group_size)
    padded = np.zeros((n, groups * group_size), dtype=np.int64)
    padded[:, :k] = weights
    powers = 3 ** np.arange(group_size, dtype=np.int64)
    value = padded.reshape(n, groups, group_size) @ powers
    sign = (value < 0).astype(np.int64)
    return (sign << index_bits(group_size) | np.abs(value)).astype(np.uint16)


def unpack(codes: np.ndarray, group_size: int, k: int) -> np.ndarray:
    """Inverse of :func:`pack`: (N, groups) codes back to the (N, k) ternary matrix."""
    _check_group_size(group_size)
    codes = np.asarray(codes, dtype=np.int64)
    bits = index_bits(group_size)
    index = codes & ((1 << bits) - 1)
    if np.any(index >= table_entries(group_size)):
        raise ValueError(f"Code index must be below {table_entries(group_size)}, "
                         f"not {int(index.max())!r}")
    sign = np.where(codes >> bits & 1, -1, 1)
    digits = _digit_matrix(group_size)[index] * sign[..., None]
    n, groups = codes.shape
    return digits.reshape(n, groups * group_size)[:, :k].astype(np.int8)


def group_activations(acts: np.ndarray, group_size: int) -> np.ndarray:
    """(M, K) activations to (M, ceil(K / G), G) groups, padding K with zeros."""
    m, k = acts.shape
    groups = -(-k // group_size)
    padded = np.zeros((m, groups * group_size), dtype=np.int64)
    padded[:, :k] = acts
    return padded.reshape(m, groups, group_size)


def table(groups: np.ndarray, group_size: int) -> np.ndarray:
    """Lookup tables for activation groups: (..., G) -> (..., entries) exact integers."""
    return np.asarray(groups, dtype=np.int64) @ _digit_matrix(group_size).T


def tlmm(acts: np.ndarray, codes: np.ndarray, group_size: int) -> np.ndarray:
    """Table-lookup matmul ``Y = X @ W.T`` for int8 X (M, K) and coded W (N, groups).

    Each activation group's table is computed once and shared by all N rows; each row looks
    up its entry by index and applies its sign.
    """
    acts = np.asarray(acts)
    if acts.ndim != 2:
        raise ValueError(f"Activations must be a 2-D (M, K) array, not of shape {acts.shape!r}")
    codes = np.asarray(codes, dtype=np.int64)
    groups = group_activations(acts, group_size)
    if groups.shape[1] != codes.shape[1]:
        raise ValueError(f"Weight codes must have {groups.shape[1]} groups per row, "
                         f"not {codes.shape[1]!r}")
    tables = table(groups, group_size)  # (M, groups, entries)
    bits = index_bits(group_size)
    index = codes & ((1 << bits) - 1)  # (N, groups)
    sign = np.where(codes >> bits & 1, -1, 1)
    group_axis = np.arange(codes.shape[1])
    looked_up = tables[:, group_axis[None, :], index]  # (M, N, groups)
    return (looked_up * sign[None]).sum(axis=-1)


def accumulator_bound(k: int, act_width: int = 8) -> tuple[int, int]:
    """Smallest and largest dot product of K ternary weights and ``act_width``-bit activations."""
    most_negative = -(1 << (act_width - 1))
    return most_negative * k, -most_negative * k


def accumulator_width(k: int, act_width: int = 8) -> int:
    """Width of the smallest two's-complement accumulator holding any K-long dot product."""
    low, high = accumulator_bound(k, act_width)
    return max((-low - 1).bit_length(), high.bit_length()) + 1
