"""The baseline ternary matmul engine: every product formed directly, no tables.

Each weight is two bits (bit 0: non-zero, bit 1: negative); a product is the activation masked
by the non-zero bit and conditionally complemented by the negative bit, with the ``+1`` of each
negation added once per row as the count of negative weights. It has the same stream interface
and throughput as :class:`~ternforge.hdl.matmul.tlmm.TLMMEngine`, so the two compare like for like.
"""

from amaranth.hdl import Signal
from amaranth.lib import data

from .parameters import EngineKind
from .pipeline import TernaryMatmulEngine, fold_signs

__all__ = ["TernaryAdderEngine"]


class TernaryAdderEngine(TernaryMatmulEngine):
    """Plain ternary adder-tree engine (the baseline).

    Parameters and members are those of :class:`~ternforge.hdl.matmul.pipeline.TernaryMatmulEngine`
    (of kind :attr:`~ternforge.hdl.matmul.parameters.EngineKind.ADDER`); a weight slot holds
    ``group_size`` two-bit weights, weight ``j`` at bits ``2j, 2j+1``.

    Members
    -------
    acts, weights, results
        As in the base class.
    """

    KIND = EngineKind.ADDER

    def elaborate_front(self, m, advance, acts, slots):
        p = self.parameters
        registered_acts, registered_slots = Signal.like(acts), Signal.like(slots)
        with m.If(advance):
            m.d.sync += [registered_acts.eq(acts), registered_slots.eq(slots)]
        width, per_slot = p.act_width, p.group_size
        operands = []
        for row in range(p.rows):
            masked, negatives = [], []
            for i in range(p.acts_per_beat):
                slot = data.View(p.slot_layout,
                                 registered_slots[row * p.groups_per_cycle + i // per_slot])
                weight = slot[i % per_slot]
                masked.append(registered_acts[i].as_unsigned() & weight.nonzero.replicate(width))
                negatives.append(weight.negative)
            operands.append(fold_signs(masked, negatives, width))
        return operands
