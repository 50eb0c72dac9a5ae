"""cocotb testbench of a unit as an operation from DDR to DDR: the dequantise stage between
vector readers and a vector writer on one shared AXI4 port.

Design (:func:`design`): :class:`~ternforge.hdl.common.vectors.VectorReader` of the int32
accumulators (``tokens`` vectors of ``n``) and of the per-token activation scales, the
:class:`~ternforge.hdl.eltwise.stages.Dequantise` stage, a
:class:`~ternforge.hdl.common.vectors.VectorWriter` of the float32 results, the three masters
on an :class:`~ternforge.hdl.common.interconnect.AxiInterconnect`, on the Verilog memory.

Driver: the three commands and the weight scale. Monitor: ``done``, and the memory read back
through VPI. Model: :func:`ternforge.sim.models.eltwise.dequantise`. Checker: the results
bit-exact, every other byte of memory unchanged, under the memory's random stalls (plusargs).
The job is ``TERNFORGE_TB`` (JSON: ``tokens``, ``n``, the three regions' byte ``addresses``,
``weight_scale`` bits, ``image`` file and ``expected`` file of the whole memory afterwards).
"""

from __future__ import annotations

import json
import os

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ternforge.hdl.common.axi import axi4_read_members, axi4_write_members
from ternforge.hdl.common.interconnect import AxiInterconnect
from ternforge.hdl.common.vectors import VectorReader, VectorWriter
from ternforge.hdl.eltwise.parameters import DequantiseParameters
from ternforge.hdl.eltwise.stages import Dequantise
from ternforge.sim.memory import WithMemory

TOPLEVEL = "ternforge_dequantise_op"
DATA_BITS = 128


class DequantiseOp(wiring.Component):
    """Dequantise from DDR to DDR (see the module documentation)."""

    def __init__(self):
        self._acc = VectorReader(32, data_bits=DATA_BITS, max_burst=16, depth=16)
        self._scale = VectorReader(32, data_bits=DATA_BITS, max_burst=16, depth=16)
        self._out = VectorWriter(32, data_bits=DATA_BITS, max_burst=16, depth=16)
        self._stage = Dequantise(DequantiseParameters(format="float32", acc_width=32))
        self._bus = AxiInterconnect([("acc", True, False), ("scale", True, False),
                                     ("out", False, True)], data_bits=DATA_BITS)
        widths = {"addr_bits": 32, "data_bits": DATA_BITS}
        super().__init__({
            "acc_command": self._acc.signature.members["commands"],
            "scale_command": self._scale.signature.members["commands"],
            "out_command": self._out.signature.members["commands"],
            "weight_scale": In(32),
            "done": self._out.signature.members["done"],
            **axi4_read_members("m_axi", **widths), **axi4_write_members("m_axi", **widths)})

    def elaborate(self, platform):
        m = Module()
        parts = {"acc": self._acc, "scale": self._scale, "out": self._out}
        for name, part in parts.items():
            m.submodules[name] = part
        m.submodules.stage = stage = self._stage
        m.submodules.bus = bus = self._bus
        for name, part in parts.items():
            wiring.connect(m, wiring.flipped(getattr(self, f"{name}_command")), part.commands)
            for port, member in part.signature.members.items():
                if port.startswith("m_axi_"):
                    outer = getattr(bus, f"{name}_{port[6:]}")
                    m.d.comb += (outer.eq(getattr(part, port)) if member.flow == wiring.Out
                                 else getattr(part, port).eq(outer))
        wiring.connect(m, self._out.done, wiring.flipped(self.done))
        acc, scale, out = self._acc.elements, self._scale.elements, self._out.elements
        m.d.comb += [
            stage.acc.payload.value.eq(acc.payload.value.as_signed()),
            stage.acc.payload.last.eq(acc.payload.last),
            stage.acc.valid.eq(acc.valid), acc.ready.eq(stage.acc.ready),
            stage.act_scale.payload.eq(scale.payload.value),
            stage.act_scale.valid.eq(scale.valid), scale.ready.eq(stage.act_scale.ready),
            stage.weight_scale.eq(self.weight_scale),
            out.payload.eq(stage.output.payload.value),
            out.valid.eq(stage.output.valid), stage.output.ready.eq(out.ready),
        ]
        for name, member in self.signature.members.items():
            if name.startswith("m_axi_"):
                port, inner = getattr(self, name), getattr(bus, name)
                m.d.comb += port.eq(inner) if member.flow == wiring.Out else inner.eq(port)
        return m


def design(words: int = 4096) -> WithMemory:
    return WithMemory(DequantiseOp(), data_bits=DATA_BITS, words=words)


if os.environ.get("TERNFORGE_TB"):  # in the simulator
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge

    from ternforge.sim.memory import read_words

    JOB = json.loads(os.environ["TERNFORGE_TB"])

    async def _command(dut, name, value):
        getattr(dut, f"{name}_command__payload").value = value
        getattr(dut, f"{name}_command__valid").value = 1
        while True:
            await RisingEdge(dut.clk)
            if getattr(dut, f"{name}_command__ready").value == 1:
                break
        getattr(dut, f"{name}_command__valid").value = 0

    @cocotb.test(timeout_time=20, timeout_unit="ms")
    async def dequantise_from_ddr_to_ddr(dut):
        Clock(dut.clk, 10, "ns").start()
        tokens, n, (acc, scale, out) = JOB["tokens"], JOB["n"], JOB["addresses"]
        dut.rst.value = 1
        for name in ("acc", "scale", "out"):
            getattr(dut, f"{name}_command__valid").value = 0
        dut.done__ready.value = 1
        dut.weight_scale.value = JOB["weight_scale"]
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        elements = tokens * n
        # (payload fields in layout order: address, elements, then length for readers)
        await _command(dut, "out", out | elements << 32)
        await _command(dut, "acc", acc | elements << 32 | n << 64)
        await _command(dut, "scale", scale | tokens << 32 | 1 << 64)
        while dut.done__valid.value != 1:
            await RisingEdge(dut.done__valid)
        await RisingEdge(dut.clk)
        with open(JOB["expected"], "rb") as file:
            expected = file.read()
        got = read_words(dut, 0, len(expected) * 8 // DATA_BITS, data_bits=DATA_BITS)
        assert got == expected, "memory differs from the golden model's"
