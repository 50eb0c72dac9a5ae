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

The rows reach the engine *paired* when the port's word holds two beats or more and a key is
a whole number of words (:attr:`~ternforge.hdl.attention.parameters.AttentionUnitParameters.
paired`): a row's key words and value words go through a FIFO and a word splitter each, so
the engine takes a key beat and a value beat a cycle, the whole port's word a cycle.
Otherwise they go *sequentially* through one splitter, a beat a cycle: a key's beats, then
its value's.
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
        for channel in (reader, writer):
            forward_ports(m, self, channel, [name for name in channel.signature.members
                                             if name.startswith("m_axi_")])
        wiring.connect(m, wiring.flipped(self.query), engine.query)
        wiring.connect(m, engine.output, wiring.flipped(self.output))
        newest = self._newest_row(m, writer)
        rows = self._paired_rows if p.paired else self._sequential_rows
        counts, beats = rows(m, engine, reader, newest)
        self._run_commands(m, engine, reader, writer, counts, beats)
        return m

    def _newest_row(self, m, writer):
        """The appended row: packed into words for the writer and, its key's beats and its
        value's through a FIFO each (returned), the job's last key (never read back)."""
        p = self._parameters
        data_bits, width, e = p.data_bits, p.engine.beat_bits, p.engine.elements_per_lane
        per_word = data_bits // width
        fifos = [SyncFIFO(width=width, depth=e) for _ in range(2)]
        m.submodules.newest_key, m.submodules.newest_value = fifos
        beat = Signal(range(2 * e), name="new_beat")  # of the appended row's 2 E
        word, filled = Signal(data_bits, name="word"), Signal(range(per_word + 1))
        taken = self.new_kv.valid & self.new_kv.ready
        fifo = Mux(beat < e, fifos[0].w_rdy, fifos[1].w_rdy)
        m.d.comb += [writer.data.payload.eq(word), writer.data.valid.eq(filled == per_word),
                     self.new_kv.ready.eq((filled < per_word) & fifo)]
        for index, part in enumerate(fifos):
            m.d.comb += [part.w_data.eq(self.new_kv.payload),
                         part.w_en.eq(taken & ((beat < e) if index == 0 else (beat >= e)))]
        with m.If(taken):
            m.d.sync += [word.eq((word >> width) | (self.new_kv.payload
                                                     << (data_bits - width))),
                         filled.eq(filled + 1), beat.eq(Mux(beat == 2 * e - 1, 0, beat + 1))]
        with m.If(writer.data.valid & writer.data.ready):
            m.d.sync += filled.eq(0)
        return fifos

    def _sequential_rows(self, m, engine, reader, newest):
        """The job's rows into the engine a beat a cycle: cached ones from the reader through
        one splitter, then (appending) the newest from its FIFOs; a row's first ``E`` beats
        are its key's, the rest its value's. Returns the count of cached beats still to
        come and the beats of a row."""
        p = self._parameters
        e = p.engine.elements_per_lane
        m.submodules.splitter = splitter = WordSplitter(word_bits=p.data_bits,
                                                        beat_bits=p.engine.beat_bits)
        wiring.connect(m, reader.data, splitter.words)
        cached = Signal(range(p.engine.max_keys * 2 * e + 1), name="cached")
        from_cache = cached != 0
        beat = Signal(range(2 * e), name="beat")
        is_key = beat < e
        streams = ((engine.key, newest[0], is_key), (engine.value, newest[1], ~is_key))
        for port, fifo, mine in streams:
            m.d.comb += [port.payload.eq(Mux(from_cache, splitter.beats.payload, fifo.r_data)),
                         port.valid.eq(mine & Mux(from_cache, splitter.beats.valid,
                                                  fifo.r_rdy)),
                         fifo.r_en.eq(~from_cache & mine & port.ready)]
        ready = Mux(is_key, engine.key.ready, engine.value.ready)
        taken = (engine.key.valid & engine.key.ready) | (engine.value.valid & engine.value.ready)
        m.d.comb += splitter.beats.ready.eq(from_cache & ready)
        with m.If(taken):
            m.d.sync += beat.eq(Mux(beat == 2 * e - 1, 0, beat + 1))
            with m.If(from_cache):
                m.d.sync += cached.eq(cached - 1)
        return [cached], 2 * e

    def _paired_rows(self, m, engine, reader, newest):
        """The job's rows into the engine, a key beat and a value beat a cycle: the cached
        rows' key words (a row's first half) and value words each through a FIFO and a
        splitter of their own, then (appending) the newest row's from its FIFOs. The value
        words arrive half a row after the key's, so the key FIFO holds a row and more: the
        port's word a cycle never waits for it. Returns the count of cached beats still to
        come on each stream and the beats a row has on each."""
        p = self._parameters
        e, half = p.engine.elements_per_lane, p.row_words // 2
        word = reader.data
        cached = Signal(range(p.engine.max_keys * e + 1), name="cached")
        # the key stream may run ahead of the value stream (to its tile's end), so each
        # counts its own cached beats; they end together
        value_cached = Signal.like(cached, name="value_cached")
        position = Signal(range(2 * half), name="row_word")  # of the word in its row
        in_key = position < half
        fifos = [SyncFIFO(width=p.data_bits, depth=depth) for depth in (2 * half + 4, half + 2)]
        splitters = [WordSplitter(word_bits=p.data_bits, beat_bits=p.engine.beat_bits)
                     for _ in range(2)]
        m.submodules.key_words, m.submodules.value_words = fifos
        m.submodules.key_splitter, m.submodules.value_splitter = splitters
        m.d.comb += word.ready.eq(Mux(in_key, fifos[0].w_rdy, fifos[1].w_rdy))
        with m.If(word.valid & word.ready):
            m.d.sync += position.eq(Mux(position == 2 * half - 1, 0, position + 1))
        streams = ((engine.key, newest[0], cached, in_key),
                   (engine.value, newest[1], value_cached, ~in_key))
        for (port, last, count, mine), fifo, splitter in zip(streams, fifos, splitters):
            from_cache = count != 0
            m.d.comb += [fifo.w_data.eq(word.payload.data),
                         fifo.w_en.eq(word.valid & word.ready & mine),
                         splitter.words.payload.data.eq(fifo.r_data),
                         splitter.words.valid.eq(fifo.r_rdy), fifo.r_en.eq(splitter.words.ready),
                         port.payload.eq(Mux(from_cache, splitter.beats.payload, last.r_data)),
                         port.valid.eq(Mux(from_cache, splitter.beats.valid, last.r_rdy)),
                         splitter.beats.ready.eq(from_cache & port.ready),
                         last.r_en.eq(~from_cache & port.ready)]
            with m.If(port.valid & port.ready & from_cache):
                m.d.sync += count.eq(count - 1)
        return [cached, value_cached], e

    def _run_commands(self, m, engine, reader, writer, counts, beats):
        """A command at a time: the engine's job, the reader's and (appending) the writer's
        commands, until its last output and its write's response; ``counts`` (of cached
        beats still to come on the engine's streams) start at ``beats`` a cached row."""
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
                                 *(count.eq((payload.keys - payload.append) * beats)
                                   for count in counts)]
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
