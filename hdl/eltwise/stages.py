"""One-pass stages of the element-wise unit: dequantisation, residual addition, the gated
FFN activation and rotary position embedding.

Each stage streams one beat per cycle through pipelined floating-point operators
(:mod:`~ternforge.hdl.fp.ops`) and computes exactly what
:mod:`ternforge.sim.models.eltwise` specifies. Vectors travel as beats of ``value`` and
``last`` (the token's last element;
:func:`~ternforge.hdl.eltwise.parameters.element_layout`); a beat's ``last`` (with any
operand still needed downstream) rides through the operators as their tag. Per-token scalars
are streams of one beat per token, taken with the token's last element.

With ``lanes`` (the parameters'), a beat carries that many elements and every per-element
operator is there once a lane: the lanes' copies take their operands and give their results
together (:func:`~ternforge.hdl.common.streams.join`), so they work in lockstep, and lane 0's
tag speaks for all.
"""

from amaranth.hdl import Cat, Module, Mux, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .parameters import element_layout, lanes_layout
from ..fp.convert import FloatToInt, IntToFloat
from ..fp.parameters import ConversionParameters
from ..fp.units import float_unit
from ..common.streams import join, skid

__all__ = ["EltwiseStage", "Dequantise", "Residual", "GatedActivation", "Rope", "lane",
           "deliver", "feed", "join_product"]


def lane(value, index: int, lanes: int):
    """Element ``index`` of a beat's ``value`` of ``lanes`` elements
    (:func:`~ternforge.hdl.eltwise.parameters.lanes_layout`)."""
    return value if lanes == 1 else value[index]


def deliver(m, results, output):
    """The lanes' tagged operator results to a vector stream, together (the tag is
    ``last``)."""
    lanes = len(results)
    join(m, results, [output], [
        *(lane(output.payload.value, i, lanes).eq(r.payload.value)
          for i, r in enumerate(results)),
        output.payload.last.eq(results[0].payload.tag)])


def feed(m, source, units, **operands):
    """A vector stream into the lanes' tagged operators, together: operand ``k`` of lane
    ``i`` is ``operands[k](i)``, and ``last`` the tag."""
    join(m, [source], [unit.operands for unit in units], [
        *(getattr(unit.operands.payload, k).eq(v(i))
          for i, unit in enumerate(units) for k, v in operands.items()),
        *(unit.operands.payload.tag.eq(source.payload.last) for unit in units)])


def join_product(m, results, factor, units, *, per_lane=True):
    """The lanes' tagged operator results times the beats of stream ``factor`` (an element a
    lane, or with ``per_lane`` false one for every lane), into the lanes' ``units``."""
    lanes = len(results)
    join(m, [*results, factor], [unit.operands for unit in units], [
        *(units[i].operands.payload.a.eq(r.payload.value) for i, r in enumerate(results)),
        *(units[i].operands.payload.b.eq(lane(factor.payload, i, lanes) if per_lane
                                         else factor.payload) for i in range(lanes)),
        *(units[i].operands.payload.tag.eq(r.payload.tag) for i, r in enumerate(results))])


def _paired_ports(parameters, vector, operand) -> dict:
    """The signature of a stage of vector stream ``vector``, stream ``operand`` (an element
    a lane) in step with it, and vector stream ``output``."""
    width, lanes = parameters.format.width, parameters.lanes
    return {vector: In(stream.Signature(element_layout(width, lanes))),
            operand: In(stream.Signature(lanes_layout(width, lanes))),
            "output": Out(stream.Signature(element_layout(width, lanes)))}


def _component(parameters):
    """A new operator or conversion of ``parameters``."""
    if isinstance(parameters, ConversionParameters):
        return {"int_to_float": IntToFloat, "float_to_int": FloatToInt}[parameters.op](
            parameters)
    return float_unit(parameters)


class EltwiseStage(wiring.Component):
    """A stage: its operators, built from its parameters' :attr:`units`, and its wiring.

    Parameters
    ----------
    ports : dict
        The stage's signature members.
    parameters : StageParameters
        The stage's :mod:`~ternforge.hdl.eltwise.parameters` (format, operators, latency,
        cycle model).
    """

    def __init__(self, ports, parameters):
        self._parameters = parameters
        super().__init__(ports)

    parameters = property(lambda self: self._parameters)

    def add_units(self, m) -> dict:
        """New operators of the parameters' ``units``, as submodules of ``m``: a list of
        one a lane each (one only of the parameters' ``SCALAR_UNITS``); returns them."""
        p = self._parameters
        units = {}
        for name, unit in p.units.items():
            count = 1 if name in p.SCALAR_UNITS else p.lanes
            units[name] = [_component(unit) for _ in range(count)]
            for i, component in enumerate(units[name]):
                m.submodules[name if count == 1 else f"{name}{i}"] = component
        return units

    def elaborate(self, platform):
        m = Module()
        self._wire(m, **self.add_units(m))
        return m


class Dequantise(EltwiseStage):
    """``(float(acc) * act_scale) * weight_scale``.

    Takes its :class:`~ternforge.hdl.eltwise.parameters.DequantiseParameters`.

    Members
    -------
    acc : ``In(stream.Signature(element_layout(signed(acc_width))))``
        A ternary matmul's accumulators, one per beat.
    act_scale : ``In(stream.Signature(width))``
        One activation scale per token, taken with its last element.
    weight_scale : ``In(width)``
        The layer's weight scale (a configuration value, held steady).
    output : ``Out(stream.Signature(element_layout(width)))``
    """

    def __init__(self, parameters):
        width, lanes = parameters.format.width, parameters.lanes
        super().__init__({
            "acc": In(stream.Signature(element_layout(signed(parameters.acc_width), lanes))),
            "act_scale": In(stream.Signature(width)),
            "weight_scale": In(width),
            "output": Out(stream.Signature(element_layout(width, lanes))),
        }, parameters)

    def _wire(self, m, convert, by_act, by_weight):
        lanes = self._parameters.lanes
        join(m, [self.acc], [c.source for c in convert], [
            *(c.source.payload.value.eq(lane(self.acc.payload.value, i, lanes))
              for i, c in enumerate(convert)),
            *(c.source.payload.tag.eq(self.acc.payload.last) for c in convert)])
        join_product(m, [c.result for c in convert], self.act_scale, by_act, per_lane=False)
        with m.If(~convert[0].result.payload.tag):  # the scale stays for its token's every beat
            m.d.comb += self.act_scale.ready.eq(0)
        # (the products meet the second multiply through skids: what the output's ready
        # reaches back through ends there, not at the accumulators' source)
        products = [skid(m, a.result, f"by_act_skid{i}") for i, a in enumerate(by_act)]
        join(m, products, [b.operands for b in by_weight], [
            *(w.operands.payload.a.eq(a.payload.value) for a, w in zip(products, by_weight)),
            *(w.operands.payload.b.eq(self.weight_scale) for w in by_weight),
            *(w.operands.payload.tag.eq(a.payload.tag) for a, w in zip(products, by_weight))])
        deliver(m, [w.result for w in by_weight], self.output)


class Residual(EltwiseStage):
    """``x + residual``, element by element.

    Takes its :class:`~ternforge.hdl.eltwise.parameters.ResidualParameters`.

    Members
    -------
    input : ``In(stream.Signature(element_layout(width)))``
    residual : ``In(stream.Signature(width))``
        The residual stream, in step with ``input``.
    output : ``Out(stream.Signature(element_layout(width)))``
    """

    def __init__(self, parameters):
        super().__init__(_paired_ports(parameters, "input", "residual"), parameters)

    def _wire(self, m, add):
        lanes = self._parameters.lanes
        join(m, [self.input, self.residual], [a.operands for a in add], [
            *(a.operands.payload.a.eq(lane(self.input.payload.value, i, lanes))
              for i, a in enumerate(add)),
            *(a.operands.payload.b.eq(lane(self.residual.payload, i, lanes))
              for i, a in enumerate(add)),
            *(a.operands.payload.tag.eq(self.input.payload.last) for a in add)])
        deliver(m, [a.result for a in add], self.output)


class GatedActivation(EltwiseStage):
    """The FFN's gated activation: ``silu(gate) * up`` or ``relu(gate)**2 * up`` (the
    parameters' ``kind``).

    Takes its :class:`~ternforge.hdl.eltwise.parameters.GatedActivationParameters`.

    Members
    -------
    gate, up : ``In(stream.Signature(element_layout(width)))``, ``In(stream.Signature(width))``
        In step (``up`` taken when the activated gate reaches the product).
    output : ``Out(stream.Signature(element_layout(width)))``
    """

    def __init__(self, parameters):
        super().__init__(_paired_ports(parameters, "gate", "up"), parameters)

    def _wire(self, m, activate, by_up):
        lanes = self._parameters.lanes

        def gate(i):
            return lane(self.gate.payload.value, i, lanes)

        if self._parameters.kind == "silu":
            feed(m, self.gate, activate, a=gate)
        else:
            def relu(i):
                return Mux(gate(i)[-1], 0, gate(i))
            feed(m, self.gate, activate, a=relu, b=relu)
        join_product(m, [a.result for a in activate], self.up, by_up)
        deliver(m, [b.result for b in by_up], self.output)


class Rope(EltwiseStage):
    """Rotary position embedding of pairs: ``y0 = fma(x0, cos, -(x1 * sin))``,
    ``y1 = fma(x0, sin, x1 * cos)``.

    Takes its :class:`~ternforge.hdl.eltwise.parameters.RopeParameters`.

    Members
    -------
    input : ``In(stream.Signature(parameters.input_layout))``
        One pair and its angle's cosine and sine per beat.
    output : ``Out(stream.Signature(parameters.output_layout))``
    """

    def __init__(self, parameters):
        super().__init__({"input": In(stream.Signature(parameters.input_layout)),
                          "output": Out(stream.Signature(parameters.output_layout))},
                         parameters)

    def _wire(self, m, x1_sin, x1_cos, y0, y1):
        (x1_sin,), (x1_cos,), (y0,), (y1,) = x1_sin, x1_cos, y0, y1
        x, width = self.input.payload, self._parameters.format.width
        join(m, [self.input], [x1_sin.operands, x1_cos.operands], [
            x1_sin.operands.payload.a.eq(x.x1), x1_sin.operands.payload.b.eq(x.sin),
            x1_sin.operands.payload.tag.eq(Cat(x.last, x.x0, x.cos, x.sin)),  # carried_layout
            x1_cos.operands.payload.a.eq(x.x1), x1_cos.operands.payload.b.eq(x.cos),
            x1_cos.operands.payload.tag.eq(x.last)])
        carried = data.View(self._parameters.carried_layout, x1_sin.result.payload.tag)
        minus = x1_sin.result.payload.value ^ (1 << (width - 1))
        join(m, [x1_sin.result, x1_cos.result], [y0.operands, y1.operands], [
            y0.operands.payload.a.eq(carried.x0), y0.operands.payload.b.eq(carried.cos),
            y0.operands.payload.c.eq(minus), y0.operands.payload.tag.eq(carried.last),
            y1.operands.payload.a.eq(carried.x0), y1.operands.payload.b.eq(carried.sin),
            y1.operands.payload.c.eq(x1_cos.result.payload.value),
            y1.operands.payload.tag.eq(carried.last)])
        join(m, [y0.result, y1.result], [self.output], [
            self.output.payload.y0.eq(y0.result.payload.value),
            self.output.payload.y1.eq(y1.result.payload.value),
            self.output.payload.last.eq(y0.result.payload.tag)])
