"""Moving data between DDR and streams over a shared AXI4 port, free of deadlock.

On a shared port (:class:`~ternforge.hdl.common.interconnect.AxiInterconnect`) a master that
stalls a channel stalls every master behind it: a read burst whose data nobody takes blocks
the read data of every later burst, and a write address whose data is not ready blocks the
write data channel. So every master here follows two rules:

- :class:`BufferedReader` requests a read burst only when its FIFO has room for all of the
  burst's words (counting those still on their way), so read data is always taken;
- :class:`BufferedWriter` offers a write burst's address only when all of the burst's words
  are in its FIFO, so write data always follows at once.

:class:`DmaCopy` is one of each, back to back.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import BurstReader, BurstWriter, axi4_read_members, axi4_write_members, forward_ports
from .checks import check_int
from .streams import FlagFIFO

__all__ = ["BufferedReader", "BufferedWriter", "DmaCopy"]


def _check_depth(depth, max_burst):
    check_int("FIFO depth", depth, max_burst, 4096)
    if depth & (depth - 1):
        raise ValueError(f"FIFO depth must be a power of two, not {depth!r}")


def _command_layout(addr_bits):
    return data.StructLayout({"address": addr_bits, "words": 32})


class BufferedReader(wiring.Component):
    """Read loads from DDR into a FIFO, requesting only what the FIFO has room for.

    Parameters
    ----------
    addr_bits, data_bits : int
        AXI widths.
    depth : int
        Words of the FIFO (a power of two, at least ``max_burst``).
    max_burst : int
        Words of a burst at most.

    Members
    -------
    commands : ``In(stream.Signature(StructLayout({"address", "words"})))``
    data : ``Out(stream.Signature(StructLayout({"data": data_bits, "last": 1})))``
        ``last`` on the final word of each load.
    m_axi_* : AXI4 read channels.
    """

    def __init__(self, *, addr_bits=32, data_bits=512, depth=256, max_burst=256):
        _check_depth(depth, max_burst)
        self._depth, self._data_bits = depth, data_bits
        # (the reader keeps the FIFO's room: its words less those in it and those requested
        # but not yet arrived)
        self._reader = BurstReader(addr_bits=addr_bits, data_bits=data_bits,
                                   max_burst=max_burst, capacity=depth)
        super().__init__({
            "commands": In(stream.Signature(_command_layout(addr_bits))),
            "data": Out(stream.Signature(data.StructLayout({"data": data_bits, "last": 1}))),
            **axi4_read_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = reader = self._reader
        m.submodules.buffer = buffer = FlagFIFO(width=self._data_bits + 1, depth=self._depth)
        wiring.connect(m, wiring.flipped(self.commands), reader.commands)
        m.d.comb += [buffer.w_data.eq(reader.data.payload), buffer.w_en.eq(reader.data.valid),
                     reader.data.ready.eq(buffer.w_rdy),
                     self.data.payload.eq(buffer.r_data), self.data.valid.eq(buffer.r_rdy),
                     buffer.r_en.eq(self.data.ready)]
        forward_ports(m, self, reader, list(axi4_read_members("m_axi", addr_bits=32,
                                                              data_bits=32)))
        m.d.comb += reader.credit.eq(buffer.r_en & buffer.r_rdy)
        return m


class BufferedWriter(wiring.Component):
    """Write loads to DDR from a FIFO, offering a burst only once all its words are in.

    Parameters
    ----------
    addr_bits, data_bits, depth, max_burst : int
        As :class:`BufferedReader`'s.

    Members
    -------
    commands : ``In(stream.Signature(StructLayout({"address", "words"})))``
    data : ``In(stream.Signature(data_bits))``
        The words of the loads, in order.
    done : ``Out(stream.Signature(1))``
        One beat per load once its writes are answered.
    m_axi_* : AXI4 write channels.
    """

    def __init__(self, *, addr_bits=32, data_bits=512, depth=256, max_burst=256):
        _check_depth(depth, max_burst)
        self._depth, self._data_bits = depth, data_bits
        self._writer = BurstWriter(addr_bits=addr_bits, data_bits=data_bits,
                                   max_burst=max_burst, buffer=depth)
        super().__init__({
            "commands": In(stream.Signature(_command_layout(addr_bits))),
            "data": In(stream.Signature(data_bits)),
            "done": Out(stream.Signature(1)),
            **axi4_write_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.writer = writer = self._writer
        m.submodules.buffer = buffer = FlagFIFO(width=self._data_bits, depth=self._depth)
        wiring.connect(m, wiring.flipped(self.commands), writer.commands)
        wiring.connect(m, writer.done, wiring.flipped(self.done))
        m.d.comb += [buffer.w_data.eq(self.data.payload), buffer.w_en.eq(self.data.valid),
                     self.data.ready.eq(buffer.w_rdy),
                     writer.data.payload.eq(buffer.r_data), writer.data.valid.eq(buffer.r_rdy),
                     buffer.r_en.eq(writer.data.ready)]
        # (the writer's address waits for its burst's words in the FIFO)
        forward_ports(m, self, writer, list(axi4_write_members("m_axi", addr_bits=32,
                                                               data_bits=32)))
        m.d.comb += [writer.stored.eq(buffer.level),
                     writer.arriving.eq(buffer.w_en & buffer.w_rdy)]
        return m


class DmaCopy(wiring.Component):
    """Copy ``words`` data words from byte address ``source`` to ``destination``.

    A :class:`BufferedReader` and a :class:`BufferedWriter` back to back: reads run ahead of
    writes by at most ``2 * depth`` words, and a copy proceeds at the slower of the two sides;
    ``done`` carries one beat per command once its last write is answered.

    Parameters
    ----------
    addr_bits, data_bits : int
        AXI widths.
    depth : int
        Words of each side's FIFO (a power of two, at least ``max_burst``, at most 4096).
    max_burst : int
        Words of a burst at most.

    Members
    -------
    commands : ``In(stream.Signature(StructLayout({"source", "destination", "words"})))``
        Word-aligned byte addresses, and words (at least 1).
    done : ``Out(stream.Signature(1))``
    m_axi_* : AXI4 read and write channels.
    """

    def __init__(self, *, addr_bits=32, data_bits=512, depth=256, max_burst=256):
        sides = {"addr_bits": addr_bits, "data_bits": data_bits, "depth": depth,
                 "max_burst": max_burst}
        self._reader = BufferedReader(**sides)
        self._writer = BufferedWriter(**sides)
        super().__init__({
            "commands": In(stream.Signature(data.StructLayout(
                {"source": addr_bits, "destination": addr_bits, "words": 32}))),
            "done": Out(stream.Signature(1)),
            **axi4_read_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
            **axi4_write_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = reader = self._reader
        m.submodules.writer = writer = self._writer
        command = self.commands.payload
        # a command goes to both sides at once, when both can take it
        m.d.comb += [
            reader.commands.payload.address.eq(command.source),
            reader.commands.payload.words.eq(command.words),
            writer.commands.payload.address.eq(command.destination),
            writer.commands.payload.words.eq(command.words),
            reader.commands.valid.eq(self.commands.valid & writer.commands.ready),
            writer.commands.valid.eq(self.commands.valid & reader.commands.ready),
            self.commands.ready.eq(reader.commands.ready & writer.commands.ready),
            writer.data.payload.eq(reader.data.payload.data),
            writer.data.valid.eq(reader.data.valid), reader.data.ready.eq(writer.data.ready),
        ]
        wiring.connect(m, writer.done, wiring.flipped(self.done))
        forward_ports(m, self, reader, list(axi4_read_members("m_axi", addr_bits=32,
                                                              data_bits=32)))
        forward_ports(m, self, writer, list(axi4_write_members("m_axi", addr_bits=32,
                                                               data_bits=32)))
        return m
