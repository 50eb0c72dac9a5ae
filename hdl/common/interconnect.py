"""An AXI4 interconnect: several masters share one AXI4 port, in order, without IDs.

Every unit of the accelerator that reads or writes DDR is an AXI4 master; the
:class:`AxiInterconnect` puts them on one port (one of the board's HP ports). Requests are
granted round-robin; a granted request's address stays on the port until it is taken (AXI's
rule that a valid request does not change). The slave answers in order (one ID), so the
interconnect routes each read beat to the master whose burst is oldest, and each write's
data and response to the master whose address it granted, with a FIFO of grants each
(``outstanding`` bursts in flight at most). A master sends a write burst's data after its
address, as :class:`~ternforge.hdl.common.axi.BurstWriter` does.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring

from .axi import axi4_read_members, axi4_write_members, check_data_bits
from .checks import check_int
from .streams import HeadFIFO

__all__ = ["AxiInterconnect"]

_READ_REQUEST = ("araddr", "arlen", "arsize", "arburst")
_WRITE_REQUEST = ("awaddr", "awlen", "awsize", "awburst")
_WRITE_DATA = ("wdata", "wstrb", "wlast")


def _flipped(members: dict) -> dict:
    return {name: member.flip() for name, member in members.items()}


class AxiInterconnect(wiring.Component):
    """Masters ``<prefix>_*`` (each reading, writing or both) onto ``m_axi_*``.

    Parameters
    ----------
    masters : sequence of (str, bool, bool)
        Each master's port prefix, whether it reads and whether it writes.
    addr_bits, data_bits : int
        AXI address and data widths (the same for every master).
    outstanding : int
        Bursts in flight at most, reads and writes each.

    Members
    -------
    <prefix>_ar*, <prefix>_r* : the read channels of a reading master (slave side)
    <prefix>_aw*, <prefix>_w*, <prefix>_b* : the write channels of a writing master
    m_axi_* : the shared AXI4 port (read and write)
    """

    def __init__(self, masters, *, addr_bits=32, data_bits=512, outstanding=16):
        masters = [tuple(master) for master in masters]
        check_int("Masters", len(masters), 1, 16)
        prefixes = [prefix for prefix, _, _ in masters]
        if len(set(prefixes)) != len(prefixes) or "m_axi" in prefixes:
            raise ValueError(f"Master prefixes must be unique and not 'm_axi', not "
                             f"{prefixes!r}")
        for prefix, reads, writes in masters:
            if not (reads or writes):
                raise ValueError(f"Master {prefix!r} must read or write")
        check_int("Address bits", addr_bits, 13, 64)
        check_data_bits(data_bits)
        check_int("Outstanding bursts", outstanding, 1, 256)
        self._masters, self._outstanding = masters, outstanding
        members = {**axi4_read_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
                   **axi4_write_members("m_axi", addr_bits=addr_bits, data_bits=data_bits)}
        for prefix, reads, writes in masters:
            if reads:
                members.update(_flipped(axi4_read_members(prefix, addr_bits=addr_bits,
                                                          data_bits=data_bits)))
            if writes:
                members.update(_flipped(axi4_write_members(prefix, addr_bits=addr_bits,
                                                           data_bits=data_bits)))
        super().__init__(members)

    def _port(self, prefix, name):
        return getattr(self, f"{prefix}_{name}")

    def elaborate(self, platform):
        m = Module()
        readers = [prefix for prefix, reads, _ in self._masters if reads]
        writers = [prefix for prefix, _, writes in self._masters if writes]
        if readers:
            route = self._request(m, "read", readers, "ar", _READ_REQUEST)
            self._responses(m, readers, route, valid="rvalid", ready="rready",
                            last="rlast", data=("rdata", "rresp"))
        else:
            m.d.comb += [self.m_axi_arvalid.eq(0), self.m_axi_rready.eq(0)]
        if writers:
            data_route, answer_route = self._request(m, "write", writers, "aw",
                                                     _WRITE_REQUEST, routes=2)
            self._write_data(m, writers, data_route)
            self._responses(m, writers, answer_route, valid="bvalid", ready="bready",
                            last=None, data=("bresp",))
        else:
            m.d.comb += [self.m_axi_awvalid.eq(0), self.m_axi_wvalid.eq(0),
                         self.m_axi_bready.eq(0)]
        return m

    def _request(self, m, name, prefixes, channel, fields, routes=1):
        """Round-robin grant of the ``channel`` requests of ``prefixes``, held while the port
        waits; each grant (one bit a master) is pushed into ``routes`` FIFOs (returned) for
        the responses.

        Every decision is a function of the requests' valids and registers (the last grant
        and the held one, one bit a master; the FIFOs' room), a level or two of logic, and
        the port and the FIFOs take the granted request's fields through an AND-OR of them:
        a master's request, its handshake and what it updates fit one cycle together."""
        n = len(prefixes)
        fifos = []
        for i in range(routes):
            fifo = HeadFIFO(width=n, depth=self._outstanding)
            m.submodules[f"{name}_route{i}"] = fifo
            fifos.append(fifo)
        room = _all(fifo.w_rdy for fifo in fifos)
        valids = [self._port(p, f"{channel}valid") for p in prefixes]
        # the master granted last (at first master 0, so that master 1 is first in line),
        # and the one held on the port, one bit each
        last = Signal(n, init=1, name=f"{name}_last")
        held = Signal(n, name=f"{name}_held")
        # round robin: the first requester after the last one granted
        choice = []
        for i in range(n):
            terms = []
            for previous in range(n):
                order = [(previous + 1 + k) % n for k in range(n)]
                before = order[:order.index(i)]
                terms.append(last[previous] & _all([~valids[j] for j in before] + [1]))
            choice.append(valids[i] & _any(terms))
        holding = held.any()
        grant = Signal(n, name=f"{name}_grant")
        m.d.comb += grant.eq(Mux(holding, held, Cat(*choice)))
        valid, ready = (getattr(self, f"m_axi_{channel}valid"),
                        getattr(self, f"m_axi_{channel}ready"))
        requested = Mux(holding, (held & Cat(*valids)).any(), _any(valids))
        m.d.comb += valid.eq(requested & room)
        for field in fields:
            m.d.comb += getattr(self, f"m_axi_{field}").eq(_any(
                Mux(grant[i], self._port(prefix, field), 0)
                for i, prefix in enumerate(prefixes)))
        for i, prefix in enumerate(prefixes):
            m.d.comb += self._port(prefix, f"{channel}ready").eq(grant[i] & ready & room)
        taken = valid & ready
        for fifo in fifos:
            m.d.comb += [fifo.w_en.eq(taken), fifo.w_data.eq(grant)]
        with m.If(taken):
            m.d.sync += [last.eq(grant), held.eq(0)]
        with m.Elif(valid):
            m.d.sync += held.eq(grant)
        return fifos if routes > 1 else fifos[0]

    def _responses(self, m, prefixes, route, *, valid, ready, last, data):
        """Beats of the port's ``valid``/``ready`` channel to the master at ``route``'s head
        (one bit a master, a register); the head is done with on the beat marked ``last``
        (every beat if None)."""
        head, routed = route.r_data, route.r_rdy
        for index, prefix in enumerate(prefixes):
            m.d.comb += [self._port(prefix, name).eq(getattr(self, f"m_axi_{name}"))
                         for name in data + ((last,) if last else ())]
            m.d.comb += self._port(prefix, valid).eq(
                getattr(self, f"m_axi_{valid}") & routed & head[index])
        m.d.comb += getattr(self, f"m_axi_{ready}").eq(routed & _any(
            head[index] & self._port(prefix, ready) for index, prefix in enumerate(prefixes)))
        beat = getattr(self, f"m_axi_{valid}") & getattr(self, f"m_axi_{ready}")
        m.d.comb += route.r_en.eq(beat & (getattr(self, f"m_axi_{last}") if last else 1))

    def _write_data(self, m, prefixes, route):
        """Write data from the master whose address is the oldest without its data."""
        head, routed = route.r_data, route.r_rdy
        for field in _WRITE_DATA:
            m.d.comb += getattr(self, f"m_axi_{field}").eq(_any(
                Mux(head[index], self._port(prefix, field), 0)
                for index, prefix in enumerate(prefixes)))
        m.d.comb += self.m_axi_wvalid.eq(routed & _any(
            head[index] & self._port(prefix, "wvalid") for index, prefix in enumerate(prefixes)))
        for index, prefix in enumerate(prefixes):
            m.d.comb += self._port(prefix, "wready").eq(self.m_axi_wready & routed & head[index])
        m.d.comb += route.r_en.eq(self.m_axi_wvalid & self.m_axi_wready & self.m_axi_wlast)


def _all(signals):
    signals = list(signals)
    result = signals[0]
    for signal in signals[1:]:
        result = result & signal
    return result


def _any(signals):
    signals = list(signals)
    result = signals[0]
    for signal in signals[1:]:
        result = result | signal
    return result
