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
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .engine import AttentionEngine
from ..common.axi import (BurstReader, BurstWriter, axi4_read_members, axi4_write_members,
                  check_data_bits, forward_ports)
from ..common.checks import check_int
from ..gemv.weight_buffer import WordSplitter

__all__ = ["CachedAttention"]


class CachedAttention(wiring.Component):
    """The attention engine reading (and appending to) a KV cache over AXI4.

    Parameters
    ----------
    format, head_dim, rows, cols, max_keys, lanes :
        As :class:`~ternforge.hdl.attention.engine.AttentionEngine`'s.
    addr_bits, data_bits : int
        The AXI4 port's address and data widths.

    Members
    -------
    command : ``In(stream.Signature(StructLayout({"rows", "keys", "position", "row_step", "base", "append"})))``
    query : ``In(stream.Signature(lanes * width))``
    new_kv : ``In(stream.Signature(lanes * width))``
        The appended row's key then value, ``lanes`` elements a beat, for commands with
        ``append``.
    output : ``Out(stream.Signature(StructLayout({"value": lanes * width, "last": 1})))``
    m_axi_* :
        AXI4 read and write channels.
    """

    def __init__(self, *, format="float32", head_dim=96, rows=8, cols=8, max_keys=4096,
                 lanes=1, addr_bits=32, data_bits=512):
        self._engine_parameters = dict(format=format, head_dim=head_dim, rows=rows, cols=cols,
                                       max_keys=max_keys, lanes=lanes)
        engine = self._engine()
        engine._MustUse__silence = True
        check_int("Address bits", addr_bits, 13, 64)
        check_data_bits(data_bits)
        row_bits = 2 * head_dim * engine.format.width
        if row_bits % data_bits or data_bits % engine.beat_bits:
            raise ValueError(f"Data bits must divide a cache row's {row_bits} bits into "
                             f"whole beats of {engine.beat_bits}, not {data_bits!r}")
        self._addr_bits, self._data_bits = addr_bits, data_bits
        self._row_words = row_bits // data_bits
        width = engine.beat_bits
        job = engine.job.payload.shape()
        super().__init__({
            "command": In(stream.Signature(data.StructLayout({
                **{name: job[name].shape for name in ("rows", "keys", "position",
                                                      "row_step")},
                "base": addr_bits, "append": 1}))),
            "query": In(stream.Signature(width)),
            "new_kv": In(stream.Signature(width)),
            "output": Out(stream.Signature(data.StructLayout({"value": width, "last": 1}))),
            **axi4_read_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
            **axi4_write_members("m_axi", addr_bits=addr_bits, data_bits=data_bits),
        })
        self._model = engine

    @property
    def engine(self) -> AttentionEngine:
        """The engine's parameters and cycle model (an instance not to elaborate)."""
        return self._model

    def _engine(self):
        return AttentionEngine(**self._engine_parameters)

    @property
    def row_bytes(self) -> int:
        return self._row_words * self._data_bits // 8

    def first_key_cycle(self, read_latency: int) -> int:
        """The cycle, counting from the engine's job (the cycle after the command) as 0, at
        which the first cached key is offered to the engine without stalls: the read address
        one cycle after the job, ``read_latency`` cycles from the address to the data, one
        in the word splitter."""
        return 1 + read_latency + 1

    def bytes_read(self, keys: int) -> int:
        """DDR bytes a command with ``keys`` keys reads."""
        return keys * self.row_bytes

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self._engine()
        m.submodules.reader = reader = BurstReader(addr_bits=self._addr_bits,
                                                   data_bits=self._data_bits)
        m.submodules.writer = writer = BurstWriter(addr_bits=self._addr_bits,
                                                   data_bits=self._data_bits)
        width, beats = engine.beat_bits, 2 * engine.head_dim // engine.lanes
        m.submodules.splitter = splitter = WordSplitter(word_bits=self._data_bits,
                                                        beat_bits=width)
        for channel in (reader, writer):
            forward_ports(m, self, channel, [name for name in channel.signature.members
                                             if name.startswith("m_axi_")])
        wiring.connect(m, reader.data, splitter.words)
        wiring.connect(m, wiring.flipped(self.query), engine.query)
        wiring.connect(m, engine.output, wiring.flipped(self.output))

        # the appended row: packed into words for the writer and, through a FIFO, the job's
        # last key (so it is never read back)
        per_word = self._data_bits // width
        m.submodules.newest = newest = SyncFIFO(width=width, depth=beats)
        word, filled = Signal(self._data_bits, name="word"), Signal(range(per_word + 1))
        m.d.comb += [writer.data.payload.eq(word), writer.data.valid.eq(filled == per_word),
                     newest.w_data.eq(self.new_kv.payload),
                     self.new_kv.ready.eq((filled < per_word) & newest.w_rdy),
                     newest.w_en.eq(self.new_kv.valid & self.new_kv.ready)]
        with m.If(self.new_kv.valid & self.new_kv.ready):
            m.d.sync += [word.eq((word >> width) | (self.new_kv.payload
                                                     << (self._data_bits - width))),
                         filled.eq(filled + 1)]
        with m.If(writer.data.valid & writer.data.ready):
            m.d.sync += filled.eq(0)

        # the job's rows: cached ones from the reader, then (appending) the newest from the
        # FIFO; each row's first half is its key, then its value
        command = Signal.like(self.command.payload)
        cached = Signal(range(self._engine_parameters["max_keys"] * beats + 1), name="cached")
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
                        (command.keys - command.append) * self._row_words),
                    writer.commands.valid.eq(~write_sent),
                    writer.commands.payload.address.eq(
                        command.base + command.position * self.row_bytes),
                    writer.commands.payload.words.eq(self._row_words),
                    writer.done.ready.eq(1)]
                m.d.sync += [job_sent.eq(job_sent | engine.job.ready),
                             read_sent.eq(read_sent | reader.commands.ready),
                             write_sent.eq(write_sent | writer.commands.ready),
                             written.eq(written | writer.done.valid),
                             finished.eq(finished | (engine.output.valid & engine.output.ready
                                                     & engine.output.payload.last))]
                with m.If(finished & written):
                    m.next = "IDLE"
        return m
