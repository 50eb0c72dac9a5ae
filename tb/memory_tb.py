"""cocotb testbench of DDR inside the simulator: DMA copies sharing one AXI4 port.

Design: ``copies`` :class:`~ternforge.hdl.common.dma.DmaCopy` engines on an
:class:`~ternforge.hdl.common.interconnect.AxiInterconnect`, on the Verilog memory model
(:class:`~ternforge.sim.memory.WithMemory`), built by :func:`design`.

Driver: each engine's command stream (all engines start together). Monitor: each ``done``
beat, and the memory read back through VPI. Model: a copy of bytes. Checker: every
destination holds its source exactly, nothing else changed, under the memory's random stalls
on every channel (set by plusargs). The result (``result``) gives the cycles and the wall
time of the copies, which is the simulator's own speed: no Python runs per cycle. The job is ``TERNFORGE_TB`` (JSON: ``copies``,
``data_bits``, ``words``, ``jobs``: one list of ``[source, destination, words]`` commands an
engine, ``image``: the memory image's file).
"""

from __future__ import annotations

import json
import os
import time

from amaranth.hdl import Module
from amaranth.lib import wiring

from ternforge.hdl.common.axi import axi4_read_members, axi4_write_members
from ternforge.hdl.common.dma import DmaCopy
from ternforge.hdl.common.interconnect import AxiInterconnect
from ternforge.sim.memory import WithMemory

TOPLEVEL = "ternforge_copies"


class Copies(wiring.Component):
    """``copies`` DMA engines (``commands<i>``, ``done<i>``) on one ``m_axi_*`` port."""

    def __init__(self, copies: int, *, data_bits: int):
        self._engines = [DmaCopy(data_bits=data_bits) for _ in range(copies)]
        self._bus = AxiInterconnect([(f"dma{i}", True, True) for i in range(copies)],
                                    data_bits=data_bits)
        members = {**axi4_read_members("m_axi", addr_bits=32, data_bits=data_bits),
                   **axi4_write_members("m_axi", addr_bits=32, data_bits=data_bits)}
        for i, engine in enumerate(self._engines):
            members[f"commands{i}"] = engine.signature.members["commands"]
            members[f"done{i}"] = engine.signature.members["done"]
        self._axi = [name for name in members if name.startswith("m_axi_")]
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bus = bus = self._bus
        for i, engine in enumerate(self._engines):
            m.submodules[f"dma{i}"] = engine
            wiring.connect(m, wiring.flipped(getattr(self, f"commands{i}")), engine.commands)
            wiring.connect(m, engine.done, wiring.flipped(getattr(self, f"done{i}")))
            for name in self._axi:
                inner, outer = getattr(engine, name), getattr(bus, f"dma{i}_{name[6:]}")
                m.d.comb += (outer.eq(inner) if engine.signature.members[name].flow ==
                             wiring.Out else inner.eq(outer))
        for name in self._axi:
            port, inner = getattr(self, name), getattr(bus, name)
            m.d.comb += (port.eq(inner) if self.signature.members[name].flow == wiring.Out
                         else inner.eq(port))
        return m


def design(copies: int, *, data_bits: int, words: int) -> WithMemory:
    """The design under test."""
    return WithMemory(Copies(copies, data_bits=data_bits), data_bits=data_bits, words=words)


if os.environ.get("TERNFORGE_TB"):  # in the simulator
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge
    from cocotb.utils import get_sim_time

    from ternforge.sim.memory import read_words

    JOB = json.loads(os.environ["TERNFORGE_TB"])

    async def _drive(dut, index, commands):
        port = getattr(dut, f"commands{index}__payload")
        valid, ready = getattr(dut, f"commands{index}__valid"), \
            getattr(dut, f"commands{index}__ready")
        done = getattr(dut, f"done{index}__valid")
        getattr(dut, f"done{index}__ready").value = 1
        for source, destination, words in commands:
            port.value = source | destination << 32 | words << 64
            valid.value = 1
            while True:
                await RisingEdge(dut.clk)
                if ready.value == 1:
                    break
            valid.value = 0
            while done.value != 1:
                await RisingEdge(done)
            await RisingEdge(dut.clk)

    @cocotb.test(timeout_time=50, timeout_unit="ms")
    async def copies_exact(dut):
        Clock(dut.clk, 10, "ns").start()
        dut.rst.value = 1
        for index in range(JOB["copies"]):
            getattr(dut, f"commands{index}__valid").value = 0
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        start, started = get_sim_time("ns"), time.perf_counter()
        drivers = [cocotb.start_soon(_drive(dut, i, jobs)) for i, jobs in enumerate(JOB["jobs"])]
        for driver in drivers:
            await driver
        cycles = (get_sim_time("ns") - start) // 10
        seconds = time.perf_counter() - started
        word = JOB["data_bits"] // 8
        with open(JOB["image"]) as file:
            image = bytearray(b"".join(bytes.fromhex(line.strip())[::-1] for line in file))
        for jobs in JOB["jobs"]:
            for source, destination, words in jobs:
                image[destination:destination + words * word] = \
                    image[source:source + words * word]
        got = read_words(dut, 0, len(image) // word, data_bits=JOB["data_bits"])
        assert got == bytes(image), "memory differs from the copies' model"
        with open(JOB["result"], "w") as file:
            json.dump({"cycles": int(cycles), "seconds": seconds}, file)
