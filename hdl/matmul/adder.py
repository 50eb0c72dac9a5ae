"""The baseline ternary matmul engine: every product formed directly, no tables.

Each weight is two bits (bit 0: non-zero, bit 1: negative); a product is the activation masked
by the non-zero bit and conditionally complemented by the negative bit, with the ``+1`` of each
negation added once per row as the count of negative weights. It has the same stream interface
and throughput as :class:`~ternforge.hdl.matmul.tlmm.TLMMEngine`, so the two compare like for like.
"""

from amaranth.hdl import Signal

from .pipeline import TernaryMatmulEngine, fold_signs

__all__ = ["TernaryAdderEngine"]


class TernaryAdderEngine(TernaryMatmulEngine):
    """Plain ternary adder-tree engine (the baseline).

    Parameters and members are those of :class:`~ternforge.hdl.matmul.pipeline.TernaryMatmulEngine`;
    a weight slot holds ``group_size`` two-bit weights, weight ``j`` at bits ``2j, 2j+1``.

    Members
    -------
    acts, weights, results
        As in the base class.
    """

    @property
    def slot_bits(self) -> int:
        return 2 * self.group_size

    @property
    def front_stages(self) -> int:
        return 1

    @property
    def operands_per_row(self) -> int:
        return self.acts_per_beat + 1

    def elaborate_front(self, m, advance, acts, slots):
        registered_acts, registered_slots = Signal.like(acts), Signal.like(slots)
        with m.If(advance):
            m.d.sync += [registered_acts.eq(acts), registered_slots.eq(slots)]
        width, per_slot = self.act_width, self.group_size
        operands = []
        for row in range(self.rows):
            masked, negatives = [], []
            for i in range(self.acts_per_beat):
                slot = registered_slots[row * self.groups_per_cycle + i // per_slot]
                nonzero, negative = slot[2 * (i % per_slot)], slot[2 * (i % per_slot) + 1]
                masked.append(registered_acts[i].as_unsigned() & nonzero.replicate(width))
                negatives.append(negative)
            operands.append(fold_signs(masked, negatives, width))
        return operands
