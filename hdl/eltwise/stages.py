"""One-pass stages of the element-wise unit: dequantisation, residual addition, the gated
FFN activation and rotary position embedding.

Each stage streams one element per cycle through pipelined floating-point operators
(:mod:`~ternforge.hdl.fp.ops`) and computes exactly what
:mod:`ternforge.sim.models.eltwise` specifies. Vectors travel as beats of ``value`` and
``last`` (the token's last element;
:func:`~ternforge.hdl.eltwise.parameters.element_layout`); a beat's ``last`` (with any
operand still needed downstream) rides through the operators as their tag. Per-token scalars
are streams of one beat per token, taken with the token's last element.
"""

from amaranth.hdl import Cat, Module, Mux, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .parameters import element_layout
from ..fp.convert import FloatToInt, IntToFloat
from ..fp.parameters import ConversionParameters
from ..fp.units import float_unit
from ..common.streams import connect, join

__all__ = ["EltwiseStage", "Dequantise", "Residual", "GatedActivation", "Rope", "deliver",
           "feed", "join_product"]


def deliver(m, result, output):
    """A tagged operator result to a vector stream (the tag is ``last``)."""
    connect(m, result, output, [output.payload.value.eq(result.payload.value),
                                output.payload.last.eq(result.payload.tag)])


def feed(m, source, unit, *, when=1, **operands):
    """A vector stream into a tagged operator, with operands ``operands`` and ``last`` as the
    tag."""
    connect(m, source, unit.operands, [
        *(getattr(unit.operands.payload, k).eq(v) for k, v in operands.items()),
        unit.operands.payload.tag.eq(source.payload.last)], when=when)


def join_product(m, result, factor, unit):
    """A tagged operator result times the beats of stream ``factor``, into ``unit``."""
    join(m, [result, factor], [unit.operands], [
        unit.operands.payload.a.eq(result.payload.value),
        unit.operands.payload.b.eq(factor.payload),
        unit.operands.payload.tag.eq(result.payload.tag)])


def _paired_ports(parameters, vector, operand) -> dict:
    """The signature of a stage of vector stream ``vector``, stream ``operand`` in step
    with it, and vector stream ``output``."""
    width = parameters.format.width
    return {vector: In(stream.Signature(element_layout(width))),
            operand: In(stream.Signature(width)),
            "output": Out(stream.Signature(element_layout(width)))}


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
        """New operators of the parameters' ``units``, as submodules of ``m``; returns them."""
        units = {name: _component(unit) for name, unit in self._parameters.units.items()}
        for name, unit in units.items():
            m.submodules[name] = unit
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
        width = parameters.format.width
        super().__init__({
            "acc": In(stream.Signature(element_layout(signed(parameters.acc_width)))),
            "act_scale": In(stream.Signature(width)),
            "weight_scale": In(width),
            "output": Out(stream.Signature(element_layout(width))),
        }, parameters)

    def _wire(self, m, convert, by_act, by_weight):
        connect(m, self.acc, convert.source, [
            convert.source.payload.value.eq(self.acc.payload.value),
            convert.source.payload.tag.eq(self.acc.payload.last)])
        join_product(m, convert.result, self.act_scale, by_act)
        with m.If(~convert.result.payload.tag):  # the scale stays for its token's every element
            m.d.comb += self.act_scale.ready.eq(0)
        connect(m, by_act.result, by_weight.operands, [
            by_weight.operands.payload.a.eq(by_act.result.payload.value),
            by_weight.operands.payload.b.eq(self.weight_scale),
            by_weight.operands.payload.tag.eq(by_act.result.payload.tag)])
        deliver(m, by_weight.result, self.output)


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
        join(m, [self.input, self.residual], [add.operands], [
            add.operands.payload.a.eq(self.input.payload.value),
            add.operands.payload.b.eq(self.residual.payload),
            add.operands.payload.tag.eq(self.input.payload.last)])
        deliver(m, add.result, self.output)


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
        gate = self.gate.payload.value
        if self._parameters.kind == "silu":
            feed(m, self.gate, activate, a=gate)
        else:
            relu = Mux(gate[-1], 0, gate)
            feed(m, self.gate, activate, a=relu, b=relu)
        join_product(m, activate.result, self.up, by_up)
        deliver(m, by_up.result, self.output)


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
