"""Plan how a layer's ternary weight codes travel from DDR through URAM into a TLMM engine.

The planner is analytic: from a layer shape (N x K), the engine's parallelism, the board and
the phase it decides the layout and the schedule, predicts the cycle and stall counts, and
refuses a plan that cannot fit. Its descriptors are what the weight-buffer hardware executes.

Layout
------
The engine consumes one *weight beat* per cycle: ``rows * groups_per_cycle`` TL codes of
``code_bits`` each (640 bits at G=3, P=8, R=16). In DDR the beats are packed densely (bit
after bit, ``line_bytes`` is a beat's size rounded up to bytes), in the table-stationary order
of :mod:`ternforge.hdl.matmul.lutram` (for each K chunk, every row block); the read side
regroups AXI data words into beats. In URAM a beat is one
address across ``banks`` URAM288 columns (72 bits each, read together in one cycle); a column
may be several URAM288 deep. The URAM address space is a circular buffer of ``capacity`` beats
between DDR and the engine: a beat is requested from DDR once the beat ``capacity`` places
earlier has been consumed, and the engine reads a beat as soon as it has been written.

Phases
------
``decode`` (one token): every beat is read from DDR once and streams through the buffer, so
the run is bound by the slower of DDR and the engine.
``prefill`` (M tokens): if the whole layer fits in the board's URAM it is loaded once and read
``ceil(M / table_tokens)`` times (compute-bound after the first pass); otherwise it streams
from DDR once per token tile, the passes back to back in one start. A streaming buffer is one URAM288 deep (4,096 beats), far more
than the latency of DDR needs covering.

Descriptors
-----------
The loads of a pass, each at most one URAM288 depth (4,096 beats), are written to DDR as a
descriptor table (:meth:`WeightPlan.descriptor_table`) that the hardware fetches on start and
executes back to back (:mod:`ternforge.hdl.gemv.top`). The first load is requested as soon as its
descriptor is in, a memory latency and ``DESCRIPTOR_FETCH_OFFSET`` cycles after the start; its
data follow the rest of the table.

Timing model
------------
The memory returns ``bytes_per_cycle`` after ``latency`` cycles, with enough transactions
outstanding to cover the latency, so line ``j`` of an unblocked stream has arrived at
``latency + ceil((j + 1) * line_bytes / bytes_per_cycle)``. The engine spends
``cycles_per_beat`` on a beat (``table_tokens`` reads, stretched when a chunk has fewer row
blocks than its tables take cycles to write) and starts a beat one cycle after it arrived,
after the previous beat, and not before the job's first tables are written. Stall cycles are those the engine spends waiting for DDR, from the
start (including the wait for the first beat).
"""

from __future__ import annotations

import math

from dataclasses import asdict, dataclass, field

from ...boards import Board
from ...hdl.common.timing import COMMAND_CYCLES
from ...hdl.gemv.parameters import DESCRIPTOR_BYTES, MAX_DESCRIPTORS, URAM_BITS, URAM_WORDS
from ...hdl.matmul.parameters import EngineKind, TlmmParameters

__all__ = ["MemoryModel", "Descriptor", "WeightPlan", "plan_layer", "weight_image",
           "pass_descriptors", "descriptor_table"]

BURST_BYTES = 4096  #: an AXI4 burst may not cross a 4 KiB boundary
#: cycles from the start to the first descriptor's request, and from its last word arriving
#: to the first weight request (parse, queue, command), together: each request the reader's
#: :data:`~ternforge.hdl.common.timing.COMMAND_CYCLES` after its command
DESCRIPTOR_FETCH_OFFSET = 1 + 2 * COMMAND_CYCLES
#: cycles from taking the last beat of a pass to taking the first of its replay, when the
#: engine is ready for it: the registered rewind, then the buffer's read
REWIND_CYCLES = 3
#: the first tables of a job are ready ``tokens * entries`` plus this many cycles after the
#: start (activations offered from the start; one cycle per token to accept its beat, then
#: ``entries - 1`` to write its table)
TABLES_READY_OFFSET = -2


#: bounds no board's memory comes near: 32 kbit a cycle, a latency of 100,000 cycles
MAX_BYTES_PER_CYCLE = 4096
MAX_LATENCY = 100_000


@dataclass(frozen=True)
class MemoryModel:
    """What the DDR side delivers to the weight buffer.

    Members
    -------
    bytes_per_cycle : float
        Sustained read bandwidth in bytes per engine clock cycle.
    latency : int
        Cycles from a read request to its first data.
    axi_data_bits : int
        Width of the AXI4 read data bus.
    """

    bytes_per_cycle: float
    latency: int = 64
    axi_data_bits: int = 512

    def __post_init__(self):
        if not 0 < self.bytes_per_cycle <= MAX_BYTES_PER_CYCLE:  # (nan fails too)
            raise ValueError(f"Memory bytes per cycle must be positive and at most "
                             f"{MAX_BYTES_PER_CYCLE}, not {self.bytes_per_cycle!r}")
        if not isinstance(self.latency, int) or not 0 <= self.latency <= MAX_LATENCY:
            raise ValueError(f"Memory latency must be an integer from 0 to {MAX_LATENCY:,} "
                             f"cycles, not {self.latency!r}")
        if self.axi_data_bits not in (32, 64, 128, 256, 512, 1024):
            raise ValueError(f"AXI data width must be a power of two from 32 to 1024 bits, "
                             f"not {self.axi_data_bits!r}")

    @classmethod
    def of_board(cls, board: Board, **overrides) -> "MemoryModel":
        """The board's DDR peak at its default clock, limited by the AXI bus width."""
        axi_bits = overrides.pop("axi_data_bits", 512)
        peak = min(board.ddr_bytes_per_s / board.clock_hz, axi_bits / 8)
        return cls(bytes_per_cycle=overrides.pop("bytes_per_cycle", round(peak, 3)),
                   axi_data_bits=axi_bits, **overrides)


@dataclass(frozen=True)
class Descriptor:
    """One load the hardware executes: ``beats`` weight beats from DDR into the circular
    buffer.

    Members
    -------
    ddr_offset : int
        Byte offset of the first beat from the layer's base address.
    beats : int
        Weight beats to load.
    size : int
        Bytes to load.
    uram_address : int
        URAM address of the first beat.
    bursts : list of (int, int)
        The AXI4 bursts as (byte offset, bytes), none crossing a 4 KiB boundary.
    """

    ddr_offset: int
    beats: int
    size: int
    uram_address: int
    bursts: tuple = field(repr=False)


@dataclass(frozen=True)
class WeightPlan:
    """A complete plan; see the module documentation.

    Members
    -------
    n, k, tokens : int
        Layer shape and tokens (1 for decode).
    beat_bits, line_bytes, banks, uram_depth, uram_count, capacity_beats : int
        The layout: bits per weight beat, bytes per DDR line, URAM288 columns, URAM288 per
        column, URAM288 in all, beats the buffer holds.
    layer_beats, passes : int
        Beats of the layer, passes over DDR.
    resident : bool
        The whole layer stays in one region (loaded once).
    cycles, compute_cycles, stall_cycles : int
        Predicted cycles, the engine's busy cycles, and cycles it waits for loads.
    ddr_bytes : int
        Bytes read from DDR.
    bandwidth_utilization : float
        Bytes read per cycle over the memory model's limit.
    descriptors : list of Descriptor
        The loads of one pass, in order, each at most one URAM288 depth of beats.
    """

    n: int
    k: int
    tokens: int
    beat_bits: int
    line_bytes: int
    banks: int
    uram_depth: int
    uram_count: int
    capacity_beats: int
    layer_beats: int
    passes: int
    resident: bool
    cycles: int
    compute_cycles: int
    stall_cycles: int
    ddr_bytes: int
    bandwidth_utilization: float
    descriptors: tuple = field(repr=False)

    def descriptor_table(self, base: int = 0, *, word_bytes: int) -> bytes:
        """This plan's descriptor table; see :func:`descriptor_table`."""
        return descriptor_table(self.descriptors, base=base, word_bytes=word_bytes)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["descriptors"] = [{**d, "bursts": [list(b) for b in d["bursts"]]}
                                 for d in values["descriptors"]]
        return values


def _bursts(offset: int, size: int) -> tuple:
    bursts = []
    while size:
        step = min(size, BURST_BYTES - offset % BURST_BYTES)
        bursts.append((offset, step))
        offset, size = offset + step, size - step
    return tuple(bursts)


def _first_request(table_bytes: int, memory: MemoryModel) -> int:
    """When the memory can serve the first weight line, as if requested then: the first
    descriptor must be fetched and queued (its words, ``DESCRIPTOR_FETCH_OFFSET``) and the
    whole table delivered (the memory answers in order; the table is requested in cycle
    :data:`~ternforge.hdl.common.timing.COMMAND_CYCLES`)."""
    first_descriptor = -(-DESCRIPTOR_BYTES // (memory.axi_data_bits // 8)) * (
        memory.axi_data_bits // 8)
    return max(memory.latency + math.ceil(first_descriptor / memory.bytes_per_cycle)
               + DESCRIPTOR_FETCH_OFFSET,
               COMMAND_CYCLES + math.ceil(table_bytes / memory.bytes_per_cycle))


def _stream(beats: int, *, capacity: int, line_bytes: int, memory: MemoryModel,
            cycles_per_beat: list[float], tables_ready: int, first_request: int
            ) -> tuple[int, int]:
    """Cycle the engine finishes streaming passes of ``beats`` through the buffer, pass ``p``
    at ``cycles_per_beat[p]``, and its stalls; it cannot start before its first tables are
    written (``tables_ready``) and the first beat is requested at ``first_request``."""
    costs = [cost for cost in cycles_per_beat for _ in range(beats)]
    consumed = [0] * len(costs)
    done = stalls = 0
    request = first_request  # cycle the memory can start delivering the next line
    for j, cost in enumerate(costs):
        if j >= capacity:  # the line must wait for its buffer slot
            request = max(request, consumed[j - capacity])
        arrival = max(request + memory.latency, 0) + -(-line_bytes // memory.bytes_per_cycle)
        request = max(request + line_bytes / memory.bytes_per_cycle, 0)
        start = max(arrival + 1, done, tables_ready)
        stalls += max(0, arrival + 1 - done) + (j == 0)  # the counter also counts the first take
        done = start + cost
        consumed[j] = done
    return math.ceil(start) + 1, int(stalls)


def descriptor_table(descriptors, *, base: int, word_bytes: int) -> bytes:
    """The table the hardware reads for weights at byte address ``base`` of a memory with
    ``word_bytes``-byte data words: per load, its address and its length in words (u32 each,
    little-endian)."""
    return b"".join((base + d.ddr_offset).to_bytes(4, "little")
                    + (-(-d.size // word_bytes)).to_bytes(4, "little") for d in descriptors)


def pass_descriptors(layer_beats: int, *, beat_bits: int, capacity: int = URAM_WORDS,
                     load_beats: int = URAM_WORDS, word_bytes: int = 4) -> tuple:
    """The loads of one pass, ``load_beats`` each (the last may be shorter), each starting on
    a ``word_bytes`` data word; the default, one URAM288 depth, starts every load on a 512-byte
    boundary."""
    if not isinstance(load_beats, int) or load_beats < 1 or load_beats * beat_bits % (
            8 * word_bytes):
        raise ValueError(f"Load beats must be a positive multiple of "
                         f"{8 * word_bytes // math.gcd(8 * word_bytes, beat_bits)} "
                         f"(whole {word_bytes}-byte words), not {load_beats!r}")
    descriptors = []
    for first in range(0, layer_beats, load_beats):
        beats = min(load_beats, layer_beats - first)
        offset, size = first * beat_bits // 8, -(-beats * beat_bits // 8)
        descriptors.append(Descriptor(ddr_offset=offset, beats=beats, size=size,
                                      uram_address=first % capacity,
                                      bursts=_bursts(offset, size)))
    return tuple(descriptors)


def plan_layer(*, n: int, k: int, engine: TlmmParameters, board: Board, tokens: int = 1,
               memory: MemoryModel | None = None, uram_budget: int | None = None,
               load_beats: int = URAM_WORDS, resident: bool | None = None,
               buffer_beats: int | None = None) -> WeightPlan:
    """Plan an N x K layer for ``tokens`` tokens (1: decode) on ``board`` through the GEMV
    top around the LUT-RAM engine of ``engine`` (kind ``tlmm-lutram``), in loads of
    ``load_beats``. ``resident``: keep the layer in URAM and replay it for every token tile
    (default: when there are several tiles and it fits), or stream it from DDR for each.
    ``buffer_beats`` overrides the buffer's capacity (a buffer smaller than the planned
    URAM, as in small test builds)."""
    if engine.kind is not EngineKind.TLMM_LUTRAM:
        raise ValueError(f"Engine must be of kind tlmm-lutram, not {engine.kind.value!r}")
    for name, value in (("Layer rows N", n), ("Layer K", k), ("Tokens", tokens)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    memory = memory or MemoryModel.of_board(board)
    uram_budget = board.resources["URAM"] if uram_budget is None else uram_budget
    beat_bits = engine.weight_beat_bits
    line_bytes = -(-beat_bits // 8)
    banks = -(-beat_bits // URAM_BITS)
    if banks > uram_budget:
        raise ValueError(f"Weight beats of {beat_bits} bits need {banks} URAM288 side by side, "
                         f"but {board.name} has {uram_budget}: lower rows or groups per cycle")
    blocks = engine.row_blocks(n)
    layer_beats = blocks * engine.chunks(k)
    tiles = engine.token_tiles(tokens)
    stretch = max(blocks, engine.table_entries - 1) / blocks  # table writes vs row blocks

    def compute(tile):  # cycles of one pass over the layer for a tile of tokens
        return math.ceil(layer_beats * tile * stretch)

    whole_layer = -(-layer_beats // URAM_WORDS)  # URAM288 per column to hold the layer
    fits = whole_layer * banks <= uram_budget
    if resident and not fits:
        raise ValueError(f"A resident layer of {layer_beats} beats needs "
                         f"{whole_layer * banks} URAM288, but {board.name} has {uram_budget}")
    resident = len(tiles) > 1 and fits if resident is None else resident
    depth = whole_layer if resident else 1
    capacity = buffer_beats or depth * URAM_WORDS
    passes = 1 if resident else len(tiles)
    word_bytes = memory.axi_data_bits // 8
    descriptors = pass_descriptors(layer_beats, beat_bits=beat_bits, capacity=capacity,
                                   load_beats=load_beats, word_bytes=word_bytes)
    if len(descriptors) > MAX_DESCRIPTORS:
        raise ValueError(f"Loads per pass must be at most {MAX_DESCRIPTORS} (the GEMV top's "
                         f"descriptor table), not {len(descriptors)}: raise load_beats")
    table_bytes = -(-len(descriptors) * DESCRIPTOR_BYTES // word_bytes) * word_bytes
    first_request = _first_request(table_bytes, memory)
    cycles, stalls = _stream(  # the streamed passes, back to back
        layer_beats, capacity=capacity, line_bytes=line_bytes, memory=memory,
        cycles_per_beat=[tile * stretch for tile in tiles[:passes]],
        tables_ready=tiles[0] * engine.table_entries + TABLES_READY_OFFSET,
        first_request=first_request)
    for previous, tile in zip(tiles, tiles[1:] if resident else []):  # replays, each rewound
        cycles += math.ceil(max(previous * stretch, REWIND_CYCLES)
                            + (layer_beats - 1) * tile * stretch)
        stalls += max(0, REWIND_CYCLES - math.ceil(previous * stretch))
    compute_cycles = sum(compute(tile) for tile in tiles)
    ddr_bytes = passes * -(-layer_beats * beat_bits // 8) + table_bytes
    return WeightPlan(
        n=n, k=k, tokens=tokens, beat_bits=beat_bits, line_bytes=line_bytes, banks=banks,
        uram_depth=depth, uram_count=banks * depth, capacity_beats=capacity,
        layer_beats=layer_beats, passes=passes, resident=resident, cycles=cycles,
        compute_cycles=compute_cycles, stall_cycles=stalls,
        ddr_bytes=ddr_bytes,
        bandwidth_utilization=round(ddr_bytes / cycles / memory.bytes_per_cycle, 4),
        descriptors=tuple(descriptors))


def weight_image(beats: list[int], beat_bits: int) -> bytes:
    """Weight beats packed densely, least significant bit first, into bytes."""
    # in groups of beats that end on a byte, so that the work grows linearly with the beats
    group = 8 // math.gcd(8, beat_bits)
    mask, chunks = (1 << beat_bits) - 1, []
    for first in range(0, len(beats), group):
        value = 0
        for index, beat in enumerate(beats[first:first + group]):
            value |= (beat & mask) << (index * beat_bits)
        chunks.append(value.to_bytes(group * beat_bits // 8, "little"))
    return b"".join(chunks)[:-(-len(beats) * beat_bits // 8)]