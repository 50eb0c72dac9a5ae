"""The GEMV unit: one token's ternary matmul from DDR to DDR, by instruction.

The :class:`~ternforge.hdl.gemv.top.GemvPath` (weights from DDR through the URAM buffer into
the LUT-RAM TLMM engine, its reads gated by the buffer's room, so that it shares a port safely)
gets its activations and gives its results through DDR:

::

    acts ─► VectorReader (int8) ─► WordPacker ─► engine acts    (one token: a tile of one)
    weights (descriptor table) ──► GemvPath ──► result beats ─► WordSplitter ─► lanes x int32 ─► y

An instruction (:data:`GEMV_INSTRUCTION`) names the layer's descriptor table and weight
beats (the planner's, :func:`ternforge.sim.models.weight_plan.descriptor_table`), the token's
``k`` int8 codes at ``acts`` and where its ``n`` int32 accumulators go. The codes are read one
a cycle, so a chunk of ``acts_per_beat`` codes takes that many cycles: no more than the
engine's ``row_blocks`` cycles a chunk when ``n >= acts_per_beat * rows``, as for every
projection of the supported models. The results leave ``result_lanes`` accumulators a cycle
(:attr:`~ternforge.hdl.accelerator.parameters.GemvUnitParameters.result_lanes`: a whole row
block a cycle on a 512-bit bus), so that the last chunk's row blocks are not held up behind
them; the last row block's rows past ``n`` are dropped, or written as zeros in the word that
pads the vector. A prefill runs one instruction a token.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..common.axi import axi4_read_members, axi4_write_members
from ..common.interconnect import AxiInterconnect
from ..common.streams import skid
from ..common.vectors import VectorReader, VectorWriter
from ..common.words import WordPacker, WordSplitter
from ..gemv.top import GemvPath
from .parameters import GemvUnitParameters

__all__ = ["GEMV_INSTRUCTION", "GemvUnit"]

GEMV_INSTRUCTION = data.StructLayout({
    "descriptors": 32, "descriptor_count": 16, "weight_beats": 32, "row_blocks": 16,
    "acts": 32, "k": 32, "results": 32, "n": 32})


class GemvUnit(wiring.Component):
    """See the module documentation.

    Parameters
    ----------
    parameters : GemvParameters
        The path's engine, buffer and bus.
    payload_bits : int
        Width of the instruction port (at least :data:`GEMV_INSTRUCTION`'s).

    Members
    -------
    instruction : ``In(stream.Signature(payload_bits))``
    done : ``Out(stream.Signature(1))``
    m_axi_* : the unit's AXI4 port.
    """

    def __init__(self, parameters, *, payload_bits=None):
        self._parameters = p = parameters
        payload_bits = payload_bits or GEMV_INSTRUCTION.size
        options = {"data_bits": p.data_bits, "max_burst": GemvUnitParameters.MAX_BURST,
                   "depth": GemvUnitParameters.FIFO_DEPTH}
        self._path = GemvPath(p, gate_reads=True)
        self._acts = VectorReader(8, **options)
        self._packer = WordPacker(word_bits=p.act_bits, beat_bits=8)
        self._lanes = lanes = GemvUnitParameters(p).result_lanes
        self._splitter = WordSplitter(word_bits=p.result_bits,
                                      beat_bits=lanes * p.engine.acc_width)
        self._results = VectorWriter(32 * lanes, **options)
        self._bus = AxiInterconnect([("weights", True, False), ("acts", True, False),
                                     ("results", False, True)], data_bits=p.data_bits)
        widths = {"addr_bits": 32, "data_bits": p.data_bits}
        super().__init__({"instruction": In(stream.Signature(payload_bits)),
                          "done": Out(stream.Signature(1)),
                          **axi4_read_members("m_axi", **widths),
                          **axi4_write_members("m_axi", **widths)})

    def elaborate(self, platform):
        m = Module()
        parts = {"weights": self._path, "acts": self._acts, "results": self._results}
        for name, part in parts.items():
            m.submodules[name] = part
        m.submodules.packer, m.submodules.splitter = self._packer, self._splitter
        m.submodules.bus = bus = self._bus
        for name, part in parts.items():
            for port, member in part.signature.members.items():
                if port.startswith("m_axi_"):
                    outer = getattr(bus, f"{name}_{port[6:]}")
                    m.d.comb += (outer.eq(getattr(part, port)) if member.flow == Out
                                 else getattr(part, port).eq(outer))
        for name, member in self.signature.members.items():
            if name.startswith("m_axi_"):
                outer, inner = getattr(self, name), getattr(bus, name)
                m.d.comb += outer.eq(inner) if member.flow == Out else inner.eq(outer)
        held = data.View(GEMV_INSTRUCTION, Signal(GEMV_INSTRUCTION.size))
        left = Signal(32)
        spent = Signal()  # left == 0, a register (what the engine's ready meets)
        # the engine's results meet the splitter through a skid: what the writer's ready
        # depends on ends there, not in the engine and the weight buffer behind it
        beats = skid(m, self._path.results, "results_skid")
        self._activations(m)
        self._results_out(m, beats, left, spent)
        self._sequence(m, held, beats, left, spent)
        return m

    def _activations(self, m):
        """The token's codes, packed into the engine's activation beats: every beat ends the
        (one-token) tile; the row's last beat is its final chunk."""
        codes, packer, acts = self._acts.elements, self._packer, self._path.acts
        m.d.comb += [packer.beats.payload.data.eq(codes.payload.value),
                     packer.beats.payload.last.eq(codes.payload.last),
                     packer.beats.valid.eq(codes.valid), codes.ready.eq(packer.beats.ready),
                     acts.payload.data.eq(packer.words.payload.data),
                     acts.payload.last.eq(1), acts.payload.final.eq(packer.words.payload.last),
                     acts.valid.eq(packer.words.valid), packer.words.ready.eq(acts.ready)]

    def _results_out(self, m, beats, left, spent):
        """Result beats split into pieces of ``result_lanes`` accumulators, each sign-extended
        to 32 bits; ``left`` counts the rows still to write (``spent`` when none): a lane at
        or past it (the last row block's spare rows) is written as zero, and a piece wholly
        past it is dropped."""
        splitter, lanes = self._splitter, self._lanes
        values, out = splitter.beats, self._results.elements
        piece = data.View(data.ArrayLayout(signed(self._parameters.engine.acc_width), lanes),
                          values.payload)
        wide = data.View(data.ArrayLayout(signed(32), lanes), Signal(32 * lanes))
        m.d.comb += [wide[lane].eq(Mux(lane < left, piece[lane], 0)) for lane in range(lanes)]
        m.d.comb += [splitter.words.payload.data.eq(beats.payload),
                     splitter.words.valid.eq(beats.valid), beats.ready.eq(splitter.words.ready),
                     out.payload.eq(wide.as_value()),
                     out.valid.eq(values.valid & ~spent),
                     values.ready.eq(out.ready | spent)]
        with m.If(values.valid & values.ready & ~spent):
            m.d.sync += [left.eq(Mux(left > lanes, left - lanes, 0)), spent.eq(left <= lanes)]

    def _sequence(self, m, held, beats, left, spent):
        """One instruction at a time: configure and start the path, issue the activation
        read and the result write; done when the results are written."""
        instruction = data.View(GEMV_INSTRUCTION,
                                self.instruction.payload[:GEMV_INSTRUCTION.size])
        path, acts, results = self._path, self._acts.commands, self._results.commands
        busy, start, pending_acts, pending_results = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [path.start.eq(start), path.replay.eq(0), path.passes.eq(1),
                     path.descriptors.eq(held.descriptors),
                     path.descriptor_count.eq(held.descriptor_count),
                     path.weight_beats.eq(held.weight_beats),
                     path.row_blocks.eq(held.row_blocks),
                     acts.payload.address.eq(held.acts), acts.payload.elements.eq(held.k),
                     acts.payload.length.eq(held.k), acts.valid.eq(pending_acts),
                     results.payload.address.eq(held.results),
                     results.payload.elements.eq(
                         (held.n + self._lanes - 1) >> (self._lanes.bit_length() - 1)),
                     results.valid.eq(pending_results),
                     self._results.done.ready.eq(self.done.ready),
                     # (and the last row block's spare rows dropped, and the weights' last
                     # words in, before the next job)
                     self.done.valid.eq(self._results.done.valid & busy & path.idle &
                                        ~beats.valid & ~self._splitter.beats.valid),
                     self.instruction.ready.eq(~busy)]
        m.d.sync += start.eq(0)
        with m.If(acts.valid & acts.ready):
            m.d.sync += pending_acts.eq(0)
        with m.If(results.valid & results.ready):
            m.d.sync += pending_results.eq(0)
        with m.If(self.instruction.valid & ~busy):
            m.d.sync += [held.eq(instruction), busy.eq(1), start.eq(1), pending_acts.eq(1),
                         pending_results.eq(1), left.eq(instruction.n),
                         spent.eq(instruction.n == 0)]
        with m.If(self.done.valid & self.done.ready):
            m.d.sync += busy.eq(0)

