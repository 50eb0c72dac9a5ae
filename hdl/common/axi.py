"""AXI4 read and write masters and an AXI4-Lite register file, with Vivado-style flat port
names.

Top-level ports are flat members (``m_axi_araddr``, ``s_axil_wdata``, ``s_axis_acts_tdata``)
so that the generated Verilog drops into a Vivado block design and its interfaces are
inferred by name.
"""

from amaranth.hdl import C, Elaboratable, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .checks import check_int
from .streams import FlagFIFO

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


_PAGE_BYTES = 4096


class _Bursts(Elaboratable):
    """The bursts of a load, each computed the cycle before it is offered, so that a burst's
    length, address and whether it is the load's last are registers when its request is
    made (a request's address channel, and the room checks that gate it, then start from
    flip-flops instead of the subtractions and comparisons that size the burst).

    A load is taken with ``load`` (its ``load_words``, at least 1, from ``load_address``,
    aligned to a word); the cycle after, ``prepare`` is high and the first burst is computed;
    from the cycle after that the bursts are offered one at a time (``offered``), the next
    computed in the cycle the current one is taken (``advance``). Bursts are at most
    ``max_burst`` words and never cross a 4 KiB boundary.

    Only registers feed the next burst: besides the offered burst (``address``, ``words``,
    ``final``), the words left after it (``rest``), the words to the 4 KiB boundary after it
    (``edge``) and the next burst's length were it not cut short by the load's end (``cap``).
    A burst not the load's last is ``cap`` words, so the boundary after it moves by ``cap``
    (or to the next page, when the burst reached the boundary).

    With a room (:class:`_Room`), its registers too: ``free`` and ``slack``, ``free`` less the
    offered burst's units, whose sign says whether the burst fits (``fits``); ``credit``
    returns its ``credit_units`` this cycle, ``exempt`` (a register's) makes a burst free and
    always allowed, ``clear`` empties the room.

    The sums and comparisons are a submodule's (:class:`_BurstPlan`, from registers only);
    here, in a module of their own, the registers choose between its results, the
    handshake and the credit last (each choice a mux of values, none merged into the
    arithmetic), so that what the late signals pass through is a level or two of logic."""

    def __init__(self, *, addr_bits, word_bytes, max_burst, room=None):
        self._plan = plan = _BurstPlan(addr_bits=addr_bits, word_bytes=word_bytes,
                                       max_burst=max_burst, room=room)
        self.shift, self.room = plan.shift, room
        # inputs
        self.load, self.advance = Signal(), Signal()
        self.load_address, self.load_words = Signal(addr_bits), Signal(32)
        self.credit, self.exempt, self.clear = Signal(), Signal(), Signal()
        # registers
        self.address = Signal(addr_bits)
        self.words = Signal.like(plan.words)  # of the offered burst
        self.length = Signal(8)  # words - 1 (AXI's len)
        self.final = Signal()  # the offered burst ends the load
        self.offered = Signal()
        self.prepare = Signal()
        self.rest = Signal(32)  # words after the offered burst
        self.edge = Signal.like(plan.edge)  # to 4 KiB after it
        self.cap = Signal.like(plan.cap)  # the next, uncut
        self.idle, self.fits = Signal(), Signal()
        if room is not None:
            self.free = Signal.like(room.free)

    _STATE = ("address", "words", "length", "final", "offered", "prepare", "rest", "edge",
              "cap")

    def elaborate(self, platform):
        m = Module()
        m.submodules.plan = plan = self._plan
        m.submodules.choice = choice = _BurstChoice(self)
        m.d.comb += [plan.address.eq(self.address), plan.words.eq(self.words),
                     plan.rest.eq(self.rest), plan.edge.eq(self.edge), plan.cap.eq(self.cap),
                     self.idle.eq(~self.offered & ~self.prepare)]
        # every next value chosen by the handshake last (the room's by the credit after
        # it): a level of logic behind them
        for name in self._STATE:
            m.d.sync += getattr(self, name).eq(Mux(self.advance, choice.advanced[name],
                                                   choice.held[name]))
        if self.room is not None:
            room = self.room
            m.d.comb += [plan.free.eq(room.free), plan.slack.eq(room.slack),
                         plan.exempt.eq(self.exempt), self.free.eq(room.free),
                         self.fits.eq(room.fits)]
            for name in ("free", "slack"):
                value = {(a, c): choice.room[name, a, c] for a in (0, 1) for c in (0, 1)}
                m.d.sync += getattr(room, name).eq(Mux(
                    self.credit, Mux(self.advance, value[1, 1], value[0, 1]),
                    Mux(self.advance, value[1, 0], value[0, 0])))
        return m


class _BurstChoice(Elaboratable):
    """:class:`_Bursts`' next values, combinational from its registers, its plan and the
    signals that come early in the cycle: for each register its value if the offered burst
    is taken this cycle (``advanced``) and if not (``held``); with a room, ``free`` and
    ``slack`` for each handshake and credit (``room[name, advance, credit]``). What decides
    between them (the handshake, the credit) comes late, and only chooses."""

    def __init__(self, bursts):
        self._bursts = bursts
        self.advanced = {name: Signal.like(getattr(bursts, name), name=f"advanced_{name}")
                         for name in bursts._STATE}
        self.held = {name: Signal.like(getattr(bursts, name), name=f"held_{name}")
                     for name in bursts._STATE}
        if bursts.room is not None:
            self.room = {(name, a, c): Signal.like(getattr(bursts.room, name),
                                                     name=f"{name}_{a}{c}")
                         for name in ("free", "slack") for a in (0, 1) for c in (0, 1)}

    def elaborate(self, platform):
        m = Module()
        b, plan = self._bursts, self._bursts._plan
        max_burst, page = plan.max_burst, plan.page
        held, advanced = self.held, self.advanced
        m.d.comb += [held[name].eq(getattr(b, name)) for name in b._STATE]
        m.d.comb += [advanced[name].eq(getattr(b, name)) for name in b._STATE]
        with m.If(b.load):
            m.d.comb += [held["address"].eq(b.load_address), held["rest"].eq(b.load_words),
                         held["prepare"].eq(1)]
        with m.If(b.prepare):  # the load's first burst: the least of its three bounds
            whole, wide = plan.whole, plan.wide
            m.d.comb += [
                held["prepare"].eq(0), held["offered"].eq(plan.loaded),
                held["final"].eq(whole),
                held["words"].eq(Mux(whole, b.rest, Mux(wide, max_burst, plan.edge0))),
                held["length"].eq(Mux(whole, plan.rest_m1, Mux(wide, max_burst - 1,
                                                               plan.edge0_m1))),
                held["rest"].eq(Mux(wide, plan.rest_wide, plan.rest_narrow)),
                held["edge"].eq(Mux(wide, plan.edge0_after, page)),
                held["cap"].eq(Mux(wide, Mux(plan.wider, max_burst, plan.edge0_after),
                                   min(max_burst, page)))]
        m.d.comb += advanced["address"].eq(plan.address_after)
        with m.If(b.final):
            m.d.comb += advanced["offered"].eq(0)
        with m.Else():  # the burst after (the offered one was ``cap`` words)
            last, over = plan.last, plan.over
            m.d.comb += [
                advanced["final"].eq(last), advanced["words"].eq(Mux(last, b.rest, b.cap)),
                advanced["length"].eq(Mux(last, plan.rest_m1, plan.cap_m1)),
                advanced["rest"].eq(plan.rest_after),
                advanced["edge"].eq(Mux(over, plan.edge_after, page)),
                advanced["cap"].eq(Mux(over, Mux(plan.over2, max_burst, plan.edge_after),
                                       min(max_burst, page)))]
        if b.room is not None:
            self._account(m)
        return m

    def _account(self, m):
        """The room's next values: each one of the plan's, chosen by the first burst's bounds
        or the next burst's (``cleared`` when the room is cleared)."""
        b, plan, room = self._bursts, self._bursts._plan, self._bursts.room
        free, slack = room.free, room.slack
        for up in (0, 1):
            def value(name):
                return getattr(plan, f"{name}_up" if up else name)
            first = Mux(plan.whole, value("first_words"),
                        Mux(plan.wide, value("first_max"), value("first_edge")))
            after = Mux(plan.last, value("after_rest"), value("after_cap"))
            kept = plan.free_up if up else free  # the offered burst not taken
            spent = plan.slack_up if up else slack  # the offered burst taken
            values = {
                ("free", 0): kept, ("free", 1): Mux(b.exempt, kept, spent),
                ("slack", 0): Mux(b.prepare, first, spent),
                ("slack", 1): Mux(b.final, spent, after)}
            for (name, advance), next_value in values.items():
                m.d.comb += self.room[name, advance, up].eq(
                    Mux(b.clear, room.capacity if name == "free" else plan.cleared,
                        next_value))


class _Room:
    """The room of a master that requests a burst only when it fits (units of ``capacity``:
    a burst's word takes ``word_units``, a power of two, and a credit returns
    ``credit_units``): its registers, which :class:`_Bursts` keeps."""

    def __init__(self, capacity, *, word_units=1, credit_units=1, max_burst):
        self.capacity, self.word_units, self.credit_units = capacity, word_units, credit_units
        self.free = Signal(range(capacity + 1), init=capacity, name="room_free")
        low = max(max_burst, 1023) * word_units
        self.slack = Signal(signed(max(capacity + credit_units, low).bit_length() + 2),
                            init=capacity, name="room_slack")

    @property
    def fits(self):
        return self.slack >= 0


def _less(value, bound):
    """``value < bound``, a constant 0 when no value is (Verilator refuses a comparison that
    is constant)."""
    return value < bound if bound > 0 else C(0, 1)


def _more(value, bound):
    """``value > bound``, a constant 0 when no value of its width is."""
    return value > bound if bound < (1 << len(value)) - 1 else C(0, 1)


class _BurstPlan(Elaboratable):
    """:class:`_Bursts`' sums and comparisons, from its registers, for the first burst of a
    load (from the load's ``address`` and its words, in ``rest``) and for the burst after the
    offered one; with a room, its candidates (each also with a credit, ``_up``)."""

    def __init__(self, *, addr_bits, word_bytes, max_burst, room=None):
        self.room = room
        self.shift = (word_bytes - 1).bit_length()
        self.page = page = _PAGE_BYTES // word_bytes  # words of a 4 KiB page
        self.max_burst = max_burst
        # inputs: the registers
        self.address = Signal(addr_bits)
        self.words = Signal(range(max_burst + 1))
        self.rest = Signal(32)
        self.edge = Signal(range(page + 1))
        self.cap = Signal(range(max_burst + 1))
        # the first burst: its bounds' comparisons, and the values they choose between
        self.loaded, self.whole, self.wide, self.wider = Signal(), Signal(), Signal(), Signal()
        self.rest_m1, self.rest_wide, self.rest_narrow = Signal(32), Signal(32), Signal(32)
        self.edge0, self.edge0_m1 = Signal(range(page + 1)), Signal(range(page + 1))
        self.edge0_after = Signal(range(page + 1))
        # the burst after the offered one
        self.last, self.over, self.over2 = Signal(), Signal(), Signal()
        self.cap_m1, self.rest_after = Signal(8), Signal(32)
        self.edge_after = Signal(range(page + 1))
        self.address_after = Signal(addr_bits)
        if room is not None:
            self.free, self.exempt = Signal.like(room.free), Signal()
            self.slack = Signal.like(room.slack)
            for name in ("free_up", "slack_up", "cleared", "first_words", "first_max",
                         "first_edge", "after_rest", "after_cap"):
                setattr(self, name, Signal.like(room.slack))
                if not name.endswith("_up") and name != "cleared":
                    setattr(self, f"{name}_up", Signal.like(room.slack))

    def elaborate(self, platform):
        m = Module()
        max_burst, page = self.max_burst, self.page
        words, offset = self.rest, self.address[self.shift:12]
        low, high = words[:10], words[10:] == 0
        m.d.comb += [
            self.loaded.eq(words != 0),
            # one burst: the load no longer than a burst, nor than the page's rest
            self.whole.eq(high & (low <= max_burst) & (low + offset <= page)),
            # the words to the boundary (page - offset) more than a burst, more than two
            self.wide.eq(_less(offset, page - max_burst)),
            self.wider.eq(_less(offset, page - 2 * max_burst)),
            self.rest_m1.eq(words - 1), self.rest_wide.eq(words - max_burst),
            self.rest_narrow.eq(words + offset - page),
            self.edge0.eq(page - offset), self.edge0_m1.eq((page - 1) - offset),
            self.edge0_after.eq((page - max_burst) - offset),
            # the burst after the offered one (which was ``cap`` words)
            self.last.eq(self.rest <= self.cap),
            self.over.eq(_more(self.edge, max_burst)),
            self.over2.eq(_more(self.edge, 2 * max_burst)),
            self.cap_m1.eq(self.cap - 1), self.rest_after.eq(self.rest - self.cap),
            self.edge_after.eq(self.edge - max_burst),
            self.address_after.eq(self.address + (self.words << self.shift))]
        if self.room is not None:
            self._room(m, low, offset)
        return m

    def _room(self, m, low, offset):
        """``free`` and ``slack`` with a credit; the slack of a load's first burst, were it
        the load's words, a whole burst or the page's rest; of the burst after the offered
        one, were it the load's rest or ``cap`` (from ``free`` once the offered burst is
        taken: ``slack``, or ``free`` when exempt); of a cleared room."""
        room, unit, credit = self.room, self.room.word_units, self.room.credit_units
        free, slack = self.free, self.slack
        base = Mux(self.exempt, free, slack)
        # (each a subtraction of registers, or of a register and a constant)
        values = {"first_words": (free, low * unit),
                  "first_max": (free, self.max_burst * unit),
                  "first_edge": (free + offset * unit, self.page * unit),
                  "after_rest": (base, self.rest[:10] * unit),
                  "after_cap": (base, self.cap * unit)}
        for name, (value, less) in values.items():
            m.d.comb += getattr(self, name).eq(value - less)
            if isinstance(less, int):
                m.d.comb += getattr(self, f"{name}_up").eq(value - (less - credit))
            else:
                m.d.comb += getattr(self, f"{name}_up").eq((value + credit) - less)
        m.d.comb += [self.free_up.eq(free + credit), self.slack_up.eq(slack + credit),
                     self.cleared.eq(room.capacity - self.words * unit)]


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
    A command is accepted once every burst of the previous one is requested; its first burst
    is offered two cycles later (the cycle between computes it), so the bursts of consecutive
    commands follow each other with two idle cycles on the address channel, and each burst is
    offered from registers (:class:`_Bursts`). Read data is passed on in order, with ``last``
    on the final word of each command.

    With a ``capacity``, the reader keeps a room (its owner's buffer, say) and requests a
    burst only when it fits: each word requested takes ``word_units`` of it, and each
    ``credit`` returns ``credit_units``. Whether the offered burst fits is a register's sign
    (the room less the burst), kept with the room, so that a request, the arbitration it
    meets and the handshake's updates fit one cycle.

    Parameters
    ----------
    addr_bits, data_bits : int
        AXI address and data widths.
    outstanding : int
        Bursts in flight at most.
    max_burst : int
        Words of a burst at most (1 to 256).
    capacity : int or None
        Units of the room; None: no room, every burst is requested.
    word_units : int
        Units a word requested takes (a power of two).
    credit_units : int
        Units a credit returns.

    Members
    -------
    commands : ``In(stream.Signature(StructLayout({"address": addr_bits, "words": 32})))``
        Loads to read; ``address`` is aligned to a data word.
    data : ``Out(stream.Signature(StructLayout({"data": data_bits, "last": 1})))``
        Read data towards the consumer.
    burst : ``Out(range(max_burst + 1))``
        Words of the burst on the address channel (``m_axi_arlen + 1``, a register).
    credit, exempt, clear : ``In(1)`` (with a ``capacity``)
        Return ``credit_units`` of the room; request the offered burst whether it fits or
        not, without taking room (a register's, the whole cycle); empty the room.
    free : ``Out(range(capacity + 1))`` (with a ``capacity``)
        Units of the room not taken (a register).
    m_axi_* :
        The AXI4 read channels.
    """

    def __init__(self, *, addr_bits=32, data_bits=512, outstanding=8, max_burst=256,
                 capacity=None, word_units=1, credit_units=1):
        check_int("Address bits", addr_bits, 13, 64)
        check_data_bits(data_bits)
        check_int("Outstanding bursts", outstanding, 1, 256)
        check_int("Burst words", max_burst, 1, 256)
        self._addr_bits, self._data_bits, self._outstanding = addr_bits, data_bits, outstanding
        self._max_burst = max_burst
        room = {}
        if capacity is not None:
            check_int("Room", capacity, 1)
            check_int("Word units", word_units, 1)
            if word_units & (word_units - 1):
                raise ValueError(f"Word units must be a power of two, not {word_units!r}")
            check_int("Credit units", credit_units, 1, capacity)
            room = {"credit": In(1), "exempt": In(1), "clear": In(1),
                    "free": Out(range(capacity + 1))}
        self._room = (capacity, word_units, credit_units) if capacity is not None else None
        super().__init__({
            "commands": In(stream.Signature(
                data.StructLayout({"address": addr_bits, "words": 32}))),
            **axi4_read_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
            "data": Out(stream.Signature(data.StructLayout({"data": data_bits, "last": 1}))),
            "burst": Out(range(max_burst + 1)), **room,
        })

    @property
    def word_bytes(self) -> int:
        return self._data_bits // 8

    def elaborate(self, platform):
        m = Module()
        # one entry per burst in flight: is it the last burst of its command?
        m.submodules.finals = finals = FlagFIFO(width=1, depth=self._outstanding)
        m.submodules.bursts = bursts = self._bursts()
        room = bursts.room
        fits = 1 if room is None else bursts.fits | self.exempt
        m.d.comb += [
            self.commands.ready.eq(bursts.idle),
            self.m_axi_arlen.eq(bursts.length), self.m_axi_araddr.eq(bursts.address),
            self.m_axi_arsize.eq(bursts.shift), self.m_axi_arburst.eq(1),
            self.m_axi_arvalid.eq(bursts.offered & finals.w_rdy & fits),
            finals.w_en.eq(self.m_axi_arvalid & self.m_axi_arready),
            finals.w_data.eq(bursts.final),
            self.data.payload.data.eq(self.m_axi_rdata),
            self.data.payload.last.eq(self.m_axi_rlast & finals.r_data),
            self.data.valid.eq(self.m_axi_rvalid), self.m_axi_rready.eq(self.data.ready),
            finals.r_en.eq(self.m_axi_rvalid & self.m_axi_rready & self.m_axi_rlast),
        ]
        m.d.comb += [bursts.load.eq(self.commands.valid & self.commands.ready),
                     bursts.load_address.eq(self.commands.payload.address),
                     bursts.load_words.eq(self.commands.payload.words),
                     bursts.advance.eq(finals.w_en), self.burst.eq(bursts.words)]
        if room is not None:
            m.d.comb += [bursts.credit.eq(self.credit), bursts.exempt.eq(self.exempt),
                         bursts.clear.eq(self.clear), self.free.eq(bursts.free)]
        return m

    def _bursts(self) -> "_Bursts":
        room = None
        if self._room is not None:
            capacity, word_units, credit_units = self._room
            room = _Room(capacity, word_units=word_units, credit_units=credit_units,
                         max_burst=self._max_burst)
        return _Bursts(addr_bits=self._addr_bits, word_bytes=self.word_bytes,
                       max_burst=self._max_burst, room=room)


class BurstWriter(wiring.Component):
    """Write the loads of a command stream as AXI4 INCR bursts.

    Each command writes ``words`` data words, taken from ``data``, from byte address
    ``address``. Bursts are at most ``max_burst`` words and never cross a 4 KiB boundary; a burst's
    data follows its address, and the next address waits for the previous burst's last
    word. A command's first address is offered two cycles after the command is taken (the
    cycle between computes the burst), each from registers (:class:`_Bursts`). ``done``
    carries one beat per command once every one of its bursts is answered.

    With a ``buffer``, a burst's address waits until ``stored`` (the words in its owner's
    buffer, a register's) holds all its words: whether it does is a register, kept from
    ``stored``, the words ``arriving`` and those sent, so that a command's first address
    comes a cycle later, three cycles after the command (its words are counted the cycle
    between); its owner's words, which arrive after the command, are never in sooner.

    Parameters
    ----------
    addr_bits, data_bits : int
        AXI address and data widths.
    max_burst : int
        Words of a burst at most (1 to 256).
    buffer : int or None
        Words of the buffer ``stored`` counts; None: the address does not wait for words.

    Members
    -------
    commands : ``In(stream.Signature(StructLayout({"address": addr_bits, "words": 32})))``
    data : ``In(stream.Signature(data_bits))``
        The words to write, in order (all bytes written).
    done : ``Out(stream.Signature(1))``
        A command's writes are complete (its responses are in).
    burst : ``Out(range(max_burst + 1))``
        Words of the burst on the address channel (``m_axi_awlen + 1``, a register).
    stored, arriving : ``In(range(buffer + 1))``, ``In(1)`` (with a ``buffer``)
        Words of the data waiting in the owner's buffer (a register's), and whether a word
        enters it this cycle.
    m_axi_* :
        The AXI4 write channels.
    """

    def __init__(self, *, addr_bits=32, data_bits=512, max_burst=256, buffer=None):
        check_int("Address bits", addr_bits, 13, 64)
        check_data_bits(data_bits)
        check_int("Burst words", max_burst, 1, 256)
        if buffer is not None:
            check_int("Buffer words", buffer, max_burst, 4096)
        self._addr_bits, self._data_bits, self._max_burst = addr_bits, data_bits, max_burst
        self._buffer = buffer
        super().__init__({
            "commands": In(stream.Signature(
                data.StructLayout({"address": addr_bits, "words": 32}))),
            "data": In(stream.Signature(data_bits)),
            "done": Out(stream.Signature(1)),
            **axi4_write_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
            "burst": Out(range(max_burst + 1)),
            **({"stored": In(range(buffer + 1)), "arriving": In(1)}
               if buffer is not None else {}),
        })

    def elaborate(self, platform):
        m = Module()
        word_bytes = self._data_bits // 8
        m.submodules.bursts = bursts = _Bursts(addr_bits=self._addr_bits,
                                               word_bytes=word_bytes,
                                               max_burst=self._max_burst)
        m.d.comb += [self.m_axi_awaddr.eq(bursts.address), self.m_axi_awlen.eq(bursts.length),
                     self.m_axi_awsize.eq(bursts.shift), self.burst.eq(bursts.words),
                     self.m_axi_awburst.eq(1), self.m_axi_wdata.eq(self.data.payload),
                     self.m_axi_wstrb.eq((1 << word_bytes) - 1), self.m_axi_bready.eq(1)]
        # the states, a register each: the first burst computed (and, buffered, a cycle to
        # count its words in the buffer), an address on offer, a burst's data, the
        # responses awaited; none: idle
        preparing, priming = Signal(), Signal()
        addressing, sending, answering = Signal(), Signal(), Signal()
        in_burst = Signal(9)  # words of the burst still to send
        ending, closing = Signal(), Signal()  # in_burst == 1; the burst is the command's last
        answers, settled = Signal(32), Signal(init=1)  # responses awaited; answers == 0
        full = Signal(init=self._buffer is None)  # the offered burst's words all stored
        m.submodules.tests = tests = _WriterTests(self, bursts, in_burst, answers)
        taken, beat = Signal(), Signal()
        idle = ~(preparing | priming | addressing | sending | answering)
        m.d.comb += [
            self.m_axi_awvalid.eq(addressing & full),
            taken.eq(self.m_axi_awvalid & self.m_axi_awready),
            self.m_axi_wvalid.eq(sending & self.data.valid),
            self.data.ready.eq(sending & self.m_axi_wready), self.m_axi_wlast.eq(ending),
            beat.eq(self.m_axi_wvalid & self.m_axi_wready),
            self.commands.ready.eq(idle),
            bursts.load.eq(self.commands.valid & idle),
            bursts.load_address.eq(self.commands.payload.address),
            bursts.load_words.eq(self.commands.payload.words), bursts.advance.eq(taken),
            self.done.valid.eq(answering & settled)]
        with m.If(self.commands.valid & idle):
            m.d.sync += preparing.eq(1)
        with m.If(preparing):
            m.d.sync += preparing.eq(0)
            m.d.sync += (priming if self._buffer is not None else addressing).eq(1)
        with m.If(priming):
            m.d.sync += [priming.eq(0), addressing.eq(1)]
        if self._buffer is not None:  # stored + arriving - beat >= words, for the next cycle
            arriving = self.arriving
            m.d.sync += full.eq(Mux(arriving & ~beat, tests.fills_less,
                                    Mux(beat & ~arriving, tests.fills_more, tests.fills)))
        with m.If(beat):
            m.d.sync += [in_burst.eq(in_burst - 1), ending.eq(tests.two_left)]
            with m.If(ending):  # the burst's last word: the next address, or the responses
                m.d.sync += [sending.eq(0), addressing.eq(~closing), answering.eq(closing)]
        with m.If(self.done.valid & self.done.ready):
            m.d.sync += answering.eq(0)
        # (the late handshake chooses last, between values from registers)
        with m.If(taken):
            m.d.sync += [addressing.eq(0), sending.eq(1), in_burst.eq(bursts.words),
                         ending.eq(tests.single), closing.eq(bursts.final)]
        with m.If(taken & ~self.m_axi_bvalid):
            m.d.sync += [answers.eq(tests.answers_up), settled.eq(0)]
        with m.Elif(self.m_axi_bvalid & ~taken):
            m.d.sync += [answers.eq(tests.answers_down), settled.eq(tests.one_answer)]
        return m


class _WriterTests(Elaboratable):
    """:class:`BurstWriter`'s sums and comparisons, from registers, in a submodule of their
    own: whether the buffer's words (``stored``, less one or more one) hold the offered burst,
    the burst of one word, two words left in the burst, one response awaited, and the count
    of responses plus and minus one."""

    def __init__(self, writer, bursts, in_burst, answers):
        self._writer, self._bursts = writer, bursts
        self._in_burst, self._answers = in_burst, answers
        self.fills, self.fills_less, self.fills_more = Signal(), Signal(), Signal()
        self.single, self.two_left, self.one_answer = Signal(), Signal(), Signal()
        self.answers_up, self.answers_down = Signal(32), Signal(32)

    def elaborate(self, platform):
        m = Module()
        words, answers = self._bursts.words, self._answers
        if self._writer._buffer is not None:
            stored = self._writer.stored
            m.d.comb += [self.fills.eq(stored >= words), self.fills_less.eq(stored + 1 >= words),
                         self.fills_more.eq(stored >= words + 1)]
        m.d.comb += [self.single.eq(words == 1), self.two_left.eq(self._in_burst == 2),
                     self.one_answer.eq(answers == 1), self.answers_up.eq(answers + 1),
                     self.answers_down.eq(answers - 1)]
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
