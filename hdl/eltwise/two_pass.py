"""Two-pass stages of the element-wise unit: RMSNorm and absmax int8 quantisation.

Both need a statistic of the whole token before they can emit its first element, so each
keeps one token's vector in an on-chip buffer of ``max_length`` elements (BRAM; the
hidden size of the model, or its FFN size for the FFN's sub-norm):

1. **pass 1** takes the token one element per cycle, writes it to the buffer and folds it
   into the statistic;
2. the **scalar phase** finishes the statistic with a few dependent operations;
3. **pass 2** reads the buffer back one element per cycle through the stage's pipeline.

Pass 1 of the next token starts when pass 2 has read the last element (the buffer is
single: a second one would overlap the two passes of consecutive tokens for twice the
memory). :meth:`~ternforge.hdl.eltwise.parameters.TwoPassParameters.cycles` is exact without
stalls. Arithmetic is exactly :mod:`ternforge.sim.models.eltwise`'s ``rmsnorm`` and
``quantise``.
"""

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import memory, stream
from amaranth.lib.wiring import In, Out

from amaranth.lib import data

from .parameters import QUANT_FLOOR, element_layout
from .stages import EltwiseStage, deliver, feed, join_product
from ..fp.format import float_constant
from ..common.streams import connect

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
    input : ``In(stream.Signature(element_layout(width)))``
        Tokens, one element per beat, ``last`` on each token's last.
    """

    def __init__(self, ports, parameters):
        width = parameters.format.width
        super().__init__({"input": In(stream.Signature(element_layout(width))), **ports},
                         parameters)

    def elaborate(self, platform):
        m = Module()
        units = self.add_units(m)
        width, depth = self._parameters.format.width, self._parameters.max_length
        m.submodules.buffer = buffer = memory.Memory(shape=width, depth=depth, init=[])
        write, read = buffer.write_port(), buffer.read_port()
        index = Signal(range(depth), name="index")  # pass 1: next slot; pass 2: element read
        length = Signal(range(depth), name="final")  # the token's last element's index
        replay = stream.Signature(element_layout(width)).create(path=("replay",))
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
                m.d.comb += self.input.ready.eq(1)
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
        self._wire(m, replay=replay, accepted=accepted, scalar_start=scalar_start,
                   scalar_done=scalar_done, **units)
        return m



def scalar_op(m, unit, state, operands, capture, then):
    """Two states of a scalar phase's FSM: ``state`` issues ``operands`` (name to value) on
    ``unit`` with the scalar tag bit (its top) set, ``state + "_WAIT"`` waits for that
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

    Pass 1 keeps ``lanes = latency of the fma`` partial sums of squares so that one element
    enters the fused multiply-add per cycle (element ``i`` into sum ``i % lanes``, the sum
    read where it leaves the pipeline or from its register); the scalar phase adds them in
    order on the same unit, then ``fma(total, 1/n, eps)`` and the reciprocal square root.

    Takes its :class:`~ternforge.hdl.eltwise.parameters.RmsNormParameters`.

    Members
    -------
    input : ``In(stream.Signature(element_layout(width)))``
    gain : ``In(stream.Signature(width))``
        The learned gains, one per element of pass 2, in order.
    inv_length : ``In(width)``
        ``1/n`` for the token length ``n``, rounded to the format (configuration).
    eps : ``In(width)``
        The norm's epsilon (configuration).
    output : ``Out(stream.Signature(element_layout(width)))``
    """

    def __init__(self, parameters):
        width = parameters.format.width
        super().__init__({"gain": In(stream.Signature(width)), "inv_length": In(width),
                          "eps": In(width),
                          "output": Out(stream.Signature(element_layout(width)))},
                         parameters)

    def _wire(self, m, *, replay, accepted, scalar_start, scalar_done, squares, rsqrt, by_r,
              by_gain):
        width, lanes = self._parameters.format.width, self._parameters.lanes
        partial = Array(Signal(width, name=f"partial{k}") for k in range(lanes))
        slot = Signal(range(lanes), name="slot")
        m.d.comb += [squares.result.ready.eq(1), rsqrt.result.ready.eq(1)]
        self._pass1(m, accepted, squares, partial, slot)
        r = self._scalar_phase(m, scalar_start, scalar_done, squares, rsqrt, partial, slot)
        # pass 2: (x * r) * gain
        feed(m, replay, by_r, a=replay.payload.value, b=r)
        join_product(m, by_r.result, self.gain, by_gain)
        deliver(m, by_gain.result, self.output)

    def _pass1(self, m, accepted, squares, partial, slot):
        """``x * x + partial[slot]``, the partial forwarded when it is leaving right now."""
        result, lanes = squares.result, self._parameters.lanes
        tag = data.View(self._parameters.squares_tag_layout, result.payload.tag)
        leaving = result.valid & ~tag.scalar
        with m.If(leaving):
            m.d.sync += partial[tag.slot].eq(result.payload.value)
        x = self.input.payload.value
        with m.If(accepted):
            m.d.comb += [squares.operands.valid.eq(1), squares.operands.payload.a.eq(x),
                         squares.operands.payload.b.eq(x),
                         squares.operands.payload.c.eq(Mux(leaving & (tag.slot == slot),
                                                           result.payload.value, partial[slot])),
                         squares.operands.payload.tag.eq(slot)]
            m.d.sync += slot.eq(Mux(slot == lanes - 1, 0, slot + 1))

    def _scalar_phase(self, m, scalar_start, scalar_done, squares, rsqrt, partial, slot):
        """``total = ((p0 + p1) + ...) + p[lanes-1]``; ``mean = fma(total, 1/n, eps)``;
        returns the register of ``r = rsqrt(mean)``."""
        fmt, lanes = self._parameters.format, self._parameters.lanes
        total, r = Signal(fmt.width, name="total"), Signal(fmt.width, name="r")
        term = Signal(range(lanes + 1), name="term")
        drain = Signal(range(lanes), name="drain")
        with m.FSM(name="scalar"):
            with m.State("IDLE"):
                with m.If(scalar_start):
                    m.d.sync += [drain.eq(lanes - 1), term.eq(1), slot.eq(0)]
                    m.next = "DRAIN"
            with m.State("DRAIN"):  # until the last element's square has left the pipeline
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.next = "ADD"
            def after_add():
                m.next = "ADD"
                with m.If(term == lanes - 1):
                    m.next = "MEAN"
            scalar_op(m, squares, "ADD", {
                "a": partial[term], "b": float_constant(1.0, fmt),
                "c": Mux(term == 1, partial[0], total)},
                lambda value: [total.eq(value), term.eq(term + 1)], after_add)
            scalar_op(m, squares, "MEAN", {"a": total, "b": self.inv_length, "c": self.eps},
                      lambda value: [total.eq(value)], "ROOT")
            scalar_op(m, rsqrt, "ROOT", {"a": total}, lambda value: [
                r.eq(value), scalar_done.eq(1), *(p.eq(0) for p in partial)], "IDLE")
        with m.If(scalar_done):
            m.d.sync += scalar_done.eq(0)
        return r


class Quantise(TwoPassStage):
    """Absmax int8 quantisation: ``scale = max(absmax, 1e-5) * (1/127)``,
    ``q = rint(x * reciprocal(scale))`` saturated to int8 (NaN to 0).

    Takes its :class:`~ternforge.hdl.eltwise.parameters.QuantiseParameters`.

    Members
    -------
    input : ``In(stream.Signature(element_layout(width)))``
    codes : ``Out(stream.Signature(element_layout(signed(8))))``
        The int8 activations of the next ternary matmul.
    scale : ``Out(stream.Signature(width))``
        One beat per token (its dequantisation factor), offered before the token's codes.
    """

    def __init__(self, parameters):
        width = parameters.format.width
        super().__init__({"codes": Out(stream.Signature(element_layout(signed(8)))),
                          "scale": Out(stream.Signature(width))},
                         parameters)

    def _wire(self, m, *, replay, accepted, scalar_start, scalar_done, to_scale, reciprocal,
              by_s, to_int):
        fmt = self._parameters.format
        width = fmt.width
        largest = Signal(width - 1, name="absmax")
        with m.If(accepted & (self.input.payload.value[:-1] > largest)):
            m.d.sync += largest.eq(self.input.payload.value[:-1])
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
            scalar_op(m, to_scale, "SCALE", {
                "a": Mux(largest > floor, largest, floor), "b": float_constant(1 / 127, fmt)},
                lambda value: [scale.eq(value), offered.eq(1), largest.eq(0)], "INVERT")
            scalar_op(m, reciprocal, "INVERT", {"a": scale},
                      lambda value: [s.eq(value), scalar_done.eq(1)], "IDLE")
        with m.If(scalar_done):
            m.d.sync += scalar_done.eq(0)
        # the previous token's scale must have been taken before this one is computed
        with m.If(offered):
            m.d.comb += to_scale.operands.valid.eq(0)
        feed(m, replay, by_s, a=replay.payload.value, b=s)
        connect(m, by_s.result, to_int.source, [
            to_int.source.payload.value.eq(by_s.result.payload.value),
            to_int.source.payload.tag.eq(by_s.result.payload.tag)])
        deliver(m, to_int.result, self.codes)
