"""The table-lookup ternary matmul (TLMM) engine.

Each beat's activations form ``groups_per_cycle`` groups of ``group_size``. For every group the
engine precomputes, once, the table of all ``(3**G + 1) / 2`` signed sums of the group that a
canonical weight pattern selects (see :mod:`ternforge.sim.models.tl_code` for the code), and registers
it. Every one of the ``rows`` rows then reads one entry per group with its code's index and
applies the code's sign. The sign is folded into the adder tree: ``-t == ~t + 1``, so a row adds
``t ^ sign`` for each group plus the count of its negative codes.
"""

from amaranth.hdl import Array, Const, Signal, signed
from amaranth.lib import data

from .parameters import EngineKind
from .pipeline import TernaryMatmulEngine, fold_signs

__all__ = ["TLMMEngine", "balanced_ternary_digits", "row_operands"]


def balanced_ternary_digits(value, group_size):
    """Digits ``d_0 .. d_{G-1}`` in {-1, 0, 1} with ``value == sum(d_j * 3**j)``."""
    digits = []
    for _ in range(group_size):
        digit = (value + 1) % 3 - 1
        digits.append(digit)
        value = (value - digit) // 3
    return digits


def row_operands(parameters, slots, lookup):
    """Per row, the operands of its adder tree: each group's looked-up entry, sign folded in.

    ``slots[row * groups_per_cycle + group]`` is a TL code (``parameters.slot_layout``) and
    ``lookup(row, group, index)`` the table entry its index selects.
    """
    p, operands = parameters, []
    for row in range(p.rows):
        codes = [data.View(p.slot_layout, slots[row * p.groups_per_cycle + group])
                 for group in range(p.groups_per_cycle)]
        entries = [lookup(row, group, code.index) for group, code in enumerate(codes)]
        operands.append(fold_signs(entries, [code.negative for code in codes], p.table_width))
    return operands


class TLMMEngine(TernaryMatmulEngine):
    """Table-lookup ternary matmul engine.

    Parameters and members are those of :class:`~ternforge.hdl.matmul.pipeline.TernaryMatmulEngine`
    (of kind :attr:`~ternforge.hdl.matmul.parameters.EngineKind.TLMM`); a weight slot is one TL
    code (a sign bit above the table index).

    Members
    -------
    acts, weights, results
        As in the base class; ``weights.payload.slots`` holds TL codes.
    """

    KIND = EngineKind.TLMM

    def _table(self, m, advance, group):
        p = self.parameters
        entries = [Const(0, signed(p.table_width))]
        for index in range(1, p.table_entries):
            digits = balanced_ternary_digits(index, p.group_size)
            total = 0
            for digit, x in zip(digits, group):
                total = total + x if digit > 0 else total - x if digit < 0 else total
            entry = Signal(signed(p.table_width), name=f"table_{index}")
            with m.If(advance):
                m.d.sync += entry.eq(total)
            entries.append(entry)
        return Array(entries)

    def elaborate_front(self, m, advance, acts, slots):
        p = self.parameters
        g_size, groups = p.group_size, p.groups_per_cycle
        tables = [self._table(m, advance, [acts[g * g_size + j] for j in range(g_size)])
                  for g in range(groups)]
        codes = Signal.like(slots)
        with m.If(advance):
            m.d.sync += codes.eq(slots)
        return row_operands(p, codes, lambda row, group, index: tables[group][index])
