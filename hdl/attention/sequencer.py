"""The loop order of the attention units, in hardware: one ``start`` becomes the command stream
of a :class:`~ternforge.hdl.attention.unit.CachedAttention` for a whole layer.

Prefill (causal): heads in order; per head, query tiles of ``rows`` in order; per tile one
command that reads the cache's rows ``0 .. the tile's last row`` from its KV head's region
(the later key tiles are masked for every row of the tile and never read). Decode: one
command per KV head, its ``group`` query heads as the rows, at the newest position,
appending the newest token's key and value. The commands are exactly those of
:meth:`ternforge.sim.jobs.attention.AttentionJob.commands`.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .parameters import AttentionUnitParameters

__all__ = ["AttentionSequencer"]


class AttentionSequencer(wiring.Component):
    """Commands of a layer's attention, in the loop order of the module documentation.

    Parameters
    ----------
    parameters : AttentionUnitParameters
        The unit's: its engine's ``rows`` (query rows per prefill tile; in decode, at least
        ``group``) and ``max_keys``, ``max_heads`` and ``addr_bits``.

    Members
    -------
    start : ``In(stream.Signature(parameters.start_layout))``
        ``heads``: query heads (prefill) or KV heads (decode); ``group``: query heads per KV
        head; ``tokens``: M (prefill) or the context L with the newest token (decode);
        ``base``, ``stride``: the first KV head's region and the distance between regions.
    commands : ``Out(stream.Signature(parameters.command_layout))``
        The unit's ``command`` stream.
    """

    def __init__(self, parameters: AttentionUnitParameters):
        if not isinstance(parameters, AttentionUnitParameters):
            raise TypeError(f"Parameters must be AttentionUnitParameters, not {parameters!r}")
        self._rows = parameters.engine.rows
        super().__init__({
            "start": In(stream.Signature(parameters.start_layout)),
            "commands": Out(stream.Signature(parameters.command_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        job = Signal.like(self.start.payload)
        head = Signal.like(self.start.payload.heads, name="head")  # a query or KV head
        in_group = Signal.like(self.start.payload.group, name="in_group")
        region = Signal.like(self.start.payload.base, name="region")
        first = Signal.like(self.commands.payload.position, name="first")  # tile's first row
        remaining = job.tokens - first
        tile = Mux(remaining > self._rows, self._rows, remaining)
        payload = self.commands.payload
        m.d.comb += [payload.base.eq(region), payload.append.eq(job.decode),
                     payload.row_step.eq(~job.decode)]
        with m.If(job.decode):
            m.d.comb += [payload.rows.eq(job.group), payload.keys.eq(job.tokens),
                         payload.position.eq(job.tokens - 1)]
        with m.Else():
            m.d.comb += [payload.rows.eq(tile), payload.keys.eq(first + tile),
                         payload.position.eq(first)]
        last_tile = job.decode | (first + tile >= job.tokens)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    m.d.sync += [job.eq(self.start.payload), head.eq(0), in_group.eq(0),
                                 region.eq(self.start.payload.base), first.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.commands.valid.eq(1)
                with m.If(self.commands.ready):
                    m.d.sync += first.eq(first + tile)
                    with m.If(last_tile):
                        m.d.sync += [first.eq(0), head.eq(head + 1),
                                     in_group.eq(in_group + 1)]
                        # prefill: the next query head shares the region until its group
                        # ends; decode: every command is the next KV head's
                        with m.If(job.decode | (in_group == job.group - 1)):
                            m.d.sync += [in_group.eq(0), region.eq(region + job.stride)]
                        with m.If(head == job.heads - 1):
                            m.next = "IDLE"
        return m
