"""The table-lookup ternary matmul (TLMM) engine.

Each beat's activations form ``groups_per_cycle`` groups of ``group_size``. For every group the
engine precomputes, once, the table of all ``(3**G + 1) / 2`` signed sums of the group that a
canonical weight pattern selects (see :mod:`ternforge.sim.models.tl_code` for the code), and registers
it. Every one of the ``rows`` rows then reads one entry per group with its code's index and
applies the code's sign. The sign is folded into the adder tree: ``-t == ~t + 1``, so a row adds
``t ^ sign`` for each group plus the count of its negative codes.
"""

from amaranth.hdl import Array, Const, Signal, signed

from .pipeline import TernaryMatmulEngine, fold_signs, signed_width

__all__ = ["TLMMEngine", "balanced_ternary_digits"]


def balanced_ternary_digits(value, group_size):
    """Digits ``d_0 .. d_{G-1}`` in {-1, 0, 1} with ``value == sum(d_j * 3**j)``."""
    digits = []
    for _ in range(group_size):
        digit = (value + 1) % 3 - 1
        digits.append(digit)
        value = (value - digit) // 3
    return digits


class TLMMEngine(TernaryMatmulEngine):
    """Table-lookup ternary matmul engine.

    Parameters and members are those of :class:`~ternforge.hdl.matmul.pipeline.TernaryMatmulEngine`;
    a weight slot is one TL code (a sign bit above the table index).

    Members
    -------
    acts, weights, results
        As in the base class; ``weights.payload.slots`` holds TL codes.
    """

    @property
    def table_entries(self) -> int:
        return (3**self.group_size + 1) // 2

    @property
    def index_bits(self) -> int:
        return (self.table_entries - 1).bit_length()

    @property
    def slot_bits(self) -> int:
        return 1 + self.index_bits

    @property
    def table_width(self) -> int:
        """Width of a table entry: a sum of ``group_size`` activations."""
        return signed_width((1 << (self.act_width - 1)) * self.group_size)

    @property
    def front_stages(self) -> int:
        return 1

    @property
    def operands_per_row(self) -> int:
        return self.groups_per_cycle + 1

    def _table(self, m, advance, group):
        entries = [Const(0, signed(self.table_width))]
        for index in range(1, self.table_entries):
            digits = balanced_ternary_digits(index, self.group_size)
            total = 0
            for digit, x in zip(digits, group):
                total = total + x if digit > 0 else total - x if digit < 0 else total
            entry = Signal(signed(self.table_width), name=f"table_{index}")
            with m.If(advance):
                m.d.sync += entry.eq(total)
            entries.append(entry)
        return Array(entries)

    def elaborate_front(self, m, advance, acts, slots):
        g_size, groups = self.group_size, self.groups_per_cycle
        tables = [self._table(m, advance, [acts[g * g_size + j] for j in range(g_size)])
                  for g in range(groups)]
        codes = Signal.like(slots)
        with m.If(advance):
            m.d.sync += codes.eq(slots)
        operands = []
        for row in range(self.rows):
            row_codes = [codes[row * groups + group] for group in range(groups)]
            entries = [tables[group][code[:self.index_bits]]
                       for group, code in enumerate(row_codes)]
            operands.append(fold_signs(entries, [code[self.index_bits] for code in row_codes],
                                       self.table_width))
        return operands
