"""cocotb testbench of the controller: a program in DDR runs units from one start.

Design (:func:`design`): the :class:`~ternforge.hdl.accelerator.controller.Controller` with
two units, a :class:`~ternforge.hdl.common.dma.DmaCopy` (unit 0) and the dequantise operation
of :mod:`tb.vector_tb` (unit 1), all masters on one
:class:`~ternforge.hdl.common.interconnect.AxiInterconnect`, on the Verilog memory.

Driver: the AXI4-Lite master writes the program's address and length and starts it. Monitor:
the ``done`` output, the ``cycles`` register and the memory read back through VPI. Model: the
program run step by step in Python (copies, and
:func:`~ternforge.sim.models.eltwise.dequantise`). Checker: memory exact, under the memory's
random stalls. The job is ``TERNFORGE_TB`` (JSON: ``program`` and ``length``, the ``expected``
memory file).
"""

from __future__ import annotations

import json
import os

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tb.vector_tb import DATA_BITS, DequantiseOp
from ternforge.hdl.accelerator.controller import Controller
from ternforge.hdl.common.axi import axi4_lite_members, axi4_read_members, axi4_write_members
from ternforge.hdl.common.dma import DmaCopy
from ternforge.hdl.common.interconnect import AxiInterconnect
from ternforge.sim.memory import WithMemory

TOPLEVEL = "ternforge_controller_system"

#: the payloads of the two units
COPY = data.StructLayout({"source": 32, "destination": 32, "words": 32})
DEQUANTISE = data.StructLayout({"acc": 32, "scale": 32, "out": 32, "tokens": 16, "n": 16,
                                "weight_scale": 32})


class DequantiseUnit(wiring.Component):
    """The dequantise operation behind one instruction: its three commands issued (each when
    its port takes it), the weight scale held until the next instruction."""

    def __init__(self, payload_bits):
        self._op = DequantiseOp()
        self._payload_bits = payload_bits
        widths = {"addr_bits": 32, "data_bits": DATA_BITS}
        super().__init__({"instruction": In(stream.Signature(payload_bits)),
                          "done": Out(stream.Signature(1)),
                          **axi4_read_members("m_axi", **widths),
                          **axi4_write_members("m_axi", **widths)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.op = op = self._op
        p = data.View(DEQUANTISE, self.instruction.payload[:DEQUANTISE.size])
        # one instruction at a time: the weight scale is held while its elements pass
        in_flight, scale = Signal(), Signal(32)
        commands = {"out": p.out | (p.tokens * p.n) << 32,
                    "acc": p.acc | (p.tokens * p.n) << 32 | p.n << 64,
                    "scale": p.scale | p.tokens << 32 | 1 << 64}
        sent = {name: Signal(name=f"sent_{name}") for name in commands}
        ports = {name: getattr(op, f"{name}_command") for name in commands}
        accept = self.instruction.valid & ~in_flight
        complete = 1
        for name, value in commands.items():
            port = ports[name]
            m.d.comb += [port.payload.eq(value), port.valid.eq(accept & ~sent[name])]
            complete = complete & (sent[name] | port.ready)
            with m.If(port.valid & port.ready):
                m.d.sync += sent[name].eq(1)
        m.d.comb += [self.instruction.ready.eq(accept & complete),
                     op.weight_scale.eq(Mux(in_flight, scale, p.weight_scale))]
        with m.If(self.instruction.valid & self.instruction.ready):
            m.d.sync += [*(flag.eq(0) for flag in sent.values()), scale.eq(p.weight_scale),
                         in_flight.eq(1)]
        wiring.connect(m, op.done, wiring.flipped(self.done))
        with m.If(self.done.valid & self.done.ready):
            m.d.sync += in_flight.eq(0)
        for name, member in self.signature.members.items():
            if name.startswith("m_axi_"):
                outer, inner = getattr(self, name), getattr(op, name)
                m.d.comb += outer.eq(inner) if member.flow == Out else inner.eq(outer)
        return m


class System(wiring.Component):
    """Controller, a copy unit and a dequantise unit on one port."""

    def __init__(self):
        self._controller = Controller(2, data_bits=DATA_BITS, instruction_words=2)
        payload = self._controller.payload_bits
        self._copy = DmaCopy(data_bits=DATA_BITS)
        self._dequantise = DequantiseUnit(payload)
        self._bus = AxiInterconnect([("program", True, False), ("copy", True, True),
                                     ("dequantise", True, True)], data_bits=DATA_BITS)
        widths = {"addr_bits": 32, "data_bits": DATA_BITS}
        super().__init__({**axi4_lite_members("s_axil"), "done": Out(1),
                          **axi4_read_members("m_axi", **widths),
                          **axi4_write_members("m_axi", **widths)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.controller = c = self._controller
        m.submodules.copy = copy = self._copy
        m.submodules.dequantise = dequantise = self._dequantise
        m.submodules.bus = bus = self._bus
        m.d.comb += [copy.commands.payload.eq(c.unit0.payload[:COPY.size]),
                     copy.commands.valid.eq(c.unit0.valid), c.unit0.ready.eq(copy.commands.ready),
                     self.done.eq(c.done)]
        wiring.connect(m, copy.done, c.done0)
        wiring.connect(m, c.unit1, dequantise.instruction)
        wiring.connect(m, dequantise.done, c.done1)
        for name, part in (("program", c), ("copy", copy), ("dequantise", dequantise)):
            for port, member in part.signature.members.items():
                if port.startswith("m_axi_"):
                    outer = getattr(bus, f"{name}_{port[6:]}")
                    m.d.comb += (outer.eq(getattr(part, port)) if member.flow == Out
                                 else getattr(part, port).eq(outer))
        for name, member in self.signature.members.items():
            if name.startswith("m_axi_"):
                outer, inner = getattr(self, name), getattr(bus, name)
                m.d.comb += outer.eq(inner) if member.flow == Out else inner.eq(outer)
            elif name.startswith("s_axil_"):
                outer, inner = getattr(self, name), getattr(c, name)
                m.d.comb += inner.eq(outer) if member.flow == In else outer.eq(inner)
        return m


def design(words: int = 4096) -> WithMemory:
    return WithMemory(System(), data_bits=DATA_BITS, words=words)


if os.environ.get("TERNFORGE_TB"):  # in the simulator
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge

    from ternforge.hdl.accelerator.controller import REGISTERS
    from ternforge.sim.cocotb.axi import AxiLiteMaster
    from ternforge.sim.memory import read_words

    JOB = json.loads(os.environ["TERNFORGE_TB"])

    @cocotb.test(timeout_time=20, timeout_unit="ms")
    async def program_runs_from_one_start(dut):
        Clock(dut.clk, 10, "ns").start()
        dut.rst.value = 1
        lite = AxiLiteMaster(dut)
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        for _ in range(JOB["runs"]):  # the program again: the controller starts afresh
            await lite.write(4 * REGISTERS.index("program"), JOB["program"])
            await lite.write(4 * REGISTERS.index("length"), JOB["length"])
            await lite.write(4 * REGISTERS.index("control"), 1)
            await RisingEdge(dut.clk)
            while dut.done.value != 1:
                await RisingEdge(dut.done)
            status = await lite.read(4 * REGISTERS.index("status"))
            assert status == 2, status
            cycles = await lite.read(4 * REGISTERS.index("cycles"))
            assert cycles > 0
        with open(JOB["expected"], "rb") as file:
            expected = file.read()
        got = read_words(dut, 0, len(expected) * 8 // DATA_BITS, data_bits=DATA_BITS)
        assert got == expected, "memory differs from the program's model"
