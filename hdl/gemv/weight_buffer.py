"""The URAM weight buffer and the regrouping of DDR words into weight beats.

:class:`LineAssembler` turns the AXI read data stream (``word_bits`` per word, weight beats
packed densely across words, see :mod:`ternforge.sim.models.weight_plan`) into one weight beat of
``beat_bits`` per output transfer (:class:`~ternforge.hdl.common.words.WordSplitter` does the
same for beats narrower than a word, the GEMV top's descriptors). :class:`WeightBuffer` is the
circular buffer between them
and the engine: a first-in first-out memory tagged for UltraRAM, so that DDR can run ahead of
the engine by up to ``depth`` beats.
"""

import math

from amaranth.hdl import Array, C, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.checks import check_int
from ..common.words import words_signature

__all__ = ["LineAssembler", "WeightBuffer"]


class LineAssembler(wiring.Component):
    """Regroup a stream of ``word_bits`` words into ``beat_bits`` beats (a word at most a
    beat wide), least significant bits first; ``last`` on a word ends a load and drops its
    padding bits.

    A gearbox without shifters: both widths are multiples of a *unit* (their greatest common
    divisor); a beat is ``banks`` units, one per bank, and each bank is a small LUT-RAM of
    :attr:`ROWS` units. Unit ``u`` of the stream goes to bank ``u mod banks`` in row
    ``u // banks``, so a word's units land in distinct banks (written in one cycle) and a
    complete row is a beat (read in one cycle). A load's padding (less than a word) only ever
    starts a row, which the next load overwrites.

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
        Beats, in order; a beat leaves at the earliest the cycle after its last word came in.
    """

    ROWS = 4  #: beats a bank holds; up to two complete ones wait for the consumer

    def __init__(self, *, word_bits, beat_bits):
        check_int("Beat bits", beat_bits, 1)
        check_int("Word bits", word_bits, 1, beat_bits)
        self._word_bits, self._beat_bits = word_bits, beat_bits
        super().__init__({"words": In(words_signature(word_bits)),
                          "beats": Out(stream.Signature(beat_bits))})

    @property
    def unit_bits(self) -> int:
        return math.gcd(self._word_bits, self._beat_bits)

    def elaborate(self, platform):
        m = Module()
        unit = self.unit_bits
        banks, per_word = self._beat_bits // unit, self._word_bits // unit
        column, row = Signal(range(banks)), Signal(range(self.ROWS))  # where the next unit goes
        read_row, complete = Signal(range(self.ROWS)), Signal(range(self.ROWS + 1))
        accept = self.words.valid & self.words.ready
        emit = self.beats.valid & self.beats.ready
        next_column = column + per_word
        wraps = next_column >= banks  # this word completes a row
        word_units = Array(self.words.payload.data[i * unit:(i + 1) * unit]
                           for i in range(per_word))
        rows = []
        for bank in range(banks):
            memory = Memory(shape=unit, depth=self.ROWS, init=[],
                            attrs={"ram_style": "distributed"})
            m.submodules[f"bank_{bank}"] = memory
            write, read = memory.write_port(), memory.read_port(domain="comb")
            offset = Signal(range(banks), name=f"offset_{bank}")  # the word's unit for it
            behind = column > bank if bank < banks - 1 else C(0)  # its unit is in the next row
            m.d.comb += [
                offset.eq(bank + Mux(behind, banks, 0) - column),
                write.addr.eq(row + behind), write.data.eq(word_units[offset]),
                write.en.eq(accept & (offset < per_word)),
                read.addr.eq(read_row),
            ]
            rows.append(read.data)
        m.d.comb += [
            self.beats.valid.eq(complete > 0), self.beats.payload.eq(Cat(*rows)),
            self.words.ready.eq(complete <= self.ROWS - 2),
        ]
        m.d.sync += complete.eq(complete + (accept & wraps) - emit)
        with m.If(emit):
            m.d.sync += read_row.eq(read_row + 1)
        with m.If(accept):
            m.d.sync += [column.eq(Mux(wraps, next_column - banks, next_column)),
                         row.eq(row + wraps)]
            with m.If(self.words.payload.last):
                m.d.sync += column.eq(0)  # drop the padding: the next load starts a row
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
        # (each next count from the register, chosen by the late push and fetch)
        with m.If(push & ~fetch):
            m.d.sync += stored.eq(stored + 1)
        with m.Elif(fetch & ~push):
            m.d.sync += stored.eq(stored - 1)
        with m.If(self.clear):
            m.d.sync += [write_at.eq(0), read_at.eq(0), stored.eq(0), self.beats.valid.eq(0)]
        with m.Elif(self.rewind):
            m.d.sync += [read_at.eq(0), stored.eq(self.rewind_beats)]
        return m
