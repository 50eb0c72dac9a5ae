"""The accelerator's top: the controller and its units on one AXI4 bus to DDR.

:class:`Machine` puts a :class:`~ternforge.hdl.accelerator.controller.Controller` and any
units (components with ``instruction``, ``done`` and ``m_axi_*``) on one
:class:`~ternforge.hdl.common.interconnect.AxiInterconnect`; its ports are the controller's
AXI4-Lite registers (``s_axil_*``), the AXI4 master to DDR (``m_axi_*``, one of the board's HP
ports; or, the bus striped by an :class:`~ternforge.hdl.common.striper.AxiStriper`,
``m_axi0_*`` to ``m_axi<n-1>_*`` on as many) and ``done`` (an interrupt). :func:`accelerator` makes the machine that runs a BitNet
model: the units of :data:`UNIT_NAMES`, copy, vector, GEMV, RoPE and attention.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..common.axi import axi4_lite_members, axi4_read_members, axi4_write_members
from ..common.dma import DmaCopy
from ..common.interconnect import AxiInterconnect
from ..common.striper import AxiStriper
from .attention import AttentionUnit
from .controller import Controller
from .gemv import GemvUnit
from .rope import RopeUnit
from .vector import VectorUnit

__all__ = ["COPY_INSTRUCTION", "UNIT_NAMES", "CopyUnit", "Machine", "accelerator"]

#: the units of :func:`accelerator`, in the order of their indices in an instruction
UNIT_NAMES = ("copy", "vector", "gemv", "rope", "attention")

COPY_INSTRUCTION = data.StructLayout({"source": 32, "destination": 32, "words": 32})


class CopyUnit(wiring.Component):
    """A :class:`~ternforge.hdl.common.dma.DmaCopy` behind :data:`COPY_INSTRUCTION`\\ s.

    Parameters
    ----------
    parameters : CopyUnitParameters
        Its data width, FIFO depth and bursts.
    payload_bits : int
        Width of the instruction port (at least :data:`COPY_INSTRUCTION`'s).
    """

    def __init__(self, parameters, payload_bits):
        p = parameters
        self._copy = DmaCopy(data_bits=p.data_bits, depth=p.depth, max_burst=p.max_burst)
        members = dict(self._copy.signature.members)
        del members["commands"]
        super().__init__({"instruction": In(stream.Signature(payload_bits)), **members})

    def elaborate(self, platform):
        m = Module()
        m.submodules.copy = copy = self._copy
        m.d.comb += [copy.commands.payload.eq(self.instruction.payload[:COPY_INSTRUCTION.size]),
                     copy.commands.valid.eq(self.instruction.valid),
                     self.instruction.ready.eq(copy.commands.ready)]
        wiring.connect(m, copy.done, wiring.flipped(self.done))
        for name, member in self.signature.members.items():
            if name.startswith("m_axi_"):
                outer, inner = getattr(self, name), getattr(copy, name)
                m.d.comb += inner.eq(outer) if member.flow == In else outer.eq(inner)
        return m


class Machine(wiring.Component):
    """The controller and ``units`` on one bus, to DDR through one port or ``hp_ports``.

    Parameters
    ----------
    units : sequence of callables
        Each makes a unit from the instruction payload's width.
    data_bits : int
        The AXI data width of the bus.
    hp_ports : int
        DDR ports of ``data_bits // hp_ports`` each the bus is striped over (1: ``m_axi_*``
        is the bus).
    instruction_words : int
        Bus words an instruction spans.
    names : sequence of str or None
        The units' names in :attr:`parts` (default ``unit0``, ``unit1``, ...).
    """

    def __init__(self, units, *, data_bits=512, instruction_words=2, names=None, hp_ports=1):
        self._controller = Controller(len(units), data_bits=data_bits,
                                      instruction_words=instruction_words, names=names)
        self._units = [unit(self._controller.payload_bits) for unit in units]
        ports = [f"unit{i}" for i in range(len(units))]
        self._names = list(self._controller.names)
        self._bus = AxiInterconnect([("program", True, False)] +
                                    [(port, True, True) for port in ports],
                                    data_bits=data_bits)
        self._striper = (AxiStriper(hp_ports, data_bits=data_bits // hp_ports)
                         if hp_ports > 1 else None)
        widths = {"addr_bits": 32, "data_bits": data_bits}
        ddr = ({name: member for name, member in self._striper.signature.members.items()
                if name.startswith("m_axi")} if self._striper else
               {**axi4_read_members("m_axi", **widths), **axi4_write_members("m_axi", **widths)})
        super().__init__({**axi4_lite_members("s_axil"), "done": Out(1), **ddr})

    @property
    def parts(self) -> dict:
        """The machine's components by name: ``controller``, ``interconnect`` and the units
        (between them only wires), for synthesis one at a time. A machine whose parts are
        taken counts as used (Amaranth warns of a component never elaborated)."""
        self._MustUse__used = True
        striper = {"striper": self._striper} if self._striper else {}
        return {"controller": self._controller, "interconnect": self._bus, **striper,
                **dict(zip(self._names, self._units))}

    def elaborate(self, platform):
        m = Module()
        m.submodules.controller = c = self._controller
        m.submodules.bus = bus = self._bus
        parts = [("program", c)]
        for i, unit in enumerate(self._units):
            m.submodules[f"unit{i}"] = unit
            wiring.connect(m, getattr(c, f"unit{i}"), unit.instruction)
            wiring.connect(m, unit.done, getattr(c, f"done{i}"))
            parts.append((f"unit{i}", unit))
        m.d.comb += self.done.eq(c.done)
        for name, part in parts:
            for port, member in part.signature.members.items():
                if port.startswith("m_axi_"):
                    outer = getattr(bus, f"{name}_{port[6:]}")
                    m.d.comb += (outer.eq(getattr(part, port)) if member.flow == Out
                                 else getattr(part, port).eq(outer))
        ddr = bus
        if self._striper is not None:
            m.submodules.striper = ddr = self._striper
            for name, member in bus.signature.members.items():
                if name.startswith("m_axi_"):
                    inner, outer = getattr(bus, name), getattr(ddr, f"s_axi_{name[6:]}")
                    m.d.comb += outer.eq(inner) if member.flow == Out else inner.eq(outer)
        for name, member in self.signature.members.items():
            if name.startswith("m_axi"):
                outer, inner = getattr(self, name), getattr(ddr, name)
                m.d.comb += outer.eq(inner) if member.flow == Out else inner.eq(outer)
            elif name.startswith("s_axil_"):
                outer, inner = getattr(self, name), getattr(c, name)
                m.d.comb += inner.eq(outer) if member.flow == In else outer.eq(inner)
        return m


def accelerator(parameters) -> Machine:
    """The machine that runs a BitNet model, of
    :class:`~ternforge.hdl.accelerator.parameters.AcceleratorParameters`: copy, vector, GEMV,
    RoPE and attention units."""
    p, data_bits = parameters, parameters.data_bits
    return Machine([lambda bits: CopyUnit(p.copy, bits),
                    lambda bits: VectorUnit(p.vector, payload_bits=bits),
                    lambda bits: GemvUnit(p.gemv, payload_bits=bits),
                    lambda bits: RopeUnit(p.rope, payload_bits=bits),
                    lambda bits: AttentionUnit(p.attention, payload_bits=bits)],
                   data_bits=data_bits, names=UNIT_NAMES, hp_ports=p.hp_ports)
