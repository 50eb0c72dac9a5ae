"""A DMA copy engine: moves a run of words from one DDR address to another over AXI4."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .axi import BurstReader, BurstWriter, axi4_read_members, axi4_write_members, forward_ports
from .checks import check_int

__all__ = ["DmaCopy"]


class DmaCopy(wiring.Component):
    """Copy ``words`` data words from byte address ``source`` to ``destination``.

    Reads run ahead of writes by at most ``depth`` words (a FIFO between a
    :class:`~ternforge.hdl.common.axi.BurstReader` and a
    :class:`~ternforge.hdl.common.axi.BurstWriter`), so a copy proceeds at the slower of the
    two sides; ``done`` carries one beat per command once its last write is answered.

    On a shared port (:class:`~ternforge.hdl.common.interconnect.AxiInterconnect`) a master
    that stalls a channel stalls every master behind it, so the engine follows the two rules
    that keep a shared AXI port free of deadlock: a read burst is requested only when the
    FIFO has room for all of its words (counting those still on their way), and a write
    burst's address only when all of its words are in the FIFO.

    Parameters
    ----------
    addr_bits, data_bits : int
        AXI widths.
    depth : int
        Words of the FIFO between reads and writes (a power of two, 512 to 4096: two whole
        bursts, so that while a write waits for its burst's words there is always room to
        read more).

    Members
    -------
    commands : ``In(stream.Signature(StructLayout({"source", "destination", "words"})))``
        Word-aligned byte addresses, and words (at least 1).
    done : ``Out(stream.Signature(1))``
    m_axi_* : AXI4 read and write channels.
    """

    def __init__(self, *, addr_bits=32, data_bits=512, depth=512):
        check_int("FIFO depth", depth, 512, 4096)
        if depth & (depth - 1):
            raise ValueError(f"FIFO depth must be a power of two, not {depth!r}")
        self._addr_bits, self._data_bits, self._depth = addr_bits, data_bits, depth
        self._reader = BurstReader(addr_bits=addr_bits, data_bits=data_bits)
        self._writer = BurstWriter(addr_bits=addr_bits, data_bits=data_bits)
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
        m.submodules.buffer = buffer = SyncFIFO(width=self._data_bits, depth=self._depth)
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
            buffer.w_data.eq(reader.data.payload.data), buffer.w_en.eq(reader.data.valid),
            reader.data.ready.eq(buffer.w_rdy),
            writer.data.payload.eq(buffer.r_data), writer.data.valid.eq(buffer.r_rdy),
            buffer.r_en.eq(writer.data.ready),
        ]
        wiring.connect(m, writer.done, wiring.flipped(self.done))
        self._gate_reads(m, reader, buffer)
        self._gate_writes(m, writer, buffer)
        return m

    def _gate_reads(self, m, reader, buffer):
        """Request a read burst only when the FIFO has room for it: ``reserved`` counts the
        words in the FIFO and those requested but not yet arrived."""
        reserved = Signal(range(self._depth + 1))
        words = reader.m_axi_arlen + 1
        room = reserved + words <= self._depth
        names = [n for n in axi4_read_members("m_axi", addr_bits=32, data_bits=32)
                 if n not in ("m_axi_arvalid", "m_axi_arready")]
        forward_ports(m, self, reader, names)
        m.d.comb += [self.m_axi_arvalid.eq(reader.m_axi_arvalid & room),
                     reader.m_axi_arready.eq(self.m_axi_arready & room)]
        requested = Mux(self.m_axi_arvalid & self.m_axi_arready, words, 0)
        m.d.sync += reserved.eq(reserved + requested - (buffer.r_en & buffer.r_rdy))

    def _gate_writes(self, m, writer, buffer):
        """Offer a write burst's address only when all of its words are in the FIFO."""
        ready = buffer.level >= writer.m_axi_awlen + 1
        names = [n for n in axi4_write_members("m_axi", addr_bits=32, data_bits=32)
                 if n not in ("m_axi_awvalid", "m_axi_awready")]
        forward_ports(m, self, writer, names)
        m.d.comb += [self.m_axi_awvalid.eq(writer.m_axi_awvalid & ready),
                     writer.m_axi_awready.eq(self.m_axi_awready & ready)]
