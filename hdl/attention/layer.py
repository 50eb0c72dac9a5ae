"""A layer's attention from one start: the :class:`~ternforge.hdl.attention.sequencer
.AttentionSequencer`'s command stream into a :class:`~ternforge.hdl.attention.unit
.CachedAttention`.

This is the generated top of an attention unit (``attention_prefill`` and
``attention_decode``): the host writes a layer's queries (and, in decode, the newest token's
key and value) to the streams, gives one ``start`` (phase, heads, group, tokens, the first KV
head's region and the distance between regions) and reads the outputs in the loop order.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from .sequencer import AttentionSequencer
from .unit import CachedAttention
from ..common.axi import forward_ports

__all__ = ["LayerAttention"]


class LayerAttention(wiring.Component):
    """The attention unit with its sequencer.

    Parameters
    ----------
    format, head_dim, rows, cols, max_keys, lanes, addr_bits, data_bits :
        As :class:`~ternforge.hdl.attention.unit.CachedAttention`'s.
    max_heads : int
        The most query heads of a start (the sequencer's).

    Members
    -------
    start : ``In(stream.Signature(StructLayout({"decode", "heads", "group", "tokens", "base", "stride"})))``
        As the sequencer's.
    query, new_kv, output, m_axi_* :
        As the unit's.
    """

    def __init__(self, *, max_heads=64, addr_bits=32, **unit_parameters):
        self._unit_parameters = dict(addr_bits=addr_bits, **unit_parameters)
        self._max_heads = max_heads
        unit, sequencer = self._parts()
        for part in (unit, sequencer):
            part._MustUse__silence = True
        members = {"start": sequencer.signature.members["start"]}
        members.update((name, member) for name, member in unit.signature.members.items()
                       if name != "command")
        super().__init__(members)
        self._unit = unit

    def _parts(self):
        unit = CachedAttention(**self._unit_parameters)
        sequencer = AttentionSequencer(rows=unit.engine.rows,
                                       max_keys=unit.engine.max_keys,
                                       max_heads=self._max_heads,
                                       addr_bits=self._unit_parameters["addr_bits"])
        return unit, sequencer

    @property
    def unit(self) -> CachedAttention:
        """The unit's parameters, cycle model and cache layout (an instance not to
        elaborate)."""
        return self._unit

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit, m.submodules.sequencer = unit, sequencer = self._parts()
        wiring.connect(m, wiring.flipped(self.start), sequencer.start)
        wiring.connect(m, sequencer.commands, unit.command)
        members = self.signature.members
        forward_ports(m, self, unit, [name for name in members if members[name].is_port])
        wiring.connect(m, wiring.flipped(self.query), unit.query)
        wiring.connect(m, wiring.flipped(self.new_kv), unit.new_kv)
        wiring.connect(m, unit.output, wiring.flipped(self.output))
        return m
