"""The RoPE unit: rotary position embedding of a projection's heads, from DDR to DDR, by
instruction.

In BitNet's (LLaMA's) rotate-half form, element ``i`` of a head pairs with ``i + D/2``. An
instruction (:data:`ROPE_INSTRUCTION`) rotates ``heads`` heads of ``tokens`` tokens: token
``t``'s heads lie side by side at ``x + t * stride``; each head's first half (``x0``) and
second half (``x1``) are read by two vector readers, the angle's cosines and sines (the host's
table, one row of ``half`` elements a position) by two more, from ``cos + t * half * 4`` and
``sin + ...`` (for the token at the table's row ``t``: the instruction points at its first
token's row). The :class:`~ternforge.hdl.eltwise.stages.Rope` stage rotates each pair, and two
writers put the halves back at ``y`` (which may be ``x``: each row is read before it is
written). Computes :func:`ternforge.sim.models.eltwise.rope` bit for bit.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..common.axi import axi4_read_members, axi4_write_members, forward_ports
from ..common.interconnect import AxiInterconnect
from ..common.vectors import VectorReader, VectorWriter
from ..eltwise.stages import Rope

__all__ = ["ROPE_INSTRUCTION", "RopeUnit"]

ROPE_INSTRUCTION = data.StructLayout({
    "tokens": 16, "heads": 8, "half": 8, "x": 32, "stride": 16, "cos": 32, "sin": 32,
    "y": 32})

_READERS = ("x0", "x1", "cos", "sin")
_WRITERS = ("y0", "y1")


class RopeUnit(wiring.Component):
    """See the module documentation.

    Parameters
    ----------
    parameters : RopeUnitParameters
        Its data width, bursts and FIFOs (which its cycle model follows).
    payload_bits : int
        Width of the instruction port (at least :data:`ROPE_INSTRUCTION`'s).

    Members
    -------
    instruction : ``In(stream.Signature(payload_bits))``
    done : ``Out(stream.Signature(1))``
    m_axi_* : the unit's AXI4 port.
    """

    def __init__(self, parameters, *, payload_bits=None):
        p, payload_bits = parameters, payload_bits or ROPE_INSTRUCTION.size
        data_bits = p.data_bits
        options = {"data_bits": data_bits, "max_burst": p.max_burst, "depth": p.fifo_depth}
        self._readers = {name: VectorReader(32, **options) for name in _READERS}
        self._writers = {name: VectorWriter(32, **options) for name in _WRITERS}
        self._stage = Rope(p.stage)
        self._bus = AxiInterconnect([(name, True, False) for name in _READERS] +
                                    [(name, False, True) for name in _WRITERS],
                                    data_bits=data_bits)
        widths = {"addr_bits": 32, "data_bits": data_bits}
        super().__init__({"instruction": In(stream.Signature(payload_bits)),
                          "done": Out(stream.Signature(1)),
                          **axi4_read_members("m_axi", **widths),
                          **axi4_write_members("m_axi", **widths)})

    def elaborate(self, platform):
        m = Module()
        parts = {**self._readers, **self._writers}
        for name, part in parts.items():
            m.submodules[name] = part
        m.submodules.stage = stage = self._stage
        m.submodules.bus = bus = self._bus
        for name, part in parts.items():
            for port, member in part.signature.members.items():
                if port.startswith("m_axi_"):
                    outer = getattr(bus, f"{name}_{port[6:]}")
                    m.d.comb += (outer.eq(getattr(part, port)) if member.flow == Out
                                 else getattr(part, port).eq(outer))
        forward_ports(m, self, bus, [n for n in self.signature.members
                                     if n.startswith("m_axi_")])
        self._pairs(m, stage)
        self._sequence(m)
        return m

    def _pairs(self, m, stage):
        """The four element streams joined into the stage's pairs; its halves out apart."""
        streams = {name: reader.elements for name, reader in self._readers.items()}
        all_valid = streams["x0"].valid & streams["x1"].valid & streams["cos"].valid & \
            streams["sin"].valid
        x = stage.input.payload
        m.d.comb += [x.x0.eq(streams["x0"].payload.value), x.x1.eq(streams["x1"].payload.value),
                     x.cos.eq(streams["cos"].payload.value),
                     x.sin.eq(streams["sin"].payload.value),
                     x.last.eq(streams["x0"].payload.last), stage.input.valid.eq(all_valid)]
        for source in streams.values():
            m.d.comb += source.ready.eq(stage.input.ready & all_valid)
        y0, y1 = self._writers["y0"].elements, self._writers["y1"].elements
        both = y0.ready & y1.ready
        m.d.comb += [y0.payload.eq(stage.output.payload.y0),
                     y1.payload.eq(stage.output.payload.y1),
                     y0.valid.eq(stage.output.valid & both),
                     y1.valid.eq(stage.output.valid & both),
                     stage.output.ready.eq(both)]

    def _sequence(self, m):
        """For each token and head, in order: one row read on each reader and one row
        written by each writer; done when every write is answered.

        Each port keeps its next row's address and its token's first, and steps them by
        additions alone (the next head's row ``2 * half`` elements on; the next token's
        ``stride`` bytes, or a table row, on), so that no product lies between a register and
        the bursts' addresses."""
        instruction = data.View(ROPE_INSTRUCTION,
                                self.instruction.payload[:ROPE_INSTRUCTION.size])
        held = data.View(ROPE_INSTRUCTION, Signal(ROPE_INSTRUCTION.size))
        busy = Signal()
        ports = {**{name: reader.commands for name, reader in self._readers.items()},
                 **{name: writer.commands for name, writer in self._writers.items()}}
        # each port's next row's address, its token's first row's, its head and the rows it
        # has left to issue
        address = {name: Signal(32, name=f"{name}_address") for name in ports}
        start = {name: Signal(32, name=f"{name}_start") for name in ports}
        head = {name: Signal(8, name=f"{name}_head") for name in ports}
        left = {name: Signal(24, name=f"{name}_left") for name in ports}
        answered, total = Signal(25), Signal(25)  # writes answered, and of the instruction
        # x0's first row is requested alone, the other readers' after it: the bus's grants
        # then follow from this instruction alone, as the cycle model says
        started = Signal()
        half_bytes = held.half * 4
        for name, port in ports.items():
            table = name in ("cos", "sin")
            head_step = 0 if table else 2 * half_bytes
            token_step = half_bytes if table else held.stride
            m.d.comb += [port.payload.address.eq(address[name]),
                         port.payload.elements.eq(held.half),
                         port.valid.eq((left[name] != 0) & (started | (name == "x0")))]
            if name in _READERS:
                m.d.comb += port.payload.length.eq(held.half)
            with m.If(port.valid & port.ready):
                if name == "x0":
                    m.d.sync += started.eq(1)
                last_head = head[name] == held.heads - 1
                m.d.sync += [left[name].eq(left[name] - 1),
                             head[name].eq(Mux(last_head, 0, head[name] + 1))]
                with m.If(last_head):
                    m.d.sync += [start[name].eq(start[name] + token_step),
                                 address[name].eq(start[name] + token_step)]
                with m.Else():
                    m.d.sync += address[name].eq(address[name] + head_step)
        for writer in self._writers.values():
            m.d.comb += writer.done.ready.eq(1)
        m.d.sync += answered.eq(answered + self._writers["y0"].done.valid
                                + self._writers["y1"].done.valid)
        finished = busy & (answered == total)
        m.d.comb += [self.done.valid.eq(finished), self.instruction.ready.eq(~busy)]
        with m.If(finished & self.done.ready):
            m.d.sync += busy.eq(0)
        with m.If(self.instruction.valid & ~busy):
            count = instruction.tokens * instruction.heads
            second = instruction.half * 4  # a head's second half
            first = {"x0": instruction.x, "x1": instruction.x + second, "cos": instruction.cos,
                     "sin": instruction.sin, "y0": instruction.y, "y1": instruction.y + second}
            m.d.sync += [held.eq(instruction), busy.eq(1), answered.eq(0), started.eq(0),
                         total.eq(2 * count),
                         *(left[name].eq(count) for name in ports),
                         *(start[name].eq(first[name]) for name in ports),
                         *(address[name].eq(first[name]) for name in ports),
                         *(head[name].eq(0) for name in ports)]
