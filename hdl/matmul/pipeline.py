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

from .parameters import TlmmParameters

__all__ = ["TernaryMatmulEngine", "fold_signs"]


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
    parameters : TlmmParameters
        The engine's parameters (of the subclass's :attr:`KIND`); its facts (``slot_bits``,
        ``acc_width``, ``latency``, ``cycles``, ...) are :attr:`parameters`'.

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

    #: the engine kind whose parameters this component takes
    KIND = None
    #: one-bit fields of an activation beat after ``data``
    ACT_FLAGS = ("last",)

    def __init__(self, parameters: TlmmParameters):
        if not isinstance(parameters, TlmmParameters) or parameters.kind is not self.KIND:
            raise ValueError(f"Parameters must be TlmmParameters of kind {self.KIND.value}, "
                             f"not {parameters!r}")
        self._parameters = p = parameters
        super().__init__({
            "acts": In(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(signed(p.act_width), p.acts_per_beat),
                **{flag: 1 for flag in self.ACT_FLAGS}}))),
            "weights": In(stream.Signature(data.StructLayout({
                "slots": data.ArrayLayout(unsigned(p.slot_bits), p.rows * p.groups_per_cycle),
                "last": 1}))),
            "results": Out(stream.Signature(data.ArrayLayout(signed(p.acc_width), p.rows))),
        })

    parameters = property(lambda self: self._parameters)

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
            self._parameters.front_stages + self._parameters.tree_levels)
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
        layout = data.ArrayLayout(signed(self._parameters.acc_width), self._parameters.rows)
        # a one-entry memory would need a zero-width address
        depth = max(self._parameters.accumulator_depth, 2)
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
