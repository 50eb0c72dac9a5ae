"""The table-stationary TLMM engine: lookup tables in distributed RAM, shared over many rows.

A table held in registers must be read through a wide multiplexer per row, which on LUT6
fabric costs more than the adders it saves. In distributed RAM (LUT-RAM) one LUT reads one bit
of a 32- or 64-entry table, but a table takes one write per entry, so it has to stay put while
many rows use it. This engine therefore turns the loop order around: an activation chunk's
tables are written once and then every block of ``rows`` output rows streams past them.

Stream order of one token tile (``T <= max_tokens`` tokens)::

    for chunk in range(ceil(K / (P * G))):
        for token in tile:  activation beat (token, chunk); last = last token, final = last chunk
        for row_block in range(ceil(N / rows)):
            weight beat (row_block, chunk); last = last row block
            # read once per token of the tile: the weight beat is reused T times
    results: during the final chunk, one beat per (row_block, token), row blocks outer

Tables are written by a walk through the canonical patterns in which each step changes one
weight digit by one, so every entry is the previous one plus or minus one activation: one adder
per group, ``entries - 1`` cycles per token. Two banks alternate (ping-pong), so writing the
next chunk's tables overlaps reading the current ones; the engine runs at full rate when
``ceil(N / rows) >= entries - 1``. Partial sums live in an accumulator memory of
``max_tokens * ceil(max_n / rows)`` entries, read one stage ahead through a transparent port.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import data
from amaranth.lib.memory import Memory

from .parameters import EngineKind
from .pipeline import TernaryMatmulEngine
from .tlmm import balanced_ternary_digits, row_operands

__all__ = ["TLMMLutramEngine", "table_walk"]


def table_walk(group_size):
    """Canonical indices from 0 such that consecutive patterns differ in one digit by one.

    Returns ``[(index, digit, step)]`` for every non-zero entry: entry ``index`` equals the
    previous entry plus ``step`` (+1 or -1) times activation ``digit``.
    """
    entries = (3**group_size + 1) // 2
    patterns = {tuple(balanced_ternary_digits(i, group_size)): i for i in range(entries)}
    path = [tuple([0] * group_size)]

    def extend():
        if len(path) == entries:
            return True
        for digit in range(group_size):
            for step in (1, -1):
                following = list(path[-1])
                following[digit] += step
                following = tuple(following)
                if following in patterns and following not in path:
                    path.append(following)
                    if extend():
                        return True
                    path.pop()
        return False

    extend()
    steps = []
    for before, after in zip(path, path[1:]):
        digit = next(j for j in range(group_size) if before[j] != after[j])
        steps.append((patterns[after], digit, after[digit] - before[digit]))
    return steps


class TLMMLutramEngine(TernaryMatmulEngine):
    """Table-lookup ternary matmul engine with tables in LUT-RAM (table-stationary order).

    Parameters
    ----------
    parameters : TlmmParameters
        Of kind :attr:`~ternforge.hdl.matmul.parameters.EngineKind.TLMM_LUTRAM`; its
        ``max_n`` sizes the accumulator memory, its ``max_tokens`` is the token tile.

    Members
    -------
    acts : ``In(stream.Signature(StructLayout({"data": ..., "last": 1, "final": 1})))``
        One beat per (chunk, token); ``last`` marks the last token of the tile, ``final`` the
        last chunk along K.
    weights : ``In(stream.Signature(StructLayout({"slots": ..., "last": 1})))``
        TL codes, one beat per (chunk, row block); ``last`` marks the last row block.
    results : ``Out(stream.Signature(ArrayLayout(signed(acc_width), rows)))``
        One beat per (row block, token) of the final chunk.
    """

    KIND = EngineKind.TLMM_LUTRAM
    ACT_FLAGS = ("last", "final")
    #: Without it Yosys maps tables that are small (16 entries) or have many asynchronous read
    #: ports (more than about 16) to flip-flops and multiplexers, at several times the LUTs;
    #: with it, LUT-RAM with one copy per read port (RAM32M16: 8 LUTs hold 2 bits x 32).
    TABLE_ATTRS = {"ram_style": "distributed"}

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += advance.eq(~self.results.valid | self.results.ready)
        p = self.parameters
        banks = _Banks(p.max_tokens)
        tables = [Memory(shape=signed(p.table_width), init=[], attrs=self.TABLE_ATTRS,
                         depth=2 << (p.token_bits + p.index_bits))
                  for _ in range(p.groups_per_cycle)]
        for group, memory in enumerate(tables):
            m.submodules[f"table_{group}"] = memory
        self._elaborate_writer(m, banks, tables)
        self._elaborate_reader(m, advance, banks, tables)
        return m

    def _elaborate_writer(self, m, banks, tables):
        """Accept activation beats and write their tables, one entry per cycle."""
        p = self.parameters
        walk = table_walk(p.group_size)
        busy, step, token = Signal(), Signal(range(len(walk))), Signal(range(max(p.max_tokens, 2)))
        acts = Signal.like(self.acts.payload)
        last_step = busy & (step == len(walk) - 1)
        tile_done = last_step & acts.last
        target = Mux(tile_done, ~banks.write_bank, banks.write_bank)
        m.d.comb += self.acts.ready.eq((~busy | last_step) & ~banks.full[target])
        accepted = self.acts.valid & self.acts.ready
        index, digit, sign = (Array(Const(entry[field]) for entry in walk) [step]
                              for field in range(3))
        address = self._table_address(banks.write_bank, token, index)
        for group, memory in enumerate(tables):
            running = Signal(signed(p.table_width))
            x = Array(acts.data[group * p.group_size + j] for j in range(p.group_size))
            entry = Mux(sign > 0, running + x[digit], running - x[digit])
            port = memory.write_port()
            m.d.comb += [port.addr.eq(address), port.data.eq(entry), port.en.eq(busy)]
            with m.If(busy):
                m.d.sync += running.eq(Mux(last_step, 0, entry))
        with m.If(busy):
            m.d.sync += step.eq(Mux(last_step, 0, step + 1))
        with m.If(last_step):
            m.d.sync += [busy.eq(0), token.eq(Mux(acts.last, 0, token + 1))]
            with m.If(acts.last):
                m.d.sync += banks.fill(acts.final, token + 1)
        with m.If(accepted):
            m.d.sync += [busy.eq(1), acts.eq(self.acts.payload)]

    def _table_address(self, bank, token, index):
        p = self.parameters
        return (bank << (p.token_bits + p.index_bits)) | (
            (token << p.index_bits) if p.token_bits else 0) | index

    def _elaborate_reader(self, m, advance, banks, tables):
        """Hold each weight beat for a tile's tokens, look up, add and accumulate."""
        issue, release = Signal(), Signal()
        slots, slots_last, slots_full = self._weight_register(m, release)
        p = self.parameters
        token = Signal(range(max(p.max_tokens, 2)))
        bank = banks.read_bank
        token_last = token == banks.tokens[bank] - 1
        chunk_done = release & slots_last
        m.d.comb += [issue.eq(slots_full & banks.full[bank] & advance),
                     release.eq(issue & token_last)]
        with m.If(issue):
            m.d.sync += token.eq(Mux(token_last, 0, token + 1))
        with m.If(chunk_done):
            m.d.sync += banks.drain()
        ports = [[memory.read_port(domain="comb") for _ in range(p.rows)] for memory in tables]

        def lookup(row, group, index):
            port = ports[group][row]
            m.d.comb += port.addr.eq(self._table_address(bank, token, index))
            return port.data
        operands = row_operands(p, slots, lookup)
        sums = [self._adder_tree(m, advance, row) for row in operands]
        self._accumulate_rows(m, advance, sums, issue, chunk_done, banks)

    def _accumulate_rows(self, m, advance, sums, issue, chunk_done, banks):
        p = self.parameters
        address = Signal(range(max(p.accumulator_depth, 2)))
        with m.If(issue):
            m.d.sync += address.eq(Mux(chunk_done, 0, address + 1))
        flags = [issue, banks.final[banks.read_bank], banks.first, address]
        early = self._delay_flags(m, advance, flags, p.tree_levels - 1)
        valid, final, first, write_address = self._delay_flags(m, advance, early, 1)
        layout = data.ArrayLayout(signed(p.acc_width), p.rows)
        m.submodules.accumulators = memory = Memory(
            shape=layout, depth=max(p.accumulator_depth, 2), init=[],
            attrs={"ram_style": "block"})  # LUTs are this engine's scarce resource
        write = memory.write_port()
        read = memory.read_port(transparent_for=(write,))
        updated = Signal(layout)
        for row, total in enumerate(sums):
            m.d.comb += updated[row].eq(Mux(first, 0, read.data[row]) + total)
        m.d.comb += [read.addr.eq(early[3]), read.en.eq(advance),
                     write.addr.eq(write_address), write.data.eq(updated),
                     write.en.eq(valid & advance)]
        with m.If(advance):
            m.d.sync += [self.results.valid.eq(valid & final), self.results.payload.eq(updated)]


class _Banks:
    """Ping-pong state of the two table banks: which is written, which read, what each holds."""

    def __init__(self, max_tokens):
        self.write_bank, self.read_bank = Signal(), Signal()
        self.full = Array(Signal(name=f"bank{b}_full") for b in range(2))
        self.final = Array(Signal(name=f"bank{b}_final") for b in range(2))
        self.tokens = Array(Signal(range(max_tokens + 1), name=f"bank{b}_tokens")
                            for b in range(2))
        self.first = Signal(init=1)  # the chunk being read is the first along K

    def fill(self, final, tokens):
        return [self.full[self.write_bank].eq(1), self.final[self.write_bank].eq(final),
                self.tokens[self.write_bank].eq(tokens), self.write_bank.eq(~self.write_bank)]

    def drain(self):
        return [self.full[self.read_bank].eq(0), self.read_bank.eq(~self.read_bank),
                self.first.eq(self.final[self.read_bank])]
