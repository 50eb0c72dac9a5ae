"""cocotb testbench of the controller: a program in DDR runs units from one start.

Designs: a :class:`~ternforge.hdl.accelerator.top.Machine` (the controller and its units on
one AXI4 port) on the Verilog memory: a copy unit (0) and the dequantise operation of
:mod:`tb.vector_tb` (1) (:func:`design`), the
:class:`~ternforge.hdl.accelerator.vector.VectorUnit` (:func:`vector_design`), or any units
(:func:`machine_of`).

Driver: the AXI4-Lite master writes the program's address and length and starts it. Monitor:
the ``done`` output, the ``cycles`` register and the memory read back through VPI. Model: the
program run step by step in Python (copies, and
:func:`~ternforge.sim.models.eltwise.dequantise`). Checker: memory exact, under the memory's
random stalls. The job is ``TERNFORGE_TB`` (JSON: ``programs``, ``[address, length]`` each,
run one after another, or one ``program`` and ``length`` run ``runs`` times; and the
``expected`` memory file or regions to ``check``: ``[address, bytes as hex]``).
"""

from __future__ import annotations

import json
import os

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tb.vector_tb import DATA_BITS, DequantiseOp
from ternforge.hdl.accelerator.top import CopyUnit, Machine
from ternforge.hdl.accelerator.vector import VectorUnit
from ternforge.hdl.common.axi import axi4_read_members, axi4_write_members
from ternforge.sim.memory import WithMemory

TOPLEVEL = "ternforge_controller_system"

#: the payload of the dequantise unit
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


def machine_of(units) -> Machine:
    """A :class:`~ternforge.hdl.accelerator.top.Machine` of ``units`` on this bench's bus."""
    return Machine(units, data_bits=DATA_BITS, instruction_words=2)


def design(words: int = 4096) -> WithMemory:
    """Unit 0 copies, unit 1 dequantises (the operation of :mod:`tb.vector_tb`)."""
    copy = lambda bits: CopyUnit(bits, data_bits=DATA_BITS)  # noqa: E731
    return WithMemory(machine_of([copy, DequantiseUnit]), data_bits=DATA_BITS, words=words)


def vector_design(parameters, words: int = 4096) -> WithMemory:
    """Unit 0 is the :class:`~ternforge.hdl.accelerator.vector.VectorUnit` of
    ``parameters`` (whose data width must be :data:`DATA_BITS`)."""
    return WithMemory(machine_of([lambda bits: VectorUnit(parameters, payload_bits=bits)]),
                      data_bits=DATA_BITS, words=words)


def build(machine):
    """The Verilator build of a machine (:func:`design` or :func:`vector_design`)."""
    from amaranth.back import verilog

    from ternforge.sim import verilator
    from ternforge.sim.memory import MEMORY_VERILOG

    return verilator.build(verilog.convert(machine, name=TOPLEVEL) + MEMORY_VERILOG,
                           toplevel=TOPLEVEL)


def run(built, work, job: dict, *, stall: float, seed: int) -> None:
    """Run ``job`` (its program in the image ``work / "image.hex"``) on a build, the memory
    with a latency of 6 and random stalls of ``stall``."""
    from ternforge.sim import verilator
    from ternforge.sim.memory import plusargs

    verilator.run(built, toplevel=TOPLEVEL, test_module="tb.controller_tb", work_dir=work,
                  env={"TERNFORGE_TB": json.dumps(job)},
                  plusargs=plusargs(image=work / "image.hex", stall=stall, latency=6,
                                    seed=seed))


if os.environ.get("TERNFORGE_TB"):  # in the simulator
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge

    from ternforge.hdl.accelerator.controller import REGISTERS
    from ternforge.sim.cocotb.axi import AxiLiteMaster
    from ternforge.sim.memory import read_words

    JOB = json.loads(os.environ["TERNFORGE_TB"])

    @cocotb.test(timeout_time=JOB.get("timeout_ms", 20), timeout_unit="ms")
    async def program_runs_from_one_start(dut):
        Clock(dut.clk, 10, "ns").start()
        dut.rst.value = 1
        lite = AxiLiteMaster(dut)
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        programs = JOB.get("programs") or [[JOB["program"], JOB["length"]]] * JOB["runs"]
        for address, length in programs:  # one after another, each from one start
            await lite.write(4 * REGISTERS.index("program"), address)
            await lite.write(4 * REGISTERS.index("length"), length)
            await lite.write(4 * REGISTERS.index("control"), 1)
            await RisingEdge(dut.clk)
            while dut.done.value != 1:
                await RisingEdge(dut.done)
            status = await lite.read(4 * REGISTERS.index("status"))
            assert status == 2, status
            cycles = await lite.read(4 * REGISTERS.index("cycles"))
            dut._log.info(f"program at {address:#x}: {length} instructions, {cycles:,} cycles")
            assert cycles > 0
        if "expected" in JOB:  # the whole memory
            with open(JOB["expected"], "rb") as file:
                expected = file.read()
            got = read_words(dut, 0, len(expected) * 8 // DATA_BITS, data_bits=DATA_BITS)
            assert got == expected, "memory differs from the program's model"
        word = DATA_BITS // 8
        for address, expected in JOB.get("check", ()):  # regions: [address, bytes as hex]
            expected = bytes.fromhex(expected)
            got = read_words(dut, address // word, -(-len(expected) // word),
                             data_bits=DATA_BITS)[:len(expected)]
            assert got == expected, f"memory at {address:#x} differs from the model"
