"""Words of a bus and the narrower items they carry: splitting words into items and packing
items into words, least significant first."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .checks import check_int

__all__ = ["words_signature", "WordSplitter", "WordPacker"]


def words_signature(word_bits):
    """A stream of bus words, ``last`` on the final word of a load."""
    return stream.Signature(data.StructLayout({"data": word_bits, "last": 1}))


def _check_widths(word_bits, beat_bits):
    check_int("Beat bits", beat_bits, 1)
    if not isinstance(word_bits, int) or word_bits < beat_bits or word_bits % beat_bits:
        raise ValueError(f"Word bits must be a multiple of the beat's {beat_bits}, "
                         f"not {word_bits!r}")


class WordSplitter(wiring.Component):
    """Split each ``word_bits`` word into ``word_bits / beat_bits`` beats, least significant
    first; every beat of a word comes out, so the consumer (which knows a load's length)
    drops a load's padding.

    Parameters
    ----------
    word_bits : int
        Width of the incoming words, a multiple of ``beat_bits``.
    beat_bits : int
        Width of an outgoing beat.

    Members
    -------
    words : ``In(stream.Signature(StructLayout({"data": word_bits, "last": 1})))``
        Words from memory (``last`` is not needed).
    beats : ``Out(stream.Signature(beat_bits))``
        Beats, in order.
    """

    def __init__(self, *, word_bits, beat_bits):
        _check_widths(word_bits, beat_bits)
        self._word_bits, self._beat_bits = word_bits, beat_bits
        super().__init__({"words": In(words_signature(word_bits)),
                          "beats": Out(stream.Signature(beat_bits))})

    def elaborate(self, platform):
        m = Module()
        count = self._word_bits // self._beat_bits
        word, full = Signal(self._word_bits), Signal()
        slot = _slot(count)
        emit = self.beats.valid & self.beats.ready
        last_slot = slot == count - 1
        m.d.comb += [
            self.beats.valid.eq(full),
            self.beats.payload.eq(word.word_select(slot, self._beat_bits) if count > 1
                                  else word),
            self.words.ready.eq(~full | (emit & last_slot)),
        ]
        with m.If(emit):
            m.d.sync += full.eq(~last_slot)
            if count > 1:
                m.d.sync += slot.eq(Mux(last_slot, 0, slot + 1))
        with m.If(self.words.valid & self.words.ready):
            m.d.sync += [word.eq(self.words.payload.data), full.eq(1)]
        return m


class WordPacker(wiring.Component):
    """Pack beats of ``beat_bits`` into ``word_bits`` words, least significant first;
    ``last`` on a beat ends a load: its word leaves at once, padded with zeros.

    Parameters
    ----------
    word_bits : int
        Width of the outgoing words, a multiple of ``beat_bits``.
    beat_bits : int
        Width of an incoming beat.

    Members
    -------
    beats : ``In(stream.Signature(StructLayout({"data": beat_bits, "last": 1})))``
    words : ``Out(words_signature(word_bits))``
        ``last`` on a load's final word.
    """

    def __init__(self, *, word_bits, beat_bits):
        _check_widths(word_bits, beat_bits)
        self._word_bits, self._beat_bits = word_bits, beat_bits
        super().__init__({
            "beats": In(stream.Signature(data.StructLayout({"data": beat_bits, "last": 1}))),
            "words": Out(words_signature(word_bits))})

    def elaborate(self, platform):
        m = Module()
        count = self._word_bits // self._beat_bits
        word, full = Signal(self._word_bits), Signal()
        slot = _slot(count)
        ends = Signal()
        take = self.beats.valid & self.beats.ready
        m.d.comb += [self.words.valid.eq(full), self.words.payload.data.eq(word),
                     self.words.payload.last.eq(ends),
                     self.beats.ready.eq(~full | self.words.ready)]
        with m.If(self.words.valid & self.words.ready):
            m.d.sync += full.eq(0)
        with m.If(take):
            closes = (slot == count - 1) | self.beats.payload.last
            # lane i: the new beat in its slot, the word's earlier beats below it, zeros above
            lanes = [Mux(slot == i, self.beats.payload.data,
                         Mux(slot > i, word.word_select(i, self._beat_bits), 0)
                         if i < count - 1 else 0)
                     for i in range(count)]
            m.d.sync += [word.eq(Cat(*lanes)), full.eq(closes),
                         ends.eq(self.beats.payload.last)]
            if count > 1:
                m.d.sync += slot.eq(Mux(closes, 0, slot + 1))
        return m


def _slot(count):
    """The register of the slot of a word's ``count`` beats, or (one beat a word) the
    constant slot 0: a register of no bits would be a zero-width wire in the Verilog, which
    Verilator refuses."""
    return Signal(range(count), name="slot") if count > 1 else Const(0, 1)

