"""Sums in the bit-weight dimension: partial-product bits compressed in carry-save form.

A :class:`BitMatrix` collects single bits by weight (column ``c`` weighs ``2**c``) plus one
integer constant, all modulo ``2**width``. Products enter bit by bit (``a[t] & b[i]`` at
column ``t + i``), so the partial products of several products and a carry-save accumulator
are compressed together by one tree of full adders (3:2 compressors) into two rows, ``sum``
and ``carry``, with no carry-propagate addition: the transformation of the bit-weight
dimension that defers the carry-propagate addition to once per output.

Signed (two's complement) operands use the Baugh-Wooley form: a bit of negative weight
``-x * 2**c`` enters as ``~x`` at column ``c`` plus the constant ``-2**c``; the constants of
all such bits add into one constant row.
"""

from amaranth.hdl import C, Cat, Signal

__all__ = ["BitMatrix"]


class BitMatrix:
    """Bits to add, by column, plus an integer constant, modulo ``2**width``.

    Parameters
    ----------
    width : int
        Bits of the result; bits and carries above it are dropped.

    Members
    -------
    columns : list of list of Value
        The one-bit values of each column.
    constant : int
        The constant to add.
    """

    def __init__(self, width: int):
        self.width = width
        self.columns = [[] for _ in range(width)]
        self.constant = 0

    def add_bit(self, bit, column: int, *, negative: bool = False) -> None:
        """Add ``bit * 2**column``, or subtract it if ``negative``."""
        if column >= self.width:
            return
        if negative:
            self.columns[column].append(~bit)
            self.constant -= 1 << column
        else:
            self.columns[column].append(bit)

    def add_value(self, value) -> None:
        """Add an unsigned value (its bits above ``width`` wrap away)."""
        for column in range(min(len(value), self.width)):
            self.add_bit(value[column], column)

    def add_product(self, a, b, *, signed: bool) -> None:
        """Add ``a * b`` as ``len(a) * len(b)`` AND bits; two's complement if ``signed``."""
        top_a, top_b = len(a) - 1, len(b) - 1
        for i in range(len(b)):
            for t in range(len(a)):
                negative = signed and ((t == top_a) != (i == top_b))
                self.add_bit(a[t] & b[i], t + i, negative=negative)

    def compress(self, m, *, name: str = "csa"):
        """Reduce every column to at most two bits with full adders (Wallace tree), in module
        ``m``; return ``(sum, carry)``, each ``width`` bits, whose sum is the matrix's value.
        Each level of the tree drives named signals (``<name>_l<level>_c<column>``), which
        keeps the netlist a tree of full adders rather than one expression per output bit."""
        columns = [list(bits) for bits in self.columns]
        constant = self.constant % (1 << self.width)
        for column in range(self.width):
            if constant >> column & 1:
                columns[column].append(C(1, 1))
        level = 0
        while any(len(bits) > 2 for bits in columns):
            level += 1
            reduced = [[] for _ in range(self.width)]
            for column, bits in enumerate(columns):
                while len(bits) >= 3:
                    x, y, z = bits.pop(), bits.pop(), bits.pop()
                    reduced[column].append(x ^ y ^ z)
                    if column + 1 < self.width:
                        reduced[column + 1].append((x & y) | (x & z) | (y & z))
                reduced[column].extend(bits)
            columns = [self._named(m, bits, f"{name}_l{level}_c{column}")
                       for column, bits in enumerate(reduced)]
        rows = [[bits[row] if len(bits) > row else C(0, 1) for bits in columns]
                for row in range(2)]
        return Cat(*rows[0]), Cat(*rows[1])

    @staticmethod
    def _named(m, bits, name):
        if not bits:
            return []
        signal = Signal(len(bits), name=name)
        m.d.comb += signal.eq(Cat(*bits))
        return [signal[index] for index in range(len(bits))]
