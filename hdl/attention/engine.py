"""The attention engine: one query tile against its keys, with an online softmax, over
``lanes`` parallel fused multiply-adds.

A *job* is a tile of up to ``rows`` queries (one head, or the query heads of one KV head in
decode) against ``keys`` keys streamed in tiles of ``cols``. The engine computes exactly
:func:`ternforge.sim.models.attention.attention`: every step is one rounded operation of a
pipelined fused multiply-add (``fma``; a multiply is ``fma(a, b, +0)``), the adder and the
exponential, and the final reciprocal; the ``rows x cols`` score matrix of a tile is the only
one ever held, and the softmax is online (a running maximum ``m`` and rescaled accumulators,
the denominator ``l`` being accumulator ``D``), so every exponential's argument is at most 0
and large logits cannot overflow.

Lanes. ``P`` fmas work in lockstep, each on independent sums, so that the order of every
sum (and so every result bit) is the same as with one lane:

* a score is one lane's dot product over ``d = 0 .. D - 1`` in order; the lanes take the
  tile's columns ``c = g * P + lane`` (the query element is broadcast, each lane reads its
  own key bank), so no partial sums are ever combined;
* an accumulator element ``acc[r][d]`` belongs to lane ``d mod P`` (its value bank and
  accumulator bank), the probability ``p`` is broadcast; every lane also keeps its own copy
  of the denominator ``l`` (lane 0's is used);
* the query, key, value and output streams carry ``P`` elements a beat (beat ``i`` of a row
  holds elements ``i * P .. i * P + P - 1``, the first least significant).

Phases of a job (each issues one operation per cycle; ``L`` is the fma's latency,
``E = D / P`` the elements per lane):

============ =================================================== ===========================
phase        operations                                          cycles (no stalls)
============ =================================================== ===========================
load Q       ``q' = fma(q, 1/sqrt(D), 0)`` per element            ``rows * E + L + 1``
per key tile (``nk`` keys), once its keys and values are in:
scores       ``S = fma(q'[d], k[d], S)`` for d in order, every    ``D * R' * C / P + L + 2``
             (row, column group) of the ``R' x C`` tile
             interleaved
maximum      ``m_new = max(m, visible scores)``, P columns of a   ``rows * C / P + 1``
             row per cycle
exponentials ``alpha = exp(m - m_new)``, ``p = exp(S - m_new)``   ``rows * (C + 1) + A + X + 2``
scale        ``acc = fma(acc, alpha, 0)``                         ``rows * (E + 1) + L + 2``
accumulate   ``acc[d] = fma(p_j, v_j[d], acc[d])``, ``l`` with    ``nk * rows * (E + 1) + L + 2``
             ``v = 1``, key by key
then:
reciprocal   ``1 / l``                                            ``rows + Rc + 2``
output       ``o = fma(acc, 1/l, 0)``, streamed out               ``rows * E + L + 1``
============ =================================================== ===========================

(``R``, ``C`` are the parameters ``rows`` and ``cols``: the score phase runs the job's rows,
or more of the tile's, ``R' = max(rows, ceil(L * P / C))``
(:meth:`~ternforge.hdl.attention.parameters.AttentionParameters.score_rows`), so that every
score accumulator is reused no sooner than ``R' * C / P >= L`` cycles later
(``R * C / P >= L`` makes ``R' <= R``), and an accumulator no sooner than
``E + 1 >= L + 2``; ``A``, ``X``, ``Rc`` are the adder's, exponential's and reciprocal's
latencies.)

Loading runs beside all of this: from the job's acceptance a loader takes the key stream's
beats into the key banks and the value stream's into the value banks of one half of the
(double) buffers, while the tile in the other half is computed; each stream a beat a cycle,
independently, so a tile's ``nk`` keys take ``nk * E`` cycles when the streams come
together (a key beat and a value beat a cycle: *paired*) and ``2 * nk * E`` when a key's
``E`` key beats come before its ``E`` value beats on one bus (*sequential*). A tile costs its
load cycles only when they outlast the previous tile's computation (never at ``rows = 1``
sequential, where the computation takes ``2 * nk * E + C`` cycles and more).
:meth:`~ternforge.hdl.attention.parameters.AttentionParameters.cycles` follows both exactly.

Streams: ``job`` (``rows``, ``keys``, the ``position`` of row 0 and ``row_step``, 1 for causal
prefill rows at consecutive positions and 0 for decode rows at one position; key ``j`` is
visible to row ``r`` when ``j <= position + r * row_step``), then ``query`` (``rows * E``
beats), ``key`` and ``value`` (``keys * E`` beats each, each stream in key order),
and ``output`` (``rows * E`` beats, ``last`` on the job's last).
"""



from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp.format import float_constant
from ..fp.parameters import FloatUnitParameters
from ..fp.units import float_unit
from .parameters import MAX_COLS, MAX_ROWS, AttentionParameters

__all__ = ["AttentionEngine"]


class _Destination(enum.Enum, shape=2):
    """Where an fma result goes (the top of its tag)."""

    QUERY = 0
    SCORE = 1
    ACCUMULATOR = 2
    OUTPUT = 3


#: the tag of an exponential: the row, the column (``cols`` for the row's ``alpha``), and
#: whether the score is visible (or the row has any visible score)
_EXP_TAG = data.StructLayout({"row": range(MAX_ROWS), "column": range(MAX_COLS + 1),
                              "visible": 1})
#: bits of the adder's and the exponential's tags (``_EXP_TAG`` and spare bits)
_EXP_TAG_BITS = 16
#: bits of the reciprocal's tag (a row, ``range(MAX_ROWS)``, and spare bits)
_RECIPROCAL_TAG_BITS = 8


def _ordered(bits, width):
    """An unsigned key that orders floating-point bit patterns by value (NaN aside)."""
    return Mux(bits[width - 1], ~bits, bits | (1 << (width - 1)))


class AttentionEngine(wiring.Component):
    """Attention of a tile of queries against streamed keys and values; see the module
    documentation.

    Parameters
    ----------
    parameters : AttentionParameters
        The format, head dimension, tile, key count and lanes, their rules and the cycle
        model.

    Members
    -------
    job : ``In(stream.Signature(parameters.job_layout))``
    query : ``In(stream.Signature(lanes * width))``
    key : ``In(stream.Signature(lanes * width))``
    value : ``In(stream.Signature(lanes * width))``
    output : ``Out(stream.Signature(parameters.output_layout))``
    """

    def __init__(self, parameters: AttentionParameters):
        if not isinstance(parameters, AttentionParameters):
            raise TypeError(f"Parameters must be AttentionParameters, not {parameters!r}")
        self._parameters = parameters
        beat = parameters.beat_bits
        super().__init__({
            "job": In(stream.Signature(parameters.job_layout)),
            "query": In(stream.Signature(beat)),
            "key": In(stream.Signature(beat)),
            "value": In(stream.Signature(beat)),
            "output": Out(stream.Signature(parameters.output_layout)),
        })

    parameters = property(lambda self: self._parameters)

    def elaborate(self, platform):
        m = Module()
        core = _Core(m, self)
        core.route_results()
        core.route_exponentials()
        core.load_keys_and_values()
        with m.FSM(name="phase"):
            for state, body in core.phases():
                with m.State(state):
                    body()
        return m


class _Core:
    """The engine's arithmetic units, banks, registers and shared control (a loop nest and a
    fetch stage), and one method per phase of the module documentation's table (each the
    body of its state of the ``phase`` FSM)."""

    def __init__(self, m, engine):
        self.m, self.engine = m, engine
        p = engine.parameters
        self.fmt, d_max, big_r, big_c, lanes = p.format, p.head_dim, p.rows, p.cols, p.lanes
        self.d_max, self.big_r, self.big_c, self.lanes = d_max, big_r, big_c, lanes
        self.width, self.e_max = self.fmt.width, p.elements_per_lane
        self.shift = (lanes - 1).bit_length()
        self.groups = p.column_groups
        self.acc_depth = big_r * (self.e_max + 1)
        self.address_bits = max(self.acc_depth, big_r * self.e_max, big_c * self.e_max,
                                big_r * self.groups).bit_length()
        self.fma_tag = data.StructLayout({"address": self.address_bits,
                                          "destination": _Destination})
        self._units()
        self._banks()
        fmt, width = self.fmt, self.width
        self.zero, self.one = Const(0, width), Const(fmt.bias << fmt.mantissa_bits, width)
        self.minus_inf = Const(fmt.infinity | fmt.sign_bit, width)
        self.scale = Const(float_constant(1 / d_max ** 0.5, fmt), width)
        self.sign = 1 << (width - 1)
        self._registers(p.max_keys)
        self._control(p.max_keys)

    def _units(self):
        m, fmt = self.m, self.fmt
        self.fmas = [float_unit(FloatUnitParameters("fma", fmt, self.fma_tag.size))
                     for _ in range(self.lanes)]
        for lane, unit in enumerate(self.fmas):
            m.submodules[f"fma{lane}"] = unit
        m.submodules.add = self.add = float_unit(FloatUnitParameters("add", fmt,
                                                                     _EXP_TAG_BITS))
        m.submodules.exp = self.exp = float_unit(FloatUnitParameters("exp", fmt,
                                                                     _EXP_TAG_BITS))
        m.submodules.reciprocal = self.recip = float_unit(
            FloatUnitParameters("reciprocal", fmt, _RECIPROCAL_TAG_BITS))

    def _banks(self):
        m, lanes, width, e_max = self.m, self.lanes, self.width, self.e_max
        self.q_write, self.q_read = _lane_banks(m, "q_bank", lanes, width, self.big_r * e_max)
        # keys and values in two halves: the loader fills one while the tile in the other
        # is computed
        self.k_write, self.k_read = _lane_banks(m, "k_bank", lanes,
                                                self.engine.parameters.beat_bits,
                                                2 * self.groups * e_max)
        self.v_write, self.v_read = _lane_banks(m, "v_bank", lanes, width,
                                                2 * self.big_c * e_max)
        self.acc_write, self.acc_read = _lane_banks(m, "acc_bank", lanes, width,
                                                    self.acc_depth)

    def _registers(self, max_keys):
        big_r, big_c, width = self.big_r, self.big_c, self.width
        # job registers
        self.rows = Signal(range(1, big_r + 1), name="job_rows")
        self.score_rows = Signal(range(1, big_r + 1), name="score_rows")
        self.keys = Signal(range(1, max_keys + 1), name="job_keys")
        self.position = Signal(range(max_keys), name="job_position")
        self.row_step = Signal(name="job_row_step")
        self.key_base = Signal(range(max_keys + big_c), name="key_base")
        self.tile_keys = Signal(range(big_c + 1), name="tile_keys")
        self.first_tile = Signal(name="first_tile")
        self.half = Signal(name="half")  # the half of the key/value banks being computed
        # per-row state and the score / probability tile
        self.scores = Array(Signal(width, name=f"s{r}_{j}") for r in range(big_r)
                            for j in range(big_c))
        self.running_max = Array(Signal(width, name=f"m{r}") for r in range(big_r))
        self.new_max = Array(Signal(width, name=f"m_new{r}") for r in range(big_r))
        self.any_visible = Array(Signal(name=f"any{r}") for r in range(big_r))
        self.alpha = Array(Signal(width, name=f"alpha{r}") for r in range(big_r))
        self.inverse = Array(Signal(width, name=f"inverse{r}") for r in range(big_r))

    def _control(self, max_keys):
        m = self.m
        # a three-deep loop nest (outer, middle, inner) shared by the phases
        self.loop = loop = _LoopNest(m, max(max_keys, self.acc_depth, self.d_max,
                                            self.big_c + 1))
        index, looping, step = loop.index, loop.looping, loop.step
        # the fetch stage: an operation whose buffers are being read
        self.fetched, self.fetching = Signal(), Signal()  # fetching: the phase has a fetch stage
        self.f_index = [Signal.like(i, name=f"f_i{n}") for n, i in enumerate(index)]
        self.issued = Signal()
        m.d.comb += step.eq(~self.fetched | self.issued)
        with m.If(step & self.fetching):
            m.d.sync += self.fetched.eq(looping)
            m.d.sync += [f.eq(i) for f, i in zip(self.f_index, index)]
        for port in (*self.q_read, *self.k_read, *self.v_read, *self.acc_read):
            m.d.comb += port.en.eq(step)
        # operations in flight in the fmas (and in the add -> exp and reciprocal chains)
        self.pending = Signal(range(64), name="pending")
        self.returned = Signal()
        m.d.sync += self.pending.eq(self.pending + self.issued - self.returned)
        self.idle = ~looping & ~self.fetched & (self.pending == 0)

    # -- shared pieces of the phases

    def lane_slot(self, group, lane):
        """Column ``group * lanes + lane`` of the tile."""
        return Cat(Const(lane, self.shift), group) if self.shift else group

    def tag(self, destination, address):
        """An fma tag: ``address`` (through a named signal) and ``destination``."""
        field = Signal(self.address_bits, name=f"tag_to_{destination.value}")
        self.m.d.comb += field.eq(address)
        return Cat(field, Const(destination.value, 2))

    def issue(self, a, b, c, destination, address):
        """Every lane's operands (``a``, ``b``, ``c`` map a lane to a value) and the shared
        tag, from the fetch stage."""
        m = self.m
        address_tag = self.tag(destination, address)
        m.d.comb += [self.fetching.eq(1), self.issued.eq(self.fetched
                                                         & self.fmas[0].operands.ready)]
        for lane, unit in enumerate(self.fmas):
            m.d.comb += [unit.operands.valid.eq(self.fetched),
                         unit.operands.payload.a.eq(a(lane)),
                         unit.operands.payload.b.eq(b(lane)),
                         unit.operands.payload.c.eq(c(lane)),
                         unit.operands.payload.tag.eq(address_tag)]

    def visible(self, row, column):
        """Whether column ``column`` of the tile is visible to row ``row`` (causal mask)."""
        return (column < self.tile_keys) & (self.key_base + column
                                            <= self.position + Mux(self.row_step, row, 0))

    # -- results

    def route_results(self):
        """fma results, in lockstep: to the Q banks, scores, accumulators or the output."""
        m, output = self.m, self.engine.output
        result = self.fmas[0].result
        tag = data.View(self.fma_tag, result.payload.tag)
        destination, target = tag.destination, tag.address
        taken = (destination != _Destination.OUTPUT) | output.ready
        m.d.comb += [output.payload.last.eq(target[0]),
                     output.valid.eq(result.valid & (destination == _Destination.OUTPUT))]
        for lane, unit in enumerate(self.fmas):
            value = unit.result.payload.value
            m.d.comb += [
                self.q_write[lane].addr.eq(target), self.q_write[lane].data.eq(value),
                self.q_write[lane].en.eq(result.valid & (destination == _Destination.QUERY)),
                self.acc_write[lane].addr.eq(target), self.acc_write[lane].data.eq(value),
                self.acc_write[lane].en.eq(result.valid
                                           & (destination == _Destination.ACCUMULATOR)),
                _element(output.payload.value, lane, self.width).eq(value),
                unit.result.ready.eq(taken),
            ]
            with m.If(result.valid & (destination == _Destination.SCORE)):
                m.d.sync += self.scores[self.lane_slot(target, lane)].eq(value)
        m.d.comb += self.returned.eq((result.valid & result.ready) | self.exp.result.valid
                                     | self.recip.result.valid)

    def route_exponentials(self):
        """The exponentials: the adder's ``x - m_new`` into exp, then to ``alpha`` (column
        ``cols``) or the tile's probabilities; and the reciprocals to ``inverse``."""
        m, add, exp, recip = self.m, self.add, self.exp, self.recip
        m.d.comb += [add.result.ready.eq(exp.operands.ready),
                     exp.operands.valid.eq(add.result.valid),
                     exp.operands.payload.a.eq(add.result.payload.value),
                     exp.operands.payload.tag.eq(add.result.payload.tag),
                     exp.result.ready.eq(1), recip.result.ready.eq(1)]
        tag = data.View(_EXP_TAG, exp.result.payload.tag[:_EXP_TAG.size])
        self.exp_tag_row = Signal(_EXP_TAG["row"].shape, name="exp_tag_row")
        self.exp_tag_col = Signal(_EXP_TAG["column"].shape, name="exp_tag_col")
        value = exp.result.payload.value
        with m.If(exp.result.valid):
            with m.If(tag.column == self.big_c):
                m.d.sync += self.alpha[tag.row].eq(Mux(tag.visible, value, self.one))
            with m.Else():
                m.d.sync += self.scores[tag.row * self.big_c + tag.column].eq(
                    Mux(tag.visible, value, self.zero))
        with m.If(recip.result.valid):
            m.d.sync += self.inverse[recip.result.payload.tag].eq(recip.result.payload.value)

    def load_keys_and_values(self):
        """The loader (:class:`_KeyValueLoader`) that fills the free half of the key and
        value banks."""
        self.loader = _KeyValueLoader(self.m, self.engine, self.k_write, self.v_write,
                                      self.keys.shape())

    # -- the phases, in order

    def phases(self):
        """The states of the ``phase`` FSM in order, each with the method that is its body."""
        return [("JOB", self.take_job), ("LOAD_Q", self.load_queries),
                ("TILE", self.wait_for_tile), ("SCORES", self.scores_phase),
                ("MAXIMUM", self.maximum_phase), ("EXPONENTIALS", self.exponentials_phase),
                ("SCALE", self.scale_phase), ("ACCUMULATE", self.accumulate_phase),
                ("RECIPROCAL", self.reciprocal_phase), ("OUTPUT", self.output_phase)]

    def take_job(self):
        m, job = self.m, self.engine.job
        m.d.comb += job.ready.eq(1)
        with m.If(job.valid):
            payload = job.payload
            fewest = self.engine.parameters.score_rows(1)
            m.d.sync += [self.rows.eq(payload.rows), self.keys.eq(payload.keys),
                         self.score_rows.eq(Mux(payload.rows < fewest, fewest, payload.rows)),
                         self.position.eq(payload.position), self.row_step.eq(payload.row_step),
                         self.key_base.eq(0), self.first_tile.eq(1), self.half.eq(0),
                         *self.loader.begin(payload.keys),
                         *(x.eq(self.minus_inf) for x in self.running_max)]
            self.loop.start(m, 1, payload.rows, self.e_max)
            m.next = "LOAD_Q"

    def load_queries(self):
        """From the query stream straight into the fmas: ``q' = fma(q, 1/sqrt(D), 0)``."""
        m, query, loop = self.m, self.engine.query, self.loop
        index, looping = loop.index, loop.looping
        accepted = query.valid & query.ready
        address_tag = self.tag(_Destination.QUERY, index[1] * self.e_max + index[2])
        m.d.comb += [query.ready.eq(looping & self.fmas[0].operands.ready),
                     self.issued.eq(accepted), loop.step.eq(accepted)]
        for lane, unit in enumerate(self.fmas):
            m.d.comb += [unit.operands.valid.eq(looping & query.valid),
                         unit.operands.payload.a.eq(_element(query.payload, lane, self.width)),
                         unit.operands.payload.b.eq(self.scale),
                         unit.operands.payload.c.eq(self.zero),
                         unit.operands.payload.tag.eq(address_tag)]
        with m.If(~looping & (self.pending == 0)):
            m.next = "TILE"

    def wait_for_tile(self):
        """Wait for the tile's keys and values."""
        m = self.m
        loader = self.loader
        with m.If(loader.loaded[self.half]):
            m.d.sync += self.tile_keys.eq(loader.tile_size[self.half])
            self.loop.start(m, self.d_max, self.score_rows, self.groups)
            m.next = "SCORES"

    def scores_phase(self):
        """``S = fma(q'[d], k[d], S)``; lane ``l`` takes columns ``g * lanes + l``, ``q[d]``
        is broadcast."""
        m, index, f_index, lanes, shift = self.m, self.loop.index, self.f_index, self.lanes, \
            self.shift
        for lane in range(lanes):
            m.d.comb += [self.q_read[lane].addr.eq(index[1] * self.e_max + (index[0] >> shift)),
                         self.k_read[lane].addr.eq(
                             self.loader.key_address(self.half, index[2],
                                                     index[0] >> shift))]
        selected = f_index[0] & (lanes - 1)
        query = Array(port.data for port in self.q_read)[selected]
        group = Signal(self.address_bits, name="score_group")
        m.d.comb += group.eq(f_index[1] * self.groups + f_index[2])
        result = self.fmas[0].result
        tag = data.View(self.fma_tag, result.payload.tag)
        leaving = result.valid & (tag.destination == _Destination.SCORE) & (tag.address == group)
        self.issue(lambda lane: query,
                   lambda lane: self.k_read[lane].data.word_select(selected, self.width),
                   lambda lane: Mux(f_index[0] == 0, self.zero, Mux(
                       leaving, self.fmas[lane].result.payload.value,
                       self.scores[self.lane_slot(group, lane)])),
                   _Destination.SCORE, group)
        with m.If(self.idle):
            self.loop.start(m, 1, self.rows, self.groups)
            m.next = "MAXIMUM"

    def maximum_phase(self):
        """``m_new = max(m, visible scores)``, a row's ``lanes`` columns a cycle."""
        m, width, loop = self.m, self.width, self.loop
        row, group = loop.index[1], loop.index[2]
        best = Mux(group == 0, self.running_max[row], self.new_max[row])
        seen = (group != 0) & self.any_visible[row]
        for lane in range(self.lanes):  # a named signal per step keeps the netlist linear
            column = self.lane_slot(group, lane)
            value = Signal(width, name=f"max_score{lane}")
            shown = Signal(name=f"max_visible{lane}")
            better = Signal(width, name=f"max_best{lane}")
            m.d.comb += [value.eq(self.scores[row * self.big_c + column]),
                         shown.eq(self.visible(row, column))]
            m.d.comb += better.eq(Mux(shown & (_ordered(value, width)
                                               > _ordered(best, width)), value, best))
            best, seen = better, seen | shown
        m.d.comb += loop.step.eq(1)
        with m.If(loop.looping):
            m.d.sync += [self.new_max[row].eq(best), self.any_visible[row].eq(seen)]
        with m.If(~loop.looping):
            loop.start(m, 1, self.rows, self.big_c + 1)
            m.next = "EXPONENTIALS"

    def exponentials_phase(self):
        """``alpha = exp(m - m_new)`` and ``p = exp(S - m_new)``, straight from registers (no
        fetch stage)."""
        m, add, loop = self.m, self.add, self.loop
        row, column = loop.index[1], loop.index[2]
        is_alpha = column == self.big_c
        operand = Mux(is_alpha, self.running_max[row], self.scores[row * self.big_c + column])
        keep = Mux(is_alpha, self.any_visible[row], self.visible(row, column))
        m.d.comb += [self.exp_tag_row.eq(row), self.exp_tag_col.eq(column),
                     add.operands.valid.eq(loop.looping),
                     add.operands.payload.a.eq(operand),
                     add.operands.payload.b.eq(self.new_max[row] ^ self.sign),
                     add.operands.payload.tag.eq(Cat(self.exp_tag_row, self.exp_tag_col, keep)),
                     loop.step.eq(add.operands.ready),
                     self.issued.eq(loop.looping & add.operands.ready)]
        with m.If(~loop.looping & (self.pending == 0)):
            m.d.sync += [self.running_max[r].eq(self.new_max[r]) for r in range(self.big_r)]
            loop.start(m, 1, self.rows, self.e_max + 1)
            m.next = "SCALE"

    def scale_phase(self):
        """``acc = fma(acc, alpha, 0)`` (zero on the first tile)."""
        m, index, r_f, c_f = self.m, self.loop.index, self.f_index[1], self.f_index[2]
        for port in self.acc_read:
            m.d.comb += port.addr.eq(index[1] * (self.e_max + 1) + index[2])
        self.issue(lambda lane: Mux(self.first_tile, self.zero, self.acc_read[lane].data),
                   lambda lane: self.alpha[r_f], lambda lane: self.zero,
                   _Destination.ACCUMULATOR, r_f * (self.e_max + 1) + c_f)
        with m.If(self.idle):
            self.loop.start(m, self.tile_keys, self.rows, self.e_max + 1)
            m.next = "ACCUMULATE"

    def accumulate_phase(self):
        """``acc[d] = fma(p_j, v_j[d], acc[d])`` key by key, the denominator with ``v = 1``."""
        m, index, f_index = self.m, self.loop.index, self.f_index
        r_f, c_f = f_index[1], f_index[2]
        for lane in range(self.lanes):
            m.d.comb += [self.acc_read[lane].addr.eq(index[1] * (self.e_max + 1) + index[2]),
                         self.v_read[lane].addr.eq(
                             self.loader.value_address(self.half, index[0], index[2]))]
        probability = self.scores[r_f * self.big_c + f_index[0]]
        self.issue(lambda lane: probability,
                   lambda lane: Mux(c_f == self.e_max, self.one, self.v_read[lane].data),
                   lambda lane: self.acc_read[lane].data,
                   _Destination.ACCUMULATOR, r_f * (self.e_max + 1) + c_f)
        with m.If(self.idle):
            m.d.sync += [self.key_base.eq(self.key_base + self.tile_keys),
                         self.first_tile.eq(0), self.loader.loaded[self.half].eq(0),
                         self.half.eq(~self.half)]
            with m.If(self.key_base + self.tile_keys >= self.keys):
                self.loop.start(m, 1, 1, self.rows)
                m.next = "RECIPROCAL"
            with m.Else():
                m.next = "TILE"

    def reciprocal_phase(self):
        """``1 / l``, from lane 0's copy of the denominator."""
        m, recip, c_f = self.m, self.recip, self.f_index[2]
        m.d.comb += self.acc_read[0].addr.eq(self.loop.index[2] * (self.e_max + 1) + self.e_max)
        m.d.comb += [self.fetching.eq(1), recip.operands.valid.eq(self.fetched),
                     self.issued.eq(self.fetched & recip.operands.ready),
                     recip.operands.payload.a.eq(self.acc_read[0].data),
                     recip.operands.payload.tag.eq(c_f)]
        with m.If(self.idle):
            self.loop.start(m, 1, self.rows, self.e_max)
            m.next = "OUTPUT"

    def output_phase(self):
        """``o = fma(acc, 1/l, 0)``, streamed out."""
        m, index, r_f, c_f = self.m, self.loop.index, self.f_index[1], self.f_index[2]
        for port in self.acc_read:
            m.d.comb += port.addr.eq(index[1] * (self.e_max + 1) + index[2])
        self.issue(lambda lane: self.acc_read[lane].data, lambda lane: self.inverse[r_f],
                   lambda lane: self.zero, _Destination.OUTPUT,
                   (r_f == self.rows - 1) & (c_f == self.e_max - 1))
        with m.If(self.idle):
            m.next = "JOB"


def _element(value, lane, width):
    """Lane ``lane``'s element of a beat."""
    return value[lane * width:(lane + 1) * width]


def _lane_banks(m, name, lanes, shape, depth):
    """A memory per lane (``name0``, ``name1``...): their write ports and read ports."""
    ports = []
    for lane in range(lanes):
        bank = m.submodules[f"{name}{lane}"] = memory.Memory(shape=shape, depth=depth, init=[])
        ports.append((bank.write_port(), bank.read_port()))
    return [port[0] for port in ports], [port[1] for port in ports]


class _LoopNest:
    """Three nested counters (``index[0]`` outermost), shared by the engine's phases: they
    advance on ``step`` while ``looping``, which falls after the last step of a
    :meth:`start`."""

    def __init__(self, m, limit):
        self.bounds = [Signal(range(1, limit + 1), name=f"n{i}") for i in range(3)]
        self.index = index = [Signal(range(limit), name=f"i{i}") for i in range(3)]
        self.looping, self.step = Signal(), Signal()
        last = [i == n - 1 for i, n in zip(index, self.bounds)]
        with m.If(self.step & self.looping):
            m.d.sync += index[2].eq(index[2] + 1)
            with m.If(last[2]):
                m.d.sync += [index[2].eq(0), index[1].eq(index[1] + 1)]
                with m.If(last[1]):
                    m.d.sync += [index[1].eq(0), index[0].eq(index[0] + 1)]
                    with m.If(last[0]):
                        m.d.sync += self.looping.eq(0)

    def start(self, m, *bounds):
        m.d.sync += [self.looping.eq(1), *(i.eq(0) for i in self.index),
                     *(n.eq(value) for n, value in zip(self.bounds, bounds))]


class _KeyValueLoader:
    """The engine's loader: the key stream's beats into the key banks and the value stream's
    into the value banks of the free half of the double buffers, each stream a beat a cycle
    at its own pace (a key's ``E`` beats, key by key); ``loaded[h]`` rises when half ``h``
    holds a tile (of ``tile_size[h]`` keys) of both, and the computation lowers it. A stream
    that has filled its part of the tile waits for the other."""

    def __init__(self, m, engine, k_write, v_write, keys_shape):
        p = engine.parameters
        lanes, cols, width = p.lanes, p.cols, p.format.width
        e = p.elements_per_lane
        shift = (lanes - 1).bit_length()
        self._cols, self._groups, self._e = cols, cols // lanes, e
        self.loaded = loaded = Array(Signal(name=f"loaded{h}") for h in range(2))
        self.tile_size = Array(Signal(range(cols + 1), name=f"tile_size{h}") for h in range(2))
        self.total = Signal(keys_shape, name="load_total")
        self.base = Signal(keys_shape, name="load_base")
        self.active, self.half = Signal(name="load_active"), Signal(name="load_half")
        remaining = self.total - self.base
        tile = Mux(remaining > cols, cols, remaining)
        can_load = self.active & ~loaded[self.half]
        key, part, beat, key_full, key_ends = self._cursor(m, "key", engine.key, can_load, tile)
        for lane in range(lanes):  # a key beat to its column's bank
            m.d.comb += [
                k_write[lane].addr.eq(self.key_address(self.half, key >> shift, part)),
                k_write[lane].data.eq(engine.key.payload),
                k_write[lane].en.eq(beat & ((key & (lanes - 1)) == lane))]
        key, part, beat, value_full, value_ends = self._cursor(m, "value", engine.value,
                                                               can_load, tile)
        for lane in range(lanes):  # a value beat to every lane's bank
            m.d.comb += [
                v_write[lane].addr.eq(self.value_address(self.half, key, part)),
                v_write[lane].data.eq(_element(engine.value.payload, lane, width)),
                v_write[lane].en.eq(beat)]
        with m.If((key_full | key_ends) & (value_full | value_ends)):
            m.d.sync += [key_full.eq(0), value_full.eq(0), loaded[self.half].eq(1),
                         self.tile_size[self.half].eq(tile), self.half.eq(~self.half),
                         self.base.eq(self.base + tile)]
            with m.If(self.base + tile >= self.total):
                m.d.sync += self.active.eq(0)

    def _cursor(self, m, name, port, can_load, tile):
        """Stream ``port``'s place in the tile: its key and part (a beat a cycle while
        ``can_load``, key by key), the beat taken now, ``full`` (its part of the tile is in:
        it waits for the other stream) and whether this beat ends its part."""
        key = Signal(range(self._cols), name=f"load_{name}_key")
        part = Signal(range(self._e), name=f"load_{name}_part")
        full = Signal(name=f"load_{name}_full")
        m.d.comb += port.ready.eq(can_load & ~full)
        beat = port.valid & port.ready
        last = (part == self._e - 1) & (key == tile - 1)
        with m.If(beat):
            m.d.sync += part.eq(part + 1)
            with m.If(part == self._e - 1):
                m.d.sync += [part.eq(0), key.eq(key + 1)]
                with m.If(key == tile - 1):
                    m.d.sync += [key.eq(0), full.eq(1)]
        return key, part, beat, full, beat & last

    def key_address(self, half, group, part):
        """Address in a key bank of part ``part`` of the key of column group ``group``."""
        return half * (self._groups * self._e) + group * self._e + part

    def value_address(self, half, key, part):
        """Address in a value bank of lane part ``part`` of key ``key``'s value."""
        return half * (self._cols * self._e) + key * self._e + part

    def begin(self, keys):
        """Statements that start loading a job's ``keys`` keys into half 0."""
        return [self.total.eq(keys), self.base.eq(0), self.active.eq(1), self.half.eq(0)]
