"""A layer's attention from one start: the :class:`~ternforge.hdl.attention.sequencer
.AttentionSequencer`'s command stream into a :class:`~ternforge.hdl.attention.unit
.CachedAttention`.

This is the generated top of an attention unit (``attention_prefill`` and
``attention_decode``): the host writes a layer's queries (and, in decode, the newest token's
key and value) to the streams, gives one ``start`` (phase, heads, group, tokens, the first KV
head's region and the distance between regions) and reads the outputs in the loop order.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In

from ..common.axi import forward_ports
from .parameters import AttentionUnitParameters
from .sequencer import AttentionSequencer
from .unit import CachedAttention

__all__ = ["LayerAttention"]


class LayerAttention(wiring.Component):
    """The attention unit with its sequencer.

    Parameters
    ----------
    parameters : AttentionUnitParameters
        The unit's and the sequencer's.

    Members
    -------
    start : ``In(stream.Signature(parameters.start_layout))``
        As the sequencer's.
    query, new_kv, output, m_axi_* :
        As the unit's.
    """

    def __init__(self, parameters: AttentionUnitParameters):
        if not isinstance(parameters, AttentionUnitParameters):
            raise TypeError(f"Parameters must be AttentionUnitParameters, not {parameters!r}")
        self._parameters = parameters
        unit = CachedAttention.members(parameters)
        del unit["command"]  # driven by the sequencer
        super().__init__({"start": In(stream.Signature(parameters.start_layout)), **unit})

    parameters = property(lambda self: self._parameters)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = CachedAttention(self._parameters)
        m.submodules.sequencer = sequencer = AttentionSequencer(self._parameters)
        wiring.connect(m, wiring.flipped(self.start), sequencer.start)
        wiring.connect(m, sequencer.commands, unit.command)
        members = self.signature.members
        forward_ports(m, self, unit, [name for name in members if members[name].is_port])
        wiring.connect(m, wiring.flipped(self.query), unit.query)
        wiring.connect(m, wiring.flipped(self.new_kv), unit.new_kv)
        wiring.connect(m, unit.output, wiring.flipped(self.output))
        return m
