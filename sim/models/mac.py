"""Golden model of the MAC-array engines (:mod:`ternforge.hdl.mac.array`): exact integer GEMM,
the engines' tiling and the bit layout of their stream beats.

A GEMM ``C = A @ B`` runs as output tiles of ``rows x cols`` in row-major order; each tile
streams ``ceil(K / depth)`` operand beats (``K`` padded with zeros, partial tiles with zero
rows and columns) and returns ``rows`` result beats, of which the padding is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...hdl.mac.parameters import MacArrayParameters

__all__ = ["MacGeometry", "operand_range", "gemm", "operand_beats", "results_from_beats"]


@dataclass(frozen=True)
class MacGeometry:
    """What the stream layout depends on.

    Members
    -------
    rows, cols, depth : int
        The output tile and the K steps per beat.
    width : int
        Operand bits.
    signed : bool
        Two's complement operands.
    acc_width : int
        Result bits.
    """

    rows: int
    cols: int
    depth: int
    width: int
    signed: bool
    acc_width: int

    @classmethod
    def of(cls, parameters: MacArrayParameters) -> "MacGeometry":
        """The stream layout of the engine of ``parameters``."""
        rows, cols, depth = parameters.dims
        return cls(rows=rows, cols=cols, depth=depth, width=parameters.width,
                   signed=parameters.signed, acc_width=parameters.acc_width)


def operand_range(width: int, signed: bool) -> tuple[int, int]:
    """The smallest and largest operand of ``width`` bits."""
    return (-(1 << width - 1), (1 << width - 1) - 1) if signed else (0, (1 << width) - 1)


def gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in exact integers (Python integers, so nothing can overflow), as int64 when
    every value fits, else as an object array."""
    return _narrowed(a.astype(object) @ b.astype(object))


def _narrowed(exact: np.ndarray) -> np.ndarray:
    """``exact`` as int64 if every value fits, else unchanged (Python integers)."""
    if exact.size and max(abs(int(v)) for v in exact.flat) >= 1 << 63:
        return exact
    return exact.astype(np.int64)


def _pack(values, width: int) -> int:
    word, mask = 0, (1 << width) - 1
    for index, value in enumerate(values):
        word |= (int(value) & mask) << (index * width)
    return word


def _tiles(m: int, n: int, geom: MacGeometry):
    for row in range(0, m, geom.rows):
        for col in range(0, n, geom.cols):
            yield row, col


def operand_beats(a: np.ndarray, b: np.ndarray, geom: MacGeometry) -> list[int]:
    """Every operand beat of ``a @ b`` in stream order, as payload integers (``a`` in the low
    bits, then ``b``, then ``last``)."""
    (m, k), n = a.shape, b.shape[1]
    steps = -(-k // geom.depth) * geom.depth
    padded_a = np.zeros((-(-m // geom.rows) * geom.rows, steps), dtype=object)
    padded_b = np.zeros((steps, -(-n // geom.cols) * geom.cols), dtype=object)
    padded_a[:m, :k], padded_b[:k, :n] = a, b
    a_bits = geom.rows * geom.depth * geom.width
    last_bit = a_bits + geom.depth * geom.cols * geom.width
    beats = []
    for row, col in _tiles(m, n, geom):
        for step in range(0, steps, geom.depth):
            a_part = padded_a[row:row + geom.rows, step:step + geom.depth].reshape(-1)
            b_part = padded_b[step:step + geom.depth, col:col + geom.cols].reshape(-1)
            beats.append(_pack(a_part, geom.width) | _pack(b_part, geom.width) << a_bits
                         | int(step + geom.depth >= steps) << last_bit)
    return beats


def results_from_beats(beats: list[int], m: int, n: int, geom: MacGeometry) -> np.ndarray:
    """The (M, N) result from the result beats in stream order (exact integers)."""
    out = np.zeros((-(-m // geom.rows) * geom.rows, -(-n // geom.cols) * geom.cols),
                   dtype=object)
    mask, beats = (1 << geom.acc_width) - 1, iter(beats)
    for row, col in _tiles(m, n, geom):
        for i in range(geom.rows):
            word = next(beats)
            for j in range(geom.cols):
                value = word >> (j * geom.acc_width) & mask
                if geom.signed and value >> (geom.acc_width - 1):
                    value -= 1 << geom.acc_width
                out[row + i, col + j] = value
    return _narrowed(out[:m, :n])
