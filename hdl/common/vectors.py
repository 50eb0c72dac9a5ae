"""Vectors between DDR and the element streams of the units.

A unit that works element by element (the element-wise stages, the attention units) takes
and gives streams of ``{value, last}``, ``last`` on a vector's final element.
:class:`VectorReader` makes such a stream from a run of elements in DDR, and
:class:`VectorWriter` writes one back, so that any unit becomes an operation from DDR to DDR
behind the shared port (their masters are :mod:`~ternforge.hdl.common.dma`'s, free of
deadlock). Elements are packed densely in the bus's words, least significant first, from a
word-aligned address. Both meet the unit through a :class:`~ternforge.hdl.common.streams.Skid`,
so that the unit's ``ready`` and the memory side's are never one path.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import axi4_read_members, axi4_write_members, forward_ports
from .checks import check_int
from .dma import BufferedReader, BufferedWriter
from .streams import Skid
from .words import WordPacker, WordSplitter

__all__ = ["VectorReader", "VectorWriter", "element_stream"]


def element_stream(element_bits) -> stream.Signature:
    """A stream of elements, ``last`` on each vector's final one."""
    return stream.Signature(data.StructLayout({"value": element_bits, "last": 1}))


def _check(element_bits, data_bits):
    check_int("Element bits", element_bits, 1, data_bits)
    if data_bits % element_bits:
        raise ValueError(f"Element bits must divide the data bits {data_bits}, not "
                         f"{element_bits!r}")


class VectorReader(wiring.Component):
    """Read ``elements`` elements from ``address`` as vectors of ``length``.

    Parameters
    ----------
    element_bits : int
        Width of an element (dividing ``data_bits``).
    addr_bits, data_bits : int
        AXI widths.
    depth, max_burst : int
        Of the :class:`~ternforge.hdl.common.dma.BufferedReader`.

    Members
    -------
    commands : ``In(stream.Signature(StructLayout({"address", "elements", "length"})))``
        ``elements`` at least 1; ``last`` every ``length`` elements and on the final one.
    elements : ``Out(element_stream(element_bits))``
    m_axi_* : AXI4 read channels.
    """

    def __init__(self, element_bits, *, addr_bits=32, data_bits=512, depth=256,
                 max_burst=256):
        _check(element_bits, data_bits)
        self._element_bits, self._data_bits = element_bits, data_bits
        self._reader = BufferedReader(addr_bits=addr_bits, data_bits=data_bits, depth=depth,
                                      max_burst=max_burst)
        self._splitter = WordSplitter(word_bits=data_bits, beat_bits=element_bits)
        self._skid = Skid(element_stream(element_bits).members["payload"].shape)
        super().__init__({
            "commands": In(stream.Signature(data.StructLayout(
                {"address": addr_bits, "elements": 32, "length": 32}))),
            "elements": Out(element_stream(element_bits)),
            **axi4_read_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = reader = self._reader
        m.submodules.splitter = splitter = self._splitter
        m.submodules.skid = skid = self._skid
        wiring.connect(m, skid.output, wiring.flipped(self.elements))
        elements = skid.input
        per_word = self._data_bits // self._element_bits
        command = self.commands.payload
        left, length, position = Signal(32), Signal(32), Signal(32)
        # registers beside them: left != 0 (what the consumer's ready meets); the next
        # element ends its vector, and is the command's final one
        active, ending, final = Signal(), Signal(), Signal()
        # of the next element within its word (one a word: the constant 0, since a register
        # of no bits would be a zero-width wire that Verilator refuses)
        slot = Signal(range(per_word), name="slot") if per_word > 1 else Const(0, 1)
        # after a command's final element, the rest of its word is padding: dropped
        dropping = ~active & (slot != 0)
        m.d.comb += [
            reader.commands.payload.address.eq(command.address),
            reader.commands.payload.words.eq((command.elements + per_word - 1) // per_word),
            reader.commands.valid.eq(self.commands.valid & ~active & (slot == 0)),
            self.commands.ready.eq(reader.commands.ready & ~active & (slot == 0)),
        ]
        wiring.connect(m, reader.data, splitter.words)
        last = ending | final
        m.d.comb += [elements.payload.value.eq(splitter.beats.payload),
                     elements.payload.last.eq(last),
                     elements.valid.eq(splitter.beats.valid & active),
                     splitter.beats.ready.eq(Mux(active, elements.ready, dropping))]
        if per_word > 1:
            with m.If(splitter.beats.valid & splitter.beats.ready):
                m.d.sync += slot.eq(Mux(slot == per_word - 1, 0, slot + 1))
        with m.If(elements.valid & elements.ready):
            m.d.sync += [left.eq(left - 1), position.eq(Mux(last, 0, position + 1)),
                         active.eq(left != 1), final.eq(left == 2),
                         ending.eq(Mux(last, length == 1, position + 2 == length))]
        with m.If(self.commands.valid & self.commands.ready):
            m.d.sync += [left.eq(command.elements), length.eq(command.length),
                         position.eq(0), active.eq(1), final.eq(command.elements == 1),
                         ending.eq(command.length == 1)]
        forward_ports(m, self, reader, list(axi4_read_members("m_axi", addr_bits=32,
                                                              data_bits=32)))
        return m


class VectorWriter(wiring.Component):
    """Write ``elements`` elements of the stream to ``address``, densely; the final word of a
    command is padded with zeros.

    Parameters
    ----------
    element_bits, addr_bits, data_bits, depth, max_burst : int
        As :class:`VectorReader`'s.

    Members
    -------
    commands : ``In(stream.Signature(StructLayout({"address", "elements"})))``
        ``elements`` at least 1.
    elements : ``In(stream.Signature(element_bits))``
        Values only: each command takes ``elements`` of them.
    done : ``Out(stream.Signature(1))``
        One beat per command once its writes are answered.
    m_axi_* : AXI4 write channels.
    """

    def __init__(self, element_bits, *, addr_bits=32, data_bits=512, depth=256,
                 max_burst=256):
        _check(element_bits, data_bits)
        self._element_bits, self._data_bits = element_bits, data_bits
        self._writer = BufferedWriter(addr_bits=addr_bits, data_bits=data_bits, depth=depth,
                                      max_burst=max_burst)
        self._packer = WordPacker(word_bits=data_bits, beat_bits=element_bits)
        self._skid = Skid(element_bits)
        super().__init__({
            "commands": In(stream.Signature(data.StructLayout(
                {"address": addr_bits, "elements": 32}))),
            "elements": In(stream.Signature(element_bits)),
            "done": Out(stream.Signature(1)),
            **axi4_write_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.writer = writer = self._writer
        m.submodules.packer = packer = self._packer
        m.submodules.skid = skid = self._skid
        wiring.connect(m, wiring.flipped(self.elements), skid.input)
        elements = skid.output
        per_word = self._data_bits // self._element_bits
        command = self.commands.payload
        left = Signal(32)
        active = Signal()  # left != 0, a register (what the producer's valid meets)
        m.d.comb += [
            writer.commands.payload.address.eq(command.address),
            writer.commands.payload.words.eq((command.elements + per_word - 1) // per_word),
            writer.commands.valid.eq(self.commands.valid & ~active),
            self.commands.ready.eq(writer.commands.ready & ~active),
            packer.beats.payload.data.eq(elements.payload),
            packer.beats.payload.last.eq(left == 1),
            packer.beats.valid.eq(elements.valid & active),
            elements.ready.eq(packer.beats.ready & active),
            writer.data.payload.eq(packer.words.payload.data),
            writer.data.valid.eq(packer.words.valid), packer.words.ready.eq(writer.data.ready),
        ]
        with m.If(elements.valid & elements.ready):
            m.d.sync += [left.eq(left - 1), active.eq(left != 1)]
        with m.If(self.commands.valid & self.commands.ready):
            m.d.sync += [left.eq(command.elements), active.eq(1)]
        wiring.connect(m, writer.done, wiring.flipped(self.done))
        forward_ports(m, self, writer, list(axi4_write_members("m_axi", addr_bits=32,
                                                               data_bits=32)))
        return m
