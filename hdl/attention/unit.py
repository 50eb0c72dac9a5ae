"""Attention over a KV cache in DDR: the :class:`~ternforge.hdl.attention.engine.AttentionEngine`
behind an AXI4 reader of cached keys and values and an AXI4 writer that appends a token's.

KV cache layout (documented for the host): one region per KV head; row ``t`` of a region
holds token ``t``'s key (``D`` elements) then its value (``D`` elements), ``2 * D`` elements
of the unit's format, little-endian, at byte ``base + t * row_bytes``; a row is a whole number
of AXI words (``2 * D * width`` a multiple of ``data_bits``).

A ``command`` is one engine job on one region: rows ``0 .. keys - 1`` are read in one command to
the AXI4 reader and streamed to the engine while it takes the job's ``rows * D`` queries from
``query``. With ``append``, the ``new_kv`` stream's row (``2 * D`` elements, key then value) is
written to row ``position = keys - 1`` and, kept in a FIFO, is the job's last key: it is not
read back (``keys - 1`` rows are read); the next command waits for the write's response. Decode
is a command per KV head (the query heads sharing it are the job's rows, ``row_step = 0``,
``position = keys - 1``, ``append = 1``); causal prefill is a command per query tile of a
head, ``keys`` reaching just the tile's last row (the loop order of
:meth:`ternforge.sim.jobs.attention.AttentionJob.commands`).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..common.axi import (BurstReader, BurstWriter, axi4_read_members, axi4_write_members,
                          forward_ports)
from ..common.words import WordSplitter
from .engine import AttentionEngine
from .parameters import AttentionUnitParameters

__all__ = ["CachedAttention"]


class CachedAttention(wiring.Component):
    """The attention engine reading (and appending to) a KV cache over AXI4.

    Parameters
    ----------
    parameters : AttentionUnitParameters
        The engine's parameters, the AXI4 port's widths and the cache layout.

    Members
    -------
    command : ``In(stream.Signature(parameters.command_layout))``
    query : ``In(stream.Signature(lanes * width))``
    new_kv : ``In(stream.Signature(lanes * width))``
        The appended row's key then value, ``lanes`` elements a beat, for commands with
        ``append``.
    output : ``Out(stream.Signature(StructLayout({"value": lanes * width, "last": 1})))``
    m_axi_* :
        AXI4 read and write channels.
    """

    def __init__(self, parameters: AttentionUnitParameters):
        if not isinstance(parameters, AttentionUnitParameters):
            raise TypeError(f"Parameters must be AttentionUnitParameters, not {parameters!r}")
        self._parameters = parameters
        super().__init__(self.members(parameters))

    parameters = property(lambda self: self._parameters)

    @staticmethod
    def members(parameters: AttentionUnitParameters) -> dict:
        """The unit's signature members for ``parameters`` (a top that forwards them reads
        them here)."""
        width = parameters.engine.beat_bits
        ports = dict(addr_bits=parameters.addr_bits, data_bits=parameters.data_bits)
        return {
            "command": In(stream.Signature(parameters.command_layout)),
            "query": In(stream.Signature(width)),
            "new_kv": In(stream.Signature(width)),
            "output": Out(stream.Signature(parameters.engine.output_layout)),
            **axi4_read_members("m_axi", **ports),
            **axi4_write_members("m_axi", **ports),
        }

    def elaborate(self, platform):
        m = Module()
        p = self._parameters
        data_bits = p.data_bits
        m.submodules.engine = engine = AttentionEngine(p.engine)
        m.submodules.reader = reader = BurstReader(addr_bits=p.addr_bits, data_bits=data_bits)
        m.submodules.writer = writer = BurstWriter(addr_bits=p.addr_bits, data_bits=data_bits)
        width, beats = p.engine.beat_bits, p.row_beats
        m.submodules.splitter = splitter = WordSplitter(word_bits=data_bits, beat_bits=width)
        for channel in (reader, writer):
            forward_ports(m, self, channel, [name for name in channel.signature.members
                                             if name.startswith("m_axi_")])
        wiring.connect(m, reader.data, splitter.words)
        wiring.connect(m, wiring.flipped(self.query), engine.query)
        wiring.connect(m, engine.output, wiring.flipped(self.output))

        newest = self._newest_row(m, writer, width, beats)
        cached = self._rows_to_engine(m, engine, splitter, newest, beats)
        self._run_commands(m, engine, reader, writer, cached, beats)
        return m

    def _newest_row(self, m, writer, width, beats):
        """The appended row: packed into words for the writer and, through a FIFO (returned),
        the job's last key (so it is never read back)."""
        data_bits = self._parameters.data_bits
        per_word = data_bits // width
        m.submodules.newest = newest = SyncFIFO(width=width, depth=beats)
        word, filled = Signal(data_bits, name="word"), Signal(range(per_word + 1))
        m.d.comb += [writer.data.payload.eq(word), writer.data.valid.eq(filled == per_word),
                     newest.w_data.eq(self.new_kv.payload),
                     self.new_kv.ready.eq((filled < per_word) & newest.w_rdy),
                     newest.w_en.eq(self.new_kv.valid & self.new_kv.ready)]
        with m.If(self.new_kv.valid & self.new_kv.ready):
            m.d.sync += [word.eq((word >> width) | (self.new_kv.payload
                                                     << (data_bits - width))),
                         filled.eq(filled + 1)]
        with m.If(writer.data.valid & writer.data.ready):
            m.d.sync += filled.eq(0)

        return newest

    def _rows_to_engine(self, m, engine, splitter, newest, beats):
        """The job's rows into the engine: cached ones from the reader, then (appending) the
        newest from the FIFO; each row's first half is its key, then its value. Returns the
        count of cached beats still to come."""
        p = self._parameters
        cached = Signal(range(p.engine.max_keys * beats + 1), name="cached")
        from_cache = cached != 0
        valid = Mux(from_cache, splitter.beats.valid, newest.r_rdy)
        beat = Signal(range(beats), name="beat")
        payload = Mux(from_cache, splitter.beats.payload, newest.r_data)
        taken = valid & (engine.key.ready | engine.value.ready)
        m.d.comb += [engine.key.payload.eq(payload), engine.value.payload.eq(payload),
                     engine.key.valid.eq(valid & (beat < beats // 2)),
                     engine.value.valid.eq(valid & (beat >= beats // 2)),
                     splitter.beats.ready.eq(from_cache & (engine.key.ready
                                                           | engine.value.ready)),
                     newest.r_en.eq(~from_cache & taken)]
        with m.If(taken):
            m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))
            with m.If(from_cache):
                m.d.sync += cached.eq(cached - 1)
        return cached

    def _run_commands(self, m, engine, reader, writer, cached, beats):
        """A command at a time: the engine's job, the reader's and (appending) the writer's
        commands, until its last output and its write's response."""
        p = self._parameters
        command = Signal.like(self.command.payload)
        job_sent, read_sent, write_sent = Signal(), Signal(), Signal()
        written, finished = Signal(), Signal()
        with m.FSM(name="unit"):
            with m.State("IDLE"):
                m.d.comb += self.command.ready.eq(1)
                with m.If(self.command.valid):
                    payload = self.command.payload
                    m.d.sync += [command.eq(payload), job_sent.eq(0), read_sent.eq(0),
                                 write_sent.eq(~payload.append), written.eq(~payload.append),
                                 finished.eq(0),
                                 cached.eq((payload.keys - payload.append) * beats)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [
                    engine.job.valid.eq(~job_sent),
                    engine.job.payload.rows.eq(command.rows),
                    engine.job.payload.keys.eq(command.keys),
                    engine.job.payload.position.eq(command.position),
                    engine.job.payload.row_step.eq(command.row_step),
                    reader.commands.valid.eq(~read_sent),
                    reader.commands.payload.address.eq(command.base),
                    reader.commands.payload.words.eq(
                        (command.keys - command.append) * p.row_words),
                    writer.commands.valid.eq(~write_sent),
                    writer.commands.payload.address.eq(
                        command.base + command.position * p.row_bytes),
                    writer.commands.payload.words.eq(p.row_words),
                    writer.done.ready.eq(1)]
                m.d.sync += [job_sent.eq(job_sent | engine.job.ready),
                             read_sent.eq(read_sent | reader.commands.ready),
                             write_sent.eq(write_sent | writer.commands.ready),
                             written.eq(written | writer.done.valid),
                             finished.eq(finished | (engine.output.valid & engine.output.ready
                                                     & engine.output.payload.last))]
                with m.If(finished & written):
                    m.next = "IDLE"
