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

from amaranth.hdl import Cat, Const, Mux, Signal

__all__ = ["CarrySaveSum", "booth_encode"]


def _extended(value, width: int, signed: bool):
    """``value`` sign- (or zero-) extended to ``width`` bits."""
    top = value[-1] if signed else Const(0, 1)
    return Cat(value, top.replicate(width - len(value)))


def booth_encode(m, y, *, signed: bool, name: str) -> Signal:
    """The radix-4 Booth digits of ``y`` (``-2 .. 2``, least significant first) on one named
    signal, three bits per digit, ``neg``, ``one``, ``two``, meaning
    ``(one + 2 * two) * (-1 if neg else 1)``. An unsigned ``y`` gets a zero sign bit."""
    bits = [y[i] for i in range(len(y))]
    bits.append(bits[-1] if signed else Const(0, 1))
    if len(bits) % 2:
        bits.append(bits[-1])
    fields = []
    for k in range(len(bits) // 2):
        high, low, below = bits[2 * k + 1], bits[2 * k], bits[2 * k - 1] if k else Const(0, 1)
        fields += [high, low ^ below, (high & ~low & ~below) | (~high & low & below)]
    digits = Signal(len(fields), name=name)
    m.d.comb += digits.eq(Cat(*fields))
    return digits


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

    def add_booth_product(self, a, digits, *, signed: bool) -> None:
        """Add ``a * y`` from the radix-4 Booth digits of ``y`` (:func:`booth_encode`): one
        row per digit (``a`` or ``2a``, inverted when negative), plus one row of the
        negative digits' +1s and one of the rows' inverted sign bits."""
        width = len(a) + 2
        extended = a.as_signed() if signed else a.as_unsigned()
        plus_ones, signs = [], []
        for k in range(len(digits) // 3):
            neg, one, two = digits[3 * k], digits[3 * k + 1], digits[3 * k + 2]
            chosen = _extended(Mux(one, extended, Mux(two, extended << 1, 0)), width, signed)
            row = chosen ^ neg.replicate(width)
            self.add_value(row[:width - 1], 2 * k)
            plus_ones += [neg, Const(0, 1)]
            signs += [~row[width - 1], Const(0, 1)]  # sign bit: negative weight
            self.constant -= 1 << (2 * k + width - 1)
        self.add_value(Cat(*plus_ones))
        self.add_value(Cat(*signs), width - 1)

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
