"""The URAM weight buffer and the regrouping of DDR words into weight beats.

:class:`LineAssembler` turns the AXI read data stream (``word_bits`` per word, weight beats
packed densely across words, see :mod:`ternforge.gen.weight_plan`) into one weight beat of
``beat_bits`` per output transfer. :class:`WeightBuffer` is the circular buffer between them
and the engine: a first-in first-out memory tagged for UltraRAM, so that DDR can run ahead of
the engine by up to ``depth`` beats.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .parameters import check_int

__all__ = ["LineAssembler", "WeightBuffer"]


class LineAssembler(wiring.Component):
    """Regroup a stream of ``word_bits`` words into ``beat_bits`` beats, least significant
    bits first; ``last`` on a word ends a load and drops its padding bits.

    When a word is at most a beat wide, a load's padding (less than a word) is never mistaken
    for a beat. Wider words may carry whole beats of padding: those come out as beats, and the
    consumer, which knows how many beats a load holds, drops them.

    Parameters
    ----------
    word_bits : int
        Width of the incoming words (the AXI read data bus).
    beat_bits : int
        Width of an outgoing beat.

    Members
    -------
    words : ``In(stream.Signature(StructLayout({"data": word_bits, "last": 1})))``
        Words from memory.
    beats : ``Out(stream.Signature(beat_bits))``
        Weight beats, in order.
    """

    def __init__(self, *, word_bits, beat_bits):
        check_int("Beat bits", beat_bits, 1)
        check_int("Word bits", word_bits, 1)
        self._word_bits, self._beat_bits = word_bits, beat_bits
        super().__init__({
            "words": In(stream.Signature(data.StructLayout({"data": word_bits, "last": 1}))),
            "beats": Out(stream.Signature(beat_bits)),
        })

    word_bits = property(lambda self: self._word_bits)
    beat_bits = property(lambda self: self._beat_bits)

    def elaborate(self, platform):
        m = Module()
        width = self._word_bits + self._beat_bits
        buffer = Signal(width)
        fill = Signal(range(width + 1))
        draining = Signal()  # the last word of a load is in: no more bits follow
        emit, drop = Signal(), Signal()
        kept_buffer, kept_fill = Signal(width), Signal(range(width + 1))
        m.d.comb += [
            self.beats.valid.eq(fill >= self._beat_bits),
            self.beats.payload.eq(buffer[:self._beat_bits]),
            emit.eq(self.beats.valid & self.beats.ready),
            drop.eq(draining & (fill - emit * self._beat_bits < self._beat_bits)),
            kept_buffer.eq(Mux(drop, 0, Mux(emit, buffer >> self._beat_bits, buffer))),
            kept_fill.eq(Mux(drop, 0, Mux(emit, fill - self._beat_bits, fill))),
            # the next load's first word may enter as the last one's padding is dropped
            self.words.ready.eq((~draining | drop) & (kept_fill + self._word_bits <= width)),
        ]
        with m.If(self.words.valid & self.words.ready):
            m.d.sync += [
                buffer.eq(kept_buffer | (self.words.payload.data << kept_fill)),
                fill.eq(kept_fill + self._word_bits),
                draining.eq(self.words.payload.last),
            ]
        with m.Elif(drop):
            m.d.sync += [buffer.eq(0), fill.eq(0), draining.eq(0)]  # drop the padding
        with m.Else():
            m.d.sync += [buffer.eq(kept_buffer), fill.eq(kept_fill)]
        return m


class WeightBuffer(wiring.Component):
    """First-in first-out buffer of weight beats in UltraRAM.

    A beat written in cycle ``t`` can leave in cycle ``t + 2`` (:attr:`latency`); afterwards
    one beat leaves per cycle while the engine is ready.

    Parameters
    ----------
    beat_bits : int
        Width of a beat.
    depth : int
        Beats held (4,096 per URAM288 column).

    Members
    -------
    lines : ``In(stream.Signature(beat_bits))``
        Beats from the line assembler.
    beats : ``Out(stream.Signature(beat_bits))``
        Beats to the engine's weight stream.
    level : ``Out(range(depth + 1))``
        Beats held, including the one on ``beats``.
    clear : ``In(1)``
        Empty the buffer (start of a job).
    rewind, rewind_beats : ``In(1)``, ``In(range(depth + 1))``
        Replay the first ``rewind_beats`` beats written since ``clear`` (a layer resident in
        the buffer is read again for the next token tile). Only when ``beats`` is empty and
        no more than ``depth`` beats were written.
    """

    latency = 2

    def __init__(self, *, beat_bits, depth=4096):
        check_int("Beat bits", beat_bits, 1)
        check_int("Depth", depth, 2)
        self._beat_bits, self._depth = beat_bits, depth
        super().__init__({
            "lines": In(stream.Signature(beat_bits)),
            "beats": Out(stream.Signature(beat_bits)),
            "level": Out(range(depth + 1)),
            "clear": In(1), "rewind": In(1), "rewind_beats": In(range(depth + 1)),
        })

    beat_bits = property(lambda self: self._beat_bits)
    depth = property(lambda self: self._depth)

    @property
    def uram_count(self) -> int:
        """URAM288 (4,096 x 72) this buffer occupies when mapped to UltraRAM."""
        return -(-self._beat_bits // 72) * -(-self._depth // 4096)

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = memory = Memory(shape=unsigned(self._beat_bits),
                                               depth=self._depth, init=[],
                                               attrs={"ram_style": "ultra"})
        write, read = memory.write_port(), memory.read_port()
        write_at, read_at = Signal(range(self._depth)), Signal(range(self._depth))
        stored = Signal(range(self._depth + 1))  # written, not yet fetched
        fetch, push = Signal(), Signal()
        consume = self.beats.valid & self.beats.ready
        m.d.comb += [
            self.level.eq(stored + self.beats.valid),
            self.lines.ready.eq(self.level < self._depth),
            push.eq(self.lines.valid & self.lines.ready),
            write.addr.eq(write_at), write.data.eq(self.lines.payload), write.en.eq(push),
            fetch.eq((stored > 0) & (~self.beats.valid | consume)),
            read.addr.eq(read_at), read.en.eq(fetch),
            self.beats.payload.eq(read.data),
        ]
        last = self._depth - 1
        with m.If(push):
            m.d.sync += write_at.eq(Mux(write_at == last, 0, write_at + 1))
        with m.If(fetch):
            m.d.sync += [read_at.eq(Mux(read_at == last, 0, read_at + 1)),
                         self.beats.valid.eq(1)]
        with m.Elif(consume):
            m.d.sync += self.beats.valid.eq(0)
        m.d.sync += stored.eq(stored + push - fetch)
        with m.If(self.clear):
            m.d.sync += [write_at.eq(0), read_at.eq(0), stored.eq(0), self.beats.valid.eq(0)]
        with m.Elif(self.rewind):
            m.d.sync += [read_at.eq(0), stored.eq(self.rewind_beats)]
        return m
