"""The GEMV/GEMM path: DDR -> weight buffer -> LUT-RAM TLMM engine -> results.

Weight codes are read from DDR by an AXI4 read master (``m_axi``), regrouped into weight beats,
buffered in UltraRAM and streamed into a :class:`~ternforge.hdl.matmul.lutram.TLMMLutramEngine`.
What to read comes from a *descriptor table* in DDR, written by software from the planner's
descriptors (:meth:`ternforge.sim.models.weight_plan.WeightPlan.descriptor_table`): on start the top
reads the table, then executes its loads in order, back to back. A descriptor is 8 bytes,
little-endian: the load's byte address (32 bits, aligned to a data word) and its length in AXI
data words (32 bits). The table may hold at most ``max_descriptors`` entries. A layer that
does not fit the buffer is streamed again for each token tile (``passes``); one that fits is
loaded once and replayed from the buffer (``control`` bit 1).
Activations arrive on AXI4-Stream ``s_axis_acts`` (``tlast``: last token of the tile,
``tuser``: last chunk along K) and results leave on ``m_axis_results``. Software drives it
through AXI4-Lite ``s_axil``:

====== ============== ===========================================================
offset register       meaning
====== ============== ===========================================================
0x00   control        write 1: start (fetch the descriptor table, execute its loads once per
                      pass); 3: start, load once and replay the layer from the buffer
0x04   status         bit 0: busy, bit 1: done (every weight beat consumed)
0x08   descriptors    byte address of the descriptor table in DDR (word aligned)
0x0c   descriptor_count  descriptors in the table (1 to ``max_descriptors``)
0x10   weight_beats   weight beats the engine consumes in this job
0x14   row_blocks     ``ceil(N / rows)``: weight beats per K chunk
0x18   cycles         cycles from start to done
0x1c   stalls         cycles the engine waited for a weight beat
0x20   passes         times the engine reads the weights, one pass per token tile (0 or 1:
                      once), each from memory or, with control bit 1, from the buffer
====== ============== ===========================================================
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.axi import (BurstReader, RegisterFile, axi4_lite_members, axi4_read_members,
                         axis_members, forward_ports)
from ..matmul.lutram import TLMMLutramEngine
from .parameters import DESCRIPTOR_BITS, DESCRIPTOR_BYTES, DESCRIPTOR_LAYOUT, GemvParameters
from ..common.words import WordSplitter
from .weight_buffer import LineAssembler, WeightBuffer

__all__ = ["GemvPath", "GemvTop", "REGISTERS", "CONFIGURATION"]

REGISTERS = ("control", "status", "descriptors", "descriptor_count", "weight_beats",
             "row_blocks", "cycles", "stalls", "passes")
_READ_ONLY = {"status", "cycles", "stalls"}
#: the path's configuration: the writable registers but ``control``
CONFIGURATION = ("descriptors", "descriptor_count", "weight_beats", "row_blocks", "passes")


class GemvPath(wiring.Component):
    """The GEMV/GEMM path without its registers: what :class:`GemvTop` and the
    accelerator's GEMV unit share.

    Parameters
    ----------
    parameters : GemvParameters
    gate_reads : bool
        Request a weight burst only when the buffer has room for it (counting the words on
        their way), so that the path never holds up a read channel it shares with others
        (:mod:`~ternforge.hdl.common.dma`'s first rule), in bursts of at most
        :attr:`~ternforge.hdl.gemv.parameters.GemvParameters.shared_burst_words`; otherwise
        a full buffer holds the read data back, as a port of its own allows.

    Members
    -------
    start : ``In(1)``
        A pulse: run the job the configuration describes.
    replay : ``In(1)``
        Load the weights once and replay them from the buffer (``control`` bit 1).
    descriptors, descriptor_count, weight_beats, row_blocks, passes : ``In(32)``
        As the registers of the same names.
    status : ``Out(2)``
        Bit 0 running, bit 1 done.
    idle : ``Out(1)``
        No weight read in flight: a job's trailing words (a load's padding past its last beat)
        have all arrived, so the next start's clearing of the buffer catches them.
    cycles, stalls : ``Out(32)``
    acts : ``In(stream.Signature(engine acts layout))``
    results : ``Out(stream.Signature(result_bits))``
    m_axi_* : the AXI4 read master.
    """

    def __init__(self, parameters: GemvParameters, *, gate_reads: bool = False):
        self._parameters = p = parameters
        self._gate_reads = gate_reads
        self._engine = TLMMLutramEngine(p.engine)
        self._buffer = WeightBuffer(beat_bits=p.beat_bits, depth=p.buffer_depth)
        self._assembler = LineAssembler(word_bits=p.data_bits, beat_bits=p.beat_bits)
        # (gated: the reader keeps the buffer's room, in bits: a word takes data_bits, a beat
        # the engine takes returns beat_bits)
        room = ({"capacity": p.buffer_depth * p.beat_bits, "word_units": p.data_bits,
                 "credit_units": p.beat_bits} if gate_reads else {})
        self._reader = BurstReader(addr_bits=p.addr_bits, data_bits=p.data_bits,
                                   outstanding=p.outstanding,
                                   max_burst=p.shared_burst_words if gate_reads else 256,
                                   **room)
        self._parser = (LineAssembler if p.data_bits <= DESCRIPTOR_BITS else WordSplitter)(
            word_bits=p.data_bits, beat_bits=DESCRIPTOR_BITS)
        super().__init__({
            "start": In(1), "replay": In(1), **{name: In(32) for name in CONFIGURATION},
            "status": Out(2), "idle": Out(1), "cycles": Out(32), "stalls": Out(32),
            "acts": self._engine.signature.members["acts"],
            "results": self._engine.signature.members["results"],
            **axi4_read_members("m_axi", addr_bits=p.addr_bits, data_bits=p.data_bits),
        })

    parameters = property(lambda self: self._parameters)

    def elaborate(self, platform):
        m = Module()
        engine, buffer, assembler = self._engine, self._buffer, self._assembler
        m.submodules.engine, m.submodules.buffer = engine, buffer
        m.submodules.assembler, m.submodules.reader = assembler, self._reader
        forward_ports(m, self, self._reader, axi4_read_members("m_axi", addr_bits=1,
                                                               data_bits=1))
        self._load_weights(m)
        wiring.connect(m, assembler.beats, buffer.lines)
        self._feed_engine(m)
        if self._gate_reads:
            self._gate(m)
        # words requested and not yet arrived (each sum from registers, chosen by the late
        # handshakes)
        in_flight = Signal(range(self._parameters.outstanding * 256 + 1))
        requested = self.m_axi_arvalid & self.m_axi_arready
        arrived = self.m_axi_rvalid & self.m_axi_rready
        burst = self._reader.burst
        with m.If(requested):
            m.d.sync += in_flight.eq(Mux(arrived, in_flight + burst - 1, in_flight + burst))
        with m.Elif(arrived):
            m.d.sync += in_flight.eq(in_flight - 1)
        m.d.comb += self.idle.eq(in_flight == 0)
        wiring.connect(m, wiring.flipped(self.acts), engine.acts)
        wiring.connect(m, engine.results, wiring.flipped(self.results))
        return m


    def _gate(self, m):
        """Request a weight burst only when the buffer has room for all of it: the reader's
        room is the buffer's bits less those requested and not yet taken by the engine (the
        descriptor table's bursts, which go to the parser, are exempt); whether table words
        are still to be requested is a register."""
        p, reader, engine = self._parameters, self._reader, self._engine
        capacity = p.buffer_depth * p.beat_bits
        table_left = Signal(32)  # words of the descriptor table still to request
        table = Signal()  # table_left != 0
        requested = self.m_axi_arvalid & self.m_axi_arready
        taken = engine.weights.valid & engine.weights.ready
        # a beat taken frees its bits, unless it is a load's padding's (the room would exceed
        # the buffer's bits: not counted)
        m.d.comb += [reader.credit.eq(taken & (reader.free <= capacity - p.beat_bits)),
                     reader.exempt.eq(table), reader.clear.eq(self.start)]
        with m.If(requested & table):
            m.d.sync += [table_left.eq(table_left - reader.burst),
                         table.eq(table_left != reader.burst)]
        with m.If(self.start):
            word_shift = (reader.word_bytes - 1).bit_length()
            m.d.sync += [table.eq(self.descriptor_count != 0),
                         table_left.eq((self.descriptor_count * DESCRIPTOR_BYTES
                                        + reader.word_bytes - 1) >> word_shift)]

    def _load_weights(self, m):
        """On start, read the descriptor table into on-chip memory, then issue its loads, all
        of them once per streamed pass; read data goes to the descriptor parser until the
        table's last word, then to the weight assembler."""
        reader, parser = self._reader, self._parser
        m.submodules.parser = parser
        depth = self._parameters.max_descriptors
        m.submodules.table = table = Memory(shape=DESCRIPTOR_BITS, depth=depth, init=[])
        write, read = table.write_port(), table.read_port(domain="comb")
        descriptor = data.View(DESCRIPTOR_LAYOUT, read.data)
        table_pending, table_reading, issuing = Signal(), Signal(), Signal()
        parsed = Signal(range(depth + 1))
        issued, issued_passes = Signal(range(depth)), Signal(32)
        count = self.descriptor_count
        passes = Mux(self.replay, 1, self.passes)  # replayed: loaded once
        word_shift = (reader.word_bytes - 1).bit_length()
        table_words = (count * DESCRIPTOR_BYTES + reader.word_bytes - 1) >> word_shift
        command = reader.commands.valid & reader.commands.ready
        m.d.comb += [
            reader.commands.valid.eq(table_pending | (issuing & (issued < parsed))),
            reader.commands.payload.address.eq(
                Mux(table_pending, self.descriptors, descriptor.address)),
            reader.commands.payload.words.eq(Mux(table_pending, table_words, descriptor.words)),
            read.addr.eq(issued),
            parser.words.payload.eq(reader.data.payload),
            parser.words.valid.eq(reader.data.valid & table_reading),
            self._assembler.words.payload.eq(reader.data.payload),
            self._assembler.words.valid.eq(reader.data.valid & ~table_reading),
            reader.data.ready.eq(Mux(table_reading, parser.words.ready,
                                     self._assembler.words.ready)),
            parser.beats.ready.eq(1),  # beats after the table's last are its padding
            write.addr.eq(parsed), write.data.eq(parser.beats.payload),
            write.en.eq(parser.beats.valid & (parsed < count)),
        ]
        with m.If(write.en):
            m.d.sync += parsed.eq(parsed + 1)
        with m.If(command & table_pending):
            m.d.sync += table_pending.eq(0)
        with m.Elif(command):
            with m.If(issued == count - 1):
                m.d.sync += [issued.eq(0), issued_passes.eq(issued_passes + 1)]
                with m.If(issued_passes + 1 >= passes):
                    m.d.sync += issuing.eq(0)
            with m.Else():
                m.d.sync += issued.eq(issued + 1)
        with m.If(parser.words.valid & parser.words.ready & reader.data.payload.last):
            m.d.sync += table_reading.eq(0)
        with m.If(self.start):
            m.d.sync += [table_pending.eq(count > 0), table_reading.eq(count > 0),
                         issuing.eq(count > 0), parsed.eq(0), issued.eq(0),
                         issued_passes.eq(0)]

    def _feed_engine(self, m):
        """Weight beats into the engine with ``last`` on each chunk's last row block; the
        job's cycle and stall counters."""
        engine, buffer = self._engine, self._buffer
        block, consumed = Signal(32), Signal(32)
        running, done = Signal(), Signal()
        cycles, stalls = Signal(32), Signal(32)
        taken = engine.weights.valid & engine.weights.ready
        block_last = block == self.row_blocks - 1
        m.d.comb += [
            engine.weights.payload.slots.eq(buffer.beats.payload),
            engine.weights.payload.last.eq(block_last),
            engine.weights.valid.eq(buffer.beats.valid & running),
            buffer.beats.ready.eq(engine.weights.ready & running),
            self.status.eq(running | done << 1),
            self.cycles.eq(cycles), self.stalls.eq(stalls),
        ]
        passes = Signal(32)
        m.d.comb += [buffer.clear.eq(self.start & ~running),
                     buffer.rewind_beats.eq(self.weight_beats)]
        m.d.sync += buffer.rewind.eq(0)
        with m.If(taken):
            m.d.sync += [block.eq(Mux(block_last, 0, block + 1)), consumed.eq(consumed + 1)]
            with m.If(consumed == self.weight_beats - 1):
                with m.If(passes + 1 >= self.passes):
                    m.d.sync += [running.eq(0), done.eq(1)]
                with m.Else():
                    m.d.sync += [passes.eq(passes + 1), consumed.eq(0),
                                 buffer.rewind.eq(self.replay)]
        with m.If(running):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(engine.weights.ready & ~buffer.beats.valid):
                m.d.sync += stalls.eq(stalls + 1)
        with m.If(self.start & ~running):
            m.d.sync += [running.eq(1), done.eq(0), block.eq(0), consumed.eq(0), passes.eq(0),
                         cycles.eq(0), stalls.eq(0)]


class GemvTop(wiring.Component):
    """Generated top of the GEMV/GEMM path; see the module documentation.

    Parameters
    ----------
    parameters : GemvParameters
        The engine, buffer, AXI and descriptor table parameters.

    Members
    -------
    m_axi_* : the AXI4 read master (weights).
    s_axil_* : the AXI4-Lite control slave.
    s_axis_acts_* : activation beats in (``tdata``, ``tlast``, ``tuser``).
    m_axis_results_* : result beats out.
    """

    def __init__(self, parameters: GemvParameters):
        self._parameters = p = parameters
        self._path = GemvPath(p)
        super().__init__({
            **axi4_read_members("m_axi", addr_bits=p.addr_bits, data_bits=p.data_bits),
            **axi4_lite_members("s_axil"),
            **axis_members("s_axis_acts", data_bits=p.act_bits, direction="in"),
            "s_axis_acts_tuser": In(1),
            **{name: member for name, member in axis_members(
                "m_axis_results", data_bits=p.result_bits, direction="out").items()
               if not name.endswith("tlast")},
        })

    parameters = property(lambda self: self._parameters)

    def elaborate(self, platform):
        m = Module()
        m.submodules.path = path = self._path
        m.submodules.registers = registers = RegisterFile(names=REGISTERS, read_only=_READ_ONLY)
        forward_ports(m, self, registers, axi4_lite_members("s_axil"))
        forward_ports(m, self, path, axi4_read_members("m_axi", addr_bits=1, data_bits=1))
        m.d.comb += [path.start.eq(registers.control_written & registers.control[0]),
                     path.replay.eq(registers.control[1]),
                     *(getattr(path, name).eq(getattr(registers, name))
                       for name in CONFIGURATION),
                     registers.status_in.eq(path.status), registers.cycles_in.eq(path.cycles),
                     registers.stalls_in.eq(path.stalls),
                     path.acts.payload.data.eq(self.s_axis_acts_tdata),
                     path.acts.payload.last.eq(self.s_axis_acts_tlast),
                     path.acts.payload.final.eq(self.s_axis_acts_tuser),
                     path.acts.valid.eq(self.s_axis_acts_tvalid),
                     self.s_axis_acts_tready.eq(path.acts.ready),
                     self.m_axis_results_tdata.eq(path.results.payload),
                     self.m_axis_results_tvalid.eq(path.results.valid),
                     path.results.ready.eq(self.m_axis_results_tready)]
        return m
