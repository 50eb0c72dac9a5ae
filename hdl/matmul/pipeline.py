"""The streaming skeleton shared by the ternary matmul engines.

An engine computes ``Y = X @ W.T`` for int8 activations X (M, K) and ternary weights W (N, K).
The skeleton owns everything that does not depend on how a row's ternary dot product is formed:
the stream handshakes, the weight register held across a tile's tokens, the pipelined adder
tree, the per-token accumulators and the result register. A subclass supplies the *front*:
how one beat of activations and one beat of weight slots become, per output row, a list of
integer operands whose sum is that row's partial dot product for the beat.

Stream order (see :mod:`ternforge.sim.models.tlmm_stream`): for each block of ``rows`` output rows,
for each chunk of ``groups_per_cycle * group_size`` activations along K, one weight beat is held
while one activation beat per token of the tile passes; weight ``last`` marks the last chunk of
a row block, activation ``last`` the last token of the tile. After the last chunk every token
emits one result beat of ``rows`` sums.
"""

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.checks import check_int

__all__ = ["TernaryMatmulEngine", "signed_width", "fold_signs"]


def signed_width(bound: int) -> int:
    """Width of the smallest two's-complement integer holding ``-bound .. bound``."""
    return max((bound - 1).bit_length(), bound.bit_length()) + 1


def fold_signs(values, negate, width):
    """Operands whose sum is ``sum(-v if n else v for v, n in zip(values, negate))``.

    ``-v == ~v + 1``: each value is complemented by its negate bit and the count of negated
    values is one more operand, so no negation needs an adder of its own.
    """
    operands = [(value.as_unsigned() ^ bit.replicate(width)).as_signed()
                for value, bit in zip(values, negate)]
    return operands + [sum(negate[1:], negate[0])]


class TernaryMatmulEngine(wiring.Component):
    """Base of the ternary matmul engines; see the module documentation.

    Parameters
    ----------
    group_size : int
        Consecutive weights forming one group (G), 2 to 4.
    groups_per_cycle : int
        Groups consumed per beat along K (P); a beat carries ``P * G`` activations.
    rows : int
        Output rows computed per beat (R).
    act_width : int
        Activation width in bits (signed).
    max_k : int
        Longest reduction (K) the accumulators hold without overflow.
    max_tokens : int
        Largest token tile: the number of accumulators per row.

    Members
    -------
    acts : ``In(stream.Signature(StructLayout({"data": ArrayLayout(signed(act_width), P*G), "last": 1})))``
        Activation beats; ``last`` marks the last token of a tile.
    weights : ``In(stream.Signature(StructLayout({"slots": ArrayLayout(unsigned(slot_bits), R*P), "last": 1})))``
        Weight beats, slot ``r * P + g`` for row ``r`` and group ``g``; ``last`` marks the last
        chunk of a row block.
    results : ``Out(stream.Signature(ArrayLayout(signed(acc_width), R)))``
        One beat per token and row block: the ``R`` dot products.
    """

    def __init__(self, *, group_size=3, groups_per_cycle=8, rows=16, act_width=8, max_k=8192,
                 max_tokens=8):
        check_int("Group size", group_size, 2, 4)
        check_int("Groups per cycle", groups_per_cycle, 1)
        check_int("Rows", rows, 1)
        check_int("Activation width", act_width, 2, 16)
        check_int("Maximum K", max_k, 1)
        check_int("Maximum tokens", max_tokens, 1)
        self._group_size = group_size
        self._groups_per_cycle = groups_per_cycle
        self._rows = rows
        self._act_width = act_width
        self._max_k = max_k
        self._max_tokens = max_tokens
        super().__init__({
            "acts": In(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(signed(act_width), self.acts_per_beat),
                **{flag: 1 for flag in self.ACT_FLAGS}}))),
            "weights": In(stream.Signature(data.StructLayout({
                "slots": data.ArrayLayout(unsigned(self.slot_bits), rows * groups_per_cycle),
                "last": 1}))),
            "results": Out(stream.Signature(data.ArrayLayout(signed(self.acc_width), rows))),
        })

    #: one-bit fields of an activation beat after ``data``
    ACT_FLAGS = ("last",)

    group_size = property(lambda self: self._group_size)
    groups_per_cycle = property(lambda self: self._groups_per_cycle)
    rows = property(lambda self: self._rows)
    act_width = property(lambda self: self._act_width)
    max_k = property(lambda self: self._max_k)
    max_tokens = property(lambda self: self._max_tokens)

    @property
    def slot_bits(self) -> int:
        """Bits of one weight slot (one group of one row)."""
        raise NotImplementedError

    @property
    def front_stages(self) -> int:
        """Register stages between accepting a beat and the adder tree's operands."""
        raise NotImplementedError

    @property
    def operands_per_row(self) -> int:
        """Operands the front hands the adder tree for each row."""
        raise NotImplementedError

    @property
    def acts_per_beat(self) -> int:
        return self._group_size * self._groups_per_cycle

    @property
    def macs_per_cycle(self) -> int:
        """Ternary multiply-accumulates per cycle at full rate."""
        return self.acts_per_beat * self._rows

    @property
    def acc_width(self) -> int:
        """Accumulator width: the worst case of a ``max_k``-long dot product."""
        return signed_width((1 << (self._act_width - 1)) * self._max_k)

    @property
    def tree_levels(self) -> int:
        """Registered levels of the adder tree."""
        return (self.operands_per_row - 1).bit_length()

    @property
    def latency(self) -> int:
        """Cycles from accepting the last activation beat of a chunk to presenting its result."""
        return self.front_stages + self.tree_levels + 1

    def cycles(self, m: int, k: int, n: int) -> int:
        """Cycles of an (M, K, N) job with no stalls, from the first activation beat accepted
        to the last result beat accepted, both inclusive."""
        chunks = -(-k // self.acts_per_beat)
        return m * chunks * -(-n // self._rows) + self.latency

    def elaborate_front(self, m, advance, acts, slots):
        """Build the front; return per-row operand lists (``rows`` lists of Values)."""
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += advance.eq(~self.results.valid | self.results.ready)

        fire, release = Signal(), Signal()
        slots, slots_last, slots_full = self._weight_register(m, release)
        m.d.comb += [
            self.acts.ready.eq(slots_full & advance),
            fire.eq(self.acts.valid & self.acts.ready),
            release.eq(fire & self.acts.payload.last),
        ]

        operands = self.elaborate_front(m, advance, self.acts.payload.data, slots)
        sums = [self._adder_tree(m, advance, row) for row in operands]
        valid, token_last, chunk_last = self._delay_flags(
            m, advance, [fire, self.acts.payload.last, slots_last],
            self.front_stages + self.tree_levels)
        self._accumulate(m, advance, sums, valid, token_last, chunk_last)
        return m

    def _weight_register(self, m, release):
        """The weight beat held while its tokens pass: loaded from ``weights`` when empty or
        in the cycle ``release`` frees it. Returns ``(slots, last, full)``."""
        slots = Signal.like(self.weights.payload.slots, name="slots")
        slots_last, slots_full = Signal(name="slots_last"), Signal(name="slots_full")
        m.d.comb += self.weights.ready.eq(~slots_full | release)
        with m.If(self.weights.valid & self.weights.ready):
            m.d.sync += [slots.eq(self.weights.payload.slots),
                         slots_last.eq(self.weights.payload.last), slots_full.eq(1)]
        with m.Elif(release):
            m.d.sync += slots_full.eq(0)
        return slots, slots_last, slots_full

    @staticmethod
    def _adder_tree(m, advance, operands):
        level = list(operands)
        while len(level) > 1:
            following = []
            for i in range(0, len(level), 2):
                total = level[i] + level[i + 1] if i + 1 < len(level) else level[i]
                register = Signal(total.shape())
                with m.If(advance):
                    m.d.sync += register.eq(total)
                following.append(register)
            level = following
        return level[0]

    @staticmethod
    def _delay_flags(m, advance, values, stages):
        """``values`` delayed by ``stages`` pipeline registers that move on ``advance``."""
        for _ in range(stages):
            delayed = [Signal(Value.cast(value).shape()) for value in values]
            with m.If(advance):
                m.d.sync += [d.eq(v) for d, v in zip(delayed, values)]
            values = delayed
        return values

    def _accumulate(self, m, advance, sums, valid, token_last, chunk_last):
        layout = data.ArrayLayout(signed(self.acc_width), self._rows)
        depth = max(self._max_tokens, 2)  # a one-entry memory would need a zero-width address
        m.submodules.accumulators = memory = Memory(shape=layout, depth=depth, init=[])
        read, write = memory.read_port(domain="comb"), memory.write_port()
        token = Signal(range(depth))
        first_chunk = Signal(init=1)
        updated = Signal(layout)
        for row, total in enumerate(sums):
            m.d.comb += updated[row].eq(Mux(first_chunk, 0, read.data[row]) + total)
        m.d.comb += [read.addr.eq(token), write.addr.eq(token), write.data.eq(updated),
                     write.en.eq(valid & advance)]
        with m.If(advance):
            m.d.sync += [self.results.valid.eq(valid & chunk_last),
                         self.results.payload.eq(updated)]
            with m.If(valid):
                m.d.sync += token.eq(Mux(token_last, 0, token + 1))
                with m.If(token_last):
                    m.d.sync += first_chunk.eq(chunk_last)
