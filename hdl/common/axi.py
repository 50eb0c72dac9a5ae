"""AXI4 read and write masters and an AXI4-Lite register file, with Vivado-style flat port
names.

Top-level ports are flat members (``m_axi_araddr``, ``s_axil_wdata``, ``s_axis_acts_tdata``)
so that the generated Verilog drops into a Vivado block design and its interfaces are
inferred by name.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .checks import check_int

__all__ = ["AXI_DATA_WIDTHS", "axi4_read_members", "axi4_write_members", "axi4_lite_members", "axis_members",
           "check_data_bits", "forward_ports", "BurstReader", "BurstWriter", "RegisterFile"]


def axi4_read_members(prefix, *, addr_bits, data_bits):
    """Members of an AXI4 read-only master port (flip for a slave)."""
    return {f"{prefix}_araddr": Out(addr_bits), f"{prefix}_arlen": Out(8),
            f"{prefix}_arsize": Out(3), f"{prefix}_arburst": Out(2),
            f"{prefix}_arvalid": Out(1), f"{prefix}_arready": In(1),
            f"{prefix}_rdata": In(data_bits), f"{prefix}_rresp": In(2),
            f"{prefix}_rlast": In(1), f"{prefix}_rvalid": In(1), f"{prefix}_rready": Out(1)}


def axi4_write_members(prefix, *, addr_bits, data_bits):
    """Members of an AXI4 write-only master port."""
    return {f"{prefix}_awaddr": Out(addr_bits), f"{prefix}_awlen": Out(8),
            f"{prefix}_awsize": Out(3), f"{prefix}_awburst": Out(2),
            f"{prefix}_awvalid": Out(1), f"{prefix}_awready": In(1),
            f"{prefix}_wdata": Out(data_bits), f"{prefix}_wstrb": Out(data_bits // 8),
            f"{prefix}_wlast": Out(1), f"{prefix}_wvalid": Out(1), f"{prefix}_wready": In(1),
            f"{prefix}_bresp": In(2), f"{prefix}_bvalid": In(1), f"{prefix}_bready": Out(1)}


#: the AXI data widths the masters support
AXI_DATA_WIDTHS = (32, 64, 128, 256, 512, 1024)


def check_data_bits(data_bits) -> None:
    """Refuse an AXI data width other than a power of two from 32 to 1024."""
    if data_bits not in AXI_DATA_WIDTHS:
        raise ValueError(f"Data bits must be a power of two from 32 to 1024, "
                         f"not {data_bits!r}")


def forward_ports(m, outer, inner, names) -> None:
    """Connect the flat port members ``names`` of the component ``outer`` to the same-named
    members of ``inner``, a component inside it: inputs inwards, outputs outwards."""
    for name in names:
        port, inner_port = getattr(outer, name), getattr(inner, name)
        m.d.comb += (inner_port.eq(port) if outer.signature.members[name].flow == In
                     else port.eq(inner_port))


def _burst_length(m, address, to_move, word_bytes, name, max_burst=256):
    """Words of the next burst: at most ``max_burst`` and not across a 4 KiB boundary."""
    shift = (word_bytes - 1).bit_length()
    to_boundary = (4096 - (address & 4095)) >> shift
    length, burst = Signal(9, name=f"{name}_length"), Signal(9, name=f"{name}_burst")
    m.d.comb += [length.eq(Mux(to_move < max_burst, to_move, max_burst)),
                 burst.eq(Mux(length < to_boundary, length, to_boundary))]
    return burst


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
    """Read the loads of a command stream as AXI4 INCR bursts.

    Each command reads ``words`` data words from byte address ``address``. Bursts are at most
    ``max_burst`` words and never cross a 4 KiB boundary; at most ``outstanding`` bursts are
    in flight.
    A command is accepted once every burst of the previous one is requested, so the bursts of
    consecutive commands follow each other with one idle cycle on the address channel. Read
    data is passed on in order, with ``last`` on the final word of each command.

    Parameters
    ----------
    addr_bits, data_bits : int
        AXI address and data widths.
    outstanding : int
        Bursts in flight at most.
    max_burst : int
        Words of a burst at most (1 to 256).

    Members
    -------
    commands : ``In(stream.Signature(StructLayout({"address": addr_bits, "words": 32})))``
        Loads to read; ``address`` is aligned to a data word.
    data : ``Out(stream.Signature(StructLayout({"data": data_bits, "last": 1})))``
        Read data towards the consumer.
    m_axi_* :
        The AXI4 read channels.
    """

    def __init__(self, *, addr_bits=32, data_bits=512, outstanding=8, max_burst=256):
        check_int("Address bits", addr_bits, 13, 64)
        check_data_bits(data_bits)
        check_int("Outstanding bursts", outstanding, 1, 256)
        check_int("Burst words", max_burst, 1, 256)
        self._addr_bits, self._data_bits, self._outstanding = addr_bits, data_bits, outstanding
        self._max_burst = max_burst
        super().__init__({
            "commands": In(stream.Signature(
                data.StructLayout({"address": addr_bits, "words": 32}))),
            **axi4_read_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
            "data": Out(stream.Signature(data.StructLayout({"data": data_bits, "last": 1}))),
        })

    @property
    def word_bytes(self) -> int:
        return self._data_bits // 8

    def elaborate(self, platform):
        m = Module()
        # one entry per burst in flight: is it the last burst of its command?
        m.submodules.finals = finals = SyncFIFO(width=1, depth=self._outstanding)
        address, to_request = Signal(self._addr_bits), Signal(32)
        shift = (self.word_bytes - 1).bit_length()
        burst = _burst_length(m, address, to_request, self.word_bytes, "read", self._max_burst)
        m.d.comb += [
            self.commands.ready.eq(to_request == 0),
            self.m_axi_arlen.eq(burst - 1),
            self.m_axi_araddr.eq(address), self.m_axi_arsize.eq(shift),
            self.m_axi_arburst.eq(1),
            self.m_axi_arvalid.eq((to_request > 0) & finals.w_rdy),
            finals.w_en.eq(self.m_axi_arvalid & self.m_axi_arready),
            finals.w_data.eq(burst == to_request),
            self.data.payload.data.eq(self.m_axi_rdata),
            self.data.payload.last.eq(self.m_axi_rlast & finals.r_data),
            self.data.valid.eq(self.m_axi_rvalid), self.m_axi_rready.eq(self.data.ready),
            finals.r_en.eq(self.m_axi_rvalid & self.m_axi_rready & self.m_axi_rlast),
        ]
        with m.If(finals.w_en):
            m.d.sync += [address.eq(address + (burst << shift)),
                         to_request.eq(to_request - burst)]
        with m.If(self.commands.valid & self.commands.ready):
            m.d.sync += [address.eq(self.commands.payload.address),
                         to_request.eq(self.commands.payload.words)]
        return m


class BurstWriter(wiring.Component):
    """Write the loads of a command stream as AXI4 INCR bursts.

    Each command writes ``words`` data words, taken from ``data``, from byte address
    ``address``. Bursts are at most ``max_burst`` words and never cross a 4 KiB boundary; a burst's
    data follows its address, and the next address waits for the previous burst's last
    word. ``done`` carries one beat per command once every one of its bursts is answered.

    Parameters
    ----------
    addr_bits, data_bits : int
        AXI address and data widths.
    max_burst : int
        Words of a burst at most (1 to 256).

    Members
    -------
    commands : ``In(stream.Signature(StructLayout({"address": addr_bits, "words": 32})))``
    data : ``In(stream.Signature(data_bits))``
        The words to write, in order (all bytes written).
    done : ``Out(stream.Signature(1))``
        A command's writes are complete (its responses are in).
    m_axi_* :
        The AXI4 write channels.
    """

    def __init__(self, *, addr_bits=32, data_bits=512, max_burst=256):
        check_int("Address bits", addr_bits, 13, 64)
        check_data_bits(data_bits)
        check_int("Burst words", max_burst, 1, 256)
        self._addr_bits, self._data_bits, self._max_burst = addr_bits, data_bits, max_burst
        super().__init__({
            "commands": In(stream.Signature(
                data.StructLayout({"address": addr_bits, "words": 32}))),
            "data": In(stream.Signature(data_bits)),
            "done": Out(stream.Signature(1)),
            **axi4_write_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
        })

    def elaborate(self, platform):
        m = Module()
        word_bytes = self._data_bits // 8
        address, to_write = Signal(self._addr_bits), Signal(32)
        in_burst, answers = Signal(9), Signal(32)
        burst = _burst_length(m, address, to_write, word_bytes, "write", self._max_burst)
        m.d.comb += [self.m_axi_awaddr.eq(address), self.m_axi_awlen.eq(burst - 1),
                     self.m_axi_awsize.eq((word_bytes - 1).bit_length()),
                     self.m_axi_awburst.eq(1), self.m_axi_wdata.eq(self.data.payload),
                     self.m_axi_wstrb.eq((1 << word_bytes) - 1),
                     self.m_axi_wlast.eq(in_burst == 1), self.m_axi_bready.eq(1)]
        with m.If(self.m_axi_bvalid):
            m.d.sync += answers.eq(answers - 1)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.commands.ready.eq(1)
                with m.If(self.commands.valid):
                    m.d.sync += [address.eq(self.commands.payload.address),
                                 to_write.eq(self.commands.payload.words)]
                    m.next = "ADDRESS"
            with m.State("ADDRESS"):
                m.d.comb += self.m_axi_awvalid.eq(1)
                with m.If(self.m_axi_awready):
                    m.d.sync += [in_burst.eq(burst), to_write.eq(to_write - burst),
                                 address.eq(address + burst * word_bytes),
                                 answers.eq(answers + 1 - self.m_axi_bvalid)]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [self.m_axi_wvalid.eq(self.data.valid),
                             self.data.ready.eq(self.m_axi_wready)]
                with m.If(self.data.valid & self.m_axi_wready):
                    m.d.sync += in_burst.eq(in_burst - 1)
                    with m.If(in_burst == 1):
                        m.next = "ADDRESS"
                        with m.If(to_write == 0):
                            m.next = "ANSWERS"
            with m.State("ANSWERS"):
                with m.If(answers == 0):
                    m.d.comb += self.done.valid.eq(1)
                    with m.If(self.done.ready):
                        m.next = "IDLE"
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
