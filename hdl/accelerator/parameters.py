"""Parameters of the accelerator's units: what they compute, their instruction layouts.

:class:`VectorOp` names the element-wise operations of a BitNet layer that the
:class:`~ternforge.hdl.accelerator.vector.VectorUnit` runs from DDR to DDR, and
:class:`VectorUnitParameters` holds its format, sizes and the layout of its instructions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.lib import data

from ..attention.parameters import AttentionParameters, AttentionUnitParameters
from ..common.axi import check_data_bits
from ..common.checks import check_int
from ..common.timing import (COMMAND_CYCLES, OUTSTANDING, MemoryTiming, ReadStream, Schedule,
                             WriteChannel, bursts, first_arrivals, write_bursts)
from ..eltwise.parameters import (ACTIVATIONS, DequantiseParameters,
                                  GatedActivationParameters, QuantiseParameters,
                                  ResidualParameters, RmsNormParameters, RopeParameters)
from ..fp.format import float_format
from ..gemv.parameters import DESCRIPTOR_BITS, DESCRIPTOR_BYTES, GemvParameters
from ..matmul.parameters import EngineKind, TlmmParameters
from .model import ModelConfig

__all__ = ["VectorOp", "VectorUnitParameters", "VECTOR_INSTRUCTION", "CopyUnitParameters",
           "RopeUnitParameters", "GemvUnitParameters", "AttentionInstructionParameters",
           "AcceleratorParameters", "check_hp_ports"]


class VectorOp(enum.IntEnum):
    """An element-wise operation over ``tokens`` vectors of ``length`` elements.

    Operands: ``a`` and ``b`` are read, ``y`` (and ``z``) written; addresses are word
    aligned.
    """

    #: ``y = (float(a) * b[token]) * scalar``: int32 accumulators ``a``, one activation scale
    #: a token ``b``, the weight scale ``scalar``
    DEQUANTISE = 0
    #: ``y = a + b``
    RESIDUAL = 1
    #: ``y = a * rsqrt(mean(a**2) + scalar) * b``: the gain ``b`` (``length`` elements, the
    #: same for every token), ``inv_length`` ``1/length``
    RMSNORM = 2
    #: ``y`` int8 codes and ``z`` one scale a token: absmax quantisation of ``a``
    QUANTISE = 3
    #: ``y = act(a) * b``: the gated FFN activation (the unit's ``activation``)
    GATED = 4


#: the payload of a vector instruction (scalars as bit patterns of the unit's format)
VECTOR_INSTRUCTION = data.StructLayout({
    "op": 4, "tokens": 16, "length": 16, "a": 32, "b": 32, "y": 32, "z": 32, "scalar": 32,
    "inv_length": 32})


@dataclass(frozen=True)
class VectorUnitParameters:
    """The vector unit: its stages' format, sizes and bus.

    Parameters
    ----------
    format : str
        The arithmetic's format.
    max_length : int
        The longest vector of the two-pass stages (RMSNorm, quantise: the hidden or FFN size).
    activation : str
        The gated activation (``silu`` or ``relu2``).
    data_bits : int
        The AXI data width of its readers and writers.
    max_burst : int
        Words of a burst at most (their FIFOs hold two, :attr:`fifo_depth`).
    lanes : int
        Elements a cycle: the stages' lanes (a power of two, at most a quarter of a bus
        word's float32 elements, so that both operands of a beat take at most half the bus;
        every vector is a whole number of beats). RMSNorm keeps seven partial
        sums of squares a lane (its golden model's ``partial_sums``).
    """

    format: str = "float32"
    max_length: int = 2560
    activation: str = "relu2"
    data_bits: int = 512
    max_burst: int = 16
    lanes: int = 1

    def __post_init__(self):
        float_format(self.format)
        if self.format != "float32":
            # 32-bit elements in DDR: the accumulators, scales and vectors share one width
            raise ValueError(f"Vector unit format must be float32, not {self.format!r}")
        check_int("Maximum length", self.max_length, 2, 65536)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Activation must be one of {', '.join(ACTIVATIONS)}, not "
                             f"{self.activation!r}")
        check_data_bits(self.data_bits)
        check_int("Burst words", self.max_burst, 1, 256)
        most = self.most_lanes(self.data_bits)
        if self.lanes not in [1 << k for k in range(most.bit_length())]:
            raise ValueError(f"Vector lanes must be a power of two from 1 to {most} (a "
                             f"quarter of the float32 elements of a {self.data_bits}-bit word), "
                             f"not {self.lanes!r}")
        if self.max_length % self.lanes:
            raise ValueError(f"Maximum length must be a multiple of the {self.lanes} vector "
                             f"lanes, not {self.max_length!r}")

    @staticmethod
    def most_lanes(data_bits: int) -> int:
        """The most lanes a ``data_bits`` bus takes: two operands' beats in half a word, so
        that the bus has room to spare after the readers' first bursts (where the cycle model
        follows each word) and no later word is late."""
        return data_bits // 128

    @property
    def stages(self) -> dict:
        """Each operation's stage parameters."""
        f, n, w = self.format, self.max_length, self.lanes
        return {VectorOp.DEQUANTISE: DequantiseParameters(format=f, acc_width=32, lanes=w),
                VectorOp.RESIDUAL: ResidualParameters(format=f, lanes=w),
                VectorOp.RMSNORM: RmsNormParameters(format=f, max_length=n, lanes=w),
                VectorOp.QUANTISE: QuantiseParameters(format=f, max_length=n, lanes=w),
                VectorOp.GATED: GatedActivationParameters(format=f, kind=self.activation,
                                                          lanes=w)}

    @property
    def fifo_depth(self) -> int:
        """Words of each reader's and writer's FIFO: two bursts, so that a reader's next
        burst is requested a burst before its consumer needs it (a burst of 16 words lasts
        its consumer 64 cycles or more, at most 4 float32 elements a cycle, against a read
        latency of tens), and each FIFO is a LUT RAM of 32 words."""
        return 2 * self.max_burst

    #: cycles of the unit's registers on the way: from taking an instruction to its first
    #: read request (its reader's command, then :data:`~ternforge.hdl.common.timing.
    #: COMMAND_CYCLES`), from a word's arrival to its element in the stage (through the
    #: reader's register), from a result to its word in the writer's FIFO and from the last
    #: write response to ``done``, together (the cycle model's origin is the first request)
    REGISTER_CYCLES = 8 + COMMAND_CYCLES

    def cycles(self, op: VectorOp, tokens: int, length: int, *, a: int, b: int, y: int,
               z: int = 0, memory: MemoryTiming = MemoryTiming()) -> int:
        """Cycles from the unit taking the instruction to its ``done`` (what the controller's
        ``vector_cycles`` counts), on a DDR of ``memory``'s timing that answers one word a
        cycle.

        Reader ``b``'s first burst (dequantisation's: the scales reader's) is requested
        first, alone, then ``a``'s and ``b``'s round-robin
        (:func:`~ternforge.hdl.common.timing.first_arrivals`); the stage takes a beat
        (:attr:`lanes` elements) a cycle once its data is there (its own cycle model:
        latency, or the two-pass stages' token period and scalar phase); its results' bursts
        are written one at a time as they fill
        (:class:`~ternforge.hdl.common.timing.WriteChannel`).
        """
        op = VectorOp(op)
        self.check_job(op, tokens, length)
        word = self.data_bits // 8
        per_word = word // 4  # 32-bit elements
        lanes = self.lanes
        beats, per_beat_word = length // lanes, per_word // lanes  # a vector's; a word's
        if op == VectorOp.QUANTISE and beats < 4:
            # (a token of one or two beats has its codes ready before its scale's write is
            # answered, and takes a cycle or two fewer than the model says: none of a model's)
            raise ValueError(f"Length of the vector unit's quantisation cycle model must be at "
                             f"least 4 beats ({4 * lanes} elements), not {length!r}")

        def load(address, elements):
            return bursts(address, -(-elements // per_word), word_bytes=word,
                          max_burst=self.max_burst)

        a_load = [load(a, tokens * length)]
        if op == VectorOp.QUANTISE:
            streams = [ReadStream(0, a_load, self.fifo_depth)]
        else:  # (``b``, or for dequantisation the scales' reader, requests first; a reader
            # takes its next command once its last is consumed, RMSNorm's gain a token: only
            # the first is among the first bursts)
            b_load = [load(b, elements) for elements in self._b_loads(op, tokens, length)[:1]]
            streams = [ReadStream(1, a_load, self.fifo_depth),
                       ReadStream(0, b_load, self.fifo_depth)]
        arrivals = first_arrivals(streams, memory)
        a_words = arrivals[0]
        b_words = arrivals[1] if len(arrivals) > 1 else []
        stage = self.stages[op]
        if op in (VectorOp.RMSNORM, VectorOp.QUANTISE):
            results, scales = self._two_pass(stage, tokens, beats, a_words, per_beat_word)
        else:
            # (past beat ``latest - first``, no word's arrival can hold the stage up: it
            # takes a beat a cycle from no earlier than the first word)
            cut = max(a_words + b_words) - min(a_words + b_words) + 1
            if op == VectorOp.DEQUANTISE:  # each token's scale beside its accumulators
                b_words = [b_words[t // per_word] for t in range(tokens)
                           if t // per_word < len(b_words)]
                b_needs = [w for t, w in enumerate(b_words[:-(-cut // beats)])
                           for _ in range(beats)]
            elif op == VectorOp.RESIDUAL:
                b_needs = [w for w in b_words for _ in range(per_beat_word)]
            else:  # the gated activation takes ``up`` after the activation's latency
                late = stage.units["activate"].latency
                b_needs = [w - late for w in b_words for _ in range(per_beat_word)]
            a_needs = [w for w in a_words for _ in range(per_beat_word)]
            count = min(cut, max(len(a_needs), len(b_needs)))
            needs = [max((x[i] for x in (a_needs, b_needs) if i < len(x)), default=None)
                     for i in range(count)]
            taken, latency = Schedule(needs, tokens * beats), stage.latency
            results = (tokens * beats, lambda i: taken.time(i) + latency)
            scales = None
        quantise = op == VectorOp.QUANTISE
        count, time = results
        # the writers in the unit's port order: y, codes, z
        writes = write_bursts(y, count, (word if quantise else per_word) // lanes, time,
                              word_bytes=word, max_burst=self.max_burst,
                              writer=1 if quantise else 0)
        if scales is not None:
            writes += write_bursts(z, tokens, per_word, scales.__getitem__, word_bytes=word,
                                   max_burst=self.max_burst, writer=2)
        return max(WriteChannel(3, memory).write(writes)) + self.REGISTER_CYCLES

    @staticmethod
    def _b_loads(op: VectorOp, tokens: int, length: int) -> list:
        """The elements of each of reader ``b``'s loads: none for quantisation, one scale a
        token for dequantisation, the gain again for each token of RMSNorm, else a vector a
        token."""
        if op == VectorOp.QUANTISE:
            return []
        return {VectorOp.DEQUANTISE: [tokens],
                VectorOp.RMSNORM: [length] * tokens}.get(op, [tokens * length])

    def ddr_bytes(self, op: VectorOp, tokens: int, length: int) -> int:
        """Bytes an instruction moves on DDR, in the whole words :meth:`cycles` reads and
        writes: ``a``, ``b``'s loads, and ``y`` (int8 codes and ``z``, a scale a token, for
        quantisation)."""
        op = VectorOp(op)
        word = self.data_bits // 8
        words = lambda elements, per_word=word // 4: -(-elements // per_word)  # noqa: E731
        elements = tokens * length
        reads = words(elements) + sum(words(n) for n in self._b_loads(op, tokens, length))
        writes = (words(elements, word) + words(tokens) if op == VectorOp.QUANTISE
                  else words(elements))
        return word * (reads + writes)

    @staticmethod
    def _two_pass(stage, tokens, length, a_words, per_word):
        """A two-pass stage's results ``(count, cycle of result i)`` (in beats: ``length`` a
        vector, ``per_word`` a word) and each token's scale's cycle: a token's pass 1 takes a
        beat a cycle as it arrives, no earlier than the scalar phase and pass 2 of the token
        before allow."""
        scalar, pass2 = stage.scalar_cycles, stage.pass2_latency
        ends, earliest = [], 0
        for t in range(tokens):
            first = t * length
            needs = [a_words[(first + i) // per_word]
                     for i in range(min(length, len(a_words) * per_word - first))]
            end = Schedule(needs, length, earliest).last
            ends.append(end)
            earliest = end + length + scalar
        # (the quantiser's scale leaves its product 4 cycles later, registered on its way)
        scales = ([end + 1 + stage.units["to_scale"].latency + 4 for end in ends]
                  if "to_scale" in stage.units else None)
        return (tokens * length,
                lambda i: ends[i // length] + scalar + pass2 + i % length), scales

    def check_job(self, op: VectorOp, tokens: int, length: int) -> None:
        """Refuse (``ValueError``) a job the unit cannot run."""
        check_int("Tokens", tokens, 1, (1 << 16) - 1)
        limit = self.max_length if op in (VectorOp.RMSNORM, VectorOp.QUANTISE) else (1 << 16) - 1
        check_int("Length", length, 1, limit)
        if length % self.lanes:
            raise ValueError(f"Length must be a multiple of the {self.lanes} vector lanes, "
                             f"not {length!r}")


def check_hp_ports(hp_ports, data_bits: int | None = None) -> None:
    """Refuse (``ValueError``) DDR ports other than 1, 2 or 4, and (given the bus's
    ``data_bits``) ports of fewer than 32 bits each."""
    if hp_ports not in (1, 2, 4):
        raise ValueError(f"HP ports must be 1, 2 or 4, not {hp_ports!r}")
    if data_bits is not None and data_bits // hp_ports < 32:
        raise ValueError(f"HP ports must each be at least 32 bits of the {data_bits}-bit "
                         f"bus, not {hp_ports!r}")


@dataclass(frozen=True)
class CopyUnitParameters:
    """The copy unit (:class:`~ternforge.hdl.accelerator.top.CopyUnit`): a DMA copy from DDR
    to DDR through a FIFO of ``depth`` words each way, bursts of up to ``min(depth, 256)``
    words.

    Parameters
    ----------
    data_bits : int
        The AXI data width.
    depth : int
        Words of its reader's and writer's FIFOs (a power of two, 16 to 4096; the
        accelerator's copies are a head's key or value, so it takes the fewest that hold
        one: :attr:`AcceleratorParameters.copy`).
    """

    data_bits: int = 512
    depth: int = 256

    def __post_init__(self):
        check_data_bits(self.data_bits)
        check_int("Copy FIFO depth", self.depth, 16, 4096)
        if self.depth & (self.depth - 1):
            raise ValueError(f"Copy FIFO depth must be a power of two, not {self.depth!r}")

    #: cycles of the unit's registers, from taking the instruction to its read request (its
    #: reader's command, then :data:`~ternforge.hdl.common.timing.COMMAND_CYCLES`) and from
    #: the last write response to ``done``, together
    REGISTER_CYCLES = 3 + COMMAND_CYCLES

    def cycles(self, source: int, destination: int, words: int, *,
               memory: MemoryTiming = MemoryTiming()) -> int:
        """Cycles from the unit taking a copy of ``words`` words to its ``done`` (the
        controller's ``copy_cycles``), on a DDR of ``memory``'s timing: the reader requests
        the whole copy at once, and each write burst goes once its words are in. A copy
        longer than the FIFO waits for room, which the model does not follow: refused."""
        check_int("Copy words of the cycle model", words, 1, self.depth)
        word = self.data_bits // 8
        arrived = first_arrivals([ReadStream(0, [bursts(
            source, words, word_bytes=word, max_burst=self.max_burst)], self.depth)],
            memory)[0]
        writes = write_bursts(destination, words, 1, arrived.__getitem__, word_bytes=word,
                              max_burst=self.max_burst)
        return max(WriteChannel(1, memory).write(writes)) + self.REGISTER_CYCLES

    @property
    def max_burst(self) -> int:
        """Words of a burst at most."""
        return min(self.depth, 256)

    def ddr_bytes(self, words: int) -> int:
        """Bytes a copy of ``words`` words moves on DDR: each read and written."""
        return 2 * words * (self.data_bits // 8)


@dataclass(frozen=True)
class RopeUnitParameters:
    """The RoPE unit (:class:`~ternforge.hdl.accelerator.rope.RopeUnit`): four readers (a
    head's halves, the angle's cosines and sines), the float32 rotation stage, two writers.

    Parameters
    ----------
    data_bits : int
        The AXI data width.
    max_burst : int
        Words of a burst at most (their FIFOs hold two, :attr:`fifo_depth`).
    """

    data_bits: int = 512
    max_burst: int = 16

    def __post_init__(self):
        check_data_bits(self.data_bits)
        check_int("Burst words", self.max_burst, 1, 256)

    @property
    def fifo_depth(self) -> int:
        """Words of each reader's and writer's FIFO: two bursts (as the vector unit's)."""
        return 2 * self.max_burst

    @property
    def stage(self) -> RopeParameters:
        return RopeParameters(format="float32")

    #: cycles of the unit's registers, from taking the instruction to its first request (a
    #: reader's command, then :data:`~ternforge.hdl.common.timing.COMMAND_CYCLES`) and from
    #: the last write response to ``done``, together
    REGISTER_CYCLES = 7 + COMMAND_CYCLES
    #: cycles from a row's last pair taken to its readers' requests for the next row (a
    #: reader takes its next row once its elements are all out, and requests it
    #: :data:`~ternforge.hdl.common.timing.COMMAND_CYCLES` later)
    ROW_GAP = 3 + COMMAND_CYCLES
    #: cycles from a writer's last response of a row to the first result of its next row
    #: (a writer takes its next row once the last is answered)
    WRITER_GAP = 5

    def cycles(self, tokens: int, heads: int, half: int, *, x: int, stride: int, cos: int,
               sin: int, y: int, memory: MemoryTiming = MemoryTiming()) -> int:
        """Cycles from the unit taking the instruction to its ``done`` (the controller's
        ``rope_cycles``), on a DDR of ``memory``'s timing; rows (a token's head) of whole
        words, ``half`` a multiple of the words' elements.

        Row by row: its four reads, requested when the row before is taken (``x0``'s first
        alone), round-robin; a pair a cycle into the stage once its words are there and the
        writers have taken the row (the stage holds its inputs while its output waits); each
        writer's bursts as they fill, one burst at a time on DDR."""
        word = self.data_bits // 8
        per_word = word // 4
        words = -(-half // per_word)
        latency = self.stage.latency

        def load(address):
            return [bursts(address, words, word_bytes=word, max_burst=self.max_burst)]

        bus, channel = {}, WriteChannel(2, memory)
        accepted, taken, out, done = 0, None, None, 0
        for t in range(tokens):
            for h in range(heads):
                row, table = x + t * stride + h * 8 * half, t * 4 * half
                out_row = y + t * stride + h * 8 * half
                starts = [0, 1, 1, 1] if taken is None else [taken + self.ROW_GAP] * 4
                arrived = first_arrivals(
                    [ReadStream(start, load(address), self.fifo_depth) for start, address in
                     zip(starts, (row, row + 4 * half, cos + table, sin + table))],
                    memory, bus)
                results = []
                for i in range(half):
                    need = max(words_in[i // per_word] for words_in in arrived)
                    taken = need if taken is None else max(taken + 1, need)
                    out = max(taken + latency, accepted) if out is None else \
                        max(taken + latency, out + 1, accepted)
                    taken = out - latency
                    results.append(out)
                pending = [burst for writer, address in enumerate((out_row, out_row + 4 * half))
                           for burst in write_bursts(address, half, per_word,
                                                     results.__getitem__, word_bytes=word,
                                                     max_burst=self.max_burst, writer=writer)]
                done = max(channel.write(pending))
                accepted = done + self.WRITER_GAP  # both writers have taken the next row
        return done + self.REGISTER_CYCLES

    def ddr_bytes(self, tokens: int, heads: int, half: int) -> int:
        """Bytes an instruction moves on DDR, as :meth:`cycles` reads and writes them: each
        row (a token's head) reads its two halves and its token's cosines and sines, and
        writes its two halves, in whole words."""
        word = self.data_bits // 8
        return tokens * heads * 6 * -(-half // (word // 4)) * word


@dataclass(frozen=True)
class GemvUnitParameters:
    """The GEMV unit (:class:`~ternforge.hdl.accelerator.gemv.GemvUnit`): the GEMV path on a
    shared port, an activation reader and a result writer.

    Parameters
    ----------
    path : GemvParameters
        Its path's engine, buffer and bus.
    """

    path: GemvParameters

    #: words of a burst of the activation reader and the result writer at most, and of their
    #: FIFOs (four bursts)
    MAX_BURST = 16
    FIFO_DEPTH = 64
    #: cycles from taking the instruction to the activations' first request, and to the
    #: descriptor table's (each its reader's command, then :data:`~ternforge.hdl.common.
    #: timing.COMMAND_CYCLES`)
    ACTS_REQUEST, TABLE_REQUEST = 1 + COMMAND_CYCLES, 2 + COMMAND_CYCLES
    #: cycles from the table's first word to the first weight request (the first descriptor
    #: parsed and issued, then the reader's :data:`~ternforge.hdl.common.timing.
    #: COMMAND_CYCLES`), and from a weight beat's last word to the engine taking it
    DESCRIPTOR_CYCLES, BEAT_CYCLES = 2 + COMMAND_CYCLES, 3
    #: cycles from the first activation word to the engine taking the first chunk, past the
    #: chunk's codes (one a cycle); then its tables take ``table_entries - 1`` more
    CHUNK_CYCLES = 2
    #: cycles from the last result write's response to ``done``, and of the registers from the
    #: engine presenting a result to its word in the writer's FIFO (the model counts a
    #: result's write from the cycle the engine presents it)
    DONE_CYCLES = 5

    @property
    def result_lanes(self) -> int:
        """Accumulators the unit writes a cycle: the most of a result beat's ``rows`` that a
        bus word holds as int32, a power of two dividing ``rows`` (16 of 16 rows on a 512-bit
        bus, 4 on 128 bits; 1 for an odd ``rows``). A row block's results leave in
        ``rows / result_lanes`` cycles, so that those of the last chunk keep pace with its
        weights."""
        rows, most = self.path.engine.rows, self.path.data_bits // 32
        lanes = rows & -rows  # the largest power of two dividing rows
        return min(lanes, most)

    def check_layer(self, n: int, k: int, *, memory: MemoryTiming = MemoryTiming()) -> None:
        """Refuse (``ValueError``) a layer or a memory outside :meth:`cycles`'s domain: fewer
        than ``acts_per_beat`` row blocks, a ``k`` the engine does not take, or a latency
        the weight buffer does not cover."""
        path, engine = self.path, self.path.engine
        check_int("Rows N of the GEMV cycle model", n, engine.acts_per_beat * engine.rows,
                  engine.max_n)
        check_int("K of the GEMV cycle model", k, 1, engine.max_k)
        words = path.buffer_depth * path.beat_bits // path.data_bits
        check_int("Read latency of the GEMV cycle model", memory.latency, 1,
                  words - 2 * path.shared_burst_words)

    def cycles(self, n: int, k: int, *, descriptors: int, descriptor_count: int, acts: int,
               results: int, memory: MemoryTiming = MemoryTiming()) -> int:
        """Cycles from the unit taking a GEMV of an ``n`` x ``k`` layer to its ``done`` (the
        controller's ``gemv_cycles``), on a DDR of ``memory``'s timing, with the runtime's
        loads (every load but the last whole words, so that the weights are one run of
        words). Where the results are written does not depend on the weights' addresses.

        The reads begin round-robin: the activations' first bursts (those their FIFO holds),
        the descriptor table (its words as fast as the parser takes them, a descriptor a
        cycle). The first weight burst is asked for once the first descriptor is in; from
        then on DDR is never idle (the buffer's reservation covers the latency), so the weight
        words arrive one a cycle after the first reads, with the activations' later bursts
        among them. The engine takes a beat a cycle once its words are in and the first
        chunk's tables are written; its results come out from the first beat of the last
        chunk (the engine's results after it) and are written in bursts as they fill. The
        model follows the unit where the engine is bound by DDR: at least
        ``acts_per_beat`` row blocks (a chunk's codes take a cycle each), and a latency the
        buffer covers; it refuses the rest. The engine presents a row block's results of the
        last chunk its ``latency`` cycles after taking the block's beat, and they leave
        :attr:`result_lanes` a cycle once those of the block before have left (while they
        have not, the engine waits)."""
        self.check_layer(n, k, memory=memory)
        path, engine = self.path, self.path.engine
        word = path.word_bytes
        table = bursts(descriptors, -(-descriptor_count * DESCRIPTOR_BYTES // word),
                       word_bytes=word, max_burst=path.shared_burst_words)
        act_bursts = bursts(acts, -(-k // word), word_bytes=word, max_burst=self.MAX_BURST)
        first_acts, room = [], self.FIFO_DEPTH
        for length in act_bursts:
            if length > room or len(first_acts) == OUTSTANDING:
                break
            first_acts.append(length)
            room -= length
        table_rate = max(1, path.data_bits // DESCRIPTOR_BITS)  # cycles a table word
        served = self._first_reads(table, first_acts, table_rate, memory)
        first_weights = max(served["table"] + self.DESCRIPTOR_CYCLES + memory.latency,
                            served["free"])
        last_chunk = (engine.chunks(k) - 1) * engine.row_blocks(n)  # its first beat
        weights_from = first_weights + sum(act_bursts[len(first_acts):]) - 1
        tables = (served["acts"] + min(k, engine.acts_per_beat) + self.CHUNK_CYCLES
                  + engine.table_entries - 1)
        lanes = self.result_lanes
        split, pieces = engine.rows // lanes, -(-n // lanes)
        times, taken = [], None
        for block in range(-(-pieces // split)):
            # the last chunk's beat of this row block: its words in, the engine past the
            # block before, and the block before split into pieces
            arrived = weights_from + -(-(last_chunk + block + 1) * path.beat_bits
                                       // path.data_bits)
            taken = max(arrived + self.BEAT_CYCLES, tables + last_chunk + block,
                        -1 if taken is None else taken + split)
            times += [taken + engine.latency + piece for piece in range(split)]
        writes = write_bursts(results, pieces, word // (4 * lanes), times.__getitem__,
                              word_bytes=word, max_burst=self.MAX_BURST)
        return max(WriteChannel(1, memory).write(writes)) + self.DONE_CYCLES

    def ddr_bytes(self, n: int, k: int, *, descriptor_count: int, weight_beats: int) -> int:
        """Bytes a GEMV of an ``n`` x ``k`` layer moves on DDR, in whole words: its descriptor
        table, its ``weight_beats`` beats of weights (one run of words), its ``k`` int8
        codes, its ``n`` int32 results."""
        path, word = self.path, self.path.word_bytes
        words = (-(-descriptor_count * DESCRIPTOR_BYTES // word)
                 + -(-weight_beats * path.beat_bits // path.data_bits)
                 + -(-k // word) + -(-4 * n // word))
        return word * words

    def _first_reads(self, table, acts, table_rate, memory) -> dict:
        """The first word of the table and of the activations, and the cycle DDR is free of
        them: the activations ask from :attr:`ACTS_REQUEST`, the table from
        :attr:`TABLE_REQUEST`, one address a cycle, round-robin (the path's port first);
        the parser takes a table word every ``table_rate`` cycles, across bursts too."""
        queues = [[(length, table_rate) for length in table], [(length, 1) for length in acts]]
        ready, position, last, cycle = [self.TABLE_REQUEST, self.ACTS_REQUEST], [0, 0], 1, 0
        free, table_word, first = None, None, {}
        while any(p < len(q) for p, q in zip(position, queues)):
            port = next((i for i in (1 - last, last)
                         if position[i] < len(queues[i]) and ready[i] <= cycle), None)
            if port is None:
                cycle += 1
                continue
            length, rate = queues[port][position[port]]
            position[port] += 1
            ready[port], last = cycle + 1, port
            start = cycle + memory.latency if free is None else max(cycle + memory.latency, free)
            if port == 0 and table_word is not None:
                start = max(start, table_word + rate)
            first.setdefault(port, start)
            if port == 0:
                table_word = start + rate * (length - 1)
            free = start + rate * (length - 1) + 1
            cycle += 1
        return {"table": first[0], "acts": first[1], "free": free}


@dataclass(frozen=True)
class AttentionInstructionParameters:
    """The accelerator's attention unit (:class:`~ternforge.hdl.accelerator.attention.
    AttentionUnit`): a :class:`~ternforge.hdl.attention.unit.CachedAttention` command a
    instruction, with readers of its query rows and appended row and a writer of its output
    rows.

    Parameters
    ----------
    cached : AttentionUnitParameters
        The cached attention unit's engine, bus and cache layout.
    """

    cached: AttentionUnitParameters

    #: words of a burst of the readers and the writer at most, and of their FIFOs
    MAX_BURST = 16
    FIFO_DEPTH = 64
    #: cycles from taking the instruction to the engine's job, the first query row's request
    #: and the appended key's (each a reader's command, then :data:`~ternforge.hdl.common.
    #: timing.COMMAND_CYCLES`)
    JOB, QUERY_REQUEST, APPEND_REQUEST = 2, 1 + COMMAND_CYCLES, 2 + COMMAND_CYCLES
    #: cycles from a row's last element out to its reader's request for the next row (its
    #: command, then :data:`~ternforge.hdl.common.timing.COMMAND_CYCLES`), and from a word's
    #: arrival to its first element out (the reader's FIFO and splitter)
    ROW_GAP, ELEMENT_CYCLES = 1 + COMMAND_CYCLES, 2
    #: cycles from a row's last write response to the next output row (the writer takes its
    #: next row once the last is answered), and from the last to ``done``
    WRITER_GAP, DONE_CYCLES = 5, 4

    def cycles(self, rows: int, keys: int, append: int, *, q: int, q_stride: int, k: int,
               v: int, out: int, out_stride: int, base: int = 0, position: int = 0,
               memory: MemoryTiming = MemoryTiming()) -> int:
        """Cycles from the unit taking the instruction to its ``done`` (the controller's
        ``attention_cycles``), on a DDR of ``memory``'s timing, for a job with cached rows
        (``keys`` more than ``append``: every job of a prefill or decode step).

        The query rows and (appending) the key and value rows are read a row at a time by
        their readers, round-robin on DDR, a reader asking for its next row once its last
        row's elements are out; the engine takes a query beat a cycle, the appended row's
        writer a word's beats then a cycle to pass the word on, to its row at ``base`` +
        ``position`` rows (a burst at a time: a burst's words wait for the response to the
        burst before, when the row crosses 4 KiB). Once all are in, the cache is
        read (a beat a cycle through the splitter), and the engine's job follows its own
        cycle model (:meth:`AttentionParameters.cycles
        <ternforge.hdl.attention.parameters.AttentionParameters.cycles>`) from its first
        key; its output rows go out a beat a cycle, each once the writer has answered the row
        before, and are written in bursts as they fill. The appended row's write is answered
        long before the outputs (its words are written as they come)."""
        engine = self.cached.engine
        check_int("Rows of the attention cycle model", rows, 1, engine.rows)
        check_int("Appended rows of the attention cycle model", append, 0, 1)
        check_int("Keys of the attention cycle model", keys, append + 1, engine.max_keys)
        beats = engine.elements_per_lane  # of a D-element row
        per_word = self.cached.data_bits // engine.beat_bits
        readers = [[q + r * q_stride for r in range(rows)], [k, v] if append else []]
        row = base + position * self.cached.row_bytes
        done, free = self._rows_in(readers, beats, per_word, row, memory)
        released = max(done) + 1
        first_key = max(released + memory.latency, free) + self.cached.key_cycles - self.JOB
        row_out = self.JOB + engine.cycles(rows, keys, first_key=first_key,
                                           paired=self.cached.paired) - rows * beats
        channel, word = WriteChannel(1, memory), self.cached.data_bits // 8
        answered = None
        for r in range(rows):
            if r:
                row_out = max(row_out + beats, answered + self.WRITER_GAP)
            answered = max(channel.write(write_bursts(
                out + r * out_stride, beats, per_word, lambda i: row_out + i,
                word_bytes=word, max_burst=self.MAX_BURST)))
        return answered + self.DONE_CYCLES

    def ddr_bytes(self, rows: int, keys: int, append: int) -> int:
        """Bytes an instruction moves on DDR: its query rows read and output rows written,
        its cached rows read, and (appending) the new key and value read and written to the
        cache."""
        engine = self.cached.engine
        row = engine.head_dim * engine.format.width // 8  # a query or output row
        cache_row = self.cached.row_bytes
        return 2 * rows * row + (keys - append) * cache_row + append * 2 * cache_row

    def _rows_in(self, readers, beats, per_word, row, memory) -> tuple[list, int]:
        """The cycle each reader's last element is taken, and the cycle DDR is free of them:
        the readers' rows (addresses), each read whole, round-robin with the cache's port
        (idle) first; the appended row's elements (the second reader), a word's beats then a
        cycle for the writer to take the word, written to ``row`` as they come."""
        word = self.cached.data_bits // 8
        writes = bursts(row, self.cached.row_words, word_bytes=word, max_burst=256)
        burst_of = [b for b, length in enumerate(writes) for _ in range(length)]
        accepted, opened = None, {0: 0}  # the last word's acceptance; each burst's opening
        rows = [list(addresses) for addresses in readers]
        pending = [bursts(r[0], beats // per_word, word_bytes=word, max_burst=self.MAX_BURST)
                   if r else [] for r in rows]
        ready = [self.QUERY_REQUEST, self.APPEND_REQUEST]
        words_in, taken = [[], []], [None, None]
        free, last, cycle = None, 0, 0  # the bus's ports: the cache's (idle here), these two
        while any(pending):
            port = next((i for step in range(1, 4) if 0 <= (i := (last + step) % 3 - 1)
                         and pending[i] and ready[i] <= cycle), None)
            if port is None:
                cycle += 1
                continue
            length = pending[port].pop(0)
            first = cycle + memory.latency if free is None else max(cycle + memory.latency, free)
            words_in[port] += range(first, first + length)
            free, last, ready[port] = first + length, port + 1, cycle + 1
            if not pending[port]:  # the row's words are known: its elements, the next row
                t = taken[port]
                for j in range(beats):
                    need = words_in[port][j // per_word] + self.ELEMENT_CYCLES
                    t = need if t is None else max(need, t + 1)
                    if port == 1 and j % per_word == 0 and accepted is not None:
                        t = max(t, accepted + 1)  # the writer took the word before
                    if port == 1 and j % per_word == per_word - 1:  # a word for the writer
                        w = (len(readers[1]) - len(rows[1])) * (beats // per_word) + \
                            j // per_word
                        if burst_of[w] not in opened:  # after the response to the burst before
                            # (its words came slower than DDR takes them: only the last's
                            # cycles remain)
                            opened[burst_of[w]] = accepted + memory.write_answer(1) + 3
                        accepted = max(t + 1, opened[burst_of[w]])
                taken[port], words_in[port] = t, []
                rows[port].pop(0)
                if rows[port]:
                    pending[port] = bursts(rows[port][0], beats // per_word, word_bytes=word,
                                           max_burst=self.MAX_BURST)
                    ready[port] = t + self.ROW_GAP
            cycle += 1
        return [t for t in taken if t is not None], free


@dataclass(frozen=True)
class AcceleratorParameters:
    """The accelerator's units for a model (:func:`~ternforge.hdl.accelerator.top.accelerator`
    takes them).

    Members
    -------
    model : ModelConfig
    engine : TlmmParameters
        The GEMV unit's LUT-RAM engine.
    attention : AttentionUnitParameters
    vector : VectorUnitParameters
    data_bits : int
        The AXI data width of every unit.
    buffer_depth : int
        Weight beats the GEMV unit's buffer holds.
    hp_ports : int
        DDR ports the units' bus is striped over (an
        :class:`~ternforge.hdl.common.striper.AxiStriper`'s; 1: the bus is the port), each
        :attr:`port_bits` wide: 1, 2 or 4, the HP ports of a Zynq UltraScale+.
    """

    model: ModelConfig
    engine: TlmmParameters
    attention: AttentionUnitParameters
    vector: VectorUnitParameters
    data_bits: int = 128
    buffer_depth: int = 64
    hp_ports: int = 1

    def __post_init__(self):
        if self.attention.engine.format.name != "float32":
            # the vector and RoPE units write the queries, keys and values it reads
            raise ValueError(f"Attention format of the accelerator must be float32, not "
                             f"{self.attention.engine.format.name!r}")
        check_hp_ports(self.hp_ports, self.data_bits)

    @property
    def port_bits(self) -> int:
        """The data width of each DDR port."""
        return self.data_bits // self.hp_ports

    def bus_timing(self, memory: MemoryTiming) -> MemoryTiming:
        """The timing the units see on their bus, their DDR ports each of ``memory``'s
        timing (:meth:`MemoryTiming.striped
        <ternforge.hdl.common.timing.MemoryTiming.striped>`)."""
        return memory.striped(self.hp_ports)

    @property
    def gemv(self) -> GemvParameters:
        return GemvParameters(engine=self.engine, data_bits=self.data_bits,
                              buffer_depth=self.buffer_depth)

    @property
    def gemv_unit(self) -> GemvUnitParameters:
        return GemvUnitParameters(self.gemv)

    @property
    def attention_unit(self) -> AttentionInstructionParameters:
        return AttentionInstructionParameters(self.attention)

    @property
    def rope(self) -> RopeUnitParameters:
        return RopeUnitParameters(data_bits=self.data_bits)

    @property
    def copy(self) -> CopyUnitParameters:
        """The copy unit, its FIFOs the fewest words (at least 16) that hold a copy of a
        head's key or value (the only copies of a program), so that they are small LUT
        RAMs."""
        words = -(-4 * self.model.head_dim // (self.data_bits // 8))
        return CopyUnitParameters(data_bits=self.data_bits,
                                  depth=max(16, 1 << (words - 1).bit_length()))

    def instruction_cycles(self, unit: str, fields: dict, *, memory: MemoryTiming):
        """An instruction's cycles by its unit's cycle model (``fields`` as
        :func:`~ternforge.sim.runtime.decode_instruction` gives them)."""
        f = fields
        if unit == "vector":
            return self.vector.cycles(f["op"], f["tokens"], f["length"], a=f["a"], b=f["b"],
                                      y=f["y"], z=f["z"], memory=memory)
        if unit == "copy":
            return self.copy.cycles(f["source"], f["destination"], f["words"], memory=memory)
        if unit == "gemv":
            return self.gemv_unit.cycles(f["n"], f["k"], descriptors=f["descriptors"],
                                         descriptor_count=f["descriptor_count"], acts=f["acts"],
                                         results=f["results"], memory=memory)
        if unit == "attention":
            return self.attention_unit.cycles(
                f["rows"], f["keys"], f["append"], q=f["q"], q_stride=f["q_stride"], k=f["k"],
                v=f["v"], out=f["out"], out_stride=f["out_stride"], base=f["base"],
                position=f["position"], memory=memory)
        if unit == "rope":
            return self.rope.cycles(f["tokens"], f["heads"], f["half"], x=f["x"],
                                    stride=f["stride"], cos=f["cos"], sin=f["sin"], y=f["y"],
                                    memory=memory)
        raise ValueError(f"Unit must be one of copy, vector, gemv, attention, rope, not "
                         f"{unit!r}")

    def instruction_bytes(self, unit: str, fields: dict) -> int:
        """The DDR bytes an instruction reads and writes, by its unit's ``ddr_bytes``
        (``fields`` as :func:`~ternforge.sim.runtime.decode_instruction` gives them)."""
        f = fields
        if unit == "vector":
            return self.vector.ddr_bytes(f["op"], f["tokens"], f["length"])
        if unit == "copy":
            return self.copy.ddr_bytes(f["words"])
        if unit == "gemv":
            return self.gemv_unit.ddr_bytes(f["n"], f["k"], weight_beats=f["weight_beats"],
                                            descriptor_count=f["descriptor_count"])
        if unit == "attention":
            return self.attention_unit.ddr_bytes(f["rows"], f["keys"], f["append"])
        if unit == "rope":
            return self.rope.ddr_bytes(f["tokens"], f["heads"], f["half"])
        raise ValueError(f"Unit must be one of copy, vector, gemv, attention, rope, not "
                         f"{unit!r}")

    @property
    def context(self) -> int:
        """Tokens the KV cache holds."""
        return self.attention.engine.max_keys

    @classmethod
    def for_model(cls, model: ModelConfig, *, context: int, group_size: int = 3,
                  groups_per_cycle: int = 8, rows: int = 16, lanes: int = 4, tile_rows: int = 8,
                  tile_cols: int = 8, data_bits: int = 128, buffer_depth: int = 4096,
                  hp_ports: int = 1, vector_lanes: int = 1) -> "AcceleratorParameters":
        """The accelerator for ``model``: an engine of ``group_size`` x ``groups_per_cycle``
        x ``rows`` (its depths the model's widest projection), float32 attention of ``lanes``
        fmas (at most the elements a bus word carries) on tiles of ``tile_rows`` x
        ``tile_cols`` with a KV cache of ``context`` tokens, the vector unit of
        ``vector_lanes`` at the model's widest vector and activation, every unit on a
        ``data_bits`` bus striped over ``hp_ports`` DDR ports, and a weight buffer of
        ``buffer_depth`` beats."""
        check_int("Context", context, 1, model.max_context)
        check_data_bits(data_bits)
        check_int(f"Attention lanes (float32 elements of a {data_bits}-bit word)", lanes, 1,
                  data_bits // 32)
        widest = max(model.hidden, model.ffn)
        depth = 1 << (widest - 1).bit_length()
        engine = TlmmParameters(kind=EngineKind.TLMM_LUTRAM, group_size=group_size,
                                groups_per_cycle=groups_per_cycle, rows=rows, max_k=depth,
                                max_n=depth, max_tokens=1)
        attention = AttentionUnitParameters(engine=AttentionParameters(
            format="float32", head_dim=model.head_dim, rows=tile_rows, cols=tile_cols,
            lanes=lanes, max_keys=context), data_bits=data_bits)
        for size in (model.hidden, model.ffn):
            if size % vector_lanes:
                raise ValueError(f"Vector lanes must divide {model.name}'s hidden and FFN "
                                 f"sizes ({model.hidden}, {model.ffn}), not {vector_lanes!r}")
        vector = VectorUnitParameters(data_bits=data_bits, max_length=widest,
                                      activation=str(model.activation), lanes=vector_lanes)
        return cls(model, engine, attention, vector, data_bits=data_bits,
                   buffer_depth=buffer_depth, hp_ports=hp_ports)

    @classmethod
    def for_simulation(cls, model: ModelConfig, *, context: int,
                       hp_ports: int = 1) -> "AcceleratorParameters":
        """A small accelerator for ``model`` that the simulator runs whole: a 128-bit bus
        (on ``hp_ports`` DDR ports of ``128 // hp_ports`` bits), an engine of 96 MACs a cycle
        (G = 3, P = 4, R = 8), two attention lanes, tiles of 4 x 4, a KV cache of ``context``
        tokens, a weight buffer of 64 beats, a vector unit of one lane (the most a 128-bit
        bus takes)."""
        return cls.for_model(model, context=context, groups_per_cycle=4, rows=8, lanes=2,
                             tile_rows=4, tile_cols=4, buffer_depth=64, hp_ports=hp_ports,
                             vector_lanes=1)
