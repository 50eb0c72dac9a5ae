"""Sums in the bit-weight dimension: partial products compressed in carry-save form.

A :class:`CarrySaveSum` collects rows (unsigned values, each with the weight of its bits)
plus an integer constant, all modulo ``2**width``. A product enters as its partial-product
rows (``a & b[i]``, weight ``2**i``), so the partial products of several products and a
carry-save accumulator are compressed together by one tree of 3:2 compressors (a Wallace
tree over rows) into two rows, ``sum`` and ``carry``, with no carry-propagate addition: the
transformation of the bit-weight dimension that defers the carry-propagate addition to once
per output.

Signed (two's complement) operands use the Baugh-Wooley form: a partial-product bit of
negative weight ``-x * 2**c`` enters inverted, ``~x``, and the constant ``-2**c`` joins one
constant row.
"""

from amaranth.hdl import Cat, Const, Signal

__all__ = ["CarrySaveSum"]


class CarrySaveSum:
    """Rows to add, plus an integer constant, modulo ``2**width``.

    Parameters
    ----------
    width : int
        Bits of the result; bits and carries above it are dropped.

    Members
    -------
    rows : list of Value
        The rows, each already shifted to its weight.
    constant : int
        The constant to add.
    """

    def __init__(self, width: int):
        self.width = width
        self.rows = []
        self.constant = 0

    def add_value(self, value, shift: int = 0) -> None:
        """Add the unsigned ``value * 2**shift``."""
        if shift < self.width:
            self.rows.append((value << shift)[:self.width])

    def add_product(self, a, b, *, signed: bool) -> None:
        """Add ``a * b`` as ``len(b)`` partial-product rows; two's complement if ``signed``."""
        top_a, top_b = len(a) - 1, len(b) - 1
        for i in range(len(b)):
            row = a.as_unsigned() & b[i].replicate(len(a))
            negative = [signed and ((t == top_a) != (i == top_b)) for t in range(len(a))]
            for t, flag in enumerate(negative):
                if flag:
                    self.constant -= 1 << (t + i)
            mask = sum(1 << t for t, flag in enumerate(negative) if flag)
            self.add_value(row ^ Const(mask, len(a)) if mask else row, i)

    def compress(self, m, *, name: str = "csa"):
        """Reduce the rows to two with 3:2 compressors (a Wallace tree), in module ``m``;
        return ``(sum, carry)``, each ``width`` bits, whose sum is the rows' total. Each
        compressor drives named signals ``<name>_s<n>`` and ``<name>_c<n>``."""
        rows = list(self.rows)
        constant = self.constant % (1 << self.width)
        if constant:
            rows.append(Const(constant, self.width))
        count = 0
        while len(rows) > 2:
            reduced = []
            for start in range(0, len(rows) - 2, 3):
                x, y, z = rows[start:start + 3]
                total = Signal(self.width, name=f"{name}_s{count}")
                carry = Signal(self.width, name=f"{name}_c{count}")
                m.d.comb += [total.eq(x ^ y ^ z),
                             carry.eq(Cat(Const(0, 1), (x & y) | (x & z) | (y & z)))]
                reduced += [total, carry]
                count += 1
            rows = reduced + rows[len(rows) - len(rows) % 3:]
        rows += [Const(0, self.width)] * (2 - len(rows))
        return rows[0], rows[1]
