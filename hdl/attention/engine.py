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
load Q       ``q' = fma(q, 1/sqrt(D), 0)`` per element            ``rows * E + L + 2``
per key tile (``nk`` keys), once its keys and values are in:
scores       ``S = fma(q'[d], k[d], S)`` for d in order, every    ``D * T + (D - 1) * b +
             (row, column group) of the ``R' x C`` tile           L + 3``
             interleaved
maximum      ``m_new = max(m, visible scores)``, P columns of a   ``rows * C / P + log2(P)
             row per cycle                                        + 3``
exponentials ``alpha = exp(m - m_new)``, ``p = exp(S - m_new)``   ``rows * (C + 1) + A + X
                                                                 + 4``
scale        ``acc = fma(acc, alpha, 0)``                         ``rows * (E + 1) + L + 3``
accumulate   ``acc[d] = fma(p_j, v_j[d], acc[d])``, ``l`` with    ``nk * rows * (E + 1) +
             ``v = 1``, key by key, waiting ``w`` cycles after    (nk - 1) * w + L + 3``
             each key but the tile's last
then:
reciprocal   ``1 / l``                                            ``rows + Rc + 3``
output       ``o = fma(acc, 1/l, 0)``, streamed out               ``rows * E + L + 4``
============ =================================================== ===========================

(``R``, ``C`` are the parameters ``rows`` and ``cols``: the score phase runs the job's rows,
or more of the tile's, ``R' = max(rows, ceil(L * P / C))``
(:meth:`~ternforge.hdl.attention.parameters.AttentionParameters.score_rows`), its
``T = R' * C / P`` score accumulators in turn, so that each is reused no sooner than ``T >= L``
cycles later; when ``T = L`` (``b = 1``) a round of them waits a cycle more
(:meth:`~ternforge.hdl.attention.parameters.AttentionParameters.score_period`), so that a
result reaches its next operation through the operand register. An accumulator is reused
``rows * (E + 1)`` cycles later, which must be at least ``L + 2`` (its bank's read port is
transparent to the write of its result): with fewer, the accumulation waits ``w = L + 2 -
rows * (E + 1)`` cycles after a key
(:meth:`~ternforge.hdl.attention.parameters.AttentionParameters.accumulate_pause`), so that
more lanes than ``D / (L + 1)`` still pay at one query row. ``A``, ``X``, ``Rc`` are the
adder's, exponential's and reciprocal's latencies.)

Timing. Every path between registers is a few logic levels: an operation's loop index is
registered (the fetch stage, with the buffers' read data and the fetched row's last visible
column) and its operands are registered before a unit takes them; the loop's last indices,
the job's and the tile's derived facts are registers; the units' results are always taken
(the fmas never stall), those for the output through a buffer for which an output operation
is issued only when it has room; the maximum goes through a registered tree, a
compare-and-select a stage; the key and value streams come through registers.

Loading runs beside all of this: from the job's acceptance a loader takes the key stream's
beats into the key banks and the value stream's into the value banks of one half of the
(double) buffers, while the tile in the other half is computed; each stream a beat a cycle,
independently, through a register (a cycle later), so a tile's ``nk`` keys take
``nk * E + 1`` cycles when the streams come together (a key beat and a value beat a cycle:
*paired*) and ``2 * nk * E + 1`` when a key's ``E`` key beats come before its ``E`` value
beats on one bus (*sequential*). A tile costs its
load cycles only when they outlast the previous tile's computation (never at ``rows = 1``
sequential, where the computation takes ``2 * nk * E + C`` cycles and more).
:meth:`~ternforge.hdl.attention.parameters.AttentionParameters.cycles` follows both exactly.

Streams: ``job`` (``rows``, ``keys``, the ``position`` of row 0 and ``row_step``, 1 for causal
prefill rows at consecutive positions and 0 for decode rows at one position; key ``j`` is
visible to row ``r`` when ``j <= position + r * row_step``), then ``query`` (``rows * E``
beats), ``key`` and ``value`` (``keys * E`` beats each, each stream in key order),
and ``output`` (``rows * E`` beats, ``last`` on the job's last).
"""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
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
    """An unsigned key that orders floating-point bit patterns by value (NaN aside): a total
    order on bit patterns, whose least is all ones."""
    return Mux(bits[width - 1], ~bits, bits | (1 << (width - 1)))


def _times(value, constant):
    """``value * constant`` as a sum of shifted copies of ``value`` (adders, never a DSP
    multiplier, for a constant factor)."""
    terms = [value << k for k in range(constant.bit_length()) if constant >> k & 1]
    return sum(terms[1:], terms[0]) if terms else Const(0)


def _larger(a, b, width):
    """The larger of bit patterns ``a`` and ``b`` by :func:`_ordered` (either when equal:
    the same bits)."""
    return Mux(_ordered(b, width) > _ordered(a, width), b, a)


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
        core.read_addresses()
        with m.FSM(name="phase"):
            for state, body in core.phases():
                with m.State(state):
                    body()
        return m


class _Core:
    """The engine's arithmetic units, banks, registers and shared control (a loop nest, a
    fetch stage, the units' operand registers and the output buffer), and one method per
    phase of the module documentation's table (each the body of its state of the ``phase``
    FSM)."""

    def __init__(self, m, engine):
        self.m, self.engine = m, engine
        p = engine.parameters
        self.fmt, d_max, big_r, big_c, lanes = p.format, p.head_dim, p.rows, p.cols, p.lanes
        self.d_max, self.big_r, self.big_c, self.lanes = d_max, big_r, big_c, lanes
        self.width, self.e_max = self.fmt.width, p.elements_per_lane
        self.shift = (lanes - 1).bit_length()
        self.groups = p.column_groups
        # bits of a row, a column group and a column (or ``cols``) of the loop's indices
        self.row_bits, self.group_bits, self.column_bits = (
            max(1, (n - 1).bit_length()) for n in (big_r, self.groups, big_c + 1))
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
        self.least = Const(-1, width)  # the least bit pattern by _ordered
        self.scale = Const(float_constant(1 / d_max ** 0.5, fmt), width)
        self.sign = 1 << (width - 1)
        self._registers(p.max_keys)
        self._control(p.max_keys)
        self._output_buffer()

    def _units(self):
        """The units, each taking its operands from registers (``fma_operands``, one per
        lane, ``add_operands`` and ``recip_operands``, loaded with their ``*_valid`` a cycle
        before the unit takes them), their results always taken."""
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
        self.fma_valid = Signal(name="fma_valid")  # the lanes in lockstep: one valid
        self.fma_operands = [_operand_register(m, unit, self.fma_valid, f"fma{lane}")
                             for lane, unit in enumerate(self.fmas)]
        self.add_valid = Signal(name="add_valid")
        self.add_operands = _operand_register(m, self.add, self.add_valid, "add")
        self.recip_valid = Signal(name="reciprocal_valid")
        self.recip_operands = _operand_register(m, self.recip, self.recip_valid, "reciprocal")
        m.d.sync += [self.fma_valid.eq(0), self.add_valid.eq(0), self.recip_valid.eq(0)]

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
        # transparent: an accumulator is read as its previous result is written
        self.acc_write, self.acc_read = _lane_banks(m, "acc_bank", lanes, width,
                                                    self.acc_depth, transparent=True)

    def _registers(self, max_keys):
        big_r, big_c, width = self.big_r, self.big_c, self.width
        m = self.m
        # job registers
        self.rows = Signal(range(1, big_r + 1), name="job_rows")
        self.score_rows = Signal(range(1, big_r + 1), name="score_rows")
        self.keys = Signal(range(1, max_keys + 1), name="job_keys")
        self.position = Signal(range(max_keys), name="job_position")
        self.row_step = Signal(name="job_row_step")
        # the query stream is ready (``taking``) for ``query_beats`` more beats, the next
        # to Q bank address ``query_address``
        self.taking = Signal(name="taking_queries")
        self.query_beats = Signal(range(big_r * self.e_max + 1), name="query_beats")
        self.query_address = Signal(range(big_r * self.e_max), name="query_address")
        m.d.comb += self.engine.query.ready.eq(self.taking)
        # the score accumulators' round waits a cycle (b = 1); a result reaches its next
        # operation straight from the fma (a period of L + 1)
        self.score_bubble, self.score_forward = Signal(name="score_bubble"), \
            Signal(name="score_forward")
        # the accumulation's wait after a key (accumulate_pause of the job's rows), and the
        # cycles of it still to wait (the loop's ``hold`` the cycle after, while more than 1)
        pause = max(self.engine.parameters.pauses)
        if pause:
            self.pause_cycles = Signal(range(pause + 1), name="pause_cycles")
            self.pausing = Signal(range(pause + 1), name="pausing")
        self.key_base = Signal(range(max_keys + big_c), name="key_base")
        self.tile_keys = Signal(range(big_c + 1), name="tile_keys")
        self.first_tile = Signal(name="first_tile")
        self.denominators = Signal(name="denominators")  # the reciprocal phase reads them
        self.half = Signal(name="half")  # the half of the key/value banks being computed
        # derived a cycle late (used many cycles after what they follow changes): the tile's
        # column j is visible to row r when j <= horizon + r * row_step (the horizon clamped
        # to -R .. C, which changes no comparison with a column); the tile is the last
        self.horizon = Signal(range(-big_r, big_c + 1), name="horizon")
        self.final_tile = Signal(name="final_tile")
        difference = self.position - self.key_base
        m.d.sync += [self.horizon.eq(Mux(difference < -big_r, -big_r,
                                         Mux(difference > big_c, big_c, difference))),
                     self.final_tile.eq(self.key_base + self.tile_keys >= self.keys)]
        # per-row state and the score / probability tile (``scores[row][column]``, a lane's
        # ``lane_scores[lane][row][group]``, or ``tile_cells[row * cols + column]``)
        self.tile_cells = cells = [Signal(width, name=f"s{r}_{j}") for r in range(big_r)
                                   for j in range(big_c)]
        self.scores = Array(Array(cells[r * big_c:(r + 1) * big_c]) for r in range(big_r))
        self.lane_scores = [Array(Array(cells[r * big_c + lane:(r + 1) * big_c:self.lanes])
                                  for r in range(big_r)) for lane in range(self.lanes)]
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
        index, looping = loop.index, loop.looping
        # the fetch stage: an operation whose buffers are being read, and its row's last
        # visible key (``f_limit``, the row being index[1])
        self.fetched, self.fetching = Signal(), Signal()  # fetching: the phase has a fetch stage
        self.f_index = [Signal.like(i, name=f"f_i{n}") for n, i in enumerate(index)]
        self.f_limit = Signal(range(-self.big_r, self.big_c + self.big_r), name="f_limit")
        # go: the fetch stage moves (it waits for room in the output buffer); hold (a
        # register): the loop waits a cycle, a bubble entering the fetch stage
        self.go, self.hold = Signal(init=1), Signal()
        m.d.comb += loop.step.eq(self.go & ~self.hold)
        m.d.sync += self.hold.eq(0)
        with m.If(self.go & self.fetching):
            m.d.sync += [self.fetched.eq(looping & ~self.hold),
                         *(f.eq(i) for f, i in zip(self.f_index, index)),
                         self.f_limit.eq(self.horizon + Mux(self.row_step, self.row(index[1]),
                                                            0))]
        for port in (*self.q_read, *self.k_read, *self.v_read, *self.acc_read):
            m.d.comb += port.en.eq(self.go)
        # operations in the operand registers (``entering`` the units), and in flight in the
        # units (the fmas, and the add -> exp and reciprocal chains): ``drained`` when none is
        self.pending = Signal(range(64), name="pending")
        self.drained = Signal(init=1, name="drained")
        self.returned = Signal()
        entering = self.fma_valid | self.add_valid | self.recip_valid
        pending = self.pending + entering - self.returned
        m.d.sync += [self.pending.eq(pending), self.drained.eq(pending == 0)]
        self.entering = entering
        self.idle = ~looping & ~self.fetched & ~entering & self.drained

    def _output_buffer(self):
        """The output buffer: an output operation is issued only when the buffer has room
        for its result (``room`` counts its entries neither filled nor promised)."""
        m, output = self.m, self.engine.output
        depth = self.engine.parameters.fma_latency + 4  # an operation's cycles to its beat
        self.outputs = m.submodules.outputs = SyncFIFOBuffered(
            width=len(output.payload.as_value()), depth=depth)
        self.room = Signal(range(depth + 1), init=depth, name="output_room")
        self.promised = Signal()
        m.d.comb += [output.valid.eq(self.outputs.r_rdy),
                     output.payload.eq(self.outputs.r_data),
                     self.outputs.r_en.eq(output.ready)]
        m.d.sync += self.room.eq(self.room - self.promised + (output.valid & output.ready))

    # -- shared pieces of the phases

    def row(self, index):
        """A loop index that is a row (its row bits)."""
        return index[:self.row_bits]

    def group(self, index):
        """A loop index that is a column group."""
        return index[:self.group_bits]

    def column(self, index):
        """A loop index that is a column (or ``cols``)."""
        return index[:self.column_bits]

    def element(self, index):
        """A loop index that is an element of a lane (or ``E``)."""
        return Value.cast(index)[:self.e_max.bit_length()]

    def accumulator(self, row, element):
        """Address of element ``element`` (``E``: the denominator) of row ``row``'s
        accumulators."""
        return _times(self.row(row), self.e_max + 1) + self.element(element)

    def lane_slot(self, group, lane):
        """Column ``group * lanes + lane`` of the tile."""
        return Cat(Const(lane, self.shift), group) if self.shift else group

    def tag(self, destination, address):
        """An fma tag: ``address`` (through a named signal) and ``destination``."""
        field = Signal(self.address_bits, name=f"tag_to_{destination.value}")
        self.m.d.comb += field.eq(address)
        return Cat(field, Const(destination.value, 2))

    def load_fmas(self, valid, a, b, c, tag):
        """The fmas' operand registers: every lane's operands (``a``, ``b``, ``c`` map a
        lane to a value) and lane 0's tag (the lanes' results are routed by it)."""
        m = self.m
        m.d.sync += [self.fma_valid.eq(valid), self.fma_operands[0].tag.eq(tag)]
        for lane, operands in enumerate(self.fma_operands):
            m.d.sync += [operands.a.eq(a(lane)), operands.b.eq(b(lane)),
                         operands.c.eq(c(lane))]

    def issue(self, a, b, c, destination, address):
        """:meth:`load_fmas` from the fetch stage."""
        m = self.m
        m.d.comb += self.fetching.eq(1)
        self.load_fmas(self.fetched & self.go, a, b, c, self.tag(destination, address))

    def shown(self, column):
        """Whether column ``column`` of the tile is visible to the fetched row (the causal
        mask)."""
        return (column < self.tile_keys) & (column <= self.f_limit)

    # -- results

    def route_results(self):
        """fma results, in lockstep: to the Q banks, scores, accumulators or the output
        buffer."""
        m, buffer = self.m, self.outputs
        result = self.fmas[0].result
        tag = data.View(self.fma_tag, result.payload.tag)
        destination, target = tag.destination, tag.address
        flat = Array(self.tile_cells)
        m.d.comb += [buffer.w_en.eq(result.valid & (destination == _Destination.OUTPUT)),
                     buffer.w_data.eq(Cat(*(unit.result.payload.value for unit in self.fmas),
                                          target[0]))]
        for lane, unit in enumerate(self.fmas):
            value = unit.result.payload.value
            m.d.comb += [
                self.q_write[lane].addr.eq(target), self.q_write[lane].data.eq(value),
                self.q_write[lane].en.eq(result.valid & (destination == _Destination.QUERY)),
                self.acc_write[lane].addr.eq(target), self.acc_write[lane].data.eq(value),
                self.acc_write[lane].en.eq(result.valid
                                           & (destination == _Destination.ACCUMULATOR)),
                unit.result.ready.eq(1),
            ]
            with m.If(result.valid & (destination == _Destination.SCORE)):
                m.d.sync += flat[self.lane_slot(target, lane)].eq(value)
        m.d.comb += self.returned.eq(result.valid | self.exp.result.valid
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
        value = exp.result.payload.value
        with m.If(exp.result.valid):
            with m.If(tag.column == self.big_c):
                m.d.sync += self.alpha[tag.row].eq(Mux(tag.visible, value, self.one))
            with m.Else():
                m.d.sync += self.scores[tag.row][tag.column].eq(
                    Mux(tag.visible, value, self.zero))
        with m.If(recip.result.valid):
            m.d.sync += self.inverse[recip.result.payload.tag].eq(recip.result.payload.value)

    def load_keys_and_values(self):
        """The loader (:class:`_KeyValueLoader`) that fills the free half of the key and
        value banks."""
        self.loader = _KeyValueLoader(self.m, self.engine, self.k_write, self.v_write,
                                      self.keys.shape(), self.half)

    def read_addresses(self):
        """The banks' read addresses, from the loop's indices in every phase (each bank is
        read in the phases that use its data): Q and K by (d, row, group), V by (key, row,
        element), the accumulators by (row, element), or the row's denominator while
        ``denominators``."""
        m, index, shift = self.m, self.loop.index, self.shift
        for lane in range(self.lanes):
            m.d.comb += [
                self.q_read[lane].addr.eq(_times(self.row(index[1]), self.e_max)
                                          + (index[0] >> shift)),
                self.k_read[lane].addr.eq(self.loader.key_address(
                    self.half, self.group(index[2]), index[0] >> shift)),
                self.v_read[lane].addr.eq(self.loader.value_address(
                    self.half, self.column(index[0]), self.element(index[2]))),
                self.acc_read[lane].addr.eq(self.accumulator(
                    index[1], Mux(self.denominators, self.e_max, self.element(index[2]))))]

    # -- the phases, in order

    def phases(self):
        """The states of the ``phase`` FSM in order, each with the method that is its body."""
        return [("JOB", self.take_job), ("LOAD_Q", self.load_queries),
                ("TILE", self.wait_for_tile), ("SCORES", self.scores_phase),
                ("MAXIMUM", self.maximum_phase), ("EXPONENTIALS", self.exponentials_phase),
                ("SCALE", self.scale_phase), ("ACCUMULATE", self.accumulate_phase),
                ("RECIPROCAL", self.reciprocal_phase), ("OUTPUT", self.output_phase)]

    def take_job(self):
        m, job, p = self.m, self.engine.job, self.engine.parameters
        m.d.comb += job.ready.eq(1)
        with m.If(job.valid):
            payload = job.payload
            fewest = p.score_rows(1)
            # the rows (a prefix: the score rounds grow with the rows) whose score rounds
            # wait a cycle, and those whose results are forwarded
            bubble = sum(p.score_period(r) > p.score_slots(r) for r in range(1, self.big_r + 1))
            forward = sum(p.score_period(r) == p.fma_latency + 1
                          for r in range(1, self.big_r + 1))
            if any(p.pauses):
                m.d.sync += self.pause_cycles.eq(Array(p.pauses)[payload.rows])
            m.d.sync += [self.rows.eq(payload.rows), self.keys.eq(payload.keys),
                         self.score_rows.eq(Mux(payload.rows < fewest, fewest, payload.rows)),
                         self.score_bubble.eq(_at_most(payload.rows, bubble, self.big_r)),
                         self.score_forward.eq(_at_most(payload.rows, forward, self.big_r)),
                         self.position.eq(payload.position), self.row_step.eq(payload.row_step),
                         self.key_base.eq(0), self.first_tile.eq(1), self.half.eq(0),
                         self.taking.eq(1), self.query_address.eq(0),
                         self.query_beats.eq(_times(payload.rows, self.e_max)),
                         *self.loader.begin(payload.keys),
                         *(x.eq(self.minus_inf) for x in self.running_max)]
            m.next = "LOAD_Q"

    def load_queries(self):
        """From the query stream into the fmas: ``q' = fma(q, 1/sqrt(D), 0)``, the rows'
        beats in order (no loop: a count of beats)."""
        m, query = self.m, self.engine.query
        accepted = query.valid & self.taking
        with m.If(accepted):
            m.d.sync += [self.query_beats.eq(self.query_beats - 1),
                         self.query_address.eq(self.query_address + 1)]
            with m.If(self.query_beats == 1):
                m.d.sync += self.taking.eq(0)
        self.load_fmas(accepted, lambda lane: _element(query.payload, lane, self.width),
                       lambda lane: self.scale, lambda lane: self.zero,
                       self.tag(_Destination.QUERY, self.query_address))
        with m.If(~self.taking & ~self.entering & self.drained):
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
        m, f_index, lanes = self.m, self.f_index, self.lanes
        # a round of the accumulators (one d) after the first waits a cycle with the bubble
        m.d.sync += self.hold.eq(self.score_bubble & self.loop.steps[0] & ~self.loop.last[0])
        selected = f_index[0] & (lanes - 1)
        query = Array(port.data for port in self.q_read)[selected]
        row, group = self.row(f_index[1]), self.group(f_index[2])
        self.issue(lambda lane: query,
                   lambda lane: self.k_read[lane].data.word_select(selected, self.width),
                   lambda lane: Mux(f_index[0] == 0, self.zero, Mux(
                       self.score_forward, self.fmas[lane].result.payload.value,
                       self.lane_scores[lane][row][group])),
                   _Destination.SCORE, _times(row, self.groups) + group)
        with m.If(self.idle):
            self.loop.start(m, 1, self.rows, self.groups)
            m.next = "MAXIMUM"

    def maximum_phase(self):
        """``m_new = max(m, visible scores)``: a row's ``lanes`` columns a cycle into a tree
        of maxima, a stage a level, folded into the row's ``m_new``."""
        m, loop, width = self.m, self.loop, self.width
        row, group = self.row(self.f_index[1]), self.group(self.f_index[2])
        m.d.comb += self.fetching.eq(1)
        columns = [self.lane_slot(group, lane) for lane in range(self.lanes)]
        shown = [self.shown(column) for column in columns]
        # a masked score becomes the least bit pattern, which changes no maximum
        leaves = [self.lane_scores[lane][row][group] | Mux(seen, self.zero, self.least)
                  for lane, seen in enumerate(shown)]
        stages = [self._maximum_stage("max_leaf", self.fetched, row, group == 0,
                                      Cat(*shown).any(), leaves)]
        while len(stages[-1].values) > 1:
            last, values = stages[-1], stages[-1].values
            stages.append(self._maximum_stage(
                f"max_tree{len(stages)}", last.valid, last.row, last.first, last.any,
                [_larger(a, b, width) for a, b in zip(values[0::2], values[1::2])]))
        self._fold_maximum(stages[-1])
        with m.If(~loop.looping & ~self.fetched & ~Cat(s.valid for s in stages).any()):
            loop.start(m, 1, self.rows, self.big_c + 1)
            m.next = "EXPONENTIALS"

    def _maximum_stage(self, name, valid, row, first, seen, values):
        """A register stage of the maximum's tree: ``values`` of a row's group (the
        ``first`` of the row), whether any of them is visible (``any``); the last stage
        also the row's running maximum (``start``)."""
        m, width = self.m, self.width
        stage = SimpleNamespace(
            valid=Signal(name=f"{name}_valid"), row=Signal.like(row, name=f"{name}_row"),
            first=Signal(name=f"{name}_first"), any=Signal(name=f"{name}_any"),
            values=[Signal(width, name=f"{name}{n}") for n in range(len(values))])
        m.d.sync += [stage.valid.eq(valid), stage.row.eq(row), stage.first.eq(first),
                     stage.any.eq(seen),
                     *(register.eq(value) for register, value in zip(stage.values, values))]
        if len(values) == 1:
            stage.start = Signal(width, name=f"{name}_start")
            m.d.sync += stage.start.eq(self.running_max[row])
        return stage

    def _fold_maximum(self, stage):
        """The tree's maximum into the row's (from its running maximum on its first
        group), kept in ``max_row`` and written to ``m_new`` and ``any`` of the row."""
        m, width = self.m, self.width
        row_max, row_any = Signal(width, name="max_row"), Signal(name="max_row_any")
        best = Signal(width, name="max_best")
        seen = Signal(name="max_seen")
        m.d.comb += [best.eq(_larger(Mux(stage.first, stage.start, row_max), stage.values[0],
                                     width)),
                     seen.eq(stage.any | (row_any & ~stage.first))]
        with m.If(stage.valid):
            m.d.sync += [row_max.eq(best), row_any.eq(seen), self.new_max[stage.row].eq(best),
                         self.any_visible[stage.row].eq(seen)]

    def exponentials_phase(self):
        """``alpha = exp(m - m_new)`` and ``p = exp(S - m_new)``, from the fetch stage (the
        row's and column's registers; no buffers)."""
        m, operands = self.m, self.add_operands
        row, column = self.row(self.f_index[1]), self.column(self.f_index[2])
        is_alpha = column == self.big_c
        tag = Signal(_EXP_TAG, name="exp_tag")
        m.d.comb += [self.fetching.eq(1), tag.row.eq(row), tag.column.eq(column),
                     tag.visible.eq(Mux(is_alpha, self.any_visible[row], self.shown(column)))]
        m.d.sync += [self.add_valid.eq(self.fetched),
                     operands.a.eq(Mux(is_alpha, self.running_max[row],
                                       self.scores[row][column])),
                     operands.b.eq(self.new_max[row] ^ self.sign),
                     operands.tag.eq(tag)]
        with m.If(self.idle):
            m.d.sync += [self.running_max[r].eq(self.new_max[r]) for r in range(self.big_r)]
            self.loop.start(m, 1, self.rows, self.e_max + 1)
            m.next = "SCALE"

    def scale_phase(self):
        """``acc = fma(acc, alpha, 0)`` (zero on the first tile)."""
        m, r_f, c_f = self.m, self.f_index[1], self.f_index[2]
        self.issue(lambda lane: Mux(self.first_tile, self.zero, self.acc_read[lane].data),
                   lambda lane: self.alpha[self.row(r_f)], lambda lane: self.zero,
                   _Destination.ACCUMULATOR, self.accumulator(r_f, c_f))
        with m.If(self.idle):
            self.loop.start(m, self.tile_keys, self.rows, self.e_max + 1)
            m.next = "ACCUMULATE"

    def accumulate_phase(self):
        """``acc[d] = fma(p_j, v_j[d], acc[d])`` key by key, the denominator with ``v = 1``."""
        m, f_index, loop = self.m, self.f_index, self.loop
        # after a key but the tile's last, the loop waits ``pause_cycles`` cycles
        if any(self.engine.parameters.pauses):
            key_done = loop.steps[0] & ~loop.last[0]
            m.d.sync += [self.hold.eq(Mux(key_done, self.pause_cycles != 0, self.pausing > 1)),
                         self.pausing.eq(Mux(key_done, self.pause_cycles,
                                             self.pausing - (self.pausing != 0)))]
        r_f, c_f = f_index[1], f_index[2]
        probability = self.scores[self.row(r_f)][self.column(f_index[0])]
        self.issue(lambda lane: probability,
                   lambda lane: Mux(c_f == self.e_max, self.one, self.v_read[lane].data),
                   lambda lane: self.acc_read[lane].data,
                   _Destination.ACCUMULATOR, self.accumulator(r_f, c_f))
        with m.If(self.idle):
            m.d.sync += [self.key_base.eq(self.key_base + self.tile_keys),
                         self.first_tile.eq(0), self.half.eq(~self.half)]
            m.d.comb += self.loader.release.eq(1)
            with m.If(self.final_tile):
                m.d.sync += self.denominators.eq(1)
                self.loop.start(m, 1, self.rows, 1)
                m.next = "RECIPROCAL"
            with m.Else():
                m.next = "TILE"

    def reciprocal_phase(self):
        """``1 / l``, from lane 0's copy of the denominator."""
        m, operands = self.m, self.recip_operands
        m.d.comb += self.fetching.eq(1)
        m.d.sync += [self.recip_valid.eq(self.fetched), operands.a.eq(self.acc_read[0].data),
                     operands.tag.eq(self.row(self.f_index[1]))]
        with m.If(self.idle):
            m.d.sync += self.denominators.eq(0)
            self.loop.start(m, 1, self.rows, self.e_max)
            m.next = "OUTPUT"

    def output_phase(self):
        """``o = fma(acc, 1/l, 0)``, into the output buffer while it has room."""
        m, r_f, c_f = self.m, self.f_index[1], self.f_index[2]
        m.d.comb += [self.go.eq(self.room != 0), self.promised.eq(self.fetched & self.go)]
        self.issue(lambda lane: self.acc_read[lane].data,
                   lambda lane: self.inverse[self.row(r_f)],
                   lambda lane: self.zero, _Destination.OUTPUT,
                   (r_f == self.rows - 1) & (c_f == self.e_max - 1))
        with m.If(self.idle):
            m.next = "JOB"


def _element(value, lane, width):
    """Lane ``lane``'s element of a beat."""
    return value[lane * width:(lane + 1) * width]


def _at_most(rows, limit, most):
    """Whether ``rows`` (1 to ``most``) is at most ``limit`` (no constant comparison)."""
    return Const(int(limit >= 1)) if limit < 1 or limit >= most else rows <= limit


def _operand_register(m, unit, valid, name):
    """A register of ``unit``'s operand payload (``<name>_operands``), driving its operands
    with ``valid``."""
    payload = Signal(unit.operands.payload.shape(), name=f"{name}_operands")
    m.d.comb += [unit.operands.valid.eq(valid), unit.operands.payload.eq(payload)]
    return payload


def _lane_banks(m, name, lanes, shape, depth, *, transparent=False):
    """A memory per lane (``name0``, ``name1``...): their write ports and read ports (read
    ports ``transparent`` to the write port: a read of the address being written returns
    the data written)."""
    ports = []
    for lane in range(lanes):
        bank = m.submodules[f"{name}{lane}"] = memory.Memory(shape=shape, depth=depth, init=[])
        write = bank.write_port()
        ports.append((write, bank.read_port(transparent_for=(write,) if transparent else ())))
    return [port[0] for port in ports], [port[1] for port in ports]


class _LoopNest:
    """Three nested counters (``index[0]`` outermost), shared by the engine's phases: they
    advance on ``step`` while ``looping``, which falls after the last step of a
    :meth:`start`. Whether each index is at its last value is a register (``last``), set
    from registers (whether its bound is 1, and its bound less 2), and ``steps[k]`` says
    that index ``k`` steps now (every inner index wraps)."""

    def __init__(self, m, limit):
        self.index = index = [Signal(range(limit), name=f"i{i}") for i in range(3)]
        self.last = last = [Signal(name=f"last{i}") for i in range(3)]
        self.ones = [Signal(name=f"one{i}") for i in range(3)]
        self.penultimate = [Signal(range(limit), name=f"penultimate{i}") for i in range(3)]
        self.looping, self.step, self.ending = Signal(), Signal(), Signal()
        self.steps = [Signal(name=f"steps{i}") for i in range(3)]
        m.d.comb += [self.steps[2].eq(self.step & self.looping),
                     self.steps[1].eq(self.steps[2] & last[2]),
                     self.steps[0].eq(self.steps[1] & last[1]),
                     self.ending.eq(self.steps[0] & last[0])]
        for i, at_last, one, penultimate, steps in zip(index, last, self.ones,
                                                        self.penultimate, self.steps):
            with m.If(steps):
                m.d.sync += [i.eq(Mux(at_last, 0, i + 1)),
                             at_last.eq(Mux(at_last, one, i == penultimate))]
        with m.If(self.ending):
            m.d.sync += self.looping.eq(0)

    def start(self, m, *bounds):
        m.d.sync += [self.looping.eq(1), *(i.eq(0) for i in self.index)]
        for at_last, one, penultimate, bound in zip(self.last, self.ones, self.penultimate,
                                                     bounds):
            m.d.sync += [at_last.eq(bound == 1), one.eq(bound == 1),
                         penultimate.eq(bound - 2)]


class _KeyValueLoader:
    """The engine's loader: the key stream's beats into the key banks and the value stream's
    into the value banks of the free half of the double buffers, each stream a beat a cycle
    at its own pace (a key's ``E`` beats, key by key); ``loaded[h]`` rises the cycle after
    half ``h`` holds a tile (of ``tile_size[h]`` keys) of both, and falls when the
    computation releases its half (``release``, of ``computed_half``). A stream that has
    filled its part of the tile waits for the other. Each stream comes through a register
    (taking the job's beats only), so that its ``valid`` reaches few gates; whether the
    loader is ``open`` (active, its half free) is a register, set from the state's next
    values."""

    def __init__(self, m, engine, k_write, v_write, keys_shape, computed_half):
        p = engine.parameters
        lanes, cols, width = p.lanes, p.cols, p.format.width
        e = p.elements_per_lane
        shift = (lanes - 1).bit_length()
        self._cols, self._groups, self._e = cols, cols // lanes, e
        self._beats_shape = range(p.max_keys * e + 1)
        self.loaded = loaded = Array(Signal(name=f"loaded{h}") for h in range(2))
        self.tile_size = Array(Signal(range(cols + 1), name=f"tile_size{h}") for h in range(2))
        self.release = Signal()
        self.total = Signal(keys_shape, name="load_total")
        self.base = Signal(keys_shape, name="load_base")
        self.active, self.half = Signal(name="load_active"), Signal(name="load_half")
        # the tile being loaded: its keys, its last key and whether it is the last tile,
        # a cycle after the base moves (its last beat comes E beats or more later)
        remaining = self.total - self.base
        tile = Signal(range(cols + 1), name="load_tile")
        last_key = Signal(range(cols), name="load_last_key")
        final = Signal(name="load_final")
        m.d.sync += [tile.eq(Mux(remaining > cols, cols, remaining)),
                     last_key.eq(Mux(remaining > cols, cols - 1, remaining - 1)),
                     final.eq(remaining <= cols)]
        self.open = Signal(name="load_open")
        keys = self._cursor(m, "key", engine.key, last_key)
        for lane in range(lanes):  # a key beat to its column's bank
            m.d.comb += [
                k_write[lane].addr.eq(self.key_address(self.half, keys.key >> shift, keys.part)),
                k_write[lane].data.eq(keys.payload),
                k_write[lane].en.eq(keys.beat & ((keys.key & (lanes - 1)) == lane))]
        values = self._cursor(m, "value", engine.value, last_key)
        self._streams = (keys, values)
        for lane in range(lanes):  # a value beat to every lane's bank
            m.d.comb += [
                v_write[lane].addr.eq(self.value_address(self.half, values.key, values.part)),
                v_write[lane].data.eq(_element(values.payload, lane, width)),
                v_write[lane].en.eq(values.beat)]
        # the tile is in the cycle after both streams' last beats (a stream's sets its
        # ``full``)
        complete = keys.full & values.full
        with m.If(complete):
            m.d.sync += [keys.full.eq(0), values.full.eq(0), loaded[self.half].eq(1),
                         self.tile_size[self.half].eq(tile), self.half.eq(~self.half),
                         self.base.eq(self.base + tile)]
            with m.If(final):
                m.d.sync += self.active.eq(0)
        with m.If(self.release):
            m.d.sync += loaded[computed_half].eq(0)
        # the loader is open next cycle when it is active and its half free
        half = Mux(complete, ~self.half, self.half)
        free = ~Mux(half, loaded[1], loaded[0]) | (self.release & (computed_half == half))
        m.d.sync += self.open.eq(self.active & ~(complete & final) & free)

    def _cursor(self, m, name, port, last_key):
        """Stream ``port`` through a register (``staged``, its beat's ``payload``; while the
        job has ``more`` of the ``expected`` beats) and its place in the tile: its key and
        part (a beat a cycle while the loader is open and the part not ``full``, key by
        key), the beat taken now and ``full`` (its part of the tile is in: it waits for the
        tile's end)."""
        cursor = SimpleNamespace(
            staged=Signal(name=f"load_{name}_staged"),
            payload=Signal.like(port.payload, name=f"load_{name}_payload"),
            more=Signal(name=f"load_{name}_more"),
            expected=Signal(self._beats_shape, name=f"load_{name}_expected"),
            key=Signal(range(self._cols), name=f"load_{name}_key"),
            part=Signal(range(self._e), name=f"load_{name}_part"),
            full=Signal(name=f"load_{name}_full"), beat=Signal(name=f"load_{name}_beat"))
        key, part, staged = cursor.key, cursor.part, cursor.staged
        m.d.comb += [cursor.beat.eq(staged & self.open & ~cursor.full),
                     port.ready.eq(cursor.more & (~staged | cursor.beat))]
        with m.If(cursor.beat):
            m.d.sync += staged.eq(0)
        with m.If(port.ready):
            m.d.sync += [staged.eq(port.valid), cursor.payload.eq(port.payload)]
        with m.If(port.valid & port.ready):
            m.d.sync += cursor.expected.eq(cursor.expected - 1)
            with m.If(cursor.expected == 1):
                m.d.sync += cursor.more.eq(0)
        with m.If(cursor.beat):
            m.d.sync += part.eq(part + 1)
            with m.If(part == self._e - 1):
                m.d.sync += [part.eq(0), key.eq(key + 1)]
                with m.If(key == last_key):
                    m.d.sync += [key.eq(0), cursor.full.eq(1)]
        return cursor

    def key_address(self, half, group, part):
        """Address in a key bank of part ``part`` of the key of column group ``group``."""
        return Mux(half, self._groups * self._e, 0) + _times(group, self._e) + part

    def value_address(self, half, key, part):
        """Address in a value bank of lane part ``part`` of key ``key``'s value."""
        return Mux(half, self._cols * self._e, 0) + _times(key, self._e) + part

    def begin(self, keys):
        """Statements that start loading a job's ``keys`` keys into half 0 (both halves are
        free, as no stream is full, when a job ends)."""
        return [self.total.eq(keys), self.base.eq(0), self.active.eq(1), self.half.eq(0),
                self.open.eq(1), *(s.expected.eq(_times(keys, self._e)) for s in self._streams),
                *(s.more.eq(1) for s in self._streams)]
