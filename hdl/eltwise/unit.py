"""The element-wise unit behind a ternary matmul: from its int32 accumulators to the next
matmul's int8 activations, without a round trip to DDR.

::

    acc, act_scale ─► Dequantise ─► Residual ─┬─► hidden            (the new residual stream)
                      (weight_scale) (residual) └─► RmsNorm ─► Quantise ─► codes, scale
                                                    (gain)

This is the path after a decoder layer's output projections (attention ``o`` and FFN
``down``): dequantise, add the residual, and normalise and quantise the sum for the next
layer's first matmuls, while the sum itself streams out as the next residual. Every stage is
one of :mod:`~ternforge.hdl.eltwise.stages` and :mod:`~ternforge.hdl.eltwise.two_pass`,
so the unit computes exactly :func:`ternforge.sim.models.eltwise.residual_path`. The other
stages (the gated activation, RoPE) compose the same way.
"""

from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .stages import Dequantise, Residual, element_layout
from .two_pass import Quantise, RmsNorm
from ..fp.format import float_format
from ..common.streams import join

__all__ = ["ElementwiseUnit"]


class ElementwiseUnit(wiring.Component):
    """Dequantise, add the residual, RMSNorm and quantise, streaming.

    Parameters
    ----------
    format : str or FloatFormat
        The arithmetic's format (float32 by default).
    max_length : int
        The longest token vector (the model's hidden size): the depth of both two-pass
        stages' buffers.
    acc_width : int
        Bits of the matmul's accumulators.

    Members
    -------
    acc : ``In(stream.Signature(element_layout(signed(acc_width))))``
    act_scale : ``In(stream.Signature(width))``
        One per token (the scale the matmul's activations were quantised with).
    weight_scale, inv_length, eps : ``In(width)``
        Configuration: the weight scale, ``1/n`` and the norm's epsilon.
    residual : ``In(stream.Signature(width))``
    gain : ``In(stream.Signature(width))``
        The norm's gains, one per element, in order, for every token.
    hidden : ``Out(stream.Signature(element_layout(width)))``
        The residual sum (the next residual stream).
    codes : ``Out(stream.Signature(element_layout(signed(8))))``
    scale : ``Out(stream.Signature(width))``
        One per token: the codes' dequantisation factor.
    """

    def __init__(self, *, format="float32", max_length=2560, acc_width=32):
        self._format = float_format(format)
        self._max_length, self._acc_width = max_length, acc_width
        stages = self._stages()
        width = self._format.width
        super().__init__({
            "acc": In(stream.Signature(element_layout(signed(acc_width)))),
            "act_scale": In(stream.Signature(width)),
            "weight_scale": In(width), "inv_length": In(width), "eps": In(width),
            "residual": In(stream.Signature(width)),
            "gain": In(stream.Signature(width)),
            "hidden": Out(stream.Signature(element_layout(width))),
            "codes": Out(stream.Signature(element_layout(signed(8)))),
            "scale": Out(stream.Signature(width)),
        })
        self._check(stages)

    format = property(lambda self: self._format)
    max_length = property(lambda self: self._max_length)

    def _stages(self):
        fmt, length = self._format, self._max_length
        return {"dequantise": Dequantise(format=fmt, acc_width=self._acc_width),
                "add_residual": Residual(format=fmt),
                "rmsnorm": RmsNorm(format=fmt, max_length=length),
                "quantise": Quantise(format=fmt, max_length=length)}

    def _check(self, stages):
        for stage in stages.values():
            stage._MustUse__silence = True
        self._latencies = {name: stage.latency for name, stage in stages.items()}
        self._norm, self._quant = stages["rmsnorm"], stages["quantise"]

    @property
    def buffer_bits(self) -> int:
        """On-chip bits of the two token buffers."""
        return self._norm.buffer_bits + self._quant.buffer_bits

    @property
    def latency(self) -> int:
        """Cycles from a token's last accumulator in to its first code out, less the token's
        length minus one (the quantiser waits for the whole normalised token), without
        stalls."""
        return self._latencies["dequantise"] + self._latencies["add_residual"] \
            + self._norm.latency + self._quant.latency

    def token_period(self, length: int) -> int:
        """Cycles between consecutive tokens of ``length`` elements in steady state (the
        norm's two passes and scalar phase)."""
        return 2 * length - 1 + self._norm.scalar_cycles

    def cycles(self, tokens: int, length: int) -> int:
        """Cycles of ``tokens`` vectors of ``length`` elements without stalls, first
        accumulator in to last code out, inclusive. The norm sets the pace (its scalar
        phase is the longer); the quantiser finishes the last token after it."""
        ahead = self._latencies["dequantise"] + self._latencies["add_residual"]
        return ahead + self._norm.cycles(tokens, length) + self._quant.scalar_cycles \
            + length - 1 + self._quant.pass2_latency

    def elaborate(self, platform):
        m = Module()
        stages = self._stages()
        for name, stage in stages.items():
            m.submodules[name] = stage
        dequantise, add, norm, quant = stages.values()
        wiring.connect(m, wiring.flipped(self.acc), dequantise.acc)
        wiring.connect(m, wiring.flipped(self.act_scale), dequantise.act_scale)
        wiring.connect(m, dequantise.output, add.input)
        wiring.connect(m, wiring.flipped(self.residual), add.residual)
        join(m, [add.output], [self.hidden, norm.input],
             [self.hidden.payload.eq(add.output.payload),
              norm.input.payload.eq(add.output.payload)])
        wiring.connect(m, wiring.flipped(self.gain), norm.gain)
        wiring.connect(m, norm.output, quant.input)
        wiring.connect(m, quant.codes, wiring.flipped(self.codes))
        wiring.connect(m, quant.scale, wiring.flipped(self.scale))
        m.d.comb += [dequantise.weight_scale.eq(self.weight_scale),
                     norm.inv_length.eq(self.inv_length), norm.eps.eq(self.eps)]
        return m
