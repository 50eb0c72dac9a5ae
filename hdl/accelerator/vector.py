"""The vector unit: every element-wise operation of a layer, from DDR to DDR, by instruction.

One instruction (:data:`~ternforge.hdl.accelerator.parameters.VECTOR_INSTRUCTION`) runs one
:class:`~ternforge.hdl.accelerator.parameters.VectorOp` over ``tokens`` vectors of
``length``: the vector readers (``a``, ``b``; dequantisation's scales, one a token, through
the scalar reader ``s``) feed the operation's stage, and its results go to DDR through the
32-bit writer (``y``), or, for quantisation, the int8 writer (``y``) and the scale writer
(``z``). The stages are those of :mod:`ternforge.hdl.eltwise`, so each operation computes
exactly its golden model in :mod:`ternforge.sim.models.eltwise`. Every stream but the
scalars' carries ``lanes`` elements a beat (the parameters'), and every stage takes a beat a
cycle. One instruction runs at a time (its scalars are held while its elements pass);
``done`` follows when every one of its results is written. The readers' elements reach the
stages through a register each (:class:`~ternforge.hdl.common.streams.Register`), and each
stage's results leave through a :class:`~ternforge.hdl.common.streams.Skid` (no latency).

::

    a ─► VectorReader (lanes x 32) ─┐                    ┌─► VectorWriter (lanes x 32) ─► y
    b ─► VectorReader (lanes x 32) ─┼─► stage of the op ─┼─► VectorWriter (lanes x 8)  ─► y
    s ─► VectorReader (32)        ──┘                    └─► VectorWriter (32)         ─► z
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..common.axi import axi4_read_members, axi4_write_members
from ..common.interconnect import AxiInterconnect
from ..common.streams import Register, skid
from ..common.vectors import VectorReader, VectorWriter
from ..eltwise.stages import Dequantise, GatedActivation, Residual
from ..eltwise.two_pass import Quantise, RmsNorm
from .parameters import VECTOR_INSTRUCTION, VectorOp

__all__ = ["VectorUnit"]

_STAGES = {VectorOp.DEQUANTISE: Dequantise, VectorOp.RESIDUAL: Residual,
           VectorOp.RMSNORM: RmsNorm, VectorOp.QUANTISE: Quantise,
           VectorOp.GATED: GatedActivation}
#: each op's stage ports fed by the readers
_INPUTS = {VectorOp.DEQUANTISE: {"a": "acc", "s": "act_scale"},
           VectorOp.RESIDUAL: {"a": "input", "b": "residual"},
           VectorOp.RMSNORM: {"a": "input", "b": "gain"}, VectorOp.QUANTISE: {"a": "input"},
           VectorOp.GATED: {"a": "gate", "b": "up"}}


class VectorUnit(wiring.Component):
    """See the module documentation.

    Parameters
    ----------
    parameters : VectorUnitParameters

    Members
    -------
    instruction : ``In(stream.Signature(payload_bits))``
        The low bits are a :data:`VECTOR_INSTRUCTION`.
    done : ``Out(stream.Signature(1))``
    m_axi_* : the unit's AXI4 port (its five masters on an interconnect).
    """

    def __init__(self, parameters, *, payload_bits=None):
        self._parameters = p = parameters
        payload_bits = payload_bits or VECTOR_INSTRUCTION.size
        options = {"data_bits": p.data_bits, "max_burst": p.max_burst, "depth": p.fifo_depth}
        lanes = p.lanes
        self._readers = {"a": VectorReader(32 * lanes, **options),
                         "b": VectorReader(32 * lanes, **options),
                         "s": VectorReader(32, **options)}
        self._writers = {"y": VectorWriter(32 * lanes, **options),
                         "codes": VectorWriter(8 * lanes, **options),
                         "z": VectorWriter(32, **options)}
        self._stages = {op: _STAGES[op](stage) for op, stage in p.stages.items()}
        self._bus = AxiInterconnect([("a", True, False), ("b", True, False),
                                     ("s", True, False), ("y", False, True),
                                     ("codes", False, True), ("z", False, True)],
                                    data_bits=p.data_bits)
        widths = {"addr_bits": 32, "data_bits": p.data_bits}
        super().__init__({"instruction": In(stream.Signature(payload_bits)),
                          "done": Out(stream.Signature(1)),
                          **axi4_read_members("m_axi", **widths),
                          **axi4_write_members("m_axi", **widths)})

    def elaborate(self, platform):
        m = Module()
        for name, part in {**self._readers, **self._writers}.items():
            m.submodules[name] = part
        # each reader's elements reach the stages from a register: the bus words' splitting
        # and the first operator's stage are a cycle apart (every operation a cycle later)
        self._inputs = {}
        for name, reader in self._readers.items():
            m.submodules[f"{name}_register"] = register = Register(
                reader.elements.payload.shape())
            wiring.connect(m, reader.elements, register.input)
            self._inputs[name] = register.output
        for op, stage in self._stages.items():
            m.submodules[op.name.lower()] = stage
        m.submodules.bus = self._bus
        held = data.View(VECTOR_INSTRUCTION, Signal(VECTOR_INSTRUCTION.size))
        busy = Signal()
        self._connect_bus(m)
        self._route(m, held)
        self._sequence(m, held, busy)
        return m

    def _connect_bus(self, m):
        for name, part in {**self._readers, **self._writers}.items():
            for port, member in part.signature.members.items():
                if port.startswith("m_axi_"):
                    outer = getattr(self._bus, f"{name}_{port[6:]}")
                    m.d.comb += (outer.eq(getattr(part, port)) if member.flow == Out
                                 else getattr(part, port).eq(outer))
        for name, member in self.signature.members.items():
            if name.startswith("m_axi_"):
                outer, inner = getattr(self, name), getattr(self._bus, name)
                m.d.comb += outer.eq(inner) if member.flow == Out else inner.eq(outer)

    def _route(self, m, held):
        """Reader ``a`` and ``b`` to the held op's stage, its results to the writers; the
        scalars steady."""
        op = held.op
        stages = self._stages
        m.d.comb += [stages[VectorOp.DEQUANTISE].weight_scale.eq(held.scalar),
                     stages[VectorOp.RMSNORM].eps.eq(held.scalar),
                     stages[VectorOp.RMSNORM].inv_length.eq(held.inv_length)]
        for vop, ports in _INPUTS.items():
            for reader_name, port in ports.items():
                source = self._inputs[reader_name]
                sink = getattr(stages[vop], port)
                selected = op == vop
                payload = sink.payload
                m.d.comb += [
                    (payload.value.eq(source.payload.value) if reader_name == "a" else
                     payload.eq(source.payload.value)),
                    sink.valid.eq(source.valid & selected)]
                if reader_name == "a":
                    m.d.comb += payload.last.eq(source.payload.last)
                with m.If(selected):
                    m.d.comb += source.ready.eq(sink.ready)
        # (each result stream leaves its stage through a skid: what the writers' ready
        # reaches back through ends there, and what the stage's ready reaches back to starts
        # there)
        y = self._writers["y"].elements
        for vop in (VectorOp.DEQUANTISE, VectorOp.RESIDUAL, VectorOp.RMSNORM, VectorOp.GATED):
            name = vop.name.lower()
            self._deliver(m, skid(m, stages[vop].output, f"{name}_output"), y, op == vop,
                          value=lambda s: s.value)
        quantise = stages[VectorOp.QUANTISE]
        self._deliver(m, skid(m, quantise.codes, "quantise_codes"),
                      self._writers["codes"].elements, op == VectorOp.QUANTISE,
                      value=lambda s: s.value)
        self._deliver(m, skid(m, quantise.scale, "quantise_scale"), self._writers["z"].elements,
                      op == VectorOp.QUANTISE, value=lambda s: s)

    @staticmethod
    def _deliver(m, source, sink, selected, value):
        with m.If(selected):
            m.d.comb += [sink.payload.eq(value(source.payload)), sink.valid.eq(source.valid)]
        m.d.comb += source.ready.eq(sink.ready & selected)

    def _sequence(self, m, held, busy):
        """Take an instruction when idle; issue its readers' and writers' commands; done
        when its writers are."""
        instruction = data.View(VECTOR_INSTRUCTION,
                                self.instruction.payload[:VECTOR_INSTRUCTION.size])
        shift = (self._parameters.lanes - 1).bit_length()  # elements to beats
        beats, vector = (held.tokens * held.length) >> shift, held.length >> shift
        a, b, s = (self._readers[n].commands for n in ("a", "b", "s"))
        y, codes, z = (self._writers[n].commands for n in ("y", "codes", "z"))
        # per command port: still to issue (b: RMSNorm's gain once a token)
        pending = {name: Signal(name=f"pending_{name}") for name in ("a", "s", "y", "codes", "z")}
        gains = Signal(16)  # b commands still to issue
        first = Signal()  # b's (or s's) first command is taken
        waiting = {name: Signal(name=f"waiting_{name}") for name in ("y", "codes", "z")}
        rmsnorm = held.op == VectorOp.RMSNORM
        m.d.comb += [
            a.payload.address.eq(held.a), a.payload.elements.eq(beats),
            a.payload.length.eq(vector),
            # b's (s's) first burst is requested alone, a's after it: the same order whatever
            # the bus granted before, so that the op's first beat is as the cycle model says
            a.valid.eq(pending["a"] & (first | (held.op == VectorOp.QUANTISE))),
            b.payload.address.eq(held.b), b.payload.elements.eq(Mux(rmsnorm, vector, beats)),
            b.payload.length.eq(vector), b.valid.eq(gains != 0),
            s.payload.address.eq(held.b), s.payload.elements.eq(held.tokens),
            s.payload.length.eq(1), s.valid.eq(pending["s"]),
            y.payload.address.eq(held.y), y.payload.elements.eq(beats),
            y.valid.eq(pending["y"]),
            codes.payload.address.eq(held.y), codes.payload.elements.eq(beats),
            codes.valid.eq(pending["codes"]),
            z.payload.address.eq(held.z), z.payload.elements.eq(held.tokens),
            z.valid.eq(pending["z"]),
        ]
        for name, port in (("a", a), ("y", y), ("codes", codes), ("z", z)):
            with m.If(port.valid & port.ready):
                m.d.sync += pending[name].eq(0)
        with m.If(s.valid & s.ready):
            m.d.sync += [pending["s"].eq(0), first.eq(1)]
        with m.If(b.valid & b.ready):
            m.d.sync += [gains.eq(gains - 1), first.eq(1)]
        for name in waiting:
            writer = self._writers[name]
            m.d.comb += writer.done.ready.eq(1)
            with m.If(writer.done.valid):
                m.d.sync += waiting[name].eq(0)
        idle = ~busy
        m.d.comb += self.instruction.ready.eq(idle)
        with m.If(self.instruction.valid & idle):
            op = instruction.op
            quant, scales = op == VectorOp.QUANTISE, op == VectorOp.DEQUANTISE
            m.d.sync += [held.eq(instruction), busy.eq(1), pending["a"].eq(1), first.eq(0),
                         pending["s"].eq(scales),
                         pending["y"].eq(~quant), pending["codes"].eq(quant),
                         pending["z"].eq(quant), waiting["y"].eq(~quant),
                         waiting["codes"].eq(quant), waiting["z"].eq(quant),
                         gains.eq(Mux(quant | scales, 0,
                                      Mux(op == VectorOp.RMSNORM, instruction.tokens, 1)))]
        finished = busy & ~pending["a"] & ~pending["s"] & (gains == 0) & \
            ~(waiting["y"] | waiting["codes"] | waiting["z"]) & \
            ~(pending["y"] | pending["codes"] | pending["z"])
        m.d.comb += self.done.valid.eq(finished)
        with m.If(finished & self.done.ready):
            m.d.sync += busy.eq(0)
