"""One wide AXI4 port striped over several narrow ones: a design's bus on all of a board's HP
ports.

A Zynq UltraScale+'s PL reaches DDR through HP ports of 128 bits each (4 GB/s at 250 MHz);
a design that reads faster than one port carries needs several. :class:`AxiStriper` takes
the bursts of one AXI4 slave port ``ports`` times as wide as the HP ports (a 512-bit bus on
four 128-bit ports) and spreads them:

- **reads**: every wide word of a burst becomes a burst of ``ports`` narrow words (one wide
  word's bytes, in address order) on the next port round-robin, one request a cycle across
  the ports; each port's words are gathered into the wide word and the wide words leave in
  their bursts' order. With every port answering ``latency`` cycles after an address, wide
  words arrive one a cycle, a few cycles later than a single wide port of the same latency
  would deliver them: the units' cycle models hold unchanged on
  :meth:`MemoryTiming.striped <ternforge.hdl.common.timing.MemoryTiming.striped>`'s timing;
- **writes** (rare in a decode: activations and a KV row) go on port 0 alone: a wide burst's
  words, from the cycle after its address as a single port takes them, go into a buffer of
  one 4 KiB page (a burst never crosses one), so the writer above empties at a word a cycle,
  and leave as one narrow burst of ``ports`` times its words, whose response is the wide
  burst's; the next wide address is taken after it.

Requests must be wide-word aligned (the burst masters only move whole words). The wide port
takes ``outstanding`` read bursts before its first word; with the
:class:`~ternforge.hdl.common.interconnect.AxiInterconnect` in front, which has as many in
flight at most, it never refuses one.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO

from .axi import axi4_read_members, axi4_write_members, check_data_bits
from .checks import check_int
from .streams import HeadFIFO

__all__ = ["AxiStriper"]

_INCR = 1
_PAGE_BYTES = 4096


def _flipped(members: dict) -> dict:
    return {name: member.flip() for name, member in members.items()}


class AxiStriper(wiring.Component):
    """A wide AXI4 slave ``s_axi_*`` on ``ports`` narrow AXI4 masters ``m_axi<k>_*``.

    Parameters
    ----------
    ports : int
        Narrow ports, 1 to 8 (a power of two); the wide port is ``ports`` times as wide.
    data_bits : int
        Each narrow port's data width (128 for a Zynq UltraScale+ HP port).
    addr_bits : int
        Address width.
    outstanding : int
        Wide read bursts taken before their data (the interconnect's ``outstanding``).

    Members
    -------
    s_axi_* : the wide AXI4 port (slave: read and write)
    m_axi<k>_ar*, m_axi<k>_r* : port ``k``'s read channels
    m_axi0_aw*, m_axi0_w*, m_axi0_b* : port 0's write channels
    """

    def __init__(self, ports: int, *, data_bits: int = 128, addr_bits: int = 32,
                 outstanding: int = 16):
        check_int("HP ports", ports, 1, 8)
        if ports & (ports - 1):
            raise ValueError(f"HP ports must be a power of two, not {ports!r}")
        check_data_bits(data_bits)
        check_data_bits(data_bits * ports)
        check_int("Address bits", addr_bits, 13, 64)
        check_int("Outstanding bursts", outstanding, 1, 256)
        self.ports, self.data_bits, self.addr_bits = ports, data_bits, addr_bits
        self.wide_bits, self.outstanding = data_bits * ports, outstanding
        narrow = {"addr_bits": addr_bits, "data_bits": data_bits}
        members = {**_flipped(axi4_read_members("s_axi", addr_bits=addr_bits,
                                                data_bits=self.wide_bits)),
                   **_flipped(axi4_write_members("s_axi", addr_bits=addr_bits,
                                                 data_bits=self.wide_bits))}
        for k in range(ports):
            members.update(axi4_read_members(f"m_axi{k}", **narrow))
        members.update(axi4_write_members("m_axi0", **narrow))
        super().__init__(members)

    def _m(self, k, name):
        return getattr(self, f"m_axi{k}_{name}")

    def elaborate(self, platform):
        m = Module()
        self._read_requests(m)
        self._read_data(m)
        self._writes(m)
        return m

    def _read_requests(self, m):
        """Each wide request's words, one narrow burst a cycle on the ports in turn."""
        n, narrow_bytes = self.ports, self.data_bits // 8
        # (heads in registers: a request's words and a burst's last beat are counted against
        # flip-flops)
        m.submodules.requests = requests = HeadFIFO(width=self.addr_bits + 8,
                                                    depth=self.outstanding)
        m.submodules.lengths = lengths = HeadFIFO(width=8, depth=self.outstanding)
        m.d.comb += [
            self.s_axi_arready.eq(requests.w_rdy & lengths.w_rdy),
            requests.w_data.eq(Cat(self.s_axi_araddr, self.s_axi_arlen)),
            lengths.w_data.eq(self.s_axi_arlen),
            requests.w_en.eq(self.s_axi_arvalid & self.s_axi_arready),
            lengths.w_en.eq(requests.w_en)]
        base, length = requests.r_data[:self.addr_bits], requests.r_data[self.addr_bits:]
        word, port = Signal(8), Signal(range(max(n, 2)))
        address = Signal(self.addr_bits)
        m.d.comb += address.eq(base + word * (self.wide_bits // 8))
        taken = Signal()
        for k in range(n):
            m.d.comb += [self._m(k, "araddr").eq(address), self._m(k, "arlen").eq(n - 1),
                         self._m(k, "arsize").eq(narrow_bytes.bit_length() - 1),
                         self._m(k, "arburst").eq(_INCR),
                         self._m(k, "arvalid").eq(requests.r_rdy & (port == k))]
            with m.If(self._m(k, "arvalid") & self._m(k, "arready")):
                m.d.comb += taken.eq(1)
        with m.If(taken):
            m.d.sync += port.eq(port + 1 if n > 1 else 0)
            with m.If(word == length):
                m.d.comb += requests.r_en.eq(1)
                m.d.sync += word.eq(0)
            with m.Else():
                m.d.sync += word.eq(word + 1)
        self._lengths = lengths

    def _read_data(self, m):
        """Each port's narrow words gathered into a wide word; the wide words in turn."""
        n, lengths = self.ports, self._lengths
        words = [Signal(self.wide_bits, name=f"word{k}") for k in range(n)]
        full = [Signal(name=f"full{k}") for k in range(n)]
        errors = [Signal(2, name=f"resp{k}") for k in range(n)]
        for k in range(n):
            pieces = [Signal(self.data_bits, name=f"piece{k}_{i}") for i in range(n - 1)]
            error = Signal(2, name=f"error{k}")
            count = Signal(range(max(n, 2)), name=f"count{k}")
            completes = count == n - 1
            m.d.comb += self._m(k, "rready").eq(~full[k] | ~completes)
            with m.If(self._m(k, "rvalid") & self._m(k, "rready")):
                resp = error | self._m(k, "rresp")
                with m.If(completes):
                    m.d.sync += [words[k].eq(Cat(*pieces, self._m(k, "rdata"))),
                                 errors[k].eq(resp), full[k].eq(1), count.eq(0), error.eq(0)]
                with m.Else():
                    m.d.sync += [count.eq(count + 1), error.eq(resp)]
                    with m.Switch(count):
                        for i, piece in enumerate(pieces):
                            with m.Case(i):
                                m.d.sync += piece.eq(self._m(k, "rdata"))
        turn, beat = Signal(range(max(n, 2))), Signal(8)
        with m.Switch(turn):
            for k in range(n):
                with m.Case(k):
                    m.d.comb += [self.s_axi_rvalid.eq(full[k]), self.s_axi_rdata.eq(words[k]),
                                 self.s_axi_rresp.eq(errors[k])]
                    with m.If(self.s_axi_rvalid & self.s_axi_rready):
                        m.d.sync += full[k].eq(0)
        m.d.comb += self.s_axi_rlast.eq(beat == lengths.r_data)
        with m.If(self.s_axi_rvalid & self.s_axi_rready):
            m.d.sync += turn.eq(turn + 1 if n > 1 else 0)
            with m.If(self.s_axi_rlast):
                m.d.comb += lengths.r_en.eq(1)
                m.d.sync += beat.eq(0)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)

    def _writes(self, m):
        """A wide write burst, buffered whole, as one narrow burst on port 0."""
        n, narrow_bytes = self.ports, self.data_bits // 8
        wide_bytes = self.wide_bits // 8
        m.submodules.buffer = buffer = SyncFIFO(width=self.wide_bits + wide_bytes,
                                                depth=_PAGE_BYTES // wide_bytes)
        address, length = Signal(self.addr_bits), Signal(8)
        sent, piece = Signal(8), Signal(range(max(n, 2)))
        taking, closed = Signal(), Signal()  # a burst's words are taken, until its last
        with m.FSM(name="write"):
            with m.State("IDLE"):
                m.d.comb += self.s_axi_awready.eq(1)
                with m.If(self.s_axi_awvalid):
                    m.d.sync += [address.eq(self.s_axi_awaddr), length.eq(self.s_axi_awlen)]
                    m.next = "ADDRESS"
            with m.State("ADDRESS"):
                m.d.comb += [taking.eq(1), self.m_axi0_awvalid.eq(1),
                             self.m_axi0_awaddr.eq(address),
                             self.m_axi0_awlen.eq((length + 1) * n - 1)]
                with m.If(self.m_axi0_awready):
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += taking.eq(1)
                data = buffer.r_data[:self.wide_bits]
                strobes = buffer.r_data[self.wide_bits:]
                with m.Switch(piece):
                    for i in range(n):
                        with m.Case(i):
                            m.d.comb += [
                                self.m_axi0_wdata.eq(data.word_select(i, self.data_bits)),
                                self.m_axi0_wstrb.eq(strobes.word_select(i, narrow_bytes))]
                m.d.comb += [self.m_axi0_wvalid.eq(buffer.r_rdy),
                             self.m_axi0_wlast.eq((sent == length) & (piece == n - 1))]
                with m.If(self.m_axi0_wvalid & self.m_axi0_wready):
                    m.d.sync += piece.eq(piece + 1 if n > 1 else 0)
                    with m.If(piece == n - 1):
                        m.d.comb += buffer.r_en.eq(1)
                        m.d.sync += sent.eq(sent + 1)
                m.d.comb += [self.s_axi_bvalid.eq(self.m_axi0_bvalid),
                             self.s_axi_bresp.eq(self.m_axi0_bresp),
                             self.m_axi0_bready.eq(self.s_axi_bready)]
                with m.If(self.s_axi_bvalid & self.s_axi_bready):
                    m.d.sync += [sent.eq(0), closed.eq(0)]
                    m.next = "IDLE"
        m.d.comb += [self.m_axi0_awsize.eq(narrow_bytes.bit_length() - 1),
                     self.m_axi0_awburst.eq(_INCR),
                     buffer.w_data.eq(Cat(self.s_axi_wdata, self.s_axi_wstrb)),
                     # a burst's words only after its address, as one port takes them
                     self.s_axi_wready.eq(buffer.w_rdy & taking & ~closed),
                     buffer.w_en.eq(self.s_axi_wvalid & self.s_axi_wready)]
        with m.If(buffer.w_en & self.s_axi_wlast):
            m.d.sync += closed.eq(1)
