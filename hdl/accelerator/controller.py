"""The controller: runs a program of unit instructions from DDR, from one start.

The host writes a program to DDR (one instruction every ``instruction_words`` words of the
AXI data bus), its address
and length to the registers, and starts it; the controller reads the instructions in order
and hands each to its unit, and raises ``done`` when every instruction has completed. Units
work in parallel: an instruction goes to its unit as soon as the unit takes it, unless it
asks to wait (``wait``), in which case it is issued only once every instruction before it has
completed (a barrier: what a later step needs from DDR is written before it starts).

Instruction (least significant bits first): ``unit`` (4 bits), ``wait`` (1 bit), then the
unit's ``payload``. A unit is any component with ``instruction: In(stream(payload_bits))``
and ``done: Out(stream(1))``, one beat per instruction completed.

Registers (AXI4-Lite, 32 bits each):

====== =============== ========================================================
offset register        meaning
====== =============== ========================================================
0x00   control         write 1: start the program
0x04   status          bit 0: busy; bit 1: done (the last program has completed)
0x08   program         byte address of the program in DDR (word aligned)
0x0c   length          instructions in the program (1 or more)
0x10   cycles          cycles from start to done of the last program
0x14   <unit>_cycles   one a unit, in port order: the cycles of the last program in
...                    which the unit had an instruction issued and not yet done
====== =============== ========================================================

The unit counters say where a program's time went, on the board as in the simulator.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..common.axi import RegisterFile, axi4_lite_members, axi4_read_members, forward_ports
from ..common.checks import check_int
from ..common.dma import BufferedReader
from ..common.timing import COMMAND_CYCLES, bursts

__all__ = ["REGISTER_MAP", "REGISTERS", "register_map", "Controller", "instruction_layout",
           "program_cycles"]

#: register -> (access, meaning): the table above, at 4-byte offsets in this order, but the
#: units' counters (:func:`register_map`)
REGISTER_MAP = {
    "control": ("write", "write 1: start the program"),
    "status": ("read", "bit 0: busy; bit 1: done (the last program has completed)"),
    "program": ("read-write", "byte address of the program in DDR (word aligned)"),
    "length": ("read-write", "instructions in the program (1 or more)"),
    "cycles": ("read", "cycles from start to done of the last program"),
}
REGISTERS = tuple(REGISTER_MAP)
UNIT_BITS = 4


def register_map(names) -> dict:
    """Every register of a controller whose unit ports are named ``names`` (in port order):
    :data:`REGISTER_MAP`, then each unit's busy-cycle counter ``<name>_cycles``."""
    return {**REGISTER_MAP, **{
        f"{name}_cycles": ("read", f"cycles of the last program in which the {name} unit "
                                   f"had an instruction issued and not yet done")
        for name in names}}


def instruction_layout(payload_bits: int) -> data.StructLayout:
    """An instruction: ``unit``, ``wait`` and ``payload_bits`` of payload."""
    return data.StructLayout({"unit": UNIT_BITS, "wait": 1, "payload": payload_bits})


def program_cycles(instructions, *, memory, address: int = 0, word_bytes: int = 64,
                   depth: int = 16, instruction_words: int = 2) -> int:
    """The ``cycles`` register after a program whose every instruction waits for the one
    before it, from its instructions' own cycles (``instructions``: each one's unit's busy
    cycles, its model's), the program at byte ``address`` on a bus of ``word_bytes``, on a
    deterministic DDR of ``memory``'s timing (a
    :class:`~ternforge.hdl.common.timing.MemoryTiming`).

    The controller reads the program into its FIFO of ``depth`` words once the last read is
    used up, and only while no unit works, so its reads never delay a unit's: a read is the
    bursts (``depth`` words at most, none across 4 KiB) that fit the empty FIFO together
    (after a 4 KiB boundary cut a burst short, the next may fit beside it). Measured on
    Verilator at two memory timings, it adds to the instructions' cycles ``latency + 6`` for
    the start, the first read (the program reader's command, then
    :data:`~ternforge.hdl.common.timing.COMMAND_CYCLES` to its first request) and the end,
    ``latency + 4`` for each later read (a later burst of the same command), and between the
    instructions of a read 2 cycles after its first and 3 after every other (the next
    instruction's dispatch and its unit's start)."""
    reads = []
    for words in bursts(address, len(instructions) * instruction_words,
                        word_bytes=word_bytes, max_burst=depth):
        if reads and reads[-1] + words <= depth:
            reads[-1] += words
        else:
            reads.append(words)
    total, i = 0, 0
    for read, words in enumerate(reads):
        for position in range(words // instruction_words):
            if position == 0:
                total += memory.latency + (4 + COMMAND_CYCLES if read == 0 else 4)
            else:
                total += 2 if position == 1 else 3
            total += instructions[i]
            i += 1
    return total


class Controller(wiring.Component):
    """Reads the program and dispatches it to ``units`` unit ports.

    Parameters
    ----------
    units : int
        Unit ports (1 to 16), ``unit<i>`` and ``done<i>``.
    addr_bits, data_bits : int
        AXI widths.
    instruction_words : int
        Data words an instruction spans (1, 2 or 4), least significant first.
    depth : int
        Words read ahead (the program reader's FIFO).
    names : sequence of str or None
        The units' names, for their counters (default ``unit0``, ``unit1``, ...).

    Members
    -------
    s_axil_* : the registers.
    unit<i> : ``Out(stream.Signature(payload_bits))``
        Instructions for unit ``i``.
    done<i> : ``In(stream.Signature(1))``
        Unit ``i``'s completions.
    done : ``Out(1)``
        High while the last program has completed (status bit 1), for an interrupt.
    m_axi_* : AXI4 read channels (the program).
    """

    def __init__(self, units: int, *, addr_bits=32, data_bits=512, instruction_words=1,
                 depth=16, names=None):
        check_int("Units", units, 1, 1 << UNIT_BITS)
        self.names = tuple(f"unit{i}" for i in range(units)) if names is None else tuple(names)
        if len(self.names) != units or len(set(self.names)) != units:
            raise ValueError(f"Unit names must be {units} different names, not {names!r}")
        self.registers = register_map(self.names)
        check_int("Data bits", data_bits, 64, 1024)
        if instruction_words not in (1, 2, 4):
            raise ValueError(f"Instruction words must be 1, 2 or 4, not {instruction_words!r}")
        self._units, self._data_bits, self._words = units, data_bits, instruction_words
        self.instruction_bits = instruction_words * data_bits
        self.payload_bits = self.instruction_bits - UNIT_BITS - 1
        self._reader = BufferedReader(addr_bits=addr_bits, data_bits=data_bits, depth=depth,
                                      max_burst=depth)
        members = {**axi4_lite_members("s_axil"),
                   **axi4_read_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
                   "done": Out(1)}
        for i in range(units):
            members[f"unit{i}"] = Out(stream.Signature(self.payload_bits))
            members[f"done{i}"] = In(stream.Signature(1))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        read_only = {name for name, (access, _) in self.registers.items() if access == "read"}
        m.submodules.registers = registers = RegisterFile(names=self.registers,
                                                          read_only=read_only)
        m.submodules.reader = reader = self._reader
        forward_ports(m, self, registers, axi4_lite_members("s_axil"))
        forward_ports(m, self, reader, [n for n in axi4_read_members(
            "m_axi", addr_bits=32, data_bits=32) if n not in ("m_axi_arvalid", "m_axi_arready")])
        start = registers.control_written & registers.control[0]
        busy, finished, cycles = Signal(), Signal(), Signal(32)
        m.d.comb += [reader.commands.payload.address.eq(registers.program),
                     reader.commands.payload.words.eq(registers.length * self._words),
                     reader.commands.valid.eq(start),
                     registers.status_in.eq(Mux(busy, 1, 0) | Mux(finished, 2, 0)),
                     registers.cycles_in.eq(cycles), self.done.eq(finished)]
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)
        # the program is read only while no unit works and no instruction waits, and no
        # instruction is issued while a read of it is in flight: the program's reads never
        # delay a unit's, so that each instruction takes the cycles its unit's model says,
        # and the controller's own cycles are a fetch every ``depth`` words
        fetching = Signal(range(3))  # program bursts in flight (two if one crosses 4 KiB)
        issued_all, idle, full = self._dispatch(m, reader, registers, start, fetching == 0)
        quiet = idle & ~full
        requested = self.m_axi_arvalid & self.m_axi_arready
        arrived = self.m_axi_rvalid & self.m_axi_rready & self.m_axi_rlast
        m.d.comb += [self.m_axi_arvalid.eq(reader.m_axi_arvalid & quiet),
                     reader.m_axi_arready.eq(self.m_axi_arready & quiet)]
        m.d.sync += fetching.eq(fetching + requested - arrived)
        self._count_units(m, registers, start)
        with m.If(start):
            m.d.sync += [busy.eq(1), finished.eq(0), cycles.eq(0)]
        with m.Elif(busy & issued_all & idle):
            m.d.sync += [busy.eq(0), finished.eq(1)]
        return m

    def _dispatch(self, m, reader, registers, start, settled):
        """Instructions to their units in order, none while the program's reads are not
        ``settled``; returns (every instruction issued, no issued instruction is still to
        complete (a register), an instruction waits to be issued)."""
        words, full = self._gather(m, reader)
        instruction = data.View(instruction_layout(self.payload_bits), words)
        left = Signal(32)  # instructions still to issue
        outstanding = Signal(32)  # issued, not yet completed
        idle = Signal(init=1)  # outstanding == 0
        blocked = (instruction.wait & ~idle) | ~settled
        taken = Signal()
        for i in range(self._units):
            port = getattr(self, f"unit{i}")
            m.d.comb += [port.payload.eq(instruction.payload),
                         port.valid.eq(full & (instruction.unit == i) & ~blocked)]
            with m.If(port.valid & port.ready):
                m.d.comb += taken.eq(1)
        with m.If(taken):
            m.d.sync += full.eq(0)
        completions = Signal(range(self._units + 1))
        m.d.comb += completions.eq(sum(getattr(self, f"done{i}").valid
                                       for i in range(self._units)))
        for i in range(self._units):
            m.d.comb += getattr(self, f"done{i}").ready.eq(1)
        # (the sums and comparisons from registers and the completions, chosen by taken)
        with m.If(taken):
            m.d.sync += [outstanding.eq(outstanding + 1 - completions),
                         idle.eq(outstanding + 1 == completions), left.eq(left - 1)]
        with m.Else():
            m.d.sync += [outstanding.eq(outstanding - completions),
                         idle.eq(outstanding == completions)]
        with m.If(start):
            m.d.sync += left.eq(registers.length)
        return left == 0, idle, full

    def _count_units(self, m, registers, start):
        """Each unit's busy cycles: those in which it has instructions issued and not done
        (a unit may take its next instruction before its last is done)."""
        for i, name in enumerate(self.names):
            port, done = getattr(self, f"unit{i}"), getattr(self, f"done{i}")
            pending = Signal(range(17), name=f"pending_{name}")
            cycles = Signal(32, name=f"cycles_{name}")
            issued = port.valid & port.ready
            m.d.sync += pending.eq(pending + issued - done.valid)
            with m.If(pending != 0):
                m.d.sync += cycles.eq(cycles + 1)
            with m.If(start):
                m.d.sync += cycles.eq(0)
            m.d.comb += getattr(registers, f"{name}_cycles_in").eq(cycles)

    def _gather(self, m, reader):
        """The words of the next instruction (shifted in from the top, so the first word
        ends up lowest), and whether they are all in; ``full`` is cleared by the caller."""
        words, count, full = Signal(self.instruction_bits), Signal(range(self._words)), Signal()
        m.d.comb += reader.data.ready.eq(~full)
        with m.If(reader.data.valid & reader.data.ready):
            m.d.sync += words.eq(Cat(words[self._data_bits:], reader.data.payload.data))
            m.d.sync += [count.eq(Mux(count == self._words - 1, 0, count + 1)),
                         full.eq(count == self._words - 1)]
        return words, full
