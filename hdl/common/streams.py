"""Glue between valid/ready streams: connect one to another with its payload rewritten, and
join several into several (a join, a fork, or both). None of these holds a beat: a beat moves
when every source offers one and every sink can take it, exactly once. Sinks' ``ready`` must
not depend on their ``valid`` (true of every pipeline here).

:class:`FlagFIFO` and :class:`HeadFIFO` are first-in first-out queues as Amaranth's
``SyncFIFO`` whose flags (and, :class:`HeadFIFO`, head) are registers: what reads them starts
from flip-flops. :class:`Skid` makes a stream's ``ready`` a register without delaying its
beats; :class:`Register` makes its beats registers, a cycle later."""

from amaranth.hdl import Elaboratable, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.fifo import FIFOInterface
from amaranth.lib.wiring import In, Out

from .checks import check_int

__all__ = ["connect", "join", "Skid", "skid", "Register", "FlagFIFO", "HeadFIFO"]


def connect(m, source, sink, payload, *, when=1):
    """Pass ``source`` to ``sink`` with payload assignments ``payload`` (a list of
    statements), only while ``when``."""
    m.d.comb += [sink.valid.eq(source.valid & when), source.ready.eq(sink.ready & when),
                 *payload]


def join(m, sources, sinks, payload):
    """One beat to every one of ``sinks`` from one beat of every one of ``sources``."""
    for sink in sinks:
        m.d.comb += sink.valid.eq(_all([s.valid for s in sources] +
                                       [s.ready for s in sinks if s is not sink]))
    for source in sources:
        m.d.comb += source.ready.eq(_all([s.ready for s in sinks] +
                                         [s.valid for s in sources if s is not source]))
    m.d.comb += payload


def _all(values):
    result = 1
    for value in values:
        result = value & result
    return result


class _Through(wiring.Component):
    """A stream in and the same stream out.

    Parameters
    ----------
    shape : shape-like
        The stream's payload.

    Members
    -------
    input : ``In(stream.Signature(shape))``
    output : ``Out(stream.Signature(shape))``
    """

    def __init__(self, shape):
        super().__init__({"input": In(stream.Signature(shape)),
                          "output": Out(stream.Signature(shape))})


class Skid(_Through):
    """A stream whose ``ready`` towards its source is a register, at no latency: a beat
    passes straight through while the sink takes it; one offered while the sink refuses is
    held (one entry), and the source is refused until it has left. While the sink never
    refuses, the skid is a wire, so cycle models do not change; when it does, every beat
    still reaches the sink no later than without the skid (a source stalled behind the sink
    is let go a cycle sooner and held a cycle later). What the sink's ``ready`` depends on
    then ends at the skid, instead of reaching back through the source. Its parameter and
    members are :class:`_Through`'s (``shape``; ``input``, ``output``).
    """

    def elaborate(self, platform):
        m = Module()
        held, full = Signal.like(self.input.payload, name="held"), Signal()
        m.d.comb += [self.input.ready.eq(~full),
                     self.output.valid.eq(full | self.input.valid),
                     self.output.payload.eq(Mux(full, held, self.input.payload))]
        # (``held`` follows the input while empty, whatever the sink says: only ``full``
        # waits on the sink's ready)
        with m.If(full):
            with m.If(self.output.ready):
                m.d.sync += full.eq(0)
        with m.Else():
            m.d.sync += [held.eq(self.input.payload),
                         full.eq(self.input.valid & ~self.output.ready)]
        return m


class Register(_Through):
    """A stream through a register: every beat a cycle later, a beat a cycle. What the
    source's beats feed starts from flip-flops; the sink's ``ready`` still reaches the source
    (through one gate), so put a :class:`Skid` before it where that path is long. Its
    parameter and members are :class:`_Through`'s (``shape``; ``input``, ``output``).
    """

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.input.ready.eq(~self.output.valid | self.output.ready)
        with m.If(self.input.ready):
            m.d.sync += [self.output.valid.eq(self.input.valid),
                         self.output.payload.eq(self.input.payload)]
        return m


def skid(m, source, name):
    """``source`` (a submodule's output stream) behind a new :class:`Skid`, submodule
    ``name`` of ``m``; returns the skid's output."""
    m.submodules[name] = buffer = Skid(source.payload.shape())
    wiring.connect(m, source, buffer.input)
    return buffer.output


class _Count(Elaboratable):
    """``value`` plus one and minus one, in a submodule of their own: the choice between them
    (by a late push or pop) is then a mux of two values, not merged into one adder behind
    the choice."""

    def __init__(self, value):
        self.value = value
        self.up, self.down = Signal.like(value), Signal.like(value)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.up.eq(self.value + 1), self.down.eq(self.value - 1)]
        return m


def _step(m, level, push, pop, flags):
    """``level`` of a FIFO that ``push`` and ``pop`` change by one, and ``flags`` (each a
    signal and its value after a push and after a pop, tests of the level before), registers
    chosen by the late ``push`` and ``pop``."""
    m.submodules.count = count = _Count(level)
    with m.If(push & ~pop):
        m.d.sync += [level.eq(count.up), *(flag.eq(up) for flag, up, _ in flags)]
    with m.Elif(pop & ~push):
        m.d.sync += [level.eq(count.down), *(flag.eq(down) for flag, _, down in flags)]


class _RegisteredFIFO(Elaboratable, FIFOInterface):
    """A synchronous FIFO whose flags are registers (see its subclasses).

    Parameters
    ----------
    width : int
        Bits of an entry.
    depth : int
        Entries at most (1 to 4096).
    """

    def __init__(self, *, width, depth):
        check_int(f"{type(self).__name__} depth", depth, 1, 4096)
        super().__init__(width=width, depth=depth)
        self.level = Signal(range(depth + 1))


class FlagFIFO(_RegisteredFIFO):
    """A synchronous FIFO as Amaranth's ``SyncFIFO`` (its ``r_data`` read from its memory
    asynchronously; an entry written in one cycle can be read the next), whose ``r_rdy`` and
    ``w_rdy`` are registers: whether it may be read or written starts from flip-flops
    (parameters: :class:`_RegisteredFIFO`'s).
    """

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        m.d.comb += [self.r_level.eq(self.level), self.w_level.eq(self.level)]
        storage = Memory(shape=self.width, depth=depth, init=[])
        m.submodules.storage = storage
        write, read = storage.write_port(), storage.read_port(domain="comb")
        produce, consume = Signal(range(depth)), Signal(range(depth))
        push, pop = self.w_en & self.w_rdy, self.r_en & self.r_rdy
        m.d.comb += [write.addr.eq(produce), write.data.eq(self.w_data), write.en.eq(push),
                     read.addr.eq(consume), self.r_data.eq(read.data)]
        with m.If(push):
            m.d.sync += produce.eq(Mux(produce == depth - 1, 0, produce + 1))
        with m.If(pop):
            m.d.sync += consume.eq(Mux(consume == depth - 1, 0, consume + 1))
        full = Signal()
        m.d.comb += self.w_rdy.eq(~full)
        level = self.level
        _step(m, level, push, pop, [(self.r_rdy, 1, level != 1),
                                    (full, level == depth - 1, 0)])
        return m


class HeadFIFO(_RegisteredFIFO):
    """A synchronous FIFO of ``depth`` entries of ``width`` bits, as ``SyncFIFO`` (an entry
    written in one cycle can be read the next; ``w_rdy``, ``r_rdy`` and ``level`` alike),
    whose ``r_data``, ``r_rdy`` and ``w_rdy`` are registers: the head, with the entries
    behind it in a memory read ahead of the head. Writing and reading in a cycle only choose
    between values of registers and of the memory, so what decides them (a response's
    handshake, a request's) may come late in the cycle (parameters: :class:`_RegisteredFIFO`'s).
    """

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        behind = max(depth - 1, 1)  # entries behind the head
        count, many = self.level, Signal()  # many: two entries or more
        push = self.w_en & self.w_rdy
        pop = self.r_en & self.r_rdy
        m.d.comb += [self.r_level.eq(count), self.w_level.eq(count)]
        storage = Memory(shape=self.width, depth=behind, init=[])
        m.submodules.storage = storage
        write, read = storage.write_port(), storage.read_port(domain="comb")
        produce, consume = Signal(range(behind)), Signal(range(behind))
        m.d.comb += [write.addr.eq(produce), write.data.eq(self.w_data), read.addr.eq(consume)]
        # an entry goes to the head when the FIFO is empty, or holds one being read
        m.d.comb += write.en.eq(push & ~(~self.r_rdy | (~many & pop)))
        with m.If(write.en):
            m.d.sync += produce.eq(Mux(produce == behind - 1, 0, produce + 1))
        with m.If(pop):
            with m.If(many):
                m.d.sync += [self.r_data.eq(read.data),
                             consume.eq(Mux(consume == behind - 1, 0, consume + 1))]
            with m.Elif(push):
                m.d.sync += self.r_data.eq(self.w_data)
        with m.Elif(push & ~self.r_rdy):
            m.d.sync += self.r_data.eq(self.w_data)
        full = Signal()
        m.d.comb += self.w_rdy.eq(~full)
        _step(m, count, push, pop, [(self.r_rdy, 1, count != 1),
                                    (many, count != 0, count >= 3),
                                    (full, count == depth - 1, 0)])
        return m
