"""One-pass stages of the element-wise unit: dequantisation, residual addition, the gated
FFN activation and rotary position embedding.

Each stage streams one element per cycle through pipelined floating-point operators
(:mod:`~ternforge.hdl.fp.ops`) and computes exactly what
:mod:`ternforge.sim.models.eltwise` specifies. Vectors travel as beats of ``value`` and
``last`` (the token's last element; :func:`element_layout`); a beat's ``last`` (with any
operand still needed downstream) rides through the operators as their tag. Per-token scalars
are streams of one beat per token, taken with the token's last element.
"""

from amaranth.hdl import Cat, Module, Mux, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fp.convert import IntToFloat
from ..fp.format import float_format
from ..fp.functions import FLOAT_FUNCTIONS
from ..fp.ops import FloatAdd, FloatFma, FloatMultiply
from ..common.checks import check_int
from ..common.streams import connect, join

__all__ = ["element_layout", "EltwiseStage", "Dequantise", "Residual", "GatedActivation",
           "Rope", "ACTIVATIONS"]

ACTIVATIONS = ("silu", "relu2")


def element_layout(shape):
    """The payload of a vector stream: ``value`` (``shape``) and ``last``."""
    return data.StructLayout({"value": shape, "last": 1})


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


class EltwiseStage(wiring.Component):
    """A stage in ``format``: its operators (:meth:`units`) and cycle model.

    Parameters
    ----------
    format : str or FloatFormat
        The arithmetic's format (float32 by default: sums of squares over a hidden vector
        overflow float16).
    """

    def __init__(self, ports, *, format):
        self._format = float_format(format)
        super().__init__(ports)

    format = property(lambda self: self._format)

    def units(self) -> dict:
        """New operators by submodule name, in pipeline order."""
        raise NotImplementedError

    def measured_units(self) -> dict:
        """:meth:`units` built only to read their properties."""
        units = self.units()
        for unit in units.values():
            unit._MustUse__silence = True
        return units

    @property
    def latency(self) -> int:
        """Cycles from an element entering to its result leaving, without stalls (the
        operators are in series)."""
        return sum(unit.latency for unit in self.measured_units().values())

    def cycles(self, tokens: int, length: int) -> int:
        """Cycles of ``tokens`` vectors of ``length`` elements without stalls, first element
        in to last out, inclusive."""
        return tokens * length + self.latency

    def add_units(self, m) -> dict:
        """:meth:`units` as submodules of ``m``; returns them."""
        units = self.units()
        for name, unit in units.items():
            m.submodules[name] = unit
        return units

    def elaborate(self, platform):
        m = Module()
        self._wire(m, **self.add_units(m))
        return m


class Dequantise(EltwiseStage):
    """``(float(acc) * act_scale) * weight_scale``.

    Parameters
    ----------
    format : str or FloatFormat
    acc_width : int
        Bits of the signed accumulators (2 to 64).

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

    def __init__(self, *, format="float32", acc_width=32):
        check_int("Accumulator width", acc_width, 2, 64)
        self._acc_width = acc_width
        width = float_format(format).width
        super().__init__({
            "acc": In(stream.Signature(element_layout(signed(acc_width)))),
            "act_scale": In(stream.Signature(width)),
            "weight_scale": In(width),
            "output": Out(stream.Signature(element_layout(width))),
        }, format=format)

    def units(self):
        return {"convert": IntToFloat(format=self.format, int_width=self._acc_width,
                                      tag_width=1),
                "by_act": FloatMultiply(format=self.format, tag_width=1),
                "by_weight": FloatMultiply(format=self.format, tag_width=1)}

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

    Members
    -------
    input : ``In(stream.Signature(element_layout(width)))``
    residual : ``In(stream.Signature(width))``
        The residual stream, in step with ``input``.
    output : ``Out(stream.Signature(element_layout(width)))``
    """

    def __init__(self, *, format="float32"):
        width = float_format(format).width
        super().__init__({"input": In(stream.Signature(element_layout(width))),
                          "residual": In(stream.Signature(width)),
                          "output": Out(stream.Signature(element_layout(width)))},
                         format=format)

    def units(self):
        return {"add": FloatAdd(format=self.format, tag_width=1)}

    def _wire(self, m, add):
        join(m, [self.input, self.residual], [add.operands], [
            add.operands.payload.a.eq(self.input.payload.value),
            add.operands.payload.b.eq(self.residual.payload),
            add.operands.payload.tag.eq(self.input.payload.last)])
        deliver(m, add.result, self.output)


class GatedActivation(EltwiseStage):
    """``silu(gate) * up`` or ``relu(gate)**2 * up``.

    Parameters
    ----------
    format : str or FloatFormat
    kind : str
        ``"silu"`` (BitNet b1.58 0.7B-3B) or ``"relu2"`` (BitNet b1.58 2B4T).

    Members
    -------
    gate : ``In(stream.Signature(element_layout(width)))``
    up : ``In(stream.Signature(width))``
        In step with ``gate`` (taken when the activated gate reaches the product).
    output : ``Out(stream.Signature(element_layout(width)))``
    """

    def __init__(self, *, format="float32", kind="silu"):
        if kind not in ACTIVATIONS:
            raise ValueError(f"Activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"not {kind!r}")
        self._kind = kind
        width = float_format(format).width
        super().__init__({"gate": In(stream.Signature(element_layout(width))),
                          "up": In(stream.Signature(width)),
                          "output": Out(stream.Signature(element_layout(width)))},
                         format=format)

    kind = property(lambda self: self._kind)

    def units(self):
        first = (FLOAT_FUNCTIONS["silu"] if self._kind == "silu" else FloatMultiply)
        return {"activate": first(format=self.format, tag_width=1),
                "by_up": FloatMultiply(format=self.format, tag_width=1)}

    def _wire(self, m, activate, by_up):
        gate = self.gate.payload.value
        if self._kind == "silu":
            feed(m, self.gate, activate, a=gate)
        else:
            relu = Mux(gate[-1], 0, gate)
            feed(m, self.gate, activate, a=relu, b=relu)
        join_product(m, activate.result, self.up, by_up)
        deliver(m, by_up.result, self.output)


class Rope(EltwiseStage):
    """Rotary position embedding of pairs: ``y0 = fma(x0, cos, -(x1 * sin))``,
    ``y1 = fma(x0, sin, x1 * cos)``.

    Members
    -------
    input : ``In(stream.Signature(StructLayout({"x0", "x1", "cos", "sin", "last"})))``
        One pair and its angle's cosine and sine per beat.
    output : ``Out(stream.Signature(StructLayout({"y0", "y1", "last"})))``
    """

    def __init__(self, *, format="float32"):
        width = float_format(format).width
        super().__init__({
            "input": In(stream.Signature(data.StructLayout(
                {"x0": width, "x1": width, "cos": width, "sin": width, "last": 1}))),
            "output": Out(stream.Signature(data.StructLayout(
                {"y0": width, "y1": width, "last": 1}))),
        }, format=format)

    def units(self):
        width = self.format.width
        return {"x1_sin": FloatMultiply(format=self.format, tag_width=3 * width + 1),
                "x1_cos": FloatMultiply(format=self.format, tag_width=1),
                "y0": FloatFma(format=self.format, tag_width=1),
                "y1": FloatFma(format=self.format, tag_width=1)}

    @property
    def latency(self):
        units = self.measured_units()
        return units["x1_sin"].latency + units["y0"].latency

    def _wire(self, m, x1_sin, x1_cos, y0, y1):
        x, width = self.input.payload, self.format.width
        join(m, [self.input], [x1_sin.operands, x1_cos.operands], [
            x1_sin.operands.payload.a.eq(x.x1), x1_sin.operands.payload.b.eq(x.sin),
            x1_sin.operands.payload.tag.eq(Cat(x.last, x.x0, x.cos, x.sin)),
            x1_cos.operands.payload.a.eq(x.x1), x1_cos.operands.payload.b.eq(x.cos),
            x1_cos.operands.payload.tag.eq(x.last)])
        carried = x1_sin.result.payload.tag
        last, x0 = carried[0], carried[1:1 + width]
        cos, sin = carried[1 + width:1 + 2 * width], carried[1 + 2 * width:]
        minus = x1_sin.result.payload.value ^ (1 << (width - 1))
        join(m, [x1_sin.result, x1_cos.result], [y0.operands, y1.operands], [
            y0.operands.payload.a.eq(x0), y0.operands.payload.b.eq(cos),
            y0.operands.payload.c.eq(minus), y0.operands.payload.tag.eq(last),
            y1.operands.payload.a.eq(x0), y1.operands.payload.b.eq(sin),
            y1.operands.payload.c.eq(x1_cos.result.payload.value),
            y1.operands.payload.tag.eq(last)])
        join(m, [y0.result, y1.result], [self.output], [
            self.output.payload.y0.eq(y0.result.payload.value),
            self.output.payload.y1.eq(y1.result.payload.value),
            self.output.payload.last.eq(y0.result.payload.tag)])
