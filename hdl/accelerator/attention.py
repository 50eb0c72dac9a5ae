"""The attention unit behind the controller: one attention command, its queries, appended key
and value and outputs in DDR, by instruction.

An instruction (:data:`ATTENTION_INSTRUCTION`) is one command of
:class:`~ternforge.hdl.attention.unit.CachedAttention` (a prefill query tile of one head, or
the query heads of one KV head in decode, appending the token's key and value) with where its
operands are: ``rows`` query rows of ``D`` elements from ``q``, ``q_stride`` bytes apart (the
heads of a token are side by side, so a prefill tile's rows are a token's stride apart and a
decode group's a head's), the appended key and value at ``k`` and ``v``, and ``rows`` output
rows to ``out``, ``out_stride`` bytes apart. The program is the loop order (the
:mod:`~ternforge.hdl.attention.sequencer`'s, one instruction a command).

On a shared port the cache's read data must never wait for data behind it: the engine takes a
job's queries before its keys, so the unit lets the cache reads go only once the queries (and
the appended row) have arrived.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..attention.unit import CachedAttention
from ..common.axi import axi4_read_members, axi4_write_members, forward_ports
from ..common.interconnect import AxiInterconnect
from ..common.vectors import VectorReader, VectorWriter
from .parameters import AttentionInstructionParameters

__all__ = ["ATTENTION_INSTRUCTION", "AttentionUnit"]

ATTENTION_INSTRUCTION = data.StructLayout({
    "rows": 8, "keys": 20, "position": 20, "row_step": 1, "append": 1, "base": 32,
    "q": 32, "q_stride": 16, "k": 32, "v": 32, "out": 32, "out_stride": 16})


class AttentionUnit(wiring.Component):
    """See the module documentation.

    Parameters
    ----------
    parameters : AttentionUnitParameters
    payload_bits : int
        Width of the instruction port (at least :data:`ATTENTION_INSTRUCTION`'s).

    Members
    -------
    instruction : ``In(stream.Signature(payload_bits))``
    done : ``Out(stream.Signature(1))``
        Its outputs are written and its appended row answered.
    m_axi_* : the unit's AXI4 port.
    """

    def __init__(self, parameters, *, payload_bits=None):
        self._parameters = p = parameters
        payload_bits = payload_bits or ATTENTION_INSTRUCTION.size
        beat = p.engine.beat_bits
        options = {"data_bits": p.data_bits, "max_burst": AttentionInstructionParameters.MAX_BURST,
                   "depth": AttentionInstructionParameters.FIFO_DEPTH}
        self._cached = CachedAttention(p)
        self._queries = VectorReader(beat, **options)
        self._appended = VectorReader(beat, **options)
        self._outputs = VectorWriter(beat, **options)
        self._bus = AxiInterconnect([("cache", True, True), ("queries", True, False),
                                     ("appended", True, False), ("outputs", False, True)],
                                    data_bits=p.data_bits)
        widths = {"addr_bits": p.addr_bits, "data_bits": p.data_bits}
        super().__init__({"instruction": In(stream.Signature(payload_bits)),
                          "done": Out(stream.Signature(1)),
                          **axi4_read_members("m_axi", **widths),
                          **axi4_write_members("m_axi", **widths)})

    def elaborate(self, platform):
        m = Module()
        parts = {"cache": self._cached, "queries": self._queries,
                 "appended": self._appended, "outputs": self._outputs}
        for name, part in parts.items():
            m.submodules[name] = part
        m.submodules.bus = bus = self._bus
        released = Signal()  # the cache may read: the job's queries and row have arrived
        for name, part in parts.items():
            for port, member in part.signature.members.items():
                if not port.startswith("m_axi_") or (name == "cache" and port in (
                        "m_axi_arvalid", "m_axi_arready")):
                    continue
                outer = getattr(bus, f"{name}_{port[6:]}")
                m.d.comb += (outer.eq(getattr(part, port)) if member.flow == Out
                             else getattr(part, port).eq(outer))
        m.d.comb += [bus.cache_arvalid.eq(self._cached.m_axi_arvalid & released),
                     self._cached.m_axi_arready.eq(bus.cache_arready & released)]
        forward_ports(m, self, bus, [n for n in self.signature.members
                                     if n.startswith("m_axi_")])
        cached = self._cached
        m.d.comb += [cached.query.payload.eq(self._queries.elements.payload.value),
                     cached.query.valid.eq(self._queries.elements.valid),
                     self._queries.elements.ready.eq(cached.query.ready),
                     cached.new_kv.payload.eq(self._appended.elements.payload.value),
                     cached.new_kv.valid.eq(self._appended.elements.valid),
                     self._appended.elements.ready.eq(cached.new_kv.ready),
                     self._outputs.elements.payload.eq(cached.output.payload.value),
                     self._outputs.elements.valid.eq(cached.output.valid),
                     cached.output.ready.eq(self._outputs.elements.ready)]
        self._sequence(m, released)
        return m

    def _sequence(self, m, released):
        """One instruction at a time: the command, then a read of each query row and of the
        appended key and value, and a write of each output row; the cache's reads released
        once the queries and the row are in; done when the outputs are written and the
        cache takes commands again (its append answered)."""
        p, cached = self._parameters, self._cached
        beats_per_row = p.engine.elements_per_lane  # D / lanes beats of a D-element row
        instruction = data.View(ATTENTION_INSTRUCTION,
                                self.instruction.payload[:ATTENTION_INSTRUCTION.size])
        held = data.View(ATTENTION_INSTRUCTION, Signal(ATTENTION_INSTRUCTION.size))
        busy, commanded = Signal(), Signal()
        q_rows, kv_parts, out_rows = Signal(8), Signal(2), Signal(8)  # reads, writes to issue
        q_row, kv_part, out_row = Signal(8), Signal(2), Signal(8)     # the next of each
        arrived, outputs_done = Signal(16), Signal(8)
        # the beats to arrive before the cache may read, counted as the instruction is taken
        # (a product of the held rows would sit before the release, which gates a bus request)
        expected = Signal(16)
        command = cached.command.payload
        queries, appended = self._queries.commands, self._appended.commands
        outputs = self._outputs.commands
        m.d.comb += [
            *(getattr(command, name).eq(getattr(held, name))
              for name in ("rows", "keys", "position", "row_step", "base", "append")),
            cached.command.valid.eq(busy & ~commanded),
            queries.payload.address.eq(held.q + q_row * held.q_stride),
            queries.payload.elements.eq(beats_per_row),
            queries.payload.length.eq(beats_per_row), queries.valid.eq(q_rows != 0),
            appended.payload.address.eq(Mux(kv_part == 0, held.k, held.v)),
            appended.payload.elements.eq(beats_per_row),
            appended.payload.length.eq(beats_per_row), appended.valid.eq(kv_parts != 0),
            outputs.payload.address.eq(held.out + out_row * held.out_stride),
            outputs.payload.elements.eq(beats_per_row), outputs.valid.eq(out_rows != 0),
            self._outputs.done.ready.eq(1),
            released.eq(busy & (arrived == expected)),
            self.instruction.ready.eq(~busy),
        ]
        with m.If(cached.command.valid & cached.command.ready):
            m.d.sync += commanded.eq(1)
        with m.If(queries.valid & queries.ready):
            m.d.sync += [q_rows.eq(q_rows - 1), q_row.eq(q_row + 1)]
        with m.If(appended.valid & appended.ready):
            m.d.sync += [kv_parts.eq(kv_parts - 1), kv_part.eq(kv_part + 1)]
        with m.If(outputs.valid & outputs.ready):
            m.d.sync += [out_rows.eq(out_rows - 1), out_row.eq(out_row + 1)]
        delivered = (cached.query.valid & cached.query.ready) + \
            (cached.new_kv.valid & cached.new_kv.ready)
        m.d.sync += arrived.eq(arrived + delivered)
        with m.If(self._outputs.done.valid):
            m.d.sync += outputs_done.eq(outputs_done + 1)
        finished = busy & commanded & (outputs_done == held.rows) & cached.command.ready
        m.d.comb += self.done.valid.eq(finished)
        with m.If(finished & self.done.ready):
            m.d.sync += busy.eq(0)
        with m.If(self.instruction.valid & ~busy):
            m.d.sync += [held.eq(instruction), busy.eq(1), commanded.eq(0),
                         q_rows.eq(instruction.rows), q_row.eq(0),
                         kv_parts.eq(Mux(instruction.append, 2, 0)), kv_part.eq(0),
                         out_rows.eq(instruction.rows), out_row.eq(0), arrived.eq(0),
                         outputs_done.eq(0),
                         expected.eq(instruction.rows * beats_per_row
                                     + Mux(instruction.append, 2 * beats_per_row, 0))]
