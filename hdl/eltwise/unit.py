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

from .parameters import element_layout
from .stages import Dequantise, Residual
from .two_pass import Quantise, RmsNorm
from ..common.streams import join

__all__ = ["ElementwiseUnit"]

#: the component of each stage of
#: :attr:`~ternforge.hdl.eltwise.parameters.EltwiseParameters.stages`
_STAGES = {"dequantise": Dequantise, "add_residual": Residual, "rmsnorm": RmsNorm,
           "quantise": Quantise}


class ElementwiseUnit(wiring.Component):
    """Dequantise, add the residual, RMSNorm and quantise, streaming.

    Parameters
    ----------
    parameters : EltwiseParameters
        The format, the buffers' depth, the accumulators' width, and the unit's latency and
        cycle model.

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

    def __init__(self, parameters):
        self._parameters = parameters
        width = parameters.format.width
        super().__init__({
            "acc": In(stream.Signature(element_layout(signed(parameters.acc_width)))),
            "act_scale": In(stream.Signature(width)),
            "weight_scale": In(width), "inv_length": In(width), "eps": In(width),
            "residual": In(stream.Signature(width)),
            "gain": In(stream.Signature(width)),
            "hidden": Out(stream.Signature(element_layout(width))),
            "codes": Out(stream.Signature(element_layout(signed(8)))),
            "scale": Out(stream.Signature(width)),
        })

    parameters = property(lambda self: self._parameters)

    def elaborate(self, platform):
        m = Module()
        stages = {name: _STAGES[name](stage)
                  for name, stage in self._parameters.stages.items()}
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
