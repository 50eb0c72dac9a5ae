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
scores       ``S = fma(q'[d], k[d], S)`` for d in order, every    ``D * R * C / P + L + 2``
             (row, column group) of the ``R x C`` tile
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

(``R``, ``C`` are the parameters ``rows`` and ``cols``: the score phase always runs the full
tile, so that every score accumulator is reused no sooner than ``R * C / P >= L`` cycles
later, and an accumulator no sooner than ``E + 1 >= L + 2``; ``A``, ``X``, ``Rc`` are the
adder's, exponential's and reciprocal's latencies.)

Loading runs beside all of this: from the job's acceptance a loader takes each key's ``E``
key beats then its ``E`` value beats, a beat a cycle, into one half of the (double) key and
value buffers while the tile in the other half is computed, so a tile costs ``2 * nk * E``
load cycles only when they outlast the previous tile's computation (never at ``rows = 1``,
where the computation takes ``2 * nk * E + C`` cycles and more). :meth:`AttentionEngine.cycles`
follows both exactly.

Streams: ``job`` (``rows``, ``keys``, the ``position`` of row 0 and ``row_step``, 1 for causal
prefill rows at consecutive positions and 0 for decode rows at one position; key ``j`` is
visible to row ``r`` when ``j <= position + r * row_step``), then ``query`` (``rows * E``
beats), ``key`` and ``value`` (``keys * E`` beats each, taken a key's row of each in turn),
and ``output`` (``rows * E`` beats, ``last`` on the job's last).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp.format import float_constant, float_format
from ..fp.functions import FLOAT_FUNCTIONS
from ..fp.ops import FloatAdd, FloatFma
from ..common.checks import check_int

__all__ = ["AttentionEngine", "lanes_fit"]

# destinations of fma results (the top two bits of its tag)
_TO_Q, _TO_S, _TO_ACC, _TO_OUT = range(4)


def _ordered(bits, width):
    """An unsigned key that orders floating-point bit patterns by value (NaN aside)."""
    return Mux(bits[width - 1], ~bits, bits | (1 << (width - 1)))


class AttentionEngine(wiring.Component):
    """Attention of a tile of queries against streamed keys and values; see the module
    documentation.

    Parameters
    ----------
    format : str or FloatFormat
        Arithmetic format (float32 by default).
    head_dim : int
        D, 8 to 256.
    rows : int
        Query rows per job (R): a prefill tile, or the query heads sharing a KV head.
    cols : int
        Keys per tile (C), a multiple of ``lanes``; ``rows * cols / lanes`` must be at least
        the fma's latency.
    max_keys : int
        The most keys of one job (sizes the key counters).
    lanes : int
        P parallel fmas, a power of two dividing D into parts of more than the fma's
        latency.

    Members
    -------
    job : ``In(stream.Signature(StructLayout({"rows", "keys", "position", "row_step"})))``
    query : ``In(stream.Signature(lanes * width))``
    key : ``In(stream.Signature(lanes * width))``
    value : ``In(stream.Signature(lanes * width))``
    output : ``Out(stream.Signature(StructLayout({"value": lanes * width, "last": 1})))``
    """

    def __init__(self, *, format="float32", head_dim=96, rows=8, cols=8, max_keys=4096,
                 lanes=1):
        self._format = float_format(format)
        check_int("Head dimension", head_dim, 8, 256)
        latency = FloatFma.latency_in(self._format)
        _check_lanes(lanes, head_dim, latency)
        check_int("Rows", rows, 1, 64)
        check_int("Columns", cols, 1, 64)
        check_int("Maximum keys", max_keys, 1, 1 << 20)
        if cols % lanes:
            raise ValueError(f"Columns must be a multiple of the {lanes} lanes, not {cols!r}")
        if rows * cols // lanes < latency:
            raise ValueError(f"Rows times columns per lane must be at least the fma latency "
                             f"({latency}), not {rows * cols // lanes!r}")
        self._d, self._rows, self._cols, self._max_keys = head_dim, rows, cols, max_keys
        self._lanes = lanes
        beat = lanes * self._format.width
        super().__init__({
            "job": In(stream.Signature(data.StructLayout({
                "rows": range(1, rows + 1), "keys": range(1, max_keys + 1),
                "position": range(max_keys), "row_step": 1}))),
            "query": In(stream.Signature(beat)),
            "key": In(stream.Signature(beat)),
            "value": In(stream.Signature(beat)),
            "output": Out(stream.Signature(data.StructLayout({"value": beat, "last": 1}))),
        })

    format = property(lambda self: self._format)
    head_dim = property(lambda self: self._d)
    rows = property(lambda self: self._rows)
    cols = property(lambda self: self._cols)
    lanes = property(lambda self: self._lanes)
    max_keys = property(lambda self: self._max_keys)

    @property
    def beat_bits(self) -> int:
        """Bits of a query, key, value or output beat (``lanes`` elements)."""
        return self._lanes * self._format.width

    def _latencies(self):
        fmt = self._format
        return (FloatFma.latency_in(fmt), FloatAdd.latency_in(fmt),
                FLOAT_FUNCTIONS["exp"].latency_in(fmt),
                FLOAT_FUNCTIONS["reciprocal"].latency_in(fmt))

    def cycles(self, rows: int, keys: int, *, first_key: int = 0) -> int:
        """Cycles of one job of ``rows`` queries against ``keys`` keys, without stalls, from
        the job accepted to the last output beat, inclusive; the first key beat arrives at
        cycle ``first_key`` (the job's acceptance being cycle 0), or is waiting, and the
        rest follow one a cycle. The loader fills one half of the key and value buffers
        while the tile in the other is computed; a tile's computation starts when both the
        previous tile's is done and its keys and values are in."""
        fma, add, exp, reciprocal = self._latencies()
        d, big_r, c, lanes = self._d, self._rows, self._cols, self._lanes
        e = d // lanes
        tile_at = [rows * e + fma + 2]  # the cycles the computation waits for each tile
        load_at = max(1, first_key)  # the cycle the loader takes its next beat
        for n, start in enumerate(range(0, keys, c)):
            nk = min(c, keys - start)
            if n >= 2:  # the tile's half is free once tile n - 2 is computed
                load_at = max(load_at, tile_at[n - 1])
            load_at += 2 * nk * e  # then the tile is in
            compute = (d * big_r * c // lanes + fma + 2) + (rows * c // lanes + 1) \
                + (rows * (c + 1) + add + exp + 2) + (rows * (e + 1) + fma + 2) \
                + (nk * rows * (e + 1) + fma + 2)
            tile_at.append(max(tile_at[n], load_at) + compute)
        return tile_at[-1] + (rows + reciprocal + 2) + (rows * e + fma + 1)

    def elaborate(self, platform):
        m = Module()
        fmt, d_max, big_r, big_c, lanes = (self._format, self._d, self._rows, self._cols,
                                           self._lanes)
        width, e_max, shift = fmt.width, d_max // lanes, (lanes - 1).bit_length()
        groups = big_c // lanes
        acc_depth = big_r * (e_max + 1)
        address_bits = max(acc_depth, big_r * e_max, big_c * e_max, big_r * groups).bit_length()
        fmas = [FloatFma(format=fmt, tag_width=2 + address_bits) for _ in range(lanes)]
        for lane, unit in enumerate(fmas):
            m.submodules[f"fma{lane}"] = unit
        m.submodules.add = add = FloatAdd(format=fmt, tag_width=16)
        m.submodules.exp = exp = FLOAT_FUNCTIONS["exp"](format=fmt, tag_width=16)
        m.submodules.reciprocal = recip = FLOAT_FUNCTIONS["reciprocal"](format=fmt,
                                                                         tag_width=8)

        q_write, q_read = _lane_banks(m, "q_bank", lanes, width, big_r * e_max)
        # keys and values in two halves: the loader fills one while the tile in the other
        # is computed
        k_write, k_read = _lane_banks(m, "k_bank", lanes, self.beat_bits, 2 * groups * e_max)
        v_write, v_read = _lane_banks(m, "v_bank", lanes, width, 2 * big_c * e_max)
        acc_write, acc_read = _lane_banks(m, "acc_bank", lanes, width, acc_depth)

        def lane_slot(group, lane):  # column group * lanes + lane
            return Cat(Const(lane, shift), group) if shift else group

        zero, one = Const(0, width), Const(fmt.bias << fmt.mantissa_bits, width)
        minus_inf = Const(fmt.infinity | fmt.sign_bit, width)
        scale = Const(float_constant(1 / d_max ** 0.5, fmt), width)
        sign = 1 << (width - 1)

        # job registers
        rows = Signal(range(1, big_r + 1), name="job_rows")
        keys = Signal(range(1, self._max_keys + 1), name="job_keys")
        position = Signal(range(self._max_keys), name="job_position")
        row_step = Signal(name="job_row_step")
        key_base = Signal(range(self._max_keys + big_c), name="key_base")
        tile_keys = Signal(range(big_c + 1), name="tile_keys")
        first_tile = Signal(name="first_tile")

        # per-row state and the score / probability tile
        scores = Array(Signal(width, name=f"s{r}_{j}") for r in range(big_r)
                       for j in range(big_c))
        running_max = Array(Signal(width, name=f"m{r}") for r in range(big_r))
        new_max = Array(Signal(width, name=f"m_new{r}") for r in range(big_r))
        any_visible = Array(Signal(name=f"any{r}") for r in range(big_r))
        alpha = Array(Signal(width, name=f"alpha{r}") for r in range(big_r))
        inverse = Array(Signal(width, name=f"inverse{r}") for r in range(big_r))

        # a three-deep loop nest (outer, middle, inner) shared by the phases
        loop = _LoopNest(m, max(self._max_keys, acc_depth, d_max, big_c + 1))
        index, looping, step = loop.index, loop.looping, loop.step

        # the fetch stage: an operation whose buffers are being read
        fetched, fetching = Signal(), Signal()  # fetching: the phase has a fetch stage
        f_index = [Signal.like(i, name=f"f_i{n}") for n, i in enumerate(index)]
        issued = Signal()
        m.d.comb += step.eq(~fetched | issued)
        with m.If(step & fetching):
            m.d.sync += fetched.eq(looping)
            m.d.sync += [f.eq(i) for f, i in zip(f_index, index)]

        def tag(destination, address):
            field = Signal(address_bits, name=f"tag_to_{destination}")
            m.d.comb += field.eq(address)
            return Cat(field, Const(destination, 2))

        def issue(a, b, c, destination, address):
            """Every lane's operands (``a``, ``b``, ``c`` map a lane to a value) and the
            shared tag, from the fetch stage."""
            address_tag = tag(destination, address)
            m.d.comb += [fetching.eq(1), issued.eq(fetched & fmas[0].operands.ready)]
            for lane, unit in enumerate(fmas):
                m.d.comb += [unit.operands.valid.eq(fetched),
                             unit.operands.payload.a.eq(a(lane)),
                             unit.operands.payload.b.eq(b(lane)),
                             unit.operands.payload.c.eq(c(lane)),
                             unit.operands.payload.tag.eq(address_tag)]

        for port in (*q_read, *k_read, *v_read, *acc_read):
            m.d.comb += port.en.eq(step)

        # operations in flight in the fmas (and in the add -> exp and reciprocal chains)
        pending = Signal(range(64), name="pending")
        returned = Signal()
        m.d.sync += pending.eq(pending + issued - returned)
        idle = ~looping & ~fetched & (pending == 0)

        # fma results, in lockstep: to the Q banks, scores, accumulators or the output
        result = fmas[0].result
        destination = result.payload.tag[-2:]
        target = result.payload.tag[:-2]
        taken = (destination != _TO_OUT) | self.output.ready
        m.d.comb += [self.output.payload.last.eq(target[0]),
                     self.output.valid.eq(result.valid & (destination == _TO_OUT))]
        for lane, unit in enumerate(fmas):
            value = unit.result.payload.value
            m.d.comb += [
                q_write[lane].addr.eq(target), q_write[lane].data.eq(value),
                q_write[lane].en.eq(result.valid & (destination == _TO_Q)),
                acc_write[lane].addr.eq(target), acc_write[lane].data.eq(value),
                acc_write[lane].en.eq(result.valid & (destination == _TO_ACC)),
                _element(self.output.payload.value, lane, width).eq(value),
                unit.result.ready.eq(taken),
            ]
            with m.If(result.valid & (destination == _TO_S)):
                m.d.sync += scores[lane_slot(target, lane)].eq(value)
        m.d.comb += returned.eq((result.valid & result.ready) | exp.result.valid
                                | recip.result.valid)

        # the exponentials: add (x - m_new) then exp; tag = (row, column or cols for alpha,
        # visible)
        m.d.comb += [add.result.ready.eq(exp.operands.ready),
                     exp.operands.valid.eq(add.result.valid),
                     exp.operands.payload.a.eq(add.result.payload.value),
                     exp.operands.payload.tag.eq(add.result.payload.tag),
                     exp.result.ready.eq(1), recip.result.ready.eq(1)]
        exp_row, exp_col = exp.result.payload.tag[:6], exp.result.payload.tag[6:13]
        exp_keep = exp.result.payload.tag[13]
        exp_tag_row, exp_tag_col = Signal(6), Signal(7)
        with m.If(exp.result.valid):
            with m.If(exp_col == big_c):
                m.d.sync += alpha[exp_row].eq(Mux(exp_keep, exp.result.payload.value, one))
            with m.Else():
                m.d.sync += scores[exp_row * big_c + exp_col].eq(
                    Mux(exp_keep, exp.result.payload.value, zero))
        with m.If(recip.result.valid):
            m.d.sync += inverse[recip.result.payload.tag].eq(recip.result.payload.value)

        half = Signal(name="half")  # the half being computed
        loader = _KeyValueLoader(m, self, k_write, v_write, keys.shape())
        loaded, tile_size = loader.loaded, loader.tile_size

        def visible(row, column):
            return (column < tile_keys) & (key_base + column
                                           <= position + Mux(row_step, row, 0))

        r_f, c_f = f_index[1], f_index[2]
        with m.FSM(name="phase"):
            with m.State("JOB"):
                m.d.comb += self.job.ready.eq(1)
                with m.If(self.job.valid):
                    payload = self.job.payload
                    m.d.sync += [rows.eq(payload.rows), keys.eq(payload.keys),
                                 position.eq(payload.position), row_step.eq(payload.row_step),
                                 key_base.eq(0), first_tile.eq(1), half.eq(0),
                                 *loader.begin(payload.keys),
                                 *(x.eq(minus_inf) for x in running_max)]
                    loop.start(m, 1, payload.rows, e_max)
                    m.next = "LOAD_Q"
            with m.State("LOAD_Q"):  # from the query stream straight into the fmas
                accepted = self.query.valid & self.query.ready
                address_tag = tag(_TO_Q, index[1] * e_max + index[2])
                m.d.comb += [self.query.ready.eq(looping & fmas[0].operands.ready),
                             issued.eq(accepted), step.eq(accepted)]
                for lane, unit in enumerate(fmas):
                    m.d.comb += [unit.operands.valid.eq(looping & self.query.valid),
                                 unit.operands.payload.a.eq(
                                     _element(self.query.payload, lane, width)),
                                 unit.operands.payload.b.eq(scale),
                                 unit.operands.payload.c.eq(zero),
                                 unit.operands.payload.tag.eq(address_tag)]
                with m.If(~looping & (pending == 0)):
                    m.next = "TILE"
            with m.State("TILE"):  # wait for the tile's keys and values
                with m.If(loaded[half]):
                    m.d.sync += tile_keys.eq(tile_size[half])
                    loop.start(m, d_max, big_r, groups)
                    m.next = "SCORES"
            with m.State("SCORES"):  # lane l: columns g * lanes + l; q[d] for every lane
                for lane in range(lanes):
                    m.d.comb += [q_read[lane].addr.eq(index[1] * e_max + (index[0] >> shift)),
                                 k_read[lane].addr.eq(
                                     loader.key_address(half, index[2], index[0] >> shift))]
                selected = f_index[0] & (lanes - 1)
                query = Array(port.data for port in q_read)[selected]
                group = Signal(address_bits, name="score_group")
                m.d.comb += group.eq(r_f * groups + c_f)
                leaving = result.valid & (destination == _TO_S) & (target == group)
                issue(lambda lane: query,
                      lambda lane: k_read[lane].data.word_select(selected, width),
                      lambda lane: Mux(f_index[0] == 0, zero, Mux(
                          leaving, fmas[lane].result.payload.value,
                          scores[lane_slot(group, lane)])),
                      _TO_S, group)
                with m.If(idle):
                    loop.start(m, 1, rows, groups)
                    m.next = "MAXIMUM"
            with m.State("MAXIMUM"):  # a row's lanes columns per cycle
                row, group = index[1], index[2]
                best = Mux(group == 0, running_max[row], new_max[row])
                seen = (group != 0) & any_visible[row]
                for lane in range(lanes):  # a named signal per step keeps the netlist linear
                    column = lane_slot(group, lane)
                    value = Signal(width, name=f"max_score{lane}")
                    shown = Signal(name=f"max_visible{lane}")
                    better = Signal(width, name=f"max_best{lane}")
                    m.d.comb += [value.eq(scores[row * big_c + column]),
                                 shown.eq(visible(row, column))]
                    m.d.comb += better.eq(Mux(shown & (_ordered(value, width)
                                                       > _ordered(best, width)), value, best))
                    best, seen = better, seen | shown
                m.d.comb += step.eq(1)
                with m.If(looping):
                    m.d.sync += [new_max[row].eq(best), any_visible[row].eq(seen)]
                with m.If(~looping):
                    loop.start(m, 1, rows, big_c + 1)
                    m.next = "EXPONENTIALS"
            with m.State("EXPONENTIALS"):  # straight from registers: no fetch stage
                row, column = index[1], index[2]
                is_alpha = column == big_c
                operand = Mux(is_alpha, running_max[row], scores[row * big_c + column])
                keep = Mux(is_alpha, any_visible[row], visible(row, column))
                m.d.comb += [exp_tag_row.eq(row), exp_tag_col.eq(column),
                             add.operands.valid.eq(looping),
                             add.operands.payload.a.eq(operand),
                             add.operands.payload.b.eq(new_max[row] ^ sign),
                             add.operands.payload.tag.eq(Cat(exp_tag_row, exp_tag_col, keep)),
                             step.eq(add.operands.ready),
                             issued.eq(looping & add.operands.ready)]
                with m.If(~looping & (pending == 0)):
                    m.d.sync += [running_max[r].eq(new_max[r]) for r in range(big_r)]
                    loop.start(m, 1, rows, e_max + 1)
                    m.next = "SCALE"
            with m.State("SCALE"):
                for port in acc_read:
                    m.d.comb += port.addr.eq(index[1] * (e_max + 1) + index[2])
                issue(lambda lane: Mux(first_tile, zero, acc_read[lane].data),
                      lambda lane: alpha[r_f], lambda lane: zero,
                      _TO_ACC, r_f * (e_max + 1) + c_f)
                with m.If(idle):
                    loop.start(m, tile_keys, rows, e_max + 1)
                    m.next = "ACCUMULATE"
            with m.State("ACCUMULATE"):
                for lane in range(lanes):
                    m.d.comb += [acc_read[lane].addr.eq(index[1] * (e_max + 1) + index[2]),
                                 v_read[lane].addr.eq(
                                     loader.value_address(half, index[0], index[2]))]
                probability = scores[r_f * big_c + f_index[0]]
                issue(lambda lane: probability,
                      lambda lane: Mux(c_f == e_max, one, v_read[lane].data),
                      lambda lane: acc_read[lane].data,
                      _TO_ACC, r_f * (e_max + 1) + c_f)
                with m.If(idle):
                    m.d.sync += [key_base.eq(key_base + tile_keys), first_tile.eq(0),
                                 loaded[half].eq(0), half.eq(~half)]
                    with m.If(key_base + tile_keys >= keys):
                        loop.start(m, 1, 1, rows)
                        m.next = "RECIPROCAL"
                    with m.Else():
                        m.next = "TILE"
            with m.State("RECIPROCAL"):  # lane 0's copy of the denominator
                m.d.comb += acc_read[0].addr.eq(index[2] * (e_max + 1) + e_max)
                m.d.comb += [fetching.eq(1), recip.operands.valid.eq(fetched),
                             issued.eq(fetched & recip.operands.ready),
                             recip.operands.payload.a.eq(acc_read[0].data),
                             recip.operands.payload.tag.eq(c_f)]
                with m.If(idle):
                    loop.start(m, 1, rows, e_max)
                    m.next = "OUTPUT"
            with m.State("OUTPUT"):
                for port in acc_read:
                    m.d.comb += port.addr.eq(index[1] * (e_max + 1) + index[2])
                issue(lambda lane: acc_read[lane].data, lambda lane: inverse[r_f],
                      lambda lane: zero, _TO_OUT, (r_f == rows - 1) & (c_f == e_max - 1))
                with m.If(idle):
                    m.next = "JOB"
        return m


def lanes_fit(lanes: int, head_dim: int, latency: int) -> bool:
    """Whether ``lanes`` is a power of two dividing ``head_dim`` into parts of more than
    ``latency`` (the fma's) elements."""
    return not lanes & (lanes - 1) and head_dim % lanes == 0 and head_dim // lanes > latency


def _check_lanes(lanes, head_dim, latency):
    check_int("Lanes", lanes, 1, head_dim)
    if not lanes_fit(lanes, head_dim, latency):
        raise ValueError(f"Lanes must be a power of two dividing the head dimension "
                         f"({head_dim}) into parts of more than {latency}, not {lanes!r}")


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
    """The engine's loader: per key, its ``E`` key beats then its ``E`` value beats, a beat
    a cycle, into the free half of the double key and value banks; ``loaded[h]`` rises when
    half ``h`` holds a tile (of ``tile_size[h]`` keys) and the computation lowers it."""

    def __init__(self, m, engine, k_write, v_write, keys_shape):
        lanes, cols, width = engine.lanes, engine.cols, engine.format.width
        e = engine.head_dim // lanes
        shift = (lanes - 1).bit_length()
        self._cols, self._groups, self._e = cols, cols // lanes, e
        self.loaded = loaded = Array(Signal(name=f"loaded{h}") for h in range(2))
        self.tile_size = Array(Signal(range(cols + 1), name=f"tile_size{h}") for h in range(2))
        self.total = Signal(keys_shape, name="load_total")
        self.base = Signal(keys_shape, name="load_base")
        self.active, self.half = Signal(name="load_active"), Signal(name="load_half")
        key, part = Signal(range(cols), name="load_key"), Signal(range(2 * e), name="load_part")
        remaining = self.total - self.base
        tile = Mux(remaining > cols, cols, remaining)
        can_load = self.active & ~loaded[self.half]
        is_key = part < e
        beat = can_load & Mux(is_key, engine.key.valid, engine.value.valid)
        m.d.comb += [engine.key.ready.eq(can_load & is_key),
                     engine.value.ready.eq(can_load & ~is_key)]
        for lane in range(lanes):  # a key to its column's bank, a value to each lane
            m.d.comb += [
                k_write[lane].addr.eq(self.key_address(self.half, key >> shift, part)),
                k_write[lane].data.eq(engine.key.payload),
                k_write[lane].en.eq(beat & is_key & ((key & (lanes - 1)) == lane)),
                v_write[lane].addr.eq(self.value_address(self.half, key, part - e)),
                v_write[lane].data.eq(_element(engine.value.payload, lane, width)),
                v_write[lane].en.eq(beat & ~is_key)]
        with m.If(beat):
            m.d.sync += part.eq(part + 1)
            with m.If(part == 2 * e - 1):
                m.d.sync += [part.eq(0), key.eq(key + 1)]
                with m.If(key == tile - 1):
                    m.d.sync += [key.eq(0), loaded[self.half].eq(1),
                                 self.tile_size[self.half].eq(tile), self.half.eq(~self.half),
                                 self.base.eq(self.base + tile)]
                    with m.If(self.base + tile >= self.total):
                        m.d.sync += self.active.eq(0)

    def key_address(self, half, group, part):
        """Address in a key bank of part ``part`` of the key of column group ``group``."""
        return half * (self._groups * self._e) + group * self._e + part

    def value_address(self, half, key, part):
        """Address in a value bank of lane part ``part`` of key ``key``'s value."""
        return half * (self._cols * self._e) + key * self._e + part

    def begin(self, keys):
        """Statements that start loading a job's ``keys`` keys into half 0."""
        return [self.total.eq(keys), self.base.eq(0), self.active.eq(1), self.half.eq(0)]
