"""AXI4 read master and AXI4-Lite register file, with Vivado-style flat port names.

Top-level ports are flat members (``m_axi_araddr``, ``s_axil_wdata``, ``s_axis_acts_tdata``)
so that the generated Verilog drops into a Vivado block design and its interfaces are
inferred by name.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .parameters import check_int

__all__ = ["axi4_read_members", "axi4_lite_members", "axis_members", "BurstReader",
           "RegisterFile"]


def axi4_read_members(prefix, *, addr_bits, data_bits):
    """Members of an AXI4 read-only master port (flip for a slave)."""
    return {f"{prefix}_araddr": Out(addr_bits), f"{prefix}_arlen": Out(8),
            f"{prefix}_arsize": Out(3), f"{prefix}_arburst": Out(2),
            f"{prefix}_arvalid": Out(1), f"{prefix}_arready": In(1),
            f"{prefix}_rdata": In(data_bits), f"{prefix}_rresp": In(2),
            f"{prefix}_rlast": In(1), f"{prefix}_rvalid": In(1), f"{prefix}_rready": Out(1)}


def axi4_lite_members(prefix, *, addr_bits=8):
    """Members of an AXI4-Lite slave port with 32-bit data."""
    return {f"{prefix}_awaddr": In(addr_bits), f"{prefix}_awvalid": In(1),
            f"{prefix}_awready": Out(1), f"{prefix}_wdata": In(32), f"{prefix}_wstrb": In(4),
            f"{prefix}_wvalid": In(1), f"{prefix}_wready": Out(1), f"{prefix}_bresp": Out(2),
            f"{prefix}_bvalid": Out(1), f"{prefix}_bready": In(1),
            f"{prefix}_araddr": In(addr_bits), f"{prefix}_arvalid": In(1),
            f"{prefix}_arready": Out(1), f"{prefix}_rdata": Out(32), f"{prefix}_rresp": Out(2),
            f"{prefix}_rvalid": Out(1), f"{prefix}_rready": In(1)}


def axis_members(prefix, *, data_bits, direction):
    """Members of an AXI4-Stream port; ``direction`` is ``"in"`` (slave) or ``"out"``."""
    forward, backward = (In, Out) if direction == "in" else (Out, In)
    return {f"{prefix}_tdata": forward(data_bits), f"{prefix}_tlast": forward(1),
            f"{prefix}_tvalid": forward(1), f"{prefix}_tready": backward(1)}


class BurstReader(wiring.Component):
    """Read ``words`` data words from ``base`` as AXI4 INCR bursts.

    Bursts are at most 256 words and never cross a 4 KiB boundary; at most ``outstanding``
    bursts are in flight. Read data is passed on in order, with ``last`` on the final word.

    Parameters
    ----------
    addr_bits, data_bits : int
        AXI address and data widths.
    outstanding : int
        Bursts in flight at most.

    Members
    -------
    start : ``In(1)``
        Pulse: begin reading ``base`` / ``words`` (ignored while ``busy``).
    base : ``In(addr_bits)``
        Byte address, aligned to a data word.
    words : ``In(32)``
        Data words to read.
    busy : ``Out(1)``
        A read is in progress.
    m_axi_* :
        The AXI4 read channels.
    data, data_last, data_valid : ``Out``
        Read data towards the consumer; ``data_ready`` ``In(1)`` is its backpressure.
    """

    def __init__(self, *, addr_bits=32, data_bits=512, outstanding=8):
        check_int("Address bits", addr_bits, 13, 64)
        if data_bits not in (32, 64, 128, 256, 512, 1024):
            raise ValueError(f"Data bits must be a power of two from 32 to 1024, "
                             f"not {data_bits!r}")
        check_int("Outstanding bursts", outstanding, 1, 256)
        self._addr_bits, self._data_bits, self._outstanding = addr_bits, data_bits, outstanding
        super().__init__({
            "start": In(1), "base": In(addr_bits), "words": In(32), "busy": Out(1),
            **axi4_read_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
            "data": Out(data_bits), "data_last": Out(1), "data_valid": Out(1),
            "data_ready": In(1),
        })

    @property
    def word_bytes(self) -> int:
        return self._data_bits // 8

    def elaborate(self, platform):
        m = Module()
        address = Signal(self._addr_bits)
        to_request, to_receive = Signal(32), Signal(32)
        in_flight = Signal(range(self._outstanding + 1))
        shift = (self.word_bytes - 1).bit_length()
        to_boundary = (4096 - (address & 4095)) >> shift
        length = Signal(9)
        m.d.comb += [
            length.eq(Mux(to_request < 256, to_request, 256)),
            self.m_axi_arlen.eq(Mux(length < to_boundary, length, to_boundary) - 1),
            self.m_axi_araddr.eq(address), self.m_axi_arsize.eq(shift),
            self.m_axi_arburst.eq(1),
            self.m_axi_arvalid.eq((to_request > 0) & (in_flight < self._outstanding)),
            self.busy.eq(to_receive > 0),
            self.data.eq(self.m_axi_rdata), self.data_valid.eq(self.m_axi_rvalid),
            self.data_last.eq(to_receive == 1), self.m_axi_rready.eq(self.data_ready),
        ]
        requested = self.m_axi_arvalid & self.m_axi_arready
        burst_done = self.m_axi_rvalid & self.m_axi_rready & self.m_axi_rlast
        with m.If(requested):
            burst = self.m_axi_arlen + 1
            m.d.sync += [address.eq(address + (burst << shift)),
                         to_request.eq(to_request - burst)]
        m.d.sync += in_flight.eq(in_flight + requested - burst_done)
        with m.If(self.m_axi_rvalid & self.m_axi_rready):
            m.d.sync += to_receive.eq(to_receive - 1)
        with m.If(self.start & ~self.busy):
            m.d.sync += [address.eq(self.base), to_request.eq(self.words),
                         to_receive.eq(self.words)]
        return m


class RegisterFile(wiring.Component):
    """AXI4-Lite slave over 32-bit registers, one write and one read at a time.

    Parameters
    ----------
    names : sequence of str
        Register names, at byte offsets 0, 4, 8, ...
    read_only : set of str
        Registers the bus cannot write (driven through ``inputs``).

    Members
    -------
    s_axil_* :
        The AXI4-Lite channels.
    <name> : ``Out(32)``
        Each writable register's value.
    <name>_in : ``In(32)``
        Each read-only register's value.
    <name>_written : ``Out(1)``
        Pulses the cycle after a bus write to a writable register.
    """

    def __init__(self, *, names, read_only=()):
        self._names, self._read_only = list(names), set(read_only)
        members = axi4_lite_members("s_axil")
        for name in self._names:
            if name in self._read_only:
                members[f"{name}_in"] = In(32)
            else:
                members[name] = Out(32)
                members[f"{name}_written"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        index_bits = max(1, (len(self._names) - 1).bit_length())
        write_index = self.s_axil_awaddr[2:2 + index_bits]
        writing = self.s_axil_awvalid & self.s_axil_wvalid & ~self.s_axil_bvalid
        m.d.comb += [self.s_axil_awready.eq(writing), self.s_axil_wready.eq(writing)]
        for name in self._names:
            if name not in self._read_only:
                m.d.sync += getattr(self, f"{name}_written").eq(0)
        with m.If(writing):
            m.d.sync += self.s_axil_bvalid.eq(1)
            for index, name in enumerate(self._names):
                if name not in self._read_only:
                    with m.If(write_index == index):
                        m.d.sync += [getattr(self, name).eq(self.s_axil_wdata),
                                     getattr(self, f"{name}_written").eq(1)]
        with m.Elif(self.s_axil_bready):
            m.d.sync += self.s_axil_bvalid.eq(0)
        reading = self.s_axil_arvalid & ~self.s_axil_rvalid
        m.d.comb += self.s_axil_arready.eq(reading)
        with m.If(reading):
            m.d.sync += self.s_axil_rvalid.eq(1)
            read_index = self.s_axil_araddr[2:2 + index_bits]
            with m.Switch(read_index):
                for index, name in enumerate(self._names):
                    with m.Case(index):
                        value = getattr(self, f"{name}_in" if name in self._read_only else name)
                        m.d.sync += self.s_axil_rdata.eq(value)
        with m.Elif(self.s_axil_rready):
            m.d.sync += self.s_axil_rvalid.eq(0)
        return m
