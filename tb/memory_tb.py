"""cocotb testbench of DDR inside the simulator: DMA copies sharing one AXI4 port, or several
striped ones.

Design: ``copies`` :class:`~ternforge.hdl.common.dma.DmaCopy` engines on an
:class:`~ternforge.hdl.common.interconnect.AxiInterconnect`, on the Verilog memory model
(:class:`~ternforge.sim.memory.WithMemory`) through one port or, striped by an
:class:`~ternforge.hdl.common.striper.AxiStriper`, through ``ports`` narrower ones, built by
:func:`design`.

Driver: each engine's command stream (all engines start together). Monitor: each ``done``
beat, and the memory read back through VPI. Model: a copy of bytes. Checker: every
destination holds its source exactly, nothing else changed, under the memory's random stalls
on every channel (set by plusargs). The result (``result``) gives the cycles and the wall
time of the copies, which is the simulator's own speed: no Python runs per cycle. The job is
``TERNFORGE_TB`` (JSON: ``copies``, ``data_bits``, ``memory_bits``: the memory's words, if
narrower, ``jobs``: one list of ``[source, destination, words]`` commands an engine,
``image``: the memory image's file), made by :func:`run`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from amaranth.hdl import Module
from amaranth.lib import wiring

from ternforge.hdl.common.dma import DmaCopy
from ternforge.hdl.common.interconnect import AxiInterconnect
from ternforge.hdl.common.striper import AxiStriper
from ternforge.sim.memory import WithMemory

TOPLEVEL = "ternforge_copies"


class Copies(wiring.Component):
    """``copies`` DMA engines (``commands<i>``, ``done<i>``) of ``data_bits`` on one
    ``m_axi_*`` port, or on ``ports`` ports ``m_axi<k>_*`` of ``data_bits // ports``."""

    def __init__(self, copies: int, *, data_bits: int, ports: int = 1):
        self._engines = [DmaCopy(data_bits=data_bits) for _ in range(copies)]
        self._bus = AxiInterconnect([(f"dma{i}", True, True) for i in range(copies)],
                                    data_bits=data_bits)
        self._striper = AxiStriper(ports, data_bits=data_bits // ports) if ports > 1 else None
        outer = self._striper or self._bus
        members = {name: member for name, member in outer.signature.members.items()
                   if name.startswith("m_axi")}
        for i, engine in enumerate(self._engines):
            members[f"commands{i}"] = engine.signature.members["commands"]
            members[f"done{i}"] = engine.signature.members["done"]
        super().__init__(members)

    @staticmethod
    def _join(m, inner, outer, names, flows):
        """Drive ``outer``'s ``names`` from ``inner``'s outputs and ``inner``'s inputs from
        ``outer`` (``flows``: each name's flow on ``inner``)."""
        for name, (inner_name, outer_name) in names.items():
            a, b = getattr(inner, inner_name), getattr(outer, outer_name)
            m.d.comb += b.eq(a) if flows[inner_name].flow == wiring.Out else a.eq(b)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bus = bus = self._bus
        axi = [name for name in self._engines[0].signature.members if name.startswith("m_axi_")]
        for i, engine in enumerate(self._engines):
            m.submodules[f"dma{i}"] = engine
            wiring.connect(m, wiring.flipped(getattr(self, f"commands{i}")), engine.commands)
            wiring.connect(m, engine.done, wiring.flipped(getattr(self, f"done{i}")))
            self._join(m, engine, bus, {name: (name, f"dma{i}_{name[6:]}") for name in axi},
                       engine.signature.members)
        outer = bus
        if self._striper is not None:
            m.submodules.striper = outer = self._striper
            self._join(m, bus, outer, {name: (name, f"s_axi_{name[6:]}") for name in axi},
                       bus.signature.members)
        ports = [name for name in self.signature.members if name.startswith("m_axi")]
        self._join(m, outer, self, {name: (name, name) for name in ports},
                   outer.signature.members)
        return m


def design(copies: int, *, data_bits: int, words: int, ports: int = 1) -> WithMemory:
    """The design under test: engines of ``data_bits`` on a memory of ``words`` words of
    ``data_bits // ports``."""
    return WithMemory(Copies(copies, data_bits=data_bits, ports=ports),
                      data_bits=data_bits // ports, words=words)


def build(copies: int, *, data_bits: int, words: int, ports: int = 1):
    """The Verilator build of :func:`design` (cached on disk by content)."""
    from amaranth.back import verilog

    from ternforge.sim import verilator
    from ternforge.sim.memory import MEMORY_VERILOG

    text = verilog.convert(design(copies, data_bits=data_bits, words=words, ports=ports),
                           name=TOPLEVEL)
    return verilator.build(text + MEMORY_VERILOG, toplevel=TOPLEVEL)


def run(built, work, jobs, *, data_bits: int, words: int, ports: int = 1, **memory) -> int:
    """Run ``jobs`` (an engine's ``[source, destination, words]`` commands each) on a build of
    :func:`build`'s arguments, its memory of random bytes and ``memory``'s plusargs
    (:func:`~ternforge.sim.memory.plusargs`); the testbench checks every byte; return the
    cycles from the commands' start to the last ``done``."""
    import numpy as np

    from ternforge.sim import verilator
    from ternforge.sim.memory import plusargs, write_image

    memory_bits = data_bits // ports
    image = np.random.default_rng(5).integers(0, 256, words * memory_bits // 8,
                                              dtype=np.uint8).tobytes()
    write_image(work / "image.hex", image, data_bits=memory_bits)
    job = {"copies": len(jobs), "data_bits": data_bits, "memory_bits": memory_bits,
           "jobs": jobs, "image": str(work / "image.hex"), "result": str(work / "result.json")}
    verilator.run(built, toplevel=TOPLEVEL, test_module="ternforge.tb.memory_tb", work_dir=work,
                  env={"TERNFORGE_TB": json.dumps(job)},
                  plusargs=plusargs(image=Path("image.hex"), **memory))
    return json.loads((work / "result.json").read_text())["cycles"]


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
        memory_bits = JOB.get("memory_bits", JOB["data_bits"])
        got = read_words(dut, 0, len(image) * 8 // memory_bits, data_bits=memory_bits)
        assert got == bytes(image), "memory differs from the copies' model"
        with open(JOB["result"], "w") as file:
            json.dump({"cycles": int(cycles), "seconds": seconds}, file)
