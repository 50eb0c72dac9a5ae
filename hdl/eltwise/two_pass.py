"""Two-pass stages of the element-wise unit: RMSNorm and absmax int8 quantisation.

Both need a statistic of the whole token before they can emit its first element, so each
keeps one token's vector in an on-chip buffer of ``max_length`` elements (BRAM; the
hidden size of the model, or its FFN size for the FFN's sub-norm):

1. **pass 1** takes the token one beat per cycle, writes it to the buffer and folds it
   into the statistic;
2. the **scalar phase** finishes the statistic with a few dependent operations;
3. **pass 2** reads the buffer back one beat per cycle through the stage's pipeline.

A beat is one element, or ``lanes`` of them (the parameters'): the buffer is a beat wide, and
the per-element operators are there once a lane (the scalar phase's once).

Pass 1 of the next token starts when pass 2 has read the last element and it has left the
skid that pass 2's beats leave through (the buffer is single: a second one would overlap the
two passes of consecutive tokens for twice the memory).
:meth:`~ternforge.hdl.eltwise.parameters.TwoPassParameters.cycles` is exact without stalls. Arithmetic is exactly :mod:`ternforge.sim.models.eltwise`'s ``rmsnorm`` and
``quantise``.
"""

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import memory, stream
from amaranth.lib.wiring import In, Out

from amaranth.lib import data

from .parameters import QUANT_FLOOR, element_layout, lanes_layout
from .stages import EltwiseStage, deliver, feed, join_product, lane
from ..fp.format import float_constant
from ..common.streams import join, skid

__all__ = ["TwoPassStage", "RmsNorm", "Quantise"]


class TwoPassStage(EltwiseStage):
    """The buffer and the pass sequencing shared by the two-pass stages.

    Parameters
    ----------
    ports : dict
        The stage's signature members besides ``input``.
    parameters : TwoPassParameters
        The format, the buffer's depth ``max_length`` and the cycle model.

    Members
    -------
    input : ``In(stream.Signature(element_layout(width, lanes)))``
        Tokens, ``lanes`` elements per beat, ``last`` on each token's last.
    """

    def __init__(self, ports, parameters):
        width = parameters.format.width
        super().__init__({"input": In(stream.Signature(element_layout(width,
                                                                       parameters.lanes))),
                          **ports}, parameters)

    def elaborate(self, platform):
        m = Module()
        units = self.add_units(m)
        p = self._parameters
        width, depth = p.format.width * p.lanes, p.max_length // p.lanes
        m.submodules.buffer = buffer = memory.Memory(shape=width, depth=depth, init=[])
        write, read = buffer.write_port(), buffer.read_port()
        index = Signal(range(depth), name="index")  # pass 1: next slot; pass 2: element read
        length = Signal(range(depth), name="final")  # the token's last element's index
        replay = stream.Signature(element_layout(p.format.width, p.lanes)).create(
            path=("replay",))
        accepted, scalar_start, scalar_done = Signal(), Signal(), Signal()
        last = self.input.payload.last | (index == depth - 1)
        m.d.comb += [write.addr.eq(index), write.data.eq(self.input.payload.value),
                     accepted.eq(self.input.valid & self.input.ready),
                     write.en.eq(accepted)]
        taken = replay.valid & replay.ready
        m.d.comb += [replay.payload.value.eq(read.data),
                     replay.payload.last.eq(index == length),
                     read.addr.eq(Mux(replay.valid, index + taken, 0))]
        with m.FSM(name="passes"):
            with m.State("PASS1"):
                # (not while the skid below holds the last token's last beat: its factor is
                # the one the next scalar phase replaces)
                m.d.comb += self.input.ready.eq(replay.ready)
                with m.If(accepted):
                    m.d.sync += index.eq(index + 1)
                    with m.If(last):
                        m.d.sync += [length.eq(index), index.eq(0)]
                        m.d.comb += scalar_start.eq(1)
                        m.next = "SCALAR"
            with m.State("SCALAR"):
                with m.If(scalar_done):
                    m.next = "PASS2"
            with m.State("PASS2"):
                m.d.comb += replay.valid.eq(1)
                with m.If(taken):
                    m.d.sync += index.eq(index + 1)
                    with m.If(replay.payload.last):
                        m.d.sync += index.eq(0)
                        m.next = "PASS1"
        # (pass 2's beats leave through a skid, so that whether the pipeline behind takes
        # one, which sets the next read's address, is a register)
        self._wire(m, replay=skid(m, replay, "replay"), accepted=accepted,
                   scalar_start=scalar_start,
                   scalar_done=scalar_done, **units)
        return m



def scalar_op(m, unit, state, operands, capture, then):
    """Two states of a scalar phase's FSM: ``state`` issues ``operands`` (name to value; a
    unit of the phase's own has them driven outside the FSM, so that no state chooses them)
    on ``unit`` with the scalar tag bit (its top) set, ``state + "_WAIT"`` waits for that
    result, runs ``capture(value)`` (statements) and goes to ``then`` (a state's name, or a
    function that sets ``m.next`` itself)."""
    with m.State(state):
        m.d.comb += [unit.operands.valid.eq(1), unit.operands.payload.tag[-1].eq(1),
                     *(getattr(unit.operands.payload, k).eq(v) for k, v in operands.items())]
        with m.If(unit.operands.ready):
            m.next = f"{state}_WAIT"
    with m.State(f"{state}_WAIT"):
        with m.If(unit.result.valid & unit.result.payload.tag[-1]):
            m.d.sync += capture(unit.result.payload.value)
            if callable(then):
                then()
            else:
                m.next = then


class RmsNorm(TwoPassStage):
    """``x * rsqrt(mean(x**2) + eps) * gain``.

    Pass 1 keeps ``slots = latency of the fma`` partial sums of squares a lane so that a beat
    enters the fused multiply-adds every cycle (element ``i`` into sum ``i % partial_sums``:
    lane ``i % lanes``'s slot ``(i // lanes) % slots``, the sum read where it leaves the
    pipeline or from its register); the scalar phase adds the ``partial_sums`` in order on
    lane 0's fma, then ``fma(total, 1/n, eps)`` and the reciprocal square root.

    Takes its :class:`~ternforge.hdl.eltwise.parameters.RmsNormParameters`.

    Members
    -------
    input : ``In(stream.Signature(element_layout(width, lanes)))``
    gain : ``In(stream.Signature(lanes_layout(width, lanes)))``
        The learned gains, a beat per beat of pass 2, in order.
    inv_length : ``In(width)``
        ``1/n`` for the token length ``n``, rounded to the format (configuration).
    eps : ``In(width)``
        The norm's epsilon (configuration).
    output : ``Out(stream.Signature(element_layout(width, lanes)))``
    """

    def __init__(self, parameters):
        width, lanes = parameters.format.width, parameters.lanes
        super().__init__({"gain": In(stream.Signature(lanes_layout(width, lanes))),
                          "inv_length": In(width), "eps": In(width),
                          "output": Out(stream.Signature(element_layout(width, lanes)))},
                         parameters)

    def _wire(self, m, *, replay, accepted, scalar_start, scalar_done, squares, rsqrt, by_r,
              by_gain):
        p = self._parameters
        width, lanes, slots = p.format.width, p.lanes, p.slots
        # each lane's slots; and every partial sum in the order of their indices
        partials = [[Signal(width, name=f"partial{s * lanes + i}") for s in range(slots)]
                    for i in range(lanes)]
        ordered = Array(partials[k % lanes][k // lanes] for k in range(p.partial_sums))
        slot = Signal(range(slots), name="slot")
        m.d.comb += [*(unit.result.ready.eq(1) for unit in squares),
                     rsqrt[0].result.ready.eq(1)]
        self._pass1(m, accepted, squares, partials, slot)
        r = self._scalar_phase(m, scalar_start, scalar_done, squares[0], rsqrt[0], ordered,
                               slot)
        # pass 2: (x * r) * gain
        feed(m, replay, by_r, a=lambda i: lane(replay.payload.value, i, lanes), b=lambda i: r)
        join_product(m, [unit.result for unit in by_r], self.gain, by_gain)
        deliver(m, [unit.result for unit in by_gain], self.output)

    def _pass1(self, m, accepted, squares, partials, slot):
        """Each lane's ``x * x + partial[slot]``, the partial forwarded when it is leaving
        right now."""
        p = self._parameters
        lanes = p.lanes
        for i, unit in enumerate(squares):
            result, mine = unit.result, Array(partials[i])
            tag = data.View(p.squares_tag_layout, result.payload.tag)
            leaving = result.valid & ~tag.scalar
            with m.If(leaving):
                m.d.sync += mine[tag.slot].eq(result.payload.value)
            x = lane(self.input.payload.value, i, lanes)
            # (the operands whatever is accepted, so that only valid waits for the input's
            # handshake; the scalar phase's states, later, give lane 0's their own)
            m.d.comb += [unit.operands.valid.eq(accepted), unit.operands.payload.a.eq(x),
                         unit.operands.payload.b.eq(x),
                         unit.operands.payload.c.eq(Mux(leaving & (tag.slot == slot),
                                                        result.payload.value, mine[slot])),
                         unit.operands.payload.tag.eq(slot)]
        with m.If(accepted):
            m.d.sync += slot.eq(Mux(slot == p.slots - 1, 0, slot + 1))

    def _scalar_phase(self, m, scalar_start, scalar_done, squares, rsqrt, partial, slot):
        """``total = ((p0 + p1) + ...) + p[partial_sums - 1]``; ``mean = fma(total, 1/n,
        eps)``; returns the register of ``r = rsqrt(mean)``."""
        p = self._parameters
        fmt, sums = p.format, p.partial_sums
        total, r = Signal(fmt.width, name="total"), Signal(fmt.width, name="r")
        term = Signal(range(sums + 1), name="term")
        drain = Signal(range(p.slots), name="drain")
        with m.FSM(name="scalar"):
            with m.State("IDLE"):
                with m.If(scalar_start):
                    m.d.sync += [drain.eq(p.slots - 1), term.eq(1), slot.eq(0)]
                    m.next = "DRAIN"
            with m.State("DRAIN"):  # until the last beat's squares have left the pipeline
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.next = "ADD"

            def after_add():
                m.next = "ADD"
                with m.If(term == sums - 1):
                    m.next = "MEAN"
            scalar_op(m, squares, "ADD", {
                "a": partial[term], "b": float_constant(1.0, fmt),
                "c": Mux(term == 1, partial[0], total)},
                lambda value: [total.eq(value), term.eq(term + 1)], after_add)
            scalar_op(m, squares, "MEAN", {"a": total, "b": self.inv_length, "c": self.eps},
                      lambda value: [total.eq(value)], "ROOT")
            scalar_op(m, rsqrt, "ROOT", {}, lambda value: [
                r.eq(value), scalar_done.eq(1), *(x.eq(0) for x in partial)], "IDLE")
        m.d.comb += rsqrt.operands.payload.a.eq(total)  # (its own unit: not by state)
        with m.If(scalar_done):
            m.d.sync += scalar_done.eq(0)
        return r


def _largest(m, values, name):
    """The largest of ``values`` (unsigned), through a tree of comparisons."""
    level = 0
    while len(values) > 1:
        pairs = []
        for k in range(0, len(values) - 1, 2):
            a, b = values[k], values[k + 1]
            bigger = Signal.like(a, name=f"{name}{level}_{k // 2}")
            m.d.comb += bigger.eq(Mux(b > a, b, a))
            pairs.append(bigger)
        values = pairs + values[len(values) - len(values) % 2:]
        level += 1
    return values[0]


class Quantise(TwoPassStage):
    """Absmax int8 quantisation: ``scale = max(absmax, 1e-5) * (1/127)``,
    ``q = rint(x * reciprocal(scale))`` saturated to int8 (NaN to 0).

    Takes its :class:`~ternforge.hdl.eltwise.parameters.QuantiseParameters`.

    Members
    -------
    input : ``In(stream.Signature(element_layout(width, lanes)))``
    codes : ``Out(stream.Signature(element_layout(signed(8), lanes)))``
        The int8 activations of the next ternary matmul.
    scale : ``Out(stream.Signature(width))``
        One beat per token (its dequantisation factor), offered before the token's codes.
    """

    def __init__(self, parameters):
        width, lanes = parameters.format.width, parameters.lanes
        super().__init__({"codes": Out(stream.Signature(element_layout(signed(8), lanes))),
                          "scale": Out(stream.Signature(width))},
                         parameters)

    def _wire(self, m, *, replay, accepted, scalar_start, scalar_done, to_scale, reciprocal,
              by_s, to_int):
        p = self._parameters
        fmt, lanes = p.format, p.lanes
        width = fmt.width
        (to_scale,), (reciprocal,) = to_scale, reciprocal
        largest = Signal(width - 1, name="absmax")
        magnitudes = [lane(self.input.payload.value, i, lanes)[:-1] for i in range(lanes)]
        with m.If(accepted):
            m.d.sync += largest.eq(_largest(m, [largest, *magnitudes], "absmax"))
        floor = float_constant(QUANT_FLOOR, fmt)
        scale, s, offered = Signal(width, name="scale"), Signal(width, name="s"), Signal()
        m.d.comb += [to_scale.result.ready.eq(1), reciprocal.result.ready.eq(1),
                     self.scale.valid.eq(offered), self.scale.payload.eq(scale)]
        with m.If(self.scale.ready):
            m.d.sync += offered.eq(0)
        with m.FSM(name="scalar"):
            with m.State("IDLE"):
                with m.If(scalar_start):
                    m.next = "SCALE"
            scalar_op(m, to_scale, "SCALE", {},
                      lambda value: [scale.eq(value), offered.eq(1), largest.eq(0)], "INVERT")
            scalar_op(m, reciprocal, "INVERT", {},
                      lambda value: [s.eq(value), scalar_done.eq(1)], "IDLE")
        # (units of their own: their operands are not chosen by the state)
        m.d.comb += [to_scale.operands.payload.a.eq(Mux(largest > floor, largest, floor)),
                     to_scale.operands.payload.b.eq(float_constant(1 / 127, fmt)),
                     reciprocal.operands.payload.a.eq(scale)]
        with m.If(scalar_done):
            m.d.sync += scalar_done.eq(0)
        # the previous token's scale must have been taken before this one is computed
        with m.If(offered):
            m.d.comb += to_scale.operands.valid.eq(0)
        feed(m, replay, by_s, a=lambda i: lane(replay.payload.value, i, lanes), b=lambda i: s)
        join(m, [unit.result for unit in by_s], [unit.source for unit in to_int], [
            *(t.source.payload.value.eq(b.result.payload.value) for b, t in zip(by_s, to_int)),
            *(t.source.payload.tag.eq(b.result.payload.tag) for b, t in zip(by_s, to_int))])
        deliver(m, [unit.result for unit in to_int], self.codes)
